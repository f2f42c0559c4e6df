// The device page's Timeline tab and push re-provisioning, in the real window: a desk filled
// by the command line (import and build, so each device's timeline starts with its build), a
// phone's requests made by curl against the servers the app runs, a silent UDP socket on
// loopback standing in for a phone that never answers the NOTIFY, and a device never seen
// (no address to send to). Screenshots in target/screenshots/timeline-NN-*.png.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { cli, desk, metrics, waitFor, find, el, exec, click, setValue, startServers, screenshot, useApp } from "./support.mjs";

const SEEN = "000b82bb0001";
const NEVER = "000b82bb0002";
const UA = (mac) => `Grandstream Model HW GXP2170 V1.0A SW 1.0.11.23 DevId ${mac}`;
let step = 0;
const shot = (name) => screenshot(`timeline-${String(++step).padStart(2, "0")}-${name}`);
const shown = (css) => exec("return document.querySelector(arguments[0])?.textContent ?? ''", [css]);
const toastText = () => exec("return [...document.querySelectorAll('[data-toast]')].map(t => t.textContent).join('|')");
const entries = (source) =>
  exec("return [...document.querySelectorAll(arguments[0])].map(r => r.textContent)", [
    source ? `[data-entry][data-source='${source}']` : "[data-entry]",
  ]);

function prepare() {
  const csv = join(desk, "..", `${desk.split("/").pop()}-timeline.csv`);
  writeFileSync(
    csv,
    ["mac,model,profile,name,ext,sip_secret", `${SEEN},GXP2170,office,Seen,301,secret-301`, `${NEVER},GXP2170,office,Never,302,secret-302`].join("\n") + "\n",
  );
  for (const args of [["init"], ["device", "import", csv], ["build"]]) {
    const done = spawnSync(cli, ["--desk", desk, ...args], { encoding: "utf8" });
    assert.equal(done.status, 0, `provdesk ${args.join(" ")}: ${done.stderr}`);
  }
}

useApp({ metricsName: "timeline", prepare });

/** A phone that never answers: a UDP socket on loopback that only counts what it gets. */
const silent = createSocket("udp4");
const heard = [];
silent.on("message", (msg) => heard.push(msg.toString("utf8")));
after(() => silent.close());

async function openDevice(mac) {
  await click("[data-nav='devices']");
  // The Devices screen keeps the page last opened: back to the list first.
  if (await find("[data-action='back']")) await click("[data-action='back']");
  await click(`[data-mac='${mac}'] button.mac`);
  await el(`[data-device-page='${mac}']`);
}

let url;
test("1. a phone's requests and its build are on its Timeline, newest first", async () => {
  url = await startServers();
  for (const name of [`cfg${SEEN}`, `cfg${SEEN}.xml`, `cfg${SEEN}.bogus`]) {
    const done = spawnSync("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-A", UA(SEEN), `${url}${name}`], { encoding: "utf8", timeout: 10000 });
    assert.equal(done.status, 0, `curl: ${done.stderr}`);
  }
  await openDevice(SEEN);
  await click("[data-tab='timeline']");
  await waitFor("three fetches on the timeline", async () => (await entries("fetch")).length === 3).catch(async (e) => {
    await shot("timeline-failed");
    throw new Error(`${e.message}; shown: ${(await entries()).join(" | ")}`);
  });
  const all = await entries();
  assert.ok((await entries("build")).length >= 1, `a build row: ${all.join(" | ")}`);
  // Newest first: the last request (the miss) on top, the build that came before them at the bottom.
  assert.match(all[0], new RegExp(`cfg${SEEN}\\.bogus`));
  assert.equal(await exec("return document.querySelector('[data-entry]:last-child')?.dataset.source"), "build");
  assert.ok((await shown("[data-diagnosis-status]")).length > 0, "the diagnosis' status is shown");
  await shot("timeline");
});

