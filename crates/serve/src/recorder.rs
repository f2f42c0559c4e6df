//! The recorder: turns the servers' fetch events into fetch-log rows and device sightings, in
//! batches, and applies the desk's policy for unknown phones (record as `discovered`, or
//! enroll into the auto-enroll profile and ask for their files to be built). A phone enrolled
//! into a profile whose variables it lacks stays enrolled: its build holds back only its own
//! files ("needs attention"), and the warning names what it lacks.
//!
//! Invariants: every fetch event it receives becomes exactly one row (write errors keep the
//! rows for the next attempt, bounded by [`MAX_HELD_ROWS`]); one transaction per batch of
//! rows; what is written is what the event says (name, peer, status, reason, hash), never a
//! password; `Event::Discovered` is emitted once per new device, when its row was committed.
//!
//! The database work runs on a thread of its own below the servers' priority
//! ([`WriterThread`]): when a boot storm takes every core, phones are served first and the
//! log catches up in the gaps, a second or two later at worst.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use provdesk_core::Mac;
use provdesk_core::inventory::{
    DeviceState, EventSource, Inventory, InventoryError, NewDeviceEvent, NewFetch, Peer, Sighting,
    SightingOutcome,
};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::events::{Event, EventBus, Fetch};
use crate::http::parse_user_agent;

/// How often a collecting recorder looks at its queue.
const COLLECT_TICK: Duration = Duration::from_millis(50);

/// Rows held in memory while the database refuses writes; beyond it the oldest are dropped
/// with a warning rather than growing without bound.
pub const MAX_HELD_ROWS: usize = 100_000;

/// The writer thread's nice value (Linux). At 10 it gets about a tenth of a core that the
/// servers also want, which is what logging a storm at full speed takes, so the queue
/// cannot grow for long.
const WRITER_NICE: i32 = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecorderConfig {
    /// Enroll unknown phones into this profile (once their model is known) instead of only
    /// recording them as discovered.
    pub auto_enroll_profile: Option<String>,
    /// The desk, whose profiles say which variables an auto-enrolled phone still lacks;
    /// without it the warning cannot name them (the build still holds the phone back).
    pub desk_root: Option<PathBuf>,
    /// Rows per transaction at most. Large, because each commit rewrites every page of the
    /// (mac, ts) index that its rows touch (about one per device in a storm), whether it
    /// holds 5,000 rows or 20,000.
    pub batch: usize,
    /// Longest a row waits before it is written. A second, for the same reason: 500 ms cost
    /// a boot storm about 2 us more per request. The live event stream is not delayed.
    pub interval: Duration,
}

impl Default for RecorderConfig {
    fn default() -> RecorderConfig {
        RecorderConfig {
            auto_enroll_profile: None,
            desk_root: None,
            batch: 20_000,
            interval: Duration::from_millis(1000),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    #[error("{rows} fetch-log row(s) could not be written: {source}")]
    Flush {
        rows: usize,
        #[source]
        source: InventoryError,
    },
}

/// Records until `events` closes or `shutdown` is cancelled, then writes what is queued and
/// returns. Cancel only after the servers have stopped, so nothing arrives afterwards.
/// `rebuild` is asked to build the files of devices it enrolled.
pub async fn run(
    mut events: UnboundedReceiver<Arc<Event>>,
    inventory: Inventory,
    config: RecorderConfig,
    bus: EventBus,
    rebuild: impl Fn(Vec<Mac>) + Send + 'static,
    shutdown: CancellationToken,
) -> Result<(), RecorderError> {
    let batch = config.batch.max(1);
    let mut recorder = Recorder {
        writer: WriterThread::start(&inventory),
        inventory,
        config,
        bus,
        rebuild: Box::new(rebuild),
        rows: Vec::new(),
        device_events: Vec::new(),
        newest_fetches: BTreeMap::new(),
        enrolled: BTreeSet::new(),
        warned_cap: false,
        warned_dropped: false,
    };
    'idle: loop {
        // Idle: wait for the first event of a batch.
        let first = tokio::select! {
            biased;
            received = events.recv() => received,
            () = shutdown.cancelled() => None,
        };
        let Some(first) = first else {
            break 'idle;
        };
        recorder.take(first);
        // Collecting: look at the queue every `COLLECT_TICK` rather than waking for each
        // event; in a boot storm a wake-up per request cost the servers' threads.
        let deadline = Instant::now() + recorder.config.interval;
        loop {
            recorder.take_queued(&mut events, batch).await;
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break 'idle,
                () = tokio::time::sleep((deadline - now).min(COLLECT_TICK)) => {}
            }
        }
        recorder.flush().await;
    }
    // Shut down, or every sender is gone: write what is still queued.
    recorder.take_queued(&mut events, batch).await;
    recorder.flush().await;
    match recorder.rows.len() {
        0 => Ok(()),
        rows => {
            // One last try, to report the error itself.
            let held = std::mem::take(&mut recorder.rows);
            let inventory = recorder.inventory.clone();
            recorder
                .writer
                .run(move || inventory.append_fetches(held.iter().filter_map(PendingRow::row)))
                .await
                .map_err(|source| RecorderError::Flush { rows, source })
        }
    }
}

