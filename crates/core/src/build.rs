//! The builder: desk + inventory → every file a phone may ask for, in `DESK/build/`, and a
//! manifest that maps each request name to its file, content hash and version.
//!
//! Invariants:
//! - Everything is computed in memory first. An error in a shared input (profile syntax,
//!   `extends`, a model file, the catalogue, settings) writes nothing, so the last good
//!   artifacts keep serving. An error in one device's own values (its overrides, its
//!   variables, a value that fails only after substitution) holds back only that device: its
//!   last good files stay in the manifest unchanged, and the manifest's `held` map says why.
//! - With `[encryption] mode = "per-device"` (the default) a device's XML is encrypted with
//!   its own generated password unless a profile or the device sets P1359; it is never
//!   written in clear for want of a password.
//! - Every file is written atomically (temp file in `build/.tmp/`, then rename), so a reader
//!   never sees a half-written file.
//! - Incremental: an artifact whose input (plaintext and password) is unchanged is not
//!   rewritten. Encrypted files get a fresh random salt only when their content changed, so
//!   rebuilding does not churn them.
//! - No network I/O: the server's address arrives as [`BuildOptions`].

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::catalog::Catalog;
use crate::desk::{Desk, EncryptionMode};
use crate::format::{binary, crypt, xml};
use crate::inventory::{Device, DeviceState, Inventory};
use crate::profile::{EffectiveConfig, ProfileSet, Source, Sourced, Target};
use crate::{Diagnostic, Error, Mac, PName, Result};

pub const MANIFEST_FILE: &str = "manifest.json";
/// Changes since `manifest.json` was written, one JSON object per line. Device-only
/// rebuilds append here instead of rewriting the whole manifest (tens of megabytes for a big
/// desk); the next full build folds it back in.
pub const JOURNAL_FILE: &str = "manifest.journal";
pub const TEMP_DIR: &str = ".tmp";

/// Well-known P-values the builder itself reads or fills.
pub mod pvalues {
    use crate::PName;
    const fn p(n: u32) -> PName {
        match PName::new(n) {
            Some(p) => p,
            None => panic!("P-value number out of range"),
        }
    }
    /// Upgrade and provisioning via: 0 TFTP, 1 HTTP, 2 HTTPS.
    pub const PROVISION_PROTOCOL: PName = p(212);
    pub const FIRMWARE_SERVER: PName = p(192);
    pub const CONFIG_SERVER: PName = p(237);
    pub const FIRMWARE_PREFIX: PName = p(232);
    pub const FIRMWARE_POSTFIX: PName = p(233);
    pub const CONFIG_PREFIX: PName = p(234);
    pub const CONFIG_POSTFIX: PName = p(235);
    pub const XML_PASSWORD: PName = p(1359);
    pub const HTTP_USER: PName = p(1360);
    pub const HTTP_PASSWORD: PName = p(1361);
    /// Account 1's SIP user ID, authenticate ID and password: what a phone challenges a
    /// re-provision NOTIFY with, and what the NOTIFY's request URI names.
    pub const SIP_USER_ID: PName = p(35);
    pub const SIP_AUTH_ID: PName = p(36);
    pub const SIP_AUTH_PASSWORD: PName = p(34);
    /// Account 1's local SIP port (5060 when unset): where the phone listens for a NOTIFY.
    pub const LOCAL_SIP_PORT: PName = p(40);
    /// Syslog server (host, or host:port off port 514) and level (0 none … 4 error).
    pub const SYSLOG_SERVER: PName = p(207);
    pub const SYSLOG_LEVEL: PName = p(208);

    /// What the binary file carries when the XML is encrypted: enough to find the server and
    /// decrypt, never the SIP secrets.
    pub const BOOTSTRAP: [PName; 10] = [
        XML_PASSWORD,
        PROVISION_PROTOCOL,
        CONFIG_SERVER,
        FIRMWARE_SERVER,
        FIRMWARE_PREFIX,
        FIRMWARE_POSTFIX,
        CONFIG_PREFIX,
        CONFIG_POSTFIX,
        HTTP_USER,
        HTTP_PASSWORD,
    ];
}

/// How phones reach this machine; fills P237/P192/P212 where the profiles leave them empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAddress {
    pub scheme: Scheme,
    pub host: String,
    pub port: Option<u16>,
    /// URL path under which files are served, e.g. `/` or `/gs/`.
    pub base_path: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Tftp,
    Http,
    Https,
}

impl Scheme {
    /// The P212 value.
    fn p212(self) -> &'static str {
        match self {
            Scheme::Tftp => "0",
            Scheme::Http => "1",
            Scheme::Https => "2",
        }
    }
}

impl ServerAddress {
    /// `host[:port]/path` without scheme, the form P237 and P192 take.
    pub fn config_path(&self) -> String {
        let mut text = self.host.clone();
        if let Some(port) = self.port {
            text.push_str(&format!(":{port}"));
        }
        let path = self.base_path.trim_matches('/');
        if !path.is_empty() {
            text.push('/');
            text.push_str(path);
        }
        text
    }
}

/// The desk's syslog receiver as phones are told to reach it; fills P207/P208 where the
/// profiles leave them empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogTarget {
    pub host: String,
    pub port: u16,
    pub level: crate::syslog::SyslogLevel,
}

impl SyslogTarget {
    /// Where phones send syslog unless told a port.
    pub const DEFAULT_PORT: u16 = 514;

    /// The P207 value: the host alone on port 514 (every firmware reads that), else
    /// `host:port`.
    pub fn p207(&self) -> String {
        if self.port == Self::DEFAULT_PORT {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub server: Option<ServerAddress>,
    /// From `[encryption] mode`; per-device unless the desk turns it off.
    pub encryption: EncryptionMode,
    /// The syslog receiver, while it runs (or, outside `serve`, when the settings turn it
    /// on and name a `public_host`).
    pub syslog: Option<SyslogTarget>,
}

impl BuildOptions {
    /// Options for a build outside `serve`: the server's address is known only when the desk
    /// names a `public_host`; the protocol is the first configured of HTTP, HTTPS, TFTP.
    pub fn from_settings(settings: &crate::desk::DeskSettings) -> BuildOptions {
        let server = &settings.server;
        let encryption = settings.encryption.mode;
        let syslog_settings = settings.syslog();
        let syslog = server.public_host.clone().and_then(|host| {
            let listen = syslog_settings.listen_address()?;
            let port = listen.rsplit_once(':')?.1.parse::<u16>().ok()?;
            Some(SyslogTarget {
                host,
                port,
                level: syslog_settings.level,
            })
        });
        let Some(host) = server.public_host.clone() else {
            return BuildOptions {
                server: None,
                encryption,
                syslog,
            };
        };
        let configured = [
            (Scheme::Http, &server.http),
            (Scheme::Https, &server.https),
            (Scheme::Tftp, &server.tftp),
        ];
        let Some((scheme, listen)) = configured.into_iter().find_map(|(scheme, listen)| {
            // A server turned off (`"off"`) is not where phones go.
            let on = listen
                .as_ref()
                .filter(|l| !crate::settings_edit::is_off(l))?;
            Some((scheme, on))
        }) else {
            return BuildOptions {
                server: None,
                encryption,
                syslog,
            };
        };
        let port = listen
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse::<u16>().ok())
            .filter(|port| *port != default_port(scheme));
        BuildOptions {
            server: Some(ServerAddress {
                scheme,
                host,
                port,
                base_path: match scheme {
                    Scheme::Tftp => "/".into(),
                    _ => server.base_path.clone(),
                },
            }),
            encryption,
            syslog,
        }
    }
}

fn default_port(scheme: Scheme) -> u16 {
    match scheme {
        Scheme::Tftp => 69,
        Scheme::Http => 80,
        Scheme::Https => 443,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
#[serde(rename_all = "kebab-case")]
pub enum ArtifactKind {
    /// `cfg<mac>` / `cfg<mac>.bin`.
    DeviceBinary,
    /// `cfg<mac>.xml`.
    DeviceXml,
    /// `cfg<model>.xml`.
    ModelXml,
    /// `cfg.xml`.
    GenericXml,
    /// A file of `firmware/`, under its own name or a prefixed/postfixed one.
    Firmware,
}

impl ArtifactKind {
    /// The name serde gives it (`device-xml`), for writers that do without serde.
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactKind::DeviceBinary => "device-binary",
            ArtifactKind::DeviceXml => "device-xml",
            ArtifactKind::ModelXml => "model-xml",
            ArtifactKind::GenericXml => "generic-xml",
            ArtifactKind::Firmware => "firmware",
        }
    }
}

/// One request name the servers answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ManifestEntry {
    /// The file, relative to the desk root (`build/cfg000b82123456.xml`, `firmware/x.bin`).
    pub file: String,
    /// SHA-256 of the bytes served.
    pub hash: String,
    /// SHA-256 of what the content is made from (plaintext and password); decides whether
    /// the artifact changed, since encrypted bytes differ on every encryption.
    pub input: String,
    /// The build number in which this content last changed.
    pub version: u64,
    pub kind: ArtifactKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<Mac>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    pub encrypted: bool,
    pub size: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// Increments on every build that changed something.
    pub build: u64,
    /// Request name (lowercase) → entry.
    pub entries: BTreeMap<String, ManifestEntry>,
    /// Devices whose own values have errors, with the messages: their files were held back
    /// (the entries above are their last good ones, if any), and they need attention.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub held: BTreeMap<Mac, Vec<String>>,
}

/// One line of the manifest journal.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct JournalRecord {
    build: u64,
    set: BTreeMap<String, ManifestEntry>,
    remove: Vec<String>,
    /// The whole held map after this build, when it changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    held: Option<BTreeMap<Mac, Vec<String>>>,
}

