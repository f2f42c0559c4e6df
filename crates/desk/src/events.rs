//! What changed in an open desk, pushed to whoever listens (the app's screens, `serve`'s
//! log), so no front end polls. Every use-case that changes something emits one event after
//! the change is on disk; builds emit one when they start and one when they finish, with
//! their diagnostics, whether the desk built them itself or the running servers did.

use provdesk_core::Diagnostic;
use provdesk_core::build::{BuildReport, HeldDevice};
use serde::Serialize;
use tokio::sync::broadcast;
use ts_rs::TS;

/// How many events a slow listener may lag behind before it loses the oldest (it is told so
/// and should reload what it shows).
const CAPACITY: usize = 1024;

/// At most this many diagnostics travel with a build summary; the counts are always exact.
const SUMMARY_DIAGNOSTICS: usize = 200;

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(tag = "event", rename_all = "kebab-case")]
#[ts(export)]
pub enum DeskEvent {
    /// These devices were added, edited, removed, imported or enrolled (`all`: too many to
    /// list, reload the list).
    DevicesChanged {
        #[ts(as = "Vec<String>")]
        macs: Vec<provdesk_core::Mac>,
        all: bool,
    },
    /// These profile files (desk-relative) were written, by the app or by hand.
    ProfilesChanged {
        files: Vec<String>,
    },
    /// `provdesk.toml` was saved; `restart` lists what takes effect only when the servers
    /// start again.
    SettingsChanged {
        restart: Vec<String>,
    },
    /// The firmware folder changed.
    FirmwareChanged,
    /// A build started (`devices`: the devices it covers, `None` for all).
    BuildStarted {
        #[ts(as = "Option<Vec<String>>")]
        devices: Option<Vec<provdesk_core::Mac>>,
    },
    BuildFinished(BuildSummary),
    /// A phone not in the inventory asked for its files.
    Discovered {
        #[ts(as = "String")]
        mac: provdesk_core::Mac,
        model: Option<String>,
        ip: String,
    },
    /// The servers started or stopped.
    ServersChanged {
        running: bool,
    },
    /// A device's re-provision (or reboot) NOTIFY ended, and its outcome is in the
    /// device's history.
    Resynced(crate::resync::ResyncResult),
}

/// A build, summed up for a toast ("rebuilt 42 files in 35 ms") and a problems list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct BuildSummary {
    pub published: bool,
    #[ts(type = "number")]
    pub build: u64,
    pub artifacts: usize,
    /// Devices with files of their own in the build being served.
    pub devices: usize,
    pub written: usize,
    pub removed: usize,
    pub unchanged: usize,
    pub errors: usize,
    /// Errors first, at most 200.
    pub diagnostics: Vec<Diagnostic>,
    /// Devices held back by errors in their own values ("needs attention"); the build
    /// published for every other device.
    pub held: Vec<HeldDevice>,
    pub elapsed_ms: f64,
}

impl From<&BuildReport> for BuildSummary {
    fn from(r: &BuildReport) -> BuildSummary {
        BuildSummary {
            published: r.published,
            build: r.build,
            artifacts: r.artifacts,
            devices: r.devices,
            written: r.written.len(),
            removed: r.removed.len(),
            unchanged: r.unchanged,
            errors: r.errors(),
            diagnostics: errors_first(&r.diagnostics),
            held: r.held.iter().take(SUMMARY_DIAGNOSTICS).cloned().collect(),
            elapsed_ms: (r.elapsed_ms * 10.0).round() / 10.0,
        }
    }
}

impl BuildSummary {
    /// A build the servers' publisher ran, which reports counts but not every name.
    pub fn served(summary: &provdesk_serve::events::BuildSummary, devices: usize) -> BuildSummary {
        BuildSummary {
            published: summary.published,
            build: summary.build,
            artifacts: summary.artifacts,
            devices,
            written: summary.written,
            removed: summary.removed,
            unchanged: summary
                .artifacts
                .saturating_sub(summary.written + summary.removed),
            errors: summary.diagnostics.iter().filter(|d| d.is_error()).count(),
            diagnostics: errors_first(&summary.diagnostics),
            held: summary
                .held
                .iter()
                .take(SUMMARY_DIAGNOSTICS)
                .cloned()
                .collect(),
            elapsed_ms: (summary.elapsed_ms * 10.0).round() / 10.0,
        }
    }
}

/// Where the desk's builds are, for a screen that opens while one runs (the opening build of
/// a large desk): the events say the rest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct BuildState {
    pub running: bool,
    /// How long the running build has taken so far.
    #[ts(type = "number")]
    pub elapsed_ms: u64,
    /// Devices in the desk (while a full build runs) or in the last build.
    pub devices: usize,
    /// The last finished build.
    pub summary: Option<BuildSummary>,
    /// Why the last build could not run at all (an I/O failure); problems in the profiles
    /// are in `summary.diagnostics`.
    pub error: Option<String>,
}

fn errors_first(diagnostics: &[Diagnostic]) -> Vec<Diagnostic> {
    let mut out = diagnostics.to_vec();
    // Errors first: they are why nothing was published.
    out.sort_by_key(|d| std::cmp::Reverse(d.severity));
    out.truncate(SUMMARY_DIAGNOSTICS);
    out
}

/// The desk's event fan-out. Cheap to clone.
#[derive(Clone)]
pub struct DeskEvents {
    sender: broadcast::Sender<DeskEvent>,
}

impl Default for DeskEvents {
    fn default() -> DeskEvents {
        DeskEvents {
            sender: broadcast::channel(CAPACITY).0,
        }
    }
}

impl DeskEvents {
    pub fn subscribe(&self) -> broadcast::Receiver<DeskEvent> {
        self.sender.subscribe()
    }

    pub fn emit(&self, event: DeskEvent) {
        // Nobody listening (the CLI) is fine.
        let _ = self.sender.send(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_tagged_for_the_ui() {
        let event = DeskEvent::ProfilesChanged {
            files: vec!["profiles/global.toml".into()],
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["event"], "profiles-changed");
        assert_eq!(json["files"][0], "profiles/global.toml");
    }

    #[test]
    fn a_summary_lists_errors_before_warnings() {
        let report = BuildReport {
            diagnostics: vec![
                Diagnostic::warning("w", "a warning"),
                Diagnostic::error("e", "an error"),
            ],
            ..BuildReport::default()
        };
        let summary = BuildSummary::from(&report);
        assert_eq!(summary.errors, 1);
        assert_eq!(summary.diagnostics[0].message, "an error");
    }
}
