//! The desk's firmware folder: adding images, mapping them to models, removing them, and
//! which devices will fetch each one.
//!
//! How a file maps to models: by its name, the way the phones ask. A Grandstream phone
//! requests `<P232 prefix><model>fw.bin<P233 postfix>`, so the file for the GXP2170 is
//! `firmware/gxp2170fw.bin` and the builder serves it under every prefix/postfix in use.
//! Mapping a downloaded `GXP2170-1.0.11.23.bin` to models stores it as `<model>fw.bin`, once
//! per model; what the technician sees in the folder is exactly what the phones get, and no
//! second table can disagree with the files.
//!
//! The name phones request carries no version, so the version that was in the downloaded
//! file's name (`gxp2170fw-1.0.11.23.bin`, `GXP2170_1.0.11.23.bin`) is kept in a hidden
//! sidecar, `firmware/.versions.toml`, with the size of the file it describes: a file replaced
//! by hand no longer matches and shows no version rather than a wrong one.
//!
//! What an image is: Grandstream does not document its firmware image format (the reference
//! notes, `reference/grandstream-facts.md` §4.1, know only the names: `<model>fw.bin`, e.g.
//! `ht802fw.bin`, and the P232/P233 prefix/postfix). So [`check_image`] refuses only what
//! certainly is not an image: an empty or tiny file, text or HTML (a saved error page), and
//! an archive the technician must unpack first (Grandstream ships several models' firmware
//! as a zip holding the `.bin`).
//!
//! Invariant: a firmware file appears under its final name only complete: it is copied to a
//! hidden temp name in the same folder, synced, then renamed.
//! Invariant: [`scan`] is the one reading of the folder; the builder and the overview both use
//! it, so what the Firmware screen lists is what is served.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::build::{BuildOptions, device_config, pvalues};
use crate::desk::{Desk, replace_file};
use crate::inventory::Device;
use crate::profile::ProfileSet;
use crate::{Error, Mac, Result};

const SUFFIX: &str = "fw.bin";

/// The sidecar with the versions of added images (hidden: never served, never listed).
pub const VERSIONS_FILE: &str = ".versions.toml";

/// Smaller than any firmware image: the smallest Grandstream images are megabytes, while a
/// saved error page or a truncated download is a few kilobytes.
pub const MIN_IMAGE_SIZE: u64 = 16 * 1024;

/// One file of `DESK/firmware/` that the builder serves.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FirmwareFile {
    /// The file name inside `firmware/`.
    pub name: String,
    pub size: u64,
    /// The model whose request the file answers (`gxp2170` for `gxp2170fw.bin`), if any.
    pub model: Option<String>,
    /// The firmware version, from the name of the file it was added from (kept in the
    /// sidecar) or from its own name; `None` when neither carries one.
    pub version: Option<String>,
    /// Modification time in nanoseconds since the epoch (0 when unknown), for the builder's
    /// change detection.
    #[serde(skip)]
    pub modified_ns: u128,
}

/// What one reading of `firmware/` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// The files served, sorted by name (hidden files and READMEs are not served).
    pub files: Vec<FirmwareFile>,
    /// Files whose names are not UTF-8: they cannot be served.
    pub not_utf8: Vec<PathBuf>,
}

/// A device that will fetch a firmware file, and the exact name it asks for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct FirmwareUse {
    #[cfg_attr(feature = "ts", ts(as = "String"))]
    pub mac: Mac,
    pub name: Option<String>,
    pub model: String,
    /// `<prefix><model>fw.bin<postfix>` with the device's effective P232/P233.
    pub request: String,
}

/// The firmware prefix and postfix (P232/P233) a group of devices has in effect.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct Affixes {
    pub prefix: String,
    pub postfix: String,
    pub devices: usize,
}

/// The file name a model's phones request (before prefix and postfix).
pub fn file_for_model(model: &str) -> String {
    format!("{}{SUFFIX}", model.trim().to_ascii_lowercase())
}

/// The model a file answers, by the same rule as the builder: `<model>fw.bin`, any case.
pub fn model_of(file_name: &str) -> Option<String> {
    let lower = file_name.to_ascii_lowercase();
    lower
        .strip_suffix(SUFFIX)
        .filter(|m| !m.is_empty())
        .map(str::to_string)
}

