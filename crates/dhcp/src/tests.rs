use super::*;

const SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const PHONE: HwAddr = [0x00, 0x0b, 0x82, 0x12, 0x34, 0x56];
const OTHER: HwAddr = [0x00, 0x0b, 0x82, 0x65, 0x43, 0x21];
const NOW: u64 = 1_000_000;

fn config() -> Config {
    Config {
        server: SERVER,
        netmask: Ipv4Addr::new(255, 255, 255, 0),
        pool_start: Ipv4Addr::new(198, 51, 100, 100),
        pool_end: Ipv4Addr::new(198, 51, 100, 102),
        lease_secs: 3600,
        router: Some(SERVER),
        dns: vec![SERVER],
        ntp: vec![Ipv4Addr::new(198, 51, 100, 2)],
        time_offset: Some(3600),
        answer: Answer::Phones,
        provisioning: Provisioning::from_servers(Some((SERVER, 8080)), "", None)
            .expect("http is on"),
        option43: true,
        reservations: HashMap::new(),
    }
}

#[derive(Default)]
struct Memory {
    leases: HashMap<HwAddr, Lease>,
}

impl LeaseStore for Memory {
    fn save(&mut self, lease: &Lease) {
        self.leases.insert(lease.mac, lease.clone());
    }
    fn remove(&mut self, mac: &HwAddr) {
        self.leases.remove(mac);
    }
}

fn client(kind: MessageType, mac: HwAddr, vendor: Option<&str>) -> Message {
    let mut message = Message::default();
    message.set_xid(42).set_chaddr(&mac);
    message.opts_mut().insert(DhcpOption::MessageType(kind));
    if let Some(vendor) = vendor {
        message
            .opts_mut()
            .insert(DhcpOption::ClassIdentifier(vendor.as_bytes().to_vec()));
    }
    message
}

fn phone(kind: MessageType) -> Message {
    client(kind, PHONE, Some("Grandstream GXP2170"))
}

fn send(responder: &mut Responder, message: &Message, store: &mut Memory) -> Outcome {
    let bytes = message.to_vec().expect("encodes");
    responder.handle(&bytes, NOW, store).expect("well formed")
}

fn reply_of(outcome: &Outcome) -> Message {
    let reply = outcome.reply.as_ref().expect("a reply");
    Message::from_bytes(&reply.bytes).expect("reply decodes")
}

fn kinds(outcome: &Outcome) -> Vec<EventKind> {
    outcome.events.iter().map(|event| event.kind).collect()
}

fn request_for(address: Ipv4Addr) -> Message {
    let mut request = phone(MessageType::Request);
    request
        .opts_mut()
        .insert(DhcpOption::ServerIdentifier(SERVER));
    request
        .opts_mut()
        .insert(DhcpOption::RequestedIpAddress(address));
    request
}

