import { describe, expect, it, vi } from "vitest";
import { fireEvent, render, screen, waitFor } from "@testing-library/svelte";
import { tick } from "svelte";
import { mockIPC } from "@tauri-apps/api/mocks";
import Profiles from "./Profiles.svelte";
import { app } from "../../lib/stores/app.svelte";
import { dispatch } from "../../lib/stores/events.svelte";
import type { BuildSummary, ProfileDoc, ProfileSummary } from "../../lib/api";

const doc = (text: string, revision: string): ProfileDoc => ({
  name: "office", kind: "profile", file: "profiles/office.toml", revision, text,
  layers: ["profiles/global.toml", "profiles/office.toml"], extends: "global", model: null,
  own: [{ p: "P47", value: text.match(/P47 = "(.*)"/)?.[1] ?? "", line: 3, violations: [], variables: [] }],
  inherited: [], diagnostics: [],
});
const build: BuildSummary = { published: true, build: 2, artifacts: 40, devices: 20, written: 21, removed: 0, unchanged: 19, errors: 0, diagnostics: [], held: [], elapsed_ms: 35 };

const summary = (name: string, parent: string | null): ProfileSummary =>
  ({ name, kind: name === "global" ? "global" : name.startsWith("models/") ? "model" : "profile", file: `profiles/${name}.toml`, extends: parent, params: 0, errors: 0 });

/** What the mocked core says about a value with a space in it (shown verbatim). */
const REFUSAL = "P47: “pbx example” is not a host name or an IP address";

/** An IPC mock over one file whose text a test can change "on disk"; `create_profile` adds to
 * the list, or fails with `createError` when a test sets one. */
function desk(initial: string) {
  const disk = {
    text: initial, revision: "r1",
    profiles: [summary("global", null), summary("office", "global"), summary("lab", "global"), summary("models/gxp2170", null)],
    created: [] as { name: string; parent: string | null }[],
    reads: [] as string[],
    createError: null as { kind: string; message: string } | null,
    saves: [] as (string | null)[],
  };
  mockIPC((cmd, args) => {
    switch (cmd) {
      case "list_profiles":
        return { profiles: disk.profiles, diagnostics: [] };
      case "create_profile": {
        const a = args as { name: string; parent: string | null };
        if (disk.createError) throw disk.createError;
        disk.created.push({ name: a.name, parent: a.parent });
        disk.profiles = [...disk.profiles, summary(a.name, a.parent ?? "global")];
        return { doc: { ...doc("", "r1"), name: a.name, file: `profiles/${a.name}.toml` }, build, warnings: [] };
      }
      case "read_profile": {
        const name = (args as { name: string }).name;
        disk.reads.push(name);
        const d = doc(disk.text, disk.revision);
        if (name === "office") return d;
        const file = `profiles/${name}.toml`;
        return { ...d, name, file, kind: name.startsWith("models/") ? "model" : name === "global" ? "global" : "profile", layers: [file] };
      }
      case "profile_revision":
        return disk.revision;
      case "catalog_entries":
        return [];
      case "build":
        return build;
      case "save_profile_value": {
        const a = args as { p: string; value: string | null };
        disk.saves.push(a.value);
        if (a.value?.includes(" ")) throw { kind: "invalid", message: "1 problem", diagnostics: [{ severity: "error", kind: "catalog-wrong-type", message: REFUSAL, field: a.p }] };
        Object.assign(disk, { text: `extends = "global"\n[params]\nP47 = "${a.value}"\n`, revision: `r${disk.saves.length + 1}` });
        return { doc: doc(disk.text, disk.revision), build, warnings: [] };
      }
    }
    return null;
  });
  return disk;
}

/** What the desk says when a profile file changes (saved, or edited by hand). */
const changed = (...files: string[]) => dispatch({ event: "profiles-changed", files });

