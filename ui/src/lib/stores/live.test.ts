import { describe, expect, it } from "vitest";
import { mockIPC } from "@tauri-apps/api/mocks";
import { diagnosticLink, isLanRow, LiveStore, LOG_CAP, RATE_WINDOW, rowMatches, tone, type LiveRow, type LogFilter } from "./live.svelte";
import type { BuildSummary, DeskBuildStatus, Diagnostic, LanLogRow, LiveBatch, LogRow, ServerStatus, Tile } from "../api";

const T0 = 1_800_000_000_000;

/** The log's requests (these tests put no DHCP or plug-and-play rows in unless they say so). */
const requests = (rows: LiveRow[]): LogRow[] => rows.filter((r): r is LogRow => !isLanRow(r));

const tile = (mac: string, over: Partial<Tile> = {}): Tile => ({
  mac, name: null, model: "gxp2170", profile: "office", state: "inventory", last_ip: null,
  status: { state: "never-seen" }, label: "never seen", last_request: null, last_syslog: null, ...over,
});

const row = (i: number, over: Partial<LogRow> = {}): LogRow => ({
  at_ms: T0, protocol: "http", peer: "127.0.0.1:5000", name: `cfg${i}.xml`, mac: "000b82001003",
  model: "gxp2170", user_agent: null, status: "200", outcome: "served", reason: null, bytes: 10,
  duration_ms: 1, ...over,
});

const batch = (over: Partial<LiveBatch> = {}): LiveBatch => ({
  fetches: [], progress: [], builds: [], discovered: [], listening: [], warnings: [], tiles: [],
  lan: [], lan_warnings: [], leases_changed: false, missed: 0, board_changed: false, ...over,
});

const build = (over: Partial<BuildSummary> = {}): BuildSummary => ({
  published: true, build: 2, artifacts: 5, devices: 1, written: 3, removed: 0, unchanged: 2,
  errors: 0, diagnostics: [], held: [], elapsed_ms: 12.4, ...over,
});

const idle: DeskBuildStatus = { running: false, elapsed_ms: 0, devices: 0, summary: null, error: null };

const stopped: ServerStatus = {
  running: false, urls: [], option66: null, p237: null, p212: null, errors: [],
  address: { source: "unknown", p237: null, p212: null, option66: null, message: "P237/P192: not known until the servers start." },
  configured: { http: "0.0.0.0:8080", https: null, tftp: "0.0.0.0:69" }, first_build: null,
  access: null, lan: { dhcp: null, pnp: null },
};