#[test]
fn discover_gets_an_offer_from_the_pool_with_the_provisioning_options() {
    let mut responder = Responder::new(config(), vec![]);
    let mut store = Memory::default();
    let outcome = send(&mut responder, &phone(MessageType::Discover), &mut store);
    assert_eq!(kinds(&outcome), [EventKind::Discover, EventKind::Offer]);
    let offer = reply_of(&outcome);
    assert_eq!(offer.opts().msg_type(), Some(MessageType::Offer));
    assert_eq!(offer.opcode(), Opcode::BootReply);
    assert_eq!(offer.xid(), 42);
    assert_eq!(offer.yiaddr(), Ipv4Addr::new(198, 51, 100, 100));
    assert_eq!(offer.siaddr(), SERVER);
    let sname = offer
        .sname_str()
        .and_then(Result::ok)
        .map(|s| s.trim_end_matches('\0'));
    assert_eq!(sname, Some("198.51.100.1"));
    let opts = offer.opts();
    assert_eq!(
        opts.get(OptionCode::TFTPServerName),
        Some(&DhcpOption::TFTPServerName(
            b"http://198.51.100.1:8080/".to_vec()
        ))
    );
    let mut vendor = vec![1, 25];
    vendor.extend_from_slice(b"http://198.51.100.1:8080/");
    assert_eq!(
        opts.get(OptionCode::VendorExtensions),
        Some(&DhcpOption::VendorExtensions(vendor))
    );
    assert_eq!(
        opts.get(OptionCode::ServerIdentifier),
        Some(&DhcpOption::ServerIdentifier(SERVER))
    );
    assert_eq!(
        opts.get(OptionCode::AddressLeaseTime),
        Some(&DhcpOption::AddressLeaseTime(3600))
    );
    assert_eq!(
        opts.get(OptionCode::Router),
        Some(&DhcpOption::Router(vec![SERVER]))
    );
    assert_eq!(
        opts.get(OptionCode::NtpServers),
        Some(&DhcpOption::NtpServers(vec![Ipv4Addr::new(
            198, 51, 100, 2
        )]))
    );
    assert_eq!(
        opts.get(OptionCode::TimeOffset),
        Some(&DhcpOption::TimeOffset(3600))
    );
    assert!(
        opts.get(OptionCode::TFTPServerAddress).is_none(),
        "no TFTP, no option 150"
    );
    // Not a bound lease yet: nothing stored.
    assert!(store.leases.is_empty());
    assert_eq!(
        outcome.reply.as_ref().map(|reply| reply.to),
        Some(Destination::Hardware {
            address: Ipv4Addr::new(198, 51, 100, 100),
            mac: PHONE
        })
    );
}

#[test]
fn phones_mode_ignores_clients_without_the_grandstream_vendor_class() {
    let mut responder = Responder::new(config(), vec![]);
    let mut store = Memory::default();
    for vendor in [None, Some("MSFT 5.0"), Some("udhcp 1.36")] {
        let outcome = send(
            &mut responder,
            &client(MessageType::Discover, OTHER, vendor),
            &mut store,
        );
        assert!(outcome.reply.is_none(), "{vendor:?}");
        assert_eq!(kinds(&outcome), [EventKind::Discover, EventKind::Ignored]);
    }
    // Case does not matter; the model follows.
    let outcome = send(
        &mut responder,
        &client(MessageType::Discover, OTHER, Some("GRANDSTREAM GRP2612W")),
        &mut store,
    );
    assert!(outcome.reply.is_some());
}

#[test]
fn everyone_mode_answers_anyone_but_sends_option_43_only_to_grandstream() {
    let mut responder = Responder::new(
        Config {
            answer: Answer::Everyone,
            ..config()
        },
        vec![],
    );
    let mut store = Memory::default();
    let outcome = send(
        &mut responder,
        &client(MessageType::Discover, OTHER, None),
        &mut store,
    );
    let offer = reply_of(&outcome);
    assert!(offer.opts().get(OptionCode::TFTPServerName).is_some());
    assert!(offer.opts().get(OptionCode::VendorExtensions).is_none());
}

#[test]
fn option_43_can_be_switched_off() {
    let mut responder = Responder::new(
        Config {
            option43: false,
            ..config()
        },
        vec![],
    );
    let outcome = send(
        &mut responder,
        &phone(MessageType::Discover),
        &mut Memory::default(),
    );
    assert!(
        reply_of(&outcome)
            .opts()
            .get(OptionCode::VendorExtensions)
            .is_none()
    );
}

#[test]
fn request_after_offer_is_acked_and_stored() {
    let mut responder = Responder::new(config(), vec![]);
    let mut store = Memory::default();
    let offer = reply_of(&send(
        &mut responder,
        &phone(MessageType::Discover),
        &mut store,
    ));
    let outcome = send(&mut responder, &request_for(offer.yiaddr()), &mut store);
    assert_eq!(kinds(&outcome), [EventKind::Request, EventKind::Ack]);
    let ack = reply_of(&outcome);
    assert_eq!(ack.opts().msg_type(), Some(MessageType::Ack));
    assert_eq!(ack.yiaddr(), offer.yiaddr());
    let stored = store.leases.get(&PHONE).expect("stored");
    assert_eq!(stored.address, offer.yiaddr());
    assert_eq!(stored.expires_at, NOW + 3600);
    assert_eq!(stored.vendor_class.as_deref(), Some("Grandstream GXP2170"));
    assert_eq!(responder.leases(), vec![stored.clone()]);
}

