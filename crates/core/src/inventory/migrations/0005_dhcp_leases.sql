-- 0005: the leases the desk's DHCP responder granted, so they survive a restart of `serve`
-- and phones keep their addresses. One lease per MAC and per address; `expires_at` in Unix
-- seconds. Not tied to the devices table: a phone has a lease before the desk knows it.
CREATE TABLE dhcp_leases (
    mac TEXT PRIMARY KEY NOT NULL CHECK (length(mac) = 12),
    address TEXT NOT NULL UNIQUE,
    expires_at INTEGER NOT NULL,
    hostname TEXT,
    vendor_class TEXT,
    updated_ms INTEGER NOT NULL
);
