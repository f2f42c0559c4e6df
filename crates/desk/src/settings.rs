//! The Settings screen's use-cases: read `provdesk.toml` as the form shows it, validate a
//! form by field name, save it (through `provdesk_core::settings_edit`, which keeps the
//! file's comments), and say what changed and what takes effect only when the servers start
//! again.
//!
//! Invariant: validation exists once, in `provdesk_core::settings_edit::validate` (the
//! allow-list checked by `IpBlock`, the parser the servers' access list uses) plus the check
//! that own certificate files load; the UI asks [`DeskService::validate_settings`] as the
//! technician types and shows its messages verbatim.
//!
//! Invariant: a save never runs a second builder next to running servers. The desk service
//! caches the settings it was opened with, so a save is followed by: stop the servers if
//! they run, open the desk again, build through the new desk, start the servers again. The
//! app sequences that (it owns the servers); the policy and every message are here.

use provdesk_core::desk::{DeskSettings, SETTINGS_FILE};
use provdesk_core::{Diagnostic, settings_edit};
use serde::Serialize;
use ts_rs::TS;

use crate::address::{InterfaceAddress, PhoneAddress, interfaces};
use crate::certificates::{CertificateInfo, own_certificate_problem};
use crate::error::{DeskError, DeskResult};
use crate::events::{BuildSummary, DeskEvent};
use crate::service::DeskService;

/// The Settings screen: the typed settings, the file they come from, and what the form needs
/// to offer (this machine's addresses, the HTTPS certificate, the address phones are given).
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct SettingsView {
    pub settings: DeskSettings,
    pub file: String,
    pub text: String,
    pub interfaces: Vec<InterfaceAddress>,
    pub tls: CertificateInfo,
    pub address: PhoneAddress,
}

/// What a save did.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct SettingsSaved {
    /// The settings as the desk now reads them.
    pub settings: SettingsView,
    /// The fields whose value changed (`server.http`, `access.allow`).
    pub changed: Vec<String>,
    /// Those of `changed` that take effect only when the servers start again.
    pub restart: Vec<String>,
    /// What changed on disk and what to do next.
    pub message: String,
}

/// A save written to `provdesk.toml`, before the desk is opened again with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsChange {
    pub changed: Vec<String>,
    pub restart: Vec<String>,
}

/// What happened to the servers after a save.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServersAfterSave {
    /// None ran: they use the new settings when they start.
    NotRunning,
    Restarted,
    /// They ran and could not start again (a port taken, a bad certificate): why.
    RestartFailed(String),
}

impl SettingsChange {
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty()
    }

    /// The sentence the technician reads after saving.
    pub fn message(
        &self,
        servers: &ServersAfterSave,
        build: Option<&DeskResult<BuildSummary>>,
    ) -> String {
        if self.is_empty() {
            return "Nothing changed; provdesk.toml is as it was.".to_string();
        }
        let mut message = match servers {
            ServersAfterSave::Restarted => {
                "Saved provdesk.toml (comments kept) and restarted the servers with the new settings."
                    .to_string()
            }
            ServersAfterSave::RestartFailed(why) => format!(
                "Saved provdesk.toml (comments kept), but the servers could not restart: {why}. Fix the settings, or start the servers on the Live screen."
            ),
            ServersAfterSave::NotRunning if self.restart.is_empty() => {
                "Saved provdesk.toml (comments kept) and rebuilt with the new settings.".to_string()
            }
            ServersAfterSave::NotRunning => {
                "Saved provdesk.toml (comments kept). The servers use the new settings when they start."
                    .to_string()
            }
        };
        match build {
            Some(Err(e)) => {
                message.push_str(&format!(" The build after saving failed: {}", e.message))
            }
            Some(Ok(summary)) if !summary.published => message.push_str(&format!(
                " The build has {} error(s), so the previous files keep serving: see the Live screen.",
                summary.errors
            )),
            _ => {}
        }
        message
    }
}

/// Whether a changed field takes effect only when the servers start again. The servers read
/// listen addresses, certificates, authentication, the allow-list, limits, discovery and the
/// address phones are given (public host, base path) when they start; encryption takes
/// effect with the build that follows every save.
fn needs_restart(field: &str) -> bool {
    !field.starts_with("encryption.")
}

