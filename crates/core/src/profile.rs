//! Profiles: the TOML files of `DESK/profiles/`, their `extends` chains, and the effective
//! configuration of a device (global < model < profile chain < device overrides) with
//! `{{ var }}` substitution.
//!
//! Invariant: loading never stops at the first problem. Every syntax error, bad P-value name,
//! unknown parent and cycle is a [`Diagnostic`] with file, line and column, and the files that
//! did load are still usable. Every effective value says which layer it came from.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::diagnostic::line_column;
use crate::{Diagnostic, Mac, PName};

pub mod edit;

/// The name of the profile that applies to every device.
pub const GLOBAL: &str = "global";

/// Where one effective value came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Source {
    /// A profile file, relative to the desk (`profiles/office.toml`), with the line of the key.
    File {
        #[cfg_attr(feature = "ts", ts(as = "String"))]
        path: PathBuf,
        line: usize,
    },
    /// The device's own override in the inventory.
    DeviceOverride,
    /// Filled in by the builder (e.g. P237 from the server's own address).
    Server,
    /// The device's XML password (P1359) that ProvDesk generated and keeps in the inventory
    /// (`[encryption] mode = "per-device"`).
    Generated,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File { path, .. } => write!(f, "{}", path.display()),
            Source::DeviceOverride => write!(f, "device override"),
            Source::Server => write!(f, "server address"),
            Source::Generated => write!(f, "generated password"),
        }
    }
}

/// One value of an effective configuration, after substitution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced {
    pub value: String,
    pub source: Source,
}

/// The configuration a device (or a model, or everyone) receives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EffectiveConfig {
    pub params: BTreeMap<PName, Sourced>,
}

impl EffectiveConfig {
    pub fn get(&self, name: PName) -> Option<&str> {
        self.params.get(&name).map(|s| s.value.as_str())
    }

    /// A non-empty value, the way the builder asks "is this set?".
    pub fn non_empty(&self, name: PName) -> Option<&str> {
        self.get(name).filter(|v| !v.trim().is_empty())
    }

    pub fn values(&self) -> crate::Params {
        self.params
            .iter()
            .map(|(k, v)| (*k, v.value.clone()))
            .collect()
    }
}

/// What the effective configuration is computed for. `mac` and `profile` are absent for the
/// model-wide and generic files.
#[derive(Debug, Clone, Default)]
pub struct Target<'a> {
    pub mac: Option<Mac>,
    pub model: Option<&'a str>,
    pub profile: Option<&'a str>,
    /// Every variable the values may use, e.g. `ext`, `name`, `mac`, `server_host`.
    pub vars: BTreeMap<String, String>,
    pub overrides: Option<&'a BTreeMap<PName, String>>,
}

/// A piece of a value: literal text or a `{{ var }}` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var { name: String, column_offset: usize },
}

#[derive(Debug, Clone)]
struct Param {
    name: PName,
    pieces: Vec<Piece>,
    line: usize,
    column: usize,
}

#[derive(Debug, Clone)]
struct ProfileFile {
    /// Relative to the desk: `profiles/office.toml`.
    path: PathBuf,
    extends: Option<(String, usize, usize)>,
    params: Vec<Param>,
}

/// Every profile of a desk, loaded once and queried per device.
#[derive(Debug, Clone, Default)]
pub struct ProfileSet {
    global: Option<ProfileFile>,
    models: BTreeMap<String, ProfileFile>,
    named: BTreeMap<String, ProfileFile>,
    diagnostics: Vec<Diagnostic>,
    fingerprint: [u8; 32],
    /// What each file held when it was read, to compare with the disk after a build.
    inputs: crate::build_inputs::BuildInputs,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    extends: Option<toml::Spanned<String>>,
    #[allow(dead_code)]
    description: Option<String>,
    #[serde(default)]
    params: BTreeMap<toml::Spanned<String>, toml::Spanned<RawValue>>,
}

/// TOML lets technicians write `P271 = 1` or `P122 = true`; all become strings.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawValue {
    Text(String),
    Integer(i64),
    Bool(bool),
    Float(f64),
}

impl RawValue {
    fn into_text(self) -> String {
        match self {
            RawValue::Text(text) => text,
            RawValue::Integer(n) => n.to_string(),
            RawValue::Bool(b) => if b { "1" } else { "0" }.to_string(),
            RawValue::Float(x) => x.to_string(),
        }
    }
}

