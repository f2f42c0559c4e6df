// The one typed module over every Tauri command. Types mirror src-tauri/src/dto.rs field for
// field (snake_case as serde writes them); components never call `invoke` themselves.
// Command names, their arguments and results come from generated/commands.ts.
import { Channel, invoke, type InvokeArgs } from "@tauri-apps/api/core";
import type { Commands } from "./generated/commands";
import type { DeskError } from "./generated/DeskError";
import type { DeskEvent } from "./generated/DeskEvent";
import type { LogTail } from "./generated/LogTail";

export type { DeskEvent };

export type Severity = "warning" | "error";

export interface Diagnostic {
  severity: Severity;
  kind: string;
  message: string;
  file?: string;
  line?: number;
  column?: number;
  field?: string;
  device?: string;
}

/** Every failed command rejects with this: the desk service's error (`kind` is one of ErrorKind). */
export type ApiError = DeskError;

export type Source =
  | { kind: "file"; path: string; line: number }
  | { kind: "device-override" }
  | { kind: "server" }
  | { kind: "generated" };

export type DeviceState = "inventory" | "discovered";

export interface Device {
  mac: string;
  model: string;
  profile: string | null;
  name: string | null;
  state: DeviceState;
  vars: Record<string, string>;
  /** For each of `vars`, whether the core's rule makes it secret (it feeds a secret P-value). */
  secret_vars: Record<string, boolean>;
  overrides: Record<string, string>;
  first_seen: number | null;
  last_seen: number | null;
  last_ip: string | null;
  firmware_version: string | null;
}

export interface DeviceInput {
  mac: string;
  model: string;
  profile: string | null;
  name: string | null;
  vars: Record<string, string>;
  overrides: Record<string, string>;
  /** Store it although its profile uses variables it lacks (it then needs attention). */
  incomplete?: boolean;
}

/** The variables a device's profile uses that the device lacks (dto::MissingVariables). */
export interface MissingVariables {
  mac: string;
  missing: string[];
}

/** A device held back by errors in its own values (build::HeldDevice). */
export interface HeldDevice {
  mac: string;
  diagnostics: Diagnostic[];
}

/** The build that runs in the background when the app opens a desk. */
export interface DeskBuildStatus {
  running: boolean;
  elapsed_ms: number;
  devices: number;
  summary: BuildSummary | null;
  error: string | null;
}

export interface BuildSummary {
  published: boolean;
  build: number;
  artifacts: number;
  devices: number;
  written: number;
  removed: number;
  unchanged: number;
  errors: number;
  diagnostics: Diagnostic[];
  /** Devices that need attention: their files were held back, the rest published. */
  held: HeldDevice[];
  elapsed_ms: number;
}

export interface EffectiveParam {
  p: string;
  value: string;
  source: Source;
  label: string | null;
  page: string | null;
  secret: boolean;
}

export type ArtifactKind = "device-binary" | "device-xml" | "model-xml" | "generic-xml" | "firmware";

export interface FilePreview {
  name: string;
  kind: ArtifactKind;
  file: string;
  encrypted: boolean;
  size: number;
  version: number;
  text: string | null;
  /** `text` with every catalogue secret masked: shown until the technician reveals it. */
  masked: string | null;
  /** How many values `masked` hides. */
  secrets: number;
  note: string | null;
}

export interface FetchLogEntry {
  id: number | null;
  ts: number;
  protocol: string;
  peer: string;
  name: string;
  mac: string | null;
  user_agent: string | null;
  status: string;
  reason: string | null;
  bytes: number;
  duration_ms: number;
  artifact_hash: string | null;
}

export interface DeviceDetail {
  device: Device;
  params: EffectiveParam[];
  diagnostics: Diagnostic[];
  files: FilePreview[];
  history: FetchLogEntry[];
}

export interface ImportRow {
  line: number;
  device: Device;
  update: boolean;
}

export interface ImportResult {
  rows: ImportRow[];
  diagnostics: Diagnostic[];
  new: number;
  updated: number;
  bad: number;
  imported: number | null;
  build: BuildSummary | null;
  message: string;
}

