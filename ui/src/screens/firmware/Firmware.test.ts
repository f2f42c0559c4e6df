import { describe, expect, it } from "vitest";
import { fireEvent, render, screen } from "@testing-library/svelte";
import { mockIPC } from "@tauri-apps/api/mocks";
import Firmware from "./Firmware.svelte";
import type { FirmwareOverview } from "../../lib/api";

const empty: FirmwareOverview = {
  files: [],
  affixes: [{ prefix: "gs_", postfix: "", devices: 3 }],
  missing: [{ model: "gxp2170", devices: 3, file: "gxp2170fw.bin" }],
};
const added: FirmwareOverview = {
  files: [{
    file: "gxp2170fw.bin", size: 2048, model: "gxp2170", requests: ["gs_gxp2170fw.bin"],
    devices: [{ mac: "000b82000001", name: "Reception", model: "gxp2170", request: "gs_gxp2170fw.bin" }],
  }],
  affixes: empty.affixes,
  missing: [],
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
    expect(screen.queryByText(/have no firmware here/)).toBeNull();
  });
});
