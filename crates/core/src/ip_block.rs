//! An address block of the allow-list: `192.168.1.0/24`, `10.0.0.5`, `::1`, `fd00::/8`.
//! The one parser of that syntax: the settings editor checks entries with it and the HTTP
//! server matches peers with it, so what Settings accepts is what the server enforces.
//!
//! Invariant: an IPv4-mapped IPv6 block (`::ffff:10.0.0.0/104`) is kept as the IPv4 block it
//! means, and [`IpBlock::contains`] canonicalizes peers the same way, because an IPv4 phone
//! reaching a dual-stack socket shows up as `::ffff:a.b.c.d`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An address with a prefix length; the address is kept with its host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpBlock {
    network: IpAddr,
    prefix: u8,
}

impl IpBlock {
    pub fn contains(&self, peer: IpAddr) -> bool {
        match (self.network, peer.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                u32::from(ip) & mask_v4(self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                u128::from(ip) & mask_v6(self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

/// Why an entry is not a block, worded for the technician who typed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpBlockError(String);

impl fmt::Display for IpBlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for IpBlockError {}

impl FromStr for IpBlock {
    type Err = IpBlockError;

    /// Surrounding spaces are ignored.
    fn from_str(text: &str) -> Result<IpBlock, IpBlockError> {
        let entry = text.trim();
        let (address, prefix) = match entry.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (entry, None),
        };
        let address: IpAddr = address.parse().map_err(|_| {
            IpBlockError(format!(
                "{entry:?} is not an IPv4 or IPv6 address or CIDR block: write e.g. 192.168.1.0/24, 10.0.0.5 or fd00::/8"
            ))
        })?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(p) if p <= max => p,
                _ => {
                    return Err(IpBlockError(format!(
                        "{entry:?}: the prefix after '/' must be a number from 0 to {max}"
                    )));
                }
            },
        };
        let (address, prefix) = match address {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) if prefix >= 96 => (IpAddr::V4(v4), prefix - 96),
                _ => (address, prefix),
            },
            IpAddr::V4(_) => (address, prefix),
        };
        let network = match address {
            IpAddr::V4(v4) => IpAddr::V4((u32::from(v4) & mask_v4(prefix)).into()),
            IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & mask_v6(prefix)).into()),
        };
        Ok(IpBlock { network, prefix })
    }
}

fn mask_v4(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask_v6(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contains(block: &str, peer: &str) -> bool {
        let block: IpBlock = block.parse().unwrap();
        block.contains(peer.parse().unwrap())
    }

    #[test]
    fn matches_blocks_and_single_addresses() {
        assert!(contains("10.0.0.0/8", "10.200.3.4"));
        assert!(!contains("10.0.0.0/8", "11.0.0.1"));
        assert!(contains("192.168.1.77/24", "192.168.1.1"));
        assert!(contains(" 192.168.1.5 ", "192.168.1.5"));
        assert!(!contains("192.168.1.5", "192.168.1.6"));
        assert!(contains("0.0.0.0/0", "198.51.100.1"));
        assert!(contains("::1", "::1"));
        assert!(contains("fd00::/8", "fd12:3456::1"));
        assert!(!contains("fd00::/8", "fe80::1"));
        assert!(!contains("::/0", "10.0.0.1"));
    }

    #[test]
    fn ipv4_mapped_peers_and_blocks_match_as_ipv4() {
        assert!(contains("10.0.0.0/8", "::ffff:10.1.2.3"));
        assert!(!contains("10.0.0.0/8", "::ffff:11.1.2.3"));
        assert!(contains("::ffff:10.0.0.0/104", "10.9.9.9"));
        assert!(contains("::ffff:127.0.0.1", "127.0.0.1"));
    }

    #[test]
    fn explains_bad_entries() {
        let error = |text: &str| text.parse::<IpBlock>().unwrap_err().to_string();
        assert!(error("10.0.0.0/33").contains("from 0 to 32"));
        assert!(error("fd00::/129").contains("from 0 to 128"));
        assert!(error("10.0.0.1/x").contains("from 0 to 32"));
        assert!(error("10.0.0.1/").contains("from 0 to 32"));
        assert!(error("office-lan").contains("not an IPv4 or IPv6 address"));
        assert!(error("").contains("not an IPv4"));
        assert!(error("10.0.0.0/8/8").contains("prefix"));
    }
}
