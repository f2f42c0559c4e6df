import { describe, expect, it } from "vitest";
import { fireEvent, render, screen, waitFor } from "@testing-library/svelte";
import { mockIPC } from "@tauri-apps/api/mocks";
import Profiles from "./Profiles.svelte";
import { app } from "../../lib/stores/app.svelte";
import type { BuildSummary, ProfileDoc } from "../../lib/api";

const doc = (text: string, revision: string): ProfileDoc => ({
  name: "office", kind: "profile", file: "profiles/office.toml", revision, text,
  layers: ["profiles/global.toml", "profiles/office.toml"], extends: "global", model: null,
  own: [{ p: "P47", value: text.match(/P47 = "(.*)"/)?.[1] ?? "", line: 3, violations: [], variables: [] }],
  inherited: [], diagnostics: [],
});
const build: BuildSummary = { published: true, build: 2, artifacts: 40, devices: 20, written: 21, removed: 0, unchanged: 19, errors: 0, diagnostics: [], held: [], elapsed_ms: 35 };

/** An IPC mock over one file whose text a test can change "on disk". */
function desk(initial: string) {
  const disk = { text: initial, revision: "r1" };
  mockIPC((cmd) => {
    switch (cmd) {
      case "list_profiles":
        return { profiles: [{ name: "global", kind: "global", file: "profiles/global.toml", extends: null, params: 0, errors: 0 }, { name: "office", kind: "profile", file: "profiles/office.toml", extends: "global", params: 1, errors: 0 }], diagnostics: [] };
      case "read_profile":
        return doc(disk.text, disk.revision);
      case "profile_revision":
        return disk.revision;
      case "catalog_entries":
        return [];
      case "build":
        return build;
    }
    return null;
  });
  return disk;
}

describe("Profiles editor and outside edits", () => {
  it("shows the layers and reloads a file changed on disk, saying what the rebuild did", async () => {
    const disk = desk('extends = "global"\n[params]\nP47 = "a"\n');
    const { container } = render(Profiles);
    await screen.findByText("office", { selector: "h1" });
    expect(container.querySelector("[data-layers]")?.textContent).toMatch(/global\s*→\s*office/);
    Object.assign(disk, { text: 'extends = "global"\n[params]\nP47 = "b"\n', revision: "r2" });
    app.refresh++; // what a window focus does
    await waitFor(() => expect(container.querySelector("[data-save-status]")?.textContent).toBe("profiles/office.toml changed on disk: reloaded; rebuilt 21 files in 35 ms"));
    await fireEvent.click(screen.getByText("Raw TOML"));
    expect((container.querySelector("[data-raw]") as HTMLTextAreaElement).value).toContain('P47 = "b"');
  });

  it("keeps unsaved raw text and asks when the file changes under it", async () => {
    const disk = desk('extends = "global"\n[params]\nP47 = "a"\n');
    const { container } = render(Profiles);
    await screen.findByText("office", { selector: "h1" });
    await fireEvent.click(screen.getByText("Raw TOML"));
    const raw = container.querySelector("[data-raw]") as HTMLTextAreaElement;
    await fireEvent.input(raw, { target: { value: 'extends = "global"\n[params]\nP47 = "mine"\n' } });
    Object.assign(disk, { text: 'extends = "global"\n[params]\nP47 = "theirs"\n', revision: "r2" });
    app.refresh++;
    await waitFor(() => expect(container.querySelector("[data-conflict]")).not.toBeNull());
    expect(raw.value).toContain('"mine"');
    await fireEvent.click(screen.getByText("Load the file's version"));
    await waitFor(() => expect((container.querySelector("[data-raw]") as HTMLTextAreaElement).value).toContain('"theirs"'));
    expect(container.querySelector("[data-conflict]")).toBeNull();
  });
});