impl Manifest {
    /// Reads `build/manifest.json` and replays `build/manifest.journal` over it; a missing
    /// manifest is an empty one.
    pub fn load(build_dir: &Path) -> Result<Manifest> {
        let path = build_dir.join(MANIFEST_FILE);
        let unreadable = |path: &Path, e: &dyn std::fmt::Display| {
            Error::Invalid(format!(
                "{}: unreadable manifest ({e}); delete the build folder and build again",
                path.display()
            ))
        };
        let mut manifest: Manifest = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| unreadable(&path, &e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Manifest::default(),
            Err(e) => return Err(Error::io(path, e)),
        };
        let journal = build_dir.join(JOURNAL_FILE);
        let text = match fs::read_to_string(&journal) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(manifest),
            Err(e) => return Err(Error::io(journal, e)),
        };
        for line in text.lines() {
            // A line cut short by a crash is the last one; the files it names are rewritten
            // by the next build, which compares inputs.
            let Ok(record) = serde_json::from_str::<JournalRecord>(line) else {
                break;
            };
            // Records older than the manifest were folded into it by a full build.
            if record.build <= manifest.build {
                continue;
            }
            for name in &record.remove {
                manifest.entries.remove(name);
            }
            manifest.entries.extend(record.set);
            if let Some(held) = record.held {
                manifest.held = held;
            }
            manifest.build = record.build;
        }
        Ok(manifest)
    }

    pub fn get(&self, request_name: &str) -> Option<&ManifestEntry> {
        self.entries.get(&request_name.to_ascii_lowercase())
    }
}

/// A device whose own values have errors: its files were held back, its last good ones (if
/// any) keep serving.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct HeldDevice {
    #[cfg_attr(feature = "ts", ts(as = "String"))]
    pub mac: Mac,
    pub diagnostics: Vec<Diagnostic>,
}

/// What a build did, for the CLI's output and the app's "rebuilt 42 files in 35 ms".
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BuildReport {
    /// Whether the new artifacts were published (false when a shared input has errors; true
    /// when only some devices were held back).
    pub published: bool,
    /// Devices held back by errors in their own values; their errors are here, not in
    /// `diagnostics`.
    pub held: Vec<HeldDevice>,
    pub build: u64,
    pub devices: usize,
    pub models: usize,
    /// Request names in the manifest.
    pub artifacts: usize,
    /// Request names whose file was (re)written.
    pub written: Vec<String>,
    /// Request names that disappeared (device removed, prefix changed).
    pub removed: Vec<String>,
    pub unchanged: usize,
    pub diagnostics: Vec<Diagnostic>,
    pub elapsed_ms: f64,
}

impl BuildReport {
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }
}

/// An artifact computed in memory, before it is compared with the manifest and written.
struct Planned {
    name: String,
    kind: ArtifactKind,
    mac: Option<Mac>,
    model: Option<String>,
    content: Content,
}

enum Content {
    Generated {
        plaintext: Vec<u8>,
        password: Option<String>,
    },
    /// A firmware file, served from where it lies.
    External {
        relative: String,
        size: u64,
        modified: u128,
    },
}

impl Content {
    fn input_hash(&self, kind: ArtifactKind) -> String {
        let mut hasher = Sha256::new();
        hasher.update(format!("{kind:?}\0").as_bytes());
        match self {
            Content::Generated {
                plaintext,
                password,
            } => {
                hasher.update(plaintext);
                if let Some(password) = password {
                    hasher.update(b"\0password\0");
                    hasher.update(password.as_bytes());
                }
            }
            Content::External {
                relative,
                size,
                modified,
            } => {
                hasher.update(format!("{relative}\0{size}\0{modified}").as_bytes());
            }
        }
        hex::encode(hasher.finalize())
    }
}

/// Keeps the last manifest in memory so repeated builds (the watcher, the app) skip reading it.
#[derive(Debug)]
pub struct Builder {
    desk: Desk,
    manifest: Option<Manifest>,
    /// What the last full build in this process was made from; a device-only rebuild is
    /// valid only while these are unchanged.
    last_full: Option<FullBuildInputs>,
    credentials: CredentialTable,
    /// What the builds read, checked against the disk before anything is written.
    inputs: crate::build_inputs::InputGuard,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FullBuildInputs {
    profiles: [u8; 32],
    server: Option<ServerAddress>,
    models: BTreeSet<String>,
    config_affixes: BTreeSet<(String, String)>,
    firmware_affixes: BTreeSet<(String, String)>,
}

/// The HTTP user name and password (P1360/P1361) phones send to the config server.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpCredentials {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for HttpCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the password, not even in a debug log.
        write!(
            f,
            "HttpCredentials {{ user: {:?}, password: {} }}",
            self.user,
            crate::pvalue::MASK
        )
    }
}

impl HttpCredentials {
    fn from_config(config: &EffectiveConfig) -> Option<HttpCredentials> {
        let user = config.non_empty(pvalues::HTTP_USER)?;
        Some(HttpCredentials {
            user: user.to_string(),
            password: config.get(pvalues::HTTP_PASSWORD).unwrap_or("").to_string(),
        })
    }
}

/// Which credentials a server expects: the device's own, else its model's, else the
/// generic (global layer) ones. Stored with each published build (`build_record`), so a
/// server that starts with broken profiles authenticates phones for the files it serves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CredentialTable {
    pub devices: BTreeMap<Mac, HttpCredentials>,
    pub models: BTreeMap<String, HttpCredentials>,
    pub generic: Option<HttpCredentials>,
}

impl CredentialTable {
    /// The credentials a request must carry: from the device when it is known, else from
    /// the model-wide or generic configuration.
    pub fn lookup(&self, mac: Option<Mac>, model: Option<&str>) -> Option<&HttpCredentials> {
        if let Some(mac) = mac
            && self.devices.contains_key(&mac)
        {
            return self.devices.get(&mac);
        }
        model
            .and_then(|m| self.models.get(&m.to_ascii_lowercase()))
            .or(self.generic.as_ref())
    }
}

/// Which part of the manifest a publish replaces.
enum Scope {
    All,
    /// Only the entries of these devices; everything else is carried over as it is.
    Devices(BTreeSet<Mac>),
}

impl Builder {
    pub fn new(desk: Desk) -> Builder {
        Builder {
            desk,
            manifest: None,
            last_full: None,
            credentials: CredentialTable::default(),
            inputs: crate::build_inputs::InputGuard::default(),
        }
    }

    /// What the builds read and whether an input "being written" holds a build back.
    pub fn inputs(&mut self) -> &mut crate::build_inputs::InputGuard {
        &mut self.inputs
    }

    pub fn desk(&self) -> &Desk {
        &self.desk
    }

    /// P1360/P1361 of the last published build, for the servers' authentication. Empty
    /// until this builder has built.
    pub fn credentials(&self) -> &CredentialTable {
        &self.credentials
    }

    /// The manifest of the last published build (read from disk on first use).
    pub fn manifest(&mut self) -> Result<&Manifest> {
        if self.manifest.is_none() {
            let build_dir = self.desk.build_dir();
            let manifest = Manifest::load(&build_dir)?;
            // A new builder (a restart) still knows the credentials that go with the files it
            // finds, so a device held back keeps authenticating for its last good files. A
            // table of another build, or an unreadable one, is not trusted: the next published
            // build writes it again.
            if let Ok(Some(stored)) = crate::build_record::load_credentials(&build_dir)
                && stored.build == manifest.build
                && self.credentials == CredentialTable::default()
            {
                self.credentials = stored.table;
            }
            self.manifest = Some(manifest);
        }
        Ok(self.manifest.get_or_insert_with(Manifest::default))
    }

    /// Builds every artifact of the desk. Errors in technician input come back as
    /// diagnostics in the report (with `published: false`); `Err` is for I/O failures.
    pub fn build(&mut self, inventory: &Inventory, options: &BuildOptions) -> Result<BuildReport> {
        let started = Instant::now();
        let profiles = ProfileSet::load(self.desk.root());
        let mut devices: Vec<Device> = inventory
            .list_devices()?
            .into_iter()
            .filter(|d| d.state == DeviceState::Inventory)
            .collect();
        fill_passwords(inventory, &mut devices, options)?;
        let mut report = BuildReport {
            devices: devices.len(),
            diagnostics: profiles.diagnostics().to_vec(),
            ..BuildReport::default()
        };
        let catalog = load_catalog(&self.desk, &mut report.diagnostics);
        let planned = plan(
            &self.desk,
            &profiles,
            &catalog,
            &devices,
            options,
            &mut report,
        );
        self.inputs
            .check(self.desk.root(), profiles.inputs(), &mut report.diagnostics);
        if report.errors() > 0 {
            self.last_full = None;
            unhold(&mut report);
            report.elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
            return Ok(report);
        }
        let (planned, inputs, mut credentials) = planned?;
        let held = held_map(&report.held);
        self.publish(planned, Scope::All, &held, &mut report)?;
        self.record_changes(inventory, &devices, &mut report);
        // A held device keeps being served its last good files, so the credentials that go
        // with them, when this process knows them.
        for mac in held.keys() {
            if let Some(old) = self.credentials.devices.get(mac) {
                credentials.devices.insert(*mac, old.clone());
            }
        }
        // Only once the files are out: a failed publish keeps the credentials that match the
        // files still being served.
        self.credentials = credentials;
        self.inputs.published(self.desk.root(), profiles.inputs())?;
        let build_dir = self.desk.build_dir();
        crate::build_record::save_credentials(&build_dir, report.build, &self.credentials)?;
        self.last_full = Some(FullBuildInputs {
            profiles: profiles.fingerprint(),
            server: options.server.clone(),
            ..inputs
        });
        report.elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        Ok(report)
    }

