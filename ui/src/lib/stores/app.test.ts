import { afterEach, describe, expect, it } from "vitest";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { app } from "./app.svelte";
import { toasts } from "./toasts.svelte";
import type { BuildSummary, DeskBuildStatus } from "../api";

const summary = (errors: number): BuildSummary => ({
  published: errors === 0, build: 1, artifacts: 61, devices: 20, written: 61, removed: 0,
  unchanged: 0, errors, diagnostics: [], held: [], elapsed_ms: 812.4,
});

/** Answers desk_build_status with each status in turn (the last one repeats). */
function statuses(list: DeskBuildStatus[]) {
  let calls = 0;
  mockIPC((cmd) => {
    if (cmd !== "desk_build_status") throw new Error(`unexpected ${cmd}`);
    return list[Math.min(calls++, list.length - 1)];
  });
  return () => calls;
}

const running = (ms: number): DeskBuildStatus =>
  ({ running: true, elapsed_ms: ms, devices: 10_000, summary: null, error: null });

afterEach(() => {
  clearMocks();
  app.opening = null;
  toasts.items = [];
});

describe("the opening build", () => {
  it("shows the banner while it runs, then refreshes the screens once it is done", async () => {
    const notStarted: DeskBuildStatus = { running: false, elapsed_ms: 0, devices: 0, summary: null, error: null };
    const calls = statuses([notStarted, running(300), running(600), { ...notStarted, devices: 20, summary: summary(0) }]);
    const refresh = app.refresh;
    const seen: (number | null)[] = [];
    const following = app.followOpeningBuild(1);
    const watch = setInterval(() => seen.push(app.opening?.elapsed_ms ?? null), 0);
    const done = await following;
    clearInterval(watch);
    expect(done.summary?.written).toBe(61);
    expect(calls()).toBe(4);
    expect(seen).toContain(300);
    expect(app.opening).toBeNull();
    expect(app.refresh).toBe(refresh + 1);
  });

  it("says what to do when the profiles have errors", async () => {
    statuses([{ running: false, elapsed_ms: 0, devices: 20, summary: summary(2), error: null }]);
    await app.watchOpeningBuild();
    expect(toasts.items.map((t) => t.text).join("|")).toMatch(/2 error\(s\), so no new files are served: fix them on the Profiles screen/);
  });

  it("gives up after a bounded number of polls", async () => {
    statuses([running(1)]);
    await expect(app.followOpeningBuild(0, 5)).rejects.toThrow(/did not finish/);
    expect(app.opening).toBeNull();
  });
});
