//! The publisher: runs the builder for the servers and swaps each good build into the
//! artifact store.
//!
//! Invariants: one build at a time, on a blocking thread; requests that arrive while a build
//! runs are merged into the next one, so an editor saving ten times starts at most two builds;
//! the store changes only after a published build (a build with errors leaves the last good
//! snapshot serving, and says why in an `Event::Build` with its diagnostics).
//!
//! Never from a file being saved: the builder refuses to write a build whose inputs changed
//! while it read them, and holds one that reads a file which became empty since the last
//! published build (an editor or a share that truncates, then writes); the publisher waits
//! for such a file to be written (up to [`InputPolicy::emptied_wait`], then accepts it as
//! meant, and says so), and after the build compares what was read with what is on disk
//! again before swapping the store: a change discards the result and builds again, a
//! bounded number of times.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use provdesk_core::build::{BuildOptions, BuildReport, Builder};
use provdesk_core::build_inputs::{self, BuildInputs};
use provdesk_core::desk::Desk;
use provdesk_core::inventory::Inventory;
use provdesk_core::{Diagnostic, Mac};

use crate::events::{BuildSummary, Event, EventBus};
use crate::store::{ArtifactStore, Snapshot};

/// Runs builds for the servers. Cheap to clone; clones share the builder and the store.
#[derive(Clone)]
pub struct Publisher {
    inner: Arc<Inner>,
}

struct Inner {
    /// For a fresh builder, should a panic in a build lose the one in use.
    desk: Desk,
    desk_root: PathBuf,
    inventory: Inventory,
    store: Arc<ArtifactStore>,
    events: EventBus,
    options: BuildOptions,
    policy: InputPolicy,
    /// Set at shutdown: a build held for a file being saved gives up instead of waiting.
    stopping: AtomicBool,
    /// What callers asked for since the last build took its requests.
    pending: Mutex<Pending>,
    /// Held for the whole build: the builder is not shareable, and builds must not overlap.
    running: tokio::sync::Mutex<Running>,
}

#[derive(Default)]
struct Pending {
    /// Numbers every request; a build covers all requests up to the number it took.
    requested: u64,
    all: bool,
    devices: BTreeSet<Mac>,
}

struct Running {
    /// `None` only while a build runs on the blocking thread.
    builder: Option<Builder>,
    /// The highest request number a finished build covered.
    covered: u64,
    last: Option<BuildSummary>,
}

/// How the publisher treats inputs that change under a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputPolicy {
    /// Longest wait for a file that became empty (or vanished) while the last published build
    /// read content from it; then it is taken as meant. Longer than the 2 s a slow share was
    /// seen to pause between truncating and writing.
    pub emptied_wait: Duration,
    /// Builds in a row whose inputs changed while they ran, before giving up until the next
    /// change (the watcher asks again then).
    pub max_attempts: u32,
    /// Pause before building again after an input changed or was written.
    pub settle: Duration,
    /// How often a held build looks at the disk.
    pub poll: Duration,
}

impl Default for InputPolicy {
    fn default() -> InputPolicy {
        InputPolicy {
            emptied_wait: Duration::from_secs(6),
            max_attempts: 5,
            settle: Duration::from_millis(150),
            poll: Duration::from_millis(50),
        }
    }
}

impl Publisher {
    pub fn new(
        builder: Builder,
        inventory: Inventory,
        store: Arc<ArtifactStore>,
        events: EventBus,
        options: BuildOptions,
    ) -> Publisher {
        Publisher::with_policy(
            builder,
            inventory,
            store,
            events,
            options,
            InputPolicy::default(),
        )
    }

    pub fn with_policy(
        builder: Builder,
        inventory: Inventory,
        store: Arc<ArtifactStore>,
        events: EventBus,
        options: BuildOptions,
        policy: InputPolicy,
    ) -> Publisher {
        Publisher {
            inner: Arc::new(Inner {
                desk: builder.desk().clone(),
                desk_root: builder.desk().root().to_path_buf(),
                inventory,
                store,
                events,
                options,
                policy,
                stopping: AtomicBool::new(false),
                pending: Mutex::default(),
                running: tokio::sync::Mutex::new(Running {
                    builder: Some(builder),
                    covered: 0,
                    last: None,
                }),
            }),
        }
    }

    /// For shutdown: a build held for a file being saved stops waiting and publishes nothing,
    /// so stopping the servers is not delayed by up to [`InputPolicy::emptied_wait`].
    pub fn stop_waiting(&self) {
        self.inner.stopping.store(true, Ordering::Relaxed);
    }

