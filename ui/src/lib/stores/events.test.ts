import { describe, expect, it, vi } from "vitest";

const subscribe = vi.fn((_: unknown) => Promise.resolve());
vi.mock("../api", () => ({ eventsApi: { deskSubscribe: (cb: unknown) => subscribe(cb) } }));

import { dispatch, onDeskEvent } from "./events.svelte";

describe("desk events", () => {
  it("subscribes once and hands every event to every listener until it stops", () => {
    const a = vi.fn();
    const b = vi.fn();
    const stopA = onDeskEvent(a);
    onDeskEvent(b);
    expect(subscribe).toHaveBeenCalledTimes(1);
    dispatch({ event: "firmware-changed" });
    stopA();
    dispatch({ event: "servers-changed", running: true });
    expect(a).toHaveBeenCalledTimes(1);
    expect(b).toHaveBeenCalledTimes(2);
  });

  it("keeps going when a listener throws", () => {
    const after = vi.fn();
    onDeskEvent(() => {
      throw new Error("boom");
    });
    onDeskEvent(after);
    const quiet = vi.spyOn(console, "error").mockImplementation(() => {});
    dispatch({ event: "firmware-changed" });
    quiet.mockRestore();
    expect(after).toHaveBeenCalled();
  });
});
