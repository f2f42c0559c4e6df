import { describe, expect, it, vi } from "vitest";
import { fireEvent, render, screen, waitFor } from "@testing-library/svelte";
import FieldInput from "./FieldInput.svelte";
import type { Field } from "../../lib/profileFields";

const base: Field = {
  p: "P47",
  entry: { p: "P47", name: "SIP Server", page: "Account 1", section: "General", type: "host", default: null, families: [], alias: null, description: "", source: "builtin" },
  own: null,
  inherited: { p: "P47", value: "pbx.example.com", source: { kind: "file", path: "profiles/global.toml", line: 3 } },
};

describe("FieldInput", () => {
  it("shows an inherited value greyed with its source, and saves what is typed over it", async () => {
    const onsave = vi.fn(async () => null);
    const { container } = render(FieldInput, { field: base, error: null, onsave });
    const input = screen.getByLabelText(/SIP Server/) as HTMLInputElement;
    expect(input.placeholder).toBe("pbx.example.com");
    expect(container.querySelector(".inherited")).not.toBeNull();
    expect(screen.getByText("from profiles/global.toml:3")).toBeTruthy();
    await fireEvent.input(input, { target: { value: "pbx.example.org" } });
    await fireEvent.keyDown(input, { key: "Enter" });
    expect(onsave).toHaveBeenCalledWith("P47", "pbx.example.org");
  });

  it("offers on/off for a bool, masks secrets, and shows the core's messages", async () => {
    const onsave = vi.fn(async () => null);
    render(FieldInput, {
      field: { ...base, p: "P122", entry: { ...base.entry!, p: "P122", name: "24h clock", type: "bool" }, own: { p: "P122", value: "1", line: 4, violations: [], variables: [] }, inherited: null },
      error: [{ severity: "error", kind: "catalog-wrong-type", message: "P122 takes 0 or 1" }],
      onsave,
    });
    const select = screen.getByLabelText(/24h clock/) as HTMLSelectElement;
    expect(select.value).toBe("1");
    await fireEvent.change(select, { target: { value: "0" } });
    expect(onsave).toHaveBeenCalledWith("P122", "0");
    expect(screen.getByText("P122 takes 0 or 1")).toBeTruthy();
    await fireEvent.click(screen.getByText("reset"));
    expect(onsave).toHaveBeenCalledWith("P122", null);
  });

  it("masks a secret until asked", async () => {
    render(FieldInput, { field: { ...base, p: "P34", entry: { ...base.entry!, p: "P34", name: "Password", type: "secret" }, own: { p: "P34", value: "s3", line: 2, violations: [], variables: [] }, inherited: null }, error: null, onsave: async () => null });
    const input = screen.getByLabelText(/Password/) as HTMLInputElement;
    expect(input.type).toBe("password");
    await fireEvent.click(screen.getByText("show"));
    expect(input.type).toBe("text");
  });

  it("says which values are filled in per device", () => {
    render(FieldInput, { field: { ...base, p: "P270", own: { p: "P270", value: "Office {{ ext }}", line: 9, violations: [], variables: ["ext"] }, inherited: null }, error: null, onsave: async () => null });
    expect(screen.getByText("per device: ext")).toBeTruthy();
  });

  describe("saved / unsaved", () => {
    const own: Field = { ...base, own: { p: "P47", value: "pbx.example.com", line: 3, violations: [], variables: [] }, inherited: null };
    const sign = (c: Element) => c.querySelector("[data-field='P47'] [data-field-status]")?.textContent;
    const refusal = "P47: “pbx example” is not a host name or an IP address";

    it("marks an edit unsaved, saves it on blur, then says saved", async () => {
      let done!: (v: null) => void;
      const onsave = vi.fn(() => new Promise<null>((r) => (done = r)));
      const { container } = render(FieldInput, { field: own, error: null, onsave });
      const input = screen.getByLabelText(/SIP Server/) as HTMLInputElement;
      expect(sign(container)).toBe("");
      await fireEvent.input(input, { target: { value: "pbx.example.org" } });
      expect(sign(container)).toBe("unsaved");
      expect(onsave).not.toHaveBeenCalled();
      await fireEvent.blur(input);
      expect(onsave).toHaveBeenCalledWith("P47", "pbx.example.org");
      expect(sign(container)).toBe("saving…");
      done(null);
      await waitFor(() => expect(sign(container)).toBe("saved"));
      await fireEvent.blur(input);
      expect(onsave).toHaveBeenCalledTimes(1);
    });

    it("keeps a refused value in the input with the core's message, until reverted", async () => {
      const onsave = vi.fn(async () => [{ severity: "error" as const, kind: "catalog-wrong-type", message: refusal }]);
      const { container } = render(FieldInput, { field: own, error: null, onsave });
      const input = screen.getByLabelText(/SIP Server/) as HTMLInputElement;
      await fireEvent.input(input, { target: { value: "pbx example" } });
      await fireEvent.keyDown(input, { key: "Enter" });
      await waitFor(() => expect(sign(container)).toBe("not saved"));
      expect(input.value).toBe("pbx example");
      expect(container.querySelector("[data-rejected]")?.textContent).toBe(refusal);
      await fireEvent.blur(input); // leaving the field does not resend the refused value
      expect(onsave).toHaveBeenCalledTimes(1);
      await fireEvent.click(container.querySelector("[data-action='revert']")!);
      expect(input.value).toBe("pbx.example.com");
      expect(sign(container)).toBe("");
      expect(container.querySelector("[data-rejected]")).toBeNull();
    });

    it("reverts with Escape, and clears the refusal once the value is changed", async () => {
      const onsave = vi.fn(async () => [{ severity: "error" as const, kind: "invalid", message: refusal }]);
      const { container } = render(FieldInput, { field: own, error: null, onsave });
      const input = screen.getByLabelText(/SIP Server/) as HTMLInputElement;
      await fireEvent.input(input, { target: { value: "pbx example" } });
      await fireEvent.blur(input);
      await waitFor(() => expect(sign(container)).toBe("not saved"));
      await fireEvent.input(input, { target: { value: "pbx-example" } });
      expect(sign(container)).toBe("unsaved");
      expect(container.querySelector("[data-rejected]")).toBeNull();
      await fireEvent.keyDown(input, { key: "Escape" });
      expect(input.value).toBe("pbx.example.com");
      expect(sign(container)).toBe("");
    });
  });
});
