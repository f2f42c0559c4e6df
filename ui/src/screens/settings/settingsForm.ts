// The Settings form's model: provdesk.toml's typed settings split into what the form edits
// (address and port per server, one allow-list entry per row), and whether anything differs
// from what is saved. No rules here: the desk checks the form (`validate_settings`, the same
// rules a save applies, the allow-list by the servers' own parser) and `fieldProblems` puts
// its field-named messages next to the fields.
import type { DeskSettings, AuthMode, Diagnostic, EncryptionMode } from "../../lib/api";

export type Protocol = "http" | "https" | "tftp";
export const PROTOCOLS: Protocol[] = ["http", "https", "tftp"];
export const DEFAULT_PORTS: Record<Protocol, number> = { http: 8080, https: 8443, tftp: 69 };
export const PROTOCOL_LABELS: Record<Protocol, string> = { http: "HTTP", https: "HTTPS", tftp: "TFTP" };

/** What each `[encryption] mode` does, shown under its control on the Settings screen. */
export const ENCRYPTION_NOTE =
  "per-device: every phone's cfg<mac>.xml (SIP passwords included) is encrypted with a password ProvDesk generates for that phone; the phone learns it from its binary cfg<mac> (P1359), which the format serves in clear. off: cfg<mac>.xml is served in clear; serve warns about it.";

export interface ListenField {
  on: boolean;
  host: string;
  port: string;
}

export interface SettingsForm {
  listen: Record<Protocol, ListenField>;
  base_path: string;
  public_host: string;
  cert: string;
  key: string;
  client_ca: string;
  require_client_cert: boolean;
  auth_mode: AuthMode;
  realm: string;
  allow: string[];
  tftp_device_files: boolean;
  /** `[access] device_files`: "owner" serves a phone's own files only to that phone. */
  device_files: DeskSettings["access"]["device_files"];
  auto_enroll_profile: string;
  max_discovered: string;
  /** Not edited here, but kept: a save must not reset the file's [limits] to defaults. */
  limits: DeskSettings["limits"];
  /** `[encryption] mode`: absent in the file means per-device, the secure default. */
  encryption_mode: EncryptionMode;
}

/** `0.0.0.0:8080` → host and port; `off` or absent → off, with the usual defaults to turn on. */
export function splitAddress(address: string | null, protocol: Protocol): ListenField {
  const text = (address ?? "").trim();
  if (!text || text.toLowerCase() === "off") return { on: false, host: "0.0.0.0", port: String(DEFAULT_PORTS[protocol]) };
  const at = text.lastIndexOf(":");
  if (at <= 0) return { on: true, host: text, port: "" };
  return { on: true, host: text.slice(0, at), port: text.slice(at + 1) };
}

/** An IPv6 address goes in brackets before the port. */
export function joinAddress(host: string, port: string): string {
  const h = host.trim();
  const bracketed = h.includes(":") && !h.startsWith("[") ? `[${h}]` : h;
  return `${bracketed}:${port.trim()}`;
}

export function toForm(s: DeskSettings): SettingsForm {
  return {
    listen: {
      http: splitAddress(s.server.http, "http"),
      https: splitAddress(s.server.https, "https"),
      tftp: splitAddress(s.server.tftp, "tftp"),
    },
    base_path: s.server.base_path,
    public_host: s.server.public_host ?? "",
    cert: s.tls.cert ?? "",
    key: s.tls.key ?? "",
    client_ca: s.tls.client_ca ?? "",
    require_client_cert: s.tls.require_client_cert,
    auth_mode: s.auth.mode,
    realm: s.auth.realm,
    allow: [...s.access.allow],
    tftp_device_files: s.access.tftp_device_files,
    device_files: s.access.device_files,
    auto_enroll_profile: s.discovery.auto_enroll_profile ?? "",
    max_discovered: String(s.discovery.max_discovered),
    limits: { ...s.limits },
    encryption_mode: s.encryption.mode,
  };
}

const orNull = (v: string) => (v.trim() ? v.trim() : null);

/** The largest `max_discovered` the file can hold (a u32). */
const MAX_U32 = 4294967295;

