// Which screen is open, the desk's summary, and the device or profile open on a screen.
import { api, asApiError, type DeskBuildStatus, type DeskInfo } from "../api";
import { toasts } from "./toasts.svelte";

export type Screen = "live" | "devices" | "profiles" | "firmware" | "settings";
export const SCREENS: { id: Screen; label: string }[] = [
  { id: "live", label: "Live" },
  { id: "devices", label: "Devices" },
  { id: "profiles", label: "Profiles" },
  { id: "firmware", label: "Firmware" },
  { id: "settings", label: "Settings" },
];

class AppStore {
  // Live is the home screen: a technician opens the app to watch phones provision.
  screen = $state<Screen>("live");
  desk = $state<DeskInfo | null>(null);
  /** MAC of the device page shown on the Devices screen, if any. */
  openDevice = $state<string | null>(null);
  /** Bumped when the window regains focus, so screens re-read files edited elsewhere. */
  refresh = $state(0);
  /** A profile file (and line) to show in the profile editor; the Profiles screen clears it. */
  profileTarget = $state<{ file: string; line: number | null } | null>(null);

  /** The desk's opening build while it runs (the window shows a banner), else null. */
  opening = $state<DeskBuildStatus | null>(null);

  async loadDesk() {
    this.desk = await api.deskInfo();
  }

  /**
   * Follows the build that runs in the background when a desk opens, until it ends; returns
   * its last status. Screens re-read what it changed (refresh), and a failed or erroneous
   * build is returned so the caller can say so.
   */
  async followOpeningBuild(intervalMs = 300, maxPolls = 10_000): Promise<DeskBuildStatus> {
    for (let poll = 0; poll < maxPolls; poll++) {
      const status = await api.deskBuildStatus();
      const finished = !status.running && (status.summary !== null || status.error !== null);
      if (finished) {
        if (this.opening) this.refresh++;
        this.opening = null;
        return status;
      }
      this.opening = status.running ? status : null;
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
    this.opening = null;
    throw new Error("the desk's opening build did not finish");
  }

  /** Follows the opening build and says what needs doing if it did not go well. */
  async watchOpeningBuild() {
    try {
      const status = await this.followOpeningBuild();
      if (status.error) {
        toasts.push(`Building the desk's files failed: ${status.error}`, "error", 12000);
      } else if (status.summary && status.summary.errors > 0) {
        toasts.push(
          `The profiles have ${status.summary.errors} error(s), so no new files are served: fix them on the Profiles screen.`,
          "error",
          12000,
        );
      }
    } catch (e) {
      toasts.push(asApiError(e).message, "error", 9000);
    }
  }

  go(screen: Screen) {
    this.screen = screen;
  }

  /** Opens `file` (`profiles/office.toml`) in the profile editor, at `line` when given. */
  openProfile(file: string, line: number | null) {
    this.profileTarget = { file, line };
    this.screen = "profiles";
  }
}

export const app = new AppStore();