    pub fn store(&self) -> &Arc<ArtifactStore> {
        &self.inner.store
    }

    pub fn options(&self) -> &BuildOptions {
        &self.inner.options
    }

    /// Rebuilds everything (profiles, firmware or settings changed). Returns the summary of
    /// the build that covered this request, which may have been started by another caller.
    pub async fn rebuild_all(&self) -> BuildSummary {
        self.request(None).await
    }

    /// Rebuilds the files of these devices (added, edited, enrolled, removed); the builder
    /// falls back to a full build when the change reaches further.
    pub async fn rebuild_devices(&self, macs: &[Mac]) -> BuildSummary {
        self.request(Some(macs)).await
    }

    async fn request(&self, devices: Option<&[Mac]>) -> BuildSummary {
        let ticket = {
            let mut pending = lock(&self.inner.pending);
            pending.requested += 1;
            match devices {
                None => pending.all = true,
                Some(macs) => pending.devices.extend(macs.iter().copied()),
            }
            pending.requested
        };
        let mut running = self.inner.running.lock().await;
        if running.covered >= ticket
            && let Some(last) = &running.last
        {
            return last.clone();
        }
        let (covers, scope) = {
            let mut pending = lock(&self.inner.pending);
            let scope = if pending.all {
                None
            } else {
                Some(pending.devices.iter().copied().collect::<Vec<_>>())
            };
            pending.all = false;
            pending.devices.clear();
            (pending.requested, scope)
        };
        let summary = self.build(&mut running, scope).await;
        running.covered = covers;
        running.last = Some(summary.clone());
        summary
    }

    /// Runs one build on a blocking thread, publishes it when good, and reports it.
    async fn build(&self, running: &mut Running, scope: Option<Vec<Mac>>) -> BuildSummary {
        let inner = Arc::clone(&self.inner);
        let builder = running.builder.take();
        let previous = self.inner.store.snapshot();
        let joined = tokio::task::spawn_blocking(move || {
            // `None` only after a panic inside an earlier build lost the builder.
            let mut builder = builder.unwrap_or_else(|| Builder::new(inner.desk.clone()));
            let outcome = build_and_load(&mut builder, &inner, scope.as_deref(), &previous);
            (builder, outcome)
        })
        .await;
        let outcome = match joined {
            Ok((builder, outcome)) => {
                running.builder = Some(builder);
                outcome
            }
            Err(e) => Err(format!("the build stopped unexpectedly: {e}")),
        };
        let summary = match outcome {
            Ok((report, snapshot)) => {
                if let Some(snapshot) = snapshot {
                    self.inner.store.publish(snapshot);
                }
                summary_of(&report)
            }
            Err(message) => BuildSummary {
                published: false,
                build: self.inner.store.snapshot().manifest.build,
                artifacts: self.inner.store.snapshot().manifest.entries.len(),
                written: 0,
                removed: 0,
                elapsed_ms: 0.0,
                diagnostics: vec![Diagnostic::error("build-failed", message)],
                held: Vec::new(),
            },
        };
        self.inner.events.emit(Event::Build(summary.clone()));
        summary
    }
}

type BuildOutcome = Result<(BuildReport, Option<Snapshot>), String>;

