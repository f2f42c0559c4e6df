//! What happened to a device besides its fetches (`device_events`, migration 0006): DHCP
//! messages, plug-and-play requests, NOTIFY outcomes, syslog lines, builds that changed its
//! files. With the fetch log it is the device's timeline.
//!
//! Invariants: a summary is for people and never holds a secret (the writer's duty; the
//! table cannot tell); `detail` is a JSON object or nothing; storage is bounded by the writer
//! calling [`Inventory::trim_device_events`] for sources that can flood (syslog).

use rusqlite::params;

use super::{Inventory, InventoryError};
use crate::Mac;

/// Which part of the desk saw the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
#[serde(rename_all = "lowercase")]
pub enum EventSource {
    /// The desk's DHCP responder.
    Dhcp,
    /// The SIP plug-and-play responder (a multicast `SUBSCRIBE` for `ua-profile`).
    Pnp,
    /// A re-provision or reboot `NOTIFY` the desk sent, and its outcome.
    Notify,
    /// A line the phone sent to the desk's syslog receiver.
    Syslog,
    /// A build that changed the device's files.
    Build,
}

impl EventSource {
    pub const ALL: [EventSource; 5] = [
        EventSource::Dhcp,
        EventSource::Pnp,
        EventSource::Notify,
        EventSource::Syslog,
        EventSource::Build,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventSource::Dhcp => "dhcp",
            EventSource::Pnp => "pnp",
            EventSource::Notify => "notify",
            EventSource::Syslog => "syslog",
            EventSource::Build => "build",
        }
    }

    pub fn parse(text: &str) -> Option<EventSource> {
        EventSource::ALL
            .into_iter()
            .find(|source| source.as_str() == text)
    }
}

/// An event to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDeviceEvent {
    /// Unix milliseconds.
    pub at_ms: i64,
    pub mac: Option<Mac>,
    /// The address it came from or went to (`198.51.100.7`, `198.51.100.7:5060`).
    pub peer: Option<String>,
    pub source: EventSource,
    /// What happened, a short lowercase word (`ack`, `subscribe`, `no-answer`, `line`).
    pub kind: String,
    /// One line for people; never a secret.
    pub summary: String,
    /// A JSON object with the rest, if any.
    pub detail: Option<serde_json::Value>,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct DeviceEvent {
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub id: i64,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub at_ms: i64,
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    pub mac: Option<Mac>,
    pub peer: Option<String>,
    pub source: EventSource,
    pub kind: String,
    pub summary: String,
    #[cfg_attr(feature = "ts", ts(type = "Record<string, unknown> | null"))]
    pub detail: Option<serde_json::Value>,
}

/// Which events to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceEventQuery {
    /// One device's events, or every device's (and the untied ones).
    pub mac: Option<Mac>,
    /// Only events at or after this time (Unix milliseconds).
    pub since_ms: Option<i64>,
    /// Only events with an id above this one (a follower's cursor).
    pub after_id: Option<i64>,
    pub source: Option<EventSource>,
    /// The newest `limit` events (all when `None`).
    pub limit: Option<usize>,
}

impl Inventory {
    /// Appends events in one transaction; returns how many were written.
    pub fn append_device_events(&self, events: &[NewDeviceEvent]) -> Result<usize, InventoryError> {
        const OP: &str = "append_device_events";
        if events.is_empty() {
            return Ok(0);
        }
        self.write(OP, None, |tx, _| {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO device_events (ts, mac, peer, source, kind, summary, detail) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(|source| self.sql_error(OP, None, source))?;
            for event in events {
                let mac = event.mac.map(|m| m.hex());
                // Only objects are stored: a detail that is not one is kept under "value".
                let detail = event.detail.as_ref().map(|detail| match detail {
                    serde_json::Value::Object(_) => detail.to_string(),
                    other => serde_json::json!({ "value": other }).to_string(),
                });
                stmt.execute(params![
                    event.at_ms,
                    mac.as_deref(),
                    event.peer,
                    event.source.as_str(),
                    event.kind,
                    event.summary,
                    detail,
                ])
                .map_err(|source| self.sql_error(OP, event.mac, source))?;
            }
            Ok(events.len())
        })
    }

