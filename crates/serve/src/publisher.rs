//! The publisher: runs the builder for the servers and swaps each good build into the
//! artifact store.
//!
//! Invariants: one build at a time, on a blocking thread; requests that arrive while a build
//! runs are merged into the next one, so an editor saving ten times starts at most two builds;
//! the store changes only after a published build (a build with errors leaves the last good
//! snapshot serving, and says why in an `Event::Build` with its diagnostics).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use provdesk_core::build::{BuildOptions, BuildReport, Builder};
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

impl Publisher {
    pub fn new(
        builder: Builder,
        inventory: Inventory,
        store: Arc<ArtifactStore>,
        events: EventBus,
        options: BuildOptions,
    ) -> Publisher {
        Publisher {
            inner: Arc::new(Inner {
                desk: builder.desk().clone(),
                desk_root: builder.desk().root().to_path_buf(),
                inventory,
                store,
                events,
                options,
                pending: Mutex::default(),
                running: tokio::sync::Mutex::new(Running {
                    builder: Some(builder),
                    covered: 0,
                    last: None,
                }),
            }),
        }
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

/// The blocking half: build, then read the new bodies (reusing unchanged ones) when the
/// build was published and changed what is served.
fn build_and_load(
    builder: &mut Builder,
    inner: &Inner,
    scope: Option<&[Mac]>,
    previous: &Snapshot,
) -> BuildOutcome {
    let report = match scope {
        None => builder.build(&inner.inventory, &inner.options),
        Some(macs) => builder.rebuild_devices(&inner.inventory, macs, &inner.options),
    }
    .map_err(|e| e.to_string())?;
    if !report.published {
        return Ok((report, None));
    }
    let manifest = builder.manifest().map_err(|e| e.to_string())?.clone();
    let credentials = builder.credentials().clone();
    if manifest == previous.manifest && credentials == previous.credentials {
        return Ok((report, None));
    }
    let snapshot = Snapshot::load(&inner.desk_root, manifest, credentials, Some(previous))
        .map_err(|e| e.to_string())?;
    Ok((report, Some(snapshot)))
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
        let dir = tempfile::tempdir().unwrap();
        let desk = Desk::init(&dir.path().join("desk")).unwrap();
        let inventory = desk.inventory().unwrap();
        let bus = EventBus::new(64);
        let publisher = Publisher::new(
            Builder::new(desk.clone()),
            inventory.clone(),
            Arc::new(ArtifactStore::default()),
            bus.clone(),
            BuildOptions::default(),
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
}
