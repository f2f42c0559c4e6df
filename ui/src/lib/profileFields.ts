// Turns the catalogue and one profile into the editor's groups: page → section → field, each
// field with its own value, or the inherited one and where it comes from. Pure; tested.
import type { CatalogEntry, Diagnostic, InheritedValue, OwnValue, ProfileDoc, ProfileSummary } from "./api";
import { pNumber } from "./format";

export interface Field {
  p: string;
  entry: CatalogEntry | null;
  own: OwnValue | null;
  inherited: InheritedValue | null;
}

export interface Section {
  name: string;
  fields: Field[];
}

export interface Page {
  name: string;
  sections: Section[];
}

export type Scope = "set" | "all";

/** Groups fields like the phone's web pages; `only` limits to these P-values (a search). */
export function buildPages(entries: CatalogEntry[], doc: ProfileDoc, scope: Scope, only: Set<string> | null): Page[] {
  const own = new Map(doc.own.map((o) => [o.p, o]));
  const inherited = new Map(doc.inherited.map((i) => [i.p, i]));
  const byP = new Map(entries.map((e) => [e.p, e]));
  const ps = new Set<string>(scope === "all" ? entries.map((e) => e.p) : []);
  for (const p of own.keys()) ps.add(p);
  for (const p of inherited.keys()) ps.add(p);
  const pages = new Map<string, Map<string, Field[]>>();
  for (const p of [...ps].sort((a, b) => pNumber(a) - pNumber(b))) {
    if (only && !only.has(p)) continue;
    const entry = byP.get(p) ?? null;
    const page = entry?.page ?? "Other";
    const section = entry?.section ?? "Not in the catalogue";
    if (!pages.has(page)) pages.set(page, new Map());
    const sections = pages.get(page)!;
    if (!sections.has(section)) sections.set(section, []);
    sections.get(section)!.push({ p, entry, own: own.get(p) ?? null, inherited: inherited.get(p) ?? null });
  }
  const order = new Map<string, number>();
  entries.forEach((e, i) => {
    if (!order.has(e.page)) order.set(e.page, i);
  });
  return [...pages.entries()]
    .sort(([a], [b]) => (order.get(a) ?? 1e9) - (order.get(b) ?? 1e9))
    .map(([name, sections]) => ({ name, sections: [...sections.entries()].map(([s, fields]) => ({ name: s, fields })) }));
}

/** A P-number query (`47`, `P47`, `p13`): the prefix to match, else null. */
export function numberQuery(query: string): string | null {
  const m = query.trim().match(/^p?(\d{1,5})$/i);
  return m ? `P${m[1]}` : null;
}

export interface TreeNode {
  profile: ProfileSummary;
  depth: number;
}

/** Named profiles under their parents (global at the root), then the model files. */
export function profileTree(profiles: ProfileSummary[]): { tree: TreeNode[]; models: ProfileSummary[] } {
  const named = profiles.filter((p) => p.kind === "profile");
  const children = new Map<string, ProfileSummary[]>();
  const names = new Set(named.map((p) => p.name));
  for (const p of named) {
    const parent = p.extends && names.has(p.extends) ? p.extends : "global";
    children.set(parent, [...(children.get(parent) ?? []), p]);
  }
  const tree: TreeNode[] = [];
  const seen = new Set<string>();
  const walk = (name: string, depth: number) => {
    for (const child of children.get(name) ?? []) {
      if (seen.has(child.name)) continue; // a cycle: the core reports it
      seen.add(child.name);
      tree.push({ profile: child, depth });
      walk(child.name, depth + 1);
    }
  };
  const global = profiles.find((p) => p.kind === "global");
  if (global) tree.push({ profile: global, depth: 0 });
  walk("global", 1);
  for (const p of named) if (!seen.has(p.name)) tree.push({ profile: p, depth: 1 });
  return { tree, models: profiles.filter((p) => p.kind === "model") };
}

/** The revision `ignored` holds for a deleted file the technician chose to keep editing. */
export const GONE = "(deleted)";

/** What the editor does when the file's revision on disk is `disk` (`null`: the file is gone). */
export type ExternalChange = "none" | "reload" | "conflict" | "deleted";

