//! Profiles and the catalogue: the list with its inheritance, one profile as the editor shows
//! it (its layers, own and inherited values, the catalogue's verdicts), saving one value or
//! the raw text (comments kept, an outside edit never overwritten), creating a profile under
//! an explicit parent, and the catalogue entries the field editor groups.
//!
//! Invariants: every save writes the file atomically next to itself (synced: it is technician
//! input), then announces [`DeskEvent::ProfilesChanged`], then builds; the catalogue's errors
//! refuse a save before anything is written, its warnings travel with the result. Reads and
//! writes of profile files by this process are serialized, so two saves of one file never
//! lose each other's change.

mod watch;

pub use watch::ProfileWatch;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use provdesk_core::catalog::{Entry, EntryView, family_of_model};
use provdesk_core::fsio::{Replace, write_atomically};
use provdesk_core::profile::edit::{self, Edit, ProfileKind, ProfileRef, Spelling};
use provdesk_core::profile::template_variables;
use provdesk_core::profile::{EffectiveConfig, GLOBAL, ProfileSet, Source, Target};
use provdesk_core::{Diagnostic, PName, Severity};
use serde::Serialize;
use ts_rs::TS;

use crate::error::{DeskError, DeskResult};
use crate::events::{BuildSummary, DeskEvent};
use crate::service::DeskService;

/// How many catalogue hits a search returns when the caller names no limit.
pub const SEARCH_LIMIT: usize = 50;

/// One profile file in the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct ProfileSummary {
    /// `global`, `office`, `models/gxp2170`.
    pub name: String,
    pub kind: ProfileKind,
    /// Relative to the desk, `profiles/office.toml`.
    pub file: String,
    pub extends: Option<String>,
    /// How many values the file sets itself.
    pub params: usize,
    /// Errors the profile loader found in this file.
    pub errors: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct ProfileList {
    pub profiles: Vec<ProfileSummary>,
    /// Every problem the profile loader found, in any file.
    pub diagnostics: Vec<Diagnostic>,
}

/// A value the profile itself sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct OwnValue {
    #[ts(as = "String")]
    pub p: PName,
    pub value: String,
    pub line: Option<usize>,
    /// The catalogue's verdict on this value.
    pub violations: Vec<Diagnostic>,
    /// The `{{ var }}` names the value uses (filled in per device).
    pub variables: Vec<String>,
}

/// A value the profile inherits from a lower layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct InheritedValue {
    #[ts(as = "String")]
    pub p: PName,
    pub value: String,
    pub source: Source,
}

/// One profile as the editor shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct ProfileDoc {
    pub name: String,
    pub kind: ProfileKind,
    pub file: String,
    /// A hash of `text`: a raw save names the revision it started from, so an edit made
    /// outside the app meanwhile is a conflict instead of being overwritten.
    pub revision: String,
    /// The files layered for this profile, bottom first (global, model, parents, itself).
    pub layers: Vec<String>,
    pub text: String,
    pub extends: Option<String>,
    /// The model the inherited values were computed for, if any.
    pub model: Option<String>,
    pub own: Vec<OwnValue>,
    pub inherited: Vec<InheritedValue>,
    /// Problems in this file (syntax, names, parents).
    pub diagnostics: Vec<Diagnostic>,
}

/// What a save (or a create) did: the file as it is now and the build that followed.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct SaveResult {
    pub doc: ProfileDoc,
    pub build: BuildSummary,
    /// Warnings from the catalogue about the saved value(s).
    pub warnings: Vec<Diagnostic>,
}

impl DeskService {
    /// Every profile file, `global` first, then the named profiles, then the model files.
    pub fn list_profiles(&self) -> DeskResult<ProfileList> {
        let root = self.root();
        let profiles = ProfileSet::load(root);
        let mut out = Vec::new();
        for pref in edit::list(root) {
            // A file that cannot be read or parsed is listed all the same: its diagnostics
            // say why, and the editor opens it to be fixed.
            let text = fs::read_to_string(root.join(&pref.file)).unwrap_or_default();
            let doc = edit::parse(&text).ok();
            let errors = profiles
                .diagnostics()
                .iter()
                .filter(|d| d.is_error() && d.file.as_deref() == Some(pref.file.as_path()))
                .count();
            out.push(ProfileSummary {
                extends: doc.as_ref().and_then(edit::extends),
                params: doc.as_ref().map_or(0, |d| edit::own_values(d).len()),
                errors,
                file: slashed(&pref.file),
                kind: pref.kind,
                name: pref.name,
            });
        }
        Ok(ProfileList {
            profiles: out,
            diagnostics: profiles.diagnostics().to_vec(),
        })
    }

