import { describe, expect, it } from "vitest";
import { fireEvent, render, screen, waitFor } from "@testing-library/svelte";
import { mockIPC } from "@tauri-apps/api/mocks";
import Devices from "./Devices.svelte";
import { app } from "../../lib/stores/app.svelte";
import { devices } from "../../lib/stores/devices.svelte";
import { dispatch } from "../../lib/stores/events.svelte";
import type { BuildSummary, Device, DeskInfo } from "../../lib/api";

// jsdom has no layout: the virtual list's `bind:clientHeight` needs a ResizeObserver that
// never fires, so the list keeps its default height and renders a screenful of rows.
globalThis.ResizeObserver ??= class {
  observe() {}
  unobserve() {}
  disconnect() {}
} as unknown as typeof ResizeObserver;

const device = (i: number, over: Partial<Device> = {}): Device => ({
  mac: `000b82${i.toString(16).padStart(6, "0")}`, model: "gxp2170", profile: "office", name: `Desk ${i}`, state: "inventory",
  vars: {}, secret_vars: {}, overrides: {}, first_seen: null, last_seen: null, last_ip: null, firmware_version: null, ...over,
});
const info: DeskInfo = {
  root: "/desk", settings_file: "provdesk.toml", settings_text: "", devices: 10000, discovered: 1, profiles: ["global", "office", "sales"],
  models: ["gxp2170"], catalog_entries: 0, catalog_diagnostics: [],
};
const build: BuildSummary = { published: true, build: 3, artifacts: 3, devices: 1, written: 3, removed: 0, unchanged: 0, errors: 0, diagnostics: [], held: [], elapsed_ms: 12 };