describe("Profiles editor and outside edits", () => {
  it("shows the layers and reloads a file the desk says changed on disk, saying what the rebuild did", async () => {
    const disk = desk('extends = "global"\n[params]\nP47 = "a"\n');
    const { container } = render(Profiles);
    await screen.findByText("office", { selector: "h1" });
    expect(container.querySelector("[data-layers]")?.textContent).toMatch(/global\s*→\s*office/);
    Object.assign(disk, { text: 'extends = "global"\n[params]\nP47 = "b"\n', revision: "r2" });
    changed("profiles/office.toml");
    await waitFor(() => expect(container.querySelector("[data-save-status]")?.textContent).toBe("profiles/office.toml changed on disk: reloaded; rebuilt 21 files in 35 ms"));
    await fireEvent.click(screen.getByText("Raw TOML"));
    expect((container.querySelector("[data-raw]") as HTMLTextAreaElement).value).toContain('P47 = "b"');
  });

  it("checks the file again when the window regains focus", async () => {
    const disk = desk('extends = "global"\n[params]\nP47 = "a"\n');
    const { container } = render(Profiles);
    await screen.findByText("office", { selector: "h1" });
    Object.assign(disk, { text: 'extends = "global"\n[params]\nP47 = "c"\n', revision: "r2" });
    app.refresh++; // what a window focus does
    await waitFor(() => expect(container.querySelector("[data-save-status]")?.textContent).toMatch(/changed on disk: reloaded/));
  });

  it("does not poll: nothing is read until the desk announces a change", async () => {
    const disk = desk('extends = "global"\n[params]\nP47 = "a"\n');
    // The screen's effects run as it mounts; the test library's own waiting uses intervals too.
    const interval = vi.spyOn(window, "setInterval");
    render(Profiles);
    await tick();
    expect(interval).not.toHaveBeenCalled();
    interval.mockRestore();
    await screen.findByText("office", { selector: "h1" });
    const reads = disk.reads.length;
    changed("profiles/global.toml"); // another layer: what office inherits may have changed
    await waitFor(() => expect(disk.reads.length).toBe(reads + 1));
  });

  it("keeps unsaved raw text and asks when the file changes under it", async () => {
    const disk = desk('extends = "global"\n[params]\nP47 = "a"\n');
    const { container } = render(Profiles);
    await screen.findByText("office", { selector: "h1" });
    await fireEvent.click(screen.getByText("Raw TOML"));
    const raw = container.querySelector("[data-raw]") as HTMLTextAreaElement;
    await fireEvent.input(raw, { target: { value: 'extends = "global"\n[params]\nP47 = "mine"\n' } });
    Object.assign(disk, { text: 'extends = "global"\n[params]\nP47 = "theirs"\n', revision: "r2" });
    changed("profiles/office.toml");
    await waitFor(() => expect(container.querySelector("[data-conflict]")?.textContent).toMatch(/changed outside ProvDesk while you had unsaved changes/));
    expect(raw.value).toContain('"mine"');
    // Another layer changing leaves the unsaved text alone too.
    changed("profiles/global.toml");
    expect(raw.value).toContain('"mine"');
    await fireEvent.click(screen.getByText("Load the file's version"));
    await waitFor(() => expect((container.querySelector("[data-raw]") as HTMLTextAreaElement).value).toContain('"theirs"'));
    expect(container.querySelector("[data-conflict]")).toBeNull();
  });
});

describe("Opening a file from a diagnostic", () => {
  const text = 'extends = "global"\n[params]\nP47 = "a"\nP48 = \n';

  it("selects the file, shows it raw with the line selected, then clears the target", async () => {
    desk(text);
    const { container } = render(Profiles);
    await screen.findByText("office", { selector: "h1" });
    app.openProfile("profiles/office.toml", 4);
    expect(app.screen).toBe("profiles");
    const raw = await waitFor(() => {
      const area = container.querySelector("[data-raw]") as HTMLTextAreaElement;
      expect(area).not.toBeNull();
      return area;
    });
    await waitFor(() => expect(container.querySelector("[data-target-line]")?.getAttribute("data-target-line")).toBe("4"));
    expect(raw.value.slice(raw.selectionStart, raw.selectionEnd)).toBe("P48 = ");
    expect(document.activeElement).toBe(raw);
    expect(app.profileTarget).toBeNull();
  });

  it("opens a model file by its path, without a line too", async () => {
    desk(text);
    const { container } = render(Profiles);
    await screen.findByText("office", { selector: "h1" });
    app.openProfile("profiles/models/gxp2170.toml", null);
    await screen.findByText("models/gxp2170", { selector: "h1" });
    expect(container.querySelector("[data-profile='models/gxp2170']")?.classList.contains("active")).toBe(true);
    expect(container.querySelector("[data-raw]")).not.toBeNull();
    expect(container.querySelector("[data-target-line]")).toBeNull();
    expect(app.profileTarget).toBeNull();
  });
});

describe("Fields view saves", () => {
  const input = (c: Element) => c.querySelector("[data-field='P47'] input") as HTMLInputElement;
  const sign = (c: Element) => c.querySelector("[data-field='P47'] [data-field-status]")?.textContent;

  it("marks an edit unsaved, saves it on blur through the core, then says saved", async () => {
    const disk = desk('extends = "global"\n[params]\nP47 = "a"\n');
    const { container } = render(Profiles);
    await waitFor(() => expect(input(container)?.value).toBe("a"));
    await fireEvent.input(input(container), { target: { value: "pbx.example.org" } });
    expect(sign(container)).toBe("unsaved");
    await fireEvent.blur(input(container));
    await waitFor(() => expect(sign(container)).toBe("saved"));
    expect(disk.saves).toEqual(["pbx.example.org"]);
    expect(input(container).value).toBe("pbx.example.org");
    expect(container.querySelector("[data-save-status]")?.textContent).toBe("P47 saved in profiles/office.toml; rebuilt 21 files in 35 ms");
  });

  it("keeps a refused value with the core's message, and reverts to the saved one", async () => {
    const disk = desk('extends = "global"\n[params]\nP47 = "a"\n');
    const { container } = render(Profiles);
    await waitFor(() => expect(input(container)?.value).toBe("a"));
    await fireEvent.input(input(container), { target: { value: "pbx example" } });
    await fireEvent.keyDown(input(container), { key: "Enter" });
    await waitFor(() => expect(sign(container)).toBe("not saved"));
    expect(input(container).value).toBe("pbx example");
    expect(container.querySelector("[data-field='P47'] [data-rejected]")?.textContent).toBe(REFUSAL);
    expect(disk.saves).toEqual(["pbx example"]);
    expect(disk.text).toContain('P47 = "a"');
    await fireEvent.keyDown(input(container), { key: "Escape" });
    expect(input(container).value).toBe("a");
    expect(sign(container)).toBe("");
    expect(container.querySelector("[data-rejected]")).toBeNull();
  });
});