describe("live store", () => {
  it("puts requests in the log newest first, and tiles on the board", () => {
    const store = new LiveStore(() => T0);
    store.setTiles([tile("000b82001001"), tile("000b82001003")]);
    store.apply(batch({
      fetches: [row(1), row(2)],
      tiles: [tile("000b82001003", { status: { state: "up-to-date" }, label: "up to date" }), tile("000b820000ff", { state: "discovered" })],
    }));
    expect(requests(store.log).map((r) => r.name)).toEqual(["cfg2.xml", "cfg1.xml"]);
    expect(store.tiles.map((t) => t.mac)).toEqual(["000b82001001", "000b82001003", "000b820000ff"]);
    expect(store.tiles[1].label).toBe("up to date");
    expect(tone(store.tiles[1])).toBe("ok");
    expect(tone(store.tiles[0])).toBe("idle");
    // A later update replaces the tile in place.
    store.apply(batch({ tiles: [tile("000b82001003", { status: { state: "stale" }, label: "stale" })] }));
    expect(store.tiles.length).toBe(3);
    expect(tone(store.tiles[1])).toBe("warn");
  });

  it("keeps at most LOG_CAP rows, dropping the oldest", () => {
    const store = new LiveStore(() => T0);
    const many = Array.from({ length: LOG_CAP + 250 }, (_, i) => row(i));
    store.apply(batch({ fetches: many.slice(0, 3000) }));
    store.apply(batch({ fetches: many.slice(3000) }));
    expect(store.log.length).toBe(LOG_CAP);
    expect(requests(store.log)[0].name).toBe(`cfg${LOG_CAP + 249}.xml`);
    expect(requests(store.log)[LOG_CAP - 1].name).toBe("cfg250.xml");
  });

  it("counts requests per second over the last minute", () => {
    let now = T0;
    const store = new LiveStore(() => now);
    store.apply(batch({ fetches: [row(1), row(2), row(3, { at_ms: T0 - 1000 }), row(4, { at_ms: T0 - 120_000 })] }));
    expect(store.rate.length).toBe(RATE_WINDOW);
    expect(store.rate[RATE_WINDOW - 1]).toBe(2);
    expect(store.rate[RATE_WINDOW - 2]).toBe(1);
    expect(store.rate.reduce((a, b) => a + b, 0)).toBe(3);
    now = T0 + 5000;
    store.tick();
    expect(store.rate[RATE_WINDOW - 6]).toBe(2);
    expect(store.rate[RATE_WINDOW - 1]).toBe(0);
  });

  it("filters the log by device, protocol and status, and shows reasons", () => {
    const store = new LiveStore(() => T0);
    store.apply(batch({
      fetches: [
        row(1),
        row(2, { protocol: "tftp", outcome: "not-found", status: "404", reason: "no such file", mac: null }),
        row(3, { outcome: "denied", status: "denied", reason: "wrong password", mac: "000b82009999" }),
      ],
    }));
    store.filter.status = "miss";
    expect(requests(store.visibleLog).map((r) => r.reason)).toEqual(["no such file"]);
    store.filter.status = "denied";
    expect(requests(store.visibleLog).map((r) => r.reason)).toEqual(["wrong password"]);
    store.filter.status = "";
    store.filter.protocol = "tftp";
    expect(store.visibleLog.length).toBe(1);
    store.filter.protocol = "";
    store.filter.device = "00:0b:82:00:10:03";
    expect(requests(store.visibleLog).map((r) => r.name)).toEqual(["cfg1.xml"]);
    expect(rowMatches(row(9), { device: "cfg9", protocol: "", status: "" })).toBe(true);
    expect(rowMatches(row(9), { device: "nothing", protocol: "", status: "" })).toBe(false);
  });

  it("reports warnings, counts lost events, and reloads the board after a build", async () => {
    let boards = 0;
    mockIPC((cmd) => {
      if (cmd === "live_board") {
        boards++;
        return [tile("000b82001003", { status: { state: "stale" }, label: "stale" })];
      }
    });
    const store = new LiveStore(() => T0);
    const notices: string[] = [];
    store.onNotice = (text) => notices.push(text);
    store.apply(batch({
      builds: [build()],
      warnings: ["the TFTP server stopped"],
      missed: 4,
      board_changed: true,
    }));
    // The build itself is said by its desk event, not by the batch's copy.
    expect(notices).toEqual(["the TFTP server stopped"]);
    expect(store.missed).toBe(4);
    await new Promise((r) => setTimeout(r, 1100));
    expect(boards).toBe(1);
    expect(store.tiles[0].label).toBe("stale");
  });

  it("says the servers' builds from desk events while serving", () => {
    const store = new LiveStore(() => T0);
    const notices: string[] = [];
    store.onNotice = (text) => notices.push(text);
    store.status = { ...stopped, running: true };
    store.onDeskEvent({ event: "build-finished", ...build() });
    expect(notices).toEqual(["rebuilt 3 files in 12 ms"]);
    expect(store.lastBuild?.build).toBe(2);
  });

  it("starts over with an empty log when another desk connects", async () => {
    mockIPC((cmd) => {
      if (cmd === "server_status") return stopped;
      if (cmd === "live_board") return [tile("000b82001003")];
      if (cmd === "live_history") return [];
      if (cmd === "desk_build_status") return idle;
    });
    const store = new LiveStore(() => T0);
    await store.connect("/desks/a");
    store.apply(batch({ fetches: [row(1)], missed: 2 }));
    await store.connect("/desks/a");
    expect(store.log.length).toBe(1);
    await store.connect("/desks/b");
    expect(store.log.length).toBe(0);
    expect(store.missed).toBe(0);
    expect(store.rate.every((v) => v === 0)).toBe(true);
    expect(store.tiles.map((t) => t.mac)).toEqual(["000b82001003"]);
  });

  it("starts and stops over IPC, and keeps a failed start's message", async () => {
    const calls: [string, unknown][] = [];
    let fail = true;
    mockIPC((cmd, args) => {
      calls.push([cmd, args]);
      if (cmd === "start_servers") {
        if (fail) throw { kind: "serve", message: "cannot listen for tftp on 0.0.0.0:69: permission denied; use a port above 1024" };
        return { ...stopped, running: true, urls: [{ protocol: "http", url: "http://127.0.0.1:4000/", address: "127.0.0.1:4000" }], p237: "127.0.0.1:4000", option66: "http://127.0.0.1:4000", p212: "1" };
      }
      if (cmd === "server_status") return { ...stopped, errors: ["permission denied"] };
      if (cmd === "stop_servers") return stopped;
      if (cmd === "live_board") return [];
    });
    const store = new LiveStore(() => T0);
    await store.start({ http: "127.0.0.1:0", tftp: "off" });
    expect(store.error).toMatch(/permission denied; use a port above 1024/);
    expect(store.status?.errors).toEqual(["permission denied"]);
    fail = false;
    await store.start({ http: "127.0.0.1:0", tftp: "off" });
    expect(store.error).toBeNull();
    expect(store.status?.p237).toBe("127.0.0.1:4000");
    expect(calls.find(([c]) => c === "start_servers")?.[1]).toEqual({ overrides: { http: "127.0.0.1:0", tftp: "off" } });
    await store.stop();
    expect(store.status?.running).toBe(false);
  });
});

