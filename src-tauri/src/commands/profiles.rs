//! Profiles and the catalogue: the list with its inheritance, one profile with its own and
//! inherited values, saving one value or the raw text (comments kept), then rebuilding.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use provdesk_core::catalog::{Entry, family_of_model};
use provdesk_core::profile::edit::{self, Edit, ProfileKind, ProfileRef, Spelling};
use provdesk_core::profile::{EffectiveConfig, ProfileSet, Source, Target, template_variables};
use provdesk_core::{Diagnostic, PName, Severity};
use tauri::State;

use crate::dto::{
    BuildSummary, InheritedValue, OwnValue, ProfileDoc, ProfileList, ProfileSummary, SaveResult,
};
use crate::error::{ApiError, ApiResult};
use crate::session::{AppState, Session};

#[tauri::command]
pub async fn list_profiles(state: State<'_, AppState>) -> ApiResult<ProfileList> {
    let session = state.session();
    let root = session.desk().root();
    let profiles = ProfileSet::load(root);
    let mut out = Vec::new();
    for pref in edit::list(root) {
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

#[tauri::command]
pub async fn read_profile(
    state: State<'_, AppState>,
    name: String,
    model: Option<String>,
) -> ApiResult<ProfileDoc> {
    let session = state.session();
    read(&session, &name, model.as_deref())
}

/// The layered values of `target` with every `{{ var }}` left as written, so a profile's
/// inherited values show as the technician wrote them.
fn layered(profiles: &ProfileSet, target: Target<'_>) -> EffectiveConfig {
    profiles.layered(&target).0
}

fn model_of<'a>(pref: &'a ProfileRef, model: Option<&'a str>) -> Option<&'a str> {
    pref.model().or(model).filter(|m| !m.is_empty())
}

pub fn read(session: &Session, name: &str, model: Option<&str>) -> ApiResult<ProfileDoc> {
    let pref = ProfileRef::parse(name)?;
    let root = session.desk().root();
    let path = root.join(&pref.file);
    let text = fs::read_to_string(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ApiError::not_found(format!(
            "{} does not exist; create the profile first",
            pref.file.display()
        )),
        _ => ApiError::io(&path, e),
    })?;
    let doc = edit::parse(&text).ok();
    let profiles = ProfileSet::load(root);
    let diagnostics: Vec<Diagnostic> = profiles
        .diagnostics()
        .iter()
        .filter(|d| d.file.as_deref() == Some(pref.file.as_path()))
        .cloned()
        .collect();
    let extends = doc.as_ref().and_then(edit::extends);
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
    let layers = profiles
        .layer_files(&own_target)
        .iter()
        .map(|f| f.to_string_lossy().into_owned())
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
        .map(edit::own_values)
        .unwrap_or_default()
        .into_iter()
        .map(|(p, value)| {
            let line = lines.get(&p).copied();
            // A bad template is the loader's diagnostic already; here it only means "none".
            let variables = template_variables(&value).unwrap_or_default();
            let violations = session
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
    Ok(ProfileDoc {
        file: pref.file.to_string_lossy().into_owned(),
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
    })
}

fn write_profile(session: &Session, pref: &ProfileRef, text: &str) -> ApiResult<()> {
    let build_dir = session.desk().build_dir();
    let temp = build_dir.join(".tmp");
    fs::create_dir_all(&temp).map_err(|e| ApiError::io(&temp, e))?;
    let target = session.desk().root().join(&pref.file);
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
                .catalog()
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
    let path = session.desk().root().join(&pref.file);
    let text = fs::read_to_string(&path).map_err(|e| ApiError::io(&path, e))?;
    let mut doc = edit::parse(&text)?;
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
    let entry: Option<&Entry> = session.catalog().get(p);
    edit::set_value(
        &mut doc,
        Edit {
            name: p,
            value,
            spelling: Spelling::for_entry(entry),
            label: entry.map(|e| e.name.as_str()),
        },
    );
    write_profile(session, &pref, &doc.to_string())?;
    let build = session.build()?;
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
    base_revision: Option<String>,
) -> ApiResult<SaveResult> {
    let session = state.session();
    save_raw(
        &session,
        &name,
        &text,
        model.as_deref(),
        base_revision.as_deref(),
    )
}

/// Saves the raw text. With `base_revision` (the revision the editor loaded), a file changed
/// on disk since then is not overwritten: the technician chooses between the two versions.
pub fn save_raw(
    session: &Session,
    name: &str,
    text: &str,
    model: Option<&str>,
    base_revision: Option<&str>,
) -> ApiResult<SaveResult> {
    let pref = ProfileRef::parse(name)?;
    let file = pref.file.to_string_lossy().into_owned();
    if let Some(base) = base_revision
        && let Some(current) = current_revision(session, &pref)?
        && current != base
    {
        return Err(ApiError {
            kind: provdesk_desk::ErrorKind::Conflict,
            message: format!(
                "{file} was changed outside ProvDesk since you opened it; nothing was saved. \
                 Load the file's version, or copy your text and save it again"
            ),
            diagnostics: Vec::new(),
        });
    }
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
        let (bad, found) = verdicts(session, &edit::own_values(&doc), check_model, &pref.file);
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
    let build = session.build()?;
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
    let path = session.desk().root().join(&pref.file);
    if path.exists() {
        return Err(ApiError::invalid(format!(
            "{} already exists; pick another name",
            pref.file.display()
        )));
    }
    let text = pref.new_file_text(extends.as_deref());
    write_profile(&session, &pref, &text)?;
    read(&session, &pref.name, None)
}

/// The revision of a profile file as it is on disk now (`None` when it does not exist). The
/// editor polls this while it is open, so edits made outside the app show up.
#[tauri::command]
pub async fn profile_revision(
    state: State<'_, AppState>,
    name: String,
) -> ApiResult<Option<String>> {
    let session = state.session();
    current_revision(&session, &ProfileRef::parse(&name)?)
}

fn current_revision(session: &Session, pref: &ProfileRef) -> ApiResult<Option<String>> {
    let path = session.desk().root().join(&pref.file);
    match fs::read_to_string(&path) {
        Ok(text) => Ok(Some(edit::revision(&text))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ApiError::io(&path, e)),
    }
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
        .catalog()
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
        .catalog()
        .search(&query, limit.unwrap_or(50))
        .into_iter()
        .cloned()
        .collect())
}

#[tauri::command]
pub async fn build(state: State<'_, AppState>) -> ApiResult<BuildSummary> {
    let session = state.session();
    session.build()
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
            .inventory()
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
        let text = fs::read_to_string(session.desk().root().join("profiles/office.toml")).unwrap();
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
        let before =
            fs::read_to_string(session.desk().root().join("profiles/global.toml")).unwrap();
        let err = save_value(&session, "global", "P122", Some("maybe"), None).unwrap_err();
        assert_eq!(err.kind, provdesk_desk::ErrorKind::Diagnostics);
        assert!(err.message.contains("Nothing was saved"), "{}", err.message);
        assert!(!err.diagnostics.is_empty());
        let after = fs::read_to_string(session.desk().root().join("profiles/global.toml")).unwrap();
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
        let err = save_raw(
            &session,
            "office",
            "[params]\nP47 = \"a\"\nP48 = \n",
            None,
            None,
        )
        .unwrap_err();
        assert_eq!(err.kind, provdesk_desk::ErrorKind::Diagnostics);
        assert_eq!(err.diagnostics[0].line, Some(3));
        let ok = save_raw(
            &session,
            "office",
            "extends = \"global\"\n[params]\nP47 = \"b\" # mine\n",
            None,
            None,
        )
        .unwrap();
        assert_eq!(ok.doc.own.len(), 1);
    }

    #[test]
    fn a_raw_save_over_an_outside_edit_is_a_conflict() {
        let (_dir, session) = desk();
        let opened = read(&session, "office", None).unwrap();
        let path = session.desk().root().join("profiles/office.toml");
        let theirs = opened.text.replace("pbx.example.com", "pbx.outside.test");
        fs::write(&path, &theirs).unwrap();
        let pref = ProfileRef::parse("office").unwrap();
        assert_ne!(
            current_revision(&session, &pref).unwrap().as_deref(),
            Some(opened.revision.as_str()),
            "the poll sees the outside edit"
        );
        let mine = opened.text.replace("pbx.example.com", "pbx.mine.test");
        let err = save_raw(&session, "office", &mine, None, Some(&opened.revision)).unwrap_err();
        assert_eq!(err.kind, provdesk_desk::ErrorKind::Conflict);
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            theirs,
            "nothing written"
        );
        // Reloaded, the editor's revision matches again and the save goes through.
        let reloaded = read(&session, "office", None).unwrap();
        assert!(reloaded.text.contains("pbx.outside.test"));
        let saved = save_raw(&session, "office", &mine, None, Some(&reloaded.revision)).unwrap();
        assert_eq!(saved.doc.revision, edit::revision(&mine));
        let missing = ProfileRef::parse("nope").unwrap();
        assert_eq!(current_revision(&session, &missing).unwrap(), None);
    }

    #[test]
    fn a_profile_names_its_layers_and_the_variables_its_values_use() {
        let (_dir, session) = desk();
        let doc = read(&session, "office", Some("gxp2170")).unwrap();
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
        let model = read(&session, "models/gxp2170", None).unwrap();
        assert_eq!(model.kind, ProfileKind::Model);
        assert_eq!(
            model.layers,
            ["profiles/global.toml", "profiles/models/gxp2170.toml"]
        );
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
        assert!(session.inventory().list_devices().unwrap().is_empty());
        let done = devices::import(&session, &csv, None, false, true).unwrap();
        assert_eq!(done.imported, Some(2));
    }
}