export type ProfileKind = "global" | "profile" | "model";

export interface ProfileSummary {
  name: string;
  kind: ProfileKind;
  file: string;
  extends: string | null;
  params: number;
  errors: number;
}

export interface ProfileList {
  profiles: ProfileSummary[];
  diagnostics: Diagnostic[];
}

export interface OwnValue {
  p: string;
  value: string;
  line: number | null;
  violations: Diagnostic[];
  /** The `{{ var }}` names the value uses (filled in per device). */
  variables: string[];
}

export interface InheritedValue {
  p: string;
  value: string;
  source: Source;
}

export interface ProfileDoc {
  name: string;
  kind: ProfileKind;
  file: string;
  /** A hash of `text`, compared with `profileRevision` to notice edits made outside the app. */
  revision: string;
  /** The files layered for this profile, bottom first. */
  layers: string[];
  text: string;
  extends: string | null;
  model: string | null;
  own: OwnValue[];
  inherited: InheritedValue[];
  diagnostics: Diagnostic[];
}

export interface SaveResult {
  doc: ProfileDoc;
  build: BuildSummary;
  warnings: Diagnostic[];
}

export interface Choice {
  value: string;
  label: string;
}

/** A catalogue entry, as provdesk-core's catalog/json.rs writes it. */
export interface CatalogEntry {
  p: string;
  name: string;
  page: string;
  section: string;
  type: "bool" | "integer" | "choice" | "text" | "secret" | "host" | "url" | "timezone";
  min?: number;
  max?: number;
  max_len?: number;
  choices?: Choice[];
  default: string | null;
  families: string[];
  alias: string | null;
  description: string;
  source: string;
}

export interface DeskInfo {
  root: string;
  settings_file: string;
  settings_text: string;
  devices: number;
  discovered: number;
  profiles: string[];
  models: string[];
  catalog_entries: number;
  catalog_diagnostics: Diagnostic[];
  server_address: string | null;
}

export interface PickedFile {
  name: string;
  text: string;
}

// --- Settings and Firmware screens (mirror dto.rs SettingsDto … FirmwareChanged) ---------

export type AuthMode = "none" | "basic" | "digest";

/** provdesk.toml, as provdesk-core's DeskSettings serializes it. */
export interface DeskSettings {
  server: {
    http: string | null;
    https: string | null;
    tftp: string | null;
    base_path: string;
    public_host: string | null;
  };
  discovery: { auto_enroll_profile: string | null; max_discovered: number };
  tls: { cert: string | null; key: string | null; client_ca: string | null; require_client_cert: boolean };
  auth: { mode: AuthMode; realm: string };
  /** `allow` applies to every protocol; `tftp_device_files` lets TFTP serve per-device files
   * while HTTP authentication is on. */
  access: { allow: string[]; tftp_device_files: boolean };
  /** Fair shares under load; absent means the defaults. Not on the form: carried through. */
  limits?: {
    tftp_transfers: number;
    tftp_transfers_per_address: number;
    http_connections: number;
    http_connections_per_address: number;
  };
  /** `[encryption]`; absent in older fixtures, where the core's default (per-device) holds. */
  encryption?: { mode: EncryptionMode };
}

/** How cfg<mac>.xml is served: encrypted with each device's generated password, or in clear. */
export type EncryptionMode = "per-device" | "off";

export interface InterfaceAddress {
  interface: string;
  ip: string;
  ipv6: boolean;
  loopback: boolean;
}

export interface TlsState {
  source: "own" | "generated" | "none yet";
  ca_file: string | null;
  cert_file: string | null;
}

export interface SettingsDto {
  settings: DeskSettings;
  file: string;
  text: string;
  interfaces: InterfaceAddress[];
  tls: TlsState;
}

export interface SettingsSaved {
  settings: SettingsDto;
  message: string;
}

export interface FirmwareUse {
  mac: string;
  name: string | null;
  model: string;
  request: string;
}

