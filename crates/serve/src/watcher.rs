//! Rebuild on edit: watches `profiles/` and `firmware/`, polls `provdesk.toml` and the
//! inventory's device version, and asks the publisher for a rebuild after each change.
//!
//! Why `provdesk.toml` is polled rather than watched: it sits in the desk root beside the
//! inventory's database, and a watch on the root delivered an event for every write of the
//! database, which in a boot storm means every fetch-log page.
//!
//! Invariants: editor temp files never trigger a build, and a save through a temp file and a
//! rename is seen; `provdesk.toml` counts as changed once its bytes differ from the last ones
//! applied and stayed the same for one poll (an editor may be mid-write); a burst of changes
//! costs one rebuild (the debouncer merges them, the publisher coalesces the rest); a build
//! starts only once the inputs are quiet (no event, and the same size and modification time
//! of every input over [`WatcherConfig::settle`], within [`WatcherConfig::max_settle`]), so
//! a save in progress is not built from (the publisher checks the rest); settings
//! that only a restart can apply (listen addresses, TLS, auth, limits, encryption) are reported as a warning, not
//! half-applied.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify_debouncer_full::notify::{self, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use provdesk_core::Mac;
use provdesk_core::build_inputs;
use provdesk_core::desk::{self, Desk, DeskSettings};
use provdesk_core::inventory::{DeviceState, Inventory, InventoryError};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::events::{Event, EventBus};
use crate::publisher::Publisher;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatcherConfig {
    /// Quiet time after the last file event before rebuilding.
    pub debounce: Duration,
    /// How often the inventory's device version is checked.
    pub poll: Duration,
    /// How long the inputs must stay the same (size, modification time, no event) before a
    /// rebuild.
    pub settle: Duration,
    /// Longest wait for quiet inputs: a file that grows for longer (a firmware image copied
    /// over a slow share) is built from anyway; the store checks firmware against its hash.
    pub max_settle: Duration,
}

