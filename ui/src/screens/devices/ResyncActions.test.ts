import { describe, expect, it } from "vitest";
import { fireEvent, render, screen } from "@testing-library/svelte";
import { mockIPC } from "@tauri-apps/api/mocks";
import ResyncActions from "./ResyncActions.svelte";
import { toasts } from "../../lib/stores/toasts.svelte";
import type { ResyncRequest, ResyncResult } from "../../lib/api";

const MAC = "000b82000001";

function answering(outcome: ResyncResult["outcome"], calls: ResyncRequest[]) {
  mockIPC((cmd, args) => {
    if (cmd !== "resync_devices") return null;
    const request = (args as { request: ResyncRequest }).request;
    calls.push(request);
    const macs = request.selection.kind === "devices" ? request.selection.macs : [];
    return macs.map((mac) => ({
      mac, name: null, reboot: request.reboot, target: request.to ?? "127.0.0.1:5060", origin: "last-fetch",
      outcome, elapsed_ms: 4000, at_ms: 0, summary: "",
    }));
  });
}

describe("ResyncActions", () => {
  it("re-provisions the device and says what came of it, on the page and in a toast", async () => {
    const calls: ResyncRequest[] = [];
    answering({ kind: "no-answer", sends: 4, waited_ms: 4000, provisional: null }, calls);
    const { container } = render(ResyncActions, { macs: [MAC], variant: "page" });
    await fireEvent.click(screen.getByText("Re-provision"));
    const line = await screen.findByText(/no answer after 4 sends/);
    expect(line.textContent).toBe("Re-provision to 127.0.0.1:5060: no answer after 4 sends (4.0 s)");
    expect(container.querySelector(`[data-resync-result='${MAC}']`)?.getAttribute("data-outcome")).toBe("no-answer");
    expect(calls).toEqual([{ selection: { kind: "devices", macs: [MAC] }, reboot: false, to: null }]);
    expect(toasts.items.at(-1)).toMatchObject({ tone: "error", text: "00:0b:82:00:00:01: re-provision to 127.0.0.1:5060: no answer after 4 sends (4.0 s)" });
  });

  it("sends to the address given under Advanced", async () => {
    const calls: ResyncRequest[] = [];
    answering({ kind: "answered", code: 200, reason: "OK", authenticated: false }, calls);
    const { container } = render(ResyncActions, { macs: [MAC], variant: "page" });
    await fireEvent.click(screen.getByText("Advanced"));
    await fireEvent.input(container.querySelector("[data-resync-to]")!, { target: { value: " 192.0.2.7:5062 " } });
    await fireEvent.click(screen.getByText("Re-provision"));
    await screen.findByText(/answered 200 OK/);
    expect(calls[0].to).toBe("192.0.2.7:5062");
    expect(toasts.items.at(-1)?.tone).toBe("ok");
  });

  it("asks before rebooting, and sends nothing when cancelled", async () => {
    const calls: ResyncRequest[] = [];
    answering({ kind: "answered", code: 200, reason: "OK", authenticated: true }, calls);
    render(ResyncActions, { macs: [MAC, "000b82000002"], variant: "bulk" });
    await fireEvent.click(screen.getByText("Reboot"));
    expect(screen.getByText("Reboot 2 phones? Calls in progress are cut.")).toBeTruthy();
    await fireEvent.click(screen.getByText("Cancel"));
    expect(calls).toEqual([]);
    await fireEvent.click(screen.getByText("Reboot"));
    await fireEvent.click(screen.getAllByText("Reboot").find((b) => b.getAttribute("data-action") === "reboot-confirm")!);
    await screen.findByText("Reboot");
    await new Promise((r) => setTimeout(r, 0));
    expect(calls).toEqual([{ selection: { kind: "devices", macs: [MAC, "000b82000002"] }, reboot: true, to: null }]);
    expect(toasts.items.at(-1)).toMatchObject({ tone: "ok", text: "Reboot of 2 phones: 2 took it" });
  });
});
