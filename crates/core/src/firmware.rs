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
//! Invariant: a firmware file appears under its final name only complete: it is copied to a
//! hidden temp name in the same folder, synced, then renamed.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::build::{BuildOptions, device_config, pvalues};
use crate::desk::{Desk, replace_file};
use crate::inventory::Device;
use crate::profile::ProfileSet;
use crate::{Error, Mac, Result};

const SUFFIX: &str = "fw.bin";

/// One file of `DESK/firmware/` that the builder serves.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FirmwareFile {
    /// The file name inside `firmware/`.
    pub name: String,
    pub size: u64,
    /// The model whose request the file answers (`gxp2170` for `gxp2170fw.bin`), if any.
    pub model: Option<String>,
}

/// A device that will fetch a firmware file, and the exact name it asks for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FirmwareUse {
    pub mac: Mac,
    pub name: Option<String>,
    pub model: String,
    /// `<prefix><model>fw.bin<postfix>` with the device's effective P232/P233.
    pub request: String,
}

/// The firmware prefix and postfix (P232/P233) a group of devices has in effect.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
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

/// The files the builder serves, sorted by name (hidden files and READMEs are not served).
pub fn list(desk: &Desk) -> Result<Vec<FirmwareFile>> {
    let dir = desk.firmware_dir();
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(&dir, e))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let metadata = entry.metadata().map_err(|e| Error::io(entry.path(), e))?;
        if !metadata.is_file() || !is_served_name(&name) {
            continue;
        }
        files.push(FirmwareFile {
            model: model_of(&name),
            size: metadata.len(),
            name,
        });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
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
    for name in names.iter().skip(1) {
        if name != file {
            copy_into(&source, &dir.join(name))?;
        }
    }
    if names[0] != file {
        let target = dir.join(&names[0]);
        fs::rename(&source, &target).map_err(|e| Error::io(target, e))?;
    }
    Ok(names)
}

/// Deletes `firmware/<file>`; the next build stops serving it.
pub fn remove(desk: &Desk, file: &str) -> Result<()> {
    check_file_name(file)?;
    let path = desk.firmware_dir().join(file);
    fs::remove_file(&path).map_err(|e| Error::io(path, e))
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

    fn image(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
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
            b"image v23"
        );
        // Only the README besides the two images: no temp file left behind.
        let all: Vec<_> = fs::read_dir(desk.firmware_dir()).unwrap().collect();
        assert_eq!(all.len(), 3);
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
        assert_eq!(
            fs::read(desk.firmware_dir().join("ht802fw.bin")).unwrap(),
            b"new"
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
        let source = image(dir.path(), "x.bin", b"x");
        assert!(add(&desk, &source, &["GXP 2170".into()]).is_err());
        assert!(add(&desk, &dir.path().join("missing.bin"), &[]).is_err());
        assert!(add(&desk, &image(dir.path(), "README.bin", b"x"), &[]).is_err());
        assert!(remove(&desk, "../provdesk.toml").is_err());
        assert!(desk.root().join("provdesk.toml").is_file());
        assert!(
            map(&desk, "x.bin", &["gxp2170".into()]).is_err(),
            "not in the folder"
        );
        assert!(map(&desk, "gxp2170fw.bin", &[]).is_err());
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