    /// Events matching `query`, oldest first (the newest `limit` of them). Rows that do not
    /// read back (hand-edited) are skipped.
    pub fn device_events(
        &self,
        query: &DeviceEventQuery,
    ) -> Result<Vec<DeviceEvent>, InventoryError> {
        const OP: &str = "device_events";
        let mut sql = String::from(
            "SELECT id, ts, mac, peer, source, kind, summary, detail FROM device_events WHERE 1 = 1",
        );
        if query.mac.is_some() {
            sql.push_str(" AND mac = :mac");
        }
        if query.since_ms.is_some() {
            sql.push_str(" AND ts >= :since");
        }
        if query.after_id.is_some() {
            sql.push_str(" AND id > :after");
        }
        if query.source.is_some() {
            sql.push_str(" AND source = :source");
        }
        sql.push_str(" ORDER BY ts DESC, id DESC LIMIT :limit");
        let limit = query
            .limit
            .map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
        let mac = query.mac.map(|m| m.to_string());
        let source = query.source.map(EventSource::as_str);
        let rows = self.read(OP, query.mac, |conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut named: Vec<(&str, &dyn rusqlite::ToSql)> = vec![(":limit", &limit)];
            if let Some(mac) = &mac {
                named.push((":mac", mac));
            }
            if let Some(since) = &query.since_ms {
                named.push((":since", since));
            }
            if let Some(after) = &query.after_id {
                named.push((":after", after));
            }
            if let Some(source) = &source {
                named.push((":source", source));
            }
            stmt.query_map(named.as_slice(), |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, Option<String>>(2)?,
                    row.get::<_, Option<String>>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, String>(5)?,
                    row.get::<_, String>(6)?,
                    row.get::<_, Option<String>>(7)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })?;
        let mut events: Vec<DeviceEvent> = rows
            .into_iter()
            .filter_map(|(id, at_ms, mac, peer, source, kind, summary, detail)| {
                let mac = match mac {
                    Some(mac) => Some(mac.parse().ok()?),
                    None => None,
                };
                Some(DeviceEvent {
                    id,
                    at_ms,
                    mac,
                    peer,
                    source: EventSource::parse(&source)?,
                    kind,
                    summary,
                    detail: detail.and_then(|d| serde_json::from_str(&d).ok()),
                })
            })
            .collect();
        events.reverse();
        Ok(events)
    }

