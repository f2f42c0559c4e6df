-- 0003: the fetch log's MAC check without its GLOB.
-- The GLOB ran on every inserted row: in a boot storm about a tenth of the ~8 us that
-- logging one fetch costs. Rows are written only from a `Mac`, which spells 12 lowercase hex
-- digits, and reading a row parses the MAC again (a bad one is reported as corrupt), so a
-- length check is enough here. SQLite cannot drop a CHECK in place: the table is rebuilt.

CREATE TABLE fetch_log_new (
    id            INTEGER PRIMARY KEY,
    ts            INTEGER NOT NULL,
    protocol      TEXT    NOT NULL,
    peer          TEXT    NOT NULL,
    -- The requested file name, as the phone asked for it.
    name          TEXT    NOT NULL,
    -- No foreign key: unknown phones are logged too, and history outlives a removed device.
    mac           TEXT    CHECK (mac IS NULL OR length(mac) = 12),
    user_agent    TEXT,
    -- "200", "404", "denied", "tftp-error-1", "completed", "aborted", …
    status        TEXT    NOT NULL,
    reason        TEXT,
    bytes         INTEGER NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    duration_ms   INTEGER NOT NULL DEFAULT 0 CHECK (duration_ms >= 0),
    artifact_hash TEXT
) STRICT;

INSERT INTO fetch_log_new (id, ts, protocol, peer, name, mac, user_agent, status, reason,
                           bytes, duration_ms, artifact_hash)
SELECT id, ts, protocol, peer, name, mac, user_agent, status, reason,
       bytes, duration_ms, artifact_hash
FROM fetch_log;

DROP TABLE fetch_log;
ALTER TABLE fetch_log_new RENAME TO fetch_log;

CREATE INDEX fetch_log_mac_ts ON fetch_log (mac, ts);