/// Reads `firmware/` once: the files the builder serves, without versions (the builder
/// does not need them; [`list`] adds them).
pub fn scan(desk: &Desk) -> Result<Scan> {
    let dir = desk.firmware_dir();
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Scan::default()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut scan = Scan::default();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(&dir, e))?;
        let Ok(name) = entry.file_name().into_string() else {
            scan.not_utf8.push(entry.path());
            continue;
        };
        let metadata = entry.metadata().map_err(|e| Error::io(entry.path(), e))?;
        if !metadata.is_file() || !is_served_name(&name) {
            continue;
        }
        let modified_ns = metadata
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        scan.files.push(FirmwareFile {
            model: model_of(&name),
            size: metadata.len(),
            version: None,
            modified_ns,
            name,
        });
    }
    scan.files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(scan)
}

/// The files the builder serves, sorted by name, each with its version when known.
pub fn list(desk: &Desk) -> Result<Vec<FirmwareFile>> {
    let mut files = scan(desk)?.files;
    let versions = read_versions(&desk.firmware_dir());
    for file in &mut files {
        file.version = versions
            .get(&file.name)
            .filter(|v| v.size == file.size)
            .map(|v| v.version.clone())
            .or_else(|| version_in_name(&file.name));
    }
    Ok(files)
}

/// The version a downloaded image's name carries: the last run of at least three
/// dot-separated numbers that does not continue a word (`gxp2170fw-1.0.11.23.bin`,
/// `GXP2170_1.0.11.23.bin`, `Release_v1.0.5.44.zip` → `1.0.11.23`, …; `gxp2170fw.bin` → none).
pub fn version_in_name(name: &str) -> Option<String> {
    let bytes = name.as_bytes();
    let mut found = None;
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
            i += 1;
        }
        // A run inside a word (the `2170` of `gxp2170`) is a model number, not a version;
        // `v1.0.5` is still a version.
        let before = start.checked_sub(1).map(|b| bytes[b]);
        let glued = before.is_some_and(|b| b.is_ascii_alphanumeric() && !matches!(b, b'v' | b'V'));
        let run = name[start..i].trim_end_matches('.');
        let parts: Vec<&str> = run.split('.').collect();
        if !glued && parts.len() >= 3 && parts.iter().all(|p| !p.is_empty() && p.len() <= 5) {
            found = Some(run.to_string());
        }
    }
    found
}

/// Refuses a file that cannot be a firmware image (see the module's comment for why these
/// checks and no more). The message names the file and says what to do.
pub fn check_image(path: &Path) -> Result<()> {
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut file = fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if size == 0 {
        return Err(Error::Invalid(format!(
            "{name} is empty, so it cannot be firmware: download the image again"
        )));
    }
    let mut head = Vec::with_capacity(4096);
    file.by_ref()
        .take(4096)
        .read_to_end(&mut head)
        .map_err(|e| Error::io(path, e))?;
    if let Some(kind) = archive_kind(&head) {
        return Err(Error::Invalid(format!(
            "{name} is a {kind} archive, not a firmware image: unpack it and add the .bin inside"
        )));
    }
    if looks_like_text(&head) {
        let what = if looks_like_html(&head) {
            "an HTML page (a saved error or download page?)"
        } else {
            "a text file"
        };
        return Err(Error::Invalid(format!(
            "{name} is {what}, not a firmware image: download the image itself from Grandstream"
        )));
    }
    if size < MIN_IMAGE_SIZE {
        return Err(Error::Invalid(format!(
            "{name} is only {size} bytes, too small to be a firmware image (a partial download?): download it again"
        )));
    }
    Ok(())
}

/// The archives a technician must unpack before adding the image inside.
fn archive_kind(head: &[u8]) -> Option<&'static str> {
    const KINDS: &[(&[u8], &str)] = &[
        (b"PK\x03\x04", "zip"),
        (b"PK\x05\x06", "zip"),
        (b"Rar!\x1a\x07", "RAR"),
        (b"7z\xbc\xaf\x27\x1c", "7-Zip"),
    ];
    KINDS
        .iter()
        .find(|(magic, _)| head.starts_with(magic))
        .map(|(_, kind)| *kind)
}