/**
 * An edit made outside the app: reload quietly when the editor holds no unsaved text, else
 * ask (a conflict) instead of overwriting either side. `ignored` is a disk revision the
 * technician already chose to keep their own text over.
 */
export function externalChange(
  doc: Pick<ProfileDoc, "revision" | "text">,
  disk: string | null,
  draft: string,
  ignored: string | null = null,
): ExternalChange {
  if (disk === doc.revision || (disk ?? GONE) === ignored) return "none";
  if (disk == null) return "deleted";
  return draft === doc.text ? "reload" : "conflict";
}

/** The file's own diagnostics that name a P-value, by P-value, so a field shows its own. */
export function diagnosticsByField(diagnostics: Diagnostic[]): Record<string, Diagnostic[]> {
  const out: Record<string, Diagnostic[]> = {};
  for (const d of diagnostics) {
    if (!d.field || !/^P\d+$/.test(d.field)) continue;
    (out[d.field] ??= []).push(d);
  }
  return out;
}

/** `profiles/models/gxp2170.toml` → `models/gxp2170`, the name the list uses. */
export function layerLabel(file: string): string {
  return file.replace(/^profiles\//, "").replace(/\.toml$/, "");
}

/**
 * Where line `line` (1-based) of `text` starts and ends, without its line break, to select
 * it in the raw editor; a line past the end selects the last one.
 */
export function lineRange(text: string, line: number): [number, number] {
  const lines = text.split("\n");
  const index = Math.min(Math.max(line, 1), lines.length) - 1;
  let start = 0;
  for (let i = 0; i < index; i++) start += lines[i].length + 1;
  return [start, start + lines[index].replace(/\r$/, "").length];
}

/**
 * Where one field of the Fields view stands: `clean` (shows the saved value), `unsaved` (edited,
 * not yet saved), `saving`, `saved` (just now; it settles back to clean), or `rejected` (the
 * core refused the value: it stays in the input with the core's messages until changed or
 * reverted). Whether a value is valid is the core's call, never this machine's.
 */
export type FieldStatus = "clean" | "unsaved" | "saving" | "saved" | "rejected";

export interface FieldState {
  status: FieldStatus;
  /** What the input holds when it is not the saved value (null: it shows the saved value). */
  draft: string | null;
  /** The core's messages for a rejected draft. */
  errors: Diagnostic[];
}

export type FieldEvent =
  /** The technician typed or picked `value`; `saved` is the profile's own value (null: none). */
  | { type: "edit"; value: string; saved: string | null }
  /** A save of `value` started (null: the own value is being removed). */
  | { type: "save"; value: string | null }
  /** The save of `value` succeeded or was refused; a result for an older value is ignored. */
  | { type: "saved"; value: string | null }
  | { type: "rejected"; value: string | null; errors: Diagnostic[] }
  /** Back to the saved value (Escape, or the revert button). */
  | { type: "revert" }
  /** The "saved" sign has been shown long enough. */
  | { type: "settle" };

export const CLEAN: FieldState = { status: "clean", draft: null, errors: [] };

/** The next state of one field. Pure; tested. */
export function fieldStep(state: FieldState, event: FieldEvent): FieldState {
  switch (event.type) {
    case "edit":
      // Typing back the saved value (or nothing over an inherited one) is no change.
      if (event.value === (event.saved ?? "")) return CLEAN;
      return { status: "unsaved", draft: event.value, errors: [] };
    case "save":
      return { status: "saving", draft: event.value, errors: [] };
    case "saved":
      if (state.status !== "saving" || state.draft !== event.value) return state;
      return { status: "saved", draft: null, errors: [] };
    case "rejected":
      if (state.status !== "saving" || state.draft !== event.value) return state;
      return { status: "rejected", draft: event.value, errors: event.errors };
    case "revert":
      return CLEAN;
    case "settle":
      return state.status === "saved" ? CLEAN : state;
  }
}

/** Whether leaving the field (blur, Enter, a pick) should save what it holds. */
export function needsSave(state: FieldState): boolean {
  return state.status === "unsaved";
}

/** The word a field shows for its state (none when clean). */
export function fieldStatusLabel(status: FieldStatus): string {
  return { clean: "", unsaved: "unsaved", saving: "saving…", saved: "saved", rejected: "not saved" }[status];
}
