import { afterEach, describe, expect, it } from "vitest";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { app } from "./app.svelte";
import { dispatch } from "./events.svelte";
import { toasts } from "./toasts.svelte";
import type { BuildSummary, DeskBuildStatus } from "../api";

const summary = (errors: number): BuildSummary => ({
  published: errors === 0, build: 1, artifacts: 61, devices: 20, written: 61, removed: 0,
  unchanged: 0, errors, diagnostics: [], held: [], elapsed_ms: 812.4,
});

const notStarted: DeskBuildStatus = { running: false, elapsed_ms: 0, devices: 0, summary: null, error: null };
const running = (ms: number): DeskBuildStatus =>
  ({ running: true, elapsed_ms: ms, devices: 10_000, summary: null, error: null });

/** Answers desk_build_status with `status` and counts the calls; the event subscription is
 * accepted. */
function answer(status: DeskBuildStatus) {
  const calls: string[] = [];
  mockIPC((cmd) => {
    calls.push(cmd);
    if (cmd === "desk_subscribe") return null;
    if (cmd !== "desk_build_status") throw new Error(`unexpected ${cmd}`);
    return status;
  });
  return () => calls.filter((c) => c === "desk_build_status").length;
}

afterEach(() => {
  clearMocks();
  app.opening = null;
  app.profileTarget = null;
  app.screen = "live";
  toasts.items = [];
});

describe("the opening build", () => {
  it("shows the banner from the build's state read once, and ends it with the build-finished event", async () => {
    const reads = answer(running(3000));
    const refresh = app.refresh;
    await app.watchOpeningBuild(() => 100_000);
    expect(app.opening).toEqual({ devices: 10_000, startedAt: 97_000 });
    dispatch({ event: "build-finished", ...summary(0) });
    expect(app.opening).toBeNull();
    expect(app.refresh).toBe(refresh + 1);
    expect(reads()).toBe(1);
    expect(toasts.items).toEqual([]);
  });

  it("shows the banner when the build starts after the desk opened", async () => {
    app.desk = { devices: 20 } as typeof app.desk;
    answer(notStarted);
    await app.watchOpeningBuild(() => 5_000);
    expect(app.opening).toBeNull();
    // A rebuild of a few devices is no opening build.
    dispatch({ event: "build-started", devices: ["000b82001003"] });
    expect(app.opening).toBeNull();
    dispatch({ event: "build-started", devices: null });
    expect(app.opening).toEqual({ devices: 20, startedAt: 5_000 });
    dispatch({ event: "build-finished", ...summary(2) });
    expect(app.opening).toBeNull();
    expect(toasts.items.map((t) => t.text).join("|")).toMatch(/2 error\(s\), so no new files are served: fix them on the Profiles screen/);
    // Later builds are no longer the opening build: no banner, no toast.
    dispatch({ event: "build-started", devices: null });
    dispatch({ event: "build-finished", ...summary(3) });
    expect(app.opening).toBeNull();
    expect(toasts.items.length).toBe(1);
    app.desk = null;
  });

  it("says what to do when the build had finished with errors before the window asked", async () => {
    answer({ running: false, elapsed_ms: 0, devices: 20, summary: summary(2), error: null });
    await app.watchOpeningBuild();
    expect(app.opening).toBeNull();
    expect(toasts.items.map((t) => t.text).join("|")).toMatch(/2 error\(s\)/);
  });

  it("says why a build that could not run failed", async () => {
    answer({ running: false, elapsed_ms: 0, devices: 0, summary: null, error: "build/ is read-only" });
    await app.watchOpeningBuild();
    expect(toasts.items.map((t) => t.text)).toEqual(["Building the desk's files failed: build/ is read-only"]);
    answer(running(0));
    await app.watchOpeningBuild();
    dispatch({
      event: "build-finished", ...summary(1),
      diagnostics: [{ severity: "error", kind: "build", message: "cannot write build/cfg.xml" }],
    });
    expect(toasts.items.map((t) => t.text)).toContain("Building the desk's files failed: cannot write build/cfg.xml");
  });
});

describe("a build that finishes while its state is read", () => {
  it("is not undone by the older state", async () => {
    let reply: (status: DeskBuildStatus) => void = () => {};
    mockIPC((cmd) => {
      if (cmd === "desk_subscribe") return null;
      return new Promise<DeskBuildStatus>((resolve) => (reply = resolve));
    });
    const watching = app.watchOpeningBuild();
    await new Promise((r) => setTimeout(r, 0));
    dispatch({ event: "build-finished", ...summary(0) });
    reply(running(10));
    await watching;
    expect(app.opening).toBeNull();
  });
});

describe("openProfile", () => {
  it("sets the editor's target and switches to the Profiles screen", () => {
    app.openProfile("profiles/office.toml", 12);
    expect(app.profileTarget).toEqual({ file: "profiles/office.toml", line: 12 });
    expect(app.screen).toBe("profiles");
    app.openProfile("profiles/models/gxp2170.toml", null);
    expect(app.profileTarget).toEqual({ file: "profiles/models/gxp2170.toml", line: null });
  });
});