#[test]
fn request_for_an_address_held_by_another_client_is_naked() {
    let mut responder = Responder::new(config(), vec![]);
    let mut store = Memory::default();
    let other = client(MessageType::Discover, OTHER, Some("Grandstream GXP2160"));
    let taken = reply_of(&send(&mut responder, &other, &mut store)).yiaddr();
    let outcome = send(&mut responder, &request_for(taken), &mut store);
    assert_eq!(kinds(&outcome), [EventKind::Request, EventKind::Nak]);
    let nak = reply_of(&outcome);
    assert_eq!(nak.opts().msg_type(), Some(MessageType::Nak));
    assert_eq!(nak.yiaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(
        outcome.reply.as_ref().map(|reply| reply.to),
        Some(Destination::Broadcast)
    );
    assert!(store.leases.is_empty());
}

#[test]
fn request_naming_another_server_drops_the_offer_silently() {
    let mut responder = Responder::new(config(), vec![]);
    let mut store = Memory::default();
    let offered = reply_of(&send(
        &mut responder,
        &phone(MessageType::Discover),
        &mut store,
    ))
    .yiaddr();
    let mut request = phone(MessageType::Request);
    request
        .opts_mut()
        .insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(198, 51, 100, 3)));
    request
        .opts_mut()
        .insert(DhcpOption::RequestedIpAddress(Ipv4Addr::new(
            198, 51, 100, 160,
        )));
    let outcome = send(&mut responder, &request, &mut store);
    assert!(outcome.reply.is_none());
    assert_eq!(kinds(&outcome), [EventKind::Request, EventKind::Ignored]);
    // The offered address is free again for someone else.
    let other = client(MessageType::Discover, OTHER, Some("Grandstream GXP2160"));
    assert_eq!(
        reply_of(&send(&mut responder, &other, &mut store)).yiaddr(),
        offered
    );
}

#[test]
fn init_reboot_is_acked_for_a_known_client_naked_for_a_wrong_address_silent_for_a_stranger() {
    let lease = Lease {
        mac: PHONE,
        address: Ipv4Addr::new(198, 51, 100, 101),
        expires_at: NOW + 100,
        hostname: None,
        vendor_class: None,
    };
    let mut responder = Responder::new(config(), vec![lease]);
    let mut store = Memory::default();
    let mut reboot = phone(MessageType::Request);
    reboot
        .opts_mut()
        .insert(DhcpOption::RequestedIpAddress(Ipv4Addr::new(
            198, 51, 100, 101,
        )));
    let outcome = send(&mut responder, &reboot, &mut store);
    assert_eq!(kinds(&outcome), [EventKind::Request, EventKind::Ack]);
    assert_eq!(store.leases[&PHONE].expires_at, NOW + 3600);

    reboot
        .opts_mut()
        .insert(DhcpOption::RequestedIpAddress(Ipv4Addr::new(
            198, 51, 100, 102,
        )));
    let outcome = send(&mut responder, &reboot, &mut store);
    assert_eq!(kinds(&outcome), [EventKind::Request, EventKind::Nak]);

    let mut stranger = client(MessageType::Request, OTHER, Some("Grandstream GXP2160"));
    stranger
        .opts_mut()
        .insert(DhcpOption::RequestedIpAddress(Ipv4Addr::new(
            198, 51, 100, 102,
        )));
    let outcome = send(&mut responder, &stranger, &mut store);
    assert!(outcome.reply.is_none());
    stranger
        .opts_mut()
        .insert(DhcpOption::RequestedIpAddress(Ipv4Addr::new(192, 0, 2, 7)));
    let outcome = send(&mut responder, &stranger, &mut store);
    assert_eq!(
        kinds(&outcome),
        [EventKind::Request, EventKind::Nak],
        "another network"
    );
}

