import { describe, expect, it } from "vitest";
import { fireEvent, render, screen } from "@testing-library/svelte";
import { mockIPC } from "@tauri-apps/api/mocks";
import Timeline from "./Timeline.svelte";
import { dispatch } from "../../lib/stores/events.svelte";
import { live } from "../../lib/stores/live.svelte";
import type { DeviceHistory, Diagnosis, TimelineEntry } from "../../lib/api";

const MAC = "000b82000001";
const entry = (id: string, at_ms: number, source: TimelineEntry["source"], kind: string, summary: string): TimelineEntry => ({
  id, at_ms, source, kind, summary, peer: source === "build" ? null : "192.0.2.9", fetch: null, detail: null,
});
const history: DeviceHistory = {
  mac: MAC,
  truncated: false,
  entries: [
    entry("event:1", 1000, "build", "changed", "build 1 wrote cfg000b82000001.xml"),
    entry("fetch:1", 2000, "fetch", "served", "http cfg000b82000001 200"),
    entry("fetch:2", 3000, "fetch", "not-found", "http cfg000b82000001.xml 404"),
    entry("event:2", 4000, "notify", "no-answer", "re-provision: no answer after 4 sends"),
  ],
};
const diagnosis: Diagnosis = {
  mac: MAC,
  status: { state: "got-config", version: 1 },
  status_label: "got config",
  status_evidence: ["fetch:1"],
  verdicts: [{ code: "binary-without-xml", severity: "problem", words: "It fetched the binary config but never the XML.", evidence: ["fetch:1", "fetch:2"] }],
  summary: "It fetched the binary config but never the XML.",
};

function serve(counts: { history: number }, current = () => history) {
  mockIPC((cmd) => {
    if (cmd === "device_history") {
      counts.history++;
      return current();
    }
    if (cmd === "device_diagnosis") return diagnosis;
    return null;
  });
}

const ids = (container: HTMLElement) => [...container.querySelectorAll("[data-entry]")].map((r) => r.getAttribute("data-entry"));

describe("Timeline", () => {
  it("lists the entries newest first with their source, under the diagnosis in words", async () => {
    serve({ history: 0 });
    const { container } = render(Timeline, { mac: MAC });
    await screen.findByText("http cfg000b82000001.xml 404");
    expect(ids(container)).toEqual(["event:2", "fetch:2", "fetch:1", "event:1"]);
    const sources = [...container.querySelectorAll("[data-entry] .src")].map((b) => b.textContent);
    expect(sources).toEqual(["NOTIFY", "fetch", "fetch", "build"]);
    expect(container.querySelector("[data-verdict='binary-without-xml']")?.textContent).toContain("It fetched the binary config but never the XML.");
    expect(container.querySelector("[data-diagnosis-status]")?.textContent).toBe("got config");
  });

  it("filters by source", async () => {
    serve({ history: 0 });
    const { container } = render(Timeline, { mac: MAC });
    await screen.findByText("http cfg000b82000001.xml 404");
    await fireEvent.click(container.querySelector("[data-source-filter='fetch']")!);
    expect(ids(container)).toEqual(["event:2", "event:1"]);
    await fireEvent.click(container.querySelector("[data-source-filter='build']")!);
    expect(ids(container)).toEqual(["event:2"]);
  });

  it("highlights a verdict's evidence, showing sources the filter hid", async () => {
    serve({ history: 0 });
    const { container } = render(Timeline, { mac: MAC });
    await screen.findByText("http cfg000b82000001.xml 404");
    await fireEvent.click(container.querySelector("[data-source-filter='fetch']")!);
    await fireEvent.click(container.querySelector("[data-evidence='binary-without-xml']")!);
    const lit = [...container.querySelectorAll("[data-entry].highlight")].map((r) => r.getAttribute("data-entry"));
    expect(lit).toEqual(["fetch:2", "fetch:1"]);
    expect(ids(container)).toHaveLength(4);
  });

  it("reloads when the desk reports a re-provision of this device, not of another", async () => {
    const counts = { history: 0 };
    let current = history;
    serve(counts, () => current);
    render(Timeline, { mac: MAC });
    await screen.findByText("http cfg000b82000001.xml 404");
    const before = counts.history;
    const resynced = (mac: string) =>
      dispatch({ event: "resynced", mac, name: null, reboot: false, target: null, origin: null, outcome: { kind: "answered", code: 200, reason: "OK", authenticated: false }, elapsed_ms: 3, at_ms: 5000, summary: "" });
    resynced("000b82000002");
    await Promise.resolve();
    expect(counts.history).toBe(before);
    current = { ...history, entries: [...history.entries, entry("event:3", 5000, "notify", "answered", "re-provision: answered 200 OK")] };
    resynced(MAC);
    await screen.findByText("re-provision: answered 200 OK");
    expect(counts.history).toBe(before + 1);
  });

  it("follows a request the servers' batches bring until the fetch log has it, then stops", async () => {
    const counts = { history: 0 };
    const recorded = { ...history, entries: [...history.entries, {
      ...entry("fetch:3", 6000, "fetch", "served", "http cfg000b82000001.xml 200 (new)"),
      fetch: { id: 3, ts: 6000, protocol: "http", peer: "192.0.2.9:1", name: "cfg000b82000001.xml", mac: MAC, user_agent: null, status: "200", reason: null, bytes: 10, duration_ms: 1, artifact_hash: null },
    }] };
    // The recorder writes the row a little after the batch announced it: the second read has it.
    serve(counts, () => (counts.history >= 3 ? recorded : history));
    let told = 0;
    render(Timeline, { mac: MAC, onrecorded: () => told++ });
    await screen.findByText("http cfg000b82000001.xml 404");
    expect(counts.history).toBe(1);
    live.log = [{ at_ms: 6000, protocol: "http", peer: "192.0.2.9:1", name: "cfg000b82000001.xml", mac: MAC, model: null, user_agent: null, status: "200" } as never];
    await screen.findByText("http cfg000b82000001.xml 200 (new)", undefined, { timeout: 3000 });
    await new Promise((r) => setTimeout(r, 1200));
    expect(counts.history).toBe(3);
    expect(told).toBe(1);
    live.log = [];
  });
});