/// The fields (`table.key`) whose values differ, sorted.
fn changed_fields(before: &DeskSettings, after: &DeskSettings) -> Vec<String> {
    let (Ok(serde_json::Value::Object(before)), Ok(serde_json::Value::Object(after))) =
        (serde_json::to_value(before), serde_json::to_value(after))
    else {
        return Vec::new();
    };
    let mut changed = Vec::new();
    for (table, new) in &after {
        let old = before.get(table);
        match (old, new) {
            (Some(serde_json::Value::Object(old)), serde_json::Value::Object(new)) => {
                for (key, value) in new {
                    if old.get(key) != Some(value) {
                        changed.push(format!("{table}.{key}"));
                    }
                }
            }
            (old, new) if old != Some(new) => changed.push(table.clone()),
            _ => {}
        }
    }
    changed
}

impl DeskService {
    /// The Settings screen's view of the open desk.
    pub fn read_settings(&self) -> DeskResult<SettingsView> {
        let path = self.desk().settings_path();
        let text = std::fs::read_to_string(&path).map_err(|e| DeskError::io(&path, e))?;
        Ok(SettingsView {
            settings: self.desk().settings().clone(),
            file: path.display().to_string(),
            text,
            interfaces: interfaces(),
            tls: self.certificate_info(),
            address: self.phone_address(),
        })
    }

    /// Every problem with `settings` as the form has them, each naming its field
    /// (`server.http`, `access.allow[2]`, indexes after blank entries are dropped). Empty
    /// when they can be saved.
    pub fn validate_settings(&self, settings: &DeskSettings) -> Vec<Diagnostic> {
        let settings = settings_edit::normalize(settings);
        let mut problems = settings_edit::validate(self.root(), &settings);
        if problems.is_empty()
            && let Some(message) = own_certificate_problem(self.root(), &settings.tls)
        {
            problems.push(
                Diagnostic::error("settings", format!("tls.cert: {message}"))
                    .in_file(SETTINGS_FILE)
                    .field("tls.cert"),
            );
        }
        problems
    }

    /// Writes `settings` into `provdesk.toml` (only changed keys, comments kept) and says
    /// what changed compared with the settings this desk was opened with. The desk keeps
    /// its old settings: open it again (see the module's comment) and call
    /// [`DeskService::settings_applied`] on the new one.
    pub fn save_settings(&self, settings: &DeskSettings) -> DeskResult<SettingsChange> {
        let problems = self.validate_settings(settings);
        if problems.iter().any(Diagnostic::is_error) {
            return Err(not_saved(problems));
        }
        let saved = settings_edit::save_settings(self.root(), settings).map_err(|e| match e {
            provdesk_core::Error::Diagnostics(list) => not_saved(list),
            other => other.into(),
        })?;
        let changed = changed_fields(self.desk().settings(), &saved);
        let restart = changed
            .iter()
            .filter(|f| needs_restart(f))
            .cloned()
            .collect();
        Ok(SettingsChange { changed, restart })
    }

    /// Announces a save on the desk opened with the new settings (screens reload).
    pub fn settings_applied(&self, change: &SettingsChange) {
        self.events().emit(DeskEvent::SettingsChanged {
            restart: change.restart.clone(),
        });
    }

    /// What a save did, for the screen: the view read from this (the reopened) desk.
    pub fn settings_saved(
        &self,
        change: &SettingsChange,
        servers: &ServersAfterSave,
        build: Option<&DeskResult<BuildSummary>>,
    ) -> DeskResult<SettingsSaved> {
        Ok(SettingsSaved {
            settings: self.read_settings()?,
            changed: change.changed.clone(),
            restart: change.restart.clone(),
            message: change.message(servers, build),
        })
    }
}

