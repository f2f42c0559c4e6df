//! One closed event type for everything the servers and the builder report, and the bus
//! that fans it out: subscribers (CLI printer, app) may lag and lose progress events; the
//! recorder that writes the fetch log gets every outcome.

use std::net::SocketAddr;
use std::sync::Arc;

use provdesk_core::build::ArtifactKind;
use provdesk_core::{Diagnostic, Mac};
use tokio::sync::{broadcast, mpsc};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Http,
    Https,
    Tftp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Https => "https",
            Protocol::Tftp => "tftp",
        }
    }
}

/// How a request ended. Reasons are for people and never contain secrets.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Outcome {
    /// 200 or 206 (HTTP), or a completed transfer (TFTP).
    Served { status: u16 },
    /// No such file; phones then fall back (`cfg<mac>.xml` → `cfg<model>.xml` → `cfg.xml`).
    NotFound { reason: String },
    /// A malformed or dangerous name (traversal, control characters, too long).
    BadRequest { reason: String },
    /// Refused: allow-list, authentication, client certificate.
    Denied { reason: String },
    /// Started but did not finish (timeout, peer error, connection reset).
    Failed { reason: String },
}

impl Outcome {
    /// The fetch log's `status` column.
    pub fn status_text(&self) -> String {
        match self {
            Outcome::Served { status } => status.to_string(),
            Outcome::NotFound { .. } => "404".into(),
            Outcome::BadRequest { .. } => "400".into(),
            Outcome::Denied { .. } => "denied".into(),
            Outcome::Failed { .. } => "failed".into(),
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Served { .. } => None,
            Outcome::NotFound { reason }
            | Outcome::BadRequest { reason }
            | Outcome::Denied { reason }
            | Outcome::Failed { reason } => Some(reason),
        }
    }
}

/// Which published artifact answered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ArtifactRef {
    pub kind: ArtifactKind,
    pub hash: String,
    pub version: u64,
}

/// One request (HTTP) or one transfer (TFTP), when it ends.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Fetch {
    /// Unix milliseconds when the request arrived.
    pub at_ms: i64,
    pub protocol: Protocol,
    pub peer: SocketAddr,
    /// The requested name as received, with control characters escaped for display.
    pub name: String,
    pub mac: Option<Mac>,
    pub model: Option<String>,
    pub user_agent: Option<String>,
    pub outcome: Outcome,
    pub bytes: u64,
    pub duration_ms: u64,
    pub artifact: Option<ArtifactRef>,
}

/// A transfer under way (firmware downloads), throttled by the sender.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Progress {
    /// Unique per transfer within one run.
    pub transfer: u64,
    pub protocol: Protocol,
    pub peer: SocketAddr,
    pub name: String,
    pub mac: Option<Mac>,
    pub bytes: u64,
    pub total: Option<u64>,
}

/// A build finished (the watcher's or the first one).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BuildSummary {
    pub published: bool,
    pub build: u64,
    pub artifacts: usize,
    pub written: usize,
    pub removed: usize,
    pub elapsed_ms: f64,
    pub diagnostics: Vec<Diagnostic>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    Listening {
        protocol: Protocol,
        url: String,
    },
    Fetch(Fetch),
    Progress(Progress),
    Build(BuildSummary),
    /// A phone not in the inventory asked for its files.
    Discovered {
        mac: Mac,
        model: Option<String>,
        ip: String,
        firmware_version: Option<String>,
    },
    Warning {
        message: String,
    },
}

/// Fans events out. Cloning is cheap; every clone emits into the same bus.
#[derive(Clone)]
pub struct EventBus {
    subscribers: broadcast::Sender<Arc<Event>>,
    /// Outcomes for the fetch-log recorder: unbounded so an outcome is never dropped; the
    /// recorder drains it in batches far faster than phones can produce requests.
    recorder: Option<mpsc::UnboundedSender<Arc<Event>>>,
}

impl EventBus {
    /// A bus whose lagging subscribers lose the oldest events beyond `capacity`.
    pub fn new(capacity: usize) -> EventBus {
        let (subscribers, _) = broadcast::channel(capacity.max(16));
        EventBus {
            subscribers,
            recorder: None,
        }
    }

    /// Connects the recorder; every event but progress is also sent to it.
    pub fn with_recorder(mut self) -> (EventBus, mpsc::UnboundedReceiver<Arc<Event>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        self.recorder = Some(tx);
        (self, rx)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.subscribers.subscribe()
    }

    pub fn emit(&self, event: Event) {
        let event = Arc::new(event);
        if let Some(recorder) = &self.recorder
            && !matches!(*event, Event::Progress(_))
        {
            // A closed recorder means shutdown is under way; nothing is left to record into.
            let _ = recorder.send(Arc::clone(&event));
        }
        // No subscriber is fine: events are still recorded.
        let _ = self.subscribers.send(event);
    }
}

/// Current time as Unix milliseconds, the unit of every timestamp in events and the log.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetch(outcome: Outcome) -> Event {
        Event::Fetch(Fetch {
            at_ms: 1,
            protocol: Protocol::Http,
            peer: "127.0.0.1:5000".parse().unwrap(),
            name: "cfg.xml".into(),
            mac: None,
            model: None,
            user_agent: None,
            outcome,
            bytes: 0,
            duration_ms: 0,
            artifact: None,
        })
    }

    #[tokio::test]
    async fn subscribers_and_recorder_both_get_outcomes_but_only_subscribers_get_progress() {
        let (bus, mut recorder) = EventBus::new(16).with_recorder();
        let mut subscriber = bus.subscribe();
        bus.emit(fetch(Outcome::Served { status: 200 }));
        bus.emit(Event::Progress(Progress {
            transfer: 1,
            protocol: Protocol::Tftp,
            peer: "127.0.0.1:5000".parse().unwrap(),
            name: "fw.bin".into(),
            mac: None,
            bytes: 1,
            total: Some(2),
        }));
        assert!(matches!(*subscriber.recv().await.unwrap(), Event::Fetch(_)));
        assert!(matches!(
            *subscriber.recv().await.unwrap(),
            Event::Progress(_)
        ));
        assert!(matches!(*recorder.recv().await.unwrap(), Event::Fetch(_)));
        assert!(recorder.try_recv().is_err());
    }

    #[test]
    fn serializes_with_a_stable_tag() {
        let json = serde_json::to_value(fetch(Outcome::NotFound {
            reason: "unknown device".into(),
        }))
        .unwrap();
        assert_eq!(json["event"], "fetch");
        assert_eq!(json["outcome"]["kind"], "not-found");
        assert_eq!(json["protocol"], "http");
    }
}
