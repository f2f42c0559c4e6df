//! An open desk: its settings, inventory and catalogue, and the one handle allowed to write
//! `build/`.
//!
//! Invariant: one desk service owns the desk's only [`Builder`]. While no server runs, builds
//! run here with it; `start_serving` moves it into the servers' publisher and `stop_serving`
//! gets a fresh one back, so two builds of one desk never run at once and a build while
//! serving always goes through the publisher (which also swaps it into what is served). The
//! compiler holds this: `provdesk_serve::service::Service` takes the builder by value.
//!
//! Use-cases are synchronous: the CLI calls them on its main thread, the app on blocking
//! threads (never on the async runtime that hosts the servers). Reading the manifest never
//! waits for a build: the last published one is kept aside.

use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};

use provdesk_core::build::{BuildOptions, BuildReport, Builder, Manifest};
use provdesk_core::catalog::Catalog;
use provdesk_core::desk::Desk;
use provdesk_core::inventory::Inventory;
use provdesk_core::{Diagnostic, Mac};
use provdesk_serve::events::{Event, EventBus};
use provdesk_serve::publisher::Publisher;
use provdesk_serve::service::{RunningService, ServeOptions, Service};
use tokio::sync::broadcast;

use crate::error::{DeskError, DeskResult, ErrorKind};
use crate::events::{BuildState, BuildSummary, DeskEvent, DeskEvents};

/// An open desk. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct DeskService {
    inner: Arc<Inner>,
}

struct Inner {
    desk: Desk,
    inventory: Inventory,
    /// The built-in catalogue with the desk's `catalog/*.toml` overlay.
    catalog: Catalog,
    catalog_diagnostics: Vec<Diagnostic>,
    writer: tokio::sync::Mutex<Writer>,
    /// What the running servers serve, readable without the writer's lock.
    serving_store: RwLock<Option<Arc<provdesk_serve::store::ArtifactStore>>>,
    /// The options the running servers' publisher builds with (their listen address), so a
    /// device page shows what phones are served without waiting for the writer.
    serving_options: RwLock<Option<BuildOptions>>,
    /// The running servers' bound addresses, for the address phones are given.
    listening: RwLock<Option<Vec<(provdesk_serve::events::Protocol, std::net::SocketAddr)>>>,
    /// The last published manifest while no server runs (the servers' store has it while
    /// they do), so reading it never waits behind a build.
    manifest: RwLock<Arc<Manifest>>,
    events: DeskEvents,
    builds: Arc<std::sync::Mutex<Builds>>,
}

/// The desk's builds as [`BuildState`] reports them.
#[derive(Default)]
struct Builds {
    running: Option<(std::time::Instant, usize)>,
    last: Option<BuildSummary>,
    error: Option<String>,
}

/// Who writes `build/`.
enum Writer {
    /// No server runs: builds run here, on the caller's thread.
    Local(Box<Builder>),
    /// The servers run; their publisher owns the builder.
    Serving(Box<Serving>),
    /// Only while the builder moves into starting servers, under the lock; a panic there
    /// leaves it, and the next build starts a fresh builder.
    Vacant,
}

struct Serving {
    service: RunningService,
    /// The runtime the servers run on, to wait for their publisher from a blocking thread.
    runtime: tokio::runtime::Handle,
    /// Forwards the servers' builds and discoveries as desk events.
    bridge: tokio::task::JoinHandle<()>,
}

/// What `start_serving` reports: what runs, and the servers' event stream subscribed before
/// their first build so a listener sees everything.
pub struct Started {
    pub addresses: Vec<(provdesk_serve::events::Protocol, std::net::SocketAddr)>,
    pub urls: Vec<(provdesk_serve::events::Protocol, String)>,
    /// The syslog receiver's `udp://HOST:PORT`, when it runs.
    pub syslog_url: Option<String>,
    pub access: provdesk_serve::access::AccessSummary,
    pub first_build: BuildSummary,
    pub events: broadcast::Receiver<Arc<Event>>,
    pub bus: EventBus,
    pub store: Arc<provdesk_serve::store::ArtifactStore>,
}

