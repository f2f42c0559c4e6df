import { describe, expect, it } from "vitest";
import { fireEvent, render, screen } from "@testing-library/svelte";
import { mockIPC } from "@tauri-apps/api/mocks";
import ExportReport from "./ExportReport.svelte";
import { toasts } from "../../lib/stores/toasts.svelte";
import type { ReportFormat, ReportWritten } from "../../lib/api";

const written = (format: ReportFormat): ReportWritten => ({
  path: `/tmp/handover-acme.${format}`, format, site: "Acme", bytes: 2048,
  summary: { devices: 12, problems: 2, by_status: [] },
});

describe("ExportReport", () => {
  it("exports in the chosen format and names the file and the summary in a toast", async () => {
    const asked: string[] = [];
    mockIPC((cmd, args) => {
      if (cmd !== "export_report") return null;
      const format = (args as { format: ReportFormat }).format;
      asked.push(format);
      return written(format);
    });
    const { container } = render(ExportReport);
    await fireEvent.change(container.querySelector("[data-report-format]")!, { target: { value: "csv" } });
    await fireEvent.click(screen.getByText("Export report…"));
    await screen.findByText("Export report…");
    await new Promise((r) => setTimeout(r, 0));
    expect(asked).toEqual(["csv"]);
    expect(toasts.items.at(-1)).toMatchObject({ tone: "ok", text: "Saved the CSV report of Acme (12 phones, 2 with problems) to /tmp/handover-acme.csv (2.0 KB)" });
  });

  it("says nothing when the save dialog is cancelled", async () => {
    mockIPC((cmd) => (cmd === "export_report" ? null : null));
    const before = toasts.items.length;
    render(ExportReport);
    await fireEvent.click(screen.getByText("Export report…"));
    await screen.findByText("Export report…");
    await new Promise((r) => setTimeout(r, 0));
    expect(toasts.items.length).toBe(before);
  });
});
