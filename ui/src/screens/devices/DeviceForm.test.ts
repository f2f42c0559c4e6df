import { describe, expect, it } from "vitest";
import { fireEvent, render, screen, waitFor } from "@testing-library/svelte";
import { mockIPC } from "@tauri-apps/api/mocks";
import DeviceForm from "./DeviceForm.svelte";
import type { BuildSummary } from "../../lib/api";

const build: BuildSummary = { published: true, build: 3, artifacts: 3, devices: 1, written: 3, removed: 0, unchanged: 0, errors: 0, diagnostics: [], held: [], elapsed_ms: 12 };

describe("DeviceForm", () => {
  it("names the variables the desk says are missing and saves as incomplete only when told", async () => {
    const adds: { device: { incomplete: boolean; vars: Record<string, string> } }[] = [];
    mockIPC((cmd, args) => {
      if (cmd === "add_device") {
        const call = args as (typeof adds)[number];
        adds.push(call);
        if (!call.device.incomplete)
          throw {
            kind: "invalid",
            message: 'profile "office" uses the variable(s) sip_secret that 000b82000009 does not define',
            diagnostics: [{ severity: "error", kind: "missing-variable", message: "000b82000009 does not define sip_secret", field: "sip_secret", device: "000b82000009" }],
          };
        return build;
      }
      if (cmd === "list_devices") return [];
      return null;
    });
    let closed = false;
    const { container } = render(DeviceForm, { device: null, onclose: () => (closed = true) });
    await fireEvent.input(screen.getByPlaceholderText("00:0b:82:12:34:56"), { target: { value: "000b82000009" } });
    await fireEvent.input(screen.getByPlaceholderText("gxp2170"), { target: { value: "gxp2170" } });
    await fireEvent.input(screen.getByPlaceholderText("ext=201"), { target: { value: "ext=209" } });
    await fireEvent.click(screen.getByRole("button", { name: "Add" }));
    const error = await waitFor(() => {
      const e = container.querySelector("[data-form-error]");
      expect(e).not.toBeNull();
      return e!;
    });
    expect(error.textContent).toContain("variable(s) sip_secret");
    expect(error.textContent).toContain("save it as incomplete");
    expect(closed).toBe(false);
    await fireEvent.click(container.querySelector("[data-action='save-incomplete']")!);
    await waitFor(() => expect(closed).toBe(true));
    expect(adds.map((a) => a.device.incomplete)).toEqual([false, true]);
    expect(adds[1].device.vars).toEqual({ ext: "209" });
  });
});
