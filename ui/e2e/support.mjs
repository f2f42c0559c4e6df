// What the window tests share: plain WebDriver over fetch (no client library) against
// tauri-driver and WebKitWebDriver, a fresh desk and config folder per test file, screenshots
// and figures in target/screenshots/. Each test file runs in its own process, so each gets
// its own desk, app and session.
import { before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, readdirSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../..");
const targetDir = process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : join(repo, "target");
const app = resolve(process.env.APP_BINARY ?? join(targetDir, "debug/provdesk-app"));
const cli = join(dirname(app), "provdesk");
const shots = join(repo, "target/screenshots");
// Two runs side by side (two worktrees) need their own ports: E2E_DRIVER_PORT, and the
// WebKitWebDriver behind it on the next port.
const PORT = Number(process.env.E2E_DRIVER_PORT ?? 4444);
const base = `http://127.0.0.1:${PORT}`;
const ELEMENT = "element-6066-11e4-a52e-4f735466cecf";

let driver;
let session;
const desk = mkdtempSync(join(tmpdir(), "provdesk-e2e-"));
// The app remembers its window size in its config folder: a fresh one per run, so every run
// opens the window as on a first start and leaves nothing in the user's settings.
const config = mkdtempSync(join(tmpdir(), "provdesk-e2e-config-"));
const metrics = {};

/** One WebDriver call; every call has a timeout so a hang cannot stall CI. */
async function wd(method, path, body, ms = 15000) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(ms),
  });
  const json = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json.value ?? json).slice(0, 400)}`);
  return json.value;
}
const s = (path) => `/session/${session}${path}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what, fn, ms = 15000) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try {
      const value = await fn();
      if (value) return value;
    } catch (e) {
      last = e;
    }
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ""}`);
}

async function find(css) {
  const found = await wd("POST", s("/elements"), { using: "css selector", value: css });
  return found.length ? found[0][ELEMENT] : null;
}
const el = (css, ms) => waitFor(css, () => find(css), ms);
const exec = (script, args = []) => wd("POST", s("/execute/sync"), { script, args });
const click = async (css) => wd("POST", s(`/element/${await el(css)}/click`), {});
const text = async (css) => wd("GET", s(`/element/${await el(css)}/text`));

/** Sets a field's value the way typing does (Svelte listens to `input`). */
async function setValue(css, value) {
  await el(css);
  await exec(
    `const e = document.querySelector(arguments[0]); e.focus(); e.value = arguments[1];
     e.dispatchEvent(new Event("input", { bubbles: true }));`,
    [css, value],
  );
}

/** The Live screen's HTTP URL once the servers listen on loopback. */
const httpUrl = (what) =>
  waitFor(what, async () => {
    const shown = await exec("return document.querySelector(\"[data-url='http']\")?.textContent ?? ''");
    return /^http:\/\/127\.0\.0\.1:\d+\/$/.test(shown) ? shown : null;
  }, 30000);

/** Starts the servers from the Live screen on loopback with free ports (never port 69 here);
 * HTTPS and TFTP are given the same, or `off`. Returns the HTTP URL. */
async function startServers({ others = "127.0.0.1:0" } = {}) {
  await click("[data-nav='live']");
  await el("[data-action='start-servers']");
  await setValue("[data-listen='http']", "127.0.0.1:0");
  await setValue("[data-listen='https']", others);
  await setValue("[data-listen='tftp']", others);
  await click("[data-action='start-servers']");
  return httpUrl("the HTTP URL");
}

/** The painted frame lags the DOM: wait two animation frames, then capture. */
async function screenshot(name) {
  await wd("POST", s("/execute/async"), {
    script: "const done = arguments[arguments.length - 1]; requestAnimationFrame(() => requestAnimationFrame(() => done(true)));",
    args: [],
  });
  // Without GPU compositing (the app's default on Linux), WebKit's screenshot of a page that
  // does not change waits for a repaint that never comes: a pixel that changes a few times
  // while it waits gives it one.
  await exec(
    `const dot = document.createElement("div");
     dot.style.cssText = "position:fixed;left:0;bottom:0;width:1px;height:1px;pointer-events:none";
     document.body.append(dot);
     [30, 100, 300, 1000].forEach((ms, i) => setTimeout(() => (dot.style.background = i % 2 ? "transparent" : "rgba(0,0,0,0.01)"), ms));
     setTimeout(() => dot.remove(), 1500);`,
  );
  const png = await wd("GET", s("/screenshot"), undefined, 30000);
  mkdirSync(shots, { recursive: true });
  writeFileSync(join(shots, `${name}.png`), Buffer.from(png, "base64"));
}

/** Resident memory (KB) of the app and WebKit's helper processes, from /proc. */
function memory() {
  const rows = [];
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0];
      if (!/provdesk-app$|WebKitWebProcess$|WebKitNetworkProcess$/.test(cmd)) continue;
      const rss = Number(readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)?.[1] ?? 0);
      rows.push({ process: cmd.split("/").pop(), rss_kb: rss });
    } catch {
      // The process ended while we looked.
    }
  }
  return rows;
}

/** Processes of the app started on this run's desk (a zombie has no command line). */
function appProcesses() {
  const pids = [];
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      if (args[0] === app && args.includes(desk)) pids.push(Number(pid));
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}


export { repo, app, cli, shots, desk, config, metrics, wd, s, sleep, waitFor, find, el, exec, click, text, setValue, httpUrl, startServers, screenshot, memory, appProcesses };

/** The app ended on its own (a signal): its WebDriver session ended with it. */
export function forgetSession() {
  session = undefined;
}

/** Starts the app on this file's fresh desk before the tests (after `prepare`, which may fill
 * the desk with the command line) and quits it after them, writing `metrics` to
 * target/screenshots/<metricsName>.json. */
export function useApp({ metricsName = "metrics", prepare } = {}) {
  before(async () => {
    prepare?.();
    assert.ok(existsSync(app), `build the app first: ${app} is missing`);
    driver = spawn("tauri-driver", ["--port", String(PORT), "--native-port", String(PORT + 1)], {
      stdio: ["ignore", "inherit", "inherit"],
      env: { ...process.env, PROVDESK_DESK: desk, XDG_CONFIG_HOME: config },
    });
    await waitFor("tauri-driver", async () => (await fetch(`${base}/status`, { signal: AbortSignal.timeout(1000) })).ok, 20000);
    const started = Date.now();
    const created = await wd(
      "POST",
      "/session",
      { capabilities: { alwaysMatch: { browserName: "wry", "tauri:options": { application: app, args: ["--desk", desk] } } } },
      60000,
    );
    session = created.sessionId;
    await el("[data-nav='devices']", 30000);
    await el(".brand");
    metrics.cold_start_ms = Date.now() - started;
  });

  after(async () => {
    try {
      if (session) await wd("DELETE", `/session/${session}`, undefined, 10000);
    } finally {
      // WebKitWebDriver ends the app after it answers the DELETE. Killing tauri-driver (and
      // WebKitWebDriver with it) before then leaves the app running, holding this file's output
      // open, and the run never ends: wait for the app, bounded, and stop it if it stays.
      const gone = async () => appProcesses().length === 0;
      if (!(await waitFor("the app to quit", gone, 10000).catch(() => false))) {
        for (const [signal, ms] of [["SIGTERM", 5000], ["SIGKILL", 5000]]) {
          const left = appProcesses();
          if (!left.length) break;
          console.log(`the app (pid ${left.join(", ")}) outlived its WebDriver session: ${signal}`);
          for (const pid of left) {
            try {
              process.kill(pid, signal);
            } catch {
              // It ended meanwhile.
            }
          }
          await waitFor("the app to end", gone, ms).catch(() => false);
        }
      }
      driver?.kill();
    }
    if (Object.keys(metrics).length) {
      mkdirSync(shots, { recursive: true });
      writeFileSync(join(shots, `${metricsName}.json`), JSON.stringify(metrics, null, 2) + "\n");
      console.log("metrics", JSON.stringify(metrics));
    }
  });
}
