import { describe, expect, it } from "vitest";
import { fireEvent, render } from "@testing-library/svelte";
import { mockIPC } from "@tauri-apps/api/mocks";
import Live from "./Live.svelte";
import { app } from "../../lib/stores/app.svelte";
import type { DeskBuildStatus, ServerStatus } from "../../lib/api";

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
      if (cmd === "live_history") return [];
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

  it("lists a failed build's diagnostics, each linked to where it is fixed", async () => {
    const failed: DeskBuildStatus = {
      running: false, elapsed_ms: 0, devices: 1, error: null,
      summary: {
        published: false, build: 3, artifacts: 0, devices: 1, written: 0, removed: 0, unchanged: 0,
        errors: 2, held: [], elapsed_ms: 4,
        diagnostics: [
          { severity: "error", kind: "undefined-variable", message: "undefined variable `ext`", file: "profiles/office.toml", line: 7, device: "000b82001003" },
          { severity: "error", kind: "settings", message: "bad listen address", file: "provdesk.toml", line: 3 },
          { severity: "warning", kind: "catalog", message: "unknown P-value P99999", file: "catalog/extra.toml", line: 2 },
        ],
      },
    };
    mockIPC((cmd) => {
      if (cmd === "server_status") return { ...running, running: false, urls: [], access: null };
      if (cmd === "live_board") return [];
      if (cmd === "live_history") return [];
      if (cmd === "desk_build_status") return failed;
      return null;
    });
    const { container, findByText } = render(Live);
    await findByText("undefined variable `ext`");
    const problems = [...container.querySelectorAll("[data-build-problem]")];
    expect(problems.map((p) => p.getAttribute("data-build-problem"))).toEqual(["error", "error", "warning"]);
    expect(problems[0].querySelector("[data-problem-device]")?.textContent).toContain("000b82001003");
    expect(problems[2].querySelector("[data-problem-link]")).toBeNull();
    expect(problems[2].textContent).toContain("catalog/extra.toml:2");
    const toSettings = problems[1].querySelector("[data-problem-link=settings]") as HTMLElement;
    await fireEvent.click(toSettings);
    expect(app.screen).toBe("settings");
    const toProfile = problems[0].querySelector("[data-problem-link=profile]") as HTMLElement;
    expect(toProfile.textContent).toBe("profiles/office.toml:7");
    await fireEvent.click(toProfile);
    expect(app.profileTarget).toEqual({ file: "profiles/office.toml", line: 7 });
    expect(app.screen).toBe("profiles");
  });
});
