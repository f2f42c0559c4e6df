//! Reading the fetch log and the device events as history: the whole fetch log page by page
//! in the order it was written (`provdesk log`, and its `--follow` cursor), every device's
//! recent events in one query (the device list's and the hand-over report's statuses), and
//! the per-device bound on a source's rows.
//!
//! Invariant: a follower that pages by id never misses a row: ids only grow (SQLite gives a
//! new row the largest id plus one, and writers commit one at a time), so every row a later
//! commit adds has an id above any cursor taken before it.

use std::collections::BTreeMap;

use super::rows::{FETCH_LOG_COLUMNS, FetchLogRow};
use super::{DeviceEvent, EventSource, FetchLogEntry, Inventory, InventoryError};
use crate::Mac;

/// Which part of the fetch log to page through: rows after `after_id`, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FetchLogPage {
    /// Only rows with a larger id (a follower's cursor); from the start when `None`.
    pub after_id: Option<i64>,
    pub mac: Option<Mac>,
    /// Only rows with `ts >= since` (Unix milliseconds).
    pub since: Option<i64>,
    /// At most this many rows.
    pub limit: usize,
}

impl Inventory {
    /// One page of the fetch log, in the order it was written (by id).
    pub fn fetch_log_page(
        &self,
        page: &FetchLogPage,
    ) -> Result<Vec<FetchLogEntry>, InventoryError> {
        const OP: &str = "fetch_log_page";
        let mut sql = format!("SELECT {FETCH_LOG_COLUMNS} FROM fetch_log WHERE id > :after");
        if page.mac.is_some() {
            sql.push_str(" AND mac = :mac");
        }
        if page.since.is_some() {
            sql.push_str(" AND ts >= :since");
        }
        sql.push_str(" ORDER BY id LIMIT :limit");
        let after = page.after_id.unwrap_or(i64::MIN);
        let limit = i64::try_from(page.limit).unwrap_or(i64::MAX);
        let mac = page.mac.map(|m| m.to_string());
        let rows = self.read(OP, page.mac, |conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut named: Vec<(&str, &dyn rusqlite::ToSql)> =
                vec![(":after", &after), (":limit", &limit)];
            if let Some(mac) = &mac {
                named.push((":mac", mac));
            }
            if let Some(since) = &page.since {
                named.push((":since", since));
            }
            stmt.query_map(named.as_slice(), FetchLogRow::from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()
        })?;
        let path = self.path().map(ToOwned::to_owned).unwrap_or_default();
        rows.into_iter().map(|row| row.decode(&path)).collect()
    }