impl DeskService {
    /// Opens the desk at `root`, creating it with the sample when the folder has no desk yet.
    pub fn open(root: &Path) -> DeskResult<DeskService> {
        let desk = Desk::open_or_init(root)?;
        DeskService::with_desk(desk)
    }

    /// Opens an existing desk; a folder without one is an error (for commands that must not
    /// create a desk by accident).
    pub fn open_existing(root: &Path) -> DeskResult<DeskService> {
        DeskService::with_desk(Desk::open(root)?)
    }

    fn with_desk(desk: Desk) -> DeskResult<DeskService> {
        let inventory = desk.inventory()?;
        let (catalog, catalog_diagnostics) = Catalog::load_with_overlay(desk.root());
        let manifest = Manifest::load(&desk.build_dir()).unwrap_or_default();
        Ok(DeskService {
            inner: Arc::new(Inner {
                writer: tokio::sync::Mutex::new(Writer::Local(Box::new(Builder::new(
                    desk.clone(),
                )))),
                desk,
                inventory,
                catalog,
                catalog_diagnostics,
                manifest: RwLock::new(Arc::new(manifest)),
                serving_store: RwLock::new(None),
                serving_options: RwLock::new(None),
                listening: RwLock::new(None),
                events: DeskEvents::default(),
                builds: Arc::default(),
            }),
        })
    }

    pub fn desk(&self) -> &Desk {
        &self.inner.desk
    }

    pub fn root(&self) -> &Path {
        self.inner.desk.root()
    }

    pub fn inventory(&self) -> &Inventory {
        &self.inner.inventory
    }

