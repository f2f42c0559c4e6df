// Which screen is open, the desk's summary, the device or profile open on a screen, and the
// desk's opening build (followed by its events, never polled).
import { api, asApiError, type BuildSummary, type DeskBuildStatus, type DeskEvent, type DeskInfo } from "../api";
import { deskEventsReady, onDeskEvent } from "./events.svelte";
import { toasts } from "./toasts.svelte";

export type Screen = "live" | "devices" | "profiles" | "firmware" | "settings";
export const SCREENS: { id: Screen; label: string }[] = [
  { id: "live", label: "Live" },
  { id: "devices", label: "Devices" },
  { id: "profiles", label: "Profiles" },
  { id: "firmware", label: "Firmware" },
  { id: "settings", label: "Settings" },
];

/** The opening build while it runs: how many devices, and since when (Unix ms). */
export interface OpeningBuild {
  devices: number;
  startedAt: number;
}

class AppStore {
  // Live is the home screen: a technician opens the app to watch phones provision.
  screen = $state<Screen>("live");
  desk = $state<DeskInfo | null>(null);
  /** MAC of the device page shown on the Devices screen, if any. */
  openDevice = $state<string | null>(null);
  /** Bumped when the window regains focus, so screens re-read files edited elsewhere. */
  refresh = $state(0);
  /** The desk's opening build while it runs (the window shows a banner), else null. */
  opening = $state<OpeningBuild | null>(null);

  /** Where the Profiles screen should open its editor (a diagnostic's link); it clears it. */
  profileTarget = $state<{ file: string; line: number | null } | null>(null);

  /** The opening build of the open desk has not been seen to finish yet. */
  #awaiting = false;
  /** Bumped by every build-finished, so a status read that raced one is not taken. */
  #finished = 0;
  #listening = false;
  #now: () => number = Date.now;

  async loadDesk() {
    this.desk = await api.deskInfo();
  }

  /**
   * Follows the build that runs in the background when a desk opens (at start and after a
   * desk switch): reads where it is once, then follows the desk's build events. Screens
   * re-read what it changed (refresh); a failed or erroneous build is said in a toast.
   */
  async watchOpeningBuild(now: () => number = Date.now) {
    this.#now = now;
    if (!this.#listening) {
      this.#listening = true;
      onDeskEvent((event) => this.onDeskEvent(event));
    }
    this.#awaiting = true;
    this.opening = null;
    const finished = this.#finished;
    try {
      await deskEventsReady();
      const status = await api.deskBuildStatus();
      // A build-finished that came while the status was on its way is newer than it.
      if (finished === this.#finished) this.#applyStatus(status);
    } catch (e) {
      toasts.push(asApiError(e).message, "error", 9000);
    }
  }

  /** What the opening build's state read says: running (banner), done, or not started. */
  #applyStatus(status: DeskBuildStatus) {
    if (!this.#awaiting) return;
    if (status.running) {
      this.opening = { devices: status.devices, startedAt: this.#now() - status.elapsed_ms };
    } else if (status.error !== null) {
      this.#done();
      toasts.push(`Building the desk's files failed: ${status.error}`, "error", 12000);
    } else if (status.summary !== null) {
      this.#done();
      this.#report(status.summary);
    }
    // Neither: the build has not started yet; its events say when it does.
  }

  /** The desk's build events, for the opening build's banner and its outcome. */
  onDeskEvent(event: DeskEvent) {
    if (event.event === "build-started") {
      if (this.#awaiting && this.opening === null && event.devices === null) {
        this.opening = { devices: this.desk?.devices ?? 0, startedAt: this.#now() };
      }
    } else if (event.event === "build-finished") {
      this.#finished++;
      if (!this.#awaiting) return;
      this.#done();
      this.#report(event);
    }
  }

  #done() {
    this.#awaiting = false;
    // Screens that loaded while the banner showed may show what the build replaced.
    if (this.opening) this.refresh++;
    this.opening = null;
  }

  /** Says what needs doing when the opening build did not go well. */
  #report(summary: BuildSummary) {
    if (summary.errors === 0) return;
    const cause = summary.diagnostics.find((d) => d.kind === "build");
    if (cause && summary.errors === 1) {
      toasts.push(`Building the desk's files failed: ${cause.message}`, "error", 12000);
      return;
    }
    toasts.push(
      `The profiles have ${summary.errors} error(s), so no new files are served: fix them on the Profiles screen.`,
      "error",
      12000,
    );
  }

  /** Opens the profile editor at `file` (desk-relative, `profiles/office.toml`) and `line`. */
  openProfile(file: string, line: number | null) {
    this.profileTarget = { file, line };
    this.screen = "profiles";
  }

  go(screen: Screen) {
    this.screen = screen;
  }
}

export const app = new AppStore();
