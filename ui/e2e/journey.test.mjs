// The technician's journey on a fresh desk, one screenshot per step in target/screenshots/
// (journey-NN-*.png): add a device, import a CSV with a bad row, edit a profile value in Fields
// view and see it saved, start the servers, a phone (curl with a Grandstream User-Agent)
// fetches its files and its tile turns up to date, edit the device and see its page follow
// without navigating, break a profile and see the diagnostics listed on Live, open the
// editor from one of them, fix it and see the build published again.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { desk, wd, s, waitFor, find, el, exec, click, text, setValue, startServers, screenshot, useApp } from "./support.mjs";

useApp({ metricsName: "journey" });

const MAC = "000b82aa0001";
const UA = (mac) => `Grandstream Model HW GXP2170 V1.0A SW 1.0.11.23 DevId ${mac}`;
let step = 0;
const shot = (name) => screenshot(`journey-${String(++step).padStart(2, "0")}-${name}`);
const toastText = () => exec("return [...document.querySelectorAll('[data-toast]')].map(t => t.textContent).join('|')");
const shown = (css) => exec("return document.querySelector(arguments[0])?.textContent ?? ''", [css]);

/** A phone's request, made by curl as a phone would: its User-Agent, a fresh connection. */
function phoneFetch(url, name, mac) {
  const done = spawnSync("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-A", UA(mac), `${url}${name}`], {
    encoding: "utf8",
    timeout: 10000,
  });
  assert.equal(done.status, 0, `curl: ${done.stderr}`);
  return done.stdout;
}

test("1. a fresh desk opens", async () => {
  await waitFor("the fresh desk in the nav", async () => (await shown(".desk .path")) === desk);
  await shot("fresh-desk");
});

test("2. add a device with the form", async () => {
  await click("[data-nav='devices']");
  await click("[data-action='add-device']");
  await setValue("[data-device-field='mac']", "00:0B:82:AA:00:01");
  await setValue("[data-device-field='model']", "GXP2170");
  await exec(
    "const e = document.querySelector(\"[data-device-field='profile']\"); e.value = 'office'; e.dispatchEvent(new Event('change', { bubbles: true }));",
  );
  await setValue("[data-device-field='name']", "Reception");
  await setValue("[data-device-field='vars']", "ext=201\nsip_secret=s3cret-201");
  await shot("add-device-form");
  await click("[data-action='save-device']");
  await waitFor("the device in the list", () => find(`[data-mac='${MAC}']`));
  await waitFor("its status", async () => (await shown(`[data-mac='${MAC}'] [data-status]`)).length > 0);
  await shot("device-added");
});

test("3. import a CSV with a bad row: it is named, and the good rows are imported when asked", async () => {
  const csv = [
    "mac,model,profile,name,ext,sip_secret",
    "00:0b:82:aa:00:02,GXP2170,office,Desk 2,202,secret-202",
    "not-a-mac,GXP2170,office,Broken,203,secret-203",
    "00:0b:82:aa:00:04,GXP2170,office,Desk 4,204,secret-204",
  ].join("\n") + "\n";
  await click("[data-action='import']");
  await setValue("[data-csv]", csv);
  await click("[data-action='check']");
  await waitFor("the bad row named", async () => /line 3/.test(await shown("[data-dialog='import']")));
  assert.match(await text("[data-import-message]"), /would import 2 device\(s\) \(2 new, 0 updated\), skipping 1 bad row\(s\)/);
  await shot("import-bad-row");
  await click("[data-skip-bad]");
  await click("[data-action='do-import']");
  await waitFor("the dialog to close", async () => !(await find("[data-dialog='import']")));
  assert.match(await toastText(), /imported 2 device\(s\) \(2 new, 0 updated\), skipped 1 bad row\(s\)/);
  await waitFor("three devices", async () => (await shown(".screen header")).includes("3 in inventory"));
  await shot("imported");
});

test("4. edit a profile value in Fields view and see it saved", async () => {
  await click("[data-nav='profiles']");
  await click("[data-profile='office']");
  const input = await el("[data-field='P47'] input");
  await wd("POST", s(`/element/${input}/clear`), {});
  await wd("POST", s(`/element/${input}/value`), { text: "pbx.journey.test" });
  await waitFor("the unsaved sign", async () => (await shown("[data-field='P47'] [data-field-status]")) === "unsaved");
  await shot("fields-unsaved");
  await wd("POST", s(`/element/${input}/value`), { text: "\uE007" });
  await waitFor("the saved sign", async () => (await shown("[data-field='P47'] [data-field-status]")) === "saved");
  assert.match(readFileSync(join(desk, "profiles/office.toml"), "utf8"), /P47 = "pbx\.journey\.test"/);
  await shot("fields-saved");
});

let url;
test("5. start the servers", async () => {
  url = await startServers();
  await shot("servers-started");
});

test("6. a phone fetches its files and its tile turns up to date", async () => {
  assert.equal(phoneFetch(url, `cfg${MAC}`, MAC), "200");
  assert.equal(phoneFetch(url, `cfg${MAC}.xml`, MAC), "200");
  await waitFor(
    "the tile to turn up to date",
    async () => (await exec(`return document.querySelector("[data-tile='${MAC}']")?.dataset.status ?? ''`)) === "up-to-date",
  );
  await waitFor("the request in the log", async () => (await exec("return [...document.querySelectorAll('[data-log-row]')].map(r => r.textContent).join('|')")).includes(`cfg${MAC}.xml`));
  await shot("phone-up-to-date");
});

test("7. edit the device and its page follows without navigating", async () => {
  await click("[data-nav='devices']");
  await click(`[data-mac='${MAC}'] button.mac`);
  await el(`[data-device-page='${MAC}']`);
  await click("[data-action='edit-device']");
  await setValue("[data-device-field='name']", "Front desk");
  await click("[data-action='save-device']");
  await waitFor("the new name on the page", async () => (await shown(`[data-device-page='${MAC}'] [data-name]`)) === "Front desk");
  await shot("device-page-updated");
});

const office = () => join(desk, "profiles/office.toml");
let good;
test("8. break a profile: the diagnostics are listed on Live, each opening the editor", async () => {
  good = readFileSync(office(), "utf8");
  writeFileSync(office(), good.replace("[params]", "[params]\nP47 = \"unterminated\n"));
  await click("[data-nav='live']");
  await waitFor("the diagnostics on Live", async () => /office\.toml/.test(await shown("[data-build-problems]")), 20000);
  assert.ok((await exec("return document.querySelectorAll('[data-build-problem]').length")) > 0);
  await shot("live-diagnostics");
  await click("[data-build-problem] [data-problem-link='profile']");
  await waitFor("the editor on office.toml", () =>
    exec("return !!document.querySelector(\"[data-profile='office'].active\") && !!document.querySelector('[data-raw]')"),
  );
  await shot("editor-at-problem");
});

test("9. fix it: the build publishes again and the list clears", async () => {
  writeFileSync(office(), good);
  await click("[data-nav='live']");
  await waitFor("the problems gone", async () => !(await find("[data-build-problem]")), 20000);
  assert.equal(phoneFetch(url, `cfg${MAC}.xml`, MAC), "200");
  await shot("fixed");
});