/// The thread the recorder's inventory work runs on, off the async threads and, on Linux,
/// at a lower priority than they have (nice [`WRITER_NICE`]). It ends when this is dropped.
/// Work it cannot take (it failed to start) runs on tokio's blocking threads instead.
struct WriterThread {
    jobs: std::sync::mpsc::Sender<WriterJob>,
    /// The database, for the error should a batch be dropped unwritten.
    database: std::path::PathBuf,
}

type WriterJob = Box<dyn FnOnce() + Send>;

impl WriterThread {
    fn start(inventory: &Inventory) -> WriterThread {
        let (jobs, queue) = std::sync::mpsc::channel::<WriterJob>();
        // A thread that fails to start drops `queue` with its closure, so every send fails
        // and `run` falls back.
        if let Err(e) = std::thread::Builder::new()
            .name("fetch-log".into())
            .spawn(move || {
                lower_this_threads_priority();
                for job in queue {
                    job();
                }
            })
        {
            tracing::warn!(error = %e, "cannot start the fetch-log thread; writing on tokio's blocking threads");
        }
        WriterThread {
            jobs,
            database: database_of(inventory),
        }
    }

    /// Runs `work` on the thread and waits for its result; a panic in it resumes here, as
    /// with `spawn_blocking`.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, InventoryError> + Send + 'static,
    ) -> Result<T, InventoryError> {
        let (done, outcome) = tokio::sync::oneshot::channel();
        let job: WriterJob = Box::new(move || {
            // Caught so the thread lives on for the next batch.
            let _ = done.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)));
        });
        if let Err(std::sync::mpsc::SendError(job)) = self.jobs.send(job) {
            // No thread to take it (it catches panics, so only one that never started).
            tokio::task::spawn_blocking(job);
        }
        match outcome.await {
            Ok(Ok(result)) => result,
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            // Only a runtime shutting down drops a blocking job unrun.
            Err(_) => Err(InventoryError::Io {
                path: self.database.clone(),
                source: std::io::Error::other("the batch was dropped before it was written"),
            }),
        }
    }
}

fn database_of(inventory: &Inventory) -> std::path::PathBuf {
    inventory.path().map_or_else(
        || "(in-memory inventory)".into(),
        std::path::Path::to_path_buf,
    )
}

/// Best effort: a thread that cannot lower its priority still writes.
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid has no arguments and cannot fail.
        let tid = unsafe { libc::syscall(libc::SYS_gettid) };
        let Ok(tid) = libc::id_t::try_from(tid) else {
            return;
        };
        // On Linux the nice value is per thread: this leaves the servers' threads alone.
        // SAFETY: plain system call on this thread's own id.
        if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, WRITER_NICE) } != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "fetch-log thread keeps its priority");
        }
    }
}

struct Recorder {
    writer: WriterThread,
    inventory: Inventory,
    config: RecorderConfig,
    bus: EventBus,
    rebuild: Box<dyn Fn(Vec<Mac>) + Send>,
    /// The fetches not yet written, kept as the events themselves (with the device each is
    /// for): rows are made from them only when written, borrowing their strings.
    rows: Vec<PendingRow>,
    /// Timeline rows (DHCP, plug-and-play) not yet written.
    device_events: Vec<NewDeviceEvent>,
    /// The newest fetch (or plug-and-play request) per device in this batch: a boot sequence is several requests, and
    /// one update per device is enough. Turned into sightings when the batch is written, so a
    /// storm's User-Agents are parsed once per device rather than once per request.
    newest_fetches: BTreeMap<Mac, Arc<Event>>,
    /// Devices enrolled in this run, so their later requests do not re-check the policy.
    enrolled: BTreeSet<Mac>,
    warned_cap: bool,
    warned_dropped: bool,
}