    /// Rebuilds only the files of these devices (added, edited or removed in the inventory),
    /// which is what an edit in the app needs. Falls back to a full build whenever the change
    /// could reach other files: changed profiles or server, a new model, new prefixes.
    pub fn rebuild_devices(
        &mut self,
        inventory: &Inventory,
        macs: &[Mac],
        options: &BuildOptions,
    ) -> Result<BuildReport> {
        let started = Instant::now();
        let profiles = ProfileSet::load(self.desk.root());
        let Some(last) = self.last_full.clone() else {
            return self.build(inventory, options);
        };
        if last.profiles != profiles.fingerprint() || last.server != options.server {
            return self.build(inventory, options);
        }
        let mut devices = Vec::new();
        for mac in macs {
            if let Some(device) = inventory.get_device(*mac)?
                && device.state == DeviceState::Inventory
            {
                devices.push(device);
            }
        }
        fill_passwords(inventory, &mut devices, options)?;
        let mut report = BuildReport {
            diagnostics: profiles.diagnostics().to_vec(),
            ..BuildReport::default()
        };
        let catalog = load_catalog(&self.desk, &mut report.diagnostics);
        let mut planned = Vec::new();
        let mut credentials = Vec::new();
        for device in &devices {
            if !last.models.contains(&device.model) {
                return self.build(inventory, options);
            }
            let outcome = plan_device(&profiles, &catalog, device, options);
            // A held device's prefixes come from values in error; it publishes nothing.
            if outcome.held.is_empty()
                && (!last.config_affixes.contains(&outcome.config_affixes)
                    || !last.firmware_affixes.contains(&outcome.firmware_affixes))
            {
                return self.build(inventory, options);
            }
            report.diagnostics.extend(outcome.diagnostics);
            if outcome.held.is_empty() {
                credentials.push((device.mac, outcome.credentials));
            } else {
                report.held.push(HeldDevice {
                    mac: device.mac,
                    diagnostics: outcome.held,
                });
            }
            planned.extend(outcome.artifacts);
        }
        report.devices = devices.len();
        self.inputs
            .check(self.desk.root(), profiles.inputs(), &mut report.diagnostics);
        if report.errors() > 0 {
            unhold(&mut report);
            report.elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
            return Ok(report);
        }
        let held = held_map(&report.held);
        self.publish(
            planned,
            Scope::Devices(macs.iter().copied().collect()),
            &held,
            &mut report,
        )?;
        self.record_changes(inventory, &devices, &mut report);
        for mac in macs.iter().filter(|mac| !held.contains_key(mac)) {
            self.credentials.devices.remove(mac);
        }
        for (mac, found) in credentials {
            if let Some(found) = found {
                self.credentials.devices.insert(mac, found);
            }
        }
        self.inputs.published(self.desk.root(), profiles.inputs())?;
        let build_dir = self.desk.build_dir();
        crate::build_record::save_credentials(&build_dir, report.build, &self.credentials)?;
        report.elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        Ok(report)
    }

    /// Adds the published build's changes to the history of the devices they reach (see
    /// [`crate::build_events`]): here, so the desk's builds and the servers' alike record them.
    fn record_changes(&self, inventory: &Inventory, devices: &[Device], report: &mut BuildReport) {
        if let Some(manifest) = &self.manifest {
            crate::build_events::record(inventory, manifest, devices, report);
        }
    }

    /// Compares the plan with the last manifest, writes what changed, removes what is gone,
    /// and writes the new manifest last.
    /// `held` are the devices of `scope` whose files are held back: their entries are carried
    /// over as they are, and the manifest's `held` map is updated for the devices of `scope`.
    fn publish(
        &mut self,
        planned: Vec<Planned>,
        scope: Scope,
        held: &BTreeMap<Mac, Vec<String>>,
        report: &mut BuildReport,
    ) -> Result<()> {
        let build_dir = self.desk.build_dir();
        let temp_dir = build_dir.join(TEMP_DIR);
        fs::create_dir_all(&temp_dir).map_err(|e| Error::io(&temp_dir, e))?;
        crate::build_record::remove_temp_files(&build_dir, crate::build_record::STALE_TEMP_AGE)?;
        self.manifest()?;
        let mut manifest = self.manifest.take().unwrap_or_default();
        let previous_build = manifest.build;
        let next_build = previous_build + 1;
        let desk_root = self.desk.root().to_path_buf();

        let outcomes: Vec<Result<(String, ManifestEntry, bool)>> = planned
            .into_par_iter()
            .map(|item| publish_one(item, &manifest, &desk_root, &temp_dir, next_build))
            .collect();

        let mut next: BTreeMap<String, ManifestEntry> = BTreeMap::new();
        for outcome in outcomes {
            let (name, entry, written) = outcome?;
            if written {
                report.written.push(name.clone());
            } else {
                report.unchanged += 1;
            }
            next.insert(name, entry);
        }
        // A held device's last good files keep serving: its entries are never replaced.
        let is_held = |entry: &ManifestEntry| entry.mac.is_some_and(|mac| held.contains_key(&mac));
        let replaced = |entry: &ManifestEntry| {
            !is_held(entry)
                && match &scope {
                    Scope::All => true,
                    Scope::Devices(macs) => entry.mac.is_some_and(|mac| macs.contains(&mac)),
                }
        };
        for (name, old) in manifest.entries.iter().filter(|(_, old)| replaced(old)) {
            if next.contains_key(name) {
                continue;
            }
            report.removed.push(name.clone());
            // Generated files are named after their request name, so no other entry uses
            // this file; firmware files belong to the technician and are never deleted.
            if old.kind != ArtifactKind::Firmware {
                let path = desk_root.join(&old.file);
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io(path, e)),
                }
            }
        }
        report.written.sort();
        report.removed.sort();
        let mut next_held = manifest.held.clone();
        match &scope {
            Scope::All => next_held.clone_from(held),
            Scope::Devices(macs) => {
                for mac in macs {
                    next_held.remove(mac);
                }
                next_held.extend(held.iter().map(|(mac, why)| (*mac, why.clone())));
            }
        }
        let held_changed = next_held != manifest.held;
        manifest.held = next_held;
        let changed = !report.written.is_empty() || !report.removed.is_empty() || held_changed;
        match scope {
            Scope::All => {
                let first = manifest.entries.is_empty() && previous_build == 0;
                for (name, old) in &manifest.entries {
                    if is_held(old) && !next.contains_key(name) {
                        next.insert(name.clone(), old.clone());
                    }
                }
                manifest.entries = next;
                if changed || first {
                    manifest.build = next_build;
                    let json = serde_json::to_vec(&manifest)
                        .map_err(|e| Error::Invalid(format!("manifest: {e}")))?;
                    write_atomically(&temp_dir, &build_dir.join(MANIFEST_FILE), &json)?;
                    // The new manifest holds everything the journal said.
                    let journal = build_dir.join(JOURNAL_FILE);
                    match fs::remove_file(&journal) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(Error::io(journal, e)),
                    }
                }
            }
            Scope::Devices(_) if changed => {
                for name in &report.removed {
                    manifest.entries.remove(name);
                }
                let set: BTreeMap<String, ManifestEntry> = report
                    .written
                    .iter()
                    .filter_map(|name| next.get(name).map(|e| (name.clone(), e.clone())))
                    .collect();
                let record = JournalRecord {
                    build: next_build,
                    set,
                    remove: report.removed.clone(),
                    held: held_changed.then(|| manifest.held.clone()),
                };
                append_journal(&build_dir.join(JOURNAL_FILE), &record)?;
                manifest.entries.extend(next);
                manifest.build = next_build;
            }
            Scope::Devices(_) => manifest.entries.extend(next),
        }
        report.published = true;
        report.build = manifest.build;
        report.artifacts = manifest.entries.len();
        self.manifest = Some(manifest);
        Ok(())
    }
}

/// Writes one planned artifact unless the manifest already has the same input on disk.
fn publish_one(
    item: Planned,
    previous: &Manifest,
    desk_root: &Path,
    temp_dir: &Path,
    next_build: u64,
) -> Result<(String, ManifestEntry, bool)> {
    let input = item.content.input_hash(item.kind);
    if let Some(old) = previous.entries.get(&item.name)
        && old.input == input
        && desk_root.join(&old.file).is_file()
    {
        return Ok((item.name, old.clone(), false));
    }
    let entry = match item.content {
        Content::Generated {
            plaintext,
            password,
        } => {
            let (bytes, encrypted) = match password {
                Some(password) => (crypt::encrypt(&plaintext, &password), true),
                None => (plaintext, false),
            };
            let file = format!("{}/{}", crate::desk::BUILD_DIR, item.name);
            write_atomically(temp_dir, &desk_root.join(&file), &bytes)?;
            ManifestEntry {
                file,
                hash: hex::encode(Sha256::digest(&bytes)),
                input,
                version: next_build,
                kind: item.kind,
                mac: item.mac,
                model: item.model,
                encrypted,
                size: bytes.len() as u64,
            }
        }
        Content::External { relative, size, .. } => {
            let path = desk_root.join(&relative);
            let bytes = fs::read(&path).map_err(|e| Error::io(&path, e))?;
            ManifestEntry {
                file: relative,
                hash: hex::encode(Sha256::digest(&bytes)),
                input,
                version: next_build,
                kind: item.kind,
                mac: item.mac,
                model: item.model,
                encrypted: false,
                size,
            }
        }
    };
    Ok((item.name, entry, true))
}

/// Appends one record as one line; a crash can only cut the last line, which `load` skips.
fn append_journal(path: &Path, record: &JournalRecord) -> Result<()> {
    let mut line =
        serde_json::to_vec(record).map_err(|e| Error::Invalid(format!("manifest journal: {e}")))?;
    line.push(b'\n');
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    file.write_all(&line).map_err(|e| Error::io(path, e))
}

/// Writes a generated file: a temp file in `temp_dir` (`build/.tmp/`), renamed over
/// `target`. Not synced: see [`crate::fsio::Durability::Rebuildable`].
pub fn write_atomically(temp_dir: &Path, target: &Path, bytes: &[u8]) -> Result<()> {
    crate::fsio::write_atomically(
        target,
        bytes,
        crate::fsio::Replace {
            temp_dir: Some(temp_dir),
            durability: crate::fsio::Durability::Rebuildable,
            access: crate::fsio::Access::Shared,
        },
    )
}

/// The variables a device's values may use.
pub fn device_vars(device: &Device, options: &BuildOptions) -> BTreeMap<String, String> {
    let mut vars = device.vars.clone();
    // The inventory's own columns win over custom variables of the same name.
    vars.insert("mac".into(), device.mac.to_string());
    vars.insert("model".into(), device.model.clone());
    // Columns are always defined (empty when not filled), so `{{ name }}` in a profile does
    // not break the build for a phone that has no name yet.
    vars.insert("name".into(), device.name.clone().unwrap_or_default());
    vars.insert("profile".into(), device.profile.clone().unwrap_or_default());
    add_server_vars(&mut vars, options);
    vars
}

fn add_server_vars(vars: &mut BTreeMap<String, String>, options: &BuildOptions) {
    if let Some(server) = &options.server {
        vars.insert("server_host".into(), server.host.clone());
        if let Some(port) = server.port {
            vars.insert("server_port".into(), port.to_string());
        }
    }
}

/// What the profile set layers for one inventory device: its MAC, model, profile chain,
/// variables (with the server's) and overrides.
pub fn device_target<'a>(device: &'a Device, options: &BuildOptions) -> Target<'a> {
    Target {
        mac: Some(device.mac),
        model: Some(&device.model),
        profile: device.profile.as_deref(),
        vars: device_vars(device, options),
        overrides: Some(&device.overrides),
    }
}

