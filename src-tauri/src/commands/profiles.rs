//! Profiles and the catalogue: the list with its inheritance, one profile with its own and
//! inherited values, saving one value or the raw text (comments kept), then rebuilding.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use provdesk_core::catalog::{Entry, ParamType, family_of_model};
use provdesk_core::profile::{EffectiveConfig, ProfileSet, Source, Target};
use provdesk_core::{Diagnostic, PName, Severity};
use tauri::State;

use crate::dto::{
    BuildSummary, InheritedValue, OwnValue, ProfileDoc, ProfileList, ProfileSummary, SaveResult,
};
use crate::error::{ApiError, ApiResult};
use crate::profile_file::{self, ProfileKind, ProfileRef, Spelling};
use crate::session::{AppState, Session};

#[tauri::command]
pub async fn list_profiles(state: State<'_, AppState>) -> ApiResult<ProfileList> {
    let session = state.session();
    let root = session.desk.root();
    let profiles = ProfileSet::load(root);
    let mut names = vec![provdesk_core::profile::GLOBAL.to_string()];
    names.extend(
        toml_stems(&session.desk.profiles_dir())
            .into_iter()
            .filter(|s| s != "global"),
    );
    names.extend(
        toml_stems(&root.join(provdesk_core::desk::MODELS_DIR))
            .into_iter()
            .map(|m| format!("models/{m}")),
    );
    let mut out = Vec::new();
    for name in names {
        let Ok(pref) = ProfileRef::parse(&name) else {
            continue;
        };
        let text = fs::read_to_string(root.join(&pref.file)).unwrap_or_default();
        let doc = profile_file::parse(&text).ok();
        let errors = profiles
            .diagnostics()
            .iter()
            .filter(|d| d.is_error() && d.file.as_deref() == Some(pref.file.as_path()))
            .count();
        out.push(ProfileSummary {
            extends: doc.as_ref().and_then(profile_file::extends),
            params: doc
                .as_ref()
                .map_or(0, |d| profile_file::own_values(d).len()),
            errors,
            file: pref.file.to_string_lossy().into_owned(),
            kind: pref.kind,
            name: pref.name,
        });
    }
    Ok(ProfileList {
        profiles: out,
        diagnostics: profiles.diagnostics().to_vec(),
    })
}

/// `*.toml` stems directly in `dir`, sorted, skipping editors' backup and lock files.
fn toml_stems(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut stems: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "toml"))
        .filter_map(|p| p.file_stem()?.to_str().map(str::to_string))
        .filter(|s| !s.starts_with(['.', '#']))
        .collect();
    stems.sort();
    stems
}

#[tauri::command]
pub async fn read_profile(
    state: State<'_, AppState>,
    name: String,
    model: Option<String>,
) -> ApiResult<ProfileDoc> {
    let session = state.session();
    read(&session, &name, model.as_deref())
}

/// The effective config of `target` with every `{{ var }}` left as written, so a profile's
/// inherited values show as the technician wrote them: undefined variables are fed back as
/// their own placeholder until none is left.
fn layered(profiles: &ProfileSet, mut target: Target<'_>) -> EffectiveConfig {
    for _ in 0..64 {
        let (config, diagnostics) = profiles.effective(&target);
        let missing: Vec<String> = diagnostics
            .iter()
            .filter(|d| d.kind == "undefined-variable")
            .filter_map(|d| d.message.split('`').nth(1).map(str::to_string))
            .filter(|v| !target.vars.contains_key(v))
            .collect();
        if missing.is_empty() {
            return config;
        }
        for var in missing {
            let placeholder = format!("{{{{ {var} }}}}");
            target.vars.insert(var, placeholder);
        }
    }
    profiles.effective(&target).0
}

fn model_of<'a>(pref: &'a ProfileRef, model: Option<&'a str>) -> Option<&'a str> {
    pref.model().or(model).filter(|m| !m.is_empty())
}