#[test]
fn renewal_is_unicast_to_the_client() {
    let address = Ipv4Addr::new(198, 51, 100, 100);
    let lease = Lease {
        mac: PHONE,
        address,
        expires_at: NOW + 10,
        hostname: None,
        vendor_class: None,
    };
    let mut responder = Responder::new(config(), vec![lease]);
    let mut renew = phone(MessageType::Request);
    renew.set_ciaddr(address);
    let outcome = send(&mut responder, &renew, &mut Memory::default());
    assert_eq!(kinds(&outcome), [EventKind::Request, EventKind::Ack]);
    assert_eq!(
        outcome.reply.as_ref().map(|reply| reply.to),
        Some(Destination::Unicast(address))
    );
    assert_eq!(reply_of(&outcome).ciaddr(), address);
}

#[test]
fn an_exhausted_pool_is_an_event_not_silence() {
    let mut responder = Responder::new(config(), vec![]);
    let mut store = Memory::default();
    for n in 0..3u8 {
        let mac = [0, 0x0b, 0x82, 0, 0, n];
        let offer = send(
            &mut responder,
            &client(MessageType::Discover, mac, Some("Grandstream")),
            &mut store,
        );
        let mut request = client(MessageType::Request, mac, Some("Grandstream"));
        let opts = request.opts_mut();
        opts.insert(DhcpOption::ServerIdentifier(SERVER));
        opts.insert(DhcpOption::RequestedIpAddress(reply_of(&offer).yiaddr()));
        let ack = send(&mut responder, &request, &mut store);
        assert_eq!(kinds(&ack), [EventKind::Request, EventKind::Ack]);
    }
    let outcome = send(&mut responder, &phone(MessageType::Discover), &mut store);
    assert!(outcome.reply.is_none());
    assert_eq!(
        kinds(&outcome),
        [EventKind::Discover, EventKind::PoolExhausted]
    );
    let detail = outcome.events[1].detail.as_deref().unwrap_or_default();
    assert!(
        detail.contains("198.51.100.100") && detail.contains("198.51.100.102"),
        "{detail}"
    );
    // Leases expire: an hour later the pool has room again.
    let bytes = phone(MessageType::Discover).to_vec().expect("encodes");
    let later = responder
        .handle(&bytes, NOW + 3600, &mut store)
        .expect("parses");
    assert!(later.reply.is_some());
}

#[test]
fn offers_nobody_requested_yield_to_a_new_client_oldest_first() {
    let mut responder = Responder::new(config(), vec![]);
    let mut store = Memory::default();
    let mut offered = Vec::new();
    for n in 0..3u8 {
        let bytes = client(
            MessageType::Discover,
            [2, 0, 0, 0, 0, n],
            Some("Grandstream"),
        )
        .to_vec()
        .expect("encodes");
        let outcome = responder
            .handle(&bytes, NOW + u64::from(n), &mut store)
            .unwrap();
        offered.push(reply_of(&outcome).yiaddr());
    }
    let outcome = responder
        .handle(
            &phone(MessageType::Discover).to_vec().unwrap(),
            NOW + 5,
            &mut store,
        )
        .unwrap();
    assert_eq!(kinds(&outcome), [EventKind::Discover, EventKind::Offer]);
    assert_eq!(
        reply_of(&outcome).yiaddr(),
        offered[0],
        "the oldest offer yields"
    );
    // The client that lost it is NAKed when it asks, and starts again.
    let mut late = client(
        MessageType::Request,
        [2, 0, 0, 0, 0, 0],
        Some("Grandstream"),
    );
    late.opts_mut().insert(DhcpOption::ServerIdentifier(SERVER));
    late.opts_mut()
        .insert(DhcpOption::RequestedIpAddress(offered[0]));
    let outcome = send(&mut responder, &late, &mut store);
    assert_eq!(kinds(&outcome), [EventKind::Request, EventKind::Nak]);
    // The phone's REQUEST for it is acknowledged.
    let outcome = send(&mut responder, &request_for(offered[0]), &mut store);
    assert_eq!(kinds(&outcome), [EventKind::Request, EventKind::Ack]);
}

