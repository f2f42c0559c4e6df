//! The app's own log, for the Diagnostics panel in Settings: which file it is and its last
//! lines. The app writes it (a daily file, see `src-tauri/src/logging.rs`); this module only
//! reads, so the rule for "the current log file" exists once, next to its names.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Serialize;
use ts_rs::TS;

use crate::error::{DeskError, DeskResult};

/// Log files are `<LOG_PREFIX>.<date>.<LOG_SUFFIX>`, one a day.
pub const LOG_PREFIX: &str = "provdesk";
pub const LOG_SUFFIX: &str = "log";

/// How much of the end of a log file is read for its last lines: a panel shows a few hundred
/// lines, never a whole day of a busy desk.
const TAIL_BYTES: u64 = 256 * 1024;

/// The newest log file and its last lines.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct LogTail {
    /// The folder the app writes its logs to.
    pub folder: String,
    /// The newest log file, when there is one yet.
    pub file: Option<String>,
    /// Its last lines, oldest first.
    pub lines: Vec<String>,
    /// Whether the file holds more than `lines`.
    pub truncated: bool,
}

/// The last `max_lines` lines of the newest log file in `folder`.
pub fn log_tail(folder: &Path, max_lines: usize) -> DeskResult<LogTail> {
    let Some(file) = newest_log(folder)? else {
        return Ok(LogTail {
            folder: folder.display().to_string(),
            file: None,
            lines: Vec::new(),
            truncated: false,
        });
    };
    let mut reader = std::fs::File::open(&file).map_err(|e| DeskError::io(&file, e))?;
    let len = reader
        .metadata()
        .map_err(|e| DeskError::io(&file, e))?
        .len();
    let start = len.saturating_sub(TAIL_BYTES);
    reader
        .seek(SeekFrom::Start(start))
        .map_err(|e| DeskError::io(&file, e))?;
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .map_err(|e| DeskError::io(&file, e))?;
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<&str> = text.lines().collect();
    // Reading from the middle of the file starts in the middle of a line.
    if start > 0 && !lines.is_empty() {
        lines.remove(0);
    }
    let truncated = start > 0 || lines.len() > max_lines;
    let skip = lines.len().saturating_sub(max_lines);
    Ok(LogTail {
        folder: folder.display().to_string(),
        file: Some(file.display().to_string()),
        lines: lines[skip..].iter().map(|l| l.to_string()).collect(),
        truncated,
    })
}

/// The most recently written `provdesk.*.log` in `folder`; `None` for a missing folder.
fn newest_log(folder: &Path) -> DeskResult<Option<PathBuf>> {
    let entries = match std::fs::read_dir(folder) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(DeskError::io(folder, e)),
    };
    let mut newest: Option<(std::time::SystemTime, String, PathBuf)> = None;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(&format!("{LOG_PREFIX}."))
            || !name.ends_with(&format!(".{LOG_SUFFIX}"))
        {
            continue;
        }
        let modified = entry
            .metadata()
            .and_then(|m| m.modified())
            .unwrap_or(std::time::UNIX_EPOCH);
        // Same modification time (coarse clocks): the later date in the name wins.
        let newer = newest
            .as_ref()
            .is_none_or(|(time, n, _)| (modified, &name) > (*time, n));
        if newer {
            newest = Some((modified, name, entry.path()));
        }
    }
    Ok(newest.map(|(_, _, path)| path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_folder_has_no_log_yet() {
        let dir = tempfile::tempdir().unwrap();
        let tail = log_tail(&dir.path().join("logs"), 10).unwrap();
        assert_eq!(tail.file, None);
        assert!(tail.lines.is_empty());
    }

    #[test]
    fn the_newest_log_file_gives_its_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("provdesk.2026-12-05.log"), "old\n").unwrap();
        std::fs::write(dir.path().join("other.txt"), "not a log\n").unwrap();
        let text: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        let newest = dir.path().join("provdesk.2026-12-06.log");
        std::fs::write(&newest, text).unwrap();
        let tail = log_tail(dir.path(), 5).unwrap();
        assert_eq!(
            tail.file.as_deref(),
            Some(newest.display().to_string().as_str())
        );
        assert_eq!(
            tail.lines,
            ["line 26", "line 27", "line 28", "line 29", "line 30"]
        );
        assert!(tail.truncated);
    }

    #[test]
    fn a_large_log_is_read_from_its_end_only_in_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let line = format!("{}\n", "x".repeat(99));
        let text = line.repeat(5000) + "last\n";
        std::fs::write(dir.path().join("provdesk.2026-12-06.log"), text).unwrap();
        let tail = log_tail(dir.path(), 200).unwrap();
        assert_eq!(tail.lines.len(), 200);
        assert_eq!(tail.lines.last().map(String::as_str), Some("last"));
        assert!(tail.lines[..199].iter().all(|l| l.len() == 99));
    }
}
