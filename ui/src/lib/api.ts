// The one typed module over every Tauri command. Types mirror src-tauri/src/dto.rs field for
// field (snake_case as serde writes them); components never call `invoke` themselves.
import { Channel, invoke } from "@tauri-apps/api/core";
import type { DeskEvent } from "./generated/DeskEvent";
import type { CatalogChoice } from "./generated/CatalogChoice";
import type { CatalogEntry } from "./generated/CatalogEntry";
import type { InheritedValue } from "./generated/InheritedValue";
import type { OwnValue } from "./generated/OwnValue";
import type { ProfileDoc } from "./generated/ProfileDoc";
import type { ProfileKind } from "./generated/ProfileKind";
import type { ProfileList } from "./generated/ProfileList";
import type { ProfileSummary } from "./generated/ProfileSummary";
import type { SaveResult } from "./generated/SaveResult";
import type { Source } from "./generated/Source";

export type { DeskEvent };
// Profiles and the catalogue (provdesk_desk::profiles, generated).
export type { CatalogChoice, CatalogEntry, InheritedValue, OwnValue, ProfileDoc, ProfileKind, ProfileList, ProfileSummary, SaveResult, Source };

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

/** Every failed command rejects with this. */
export interface ApiError {
  kind: string;
  message: string;
  diagnostics?: Diagnostic[];
}

// Devices: the desk service's view types (crates/desk/src/devices.rs), generated.
export type { DeviceState } from "./generated/DeviceState";
export type { DeviceDto as Device } from "./generated/DeviceDto";
export type { DeviceInput } from "./generated/DeviceInput";
export type { MissingVariables } from "./generated/MissingVariables";
export type { EffectiveParam } from "./generated/EffectiveParam";
export type { ArtifactKind } from "./generated/ArtifactKind";
export type { FilePreview } from "./generated/FilePreview";
export type { FetchLogEntry } from "./generated/FetchLogEntry";
export type { DeviceDetail } from "./generated/DeviceDetail";
export type { ImportRow } from "./generated/ImportRow";
export type { ImportResult } from "./generated/ImportResult";
import type { DeviceDto as Device } from "./generated/DeviceDto";
import type { DeviceInput } from "./generated/DeviceInput";
import type { MissingVariables } from "./generated/MissingVariables";
import type { DeviceDetail } from "./generated/DeviceDetail";
import type { ImportResult } from "./generated/ImportResult";
import type { DeviceState } from "./generated/DeviceState";

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

async function call<T>(command: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(command, args);
  } catch (e) {
    throw asApiError(e);
  }
}

export const api = {
  deskInfo: () => call<DeskInfo>("desk_info"),
  deskBuildStatus: () => call<DeskBuildStatus>("desk_build_status"),
  openDesk: (path: string) => call<DeskInfo>("open_desk", { path }),
  chooseFolder: (title: string) => call<string | null>("choose_folder", { title }),
  pickCsvFile: () => call<PickedFile | null>("pick_csv_file"),
  revealInDesk: (relative: string | null) => call<void>("reveal_in_desk", { relative }),

  listDevices: () => call<Device[]>("list_devices"),
  deviceDetail: (mac: string) => call<DeviceDetail>("device_detail", { mac }),
  addDevice: (device: DeviceInput, replace = false) =>
    call<BuildSummary>("add_device", { device, replace }),
  updateDevice: (originalMac: string, device: DeviceInput) =>
    call<BuildSummary>("update_device", { originalMac, device }),
  removeDevices: (macs: string[]) => call<BuildSummary>("remove_devices", { macs }),
  assignProfile: (macs: string[], profile: string | null) =>
    call<BuildSummary>("assign_profile", { macs, profile }),
  importCsv: (text: string, source: string | null, dryRun: boolean, skipBad: boolean) =>
    call<ImportResult>("import_csv", { text, source, dryRun, skipBad }),
  enroll: (macs: string[], profile: string | null) => call<BuildSummary>("enroll", { macs, profile }),
  enrollCheck: (macs: string[], profile: string | null) =>
    call<MissingVariables[]>("enroll_check", { macs, profile }),

  listProfiles: () => call<ProfileList>("list_profiles"),
  readProfile: (name: string, model: string | null) =>
    call<ProfileDoc>("read_profile", { name, model }),
  saveProfileValue: (name: string, p: string, value: string | null, model: string | null) =>
    call<SaveResult>("save_profile_value", { name, p, value, model }),
  saveProfileRaw: (name: string, text: string, model: string | null, baseRevision: string | null = null) =>
    call<SaveResult>("save_profile_raw", { name, text, model, baseRevision }),
  /** The revision of the file on disk now (null: it is gone), to compare with the editor's. */
  profileRevision: (name: string) => call<string | null>("profile_revision", { name }),
  /** Creates an empty profile extending `parent` (null: only global), then rebuilds. */
  createProfile: (name: string, parent: string | null) =>
    call<SaveResult>("create_profile", { name, parent }),
  catalogEntries: (model: string | null) => call<CatalogEntry[]>("catalog_entries", { model }),
  catalogSearch: (query: string, limit = 50) =>
    call<CatalogEntry[]>("catalog_search", { query, limit }),
  build: () => call<BuildSummary>("build"),

  // Settings and Firmware screens.
  readSettings: () => call<SettingsDto>("read_settings"),
  saveSettings: (settings: DeskSettings) => call<SettingsSaved>("save_settings", { settings }),
  pickFile: (title: string, filter: string, extensions: string[]) =>
    call<string | null>("pick_file", { title, filter, extensions }),
  generateCertificate: () => call<SettingsSaved>("generate_certificate"),
  exportCa: () => call<string | null>("export_ca"),
  firmwareOverview: () => call<FirmwareOverview>("firmware_overview"),
  pickFirmwareFile: () => call<string | null>("pick_firmware_file"),
  addFirmware: (path: string, models: string[]) => call<FirmwareChanged>("add_firmware", { path, models }),
  mapFirmware: (file: string, models: string[]) => call<FirmwareChanged>("map_firmware", { file, models }),
  removeFirmware: (file: string) => call<FirmwareChanged>("remove_firmware", { file }),
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

// The Live log's rows are the desk crate's (`provdesk_desk::live`), from the servers' events
// and from the fetch log alike.
import type { LogRow } from "./generated/LogRow";
import type { OutcomeKind } from "./generated/OutcomeKind";
export type { LogRow, OutcomeKind };

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
  startServers: (overrides: ListenOverrides | null) => call<ServerStatus>("start_servers", { overrides }),
  stopServers: () => call<ServerStatus>("stop_servers"),
  serverStatus: () => call<ServerStatus>("server_status"),
  liveBoard: () => call<Tile[]>("live_board"),
  /** The newest `limit` requests of the fetch log (the desk's default when null), oldest first. */
  liveHistory: (limit: number | null = null) => call<LogRow[]>("live_history", { limit }),
  /** Every batch of server events from now on goes to `onBatch`. */
  liveSubscribe: (onBatch: (batch: LiveBatch) => void) => {
    const channel = new Channel<LiveBatch>();
    channel.onmessage = onBatch;
    return call<void>("live_subscribe", { onBatch: channel });
  },
};

export const eventsApi = {
  /** Every desk event from now on (for whichever desk is open) goes to `onEvent`. */
  deskSubscribe: (onEvent: (event: DeskEvent) => void) => {
    const channel = new Channel<DeskEvent>();
    channel.onmessage = onEvent;
    return call<void>("desk_subscribe", { onEvent: channel });
  },
};
