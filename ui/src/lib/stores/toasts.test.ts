import { describe, expect, it } from "vitest";
import { toasts } from "./toasts.svelte";

describe("toasts", () => {
  it("keeps only the newest few, so a burst of builds does not cover the screen", () => {
    for (let i = 1; i <= 7; i++) toasts.push(`build ${i}`, "ok", 0);
    expect(toasts.items.map((t) => t.text)).toEqual(["build 4", "build 5", "build 6", "build 7"]);
    const last = toasts.items[3].id;
    toasts.dismiss(last);
    expect(toasts.items.map((t) => t.text)).toEqual(["build 4", "build 5", "build 6"]);
  });
});