impl ProfileSet {
    /// Loads `profiles/*.toml` and `profiles/models/*.toml` under `desk_root`.
    pub fn load(desk_root: &Path) -> ProfileSet {
        let mut set = ProfileSet::default();
        let mut hasher = Sha256::new();
        let profiles = desk_root.join(crate::desk::PROFILES_DIR);
        let models = desk_root.join(crate::desk::MODELS_DIR);
        for (dir, is_model) in [(&profiles, false), (&models, true)] {
            for (stem, path) in toml_files(dir, &mut set.diagnostics, desk_root) {
                let relative = path.strip_prefix(desk_root).unwrap_or(&path).to_path_buf();
                let text = match fs::read_to_string(&path) {
                    Ok(text) => text,
                    Err(e) => {
                        set.diagnostics.push(
                            Diagnostic::error("io", format!("cannot read: {e}")).in_file(&relative),
                        );
                        continue;
                    }
                };
                set.inputs.record(&relative, text.as_bytes());
                hasher.update(relative.to_string_lossy().as_bytes());
                hasher.update([0]);
                hasher.update(text.as_bytes());
                hasher.update([0]);
                let Some(file) = parse_profile(&relative, &text, &mut set.diagnostics) else {
                    continue;
                };
                if is_model {
                    set.models.insert(stem.to_ascii_lowercase(), file);
                } else if stem == GLOBAL {
                    set.global = Some(file);
                } else {
                    set.named.insert(stem, file);
                }
            }
        }
        set.fingerprint = hasher.finalize().into();
        set.check_chains();
        set
    }

    /// Builds a set from in-memory files, for tests and previews: `(relative path, text)`.
    pub fn from_texts(files: &[(&str, &str)]) -> ProfileSet {
        let mut set = ProfileSet::default();
        let mut hasher = Sha256::new();
        for (path, text) in files {
            hasher.update(path.as_bytes());
            hasher.update(text.as_bytes());
            let relative = PathBuf::from(path);
            let Some(file) = parse_profile(&relative, text, &mut set.diagnostics) else {
                continue;
            };
            let stem = relative
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default();
            if relative.parent().is_some_and(|p| p.ends_with("models")) {
                set.models.insert(stem.to_ascii_lowercase(), file);
            } else if stem == GLOBAL {
                set.global = Some(file);
            } else {
                set.named.insert(stem, file);
            }
        }
        set.fingerprint = hasher.finalize().into();
        set.check_chains();
        set
    }

    /// Problems found while loading: syntax, names, parents, cycles.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// What each file held when it was read (length and hash), in the order it was read.
    pub fn inputs(&self) -> &crate::build_inputs::BuildInputs {
        &self.inputs
    }