/// Whether the first bytes read as text: no control bytes but whitespace, and UTF-8 (a
/// character cut at the end of the sample is fine). A binary image has control bytes
/// within its first kilobytes.
fn looks_like_text(head: &[u8]) -> bool {
    let controls = head
        .iter()
        .any(|&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c) || b == 0x7f);
    !controls
        && match std::str::from_utf8(head) {
            Ok(_) => true,
            Err(e) => e.error_len().is_none(),
        }
}

fn looks_like_html(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    let text = text.trim_start_matches('\u{feff}').trim_start();
    ["<!doctype html", "<html", "<head", "<?xml", "<body"]
        .iter()
        .any(|tag| text.starts_with(tag))
}

/// One image's entry in the sidecar.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct VersionRecord {
    version: String,
    /// The name the image was added from.
    source: String,
    /// The size of the file the version describes: another size means another file.
    size: u64,
}

/// Serializes read-modify-write of the sidecar within this process (the app runs commands
/// on several threads). Two processes at once could lose an entry: that only loses a
/// displayed version.
static VERSIONS_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The sidecar's records; an unreadable sidecar is as good as none (versions are shown,
/// never served).
fn read_versions(dir: &Path) -> BTreeMap<String, VersionRecord> {
    fs::read_to_string(dir.join(VERSIONS_FILE))
        .ok()
        .and_then(|text| toml::from_str(&text).ok())
        .unwrap_or_default()
}

/// Applies `change` to the sidecar and writes it atomically (removed when empty).
fn update_versions(
    dir: &Path,
    change: impl FnOnce(&mut BTreeMap<String, VersionRecord>),
) -> Result<()> {
    let _guard = VERSIONS_LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let before = read_versions(dir);
    let mut versions = before.clone();
    change(&mut versions);
    if versions == before {
        return Ok(());
    }
    let path = dir.join(VERSIONS_FILE);
    if versions.is_empty() {
        return match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(path, e)),
        };
    }
    let body = toml::to_string(&versions)
        .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
    let text = format!(
        "# Written by ProvDesk: the version in the name of the file each image was added from\n\
         # (phones request <model>fw.bin, which has none). `size` tells a file replaced since.\n\n{body}"
    );
    replace_file(&path, |file| {
        std::io::Write::write_all(file, text.as_bytes())
    })
}

fn is_served_name(name: &str) -> bool {
    !name.starts_with('.') && !name.to_ascii_lowercase().starts_with("readme")
}

/// Checks that `name` is one plain file name the builder will serve.
fn check_file_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.contains(['/', '\\'])
        || name == ".."
        || !is_served_name(name)
        || name.chars().any(char::is_control)
    {
        return Err(Error::Invalid(format!(
            "{name:?} cannot be a firmware file name: use a plain name that does not start with '.' or README"
        )));
    }
    Ok(())
}

fn check_models(models: &[String]) -> Result<Vec<String>> {
    let mut names: Vec<String> = Vec::new();
    for model in models {
        let model = model.trim().to_ascii_lowercase();
        if let Some(problem) = crate::inventory::model_problem(&model) {
            return Err(Error::Invalid(problem));
        }
        if !names.contains(&model) {
            names.push(model);
        }
    }
    Ok(names)
}

