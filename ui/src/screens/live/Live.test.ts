import { describe, expect, it } from "vitest";
import { fireEvent, render } from "@testing-library/svelte";
import { mockIPC } from "@tauri-apps/api/mocks";
import Live from "./Live.svelte";
import { app } from "../../lib/stores/app.svelte";
import type { DeskBuildStatus, PhoneAddress, ServerStatus } from "../../lib/api";

// The desk's sentences (provdesk_desk::address), as the servers running and stopped give them.
const listening: PhoneAddress = {
  source: "listen-address", p237: "127.0.0.1:6969", p212: "0", option66: "tftp://127.0.0.1:6969",
  message: "Phones are given 127.0.0.1:6969 (P237/P192): the servers fill it in from the address they listen on. Set a public host if phones reach this machine by another name.",
};
const unknown: PhoneAddress = {
  source: "unknown", p237: null, p212: null, option66: null,
  message: "P237/P192 (where phones fetch config and firmware): not known until the servers start (they fill it from the address they listen on). Set a public host to name it now.",
};

const running: ServerStatus = {
  running: true,
  urls: [{ protocol: "tftp", url: "tftp://127.0.0.1:6969", address: "127.0.0.1:6969" }],
  option66: "tftp://127.0.0.1:6969", p237: "127.0.0.1:6969", p212: "0", errors: [], address: listening,
  configured: { http: null, https: null, tftp: "127.0.0.1:6969" }, first_build: null,
  access: {
    protocols: [{ protocol: "tftp", enforces: "allow-list 10.99.99.0/24, no authentication possible; per-device files withheld while HTTP authentication is on" }],
    warnings: [{ setting: "access.tftp_device_files", message: "tftp_device_files = true: TFTP hands out per-device files without authentication" }],
  },
  lan: { dhcp: null, pnp: null },
};

function serving(status: ServerStatus) {
  mockIPC((cmd) => {
    if (cmd === "server_status") return status;
    if (cmd === "live_board") return [];
    if (cmd === "live_history") return [];
    if (cmd === "lan_interfaces" || cmd === "dhcp_leases") return [];
    return null;
  });
}

describe("Live screen", () => {
  it("shows the address phones are given in the desk's words, next to P237 and option 66", async () => {
    serving(running);
    const { container, findByText } = render(Live);
    await findByText(listening.message);
    expect(container.querySelector("[data-p237]")?.textContent).toBe("127.0.0.1:6969");
    expect(container.querySelector("[data-option66]")?.textContent).toBe("tftp://127.0.0.1:6969");
    const line = container.querySelector("[data-phone-address]");
    expect(line?.getAttribute("data-phone-address")).toBe("listen-address");
    expect(line?.textContent).toBe(listening.message);
    // One sentence, the desk's: no second one of the screen's own.
    expect(container.querySelectorAll("[data-phone-address]")).toHaveLength(1);
    expect(container.textContent).not.toContain("Phones are told this server's address");
  });

  it("says where phones will be pointed before the servers start, from the same story", async () => {
    const publicHost: PhoneAddress = {
      source: "public-host", p237: "prov.example.com:8080", p212: "1", option66: "http://prov.example.com:8080",
      message: "Phones are given prov.example.com:8080 (P237/P192): the public host from the settings, with the configured port.",
    };
    for (const address of [unknown, publicHost]) {
      serving({ ...running, running: false, urls: [], access: null, address, p237: address.p237, option66: address.option66, p212: address.p212 });
      const { container, findByText, unmount } = render(Live);
      await findByText(address.message);
      expect(container.querySelector("[data-phone-address]")?.getAttribute("data-phone-address")).toBe(address.source);
      // Stopped, the start form shows instead of the values to copy.
      expect(container.querySelector("[data-p237]")).toBeNull();
      expect(container.querySelector("[data-action=start-servers]")).not.toBeNull();
      unmount();
    }
  });

  it("says what each running protocol enforces and warns about the trade-offs, in serve's words", async () => {
    mockIPC((cmd) => {
      if (cmd === "server_status") return running;
      if (cmd === "live_board") return [];
      if (cmd === "live_history") return [];
    if (cmd === "lan_interfaces" || cmd === "dhcp_leases") return [];
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
    if (cmd === "lan_interfaces" || cmd === "dhcp_leases") return [];
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