fn not_saved(problems: Vec<Diagnostic>) -> DeskError {
    DeskError::diagnostics(
        "provdesk.toml was not changed: fix the fields marked below and save again",
        problems,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn open() -> (tempfile::TempDir, DeskService) {
        let dir = tempfile::tempdir().unwrap();
        let desk = DeskService::open(&dir.path().join("desk")).unwrap();
        (dir, desk)
    }

    fn fields(problems: &[Diagnostic]) -> Vec<&str> {
        problems.iter().filter_map(|d| d.field.as_deref()).collect()
    }

    #[test]
    fn validates_every_field_by_name_with_the_servers_allow_list_parser() {
        let (_dir, desk) = open();
        let mut settings = desk.desk().settings().clone();
        assert!(desk.validate_settings(&settings).is_empty());
        settings.server.http = Some("0.0.0.0:99999".into());
        settings.server.public_host = Some("http://pbx/".into());
        // A blank row is dropped before the indexes are counted, as on save.
        settings.access.allow = vec![
            "192.168.1.0/24".into(),
            " ".into(),
            "10.0.0.0/33".into(),
            "fe80::1/129".into(),
            "::ffff:10.0.0.1".into(),
        ];
        settings.tls.cert = Some("missing.pem".into());
        settings.discovery.max_discovered = 0;
        let problems = desk.validate_settings(&settings);
        assert_eq!(
            fields(&problems),
            [
                "server.http",
                "server.public_host",
                "tls.key",
                "tls.cert",
                "access.allow[1]",
                "access.allow[2]",
                "discovery.max_discovered"
            ]
        );
        let allow = &problems[4].message;
        assert!(allow.starts_with("access.allow[1]: "), "{allow}");
        assert!(allow.contains("10.0.0.0/33"), "{allow}");
    }

    #[test]
    fn a_refused_save_writes_nothing_and_names_the_fields() {
        let (_dir, desk) = open();
        let before = std::fs::read_to_string(desk.desk().settings_path()).unwrap();
        let mut settings = desk.desk().settings().clone();
        settings.server.base_path = "gs".into();
        let error = desk.save_settings(&settings).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Diagnostics);
        assert_eq!(fields(&error.diagnostics), ["server.base_path"]);
        assert_eq!(
            std::fs::read_to_string(desk.desk().settings_path()).unwrap(),
            before
        );
    }

    #[test]
    fn a_save_says_what_changed_and_what_needs_a_restart() {
        let (_dir, desk) = open();
        let mut settings = desk.desk().settings().clone();
        let unchanged = desk.save_settings(&settings).unwrap();
        assert!(unchanged.is_empty());
        assert_eq!(
            unchanged.message(&ServersAfterSave::NotRunning, None),
            "Nothing changed; provdesk.toml is as it was."
        );

        settings.server.http = Some("0.0.0.0:8099".into());
        settings.access.allow = vec!["10.0.0.0/8".into()];
        settings.encryption.mode = provdesk_core::desk::EncryptionMode::Off;
        let change = desk.save_settings(&settings).unwrap();
        assert_eq!(
            change.changed,
            ["access.allow", "encryption.mode", "server.http"]
        );
        assert_eq!(change.restart, ["access.allow", "server.http"]);
        let text = std::fs::read_to_string(desk.desk().settings_path()).unwrap();
        assert!(text.contains("http = \"0.0.0.0:8099\""), "{text}");
        assert!(
            change
                .message(&ServersAfterSave::Restarted, None)
                .contains("restarted the servers with the new settings"),
        );
        assert!(
            change
                .message(
                    &ServersAfterSave::RestartFailed("port 8099 in use".into()),
                    None
                )
                .contains("could not restart: port 8099 in use."),
        );

        // The desk opened again reads the new settings and announces the change.
        let reopened = DeskService::open(desk.root()).unwrap();
        let mut events = reopened.events().subscribe();
        reopened.settings_applied(&change);
        assert_eq!(
            events.try_recv().unwrap(),
            DeskEvent::SettingsChanged {
                restart: vec!["access.allow".into(), "server.http".into()]
            }
        );
        let saved = reopened
            .settings_saved(&change, &ServersAfterSave::NotRunning, None)
            .unwrap();
        assert_eq!(
            saved.settings.settings.server.http.as_deref(),
            Some("0.0.0.0:8099")
        );
        assert!(
            saved.message.contains("when they start"),
            "{}",
            saved.message
        );
    }

    #[test]
    fn the_view_tells_where_phones_are_pointed() {
        let (_dir, desk) = open();
        let view = desk.read_settings().unwrap();
        assert!(view.text.contains("[server]"));
        assert_eq!(view.address, desk.phone_address());
        assert!(
            view.address
                .message
                .contains("not known until the servers start"),
            "{}",
            view.address.message
        );
    }
}