impl Default for WatcherConfig {
    fn default() -> WatcherConfig {
        WatcherConfig {
            debounce: Duration::from_millis(250),
            poll: Duration::from_millis(250),
            settle: Duration::from_millis(150),
            max_settle: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("{}: cannot watch for changes: {source}", path.display())]
    Watch {
        path: PathBuf,
        #[source]
        source: notify::Error,
    },
    #[error(transparent)]
    Inventory(#[from] InventoryError),
}

/// The watches, set up and ready: changes made after [`Watcher::new`] returns are seen.
pub struct Watcher {
    root: PathBuf,
    settings: DeskSettings,
    inventory: Inventory,
    publisher: Publisher,
    events: EventBus,
    config: WatcherConfig,
    files: mpsc::UnboundedReceiver<DebounceEventResult>,
    /// Dropping it stops the notify threads.
    _debouncer: Debouncer<notify::RecommendedWatcher, RecommendedCache>,
    version: i64,
    devices: BTreeMap<Mac, u64>,
    settings_path: PathBuf,
    /// `provdesk.toml` as last applied (`None`: it could not be read).
    settings_bytes: Option<Vec<u8>>,
    /// New bytes seen at the last poll, applied if the next poll sees them again.
    settings_pending: Option<Option<Vec<u8>>>,
}

impl Watcher {
    pub fn new(
        desk: &Desk,
        inventory: Inventory,
        publisher: Publisher,
        events: EventBus,
        config: WatcherConfig,
    ) -> Result<Watcher, WatchError> {
        let root = desk.root().to_path_buf();
        let (tx, files) = mpsc::unbounded_channel();
        let watch_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| WatchError::Watch { path, source }
        };
        let mut debouncer = new_debouncer(config.debounce, None, move |result| {
            // A closed receiver means the watcher is shutting down.
            let _ = tx.send(result);
        })
        .map_err(watch_err(&root))?;
        for (dir, mode) in [
            (desk.profiles_dir(), RecursiveMode::Recursive),
            (desk.firmware_dir(), RecursiveMode::NonRecursive),
        ] {
            if dir.is_dir() {
                debouncer.watch(&dir, mode).map_err(watch_err(&dir))?;
            }
        }
        let version = inventory.data_version()?;
        let devices = fingerprints(&inventory)?;
        let settings_bytes = std::fs::read(desk.settings_path()).ok();
        Ok(Watcher {
            settings_path: desk.settings_path(),
            settings_bytes,
            settings_pending: None,
            root,
            settings: desk.settings().clone(),
            inventory,
            publisher,
            events,
            config,
            files,
            _debouncer: debouncer,
            version,
            devices,
        })
    }

    /// Watches until `shutdown`. A rebuild in progress finishes first.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut poll = tokio::time::interval(self.config.poll);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                Some(result) = self.files.recv() => {
                    let mut touched = self.touches_build_inputs(result);
                    while let Ok(more) = self.files.try_recv() {
                        touched |= self.touches_build_inputs(more);
                    }
                    if touched && self.wait_until_quiet(&shutdown).await {
                        self.publisher.rebuild_all().await;
                    }
                }
                _ = poll.tick() => {
                    if self.poll_settings().await {
                        self.settings_changed();
                        self.publisher.rebuild_all().await;
                    }
                    self.poll_inventory().await;
                }
            }
        }
    }

    /// Returns once the inputs have stayed the same for the settle time (or after
    /// `max_settle`); false at shutdown. Events that arrive meanwhile are taken in: the build
    /// that follows covers them.
    async fn wait_until_quiet(&mut self, shutdown: &CancellationToken) -> bool {
        let deadline = tokio::time::Instant::now() + self.config.max_settle;
        let mut before = self.stamps().await;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return false,
                () = tokio::time::sleep(self.config.settle) => {}
            }
            let mut more = false;
            while let Ok(result) = self.files.try_recv() {
                more |= self.touches_build_inputs(result);
            }
            let now = self.stamps().await;
            if (!more && now == before) || tokio::time::Instant::now() >= deadline {
                return true;
            }
            before = now;
        }
    }

    async fn stamps(&self) -> BTreeMap<String, (u64, Option<std::time::SystemTime>)> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || build_inputs::stamps(&root))
            .await
            .unwrap_or_default()
    }

    fn touches_build_inputs(&self, result: DebounceEventResult) -> bool {
        let mut touched = false;
        match result {
            Ok(events) => {
                // Reads are not changes; the builder itself reads every profile and firmware
                // file, and counting that would rebuild forever.
                let changes = events
                    .iter()
                    .filter(|e| !matches!(e.kind, notify::EventKind::Access(_)));
                for event in changes {
                    for path in &event.paths {
                        touched |= is_build_input(&self.root, path);
                    }
                }
            }
            Err(errors) => {
                for error in errors {
                    self.events.emit(Event::Warning {
                        message: format!("watching the desk for changes: {error}"),
                    });
                }
                // Something may have been missed; a rebuild costs little.
                touched = true;
            }
        }
        touched
    }

    /// Whether `provdesk.toml` changed since it was last applied and has stayed the same for
    /// one poll.
    async fn poll_settings(&mut self) -> bool {
        let current = tokio::fs::read(&self.settings_path).await.ok();
        if current == self.settings_bytes {
            self.settings_pending = None;
            return false;
        }
        if self.settings_pending.as_ref() != Some(&current) {
            self.settings_pending = Some(current);
            return false;
        }
        self.settings_bytes = current;
        self.settings_pending = None;
        true
    }

    /// Applies what can change while serving and says what needs a restart.
    fn settings_changed(&mut self) {
        let new = match Desk::open(&self.root) {
            Ok(desk) => desk.settings().clone(),
            Err(e) => {
                self.events.emit(Event::Warning {
                    message: format!("{e}; the running server keeps its current settings"),
                });
                return;
            }
        };
        let old = &self.settings;
        if new.discovery.max_discovered != old.discovery.max_discovered {
            self.inventory
                .set_discovery_cap(new.discovery.max_discovered as usize);
        }
        let mut needs_restart = Vec::new();
        let server = (&new.server, &old.server);
        for (name, changed) in [
            ("server.http", server.0.http != server.1.http),
            ("server.https", server.0.https != server.1.https),
            ("server.tftp", server.0.tftp != server.1.tftp),
            ("server.base_path", server.0.base_path != server.1.base_path),
            (
                "server.public_host",
                server.0.public_host != server.1.public_host,
            ),
            (
                "discovery.auto_enroll_profile",
                new.discovery.auto_enroll_profile != old.discovery.auto_enroll_profile,
            ),
            ("tls", new.tls != old.tls),
            ("auth", new.auth != old.auth),
            ("access", new.access != old.access),
            ("limits", new.limits != old.limits),
            // The publisher's build options are fixed at start.
            ("encryption", new.encryption != old.encryption),
        ] {
            if changed {
                needs_restart.push(name);
            }
        }
        if !needs_restart.is_empty() {
            self.events.emit(Event::Warning {
                message: format!(
                    "restart provdesk serve to apply the changed settings: {}",
                    needs_restart.join(", ")
                ),
            });
        }
        self.settings = new;
    }

    /// Rebuilds the devices whose inventory fields changed since the last poll. Seen fields
    /// and discovered devices do not count: they change the fetch log, not the build.
    async fn poll_inventory(&mut self) {
        let inventory = self.inventory.clone();
        let version = match tokio::task::spawn_blocking(move || inventory.data_version()).await {
            Ok(Ok(version)) => version,
            Ok(Err(e)) => {
                self.events.emit(Event::Warning {
                    message: format!("checking the inventory for changes: {e}"),
                });
                return;
            }
            Err(_) => return,
        };
        if version == self.version {
            return;
        }
        let inventory = self.inventory.clone();
        let devices = match tokio::task::spawn_blocking(move || fingerprints(&inventory)).await {
            Ok(Ok(devices)) => devices,
            Ok(Err(e)) => {
                self.events.emit(Event::Warning {
                    message: format!("reading the inventory after a change: {e}"),
                });
                return;
            }
            Err(_) => return,
        };
        self.version = version;
        let changed: BTreeSet<Mac> = self
            .devices
            .iter()
            .filter(|(mac, print)| devices.get(mac) != Some(print))
            .map(|(mac, _)| *mac)
            .chain(
                devices
                    .iter()
                    .filter(|(mac, print)| self.devices.get(mac) != Some(print))
                    .map(|(mac, _)| *mac),
            )
            .collect();
        self.devices = devices;
        if !changed.is_empty() {
            let macs: Vec<Mac> = changed.into_iter().collect();
            self.publisher.rebuild_devices(&macs).await;
        }
    }
}