/// The blocking half: build from inputs that are whole and unchanged (see the module's
/// comment), then read the new bodies (reusing unchanged ones) when the build was published
/// and changed what is served.
fn build_and_load(
    builder: &mut Builder,
    inner: &Inner,
    scope: Option<&[Mac]>,
    previous: &Snapshot,
) -> BuildOutcome {
    let policy = &inner.policy;
    let mut attempts = 0;
    let mut held_since: Option<Instant> = None;
    let mut accept_emptied = false;
    let report = loop {
        builder.inputs().hold_emptied = !accept_emptied;
        let mut report = match scope {
            None => builder.build(&inner.inventory, &inner.options),
            Some(macs) => builder.rebuild_devices(&inner.inventory, macs, &inner.options),
        }
        .map_err(|e| e.to_string())?;
        let held = messages_of(&report, build_inputs::KIND_BEING_WRITTEN);
        if !held.is_empty() {
            let since = *held_since.get_or_insert_with(|| {
                inner.events.emit(Event::Warning {
                    message: format!(
                        "build waits up to {} s for a file being saved: {}",
                        policy.emptied_wait.as_secs(),
                        held.join("; ")
                    ),
                });
                Instant::now()
            });
            let last_good = builder.inputs().last_good().cloned().unwrap_or_default();
            let deadline = since + policy.emptied_wait;
            let waited = wait_until_written(&inner.desk_root, &last_good, deadline, inner);
            if waited == Waited::Stopped {
                // Shutting down: the held build is not published, and not taken as meant.
                return Ok((report, None));
            }
            if waited == Waited::Written {
                std::thread::sleep(policy.settle);
            } else {
                inner.events.emit(Event::Warning {
                    message: format!(
                        "still empty after {} s, so taken as meant: {}",
                        policy.emptied_wait.as_secs(),
                        held.join("; ")
                    ),
                });
                accept_emptied = true;
            }
            continue;
        }
        // What the build read against the disk now: a file saved while the build ran (after
        // the builder's own check) must not be served from the older reading.
        let changed = if report.published {
            build_inputs::changes(
                builder.inputs().last_read(),
                &BuildInputs::read_now(&inner.desk_root),
            )
            .iter()
            .map(|c| format!("{c} while the build ran"))
            .collect()
        } else {
            messages_of(&report, build_inputs::KIND_CHANGED)
        };
        if changed.is_empty() {
            break report;
        }
        attempts += 1;
        if attempts >= policy.max_attempts {
            let message = format!(
                "the build inputs keep changing ({}): nothing new is published after {attempts} builds; the next change builds again",
                changed.join("; ")
            );
            inner.events.emit(Event::Warning {
                message: message.clone(),
            });
            report.published = false;
            report
                .diagnostics
                .push(Diagnostic::error(build_inputs::KIND_CHANGED, message));
            return Ok((report, None));
        }
        std::thread::sleep(policy.settle);
    };
    if !report.published {
        return Ok((report, None));
    }
    let manifest = builder.manifest().map_err(|e| e.to_string())?.clone();
    let credentials = builder.credentials().clone();
    if manifest == previous.manifest && credentials == previous.credentials {
        return Ok((report, None));
    }
    let snapshot = Snapshot::load_verified(&inner.desk_root, manifest, credentials, Some(previous));
    Ok((report, Some(snapshot)))
}