    /// A hash of every file's path and content: equal fingerprints mean equal profiles.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    pub fn profile_exists(&self, name: &str) -> bool {
        name == GLOBAL || self.named.contains_key(name)
    }

    pub fn profile_names(&self) -> impl Iterator<Item = &str> {
        self.named.keys().map(String::as_str)
    }

    /// Models with their own file under `profiles/models/`.
    pub fn model_names(&self) -> impl Iterator<Item = &str> {
        self.models.keys().map(String::as_str)
    }

    /// The files applied for `target`, bottom layer first.
    fn layers(&self, target: &Target<'_>) -> Result<Vec<&ProfileFile>, Box<Diagnostic>> {
        let mut layers: Vec<&ProfileFile> = self.global.iter().collect();
        if let Some(model) = target.model
            && let Some(file) = self.models.get(&model.to_ascii_lowercase())
        {
            layers.push(file);
        }
        if let Some(profile) = target.profile.filter(|p| *p != GLOBAL) {
            let mut chain = Vec::new();
            let mut current = Some(profile.to_string());
            while let Some(name) = current {
                if name == GLOBAL {
                    break;
                }
                let Some(file) = self.named.get(&name) else {
                    // A file that is there but does not load is its own error already; say
                    // that rather than that the profile is missing.
                    let path = std::path::PathBuf::from(format!("profiles/{name}.toml"));
                    let broken = self
                        .diagnostics
                        .iter()
                        .any(|d| d.is_error() && d.file.as_deref() == Some(path.as_path()));
                    let message = if broken {
                        format!(
                            "profile `{name}` cannot be used until profiles/{name}.toml loads: fix its error(s)"
                        )
                    } else {
                        format!("profile `{name}` does not exist (no profiles/{name}.toml)")
                    };
                    let mut d = Diagnostic::error("unknown-profile", message).field("profile");
                    if let Some(mac) = target.mac {
                        d = d.device(mac);
                    }
                    return Err(Box::new(d));
                };
                if chain.iter().any(|f: &&ProfileFile| std::ptr::eq(*f, file)) {
                    // Reported once at load time by `check_chains`; stop here quietly.
                    break;
                }
                chain.push(file);
                current = file.extends.as_ref().map(|(parent, _, _)| parent.clone());
            }
            layers.extend(chain.into_iter().rev());
        }
        Ok(layers)
    }

    /// The effective configuration of `target` with the source of every value, plus every
    /// problem found (undefined variables, an unknown profile).
    pub fn effective(&self, target: &Target<'_>) -> (EffectiveConfig, Vec<Diagnostic>) {
        self.effective_with(target, Unresolved::Report)
    }

    /// The effective configuration with every `{{ var }}` that `target.vars` does not define
    /// kept as a placeholder (`{{ ext }}`) instead of reported: how a profile editor shows the
    /// values a layer gives before any device fills them in. The diagnostics are the other
    /// problems (an unknown profile).
    pub fn layered(&self, target: &Target<'_>) -> (EffectiveConfig, Vec<Diagnostic>) {
        self.effective_with(target, Unresolved::Keep)
    }

    /// The `{{ var }}` names the layers of `target` use and `target.vars` does not define,
    /// each once, bottom layer first: what a device must be given before its files can be
    /// built. Empty when its profile does not exist (that is an error of its own).
    pub fn missing_variables(&self, target: &Target<'_>) -> Vec<String> {
        let Ok(layers) = self.layers(target) else {
            return Vec::new();
        };
        let mut missing: Vec<String> = Vec::new();
        for piece in layers
            .iter()
            .flat_map(|file| &file.params)
            .flat_map(|param| &param.pieces)
        {
            if let Piece::Var { name, .. } = piece
                && !target.vars.contains_key(name)
                && !missing.contains(name)
            {
                missing.push(name.clone());
            }
        }
        missing
    }

    /// Whether the value `name` has in the profile file `path` uses a `{{ var }}`: a value
    /// that fails only after substitution is the device's problem, not the profile's.
    pub fn uses_variables(&self, path: &Path, name: PName) -> bool {
        self.global
            .iter()
            .chain(self.models.values())
            .chain(self.named.values())
            .filter(|file| file.path == path)
            .flat_map(|file| &file.params)
            .filter(|param| param.name == name)
            .any(|param| param.pieces.iter().any(|p| matches!(p, Piece::Var { .. })))
    }

    /// The files applied for `target`, bottom layer first (relative to the desk), e.g.
    /// `global.toml`, `models/gxp2170.toml`, `office.toml`, `sales.toml`. An unknown profile
    /// ends the list where the chain breaks.
    pub fn layer_files(&self, target: &Target<'_>) -> Vec<PathBuf> {
        match self.layers(target) {
            Ok(layers) => layers.into_iter().map(|f| f.path.clone()).collect(),
            Err(_) => self
                .layers(&Target {
                    profile: None,
                    ..target.clone()
                })
                .map(|layers| layers.into_iter().map(|f| f.path.clone()).collect())
                .unwrap_or_default(),
        }
    }

    /// Every value the layers applied for `target` set, then each of `target.overrides`,
    /// bottom first, as its P-value and the `{{ var }}` names it uses. A P-value set in several
    /// layers appears once per layer, so a variable feeding a value that a higher layer then
    /// replaces is still listed. This is what [`crate::secrets`] decides from.
    pub fn value_uses(&self, target: &Target<'_>) -> Vec<(PName, Vec<String>)> {
        let layers = self.layers(target).or_else(|_| {
            self.layers(&Target {
                profile: None,
                ..target.clone()
            })
        });
        let names = |pieces: &[Piece]| {
            pieces
                .iter()
                .filter_map(|piece| match piece {
                    Piece::Var { name, .. } => Some(name.clone()),
                    Piece::Text(_) => None,
                })
                .collect::<Vec<_>>()
        };
        let mut uses: Vec<(PName, Vec<String>)> = layers
            .unwrap_or_default()
            .iter()
            .flat_map(|file| &file.params)
            .map(|param| (param.name, names(&param.pieces)))
            .collect();
        for (name, value) in target.overrides.into_iter().flatten() {
            // Overrides are used as written, but a `{{ var }}` in one still names what the
            // value is meant to carry.
            uses.push((
                *name,
                parse_pieces(value).map_or_else(|_| Vec::new(), |p| names(&p)),
            ));
        }
        uses
    }

    fn effective_with(
        &self,
        target: &Target<'_>,
        unresolved: Unresolved,
    ) -> (EffectiveConfig, Vec<Diagnostic>) {
        let mut config = EffectiveConfig::default();
        let mut diagnostics = Vec::new();
        let layers = match self.layers(target) {
            Ok(layers) => layers,
            Err(d) => {
                diagnostics.push(*d);
                return (config, diagnostics);
            }
        };
        for file in layers {
            for param in &file.params {
                match substitute(&param.pieces, &target.vars, unresolved) {
                    Ok(value) => {
                        let source = Source::File {
                            path: file.path.clone(),
                            line: param.line,
                        };
                        config.params.insert(param.name, Sourced { value, source });
                    }
                    Err((var, offset)) => {
                        let mut d = Diagnostic::error(
                            "undefined-variable",
                            format!("{}: undefined variable `{var}`", param.name),
                        )
                        .in_file(&file.path)
                        .at(param.line, param.column + offset)
                        .field(param.name.to_string());
                        if let Some(mac) = target.mac {
                            d = d.device(mac);
                        }
                        diagnostics.push(d);
                    }
                }
            }
        }
        if let Some(overrides) = target.overrides {
            for (name, value) in overrides {
                config.params.insert(
                    *name,
                    Sourced {
                        value: value.clone(),
                        source: Source::DeviceOverride,
                    },
                );
            }
        }
        (config, diagnostics)
    }

    /// Reports every unknown parent and every cycle once, at the `extends` line.
    fn check_chains(&mut self) {
        let mut reported: BTreeSet<String> = BTreeSet::new();
        let mut found = Vec::new();
        for (start, file) in &self.named {
            if let Some((parent, line, column)) = &file.extends
                && parent != GLOBAL
                && !self.named.contains_key(parent)
            {
                found.push(
                    Diagnostic::error(
                        "unknown-parent",
                        format!("`extends = \"{parent}\"`: there is no profile `{parent}` (no profiles/{parent}.toml)"),
                    )
                    .in_file(&file.path)
                    .at(*line, *column)
                    .field("extends"),
                );
            }
            let mut seen = vec![start.clone()];
            let mut current = file.extends.as_ref().map(|(p, _, _)| p.clone());
            while let Some(name) = current {
                if name == GLOBAL {
                    break;
                }
                if let Some(position) = seen.iter().position(|s| *s == name) {
                    let cycle: Vec<String> = seen[position..].to_vec();
                    let key = {
                        let mut sorted = cycle.clone();
                        sorted.sort();
                        sorted.join(",")
                    };
                    if reported.insert(key) {
                        let first = &self.named[&cycle[0]];
                        let (_, line, column) = first.extends.clone().unwrap_or_default();
                        let mut path = cycle.clone();
                        path.push(cycle[0].clone());
                        found.push(
                            Diagnostic::error(
                                "extends-cycle",
                                format!(
                                    "profiles extend each other in a cycle: {}",
                                    path.join(" -> ")
                                ),
                            )
                            .in_file(&first.path)
                            .at(line, column)
                            .field("extends"),
                        );
                    }
                    break;
                }
                seen.push(name.clone());
                current = self
                    .named
                    .get(&name)
                    .and_then(|f| f.extends.as_ref().map(|(p, _, _)| p.clone()));
            }
        }
        self.diagnostics.extend(found);
    }
}