    /// One profile for the editor. `model` picks the model file layered under a named profile
    /// (a model file is its own model).
    pub fn read_profile(&self, name: &str, model: Option<&str>) -> DeskResult<ProfileDoc> {
        let pref = ProfileRef::parse(name)?;
        let path = self.root().join(&pref.file);
        let text = fs::read_to_string(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => DeskError::not_found(format!(
                "{} does not exist; create the profile first",
                slashed(&pref.file)
            )),
            _ => DeskError::io(&path, e),
        })?;
        Ok(self.profile_doc(&pref, text, model))
    }

    fn profile_doc(&self, pref: &ProfileRef, text: String, model: Option<&str>) -> ProfileDoc {
        let doc = edit::parse(&text).ok();
        let profiles = ProfileSet::load(self.root());
        let diagnostics: Vec<Diagnostic> = profiles
            .diagnostics()
            .iter()
            .filter(|d| d.file.as_deref() == Some(pref.file.as_path()))
            .cloned()
            .collect();
        let extends = doc.as_ref().and_then(edit::extends);
        let model = model_of(pref, model);

        // Lines of this file's values, from the core's own reading of it.
        let own_target = match pref.kind {
            ProfileKind::Global => Target::default(),
            ProfileKind::Model => Target {
                model,
                ..Target::default()
            },
            ProfileKind::Profile => Target {
                model,
                profile: Some(&pref.name),
                ..Target::default()
            },
        };
        let layers = profiles
            .layer_files(&own_target)
            .iter()
            .map(|f| slashed(f))
            .collect();
        let lines: BTreeMap<PName, usize> = layered(&profiles, own_target)
            .params
            .into_iter()
            .filter_map(|(p, s)| match s.source {
                Source::File { path, line } if path == pref.file => Some((p, line)),
                _ => None,
            })
            .collect();

        // What the layers below this file give.
        let parent = extends.as_deref().filter(|e| *e != GLOBAL);
        let inherited = match pref.kind {
            ProfileKind::Global => EffectiveConfig::default(),
            ProfileKind::Model => layered(&profiles, Target::default()),
            ProfileKind::Profile => layered(
                &profiles,
                Target {
                    model,
                    profile: parent,
                    ..Target::default()
                },
            ),
        };
        let check_model = model.unwrap_or("");
        let own = doc
            .as_ref()
            .map(edit::own_values)
            .unwrap_or_default()
            .into_iter()
            .map(|(p, value)| {
                let line = lines.get(&p).copied();
                // A bad template is the loader's diagnostic already; here it only means "none".
                let variables = template_variables(&value).unwrap_or_default();
                let violations = self
                    .catalog()
                    .validate(p, &value, check_model)
                    .iter()
                    .map(|v| {
                        let d = v.to_diagnostic(p).in_file(&pref.file);
                        match line {
                            Some(line) => d.at_line(line),
                            None => d,
                        }
                    })
                    .collect();
                OwnValue {
                    p,
                    value,
                    line,
                    violations,
                    variables,
                }
            })
            .collect();
        ProfileDoc {
            file: slashed(&pref.file),
            kind: pref.kind,
            name: pref.name.clone(),
            revision: edit::revision(&text),
            layers,
            text,
            extends,
            model: model.map(str::to_string),
            own,
            inherited: inherited
                .params
                .into_iter()
                .map(|(p, s)| InheritedValue {
                    p,
                    value: s.value,
                    source: s.source,
                })
                .collect(),
            diagnostics,
        }
    }

    /// Sets one value (with `value: None` removes it, so the inherited one applies), keeping
    /// the file's comments, then rebuilds. The catalogue's errors refuse the value and nothing
    /// is written.
    pub fn save_profile_value(
        &self,
        name: &str,
        p: &str,
        value: Option<&str>,
        model: Option<&str>,
    ) -> DeskResult<SaveResult> {
        let pref = ProfileRef::parse(name)?;
        let p: PName = p.trim().parse()?;
        let check_model = model_of(&pref, model).unwrap_or("");
        let mut warnings = Vec::new();
        if let Some(value) = value {
            let (errors, found) = self.verdicts(&[(p, value.to_string())], check_model, &pref.file);
            if let Some(first) = errors.first() {
                return Err(DeskError::diagnostics(
                    format!("{} Nothing was saved.", first.message),
                    errors,
                ));
            }
            warnings = found;
        }
        let entry: Option<&Entry> = self.catalog().get(p);
        let text = {
            let _writing = writes();
            let path = self.root().join(&pref.file);
            let text = fs::read_to_string(&path).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => DeskError::not_found(format!(
                    "{} does not exist; create the profile first",
                    slashed(&pref.file)
                )),
                _ => DeskError::io(&path, e),
            })?;
            let mut doc = edit::parse(&text)?;
            edit::set_value(
                &mut doc,
                Edit {
                    name: p,
                    value,
                    spelling: Spelling::for_entry(entry),
                    label: entry.map(|e| e.name.as_str()),
                },
            );
            let text = doc.to_string();
            self.write_profile(&pref, &text)?;
            text
        };
        self.saved(&pref, text, model, warnings)
    }

    /// Replaces the whole file with `text` after the core found no errors in it. With
    /// `base_revision` (the revision the editor read), a file changed on disk since then is
    /// not overwritten: a [`crate::ErrorKind::Conflict`], and the technician chooses.
    pub fn save_profile_raw(
        &self,
        name: &str,
        text: &str,
        model: Option<&str>,
        base_revision: Option<&str>,
    ) -> DeskResult<SaveResult> {
        let pref = ProfileRef::parse(name)?;
        let file = slashed(&pref.file);
        // Parents live in other files, so only this file's own problems count here.
        let mut errors: Vec<Diagnostic> = ProfileSet::from_texts(&[(file.as_str(), text)])
            .diagnostics()
            .iter()
            .filter(|d| d.is_error() && !matches!(d.kind, "unknown-parent" | "extends-cycle"))
            .cloned()
            .collect();
        let mut warnings = Vec::new();
        if let Ok(doc) = edit::parse(text) {
            let check_model = model_of(&pref, model).unwrap_or("");
            let (bad, found) = self.verdicts(&edit::own_values(&doc), check_model, &pref.file);
            errors.extend(bad);
            warnings = found;
        }
        if let Some(first) = errors.first() {
            return Err(DeskError::diagnostics(
                format!(
                    "{} problem(s) in {file}; nothing was saved. The first: {first}",
                    errors.len()
                ),
                errors,
            ));
        }
        {
            let _writing = writes();
            if let Some(base) = base_revision
                && let Some(current) = self.current_revision(&pref)?
                && current != base
            {
                return Err(DeskError::conflict(format!(
                    "{file} was changed outside ProvDesk since you opened it; nothing was saved. \
                     Load the file's version, or copy your text and save it again"
                )));
            }
            self.write_profile(&pref, text)?;
        }
        self.saved(&pref, text.to_string(), model, warnings)
    }

    /// Creates an empty profile that extends `parent`: `None` or `global` for the global
    /// layer only, else a named profile that must exist. The parent is always the caller's
    /// explicit choice.
    pub fn create_profile(&self, name: &str, parent: Option<&str>) -> DeskResult<SaveResult> {
        let pref = ProfileRef::parse(name.trim())?;
        let parent = parent.map(str::trim).filter(|p| !p.is_empty());
        let parent = match (pref.kind, parent) {
            (_, None) => None,
            (ProfileKind::Profile, Some(GLOBAL)) => Some(GLOBAL.to_string()),
            (ProfileKind::Profile, Some(parent)) => {
                let parent = ProfileRef::parse(parent)?;
                if parent.kind != ProfileKind::Profile {
                    return Err(DeskError::invalid(format!(
                        "{} cannot be a parent: a profile extends global or another named \
                         profile (model files apply by each phone's model)",
                        parent.name
                    )));
                }
                if !self.root().join(&parent.file).is_file() {
                    return Err(DeskError::not_found(format!(
                        "the parent profile {} does not exist ({}); create it first or pick \
                         another parent",
                        parent.name,
                        slashed(&parent.file)
                    )));
                }
                Some(parent.name)
            }
            (_, Some(_)) => {
                return Err(DeskError::invalid(format!(
                    "{} extends nothing: the global and model files sit below every named \
                     profile; create it without a parent",
                    pref.name
                )));
            }
        };
        let text = pref.new_file_text(parent.as_deref());
        {
            let _writing = writes();
            if self.root().join(&pref.file).exists() {
                return Err(DeskError::invalid(format!(
                    "{} already exists; pick another name",
                    slashed(&pref.file)
                )));
            }
            self.write_profile(&pref, &text)?;
        }
        self.saved(&pref, text, None, Vec::new())
    }

    /// The revision of a profile file as it is on disk now (`None` when it does not exist),
    /// to compare with the one the editor read.
    pub fn profile_revision(&self, name: &str) -> DeskResult<Option<String>> {
        self.current_revision(&ProfileRef::parse(name)?)
    }

    /// The catalogue entries a model's phones use (all of them without a model).
    pub fn catalog_entries(&self, model: Option<&str>) -> Vec<EntryView> {
        let family = model.map(family_of_model).unwrap_or_default();
        self.catalog()
            .entries()
            .iter()
            .filter(|e| family.is_empty() || e.applies_to(&family))
            .map(EntryView::from)
            .collect()
    }

    /// The catalogue's best matches for `query` (words, a P-number, an alias), at most
    /// `limit` ([`SEARCH_LIMIT`] when not given).
    pub fn catalog_search(&self, query: &str, limit: Option<usize>) -> Vec<EntryView> {
        self.catalog()
            .search(query, limit.unwrap_or(SEARCH_LIMIT))
            .into_iter()
            .map(EntryView::from)
            .collect()
    }

    fn current_revision(&self, pref: &ProfileRef) -> DeskResult<Option<String>> {
        let path = self.root().join(&pref.file);
        match fs::read_to_string(&path) {
            Ok(text) => Ok(Some(edit::revision(&text))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(DeskError::io(&path, e)),
        }
    }

    /// Replaces the file through a synced temp file beside it, so an editor or the servers'
    /// watcher sees the old file or the whole new one, and a power cut loses neither.
    fn write_profile(&self, pref: &ProfileRef, text: &str) -> DeskResult<()> {
        let target = self.root().join(&pref.file);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(|e| DeskError::io(parent, e))?;
        }
        write_atomically(&target, text.as_bytes(), Replace::SYNCED)?;
        Ok(())
    }

    /// After a write: says so, rebuilds, and returns the file as the editor shows it.
    fn saved(
        &self,
        pref: &ProfileRef,
        text: String,
        model: Option<&str>,
        warnings: Vec<Diagnostic>,
    ) -> DeskResult<SaveResult> {
        self.events().emit(DeskEvent::ProfilesChanged {
            files: vec![slashed(&pref.file)],
        });
        let build = self.build()?;
        Ok(SaveResult {
            doc: self.profile_doc(pref, text, model),
            build,
            warnings,
        })
    }

    /// Splits the catalogue's verdicts: errors refuse the save, warnings travel with it.
    fn verdicts(
        &self,
        values: &[(PName, String)],
        model: &str,
        file: &Path,
    ) -> (Vec<Diagnostic>, Vec<Diagnostic>) {
        values
            .iter()
            .flat_map(|(p, value)| {
                self.catalog()
                    .validate(*p, value, model)
                    .into_iter()
                    .map(|v| v.to_diagnostic(*p).in_file(file))
            })
            .partition(|d| d.severity == Severity::Error)
    }
}