pub fn read(session: &Session, name: &str, model: Option<&str>) -> ApiResult<ProfileDoc> {
    let pref = ProfileRef::parse(name)?;
    let root = session.desk.root();
    let path = root.join(&pref.file);
    let text = fs::read_to_string(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ApiError::not_found(format!(
            "{} does not exist; create the profile first",
            pref.file.display()
        )),
        _ => ApiError::io(&path, e),
    })?;
    let doc = profile_file::parse(&text).ok();
    let profiles = ProfileSet::load(root);
    let diagnostics: Vec<Diagnostic> = profiles
        .diagnostics()
        .iter()
        .filter(|d| d.file.as_deref() == Some(pref.file.as_path()))
        .cloned()
        .collect();
    let extends = doc.as_ref().and_then(profile_file::extends);
    let model = model_of(&pref, model);

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
    let lines: BTreeMap<PName, usize> = layered(&profiles, own_target)
        .params
        .into_iter()
        .filter_map(|(p, s)| match s.source {
            Source::File { path, line } if path == pref.file => Some((p, line)),
            _ => None,
        })
        .collect();

    // What the layers below this file give.
    let parent = extends
        .as_deref()
        .filter(|e| *e != provdesk_core::profile::GLOBAL);
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
        .map(profile_file::own_values)
        .unwrap_or_default()
        .into_iter()
        .map(|(p, value)| {
            let line = lines.get(&p).copied();
            let violations = session
                .catalog
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
            }
        })
        .collect();
    Ok(ProfileDoc {
        file: pref.file.to_string_lossy().into_owned(),
        kind: pref.kind,
        name: pref.name.clone(),
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
    })
}

fn write_profile(session: &Session, pref: &ProfileRef, text: &str) -> ApiResult<()> {
    let build_dir = session.desk.build_dir();
    let temp = build_dir.join(".tmp");
    fs::create_dir_all(&temp).map_err(|e| ApiError::io(&temp, e))?;
    let target = session.desk.root().join(&pref.file);
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent).map_err(|e| ApiError::io(parent, e))?;
    }
    provdesk_core::build::write_atomically(&temp, &target, text.as_bytes())?;
    Ok(())
}

/// Splits catalogue verdicts: errors refuse the save, warnings travel with the result.
fn verdicts(
    session: &Session,
    values: &[(PName, String)],
    model: &str,
    file: &Path,
) -> (Vec<Diagnostic>, Vec<Diagnostic>) {
    let all: Vec<Diagnostic> = values
        .iter()
        .flat_map(|(p, value)| {
            session
                .catalog
                .validate(*p, value, model)
                .into_iter()
                .map(|v| v.to_diagnostic(*p).in_file(file))
        })
        .collect();
    all.into_iter().partition(|d| d.severity == Severity::Error)
}

/// Sets one value (or with `value: None` removes it, so the inherited one applies), keeping
/// the file's comments, then rebuilds everything.
#[tauri::command]
pub async fn save_profile_value(
    state: State<'_, AppState>,
    name: String,
    p: String,
    value: Option<String>,
    model: Option<String>,
) -> ApiResult<SaveResult> {
    let session = state.session();
    save_value(&session, &name, &p, value.as_deref(), model.as_deref())
}

pub fn save_value(
    session: &Session,
    name: &str,
    p: &str,
    value: Option<&str>,
    model: Option<&str>,
) -> ApiResult<SaveResult> {
    let pref = ProfileRef::parse(name)?;
    let p: PName = p.trim().parse()?;
    let path = session.desk.root().join(&pref.file);
    let text = fs::read_to_string(&path).map_err(|e| ApiError::io(&path, e))?;
    let mut doc = profile_file::parse(&text)?;
    let check_model = model_of(&pref, model).unwrap_or("");
    let mut warnings = Vec::new();
    if let Some(value) = value {
        let (errors, found) = verdicts(session, &[(p, value.to_string())], check_model, &pref.file);
        if !errors.is_empty() {
            let first = errors[0].message.clone();
            return Err(ApiError::diagnostics(
                format!("{first} Nothing was saved."),
                errors,
            ));
        }
        warnings = found;
    }
    let entry: Option<&Entry> = session.catalog.get(p);
    let spelling = match entry.map(|e| &e.kind) {
        Some(ParamType::Bool | ParamType::Integer { .. }) => Spelling::Number,
        _ => Spelling::Text,
    };
    profile_file::set_value(&mut doc, p, value, spelling, entry.map(|e| e.name.as_str()));
    write_profile(session, &pref, &doc.to_string())?;
    let build = BuildSummary::from(&session.build()?);
    Ok(SaveResult {
        doc: read(session, &pref.name, model)?,
        build,
        warnings,
    })
}

