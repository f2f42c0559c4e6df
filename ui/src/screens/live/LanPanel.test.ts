import { describe, expect, it } from "vitest";
import { fireEvent, render, waitFor } from "@testing-library/svelte";
import { mockIPC } from "@tauri-apps/api/mocks";
import LanPanel from "./LanPanel.svelte";
import { lan, LanStore } from "../../lib/stores/lan.svelte";
import { live } from "../../lib/stores/live.svelte";
import type { DhcpPreflight, LanInterface, LeaseRow, ServerStatus } from "../../lib/api";

const eth0: LanInterface = { name: "eth0", address: "192.0.2.2", prefix: 24, up: true };
const eth1: LanInterface = { name: "eth1", address: "198.51.100.2", prefix: 24, up: false };

const NOW_S = Math.floor(Date.now() / 1000);
const lease: LeaseRow = {
  mac: "000b82001003", address: "192.0.2.50", expires_at: NOW_S + 3600, expired: false,
  hostname: null, vendor_class: "Grandstream GXP2170", device: "Reception",
};

const running = (dhcp: string | null = null, pnp: string | null = null): ServerStatus => ({
  running: true, urls: [], option66: null, p237: null, p212: null, errors: [],
  address: { source: "listen-address", p237: null, p212: null, option66: null, message: "" },
  configured: { http: null, https: null, tftp: null }, first_build: null, access: null,
  lan: { dhcp, pnp },
});

const clear: DhcpPreflight = { interface: "eth0", address: "192.0.2.2", rivals: [], message: "no other DHCP server answered on eth0" };
const rival: DhcpPreflight = {
  interface: "eth0", address: "192.0.2.2", message: "another DHCP server answers on eth0: 192.0.2.1 offers 192.0.2.100",
  rivals: [{ server: "192.0.2.1", offered: "192.0.2.100", router: "192.0.2.1", option66: "tftp.example", message: "another DHCP server answers on eth0" }],
};

/** Answers the panel's commands; records every call with its arguments. */
function backend(preflight: () => DhcpPreflight) {
  const calls: [string, unknown][] = [];
  mockIPC((cmd, args) => {
    calls.push([cmd, args]);
    if (cmd === "lan_interfaces") return [eth0, eth1];
    if (cmd === "dhcp_leases") return [lease];
    if (cmd === "dhcp_preflight") return preflight();
    if (cmd === "set_dhcp") return running((args as { interface: string | null }).interface);
    if (cmd === "set_plug_and_play") return running(null, (args as { interface: string | null }).interface);
    return null;
  });
  return calls;
}

function fresh(status: ServerStatus | null) {
  live.status = status;
  lan.chosen = "";
  lan.preflight = null;
  lan.error = null;
  lan.warnings = [];
  localStorage.clear();
}

