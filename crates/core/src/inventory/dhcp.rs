//! The DHCP responder's leases (`dhcp_leases`, migration 0005), kept so a restart of `serve`
//! gives every phone its address back.

use std::net::Ipv4Addr;

use rusqlite::params;

use super::{Inventory, InventoryError};
use crate::Mac;

/// One granted lease.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DhcpLease {
    pub mac: Mac,
    pub address: Ipv4Addr,
    /// Unix seconds.
    pub expires_at: u64,
    pub hostname: Option<String>,
    pub vendor_class: Option<String>,
}

/// One change to the lease table; the responder's writes go in batches of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DhcpLeaseWrite {
    Save(DhcpLease),
    Remove(Mac),
}

impl Inventory {
    /// Stores `lease`, replacing the MAC's previous lease and any other lease on its address
    /// (the responder only reuses an address once its lease has expired).
    pub fn save_dhcp_lease(&self, lease: &DhcpLease) -> Result<(), InventoryError> {
        self.apply_dhcp_lease_writes(std::slice::from_ref(&DhcpLeaseWrite::Save(lease.clone())))
    }

    /// Forgets the MAC's lease (released, declined, or its address given to another).
    pub fn remove_dhcp_lease(&self, mac: Mac) -> Result<(), InventoryError> {
        self.apply_dhcp_lease_writes(&[DhcpLeaseWrite::Remove(mac)])
    }

    /// Applies `writes` in order, in one transaction: a storm of ACKs costs one commit per
    /// batch, not one per phone. All or nothing.
    pub fn apply_dhcp_lease_writes(&self, writes: &[DhcpLeaseWrite]) -> Result<(), InventoryError> {
        if writes.is_empty() {
            return Ok(());
        }
        let first = match &writes[0] {
            DhcpLeaseWrite::Save(lease) => lease.mac,
            DhcpLeaseWrite::Remove(mac) => *mac,
        };
        self.write("apply_dhcp_lease_writes", Some(first), |tx, now| {
            for write in writes {
                match write {
                    DhcpLeaseWrite::Save(lease) => {
                        let expires_at = i64::try_from(lease.expires_at).unwrap_or(i64::MAX);
                        tx.prepare_cached(
                            "INSERT OR REPLACE INTO dhcp_leases \
                             (mac, address, expires_at, hostname, vendor_class, updated_ms) \
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        )
                        .and_then(|mut stmt| {
                            stmt.execute(params![
                                lease.mac.hex().as_str(),
                                lease.address.to_string(),
                                expires_at,
                                lease.hostname,
                                lease.vendor_class,
                                now
                            ])
                        })
                        .map_err(|source| {
                            self.sql_error("save_dhcp_lease", Some(lease.mac), source)
                        })?;
                    }
                    DhcpLeaseWrite::Remove(mac) => {
                        tx.prepare_cached("DELETE FROM dhcp_leases WHERE mac = ?1")
                            .and_then(|mut stmt| stmt.execute([mac.hex().as_str()]))
                            .map_err(|source| {
                                self.sql_error("remove_dhcp_lease", Some(*mac), source)
                            })?;
                    }
                }
            }
            Ok(())
        })
    }

    /// Every stored lease, by address. Rows that do not read back (hand-edited) are skipped.
    pub fn dhcp_leases(&self) -> Result<Vec<DhcpLease>, InventoryError> {
        let rows = self.read("dhcp_leases", None, |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT mac, address, expires_at, hostname, vendor_class FROM dhcp_leases",
            )?;
            stmt.query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, Option<String>>(3)?,
                    row.get::<_, Option<String>>(4)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })?;
        let mut leases: Vec<DhcpLease> = rows
            .into_iter()
            .filter_map(|(mac, address, expires_at, hostname, vendor_class)| {
                Some(DhcpLease {
                    mac: mac.parse().ok()?,
                    address: address.parse().ok()?,
                    expires_at: u64::try_from(expires_at).unwrap_or(0),
                    hostname,
                    vendor_class,
                })
            })
            .collect();
        leases.sort_by_key(|lease| u32::from(lease.address));
        Ok(leases)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_saved_replaced_listed_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("provdesk.db");
        let inventory = Inventory::open(&path).unwrap();
        let phone: Mac = "000b82123456".parse().unwrap();
        let other: Mac = "000b82654321".parse().unwrap();
        let lease = DhcpLease {
            mac: phone,
            address: Ipv4Addr::new(198, 51, 100, 100),
            expires_at: 2_000_000_000,
            hostname: Some("gxp".into()),
            vendor_class: Some("Grandstream GXP2170".into()),
        };
        inventory.save_dhcp_lease(&lease).unwrap();
        // Another MAC on the same address replaces the first lease.
        let moved = DhcpLease {
            mac: other,
            ..lease.clone()
        };
        inventory.save_dhcp_lease(&moved).unwrap();
        assert_eq!(inventory.dhcp_leases().unwrap(), vec![moved.clone()]);
        inventory.save_dhcp_lease(&lease).unwrap();
        drop(inventory);
        // Survives reopening.
        let inventory = Inventory::open(&path).unwrap();
        assert_eq!(inventory.dhcp_leases().unwrap(), vec![lease]);
        inventory.remove_dhcp_lease(phone).unwrap();
        assert!(inventory.dhcp_leases().unwrap().is_empty());
    }

    #[test]
    fn a_batch_applies_in_order_in_one_go() {
        let inventory = Inventory::open_in_memory().unwrap();
        let lease = |n: u8| DhcpLease {
            mac: Mac::from_bytes([0, 0x0b, 0x82, 0, 0, n]),
            address: Ipv4Addr::new(192, 0, 2, n),
            expires_at: 2_000_000_000,
            hostname: None,
            vendor_class: None,
        };
        let mut writes: Vec<DhcpLeaseWrite> =
            (0..200).map(|n| DhcpLeaseWrite::Save(lease(n))).collect();
        writes.push(DhcpLeaseWrite::Remove(lease(7).mac));
        writes.push(DhcpLeaseWrite::Save(lease(7)));
        writes.push(DhcpLeaseWrite::Remove(lease(8).mac));
        inventory.apply_dhcp_lease_writes(&writes).unwrap();
        let stored = inventory.dhcp_leases().unwrap();
        assert_eq!(stored.len(), 199);
        assert!(stored.contains(&lease(7)));
        assert!(!stored.iter().any(|l| l.mac == lease(8).mac));
    }
}
