-- 0006: what happened to a device besides its fetches, for its timeline: DHCP messages,
-- plug-and-play requests, NOTIFY outcomes, syslog lines, builds that changed its files.
-- `source` says which part of the desk saw it, `kind` what happened (`ack`, `subscribe`,
-- `no-answer`, `line`, …), `summary` one line for people (never a secret), `detail` an
-- optional JSON object with the rest. No foreign key: events arrive before the desk knows a
-- phone, and history outlives a removed device. A NULL mac is an event the desk could not
-- tie to a device (a syslog line from an unknown address).
CREATE TABLE device_events (
    id      INTEGER PRIMARY KEY,
    ts      INTEGER NOT NULL,
    mac     TEXT    CHECK (mac IS NULL OR length(mac) = 12),
    peer    TEXT,
    source  TEXT    NOT NULL,
    kind    TEXT    NOT NULL,
    summary TEXT    NOT NULL,
    detail  TEXT    CHECK (detail IS NULL OR json_valid(detail))
) STRICT;

CREATE INDEX device_events_mac_ts ON device_events (mac, ts);
CREATE INDEX device_events_ts ON device_events (ts);
