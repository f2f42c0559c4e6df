// The Live screen's state: the servers' status, the device board, the request log (bounded,
// opening with the fetch log's recent history), requests per second, and the problems of the
// last failed build. Batches of server events come in over one Tauri Channel; `apply` folds
// one batch in, so a boot storm costs a few updates a second, not one per request. Builds,
// device changes and the servers starting or stopping come as desk events: nothing here polls.
import {
  api,
  asApiError,
  liveApi,
  type BuildSummary,
  type DeskBuildStatus,
  type DeskEvent,
  type Diagnostic,
  type LanLogRow,
  type LanSource,
  type ListenOverrides,
  type LiveBatch,
  type LogRow,
  type Protocol,
  type ServerStatus,
  type Tile,
} from "../api";
import { buildMessage, statusTone } from "../format";
import { deskEventsReady, onDeskEvent } from "./events.svelte";

/** The log keeps this many newest requests; older ones are in the fetch log on disk. */
export const LOG_CAP = 5000;
/** The chart's window, in seconds. */
export const RATE_WINDOW = 60;
/** How many requests of the fetch log the log opens with. */
export const HISTORY = 1000;

/** A row of the Live log: a request (HTTP, HTTPS, TFTP) or a DHCP or plug-and-play event. */
export type LiveRow = LogRow | LanLogRow;

export function isLanRow(row: LiveRow): row is LanLogRow {
  return "source" in row;
}

/**
 * A request's identity, the same for its live event and its fetch-log row (neither has an
 * id; the MAC is left out because the recorder may fill in one the event lacked).
 */
export function rowKey(row: LiveRow): string {
  if (isLanRow(row)) return `${row.at_ms}|${row.source}|${row.kind}|${row.mac}|${row.address}`;
  return `${row.at_ms}|${row.protocol}|${row.peer}|${row.name}|${row.status}|${row.bytes}|${row.duration_ms}`;
}

/** Where a diagnostic's link leads: the profile editor, Settings, or nowhere. */
export type DiagnosticLink =
  | { to: "profile"; file: string; line: number | null }
  | { to: "settings" }
  | null;

/** Profiles are the desk's `profiles/**.toml`; `provdesk.toml` is edited on Settings; other
 * files (the catalogue overlay, a CSV) have no editor in the app. */
export function diagnosticLink(d: Diagnostic): DiagnosticLink {
  if (!d.file) return null;
  const file = d.file.replace(/\\/g, "/");
  if (file === "provdesk.toml") return { to: "settings" };
  if (file.startsWith("profiles/") && file.endsWith(".toml")) {
    return { to: "profile", file, line: d.line ?? null };
  }
  return null;
}

export type StatusFilter = "" | "served" | "miss" | "denied" | "failed";

export interface LogFilter {
  /** Part of a MAC (any spelling), a name or a requested file. */
  device: string;
  protocol: "" | Protocol | LanSource;
  status: StatusFilter;
}

/** Whether a log row passes the filters. A DHCP or plug-and-play row counts as served, or as
 * failed when it is a problem (a NAK, an exhausted pool, an unanswered request). */
export function rowMatches(row: LiveRow, filter: LogFilter): boolean {
  if (isLanRow(row)) {
    if (filter.protocol && row.source !== filter.protocol) return false;
    if (filter.status && filter.status !== (row.problem ? "failed" : "served")) return false;
    const q = filter.device.trim().toLowerCase();
    if (!q) return true;
    const hex = q.replace(/[^0-9a-f]/g, "");
    if (hex.length >= 2 && row.mac !== null && row.mac.includes(hex)) return true;
    return [row.kind, row.address ?? "", row.detail ?? "", row.vendor_class ?? ""].some((t) => t.toLowerCase().includes(q));
  }
  if (filter.protocol && row.protocol !== filter.protocol) return false;
  if (filter.status) {
    const group: StatusFilter =
      row.outcome === "served" ? "served" : row.outcome === "denied" ? "denied" : row.outcome === "failed" ? "failed" : "miss";
    if (group !== filter.status) return false;
  }
  const q = filter.device.trim().toLowerCase();
  if (q) {
    const hex = q.replace(/[^0-9a-f]/g, "");
    const byMac = hex.length >= 2 && row.mac !== null && row.mac.includes(hex);
    const byText = row.name.toLowerCase().includes(q) || row.peer.includes(q) || (row.model ?? "").includes(q);
    if (!byMac && !byText) return false;
  }
  return true;
}

/** The tile's colour family, from the core's status. */
export function tone(tile: Tile): ReturnType<typeof statusTone> {
  return statusTone(tile.status);
}