describe("Devices screen", () => {
  it("renders only the rows in view of 10,000, and enrolls a discovered phone with one click", async () => {
    const all = Array.from({ length: 10000 }, (_, i) => device(i + 1));
    const phone = device(0xabcdef, { state: "discovered", model: "gxp2135", name: null, profile: null });
    const calls: { cmd: string; args: unknown }[] = [];
    mockIPC((cmd, args) => {
      calls.push({ cmd, args });
      if (cmd === "list_devices") return calls.some((c) => c.cmd === "enroll") ? [...all, { ...phone, state: "inventory" }] : [...all, phone];
      if (cmd === "desk_info") return info;
      if (cmd === "enroll_check") return [];
      if (cmd === "enroll") return build;
      return null;
    });
    app.desk = info;
    const { container } = render(Devices);
    await waitFor(() => expect(screen.getByText("10000 in inventory")).toBeTruthy());
    expect(container.querySelectorAll("[data-mac]").length).toBeLessThan(50);
    expect(container.querySelector("[data-discovered]")?.textContent).toContain("00:0b:82:ab:cd:ef");
    await fireEvent.click(container.querySelector("[data-enroll='000b82abcdef']")!);
    await waitFor(() => expect(screen.getByText("10001 in inventory")).toBeTruthy());
    expect(calls.find((c) => c.cmd === "enroll")?.args).toMatchObject({ macs: ["000b82abcdef"], profile: null });
    // Checked first; nothing missing, so no question asked.
    expect(calls.findIndex((c) => c.cmd === "enroll_check")).toBeLessThan(calls.findIndex((c) => c.cmd === "enroll"));
    expect(container.querySelector("[data-dialog='enroll-confirm']")).toBeNull();
    expect(container.querySelector("[data-discovered]")).toBeNull();
  });

  it("names the variables phones would lack before enrolling, and enrolls only when told to", async () => {
    const phones = [
      device(0xabcd01, { state: "discovered", profile: null, name: null }),
      device(0xabcd02, { state: "discovered", profile: null, name: null }),
    ];
    const calls: { cmd: string; args: unknown }[] = [];
    mockIPC((cmd, args) => {
      calls.push({ cmd, args });
      if (cmd === "list_devices") return [device(1), ...phones];
      if (cmd === "desk_info") return info;
      if (cmd === "enroll_check") return [{ mac: "000b82abcd02", missing: ["ext", "sip_secret"] }];
      if (cmd === "enroll") return { ...build, held: [{ mac: "000b82abcd02", diagnostics: [] }] };
      return null;
    });
    app.desk = info;
    const { container } = render(Devices);
    await waitFor(() => expect(container.querySelector("[data-discovered]")).not.toBeNull());
    await fireEvent.change(screen.getByLabelText("Profile for enrolled phones"), { target: { value: "office" } });

    await fireEvent.click(screen.getByRole("button", { name: "Enroll all" }));
    const dialog = await waitFor(() => {
      const d = container.querySelector("[data-dialog='enroll-confirm']");
      expect(d).not.toBeNull();
      return d!;
    });
    expect(calls.find((c) => c.cmd === "enroll_check")?.args).toMatchObject({ macs: ["000b82abcd01", "000b82abcd02"], profile: "office" });
    expect(dialog.querySelector("[data-missing]")?.textContent).toContain("00:0b:82:ab:cd:02 lacks ext, sip_secret");
    expect(dialog.querySelector("[data-missing]")?.textContent).not.toContain("00:0b:82:ab:cd:01");
    expect(dialog.querySelector("[data-explanation]")?.textContent).toMatch(/"needs attention": it gets no config/);
    expect(calls.some((c) => c.cmd === "enroll")).toBe(false);

    await fireEvent.click(screen.getByRole("button", { name: "Cancel" }));
    expect(container.querySelector("[data-dialog='enroll-confirm']")).toBeNull();
    expect(calls.some((c) => c.cmd === "enroll")).toBe(false);

    await fireEvent.click(container.querySelector("[data-enroll='000b82abcd02']")!);
    await fireEvent.click(await screen.findByRole("button", { name: "Enroll anyway" }));
    await waitFor(() => expect(calls.some((c) => c.cmd === "enroll")).toBe(true));
    expect(calls.filter((c) => c.cmd === "enroll").map((c) => c.args)).toEqual([{ macs: ["000b82abcd02"], profile: "office" }]);
    expect(container.querySelector("[data-dialog='enroll-confirm']")).toBeNull();
  });

  it("assigns the chosen profile to the selected rows in one call", async () => {
    const calls: { cmd: string; args: unknown }[] = [];
    mockIPC((cmd, args) => {
      calls.push({ cmd, args });
      if (cmd === "list_devices") return [device(1), device(2), device(3)];
      if (cmd === "desk_info") return info;
      if (cmd === "assign_profile") return build;
      return null;
    });
    app.desk = info;
    devices.selected.clear();
    const { container } = render(Devices);
    await waitFor(() => expect(container.querySelectorAll("[data-mac]").length).toBe(3));
    await fireEvent.click(container.querySelector("[data-mac='000b82000001'] input")!);
    await fireEvent.click(container.querySelector("[data-mac='000b82000003'] input")!);
    expect(container.querySelector("[data-bulk]")?.textContent).toContain("2 selected");
    await fireEvent.change(container.querySelector("[data-bulk-profile]")!, { target: { value: "sales" } });
    await fireEvent.click(container.querySelector("[data-action='assign']")!);
    await waitFor(() => expect(calls.some((c) => c.cmd === "assign_profile")).toBe(true));
    const args = calls.find((c) => c.cmd === "assign_profile")?.args as { macs: string[]; profile: string };
    expect([...args.macs].sort()).toEqual(["000b82000001", "000b82000003"]);
    expect(args.profile).toBe("sales");
  });

  it("shows each phone's status from the list itself, in the Live tiles' colour, the reason as a tooltip", async () => {
    const a = device(1, { status: { state: "up-to-date" }, status_label: "up to date" });
    const b = device(2, { status: { state: "needs-attention", reason: "variable ext is not set" }, status_label: "needs attention" });
    const c = device(3, { status: { state: "never-seen" }, status_label: "never seen" });
    const d = device(4);
    const calls: string[] = [];
    mockIPC((cmd) => {
      calls.push(cmd);
      if (cmd === "list_devices") return [a, b, c, d];
      if (cmd === "desk_info") return info;
      return null;
    });
    app.desk = info;
    const { container } = render(Devices);
    await waitFor(() => expect(container.querySelector("[data-mac='000b82000002'] [data-status]")).not.toBeNull());
    expect(screen.getByRole("columnheader", { name: "Status" })).toBeTruthy();
    const ok = container.querySelector("[data-mac='000b82000001'] .status")!;
    expect(ok.textContent).toBe("up to date");
    expect(ok.classList.contains("ok")).toBe(true);
    expect(ok.getAttribute("title")).toBeNull();
    const bad = container.querySelector("[data-mac='000b82000002'] .status")!;
    expect(bad.textContent).toBe("needs attention");
    expect(bad.classList.contains("err")).toBe(true);
    expect(bad.getAttribute("title")).toBe("variable ext is not set");
    expect(container.querySelector("[data-mac='000b82000003'] .status")?.classList.contains("idle")).toBe(true);
    // No status sent: a dash, not a guess.
    expect(container.querySelector("[data-mac='000b82000004'] .status")?.textContent).toBe("—");
    // The Live board is not asked: the list carries its own status.
    expect(calls).not.toContain("live_board");
  });

  it("reloads the list when the desk says devices changed or a build finished", async () => {
    let listed = [device(1)];
    mockIPC((cmd) => {
      if (cmd === "list_devices") return listed;
      if (cmd === "desk_info") return info;
      return null;
    });
    app.desk = info;
    const { container } = render(Devices);
    await waitFor(() => expect(container.querySelectorAll("[data-mac]").length).toBe(1));
    listed = [device(1), device(2, { status: { state: "stale" }, status_label: "stale" })];
    dispatch({ event: "devices-changed", macs: ["000b82000002"], all: false });
    await waitFor(() => expect(container.querySelectorAll("[data-mac]").length).toBe(2));
    listed = [device(1, { status: { state: "up-to-date" }, status_label: "up to date" }), listed[1]];
    dispatch({ event: "build-finished", ...build });
    await waitFor(() => expect(container.querySelector("[data-mac='000b82000001'] .status")?.textContent).toBe("up to date"));
  });

  it("keeps the bulk bar's place when a row is ticked, so the list does not move under the pointer", async () => {
    mockIPC((cmd) => {
      if (cmd === "list_devices") return [device(1), device(2)];
      if (cmd === "desk_info") return info;
      return null;
    });
    app.desk = info;
    devices.selected.clear();
    const { container } = render(Devices);
    await waitFor(() => expect(container.querySelectorAll("[data-mac]").length).toBe(2));
    const screenEl = container.querySelector(".screen")!;
    // The children of the screen, in order: what could push the table down.
    const layout = () => [...screenEl.children].map((el) => `${el.tagName}.${[...el.classList].filter((k) => !k.startsWith("svelte-") && k !== "active").join(".")}`);
    const before = layout();
    const bar = container.querySelector("[data-bulk]");
    expect(bar).not.toBeNull();
    expect(bar?.classList.contains("active")).toBe(false);
    expect(bar?.textContent).not.toContain("selected");
    await fireEvent.click(container.querySelector("[data-mac='000b82000001'] input")!);
    expect(container.querySelector("[data-bulk]")).toBe(bar);
    expect(bar?.classList.contains("active")).toBe(true);
    expect(bar?.textContent).toContain("1 selected");
    expect(layout()).toEqual(before);
    await fireEvent.click(container.querySelector("[data-mac='000b82000001'] input")!);
    expect(container.querySelector("[data-bulk]")).toBe(bar);
    expect(layout()).toEqual(before);
  });
});
