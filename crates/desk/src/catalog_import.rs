//! Growing the desk's catalogue from Grandstream's own configuration templates (`provdesk
//! catalog import`), and reading a technician's file as text for it and for `profile
//! import`. The rules live here once: a template with bad lines teaches nothing unless the
//! technician asks to learn from the good ones, and nothing the catalogue already says is
//! overwritten (the core's merge reports conflicts instead).

use std::path::Path;

use provdesk_core::Diagnostic;
use provdesk_core::catalog::import::{
    ImportError, ImportReport, MergeOptions, import_template, merge_into_overlay,
};

use crate::error::{DeskError, DeskResult, ErrorKind};
use crate::service::DeskService;

/// A template to learn from.
#[derive(Debug, Clone)]
pub struct TemplateImport<'a> {
    pub file: &'a Path,
    /// The model the template is for, e.g. GXP2170.
    pub model: &'a str,
    /// The firmware version it is for, e.g. 1.0.11.3.
    pub firmware: Option<&'a str>,
    /// Report what would be learned without writing the overlay.
    pub dry_run: bool,
    /// Learn from the good lines even when some lines are bad.
    pub skip_bad: bool,
}

/// What importing a template did.
#[derive(Debug)]
pub enum TemplateImported {
    /// Merged into (or, on a dry run, compared with) `catalog/00-imported.toml`.
    Merged(ImportReport),
    /// Bad lines and no `skip_bad`: nothing learned. `diagnostics` name the file.
    Refused {
        bad: usize,
        diagnostics: Vec<Diagnostic>,
    },
}

impl DeskService {
    /// Learns P-values, defaults, descriptions and model families from a template into the
    /// desk's catalogue overlay.
    pub fn import_catalog_template(
        &self,
        input: &TemplateImport<'_>,
    ) -> DeskResult<TemplateImported> {
        let text = read_text(input.file)?;
        let mut outcome =
            import_template(&text, input.model, input.firmware).map_err(import_error)?;
        for d in &mut outcome.diagnostics {
            d.file = Some(input.file.to_path_buf());
        }
        let bad = outcome.diagnostics.iter().filter(|d| d.is_error()).count();
        if bad > 0 && !input.skip_bad {
            return Ok(TemplateImported::Refused {
                bad,
                diagnostics: outcome.diagnostics,
            });
        }
        let options = MergeOptions {
            dry_run: input.dry_run,
        };
        let report = merge_into_overlay(self.root(), &outcome, options).map_err(import_error)?;
        Ok(TemplateImported::Merged(report))
    }
}

fn import_error(error: ImportError) -> DeskError {
    let kind = match &error {
        ImportError::Model { .. } => ErrorKind::Invalid,
        _ => ErrorKind::Io,
    };
    DeskError::new(kind, error.to_string())
}

/// A technician's file as UTF-8 text (a template, a phone's config file).
pub fn read_text(path: &Path) -> DeskResult<String> {
    let bytes = std::fs::read(path).map_err(|e| {
        DeskError::new(
            ErrorKind::Io,
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    String::from_utf8(bytes)
        .map_err(|e| DeskError::invalid(format!("{} is not UTF-8 text: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn import(desk: &DeskService, file: &Path, skip_bad: bool) -> TemplateImported {
        desk.import_catalog_template(&TemplateImport {
            file,
            model: "GXP2170",
            firmware: Some("1.0.11.3"),
            dry_run: false,
            skip_bad,
        })
        .unwrap()
    }

    #[test]
    fn a_template_with_a_bad_line_teaches_nothing_unless_asked() {
        let dir = tempfile::tempdir().unwrap();
        let desk = DeskService::open(&dir.path().join("desk")).unwrap();
        let file = dir.path().join("gxp2170.txt");
        std::fs::write(&file, "P99001 = 1\nthis is not a P-value line\n").unwrap();
        let overlay = desk.root().join("catalog/00-imported.toml");

        let TemplateImported::Refused { bad, diagnostics } = import(&desk, &file, false) else {
            panic!("a bad line must refuse the import");
        };
        assert_eq!(bad, 1);
        assert_eq!(diagnostics[0].file.as_deref(), Some(file.as_path()));
        assert!(!overlay.exists());

        let TemplateImported::Merged(report) = import(&desk, &file, true) else {
            panic!("skip_bad learns from the good lines");
        };
        assert_eq!(report.new.len(), 1);
        assert!(overlay.exists());
    }

    #[test]
    fn a_file_that_is_not_text_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("blob.bin");
        std::fs::write(&file, [0xff, 0xfe, 0x00]).unwrap();
        let error = read_text(&file).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Invalid);
        assert!(
            error.message.contains("is not UTF-8 text"),
            "{}",
            error.message
        );
    }
}
