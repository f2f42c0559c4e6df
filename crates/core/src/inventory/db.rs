//! `Inventory`: the SQLite store shared by the servers, the CLI and the app.
//!
//! Invariants: one writer connection behind a mutex, so writes from this process never race
//! and each API call is exactly one `BEGIN IMMEDIATE` transaction; two reader connections
//! (`query_only`) so reads never wait for a write in WAL mode; the database file and its
//! `-wal`/`-shm` companions are mode 0600 because overrides may hold passwords; the
//! `device_version` counter in `meta` moves in the same transaction as the device change it
//! announces.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
};

use super::migrate::{self, MigrateError};
use super::rows::{DEVICE_COLUMNS, DeviceRow, FETCH_LOG_COLUMNS, FetchLogRow, encode_maps};
use super::{
    Device, DeviceState, FetchLogEntry, FetchLogQuery, InventoryError, NewFetch, Sighting,
    SightingOutcome, UNKNOWN_MODEL, generate_xml_password, model_problem,
};
use crate::Mac;

/// How many `discovered` rows an inventory keeps before it stops adding more, so a broadcast
/// storm of unknown MACs cannot grow the database without bound.
pub const DEFAULT_DISCOVERY_CAP: usize = 1000;

/// Read connections per file database: enough for the servers and the UI to read while the
/// writer commits, small enough to keep file handles few.
const READERS: usize = 2;

/// How long a connection waits for another process's lock before reporting SQLITE_BUSY.
const BUSY_TIMEOUT: Duration = Duration::from_millis(5000);

/// A handle on the inventory database. Cheap to clone; all clones share the connections and
/// the discovery cap.
#[derive(Clone)]
pub struct Inventory {
    shared: Arc<Shared>,
}

struct Shared {
    /// The database file, or `:memory:`; only used in error messages and `path()`.
    path: PathBuf,
    in_memory: bool,
    writer: Mutex<Connection>,
    /// Empty for an in-memory database, whose one connection then serves reads too.
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    discovery_cap: AtomicUsize,
}