/// The layered values of `target` with every `{{ var }}` left as written, so a profile's
/// inherited values show as the technician wrote them.
fn layered(profiles: &ProfileSet, target: Target<'_>) -> EffectiveConfig {
    profiles.layered(&target).0
}

/// The model whose file layers under `pref`: a model file's own, else the one asked for.
fn model_of<'a>(pref: &'a ProfileRef, model: Option<&'a str>) -> Option<&'a str> {
    pref.model().or(model).filter(|m| !m.is_empty())
}

/// A desk-relative path as the UI names files: `/` between folders on every system.
pub(crate) fn slashed(path: &Path) -> String {
    path.to_string_lossy().replace('\\', "/")
}

/// Held while a profile file is read, changed and written (or checked and written), so two
/// saves in this process never interleave and lose one's change.
fn writes() -> MutexGuard<'static, ()> {
    static WRITES: Mutex<()> = Mutex::new(());
    WRITES.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use provdesk_core::Mac;
    use provdesk_core::build::device_config;
    use provdesk_core::inventory::Device;
    use tokio::sync::broadcast;

    use super::*;
    use crate::ErrorKind;

    fn desk() -> (tempfile::TempDir, DeskService) {
        let dir = tempfile::tempdir().unwrap();
        let desk = DeskService::open(&dir.path().join("desk")).unwrap();
        (dir, desk)
    }

    fn mac(text: &str) -> Mac {
        text.parse().unwrap()
    }

    /// Two office phones, as an import would store them.
    fn with_devices(desk: &DeskService) {
        let devices: Vec<Device> = [("000b82000001", "201", "s1"), ("000b82000002", "202", "s2")]
            .into_iter()
            .map(|(m, ext, secret)| {
                let mut device = Device::new(mac(m), "GXP2170");
                device.profile = Some("office".into());
                device.name = Some("Desk".into());
                device.vars = [("ext", ext), ("sip_secret", secret)]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                device
            })
            .collect();
        desk.inventory().import_devices(&devices).unwrap();
        desk.build().unwrap();
    }

    /// The value `p` a device is built with now.
    fn effective(desk: &DeskService, m: &str, p: &str) -> Option<String> {
        let device = desk.inventory().get_device(mac(m)).unwrap()?;
        let (config, _) = device_config(&ProfileSet::load(desk.root()), &device, &desk.options());
        config.get(p.parse().unwrap()).map(str::to_string)
    }

    fn office(desk: &DeskService) -> String {
        fs::read_to_string(desk.root().join("profiles/office.toml")).unwrap()
    }

    /// The next `ProfilesChanged` on `events`, skipping the build's events.
    async fn next_change(events: &mut broadcast::Receiver<DeskEvent>) -> Vec<String> {
        let wait = async {
            loop {
                if let DeskEvent::ProfilesChanged { files } = events.recv().await.unwrap() {
                    return files;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .expect("a profiles-changed event within 10 s")
    }

    #[test]
    fn a_saved_value_keeps_comments_rebuilds_announces_and_reaches_the_device() {
        let (_dir, desk) = desk();
        with_devices(&desk);
        assert_eq!(
            effective(&desk, "000b82000001", "P47").as_deref(),
            Some("pbx.example.com")
        );
        let mut events = desk.events().subscribe();

        let saved = desk
            .save_profile_value("office", "P47", Some("pbx.example.org"), None)
            .unwrap();
        assert!(saved.build.published);
        assert!(saved.build.written > 0, "the devices' files changed");
        assert_eq!(
            events.try_recv().unwrap(),
            DeskEvent::ProfilesChanged {
                files: vec!["profiles/office.toml".into()]
            },
            "announced once on disk, before the build"
        );
        let text = office(&desk);
        assert!(
            text.contains("P47 = \"pbx.example.org\"       # SIP server"),
            "{text}"
        );
        assert!(text.contains("# Uncomment to encrypt"), "{text}");
        assert_eq!(saved.doc.text, text);
        assert_eq!(
            effective(&desk, "000b82000001", "P47").as_deref(),
            Some("pbx.example.org")
        );
        let leftovers: Vec<_> = fs::read_dir(desk.root().join("profiles"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "no temp file left: {leftovers:?}");

        // Removing the value lets nothing (global has no P47) apply.
        desk.save_profile_value("office", "P47", None, None)
            .unwrap();
        assert_eq!(effective(&desk, "000b82000001", "P47"), None);
    }

    #[test]
    fn the_catalogue_refuses_a_bad_value_and_nothing_is_written() {
        let (_dir, desk) = desk();
        let path = desk.root().join("profiles/global.toml");
        let before = fs::read_to_string(&path).unwrap();
        let mut events = desk.events().subscribe();
        let err = desk
            .save_profile_value("global", "P122", Some("maybe"), None)
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Diagnostics);
        assert!(err.message.contains("Nothing was saved"), "{}", err.message);
        assert!(!err.diagnostics.is_empty());
        assert_eq!(fs::read_to_string(&path).unwrap(), before);
        assert!(events.try_recv().is_err(), "nothing changed, nothing said");
        let bad_name = desk
            .save_profile_value("global", "P12x", Some("1"), None)
            .unwrap_err();
        assert_eq!(bad_name.kind, ErrorKind::Invalid);
    }

    #[test]
    fn catalogue_warnings_travel_with_a_saved_value() {
        let (_dir, desk) = desk();
        // A P-value the catalogue does not know: saved, with the catalogue's warning.
        let saved = desk
            .save_profile_value("office", "P99999", Some("1"), None)
            .unwrap();
        assert_eq!(saved.warnings.len(), 1, "{:?}", saved.warnings);
        assert_eq!(saved.warnings[0].severity, Severity::Warning);
        assert!(
            saved.warnings[0].message.contains("not in the catalogue"),
            "{}",
            saved.warnings[0].message
        );
        assert!(office(&desk).contains("P99999 = \"1\""));
        let raw = desk
            .save_profile_raw("global", "[params]\nP99998 = \"x\"\n", None, None)
            .unwrap();
        assert_eq!(raw.warnings.len(), 1, "{:?}", raw.warnings);
    }

    #[test]
    fn a_profile_shows_its_own_values_with_lines_and_what_it_inherits() {
        let (_dir, desk) = desk();
        let doc = desk.read_profile("office", Some("gxp2170")).unwrap();
        assert_eq!(doc.extends.as_deref(), Some("global"));
        assert_eq!(doc.file, "profiles/office.toml");
        assert_eq!(doc.revision, edit::revision(&doc.text));
        let p35 = doc.own.iter().find(|o| o.p.to_string() == "P35").unwrap();
        assert_eq!(p35.value, "{{ ext }}");
        assert!(p35.line.is_some());
        let p30 = doc
            .inherited
            .iter()
            .find(|i| i.p.to_string() == "P30")
            .unwrap();
        assert_eq!(p30.value, "pool.ntp.org");
        assert!(matches!(&p30.source, Source::File { path, .. } if path.ends_with("global.toml")));
        assert!(
            doc.inherited.iter().any(|i| i.p.to_string() == "P1650"),
            "the model file applies"
        );
        let missing = desk.read_profile("nope", None).unwrap_err();
        assert_eq!(missing.kind, ErrorKind::NotFound);
        assert!(
            missing
                .message
                .contains("profiles/nope.toml does not exist"),
            "{}",
            missing.message
        );
    }

    #[test]
    fn the_list_shows_inheritance_own_value_counts_and_errors_per_file() {
        let (_dir, desk) = desk();
        desk.create_profile("sales", Some("office")).unwrap();
        fs::write(
            desk.root().join("profiles/broken.toml"),
            "extends = \"nope\"\n[params]\nP47 = \"x\"\n",
        )
        .unwrap();
        let list = desk.list_profiles().unwrap();
        let names: Vec<&str> = list.profiles.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["global", "broken", "office", "sales", "models/gxp2170"]
        );
        let get = |name: &str| list.profiles.iter().find(|p| p.name == name).unwrap();
        assert_eq!(get("sales").extends.as_deref(), Some("office"));
        assert_eq!(get("sales").params, 0);
        assert_eq!(get("office").params, 7);
        assert_eq!(get("office").errors, 0);
        assert_eq!(get("broken").errors, 1);
        assert_eq!(get("models/gxp2170").kind, ProfileKind::Model);
        assert!(
            list.diagnostics
                .iter()
                .any(|d| d.file.as_deref() == Some(Path::new("profiles/broken.toml")))
        );
    }

    #[test]
    fn raw_saves_refuse_syntax_errors_with_their_line() {
        let (_dir, desk) = desk();
        let before = office(&desk);
        let err = desk
            .save_profile_raw("office", "[params]\nP47 = \"a\"\nP48 = \n", None, None)
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Diagnostics);
        assert_eq!(err.diagnostics[0].line, Some(3));
        assert_eq!(office(&desk), before);
        let ok = desk
            .save_profile_raw(
                "office",
                "extends = \"global\"\n[params]\nP47 = \"b\" # mine\n",
                None,
                None,
            )
            .unwrap();
        assert_eq!(ok.doc.own.len(), 1);
        assert_eq!(
            office(&desk),
            "extends = \"global\"\n[params]\nP47 = \"b\" # mine\n"
        );
    }

    #[test]
    fn a_raw_save_over_an_outside_edit_is_a_conflict() {
        let (_dir, desk) = desk();
        let opened = desk.read_profile("office", None).unwrap();
        let path = desk.root().join("profiles/office.toml");
        let theirs = opened.text.replace("pbx.example.com", "pbx.outside.test");
        fs::write(&path, &theirs).unwrap();
        assert_ne!(
            desk.profile_revision("office").unwrap().as_deref(),
            Some(opened.revision.as_str()),
            "the outside edit shows in the revision"
        );
        let mine = opened.text.replace("pbx.example.com", "pbx.mine.test");
        let err = desk
            .save_profile_raw("office", &mine, None, Some(&opened.revision))
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Conflict);
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            theirs,
            "nothing written"
        );
        // Reloaded, the editor's revision matches again and the save goes through.
        let reloaded = desk.read_profile("office", None).unwrap();
        assert!(reloaded.text.contains("pbx.outside.test"));
        let saved = desk
            .save_profile_raw("office", &mine, None, Some(&reloaded.revision))
            .unwrap();
        assert_eq!(saved.doc.revision, edit::revision(&mine));
        assert_eq!(desk.profile_revision("nope").unwrap(), None);
    }

    #[test]
    fn a_profile_names_its_layers_and_the_variables_its_values_use() {
        let (_dir, desk) = desk();
        let doc = desk.read_profile("office", Some("gxp2170")).unwrap();
        assert_eq!(
            doc.layers,
            [
                "profiles/global.toml",
                "profiles/models/gxp2170.toml",
                "profiles/office.toml"
            ]
        );
        let p270 = doc.own.iter().find(|o| o.p.to_string() == "P270").unwrap();
        assert_eq!(p270.variables, ["ext"]);
        let p47 = doc.own.iter().find(|o| o.p.to_string() == "P47").unwrap();
        assert!(p47.variables.is_empty());
        let model = desk.read_profile("models/gxp2170", None).unwrap();
        assert_eq!(model.kind, ProfileKind::Model);
        assert_eq!(
            model.layers,
            ["profiles/global.toml", "profiles/models/gxp2170.toml"]
        );
    }

    #[test]
    fn a_new_profile_extends_the_parent_it_was_given_and_nothing_else() {
        let (_dir, desk) = desk();
        let mut events = desk.events().subscribe();
        let sales = desk.create_profile(" sales ", Some("office")).unwrap();
        assert_eq!(sales.doc.name, "sales");
        assert_eq!(sales.doc.extends.as_deref(), Some("office"));
        assert_eq!(
            sales.doc.layers,
            [
                "profiles/global.toml",
                "profiles/office.toml",
                "profiles/sales.toml"
            ]
        );
        assert!(sales.build.published);
        assert_eq!(
            events.try_recv().unwrap(),
            DeskEvent::ProfilesChanged {
                files: vec!["profiles/sales.toml".into()]
            }
        );
        for parent in [None, Some("global"), Some("  ")] {
            let name = format!("lobby{}", parent.map_or(0, str::len));
            let created = desk.create_profile(&name, parent).unwrap();
            assert_eq!(created.doc.extends.as_deref(), Some("global"), "{parent:?}");
        }

        let check = |name: &str, parent: Option<&str>, kind: ErrorKind, says: &str| {
            let err = desk.create_profile(name, parent).unwrap_err();
            assert_eq!(err.kind, kind, "{name} {parent:?}: {}", err.message);
            assert!(err.message.contains(says), "{}", err.message);
            let file = desk.root().join(format!("profiles/{}.toml", name.trim()));
            assert!(name == "sales" || !file.exists(), "{name}: nothing written");
        };
        check("sales", None, ErrorKind::Invalid, "already exists");
        check(
            "my profile",
            None,
            ErrorKind::Invalid,
            "is not a profile name",
        );
        check("../x", None, ErrorKind::Invalid, "is not a profile name");
        check(
            "team",
            Some("nope"),
            ErrorKind::NotFound,
            "nope does not exist",
        );
        check(
            "team",
            Some("../office"),
            ErrorKind::Invalid,
            "not a profile name",
        );
        check(
            "team",
            Some("models/gxp2170"),
            ErrorKind::Invalid,
            "cannot be a parent",
        );
        check(
            "models/gxp2135",
            Some("office"),
            ErrorKind::Invalid,
            "extends nothing",
        );
        let model = desk.create_profile("models/GXP2135", None).unwrap();
        assert_eq!(model.doc.file, "profiles/models/gxp2135.toml");
        assert_eq!(model.doc.extends, None);
    }

    #[test]
    fn catalogue_entries_follow_the_model_and_search_finds_by_words() {
        let (_dir, desk) = desk();
        let all = desk.catalog_entries(None);
        assert_eq!(all.len(), desk.catalog().entries().len());
        let ht = desk.catalog_entries(Some("ht812"));
        assert!(ht.len() < all.len(), "a model sees its family's entries");
        let p47 = all.iter().find(|e| e.p.to_string() == "P47").unwrap();
        assert_eq!(p47.kind, "host");
        let json = serde_json::to_value(p47).unwrap();
        assert_eq!(json["type"], "host");
        let hits = desk.catalog_search("syslog", Some(2));
        assert_eq!(hits.len(), 2);
        assert_eq!(hits[0].p.to_string(), "P207");
        assert!(desk.catalog_search("sip", None).len() <= SEARCH_LIMIT);
    }

    /// The catalogue's view is a core type that no exported desk type contains, so its
    /// TypeScript is written here, with the rest of the profile editor's.
    #[test]
    fn export_bindings_catalogentry() {
        EntryView::export_all().unwrap();
    }

    #[tokio::test]
    async fn a_profile_edited_by_hand_is_announced() {
        let (_dir, desk) = desk();
        let mut events = desk.events().subscribe();
        let _watch = desk.watch_profiles().unwrap();
        let profiles = desk.root().join("profiles");

        // A plain write, as a script would.
        fs::write(
            profiles.join("office.toml"),
            "extends = \"global\"\n[params]\n",
        )
        .unwrap();
        assert_eq!(next_change(&mut events).await, ["profiles/office.toml"]);

        // An editor's save: a hidden temp file renamed over the file, with a swap file
        // beside it. Only the profile is announced, under its own name.
        fs::write(profiles.join(".gxp2170.toml.swp"), "x").unwrap();
        write_atomically(
            &profiles.join("models/gxp2170.toml"),
            b"[params]\nP1650 = 1\n",
            Replace::SYNCED,
        )
        .unwrap();
        assert_eq!(
            next_change(&mut events).await,
            ["profiles/models/gxp2170.toml"]
        );

        // A new file, then a removal.
        fs::write(profiles.join("lab.toml"), "[params]\n").unwrap();
        assert_eq!(next_change(&mut events).await, ["profiles/lab.toml"]);
        fs::remove_file(profiles.join("lab.toml")).unwrap();
        assert_eq!(next_change(&mut events).await, ["profiles/lab.toml"]);
    }
}
