//! The Live screen's request log: the rows it shows, whether they come from the running
//! servers' events or from the fetch log on disk (so the log opens with recent history after
//! a restart instead of empty while the tiles say "1 min ago").
//!
//! Invariant: no row carries a secret. The servers' events never hold a password and the
//! fetch log stores only what the events say (name, peer, status, reason), so rows built from
//! either are safe to show as they are.

use std::collections::HashMap;

use provdesk_core::Mac;
use provdesk_core::inventory::{FetchLogEntry, FetchLogQuery};
use provdesk_core::timeline::FetchOutcome;
use provdesk_serve::events::{Fetch, Outcome, Protocol};
use serde::Serialize;
use ts_rs::TS;

use crate::error::DeskResult;
use crate::service::DeskService;

/// At most this many rows of history in one answer, whatever the caller asks for: the Live
/// log keeps 5,000 and a longer answer would only be thrown away.
pub const MAX_RECENT_FETCHES: usize = 5000;

/// How a request ended, in the words the log's filters use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "kebab-case")]
#[ts(export)]
pub enum OutcomeKind {
    Served,
    NotFound,
    BadRequest,
    Denied,
    Failed,
}

impl OutcomeKind {
    /// The kind of a fetch-log `status` as the recorder writes it (`200`, `206`, `404`,
    /// `400`, `denied`, `failed`), and as older desks wrote TFTP transfers (`completed`,
    /// `aborted`, `tftp-error-N`).
    pub fn from_status(status: &str) -> OutcomeKind {
        // The core reads statuses for the timeline too: one reading.
        match FetchOutcome::from_status(status) {
            FetchOutcome::Served => OutcomeKind::Served,
            FetchOutcome::NotFound => OutcomeKind::NotFound,
            FetchOutcome::BadRequest => OutcomeKind::BadRequest,
            FetchOutcome::Denied => OutcomeKind::Denied,
            FetchOutcome::Failed => OutcomeKind::Failed,
        }
    }
}

impl From<&Outcome> for OutcomeKind {
    fn from(outcome: &Outcome) -> OutcomeKind {
        match outcome {
            Outcome::Served { .. } => OutcomeKind::Served,
            Outcome::NotFound { .. } => OutcomeKind::NotFound,
            Outcome::BadRequest { .. } => OutcomeKind::BadRequest,
            Outcome::Denied { .. } => OutcomeKind::Denied,
            Outcome::Failed { .. } => OutcomeKind::Failed,
        }
    }
}

/// One request in the Live log. No field can carry a password: neither events nor the fetch
/// log hold one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct LogRow {
    #[ts(type = "number")]
    pub at_ms: i64,
    #[ts(type = "\"http\" | \"https\" | \"tftp\"")]
    pub protocol: Protocol,
    pub peer: String,
    pub name: String,
    #[ts(as = "Option<String>")]
    pub mac: Option<Mac>,
    pub model: Option<String>,
    pub user_agent: Option<String>,
    /// The fetch log's status: `200`, `206`, `404`, `400`, `denied`, `failed`.
    pub status: String,
    pub outcome: OutcomeKind,
    /// Why it was a miss, a denial or a failure.
    pub reason: Option<String>,
    #[ts(type = "number")]
    pub bytes: u64,
    #[ts(type = "number")]
    pub duration_ms: u64,
}

impl From<&Fetch> for LogRow {
    fn from(f: &Fetch) -> LogRow {
        LogRow {
            at_ms: f.at_ms,
            protocol: f.protocol,
            peer: f.peer.to_string(),
            name: f.name.clone(),
            mac: f.mac,
            model: f.model.clone(),
            user_agent: f.user_agent.clone(),
            status: f.outcome.status_text(),
            outcome: OutcomeKind::from(&f.outcome),
            reason: f.outcome.reason().map(str::to_string),
            bytes: f.bytes,
            duration_ms: f.duration_ms,
        }
    }
}

impl LogRow {
    /// A fetch-log row as the log shows it; `model` comes from the inventory (the fetch log
    /// does not store it). `None` for a protocol the servers do not speak, which only the
    /// recorder writes and so never happens.
    fn from_entry(entry: FetchLogEntry, model: Option<String>) -> Option<LogRow> {
        let protocol = match entry.protocol.as_str() {
            "http" => Protocol::Http,
            "https" => Protocol::Https,
            "tftp" => Protocol::Tftp,
            _ => return None,
        };
        Some(LogRow {
            at_ms: entry.ts,
            protocol,
            peer: entry.peer,
            name: entry.name,
            mac: entry.mac,
            model,
            user_agent: entry.user_agent,
            outcome: OutcomeKind::from_status(&entry.status),
            status: entry.status,
            reason: entry.reason,
            bytes: entry.bytes,
            duration_ms: entry.duration_ms,
        })
    }
}