impl Inventory {
    /// Opens (creating if needed, mode 0600) and migrates the database at `path`. The parent
    /// folder must exist.
    pub fn open(path: &Path) -> Result<Inventory, InventoryError> {
        create_private_file(path)?;
        let open_err = |source| InventoryError::Open {
            path: path.to_path_buf(),
            source,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut writer = Connection::open_with_flags(path, flags).map_err(open_err)?;
        configure(&writer, Role::Writer).map_err(open_err)?;
        migrate_or_explain(&mut writer, path)?;
        let readers = (0..READERS)
            .map(|_| {
                let reader = Connection::open_with_flags(path, flags).map_err(open_err)?;
                configure(&reader, Role::Reader).map_err(open_err)?;
                Ok(Mutex::new(reader))
            })
            .collect::<Result<Vec<_>, InventoryError>>()?;
        restrict_companions(path)?;
        Ok(Inventory::from_parts(
            path.to_path_buf(),
            false,
            writer,
            readers,
        ))
    }

    /// A private database that lives as long as its handles; for tests and dry runs.
    pub fn open_in_memory() -> Result<Inventory, InventoryError> {
        let path = PathBuf::from(":memory:");
        let open_err = |source| InventoryError::Open {
            path: path.clone(),
            source,
        };
        let mut conn = Connection::open_in_memory().map_err(open_err)?;
        configure(&conn, Role::Writer).map_err(open_err)?;
        migrate_or_explain(&mut conn, &path)?;
        Ok(Inventory::from_parts(path, true, conn, Vec::new()))
    }

    fn from_parts(
        path: PathBuf,
        in_memory: bool,
        writer: Connection,
        readers: Vec<Mutex<Connection>>,
    ) -> Inventory {
        Inventory {
            shared: Arc::new(Shared {
                path,
                in_memory,
                writer: Mutex::new(writer),
                readers,
                next_reader: AtomicUsize::new(0),
                discovery_cap: AtomicUsize::new(DEFAULT_DISCOVERY_CAP),
            }),
        }
    }

    /// The database file; `None` for an in-memory inventory.
    pub fn path(&self) -> Option<&Path> {
        (!self.shared.in_memory).then_some(self.shared.path.as_path())
    }

    /// Sets how many `discovered` rows may exist before `record_sighting` stops inserting;
    /// shared by every clone of this handle.
    pub fn set_discovery_cap(&self, cap: usize) {
        self.shared.discovery_cap.store(cap, Ordering::Relaxed);
    }

    pub fn discovery_cap(&self) -> usize {
        self.shared.discovery_cap.load(Ordering::Relaxed)
    }

    /// Inserts the device, or updates the inventory fields (model, profile, name, vars,
    /// overrides, state) of an existing row while keeping what was seen of it (first/last
    /// seen, last IP, firmware version, user agent). A new row takes the seen fields given.
    pub fn upsert_device(&self, device: &Device) -> Result<(), InventoryError> {
        const OP: &str = "upsert_device";
        self.write(OP, Some(device.mac), |tx, now| {
            let changed = upsert(tx, device, now, OP, &self.shared.path)?;
            if changed {
                bump_device_version(tx, &self.shared.path)?;
            }
            Ok(())
        })
    }

    /// Upserts every device in one transaction: all are stored or none is. Returns how many
    /// were given.
    pub fn import_devices(&self, devices: &[Device]) -> Result<usize, InventoryError> {
        const OP: &str = "import_devices";
        self.write(OP, None, |tx, now| {
            let mut changed = false;
            for device in devices {
                changed |= upsert(tx, device, now, OP, &self.shared.path)?;
            }
            if changed {
                bump_device_version(tx, &self.shared.path)?;
            }
            Ok(devices.len())
        })
    }

    pub fn get_device(&self, mac: Mac) -> Result<Option<Device>, InventoryError> {
        const OP: &str = "get_device";
        self.read(OP, Some(mac), |conn| select_device(conn, mac))?
            .map(|row| row.decode(&self.shared.path))
            .transpose()
    }

    /// How many devices the inventory holds (discovered ones not counted), without reading
    /// them.
    pub fn count_devices(&self) -> Result<usize, InventoryError> {
        self.read("count_devices", None, |conn| {
            conn.prepare_cached("SELECT count(*) FROM devices WHERE state = 'inventory'")?
                .query_row([], |row| row.get::<_, i64>(0))
        })
        .map(|n| usize::try_from(n).unwrap_or(0))
    }

    /// Every device, inventory and discovered, ordered by MAC.
    pub fn list_devices(&self) -> Result<Vec<Device>, InventoryError> {
        const OP: &str = "list_devices";
        self.read(OP, None, |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {DEVICE_COLUMNS} FROM devices ORDER BY mac"
            ))?;
            let rows = stmt
                .query_map([], DeviceRow::from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?
        .into_iter()
        .map(|row| row.decode(&self.shared.path))
        .collect()
    }

    /// Removes the device; its fetch log stays (history outlives the row). Returns whether a
    /// row was removed.
    pub fn remove_device(&self, mac: Mac) -> Result<bool, InventoryError> {
        const OP: &str = "remove_device";
        self.write(OP, Some(mac), |tx, _| {
            let removed = tx
                .prepare_cached("DELETE FROM devices WHERE mac = ?1")
                .and_then(|mut stmt| stmt.execute([mac.to_string()]))
                .map_err(sql_err(&self.shared.path, OP, Some(mac)))?
                > 0;
            if removed {
                bump_device_version(tx, &self.shared.path)?;
            }
            Ok(removed)
        })
    }

    /// Records that a phone was seen. A known MAC gets its seen fields updated (and its model,
    /// if it had none); an unknown one becomes a `discovered` row unless the cap is reached.
    /// Fields the sighting leaves `None` keep their stored value, and a sighting older than the
    /// stored `last_seen` (batches may arrive out of order) only moves `first_seen` back.
    pub fn record_sighting(&self, sighting: &Sighting) -> Result<SightingOutcome, InventoryError> {
        let cap = i64::try_from(self.discovery_cap()).unwrap_or(i64::MAX);
        self.write("record_sighting", Some(sighting.mac), |tx, now| {
            self.sighting_in(tx, now, sighting, cap)
        })
    }

    /// [`Inventory::record_sighting`] for many phones in one transaction, in order, with one
    /// outcome each. A boot storm's recorder flushes hundreds of sightings at once, and one
    /// commit for each cost more CPU than serving their requests.
    pub fn record_sightings(
        &self,
        sightings: &[Sighting],
    ) -> Result<Vec<SightingOutcome>, InventoryError> {
        if sightings.is_empty() {
            return Ok(Vec::new());
        }
        let cap = i64::try_from(self.discovery_cap()).unwrap_or(i64::MAX);
        self.write("record_sightings", None, |tx, now| {
            sightings
                .iter()
                .map(|sighting| self.sighting_in(tx, now, sighting, cap))
                .collect()
        })
    }

    fn sighting_in(
        &self,
        tx: &Transaction<'_>,
        now: i64,
        sighting: &Sighting,
        cap: i64,
    ) -> Result<SightingOutcome, InventoryError> {
        const OP: &str = "record_sighting";
        let mac = sighting.mac;
        let model = sighting
            .model
            .as_deref()
            .map(|m| m.trim().to_ascii_lowercase())
            .filter(|m| model_problem(m).is_none());
        let path = &self.shared.path;
        let existing = tx
            .prepare_cached("SELECT model, first_seen, last_seen FROM devices WHERE mac = ?1")
            .and_then(|mut stmt| {
                stmt.query_row([mac.to_string()], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, Option<i64>>(1)?,
                        row.get::<_, Option<i64>>(2)?,
                    ))
                })
                .optional()
            })
            .map_err(sql_err(path, OP, Some(mac)))?;
        match existing {
            Some((stored_model, first_seen, last_seen)) => {
                let newest = last_seen.is_none_or(|last| sighting.at >= last);
                let first_seen = first_seen.map_or(sighting.at, |first| first.min(sighting.at));
                let fill_model = model
                    .as_deref()
                    .filter(|_| stored_model.is_empty() || stored_model == UNKNOWN_MODEL);
                let pick = |value: &Option<String>| if newest { value.clone() } else { None };
                tx.prepare_cached(
                    "UPDATE devices SET first_seen = ?2,
                         last_seen = max(coalesce(last_seen, ?3), ?3),
                         last_ip = coalesce(?4, last_ip),
                         firmware_version = coalesce(?5, firmware_version),
                         user_agent = coalesce(?6, user_agent),
                         model = coalesce(?7, model),
                         updated_at = CASE WHEN ?7 IS NULL THEN updated_at ELSE ?8 END
                     WHERE mac = ?1",
                )
                .and_then(|mut stmt| {
                    stmt.execute(params![
                        mac.to_string(),
                        first_seen,
                        sighting.at,
                        pick(&sighting.ip),
                        pick(&sighting.firmware_version),
                        pick(&sighting.user_agent),
                        fill_model,
                        now,
                    ])
                })
                .map_err(sql_err(path, OP, Some(mac)))?;
                if fill_model.is_some() {
                    bump_device_version(tx, &self.shared.path)?;
                }
                Ok(SightingOutcome::Known)
            }
            None => {
                let discovered: i64 = tx
                    .prepare_cached("SELECT count(*) FROM devices WHERE state = 'discovered'")
                    .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)))
                    .map_err(sql_err(path, OP, Some(mac)))?;
                if discovered >= cap {
                    return Ok(SightingOutcome::CapReached);
                }
                tx.prepare_cached(
                    "INSERT INTO devices (mac, model, state, first_seen, last_seen, last_ip,
                         firmware_version, user_agent, created_at, updated_at)
                     VALUES (?1, ?2, 'discovered', ?3, ?3, ?4, ?5, ?6, ?7, ?7)",
                )
                .and_then(|mut stmt| {
                    stmt.execute(params![
                        mac.to_string(),
                        model.as_deref().unwrap_or(UNKNOWN_MODEL),
                        sighting.at,
                        sighting.ip,
                        sighting.firmware_version,
                        sighting.user_agent,
                        now,
                    ])
                })
                .map_err(sql_err(path, OP, Some(mac)))?;
                bump_device_version(tx, &self.shared.path)?;
                Ok(SightingOutcome::Discovered)
            }
        }
    }

    /// Makes a device an inventory device, assigning `profile` when given (otherwise the
    /// stored profile stays). Returns the device as stored.
    pub fn enroll(&self, mac: Mac, profile: Option<&str>) -> Result<Device, InventoryError> {
        const OP: &str = "enroll";
        self.write(OP, Some(mac), |tx, now| {
            let changed = tx
                .prepare_cached(
                    "UPDATE devices SET state = 'inventory', profile = coalesce(?2, profile), updated_at = ?3,
                         xml_password = coalesce(xml_password, ?4)
                     WHERE mac = ?1 AND (state IS NOT 'inventory' OR profile IS NOT coalesce(?2, profile))",
                )
                .and_then(|mut stmt| {
                    stmt.execute(params![mac.to_string(), profile, now, generate_xml_password()])
                })
                .map_err(sql_err(&self.shared.path, OP, Some(mac)))?
                > 0;
            if changed {
                bump_device_version(tx, &self.shared.path)?;
            }
            let row = select_device(tx, mac).map_err(sql_err(&self.shared.path, OP, Some(mac)))?;
            match row {
                Some(row) => row.decode(&self.shared.path),
                None => Err(InventoryError::UnknownDevice { operation: OP, mac }),
            }
        })
    }

    /// Gives every inventory device among `macs` that has no XML password a generated one,
    /// in one transaction, and returns the password of each of them as stored. For devices
    /// from before passwords existed, on the first build that encrypts. It does not move the
    /// device version: the build that asks is the one that uses the password.
    pub fn ensure_xml_passwords(
        &self,
        macs: &[Mac],
    ) -> Result<BTreeMap<Mac, String>, InventoryError> {
        const OP: &str = "ensure_xml_passwords";
        let path = &self.shared.path;
        self.write(OP, None, |tx, now| {
            let mut stored = BTreeMap::new();
            for mac in macs {
                let err = sql_err(path, OP, Some(*mac));
                tx.prepare_cached(
                    "UPDATE devices SET xml_password = ?2, updated_at = ?3
                     WHERE mac = ?1 AND state = 'inventory' AND xml_password IS NULL",
                )
                .and_then(|mut stmt| {
                    stmt.execute(params![mac.to_string(), generate_xml_password(), now])
                })
                .map_err(&err)?;
                let password: Option<String> = tx
                    .prepare_cached(
                        "SELECT xml_password FROM devices WHERE mac = ?1 AND state = 'inventory'",
                    )
                    .and_then(|mut stmt| {
                        stmt.query_row([mac.to_string()], |row| row.get(0))
                            .optional()
                    })
                    .map_err(&err)?
                    .flatten();
                if let Some(password) = password {
                    stored.insert(*mac, password);
                }
            }
            Ok(stored)
        })
    }

    /// Appends a batch of fetches in one transaction. Their `id`s are ignored.
    pub fn append_fetch_log(&self, entries: &[FetchLogEntry]) -> Result<(), InventoryError> {
        self.append_fetches(entries.iter().map(FetchLogEntry::as_new))
    }

    /// Appends fetches in one transaction, grouped by device: each device's fetches keep
    /// their order (and so their ids do), and the (mac, ts) index takes them in its own order.
    /// In a boot storm, with a thousand phones' requests interleaved, that made a row about a
    /// quarter cheaper than inserting them as they came (each index page is visited once per
    /// batch while it is hot, rather than once per row).
    pub fn append_fetches<'a>(
        &self,
        fetches: impl IntoIterator<Item = NewFetch<'a>>,
    ) -> Result<(), InventoryError> {
        const OP: &str = "append_fetches";
        let fetches = fetches.into_iter();
        // Sized by the upper bound: a filtered iterator's lower bound is 0, and growing a Vec
        // of 20,000 rows by doubling showed up in a storm's profile.
        let (at_least, at_most) = fetches.size_hint();
        let mut all = Vec::with_capacity(at_most.unwrap_or(at_least));
        all.extend(fetches);
        if all.is_empty() {
            return Ok(());
        }
        // Stable: a device's fetches stay in the order they were reported. References are
        // sorted, not the rows, which are ten times their size.
        let mut in_order: Vec<&NewFetch<'a>> = all.iter().collect();
        in_order.sort_by_key(|fetch| fetch.mac);
        self.write(OP, None, |tx, _| {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO fetch_log (ts, protocol, peer, name, mac, user_agent, status,
                         reason, bytes, duration_ms, artifact_hash)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )
                .map_err(sql_err(&self.shared.path, OP, None))?;
            // One buffer for every peer: sized for the longest address, so it never grows.
            let mut peer = String::with_capacity(64);
            for fetch in in_order {
                peer.clear();
                fetch.peer.write_to(&mut peer);
                let mac = fetch.mac.map(|m| m.hex());
                stmt.execute(params![
                    fetch.ts,
                    fetch.protocol,
                    peer,
                    fetch.name,
                    mac.as_deref(),
                    fetch.user_agent,
                    fetch.status,
                    fetch.reason,
                    fetch.bytes,
                    fetch.duration_ms,
                    fetch.artifact_hash,
                ])
                .map_err(sql_err(&self.shared.path, OP, fetch.mac))?;
            }
            Ok(())
        })
    }

    /// Fetch log entries matching `query`, newest first (ties in the order they were logged,
    /// latest first).
    pub fn fetch_log(&self, query: &FetchLogQuery) -> Result<Vec<FetchLogEntry>, InventoryError> {
        const OP: &str = "fetch_log";
        let sql = fetch_log_sql(query);
        // SQLite reads a negative LIMIT as "no limit".
        let limit = query
            .limit
            .map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
        let mac = query.mac.map(|m| m.to_string());
        self.read(OP, query.mac, |conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut named: Vec<(&str, &dyn rusqlite::ToSql)> = vec![(":limit", &limit)];
            if let Some(mac) = &mac {
                named.push((":mac", mac));
            }
            if let Some(since) = &query.since {
                named.push((":since", since));
            }
            let rows = stmt
                .query_map(named.as_slice(), FetchLogRow::from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?
        .into_iter()
        .map(|row| row.decode(&self.shared.path))
        .collect()
    }

    /// The newest `depth` fetch-log entries of every device in the devices table, newest
    /// first, in one query: what a list of a thousand devices needs for its status column
    /// without a query per row. Each device's entries come from the `(mac, ts)` index, so the
    /// cost follows the devices and `depth`, not the length of the whole log.
    pub fn recent_fetches_by_device(
        &self,
        depth: usize,
    ) -> Result<BTreeMap<Mac, Vec<FetchLogEntry>>, InventoryError> {
        const OP: &str = "recent_fetches_by_device";
        let depth = i64::try_from(depth).unwrap_or(i64::MAX);
        let columns = FETCH_LOG_COLUMNS
            .split(", ")
            .map(|c| format!("f.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {columns} FROM devices AS d JOIN fetch_log AS f ON f.id IN \
             (SELECT id FROM fetch_log WHERE mac = d.mac ORDER BY ts DESC, id DESC LIMIT :depth) \
             ORDER BY f.mac, f.ts DESC, f.id DESC"
        );
        let rows = self.read(OP, None, |conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt
                .query_map(&[(":depth", &depth)], FetchLogRow::from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?;
        let mut out: BTreeMap<Mac, Vec<FetchLogEntry>> = BTreeMap::new();
        for row in rows {
            let entry = row.decode(&self.shared.path)?;
            if let Some(mac) = entry.mac {
                out.entry(mac).or_default().push(entry);
            }
        }
        Ok(out)
    }

    /// A counter that grows whenever what a device *is* changes: a row inserted or removed,
    /// its inventory fields changed, a discovered row added or enrolled, a model filled in by a
    /// sighting. Seen fields (`last_seen`, `last_ip`, …) do not move it: they change on every
    /// fetch and a watcher that rebuilds on this counter would otherwise rebuild per request.
    /// It is stored in `meta`, written in the same transaction as the change, so it also sees
    /// writes from other processes (`PRAGMA data_version` would miss this connection's own).
    pub fn data_version(&self) -> Result<i64, InventoryError> {
        const OP: &str = "data_version";
        self.read(OP, None, |conn| {
            conn.prepare_cached("SELECT value FROM meta WHERE key = 'device_version'")?
                .query_row([], |row| row.get::<_, i64>(0))
                .optional()
                .map(Option::unwrap_or_default)
        })
    }

    /// Runs `f` in one IMMEDIATE transaction on the writer with the current time in ms;
    /// commits when it returns `Ok`, rolls back otherwise.
    pub(super) fn write<T>(
        &self,
        operation: &'static str,
        mac: Option<Mac>,
        f: impl FnOnce(&Transaction<'_>, i64) -> Result<T, InventoryError>,
    ) -> Result<T, InventoryError> {
        let err = sql_err(&self.shared.path, operation, mac);
        let mut conn = lock(&self.shared.writer);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&err)?;
        let value = f(&tx, now_ms())?;
        tx.commit().map_err(err)?;
        Ok(value)
    }

    /// The error for a failed statement of `operation` (about `mac`), naming this database.
    pub(super) fn sql_error(
        &self,
        operation: &'static str,
        mac: Option<Mac>,
        source: rusqlite::Error,
    ) -> InventoryError {
        sql_err(&self.shared.path, operation, mac)(source)
    }

    /// Runs `f` on a free reader (or the in-memory database's one connection).
    pub(super) fn read<T>(
        &self,
        operation: &'static str,
        mac: Option<Mac>,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, InventoryError> {
        let err = sql_err(&self.shared.path, operation, mac);
        let readers = &self.shared.readers;
        if readers.is_empty() {
            return f(&lock(&self.shared.writer)).map_err(err);
        }
        for reader in readers {
            match reader.try_lock() {
                Ok(conn) => return f(&conn).map_err(err),
                Err(TryLockError::Poisoned(poisoned)) => {
                    return f(&poisoned.into_inner()).map_err(err);
                }
                Err(TryLockError::WouldBlock) => {}
            }
        }
        // All busy: queue on one of them, spreading the waiters.
        let index = self.shared.next_reader.fetch_add(1, Ordering::Relaxed) % readers.len();
        f(&lock(&readers[index])).map_err(err)
    }
}

impl std::fmt::Debug for Inventory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inventory")
            .field("path", &self.shared.path)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Writer,
    Reader,
}

/// The query behind [`Inventory::fetch_log`], built per filter rather than as
/// `?1 IS NULL OR mac = ?1` so SQLite can use the (mac, ts) index. Without a MAC it sorts
/// the whole log; the tools only ever ask per device.
fn fetch_log_sql(query: &FetchLogQuery) -> String {
    let mut sql = format!("SELECT {FETCH_LOG_COLUMNS} FROM fetch_log WHERE 1");
    if query.mac.is_some() {
        sql.push_str(" AND mac = :mac");
    }
    if query.since.is_some() {
        sql.push_str(" AND ts >= :since");
    }
    sql.push_str(" ORDER BY ts DESC, id DESC LIMIT :limit");
    sql
}

/// The PRAGMAs every connection gets (see reference/ecosystem.md §A.4).
fn configure(conn: &Connection, role: Role) -> rusqlite::Result<()> {
    // First, so that even switching to WAL waits for another process instead of failing.
    conn.busy_timeout(BUSY_TIMEOUT)?;
    if role == Role::Writer {
        // Persistent in the file; answers `memory` for an in-memory database, which is fine.
        let _mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        // 16 MiB of page cache (the default is 2 MB): a boot storm's fetch-log batch touches
        // most pages of the (mac, ts) index, and with the default cache the writer re-read
        // them and spilled dirty pages to the WAL in the middle of each transaction.
        conn.pragma_update(None, "cache_size", -16384)?;
        // Checkpoint every 10,000 WAL pages (40 MB) rather than 1,000. A storm's commit
        // writes about 2,000 pages, so the default copied every commit into the database at
        // once; spaced out, an index page rewritten by several commits is copied once, and
        // the fetch log cost about 0.9 us a row less. SQLite still checkpoints and removes
        // the WAL when the last connection closes.
        conn.pragma_update(None, "wal_autocheckpoint", 10_000)?;
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    if role == Role::Reader {
        // Readers must never write: the single writer is what keeps transactions serial.
        conn.pragma_update(None, "query_only", "ON")?;
    }
    Ok(())
}

fn migrate_or_explain(conn: &mut Connection, path: &Path) -> Result<(), InventoryError> {
    migrate::migrate(conn).map(drop).map_err(|e| match e {
        MigrateError::TooNew { found, known } => InventoryError::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            known,
        },
        MigrateError::Failed { version, source } => InventoryError::Migration {
            path: path.to_path_buf(),
            version,
            source,
        },
    })
}

/// Creates the database file with mode 0600 before SQLite sees it (SQLite would use the
/// umask, typically 0644), and tightens an existing file: overrides may hold passwords.
fn create_private_file(path: &Path) -> Result<(), InventoryError> {
    let io_err = |source| InventoryError::Io {
        path: path.to_path_buf(),
        source,
    };
    // An existing file is only made private, never opened: closing any descriptor of it
    // drops every POSIX lock this process holds on it, including those of SQLite handles
    // already open (the app keeps one and opens another per start of the servers), and
    // another process could then take itself for the last user of the database.
    if path.exists() {
        return set_private(path).map_err(io_err);
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map_err(io_err)?;
    set_private(path).map_err(io_err)
}

/// SQLite gives `-wal` and `-shm` the main file's mode when it creates them; this covers
/// companions left by an older, laxer file.
fn restrict_companions(path: &Path) -> Result<(), InventoryError> {
    for suffix in ["-wal", "-shm"] {
        let mut name = path.as_os_str().to_os_string();
        name.push(suffix);
        let companion = PathBuf::from(name);
        if companion.exists() {
            set_private(&companion).map_err(|source| InventoryError::Io {
                path: companion.clone(),
                source,
            })?;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn set_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn set_private(_path: &Path) -> std::io::Result<()> {
    // Other platforms' per-user profile folders already keep the desk private.
    Ok(())
}

/// Locks a connection, recovering from a panic in another thread: SQLite rolled back that
/// thread's transaction when it was dropped, so the connection is still consistent.
fn lock(mutex: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn sql_err(
    path: &Path,
    operation: &'static str,
    mac: Option<Mac>,
) -> impl Fn(rusqlite::Error) -> InventoryError {
    move |source| InventoryError::Sql {
        path: path.to_path_buf(),
        operation,
        mac,
        source,
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn select_device(conn: &Connection, mac: Mac) -> rusqlite::Result<Option<DeviceRow>> {
    conn.prepare_cached(&format!(
        "SELECT {DEVICE_COLUMNS} FROM devices WHERE mac = ?1"
    ))?
    .query_row([mac.to_string()], DeviceRow::from_row)
    .optional()
}

/// Inserts or updates one device; returns whether the row changed (an identical re-import
/// changes nothing and so does not move the device version).
fn upsert(
    tx: &Transaction<'_>,
    device: &Device,
    now: i64,
    operation: &'static str,
    path: &Path,
) -> Result<bool, InventoryError> {
    if let Some(reason) = device.problem() {
        return Err(InventoryError::InvalidDevice {
            operation,
            mac: device.mac,
            reason,
        });
    }
    let (vars, overrides) = encode_maps(device);
    let changed = tx
        .prepare_cached(
            "INSERT INTO devices (mac, model, profile, name, vars, overrides, state, first_seen,
                 last_seen, last_ip, firmware_version, user_agent, created_at, updated_at,
                 xml_password)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13,
                 coalesce(?14, ?15))
             ON CONFLICT (mac) DO UPDATE SET
                 model = excluded.model, profile = excluded.profile, name = excluded.name,
                 vars = excluded.vars, overrides = excluded.overrides, state = excluded.state,
                 updated_at = excluded.updated_at,
                 xml_password = coalesce(?14, devices.xml_password, ?15)
             WHERE (model, profile, name, vars, overrides, state, xml_password) IS NOT
                   (excluded.model, excluded.profile, excluded.name, excluded.vars,
                    excluded.overrides, excluded.state, coalesce(?14, devices.xml_password, ?15))",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                device.mac.to_string(),
                device.model,
                device.profile,
                device.name,
                vars,
                overrides,
                device.state.as_str(),
                device.first_seen,
                device.last_seen,
                device.last_ip,
                device.firmware_version,
                device.user_agent,
                now,
                device.xml_password,
                // A password for every managed device, from the moment it is added: the given
                // one, else the stored one, else this fresh one.
                (device.state == DeviceState::Inventory).then(generate_xml_password),
            ])
        })
        .map_err(sql_err(path, operation, Some(device.mac)))?;
    Ok(changed > 0)
}

fn bump_device_version(tx: &Transaction<'_>, path: &Path) -> Result<(), InventoryError> {
    tx.prepare_cached(
        "INSERT INTO meta (key, value) VALUES ('device_version', 1)
         ON CONFLICT (key) DO UPDATE SET value = value + 1",
    )
    .and_then(|mut stmt| stmt.execute([]))
    .map(drop)
    .map_err(sql_err(path, "device_version", None))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::mpsc;

    use super::*;
    use crate::inventory::DeviceState;

    fn mac(n: u32) -> Mac {
        let b = n.to_be_bytes();
        Mac::from_bytes([0x00, 0x0b, b[0], b[1], b[2], b[3]])
    }

    fn temp_inventory() -> (tempfile::TempDir, Inventory) {
        let dir = tempfile::tempdir().unwrap();
        let inventory = Inventory::open(&dir.path().join("provdesk.db")).unwrap();
        (dir, inventory)
    }

    fn device(n: u32) -> Device {
        let mut d = Device::new(mac(n), "GXP2170");
        d.profile = Some("office".into());
        d.name = Some(format!("Desk {n}"));
        d.vars.insert("ext".into(), format!("{}", 100 + n));
        d.overrides
            .insert("P47".parse().unwrap(), "pbx.example.com".into());
        // Given, so what is read back equals what was written (the inventory would otherwise
        // generate one).
        d.xml_password = Some(format!("pw{n}"));
        d
    }

    fn sighting(n: u32, at: i64) -> Sighting {
        Sighting {
            model: Some("GXP2135".into()),
            firmware_version: Some("1.0.11.3".into()),
            ip: Some("192.168.1.20".into()),
            user_agent: Some("Grandstream Model HW GXP2135 SW 1.0.11.3".into()),
            ..Sighting::new(mac(n), at)
        }
    }

    fn entry(ts: i64, mac: Option<Mac>, name: &str) -> FetchLogEntry {
        FetchLogEntry {
            id: None,
            ts,
            protocol: "http".into(),
            peer: "192.168.1.20:5060".into(),
            name: name.into(),
            mac,
            user_agent: None,
            status: "200".into(),
            reason: None,
            bytes: 1234,
            duration_ms: 5,
            artifact_hash: Some("abc".into()),
        }
    }

    /// Stores `devices` in a fresh file inventory and compares what `list_devices` returns.
    fn check(devices: &[Device], expected: &[Device]) {
        let (_dir, inventory) = temp_inventory();
        for d in devices {
            inventory.upsert_device(d).unwrap();
        }
        assert_eq!(inventory.list_devices().unwrap(), expected);
    }

    #[test]
    fn upsert_then_get_round_trips() {
        let (_dir, inventory) = temp_inventory();
        let d = device(1);
        inventory.upsert_device(&d).unwrap();
        assert_eq!(inventory.get_device(mac(1)).unwrap(), Some(d));
        assert_eq!(inventory.get_device(mac(2)).unwrap(), None);
    }

    #[test]
    fn the_count_is_of_inventory_devices_only() {
        let (_dir, inv) = temp_inventory();
        assert_eq!(inv.count_devices().unwrap(), 0);
        inv.upsert_device(&device(1)).unwrap();
        inv.upsert_device(&device(2)).unwrap();
        // A phone seen but not enrolled is discovered, not counted.
        inv.record_sighting(&sighting(3, 10)).unwrap();
        assert_eq!(inv.count_devices().unwrap(), 2);
        assert_eq!(inv.list_devices().unwrap().len(), 3);
    }

    #[test]
    fn list_is_ordered_by_mac() {
        check(
            &[device(3), device(1), device(2)],
            &[device(1), device(2), device(3)],
        );
    }

    #[test]
    fn upsert_updates_inventory_fields_and_keeps_seen_fields() {
        let (_dir, inventory) = temp_inventory();
        inventory.upsert_device(&device(1)).unwrap();
        inventory.record_sighting(&sighting(1, 1_000)).unwrap();
        let mut changed = device(1);
        changed.model = "gxp2135".into();
        changed.profile = None;
        changed.vars = BTreeMap::from([("room".into(), "12".into())]);
        changed.last_ip = Some("10.0.0.1".into());
        inventory.upsert_device(&changed).unwrap();
        let stored = inventory.get_device(mac(1)).unwrap().unwrap();
        assert_eq!(stored.model, "gxp2135");
        assert_eq!(stored.profile, None);
        assert_eq!(stored.vars, changed.vars);
        assert_eq!(
            stored.last_ip.as_deref(),
            Some("192.168.1.20"),
            "seen fields are kept"
        );
        assert_eq!(
            (stored.first_seen, stored.last_seen),
            (Some(1_000), Some(1_000))
        );
    }

    #[test]
    fn a_new_row_takes_the_seen_fields_given() {
        let mut d = device(1);
        d.first_seen = Some(5);
        d.last_ip = Some("10.0.0.9".into());
        check(std::slice::from_ref(&d), std::slice::from_ref(&d));
    }

    #[test]
    fn invalid_devices_are_refused() {
        let (_dir, inventory) = temp_inventory();
        let mut d = device(1);
        d.model = "GXP2170".into();
        let err = inventory.upsert_device(&d).unwrap_err();
        assert!(
            err.to_string()
                .contains("upsert_device: device 000b00000001: invalid model"),
            "{err}"
        );
        assert!(inventory.list_devices().unwrap().is_empty());
    }

    #[test]
    fn remove_reports_whether_a_row_went() {
        let (_dir, inventory) = temp_inventory();
        inventory.upsert_device(&device(1)).unwrap();
        assert!(inventory.remove_device(mac(1)).unwrap());
        assert!(!inventory.remove_device(mac(1)).unwrap());
        assert_eq!(inventory.get_device(mac(1)).unwrap(), None);
    }

    #[test]
    fn import_is_all_or_nothing() {
        let (_dir, inventory) = temp_inventory();
        let mut bad = device(3);
        bad.vars.insert("bad name".into(), "x".into());
        let err = inventory
            .import_devices(&[device(1), device(2), bad])
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("import_devices: device 000b00000003"),
            "{err}"
        );
        assert!(
            inventory.list_devices().unwrap().is_empty(),
            "nothing was stored"
        );
        assert_eq!(
            inventory.import_devices(&[device(1), device(2)]).unwrap(),
            2
        );
        assert_eq!(inventory.list_devices().unwrap().len(), 2);
    }

    #[test]
    fn sighting_of_a_known_device_updates_seen_fields() {
        let (_dir, inventory) = temp_inventory();
        let mut d = device(1);
        d.model = UNKNOWN_MODEL.into();
        inventory.upsert_device(&d).unwrap();
        assert_eq!(
            inventory.record_sighting(&sighting(1, 2_000)).unwrap(),
            SightingOutcome::Known
        );
        let stored = inventory.get_device(mac(1)).unwrap().unwrap();
        assert_eq!(stored.model, "gxp2135", "an unknown model is filled in");
        assert_eq!(stored.state, DeviceState::Inventory);
        assert_eq!(
            (stored.first_seen, stored.last_seen),
            (Some(2_000), Some(2_000))
        );
        assert_eq!(stored.firmware_version.as_deref(), Some("1.0.11.3"));

        // A later sighting with another model and partial data: model kept, gaps kept.
        let later = Sighting {
            model: Some("GXP2170".into()),
            ip: Some("192.168.1.21".into()),
            ..Sighting::new(mac(1), 3_000)
        };
        inventory.record_sighting(&later).unwrap();
        let stored = inventory.get_device(mac(1)).unwrap().unwrap();
        assert_eq!(stored.model, "gxp2135");
        assert_eq!(stored.last_ip.as_deref(), Some("192.168.1.21"));
        assert_eq!(stored.firmware_version.as_deref(), Some("1.0.11.3"));
        assert_eq!(
            (stored.first_seen, stored.last_seen),
            (Some(2_000), Some(3_000))
        );

        // An older sighting arriving late moves first_seen back and nothing else.
        let early = Sighting {
            ip: Some("10.9.9.9".into()),
            ..Sighting::new(mac(1), 1_000)
        };
        inventory.record_sighting(&early).unwrap();
        let stored = inventory.get_device(mac(1)).unwrap().unwrap();
        assert_eq!(
            (stored.first_seen, stored.last_seen),
            (Some(1_000), Some(3_000))
        );
        assert_eq!(stored.last_ip.as_deref(), Some("192.168.1.21"));
    }

    #[test]
    fn sighting_of_an_unknown_device_discovers_it_up_to_the_cap() {
        let (_dir, inventory) = temp_inventory();
        inventory.set_discovery_cap(2);
        assert_eq!(
            inventory.record_sighting(&sighting(1, 10)).unwrap(),
            SightingOutcome::Discovered
        );
        let no_model = Sighting::new(mac(2), 20);
        assert_eq!(
            inventory.record_sighting(&no_model).unwrap(),
            SightingOutcome::Discovered
        );
        assert_eq!(
            inventory.record_sighting(&sighting(3, 30)).unwrap(),
            SightingOutcome::CapReached
        );
        assert_eq!(inventory.get_device(mac(3)).unwrap(), None);
        // Known devices still update at the cap, and inventory rows do not count.
        assert_eq!(
            inventory.record_sighting(&sighting(2, 40)).unwrap(),
            SightingOutcome::Known
        );
        inventory.upsert_device(&device(9)).unwrap();

        let first = inventory.get_device(mac(1)).unwrap().unwrap();
        assert_eq!(first.state, DeviceState::Discovered);
        assert_eq!(first.model, "gxp2135");
        assert_eq!((first.first_seen, first.last_seen), (Some(10), Some(10)));
        assert_eq!(
            first.user_agent.as_deref(),
            Some("Grandstream Model HW GXP2135 SW 1.0.11.3")
        );
        let second = inventory.get_device(mac(2)).unwrap().unwrap();
        assert_eq!(
            second.model, "gxp2135",
            "the later sighting filled the unknown model"
        );

        inventory.enroll(mac(1), Some("office")).unwrap();
        assert_eq!(
            inventory.record_sighting(&sighting(3, 50)).unwrap(),
            SightingOutcome::Discovered
        );
    }

    #[test]
    fn a_batch_of_sightings_is_one_transaction_with_an_outcome_each() {
        let (_dir, inventory) = temp_inventory();
        inventory.set_discovery_cap(2);
        inventory.upsert_device(&device(9)).unwrap();
        let before = inventory.data_version().unwrap();
        let batch = [
            sighting(9, 10),
            sighting(1, 11),
            sighting(2, 12),
            // The cap counts the rows this batch inserted.
            sighting(3, 13),
            sighting(1, 14),
        ];
        assert_eq!(
            inventory.record_sightings(&batch).unwrap(),
            [
                SightingOutcome::Known,
                SightingOutcome::Discovered,
                SightingOutcome::Discovered,
                SightingOutcome::CapReached,
                SightingOutcome::Known,
            ]
        );
        let first = inventory.get_device(mac(1)).unwrap().unwrap();
        assert_eq!((first.first_seen, first.last_seen), (Some(11), Some(14)));
        assert_eq!(
            inventory.get_device(mac(9)).unwrap().unwrap().last_seen,
            Some(10)
        );
        assert_eq!(inventory.get_device(mac(3)).unwrap(), None);
        assert_ne!(inventory.data_version().unwrap(), before);
        assert_eq!(inventory.record_sightings(&[]).unwrap(), []);
    }

    #[test]
    fn cap_is_shared_by_clones_and_defaults_to_1000() {
        let (_dir, inventory) = temp_inventory();
        assert_eq!(inventory.discovery_cap(), DEFAULT_DISCOVERY_CAP);
        let clone = inventory.clone();
        clone.set_discovery_cap(0);
        assert_eq!(
            inventory.record_sighting(&sighting(1, 1)).unwrap(),
            SightingOutcome::CapReached
        );
    }

    #[test]
    fn enroll_turns_discovered_into_inventory() {
        let (_dir, inventory) = temp_inventory();
        inventory.record_sighting(&sighting(1, 10)).unwrap();
        let enrolled = inventory.enroll(mac(1), Some("lobby")).unwrap();
        assert_eq!(enrolled.state, DeviceState::Inventory);
        assert_eq!(enrolled.profile.as_deref(), Some("lobby"));
        assert_eq!(enrolled.last_seen, Some(10));
        let again = inventory.enroll(mac(1), None).unwrap();
        assert_eq!(
            again.profile.as_deref(),
            Some("lobby"),
            "None keeps the profile"
        );
        let err = inventory.enroll(mac(2), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "enroll: device 000b00000002 is not in the inventory"
        );
    }

    #[test]
    fn data_version_moves_on_device_changes_only() {
        let (_dir, inventory) = temp_inventory();
        let v0 = inventory.data_version().unwrap();
        inventory.upsert_device(&device(1)).unwrap();
        let v1 = inventory.data_version().unwrap();
        assert!(v1 > v0);
        inventory.upsert_device(&device(1)).unwrap();
        inventory.import_devices(&[device(1)]).unwrap();
        assert_eq!(
            inventory.data_version().unwrap(),
            v1,
            "identical writes change nothing"
        );
        inventory.record_sighting(&sighting(1, 5)).unwrap();
        inventory
            .append_fetch_log(&[entry(5, Some(mac(1)), "cfg000b00000001.xml")])
            .unwrap();
        assert_eq!(
            inventory.data_version().unwrap(),
            v1,
            "seen fields and the log do not count"
        );
        inventory.record_sighting(&sighting(2, 5)).unwrap();
        let v2 = inventory.data_version().unwrap();
        assert!(v2 > v1, "a discovery counts");
        inventory.enroll(mac(2), Some("office")).unwrap();
        let v3 = inventory.data_version().unwrap();
        assert!(v3 > v2);
        inventory.remove_device(mac(2)).unwrap();
        assert!(inventory.data_version().unwrap() > v3);
    }

    #[test]
    fn data_version_sees_another_process() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("provdesk.db");
        let watcher = Inventory::open(&path).unwrap();
        let other = Inventory::open(&path).unwrap();
        let before = watcher.data_version().unwrap();
        other.upsert_device(&device(1)).unwrap();
        assert!(watcher.data_version().unwrap() > before);
        assert_eq!(watcher.get_device(mac(1)).unwrap(), Some(device(1)));
    }

    #[test]
    fn a_devices_fetch_log_is_read_through_its_index_without_sorting() {
        let (_dir, inventory) = temp_inventory();
        let sql = fetch_log_sql(&FetchLogQuery {
            mac: Some(mac(1)),
            limit: Some(20),
            ..FetchLogQuery::default()
        });
        let plan: Vec<String> = lock(&inventory.shared.writer)
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map(
                rusqlite::named_params! {":mac": mac(1).to_string(), ":limit": 20},
                |row| row.get::<_, String>(3),
            )
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter()
                .any(|step| step.contains("USING INDEX fetch_log_mac_ts")),
            "{plan:?}"
        );
        assert!(
            !plan.iter().any(|step| step.contains("TEMP B-TREE")),
            "{plan:?}"
        );
    }

    #[test]
    fn recent_fetches_of_every_device_match_a_query_per_device() {
        let (_dir, inventory) = temp_inventory();
        inventory.upsert_device(&device(1)).unwrap();
        inventory.upsert_device(&device(2)).unwrap();
        let mut log = Vec::new();
        for ts in 0..10 {
            log.push(entry(ts, Some(mac(1)), &format!("a{ts}")));
            log.push(entry(ts, Some(mac(3)), "not in the inventory"));
            log.push(entry(ts, None, "no mac"));
        }
        log.push(entry(5, Some(mac(2)), "b"));
        inventory.append_fetch_log(&log).unwrap();
        let recent = inventory.recent_fetches_by_device(4).unwrap();
        assert_eq!(recent.keys().copied().collect::<Vec<_>>(), [mac(1), mac(2)]);
        for (mac, entries) in &recent {
            let one = inventory
                .fetch_log(&FetchLogQuery {
                    mac: Some(*mac),
                    limit: Some(4),
                    ..FetchLogQuery::default()
                })
                .unwrap();
            assert_eq!(entries, &one);
        }
        assert_eq!(recent[&mac(1)][0].name, "a9");
    }

    #[test]
    fn a_batch_is_stored_grouped_by_device_in_each_devices_order() {
        let (_dir, inventory) = temp_inventory();
        // Two phones interleaved, with equal timestamps: ties must keep the reported order.
        inventory
            .append_fetch_log(&[
                entry(100, Some(mac(2)), "b1"),
                entry(100, Some(mac(1)), "a1"),
                entry(100, None, "x1"),
                entry(100, Some(mac(2)), "b2"),
                entry(100, Some(mac(1)), "a2"),
                entry(100, None, "x2"),
            ])
            .unwrap();
        let all = inventory.fetch_log(&FetchLogQuery::default()).unwrap();
        let by_id: Vec<(i64, &str)> = {
            let mut rows: Vec<(i64, &str)> = all
                .iter()
                .map(|e| (e.id.unwrap(), e.name.as_str()))
                .collect();
            rows.sort();
            rows
        };
        let names: Vec<&str> = by_id.iter().map(|(_, name)| *name).collect();
        assert_eq!(names, ["x1", "x2", "a1", "a2", "b1", "b2"]);
        let newest_first = |n| -> Vec<String> {
            inventory
                .fetch_log(&FetchLogQuery {
                    mac: Some(mac(n)),
                    ..FetchLogQuery::default()
                })
                .unwrap()
                .into_iter()
                .map(|e| e.name)
                .collect()
        };
        assert_eq!(newest_first(1), ["a2", "a1"]);
        assert_eq!(newest_first(2), ["b2", "b1"]);
    }

    #[test]
    fn fetch_log_filters_newest_first() {
        let (_dir, inventory) = temp_inventory();
        let mut tftp = entry(300, None, "cfg.xml");
        tftp.protocol = "tftp".into();
        tftp.status = "tftp-error-1".into();
        tftp.reason = Some("file not found".into());
        inventory
            .append_fetch_log(&[
                entry(100, Some(mac(1)), "cfg000b00000001"),
                entry(200, Some(mac(2)), "cfg000b00000002.xml"),
                tftp.clone(),
                entry(400, Some(mac(1)), "cfg000b00000001.xml"),
            ])
            .unwrap();
        inventory.append_fetch_log(&[]).unwrap();
        let names = |query: FetchLogQuery| -> Vec<String> {
            inventory
                .fetch_log(&query)
                .unwrap()
                .into_iter()
                .map(|e| e.name)
                .collect()
        };
        assert_eq!(
            names(FetchLogQuery::default()),
            [
                "cfg000b00000001.xml",
                "cfg.xml",
                "cfg000b00000002.xml",
                "cfg000b00000001"
            ]
        );
        let of_one = FetchLogQuery {
            mac: Some(mac(1)),
            ..FetchLogQuery::default()
        };
        assert_eq!(names(of_one), ["cfg000b00000001.xml", "cfg000b00000001"]);
        let since = FetchLogQuery {
            since: Some(200),
            limit: Some(2),
            ..FetchLogQuery::default()
        };
        assert_eq!(names(since), ["cfg000b00000001.xml", "cfg.xml"]);

        let stored = inventory
            .fetch_log(&FetchLogQuery {
                since: Some(300),
                ..FetchLogQuery::default()
            })
            .unwrap();
        let back = stored.iter().find(|e| e.ts == 300).unwrap();
        assert!(back.id.is_some());
        assert_eq!(
            FetchLogEntry {
                id: None,
                ..back.clone()
            },
            tftp
        );
    }

    #[test]
    fn corrupt_json_column_is_an_error_naming_mac_and_column() {
        let (dir, inventory) = temp_inventory();
        inventory.upsert_device(&device(1)).unwrap();
        let raw = Connection::open(dir.path().join("provdesk.db")).unwrap();
        raw.execute("UPDATE devices SET overrides = '{\"P47\": 5}'", [])
            .unwrap();
        let err = inventory.list_devices().unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("device 000b00000001: column `overrides` is corrupt"),
            "{text}"
        );
        assert!(inventory.get_device(mac(1)).is_err());
    }

    /// The app keeps the desk's inventory open and opens it again for each start of the
    /// servers, while a technician may read the file with the `sqlite3` tool. Closing any
    /// descriptor of the file drops every POSIX lock this process holds on it, so a second
    /// open must not open and close the database file itself: the `sqlite3` tool would then
    /// take itself for the last user, checkpoint and remove the WAL under the open handles,
    /// and the next open failed with "disk I/O error".
    #[test]
    fn a_second_open_keeps_the_first_ones_locks_for_other_processes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("provdesk.db");
        let session = Inventory::open(&path).unwrap();
        session
            .upsert_device(&Device::new("000b82000001".parse().unwrap(), "gxp2170"))
            .unwrap();
        let servers = Inventory::open(&path).unwrap();
        servers
            .upsert_device(&Device::new("000b82000002".parse().unwrap(), "gxp2170"))
            .unwrap();
        let read = std::process::Command::new("sqlite3")
            .arg("-cmd")
            .arg(".timeout 5000")
            .arg(&path)
            .arg("SELECT count(*) FROM devices")
            .output()
            .expect("sqlite3 must be installed; scripts/test installs it");
        assert!(read.status.success(), "{read:?}");
        assert_eq!(String::from_utf8_lossy(&read.stdout).trim(), "2");
        drop(servers);
        session
            .upsert_device(&Device::new("000b82000003".parse().unwrap(), "gxp2170"))
            .unwrap();
        let again = Inventory::open(&path).unwrap();
        assert_eq!(again.list_devices().unwrap().len(), 3);
        assert_eq!(session.list_devices().unwrap().len(), 3);
        let mut wal = path.as_os_str().to_os_string();
        wal.push("-wal");
        assert!(
            Path::new(&wal).exists(),
            "the WAL of the open handles was not removed by another process"
        );
    }

    #[test]
    fn files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("provdesk.db");
        let inventory = Inventory::open(&path).unwrap();
        inventory.upsert_device(&device(1)).unwrap();
        for name in ["provdesk.db", "provdesk.db-wal", "provdesk.db-shm"] {
            let file = dir.path().join(name);
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{name}");
        }
        assert_eq!(inventory.path(), Some(path.as_path()));

        // An existing file with a lax mode is tightened on open.
        drop(inventory);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let _inventory = Inventory::open(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn connections_use_wal_and_the_agreed_pragmas() {
        let (_dir, inventory) = temp_inventory();
        let pragmas = |conn: &Connection| -> (String, i64, i64, i64) {
            let get = |name: &str| {
                conn.pragma_query_value(None, name, |row| row.get::<_, rusqlite::types::Value>(0))
                    .unwrap()
            };
            let int = |v: rusqlite::types::Value| match v {
                rusqlite::types::Value::Integer(i) => i,
                other => panic!("{other:?}"),
            };
            let mode = match get("journal_mode") {
                rusqlite::types::Value::Text(t) => t,
                other => panic!("{other:?}"),
            };
            (
                mode,
                int(get("synchronous")),
                int(get("foreign_keys")),
                int(get("busy_timeout")),
            )
        };
        // synchronous NORMAL is 1.
        let expected = ("wal".to_string(), 1, 1, 5000);
        assert_eq!(pragmas(&lock(&inventory.shared.writer)), expected);
        for reader in &inventory.shared.readers {
            assert_eq!(pragmas(&lock(reader)), expected);
        }
    }

    #[test]
    fn newer_schema_is_refused_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("provdesk.db");
        drop(Inventory::open(&path).unwrap());
        let raw = Connection::open(&path).unwrap();
        raw.pragma_update(None, "user_version", migrate::LATEST + 1)
            .unwrap();
        drop(raw);
        let err = Inventory::open(&path).unwrap_err();
        assert!(
            matches!(err, InventoryError::SchemaTooNew { .. }),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains(&path.display().to_string()) && text.contains("newer"),
            "{text}"
        );
    }

    #[test]
    fn a_file_that_is_not_a_database_is_an_open_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("provdesk.db");
        std::fs::write(
            &path,
            "this is not sqlite, just some text long enough to matter",
        )
        .unwrap();
        let err = Inventory::open(&path).unwrap_err();
        assert!(
            err.to_string().starts_with(&path.display().to_string()),
            "{err}"
        );
        let missing = dir.path().join("no/such/dir/provdesk.db");
        assert!(matches!(
            Inventory::open(&missing),
            Err(InventoryError::Io { .. })
        ));
    }

    #[test]
    fn in_memory_inventory_works_and_is_private_to_its_handle() {
        let a = Inventory::open_in_memory().unwrap();
        let b = Inventory::open_in_memory().unwrap();
        a.upsert_device(&device(1)).unwrap();
        assert_eq!(a.clone().list_devices().unwrap(), [device(1)]);
        assert!(b.list_devices().unwrap().is_empty());
        assert_eq!(a.path(), None);
        assert_eq!(
            a.record_sighting(&sighting(2, 1)).unwrap(),
            SightingOutcome::Discovered
        );
    }

    #[test]
    fn inventory_is_shareable_between_threads() {
        fn assert_shareable<T: Clone + Send + Sync + 'static>() {}
        assert_shareable::<Inventory>();
    }

    #[test]
    fn four_threads_upsert_and_read_concurrently() {
        const THREADS: u32 = 4;
        const PER_THREAD: u32 = 500;
        let (_dir, inventory) = temp_inventory();
        let (done, finished) = mpsc::channel();
        for t in 0..THREADS {
            let inventory = inventory.clone();
            let done = done.clone();
            std::thread::spawn(move || {
                let result = (|| -> Result<(), InventoryError> {
                    for i in 0..PER_THREAD {
                        let n = t * PER_THREAD + i;
                        inventory.upsert_device(&device(n))?;
                        let got = inventory.get_device(mac(n))?;
                        assert_eq!(got, Some(device(n)));
                        if i % 50 == 0 {
                            inventory.record_sighting(&sighting(n, i64::from(n)))?;
                            inventory.append_fetch_log(&[entry(
                                i64::from(n),
                                Some(mac(n)),
                                "cfg.xml",
                            )])?;
                            let listed = inventory.list_devices()?;
                            assert!(listed.len() > usize::try_from(i).unwrap_or(0));
                        }
                    }
                    Ok(())
                })();
                // Send even on failure so the test reports it instead of waiting.
                let _ = done.send(result);
            });
        }
        drop(done);
        for _ in 0..THREADS {
            // Bounded: a deadlock fails the test instead of hanging it.
            let result = finished
                .recv_timeout(Duration::from_secs(120))
                .expect("a thread finished in time");
            result.unwrap();
        }
        let total = THREADS * PER_THREAD;
        assert_eq!(
            inventory.list_devices().unwrap().len(),
            usize::try_from(total).unwrap()
        );
        assert_eq!(
            inventory
                .fetch_log(&FetchLogQuery::default())
                .unwrap()
                .len(),
            40
        );
        assert!(inventory.data_version().unwrap() >= i64::from(total));
    }

    #[test]
    fn managed_devices_get_a_password_that_writes_keep() {
        let (_dir, inventory) = temp_inventory();
        let device = Device::new(mac(1), "gxp2170");
        inventory.upsert_device(&device).unwrap();
        let first = inventory.get_device(mac(1)).unwrap().unwrap().xml_password;
        let first = first.expect("a password from the moment it is added");
        assert_eq!(first.len(), crate::inventory::XML_PASSWORD_LENGTH);
        // A write that says nothing of the password keeps it, and changes nothing else.
        let version = inventory.data_version().unwrap();
        inventory.upsert_device(&device).unwrap();
        inventory
            .import_devices(std::slice::from_ref(&device))
            .unwrap();
        assert_eq!(inventory.data_version().unwrap(), version);
        let stored = inventory.get_device(mac(1)).unwrap().unwrap();
        assert_eq!(stored.xml_password.as_deref(), Some(first.as_str()));
        // One given explicitly replaces it.
        let mut given = device.clone();
        given.xml_password = Some("chosen".into());
        inventory.upsert_device(&given).unwrap();
        let stored = inventory.get_device(mac(1)).unwrap().unwrap();
        assert_eq!(stored.xml_password.as_deref(), Some("chosen"));

        // A discovered phone has none until it is enrolled.
        inventory
            .record_sighting(&Sighting::new(mac(2), 1000))
            .unwrap();
        assert_eq!(
            inventory.get_device(mac(2)).unwrap().unwrap().xml_password,
            None
        );
        let enrolled = inventory.enroll(mac(2), None).unwrap();
        assert!(enrolled.xml_password.is_some());

        // Rows from before the migration get theirs from the first build that asks.
        inventory
            .record_sighting(&Sighting::new(mac(3), 1000))
            .unwrap();
        {
            let conn = lock(&inventory.shared.writer);
            conn.execute(
                "UPDATE devices SET state = 'inventory', xml_password = NULL WHERE mac = ?1",
                [mac(3).to_string()],
            )
            .unwrap();
        }
        let version = inventory.data_version().unwrap();
        let passwords = inventory
            .ensure_xml_passwords(&[mac(1), mac(3), mac(4)])
            .unwrap();
        assert_eq!(passwords.get(&mac(1)).map(String::as_str), Some("chosen"));
        let filled = passwords.get(&mac(3)).expect("filled in");
        assert_eq!(
            inventory
                .get_device(mac(3))
                .unwrap()
                .unwrap()
                .xml_password
                .as_ref(),
            Some(filled)
        );
        assert!(!passwords.contains_key(&mac(4)), "no such device");
        assert_eq!(inventory.data_version().unwrap(), version);
    }
}