#[test]
fn a_flood_of_discovers_stays_bounded_by_the_pool() {
    let mut responder = Responder::new(config(), vec![]);
    let mut store = Memory::default();
    for n in 0..5000u32 {
        let [_, a, b, c] = n.to_be_bytes();
        let mac = [2, 0, 0, a, b, c];
        let bytes = client(MessageType::Discover, mac, Some("Grandstream x"))
            .to_vec()
            .expect("encodes");
        let _ = responder.handle(&bytes, NOW, &mut store);
    }
    assert!(responder.entries.len() <= 3);
    assert!(responder.owners.len() <= 3);
    assert!(store.leases.is_empty());
    // The phone after the flood still gets an offer and then its lease.
    let outcome = send(&mut responder, &phone(MessageType::Discover), &mut store);
    assert_eq!(kinds(&outcome), [EventKind::Discover, EventKind::Offer]);
    let address = reply_of(&outcome).yiaddr();
    let outcome = send(&mut responder, &request_for(address), &mut store);
    assert_eq!(kinds(&outcome), [EventKind::Request, EventKind::Ack]);
    assert_eq!(store.leases.len(), 1);
}

#[test]
fn a_client_gets_its_previous_address_back_and_a_requested_one_if_free() {
    let mut responder = Responder::new(config(), vec![]);
    let mut store = Memory::default();
    let mut discover = phone(MessageType::Discover);
    discover
        .opts_mut()
        .insert(DhcpOption::RequestedIpAddress(Ipv4Addr::new(
            198, 51, 100, 102,
        )));
    assert_eq!(
        reply_of(&send(&mut responder, &discover, &mut store)).yiaddr(),
        Ipv4Addr::new(198, 51, 100, 102)
    );
    // Asking for an address outside the pool gets the one it already has.
    discover
        .opts_mut()
        .insert(DhcpOption::RequestedIpAddress(Ipv4Addr::new(
            198, 51, 100, 7,
        )));
    assert_eq!(
        reply_of(&send(&mut responder, &discover, &mut store)).yiaddr(),
        Ipv4Addr::new(198, 51, 100, 102)
    );
}

#[test]
fn reservations_are_honoured_and_kept_from_others() {
    let reserved = Ipv4Addr::new(198, 51, 100, 50);
    let mut reservations = HashMap::new();
    reservations.insert(PHONE, reserved);
    reservations.insert(OTHER, Ipv4Addr::new(198, 51, 100, 100));
    // A reserved device is answered even without the vendor class.
    let mut responder = Responder::new(
        Config {
            reservations,
            ..config()
        },
        vec![],
    );
    let mut store = Memory::default();
    let offer = reply_of(&send(
        &mut responder,
        &client(MessageType::Discover, PHONE, None),
        &mut store,
    ));
    assert_eq!(offer.yiaddr(), reserved);
    let third = client(
        MessageType::Discover,
        [0, 0x0b, 0x82, 9, 9, 9],
        Some("Grandstream"),
    );
    assert_eq!(
        reply_of(&send(&mut responder, &third, &mut store)).yiaddr(),
        Ipv4Addr::new(198, 51, 100, 101)
    );
    let outcome = send(&mut responder, &request_for(reserved), &mut store);
    assert_eq!(kinds(&outcome), [EventKind::Request, EventKind::Ack]);
}

