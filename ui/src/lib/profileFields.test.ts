import { describe, expect, it } from "vitest";
import { CLEAN, GONE, buildPages, diagnosticsByField, externalChange, fieldStatusLabel, fieldStep, layerLabel, lineRange, needsSave, numberQuery, profileTree } from "./profileFields";
import type { CatalogEntry, ProfileDoc, ProfileSummary } from "./api";

const entry = (p: string, page: string, section: string): CatalogEntry => ({
  p, name: `Name ${p}`, page, section, type: "text", default: null, families: [], alias: null, description: "", source: "builtin",
});
const entries = [entry("P47", "Account 1", "General"), entry("P35", "Account 1", "General"), entry("P30", "Maintenance", "Time")];
const doc: ProfileDoc = {
  name: "office", kind: "profile", file: "profiles/office.toml", revision: "r1", layers: ["profiles/global.toml", "profiles/office.toml"],
  text: "", extends: "global", model: null,
  own: [{ p: "P47", value: "pbx", line: 5, violations: [], variables: [] }, { p: "P99999", value: "x", line: 6, violations: [], variables: [] }],
  inherited: [{ p: "P30", value: "pool.ntp.org", source: { kind: "file", path: "profiles/global.toml", line: 4 } }],
  diagnostics: [],
};

describe("buildPages", () => {
  it("groups set values by page and section, unknown ones last", () => {
    const pages = buildPages(entries, doc, "set", null);
    expect(pages.map((p) => p.name)).toEqual(["Account 1", "Maintenance", "Other"]);
    expect(pages[0].sections[0].fields.map((f) => f.p)).toEqual(["P47"]);
    expect(pages[1].sections[0].fields[0].inherited?.value).toBe("pool.ntp.org");
    expect(pages[2].sections[0].fields[0].entry).toBeNull();
  });

  it("shows every field with scope all, and only the hits of a search", () => {
    expect(buildPages(entries, doc, "all", null)[0].sections[0].fields.map((f) => f.p)).toEqual(["P35", "P47"]);
    expect(buildPages(entries, doc, "all", new Set(["P35"])).flatMap((p) => p.sections.flatMap((s) => s.fields.map((f) => f.p)))).toEqual(["P35"]);
  });

  it("reads P-number queries", () => {
    expect(numberQuery("47")).toBe("P47");
    expect(numberQuery(" p1359 ")).toBe("P1359");
    expect(numberQuery("sip server")).toBeNull();
  });
});

describe("profileTree", () => {
  const s = (name: string, kind: ProfileSummary["kind"], ext: string | null): ProfileSummary => ({ name, kind, file: "", extends: ext, params: 0, errors: 0 });
  it("nests profiles under their parents and lists models apart", () => {
    const { tree, models } = profileTree([
      s("global", "global", null), s("office", "profile", "global"), s("sales", "profile", "office"), s("lab", "profile", null), s("models/gxp2170", "model", null),
    ]);
    expect(tree.map((n) => `${n.depth}:${n.profile.name}`)).toEqual(["0:global", "1:office", "2:sales", "1:lab"]);
    expect(models.map((m) => m.name)).toEqual(["models/gxp2170"]);
  });
});

describe("outside edits", () => {
  const open = { revision: "r1", text: "[params]\n" };
  it("reload quietly when nothing is unsaved, ask when something is", () => {
    expect(externalChange(open, "r1", open.text)).toBe("none");
    expect(externalChange(open, null, open.text)).toBe("deleted");
    expect(externalChange(open, null, open.text, GONE)).toBe("none");
    expect(externalChange(open, "r2", open.text)).toBe("reload");
    expect(externalChange(open, "r2", "[params]\nP47 = 'mine'\n")).toBe("conflict");
  });
  it("stay quiet about a version the technician chose to keep theirs over", () => {
    expect(externalChange(open, "r2", "mine", "r2")).toBe("none");
    expect(externalChange(open, "r3", "mine", "r2")).toBe("conflict");
  });
});

