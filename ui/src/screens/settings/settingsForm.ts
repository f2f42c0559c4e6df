// The Settings form's model: provdesk.toml's typed settings split into what the form edits
// (address and port per server, one allow-list entry per row), quick checks so a typo shows
// at once, and whether anything differs from what is saved. The core checks again on save
// and its field-named diagnostics are shown the same way (keys are the core's field names).
import type { DeskSettings, AuthMode, EncryptionMode } from "../../lib/api";

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
  auto_enroll_profile: string;
  max_discovered: string;
  /** Not edited here, but kept: a save must not reset the file's [limits] to defaults. */
  limits?: DeskSettings["limits"];
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
    auto_enroll_profile: s.discovery.auto_enroll_profile ?? "",
    max_discovered: String(s.discovery.max_discovered),
    ...(s.limits ? { limits: { ...s.limits } } : {}),
    encryption_mode: s.encryption?.mode ?? "per-device",
  };
}

const orNull = (v: string) => (v.trim() ? v.trim() : null);

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
      max_discovered: Number(f.max_discovered.trim()),
    },
    tls: { cert: orNull(f.cert), key: orNull(f.key), client_ca: orNull(f.client_ca), require_client_cert: f.require_client_cert },
    auth: { mode: f.auth_mode, realm: f.realm.trim() },
    access: { allow: f.allow.map((a) => a.trim()).filter((a) => a), tftp_device_files: f.tftp_device_files },
    ...(f.limits ? { limits: { ...f.limits } } : {}),
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

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

function isIpv6(text: string): boolean {
  if (!/^[0-9a-fA-F:.]+$/.test(text) || !text.includes(":")) return false;
  const double = text.split("::").length - 1;
  if (double > 1) return false;
  const groups = text.split(":").filter((g) => g !== "");
  const last = groups[groups.length - 1] ?? "";
  const v4Tail = IPV4.test(last);
  const hexGroups = v4Tail ? groups.slice(0, -1) : groups;
  if (!hexGroups.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) return false;
  const count = hexGroups.length + (v4Tail ? 2 : 0);
  return double ? count < 8 : count === 8;
}

/** An allow-list entry: an address or ADDRESS/PREFIX. `null` when fine. A typing aid only:
 * provdesk_core::ip_block decides on save, and the server matches with the same parser. */
export function checkAllowEntry(entry: string): string | null {
  const text = entry.trim();
  const [address, prefix, extra] = text.split("/");
  const v4 = IPV4.test(address);
  if (extra !== undefined || (!v4 && !isIpv6(address))) {
    return `"${text}" is not an address or CIDR block: write e.g. 192.168.1.0/24, 10.0.0.5 or fd00::/8`;
  }
  if (prefix !== undefined) {
    const max = v4 ? 32 : 128;
    if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > max) {
      return `"${text}": the prefix after '/' must be a number from 0 to ${max}`;
    }
  }
  return null;
}

export function checkPort(port: string): string | null {
  const text = port.trim();
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > 65535) {
    return `port "${text}" is not a port: use a number from 1 to 65535`;
  }
  return null;
}

/** Ports under 1024 need privileges on Linux and macOS; the note says how to get them. */
export function privilegedNote(port: string): string | null {
  const n = Number(port.trim());
  if (!Number.isInteger(n) || n < 1 || n >= 1024) return null;
  return `Port ${n} is below 1024: on Linux run \`sudo setcap cap_net_bind_service=+ep\` on the ProvDesk binary once, or pick a port above 1024 (phones then need it in their server path, e.g. P237 host:6969).`;
}

/** Every problem the form can see on its own, keyed by the core's field names. */
export function validate(f: SettingsForm): Record<string, string> {
  const problems: Record<string, string> = {};
  for (const p of PROTOCOLS) {
    const l = f.listen[p];
    if (!l.on) continue;
    const bad = checkPort(l.port) ?? (l.host.trim() ? null : "choose an address to listen on");
    if (bad) problems[`server.${p}`] = bad;
  }
  if (!PROTOCOLS.some((p) => f.listen[p].on)) problems["server"] = "no server is on: turn on at least one of HTTP, HTTPS and TFTP";
  if (!f.base_path.trim().startsWith("/")) problems["server.base_path"] = "start the path with '/', e.g. / or /gs/";
  if (/[\s/]|:\/\//.test(f.public_host.trim())) {
    problems["server.public_host"] = "write the host name or address only, without http:// or a path";
  }
  if (!!f.cert.trim() !== !!f.key.trim()) {
    problems[f.cert.trim() ? "tls.key" : "tls.cert"] = "the certificate and its key go together: pick both, or clear both";
  }
  if (f.require_client_cert && !f.client_ca.trim()) {
    problems["tls.require_client_cert"] = "requiring client certificates needs the CA bundle that signed them";
  }
  if (f.auth_mode !== "none" && !f.realm.trim()) problems["auth.realm"] = "name the realm, e.g. ProvDesk";
  f.allow.forEach((entry, i) => {
    const bad = entry.trim() ? checkAllowEntry(entry) : null;
    if (bad) problems[`access.allow[${i}]`] = bad;
  });
  const max = f.max_discovered.trim();
  if (!/^\d+$/.test(max) || Number(max) < 1 || Number(max) > 4294967295) {
    problems["discovery.max_discovered"] = "a whole number of at least 1 (the default is 1000)";
  }
  return problems;
}
