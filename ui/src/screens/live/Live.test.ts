import { describe, expect, it } from "vitest";
import { render } from "@testing-library/svelte";
import { mockIPC } from "@tauri-apps/api/mocks";
import Live from "./Live.svelte";
import type { ServerStatus } from "../../lib/api";

const running: ServerStatus = {
  running: true,
  urls: [{ protocol: "tftp", url: "tftp://127.0.0.1:6969", address: "127.0.0.1:6969" }],
  option66: "tftp://127.0.0.1:6969", p237: "127.0.0.1:6969", p212: "0", errors: [],
  configured: { http: null, https: null, tftp: "127.0.0.1:6969" }, first_build: null,
  access: {
    protocols: [{ protocol: "tftp", enforces: "allow-list 10.99.99.0/24, no authentication possible; per-device files withheld while HTTP authentication is on" }],
    warnings: [{ setting: "access.tftp_device_files", message: "tftp_device_files = true: TFTP hands out per-device files without authentication" }],
  },
};

describe("Live screen", () => {
  it("says what each running protocol enforces and warns about the trade-offs, in serve's words", async () => {
    mockIPC((cmd) => {
      if (cmd === "server_status") return running;
      if (cmd === "live_board") return [];
      return null;
    });
    const { container, findByText } = render(Live);
    await findByText(/per-device files withheld while HTTP authentication is on/);
    const line = container.querySelector("[data-access-protocol=tftp]");
    expect(line?.textContent).toContain("TFTP");
    expect(line?.textContent).toContain("allow-list 10.99.99.0/24");
    const warning = container.querySelector("[data-access-warning='access.tftp_device_files']");
    expect(warning?.textContent).toContain("without authentication");
  });
});