/// Whether a changed path is something builds are made from (not an editor's temp file).
fn is_build_input(root: &Path, path: &Path) -> bool {
    let Ok(relative) = path.strip_prefix(root) else {
        return false;
    };
    let mut parts = relative.components();
    let in_inputs = parts
        .next()
        .and_then(|first| first.as_os_str().to_str())
        .is_some_and(|first| first == desk::PROFILES_DIR || first == desk::FIRMWARE_DIR);
    let named = relative
        .file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| !is_temp_name(name));
    in_inputs && named && !parts.as_path().as_os_str().is_empty()
}

/// Editors' swap, backup and lock files, and other hidden files.
fn is_temp_name(name: &str) -> bool {
    name.starts_with('.')
        || name.starts_with('#')
        || name.ends_with('~')
        || name.ends_with('#')
        || name == "4913"
        || name.contains("___jb_")
        || [
            ".swp",
            ".swx",
            ".swo",
            ".tmp",
            ".bak",
            ".part",
            ".crdownload",
        ]
        .iter()
        .any(|suffix| name.ends_with(suffix))
}

/// A hash of what each inventory device's files are made from.
fn fingerprints(inventory: &Inventory) -> Result<BTreeMap<Mac, u64>, InventoryError> {
    Ok(inventory
        .list_devices()?
        .into_iter()
        .filter(|d| d.state == DeviceState::Inventory)
        .map(|d| {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            (&d.model, &d.profile, &d.name, &d.vars, &d.overrides).hash(&mut hasher);
            (d.mac, hasher.finish())
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::BuildSummary;
    use crate::store::{ArtifactStore, Resolution};
    use provdesk_core::build::{BuildOptions, Builder};
    use provdesk_core::inventory::Device;
    use std::sync::Arc;

    #[test]
    fn only_build_inputs_matter() {
        let root = Path::new("/desk");
        let check = |path: &str, expected: bool| {
            assert_eq!(is_build_input(root, &root.join(path)), expected, "{path}");
        };
        check("profiles/global.toml", true);
        check("profiles/models/gxp2170.toml", true);
        check("firmware/gxp2170fw.bin", true);
        check("profiles/.global.toml.swp", false);
        check("profiles/global.toml~", false);
        check("profiles/4913", false);
        check("profiles/#global.toml#", false);
        check("provdesk.toml", false);
        check("provdesk.db", false);
        check("provdesk.db-wal", false);
        check("build/cfg.xml", false);
        check("build/.tmp/0123", false);
        check("devices-example.csv", false);
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        desk: Desk,
        store: Arc<ArtifactStore>,
        events: tokio::sync::broadcast::Receiver<Arc<Event>>,
        shutdown: CancellationToken,
        task: tokio::task::JoinHandle<()>,
    }

    async fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let desk = Desk::init(&dir.path().join("desk")).unwrap();
        let inventory = desk.inventory().unwrap();
        let bus = EventBus::new(256);
        let store = Arc::new(ArtifactStore::default());
        let publisher = Publisher::new(
            Builder::new(desk.clone()),
            inventory.clone(),
            Arc::clone(&store),
            bus.clone(),
            // These tests read the served XML; encryption has tests of its own.
            BuildOptions {
                encryption: provdesk_core::desk::EncryptionMode::Off,
                ..BuildOptions::default()
            },
        );
        assert!(publisher.rebuild_all().await.published);
        let events = bus.subscribe();
        let watcher =
            Watcher::new(&desk, inventory, publisher, bus, WatcherConfig::default()).unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(watcher.run(shutdown.clone()));
        Fixture {
            _dir: dir,
            desk,
            store,
            events,
            shutdown,
            task,
        }
    }

    impl Fixture {
        /// The next event matching `pick`, within two seconds.
        async fn next_warning(&mut self) -> String {
            self.next(|e| match e {
                Event::Warning { message } => Some(message.clone()),
                _ => None,
            })
            .await
        }

        async fn next<T>(&mut self, pick: impl Fn(&Event) -> Option<T>) -> T {
            let wait = async {
                loop {
                    let event = self.events.recv().await.unwrap();
                    if let Some(found) = pick(&event) {
                        return found;
                    }
                }
            };
            tokio::time::timeout(Duration::from_secs(2), wait)
                .await
                .expect("the event within 2 s")
        }

        async fn next_build(&mut self) -> BuildSummary {
            self.next(|e| match e {
                Event::Build(b) => Some(b.clone()),
                _ => None,
            })
            .await
        }

        fn served(&self, name: &str) -> Option<String> {
            match self.store.snapshot().resolve(name) {
                Resolution::Found(f) => Some(String::from_utf8_lossy(&f.body).into_owned()),
                _ => None,
            }
        }

        async fn stop(self) {
            self.shutdown.cancel();
            self.task.await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_profile_edit_is_served_within_two_seconds_and_a_broken_one_is_not() {
        let mut f = fixture().await;
        let global = f.desk.profiles_dir().join("global.toml");
        std::fs::write(&global, "[params]\nP30 = \"ntp.example.org\"\n").unwrap();
        let build = f.next_build().await;
        assert!(build.published, "{:?}", build.diagnostics);
        assert!(f.served("cfg.xml").unwrap().contains("ntp.example.org"));

        // Save via a temp file and a rename, as many editors do, with a syntax error.
        let temp = f.desk.profiles_dir().join(".global.toml.tmp");
        std::fs::write(&temp, "[params\nP30 = \"broken.example.org\"\n").unwrap();
        std::fs::rename(&temp, &global).unwrap();
        let build = f.next_build().await;
        assert!(!build.published);
        assert!(build.diagnostics.iter().any(|d| d.is_error()), "{build:?}");
        assert!(
            f.served("cfg.xml").unwrap().contains("ntp.example.org"),
            "the last good build keeps serving"
        );
        f.stop().await;
    }

    #[tokio::test]
    async fn an_inventory_change_from_another_handle_rebuilds_that_device() {
        let mut f = fixture().await;
        let other = Inventory::open(&f.desk.database_path()).unwrap();
        let mac: Mac = "000b82000042".parse().unwrap();
        let mut device = Device::new(mac, "gxp2170");
        device.profile = Some("office".into());
        device.vars.insert("ext".into(), "242".into());
        device.vars.insert("sip_secret".into(), "x".into());
        other.upsert_device(&device).unwrap();
        let build = f.next_build().await;
        assert!(build.published, "{:?}", build.diagnostics);
        assert!(f.served("cfg000b82000042.xml").unwrap().contains("242"));
        f.stop().await;
    }

    #[tokio::test]
    async fn reading_the_desk_is_not_a_change() {
        let mut f = fixture().await;
        // The build reads every profile: had reads counted, this would rebuild forever.
        let global = f.desk.profiles_dir().join("global.toml");
        std::fs::write(&global, "[params]\nP30 = \"a.example.org\"\n").unwrap();
        assert!(f.next_build().await.published);
        let more = tokio::time::timeout(Duration::from_secs(1), async {
            loop {
                if let Event::Build(_) = &*f.events.recv().await.unwrap() {
                    return;
                }
            }
        });
        assert!(more.await.is_err(), "a build without a change");
        f.stop().await;
    }

    #[tokio::test]
    async fn a_new_listen_address_asks_for_a_restart() {
        let mut f = fixture().await;
        let settings = f.desk.settings_path();
        let text = std::fs::read_to_string(&settings).unwrap();
        std::fs::write(&settings, text.replace("0.0.0.0:8080", "0.0.0.0:8081")).unwrap();
        let message = f.next_warning().await;
        assert!(message.contains("restart provdesk serve"), "{message}");
        assert!(message.contains("server.http"), "{message}");
        // Saved through a temp file and a rename, as editors do.
        let text = std::fs::read_to_string(&settings).unwrap();
        let temp = settings.with_extension("toml.tmp");
        std::fs::write(&temp, text.replace("0.0.0.0:8081", "0.0.0.0:8082")).unwrap();
        std::fs::rename(&temp, &settings).unwrap();
        let message = f.next_warning().await;
        assert!(message.contains("server.http"), "{message}");
        // Limits and encryption are fixed when the servers and the publisher start.
        let text = std::fs::read_to_string(&settings).unwrap();
        let fewer = text.replace(
            "tftp_transfers_per_address = 8",
            "tftp_transfers_per_address = 3",
        );
        assert_ne!(fewer, text, "the sample desk sets the per-address share");
        std::fs::write(&settings, fewer).unwrap();
        let message = f.next_warning().await;
        assert!(message.contains("limits"), "{message}");
        f.stop().await;
    }
}
