//! Entry points for the fuzz target in `fuzz/` (cargo-fuzz) and for its corpus replay in
//! `tests/fuzz_corpus.rs`: the same function runs under libFuzzer and in CI, so a crasher kept
//! in `fuzz/regressions/` stays a test.
//!
//! The harness takes arbitrary bytes, runs them through the responder as a datagram on port
//! 67 (decode, rules, reply) and panics only when a property the I/O side relies on breaks.
//! Not a stable API for anything but the fuzzer.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use dhcproto::v4::{Message, Opcode};
use dhcproto::{Decodable, Encodable};

use crate::{
    Answer, Config, Destination, HwAddr, Lease, LeaseStore, OFFER_HOLD_SECS, Provisioning,
    Responder,
};

/// The target's name (its folder under `fuzz/corpus/`) and its harness.
pub type Target = (&'static str, fn(&[u8]));

/// Every target of this crate.
pub const TARGETS: &[Target] = &[("dhcp_packet", dhcp_packet)];

const SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const POOL_START: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 100);
const POOL_END: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 103);
const RESERVED_MAC: HwAddr = [0x00, 0x0b, 0x82, 0x00, 0x00, 0x01];
const RESERVED: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 50);
const NOW: u64 = 1_000_000;

/// A lease store that checks what the responder writes: only addresses it may hand out.
#[derive(Default)]
struct Checked {
    leases: HashMap<HwAddr, Lease>,
}

impl LeaseStore for Checked {
    fn save(&mut self, lease: &Lease) {
        assert!(
            may_hand_out(lease.mac, lease.address),
            "stored a lease on {} for {:02x?}",
            lease.address,
            lease.mac
        );
        self.leases.insert(lease.mac, lease.clone());
    }

    fn remove(&mut self, mac: &HwAddr) {
        self.leases.remove(mac);
    }
}

fn may_hand_out(mac: HwAddr, address: Ipv4Addr) -> bool {
    (POOL_START..=POOL_END).contains(&address) || (mac == RESERVED_MAC && address == RESERVED)
}

fn responder(answer: Answer) -> Responder {
    let config = Config {
        server: SERVER,
        netmask: Ipv4Addr::new(255, 255, 255, 0),
        pool_start: POOL_START,
        pool_end: POOL_END,
        lease_secs: 3600,
        router: Some(SERVER),
        dns: vec![SERVER],
        ntp: vec![SERVER],
        time_offset: Some(3600),
        answer,
        provisioning: Provisioning::from_servers(Some((SERVER, 8080)), "/gs", Some(SERVER))
            .unwrap_or_else(|| unreachable!("HTTP is on")),
        option43: true,
        reservations: HashMap::from([(RESERVED_MAC, RESERVED)]),
    };
    // One lease from before a restart, so renewals and evictions have something to touch.
    let earlier = Lease {
        mac: [0x00, 0x0b, 0x82, 0x00, 0x00, 0x02],
        address: Ipv4Addr::new(198, 51, 100, 101),
        expires_at: NOW + 10,
        hostname: None,
        vendor_class: Some("Grandstream GXP2170".into()),
    };
    Responder::new(config, vec![earlier])
}

/// A datagram that arrived on port 67, in both answer modes, then again once offers have
/// timed out: handling never panics; a reply decodes, is a BOOTREPLY for the request's
/// transaction and client, and leases only a pool address (or the reservation) to the client
/// that asked; the lease table never holds two clients on one address nor grows past the
/// pool plus the reservation.
pub fn dhcp_packet(data: &[u8]) {
    for answer in [Answer::Phones, Answer::Everyone] {
        let mut responder = responder(answer);
        let mut store = Checked::default();
        for now in [NOW, NOW + OFFER_HOLD_SECS + 1] {
            let Ok(outcome) = responder.handle(data, now, &mut store) else {
                break;
            };
            if let Some(reply) = &outcome.reply {
                check_reply(data, &reply.bytes, reply.to);
            }
            check_table(&responder);
        }
    }
    // The pre-flight reads whatever answers its DISCOVER.
    let _ = crate::parse_rival_offer(data, 0);
    // Whatever decodes also encodes (the responder copies fields of requests into replies).
    if let Ok(message) = Message::from_bytes(data) {
        let _ = message.to_vec();
    }
}

fn check_reply(request: &[u8], reply: &[u8], to: Destination) {
    let request = Message::from_bytes(request).unwrap_or_else(|e| {
        panic!("a reply to a request that does not decode: {e}");
    });
    let reply = Message::from_bytes(reply).unwrap_or_else(|e| {
        panic!("the responder's own reply does not decode: {e}");
    });
    assert_eq!(reply.opcode(), Opcode::BootReply);
    assert_eq!(reply.xid(), request.xid(), "the reply's transaction");
    assert_eq!(reply.chaddr(), request.chaddr(), "the reply's client");
    let yiaddr = reply.yiaddr();
    if !yiaddr.is_unspecified() {
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&request.chaddr()[..6]);
        assert!(may_hand_out(mac, yiaddr), "offered {yiaddr}");
    }
    match to {
        Destination::Broadcast => {}
        Destination::Unicast(address) => assert_eq!(address, request.ciaddr()),
        Destination::Hardware { address, .. } => assert_eq!(address, yiaddr),
    }
}

