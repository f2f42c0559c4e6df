//! Gathers the service's events into the batches the Live screen receives: one message per
//! window (at most [`MAX_WAIT`] after its first event, or [`MAX_EVENTS`] events), so a boot
//! storm of a thousand requests a second arrives as a handful of messages.
//!
//! Invariants: pure (the caller passes the time); outcomes (fetches, builds, warnings) are
//! never dropped or merged; only progress is coalesced, to the newest report per transfer.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use provdesk_serve::events::Event;

use crate::dto::{BuildSummary, DiscoveredRow, ListeningRow, LiveBatch, LogRow, ProgressRow};

/// How long the first event of a batch waits for company: short enough to feel live.
pub const MAX_WAIT: Duration = Duration::from_millis(150);

/// A batch is sent when it holds this many events, whatever its age.
pub const MAX_EVENTS: usize = 500;

#[derive(Debug, Default)]
pub struct Batcher {
    pending: LiveBatch,
    /// Events taken into `pending` (progress counts each time, coalesced or not).
    events: usize,
    /// When the first event of `pending` arrived.
    opened: Option<Instant>,
    /// Transfer number → its row in `pending.progress`.
    progress: HashMap<u64, usize>,
}

impl Batcher {
    pub fn push(&mut self, event: &Event, now: Instant) {
        self.opened.get_or_insert(now);
        self.events += 1;
        let batch = &mut self.pending;
        match event {
            Event::Fetch(fetch) => batch.fetches.push(LogRow::from(fetch)),
            Event::Progress(progress) => {
                let row = ProgressRow::from(progress);
                match self.progress.get(&progress.transfer) {
                    Some(&index) => batch.progress[index] = row,
                    None => {
                        self.progress
                            .insert(progress.transfer, batch.progress.len());
                        batch.progress.push(row);
                    }
                }
            }
            Event::Build(summary) => {
                batch.board_changed |= summary.published;
                // `devices` is filled in by the caller, who has the manifest being served.
                batch.builds.push(BuildSummary::served(summary, 0));
            }
            Event::Discovered {
                mac,
                model,
                ip,
                firmware_version,
            } => batch.discovered.push(DiscoveredRow {
                mac: *mac,
                model: model.clone(),
                ip: ip.clone(),
                firmware_version: firmware_version.clone(),
            }),
            Event::Listening { protocol, url } => batch.listening.push(ListeningRow {
                protocol: *protocol,
                url: url.clone(),
            }),
            Event::Warning { message } => batch.warnings.push(message.clone()),
            // The app has no plug-and-play switch yet; the recorder's discovery shows the phone.
            Event::PlugAndPlay { .. } => {}
            // The Live screen has no DHCP view yet (issue 15, part 4).
            Event::Dhcp(_) => {}
            Event::Syslog(_) => {}
        }
    }

    /// The subscriber fell behind by `count` events, which are gone.
    pub fn missed(&mut self, count: u64, now: Instant) {
        self.opened.get_or_insert(now);
        self.pending.missed += count;
    }

    /// When the pending batch must go out, if there is one.
    pub fn deadline(&self) -> Option<Instant> {
        self.opened.map(|opened| opened + MAX_WAIT)
    }

    pub fn ready(&self, now: Instant) -> bool {
        self.events >= MAX_EVENTS || self.deadline().is_some_and(|deadline| now >= deadline)
    }