export interface FirmwareEntry {
  file: string;
  size: number;
  model: string | null;
  devices: FirmwareUse[];
  requests: string[];
}

export interface FirmwareOverview {
  files: FirmwareEntry[];
  affixes: { prefix: string; postfix: string; devices: number }[];
  missing: { model: string; devices: number; file: string }[];
}

export interface FirmwareChanged {
  overview: FirmwareOverview;
  message: string;
}

/** Turns whatever a command rejected with into an ApiError. */
export function asApiError(e: unknown): ApiError {
  if (e && typeof e === "object" && "message" in e && "kind" in e) return e as ApiError;
  return { kind: "internal", message: String(e) };
}

/** A command without arguments may be called without an object. */
type ArgsParam<C extends keyof Commands> =
  Record<string, never> extends Commands[C]["args"] ? [args?: Commands[C]["args"]] : [args: Commands[C]["args"]];

/** Calls a command by its generated name: a wrong name or argument fails `npm run check`. */
async function call<C extends keyof Commands>(command: C, ...args: ArgsParam<C>): Promise<Commands[C]["returns"]> {
  try {
    return await invoke<Commands[C]["returns"]>(command, args[0] as InvokeArgs | undefined);
  } catch (e) {
    throw asApiError(e);
  }
}

export const api = {
  deskInfo: () => call("desk_info"),
  deskBuildStatus: () => call("desk_build_status"),
  openDesk: (path: string) => call("open_desk", { path }),
  chooseFolder: (title: string) => call("choose_folder", { title }),
  pickCsvFile: () => call("pick_csv_file"),
  revealInDesk: (relative: string | null) => call("reveal_in_desk", { relative }),

  listDevices: () => call("list_devices"),
  deviceDetail: (mac: string) => call("device_detail", { mac }),
  addDevice: (device: DeviceInput, replace = false) =>
    call("add_device", { device, replace }),
  updateDevice: (originalMac: string, device: DeviceInput) =>
    call("update_device", { originalMac, device }),
  removeDevices: (macs: string[]) => call("remove_devices", { macs }),
  assignProfile: (macs: string[], profile: string | null) =>
    call("assign_profile", { macs, profile }),
  importCsv: (text: string, source: string | null, dryRun: boolean, skipBad: boolean) =>
    call("import_csv", { text, source, dryRun, skipBad }),
  enroll: (macs: string[], profile: string | null) => call("enroll", { macs, profile }),
  enrollCheck: (macs: string[], profile: string | null) =>
    call("enroll_check", { macs, profile }),

  listProfiles: () => call("list_profiles"),
  readProfile: (name: string, model: string | null) =>
    call("read_profile", { name, model }),
  saveProfileValue: (name: string, p: string, value: string | null, model: string | null) =>
    call("save_profile_value", { name, p, value, model }),
  saveProfileRaw: (name: string, text: string, model: string | null, baseRevision: string | null = null) =>
    call("save_profile_raw", { name, text, model, baseRevision }),
  profileRevision: (name: string) => call("profile_revision", { name }),
  createProfile: (name: string, extendsName: string | null) =>
    call("create_profile", { name, extends: extendsName }),
  catalogEntries: (model: string | null) => call("catalog_entries", { model }),
  catalogSearch: (query: string, limit = 50) =>
    call("catalog_search", { query, limit }),
  build: () => call("build"),

  // Settings and Firmware screens.
  readSettings: () => call("read_settings"),
  saveSettings: (settings: DeskSettings) => call("save_settings", { settings }),
  pickFile: (title: string, filter: string, extensions: string[]) =>
    call("pick_file", { title, filter, extensions }),
  generateCertificate: () => call("generate_certificate"),
  exportCa: () => call("export_ca"),
  firmwareOverview: () => call("firmware_overview"),
  pickFirmwareFile: () => call("pick_firmware_file"),
  addFirmware: (path: string, models: string[]) => call("add_firmware", { path, models }),
  mapFirmware: (file: string, models: string[]) => call("map_firmware", { file, models }),
  removeFirmware: (file: string) => call("remove_firmware", { file }),
};