    /// Keeps the newest `per_device` events of `source` for every device (and as many untied
    /// ones), deleting the rest; returns how many were deleted. Bounds what a flood stores.
    pub fn trim_device_events(
        &self,
        source: EventSource,
        per_device: usize,
    ) -> Result<usize, InventoryError> {
        const OP: &str = "trim_device_events";
        let keep = i64::try_from(per_device).unwrap_or(i64::MAX);
        self.write(OP, None, |tx, _| {
            let over: Vec<Option<String>> = tx
                .prepare_cached(
                    "SELECT mac FROM device_events WHERE source = ?1 \
                     GROUP BY mac HAVING count(*) > ?2",
                )
                .and_then(|mut stmt| {
                    stmt.query_map(params![source.as_str(), keep], |row| row.get(0))?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(|e| self.sql_error(OP, None, e))?;
            let mut deleted = 0;
            for mac in over {
                deleted += tx
                    .execute(
                        "DELETE FROM device_events WHERE source = ?1 AND mac IS ?2 AND id <= \
                         (SELECT id FROM device_events WHERE source = ?1 AND mac IS ?2 \
                          ORDER BY id DESC LIMIT 1 OFFSET ?3)",
                        params![source.as_str(), mac, keep],
                    )
                    .map_err(|e| self.sql_error(OP, None, e))?;
            }
            Ok(deleted)
        })
    }

    /// [`Inventory::trim_device_events`] for these devices only (`None`: the untied
    /// events), so a batch's trim reads what the batch touched, not the whole table.
    pub fn trim_device_events_of(
        &self,
        source: EventSource,
        macs: &[Option<Mac>],
        per_device: usize,
    ) -> Result<usize, InventoryError> {
        const OP: &str = "trim_device_events_of";
        let keep = i64::try_from(per_device).unwrap_or(i64::MAX);
        self.write(OP, None, |tx, _| {
            let mut deleted = 0;
            for mac in macs {
                let mac_text = mac.map(|m| m.to_string());
                deleted += tx
                    .prepare_cached(
                        "DELETE FROM device_events WHERE source = ?1 AND mac IS ?2 AND id <= \
                         (SELECT id FROM device_events WHERE source = ?1 AND mac IS ?2 \
                          ORDER BY id DESC LIMIT 1 OFFSET ?3)",
                    )
                    .and_then(|mut stmt| stmt.execute(params![source.as_str(), mac_text, keep]))
                    .map_err(|e| self.sql_error(OP, *mac, e))?;
            }
            Ok(deleted)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(at_ms: i64, mac: Option<Mac>, source: EventSource, kind: &str) -> NewDeviceEvent {
        NewDeviceEvent {
            at_ms,
            mac,
            peer: Some("198.51.100.7".into()),
            source,
            kind: kind.into(),
            summary: format!("{kind} at {at_ms}"),
            detail: Some(serde_json::json!({ "n": at_ms })),
        }
    }

    #[test]
    fn events_are_stored_read_in_order_and_filtered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("provdesk.db");
        let inventory = Inventory::open(&path).unwrap();
        let phone: Mac = "000b82123456".parse().unwrap();
        let other: Mac = "000b82654321".parse().unwrap();
        inventory
            .append_device_events(&[
                event(30, Some(phone), EventSource::Syslog, "line"),
                event(10, Some(phone), EventSource::Dhcp, "ack"),
                event(20, Some(other), EventSource::Pnp, "subscribe"),
                event(40, None, EventSource::Syslog, "line"),
            ])
            .unwrap();
        drop(inventory);
        let inventory = Inventory::open(&path).unwrap();
        let mine = inventory
            .device_events(&DeviceEventQuery {
                mac: Some(phone),
                ..DeviceEventQuery::default()
            })
            .unwrap();
        let kinds: Vec<_> = mine.iter().map(|e| (e.at_ms, e.kind.as_str())).collect();
        assert_eq!(kinds, vec![(10, "ack"), (30, "line")]);
        assert_eq!(mine[0].detail, Some(serde_json::json!({ "n": 10 })));
        assert_eq!(mine[0].source, EventSource::Dhcp);
        let since = inventory
            .device_events(&DeviceEventQuery {
                since_ms: Some(20),
                source: Some(EventSource::Syslog),
                ..DeviceEventQuery::default()
            })
            .unwrap();
        assert_eq!(since.len(), 2);
        assert_eq!(since[1].mac, None);
        let newest = inventory
            .device_events(&DeviceEventQuery {
                limit: Some(1),
                ..DeviceEventQuery::default()
            })
            .unwrap();
        assert_eq!(newest.len(), 1);
        assert_eq!(newest[0].at_ms, 40);
        let after = inventory
            .device_events(&DeviceEventQuery {
                after_id: Some(newest[0].id - 1),
                ..DeviceEventQuery::default()
            })
            .unwrap();
        assert_eq!(after, newest);
    }

    #[test]
    fn trimming_keeps_the_newest_per_device_and_leaves_other_sources() {
        let inventory = Inventory::open_in_memory().unwrap();
        let phone: Mac = "000b82123456".parse().unwrap();
        let mut events: Vec<_> = (0..50)
            .map(|n| event(n, Some(phone), EventSource::Syslog, "line"))
            .collect();
        events.extend((0..7).map(|n| event(n, None, EventSource::Syslog, "line")));
        events.push(event(99, Some(phone), EventSource::Dhcp, "ack"));
        inventory.append_device_events(&events).unwrap();
        let deleted = inventory
            .trim_device_events(EventSource::Syslog, 5)
            .unwrap();
        assert_eq!(deleted, 45 + 2);
        let left = inventory
            .device_events(&DeviceEventQuery {
                mac: Some(phone),
                ..DeviceEventQuery::default()
            })
            .unwrap();
        let times: Vec<_> = left.iter().map(|e| e.at_ms).collect();
        assert_eq!(times, vec![45, 46, 47, 48, 49, 99]);
        let untied = inventory
            .device_events(&DeviceEventQuery::default())
            .unwrap()
            .into_iter()
            .filter(|e| e.mac.is_none())
            .count();
        assert_eq!(untied, 5);
    }

    #[test]
    fn trimming_named_devices_leaves_the_others() {
        let inventory = Inventory::open_in_memory().unwrap();
        let phone: Mac = "000b82123456".parse().unwrap();
        let other: Mac = "000b82654321".parse().unwrap();
        let mut events = Vec::new();
        for n in 0..20 {
            events.push(event(n, Some(phone), EventSource::Syslog, "line"));
            events.push(event(n, Some(other), EventSource::Syslog, "line"));
            events.push(event(n, None, EventSource::Syslog, "line"));
        }
        inventory.append_device_events(&events).unwrap();
        let deleted = inventory
            .trim_device_events_of(EventSource::Syslog, &[Some(phone), None], 5)
            .unwrap();
        assert_eq!(deleted, 30);
        let rows = inventory
            .device_events(&DeviceEventQuery::default())
            .unwrap();
        let of = |mac: Option<Mac>| rows.iter().filter(|e| e.mac == mac).count();
        assert_eq!((of(Some(phone)), of(Some(other)), of(None)), (5, 20, 5));
        let newest = rows
            .iter()
            .filter(|e| e.mac == Some(phone))
            .map(|e| e.at_ms);
        assert_eq!(newest.collect::<Vec<_>>(), vec![15, 16, 17, 18, 19]);
    }
}