describe("New profile dialog", () => {
  async function openDialog() {
    const view = render(Profiles);
    await screen.findByText("office", { selector: "h1" });
    await fireEvent.click(view.container.querySelector("[data-action='new-profile']")!);
    const dialog = view.container.querySelector("dialog[data-dialog='new-profile']") as HTMLDialogElement;
    expect(dialog?.open).toBe(true);
    return { ...view, dialog };
  }
  const field = <T extends Element>(dialog: Element, sel: string) => dialog.querySelector(sel) as T;

  it("opens in the window, not a browser prompt, showing the parent it would use", async () => {
    desk('extends = "global"\n[params]\nP47 = "a"\n');
    const prompt = vi.spyOn(window, "prompt");
    const { dialog } = await openDialog();
    expect(prompt).not.toHaveBeenCalled();
    const parent = field<HTMLSelectElement>(dialog, "[data-new-profile-parent]");
    expect([...parent.options].map((o) => o.textContent)).toEqual(["none (only global)", "office", "lab"]);
    expect(parent.value).toBe("office"); // the selected profile, shown rather than implied
    expect(field<HTMLButtonElement>(dialog, "[data-action='create-profile']").disabled).toBe(true);
    prompt.mockRestore();
  });

  it("creates the profile with the chosen name and parent, then selects it", async () => {
    const disk = desk('extends = "global"\n[params]\nP47 = "a"\n');
    const { container, dialog } = await openDialog();
    await fireEvent.input(field(dialog, "[data-new-profile-name]"), { target: { value: "sales" } });
    await fireEvent.change(field(dialog, "[data-new-profile-parent]"), { target: { value: "lab" } });
    await fireEvent.click(field(dialog, "[data-action='create-profile']"));
    await waitFor(() => expect(container.querySelector("[data-profile='sales']")?.classList.contains("active")).toBe(true));
    expect(disk.created).toEqual([{ name: "sales", parent: "lab" }]);
    expect(container.querySelector("dialog[data-dialog='new-profile']")).toBeNull();
  });

  it("sends no parent for “none (only global)”", async () => {
    const disk = desk('extends = "global"\n[params]\nP47 = "a"\n');
    const { container, dialog } = await openDialog();
    await fireEvent.input(field(dialog, "[data-new-profile-name]"), { target: { value: "lobby" } });
    await fireEvent.change(field(dialog, "[data-new-profile-parent]"), { target: { value: "" } });
    await fireEvent.click(field(dialog, "[data-action='create-profile']"));
    await waitFor(() => expect(container.querySelector("[data-profile='lobby']")).not.toBeNull());
    expect(disk.created).toEqual([{ name: "lobby", parent: null }]);
  });

  it("shows the core's message and keeps what was typed when the name is refused", async () => {
    const disk = desk('extends = "global"\n[params]\nP47 = "a"\n');
    const message = `"my profile" is not a profile name: use letters, digits, '-' and '_' (e.g. office)`;
    disk.createError = { kind: "invalid", message };
    const { dialog } = await openDialog();
    await fireEvent.input(field(dialog, "[data-new-profile-name]"), { target: { value: "my profile" } });
    await fireEvent.change(field(dialog, "[data-new-profile-parent]"), { target: { value: "lab" } });
    await fireEvent.click(field(dialog, "[data-action='create-profile']"));
    await waitFor(() => expect(dialog.querySelector("[data-new-profile-error]")?.textContent).toBe(message));
    expect(dialog.open).toBe(true);
    expect(field<HTMLInputElement>(dialog, "[data-new-profile-name]").value).toBe("my profile");
    expect(field<HTMLSelectElement>(dialog, "[data-new-profile-parent]").value).toBe("lab");
  });

  it("Cancel closes the dialog and creates nothing", async () => {
    const disk = desk('extends = "global"\n[params]\nP47 = "a"\n');
    const { container, dialog } = await openDialog();
    await fireEvent.input(field(dialog, "[data-new-profile-name]"), { target: { value: "sales" } });
    await fireEvent.click(screen.getByText("Cancel"));
    await waitFor(() => expect(container.querySelector("dialog[data-dialog='new-profile']")).toBeNull());
    expect(disk.created).toEqual([]);
    expect(container.querySelector("[data-profile='sales']")).toBeNull();
  });
});
