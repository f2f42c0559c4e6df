import { describe, expect, it } from "vitest";
import { fireEvent, render, screen } from "@testing-library/svelte";
import { mockIPC } from "@tauri-apps/api/mocks";
import Settings from "./Settings.svelte";
import type { DeskSettings, SettingsDto } from "../../lib/api";

const settings: DeskSettings = {
  server: { http: "0.0.0.0:8080", https: null, tftp: "0.0.0.0:69", base_path: "/", public_host: null },
  discovery: { auto_enroll_profile: null, max_discovered: 1000 },
  tls: { cert: null, key: null, client_ca: null, require_client_cert: false },
  auth: { mode: "none", realm: "ProvDesk" },
  access: { allow: [], tftp_device_files: false },
  encryption: { mode: "per-device" },
};

const dto: SettingsDto = {
  settings,
  file: "/desk/provdesk.toml",
  text: "[server]\nhttp = \"0.0.0.0:8080\"\n",
  interfaces: [{ interface: "eth0", ip: "192.168.1.10", ipv6: false, loopback: false }],
  tls: { source: "none yet", ca_file: null, cert_file: null },
};

describe("Settings screen", () => {
  it("is clean until edited, blocks saving a bad port, and sends the edited settings", async () => {
    const saves: DeskSettings[] = [];
    mockIPC((cmd, args) => {
      if (cmd === "read_settings") return dto;
      if (cmd === "desk_info") return null;
      if (cmd === "save_settings") {
        const sent = (args as { settings: DeskSettings }).settings;
        saves.push(sent);
        return { settings: { ...dto, settings: sent }, message: "Saved provdesk.toml (comments kept) and restarted the servers with the new settings." };
      }
    });
    render(Settings);
    const port = (await screen.findByLabelText("HTTP port")) as HTMLInputElement;
    const save = screen.getByRole("button", { name: "Save" }) as HTMLButtonElement;
    expect(save.disabled).toBe(true);
    expect(screen.getByText(/below 1024/)).toBeTruthy();

    await fireEvent.input(port, { target: { value: "99999" } });
    expect(screen.getByText("unsaved changes")).toBeTruthy();
    expect(screen.getByText(/1 to 65535/)).toBeTruthy();
    expect(save.disabled).toBe(true);

    await fireEvent.input(port, { target: { value: "8099" } });
    await fireEvent.input(screen.getByLabelText("new allow entry"), { target: { value: "10.0.0.0/33" } });
    expect(screen.getByText(/0 to 32/)).toBeTruthy();
    expect((screen.getByRole("button", { name: "Add" }) as HTMLButtonElement).disabled).toBe(true);
    await fireEvent.input(screen.getByLabelText("new allow entry"), { target: { value: "10.0.0.0/8" } });
    await fireEvent.click(screen.getByRole("button", { name: "Add" }));
    expect((screen.getByLabelText("allow entry 1") as HTMLInputElement).value).toBe("10.0.0.0/8");

    expect(save.disabled).toBe(false);
    await fireEvent.click(save);
    await screen.findByText(/restarted the servers with the new settings/, { selector: "[data-settings-message]" });
    expect(saves[0].server.http).toBe("0.0.0.0:8099");
    expect(saves[0].access.allow).toEqual(["10.0.0.0/8"]);
    expect(screen.queryByText("unsaved changes")).toBeNull();
  });

  it("says what each protocol enforces and sends the TFTP per-device choice", async () => {
    const saves: DeskSettings[] = [];
    mockIPC((cmd, args) => {
      if (cmd === "read_settings") return dto;
      if (cmd === "desk_info") return null;
      if (cmd === "save_settings") {
        const sent = (args as { settings: DeskSettings }).settings;
        saves.push(sent);
        return { settings: { ...dto, settings: sent }, message: "Saved provdesk.toml." };
      }
    });
    const { container } = render(Settings);
    const box = (await screen.findByLabelText(/per-device files over TFTP even while authentication is on/)) as HTMLInputElement;
    expect(box.checked).toBe(false);
    expect(container.querySelector("[data-note=allow]")?.textContent).toMatch(/HTTP, HTTPS and TFTP refuse any other peer/);
    expect(container.querySelector("[data-note=auth]")?.textContent).toMatch(/TFTP serves no per-device file \(cfg<mac>, cfg<mac>.bin, cfg<mac>.xml\)/);
    await fireEvent.click(box);
    await fireEvent.click(screen.getByRole("button", { name: "Save" }));
    await screen.findByText("Saved provdesk.toml.", { selector: "[data-settings-message]" });
    expect(saves[0].access.tftp_device_files).toBe(true);
  });

  it("explains [encryption] mode, warns when it is off, and sends the choice", async () => {
    const saves: DeskSettings[] = [];
    mockIPC((cmd, args) => {
      if (cmd === "read_settings") return dto;
      if (cmd === "desk_info") return null;
      if (cmd === "save_settings") {
        const sent = (args as { settings: DeskSettings }).settings;
        saves.push(sent);
        return { settings: { ...dto, settings: sent }, message: "Saved provdesk.toml." };
      }
    });
    const { container } = render(Settings);
    const mode = (await screen.findByLabelText(/Phone files/)) as HTMLSelectElement;
    expect(mode.value).toBe("per-device");
    expect(container.querySelector("[data-note=encryption]")?.textContent).toMatch(/^per-device: every phone's cfg<mac>.xml .* off: cfg<mac>.xml is served in clear; serve warns about it.$/);
    expect(screen.getByText(/servers that are running restart with it/)).toBeTruthy();
    expect(container.querySelector("[data-problem='encryption.mode']")).toBeNull();
    await fireEvent.change(mode, { target: { value: "off" } });
    expect(container.querySelector("[data-problem='encryption.mode']")?.textContent).toMatch(/reads its SIP password/);
    await fireEvent.click(screen.getByRole("button", { name: "Save" }));
    await screen.findByText("Saved provdesk.toml.", { selector: "[data-settings-message]" });
    expect(saves[0].encryption).toEqual({ mode: "off" });
  });

  it("shows the core's field-named problems next to the field", async () => {
    mockIPC((cmd) => {
      if (cmd === "read_settings") return dto;
      if (cmd === "save_settings") {
        throw {
          kind: "diagnostics",
          message: "provdesk.toml was not changed: fix the fields marked below and save again",
          diagnostics: [{ severity: "error", kind: "settings", field: "discovery.auto_enroll_profile", message: "discovery.auto_enroll_profile: there is no profile \"lobby\"" }],
        };
      }
    });
    render(Settings);
    const max = (await screen.findByDisplayValue("1000")) as HTMLInputElement;
    await fireEvent.input(max, { target: { value: "50" } });
    await fireEvent.click(screen.getByRole("button", { name: "Save" }));
    await screen.findByText('there is no profile "lobby"');
    expect(screen.getByText("unsaved changes")).toBeTruthy();
  });
});
