//! Who owns an address: the MAC behind a peer's IP, as [`crate::access::AccessPolicy`] asks it
//! when `[access] device_files = "owner"` binds a phone's own files to that phone. An
//! [`OwnerDirectory`] answers from what it knows: the kernel's neighbour table
//! ([`NeighbourTable`], for peers on a directly attached link) here, the desk's DHCP leases
//! wherever the DHCP responder keeps them.
//!
//! Invariants: a directory answers only what it saw (an incomplete or failed neighbour entry,
//! an all-zero MAC, or an address that two interfaces map to different MACs is no answer, so
//! an ambiguous peer owns nothing); lookups never block on the network (the neighbour table
//! is read, never probed: the peer's own request has already made the kernel resolve it);
//! a table read is reused for [`NeighbourTable::FRESH`] for the peers in it, and a peer
//! missing from it rereads the table unless a read began after the question was asked (the
//! peer's request made the kernel add it before the question, so that read has it; concurrent
//! questions share one read). A phone on the link is therefore never refused for a stale
//! cache; a flood from peers that are not neighbours costs a read of the (kernel-bounded)
//! table per request, which the servers' per-address limits bound in turn.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use provdesk_core::Mac;

/// Maps a peer's address to the MAC that owns it, as far as one source of truth knows.
pub trait OwnerDirectory: Send + Sync {
    /// What the directory is, for a denial's reason: `neighbour table`, `DHCP lease`.
    fn name(&self) -> &'static str;

    /// The MAC that `peer` belongs to, or `None` when this directory does not know `peer`.
    fn owner_of(&self, peer: IpAddr) -> Option<Mac>;
}

impl fmt::Debug for dyn OwnerDirectory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The addresses the desk's own DHCP responder leased, in memory (the responder keeps it
/// current as it acks and frees leases; asked on every request for a device file, so no
/// database read). An expired lease owns nothing.
#[derive(Debug, Default)]
pub struct LeaseDirectory {
    leases: std::sync::RwLock<HashMap<IpAddr, (Mac, u64)>>,
}

impl LeaseDirectory {
    /// `mac` holds `address` until `expires_at` (Unix seconds); any other address it held is
    /// no longer its own.
    pub fn lease(&self, address: IpAddr, mac: Mac, expires_at: u64) {
        let mut leases = self.write();
        leases.retain(|_, (owner, _)| *owner != mac);
        leases.insert(address, (mac, expires_at));
    }

    /// `mac` gave its address back.
    pub fn release(&self, mac: Mac) {
        self.write().retain(|_, (owner, _)| *owner != mac);
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<IpAddr, (Mac, u64)>> {
        self.leases.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn owner_at(&self, peer: IpAddr, now: u64) -> Option<Mac> {
        let leases = self.leases.read().unwrap_or_else(PoisonError::into_inner);
        leases
            .get(&peer)
            .filter(|(_, expires_at)| *expires_at > now)
            .map(|(mac, _)| *mac)
    }
}

impl OwnerDirectory for LeaseDirectory {
    fn name(&self) -> &'static str {
        "DHCP lease"
    }

    fn owner_of(&self, peer: IpAddr) -> Option<Mac> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.owner_at(peer, now)
    }
}

/// The kernel's neighbour table (ARP for IPv4, NDP for IPv6) of this process's network
/// namespace: the MAC of every peer on a directly attached link that talked to the desk
/// recently. A peer behind a router is not in it (the router is), so it owns nothing.
pub struct NeighbourTable {
    /// `/proc/net/arp`, or a fixture in tests.
    arp: PathBuf,
    /// Whether IPv6 peers are looked up with `ip -6 neigh show` (Linux has no procfs file
    /// for the IPv6 table).
    ipv6: bool,
    v4: Mutex<Cached>,
    v6: Mutex<Cached>,
}

/// One read of a neighbour table: address → MAC.
type Table = HashMap<IpAddr, Mac>;

#[derive(Default)]
struct Cached {
    read_at: Option<Instant>,
    entries: Table,
}

impl NeighbourTable {
    /// How long one read of the table answers for peers found in it. A phone keeps its
    /// address for hours; an address taken over by another MAC is seen within this time.
    pub const FRESH: Duration = Duration::from_secs(1);

    /// This machine's table (the network namespace `provdesk` runs in).
    pub fn system() -> NeighbourTable {
        NeighbourTable {
            arp: PathBuf::from("/proc/net/arp"),
            ipv6: true,
            v4: Mutex::default(),
            v6: Mutex::default(),
        }
    }

    /// A table read from `arp` (the `/proc/net/arp` format), without IPv6: for tests.
    pub fn from_file(arp: PathBuf) -> NeighbourTable {
        NeighbourTable {
            arp,
            ipv6: false,
            ..NeighbourTable::system()
        }
    }