/// Replaces the whole file with `text` after the core found no errors in it.
#[tauri::command]
pub async fn save_profile_raw(
    state: State<'_, AppState>,
    name: String,
    text: String,
    model: Option<String>,
) -> ApiResult<SaveResult> {
    let session = state.session();
    save_raw(&session, &name, &text, model.as_deref())
}

pub fn save_raw(
    session: &Session,
    name: &str,
    text: &str,
    model: Option<&str>,
) -> ApiResult<SaveResult> {
    let pref = ProfileRef::parse(name)?;
    let file = pref.file.to_string_lossy().into_owned();
    // Parents live in other files, so only this file's own problems count here.
    let mut errors: Vec<Diagnostic> = ProfileSet::from_texts(&[(file.as_str(), text)])
        .diagnostics()
        .iter()
        .filter(|d| d.is_error() && !matches!(d.kind, "unknown-parent" | "extends-cycle"))
        .cloned()
        .collect();
    let mut warnings = Vec::new();
    if let Ok(doc) = profile_file::parse(text) {
        let check_model = model_of(&pref, model).unwrap_or("");
        let (bad, found) = verdicts(
            session,
            &profile_file::own_values(&doc),
            check_model,
            &pref.file,
        );
        errors.extend(bad);
        warnings = found;
    }
    if !errors.is_empty() {
        return Err(ApiError::diagnostics(
            format!(
                "{} problem(s) in {file}; nothing was saved. The first: {}",
                errors.len(),
                errors[0]
            ),
            errors,
        ));
    }
    write_profile(session, &pref, text)?;
    let build = BuildSummary::from(&session.build()?);
    Ok(SaveResult {
        doc: read(session, &pref.name, model)?,
        build,
        warnings,
    })
}

/// Creates an empty profile (`extends` the given parent, or `global`).
#[tauri::command]
pub async fn create_profile(
    state: State<'_, AppState>,
    name: String,
    extends: Option<String>,
) -> ApiResult<ProfileDoc> {
    let session = state.session();
    let pref = ProfileRef::parse(name.trim())?;
    let path = session.desk.root().join(&pref.file);
    if path.exists() {
        return Err(ApiError::invalid(format!(
            "{} already exists; pick another name",
            pref.file.display()
        )));
    }
    let text = match (pref.kind, extends.filter(|e| !e.trim().is_empty())) {
        (ProfileKind::Profile, Some(parent)) => {
            format!(
                "extends = {}\n\n[params]\n",
                toml_edit::Value::from(parent.trim())
            )
        }
        (ProfileKind::Profile, None) => "extends = \"global\"\n\n[params]\n".to_string(),
        _ => "[params]\n".to_string(),
    };
    write_profile(&session, &pref, &text)?;
    read(&session, &pref.name, None)
}

/// The catalogue entries a model's phones use (all of them without a model), for the editor.
#[tauri::command]
pub async fn catalog_entries(
    state: State<'_, AppState>,
    model: Option<String>,
) -> ApiResult<Vec<Entry>> {
    let session = state.session();
    let family = model.as_deref().map(family_of_model).unwrap_or_default();
    Ok(session
        .catalog
        .entries()
        .iter()
        .filter(|e| family.is_empty() || e.applies_to(&family))
        .cloned()
        .collect())
}

#[tauri::command]
pub async fn catalog_search(
    state: State<'_, AppState>,
    query: String,
    limit: Option<usize>,
) -> ApiResult<Vec<Entry>> {
    let session = state.session();
    Ok(session
        .catalog
        .search(&query, limit.unwrap_or(50))
        .into_iter()
        .cloned()
        .collect())
}