describe("the log's history", () => {
  it("opens with the fetch log's recent requests, newest first, counted in the chart", async () => {
    const asked: unknown[] = [];
    mockIPC((cmd, args) => {
      if (cmd === "live_history") {
        asked.push(args);
        return [row(1, { at_ms: T0 - 2000 }), row(2, { at_ms: T0 - 1000 })];
      }
      if (cmd === "server_status") return stopped;
      if (cmd === "live_board") return [];
      if (cmd === "desk_build_status") return idle;
    });
    const store = new LiveStore(() => T0);
    await store.connect("/desks/a");
    expect(requests(store.log).map((r) => r.name)).toEqual(["cfg2.xml", "cfg1.xml"]);
    expect(asked).toEqual([{ limit: 1000 }]);
    expect(store.rate[RATE_WINDOW - 2]).toBe(1);
    expect(store.rate[RATE_WINDOW - 3]).toBe(1);
    // The same desk again (the screen re-opened): the log is kept, not read twice.
    await store.connect("/desks/a");
    expect(asked.length).toBe(1);
    expect(store.log.length).toBe(2);
  });

  it("has no duplicates when a batch brings requests the history also holds", async () => {
    const logged = row(1, { at_ms: T0 - 5000 });
    const both = row(2, { at_ms: T0 - 10 });
    const late = row(3, { at_ms: T0 - 5 });
    const store = new LiveStore(() => T0);
    let answerHistory: (rows: LogRow[]) => void = () => {};
    mockIPC((cmd) => {
      if (cmd === "live_history") return new Promise<LogRow[]>((resolve) => (answerHistory = resolve));
      if (cmd === "server_status") return { ...stopped, running: true };
      if (cmd === "live_board") return [];
      if (cmd === "desk_build_status") return idle;
    });
    const connecting = store.connect("/desks/a");
    await new Promise((r) => setTimeout(r, 0));
    // While the history is read, a batch brings a request it will also hold...
    store.apply(batch({ fetches: [{ ...both }] }));
    answerHistory([logged, both, late]);
    await connecting;
    expect(requests(store.log).map((r) => r.name)).toEqual(["cfg2.xml", "cfg3.xml", "cfg1.xml"]);
    // ...and after it, one it held already (logged before the read, its batch later).
    store.apply(batch({ fetches: [{ ...late }, row(4, { at_ms: T0 })] }));
    expect(requests(store.log).map((r) => r.name)).toEqual(["cfg4.xml", "cfg2.xml", "cfg3.xml", "cfg1.xml"]);
    // A request that happens to repeat later is a new row.
    store.apply(batch({ fetches: [{ ...late }] }));
    expect(store.log.length).toBe(5);
  });
});

describe("a failed build's problems", () => {
  const profileError: Diagnostic = {
    severity: "error", kind: "undefined-variable", message: "undefined variable `ext`",
    file: "profiles/office.toml", line: 4, device: "000b82001003",
  };
  const settingsError: Diagnostic = { severity: "error", kind: "settings", message: "bad port", file: "provdesk.toml", line: 2 };
  const catalogWarning: Diagnostic = { severity: "warning", kind: "catalog", message: "unknown P-value", file: "catalog/extra.toml", line: 1 };

  it("lists the diagnostics of a build that published nothing, until one publishes", () => {
    const store = new LiveStore(() => T0);
    // Serving, so no board reload outlives the test.
    store.status = { ...stopped, running: true };
    store.onDeskEvent({
      event: "build-finished",
      ...build({ published: false, errors: 2, diagnostics: [profileError, settingsError, catalogWarning] }),
    });
    expect(store.problems.map((d) => d.message)).toEqual(["undefined variable `ext`", "bad port", "unknown P-value"]);
    expect(store.lastBuild?.errors).toBe(2);
    // A build with held devices still published: the list clears.
    store.onDeskEvent({ event: "build-finished", ...build({ held: [{ mac: "000b82001003", diagnostics: [profileError] }] }) });
    expect(store.problems).toEqual([]);
  });

  it("shows the last build's problems when the screen opens after it failed", async () => {
    mockIPC((cmd) => {
      if (cmd === "live_history") return [];
      if (cmd === "server_status") return stopped;
      if (cmd === "live_board") return [];
      if (cmd === "desk_build_status") {
        return { ...idle, summary: build({ published: false, errors: 1, diagnostics: [profileError] }) };
      }
    });
    const store = new LiveStore(() => T0);
    await store.connect("/desks/a");
    expect(store.problems).toEqual([profileError]);
  });

  it("links profiles to the editor, provdesk.toml to Settings, and nothing else", () => {
    expect(diagnosticLink(profileError)).toEqual({ to: "profile", file: "profiles/office.toml", line: 4 });
    expect(diagnosticLink({ ...profileError, file: "profiles\\models\\gxp2170.toml", line: undefined }))
      .toEqual({ to: "profile", file: "profiles/models/gxp2170.toml", line: null });
    expect(diagnosticLink(settingsError)).toEqual({ to: "settings" });
    expect(diagnosticLink(catalogWarning)).toBeNull();
    expect(diagnosticLink({ severity: "error", kind: "build", message: "disk full" })).toBeNull();
  });
});