    /// The pending batch, leaving the batcher empty; `None` when nothing happened.
    pub fn take(&mut self) -> Option<LiveBatch> {
        self.opened.take()?;
        self.events = 0;
        self.progress.clear();
        Some(std::mem::take(&mut self.pending))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use provdesk_desk::live::OutcomeKind;
    use provdesk_serve::events::{BuildSummary as ServedBuild, Fetch, Outcome, Progress, Protocol};

    fn fetch(name: &str, outcome: Outcome) -> Event {
        Event::Fetch(Fetch {
            at_ms: 1_700_000_000_000,
            protocol: Protocol::Http,
            peer: "127.0.0.1:5000".parse().unwrap(),
            name: name.into(),
            mac: "000b82001003".parse().ok(),
            model: Some("gxp2170".into()),
            user_agent: Some("Grandstream Model HW GXP2170".into()),
            outcome,
            bytes: 10,
            duration_ms: 2,
            artifact: None,
        })
    }

    fn progress(transfer: u64, bytes: u64) -> Event {
        Event::Progress(Progress {
            transfer,
            protocol: Protocol::Tftp,
            peer: "127.0.0.1:5001".parse().unwrap(),
            name: "gxp2170fw.bin".into(),
            mac: None,
            bytes,
            total: Some(100),
        })
    }

    #[test]
    fn nothing_pending_means_no_batch_and_no_deadline() {
        let mut batcher = Batcher::default();
        assert_eq!(batcher.deadline(), None);
        assert!(!batcher.ready(Instant::now()));
        assert!(batcher.take().is_none());
    }

    #[test]
    fn a_batch_goes_out_after_the_wait_or_when_full() {
        let start = Instant::now();
        let mut batcher = Batcher::default();
        batcher.push(&fetch("cfg.xml", Outcome::Served { status: 200 }), start);
        assert!(!batcher.ready(start + MAX_WAIT / 2));
        // Later events do not push the deadline back.
        batcher.push(
            &fetch("cfg.xml", Outcome::Served { status: 200 }),
            start + MAX_WAIT / 2,
        );
        assert_eq!(batcher.deadline(), Some(start + MAX_WAIT));
        assert!(batcher.ready(start + MAX_WAIT));
        assert_eq!(batcher.take().unwrap().fetches.len(), 2);

        for _ in 0..MAX_EVENTS - 1 {
            batcher.push(&fetch("cfg.xml", Outcome::Served { status: 200 }), start);
        }
        assert!(!batcher.ready(start));
        batcher.push(&fetch("cfg.xml", Outcome::Served { status: 200 }), start);
        assert!(batcher.ready(start), "full");
        assert_eq!(batcher.take().unwrap().fetches.len(), MAX_EVENTS);
        assert!(batcher.take().is_none(), "taking empties it");
    }

    #[test]
    fn a_storm_of_outcomes_keeps_every_one_in_order() {
        let now = Instant::now();
        let mut batcher = Batcher::default();
        let mut sent = 0;
        let mut received = Vec::new();
        for i in 0..1000 {
            batcher.push(
                &fetch(&format!("f{i}"), Outcome::Served { status: 200 }),
                now,
            );
            if batcher.ready(now) {
                sent += 1;
                received.extend(batcher.take().unwrap().fetches);
            }
        }
        received.extend(batcher.take().into_iter().flat_map(|b| b.fetches));
        assert_eq!(sent, 2, "a thousand requests are two messages");
        let names: Vec<String> = received.iter().map(|r| r.name.clone()).collect();
        let expected: Vec<String> = (0..1000).map(|i| format!("f{i}")).collect();
        assert_eq!(names, expected);
    }

    #[test]
    fn progress_is_coalesced_to_the_newest_per_transfer() {
        let now = Instant::now();
        let mut batcher = Batcher::default();
        batcher.push(&progress(1, 10), now);
        batcher.push(&progress(2, 5), now);
        batcher.push(&progress(1, 60), now);
        let batch = batcher.take().unwrap();
        let got: Vec<(u64, u64)> = batch
            .progress
            .iter()
            .map(|p| (p.transfer, p.bytes))
            .collect();
        assert_eq!(got, vec![(1, 60), (2, 5)]);
        batcher.push(&progress(1, 90), now);
        assert_eq!(
            batcher.take().unwrap().progress[0].bytes,
            90,
            "a new batch starts over"
        );
    }

    #[test]
    fn misses_and_denials_carry_their_status_and_reason() {
        let now = Instant::now();
        let mut batcher = Batcher::default();
        batcher.push(
            &fetch(
                "cfg000b82001003.xml",
                Outcome::Denied {
                    reason: "wrong password for user admin".into(),
                },
            ),
            now,
        );
        batcher.push(
            &fetch(
                "cfgabc.xml",
                Outcome::NotFound {
                    reason: "no such file".into(),
                },
            ),
            now,
        );
        let batch = batcher.take().unwrap();
        let denied = &batch.fetches[0];
        assert_eq!(denied.outcome, OutcomeKind::Denied);
        assert_eq!(denied.status, "denied");
        assert_eq!(
            denied.reason.as_deref(),
            Some("wrong password for user admin")
        );
        assert_eq!(denied.mac.unwrap().to_string(), "000b82001003");
        assert_eq!(denied.peer, "127.0.0.1:5000");
        let miss = &batch.fetches[1];
        assert_eq!(
            (miss.outcome, miss.status.as_str()),
            (OutcomeKind::NotFound, "404")
        );
        let json = serde_json::to_value(&batch).unwrap();
        assert_eq!(json["fetches"][0]["protocol"], "http");
        assert_eq!(json["fetches"][1]["reason"], "no such file");
        assert_eq!(json["fetches"][1]["outcome"], "not-found");
    }

    #[test]
    fn builds_warnings_and_lag_are_reported() {
        let now = Instant::now();
        let mut batcher = Batcher::default();
        batcher.push(
            &Event::Build(ServedBuild {
                published: true,
                build: 4,
                artifacts: 10,
                written: 3,
                removed: 0,
                elapsed_ms: 12.34,
                diagnostics: Vec::new(),
                held: Vec::new(),
            }),
            now,
        );
        batcher.push(
            &Event::Warning {
                message: "disk full".into(),
            },
            now,
        );
        batcher.missed(7, now);
        let batch = batcher.take().unwrap();
        assert!(
            batch.board_changed,
            "a published build may make tiles stale"
        );
        assert_eq!(batch.builds[0].written, 3);
        assert_eq!(batch.builds[0].unchanged, 7);
        assert_eq!(batch.builds[0].elapsed_ms, 12.3);
        assert_eq!(batch.warnings, vec!["disk full".to_string()]);
        assert_eq!(batch.missed, 7);

        batcher.push(
            &Event::Build(ServedBuild {
                published: false,
                build: 4,
                artifacts: 10,
                written: 0,
                removed: 0,
                elapsed_ms: 1.0,
                diagnostics: vec![provdesk_core::Diagnostic::error("x", "bad value")],
                held: Vec::new(),
            }),
            now,
        );
        let batch = batcher.take().unwrap();
        assert!(!batch.board_changed, "nothing new is served");
        assert_eq!(batch.builds[0].errors, 1);
    }
}
