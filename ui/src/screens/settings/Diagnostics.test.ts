import { describe, expect, it } from "vitest";
import { fireEvent, render, screen } from "@testing-library/svelte";
import { mockIPC } from "@tauri-apps/api/mocks";
import Diagnostics from "./Diagnostics.svelte";
import type { LogTail } from "../../lib/api";

describe("Diagnostics panel", () => {
  it("reads the log only when opened, and shows its file and last lines", async () => {
    const calls: string[] = [];
    const tail: LogTail = {
      folder: "/logs",
      file: "/logs/provdesk.2026-12-06.log",
      lines: ["INFO ProvDesk started", "WARN accept task panicked"],
      truncated: false,
    };
    mockIPC((cmd) => {
      calls.push(cmd);
      if (cmd === "diagnostics_log") return tail;
    });
    const { container } = render(Diagnostics);
    expect(calls).toEqual([]);
    const details = container.querySelector("details") as HTMLDetailsElement;
    details.open = true;
    await fireEvent(details, new Event("toggle"));
    expect(await screen.findByText("/logs/provdesk.2026-12-06.log")).toBeTruthy();
    expect(container.querySelector("[data-log]")?.textContent).toBe(
      "INFO ProvDesk started\nWARN accept task panicked",
    );
    expect(calls).toEqual(["diagnostics_log"]);
  });
});