/// Copies `source` into `firmware/`: as `<model>fw.bin` for each of `models`, or under its
/// own name when `models` is empty. An existing file of that name is replaced (a newer
/// image); phones mid-download keep reading the old one. Returns the names written.
pub fn add(desk: &Desk, source: &Path, models: &[String]) -> Result<Vec<String>> {
    let models = check_models(models)?;
    if !source.is_file() {
        return Err(Error::Invalid(format!(
            "{} is not a file; pick the firmware image again",
            source.display()
        )));
    }
    check_image(source)?;
    let source_name = source
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let names = if models.is_empty() {
        let name = source
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "{}: the file name is not UTF-8; rename it or map it to a model",
                    source.display()
                ))
            })?
            .to_string();
        check_file_name(&name)?;
        vec![name]
    } else {
        models.iter().map(|m| file_for_model(m)).collect()
    };
    let dir = desk.firmware_dir();
    fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    for name in &names {
        copy_into(source, &dir.join(name))?;
    }
    let size = fs::metadata(source)
        .map_err(|e| Error::io(source, e))?
        .len();
    let version = version_in_name(&source_name);
    update_versions(&dir, |versions| {
        for name in &names {
            match &version {
                Some(version) => {
                    versions.insert(
                        name.clone(),
                        VersionRecord {
                            version: version.clone(),
                            source: source_name.clone(),
                            size,
                        },
                    );
                }
                // A newer image without a version in its name: the old version is wrong now.
                None => {
                    versions.remove(name);
                }
            }
        }
    })?;
    Ok(names)
}

/// Makes `firmware/<file>` answer exactly `models`: it becomes `<model>fw.bin` for each
/// (renamed for the first, copied for the rest). Returns the names the image now has.
pub fn map(desk: &Desk, file: &str, models: &[String]) -> Result<Vec<String>> {
    check_file_name(file)?;
    let models = check_models(models)?;
    if models.is_empty() {
        return Err(Error::Invalid(
            "name at least one model (e.g. gxp2170) to map the file to".into(),
        ));
    }
    let dir = desk.firmware_dir();
    let source = dir.join(file);
    if !source.is_file() {
        return Err(Error::Invalid(format!(
            "firmware/{file} is not there any more; refresh the list"
        )));
    }
    let names: Vec<String> = models.iter().map(|m| file_for_model(m)).collect();
    // A file that already has one of the names stays; otherwise it is renamed to the first.
    let keeps = names.iter().any(|n| n == file);
    for (i, name) in names.iter().enumerate() {
        if name != file && (keeps || i > 0) {
            copy_into(&source, &dir.join(name))?;
        }
    }
    if !keeps {
        let target = dir.join(&names[0]);
        fs::rename(&source, &target).map_err(|e| Error::io(target, e))?;
    }
    // The version travels with the image: from the sidecar, else from the old name.
    let size = fs::metadata(dir.join(&names[0]))
        .map_err(|e| Error::io(dir.join(&names[0]), e))?
        .len();
    update_versions(&dir, |versions| {
        let record = versions
            .get(file)
            .filter(|r| r.size == size)
            .cloned()
            .or_else(|| {
                version_in_name(file).map(|version| VersionRecord {
                    version,
                    source: file.to_string(),
                    size,
                })
            });
        if !names.iter().any(|n| n == file) {
            versions.remove(file);
        }
        for name in &names {
            match &record {
                Some(record) => versions.insert(name.clone(), record.clone()),
                None => versions.remove(name),
            };
        }
    })?;
    Ok(names)
}

/// Deletes `firmware/<file>`; the next build stops serving it.
pub fn remove(desk: &Desk, file: &str) -> Result<()> {
    check_file_name(file)?;
    let dir = desk.firmware_dir();
    let path = dir.join(file);
    fs::remove_file(&path).map_err(|e| Error::io(path, e))?;
    update_versions(&dir, |versions| {
        versions.remove(file);
    })
}

fn copy_into(source: &Path, target: &Path) -> Result<()> {
    let mut input = fs::File::open(source).map_err(|e| Error::io(source, e))?;
    replace_file(target, |out| std::io::copy(&mut input, out).map(|_| ()))
}