export class LiveStore {
  status = $state<ServerStatus | null>(null);
  /** The board, in inventory order; tiles are replaced whole when their status changes. */
  tiles = $state.raw<Tile[]>([]);
  /** Newest first, at most LOG_CAP. */
  log = $state.raw<LiveRow[]>([]);
  /** Requests per second, oldest first, RATE_WINDOW values ending at the last tick. */
  rate = $state.raw<number[]>(new Array(RATE_WINDOW).fill(0));
  filter = $state<LogFilter>({ device: "", protocol: "", status: "" });
  lastBuild = $state<BuildSummary | null>(null);
  /** The diagnostics of the last build when it failed (nothing published); cleared by the
   * next build that publishes. */
  problems = $state.raw<Diagnostic[]>([]);
  warnings = $state.raw<string[]>([]);
  /** Events the app fell behind on (the fetch log on disk still has every request). */
  missed = $state(0);
  busy = $state(false);
  error = $state<string | null>(null);

  readonly visibleLog = $derived(this.log.filter((row) => rowMatches(row, this.filter)));

  #index = new Map<string, number>();
  /** Requests counted per Unix second. */
  #perSecond = new Map<number, number>();
  #subscribed = false;
  #listening = false;
  #desk: string | null = null;
  /** Keys of the rows the history seeded, so a batch that brings one again adds nothing. */
  #seeded = new Set<string>();
  /** Bumped by every build-finished, so a status read that raced one is not taken. */
  #builds = 0;
  #boardReload: ReturnType<typeof setTimeout> | null = null;
  /** The board asked for before the screen connected (`prefetchBoard`). */
  #early: Promise<Tile[]> | null = null;
  #now: () => number;
  /** Called for builds and warnings the technician should see (toasts). */
  onNotice: (text: string, tone: "ok" | "error" | "info") => void = () => {};
  /** Called with every batch that says something about DHCP (a lease changed, a warning of
   * the responder): the DHCP switch and the lease table follow it. */
  onLan: (batch: LiveBatch) => void = () => {};

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Starts reading the board before the Live screen mounts (at launch, alongside the desk's
   * summary), so the first frame with tiles does not wait for one round trip after another;
   * `connect` takes it. A build that finishes meanwhile reloads the board through its event. */
  prefetchBoard() {
    // Listening first: the opening build waits for this board read, and its build-finished
    // (which reloads the board) comes after the subscription asked for here stands.
    this.#listen();
    const early = liveApi.liveBoard();
    // Unhandled here if `connect` never takes it; connect reports its own error.
    early.catch(() => {});
    this.#early = early;
  }

  /** Subscribes once to the event streams, then reads the status, the board and the last
   * build. Another desk than last time starts with an empty chart and the log of its fetch
   * log's recent history. */
  async connect(desk: string | null = null) {
    const another = desk !== this.#desk || !this.#subscribed;
    if (desk !== this.#desk) {
      this.#desk = desk;
      this.log = [];
      this.#seeded.clear();
      this.#perSecond.clear();
      this.tick();
      this.missed = 0;
      this.lastBuild = null;
      this.problems = [];
      this.warnings = [];
    }
    this.#listen();
    const subscribed = this.#subscribed
      ? Promise.resolve()
      : liveApi.liveSubscribe((batch) => this.apply(batch)).then(() => {
          this.#subscribed = true;
        });
    const builds = this.#builds;
    // The board is the first thing the window shows: it goes on screen as soon as it is read
    // (it may have been asked for already, while the desk's summary loaded), without waiting
    // for the subscriptions and the status, which are read alongside it. At launch no servers
    // run yet, so no batch can come between this board and the subscription.
    const status = Promise.all([subscribed, deskEventsReady()]).then(() => liveApi.serverStatus());
    // Reported by the `await` below; not unhandled if the board fails first.
    status.catch(() => {});
    const board = this.#early ?? liveApi.liveBoard();
    this.#early = null;
    this.setTiles(await board);
    this.status = await status;
    // After subscribing: a request logged meanwhile arrives in a batch too, and `seed`
    // and `apply` keep one of the two.
    if (another) this.seed(await liveApi.liveHistory(HISTORY));
    const build = await api.deskBuildStatus();
    if (builds === this.#builds) this.showBuild(build);
  }

  #listen() {
    if (this.#listening) return;
    this.#listening = true;
    onDeskEvent((event) => this.onDeskEvent(event));
  }

  /** Puts the fetch log's recent requests (oldest first) under what the log already has,
   * leaving out those a batch brought already. */
  seed(history: LogRow[]) {
    const present = new Set(this.log.map(rowKey));
    const older: LogRow[] = [];
    for (let i = history.length - 1; i >= 0; i--) {
      const row = history[i];
      const key = rowKey(row);
      if (present.has(key)) continue;
      present.add(key);
      this.#seeded.add(key);
      older.push(row);
      const second = Math.floor(row.at_ms / 1000);
      this.#perSecond.set(second, (this.#perSecond.get(second) ?? 0) + 1);
    }
    if (older.length === 0) return;
    const log = this.log.concat(older);
    this.log = log.length > LOG_CAP ? log.slice(0, LOG_CAP) : log;
    this.tick();
  }

  /** The last build as the desk reports it when the screen opens (it may have finished
   * before, on another screen). */
  showBuild(state: DeskBuildStatus) {
    if (state.summary) this.#took(state.summary);
  }

  /** Builds (by the desk or by the servers' watcher), device changes and the servers
   * starting or stopping, as the desk reports them. */
  onDeskEvent(event: DeskEvent) {
    switch (event.event) {
      case "build-finished":
        this.#builds++;
        this.#took(event);
        // While serving, the batch's `board_changed` says so; stopped, nothing else does.
        if (event.published && !this.status?.running) this.scheduleBoardReload();
        if (this.status?.running) this.onNotice(buildMessage(event), event.published ? "ok" : "error");
        break;
      case "devices-changed":
        // While serving, the batches carry every tile that changed.
        if (!this.status?.running) this.scheduleBoardReload();
        break;
      case "servers-changed":
        liveApi
          .serverStatus()
          .then((status) => (this.status = status))
          .catch(() => {});
        break;
    }
  }

  #took(build: BuildSummary) {
    this.lastBuild = build;
    this.problems = build.published ? [] : build.diagnostics;
  }