/// `*.toml` files directly in `dir`, sorted by name, with their stems.
pub(crate) fn toml_files(
    dir: &Path,
    diagnostics: &mut Vec<Diagnostic>,
    desk_root: &Path,
) -> Vec<(String, PathBuf)> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            let relative = dir.strip_prefix(desk_root).unwrap_or(dir);
            diagnostics.push(
                Diagnostic::error("io", format!("cannot list the folder: {e}")).in_file(relative),
            );
            return Vec::new();
        }
    };
    let mut files: Vec<(String, PathBuf)> = entries
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.path())
        .filter(|path| path.is_file() && path.extension().is_some_and(|e| e == "toml"))
        .filter_map(|path| {
            let stem = path.file_stem()?.to_str()?.to_string();
            // Editors' backup and lock files (`.office.toml.swp`, `#office.toml#`) are not profiles.
            (!stem.starts_with('.') && !stem.starts_with('#')).then_some((stem, path))
        })
        .collect();
    files.sort();
    files
}

fn parse_profile(
    relative: &Path,
    text: &str,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<ProfileFile> {
    let raw: RawProfile = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let (line, column) = e
                .span()
                .map(|s| line_column(text, s.start))
                .unwrap_or((1, 1));
            diagnostics.push(
                Diagnostic::error("toml-syntax", e.message().trim().to_string())
                    .in_file(relative)
                    .at(line, column),
            );
            return None;
        }
    };
    let extends = raw.extends.map(|spanned| {
        let (line, column) = line_column(text, spanned.span().start);
        (spanned.into_inner(), line, column)
    });
    let mut params = Vec::new();
    for (key, value) in raw.params {
        let (line, column) = line_column(text, key.span().start);
        let name: PName = match key.get_ref().parse() {
            Ok(name) => name,
            Err(e) => {
                diagnostics.push(
                    Diagnostic::error("bad-pvalue-name", e.to_string())
                        .in_file(relative)
                        .at(line, column)
                        .field(key.get_ref().clone()),
                );
                continue;
            }
        };
        let (value_line, value_column) = line_column(text, value.span().start);
        let value = value.into_inner().into_text();
        match parse_pieces(&value) {
            Ok(pieces) => params.push(Param {
                name,
                pieces,
                line: value_line,
                // Point inside the quotes, where the text of the value starts.
                column: value_column + 1,
            }),
            Err(message) => diagnostics.push(
                Diagnostic::error("bad-template", format!("{name}: {message}"))
                    .in_file(relative)
                    .at(value_line, value_column)
                    .field(name.to_string()),
            ),
        }
    }
    // Keep the file's own order, so diagnostics and previews read top to bottom.
    params.sort_by_key(|p| (p.line, p.column));
    Some(ProfileFile {
        path: relative.to_path_buf(),
        extends,
        params,
    })
}

