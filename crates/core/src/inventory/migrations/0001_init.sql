-- 0001: devices, the fetch log and a key/value meta table.
-- Applied in one transaction by `migrate.rs`, which then sets PRAGMA user_version = 1.
-- Tables are STRICT so a wrong type is an error at write time, not a surprise at read time.
-- Times are Unix milliseconds.

CREATE TABLE devices (
    -- 12 lowercase hex digits: the spelling of `cfg<mac>` file names, so lookups need no
    -- normalisation.
    mac              TEXT    NOT NULL PRIMARY KEY
                     CHECK (length(mac) = 12 AND mac NOT GLOB '*[^0-9a-f]*'),
    -- Lowercase model, e.g. `gxp2170`; `unknown` for a discovered phone that did not say.
    model            TEXT    NOT NULL,
    profile          TEXT,
    name             TEXT,
    -- JSON objects of string values: custom variables, and P-value overrides keyed `P<n>`.
    vars             TEXT    NOT NULL DEFAULT '{}'
                     CHECK (json_valid(vars) AND json_type(vars) = 'object'),
    overrides        TEXT    NOT NULL DEFAULT '{}'
                     CHECK (json_valid(overrides) AND json_type(overrides) = 'object'),
    state            TEXT    NOT NULL DEFAULT 'inventory'
                     CHECK (state IN ('inventory', 'discovered')),
    first_seen       INTEGER,
    last_seen        INTEGER,
    last_ip          TEXT,
    firmware_version TEXT,
    user_agent       TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- The discovery cap counts discovered rows on every unknown sighting.
CREATE INDEX devices_state ON devices (state);

CREATE TABLE fetch_log (
    id            INTEGER PRIMARY KEY,
    ts            INTEGER NOT NULL,
    protocol      TEXT    NOT NULL,
    peer          TEXT    NOT NULL,
    -- The requested file name, as the phone asked for it.
    name          TEXT    NOT NULL,
    -- No foreign key: unknown phones are logged too, and history outlives a removed device.
    mac           TEXT
                  CHECK (mac IS NULL OR (length(mac) = 12 AND mac NOT GLOB '*[^0-9a-f]*')),
    user_agent    TEXT,
    -- "200", "404", "denied", "tftp-error-1", "completed", "aborted", …
    status        TEXT    NOT NULL,
    reason        TEXT,
    bytes         INTEGER NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    duration_ms   INTEGER NOT NULL DEFAULT 0 CHECK (duration_ms >= 0),
    artifact_hash TEXT
) STRICT;

CREATE INDEX fetch_log_mac_ts ON fetch_log (mac, ts);
CREATE INDEX fetch_log_ts ON fetch_log (ts);

CREATE TABLE meta (
    key   TEXT NOT NULL PRIMARY KEY,
    value ANY
) STRICT;

-- Bumped in the same transaction as every change to what a device is; see `Inventory::data_version`.
INSERT INTO meta (key, value) VALUES ('device_version', 0);