describe("the DHCP and plug-and-play panel", () => {
  it("lists the interfaces and the leases", async () => {
    backend(() => clear);
    fresh(running());
    const { container } = render(LanPanel);
    await waitFor(() => expect(container.querySelectorAll("[data-lease-row]")).toHaveLength(1));
    const options = [...container.querySelectorAll("[data-lan-interface-option]")].map((o) => o.getAttribute("value"));
    expect(options).toEqual(["eth0", "eth1"]);
    // The first interface that is up is picked when nothing was chosen before.
    expect((container.querySelector("[data-lan-interface]") as HTMLInputElement).value).toBe("eth0");
    expect(container.querySelector("[data-lan-picked]")?.textContent).toBe("192.0.2.2/24");
    const cells = [...container.querySelectorAll("[data-lease-row] td")].map((td) => td.textContent);
    expect(cells[0]).toBe("00:0b:82:00:10:03");
    expect(cells[1]).toBe("Reception");
    expect(cells[2]).toBe("192.0.2.50");
    expect(cells[3]).toMatch(/^(59|60) min$/);
    expect(cells[4]).toBe("Grandstream GXP2170");
  });

  it("shows a clear pre-flight before DHCP starts, then the switch is on", async () => {
    const calls = backend(() => clear);
    fresh(running());
    const { container } = render(LanPanel);
    await waitFor(() => expect((container.querySelector("[data-lan-interface]") as HTMLInputElement).value).toBe("eth0"));
    const box = container.querySelector("[data-switch=dhcp]") as HTMLInputElement;
    box.checked = true;
    await fireEvent.change(box);
    await waitFor(() => expect(live.status?.lan.dhcp).toBe("eth0"));
    const order = calls.map(([c]) => c).filter((c) => c === "dhcp_preflight" || c === "set_dhcp");
    expect(order).toEqual(["dhcp_preflight", "set_dhcp"]);
    expect(calls.find(([c]) => c === "set_dhcp")?.[1]).toEqual({ interface: "eth0" });
    expect(container.querySelector("[data-preflight]")?.getAttribute("data-preflight-clear")).toBe("true");
    expect(container.querySelector("[data-preflight]")?.textContent).toContain("no other DHCP server answered on eth0");
    await waitFor(() => expect((container.querySelector("[data-switch=dhcp]") as HTMLInputElement).checked).toBe(true));
    expect(localStorage.getItem("provdesk.lan.interface")).toBe("eth0");
  });

  it("refuses to start DHCP when another server answers, and names it", async () => {
    const calls = backend(() => rival);
    fresh(running());
    const { container } = render(LanPanel);
    await waitFor(() => expect((container.querySelector("[data-lan-interface]") as HTMLInputElement).value).toBe("eth0"));
    const box = container.querySelector("[data-switch=dhcp]") as HTMLInputElement;
    box.checked = true;
    await fireEvent.change(box);
    await waitFor(() => expect(container.querySelector("[data-preflight]")).not.toBeNull());
    expect(container.querySelector("[data-preflight]")?.getAttribute("data-preflight-clear")).toBe("false");
    expect(container.querySelector("[data-rival='192.0.2.1']")?.textContent).toContain("tftp.example");
    await waitFor(() => expect(box.checked).toBe(false));
    expect(calls.some(([c]) => c === "set_dhcp")).toBe(false);
  });

  it("shows why an interface cannot be used, and the servers' own DHCP warnings", async () => {
    mockIPC((cmd) => {
      if (cmd === "lan_interfaces" || cmd === "dhcp_leases") return [];
      if (cmd === "dhcp_preflight") throw { kind: "invalid", message: 'interface "nosuch0" has no IPv4 address (interfaces here: eth0, lo)' };
      return null;
    });
    fresh(null);
    const { container, findByText } = render(LanPanel);
    // Stopped: the switches wait for the servers, the check does not.
    expect((container.querySelector("[data-switch=dhcp]") as HTMLInputElement).disabled).toBe(true);
    expect((container.querySelector("[data-switch=pnp]") as HTMLInputElement).disabled).toBe(true);
    const input = container.querySelector("[data-lan-interface]") as HTMLInputElement;
    await fireEvent.input(input, { target: { value: "nosuch0" } });
    await fireEvent.click(container.querySelector("[data-action=dhcp-preflight]") as HTMLElement);
    await findByText(/"nosuch0" has no IPv4 address/);
    lan.onWarnings(["DHCP on eth0: cannot listen on port 67: permission denied"]);
    await findByText("DHCP on eth0: cannot listen on port 67: permission denied");
  });

  it("switches plug-and-play on the chosen interface", async () => {
    const calls = backend(() => clear);
    fresh(running());
    const { container } = render(LanPanel);
    await waitFor(() => expect((container.querySelector("[data-lan-interface]") as HTMLInputElement).value).toBe("eth0"));
    const box = container.querySelector("[data-switch=pnp]") as HTMLInputElement;
    box.checked = true;
    await fireEvent.change(box);
    await waitFor(() => expect(live.status?.lan.pnp).toBe("eth0"));
    expect(calls.some(([c]) => c === "dhcp_preflight")).toBe(false);
    expect(calls.find(([c]) => c === "set_plug_and_play")?.[1]).toEqual({ interface: "eth0" });
  });
});

describe("a lease's time left", () => {
  const at = (expires_at: number, expired = false): LeaseRow => ({ ...lease, expires_at, expired });
  it("counts down in seconds, minutes and hours", () => {
    const now = 1_000_000 * 1000;
    expect(LanStore.expiresIn(at(1_000_030), now)).toBe("30 s");
    expect(LanStore.expiresIn(at(1_000_000 + 42 * 60), now)).toBe("42 min");
    expect(LanStore.expiresIn(at(1_000_000 + 3 * 3600 + 5 * 60), now)).toBe("3 h 5 min");
    expect(LanStore.expiresIn(at(999_999), now)).toBe("expired");
    expect(LanStore.expiresIn(at(1_000_030, true), now)).toBe("expired");
  });
});