/** The count typed in a text box, or `null` when it is not a whole number that fits. */
export function parseCount(text: string): number | null {
  const t = text.trim();
  return /^\d+$/.test(t) && Number(t) <= MAX_U32 ? Number(t) : null;
}

export function fromForm(f: SettingsForm): DeskSettings {
  const listen = (p: Protocol) => (f.listen[p].on ? joinAddress(f.listen[p].host, f.listen[p].port) : "off");
  return {
    server: {
      http: listen("http"),
      // HTTPS is off by default: off is an absent key.
      https: f.listen.https.on ? listen("https") : null,
      tftp: listen("tftp"),
      base_path: f.base_path.trim(),
      public_host: orNull(f.public_host),
    },
    discovery: {
      auto_enroll_profile: orNull(f.auto_enroll_profile),
      // Unparsable text goes as 0, which the desk refuses by name; `parseProblems` says why.
      max_discovered: parseCount(f.max_discovered) ?? 0,
    },
    tls: { cert: orNull(f.cert), key: orNull(f.key), client_ca: orNull(f.client_ca), require_client_cert: f.require_client_cert },
    auth: { mode: f.auth_mode, realm: f.realm.trim() },
    access: {
      allow: f.allow.map((a) => a.trim()).filter((a) => a),
      tftp_device_files: f.tftp_device_files,
      device_files: f.device_files,
    },
    limits: { ...f.limits },
    encryption: { mode: f.encryption_mode },
  };
}

/** The settings as the core stores them: off servers, trimmed text (so "saved" compares fairly). */
function canonical(s: DeskSettings): string {
  return JSON.stringify(fromForm(toForm(s)));
}

export function isDirty(form: SettingsForm, saved: DeskSettings): boolean {
  return JSON.stringify(fromForm(form)) !== canonical(saved);
}

/** Ports under 1024 need privileges on Linux and macOS; the note says how to get them. */
export function privilegedNote(port: string): string | null {
  const n = Number(port.trim());
  if (!Number.isInteger(n) || n < 1 || n >= 1024) return null;
  return `Port ${n} is below 1024: on Linux run \`sudo setcap cap_net_bind_service=+ep\` on the ProvDesk binary once, or pick a port above 1024 (phones then need it in their server path, e.g. P237 host:6969).`;
}

/** What the form's text boxes cannot even turn into settings (typing, not rules). */
export function parseProblems(f: SettingsForm): Record<string, string> {
  return parseCount(f.max_discovered) === null ? { "discovery.max_discovered": "type a whole number, e.g. 1000" } : {};
}

/** The settings to check while a new allow-list entry is being typed: the form's, with the
 * entry appended, and the field name the desk will report it under. */
export function withNewAllow(f: SettingsForm, entry: string): { settings: DeskSettings; field: string | null } {
  const settings = fromForm(f);
  if (!entry.trim()) return { settings, field: null };
  const field = `access.allow[${settings.access.allow.length}]`;
  return { settings: { ...settings, access: { ...settings.access, allow: [...settings.access.allow, entry.trim()] } }, field };
}

/** The desk's diagnostics by form field: its message without the `field: ` prefix, with
 * `access.allow[i]` (counted without blank rows, as saved) turned back into the form's row.
 * Diagnostics without a field are returned apart. */
export function fieldProblems(f: SettingsForm, diagnostics: Diagnostic[]): { byField: Record<string, string>; other: Diagnostic[] } {
  const rows = f.allow.flatMap((entry, i) => (entry.trim() ? [i] : []));
  const byField: Record<string, string> = {};
  const other: Diagnostic[] = [];
  for (const d of diagnostics) {
    if (!d.field) {
      other.push(d);
      continue;
    }
    const message = d.message.startsWith(`${d.field}: `) ? d.message.slice(d.field.length + 2) : d.message;
    const allow = /^access\.allow\[(\d+)\]$/.exec(d.field);
    const key = allow && rows[Number(allow[1])] !== undefined ? `access.allow[${rows[Number(allow[1])]}]` : d.field;
    byField[key] ??= message;
  }
  return { byField, other };
}
