//! Scenario (issue 13, item 5): one address floods the real `provdesk serve` with 300 TFTP
//! read requests it never acknowledges and holds many HTTP connections, while a phone on
//! another address fetches with tftp-hpa and curl. With the shipped `[limits]` the flood
//! gets its share and a busy answer for the rest, the phone is served throughout, and the
//! flood's transfers end at the first-ACK deadline, each logged once.
//!
//! 127.0.0.2 is the flooding host and 127.0.0.1 the phone: both are loopback on Linux. Every
//! wait is on an event line with a timeout; every loop is bounded.

use std::io::Write as _;
use std::net::{TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use provdesk_core::desk::LimitsSettings;
use provdesk_core::inventory::{FetchLogQuery, Inventory};
use serde_json::Value;

mod support;
use support::{Desk, Server, TFTP_AND_HTTP, text, tftp_get};

const KNOWN: &str = "000b82123456";
const FLOOD: usize = 300;
const FLOODER: &str = "127.0.0.2";

fn curl(url: &str, local: &Path) -> Output {
    Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "30", "--output"])
        .arg(local)
        .args(["--write-out", "%{http_code}"])
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .expect("curl must be installed; scripts/test installs it")
}

/// An octet read request, as any TFTP client sends it.
fn read_request(name: &str) -> Vec<u8> {
    let mut packet = vec![0, 1];
    packet.extend_from_slice(name.as_bytes());
    packet.push(0);
    packet.extend_from_slice(b"octet\0");
    packet
}

fn from_flooder(event: &Value) -> bool {
    event["event"] == "fetch"
        && event["peer"]
            .as_str()
            .is_some_and(|p| p.starts_with(&format!("{FLOODER}:")))
}

fn reason(event: &Value) -> &str {
    event["outcome"]["reason"].as_str().unwrap_or_default()
}

