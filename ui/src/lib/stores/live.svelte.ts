// The Live screen's state: the servers' status, the device board, the request log (bounded)
// and requests per second. Batches of server events come in over one Tauri Channel; `apply`
// folds one batch in, so a boot storm costs a few updates a second, not one per request.
import {
  asApiError,
  liveApi,
  type BuildSummary,
  type ListenOverrides,
  type LiveBatch,
  type LogRow,
  type Protocol,
  type ServerStatus,
  type Tile,
} from "../api";
import { buildMessage } from "../format";

/** The log keeps this many newest requests; older ones are in the fetch log on disk. */
export const LOG_CAP = 5000;
/** The chart's window, in seconds. */
export const RATE_WINDOW = 60;

export type StatusFilter = "" | "served" | "miss" | "denied" | "failed";

export interface LogFilter {
  /** Part of a MAC (any spelling), a name or a requested file. */
  device: string;
  protocol: "" | Protocol;
  status: StatusFilter;
}

/** Whether a log row passes the filters. */
export function rowMatches(row: LogRow, filter: LogFilter): boolean {
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
export function tone(tile: Tile): "ok" | "warn" | "err" | "busy" | "idle" {
  switch (tile.status.state) {
    case "up-to-date":
    case "firmware-done":
      return "ok";
    case "stale":
    case "got-config":
      return "warn";
    case "denied":
    case "failed":
    case "needs-attention":
      return "err";
    case "requesting":
    case "firmware-in-progress":
      return "busy";
    default:
      return "idle";
  }
}

export class LiveStore {
  status = $state<ServerStatus | null>(null);
  /** The board, in inventory order; tiles are replaced whole when their status changes. */
  tiles = $state.raw<Tile[]>([]);
  /** Newest first, at most LOG_CAP. */
  log = $state.raw<LogRow[]>([]);
  /** Requests per second, oldest first, RATE_WINDOW values ending at the last tick. */
  rate = $state.raw<number[]>(new Array(RATE_WINDOW).fill(0));
  filter = $state<LogFilter>({ device: "", protocol: "", status: "" });
  lastBuild = $state<BuildSummary | null>(null);
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
  #desk: string | null = null;
  #boardReload: ReturnType<typeof setTimeout> | null = null;
  #now: () => number;
  /** Called for builds and warnings the technician should see (toasts). */
  onNotice: (text: string, tone: "ok" | "error" | "info") => void = () => {};

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Subscribes once to the event stream, then reads the status and the board. Another desk
   * than last time starts with an empty log and chart. */
  async connect(desk: string | null = null) {
    if (desk !== this.#desk) {
      this.#desk = desk;
      this.log = [];
      this.#perSecond.clear();
      this.tick();
      this.missed = 0;
      this.lastBuild = null;
      this.warnings = [];
    }
    if (!this.#subscribed) {
      await liveApi.liveSubscribe((batch) => this.apply(batch));
      this.#subscribed = true;
    }
    this.status = await liveApi.serverStatus();
    await this.loadBoard();
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
    if (batch.fetches.length) {
      const newest = batch.fetches.slice().reverse();
      const log = newest.concat(this.log);
      this.log = log.length > LOG_CAP ? log.slice(0, LOG_CAP) : log;
      for (const row of batch.fetches) {
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
    for (const build of batch.builds) {
      this.lastBuild = build;
      this.onNotice(buildMessage(build), build.published ? "ok" : "error");
    }
    if (batch.warnings.length) {
      this.warnings = batch.warnings.concat(this.warnings).slice(0, 20);
      for (const w of batch.warnings) this.onNotice(w, "error");
    }
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
  }
}

export const live = new LiveStore();