    fn read_v4(&self) -> HashMap<IpAddr, Mac> {
        // A missing or unreadable file (not Linux, no procfs) is an empty table: nobody owns
        // anything, so owner-bound files are served to no one rather than to everyone.
        std::fs::read_to_string(&self.arp)
            .map(|text| unambiguous(parse_proc_net_arp(&text)))
            .unwrap_or_default()
    }

    fn read_v6(&self) -> HashMap<IpAddr, Mac> {
        if !self.ipv6 {
            return HashMap::new();
        }
        Command::new("ip")
            .args(["-6", "neigh", "show"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| unambiguous(parse_ip_neigh(&String::from_utf8_lossy(&out.stdout))))
            .unwrap_or_default()
    }
}

impl OwnerDirectory for NeighbourTable {
    fn name(&self) -> &'static str {
        "neighbour table"
    }

    fn owner_of(&self, peer: IpAddr) -> Option<Mac> {
        // A v4 peer of a dual-stack socket arrives as ::ffff:a.b.c.d.
        let peer = peer.to_canonical();
        let (cache, read): (&Mutex<Cached>, fn(&NeighbourTable) -> Table) = match peer {
            IpAddr::V4(_) => (&self.v4, NeighbourTable::read_v4),
            IpAddr::V6(_) => (&self.v6, NeighbourTable::read_v6),
        };
        let asked = Instant::now();
        let mut cached = cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(read_at) = cached.read_at {
            match cached.entries.get(&peer) {
                Some(&mac) if read_at.elapsed() < Self::FRESH => return Some(mac),
                // Read after the peer's request reached us (and so after the kernel added
                // it, if it ever will): rereading cannot find it.
                None if read_at >= asked => return None,
                _ => {}
            }
        }
        let started = Instant::now();
        cached.entries = read(self);
        cached.read_at = Some(started);
        cached.entries.get(&peer).copied()
    }
}

/// Drops every address that appears with two different MACs (the same IPv6 link-local
/// address on two links, a conflict on one): such a peer cannot be told apart.
fn unambiguous(entries: Vec<(IpAddr, Mac)>) -> HashMap<IpAddr, Mac> {
    let mut table: HashMap<IpAddr, Option<Mac>> = HashMap::new();
    for (ip, mac) in entries {
        table
            .entry(ip)
            .and_modify(|seen| {
                if *seen != Some(mac) {
                    *seen = None;
                }
            })
            .or_insert(Some(mac));
    }
    table
        .into_iter()
        .filter_map(|(ip, mac)| Some((ip, mac?)))
        .collect()
}

/// `ATF_COM` in `/proc/net/arp`'s flags: the entry is resolved.
const ATF_COM: u32 = 0x2;

/// The resolved entries of `/proc/net/arp`:
///
/// ```text
/// IP address       HW type     Flags       HW address            Mask     Device
/// 198.51.100.2     0x1         0x2         00:0b:82:12:34:56     *        d0
/// ```
///
/// Incomplete entries (flags without `ATF_COM`, an all-zero address) and lines that do not
/// parse are skipped.
pub fn parse_proc_net_arp(text: &str) -> Vec<(IpAddr, Mac)> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let ip: IpAddr = fields.next()?.parse().ok()?;
            let _hw_type = fields.next()?;
            let flags = fields.next()?;
            let flags = u32::from_str_radix(flags.strip_prefix("0x").unwrap_or(flags), 16).ok()?;
            let mac = resolved(fields.next()?)?;
            (flags & ATF_COM != 0).then_some((ip, mac))
        })
        .collect()
}

/// The entries of `ip neigh show` that carry a link-layer address:
///
/// ```text
/// fe80::20b:82ff:fe12:3456 dev d0 lladdr 00:0b:82:12:34:56 STALE
/// 2001:db8::7 dev d0 FAILED
/// ```
///
/// Entries in state `FAILED` or `INCOMPLETE` (which may keep an old address) are skipped.
pub fn parse_ip_neigh(text: &str) -> Vec<(IpAddr, Mac)> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let ip: IpAddr = fields.first()?.parse().ok()?;
            if fields.iter().any(|f| matches!(*f, "FAILED" | "INCOMPLETE")) {
                return None;
            }
            let at = fields.iter().position(|f| *f == "lladdr")?;
            Some((ip, resolved(fields.get(at + 1)?)?))
        })
        .collect()
}