#[test]
fn a_flooding_address_does_not_make_other_phones_busy() {
    let desk = Desk::init();
    desk.add_office_phone(KNOWN, "s3cret-pw", &[]);
    let firmware: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(desk.root.join("firmware/gxp2170fw.bin"), &firmware).expect("firmware");
    // The shipped limits, as a technician's desk has them.
    let limits = LimitsSettings::default();
    let per_address = limits.tftp_transfers_per_address as usize;
    assert!(per_address < FLOOD && FLOOD > limits.tftp_transfers as usize / 2);
    let work = tempfile::tempdir().expect("work dir");
    let local = |name: &str| work.path().join(name);

    let mut server = Server::start(&desk, TFTP_AND_HTTP);
    let tftp_port = server.port("tftp");
    let http_port = server.port("http");

    // 300 requests from 127.0.0.2, each from its own port, none ever acknowledged. They go
    // out in batches of 20, each batch's answers read off the wire before the next, so the
    // kernel never drops a request for a full socket buffer (which would test the kernel,
    // not the server). The sockets stay open so the server's packets land somewhere.
    let xml_name = format!("cfg{KNOWN}.xml");
    let request = read_request(&xml_name);
    let mut flood: Vec<UdpSocket> = Vec::with_capacity(FLOOD);
    let (mut data, mut busy) = (0, 0);
    while flood.len() < FLOOD {
        let batch: Vec<UdpSocket> = (0..20)
            .map(|_| {
                let socket = UdpSocket::bind((FLOODER, 0)).expect("bind 127.0.0.2");
                socket
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .expect("read timeout");
                socket
                    .send_to(&request, ("127.0.0.1", tftp_port))
                    .expect("send");
                socket
            })
            .collect();
        for socket in &batch {
            let mut reply = [0u8; 2048];
            let (len, _) = socket
                .recv_from(&mut reply)
                .expect("an answer to each request");
            match reply[..len] {
                [0, 3, ..] => data += 1,
                [0, 5, 0, 0, ref message @ ..] => {
                    let message = String::from_utf8_lossy(message);
                    assert!(
                        message.contains("too many transfers from this address"),
                        "{message}"
                    );
                    busy += 1;
                }
                ref other => panic!("unexpected answer {other:?}"),
            }
        }
        flood.extend(batch);
    }
    assert_eq!((data, busy), (per_address, FLOOD - per_address));
    // Each refusal is one logged fetch.
    for _ in 0..FLOOD - per_address {
        let refused = server.wait_for("the flood's refusals", |e| {
            from_flooder(e) && reason(e).contains("too many transfers from this address")
        });
        assert_eq!(refused["name"], xml_name.as_str(), "{refused}");
        assert_eq!(refused["outcome"]["kind"], "failed", "{refused}");
    }

    // Meanwhile (the flood holds its share for 3 s) the phone on 127.0.0.1 gets its files.
    let out = tftp_get("127.0.0.1", tftp_port, &xml_name, &local("known.xml"));
    let served = std::fs::read(local("known.xml")).unwrap_or_default();
    let built = std::fs::read(desk.root.join("build").join(&xml_name)).expect("built file");
    assert!(
        served == built,
        "the phone did not get its file while 127.0.0.2 floods: {}",
        text(&out)
    );
    let fetch = server.wait_for("the phone's TFTP fetch", |e| {
        e["event"] == "fetch" && e["name"] == xml_name.as_str() && !from_flooder(e)
    });
    assert_eq!(fetch["outcome"]["kind"], "served", "{fetch}");
    let out = curl(
        &format!("tftp://127.0.0.1:{tftp_port}/gxp2170fw.bin"),
        &local("fw.bin"),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(std::fs::read(local("fw.bin")).expect("firmware") == firmware);
    let fetch = server.wait_for_fetch("gxp2170fw.bin");
    assert_eq!(fetch["outcome"]["kind"], "served", "{fetch}");

    // HTTP: 127.0.0.2 opens more connections than its share and sends half a head on each
    // (a slow client); those past the share are answered 503 and logged, and the phone on
    // 127.0.0.1 is served.
    let http_share = limits.http_connections_per_address as usize;
    let held: Vec<TcpStream> = (0..http_share + 5)
        .map(|_| {
            let socket = socket2::Socket::new(
                socket2::Domain::IPV4,
                socket2::Type::STREAM,
                Some(socket2::Protocol::TCP),
            )
            .expect("socket");
            let from: std::net::SocketAddr = format!("{FLOODER}:0").parse().expect("address");
            socket.bind(&from.into()).expect("bind 127.0.0.2");
            let to: std::net::SocketAddr = ([127, 0, 0, 1], http_port).into();
            socket
                .connect_timeout(&to.into(), Duration::from_secs(10))
                .expect("connect");
            let mut stream = TcpStream::from(socket);
            stream
                .write_all(b"GET /cfg.xml HTTP/1.1\r\n")
                .expect("half a head");
            stream
        })
        .collect();
    for _ in 0..5 {
        let refused = server.wait_for("the refused connections", |e| {
            from_flooder(e) && e["name"] == "(connection limit)"
        });
        assert_eq!(refused["protocol"], "http", "{refused}");
        assert!(reason(&refused).contains("per-address limit"), "{refused}");
    }
    let out = curl(
        &format!("http://127.0.0.1:{http_port}/cfg.xml"),
        &local("cfg.xml"),
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "200",
        "{}",
        text(&out)
    );
    server.wait_for_fetch("cfg.xml");

    // The flood's transfers end at the first-ACK deadline, not after the whole retry budget,
    // each logged once (some may have ended, on a slow machine, while the phone fetched).
    let ended = |e: &Value| {
        from_flooder(e)
            && e["name"] == xml_name.as_str()
            && reason(e).contains("no acknowledgement of the first packet")
    };
    let already = server.seen.iter().filter(|e| ended(e)).count();
    for _ in already..per_address {
        server.wait_for("the flood's transfers ending", ended);
    }
    drop(held);
    drop(flood);

    let (status, seen) = server.terminate();
    assert!(status.success(), "exit status {status}");
    // The phone was never told "busy", on either protocol.
    let phone_refusals: Vec<&Value> = seen
        .iter()
        .filter(|e| e["event"] == "fetch" && !from_flooder(e) && reason(e).contains("busy"))
        .collect();
    assert!(phone_refusals.is_empty(), "{phone_refusals:#?}");
    // Every fetch, the flood's included, is in the fetch log.
    let inventory = Inventory::open(&desk.root.join("provdesk.db")).expect("open the inventory");
    let log = inventory
        .fetch_log(&FetchLogQuery {
            limit: Some(10_000),
            ..FetchLogQuery::default()
        })
        .expect("fetch log");
    let fetches = seen.iter().filter(|e| e["event"] == "fetch").count();
    assert_eq!(log.len(), fetches);
    let flood_rows = log
        .iter()
        .filter(|row| row.peer.starts_with(&format!("{FLOODER}:")) && row.name == xml_name)
        .count();
    assert_eq!(flood_rows, FLOOD);
}
