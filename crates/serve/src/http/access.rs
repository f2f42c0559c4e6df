//! The IP allow-list in front of every HTTP(S) request: CIDR blocks and single addresses,
//! IPv4 and IPv6. An empty list allows everyone (the desk's default).
//!
//! Invariant: an IPv4 peer reaching a dual-stack socket shows up as `::ffff:a.b.c.d`; it is
//! matched as the IPv4 address it is, so a rule `10.0.0.0/8` covers it.

use std::net::IpAddr;

/// One `address/prefix` rule; the address is kept with its host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rule {
    network: IpAddr,
    prefix: u8,
}

impl Rule {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = mask_v4(self.prefix);
                u32::from(ip) & mask == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = mask_v6(self.prefix);
                u128::from(ip) & mask == u128::from(net)
            }
            _ => false,
        }
    }
}

fn mask_v4(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask_v6(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

/// The peers allowed to fetch anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessList {
    rules: Vec<Rule>,
}

impl AccessList {
    /// Allows every peer.
    pub fn allow_all() -> AccessList {
        AccessList::default()
    }

    /// Parses `192.168.1.0/24`, `10.0.0.5`, `::1`, `fd00::/8`. Every bad entry is reported,
    /// one per line, so a technician fixes them all at once.
    pub fn parse(entries: &[String]) -> Result<AccessList, String> {
        let mut rules = Vec::with_capacity(entries.len());
        let mut errors = Vec::new();
        for entry in entries {
            match parse_rule(entry.trim()) {
                Ok(rule) => rules.push(rule),
                Err(e) => errors.push(format!("allow-list entry {entry:?}: {e}")),
            }
        }
        if errors.is_empty() {
            Ok(AccessList { rules })
        } else {
            Err(errors.join("\n"))
        }
    }

    pub fn allows_everyone(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn allows(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.rules.is_empty() || self.rules.iter().any(|rule| rule.contains(peer))
    }
}

fn parse_rule(text: &str) -> Result<Rule, String> {
    let (addr, prefix) = match text.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (text, None),
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| "not an IPv4 or IPv6 address".to_string())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) => match p.parse::<u8>() {
            Ok(p) if p <= max => p,
            _ => return Err(format!("prefix length must be a number from 0 to {max}")),
        },
    };
    // `::ffff:10.0.0.0/104` means IPv4 `10.0.0.0/8`; peers are canonicalized the same way.
    let (addr, prefix) = match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) if prefix >= 96 => (IpAddr::V4(v4), prefix - 96),
            _ => (addr, prefix),
        },
        IpAddr::V4(_) => (addr, prefix),
    };
    let network = match addr {
        IpAddr::V4(v4) => IpAddr::V4((u32::from(v4) & mask_v4(prefix)).into()),
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & mask_v6(prefix)).into()),
    };
    Ok(Rule { network, prefix })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> AccessList {
        let entries: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
        AccessList::parse(&entries).unwrap()
    }

    fn check(entries: &[&str], peer: &str, allowed: bool) {
        let peer: IpAddr = peer.parse().unwrap();
        assert_eq!(list(entries).allows(peer), allowed, "{entries:?} {peer}");
    }

    #[test]
    fn matches_cidr_blocks_and_single_addresses() {
        check(&[], "203.0.113.9", true);
        check(&["10.0.0.0/8"], "10.200.3.4", true);
        check(&["10.0.0.0/8"], "11.0.0.1", false);
        check(&["10.0.0.0/8"], "127.0.0.1", false);
        check(&["192.168.1.77/24"], "192.168.1.1", true);
        check(&["192.168.1.5"], "192.168.1.5", true);
        check(&["192.168.1.5"], "192.168.1.6", false);
        check(&["0.0.0.0/0"], "198.51.100.1", true);
        check(&["::1"], "::1", true);
        check(&["fd00::/8"], "fd12:3456::1", true);
        check(&["fd00::/8"], "fe80::1", false);
        check(&["::/0"], "10.0.0.1", false);
        check(&["10.0.0.0/8", "::1"], "::1", true);
    }

    #[test]
    fn ipv4_mapped_peers_and_rules_match_as_ipv4() {
        check(&["10.0.0.0/8"], "::ffff:10.1.2.3", true);
        check(&["10.0.0.0/8"], "::ffff:11.1.2.3", false);
        check(&["::ffff:10.0.0.0/104"], "10.9.9.9", true);
        check(&["::ffff:127.0.0.1"], "127.0.0.1", true);
    }

    #[test]
    fn reports_every_bad_entry() {
        let entries: Vec<String> = ["10.0.0.0/33", "fd00::/129", "nonsense", "10.0.0.1/x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let err = AccessList::parse(&entries).unwrap_err();
        assert_eq!(err.lines().count(), 4, "{err}");
        assert!(err.contains("0 to 32"), "{err}");
        assert!(err.contains("0 to 128"), "{err}");
        assert!(err.contains("not an IPv4"), "{err}");
    }
}
