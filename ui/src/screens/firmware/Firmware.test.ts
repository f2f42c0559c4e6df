import { describe, expect, it } from "vitest";
import { fireEvent, render, screen, waitFor } from "@testing-library/svelte";
import { mockIPC } from "@tauri-apps/api/mocks";
import Firmware from "./Firmware.svelte";
import { toasts } from "../../lib/stores/toasts.svelte";
import type { FirmwareOverview } from "../../lib/api";

const address = {
  source: "unknown" as const, p237: null, p212: null, option66: null,
  message: "P237/P192 (where phones fetch config and firmware): not known until the servers start (they fill it from the address they listen on). Set a public host to name it now.",
};
const empty: FirmwareOverview = {
  files: [],
  affixes: [{ prefix: "gs_", postfix: "", devices: 3 }],
  missing: [{ model: "gxp2170", devices: 3, file: "gxp2170fw.bin" }],
  address,
};
const added: FirmwareOverview = {
  files: [{
    file: "gxp2170fw.bin", size: 2048, model: "gxp2170", version: "1.0.11.23", requests: ["gs_gxp2170fw.bin"],
    devices: [{ mac: "000b82000001", name: "Reception", model: "gxp2170", request: "gs_gxp2170fw.bin" }],
  }],
  affixes: empty.affixes,
  missing: [],
  address,
};

describe("Firmware screen", () => {
  it("shows the prefix in effect and missing models, and adds a typed path for the models given", async () => {
    const calls: Record<string, unknown>[] = [];
    mockIPC((cmd, args) => {
      if (cmd === "firmware_overview") return empty;
      if (cmd === "add_firmware") {
        calls.push(args as Record<string, unknown>);
        return { overview: added, message: "Added /dl/GXP2170.bin as firmware/gxp2170fw.bin." };
      }
    });
    render(Firmware);
    await screen.findByText(/have no firmware here/);
    expect(screen.getByText("gs_")).toBeTruthy();
    await fireEvent.input(screen.getByLabelText("firmware file path"), { target: { value: " /dl/GXP2170.bin " } });
    await fireEvent.input(screen.getByLabelText("models"), { target: { value: "gxp2170, gxp2160" } });
    await fireEvent.click(screen.getByRole("button", { name: "Add" }));
    await screen.findByText("gxp2170fw.bin");
    expect(calls[0]).toEqual({ path: " /dl/GXP2170.bin ", models: ["gxp2170", "gxp2160"] });
    expect(screen.getByText("1 device(s)")).toBeTruthy();
    // The version from the downloaded name, and where phones are told to fetch firmware.
    expect(screen.getByText("1.0.11.23").closest("[data-fw-version]")?.getAttribute("data-fw-version")).toBe("1.0.11.23");
    expect(screen.getByText(/Phones find the firmware server through P192\. P237\/P192 .*not known until the servers start/)).toBeTruthy();
    expect(screen.queryByText(/have no firmware here/)).toBeNull();
  });

  it("shows the desk's reason when a file cannot be firmware", async () => {
    mockIPC((cmd) => {
      if (cmd === "firmware_overview") return empty;
      if (cmd === "add_firmware") {
        throw { kind: "invalid", message: "GXP2170_1.0.11.23.bin is an HTML page (a saved error or download page?), not a firmware image: download the image itself from Grandstream" };
      }
    });
    render(Firmware);
    await screen.findByText(/have no firmware here/);
    await fireEvent.input(screen.getByLabelText("firmware file path"), { target: { value: "/dl/GXP2170_1.0.11.23.bin" } });
    await fireEvent.click(screen.getByRole("button", { name: "Add" }));
    await waitFor(() => expect(toasts.items.some((t) => t.tone === "error" && /^GXP2170_1\.0\.11\.23\.bin is an HTML page/.test(t.text))).toBe(true));
    expect((screen.getByLabelText("firmware file path") as HTMLInputElement).value).toBe("/dl/GXP2170_1.0.11.23.bin");
  });
});