test("2. the source filter hides a source, and a verdict's evidence is highlighted", async () => {
  await click("[data-source-filter='fetch']");
  await waitFor("only non-fetch rows", async () => (await entries("fetch")).length === 0 && (await entries()).length > 0);
  await click("[data-source-filter='fetch']");
  await waitFor("the fetches back", async () => (await entries("fetch")).length === 3);
  const evidence = await find("[data-evidence], [data-status-evidence]");
  assert.ok(evidence, `a verdict or the status names its evidence: ${await shown("[data-diagnosis]")}`);
  await click("[data-evidence], [data-status-evidence]");
  await waitFor("highlighted entries", () => exec("return document.querySelectorAll('[data-entry].highlight').length > 0"));
  await shot("evidence");
});

test("3. Re-provision to a phone that never answers says so within about 5 s, and the timeline gets the outcome", async () => {
  await new Promise((resolve) => silent.bind(0, "127.0.0.1", resolve));
  const to = `127.0.0.1:${silent.address().port}`;
  const notifiesBefore = (await entries("notify")).length;
  await click("[data-action='resync-advanced']");
  await setValue("[data-resync-to]", to);
  const started = Date.now();
  await click("[data-resync='page'] [data-action='resync']");
  const line = await waitFor("the outcome", async () => {
    const t = await shown(`[data-resync-result='${SEEN}']`);
    return t || null;
  }, 15000);
  const took = Date.now() - started;
  metrics.no_answer_ms = took;
  const sends = Number(line.match(/no answer after (\d+) sends/)?.[1]);
  assert.match(line, new RegExp(`^Re-provision to ${to.replace(/\./g, "\\.")}: no answer after \\d+ sends \\(\\d+\\.\\d s\\)$`));
  assert.ok(took < 6000, `the answer took ${took} ms`);
  // The silent phone got every one of them, each a check-sync NOTIFY.
  assert.equal(heard.length, sends);
  assert.ok(heard.every((m) => m.startsWith("NOTIFY sip:") && /\r\nEvent: check-sync/i.test(m)), heard[0]);
  assert.match(await toastText(), /no answer after \d+ sends/);
  // The desk's Resynced event reloads the timeline: no navigation, no polling.
  await waitFor("the NOTIFY outcome on the timeline", async () => (await entries("notify")).length === notifiesBefore + 1);
  assert.match((await entries("notify"))[0], /no answer/i);
  await shot("no-answer");
});

test("4. a device never seen has no address: Reboot asks first, then says it was not sent", async () => {
  await openDevice(NEVER);
  await click("[data-resync='page'] [data-action='reboot']");
  assert.match(await shown("[data-reboot-confirm]"), /Reboot this phone\? Calls in progress are cut\./);
  await shot("reboot-confirm");
  await click("[data-action='reboot-confirm']");
  const line = await waitFor("the outcome", async () => (await shown(`[data-resync-result='${NEVER}']`)) || null);
  assert.equal(
    line,
    "Reboot: not sent: no known address (no DHCP lease, plug-and-play request or fetch seen); give the address to send to (--to HOST:PORT)",
  );
  await shot("not-sent");
});

test("5. the bulk bar and a Live tile re-provision too", async () => {
  await click("[data-action='back']");
  for (const mac of [SEEN, NEVER]) await click(`[data-mac='${mac}'] input[type='checkbox']`);
  await click("[data-resync='bulk'] [data-action='resync']");
  await waitFor("the bulk outcome", async () => /Re-provision of 2 phones: .*1 not sent/.test(await toastText()), 15000);
  await shot("bulk");
  await click("[data-nav='live']");
  await click(`[data-tile-menu='${NEVER}'] [data-action='tile-menu']`);
  await click(`[data-tile-menu='${NEVER}'] [data-action='resync']`);
  await waitFor("the tile's outcome", async () => /Never \(00:0b:82:bb:00:02\): re-provision: not sent: no known address/.test(await toastText()));
  await shot("tile-menu");
});