describe("the board without servers", () => {
  it("reloads when devices change or a build publishes while stopped, not while serving", async () => {
    let boards = 0;
    mockIPC((cmd) => {
      if (cmd === "live_board") {
        boards++;
        return [tile("000b82001003")];
      }
    });
    const store = new LiveStore(() => T0);
    store.status = stopped;
    store.onDeskEvent({ event: "devices-changed", macs: ["000b82001003"], all: false });
    store.onDeskEvent({ event: "build-finished", ...build() });
    await new Promise((r) => setTimeout(r, 1100));
    expect(boards).toBe(1);
    expect(store.tiles.map((t) => t.mac)).toEqual(["000b82001003"]);
    store.status = { ...stopped, running: true };
    store.onDeskEvent({ event: "devices-changed", macs: [], all: true });
    await new Promise((r) => setTimeout(r, 1100));
    expect(boards).toBe(1);
  });

  it("re-reads the servers' status when they start or stop", async () => {
    mockIPC((cmd) => {
      if (cmd === "server_status") return stopped;
    });
    const store = new LiveStore(() => T0);
    store.status = { ...stopped, running: true };
    store.onDeskEvent({ event: "servers-changed", running: false });
    await new Promise((r) => setTimeout(r, 0));
    expect(store.status?.running).toBe(false);
  });
});

describe("DHCP and plug-and-play in the log", () => {
  const lanRow = (at_ms: number, over: Partial<LanLogRow> = {}): LanLogRow => ({
    at_ms, source: "dhcp", kind: "ack", mac: "000b82001003", address: "192.0.2.50",
    vendor_class: "Grandstream GXP2170", detail: null, problem: false, ...over,
  });

  it("puts their rows among the requests by time, without counting them as requests", () => {
    const store = new LiveStore(() => T0);
    store.apply(batch({
      fetches: [row(1, { at_ms: T0 + 2 })],
      lan: [lanRow(T0 + 1, { kind: "discover" }), lanRow(T0 + 3, { source: "pnp", kind: "subscribe", detail: "told http://192.0.2.2:8080/" })],
    }));
    const order = store.log.map((r) => (isLanRow(r) ? r.kind : r.name));
    expect(order).toEqual(["subscribe", "cfg1.xml", "discover"]);
    expect(store.rate[RATE_WINDOW - 1]).toBe(1);
  });

  it("filters them by source, problem and text", () => {
    const nak = lanRow(T0, { kind: "nak", problem: true, detail: "address not in the pool" });
    const pnp = lanRow(T0, { source: "pnp", kind: "subscribe", mac: "000b82aaaaaa", address: "192.0.2.60" });
    const filter = (over: Partial<LogFilter>): LogFilter => ({ device: "", protocol: "", status: "", ...over });
    expect(rowMatches(nak, filter({ protocol: "dhcp" }))).toBe(true);
    expect(rowMatches(nak, filter({ protocol: "pnp" }))).toBe(false);
    expect(rowMatches(nak, filter({ protocol: "http" }))).toBe(false);
    expect(rowMatches(nak, filter({ status: "failed" }))).toBe(true);
    expect(rowMatches(pnp, filter({ status: "failed" }))).toBe(false);
    expect(rowMatches(pnp, filter({ device: "aa:aa" }))).toBe(true);
    expect(rowMatches(nak, filter({ device: "not in the pool" }))).toBe(true);
    expect(rowMatches(row(1), filter({ protocol: "dhcp" }))).toBe(false);
  });

  it("tells the DHCP switch about lease changes and the responder's warnings", () => {
    const store = new LiveStore(() => T0);
    const seen: LiveBatch[] = [];
    store.onLan = (b) => seen.push(b);
    store.apply(batch({ lan: [lanRow(T0, { kind: "offer" })] }));
    expect(seen).toHaveLength(0);
    store.apply(batch({ lan: [lanRow(T0)], leases_changed: true }));
    const rival = "another DHCP server answers on eth0: 192.0.2.1 offers 192.0.2.100";
    store.apply(batch({ warnings: [rival], lan_warnings: [rival] }));
    expect(seen.map((b) => [b.leases_changed, b.lan_warnings])).toEqual([[true, []], [false, [rival]]]);
  });
});