impl Recorder {
    fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.newest_fetches.is_empty() && self.device_events.is_empty()
    }

    /// Takes every event already queued, writing a batch each time `batch` rows are held.
    async fn take_queued(&mut self, events: &mut UnboundedReceiver<Arc<Event>>, batch: usize) {
        while let Ok(event) = events.try_recv() {
            self.take(event);
            if self.rows.len() >= batch {
                self.flush().await;
            }
        }
    }

    fn take(&mut self, event: Arc<Event>) {
        if let Some(row) = event.device_event() {
            if self.device_events.len() >= MAX_HELD_ROWS {
                self.device_events.remove(0);
            }
            self.device_events.push(row);
        }
        if let Event::PlugAndPlay { mac: Some(mac), .. } = &*event {
            // A sighting without a fetch-log row; a fetch in the same batch says more.
            self.newest_fetches.entry(*mac).or_insert(event);
            return;
        }
        let Event::Fetch(fetch) = &*event else {
            return;
        };
        // The servers name the device when they can; the User-Agent is the last resort.
        let mac = fetch.mac.or_else(|| {
            let agent = fetch.user_agent.as_deref().and_then(parse_user_agent);
            agent.map(|a| a.mac)
        });
        self.rows.push(PendingRow {
            event: Arc::clone(&event),
            mac,
        });
        if self.rows.len() > MAX_HELD_ROWS {
            let excess = self.rows.len() - MAX_HELD_ROWS;
            self.rows.drain(..excess);
            if !self.warned_dropped {
                self.warned_dropped = true;
                self.bus.emit(Event::Warning {
                    message: format!(
                        "the fetch log cannot be written; keeping the newest {MAX_HELD_ROWS} rows in memory and dropping older ones"
                    ),
                });
            }
        }
        if let Some(mac) = mac {
            let newer = self
                .newest_fetches
                .get(&mac)
                .is_none_or(|known| match &**known {
                    Event::Fetch(known) => known.at_ms <= fetch.at_ms,
                    _ => true,
                });
            if newer {
                self.newest_fetches.insert(mac, event);
            }
        }
    }

    /// Writes the rows in one transaction and the sightings, then applies the discovery
    /// policy. A failed row write keeps the rows for the next flush.
    async fn flush(&mut self) {
        if self.is_empty() {
            return;
        }
        let rows = std::mem::take(&mut self.rows);
        let row_count = rows.len();
        let device_events = std::mem::take(&mut self.device_events);
        let mut sightings = Vec::with_capacity(self.newest_fetches.len());
        sightings.extend(
            std::mem::take(&mut self.newest_fetches)
                .into_iter()
                .filter_map(|(mac, event)| match &*event {
                    Event::Fetch(fetch) => Some(sighting(mac, fetch)),
                    Event::PlugAndPlay {
                        model,
                        firmware,
                        ip,
                        ..
                    } => Some(Sighting {
                        model: model.clone(),
                        firmware_version: firmware.clone(),
                        ip: Some(ip.clone()),
                        ..Sighting::new(mac, crate::events::now_ms())
                    }),
                    _ => None,
                }),
        );
        let inventory = self.inventory.clone();
        let policy = self.config.auto_enroll_profile.clone();
        let desk_root = self.config.desk_root.clone();
        let enrolled = self.enrolled.clone();
        let result = self
            .writer
            .run(move || {
                let written = inventory.append_fetches(rows.iter().filter_map(PendingRow::row));
                // Timeline rows are not retried: they are context, and a database that refuses
                // them also refuses the fetch rows, whose warning says so.
                let timeline = inventory.append_device_events(&device_events);
                if timeline.is_ok() {
                    trim_timeline(&inventory, &device_events);
                }
                let count = sightings.len();
                // One transaction for the whole batch: in a boot storm, one commit per phone
                // cost more CPU than serving its requests.
                let recorded = inventory.record_sightings(&sightings).map(|outcomes| {
                    sightings
                        .into_iter()
                        .zip(outcomes)
                        .map(|(sighting, outcome)| {
                            let enroll = match (&outcome, &policy) {
                                (SightingOutcome::CapReached, _) | (_, None) => None,
                                (_, Some(profile)) if !enrolled.contains(&sighting.mac) => {
                                    enroll_if_discovered(
                                        &inventory,
                                        &sighting,
                                        profile,
                                        desk_root.as_deref(),
                                    )
                                    .transpose()
                                }
                                _ => None,
                            };
                            (sighting, outcome, enroll)
                        })
                        .collect::<Vec<_>>()
                });
                Ok((
                    written.map_err(|e| (rows, e)),
                    recorded.map_err(|e| (count, e)),
                ))
            })
            .await;
        let (written, recorded) = match result {
            Ok(outcome) => outcome,
            // The batch never ran (the runtime is shutting down): its rows are gone.
            Err(e) => {
                self.bus.emit(Event::Warning {
                    message: format!("{row_count} fetch-log row(s) not written: {e}"),
                });
                return;
            }
        };
        if let Err((rows, error)) = written {
            self.bus.emit(Event::Warning {
                message: format!("fetch log not written yet (will retry): {error}"),
            });
            let mut held = rows;
            held.append(&mut self.rows);
            self.rows = held;
        }
        let outcomes = recorded.unwrap_or_else(|(count, e)| {
            self.bus.emit(Event::Warning {
                message: format!("{count} sightings not recorded: {e}"),
            });
            Vec::new()
        });
        let mut to_build = Vec::new();
        for (sighting, outcome, enroll) in outcomes {
            match outcome {
                SightingOutcome::Discovered => self.bus.emit(Event::Discovered {
                    mac: sighting.mac,
                    model: sighting.model.clone(),
                    ip: sighting.ip.clone().unwrap_or_default(),
                    firmware_version: sighting.firmware_version.clone(),
                }),
                SightingOutcome::CapReached if !self.warned_cap => {
                    self.warned_cap = true;
                    self.bus.emit(Event::Warning {
                        message: format!(
                            "{} not recorded: the inventory already holds {} discovered devices (discovery.max_discovered); remove some or raise the cap",
                            sighting.mac,
                            self.inventory.discovery_cap()
                        ),
                    });
                }
                _ => {}
            }
            match enroll {
                Some(Ok(Enrolled { profile, missing })) => {
                    self.enrolled.insert(sighting.mac);
                    let mac = sighting.mac;
                    let message = if missing.is_empty() {
                        format!(
                            "{mac} enrolled into profile {profile:?} (discovery.auto_enroll_profile)"
                        )
                    } else {
                        // Enrolled all the same: the phone is on the desk's list, and its
                        // build holds back only its own files until someone completes it.
                        format!(
                            "{mac} enrolled into profile {profile:?} (discovery.auto_enroll_profile) but needs attention: it lacks the variable(s) {} the profile uses, so it gets no config until they are set (provdesk device add {mac} --model … --profile {profile} {} --replace)",
                            missing.join(", "),
                            provdesk_core::build::var_flags(&missing)
                        )
                    };
                    self.bus.emit(Event::Warning { message });
                    to_build.push(mac);
                }
                Some(Err(e)) => self.bus.emit(Event::Warning {
                    message: format!("{} not enrolled: {e}", sighting.mac),
                }),
                None => {}
            }
        }
        if !to_build.is_empty() {
            (self.rebuild)(to_build);
        }
    }
}