// ---- Live screen (mirrors the Live block of dto.rs) ----

export type Protocol = "http" | "https" | "tftp";

export interface ListenOverrides {
  http?: string | null;
  https?: string | null;
  tftp?: string | null;
}

export interface ServerUrl {
  protocol: Protocol;
  url: string;
  address: string;
}

export interface ServerStatus {
  running: boolean;
  urls: ServerUrl[];
  option66: string | null;
  p237: string | null;
  p212: string | null;
  errors: string[];
  configured: { http: string | null; https: string | null; tftp: string | null };
  first_build: BuildSummary | null;
  /** While running: what each protocol enforces and the settings' trade-offs (serve's words). */
  access: AccessSummary | null;
}

/** provdesk-serve's access::AccessSummary, the lines `provdesk serve` prints on start. */
export interface AccessSummary {
  protocols: { protocol: "http" | "https" | "tftp"; enforces: string }[];
  warnings: { setting: string; message: string }[];
}

/** provdesk-core's status::ProvisioningStatus, tagged by `state`. */
export type ProvisioningStatus =
  | { state: "never-seen" }
  | { state: "requesting" }
  | { state: "got-config"; version: number }
  | { state: "firmware-in-progress"; percent: number }
  | { state: "firmware-done" }
  | { state: "up-to-date" }
  | { state: "stale" }
  | { state: "denied"; reason: string }
  | { state: "failed"; reason: string }
  | { state: "needs-attention"; reason: string };

export interface LastRequest {
  at_ms: number;
  name: string;
  status: string;
}

export interface Tile {
  mac: string;
  name: string | null;
  model: string;
  profile: string | null;
  state: DeviceState;
  last_ip: string | null;
  status: ProvisioningStatus;
  label: string;
  last_request: LastRequest | null;
}

export type OutcomeKind = "served" | "not-found" | "bad-request" | "denied" | "failed";

export interface LogRow {
  at_ms: number;
  protocol: Protocol;
  peer: string;
  name: string;
  mac: string | null;
  model: string | null;
  user_agent: string | null;
  status: string;
  outcome: OutcomeKind;
  reason: string | null;
  bytes: number;
  duration_ms: number;
}

export interface ProgressRow {
  transfer: number;
  protocol: Protocol;
  peer: string;
  name: string;
  mac: string | null;
  bytes: number;
  total: number | null;
}

export interface LiveBatch {
  fetches: LogRow[];
  progress: ProgressRow[];
  builds: BuildSummary[];
  discovered: { mac: string; model: string | null; ip: string; firmware_version: string | null }[];
  listening: { protocol: Protocol; url: string }[];
  warnings: string[];
  tiles: Tile[];
  missed: number;
  board_changed: boolean;
}

export const liveApi = {
  startServers: (overrides: ListenOverrides | null) => call("start_servers", { overrides }),
  stopServers: () => call("stop_servers"),
  serverStatus: () => call("server_status"),
  liveBoard: () => call("live_board"),
  /** Every batch of server events from now on goes to `onBatch`. */
  liveSubscribe: (onBatch: (batch: LiveBatch) => void) => {
    const channel = new Channel<LiveBatch>();
    channel.onmessage = onBatch;
    return call("live_subscribe", { onBatch: channel });
  },
};

export const eventsApi = {
  /** Every desk event from now on (for whichever desk is open) goes to `onEvent`. */
  deskSubscribe: (onEvent: (event: DeskEvent) => void) => {
    const channel = new Channel<DeskEvent>();
    channel.onmessage = onEvent;
    return call("desk_subscribe", { onEvent: channel });
  },
};

export type { LogTail };

export const diagnosticsApi = {
  /** The app's newest log file and its last lines (Settings → Diagnostics). */
  log: () => call("diagnostics_log"),
  /** Opens the app's log folder in the system's file manager. */
  revealLogFolder: () => call("reveal_log_folder"),
};