/// A hardware address that names a device: a MAC, and not all zeros.
fn resolved(text: &str) -> Option<Mac> {
    let mac: Mac = text.parse().ok()?;
    (mac.hex().as_str() != "000000000000").then_some(mac)
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_lease_owns_its_address_until_it_expires_or_is_released() {
        let directory = LeaseDirectory::default();
        let a: Mac = "000b82aa0001".parse().unwrap();
        let first: IpAddr = "198.51.100.130".parse().unwrap();
        let second: IpAddr = "198.51.100.131".parse().unwrap();
        directory.lease(first, a, 1_000);
        assert_eq!(directory.owner_at(first, 999), Some(a));
        assert_eq!(directory.owner_at(first, 1_000), None, "expired");
        // A new address for the same phone: the old one is no longer its own.
        directory.lease(second, a, 2_000);
        assert_eq!(directory.owner_at(first, 999), None);
        assert_eq!(directory.owner_at(second, 999), Some(a));
        directory.release(a);
        assert_eq!(directory.owner_at(second, 999), None);
        assert_eq!(directory.name(), "DHCP lease");
    }

    use super::*;

    fn mac(text: &str) -> Mac {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    const ARP: &str = "\
IP address       HW type     Flags       HW address            Mask     Device
198.51.100.2     0x1         0x2         00:0b:82:12:34:56     *        d0
198.51.100.3     0x1         0x0         00:00:00:00:00:00     *        d0
198.51.100.4     0x1         0x6         00:0b:82:aa:bb:cc     *        d0
198.51.100.5     0x1         0x2         00:00:00:00:00:00     *        d0
198.51.100.6     0x1         0x2         not-a-mac             *        d0
garbage
198.51.100.9     0x1         0x2         00:0b:82:00:00:09     *        d0
198.51.100.9     0x1         0x2         00:0b:82:00:00:99     *        d1
";

    #[test]
    fn proc_net_arp_gives_the_resolved_entries_only() {
        assert_eq!(
            parse_proc_net_arp(ARP),
            [
                (ip("198.51.100.2"), mac("000b82123456")),
                (ip("198.51.100.4"), mac("000b82aabbcc")),
                (ip("198.51.100.9"), mac("000b82000009")),
                (ip("198.51.100.9"), mac("000b82000099")),
            ]
        );
        assert_eq!(parse_proc_net_arp(""), []);
        // The header alone, as on a machine that talked to nobody yet.
        assert_eq!(parse_proc_net_arp(ARP.lines().next().unwrap()), []);
    }

    #[test]
    fn ip_neigh_gives_the_entries_with_an_address() {
        let text = "\
fe80::20b:82ff:fe12:3456 dev d0 lladdr 00:0b:82:12:34:56 STALE
2001:db8::7 dev d0 FAILED
2001:db8::8 dev d0 lladdr 00:0b:82:00:00:08 router REACHABLE
2001:db8::9 dev d0 lladdr 00:0b:82:00:00:09 INCOMPLETE
198.51.100.2 dev d0 lladdr 00:0b:82:12:34:56 REACHABLE
";
        assert_eq!(
            parse_ip_neigh(text),
            [
                (ip("fe80::20b:82ff:fe12:3456"), mac("000b82123456")),
                (ip("2001:db8::8"), mac("000b82000008")),
                (ip("198.51.100.2"), mac("000b82123456")),
            ]
        );
    }

    #[test]
    fn the_table_answers_for_resolved_unambiguous_peers_and_rereads_for_new_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("arp");
        std::fs::write(&path, ARP).unwrap();
        let table = NeighbourTable::from_file(path.clone());
        assert_eq!(table.name(), "neighbour table");
        assert_eq!(
            table.owner_of(ip("198.51.100.2")),
            Some(mac("000b82123456"))
        );
        assert_eq!(
            table.owner_of(ip("::ffff:198.51.100.2")),
            Some(mac("000b82123456"))
        );
        assert_eq!(table.owner_of(ip("198.51.100.3")), None, "incomplete");
        assert_eq!(table.owner_of(ip("198.51.100.9")), None, "two MACs");
        assert_eq!(table.owner_of(ip("2001:db8::8")), None, "no IPv6 here");

        // A peer that appears after the last read is found at once: its question rereads.
        let mut grown = ARP.to_string();
        grown.push_str(
            "198.51.100.10    0x1         0x2         00:0b:82:00:00:10     *        d0\n",
        );
        std::fs::write(&path, grown).unwrap();
        assert_eq!(
            table.owner_of(ip("198.51.100.10")),
            Some(mac("000b82000010"))
        );
        // A known peer is answered from the last read while it is fresh, even if the
        // table changed since; after FRESH, it is read again.
        std::fs::write(&path, ARP.replace("00:0b:82:12:34:56", "00:0b:82:99:99:99")).unwrap();
        assert_eq!(
            table.owner_of(ip("198.51.100.2")),
            Some(mac("000b82123456"))
        );
        table.v4.lock().unwrap().read_at = Instant::now().checked_sub(NeighbourTable::FRESH);
        assert_eq!(
            table.owner_of(ip("198.51.100.2")),
            Some(mac("000b82999999"))
        );

        // No table at all (not Linux): nobody owns anything.
        let none = NeighbourTable::from_file(dir.path().join("missing"));
        assert_eq!(none.owner_of(ip("198.51.100.2")), None);
    }
}