  async loadBoard() {
    this.setTiles(await liveApi.liveBoard());
  }

  setTiles(tiles: Tile[]) {
    this.tiles = tiles;
    this.#index = new Map(tiles.map((t, i) => [t.mac, i]));
  }

  async start(overrides: ListenOverrides | null) {
    this.busy = true;
    this.error = null;
    try {
      this.status = await liveApi.startServers(overrides);
      await this.loadBoard();
    } catch (e) {
      this.error = asApiError(e).message;
      this.status = await liveApi.serverStatus().catch(() => this.status);
    } finally {
      this.busy = false;
    }
  }

  async stop() {
    this.busy = true;
    this.error = null;
    try {
      this.status = await liveApi.stopServers();
    } catch (e) {
      this.error = asApiError(e).message;
    } finally {
      this.busy = false;
    }
  }

  /** Folds one batch of events in. */
  apply(batch: LiveBatch) {
    // A request the history brought already (logged before it was read) is not added again.
    const fetches = this.#seeded.size
      ? batch.fetches.filter((row) => !this.#seeded.delete(rowKey(row)))
      : batch.fetches;
    const lanRows = batch.lan ?? [];
    if (fetches.length || lanRows.length) {
      // DHCP and plug-and-play rows go in by their time among the requests of the batch.
      const arrived: LiveRow[] = lanRows.length ? [...fetches, ...lanRows].sort((a, b) => a.at_ms - b.at_ms) : fetches;
      const newest = arrived.slice().reverse();
      const log = newest.concat(this.log);
      this.log = log.length > LOG_CAP ? log.slice(0, LOG_CAP) : log;
      // Requests per second counts requests only.
      for (const row of fetches) {
        const second = Math.floor(row.at_ms / 1000);
        this.#perSecond.set(second, (this.#perSecond.get(second) ?? 0) + 1);
      }
      this.tick();
    }
    // Progress reaches the tiles through their status (`firmware-in-progress` with percent).
    if (batch.tiles.length) {
      const tiles = this.tiles.slice();
      for (const tile of batch.tiles) {
        const i = this.#index.get(tile.mac);
        if (i === undefined) {
          this.#index.set(tile.mac, tiles.length);
          tiles.push(tile);
        } else {
          tiles[i] = tile;
        }
      }
      this.tiles = tiles;
    }
    // Builds arrive as desk events (`onDeskEvent`), whoever ran them; the batch's copies of
    // the servers' builds would only say them twice.
    if (batch.warnings.length) {
      this.warnings = batch.warnings.concat(this.warnings).slice(0, 20);
      for (const w of batch.warnings) this.onNotice(w, "error");
    }
    if (batch.leases_changed || batch.lan_warnings?.length) this.onLan(batch);
    this.missed += batch.missed;
    if (batch.board_changed) this.scheduleBoardReload();
  }

  /** A published build may turn any tile stale: re-read the board, at most once a second. */
  scheduleBoardReload() {
    if (this.#boardReload) return;
    this.#boardReload = setTimeout(() => {
      this.#boardReload = null;
      this.loadBoard().catch(() => {});
    }, 1000);
  }

  /** Moves the chart's window to now (called by each batch and by a one-second timer). */
  tick() {
    const now = Math.floor(this.#now() / 1000);
    const first = now - RATE_WINDOW + 1;
    for (const second of this.#perSecond.keys()) if (second < first) this.#perSecond.delete(second);
    const rate = new Array(RATE_WINDOW);
    for (let i = 0; i < RATE_WINDOW; i++) rate[i] = this.#perSecond.get(first + i) ?? 0;
    this.rate = rate;
  }

  clearLog() {
    this.log = [];
    this.#seeded.clear();
  }
}

export const live = new LiveStore();