    pub fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }

    /// Problems in the desk's catalogue overlay, found when it was opened.
    pub fn catalog_diagnostics(&self) -> &[Diagnostic] {
        &self.inner.catalog_diagnostics
    }

    pub fn events(&self) -> &DeskEvents {
        &self.inner.events
    }

    /// Whether `other` is this very desk service (not merely the same folder).
    pub fn same(&self, other: &DeskService) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Build options as the desk's settings give them (the servers' publisher uses the
    /// address they listen on instead).
    pub fn options(&self) -> BuildOptions {
        BuildOptions::from_settings(self.inner.desk.settings())
    }

    /// The published build: the servers' while they run, else the last one built or found on
    /// disk. Never waits for a build.
    pub fn manifest(&self) -> PublishedManifest {
        if let Some(store) = self.serving_store() {
            return PublishedManifest::Served(store.snapshot());
        }
        PublishedManifest::Built(Arc::clone(
            &self
                .inner
                .manifest
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        ))
    }

    /// The options phones' files are built with now: the running servers' (their address
    /// fills P237/P192/P212) or, while none run, the settings'.
    pub fn served_options(&self) -> BuildOptions {
        self.inner
            .serving_options
            .read()
            .ok()
            .and_then(|o| o.clone())
            .unwrap_or_else(|| self.options())
    }

    fn serving_store(&self) -> Option<Arc<provdesk_serve::store::ArtifactStore>> {
        self.inner.serving_store.read().ok()?.clone()
    }

    /// Builds everything (profiles, firmware or settings changed).
    pub fn build(&self) -> DeskResult<BuildSummary> {
        self.run_build(None).map(Built::summary)
    }

    /// Rebuilds the files of these devices (added, edited, removed); the builder falls back
    /// to a full build when the change reaches further.
    pub fn rebuild_devices(&self, macs: &[Mac]) -> DeskResult<BuildSummary> {
        self.run_build(Some(macs)).map(Built::summary)
    }

    /// The full report of a build run here, for `provdesk build` (which lists every written
    /// file). While servers of this desk run, their publisher builds instead and the report
    /// holds its counts only.
    pub fn build_report(&self) -> DeskResult<Result<BuildReport, BuildSummary>> {
        Ok(match self.run_build(None)? {
            Built::Here(report) => Ok(report),
            Built::Served(summary) => Err(summary),
        })
    }

    /// The writer, with a fresh builder in place of one lost to a panic.
    fn local_writer(&self) -> tokio::sync::MutexGuard<'_, Writer> {
        let mut writer = blocking_lock(&self.inner.writer);
        if let Writer::Vacant = &*writer {
            *writer = Writer::Local(Box::new(Builder::new(self.inner.desk.clone())));
        }
        writer
    }

    fn run_build(&self, devices: Option<&[Mac]>) -> DeskResult<Built> {
        let mut writer = self.local_writer();
        match &mut *writer {
            Writer::Local(builder) => {
                self.started(devices);
                let options = self.options();
                let report = match devices {
                    None => builder.build(&self.inner.inventory, &options),
                    Some(macs) => builder.rebuild_devices(&self.inner.inventory, macs, &options),
                };
                // The builder holds the manifest it just published: keep a copy for readers
                // instead of reading build/manifest.json back.
                let published = match &report {
                    Ok(report) if report.published => builder.manifest().ok().cloned(),
                    _ => None,
                };
                drop(writer);
                if let Some(manifest) = published {
                    *self
                        .inner
                        .manifest
                        .write()
                        .unwrap_or_else(PoisonError::into_inner) = Arc::new(manifest);
                }
                self.after_local_build(report).map(Built::Here)
            }
            Writer::Vacant => Err(DeskError::internal(
                "the desk's builder was lost; try again",
            )),
            Writer::Serving(serving) => {
                let publisher: Publisher = serving.service.publisher();
                let runtime = serving.runtime.clone();
                let store = serving.service.store();
                drop(writer);
                // The bridge announces the publisher's build as BuildFinished to listeners.
                self.inner.events.emit(DeskEvent::BuildStarted {
                    devices: devices.map(<[Mac]>::to_vec),
                });
                let summary = match devices {
                    None => wait(&runtime, publisher.rebuild_all()),
                    Some(macs) => wait(&runtime, publisher.rebuild_devices(macs)),
                };
                let summary =
                    BuildSummary::served(&summary, devices_in(&store.snapshot().manifest));
                self.finished(Ok(summary.clone()));
                Ok(Built::Served(summary))
            }
        }
    }

    fn after_local_build(
        &self,
        report: provdesk_core::Result<BuildReport>,
    ) -> DeskResult<BuildReport> {
        let report = match report {
            Ok(report) => report,
            Err(e) => {
                let error = DeskError::from(e);
                self.finished(Err(error.message.clone()));
                self.inner
                    .events
                    .emit(DeskEvent::BuildFinished(BuildSummary {
                        errors: 1,
                        diagnostics: vec![Diagnostic::error("build", error.message.clone())],
                        ..BuildSummary::default()
                    }));
                return Err(error);
            }
        };
        let summary = BuildSummary::from(&report);
        self.finished(Ok(summary.clone()));
        self.inner.events.emit(DeskEvent::BuildFinished(summary));
        Ok(report)
    }

    fn started(&self, devices: Option<&[Mac]>) {
        let count = match devices {
            Some(macs) => macs.len(),
            None => self.inner.inventory.count_devices().unwrap_or(0),
        };
        self.builds().running = Some((std::time::Instant::now(), count));
        self.inner.events.emit(DeskEvent::BuildStarted {
            devices: devices.map(<[Mac]>::to_vec),
        });
    }

    fn finished(&self, outcome: Result<BuildSummary, String>) {
        let mut builds = self.builds();
        builds.running = None;
        match outcome {
            Ok(summary) => {
                builds.last = Some(summary);
                builds.error = None;
            }
            Err(error) => builds.error = Some(error),
        }
    }

    fn builds(&self) -> std::sync::MutexGuard<'_, Builds> {
        self.inner
            .builds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Where the desk's builds are: one running (since when, how many devices), the last
    /// one's summary, or why it failed.
    pub fn build_state(&self) -> BuildState {
        let builds = self.builds();
        let last_devices = builds.last.as_ref().map_or(0, |s| s.devices);
        match builds.running {
            Some((started, devices)) => BuildState {
                running: true,
                elapsed_ms: started.elapsed().as_millis() as u64,
                devices,
                summary: builds.last.clone(),
                error: None,
            },
            None => BuildState {
                running: false,
                elapsed_ms: 0,
                devices: last_devices,
                summary: builds.last.clone(),
                error: builds.error.clone(),
            },
        }
    }

    /// The running servers' bound addresses; `None` while none run.
    pub fn listening(
        &self,
    ) -> Option<Vec<(provdesk_serve::events::Protocol, std::net::SocketAddr)>> {
        self.inner
            .listening
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether this desk's servers run (in this process).
    pub fn is_serving(&self) -> bool {
        self.serving_store().is_some()
    }

    /// Starts the servers on this desk: binds every socket, builds through their publisher
    /// (which takes the desk's builder), starts the recorder and the watcher. Waits for a
    /// build running here to finish first. Must be called on a tokio runtime.
    pub async fn start_serving(&self, options: ServeOptions) -> DeskResult<Started> {
        let mut writer = self.inner.writer.lock().await;
        let builder = match std::mem::replace(&mut *writer, Writer::Vacant) {
            Writer::Local(builder) => *builder,
            Writer::Vacant => Builder::new(self.inner.desk.clone()),
            serving @ Writer::Serving(_) => {
                *writer = serving;
                return Err(DeskError::new(
                    ErrorKind::Serve,
                    "the servers of this desk already run",
                ));
            }
        };
        let service = Service::new(builder, options);
        let bus = service.events();
        let events = bus.subscribe();
        let bridged = bus.subscribe();
        let service = match service.launch().await {
            Ok(service) => service,
            Err(e) => {
                *writer = Writer::Local(Box::new(Builder::new(self.inner.desk.clone())));
                return Err(e.into());
            }
        };
        let store = service.store();
        self.finished(Ok(BuildSummary::served(
            service.first_build(),
            devices_in(&store.snapshot().manifest),
        )));
        let started = Started {
            addresses: service.addresses(),
            urls: service.urls(),
            syslog_url: service.syslog_url(),
            access: service.access().clone(),
            first_build: BuildSummary::served(
                service.first_build(),
                devices_in(&store.snapshot().manifest),
            ),
            events,
            bus,
            store: Arc::clone(&store),
        };
        let bridge = tokio::spawn(bridge(
            bridged,
            self.inner.events.clone(),
            Arc::clone(&self.inner.builds),
            Arc::clone(&store),
        ));
        *self
            .inner
            .serving_store
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(store);
        *self
            .inner
            .serving_options
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(service.publisher().options().clone());
        *self
            .inner
            .listening
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(started.addresses.clone());
        *writer = Writer::Serving(Box::new(Serving {
            service,
            runtime: tokio::runtime::Handle::current(),
            bridge,
        }));
        drop(writer);
        self.inner
            .events
            .emit(DeskEvent::ServersChanged { running: true });
        Ok(started)
    }

    /// Stops this desk's servers, in their order (servers, watcher, builds, recorder last):
    /// every fetch is in the fetch log when this returns. Builds run here again afterwards.
    /// Nothing to do when none run.
    pub async fn stop_serving(&self) -> DeskResult<()> {
        let mut writer = self.inner.writer.lock().await;
        let Writer::Serving(_) = &*writer else {
            return Ok(());
        };
        // The publisher built with the servers' address; start over from what is on disk.
        let fresh = Writer::Local(Box::new(Builder::new(self.inner.desk.clone())));
        let Writer::Serving(serving) = std::mem::replace(&mut *writer, fresh) else {
            return Ok(());
        };
        *self
            .inner
            .serving_store
            .write()
            .unwrap_or_else(PoisonError::into_inner) = None;
        *self
            .inner
            .serving_options
            .write()
            .unwrap_or_else(PoisonError::into_inner) = None;
        *self
            .inner
            .listening
            .write()
            .unwrap_or_else(PoisonError::into_inner) = None;
        let Serving {
            service, bridge, ..
        } = *serving;
        let manifest = service.store().snapshot().manifest.clone();
        let result = service.shutdown().await;
        bridge.abort();
        *self
            .inner
            .manifest
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(manifest);
        drop(writer);
        self.inner
            .events
            .emit(DeskEvent::ServersChanged { running: false });
        result.map_err(DeskError::from)
    }
}

