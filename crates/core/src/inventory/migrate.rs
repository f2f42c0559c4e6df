//! Schema migrations: numbered SQL files applied in order, the database's `PRAGMA user_version`
//! recording how many have run.
//!
//! Invariants: migration `n` (1-based) is `MIGRATIONS[n - 1]`; each runs in its own
//! transaction together with the `user_version` bump, so a crash leaves the database at a
//! whole version; a database from a newer ProvDesk (a version above `MIGRATIONS.len()`) is
//! refused rather than written to. Published migrations are never edited, only appended.

use rusqlite::{Connection, TransactionBehavior};

/// Every migration, in order. The file name's number is its index plus one.
pub(crate) const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_fetch_log_ts_index.sql"),
    include_str!("migrations/0003_fetch_log_without_glob.sql"),
    include_str!("migrations/0004_device_xml_password.sql"),
    include_str!("migrations/0005_dhcp_leases.sql"),
    include_str!("migrations/0006_device_events.sql"),
];

/// The schema version this code writes.
pub(crate) const LATEST: i64 = MIGRATIONS.len() as i64;

/// Why migrating failed, before the caller adds the database's path.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MigrateError {
    #[error(
        "database schema version {found} is newer than this ProvDesk knows ({known}); use a newer ProvDesk"
    )]
    TooNew { found: i64, known: i64 },
    #[error("migration {version} failed: {source}")]
    Failed {
        version: i64,
        #[source]
        source: rusqlite::Error,
    },
}

pub(crate) fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

/// Brings the database up to `LATEST`; returns the version it found.
pub(crate) fn migrate(conn: &mut Connection) -> Result<i64, MigrateError> {
    let found = user_version(conn).map_err(|source| MigrateError::Failed { version: 0, source })?;
    if found > LATEST {
        return Err(MigrateError::TooNew {
            found,
            known: LATEST,
        });
    }
    for version in (found + 1)..=LATEST {
        apply(conn, version).map_err(|source| MigrateError::Failed { version, source })?;
    }
    // A second process may have migrated past us between our read and our write lock.
    let now = user_version(conn).map_err(|source| MigrateError::Failed { version: 0, source })?;
    if now > LATEST {
        return Err(MigrateError::TooNew {
            found: now,
            known: LATEST,
        });
    }
    Ok(found)
}

fn apply(conn: &mut Connection, version: i64) -> rusqlite::Result<()> {
    // IMMEDIATE takes the write lock first, so two processes opening one fresh desk at the same
    // time serialise here; the loser re-reads the version and skips what the winner applied.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if user_version(&tx)? >= version {
        return Ok(());
    }
    let index = usize::try_from(version - 1).unwrap_or(usize::MAX);
    let Some(sql) = MIGRATIONS.get(index) else {
        return Ok(());
    };
    tx.execute_batch(sql)?;
    // user_version lives in the database header, which SQLite writes inside this transaction.
    tx.pragma_update(None, "user_version", version)?;
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(initial: i64, expected: Result<i64, &str>) {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", initial).unwrap();
        let got = migrate(&mut conn).map(|_| user_version(&conn).unwrap());
        match (got, expected) {
            (Ok(g), Ok(e)) => assert_eq!(g, e),
            (Err(g), Err(e)) => assert!(g.to_string().contains(e), "{g}"),
            (g, e) => panic!("from {initial}: got {g:?}, expected {e:?}"),
        }
    }

    #[test]
    fn applies_every_migration_to_an_empty_database() {
        check(0, Ok(LATEST));
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), 0);
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            tables,
            [
                "device_events",
                "devices",
                "dhcp_leases",
                "fetch_log",
                "meta"
            ]
        );
        let indexes: Vec<String> = conn
            .prepare(
                "SELECT name FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL
                 ORDER BY name",
            )
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            indexes,
            [
                "device_events_mac_ts",
                "device_events_ts",
                "devices_state",
                "fetch_log_mac_ts"
            ]
        );
    }

    #[test]
    fn rebuilding_the_fetch_log_keeps_its_rows_and_ids() {
        let mut conn = Connection::open_in_memory().unwrap();
        for version in 1..=2 {
            apply(&mut conn, version).unwrap();
        }
        conn.execute_batch(
            "INSERT INTO fetch_log (id, ts, protocol, peer, name, mac, user_agent, status,
                                    reason, bytes, duration_ms, artifact_hash)
             VALUES (7, 1000, 'http', '10.0.0.9:5060', 'cfg000b82123456.xml', '000b82123456',
                     'Grandstream Model HW GXP2170', '200', NULL, 512, 3, 'abc'),
                    (9, 1001, 'tftp', '10.0.0.8:1024', 'cfg.xml', NULL, NULL, '404',
                     'no such file', 0, 0, NULL);",
        )
        .unwrap();
        let dump = |conn: &Connection| -> Vec<String> {
            conn.prepare("SELECT * FROM fetch_log ORDER BY id")
                .unwrap()
                .query_map([], |row| {
                    (0..12)
                        .map(|i| {
                            row.get::<_, rusqlite::types::Value>(i)
                                .map(|v| format!("{v:?}"))
                        })
                        .collect::<Result<Vec<_>, _>>()
                        .map(|values| values.join("|"))
                })
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let before = dump(&conn);
        assert_eq!(migrate(&mut conn).unwrap(), 2);
        assert_eq!(dump(&conn), before);
        // New rows carry on after the old ids, and a MAC of the wrong length is still refused.
        conn.execute(
            "INSERT INTO fetch_log (ts, protocol, peer, name, status) VALUES (1, 'http', 'p', 'n', '200')",
            [],
        )
        .unwrap();
        assert_eq!(conn.last_insert_rowid(), 10);
        let short = conn.execute(
            "INSERT INTO fetch_log (ts, protocol, peer, name, mac, status)
             VALUES (1, 'http', 'p', 'n', '000b82', '200')",
            [],
        );
        assert!(short.unwrap_err().to_string().contains("CHECK"));
    }

    #[test]
    fn migrating_twice_changes_nothing() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), LATEST);
        assert_eq!(user_version(&conn).unwrap(), LATEST);
    }

    #[test]
    fn refuses_a_newer_database() {
        check(LATEST + 1, Err("newer than this ProvDesk knows"));
    }

    #[test]
    fn devices_from_before_passwords_keep_their_rows_without_one() {
        let mut conn = Connection::open_in_memory().unwrap();
        for version in 1..=3 {
            apply(&mut conn, version).unwrap();
        }
        conn.execute_batch(
            "INSERT INTO devices (mac, model, created_at, updated_at)
             VALUES ('000b82000001', 'gxp2170', 0, 0);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let password: Option<String> = conn
            .query_row("SELECT xml_password FROM devices", [], |row| row.get(0))
            .unwrap();
        assert_eq!(password, None);
        let empty = conn.execute("UPDATE devices SET xml_password = ''", []);
        assert!(empty.unwrap_err().to_string().contains("CHECK"));
    }

    #[test]
    fn a_failing_migration_leaves_the_previous_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        // A table the first migration wants to create makes it fail half-way.
        conn.execute_batch("CREATE TABLE meta (x)").unwrap();
        let err = migrate(&mut conn).unwrap_err();
        assert!(err.to_string().contains("migration 1 failed"), "{err}");
        assert_eq!(user_version(&conn).unwrap(), 0);
        let devices: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 'devices'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(devices, 0, "the half-applied migration was rolled back");
    }
}