/// Splits `Office {{ ext }}` into text and variable pieces.
fn parse_pieces(value: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut rest = value;
    let mut consumed = 0;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            pieces.push(Piece::Text(rest[..open].to_string()));
        }
        let after = &rest[open + 2..];
        let close = after.find("}}").ok_or_else(|| {
            format!(
                "`{{{{` at character {} has no closing `}}}}`",
                consumed + open + 1
            )
        })?;
        let name = after[..close].trim();
        let valid = !name.is_empty()
            && name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "`{{{{{}}}}}` is not a variable: use letters, digits and `_`, e.g. {{{{ ext }}}}",
                &after[..close]
            ));
        }
        pieces.push(Piece::Var {
            name: name.to_string(),
            column_offset: value[..consumed + open].chars().count(),
        });
        consumed += open + 2 + close + 2;
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_string()));
    }
    Ok(pieces)
}

/// What substitution does with a variable the target does not define.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unresolved {
    /// Stop, and report the variable (a device's configuration).
    Report,
    /// Write it back as `{{ name }}` (a profile's values before any device fills them in).
    Keep,
}

/// Joins the pieces; an undefined variable returns its name and its column offset, unless
/// `unresolved` says to keep it.
fn substitute(
    pieces: &[Piece],
    vars: &BTreeMap<String, String>,
    unresolved: Unresolved,
) -> Result<String, (String, usize)> {
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Var {
                name,
                column_offset,
            } => match (vars.get(name), unresolved) {
                (Some(value), _) => out.push_str(value),
                (None, Unresolved::Keep) => {
                    out.push_str("{{ ");
                    out.push_str(name);
                    out.push_str(" }}");
                }
                (None, Unresolved::Report) => return Err((name.clone(), *column_offset)),
            },
        }
    }
    Ok(out)
}