/// The messages of the diagnostics of `kind`, with their files.
fn messages_of(report: &BuildReport, kind: &str) -> Vec<String> {
    report
        .diagnostics
        .iter()
        .filter(|d| d.kind == kind)
        .map(|d| d.message.clone())
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waited {
    Written,
    TimedOut,
    Stopped,
}

/// Waits until no input that had content in the last published build is empty-like or
/// missing any more, until `deadline`, or until [`Publisher::stop_waiting`].
fn wait_until_written(
    desk_root: &std::path::Path,
    last_good: &BuildInputs,
    deadline: Instant,
    inner: &Inner,
) -> Waited {
    loop {
        if inner.stopping.load(Ordering::Relaxed) {
            return Waited::Stopped;
        }
        let now = BuildInputs::read_now(desk_root);
        if build_inputs::being_written(&now, last_good).is_empty() {
            return Waited::Written;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Waited::TimedOut;
        }
        std::thread::sleep(left.min(inner.policy.poll));
    }
}

fn summary_of(report: &BuildReport) -> BuildSummary {
    BuildSummary {
        published: report.published,
        build: report.build,
        artifacts: report.artifacts,
        written: report.written.len(),
        removed: report.removed.len(),
        elapsed_ms: report.elapsed_ms,
        diagnostics: report.diagnostics.clone(),
        held: report.held.clone(),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every update of the pending set is one statement; a panic cannot leave it half-done.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Resolution;
    use provdesk_core::inventory::Device;

    struct Fixture {
        _dir: tempfile::TempDir,
        desk: Desk,
        inventory: Inventory,
        publisher: Publisher,
        bus: EventBus,
    }

    fn fixture() -> Fixture {
        fixture_with(InputPolicy::default())
    }

    fn fixture_with(policy: InputPolicy) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let desk = Desk::init(&dir.path().join("desk")).unwrap();
        let inventory = desk.inventory().unwrap();
        let bus = EventBus::new(64);
        let publisher = Publisher::with_policy(
            Builder::new(desk.clone()),
            inventory.clone(),
            Arc::new(ArtifactStore::default()),
            bus.clone(),
            BuildOptions::default(),
            policy,
        );
        Fixture {
            _dir: dir,
            desk,
            inventory,
            publisher,
            bus,
        }
    }

    fn body(publisher: &Publisher, name: &str) -> Option<String> {
        match publisher.store().snapshot().resolve(name) {
            Resolution::Found(found) => Some(String::from_utf8_lossy(&found.body).into_owned()),
            _ => None,
        }
    }

    #[tokio::test]
    async fn publishes_good_builds_and_keeps_the_last_good_one_on_errors() {
        let f = fixture();
        let mut events = f.bus.subscribe();
        let summary = f.publisher.rebuild_all().await;
        assert!(summary.published, "{:?}", summary.diagnostics);
        assert!(
            body(&f.publisher, "cfg.xml")
                .unwrap()
                .contains("pool.ntp.org")
        );
        assert!(matches!(&*events.recv().await.unwrap(), Event::Build(b) if b.published));

        let global = f.desk.profiles_dir().join("global.toml");
        std::fs::write(&global, "[params]\nP30 = \"{{ \"\n").unwrap();
        let failed = f.publisher.rebuild_all().await;
        assert!(!failed.published);
        assert!(failed.diagnostics.iter().any(Diagnostic::is_error));
        assert!(
            body(&f.publisher, "cfg.xml")
                .unwrap()
                .contains("pool.ntp.org"),
            "the last good build keeps serving"
        );
        match &*events.recv().await.unwrap() {
            Event::Build(b) => assert!(!b.published && !b.diagnostics.is_empty()),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn device_rebuilds_add_their_files() {
        let f = fixture();
        f.publisher.rebuild_all().await;
        let mac: Mac = "000b82000001".parse().unwrap();
        let mut device = Device::new(mac, "gxp2170");
        device.profile = Some("office".into());
        device.vars.insert("ext".into(), "201".into());
        device.vars.insert("sip_secret".into(), "s".into());
        f.inventory.upsert_device(&device).unwrap();
        let summary = f.publisher.rebuild_devices(&[mac]).await;
        assert!(summary.published, "{:?}", summary.diagnostics);
        assert!(body(&f.publisher, "cfg000b82000001.xml").is_some());
    }

    #[tokio::test]
    async fn requests_during_a_build_are_coalesced() {
        let f = fixture();
        let mut events = f.bus.subscribe();
        let requests: Vec<_> = (0..8)
            .map(|_| {
                let publisher = f.publisher.clone();
                tokio::spawn(async move { publisher.rebuild_all().await })
            })
            .collect();
        for request in requests {
            assert!(request.await.unwrap().published);
        }
        let mut builds = 0;
        while let Ok(event) = events.try_recv() {
            if matches!(*event, Event::Build(_)) {
                builds += 1;
            }
        }
        // The first request builds; the others queue behind it and share at most one more.
        assert!((1..=2).contains(&builds), "{builds} builds for 8 requests");
    }

    const MAC: &str = "000b82000001";

    /// A desk whose global profile encrypts the XML, with one phone that has a SIP password.
    async fn encrypted_desk(f: &Fixture) -> std::path::PathBuf {
        let global = f.desk.profiles_dir().join("global.toml");
        std::fs::write(&global, global_text(0)).unwrap();
        let mut device = Device::new(MAC.parse().unwrap(), "gxp2170");
        device.profile = Some("office".into());
        device.vars.insert("ext".into(), "201".into());
        device
            .vars
            .insert("sip_secret".into(), "sip-pw-9137".into());
        f.inventory.upsert_device(&device).unwrap();
        let summary = f.publisher.rebuild_all().await;
        assert!(summary.published, "{:?}", summary.diagnostics);
        assert_eq!(served_round(f), Some(0));
        global
    }

    fn global_text(round: u32) -> String {
        format!("[params]\nP30 = \"round-{round}.example.org\"\nP1359 = \"xml-pw\"\n")
    }

    /// The round in the served cfg<mac>.xml, which must be encrypted.
    fn served_round(f: &Fixture) -> Option<u32> {
        let snapshot = f.publisher.store().snapshot();
        let Resolution::Found(found) = snapshot.resolve(&format!("cfg{MAC}.xml")) else {
            return None;
        };
        let plain = provdesk_core::format::crypt::decrypt(&found.body, "xml-pw")
            .unwrap_or_else(|e| panic!("served unencrypted or broken: {e}"));
        let text = String::from_utf8(plain).unwrap();
        assert!(text.contains("sip-pw-9137"), "{text}");
        let round = text.split("round-").nth(1)?.split('.').next()?;
        round.parse().ok()
    }

    async fn next_warning(events: &mut tokio::sync::broadcast::Receiver<Arc<Event>>) -> String {
        let wait = async {
            loop {
                if let Event::Warning { message } = &*events.recv().await.unwrap() {
                    return message.clone();
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(20), wait)
            .await
            .expect("a warning")
    }

    #[tokio::test]
    async fn a_profile_emptied_by_a_save_in_place_is_not_built_from_until_written() {
        let f = fixture();
        let global = encrypted_desk(&f).await;
        let mut events = f.bus.subscribe();
        // The first half of a save in place: truncated; the bytes come later.
        std::fs::write(&global, "").unwrap();
        let publisher = f.publisher.clone();
        let build = tokio::spawn(async move { publisher.rebuild_all().await });
        let message = next_warning(&mut events).await;
        assert!(message.contains("profiles/global.toml"), "{message}");
        assert!(message.contains("being saved"), "{message}");
        assert_eq!(
            served_round(&f),
            Some(0),
            "the last good build keeps serving"
        );
        std::fs::write(&global, global_text(1)).unwrap();
        let summary = build.await.unwrap();
        assert!(summary.published, "{:?}", summary.diagnostics);
        assert_eq!(served_round(&f), Some(1));
        // No build from the empty file was reported, let alone published.
        while let Ok(event) = events.try_recv() {
            if let Event::Build(b) = &*event {
                assert!(b.published, "{b:?}");
            }
        }
    }

    #[tokio::test]
    async fn a_profile_left_empty_is_taken_as_meant_after_the_wait() {
        let f = fixture_with(InputPolicy {
            emptied_wait: Duration::from_millis(100),
            ..InputPolicy::default()
        });
        let global = encrypted_desk(&f).await;
        let mut events = f.bus.subscribe();
        std::fs::write(&global, "").unwrap();
        let summary = f.publisher.rebuild_all().await;
        assert!(summary.published, "{:?}", summary.diagnostics);
        assert!(next_warning(&mut events).await.contains("being saved"));
        let message = next_warning(&mut events).await;
        assert!(message.contains("taken as meant"), "{message}");
        let body = body(&f.publisher, &format!("cfg{MAC}.xml")).unwrap();
        assert!(!body.contains("round-0"), "{body}");
    }

    #[tokio::test]
    async fn inputs_that_keep_changing_publish_nothing() {
        let f = fixture_with(InputPolicy {
            max_attempts: 3,
            settle: Duration::ZERO,
            ..InputPolicy::default()
        });
        let global = encrypted_desk(&f).await;
        let mut events = f.bus.subscribe();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // A writer that saves through a rename (never empty) with new bytes each time.
        let writer = {
            let (stop, global) = (Arc::clone(&stop), global.clone());
            std::thread::spawn(move || {
                let temp = global.with_extension("toml.tmp");
                let mut round = 100;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::fs::write(&temp, global_text(round)).unwrap();
                    std::fs::rename(&temp, &global).unwrap();
                    round += 1;
                    std::thread::yield_now();
                }
            })
        };
        let summary = f.publisher.rebuild_all().await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        writer.join().unwrap();
        assert!(!summary.published);
        assert!(
            summary
                .diagnostics
                .iter()
                .any(|d| d.kind == build_inputs::KIND_CHANGED),
            "{:?}",
            summary.diagnostics
        );
        let message = next_warning(&mut events).await;
        assert!(message.contains("keep changing"), "{message}");
        assert_eq!(
            served_round(&f),
            Some(0),
            "the last good build keeps serving"
        );
    }

    #[tokio::test]
    async fn shutdown_ends_a_held_build_without_publishing_it() {
        let f = fixture();
        let global = encrypted_desk(&f).await;
        let mut events = f.bus.subscribe();
        std::fs::write(&global, "").unwrap();
        let publisher = f.publisher.clone();
        let build = tokio::spawn(async move { publisher.rebuild_all().await });
        assert!(next_warning(&mut events).await.contains("being saved"));
        f.publisher.stop_waiting();
        let summary = build.await.unwrap();
        assert!(!summary.published);
        assert!(
            summary
                .diagnostics
                .iter()
                .any(|d| d.kind == build_inputs::KIND_BEING_WRITTEN),
            "{:?}",
            summary.diagnostics
        );
        assert_eq!(
            served_round(&f),
            Some(0),
            "the last good build keeps serving"
        );
    }
}
