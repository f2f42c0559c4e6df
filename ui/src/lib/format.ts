// Display helpers: pure functions, tested in format.test.ts.
import type { BuildSummary, Device, Diagnostic, Source } from "./api";
import type { ProvisioningStatus } from "./generated/ProvisioningStatus";

/** Where a value came from, the way the CLI prints it: `profiles/office.toml:7`. */
export function sourceLabel(source: Source): string {
  switch (source.kind) {
    case "file":
      return `${source.path}:${source.line}`;
    case "device-override":
      return "device override";
    case "server":
      return "server address";
    case "generated":
      return "generated password";
  }
}

/** The layer name alone (`office.toml`, `device`, `server`), for narrow columns. */
export function layerName(source: Source): string {
  switch (source.kind) {
    case "file":
      return source.path.replace(/^profiles\//, "");
    case "device-override":
      return "device";
    case "server":
      return "server";
    case "generated":
      return "generated";
  }
}

/** What a build did, in one line: "rebuilt 42 files in 35 ms". */
export function buildMessage(b: BuildSummary): string {
  if (!b.published) {
    return `build failed with ${b.errors} error(s): nothing published, the last good files keep serving`;
  }
  const files = b.written === 1 ? "1 file" : `${b.written} files`;
  const ms = b.elapsed_ms < 10 ? b.elapsed_ms.toFixed(1) : Math.round(b.elapsed_ms).toString();
  const removed = b.removed > 0 ? `, removed ${b.removed}` : "";
  const held = b.held?.length
    ? `; ${b.held.length} device(s) need attention: ${b.held.map((h) => h.mac).join(", ")}`
    : "";
  return `rebuilt ${files} in ${ms} ms${removed}${held}`;
}

/** `file:line: message`, compiler style. */
export function diagnosticText(d: Diagnostic): string {
  let where = "";
  if (d.file) where = d.line ? `${d.file}:${d.line}: ` : `${d.file}: `;
  else if (d.line) where = `line ${d.line}: `;
  return `${where}${d.message}`;
}

/** A MAC's 48 bits as 12 lowercase hex digits, whatever its spelling (colons, dashes,
 * dots, upper case): fixed width, so comparing these strings compares the numbers. */
function macKey(mac: string): string {
  return mac.toLowerCase().replace(/[^0-9a-f]/g, "").padStart(12, "0");
}

/** Orders MACs by their value: `00:0b:82:12:…` before `00:0b:82:aa:…`. A locale compare with
 * `numeric: true` does not: it reads the digit runs of hex as decimal numbers, so `82` (before
 * `aa`) sorts ahead of `8212`. */
export function compareMac(a: string, b: string): number {
  const ka = macKey(a);
  const kb = macKey(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/** `000b82000001` → `00:0b:82:00:00:01`. */
export function macColons(mac: string): string {
  return mac.match(/.{1,2}/g)?.join(":") ?? mac;
}

export function timeAgo(ms: number | null, now = Date.now()): string {
  if (ms == null) return "never";
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(ms).toLocaleDateString();
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** P-number of `P47` for numeric sorting. */
export function pNumber(p: string): number {
  return Number(p.slice(1));
}

/** The colour of a provisioning status, as the Live tiles use it. */
export function statusTone(status: ProvisioningStatus): "ok" | "warn" | "err" | "busy" | "idle" {
  switch (status.state) {
    case "up-to-date":
    case "firmware-done":
    case "applied":
    case "on-target-firmware":
      return "ok";
    case "stale":
    case "got-config":
      return "warn";
    case "denied":
    case "failed":
    case "needs-attention":
      return "err";
    case "requesting":
    case "firmware-in-progress":
    case "got-address":
    case "asked-for-server":
      return "busy";
    default:
      return "idle";
  }
}

/**
 * Whether a device variable is masked: the desk decides (a variable that feeds a secret
 * P-value is secret, whatever its name) and sends a flag for every variable; no name is ever
 * looked at here. A variable without a flag is masked, the safe mistake.
 */
export function isSecretVar(device: Pick<Device, "secret_vars">, key: string): boolean {
  return device.secret_vars?.[key] ?? true;
}