/// The `{{ var }}` names a profile value uses, in order, each once; or why the value is not a
/// valid template (the loader's `bad-template` message).
pub fn template_variables(value: &str) -> Result<Vec<String>, String> {
    let mut names: Vec<String> = Vec::new();
    for piece in parse_pieces(value)? {
        if let Piece::Var { name, .. } = piece
            && !names.contains(&name)
        {
            names.push(name);
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str) -> PName {
        name.parse().unwrap()
    }

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const GLOBAL_TOML: &str = "[params]\nP30 = \"pool.ntp.org\"\nP47 = \"global.example\"\n";
    const OFFICE_TOML: &str = "extends = \"global\"\n[params]\nP47 = \"pbx.example.com\"\nP35 = \"{{ ext }}\"\nP270 = \"Office {{ext}}\"\n";

    #[test]
    fn layers_apply_in_order_with_sources() {
        let set = ProfileSet::from_texts(&[
            ("profiles/global.toml", GLOBAL_TOML),
            (
                "profiles/models/gxp2170.toml",
                "[params]\nP47 = \"model.example\"\nP1650 = 0\n",
            ),
            ("profiles/office.toml", OFFICE_TOML),
            (
                "profiles/sales.toml",
                "extends = \"office\"\n[params]\nP3 = \"Sales\"\n",
            ),
        ]);
        assert!(set.diagnostics().is_empty(), "{:?}", set.diagnostics());
        let overrides = BTreeMap::from([(p("P3"), "Anna".to_string())]);
        let target = Target {
            mac: Some("000b82123456".parse().unwrap()),
            model: Some("GXP2170"),
            profile: Some("sales"),
            vars: vars(&[("ext", "201")]),
            overrides: Some(&overrides),
        };
        let (config, diagnostics) = set.effective(&target);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let check = |name: &str, value: &str, source: &str| {
            let got = &config.params[&p(name)];
            assert_eq!(got.value, value, "{name}");
            assert_eq!(got.source.to_string(), source, "{name}");
        };
        check("P30", "pool.ntp.org", "profiles/global.toml");
        check("P1650", "0", "profiles/models/gxp2170.toml");
        check("P47", "pbx.example.com", "profiles/office.toml");
        check("P35", "201", "profiles/office.toml");
        check("P270", "Office 201", "profiles/office.toml");
        check("P3", "Anna", "device override");
        assert_eq!(
            config.params[&p("P47")].source,
            Source::File {
                path: "profiles/office.toml".into(),
                line: 3
            }
        );
    }

    #[test]
    fn reports_every_problem_at_once_with_positions() {
        let set = ProfileSet::from_texts(&[
            (
                "profiles/global.toml",
                "[params]\nP30 = \"ok\"\nX47 = \"bad\"\nP123456 = \"bad\"\n",
            ),
            ("profiles/broken.toml", "[params]\nP47 = \"unterminated\n"),
            (
                "profiles/orphan.toml",
                "extends = \"nowhere\"\n[params]\nP3 = \"x\"\n",
            ),
            ("profiles/a.toml", "extends = \"b\"\n"),
            ("profiles/b.toml", "extends = \"a\"\n"),
            ("profiles/typo.toml", "extend = \"global\"\n"),
            ("profiles/tmpl.toml", "[params]\nP3 = \"{{ ext\"\n"),
        ]);
        let shown: Vec<String> = set.diagnostics().iter().map(|d| d.to_string()).collect();
        let expect = [
            "profiles/global.toml:3:1: error: invalid P-value name \"X47\"",
            "profiles/global.toml:4:1: error: invalid P-value name \"P123456\"",
            "profiles/broken.toml:2:",
            "profiles/orphan.toml:1:11: error: `extends = \"nowhere\"`",
            "profiles/a.toml:1:11: error: profiles extend each other in a cycle: a -> b -> a",
            "profiles/typo.toml:1:1: error: unknown field `extend`",
            "profiles/tmpl.toml:2:6: error: P3: `{{` at character 1 has no closing `}}`",
        ];
        for e in expect {
            assert!(
                shown.iter().any(|s| s.starts_with(e)),
                "missing {e:?} in {shown:#?}"
            );
        }
        assert_eq!(shown.len(), expect.len(), "{shown:#?}");
        assert!(set.has_errors());
        // The good values of a file with a bad key still load.
        let (config, _) = set.effective(&Target::default());
        assert_eq!(config.get(p("P30")), Some("ok"));
    }

    #[test]
    fn undefined_variable_names_file_key_line_column_and_device() {
        let set = ProfileSet::from_texts(&[("profiles/office.toml", OFFICE_TOML)]);
        let mac: Mac = "000b82123456".parse().unwrap();
        let target = Target {
            mac: Some(mac),
            profile: Some("office"),
            ..Target::default()
        };
        let (_, diagnostics) = set.effective(&target);
        let shown: Vec<String> = diagnostics.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            shown,
            [
                "profiles/office.toml:4:8: error: P35: undefined variable `ext` (device 000b82123456)",
                "profiles/office.toml:5:16: error: P270: undefined variable `ext` (device 000b82123456)",
            ]
        );
        assert_eq!(diagnostics[0].field.as_deref(), Some("P35"));
    }

    #[test]
    fn unknown_profile_of_a_device_is_an_error() {
        let set = ProfileSet::from_texts(&[("profiles/global.toml", GLOBAL_TOML)]);
        let (_, diagnostics) = set.effective(&Target {
            profile: Some("nope"),
            ..Target::default()
        });
        assert_eq!(diagnostics.len(), 1);
        assert!(
            diagnostics[0]
                .message
                .contains("profile `nope` does not exist")
        );
    }

    #[test]
    fn a_device_of_a_profile_that_does_not_load_is_pointed_at_the_file() {
        let set = ProfileSet::from_texts(&[
            ("profiles/global.toml", GLOBAL_TOML),
            ("profiles/office.toml", "[params]\nP47 = \"unterminated\n"),
        ]);
        let (_, diagnostics) = set.effective(&Target {
            profile: Some("office"),
            ..Target::default()
        });
        let message = &diagnostics[0].message;
        assert!(
            message.contains("cannot be used until profiles/office.toml loads"),
            "{message}"
        );
        assert!(!message.contains("does not exist"), "{message}");
    }

    #[test]
    fn values_of_any_toml_scalar_become_text() {
        let set = ProfileSet::from_texts(&[(
            "profiles/global.toml",
            "[params]\nP271 = 1\nP122 = true\nP99 = false\nP32 = 60\n",
        )]);
        let (config, _) = set.effective(&Target::default());
        assert_eq!(config.get(p("P271")), Some("1"));
        assert_eq!(config.get(p("P122")), Some("1"));
        assert_eq!(config.get(p("P99")), Some("0"));
    }

    #[test]
    fn loads_from_disk_and_fingerprint_follows_content() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("profiles/models")).unwrap();
        fs::write(root.join("profiles/global.toml"), GLOBAL_TOML).unwrap();
        fs::write(root.join("profiles/office.toml"), OFFICE_TOML).unwrap();
        fs::write(
            root.join("profiles/models/GXP2170.toml"),
            "[params]\nP1650 = 0\n",
        )
        .unwrap();
        fs::write(root.join("profiles/.office.toml.swp"), "garbage").unwrap();
        let first = ProfileSet::load(root);
        assert!(first.diagnostics().is_empty(), "{:?}", first.diagnostics());
        assert!(first.profile_exists("office"));
        assert_eq!(first.model_names().collect::<Vec<_>>(), ["gxp2170"]);
        assert_eq!(ProfileSet::load(root).fingerprint(), first.fingerprint());
        fs::write(
            root.join("profiles/global.toml"),
            "[params]\nP30 = \"other\"\n",
        )
        .unwrap();
        assert_ne!(ProfileSet::load(root).fingerprint(), first.fingerprint());
    }

    #[test]
    fn layered_keeps_undefined_variables_and_fills_known_ones() {
        let set = ProfileSet::from_texts(&[
            ("profiles/global.toml", GLOBAL_TOML),
            ("profiles/office.toml", OFFICE_TOML),
        ]);
        let target = Target {
            profile: Some("office"),
            vars: vars(&[("name", "Anna")]),
            ..Target::default()
        };
        let (config, diagnostics) = set.layered(&target);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        assert_eq!(config.get(p("P35")), Some("{{ ext }}"));
        assert_eq!(config.get(p("P270")), Some("Office {{ ext }}"));
        assert_eq!(config.get(p("P30")), Some("pool.ntp.org"));
        // The same target, asked for a device's configuration, reports instead.
        let (strict, diagnostics) = set.effective(&target);
        assert_eq!(diagnostics.len(), 2);
        assert_eq!(strict.get(p("P35")), None);
        // An unknown profile is still a problem.
        let (_, diagnostics) = set.layered(&Target {
            profile: Some("nope"),
            ..Target::default()
        });
        assert_eq!(diagnostics[0].kind, "unknown-profile");
    }

    #[test]
    fn layer_files_list_the_chain_bottom_first() {
        let set = ProfileSet::from_texts(&[
            ("profiles/global.toml", GLOBAL_TOML),
            ("profiles/models/gxp2170.toml", "[params]\nP1650 = 0\n"),
            ("profiles/office.toml", OFFICE_TOML),
            ("profiles/sales.toml", "extends = \"office\"\n"),
        ]);
        let files = |model, profile| -> Vec<String> {
            set.layer_files(&Target {
                model,
                profile,
                ..Target::default()
            })
            .iter()
            .map(|f| f.display().to_string())
            .collect()
        };
        assert_eq!(
            files(Some("GXP2170"), Some("sales")),
            [
                "profiles/global.toml",
                "profiles/models/gxp2170.toml",
                "profiles/office.toml",
                "profiles/sales.toml"
            ]
        );
        assert_eq!(files(None, Some("office")).len(), 2);
        assert_eq!(
            files(Some("gxp2170"), Some("nope")),
            ["profiles/global.toml", "profiles/models/gxp2170.toml"]
        );
    }

    #[test]
    fn missing_variables_are_those_of_the_chain_the_device_lacks() {
        let set = ProfileSet::from_texts(&[
            ("profiles/global.toml", "[params]\nP30 = \"{{ ntp }}\"\n"),
            (
                "profiles/office.toml",
                "[params]\nP35 = \"{{ ext }}\"\nP36 = \"{{ ext }}\"\nP34 = \"{{ sip_secret }}\"\nP3 = \"{{ name }}\"\n",
            ),
            ("profiles/sales.toml", "[params]\nP3 = \"{{ team }}\"\n"),
        ]);
        let target = |profile, pairs: &[(&str, &str)]| Target {
            profile: Some(profile),
            vars: vars(pairs),
            ..Target::default()
        };
        assert_eq!(
            set.missing_variables(&target("office", &[("name", "Desk")])),
            ["ntp", "ext", "sip_secret"]
        );
        assert_eq!(
            set.missing_variables(&target(
                "office",
                &[
                    ("name", ""),
                    ("ntp", "x"),
                    ("ext", "1"),
                    ("sip_secret", "s")
                ]
            )),
            Vec::<String>::new()
        );
        assert!(set.missing_variables(&target("nope", &[])).is_empty());
        assert!(set.uses_variables(Path::new("profiles/office.toml"), p("P34")));
        assert!(!set.uses_variables(Path::new("profiles/sales.toml"), p("P34")));
    }

    #[test]
    fn template_variables_name_each_variable_once() {
        assert_eq!(
            template_variables("{{ ext }}@{{host}} {{ ext }}").unwrap(),
            ["ext", "host"]
        );
        assert!(template_variables("plain").unwrap().is_empty());
        assert!(template_variables("{{ ext").is_err());
    }

    #[test]
    fn pieces_parse_and_reject_bad_names() {
        assert_eq!(
            parse_pieces("plain").unwrap(),
            [Piece::Text("plain".into())]
        );
        assert_eq!(
            parse_pieces("a{{x}}b").unwrap(),
            [
                Piece::Text("a".into()),
                Piece::Var {
                    name: "x".into(),
                    column_offset: 1
                },
                Piece::Text("b".into())
            ]
        );
        assert!(
            parse_pieces("{{ 1x }}")
                .unwrap_err()
                .contains("not a variable")
        );
        assert!(parse_pieces("{{ }}").is_err());
    }
}
