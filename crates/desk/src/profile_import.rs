//! Bringing a phone's own Grandstream file (text template, XML v1 or v2) into the desk as a
//! profile (`provdesk profile import`). The rules live here once: a file with bad lines writes
//! no profile unless the technician asks to keep them as comments, a file from which no value
//! could be read never becomes an (empty) profile, and an existing profile is replaced only
//! when asked.

use std::path::{Path, PathBuf};

use provdesk_core::Diagnostic;
use provdesk_core::profile_io::{
    WriteError, WriteOptions, import_profile, imported_value_count, write_profile,
};

use crate::catalog_import::read_text;
use crate::error::{DeskError, DeskResult, ErrorKind};
use crate::events::DeskEvent;
use crate::service::DeskService;

/// A file to import as a profile.
#[derive(Debug, Clone)]
pub struct ProfileImport<'a> {
    pub file: &'a Path,
    /// The profile's name; default: the file name without its extension.
    pub name: Option<&'a str>,
    /// Replace an existing profile of that name.
    pub replace: bool,
    /// Write the profile even when some lines are bad (kept as comments).
    pub skip_bad: bool,
}

/// What importing did. Every variant carries the file's diagnostics (warnings included).
#[derive(Debug)]
pub enum ProfileImported {
    Written {
        /// As the core's writer reports it (relative to the desk).
        path: PathBuf,
        name: String,
        /// Values in the profile's `[params]`.
        values: usize,
        /// Bad parts kept as comments.
        bad: usize,
        diagnostics: Vec<Diagnostic>,
    },
    /// Bad lines and no `skip_bad`: nothing written.
    BadLines {
        bad: usize,
        diagnostics: Vec<Diagnostic>,
    },
    /// Bad lines and not one value read: nothing written, since an empty profile would look
    /// like a successful import.
    NothingRead {
        bad: usize,
        diagnostics: Vec<Diagnostic>,
    },
    /// A profile of that name exists and `replace` was not asked for.
    Exists {
        path: PathBuf,
        diagnostics: Vec<Diagnostic>,
    },
}

impl DeskService {
    pub fn import_profile_file(&self, input: &ProfileImport<'_>) -> DeskResult<ProfileImported> {
        let text = read_text(input.file)?;
        let name = match input.name {
            Some(name) => name.to_string(),
            None => input
                .file
                .file_stem()
                .and_then(|s| s.to_str())
                .map(str::to_string)
                .ok_or_else(|| {
                    DeskError::invalid(format!(
                        "{}: the file's name gives no profile name; give the profile a name (--name)",
                        input.file.display()
                    ))
                })?,
        };
        let (toml, diagnostics) =
            import_profile(&text, &input.file.display().to_string(), self.catalog());
        let bad = diagnostics.iter().filter(|d| d.is_error()).count();
        if bad > 0 && !input.skip_bad {
            return Ok(ProfileImported::BadLines { bad, diagnostics });
        }
        let values = imported_value_count(&toml);
        if bad > 0 && values == 0 {
            return Ok(ProfileImported::NothingRead { bad, diagnostics });
        }
        let options = WriteOptions {
            replace: input.replace,
        };
        match write_profile(self.desk(), &name, &toml, options) {
            Ok(path) => {
                let file = path
                    .strip_prefix(self.root())
                    .unwrap_or(&path)
                    .display()
                    .to_string();
                self.events()
                    .emit(DeskEvent::ProfilesChanged { files: vec![file] });
                Ok(ProfileImported::Written {
                    path,
                    name,
                    values,
                    bad,
                    diagnostics,
                })
            }
            Err(WriteError::Exists { path }) => Ok(ProfileImported::Exists { path, diagnostics }),
            Err(e @ WriteError::Name { .. }) => Err(DeskError::invalid(e.to_string())),
            Err(e) => Err(DeskError::new(ErrorKind::Io, e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn import(desk: &DeskService, file: &Path, replace: bool) -> ProfileImported {
        desk.import_profile_file(&ProfileImport {
            file,
            name: None,
            replace,
            skip_bad: false,
        })
        .unwrap()
    }

    #[test]
    fn a_template_becomes_a_profile_named_after_the_file_and_is_replaced_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let desk = DeskService::open(&dir.path().join("desk")).unwrap();
        let file = dir.path().join("lobby.txt");
        std::fs::write(&file, "P47 = sip.example.com\n").unwrap();
        let mut events = desk.events().subscribe();

        let ProfileImported::Written {
            path, name, values, ..
        } = import(&desk, &file, false)
        else {
            panic!("a good template is written");
        };
        assert_eq!(name, "lobby");
        assert_eq!(values, 1);
        assert!(
            std::fs::read_to_string(desk.root().join(&path))
                .unwrap()
                .contains("sip.example.com")
        );
        assert!(matches!(
            events.try_recv(),
            Ok(DeskEvent::ProfilesChanged { files }) if files == ["profiles/lobby.toml"]
        ));

        assert!(matches!(
            import(&desk, &file, false),
            ProfileImported::Exists { .. }
        ));
        assert!(matches!(
            import(&desk, &file, true),
            ProfileImported::Written { .. }
        ));
    }

    #[test]
    fn bad_lines_write_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let desk = DeskService::open(&dir.path().join("desk")).unwrap();
        let file = dir.path().join("broken.txt");
        std::fs::write(&file, "P47 = sip.example.com\nnot a line\n").unwrap();
        assert!(matches!(
            import(&desk, &file, false),
            ProfileImported::BadLines { bad: 1, .. }
        ));
        assert!(!desk.root().join("profiles/broken.toml").exists());
    }
}