/// The `--var NAME=VALUE` flags that would give a device the variables it lacks, for the
/// messages that ask for them (CLI, auto-enroll).
pub fn var_flags(missing: &[String]) -> String {
    missing
        .iter()
        .map(|v| format!("--var {v}=VALUE"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The effective configuration of one inventory device, with the server's address filled in.
pub fn device_config(
    profiles: &ProfileSet,
    device: &Device,
    options: &BuildOptions,
) -> (EffectiveConfig, Vec<Diagnostic>) {
    let (mut config, diagnostics) = profiles.effective(&device_target(device, options));
    fill_server(&mut config, options);
    apply_encryption(&mut config, device, options.encryption);
    (config, diagnostics)
}

/// With per-device encryption, a device whose profiles and overrides leave P1359 empty gets
/// its generated password (from the inventory) as P1359: its XML is encrypted with it and its
/// binary `cfg<mac>` carries it. A P1359 set explicitly wins; with encryption off nothing
/// changes.
pub fn apply_encryption(config: &mut EffectiveConfig, device: &Device, mode: EncryptionMode) {
    if mode == EncryptionMode::Off || config.non_empty(pvalues::XML_PASSWORD).is_some() {
        return;
    }
    if let Some(password) = &device.xml_password {
        config.params.insert(
            pvalues::XML_PASSWORD,
            Sourced {
                value: password.clone(),
                source: Source::Generated,
            },
        );
    }
}

/// Gives every device without a generated password one (stored in the inventory first), so
/// per-device encryption never falls back to clear text. Devices added since the migration
/// have theirs already; this is for the older rows, on the first build that needs them.
fn fill_passwords(
    inventory: &Inventory,
    devices: &mut [Device],
    options: &BuildOptions,
) -> Result<()> {
    if options.encryption == EncryptionMode::Off {
        return Ok(());
    }
    let lacking: Vec<Mac> = devices
        .iter()
        .filter(|d| d.xml_password.is_none())
        .map(|d| d.mac)
        .collect();
    if lacking.is_empty() {
        return Ok(());
    }
    let stored = inventory.ensure_xml_passwords(&lacking)?;
    for device in devices.iter_mut() {
        if device.xml_password.is_none() {
            device.xml_password = stored.get(&device.mac).cloned();
        }
    }
    Ok(())
}

/// The variables the profile chain of `device` uses that the device does not define, each
/// once: what enrolling or adding it must ask for (`ext`, `sip_secret`). Built-in variables
/// (`name`, `mac`, `server_host`, …) are the desk's, not the device's, and are not listed.
pub fn missing_device_variables(profiles: &ProfileSet, device: &Device) -> Vec<String> {
    profiles
        .missing_variables(&device_target(device, &BuildOptions::default()))
        .into_iter()
        .filter(|name| {
            !crate::inventory::BUILTIN_VARIABLES
                .iter()
                .any(|b| b.eq_ignore_ascii_case(name))
        })
        .collect()
}

/// When a shared input holds back the whole build, no device is held on its own: their
/// errors go back among the others (they are often the shared error's consequence).
fn unhold(report: &mut BuildReport) {
    for held in std::mem::take(&mut report.held) {
        report.diagnostics.extend(held.diagnostics);
    }
}

/// The held map of a manifest from a report's held devices.
fn held_map(held: &[HeldDevice]) -> BTreeMap<Mac, Vec<String>> {
    held.iter()
        .map(|h| {
            let messages = h.diagnostics.iter().map(ToString::to_string).collect();
            (h.mac, messages)
        })
        .collect()
}

/// Whether an error found for one device is in that device's own values (so only the device
/// is held back) rather than in a shared input (so the whole build is). Its own: a variable it
/// lacks, a profile name that does not exist, a value from its overrides, or a profile value
/// that fails only once the device's variables are substituted.
fn is_own_error(d: &Diagnostic, config: &EffectiveConfig, profiles: &ProfileSet) -> bool {
    if matches!(
        d.kind,
        "undefined-variable" | "unknown-profile" | "no-password"
    ) {
        return true;
    }
    let Some(name) = d.field.as_deref().and_then(|f| f.parse::<PName>().ok()) else {
        return false;
    };
    match config.params.get(&name).map(|s| &s.source) {
        Some(Source::DeviceOverride | Source::Generated) => true,
        Some(Source::File { path, .. }) => profiles.uses_variables(path, name),
        Some(Source::Server) | None => false,
    }
}

/// Fills P237/P192/P212 from the server's own address where the profiles leave them empty,
/// so a phone that reads the binary file comes back to this server; and, while the syslog
/// receiver runs, P207 with it and P208 with its level. P208 is filled only along with P207:
/// a profile that sends its phones' syslog elsewhere keeps the level it chose (or the
/// phone's, none).
fn fill_server(config: &mut EffectiveConfig, options: &BuildOptions) {
    let fill = |config: &mut EffectiveConfig, name: PName, value: &str| {
        if config.non_empty(name).is_none() {
            config.params.insert(
                name,
                Sourced {
                    value: value.to_string(),
                    source: Source::Server,
                },
            );
            true
        } else {
            false
        }
    };
    if let Some(server) = &options.server {
        let path = server.config_path();
        fill(config, pvalues::CONFIG_SERVER, &path);
        fill(config, pvalues::FIRMWARE_SERVER, &path);
        fill(config, pvalues::PROVISION_PROTOCOL, server.scheme.p212());
    }
    if let Some(syslog) = &options.syslog
        && fill(config, pvalues::SYSLOG_SERVER, &syslog.p207())
    {
        fill(config, pvalues::SYSLOG_LEVEL, syslog.level.p208());
    }
}

/// Prefix and postfix of config (P234/P235) or firmware (P232/P233) names.
fn affixes(config: &EffectiveConfig, prefix: PName, postfix: PName) -> (String, String) {
    let get = |name| {
        config
            .get(name)
            .map(str::trim)
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    (get(prefix), get(postfix))
}

/// A prefix or postfix becomes part of a file name: it must not be able to leave `build/`.
fn check_affix(
    value: &str,
    name: PName,
    config: &EffectiveConfig,
    mac: Option<Mac>,
) -> Option<Diagnostic> {
    let bad = value.contains(['/', '\\', '\0'])
        || value.contains("..")
        || value.chars().any(char::is_control);
    bad.then(|| {
        let mut d = Diagnostic::error(
            "bad-affix",
            format!("{name} = {value:?}: a file-name prefix or postfix cannot contain '/', '\\', '..' or control characters"),
        )
        .field(name.to_string());
        if let Some(Sourced {
            source: Source::File { path, line },
            ..
        }) = config.params.get(&name)
        {
            d = d.in_file(path).at_line(*line);
        }
        if let Some(mac) = mac {
            d = d.device(mac);
        }
        d
    })
}

/// XML 1.0 cannot carry most control characters; report them with where they were set.
fn check_xml_values(config: &EffectiveConfig, mac: Option<Mac>, diagnostics: &mut Vec<Diagnostic>) {
    for (name, sourced) in &config.params {
        if let Err(e) = xml::check_value(&sourced.value) {
            let mut d =
                Diagnostic::error("bad-value", format!("{name}: {e}")).field(name.to_string());
            if let Source::File { path, line } = &sourced.source {
                d = d.in_file(path).at_line(*line);
            }
            if let Some(mac) = mac {
                d = d.device(mac);
            }
            diagnostics.push(d);
        }
    }
}

struct DevicePlan {
    artifacts: Vec<Planned>,
    credentials: Option<HttpCredentials>,
    /// Warnings, and errors in shared inputs found through this device.
    diagnostics: Vec<Diagnostic>,
    /// Errors in the device's own values; when any, it has no artifacts and is held back.
    held: Vec<Diagnostic>,
    config_affixes: (String, String),
    firmware_affixes: (String, String),
}

/// The desk's catalogue (built-in plus `DESK/catalog/`) for validating devices. A bad overlay
/// entry only means less validation, so its diagnostics come as warnings: a typo in the
/// catalogue must not stop the phones' files from being published.
fn load_catalog(desk: &Desk, diagnostics: &mut Vec<Diagnostic>) -> Catalog {
    let (catalog, found) = Catalog::load_with_overlay(desk.root());
    diagnostics.extend(found.into_iter().map(|mut d| {
        d.severity = crate::Severity::Warning;
        d
    }));
    catalog
}

/// One device's artifacts and problems, including every catalogue rule its values break.
fn plan_device(
    profiles: &ProfileSet,
    catalog: &Catalog,
    device: &Device,
    options: &BuildOptions,
) -> DevicePlan {
    let (config, mut diagnostics) = device_config(profiles, device, options);
    if options.encryption == EncryptionMode::PerDevice
        && config.non_empty(pvalues::XML_PASSWORD).is_none()
    {
        diagnostics.push(
            Diagnostic::error(
                "no-password",
                "the device has no generated XML password; build again",
            )
            .field(pvalues::XML_PASSWORD.to_string())
            .device(device.mac),
        );
    }
    check_xml_values(&config, Some(device.mac), &mut diagnostics);
    diagnostics.extend(catalog.check_config(&config, &device.model, Some(device.mac)));
    let config_affixes = affixes(&config, pvalues::CONFIG_PREFIX, pvalues::CONFIG_POSTFIX);
    let firmware_affixes = affixes(&config, pvalues::FIRMWARE_PREFIX, pvalues::FIRMWARE_POSTFIX);
    for name in [
        pvalues::CONFIG_PREFIX,
        pvalues::CONFIG_POSTFIX,
        pvalues::FIRMWARE_PREFIX,
        pvalues::FIRMWARE_POSTFIX,
    ] {
        if let Some(d) = config
            .get(name)
            .and_then(|v| check_affix(v, name, &config, Some(device.mac)))
        {
            diagnostics.push(d);
        }
    }
    let (held, diagnostics): (Vec<Diagnostic>, Vec<Diagnostic>) = diagnostics
        .into_iter()
        .partition(|d| d.is_error() && is_own_error(d, &config, profiles));
    let artifacts = if !held.is_empty() || diagnostics.iter().any(Diagnostic::is_error) {
        Vec::new()
    } else {
        device_artifacts(device, &config, &config_affixes)
    };
    DevicePlan {
        artifacts,
        credentials: HttpCredentials::from_config(&config),
        diagnostics,
        held,
        config_affixes,
        firmware_affixes,
    }
}

/// Computes every artifact in memory. Adds diagnostics to the report; returns the plan and
/// what it was made from.
fn plan(
    desk: &Desk,
    profiles: &ProfileSet,
    catalog: &Catalog,
    devices: &[Device],
    options: &BuildOptions,
    report: &mut BuildReport,
) -> Result<(Vec<Planned>, FullBuildInputs, CredentialTable)> {
    let per_device: Vec<DevicePlan> = devices
        .par_iter()
        .map(|device| plan_device(profiles, catalog, device, options))
        .collect();

    let mut planned = Vec::new();
    let mut config_affix_set: BTreeSet<(String, String)> =
        BTreeSet::from([(String::new(), String::new())]);
    let mut firmware_affix_set: BTreeSet<(String, String)> =
        BTreeSet::from([(String::new(), String::new())]);
    let mut credentials = CredentialTable::default();
    for (device, device_plan) in devices.iter().zip(per_device) {
        report.diagnostics.extend(device_plan.diagnostics);
        if !device_plan.held.is_empty() {
            // Its values are not trustworthy, so neither are the prefixes or the credentials
            // they name: its last good files keep the credentials published with them.
            report.held.push(HeldDevice {
                mac: device.mac,
                diagnostics: device_plan.held,
            });
            continue;
        }
        if let Some(found) = device_plan.credentials {
            credentials.devices.insert(device.mac, found);
        }
        planned.extend(device_plan.artifacts);
        config_affix_set.insert(device_plan.config_affixes);
        firmware_affix_set.insert(device_plan.firmware_affixes);
    }

    // Model-wide and generic files: for phones not in the inventory.
    let mut models: BTreeSet<String> = profiles.model_names().map(str::to_string).collect();
    models.extend(devices.iter().map(|d| d.model.clone()));
    report.models = models.len();
    let mut generic_vars = BTreeMap::new();
    add_server_vars(&mut generic_vars, options);
    let shared_files = models
        .iter()
        .map(|model| {
            (
                format!("cfg{model}.xml"),
                ArtifactKind::ModelXml,
                Some(model.as_str()),
            )
        })
        .chain([("cfg.xml".to_string(), ArtifactKind::GenericXml, None)]);
    for (base_name, kind, model) in shared_files {
        let mut vars = generic_vars.clone();
        if let Some(model) = model {
            vars.insert("model".into(), model.to_string());
        }
        let target = Target {
            model,
            vars,
            ..Target::default()
        };
        let (mut config, diagnostics) = profiles.effective(&target);
        fill_server(&mut config, options);
        for d in diagnostics {
            // A value that needs a device's own variable (`{{ ext }}`) cannot be in a file
            // shared by many phones: it is left out, which is worth a warning, not an error.
            if d.kind == "undefined-variable" {
                let mut warning = Diagnostic::warning(
                    "device-only-value",
                    format!(
                        "{} left out of {base_name}: it needs a device variable",
                        d.field.clone().unwrap_or_default()
                    ),
                );
                warning.file = d.file;
                warning.line = d.line;
                warning.column = d.column;
                warning.field = d.field;
                report.diagnostics.push(warning);
            } else {
                report.diagnostics.push(d);
            }
        }
        check_xml_values(&config, None, &mut report.diagnostics);
        if let Some(found) = HttpCredentials::from_config(&config) {
            match model {
                Some(model) => {
                    credentials.models.insert(model.to_string(), found);
                }
                None => credentials.generic = Some(found),
            }
        }
        let values = config.values();
        let plaintext = xml::write_config(None, &values).into_bytes();
        let password = config.non_empty(pvalues::XML_PASSWORD).map(str::to_string);
        for (prefix, postfix) in &config_affix_set {
            planned.push(Planned {
                name: format!("{prefix}{base_name}{postfix}"),
                kind,
                mac: None,
                model: model.map(str::to_string),
                content: Content::Generated {
                    plaintext: plaintext.clone(),
                    password: password.clone(),
                },
            });
        }
    }

    planned.extend(firmware_artifacts(desk, &firmware_affix_set, report)?);

    // Two artifacts must never answer the same request name.
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (index, item) in planned.iter().enumerate() {
        if let Some(first) = seen.insert(&item.name, index) {
            let first = &planned[first];
            let mut d = Diagnostic::error(
                "name-clash",
                format!(
                    "two files would answer the request `{}` ({:?} and {:?}); check the prefixes and postfixes (P232-P235)",
                    item.name, first.kind, item.kind
                ),
            );
            if let Some(mac) = item.mac.or(first.mac) {
                d = d.device(mac);
            }
            report.diagnostics.push(d);
        }
    }
    let inputs = FullBuildInputs {
        profiles: profiles.fingerprint(),
        server: options.server.clone(),
        models,
        config_affixes: config_affix_set,
        firmware_affixes: firmware_affix_set,
    };
    Ok((planned, inputs, credentials))
}

/// `cfg<mac>`, `cfg<mac>.bin` and `cfg<mac>.xml`, under the plain and the prefixed names.
fn device_artifacts(
    device: &Device,
    config: &EffectiveConfig,
    (prefix, postfix): &(String, String),
) -> Vec<Planned> {
    let values = config.values();
    let password = config.non_empty(pvalues::XML_PASSWORD).map(str::to_string);
    let binary_params: Vec<(PName, String)> = if password.is_some() {
        pvalues::BOOTSTRAP
            .iter()
            .filter_map(|name| config.non_empty(*name).map(|v| (*name, v.to_string())))
            .collect()
    } else {
        values.iter().map(|(k, v)| (*k, v.clone())).collect()
    };
    let binary = binary::encode(device.mac, &binary_params);
    let xml = xml::write_config(Some(device.mac), &values).into_bytes();
    let mac = device.mac;
    let mut names = vec![
        (format!("cfg{mac}"), ArtifactKind::DeviceBinary),
        (format!("cfg{mac}.bin"), ArtifactKind::DeviceBinary),
        (format!("cfg{mac}.xml"), ArtifactKind::DeviceXml),
    ];
    if !prefix.is_empty() || !postfix.is_empty() {
        let prefixed: Vec<_> = names
            .iter()
            .map(|(name, kind)| (format!("{prefix}{name}{postfix}"), *kind))
            .collect();
        names.extend(prefixed);
    }
    names
        .into_iter()
        .map(|(name, kind)| Planned {
            name,
            kind,
            mac: Some(mac),
            model: Some(device.model.clone()),
            content: match kind {
                ArtifactKind::DeviceBinary => Content::Generated {
                    plaintext: binary.clone(),
                    password: None,
                },
                _ => Content::Generated {
                    plaintext: xml.clone(),
                    password: password.clone(),
                },
            },
        })
        .collect()
}

/// Every file of `firmware/`, under its own name and the prefixed/postfixed names in use.
/// The folder is read by `firmware::scan`, the same reading the Firmware screen lists.
fn firmware_artifacts(
    desk: &Desk,
    affix_set: &BTreeSet<(String, String)>,
    report: &mut BuildReport,
) -> Result<Vec<Planned>> {
    let scan = crate::firmware::scan(desk)?;
    for path in &scan.not_utf8 {
        report.diagnostics.push(
            Diagnostic::warning(
                "firmware-name",
                "a firmware file name is not UTF-8; it is not served",
            )
            .in_file(desk.display_path(path)),
        );
    }
    let mut planned = Vec::new();
    for file in scan.files {
        let relative = format!("{}/{}", crate::desk::FIRMWARE_DIR, file.name);
        let lower = file.name.to_ascii_lowercase();
        for (prefix, postfix) in affix_set {
            planned.push(Planned {
                name: format!("{prefix}{lower}{postfix}"),
                kind: ArtifactKind::Firmware,
                mac: None,
                model: file.model.clone(),
                content: Content::External {
                    relative: relative.clone(),
                    size: file.size,
                    modified: file.modified_ns,
                },
            });
        }
    }
    Ok(planned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn artifact_kind_names_are_serdes() {
        for kind in [
            ArtifactKind::DeviceBinary,
            ArtifactKind::DeviceXml,
            ArtifactKind::ModelXml,
            ArtifactKind::GenericXml,
            ArtifactKind::Firmware,
        ] {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        desk: Desk,
        inventory: Inventory,
    }

    fn fixture(profiles: &[(&str, &str)]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("desk");
        fs::create_dir_all(root.join("profiles/models")).unwrap();
        fs::write(root.join(crate::desk::SETTINGS_FILE), "").unwrap();
        for (path, text) in profiles {
            fs::write(root.join(path), text).unwrap();
        }
        let desk = Desk::init(&root).unwrap();
        // `init` adds the sample files only where missing; keep the test's own view exact.
        if !profiles.iter().any(|(p, _)| *p == "profiles/office.toml") {
            fs::remove_file(root.join("profiles/office.toml")).unwrap();
        }
        if !profiles.iter().any(|(p, _)| *p == "profiles/global.toml") {
            fs::remove_file(root.join("profiles/global.toml")).unwrap();
        }
        if !profiles
            .iter()
            .any(|(p, _)| *p == "profiles/models/gxp2170.toml")
        {
            fs::remove_file(root.join("profiles/models/gxp2170.toml")).unwrap();
        }
        let inventory = desk.inventory().unwrap();
        Fixture {
            _dir: dir,
            desk,
            inventory,
        }
    }

    fn device(mac: &str, model: &str, profile: &str, vars: &[(&str, &str)]) -> Device {
        let mut device = Device::new(mac.parse().unwrap(), model);
        device.profile = Some(profile.to_string());
        device.vars = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        device
    }

    fn p(name: &str) -> PName {
        name.parse().unwrap()
    }

    /// Options for tests about something other than encryption: XML in clear, so they can
    /// read it back as it is.
    fn plain() -> BuildOptions {
        BuildOptions {
            encryption: EncryptionMode::Off,
            ..BuildOptions::default()
        }
    }

    const GLOBAL: &str = "[params]\nP30 = \"pool.ntp.org\"\n";
    const OFFICE: &str =
        "[params]\nP47 = \"pbx.example.com\"\nP35 = \"{{ ext }}\"\nP34 = \"{{ secret }}\"\n";

    fn read(f: &Fixture, name: &str) -> Vec<u8> {
        fs::read(f.desk.build_dir().join(name)).unwrap()
    }

    #[test]
    fn plain_device_gets_full_binary_and_xml_and_shared_files_leave_device_values_out() {
        let f = fixture(&[
            ("profiles/global.toml", GLOBAL),
            ("profiles/office.toml", OFFICE),
            (
                "profiles/models/gxp2170.toml",
                "[params]\nP1650 = 0\nP3 = \"{{ name }}\"\n",
            ),
        ]);
        f.inventory
            .upsert_device(&device(
                "000b82000001",
                "gxp2170",
                "office",
                &[("ext", "201"), ("secret", "s1")],
            ))
            .unwrap();
        let report = Builder::new(f.desk.clone())
            .build(&f.inventory, &plain())
            .unwrap();
        assert!(report.published, "{:?}", report.diagnostics);
        assert_eq!(report.devices, 1);

        let binary = binary::decode(&read(&f, "cfg000b82000001")).unwrap();
        let values: BTreeMap<PName, String> = binary.params.into_iter().collect();
        assert_eq!(values.get(&p("P34")).map(String::as_str), Some("s1"));
        assert_eq!(
            values.get(&p("P30")).map(String::as_str),
            Some("pool.ntp.org")
        );
        assert_eq!(read(&f, "cfg000b82000001"), read(&f, "cfg000b82000001.bin"));

        let xml = xml::read_config(std::str::from_utf8(&read(&f, "cfg000b82000001.xml")).unwrap())
            .unwrap();
        assert_eq!(xml.mac, Some("000b82000001".parse().unwrap()));
        let values: BTreeMap<PName, String> = xml.params.into_iter().collect();
        assert_eq!(values[&p("P35")], "201");
        assert_eq!(values[&p("P1650")], "0");

        let model =
            xml::read_config(std::str::from_utf8(&read(&f, "cfggxp2170.xml")).unwrap()).unwrap();
        let model_values: BTreeMap<PName, String> = model.params.into_iter().collect();
        assert_eq!(model.mac, None);
        assert_eq!(model_values.get(&p("P1650")).map(String::as_str), Some("0"));
        assert!(
            !model_values.contains_key(&p("P3")),
            "device-only value in the model file"
        );
        assert!(
            report
                .diagnostics
                .iter()
                .any(|d| d.kind == "device-only-value" && !d.is_error())
        );

        let generic = xml::read_config(std::str::from_utf8(&read(&f, "cfg.xml")).unwrap()).unwrap();
        let generic_values: BTreeMap<PName, String> = generic.params.into_iter().collect();
        assert_eq!(
            generic_values.keys().copied().collect::<Vec<_>>(),
            [p("P30")]
        );

        let manifest = Manifest::load(&f.desk.build_dir()).unwrap();
        let entry = manifest.get("CFG000B82000001.XML").unwrap();
        assert_eq!(entry.kind, ArtifactKind::DeviceXml);
        assert_eq!(entry.file, "build/cfg000b82000001.xml");
        assert_eq!(
            entry.hash,
            hex::encode(Sha256::digest(read(&f, "cfg000b82000001.xml")))
        );
        assert!(!entry.encrypted);
    }

    #[test]
    fn encrypted_device_binary_carries_only_bootstrap_values() {
        let f = fixture(&[
            ("profiles/global.toml", GLOBAL),
            (
                "profiles/office.toml",
                "[params]\nP34 = \"{{ secret }}\"\nP1359 = \"{{ pw }}\"\nP237 = \"prov.example/gs\"\nP1360 = \"phone\"\nP1361 = \"httppw\"\n",
            ),
        ]);
        f.inventory
            .upsert_device(&device(
                "000b82000002",
                "gxp2170",
                "office",
                &[("secret", "sip-secret"), ("pw", "xmlpw")],
            ))
            .unwrap();
        let mut builder = Builder::new(f.desk.clone());
        let report = builder
            .build(&f.inventory, &BuildOptions::default())
            .unwrap();
        assert!(report.published, "{:?}", report.diagnostics);
        let mac: Mac = "000b82000002".parse().unwrap();
        let credentials = builder
            .credentials()
            .lookup(Some(mac), Some("gxp2170"))
            .unwrap();
        assert_eq!(
            (credentials.user.as_str(), credentials.password.as_str()),
            ("phone", "httppw")
        );
        assert!(!format!("{credentials:?}").contains("httppw"));
        assert_eq!(builder.credentials().lookup(None, Some("gxp2170")), None);
        let binary = binary::decode(&read(&f, "cfg000b82000002")).unwrap();
        let names: Vec<String> = binary.params.iter().map(|(k, _)| k.to_string()).collect();
        assert_eq!(names, ["P1359", "P237", "P1360", "P1361"]);
        let encrypted = read(&f, "cfg000b82000002.xml");
        assert!(crypt::is_encrypted(&encrypted));
        let plain = String::from_utf8(crypt::decrypt(&encrypted, "xmlpw").unwrap()).unwrap();
        assert!(plain.contains("<P34>sip-secret</P34>"), "{plain}");
        assert!(
            Manifest::load(&f.desk.build_dir())
                .unwrap()
                .get("cfg000b82000002.xml")
                .unwrap()
                .encrypted
        );
    }

    #[test]
    fn rebuilds_are_incremental_and_removed_devices_lose_their_files() {
        let f = fixture(&[
            ("profiles/global.toml", GLOBAL),
            ("profiles/office.toml", OFFICE),
        ]);
        let mut a = device(
            "000b82000001",
            "gxp2170",
            "office",
            &[("ext", "201"), ("secret", "a")],
        );
        let b = device(
            "000b82000002",
            "gxp2170",
            "office",
            &[("ext", "202"), ("secret", "b")],
        );
        f.inventory.upsert_device(&a).unwrap();
        f.inventory.upsert_device(&b).unwrap();
        let options = plain();
        let mut builder = Builder::new(f.desk.clone());
        let first = builder.build(&f.inventory, &options).unwrap();
        assert_eq!(first.build, 1);
        assert_eq!(first.written.len(), first.artifacts);

        let again = Builder::new(f.desk.clone())
            .build(&f.inventory, &options)
            .unwrap();
        assert!(again.written.is_empty(), "{:?}", again.written);
        assert_eq!(again.build, 1);

        a.vars.insert("ext".into(), "301".into());
        f.inventory.upsert_device(&a).unwrap();
        let edited = builder
            .rebuild_devices(&f.inventory, &[a.mac], &options)
            .unwrap();
        assert_eq!(
            edited.written,
            [
                "cfg000b82000001",
                "cfg000b82000001.bin",
                "cfg000b82000001.xml"
            ]
        );
        assert_eq!(edited.build, 2);
        let full = Builder::new(f.desk.clone())
            .build(&f.inventory, &options)
            .unwrap();
        assert!(
            full.written.is_empty(),
            "targeted rebuild left work for a full build: {:?}",
            full.written
        );
        assert_eq!(
            Manifest::load(&f.desk.build_dir())
                .unwrap()
                .get("cfg000b82000001.xml")
                .unwrap()
                .version,
            2
        );
        assert_eq!(
            Manifest::load(&f.desk.build_dir())
                .unwrap()
                .get("cfg000b82000002.xml")
                .unwrap()
                .version,
            1
        );

        f.inventory.remove_device(b.mac).unwrap();
        let removed = builder
            .rebuild_devices(&f.inventory, &[b.mac], &options)
            .unwrap();
        assert_eq!(
            removed.removed,
            [
                "cfg000b82000002",
                "cfg000b82000002.bin",
                "cfg000b82000002.xml"
            ]
        );
        assert!(!f.desk.build_dir().join("cfg000b82000002.xml").exists());
        assert!(f.desk.build_dir().join("cfg000b82000001.xml").exists());

        // Device rebuilds went to the journal; reading it back gives the same manifest, and
        // the next full build that changes something folds it into manifest.json.
        assert!(f.desk.build_dir().join(JOURNAL_FILE).is_file());
        let in_memory = builder.manifest().unwrap().clone();
        assert_eq!(Manifest::load(&f.desk.build_dir()).unwrap(), in_memory);
        fs::write(
            f.desk.profiles_dir().join("global.toml"),
            "[params]\nP30 = \"ntp.example\"\n",
        )
        .unwrap();
        let full = builder.build(&f.inventory, &options).unwrap();
        assert!(!full.written.is_empty());
        assert!(!f.desk.build_dir().join(JOURNAL_FILE).exists());
        assert_eq!(
            Manifest::load(&f.desk.build_dir()).unwrap(),
            *builder.manifest().unwrap()
        );
    }

    /// Two devices on the `office` profile, built once; returns the fixture and their MACs.
    fn two_good_devices() -> (Fixture, Mac, Mac) {
        let f = fixture(&[
            ("profiles/global.toml", GLOBAL),
            ("profiles/office.toml", OFFICE),
        ]);
        let a = device(
            "000b82000001",
            "gxp2170",
            "office",
            &[("ext", "201"), ("secret", "a")],
        );
        let b = device(
            "000b82000002",
            "gxp2170",
            "office",
            &[("ext", "202"), ("secret", "b")],
        );
        f.inventory.upsert_device(&a).unwrap();
        f.inventory.upsert_device(&b).unwrap();
        let report = Builder::new(f.desk.clone())
            .build(&f.inventory, &plain())
            .unwrap();
        assert!(report.published && report.held.is_empty());
        (f, a.mac, b.mac)
    }

    fn names_of(manifest: &Manifest, mac: Mac) -> Vec<(String, ManifestEntry)> {
        manifest
            .entries
            .iter()
            .filter(|(_, e)| e.mac == Some(mac))
            .map(|(n, e)| (n.clone(), e.clone()))
            .collect()
    }

    #[test]
    fn a_device_lacking_a_variable_is_held_and_every_other_phone_gets_the_edit() {
        let (f, a, b) = two_good_devices();
        let good_b = read(&f, "cfg000b82000002.xml");
        let before = Manifest::load(&f.desk.build_dir()).unwrap();

        // The edit of a shared file, and device b loses a variable its profile needs.
        fs::write(
            f.desk.profiles_dir().join("global.toml"),
            "[params]\nP30 = \"changed\"\n",
        )
        .unwrap();
        let mut broken = f.inventory.get_device(b).unwrap().unwrap();
        broken.vars.remove("secret");
        f.inventory.upsert_device(&broken).unwrap();
        // A new device that was never complete gets no files at all.
        f.inventory
            .upsert_device(&device(
                "000b82000003",
                "gxp2170",
                "office",
                &[("ext", "203")],
            ))
            .unwrap();
        let mut builder = Builder::new(f.desk.clone());
        let report = builder.build(&f.inventory, &plain()).unwrap();
        assert!(report.published, "{:?}", report.diagnostics);
        assert_eq!(report.errors(), 0, "{:?}", report.diagnostics);
        let held: Vec<Mac> = report.held.iter().map(|h| h.mac).collect();
        assert_eq!(held, [b, "000b82000003".parse().unwrap()]);
        let why = &report.held[0].diagnostics;
        assert_eq!(why.len(), 1);
        assert_eq!(
            (why[0].kind, why[0].field.as_deref(), why[0].device),
            ("undefined-variable", Some("P34"), Some(b))
        );

        // The complete device got the edit; the held one keeps its last good files.
        let a_xml = String::from_utf8(read(&f, "cfg000b82000001.xml")).unwrap();
        assert!(a_xml.contains("<P30>changed</P30>"), "{a_xml}");
        assert_eq!(read(&f, "cfg000b82000002.xml"), good_b);
        let after = Manifest::load(&f.desk.build_dir()).unwrap();
        assert_eq!(names_of(&after, b), names_of(&before, b));
        assert_ne!(names_of(&after, a), names_of(&before, a));
        assert!(after.get("cfg000b82000003.xml").is_none());
        assert!(!f.desk.build_dir().join("cfg000b82000003.xml").exists());
        let messages = &after.held[&b];
        assert!(
            messages[0].contains("undefined variable `secret`"),
            "{messages:?}"
        );
        assert_eq!(after.held.len(), 2);

        // Giving it the variable releases it, through a device rebuild.
        broken.vars.insert("secret".into(), "b2".into());
        f.inventory.upsert_device(&broken).unwrap();
        let report = builder
            .rebuild_devices(&f.inventory, &[b], &plain())
            .unwrap();
        assert!(report.published && report.held.is_empty());
        let b_xml = String::from_utf8(read(&f, "cfg000b82000002.xml")).unwrap();
        assert!(b_xml.contains("<P34>b2</P34>") && b_xml.contains("<P30>changed</P30>"));
        let reloaded = Manifest::load(&f.desk.build_dir()).unwrap();
        assert_eq!(reloaded, *builder.manifest().unwrap());
        assert_eq!(
            reloaded.held.keys().copied().collect::<Vec<_>>(),
            ["000b82000003".parse::<Mac>().unwrap()]
        );
    }

    #[test]
    fn a_held_device_keeps_its_credentials_across_a_restart() {
        let f = fixture(&[
            ("profiles/global.toml", GLOBAL),
            (
                "profiles/office.toml",
                "[params]\nP35 = \"{{ ext }}\"\nP34 = \"{{ secret }}\"\nP1360 = \"user{{ ext }}\"\nP1361 = \"http-pw-{{ ext }}\"\n",
            ),
        ]);
        let mut phone = device(
            "000b82000001",
            "gxp2170",
            "office",
            &[("ext", "201"), ("secret", "a")],
        );
        f.inventory.upsert_device(&phone).unwrap();
        let report = Builder::new(f.desk.clone())
            .build(&f.inventory, &plain())
            .unwrap();
        assert!(report.published && report.held.is_empty());

        // The phone loses a variable, and the servers restart: a new builder.
        phone.vars.remove("secret");
        f.inventory.upsert_device(&phone).unwrap();
        let mut restarted = Builder::new(f.desk.clone());
        let report = restarted.build(&f.inventory, &plain()).unwrap();
        assert_eq!(report.held.len(), 1, "{:?}", report.diagnostics);
        let kept = restarted
            .credentials()
            .lookup(Some(phone.mac), Some("gxp2170"))
            .expect("the held phone's last good files still have their credentials");
        assert_eq!(
            (kept.user.as_str(), kept.password.as_str()),
            ("user201", "http-pw-201")
        );

        // Without the stored table, the held phone's new values (a new extension next to the
        // error) must not become its credentials either.
        phone.vars.insert("ext".into(), "999".into());
        f.inventory.upsert_device(&phone).unwrap();
        fs::remove_file(
            f.desk
                .build_dir()
                .join(crate::build_record::CREDENTIALS_FILE),
        )
        .unwrap();
        let mut forgetful = Builder::new(f.desk.clone());
        let report = forgetful.build(&f.inventory, &plain()).unwrap();
        assert_eq!(report.held.len(), 1, "{:?}", report.diagnostics);
        let found = forgetful
            .credentials()
            .lookup(Some(phone.mac), Some("gxp2170"));
        assert!(
            found.is_none_or(|c| c.user != "user999"),
            "credentials from values in error: {found:?}"
        );
    }

    #[test]
    fn a_device_rebuild_that_breaks_a_device_holds_only_it() {
        let (f, a, b) = two_good_devices();
        let good_a = read(&f, "cfg000b82000001.xml");
        let mut builder = Builder::new(f.desk.clone());
        builder.build(&f.inventory, &plain()).unwrap();
        let mut broken = f.inventory.get_device(a).unwrap().unwrap();
        // An override the catalogue refuses (P32, registration expiry, is bounded).
        broken.overrides.insert(p("P32"), "100000".into());
        f.inventory.upsert_device(&broken).unwrap();
        let report = builder
            .rebuild_devices(&f.inventory, &[a], &plain())
            .unwrap();
        assert!(report.published, "{:?}", report.diagnostics);
        assert_eq!(report.held.len(), 1, "{:?}", report.diagnostics);
        assert_eq!(report.held[0].diagnostics[0].field.as_deref(), Some("P32"));
        assert_eq!(read(&f, "cfg000b82000001.xml"), good_a);
        let manifest = Manifest::load(&f.desk.build_dir()).unwrap();
        assert!(manifest.held.contains_key(&a) && !manifest.held.contains_key(&b));
        assert!(manifest.get("cfg000b82000001.xml").is_some());
    }

    #[test]
    fn a_value_that_fails_only_after_substitution_is_the_devices_problem() {
        let f = fixture(&[("profiles/office.toml", "[params]\nP32 = \"{{ expiry }}\"\n")]);
        f.inventory
            .upsert_device(&device(
                "000b82000001",
                "gxp2170",
                "office",
                &[("expiry", "60")],
            ))
            .unwrap();
        f.inventory
            .upsert_device(&device(
                "000b82000002",
                "gxp2170",
                "office",
                &[("expiry", "100000")],
            ))
            .unwrap();
        let report = Builder::new(f.desk.clone())
            .build(&f.inventory, &plain())
            .unwrap();
        assert!(report.published, "{:?}", report.diagnostics);
        let held: Vec<Mac> = report.held.iter().map(|h| h.mac).collect();
        assert_eq!(held, ["000b82000002".parse::<Mac>().unwrap()]);
        assert!(f.desk.build_dir().join("cfg000b82000001.xml").exists());
    }

    #[test]
    fn errors_in_shared_inputs_publish_nothing_and_keep_the_last_good_build() {
        let (f, _, _) = two_good_devices();
        let good = read(&f, "cfg000b82000001.xml");
        let manifest = Manifest::load(&f.desk.build_dir()).unwrap();
        for (file, text) in [
            // Profile syntax.
            ("global.toml", "[params\nP30 = \"x\"\n"),
            // A literal value in a shared profile that the catalogue refuses.
            ("global.toml", "[params]\nP32 = \"100000\"\n"),
            // An `extends` that names nothing.
            (
                "office.toml",
                "extends = \"nope\"\n[params]\nP35 = \"{{ ext }}\"\n",
            ),
        ] {
            let path = f.desk.profiles_dir().join(file);
            let kept = fs::read_to_string(&path).unwrap();
            fs::write(&path, text).unwrap();
            let report = Builder::new(f.desk.clone())
                .build(&f.inventory, &plain())
                .unwrap();
            assert!(!report.published, "{text}");
            assert!(report.errors() > 0, "{text}");
            assert!(report.held.is_empty(), "{text}: {:?}", report.held);
            assert_eq!(read(&f, "cfg000b82000001.xml"), good);
            assert_eq!(Manifest::load(&f.desk.build_dir()).unwrap(), manifest);
            fs::write(&path, kept).unwrap();
        }
    }

    #[test]
    fn xml_is_encrypted_with_the_devices_generated_password_by_default() {
        let f = fixture(&[
            ("profiles/global.toml", GLOBAL),
            ("profiles/office.toml", OFFICE),
        ]);
        let phone = device(
            "000b82000001",
            "gxp2170",
            "office",
            &[("ext", "201"), ("secret", "sip-secret")],
        );
        f.inventory.upsert_device(&phone).unwrap();
        let password = f
            .inventory
            .get_device(phone.mac)
            .unwrap()
            .unwrap()
            .xml_password
            .unwrap();
        let mut builder = Builder::new(f.desk.clone());
        let report = builder
            .build(&f.inventory, &BuildOptions::default())
            .unwrap();
        assert!(report.published, "{:?}", report.diagnostics);
        let encrypted = read(&f, "cfg000b82000001.xml");
        assert!(crypt::is_encrypted(&encrypted));
        assert!(!String::from_utf8_lossy(&encrypted).contains("sip-secret"));
        let plain_xml = String::from_utf8(crypt::decrypt(&encrypted, &password).unwrap()).unwrap();
        assert!(plain_xml.contains("<P34>sip-secret</P34>"), "{plain_xml}");
        let binary = binary::decode(&read(&f, "cfg000b82000001")).unwrap();
        let values: BTreeMap<PName, String> = binary.params.into_iter().collect();
        assert_eq!(values.get(&p("P1359")), Some(&password));
        assert!(
            !values.contains_key(&p("P34")),
            "SIP secret in the binary file"
        );
        assert!(
            Manifest::load(&f.desk.build_dir())
                .unwrap()
                .get("cfg000b82000001.xml")
                .unwrap()
                .encrypted
        );
        // Rebuilding does not churn the salt.
        let again = builder
            .build(&f.inventory, &BuildOptions::default())
            .unwrap();
        assert!(again.written.is_empty(), "{:?}", again.written);

        // A device from before passwords gets one on the first build, stored for the next.
        f.inventory
            .upsert_device(&device("000b82000002", "gxp2170", "global", &[]))
            .unwrap();
        let mut old = f
            .inventory
            .get_device("000b82000002".parse().unwrap())
            .unwrap()
            .unwrap();
        old.xml_password = None;
        let mut devices = vec![old];
        fill_passwords(&f.inventory, &mut devices, &BuildOptions::default()).unwrap();
        let stored = f
            .inventory
            .get_device(devices[0].mac)
            .unwrap()
            .unwrap()
            .xml_password;
        assert_eq!(devices[0].xml_password, stored);

        // Turned off, the XML is plain; a P1359 set explicitly still encrypts.
        let report = builder.build(&f.inventory, &plain()).unwrap();
        assert!(report.published);
        let xml = String::from_utf8(read(&f, "cfg000b82000001.xml")).unwrap();
        assert!(xml.contains("<P34>sip-secret</P34>"), "{xml}");
        let mut explicit = f.inventory.get_device(phone.mac).unwrap().unwrap();
        explicit.overrides.insert(p("P1359"), "mine".into());
        f.inventory.upsert_device(&explicit).unwrap();
        for options in [plain(), BuildOptions::default()] {
            builder.build(&f.inventory, &options).unwrap();
            let encrypted = read(&f, "cfg000b82000001.xml");
            assert!(crypt::decrypt(&encrypted, "mine").is_ok());
            let binary = binary::decode(&read(&f, "cfg000b82000001")).unwrap();
            let values: BTreeMap<PName, String> = binary.params.into_iter().collect();
            assert_eq!(values[&p("P1359")], "mine");
        }
    }

    #[test]
    fn the_syslog_receiver_fills_p207_and_p208_only_where_profiles_leave_them_empty() {
        let receiver = |port| BuildOptions {
            syslog: Some(SyslogTarget {
                host: "192.0.2.10".into(),
                port,
                level: crate::syslog::SyslogLevel::Info,
            }),
            ..BuildOptions::default()
        };
        let phone = device("000b82000001", "gxp2170", "office", &[]);
        let config = |office: &str, options: &BuildOptions| {
            let profiles = ProfileSet::from_texts(&[
                ("profiles/global.toml", "[params]\nP30 = \"pool.ntp.org\"\n"),
                ("profiles/office.toml", office),
            ]);
            device_config(&profiles, &phone, options).0
        };
        let filled = config("[params]\n", &receiver(5514));
        assert_eq!(filled.get(p("P207")), Some("192.0.2.10:5514"));
        assert_eq!(filled.get(p("P208")), Some("2"));
        assert_eq!(filled.params[&p("P207")].source, Source::Server);
        assert_eq!(filled.params[&p("P208")].source, Source::Server);
        let default_port = config("[params]\n", &receiver(514));
        assert_eq!(default_port.get(p("P207")), Some("192.0.2.10"));
        // A profile that sends syslog elsewhere keeps its server and the phone's level.
        let elsewhere = config("[params]\nP207 = \"logs.example\"\n", &receiver(5514));
        assert_eq!(elsewhere.get(p("P207")), Some("logs.example"));
        assert_eq!(elsewhere.get(p("P208")), None);
        // A profile's own level stays; the server is still filled.
        let level = config("[params]\nP208 = \"1\"\n", &receiver(5514));
        assert_eq!(level.get(p("P207")), Some("192.0.2.10:5514"));
        assert_eq!(level.get(p("P208")), Some("1"));
        // No receiver, nothing filled.
        let off = config("[params]\n", &BuildOptions::default());
        assert_eq!((off.get(p("P207")), off.get(p("P208"))), (None, None));
    }

    #[test]
    fn the_settings_name_the_syslog_receiver_only_with_a_public_host() {
        let mut settings = crate::desk::DeskSettings {
            syslog: Some(crate::desk::SyslogSettings {
                listen: Some("0.0.0.0:5514".into()),
                level: crate::syslog::SyslogLevel::Warning,
            }),
            ..Default::default()
        };
        assert_eq!(BuildOptions::from_settings(&settings).syslog, None);
        settings.server.public_host = Some("prov.example".into());
        let target = BuildOptions::from_settings(&settings).syslog.unwrap();
        assert_eq!(target.p207(), "prov.example:5514");
        assert_eq!(target.level.p208(), "3");
        settings.syslog = None;
        assert_eq!(BuildOptions::from_settings(&settings).syslog, None);
    }

    #[test]
    fn missing_device_variables_name_what_enrolling_must_ask_for() {
        let profiles = ProfileSet::from_texts(&[
            (
                "profiles/global.toml",
                "[params]\nP237 = \"{{ server_host }}\"\n",
            ),
            ("profiles/office.toml", OFFICE),
        ]);
        let mut phone = device("000b82000001", "gxp2170", "office", &[]);
        assert_eq!(
            missing_device_variables(&profiles, &phone),
            ["ext", "secret"]
        );
        phone.vars.insert("ext".into(), "201".into());
        assert_eq!(missing_device_variables(&profiles, &phone), ["secret"]);
        phone.profile = None;
        assert!(missing_device_variables(&profiles, &phone).is_empty());
    }

    #[test]
    fn prefixes_postfixes_firmware_and_server_address() {
        let f = fixture(&[
            ("profiles/global.toml", GLOBAL),
            (
                "profiles/office.toml",
                "[params]\nP234 = \"gs_\"\nP235 = \"_cfg001\"\nP232 = \"fw_\"\n",
            ),
        ]);
        fs::write(
            f.desk.firmware_dir().join("GXP2170fw.bin"),
            b"firmware bytes",
        )
        .unwrap();
        f.inventory
            .upsert_device(&device("000b82000001", "gxp2170", "office", &[]))
            .unwrap();
        let options = BuildOptions {
            server: Some(ServerAddress {
                scheme: Scheme::Http,
                host: "192.0.2.10".into(),
                port: Some(8080),
                base_path: "/gs/".into(),
            }),
            encryption: EncryptionMode::Off,
            syslog: None,
        };
        let report = Builder::new(f.desk.clone())
            .build(&f.inventory, &options)
            .unwrap();
        assert!(report.published, "{:?}", report.diagnostics);
        let manifest = Manifest::load(&f.desk.build_dir()).unwrap();
        for name in [
            "gs_cfg000b82000001_cfg001",
            "gs_cfg000b82000001.bin_cfg001",
            "gs_cfg000b82000001.xml_cfg001",
            "gs_cfggxp2170.xml_cfg001",
            "gs_cfg.xml_cfg001",
            "cfg000b82000001.xml",
            "gxp2170fw.bin",
            "fw_gxp2170fw.bin",
        ] {
            assert!(
                manifest.get(name).is_some(),
                "missing {name}: {:?}",
                manifest.entries.keys()
            );
        }
        let firmware = manifest.get("fw_gxp2170fw.bin").unwrap();
        assert_eq!(firmware.file, "firmware/GXP2170fw.bin");
        assert_eq!(firmware.model.as_deref(), Some("gxp2170"));
        let xml = xml::read_config(std::str::from_utf8(&read(&f, "cfg000b82000001.xml")).unwrap())
            .unwrap();
        let values: BTreeMap<PName, String> = xml.params.into_iter().collect();
        assert_eq!(values[&p("P237")], "192.0.2.10:8080/gs");
        assert_eq!(values[&p("P192")], "192.0.2.10:8080/gs");
        assert_eq!(values[&p("P212")], "1");
    }

    #[test]
    fn a_prefix_cannot_leave_the_build_folder() {
        let f = fixture(&[("profiles/office.toml", "[params]\nP234 = \"../../etc/\"\n")]);
        f.inventory
            .upsert_device(&device("000b82000001", "gxp2170", "office", &[]))
            .unwrap();
        let report = Builder::new(f.desk.clone())
            .build(&f.inventory, &BuildOptions::default())
            .unwrap();
        assert!(!report.published);
        let d = &report.diagnostics[0];
        assert_eq!(
            (d.kind, d.field.as_deref(), d.line),
            ("bad-affix", Some("P234"), Some(2))
        );
    }

    #[test]
    fn readers_never_see_a_partial_file_during_200_rebuilds() {
        let f = fixture(&[("profiles/office.toml", "[params]\nP3 = \"{{ filler }}\"\n")]);
        let short = "a".repeat(10);
        let long = "b".repeat(64 * 1024);
        let mut phone = device("000b82000001", "gxp2170", "office", &[("filler", &short)]);
        f.inventory.upsert_device(&phone).unwrap();
        let options = plain();
        let mut builder = Builder::new(f.desk.clone());
        builder.build(&f.inventory, &options).unwrap();

        let path = f.desk.build_dir().join("cfg000b82000001.xml");
        let expected: Vec<String> = [&short, &long]
            .iter()
            .map(|filler| {
                let params = BTreeMap::from([(p("P3"), filler.to_string())]);
                xml::write_config(Some(phone.mac), &params)
            })
            .collect();
        let done = Arc::new(AtomicBool::new(false));
        let reader = {
            let done = Arc::clone(&done);
            let path = path.clone();
            let expected = expected.clone();
            std::thread::spawn(move || {
                let mut reads = 0u64;
                while !done.load(Ordering::Relaxed) {
                    let text = fs::read_to_string(&path).unwrap();
                    assert!(
                        expected.contains(&text),
                        "partial file of {} bytes",
                        text.len()
                    );
                    reads += 1;
                }
                reads
            })
        };
        for round in 0..200 {
            let filler = if round % 2 == 0 { &long } else { &short };
            phone.vars.insert("filler".into(), filler.clone());
            f.inventory.upsert_device(&phone).unwrap();
            let report = builder
                .rebuild_devices(&f.inventory, &[phone.mac], &options)
                .unwrap();
            assert_eq!(report.written.len(), 3);
        }
        done.store(true, Ordering::Relaxed);
        let reads = reader.join().unwrap();
        assert!(reads > 0);
    }

    #[test]
    fn config_path_has_no_scheme() {
        let server = ServerAddress {
            scheme: Scheme::Tftp,
            host: "10.0.0.5".into(),
            port: None,
            base_path: "/".into(),
        };
        assert_eq!(server.config_path(), "10.0.0.5");
        let settings: crate::desk::DeskSettings =
            toml::from_str("[server]\nhttp = \"0.0.0.0:8080\"\npublic_host = \"192.0.2.1\"\nbase_path = \"/prov\"\n").unwrap();
        let options = BuildOptions::from_settings(&settings);
        let server = options.server.unwrap();
        assert_eq!(
            (server.scheme, server.config_path()),
            (Scheme::Http, "192.0.2.1:8080/prov".to_string())
        );
        assert!(
            BuildOptions::from_settings(&crate::desk::DeskSettings::default())
                .server
                .is_none()
        );
    }
}
