import { describe, expect, it } from "vitest";
import { fireEvent, render, screen } from "@testing-library/svelte";
import { mockIPC } from "@tauri-apps/api/mocks";
import DevicePage from "./DevicePage.svelte";
import { dispatch } from "../../lib/stores/events.svelte";
import type { DeviceDetail } from "../../lib/api";

const plain = "<gs_provision>\n  <P34>sip-pw</P34>\n  <P35>201</P35>\n</gs_provision>\n";
const detail: DeviceDetail = {
  device: {
    mac: "000b82000001", model: "gxp2170", profile: "office", name: "Reception", state: "inventory",
    vars: { ext: "201", acct: "hunter2secret", pin_label: "Desk 4" },
    // The core's flags: `acct` feeds P34 whatever it is called; `pin_label` feeds nothing secret.
    secret_vars: { ext: false, acct: true, pin_label: false },
    overrides: { P34: "override-pw", P3: "Front" },
    first_seen: null, last_seen: null, last_ip: null, firmware_version: null,
  },
  params: [
    { p: "P34", value: "override-pw", source: { kind: "device-override" }, label: "Password", page: "Account 1", secret: true, server_filled: false },
    { p: "P35", value: "201", source: { kind: "file", path: "profiles/office.toml", line: 6 }, label: "User ID", page: "Account 1", secret: false, server_filled: false },
    { p: "P237", value: "192.0.2.1:8080", source: { kind: "server" }, label: "Config Server Path", page: "Maintenance", secret: false, server_filled: true },
  ],
  diagnostics: [],
  files: [{
    name: "cfg000b82000001.xml", kind: "device-xml", file: "build/cfg000b82000001.xml", encrypted: true, size: 200, version: 1,
    text: plain, masked: plain.replace("sip-pw", "••••••"), secrets: 1, note: null,
  }],
  history: [{ id: 1, ts: 0, protocol: "http", peer: "192.0.2.9:1", name: "cfg000b82000001.xml", mac: "000b82000001", user_agent: null, status: "404", reason: "unknown device", bytes: 0, duration_ms: 3, artifact_hash: null }],
  serving: true,
  address: {
    source: "listen-address", p237: "192.0.2.1:8080", p212: "1", option66: "http://192.0.2.1:8080",
    message: "Phones are given 192.0.2.1:8080 (P237/P192): the servers fill it in from the address they listen on. Set a public host if phones reach this machine by another name.",
  },
};

describe("DevicePage", () => {
  it("shows files decrypted but masked, with the badge, until secrets are revealed", async () => {
    mockIPC((cmd) => (cmd === "device_detail" ? detail : null));
    const { container } = render(DevicePage, { mac: "000b82000001", onclose: () => {}, onedit: () => {} });
    await fireEvent.click(await screen.findByText(/Files served \(1\)/));
    const pre = () => container.querySelector("[data-file-text]")?.textContent ?? "";
    expect(pre()).toContain("<P34>••••••</P34>");
    expect(pre()).not.toContain("sip-pw");
    expect(pre()).toContain("<P35>201</P35>");
    expect(container.querySelector("[data-encrypted]")?.textContent).toContain("encrypted on the wire");
    expect(screen.getByText("1 secret value(s) masked")).toBeTruthy();
    await fireEvent.click(container.querySelector("[data-reveal-files]")!);
    expect(pre()).toContain("<P34>sip-pw</P34>");
  });

  it("masks secret overrides and lists requests with their reason", async () => {
    mockIPC((cmd) => (cmd === "device_detail" ? detail : null));
    const { container } = render(DevicePage, { mac: "000b82000001", onclose: () => {}, onedit: () => {} });
    await fireEvent.click(await screen.findByText(/Variables/));
    expect(container.textContent).not.toContain("override-pw");
    expect(screen.getByText("Front")).toBeTruthy();
    expect(container.textContent).not.toContain("hunter2secret");
    expect(screen.getByText("Desk 4")).toBeTruthy();
    expect(screen.getByText("201")).toBeTruthy();
    await fireEvent.click(screen.getAllByLabelText("Show secrets")[0]);
    expect(container.textContent).toContain("hunter2secret");
    expect(container.textContent).toContain("override-pw");
    await fireEvent.click(screen.getByText(/Requests \(1\)/));
    expect(container.querySelector("[data-history]")?.textContent).toMatch(/404\s*unknown device/);
  });

  it("marks the values the servers fill in and says which address phones are given", async () => {
    mockIPC((cmd) => (cmd === "device_detail" ? detail : null));
    const { container } = render(DevicePage, { mac: "000b82000001", onclose: () => {}, onedit: () => {} });
    await screen.findByText("Reception");
    const filled = [...container.querySelectorAll("[data-server-filled]")].map((b) => b.closest("tr")?.getAttribute("data-p"));
    expect(filled).toEqual(["P237"]);
    // The desk's sentence, word for word: the one Settings and Live show.
    const served = container.querySelector("[data-served]");
    expect(served?.textContent).toContain("from the running servers.");
    expect(served?.textContent).toContain(detail.address.message);
    expect(served?.getAttribute("data-phone-address")).toBe("listen-address");
  });

  it("updates on its own when the desk says this device changed, and only then", async () => {
    let name = "Reception";
    let loads = 0;
    mockIPC((cmd) => {
      if (cmd !== "device_detail") return null;
      loads++;
      return { ...detail, device: { ...detail.device, name }, diagnostics: name === "Reception" ? [{ severity: "error", kind: "x", message: "old problem" }] : [] };
    });
    const { container } = render(DevicePage, { mac: "000b82000001", onclose: () => {}, onedit: () => {} });
    await screen.findByText("old problem");
    const before = loads;
    dispatch({ event: "devices-changed", macs: ["000b82000002"], all: false });
    await Promise.resolve();
    expect(loads).toBe(before);
    name = "Front desk";
    dispatch({ event: "devices-changed", macs: ["000b82000001"], all: false });
    await screen.findByText("Front desk");
    expect(container.textContent).not.toContain("old problem");
  });
});