describe("diagnosticsByField and layerLabel", () => {
  it("hand each field its own problems", () => {
    const byField = diagnosticsByField([
      { severity: "error", kind: "bad-template", message: "P3: bad", field: "P3" },
      { severity: "error", kind: "unknown-parent", message: "no parent", field: "extends" },
      { severity: "error", kind: "toml-syntax", message: "syntax" },
    ]);
    expect(Object.keys(byField)).toEqual(["P3"]);
    expect(byField.P3[0].message).toBe("P3: bad");
  });
  it("name layers the way the list does", () => {
    expect(layerLabel("profiles/models/gxp2170.toml")).toBe("models/gxp2170");
    expect(layerLabel("profiles/global.toml")).toBe("global");
  });
});

describe("fieldStep", () => {
  const edit = (value: string, saved: string | null = "pbx") => ({ type: "edit" as const, value, saved });
  const refused = [{ severity: "error" as const, kind: "catalog-wrong-type", message: "P47 must be a host name or an IP address" }];

  it("goes unsaved → saving → saved → clean", () => {
    let s = fieldStep(CLEAN, edit("pbx2"));
    expect(s).toEqual({ status: "unsaved", draft: "pbx2", errors: [] });
    expect(needsSave(s)).toBe(true);
    s = fieldStep(s, { type: "save", value: "pbx2" });
    expect(s.status).toBe("saving");
    expect(needsSave(s)).toBe(false); // the blur after Enter does not save twice
    s = fieldStep(s, { type: "saved", value: "pbx2" });
    expect(s).toEqual({ status: "saved", draft: null, errors: [] });
    expect(fieldStep(s, { type: "settle" })).toEqual(CLEAN);
  });

  it("treats typing back the saved value, or nothing over an inherited one, as no change", () => {
    expect(fieldStep(fieldStep(CLEAN, edit("x")), edit("pbx"))).toEqual(CLEAN);
    expect(fieldStep(CLEAN, edit("", null))).toEqual(CLEAN);
    expect(fieldStep(CLEAN, edit("", "pbx")).status).toBe("unsaved");
  });

  it("keeps a refused value with the core's messages until it is changed or reverted", () => {
    let s = fieldStep(fieldStep(CLEAN, edit("bad host")), { type: "save", value: "bad host" });
    s = fieldStep(s, { type: "rejected", value: "bad host", errors: refused });
    expect(s).toEqual({ status: "rejected", draft: "bad host", errors: refused });
    expect(needsSave(s)).toBe(false); // blurring again does not resend the refused value
    expect(fieldStep(s, { type: "settle" })).toBe(s);
    expect(fieldStep(s, edit("good.host"))).toEqual({ status: "unsaved", draft: "good.host", errors: [] });
    expect(fieldStep(s, { type: "revert" })).toEqual(CLEAN);
  });

  it("ignores the result of a save the technician has typed past", () => {
    let s = fieldStep(fieldStep(CLEAN, edit("a")), { type: "save", value: "a" });
    s = fieldStep(s, edit("ab"));
    expect(fieldStep(s, { type: "saved", value: "a" })).toEqual({ status: "unsaved", draft: "ab", errors: [] });
    expect(fieldStep(s, { type: "rejected", value: "a", errors: refused })).toEqual({ status: "unsaved", draft: "ab", errors: [] });
  });

  it("labels each state", () => {
    expect(fieldStatusLabel("clean")).toBe("");
    expect(fieldStatusLabel("unsaved")).toBe("unsaved");
    expect(fieldStatusLabel("rejected")).toBe("not saved");
  });
});

describe("lineRange", () => {
  const text = 'extends = "global"\r\n[params]\nP47 = "a"\n';
  const line = (n: number) => text.slice(...lineRange(text, n));
  it("selects one line without its line break, clamped to the text", () => {
    expect(line(1)).toBe('extends = "global"');
    expect(line(2)).toBe("[params]");
    expect(line(3)).toBe('P47 = "a"');
    expect(line(0)).toBe('extends = "global"');
    expect(lineRange(text, 99)).toEqual([text.length, text.length]);
  });
  it("maps a diagnostic's file to the name the list uses", () => {
    expect(layerLabel("profiles/office.toml")).toBe("office");
    expect(layerLabel("profiles/models/gxp2170.toml")).toBe("models/gxp2170");
  });
});
