// The Live screen's DHCP and plug-and-play switches and the lease table. Switching DHCP on
// runs the desk's pre-flight first and shows its answer; only when no other server answered
// are the servers restarted with DHCP on that interface (they check once more themselves, and
// a refusal then arrives as a warning in a batch: `onWarnings`). Nothing is saved: the
// switches last for this serving session; the interface last chosen is remembered in the
// webview's storage for the next time.
import { asApiError, lanApi, type DhcpPreflight, type LanInterface, type LanStatus, type LeaseRow, type ServerStatus } from "../api";

/** Where the last chosen interface is kept (the webview's local storage). */
export const INTERFACE_KEY = "provdesk.lan.interface";

/** How long the lease table waits after a lease changed before it reads the table again, so
 * a storm of ACKs is one read. */
export const LEASE_RELOAD_MS = 500;

export type Phase = "idle" | "checking" | "switching";

function remembered(): string {
  try {
    return globalThis.localStorage?.getItem(INTERFACE_KEY) ?? "";
  } catch {
    return "";
  }
}

export class LanStore {
  interfaces = $state.raw<LanInterface[]>([]);
  /** The interface the technician picked or typed. */
  chosen = $state(remembered());
  /** The last pre-flight's answer, shown before DHCP starts. */
  preflight = $state<DhcpPreflight | null>(null);
  /** Why the last check or switch failed. */
  error = $state<string | null>(null);
  /** The servers' own refusals and problems with DHCP, newest first. */
  warnings = $state.raw<string[]>([]);
  leases = $state.raw<LeaseRow[]>([]);
  phase = $state<Phase>("idle");
  /** Which of the two switches is being worked on. */
  working = $state<"dhcp" | "pnp" | null>(null);
  #leaseReload: ReturnType<typeof setTimeout> | null = null;
  /** Receives the servers' status after a switch restarted them. */
  onStatus: (status: ServerStatus) => void = () => {};

  async loadInterfaces() {
    try {
      this.interfaces = (await lanApi.interfaces()) ?? [];
      if (!this.chosen && this.interfaces.length) this.chosen = this.interfaces.find((i) => i.up)?.name ?? this.interfaces[0].name;
    } catch (e) {
      this.error = asApiError(e).message;
    }
  }

  async loadLeases() {
    try {
      this.leases = (await lanApi.leases()) ?? [];
    } catch (e) {
      this.error = asApiError(e).message;
    }
  }

  /** A lease changed (a batch said so): read the table again, at most every LEASE_RELOAD_MS. */
  leasesChanged() {
    if (this.#leaseReload) return;
    this.#leaseReload = setTimeout(() => {
      this.#leaseReload = null;
      void this.loadLeases();
    }, LEASE_RELOAD_MS);
  }

  /** The servers warned about DHCP (their pre-flight heard another server, port 67 is taken). */
  onWarnings(warnings: string[]) {
    if (warnings.length) this.warnings = warnings.concat(this.warnings).slice(0, 10);
  }

  #remember() {
    const name = this.chosen.trim();
    try {
      if (name) globalThis.localStorage?.setItem(INTERFACE_KEY, name);
    } catch {
      // Storage refused (private mode): the choice lasts until the window closes.
    }
    return name;
  }

  /** Runs the pre-flight on the chosen interface and shows its answer; true when nobody else
   * answered. */
  async check(): Promise<boolean> {
    const iface = this.#remember();
    this.phase = "checking";
    this.working = "dhcp";
    this.error = null;
    this.preflight = null;
    try {
      this.preflight = await lanApi.dhcpPreflight(iface);
      return this.preflight.rivals.length === 0;
    } catch (e) {
      this.error = asApiError(e).message;
      return false;
    } finally {
      this.phase = "idle";
      this.working = null;
    }
  }

  /** DHCP on (after a clear pre-flight) or off. */
  async setDhcp(on: boolean) {
    if (on && !(await this.check())) return;
    await this.#switch("dhcp", () => lanApi.setDhcp(on ? this.chosen.trim() : null));
    if (on) this.warnings = [];
  }

  /** Plug-and-play on the chosen interface, or off. */
  async setPlugAndPlay(on: boolean) {
    const iface = this.#remember();
    this.error = null;
    await this.#switch("pnp", () => lanApi.setPlugAndPlay(on ? iface : null));
  }

  async #switch(which: "dhcp" | "pnp", run: () => Promise<ServerStatus>) {
    this.phase = "switching";
    this.working = which;
    try {
      this.onStatus(await run());
    } catch (e) {
      this.error = asApiError(e).message;
    } finally {
      this.phase = "idle";
      this.working = null;
    }
  }

  /** A lease's time left, for the table: `expired`, `42 min`, `3 h 5 min`. */
  static expiresIn(lease: LeaseRow, nowMs: number): string {
    const left = Math.floor(lease.expires_at - nowMs / 1000);
    if (lease.expired || left <= 0) return "expired";
    if (left < 60) return `${left} s`;
    const minutes = Math.floor(left / 60);
    if (minutes < 60) return `${minutes} min`;
    return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
  }
}

/** Whether the servers run DHCP (or plug-and-play), from their status. */
export function lanOf(status: ServerStatus | null): LanStatus {
  return status?.running ? status.lan : { dhcp: null, pnp: null };
}

export const lan = new LanStore();
