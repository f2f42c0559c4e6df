import { describe, expect, it } from "vitest";
import { fireEvent, render, screen, waitFor } from "@testing-library/svelte";
import { mockIPC } from "@tauri-apps/api/mocks";
import Settings from "./Settings.svelte";
import { dispatch } from "../../lib/stores/events.svelte";
import type { DeskSettings, Diagnostic, SettingsView } from "../../lib/api";

const settings: DeskSettings = {
  server: { http: "0.0.0.0:8080", https: null, tftp: "0.0.0.0:69", base_path: "/", public_host: null },
  discovery: { auto_enroll_profile: null, max_discovered: 1000 },
  tls: { cert: null, key: null, client_ca: null, require_client_cert: false },
  auth: { mode: "none", realm: "ProvDesk" },
  access: { allow: [], tftp_device_files: false, device_files: "any" },
  limits: { tftp_transfers: 256, tftp_transfers_per_address: 8, http_connections: 1024, http_connections_per_address: 32 },
  encryption: { mode: "per-device" },
};

const dto: SettingsView = {
  settings,
  file: "/desk/provdesk.toml",
  text: "[server]\nhttp = \"0.0.0.0:8080\"\n",
  interfaces: [{ interface: "eth0", ip: "192.168.1.10", ipv6: false, loopback: false }],
  tls: { source: "none yet", ca_file: null, cert_file: null },
  address: {
    source: "unknown", p237: null, p212: null, option66: null,
    message: "P237/P192 (where phones fetch config and firmware): not known until the servers start (they fill it from the address they listen on). Set a public host to name it now.",
  },
};

/** What the desk's validate_settings answers in these tests (its real rules are tested in
 * crates/desk): a port out of range and a /33 prefix. */
function desk(settings: DeskSettings): Diagnostic[] {
  const out: Diagnostic[] = [];
  if (settings.server.http?.endsWith(":99999")) {
    out.push({ severity: "error", kind: "settings", field: "server.http", message: 'server.http: port "99999" is not a port: use a number from 1 to 65535' });
  }
  settings.access.allow.forEach((entry, i) => {
    if (entry.endsWith("/33")) {
      out.push({ severity: "error", kind: "settings", field: `access.allow[${i}]`, message: `access.allow[${i}]: ${entry}: the prefix must be 0 to 32 for IPv4` });
    }
  });
  return out;
}

/** Clicks Save once the desk has checked the form (it is disabled until then). */
async function clickSave() {
  const save = screen.getByRole("button", { name: "Save" }) as HTMLButtonElement;
  await waitFor(() => expect(save.disabled).toBe(false));
  await fireEvent.click(save);
}

describe("Settings screen", () => {
  it("is clean until edited, blocks saving on the desk's verdict, and sends the edited settings", async () => {
    const saves: DeskSettings[] = [];
    mockIPC((cmd, args) => {
      if (cmd === "read_settings") return dto;
      if (cmd === "validate_settings") return desk((args as { settings: DeskSettings }).settings);
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
    expect((await screen.findByText(/1 to 65535/)).dataset.problem).toBe("server.http");
    expect(save.disabled).toBe(true);

    await fireEvent.input(port, { target: { value: "8099" } });
    await fireEvent.input(screen.getByLabelText("new allow entry"), { target: { value: "10.0.0.0/33" } });
    expect((await screen.findByText(/0 to 32/)).dataset.problem).toBe("allow-new");
    expect((screen.getByRole("button", { name: "Add" }) as HTMLButtonElement).disabled).toBe(true);
    await fireEvent.input(screen.getByLabelText("new allow entry"), { target: { value: "10.0.0.0/8" } });
    await waitFor(() => expect(screen.queryByText(/0 to 32/)).toBeNull());
    await fireEvent.click(screen.getByRole("button", { name: "Add" }));
    expect((screen.getByLabelText("allow entry 1") as HTMLInputElement).value).toBe("10.0.0.0/8");

    await waitFor(() => expect(save.disabled).toBe(false));
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
      if (cmd === "validate_settings") return desk((args as { settings: DeskSettings }).settings);
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
    await clickSave();
    await screen.findByText("Saved provdesk.toml.", { selector: "[data-settings-message]" });
    expect(saves[0].access.tftp_device_files).toBe(true);
  });

  it("sends device files bound to their owner", async () => {
    const saves: DeskSettings[] = [];
    mockIPC((cmd, args) => {
      if (cmd === "read_settings") return dto;
      if (cmd === "validate_settings") return desk((args as { settings: DeskSettings }).settings);
      if (cmd === "desk_info") return null;
      if (cmd === "save_settings") {
        const sent = (args as { settings: DeskSettings }).settings;
        saves.push(sent);
        return { settings: { ...dto, settings: sent }, message: "Saved provdesk.toml." };
      }
    });
    render(Settings);
    const box = (await screen.findByLabelText(/each phone's own files only to that phone/)) as HTMLInputElement;
    expect(box.checked).toBe(false);
    await fireEvent.click(box);
    await clickSave();
    await screen.findByText("Saved provdesk.toml.", { selector: "[data-settings-message]" });
    expect(saves[0].access.device_files).toBe("owner");
  });

  it("explains [encryption] mode, warns when it is off, and sends the choice", async () => {
    const saves: DeskSettings[] = [];
    mockIPC((cmd, args) => {
      if (cmd === "read_settings") return dto;
      if (cmd === "validate_settings") return desk((args as { settings: DeskSettings }).settings);
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
    await clickSave();
    await screen.findByText("Saved provdesk.toml.", { selector: "[data-settings-message]" });
    expect(saves[0].encryption).toEqual({ mode: "off" });
  });

  it("shows the core's field-named problems next to the field", async () => {
    mockIPC((cmd) => {
      if (cmd === "read_settings") return dto;
      if (cmd === "validate_settings") return [];
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
    await clickSave();
    await screen.findByText('there is no profile "lobby"');
    expect(screen.getByText("unsaved changes")).toBeTruthy();
  });

  it("tells where phones are pointed, the desk's one story, and follows the servers", async () => {
    let view = dto;
    mockIPC((cmd) => {
      if (cmd === "read_settings") return view;
      if (cmd === "validate_settings") return [];
    });
    const { container } = render(Settings);
    await screen.findByText(/not known until the servers start \(they fill it from the address they listen on\)/);
    expect(container.querySelector("[data-phone-address]")?.getAttribute("data-phone-address")).toBe("unknown");
    expect(container.textContent).not.toMatch(/are not filled in/);
    view = {
      ...dto,
      address: { source: "listen-address", p237: "192.168.1.10:8080", p212: "1", option66: "http://192.168.1.10:8080", message: "Phones are given 192.168.1.10:8080 (P237/P192): the servers fill it in from the address they listen on." },
    };
    dispatch({ event: "servers-changed", running: true });
    await screen.findByText(/Phones are given 192.168.1.10:8080/);
  });
});