/// Timeline rows kept per device and source that can flood (a DISCOVER storm, a syslog
/// flood); older ones are deleted as new ones arrive.
pub const MAX_TIMELINE_ROWS_PER_DEVICE: usize = 2_000;

/// Bounds the flood-prone sources of the timeline that `added` wrote to, for the devices
/// (and the untied rows) it wrote: a batch's trim reads what the batch touched, not every
/// device's rows. A failure leaves them for the next batch of that device.
fn trim_timeline(inventory: &Inventory, added: &[NewDeviceEvent]) {
    for source in [EventSource::Dhcp, EventSource::Syslog] {
        let touched: BTreeSet<Option<Mac>> = added
            .iter()
            .filter(|event| event.source == source)
            .map(|event| event.mac)
            .collect();
        if touched.is_empty() {
            continue;
        }
        let touched: Vec<Option<Mac>> = touched.into_iter().collect();
        if let Err(e) =
            inventory.trim_device_events_of(source, &touched, MAX_TIMELINE_ROWS_PER_DEVICE)
        {
            tracing::debug!(error = %e, "timeline not trimmed");
        }
    }
}

/// What auto-enrolling did: the profile, and the variables it uses that the phone lacks.
struct Enrolled {
    profile: String,
    missing: Vec<String>,
}

/// Enrolls a discovered device whose model is known; `Ok(None)` when there is nothing to do
/// (already in the inventory, or the model is still unknown: a TFTP request names none, and a
/// config built for `unknown` would be wrong).
fn enroll_if_discovered(
    inventory: &Inventory,
    sighting: &Sighting,
    profile: &str,
    desk_root: Option<&std::path::Path>,
) -> Result<Option<Enrolled>, InventoryError> {
    let Some(device) = inventory.get_device(sighting.mac)? else {
        return Ok(None);
    };
    if device.state != DeviceState::Discovered
        || device.model == provdesk_core::inventory::UNKNOWN_MODEL
    {
        return Ok(None);
    }
    let device = inventory.enroll(sighting.mac, Some(profile))?;
    let missing = desk_root
        .map(|root| {
            let profiles = provdesk_core::profile::ProfileSet::load(root);
            provdesk_core::build::missing_device_variables(&profiles, &device)
        })
        .unwrap_or_default();
    Ok(Some(Enrolled {
        profile: profile.to_string(),
        missing,
    }))
}

/// What `fetch` tells of its device.
fn sighting(mac: Mac, fetch: &Fetch) -> Sighting {
    let agent = fetch.user_agent.as_deref().and_then(parse_user_agent);
    Sighting {
        model: fetch
            .model
            .clone()
            .or_else(|| agent.as_ref().map(|a| a.model.clone())),
        firmware_version: agent
            .as_ref()
            .map(|a| a.firmware.clone())
            .filter(|f| !f.is_empty()),
        ip: Some(fetch.peer.ip().to_string()),
        user_agent: fetch.user_agent.clone(),
        ..Sighting::new(mac, fetch.at_ms)
    }
}