fn check_table(responder: &Responder) {
    let pool = u32::from(POOL_END) - u32::from(POOL_START) + 1;
    // The pool, the reservation, and the lease loaded at start (its address is in the pool).
    assert!(
        responder.entries.len() <= pool as usize + 1,
        "{} entries for {pool} addresses",
        responder.entries.len()
    );
    let mut seen = HashSet::new();
    for entry in responder.entries.values() {
        if responder.owners.contains_key(&entry.address) {
            assert!(
                seen.insert(entry.address),
                "{} held twice in the owners' index",
                entry.address
            );
        }
    }
    for (address, owner) in &responder.owners {
        let entry = responder.entries.get(owner);
        assert!(
            entry.is_some_and(|entry| entry.address == *address),
            "the owners' index names {address} for a client that does not hold it"
        );
    }
}

#[cfg(test)]
mod tests {
    use dhcproto::v4::{DhcpOption, Flags, MessageType};

    use super::*;

    fn discover() -> Vec<u8> {
        let mut message = Message::default();
        message
            .set_xid(7)
            .set_flags(Flags::default().set_broadcast())
            .set_chaddr(&[0x00, 0x0b, 0x82, 0x12, 0x34, 0x56]);
        let opts = message.opts_mut();
        opts.insert(DhcpOption::MessageType(MessageType::Discover));
        opts.insert(DhcpOption::ClassIdentifier(b"Grandstream GXP2170".to_vec()));
        opts.insert(DhcpOption::Hostname("GXP2170".into()));
        message.to_vec().expect("encodes")
    }

    /// The offset of the options, after the 236-byte header and the magic cookie.
    const OPTIONS: usize = 240;

    /// Malformed datagrams of every kind the LAN can send: each truncation of a real
    /// DISCOVER, each option length byte set to 0 and 255, options without an end, a huge
    /// datagram, nonsense header fields, and overloaded `sname`/`file` fields.
    fn malformed() -> Vec<Vec<u8>> {
        let good = discover();
        let mut inputs: Vec<Vec<u8>> = (0..good.len()).map(|n| good[..n].to_vec()).collect();
        // Every byte of the options section as a length: 0, 255, and one past the end.
        for at in OPTIONS..good.len() {
            for value in [0u8, 1, 254, 255] {
                let mut bad = good.clone();
                bad[at] = value;
                inputs.push(bad);
            }
        }
        let mut endless = good.clone();
        endless.pop();
        inputs.push(endless);
        let mut huge = good.clone();
        huge.truncate(good.len() - 1);
        huge.extend(
            std::iter::repeat_n([43u8, 255].iter().chain(&[0u8; 255]).copied(), 256).flatten(),
        );
        huge.push(255);
        inputs.push(huge);
        inputs.push(vec![0u8; 65_535]);
        inputs.push(vec![0xffu8; 65_535]);
        // Header fields: opcode, htype, hlen (chaddr length past its 16 bytes), hops.
        for (at, value) in [
            (0, 2u8),
            (0, 9),
            (1, 0),
            (1, 6),
            (2, 0),
            (2, 16),
            (2, 255),
            (3, 255),
        ] {
            let mut bad = good.clone();
            bad[at] = value;
            inputs.push(bad);
        }
        // A broken magic cookie.
        let mut cookie = good.clone();
        cookie[236] ^= 0xff;
        inputs.push(cookie);
        // Option 52 (overload) pointing into sname/file full of garbage lengths.
        let mut overload = good.clone();
        overload.truncate(good.len() - 1);
        overload.extend_from_slice(&[52, 1, 3, 255]);
        for byte in &mut overload[44..236] {
            *byte = 0xfe;
        }
        inputs.push(overload);
        // A message type byte outside 1–8, twice, and a requested address of the wrong size.
        let mut types = good.clone();
        types.truncate(good.len() - 1);
        types.extend_from_slice(&[53, 1, 200, 53, 1, 3, 50, 3, 198, 51, 100, 255]);
        inputs.push(types);
        inputs
    }

    #[test]
    fn malformed_datagrams_never_break_the_responder() {
        let inputs = malformed();
        assert!(inputs.len() > 300, "{} inputs", inputs.len());
        let mut parsed = 0;
        for (i, input) in inputs.iter().enumerate() {
            if std::panic::catch_unwind(|| dhcp_packet(input)).is_err() {
                panic!("input {i} ({} bytes) panics: {input:02x?}", input.len());
            }
            parsed += usize::from(Message::from_bytes(input).is_ok());
        }
        // The set reaches the responder's rules too, not only the decoder's refusals.
        assert!(parsed > 100, "only {parsed} inputs decode");
    }

    #[test]
    fn a_real_discover_is_answered_inside_the_harness() {
        let mut responder = responder(Answer::Phones);
        let outcome = responder
            .handle(&discover(), NOW, &mut Checked::default())
            .expect("decodes");
        let reply = outcome.reply.expect("an offer");
        check_reply(&discover(), &reply.bytes, reply.to);
        dhcp_packet(&discover());
    }

    #[test]
    #[should_panic(expected = "offered")]
    fn the_harness_catches_an_address_outside_the_pool() {
        let mut reply = Message::from_bytes(&discover()).expect("decodes");
        reply
            .set_opcode(Opcode::BootReply)
            .set_yiaddr(Ipv4Addr::new(198, 51, 100, 7));
        let bytes = reply.to_vec().expect("encodes");
        check_reply(&discover(), &bytes, Destination::Broadcast);
    }
}
