//! The firmware each device came with: the version in the first Grandstream User-Agent the
//! fetch log holds for it, which the hand-over report sets beside the version it reports now
//! (`devices.firmware_version`, updated on every request).
//!
//! Invariant: one query for every device, walking each device's `(mac, ts)` index entries
//! from its oldest until the first request with a Grandstream User-Agent; TFTP requests carry
//! none and are passed over.

use std::collections::BTreeMap;

use super::{Inventory, InventoryError};
use crate::Mac;
use crate::user_agent::parse_user_agent;

impl Inventory {
    /// For every device of the devices table whose requests ever carried a Grandstream
    /// User-Agent naming a firmware version, the version of the oldest one.
    pub fn first_firmware_versions(&self) -> Result<BTreeMap<Mac, String>, InventoryError> {
        const OP: &str = "first_firmware_versions";
        let rows: Vec<(String, Option<String>)> = self.read(OP, None, |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT d.mac, (SELECT f.user_agent FROM fetch_log AS f \
                   WHERE f.mac = d.mac AND f.user_agent LIKE 'grandstream%' \
                   ORDER BY f.ts, f.id LIMIT 1) \
                 FROM devices AS d",
            )?;
            stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect()
        })?;
        Ok(rows
            .into_iter()
            .filter_map(|(mac, agent)| {
                let mac: Mac = mac.parse().ok()?;
                let firmware = parse_user_agent(&agent?)?.firmware;
                (!firmware.is_empty()).then_some((mac, firmware))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{Device, FetchLogEntry};

    fn fetch(ts: i64, mac: &str, user_agent: Option<&str>) -> FetchLogEntry {
        FetchLogEntry {
            id: None,
            ts,
            protocol: "http".into(),
            peer: "192.0.2.10:5000".into(),
            name: format!("cfg{mac}.xml"),
            mac: Some(mac.parse().unwrap()),
            user_agent: user_agent.map(str::to_string),
            status: "200".into(),
            reason: None,
            bytes: 10,
            duration_ms: 1,
            artifact_hash: None,
        }
    }

    fn agent(version: &str, mac: &str) -> String {
        format!("Grandstream Model HW GXP2170 SW {version} DevId {mac}")
    }

    #[test]
    fn the_oldest_grandstream_agent_of_each_device_names_its_first_firmware() {
        let inventory = Inventory::open_in_memory().unwrap();
        let (a, b, c) = ("000b82000001", "000b82000002", "000b82000003");
        for mac in [a, b, c] {
            inventory
                .upsert_device(&Device::new(mac.parse().unwrap(), "gxp2170"))
                .unwrap();
        }
        let (old_a, new_a) = (agent("1.0.9.1", a), agent("1.0.11.3", a));
        let old_b = agent("1.0.8.6", b);
        inventory
            .append_fetch_log(&[
                // Logged out of order: the time decides, not the id.
                fetch(300, a, Some(&new_a)),
                fetch(100, a, None),
                fetch(200, a, Some("curl/8.5.0")),
                fetch(250, a, Some(&old_a)),
                fetch(50, b, Some(&old_b)),
                // `c` only ever used TFTP; a phone not in the devices table is not listed.
                fetch(10, c, None),
                fetch(10, "000b82000009", Some(&agent("1.0.0.1", "000b82000009"))),
            ])
            .unwrap();
        let first = inventory.first_firmware_versions().unwrap();
        let listed: Vec<(String, &str)> = first
            .iter()
            .map(|(mac, v)| (mac.to_string(), v.as_str()))
            .collect();
        assert_eq!(
            listed,
            [(a.to_string(), "1.0.9.1"), (b.to_string(), "1.0.8.6")]
        );
    }
}