/// The published manifest, shared rather than copied: the running servers' snapshot holds it
/// while they serve.
pub enum PublishedManifest {
    Built(Arc<Manifest>),
    Served(Arc<provdesk_serve::store::Snapshot>),
}

impl std::ops::Deref for PublishedManifest {
    type Target = Manifest;

    fn deref(&self) -> &Manifest {
        match self {
            PublishedManifest::Built(manifest) => manifest,
            PublishedManifest::Served(snapshot) => &snapshot.manifest,
        }
    }
}

/// A build run here (its full report) or by the running servers' publisher (its counts).
enum Built {
    Here(BuildReport),
    Served(BuildSummary),
}

impl Built {
    fn summary(self) -> BuildSummary {
        match self {
            Built::Here(report) => BuildSummary::from(&report),
            Built::Served(summary) => summary,
        }
    }
}

/// Takes `mutex` from synchronous code: on a blocking thread (where use-cases should run), on
/// a worker of a multi-threaded runtime (handed over while it waits), or, on a
/// single-threaded runtime, by polling.
fn blocking_lock<T>(mutex: &tokio::sync::Mutex<T>) -> tokio::sync::MutexGuard<'_, T> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Err(_) => mutex.blocking_lock(),
        Ok(current) if current.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| mutex.blocking_lock())
        }
        Ok(_) => loop {
            if let Ok(guard) = mutex.try_lock() {
                return guard;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        },
    }
}

