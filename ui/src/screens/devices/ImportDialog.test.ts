import { describe, expect, it } from "vitest";
import { fireEvent, render, screen } from "@testing-library/svelte";
import { mockIPC } from "@tauri-apps/api/mocks";
import ImportDialog from "./ImportDialog.svelte";
import type { ImportResult } from "../../lib/api";

const result: ImportResult = {
  rows: [{ line: 2, update: false, device: { mac: "000b82000001", model: "gxp2170", profile: "office", name: "Reception", state: "inventory", vars: { ext: "201", sip_secret: "x", acct: "hunter2secret", pin_label: "Desk 4" }, secret_vars: { ext: false, sip_secret: true, acct: true, pin_label: false }, overrides: {}, first_seen: null, last_seen: null, last_ip: null, firmware_version: null } }],
  diagnostics: [{ severity: "error", kind: "csv-row", message: "invalid MAC \"zz\"", line: 3 }],
  new: 1, updated: 0, bad: 1, refused: true, imported: null, incomplete: [], build: null, message: "1 problem(s): nothing imported",
};

describe("ImportDialog", () => {
  it("checks with a dry run, shows rows and per-row errors, and blocks the import until bad rows are skipped", async () => {
    const calls: Record<string, unknown>[] = [];
    mockIPC((cmd, args) => {
      if (cmd === "import_csv") {
        calls.push(args as Record<string, unknown>);
        return result;
      }
    });
    render(ImportDialog, { onclose: () => {} });
    await fireEvent.input(screen.getByLabelText("CSV text"), { target: { value: "mac,model\n00:0b:82:00:00:01,gxp2170\nzz,gxp2170\n" } });
    await fireEvent.click(screen.getByText("Check (dry run)"));
    await screen.findByText("00:0b:82:00:00:01");
    expect(calls[0]).toMatchObject({ dryRun: true, skipBad: true });
    expect(screen.getAllByText(/invalid MAC/).length).toBeGreaterThan(0);
    const vars = screen.getByText(/ext=201/).textContent ?? "";
    expect(vars).toContain("sip_secret=••••");
    // Masked by the core's flags, not by the name.
    expect(vars).toContain("acct=••••");
    expect(vars).not.toContain("hunter2secret");
    expect(vars).toContain("pin_label=Desk 4");
    const importButton = screen.getByRole("button", { name: /Import 1 device/ });
    expect((importButton as HTMLButtonElement).disabled).toBe(true);
    await fireEvent.click(screen.getByLabelText("Skip bad rows"));
    expect((importButton as HTMLButtonElement).disabled).toBe(false);
  });

  it("says what it is doing while a long import runs", async () => {
    let release: (r: ImportResult) => void = () => {};
    mockIPC((cmd, args) => {
      if (cmd !== "import_csv") return;
      const a = args as { dryRun: boolean };
      if (a.dryRun) return { ...result, diagnostics: [], bad: 0 };
      return new Promise<ImportResult>((resolve) => (release = resolve));
    });
    render(ImportDialog, { onclose: () => {} });
    await fireEvent.input(screen.getByLabelText("CSV text"), { target: { value: "mac,model\n00:0b:82:00:00:01,gxp2170\n" } });
    await fireEvent.click(screen.getByText("Check (dry run)"));
    await screen.findByText("00:0b:82:00:00:01");
    await fireEvent.click(screen.getByRole("button", { name: /Import 1 device/ }));
    const working = await screen.findByRole("status");
    expect(working.textContent).toContain("Importing 1 device(s) and rebuilding their files");
    release({ ...result, diagnostics: [], bad: 0, imported: 1, message: "imported 1 device(s)" });
  });
});