#[test]
fn decline_quarantines_the_address_and_release_frees_it() {
    let mut responder = Responder::new(config(), vec![]);
    let mut store = Memory::default();
    let first = reply_of(&send(
        &mut responder,
        &phone(MessageType::Discover),
        &mut store,
    ))
    .yiaddr();
    send(&mut responder, &request_for(first), &mut store);
    let mut decline = phone(MessageType::Decline);
    decline
        .opts_mut()
        .insert(DhcpOption::RequestedIpAddress(first));
    decline
        .opts_mut()
        .insert(DhcpOption::ServerIdentifier(SERVER));
    let outcome = send(&mut responder, &decline, &mut store);
    assert!(outcome.reply.is_none());
    assert_eq!(kinds(&outcome), [EventKind::Decline]);
    assert!(store.leases.is_empty());
    let second = reply_of(&send(
        &mut responder,
        &phone(MessageType::Discover),
        &mut store,
    ))
    .yiaddr();
    assert_ne!(
        second, first,
        "a declined address is not offered again at once"
    );

    send(&mut responder, &request_for(second), &mut store);
    assert!(store.leases.contains_key(&PHONE));
    let mut release = phone(MessageType::Release);
    release.set_ciaddr(second);
    let outcome = send(&mut responder, &release, &mut store);
    assert_eq!(kinds(&outcome), [EventKind::Release]);
    assert!(outcome.reply.is_none());
    assert!(store.leases.is_empty());
    assert!(responder.leases().is_empty());
}

#[test]
fn inform_gets_the_options_without_an_address() {
    let mut responder = Responder::new(config(), vec![]);
    let mut inform = phone(MessageType::Inform);
    inform.set_ciaddr(Ipv4Addr::new(198, 51, 100, 9));
    let outcome = send(&mut responder, &inform, &mut Memory::default());
    assert_eq!(kinds(&outcome), [EventKind::Inform, EventKind::Ack]);
    let ack = reply_of(&outcome);
    assert_eq!(ack.yiaddr(), Ipv4Addr::UNSPECIFIED);
    assert!(ack.opts().get(OptionCode::AddressLeaseTime).is_none());
    assert!(ack.opts().get(OptionCode::TFTPServerName).is_some());
    assert_eq!(
        outcome.reply.as_ref().map(|reply| reply.to),
        Some(Destination::Unicast(Ipv4Addr::new(198, 51, 100, 9)))
    );
}

#[test]
fn broadcast_flag_means_a_broadcast_reply() {
    let mut responder = Responder::new(config(), vec![]);
    let mut discover = phone(MessageType::Discover);
    discover.set_flags(Flags::default().set_broadcast());
    let outcome = send(&mut responder, &discover, &mut Memory::default());
    assert_eq!(
        outcome.reply.as_ref().map(|reply| reply.to),
        Some(Destination::Broadcast)
    );
    assert!(reply_of(&outcome).flags().broadcast());
}

#[test]
fn relayed_and_malformed_requests_are_not_answered() {
    let mut responder = Responder::new(config(), vec![]);
    let mut relayed = phone(MessageType::Discover);
    relayed.set_giaddr(Ipv4Addr::new(192, 0, 2, 1));
    let outcome = send(&mut responder, &relayed, &mut Memory::default());
    assert!(outcome.reply.is_none());
    assert!(responder.handle(b"\x01\x01\x06", NOW, &mut ()).is_err());
    // A hardware address length past chaddr's 16 bytes is refused, not sliced.
    let mut long = phone(MessageType::Discover).to_vec().expect("encodes");
    long[2] = 255;
    assert!(responder.handle(&long, NOW, &mut ()).is_err());
    assert!(
        responder
            .handle(&[0u8; 300], NOW, &mut ())
            .is_ok_and(|outcome| outcome.reply.is_none())
    );
}

#[test]
fn tftp_only_points_option_66_150_and_siaddr_at_the_tftp_host() {
    let tftp = Ipv4Addr::new(198, 51, 100, 1);
    let provisioning = Provisioning::from_servers(None, "", Some(tftp)).expect("tftp is on");
    assert_eq!(provisioning.option66, "198.51.100.1");
    let mut responder = Responder::new(
        Config {
            provisioning,
            ..config()
        },
        vec![],
    );
    let offer = reply_of(&send(
        &mut responder,
        &phone(MessageType::Discover),
        &mut Memory::default(),
    ));
    assert_eq!(
        offer.opts().get(OptionCode::TFTPServerAddress),
        Some(&DhcpOption::TFTPServerAddress(tftp))
    );
    assert_eq!(
        offer.opts().get(OptionCode::TFTPServerName),
        Some(&DhcpOption::TFTPServerName(b"198.51.100.1".to_vec()))
    );
    assert_eq!(offer.siaddr(), tftp);
}