impl DeskService {
    /// The newest `limit` requests of the fetch log (at most [`MAX_RECENT_FETCHES`]), newest
    /// last, in the shape of the Live log's rows: what the log shows when it opens, before
    /// the running servers add to it.
    pub fn recent_fetches(&self, limit: usize) -> DeskResult<Vec<LogRow>> {
        let query = FetchLogQuery {
            limit: Some(limit.min(MAX_RECENT_FETCHES)),
            ..FetchLogQuery::default()
        };
        let entries = self.inventory().fetch_log(&query)?;
        // One look-up per device, not per row: a boot storm's history is a few requests each.
        let mut models: HashMap<Mac, Option<String>> = HashMap::new();
        let mut rows = Vec::with_capacity(entries.len());
        // The fetch log answers newest first; the Live log appends, so oldest first here.
        for entry in entries.into_iter().rev() {
            let model = match entry.mac {
                Some(mac) => match models.get(&mac) {
                    Some(model) => model.clone(),
                    None => {
                        let model = self
                            .inventory()
                            .get_device(mac)?
                            .map(|d| d.model)
                            .filter(|m| m != provdesk_core::inventory::UNKNOWN_MODEL);
                        models.insert(mac, model.clone());
                        model
                    }
                },
                None => None,
            };
            rows.extend(LogRow::from_entry(entry, model));
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use provdesk_core::inventory::Device;

    fn entry(ts: i64, name: &str, mac: Option<Mac>, status: &str) -> FetchLogEntry {
        FetchLogEntry {
            id: None,
            ts,
            protocol: "http".into(),
            peer: "10.0.0.7:5060".into(),
            name: name.into(),
            mac,
            user_agent: Some("Grandstream Model HW GXP2170 SW 1.0.11.23 DevId 000b82001003".into()),
            status: status.into(),
            reason: (status != "200").then(|| "no such file".to_string()),
            bytes: 1234,
            duration_ms: 3,
            artifact_hash: None,
        }
    }

    fn desk() -> (tempfile::TempDir, DeskService) {
        let dir = tempfile::tempdir().unwrap();
        let desk = DeskService::open(&dir.path().join("desk")).unwrap();
        (dir, desk)
    }

    #[test]
    fn recent_fetches_are_the_newest_rows_oldest_first_with_the_inventory_model() {
        let (_dir, desk) = desk();
        let phone: Mac = "000b82001003".parse().unwrap();
        let mut device = Device::new(phone, "gxp2170");
        device.vars.insert("sip_secret".into(), "s3cret-pw".into());
        desk.inventory().import_devices(&[device]).unwrap();
        let stranger: Mac = "000b82abcdef".parse().unwrap();
        desk.inventory()
            .append_fetch_log(&[
                entry(1_000, "cfg.xml", None, "404"),
                entry(2_000, "cfg000b82001003.xml", Some(phone), "200"),
                entry(3_000, "cfg000b82abcdef", Some(stranger), "denied"),
                entry(4_000, "../provdesk.db", None, "400"),
            ])
            .unwrap();

        let rows = desk.recent_fetches(3).unwrap();
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            ["cfg000b82001003.xml", "cfg000b82abcdef", "../provdesk.db"]
        );
        assert_eq!(rows[0].model.as_deref(), Some("gxp2170"));
        assert_eq!(rows[0].outcome, OutcomeKind::Served);
        assert_eq!(rows[0].protocol, Protocol::Http);
        assert_eq!(rows[0].mac, Some(phone));
        assert_eq!(rows[1].model, None, "not in the inventory");
        assert_eq!(rows[1].outcome, OutcomeKind::Denied);
        assert_eq!(rows[2].outcome, OutcomeKind::BadRequest);
        assert_eq!(rows[2].reason.as_deref(), Some("no such file"));

        // Everything the UI receives, as JSON: no secret of the desk in it.
        let json = serde_json::to_string(&desk.recent_fetches(100).unwrap()).unwrap();
        assert!(!json.contains("s3cret-pw"), "{json}");
        assert!(json.contains("\"outcome\":\"not-found\""), "{json}");
        assert_eq!(desk.recent_fetches(100).unwrap().len(), 4);
    }

    #[test]
    fn an_empty_fetch_log_is_an_empty_history() {
        let (_dir, desk) = desk();
        assert!(desk.recent_fetches(50).unwrap().is_empty());
    }

    #[test]
    fn statuses_map_to_the_log_filters() {
        let check = |status: &str, kind: OutcomeKind| {
            assert_eq!(OutcomeKind::from_status(status), kind, "{status}");
        };
        check("200", OutcomeKind::Served);
        check("206", OutcomeKind::Served);
        check("304", OutcomeKind::Served);
        check("completed", OutcomeKind::Served);
        check("404", OutcomeKind::NotFound);
        check("400", OutcomeKind::BadRequest);
        check("416", OutcomeKind::BadRequest);
        check("denied", OutcomeKind::Denied);
        check("failed", OutcomeKind::Failed);
        check("aborted", OutcomeKind::Failed);
        check("tftp-error-1", OutcomeKind::Failed);
        check("500", OutcomeKind::Failed);
    }

    #[test]
    fn a_live_fetch_and_its_fetch_log_row_look_the_same() {
        let (_dir, desk) = desk();
        let fetch = Fetch {
            at_ms: 5_000,
            protocol: Protocol::Tftp,
            peer: "10.0.0.9:40000".parse().unwrap(),
            name: "cfg.xml".into(),
            mac: None,
            model: None,
            user_agent: None,
            outcome: Outcome::NotFound {
                reason: "no such file".into(),
            },
            bytes: 0,
            duration_ms: 2,
            artifact: None,
        };
        let live = LogRow::from(&fetch);
        desk.inventory()
            .append_fetch_log(&[FetchLogEntry {
                id: None,
                ts: fetch.at_ms,
                protocol: fetch.protocol.as_str().into(),
                peer: live.peer.clone(),
                name: fetch.name.clone(),
                mac: None,
                user_agent: None,
                status: fetch.outcome.status_text(),
                reason: Some("no such file".into()),
                bytes: 0,
                duration_ms: 2,
                artifact_hash: None,
            }])
            .unwrap();
        assert_eq!(desk.recent_fetches(1).unwrap(), vec![live]);
    }
}
