//! The DHCP responder's lease table as the desk shows it: what `provdesk dhcp leases` prints
//! and the Live screen's lease table, with each lease's device where the inventory knows it.

use std::time::{SystemTime, UNIX_EPOCH};

use provdesk_core::Mac;
use serde::Serialize;
use ts_rs::TS;

use crate::error::DeskResult;
use crate::service::DeskService;

/// One lease, with the device it belongs to when the inventory has that MAC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct LeaseRow {
    #[ts(as = "String")]
    pub mac: Mac,
    pub address: String,
    /// Unix seconds.
    #[ts(type = "number")]
    pub expires_at: u64,
    /// The lease's time is up; the address goes to another client only when the pool needs it.
    pub expired: bool,
    pub hostname: Option<String>,
    pub vendor_class: Option<String>,
    /// The device's name or model in the inventory, if it is there.
    pub device: Option<String>,
}

impl DeskService {
    /// Every lease the responder granted, by address.
    pub fn dhcp_leases(&self) -> DeskResult<Vec<LeaseRow>> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let inventory = self.inventory();
        let leases = inventory.dhcp_leases()?;
        let mut rows = Vec::with_capacity(leases.len());
        for lease in leases {
            let device = inventory.get_device(lease.mac)?.map(|device| {
                device
                    .name
                    .filter(|name| !name.is_empty())
                    .unwrap_or(device.model)
            });
            rows.push(LeaseRow {
                mac: lease.mac,
                address: lease.address.to_string(),
                expires_at: lease.expires_at,
                expired: lease.expires_at <= now,
                hostname: lease.hostname,
                vendor_class: lease.vendor_class,
                device,
            });
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use provdesk_core::inventory::DhcpLease;

    use super::*;

    #[test]
    fn leases_come_back_with_their_device() {
        let dir = tempfile::tempdir().unwrap();
        let desk = DeskService::open(dir.path()).unwrap();
        let mac: Mac = "000b82123456".parse().unwrap();
        desk.inventory()
            .save_dhcp_lease(&DhcpLease {
                mac,
                address: Ipv4Addr::new(198, 51, 100, 128),
                expires_at: 1,
                hostname: None,
                vendor_class: Some("Grandstream GXP2170".into()),
            })
            .unwrap();
        let rows = desk.dhcp_leases().unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].address, "198.51.100.128");
        assert!(rows[0].expired);
        assert_eq!(rows[0].device, None);
    }
}
