import { describe, expect, it } from "vitest";
import { fireEvent, render, screen } from "@testing-library/svelte";
import { mockIPC } from "@tauri-apps/api/mocks";
import TileMenu from "./TileMenu.svelte";
import { toasts } from "../../lib/stores/toasts.svelte";
import type { ResyncRequest } from "../../lib/api";

describe("TileMenu", () => {
  it("opens on ⋯ and re-provisions that tile's phone, telling the outcome in a toast", async () => {
    const calls: ResyncRequest[] = [];
    mockIPC((cmd, args) => {
      if (cmd !== "resync_devices") return null;
      calls.push((args as { request: ResyncRequest }).request);
      return [{ mac: "000b82000009", name: "Lobby", reboot: false, target: null, origin: null, outcome: { kind: "not-sent", reason: "no known address" }, elapsed_ms: 0, at_ms: 0, summary: "" }];
    });
    const { container } = render(TileMenu, { mac: "000b82000009" });
    expect(container.querySelector("[data-action='resync']")).toBeNull();
    await fireEvent.click(screen.getByLabelText("Actions for this phone"));
    // A tile has no room for the address field or the result lines.
    expect(container.querySelector("[data-resync-to], [data-action='resync-advanced']")).toBeNull();
    await fireEvent.click(screen.getByText("Re-provision"));
    await screen.findByText("Re-provision");
    await new Promise((r) => setTimeout(r, 0));
    expect(calls).toEqual([{ selection: { kind: "devices", macs: ["000b82000009"] }, reboot: false, to: null }]);
    expect(toasts.items.at(-1)).toMatchObject({ tone: "error", text: "Lobby (00:0b:82:00:00:09): re-provision: not sent: no known address" });
    expect(container.querySelector("[data-resync-results]")).toBeNull();
  });
});