/// A fetch event waiting to be written, and the device it is for.
struct PendingRow {
    event: Arc<Event>,
    mac: Option<Mac>,
}

impl PendingRow {
    /// Its fetch-log row, borrowing the event's strings; only fetches are ever held.
    fn row(&self) -> Option<NewFetch<'_>> {
        let Event::Fetch(fetch) = &*self.event else {
            return None;
        };
        Some(NewFetch {
            ts: fetch.at_ms,
            protocol: fetch.protocol.as_str(),
            peer: Peer::Address(fetch.peer),
            name: &fetch.name,
            mac: self.mac,
            user_agent: fetch.user_agent.as_deref(),
            status: fetch.outcome.status_code(),
            reason: fetch.outcome.reason(),
            bytes: fetch.bytes,
            duration_ms: fetch.duration_ms,
            artifact_hash: fetch.artifact.as_ref().map(|a| a.hash.as_str()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{ArtifactRef, Outcome, Protocol};
    use provdesk_core::build::ArtifactKind;
    use provdesk_core::inventory::FetchLogQuery;

    fn fetch(n: u32, mac: Option<Mac>, outcome: Outcome) -> Event {
        Event::Fetch(Fetch {
            at_ms: 1_000 + i64::from(n),
            protocol: Protocol::Tftp,
            peer: format!("127.0.0.1:{}", 1024 + n % 1000).parse().unwrap(),
            name: format!("cfg{n}.xml"),
            mac,
            model: None,
            user_agent: None,
            outcome,
            bytes: u64::from(n),
            duration_ms: 1,
            artifact: Some(ArtifactRef {
                kind: ArtifactKind::GenericXml,
                hash: format!("h{n}"),
                version: 1,
            }),
        })
    }

    fn served() -> Outcome {
        Outcome::Served { status: 200 }
    }

    struct Setup {
        _dir: tempfile::TempDir,
        inventory: Inventory,
        /// Where the recorder emits (discovered, warnings).
        out: EventBus,
    }

    fn setup() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let inventory = Inventory::open(&dir.path().join("provdesk.db")).unwrap();
        Setup {
            _dir: dir,
            inventory,
            out: EventBus::new(1024),
        }
    }

    /// Runs the recorder with the default policy until the bus is dropped and drained.
    async fn record_all(rx: UnboundedReceiver<Arc<Event>>, s: &Setup) {
        run(
            rx,
            s.inventory.clone(),
            RecorderConfig::default(),
            s.out.clone(),
            |_| {},
            CancellationToken::new(),
        )
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn ten_thousand_events_then_close_are_ten_thousand_rows() {
        let s = setup();
        let (bus, rx) = EventBus::new(16).with_recorder();
        for n in 0..10_000 {
            bus.emit(fetch(n, None, served()));
        }
        drop(bus);
        let config = RecorderConfig {
            batch: 700,
            ..RecorderConfig::default()
        };
        let token = CancellationToken::new();
        run(
            rx,
            s.inventory.clone(),
            config,
            s.out.clone(),
            |_| {},
            token,
        )
        .await
        .unwrap();
        let rows = s.inventory.fetch_log(&FetchLogQuery::default()).unwrap();
        assert_eq!(rows.len(), 10_000);
        let newest = &rows[0];
        assert_eq!(newest.name, "cfg9999.xml");
        assert_eq!(newest.status, "200");
        assert_eq!(newest.artifact_hash.as_deref(), Some("h9999"));
    }

    #[tokio::test]
    async fn cancelling_flushes_what_is_queued() {
        let s = setup();
        let (bus, rx) = EventBus::new(16).with_recorder();
        let token = CancellationToken::new();
        let config = RecorderConfig {
            interval: Duration::from_secs(3600),
            ..RecorderConfig::default()
        };
        let task = tokio::spawn(run(
            rx,
            s.inventory.clone(),
            config,
            s.out.clone(),
            |_| {},
            token.clone(),
        ));
        for n in 0..30 {
            bus.emit(fetch(n, None, served()));
        }
        token.cancel();
        task.await.unwrap().unwrap();
        // The bus is still alive (as in the service, where the recorder's own bus holds it).
        drop(bus);
        let rows = s.inventory.fetch_log(&FetchLogQuery::default()).unwrap();
        assert_eq!(rows.len(), 30);
    }

    #[tokio::test]
    async fn unknown_devices_are_discovered_once_with_what_the_agent_says() {
        let s = setup();
        let mut out = s.out.subscribe();
        let (bus, rx) = EventBus::new(16).with_recorder();
        let mac: Mac = "000b82abcdef".parse().unwrap();
        for n in 0..3 {
            let Event::Fetch(mut f) = fetch(
                n,
                None,
                Outcome::NotFound {
                    reason: "unknown device".into(),
                },
            ) else {
                unreachable!()
            };
            f.user_agent =
                Some("Grandstream Model HW GXP2170 V1.2A SW 1.0.11.3 DevId 000b82abcdef".into());
            f.artifact = None;
            bus.emit(Event::Fetch(f));
        }
        drop(bus);
        record_all(rx, &s).await;
        let device = s.inventory.get_device(mac).unwrap().unwrap();
        assert_eq!(device.state, DeviceState::Discovered);
        assert_eq!(device.model, "gxp2170");
        assert_eq!(device.firmware_version.as_deref(), Some("1.0.11.3"));
        assert_eq!(device.last_ip.as_deref(), Some("127.0.0.1"));
        let rows = s
            .inventory
            .fetch_log(&FetchLogQuery {
                mac: Some(mac),
                ..FetchLogQuery::default()
            })
            .unwrap();
        assert_eq!(rows.len(), 3, "the MAC comes from the User-Agent");
        assert_eq!(rows[0].status, "404");
        assert_eq!(rows[0].reason.as_deref(), Some("unknown device"));
        let mut discovered = 0;
        while let Ok(event) = out.try_recv() {
            if let Event::Discovered { mac: m, model, .. } = &*event {
                assert_eq!(*m, mac);
                assert_eq!(model.as_deref(), Some("gxp2170"));
                discovered += 1;
            }
        }
        assert_eq!(discovered, 1);
    }

    #[tokio::test]
    async fn a_plug_and_play_request_discovers_its_phone_without_a_log_row() {
        let s = setup();
        let mut out = s.out.subscribe();
        let (bus, rx) = EventBus::new(16).with_recorder();
        let mac: Mac = "c074ad112233".parse().unwrap();
        bus.emit(Event::PlugAndPlay {
            mac: Some(mac),
            model: Some("GRP2612W".into()),
            firmware: Some("1.0.5.67".into()),
            ip: "198.51.100.2".into(),
            outcome: crate::pnp::PnpOutcome::Notified {
                url: "http://198.51.100.1:8080/".into(),
            },
        });
        drop(bus);
        record_all(rx, &s).await;
        let device = s.inventory.get_device(mac).unwrap().unwrap();
        assert_eq!(device.state, DeviceState::Discovered);
        assert_eq!(device.model, "grp2612w");
        assert_eq!(device.firmware_version.as_deref(), Some("1.0.5.67"));
        assert_eq!(device.last_ip.as_deref(), Some("198.51.100.2"));
        let log = s.inventory.fetch_log(&FetchLogQuery::default()).unwrap();
        assert!(log.is_empty(), "{log:?}");
        let timeline = s
            .inventory
            .device_events(&provdesk_core::inventory::DeviceEventQuery {
                mac: Some(mac),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(timeline.len(), 1, "{timeline:?}");
        assert_eq!(timeline[0].source, EventSource::Pnp);
        assert!(
            timeline[0].summary.contains("http://198.51.100.1:8080/"),
            "{timeline:?}"
        );
        let discovered = std::iter::from_fn(|| out.try_recv().ok())
            .filter(|e| matches!(&**e, Event::Discovered { .. }))
            .count();
        assert_eq!(discovered, 1);
    }

    #[tokio::test]
    async fn dhcp_messages_join_the_timeline_of_their_mac_but_the_listening_notice_does_not() {
        let s = setup();
        let (bus, rx) = EventBus::new(16).with_recorder();
        let mac: Mac = "000b82abcdef".parse().unwrap();
        for kind in ["listening", "discover", "offer", "request", "ack"] {
            bus.emit(Event::Dhcp(crate::events::DhcpEvent {
                at_ms: 1_000,
                interface: "bench0".into(),
                kind,
                mac: (kind != "listening").then_some(mac),
                address: Some(std::net::Ipv4Addr::new(198, 51, 100, 100)),
                vendor_class: Some("Grandstream GXP2170".into()),
                detail: None,
            }));
        }
        drop(bus);
        record_all(rx, &s).await;
        let timeline = s
            .inventory
            .device_events(&provdesk_core::inventory::DeviceEventQuery::default())
            .unwrap();
        let kinds: Vec<_> = timeline.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["discover", "offer", "request", "ack"]);
        assert!(timeline.iter().all(|e| e.mac == Some(mac)));
        assert_eq!(timeline[3].summary, "DHCP ACK 198.51.100.100");
    }

    fn syslog_line(n: u32, mac: Option<Mac>) -> Event {
        use crate::events::{SyslogEvent, SyslogLine};
        Event::Syslog(SyslogEvent::Line(SyslogLine {
            at_ms: 1_000 + i64::from(n),
            peer: "198.51.100.7:514".parse().unwrap(),
            mac,
            tied_by: mac.map(|_| crate::events::TiedBy::Address),
            format: provdesk_core::syslog::Format::Rfc3164,
            facility: Some("user"),
            severity: Some(provdesk_core::syslog::Severity::Info),
            hostname: None,
            app: Some("GS_LOG".into()),
            message: format!("line {n}"),
            sent_at_ms: None,
            other_macs: Vec::new(),
            cut_bytes: 0,
        }))
    }

    /// 10,000 syslog lines, ten seconds of the most the receiver lets through
    /// (`SyslogConfig::total`), are written far faster than they can arrive (about 1.5 s in
    /// an unoptimised test build on a busy machine), and what is kept is bounded per device
    /// and for the untied lines alike.
    #[tokio::test]
    async fn a_syslog_flood_is_written_in_one_batch_and_kept_bounded() {
        let s = setup();
        let (bus, rx) = EventBus::new(16).with_recorder();
        let mac: Mac = "000b82abcdef".parse().unwrap();
        for n in 0..5_000 {
            bus.emit(syslog_line(n, Some(mac)));
            bus.emit(syslog_line(n, None));
        }
        drop(bus);
        let started = std::time::Instant::now();
        record_all(rx, &s).await;
        let took = started.elapsed();
        let total = crate::syslog::SyslogConfig::default().total.rate;
        assert!(
            took < std::time::Duration::from_secs(u64::from(10_000 / total / 2)),
            "{took:?}"
        );
        let query = |mac| provdesk_core::inventory::DeviceEventQuery {
            mac,
            ..Default::default()
        };
        let mine = s.inventory.device_events(&query(Some(mac))).unwrap();
        assert_eq!(mine.len(), MAX_TIMELINE_ROWS_PER_DEVICE);
        assert_eq!(mine.last().unwrap().summary, "info GS_LOG: line 4999");
        assert_eq!(mine.last().unwrap().source, EventSource::Syslog);
        let untied = s
            .inventory
            .device_events(&query(None))
            .unwrap()
            .into_iter()
            .filter(|e| e.mac.is_none())
            .count();
        assert_eq!(untied, MAX_TIMELINE_ROWS_PER_DEVICE);
    }

    #[tokio::test]
    async fn auto_enroll_enrolls_known_models_and_asks_for_a_build() {
        let s = setup();
        let (bus, rx) = EventBus::new(16).with_recorder();
        let tftp_only: Mac = "000b82000001".parse().unwrap();
        let with_agent: Mac = "000b82000002".parse().unwrap();
        bus.emit(fetch(
            1,
            Some(tftp_only),
            Outcome::NotFound { reason: "x".into() },
        ));
        let Event::Fetch(mut f) = fetch(
            2,
            Some(with_agent),
            Outcome::NotFound { reason: "x".into() },
        ) else {
            unreachable!()
        };
        f.user_agent = Some("Grandstream Model HW GXP2135 SW 1.0.9.1 DevId 000b82000002".into());
        bus.emit(Event::Fetch(f));
        drop(bus);
        let (asked_tx, mut asked) = tokio::sync::mpsc::unbounded_channel();
        let desk = s._dir.path().join("desk");
        std::fs::create_dir_all(desk.join("profiles")).unwrap();
        std::fs::write(
            desk.join("profiles/office.toml"),
            "[params]\nP35 = \"{{ ext }}\"\nP34 = \"{{ sip_secret }}\"\nP3 = \"{{ name }}\"\n",
        )
        .unwrap();
        let mut out = s.out.subscribe();
        let config = RecorderConfig {
            auto_enroll_profile: Some("office".into()),
            desk_root: Some(desk),
            ..RecorderConfig::default()
        };
        run(
            rx,
            s.inventory.clone(),
            config,
            s.out.clone(),
            move |macs| {
                let _ = asked_tx.send(macs);
            },
            CancellationToken::new(),
        )
        .await
        .unwrap();
        let enrolled = s.inventory.get_device(with_agent).unwrap().unwrap();
        assert_eq!(enrolled.state, DeviceState::Inventory);
        assert_eq!(enrolled.profile.as_deref(), Some("office"));
        let unknown = s.inventory.get_device(tftp_only).unwrap().unwrap();
        assert_eq!(
            unknown.state,
            DeviceState::Discovered,
            "no model, no enrollment"
        );
        assert_eq!(asked.recv().await, Some(vec![with_agent]));
        // Enrolled although it lacks variables, with a warning that names them.
        let mut warned = Vec::new();
        while let Ok(event) = out.try_recv() {
            if let Event::Warning { message } = &*event {
                warned.push(message.clone());
            }
        }
        assert!(
            warned.iter().any(|m| m.contains("000b82000002")
                && m.contains("needs attention")
                && m.contains("ext, sip_secret")),
            "{warned:?}"
        );
        assert!(
            enrolled.xml_password.is_some(),
            "enrolling gives a password"
        );
    }

    #[tokio::test]
    async fn the_discovery_cap_is_reported_once() {
        let s = setup();
        s.inventory.set_discovery_cap(2);
        let mut out = s.out.subscribe();
        let (bus, rx) = EventBus::new(16).with_recorder();
        for n in 0..5u8 {
            let mac = Mac::from_bytes([0, 0x0b, 0x82, 0, 0, n]);
            bus.emit(fetch(
                u32::from(n),
                Some(mac),
                Outcome::NotFound { reason: "x".into() },
            ));
        }
        drop(bus);
        record_all(rx, &s).await;
        assert_eq!(s.inventory.list_devices().unwrap().len(), 2);
        assert_eq!(
            s.inventory
                .fetch_log(&FetchLogQuery::default())
                .unwrap()
                .len(),
            5,
            "every request is logged even when its device is not stored"
        );
        let mut warnings = 0;
        while let Ok(event) = out.try_recv() {
            if let Event::Warning { message } = &*event {
                assert!(message.contains("max_discovered"), "{message}");
                warnings += 1;
            }
        }
        assert_eq!(warnings, 1);
    }

    /// This thread's nice value, from /proc (field 19 of its stat line).
    #[cfg(target_os = "linux")]
    fn this_threads_nice() -> i64 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        // The command name may hold spaces; the fields after it are plain numbers.
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        after_name.split(' ').nth(19 - 3).unwrap().parse().unwrap()
    }

    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_writer_thread_runs_below_the_servers_and_only_it_does() {
        let s = setup();
        let writer = WriterThread::start(&s.inventory);
        let before = this_threads_nice();
        let (writer_nice, writer_name) = writer
            .run(|| {
                let name = std::thread::current().name().map(str::to_string);
                Ok((this_threads_nice(), name))
            })
            .await
            .unwrap();
        assert_eq!(writer_name.as_deref(), Some("fetch-log"));
        assert!(writer_nice >= WRITER_NICE.into(), "nice {writer_nice}");
        assert_eq!(
            this_threads_nice(),
            before,
            "the caller's thread is left alone"
        );
        let worker_nice = tokio::spawn(async { this_threads_nice() }).await.unwrap();
        assert_eq!(worker_nice, before, "so are the runtime's workers");
    }

    #[tokio::test]
    async fn a_panic_on_the_writer_thread_reaches_the_caller_and_the_thread_lives_on() {
        let s = setup();
        let writer = Arc::new(WriterThread::start(&s.inventory));
        let panicking = Arc::clone(&writer);
        let ended = tokio::spawn(async move {
            panicking
                .run(|| -> Result<(), InventoryError> { panic!("a bug in a batch") })
                .await
        })
        .await;
        let panic = ended.unwrap_err().into_panic();
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"a bug in a batch"));
        let answer = writer.run(|| Ok(42)).await.unwrap();
        assert_eq!(answer, 42);
    }

    /// A writer whose thread never started: jobs go to tokio's blocking threads.
    fn writer_without_a_thread(inventory: &Inventory) -> WriterThread {
        let (jobs, queue) = std::sync::mpsc::channel::<WriterJob>();
        drop(queue);
        WriterThread {
            jobs,
            database: database_of(inventory),
        }
    }

    /// A writer that drops every job unrun, as a runtime shutting down would.
    fn writer_that_drops_jobs(inventory: &Inventory) -> WriterThread {
        let (jobs, queue) = std::sync::mpsc::channel::<WriterJob>();
        std::thread::spawn(move || queue.into_iter().for_each(drop));
        WriterThread {
            jobs,
            database: database_of(inventory),
        }
    }

    #[tokio::test]
    async fn without_its_thread_the_writer_still_writes_and_a_dropped_batch_is_reported() {
        let s = setup();
        let answer = writer_without_a_thread(&s.inventory).run(|| Ok(7)).await;
        assert_eq!(answer.unwrap(), 7);

        let mut out = s.out.subscribe();
        let mut recorder = Recorder {
            writer: writer_that_drops_jobs(&s.inventory),
            inventory: s.inventory.clone(),
            config: RecorderConfig::default(),
            bus: s.out.clone(),
            rebuild: Box::new(|_| {}),
            rows: Vec::new(),
            device_events: Vec::new(),
            newest_fetches: BTreeMap::new(),
            enrolled: BTreeSet::new(),
            warned_cap: false,
            warned_dropped: false,
        };
        for n in 0..3 {
            recorder.take(Arc::new(fetch(n, None, served())));
        }
        recorder.flush().await;
        let Ok(event) = out.try_recv() else {
            panic!("a warning for the lost rows");
        };
        let Event::Warning { message } = &*event else {
            panic!("a warning, not {event:?}");
        };
        assert!(
            message.starts_with("3 fetch-log row(s) not written: "),
            "{message}"
        );
        assert!(
            message.contains("provdesk.db"),
            "names the database: {message}"
        );
        assert!(
            message.contains("dropped before it was written"),
            "{message}"
        );
    }
}