#[test]
fn provisioning_url_ends_in_a_slash_and_keeps_the_base() {
    let host = Ipv4Addr::new(198, 51, 100, 1);
    let p = Provisioning::from_servers(Some((host, 80)), "/prov/", Some(host)).expect("on");
    assert_eq!(p.option66, "http://198.51.100.1:80/prov/");
    assert_eq!(p.tftp, Some(host));
    assert!(Provisioning::from_servers(None, "", None).is_none());
    assert!(option43(&"x".repeat(256)).is_none());
}

#[test]
fn default_pool_avoids_the_desk() {
    let mask = Ipv4Addr::new(255, 255, 255, 0);
    assert_eq!(
        default_pool(Ipv4Addr::new(198, 51, 100, 1), mask),
        Some((
            Ipv4Addr::new(198, 51, 100, 128),
            Ipv4Addr::new(198, 51, 100, 254)
        ))
    );
    assert_eq!(
        default_pool(Ipv4Addr::new(198, 51, 100, 200), mask),
        Some((
            Ipv4Addr::new(198, 51, 100, 1),
            Ipv4Addr::new(198, 51, 100, 127)
        ))
    );
    assert_eq!(
        default_pool(
            Ipv4Addr::new(198, 51, 100, 1),
            Ipv4Addr::new(255, 255, 255, 254)
        ),
        None
    );
}

#[test]
fn the_pre_flight_probe_reads_a_rivals_offer() {
    let xid = 0x1234_5678;
    let probe = Message::from_bytes(&probe_discover(PHONE, xid)).expect("decodes");
    assert!(probe.flags().broadcast());
    // Another desk, even in phones mode, answers the probe as it would answer a phone.
    let mut responder = Responder::new(config(), vec![]);
    let outcome = responder
        .handle(&probe_discover(PHONE, xid), NOW, &mut ())
        .expect("parses");
    let bytes = outcome.reply.expect("offer").bytes;
    let rival = parse_rival_offer(&bytes, xid).expect("an offer");
    assert_eq!(rival.server, SERVER);
    assert_eq!(rival.address, Ipv4Addr::new(198, 51, 100, 100));
    assert_eq!(rival.router, Some(SERVER));
    assert_eq!(rival.option66.as_deref(), Some("http://198.51.100.1:8080/"));
    assert!(parse_rival_offer(&bytes, xid + 1).is_none());
}

#[test]
fn option_2_carries_the_offset_west_negative_and_is_left_out_when_unset() {
    let mut west = config();
    west.time_offset = Some(-5 * 3600);
    let mut responder = Responder::new(west, vec![]);
    let outcome = send(
        &mut responder,
        &phone(MessageType::Discover),
        &mut Memory::default(),
    );
    let offer = reply_of(&outcome);
    assert_eq!(
        offer.opts().get(OptionCode::TimeOffset),
        Some(&DhcpOption::TimeOffset(-18000))
    );
    // On the wire: code 2, length 4, big-endian two's complement.
    let bytes = &outcome.reply.as_ref().unwrap().bytes;
    assert!(
        bytes
            .windows(6)
            .any(|w| w == [2, 4, 0xff, 0xff, 0xb9, 0xb0]),
        "option 2 encodes -18000"
    );
    let mut unset = config();
    unset.time_offset = None;
    let mut responder = Responder::new(unset, vec![]);
    let outcome = send(
        &mut responder,
        &phone(MessageType::Discover),
        &mut Memory::default(),
    );
    assert!(
        reply_of(&outcome)
            .opts()
            .get(OptionCode::TimeOffset)
            .is_none()
    );
}
