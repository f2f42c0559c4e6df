//! The IP allow-list in front of every request of every protocol (asked through
//! `crate::access::AccessPolicy`): CIDR blocks and single addresses,
//! IPv4 and IPv6, parsed and matched by `provdesk_core::ip_block` (which also checks the
//! entries in Settings). An empty list allows everyone (the desk's default).

use std::net::IpAddr;

use provdesk_core::ip_block::IpBlock;

/// The peers allowed to fetch anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessList {
    rules: Vec<IpBlock>,
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
            match entry.parse::<IpBlock>() {
                Ok(rule) => rules.push(rule),
                Err(e) => errors.push(format!("allow-list entry: {e}")),
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
        self.rules.is_empty() || self.rules.iter().any(|rule| rule.contains(peer))
    }
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
    fn an_empty_list_allows_everyone_and_any_rule_admits() {
        check(&[], "203.0.113.9", true);
        check(&["10.0.0.0/8"], "10.200.3.4", true);
        check(&["10.0.0.0/8"], "127.0.0.1", false);
        check(&["10.0.0.0/8", "::1"], "::1", true);
        check(&["10.0.0.0/8", "::1"], "::2", false);
        // An IPv4 phone on a dual-stack socket.
        check(&["10.0.0.0/8"], "::ffff:10.1.2.3", true);
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
        assert!(err.contains("not an IPv4 or IPv6 address"), "{err}");
    }
}