/// Waits for the servers' publisher from synchronous code: on a blocking thread (where
/// use-cases should run), or on a worker of a multi-threaded runtime, which is handed over
/// while it waits.
fn wait<F: std::future::Future>(runtime: &tokio::runtime::Handle, future: F) -> F::Output {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(current) if current.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| runtime.block_on(future))
        }
        _ => runtime.block_on(future),
    }
}

/// How many devices have files of their own in `manifest`.
pub fn devices_in(manifest: &Manifest) -> usize {
    manifest
        .entries
        .values()
        .filter_map(|e| e.mac)
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

/// The servers' builds and discoveries, as desk events.
async fn bridge(
    mut events: broadcast::Receiver<Arc<Event>>,
    desk: DeskEvents,
    builds: Arc<std::sync::Mutex<Builds>>,
    store: Arc<provdesk_serve::store::ArtifactStore>,
) {
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        match &*event {
            Event::Build(summary) => {
                let summary = BuildSummary::served(summary, devices_in(&store.snapshot().manifest));
                {
                    let mut builds = builds.lock().unwrap_or_else(PoisonError::into_inner);
                    builds.last = Some(summary.clone());
                    builds.error = None;
                }
                desk.emit(DeskEvent::BuildFinished(summary));
            }
            Event::Discovered { mac, model, ip, .. } => desk.emit(DeskEvent::Discovered {
                mac: *mac,
                model: model.clone(),
                ip: ip.clone(),
            }),
            _ => {}
        }
    }
}