/// Which devices fetch which file: for every listed file with a model, the inventory devices
/// of that model with the name each requests under its effective P232/P233. Also the distinct
/// prefix/postfix pairs in effect across the inventory, most used first.
pub fn uses(
    desk_root: &Path,
    devices: &[Device],
    options: &BuildOptions,
) -> (BTreeMap<String, Vec<FirmwareUse>>, Vec<Affixes>) {
    let profiles = ProfileSet::load(desk_root);
    let mut by_model: BTreeMap<String, Vec<FirmwareUse>> = BTreeMap::new();
    let mut affixes: BTreeMap<(String, String), usize> = BTreeMap::new();
    for device in devices {
        let (config, _) = device_config(&profiles, device, options);
        let get = |p| {
            config
                .get(p)
                .map(str::trim)
                .unwrap_or("")
                .to_ascii_lowercase()
        };
        let (prefix, postfix) = (
            get(pvalues::FIRMWARE_PREFIX),
            get(pvalues::FIRMWARE_POSTFIX),
        );
        let request = format!("{prefix}{}{postfix}", file_for_model(&device.model));
        *affixes.entry((prefix, postfix)).or_default() += 1;
        by_model
            .entry(device.model.clone())
            .or_default()
            .push(FirmwareUse {
                mac: device.mac,
                name: device.name.clone(),
                model: device.model.clone(),
                request,
            });
    }
    let mut affixes: Vec<Affixes> = affixes
        .into_iter()
        .map(|((prefix, postfix), devices)| Affixes {
            prefix,
            postfix,
            devices,
        })
        .collect();
    affixes.sort_by_key(|a| std::cmp::Reverse(a.devices));
    (by_model, affixes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn desk() -> (tempfile::TempDir, Desk) {
        let dir = tempfile::tempdir().unwrap();
        let desk = Desk::init(&dir.path().join("desk")).unwrap();
        (dir, desk)
    }

    /// A file that passes [`check_image`]: `tag` then binary filler up to the minimum size.
    fn image(dir: &Path, name: &str, tag: &[u8]) -> PathBuf {
        let mut bytes = tag.to_vec();
        bytes.extend((0..MIN_IMAGE_SIZE).map(|i| (i % 251) as u8));
        let path = dir.join(name);
        fs::write(&path, bytes).unwrap();
        path
    }

    fn raw(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, bytes).unwrap();
        path
    }

    fn names(desk: &Desk) -> Vec<(String, Option<String>)> {
        list(desk)
            .unwrap()
            .into_iter()
            .map(|f| (f.name, f.model))
            .collect()
    }

    #[test]
    fn adds_under_the_model_names_and_leaves_no_temp_files() {
        let (dir, desk) = desk();
        let source = image(dir.path(), "GXP2170-1.0.11.23.bin", b"image v23");
        let written = add(&desk, &source, &["GXP2170".into(), "gxp2160".into()]).unwrap();
        assert_eq!(written, ["gxp2170fw.bin", "gxp2160fw.bin"]);
        assert_eq!(
            names(&desk),
            [
                ("gxp2160fw.bin".to_string(), Some("gxp2160".to_string())),
                ("gxp2170fw.bin".to_string(), Some("gxp2170".to_string())),
            ]
        );
        assert_eq!(
            fs::read(desk.firmware_dir().join("gxp2170fw.bin")).unwrap(),
            fs::read(&source).unwrap()
        );
        // The README, the two images and the versions sidecar: no temp file left behind.
        let mut all: Vec<String> = fs::read_dir(desk.firmware_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        all.sort();
        assert_eq!(all.len(), 4, "{all:?}");
        assert_eq!(all[0], VERSIONS_FILE);
    }

    #[test]
    fn a_newer_image_replaces_the_old_one_and_no_models_keeps_the_name() {
        let (dir, desk) = desk();
        add(
            &desk,
            &image(dir.path(), "a.bin", b"old"),
            &["ht802".into()],
        )
        .unwrap();
        add(
            &desk,
            &image(dir.path(), "b.bin", b"new"),
            &["ht802".into()],
        )
        .unwrap();
        assert!(
            fs::read(desk.firmware_dir().join("ht802fw.bin"))
                .unwrap()
                .starts_with(b"new")
        );
        add(&desk, &image(dir.path(), "boot.bin", b"x"), &[]).unwrap();
        assert!(names(&desk).contains(&("boot.bin".to_string(), None)));
    }

    #[test]
    fn maps_an_existing_file_to_other_models() {
        let (dir, desk) = desk();
        add(&desk, &image(dir.path(), "GXP-1.0.bin", b"img"), &[]).unwrap();
        let mapped = map(&desk, "GXP-1.0.bin", &["gxp2135".into(), "gxp2140".into()]).unwrap();
        assert_eq!(mapped, ["gxp2135fw.bin", "gxp2140fw.bin"]);
        assert_eq!(
            names(&desk).into_iter().map(|(n, _)| n).collect::<Vec<_>>(),
            ["gxp2135fw.bin", "gxp2140fw.bin"]
        );
        remove(&desk, "gxp2140fw.bin").unwrap();
        assert_eq!(names(&desk).len(), 1);
    }

    #[test]
    fn refuses_bad_names_models_and_missing_sources() {
        let (dir, desk) = desk();
        let source = image(dir.path(), "x.bin", b"\0x");
        assert!(add(&desk, &source, &["GXP 2170".into()]).is_err());
        assert!(add(&desk, &dir.path().join("missing.bin"), &[]).is_err());
        assert!(add(&desk, &image(dir.path(), "README.bin", b"\0x"), &[]).is_err());
        assert!(remove(&desk, "../provdesk.toml").is_err());
        assert!(desk.root().join("provdesk.toml").is_file());
        assert!(
            map(&desk, "x.bin", &["gxp2170".into()]).is_err(),
            "not in the folder"
        );
        assert!(map(&desk, "gxp2170fw.bin", &[]).is_err());
    }

    #[test]
    fn the_version_in_a_downloaded_name_is_found() {
        let check = |name: &str, expected: Option<&str>| {
            assert_eq!(version_in_name(name).as_deref(), expected, "{name}");
        };
        check("gxp2170fw-1.0.11.23.bin", Some("1.0.11.23"));
        check("GXP2170_1.0.11.23.bin", Some("1.0.11.23"));
        check("GXP2170-1.0.11.23.bin", Some("1.0.11.23"));
        check("gs_grp2610fw.bin_1.0.5.44", Some("1.0.5.44"));
        check("Release_HT802_v1.0.43.11.zip", Some("1.0.43.11"));
        check("gxp2170fw.bin", None);
        check("gxp2170.1.0.bin", None);
        check("boot.bin", None);
        check("fw-1.0.bin", None);
    }

    #[test]
    fn adding_keeps_the_version_of_the_downloaded_name_through_map_and_remove() {
        let (dir, desk) = desk();
        let versions = |desk: &Desk| -> Vec<(String, Option<String>)> {
            list(desk)
                .unwrap()
                .into_iter()
                .map(|f| (f.name, f.version))
                .collect()
        };
        let source = image(dir.path(), "gxp2170fw-1.0.11.23.bin", b"v23");
        add(&desk, &source, &["gxp2170".into()]).unwrap();
        assert_eq!(
            versions(&desk),
            [("gxp2170fw.bin".into(), Some("1.0.11.23".into()))]
        );
        let sidecar = fs::read_to_string(desk.firmware_dir().join(VERSIONS_FILE)).unwrap();
        assert!(
            sidecar.contains("source = \"gxp2170fw-1.0.11.23.bin\""),
            "{sidecar}"
        );

        // Mapped to more models, each copy keeps the version.
        map(
            &desk,
            "gxp2170fw.bin",
            &["gxp2160".into(), "gxp2170".into()],
        )
        .unwrap();
        assert_eq!(
            versions(&desk),
            [
                ("gxp2160fw.bin".into(), Some("1.0.11.23".into())),
                ("gxp2170fw.bin".into(), Some("1.0.11.23".into())),
            ]
        );
        remove(&desk, "gxp2160fw.bin").unwrap();
        assert_eq!(versions(&desk).len(), 1);

        // A newer image without a version in its name drops the old version.
        add(
            &desk,
            &image(dir.path(), "new.bin", b"new!"),
            &["gxp2170".into()],
        )
        .unwrap();
        assert_eq!(versions(&desk), [("gxp2170fw.bin".into(), None)]);
        assert!(
            !desk.firmware_dir().join(VERSIONS_FILE).exists(),
            "empty sidecar removed"
        );

        // A file replaced by hand (another size) shows no stale version.
        add(&desk, &source, &["gxp2170".into()]).unwrap();
        fs::write(desk.firmware_dir().join("gxp2170fw.bin"), vec![1u8; 70_000]).unwrap();
        assert_eq!(versions(&desk), [("gxp2170fw.bin".into(), None)]);

        // A file dropped in by hand under its download name shows that name's version.
        raw(&desk.firmware_dir(), "HT802_1.0.43.11.bin", &[0u8; 10]);
        assert!(
            versions(&desk).contains(&("HT802_1.0.43.11.bin".into(), Some("1.0.43.11".into())))
        );
    }

    #[test]
    fn refuses_what_cannot_be_an_image_naming_the_file() {
        let (dir, desk) = desk();
        let refused = |path: PathBuf| -> String {
            let error = add(&desk, &path, &["gxp2170".into()])
                .unwrap_err()
                .to_string();
            assert!(
                !desk.firmware_dir().join("gxp2170fw.bin").exists(),
                "nothing written for {error}"
            );
            error
        };
        let empty = refused(raw(dir.path(), "gxp2170fw.bin", b""));
        assert!(empty.contains("gxp2170fw.bin is empty"), "{empty}");
        let html = refused(raw(
            dir.path(),
            "GXP2170_1.0.11.23.bin",
            b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head></html>\n",
        ));
        assert!(
            html.contains("GXP2170_1.0.11.23.bin is an HTML page"),
            "{html}"
        );
        let text = refused(raw(
            dir.path(),
            "notes.bin",
            "firmware notes: é\n".repeat(2000).as_bytes(),
        ));
        assert!(text.contains("notes.bin is a text file"), "{text}");
        let mut zip = b"PK\x03\x04".to_vec();
        zip.extend(vec![0u8; 100_000]);
        let zip = refused(raw(dir.path(), "Release_GXP2170_1.0.11.23.zip", &zip));
        assert!(
            zip.contains("Release_GXP2170_1.0.11.23.zip is a zip archive")
                && zip.contains("unpack it"),
            "{zip}"
        );
        let small = refused(raw(dir.path(), "part.bin", &[0u8, 1, 2, 3, 4, 5]));
        assert!(small.contains("part.bin is only 6 bytes"), "{small}");
        // Binary bytes of a plausible size pass: the image format is not documented, so
        // nothing more is checked.
        check_image(&image(dir.path(), "ok.bin", b"")).unwrap();
    }

    #[test]
    fn one_scan_serves_what_the_overview_lists() {
        let (dir, desk) = desk();
        add(
            &desk,
            &image(dir.path(), "GXP2170_1.0.11.23.bin", b""),
            &["gxp2170".into()],
        )
        .unwrap();
        let scan = scan(&desk).unwrap();
        let names: Vec<&str> = scan.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            ["gxp2170fw.bin"],
            "the sidecar and the README are not served"
        );
        assert!(scan.files[0].modified_ns > 0);
    }

    #[test]
    fn devices_request_with_their_prefix_and_postfix() {
        let (_dir, desk) = desk();
        fs::write(
            desk.profiles_dir().join("office.toml"),
            "extends = \"global\"\n[params]\nP232 = \"gs_\"\nP233 = \"_v2\"\n",
        )
        .unwrap();
        let mut a = Device::new("000b82000001".parse::<Mac>().unwrap(), "GXP2170");
        a.profile = Some("office".into());
        let b = Device::new("000b82000002".parse::<Mac>().unwrap(), "gxp2170");
        let c = Device::new("000b82000003".parse::<Mac>().unwrap(), "ht802");
        let (by_model, affixes) = uses(desk.root(), &[a, b, c], &BuildOptions::default());
        let requests: Vec<_> = by_model["gxp2170"]
            .iter()
            .map(|u| u.request.as_str())
            .collect();
        assert_eq!(requests, ["gs_gxp2170fw.bin_v2", "gxp2170fw.bin"]);
        assert_eq!(by_model["ht802"][0].request, "ht802fw.bin");
        assert_eq!(affixes[0].devices, 2);
        assert_eq!(
            (affixes[0].prefix.as_str(), affixes[0].postfix.as_str()),
            ("", "")
        );
        assert_eq!(affixes[1].prefix, "gs_");
    }
}
