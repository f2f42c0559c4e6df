import { describe, expect, it } from "vitest";
import { mockIPC } from "@tauri-apps/api/mocks";
import { DeviceStore, compare, concerns, matches } from "./devices.svelte";
import type { Device } from "../api";

const device = (mac: string, over: Partial<Device> = {}): Device => ({
  mac, model: "gxp2170", profile: "office", name: null, state: "inventory", vars: {}, secret_vars: {}, overrides: {},
  first_seen: null, last_seen: null, last_ip: null, firmware_version: null, ...over,
});

describe("device store", () => {
  it("filters by words, MAC with colons, and variables", () => {
    const d = device("000b82000001", { name: "Reception", vars: { ext: "201" } });
    expect(matches(d, "recep")).toBe(true);
    expect(matches(d, "00:0b:82:00:00:01")).toBe(true);
    expect(matches(d, "201 gxp")).toBe(true);
    expect(matches(d, "sales")).toBe(false);
  });

  it("sorts by MAC as numbers: 00:0b:82:12:… before 00:0b:82:aa:…", () => {
    const rows = [device("000b82aa0001"), device("000b82120001"), device("000b8212aaaa")];
    expect(rows.sort((a, b) => compare(a, b, "mac")).map((d) => d.mac)).toEqual(["000b82120001", "000b8212aaaa", "000b82aa0001"]);
  });

  it("loads over IPC, splits discovered phones, sorts and selects", async () => {
    mockIPC((cmd) => {
      if (cmd === "list_devices")
        return [device("000b82000002", { name: "bob" }), device("000b82000001", { name: "carol" }), device("000b820000ff", { state: "discovered" })];
    });
    const store = new DeviceStore();
    await store.load();
    expect(store.inventory.length).toBe(2);
    expect(store.discovered.map((d) => d.mac)).toEqual(["000b820000ff"]);
    expect(store.visible.map((d) => d.mac)).toEqual(["000b82000001", "000b82000002"]);
    store.sortBy("name");
    expect(store.visible.map((d) => d.name)).toEqual(["bob", "carol"]);
    store.sortBy("name");
    expect(store.visible.map((d) => d.name)).toEqual(["carol", "bob"]);
    store.toggleAll();
    expect(store.selected.size).toBe(2);
    store.toggleAll();
    expect(store.selected.size).toBe(0);
    store.query = "carol";
    store.toggleAll();
    expect([...store.selected]).toEqual(["000b82000001"]);
  });

  it("says which desk events concern the list and which a device's page", () => {
    const changed = { event: "devices-changed" as const, macs: ["000b82000001"], all: false };
    expect(concerns(changed)).toBe(true);
    expect(concerns(changed, "000b82000001")).toBe(true);
    expect(concerns(changed, "000b82000002")).toBe(false);
    expect(concerns({ event: "devices-changed", macs: [], all: true }, "000b82000002")).toBe(true);
    expect(concerns({ event: "discovered", mac: "000b82000009", model: null, ip: "192.0.2.9" })).toBe(true);
    expect(concerns({ event: "discovered", mac: "000b82000009", model: null, ip: "192.0.2.9" }, "000b82000001")).toBe(false);
    expect(concerns({ event: "profiles-changed", files: ["profiles/office.toml"] })).toBe(false);
    expect(concerns({ event: "servers-changed", running: true }, "000b82000001")).toBe(false);
  });

  it("folds loads asked for while one runs into one more, and every caller gets the fresh list", async () => {
    let calls = 0;
    mockIPC((cmd) => {
      if (cmd === "list_devices") {
        calls++;
        return [device(`000b8200000${calls}`)];
      }
    });
    const store = new DeviceStore();
    const first = store.load();
    const second = store.load();
    const third = store.load();
    await Promise.all([first, second, third]);
    expect(calls).toBe(2);
    expect(store.all.map((d) => d.mac)).toEqual(["000b82000002"]);
  });

  it("sorts by the desk's status label", () => {
    const a = device("000b82000001", { status: { state: "up-to-date" }, status_label: "up to date" });
    const b = device("000b82000002", { status: { state: "needs-attention", reason: "x" }, status_label: "needs attention" });
    expect([a, b].sort((x, y) => compare(x, y, "status")).map((d) => d.mac)).toEqual(["000b82000002", "000b82000001"]);
  });
});
