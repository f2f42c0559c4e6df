import { describe, expect, it, vi } from "vitest";
import { fireEvent, render } from "@testing-library/svelte";
import TileBoard from "./TileBoard.svelte";
import type { Tile } from "../../lib/api";

const tile = (mac: string, over: Partial<Tile> = {}): Tile => ({
  mac, name: `Desk ${mac.slice(-2)}`, model: "gxp2170", profile: "office", state: "inventory", last_ip: null,
  status: { state: "never-seen" }, label: "never seen", last_request: null, last_syslog: null, ...over,
});

describe("TileBoard", () => {
  it("shows the phone's newest syslog line under its last request", () => {
    const { container } = render(TileBoard, {
      tiles: [
        tile("000b82000001", { last_syslog: { at_ms: Date.now(), text: "err GS_LOG: SIP registration failed" } }),
        tile("000b82000002"),
      ],
      onpick: vi.fn(),
    });
    const line = container.querySelector("[data-tile='000b82000001'] [data-syslog]");
    expect(line?.textContent).toContain("SIP registration failed");
    expect(line?.getAttribute("title")).toBe("err GS_LOG: SIP registration failed");
    expect(container.querySelector("[data-tile='000b82000002'] [data-syslog]")).toBeNull();
  });

  it("shows status colour, firmware progress, the stale badge and a denial's reason", async () => {
    const onpick = vi.fn();
    const { container } = render(TileBoard, {
      tiles: [
        tile("000b82000001", { status: { state: "up-to-date" }, label: "up to date", last_request: { at_ms: Date.now(), name: "cfg000b82000001.xml", status: "200" } }),
        tile("000b82000002", { status: { state: "firmware-in-progress", percent: 45 }, label: "firmware 45%" }),
        tile("000b82000003", { status: { state: "stale" }, label: "stale" }),
        tile("000b82000004", { status: { state: "denied", reason: "wrong password for admin" }, label: "denied" }),
      ],
      onpick,
    });
    const at = (mac: string) => container.querySelector(`[data-tile='${mac}']`) as HTMLElement;
    expect(at("000b82000001").classList.contains("ok")).toBe(true);
    expect(at("000b82000001").textContent).toContain("cfg000b82000001.xml");
    expect(at("000b82000002").querySelector("[role='progressbar']")?.getAttribute("aria-valuenow")).toBe("45");
    expect(at("000b82000001").querySelector("[role='progressbar']")).toBeNull();
    expect(at("000b82000003").querySelector("[data-stale]")).not.toBeNull();
    expect(at("000b82000001").querySelector("[data-stale]")).toBeNull();
    expect(at("000b82000004").classList.contains("err")).toBe(true);
    expect(at("000b82000004").textContent).toContain("wrong password for admin");
    await fireEvent.click(at("000b82000003").querySelector("button")!);
    expect(onpick).toHaveBeenCalledWith("000b82000003");
  });

  it("draws only the rows of a large desk in view, those needing attention first", () => {
    const tiles = Array.from({ length: 1000 }, (_, i) => tile(`000b8201${i.toString(16).padStart(4, "0")}`));
    tiles[700] = tile(tiles[700].mac, { status: { state: "failed", reason: "file not found" }, label: "failed" });
    const { container } = render(TileBoard, { tiles });
    const drawn = [...container.querySelectorAll<HTMLElement>("[data-tile]")];
    expect(drawn.length).toBeGreaterThan(0);
    expect(drawn.length).toBeLessThan(100);
    expect(drawn[0].dataset.tile).toBe(tiles[700].mac);
    expect(drawn[0].dataset.status).toBe("failed");
    expect(drawn[0].querySelector("[data-label]")?.textContent).toBe("failed");
    expect(container.textContent).toContain("1000 devices");
  });

  it("says what to do when there are no devices", () => {
    const { container } = render(TileBoard, { tiles: [] });
    expect(container.textContent).toContain("Devices screen");
  });
});