#[tauri::command]
pub async fn build(state: State<'_, AppState>) -> ApiResult<BuildSummary> {
    let session = state.session();
    Ok(BuildSummary::from(&session.build()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::devices;

    const CSV: &str = "mac,model,profile,name,ext,sip_secret\n\
        00:0b:82:00:00:01,GXP2170,office,Reception,201,s1\n\
        00:0b:82:00:00:02,GXP2170,office,Sales,202,s2\n";

    fn desk() -> (tempfile::TempDir, Session) {
        let dir = tempfile::tempdir().unwrap();
        let session = Session::open(&dir.path().join("desk")).unwrap();
        (dir, session)
    }

    fn effective(session: &Session, mac: &str, p: &str) -> Option<String> {
        let device = session
            .inventory
            .get_device(mac.parse().unwrap())
            .unwrap()?;
        let detail = devices::detail(session, device).unwrap();
        detail
            .params
            .into_iter()
            .find(|x| x.p.to_string() == p)
            .map(|x| x.value)
    }

    #[test]
    fn a_saved_value_keeps_comments_rebuilds_and_reaches_the_device() {
        let (_dir, session) = desk();
        let result = devices::import(&session, CSV, Some("order.csv"), false, false).unwrap();
        assert_eq!(result.imported, Some(2), "{}", result.message);
        assert_eq!(
            effective(&session, "000b82000001", "P47").as_deref(),
            Some("pbx.example.com")
        );

        let saved = save_value(&session, "office", "P47", Some("pbx.example.org"), None).unwrap();
        assert!(saved.build.published);
        assert!(saved.build.written > 0, "the devices' files changed");
        let text = fs::read_to_string(session.desk.root().join("profiles/office.toml")).unwrap();
        assert!(
            text.contains("P47 = \"pbx.example.org\"       # SIP server"),
            "{text}"
        );
        assert!(text.contains("# Uncomment to encrypt"), "{text}");
        assert_eq!(
            effective(&session, "000b82000001", "P47").as_deref(),
            Some("pbx.example.org")
        );

        // Removing the value lets nothing (global has no P47) apply.
        save_value(&session, "office", "P47", None, None).unwrap();
        assert_eq!(effective(&session, "000b82000001", "P47"), None);
    }

    #[test]
    fn the_catalogue_refuses_a_bad_value_and_nothing_is_written() {
        let (_dir, session) = desk();
        let before = fs::read_to_string(session.desk.root().join("profiles/global.toml")).unwrap();
        let err = save_value(&session, "global", "P122", Some("maybe"), None).unwrap_err();
        assert_eq!(err.kind, "diagnostics");
        assert!(err.message.contains("Nothing was saved"), "{}", err.message);
        assert!(!err.diagnostics.is_empty());
        let after = fs::read_to_string(session.desk.root().join("profiles/global.toml")).unwrap();
        assert_eq!(before, after);
    }

    #[test]
    fn a_profile_shows_its_own_values_with_lines_and_what_it_inherits() {
        let (_dir, session) = desk();
        let doc = read(&session, "office", Some("gxp2170")).unwrap();
        assert_eq!(doc.extends.as_deref(), Some("global"));
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
    }

    #[test]
    fn raw_saves_refuse_syntax_errors_with_their_line() {
        let (_dir, session) = desk();
        let err =
            save_raw(&session, "office", "[params]\nP47 = \"a\"\nP48 = \n", None).unwrap_err();
        assert_eq!(err.kind, "diagnostics");
        assert_eq!(err.diagnostics[0].line, Some(3));
        let ok = save_raw(
            &session,
            "office",
            "extends = \"global\"\n[params]\nP47 = \"b\" # mine\n",
            None,
        )
        .unwrap();
        assert_eq!(ok.doc.own.len(), 1);
    }

    #[test]
    fn an_import_with_bad_rows_imports_nothing_unless_told() {
        let (_dir, session) = desk();
        let csv = format!("{CSV}zz,GXP2170,office,Bad,203,s3\n");
        let refused = devices::import(&session, &csv, None, false, false).unwrap();
        assert_eq!(refused.imported, None);
        assert_eq!((refused.rows.len(), refused.bad), (2, 1));
        assert_eq!(refused.diagnostics[0].line, Some(4));
        let dry = devices::import(&session, &csv, None, true, true).unwrap();
        assert!(
            dry.message.starts_with("dry run: would import 2"),
            "{}",
            dry.message
        );
        assert!(session.inventory.list_devices().unwrap().is_empty());
        let done = devices::import(&session, &csv, None, false, true).unwrap();
        assert_eq!(done.imported, Some(2));
    }
}