    /// The id of the newest fetch-log row matching `mac` and `since` that still leaves
    /// `newest` rows after it: where a reader that wants only the last `newest` rows starts.
    /// `None` when there are no more than `newest` rows (start from the beginning).
    pub fn fetch_log_tail_start(
        &self,
        mac: Option<Mac>,
        since: Option<i64>,
        newest: usize,
    ) -> Result<Option<i64>, InventoryError> {
        const OP: &str = "fetch_log_tail_start";
        let mut sql = String::from("SELECT id FROM fetch_log WHERE 1");
        if mac.is_some() {
            sql.push_str(" AND mac = :mac");
        }
        if since.is_some() {
            sql.push_str(" AND ts >= :since");
        }
        sql.push_str(" ORDER BY id DESC LIMIT 1 OFFSET :offset");
        let offset = i64::try_from(newest).unwrap_or(i64::MAX);
        let mac_text = mac.map(|m| m.to_string());
        self.read(OP, mac, |conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut named: Vec<(&str, &dyn rusqlite::ToSql)> = vec![(":offset", &offset)];
            if let Some(mac) = &mac_text {
                named.push((":mac", mac));
            }
            if let Some(since) = &since {
                named.push((":since", since));
            }
            let mut rows = stmt.query(named.as_slice())?;
            match rows.next()? {
                Some(row) => Ok(Some(row.get::<_, i64>(0)?)),
                None => Ok(None),
            }
        })
    }

    /// The newest `depth` events of every device in the devices table, oldest first per
    /// device, in one query (the `(mac, ts)` index per device): what a list of a thousand
    /// devices needs for their timelines without a query per row.
    pub fn recent_device_events_by_device(
        &self,
        depth: usize,
    ) -> Result<BTreeMap<Mac, Vec<DeviceEvent>>, InventoryError> {
        const OP: &str = "recent_device_events_by_device";
        let depth = i64::try_from(depth).unwrap_or(i64::MAX);
        let rows = self.read(OP, None, |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT e.id, e.ts, e.mac, e.peer, e.source, e.kind, e.summary, e.detail \
                 FROM devices AS d JOIN device_events AS e ON e.id IN \
                 (SELECT id FROM device_events WHERE mac = d.mac \
                  ORDER BY ts DESC, id DESC LIMIT :depth) \
                 ORDER BY e.mac, e.ts, e.id",
            )?;
            stmt.query_map(&[(":depth", &depth)], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, Option<String>>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, String>(5)?,
                    row.get::<_, String>(6)?,
                    row.get::<_, Option<String>>(7)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })?;
        let mut out: BTreeMap<Mac, Vec<DeviceEvent>> = BTreeMap::new();
        // Rows that do not read back (hand-edited) are skipped, as `device_events` does.
        for (id, at_ms, mac, peer, source, kind, summary, detail) in rows {
            let (Ok(mac), Some(source)) = (mac.parse::<Mac>(), EventSource::parse(&source)) else {
                continue;
            };
            out.entry(mac).or_default().push(DeviceEvent {
                id,
                at_ms,
                mac: Some(mac),
                peer,
                source,
                kind,
                summary,
                detail: detail.and_then(|d| serde_json::from_str(&d).ok()),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{Device, NewDeviceEvent};

    fn fetch(ts: i64, mac: Option<Mac>, name: &str) -> FetchLogEntry {
        FetchLogEntry {
            id: None,
            ts,
            protocol: "tftp".into(),
            peer: "192.0.2.7:4000".into(),
            name: name.into(),
            mac,
            user_agent: None,
            status: "200".into(),
            reason: None,
            bytes: 1,
            duration_ms: 1,
            artifact_hash: None,
        }
    }

    fn event(at_ms: i64, mac: Mac, source: EventSource) -> NewDeviceEvent {
        NewDeviceEvent {
            at_ms,
            mac: Some(mac),
            peer: None,
            source,
            kind: "k".into(),
            summary: format!("at {at_ms}"),
            detail: None,
        }
    }

    #[test]
    fn pages_follow_the_log_by_id_and_filters() {
        let inventory = Inventory::open_in_memory().unwrap();
        let phone: Mac = "000b82123456".parse().unwrap();
        // Out of time order on purpose: a page is in the order rows were written.
        inventory
            .append_fetch_log(&[fetch(30, Some(phone), "a"), fetch(10, None, "b")])
            .unwrap();
        inventory
            .append_fetch_log(&[fetch(20, Some(phone), "c")])
            .unwrap();
        let page = |after_id, mac, since, limit| {
            inventory
                .fetch_log_page(&FetchLogPage {
                    after_id,
                    mac,
                    since,
                    limit,
                })
                .unwrap()
        };
        let all = page(None, None, None, 10);
        assert_eq!(all.len(), 3);
        assert!(all.windows(2).all(|w| w[0].id < w[1].id));
        let first_two = page(None, None, None, 2);
        let rest = page(first_two[1].id, None, None, 10);
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].name, "c");
        assert!(page(rest[0].id, None, None, 10).is_empty());
        let mine: Vec<String> = page(None, Some(phone), None, 10)
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(mine, ["a", "c"]);
        assert_eq!(page(None, None, Some(20), 10).len(), 2);

        // The tail: start after the row that leaves `newest` behind it.
        let start = inventory.fetch_log_tail_start(None, None, 1).unwrap();
        assert_eq!(page(start, None, None, 10).len(), 1);
        assert_eq!(inventory.fetch_log_tail_start(None, None, 3).unwrap(), None);
        let start = inventory
            .fetch_log_tail_start(Some(phone), None, 1)
            .unwrap();
        let tail = page(start, Some(phone), None, 10);
        assert_eq!(tail.len(), 1);
        assert_eq!(tail[0].name, "c");
    }

    #[test]
    fn recent_events_per_device_and_trimming_per_device() {
        let inventory = Inventory::open_in_memory().unwrap();
        let a: Mac = "000b82000001".parse().unwrap();
        let b: Mac = "000b82000002".parse().unwrap();
        let stranger: Mac = "000b82000003".parse().unwrap();
        inventory
            .import_devices(&[Device::new(a, "gxp2170"), Device::new(b, "gxp2170")])
            .unwrap();
        let mut events: Vec<NewDeviceEvent> =
            (0..10).map(|n| event(n, a, EventSource::Build)).collect();
        events.push(event(5, a, EventSource::Dhcp));
        events.push(event(1, b, EventSource::Syslog));
        events.push(event(1, stranger, EventSource::Syslog));
        inventory.append_device_events(&events).unwrap();

        let recent = inventory.recent_device_events_by_device(3).unwrap();
        assert_eq!(recent.len(), 2, "only devices of the inventory");
        let times: Vec<i64> = recent[&a].iter().map(|e| e.at_ms).collect();
        assert_eq!(times, [7, 8, 9]);
        assert_eq!(recent[&b].len(), 1);

        let deleted = inventory
            .trim_device_events_of(EventSource::Build, &[Some(a), Some(b)], 4)
            .unwrap();
        assert_eq!(deleted, 6);
        let left = inventory.recent_device_events_by_device(100).unwrap();
        let sources: Vec<(EventSource, i64)> =
            left[&a].iter().map(|e| (e.source, e.at_ms)).collect();
        assert_eq!(
            sources,
            [
                (EventSource::Dhcp, 5),
                (EventSource::Build, 6),
                (EventSource::Build, 7),
                (EventSource::Build, 8),
                (EventSource::Build, 9)
            ]
        );
        assert_eq!(left[&b].len(), 1);
    }
}
