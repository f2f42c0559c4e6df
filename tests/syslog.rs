//! Scenario: the real `provdesk serve --syslog` on loopback, fed by util-linux `logger` (RFC
//! 3164 and RFC 5424), by malformed datagrams, a 64 KB line and a flood of 10,000 lines a
//! second for 5 s while curl keeps fetching over HTTP. Lines must reach the right device's
//! timeline (the inventory's `device_events`, read with `sqlite3`) and the live JSON log;
//! floods and huge lines are cut and counted, storage stays bounded and the servers keep
//! answering.
//!
//! `logger` cannot choose its source address, so the phone whose address the lines come from
//! is made to own 127.0.0.1 by fetching its file from there first (as a phone does before it
//! logs); the other phone is named by the MAC in its line, as Grandstream's `GS_LOG: [MAC]`
//! lines do.

use std::net::UdpSocket;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod support;
use support::{Desk, Server, WAIT, text};

/// The phone that owns 127.0.0.1 (it fetched from there).
const LOCAL_PHONE: &str = "000b82000001";
/// The phone named in a line.
const NAMED_PHONE: &str = "000b82000002";
const AGENT: &str = "Grandstream Model HW GXP2170 SW 1.0.11.3 DevId 000b82000001";

/// The receiver's defaults (`provdesk_serve::syslog::SyslogConfig`): one address's share.
const PER_SOURCE_RATE: u64 = 100;
const PER_SOURCE_BURST: u64 = 500;
/// `provdesk_serve::recorder::MAX_TIMELINE_ROWS_PER_DEVICE`.
const MAX_ROWS_PER_DEVICE: u64 = 2_000;
/// The largest UDP payload over IPv4.
const HUGE: usize = 65_507;

fn curl(url: &str, agent: &str) -> Output {
    Command::new("curl")
        .args([
            "--silent",
            "--show-error",
            "--max-time",
            "10",
            "--user-agent",
        ])
        .arg(agent)
        .args(["--write-out", "\n%{http_code}", url])
        .stdin(Stdio::null())
        .output()
        .expect("curl must be installed; scripts/test installs it")
}

/// The body and the status of a GET.
fn get(url: &str, agent: &str) -> (String, String) {
    let out = curl(url, agent);
    let all = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = all.rsplit_once('\n').unwrap_or(("", &all));
    (body.to_string(), status.to_string())
}

/// `logger --rfc3164|--rfc5424 -d -n 127.0.0.1 -P PORT -t TAG MESSAGE`.
fn logger(format: &str, port: u16, tag: &str, message: &str) {
    let out = Command::new("logger")
        .args([
            format,
            "-d",
            "-n",
            "127.0.0.1",
            "-P",
            &port.to_string(),
            "-t",
            tag,
        ])
        .args(["-p", "user.warning", "--", message])
        .stdin(Stdio::null())
        .output()
        .expect("logger (util-linux) must be installed; scripts/test installs it");
    assert!(out.status.success(), "logger failed: {}", text(&out));
}

/// The syslog receiver's port, from its `listening` event (maybe read while the server
/// waited for its other servers).
fn syslog_port(server: &mut Server) -> u16 {
    let is_listening = |e: &Value| e["event"] == "syslog" && e["kind"] == "listening";
    let event = match server.seen.iter().find(|e| is_listening(e)) {
        Some(event) => event.clone(),
        None => server.wait_for("the syslog listening event", is_listening),
    };
    let url = event["url"].as_str().expect("url");
    let port = url
        .strip_prefix("udp://127.0.0.1:")
        .expect("udp://127.0.0.1:PORT");
    port.parse().expect("a port")
}

fn wait_for_line(server: &mut Server, needle: &str) -> Value {
    server.wait_for(&format!("the syslog line {needle:?}"), |e| {
        e["event"] == "syslog"
            && e["kind"] == "line"
            && e["message"].as_str().is_some_and(|m| m.contains(needle))
    })
}

fn count(desk: &Desk, condition: &str) -> u64 {
    desk.sqlite(&format!(
        "SELECT count(*) FROM device_events WHERE source = 'syslog' AND {condition}"
    ))
    .parse()
    .expect("a count")
}

#[test]
fn phones_lines_join_their_devices_and_floods_are_cut_and_counted() {
    let desk = Desk::init();
    // The served XML is read below; encryption has its own scenario.
    desk.edit_settings("mode = \"per-device\"", "mode = \"off\"");
    desk.add_office_phone(LOCAL_PHONE, "s3cret-pw", &[]);
    desk.add_office_phone(NAMED_PHONE, "s3cret-pw2", &[]);
    let mut server = Server::start(
        &desk,
        &[
            "--http",
            "127.0.0.1:0",
            "--tftp",
            "off",
            "--https",
            "off",
            "--syslog",
            "127.0.0.1:0",
        ],
    );
    let port = syslog_port(&mut server);
    let http = server.url("http").to_string();

    // The builder pointed the phones at the receiver, with level INFO.
    let (xml, status) = get(&format!("{http}/cfg{LOCAL_PHONE}.xml"), AGENT);
    assert_eq!(status, "200", "{xml}");
    assert!(
        xml.contains(&format!("<P207>127.0.0.1:{port}</P207>")),
        "{xml}"
    );
    assert!(xml.contains("<P208>2</P208>"), "{xml}");
    server.wait_for_fetch(&format!("cfg{LOCAL_PHONE}.xml"));

    // RFC 3164 from the phone's address: tied by the address.
    logger("--rfc3164", port, "GS_LOG", "booted GXP2170 1.0.11.3");
    let line = wait_for_line(&mut server, "booted GXP2170");
    assert_eq!(line["mac"], LOCAL_PHONE, "{line}");
    assert_eq!(line["tied_by"], "address", "{line}");
    assert_eq!(line["format"], "rfc3164", "{line}");
    assert_eq!(line["app"], "GS_LOG", "{line}");
    assert_eq!(line["severity"], "warning", "{line}");
    assert_eq!(line["facility"], "user", "{line}");

    // RFC 5424 naming the other phone: the MAC in the line wins over the address.
    logger(
        "--rfc5424",
        port,
        "GS_LOG",
        "[00:0B:82:00:00:02][000] registered 202",
    );
    let line = wait_for_line(&mut server, "registered 202");
    assert_eq!(line["mac"], NAMED_PHONE, "{line}");
    assert_eq!(line["tied_by"], "mac-in-line", "{line}");
    assert_eq!(line["format"], "rfc5424", "{line}");

    // A stranger (an address no device used) naming a MAC the desk does not hold: the line
    // is kept untied, and no device is made up for it.
    let stranger = UdpSocket::bind("127.0.0.5:0").expect("a second loopback address");
    stranger
        .send_to(
            b"<14>GS_LOG: [c0:74:ad:99:99:99][000] stranger here",
            format!("127.0.0.1:{port}"),
        )
        .expect("send");
    let line = wait_for_line(&mut server, "stranger here");
    assert_eq!(line["mac"], Value::Null, "{line}");
    assert_eq!(line["tied_by"], Value::Null, "{line}");
    assert_eq!(line["other_macs"][0], "c074ad999999", "{line}");

    // Malformed datagrams are kept as raw lines; none stops the receiver.
    let sender = UdpSocket::bind("127.0.0.1:0").expect("udp");
    let target = format!("127.0.0.1:{port}");
    for datagram in [
        &b"<999>"[..],
        b"<",
        b"",
        b"\xff\xfe\x00 not utf-8 \x1b[2J",
        b"<13>1 broken 5424",
        b"plain words, no header",
    ] {
        sender.send_to(datagram, &target).expect("send");
    }
    let raw = wait_for_line(&mut server, "plain words, no header");
    assert_eq!(raw["format"], "raw", "{raw}");
    assert_eq!(raw["mac"], LOCAL_PHONE, "{raw}");

    // A 64 KB line (the largest UDP datagram, 64 KiB less the headers): kept cut to its
    // first 2 KiB, the rest counted.
    let mut huge = b"<11>GS_LOG: huge ".to_vec();
    huge.resize(HUGE, b'y');
    sender
        .send_to(&huge, &target)
        .expect("a 64 KiB datagram on loopback");
    let line = wait_for_line(&mut server, "huge yyyy");
    assert_eq!(line["cut_bytes"], HUGE - 2048, "{line}");
    assert!(line["message"].as_str().unwrap().len() <= 2048);

    // 10,000 lines a second for 5 s from the phone's address, while curl keeps fetching.
    let flood_sender = sender.try_clone().expect("udp");
    let flood_target = target.clone();
    let flood = std::thread::spawn(move || {
        let start = Instant::now();
        let mut sent = 0u64;
        // 100 lines every 10 ms; bounded in count (50,000) and time.
        for tick in 0..500u32 {
            let due = start + Duration::from_millis(u64::from(tick) * 10);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            for _ in 0..100 {
                let line = format!("<14>GS_LOG: flood {sent}");
                if flood_sender.send_to(line.as_bytes(), &flood_target).is_ok() {
                    sent += 1;
                }
            }
            if start.elapsed() > Duration::from_secs(15) {
                break;
            }
        }
        (sent, start.elapsed())
    });
    let mut answered = 0;
    while !flood.is_finished() {
        let (_, status) = get(&format!("{http}/cfg.xml"), "curl during the flood");
        assert_eq!(
            status, "200",
            "the HTTP server stopped answering during the flood"
        );
        answered += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    let (sent, took) = flood.join().expect("flood thread");
    assert!(answered >= 10, "{answered} requests answered in {took:?}");
    assert!(
        sent >= 45_000 && took < Duration::from_secs(8),
        "the generator sent {sent} lines in {took:?}, not 10,000 a second"
    );

    // The phone still speaks after the flood, and the server still answers.
    logger("--rfc3164", port, "GS_LOG", "after the flood");
    let line = wait_for_line(&mut server, "after the flood");
    assert_eq!(line["mac"], LOCAL_PHONE);
    let (_, status) = get(&format!("{http}/cfg.xml"), "curl after the flood");
    assert_eq!(status, "200");

    // Stopping reports the drops not reported yet, so the log has every count.
    let (status, events) = server.terminate();
    assert!(status.success());
    let passed = events
        .iter()
        .filter(|e| {
            e["event"] == "syslog"
                && e["kind"] == "line"
                && e["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("flood "))
        })
        .count() as u64;
    let dropped: u64 = events
        .iter()
        .filter(|e| e["event"] == "syslog" && e["kind"] == "dropped")
        .map(|e| {
            assert_eq!(e["peer"], "127.0.0.1", "{e}");
            assert_eq!(e["mac"], LOCAL_PHONE, "{e}");
            e["lines"].as_u64().expect("lines")
        })
        .sum();
    eprintln!(
        "flood: {sent} lines sent in {took:?}; {passed} passed, {dropped} counted as dropped, {} lost in the kernel; {answered} HTTP requests answered 200 meanwhile",
        sent.saturating_sub(passed + dropped)
    );
    let allowed = PER_SOURCE_BURST + PER_SOURCE_RATE * (took.as_secs() + 3);
    assert!(
        passed <= allowed,
        "{passed} flood lines passed, at most {allowed} may"
    );
    // Every line is passed on or counted as dropped, but for what the kernel dropped before
    // the receiver read it (never more lines than were sent are accounted for).
    assert!(passed + dropped <= sent, "{passed} + {dropped} > {sent}");
    assert!(
        passed + dropped >= sent / 2,
        "{passed} passed + {dropped} dropped of {sent} sent"
    );

    // The timeline, as any SQLite tool reads it.
    let mine = format!("mac = '{LOCAL_PHONE}'");
    assert_eq!(
        count(
            &desk,
            &format!("{mine} AND summary LIKE '%booted GXP2170%'")
        ),
        1
    );
    assert_eq!(
        count(
            &desk,
            &format!("{mine} AND summary LIKE '%after the flood%'")
        ),
        1
    );
    assert_eq!(
        count(
            &desk,
            &format!("mac = '{NAMED_PHONE}' AND summary LIKE '%registered 202%'")
        ),
        1
    );
    let detail = desk.sqlite(&format!(
        "SELECT json_extract(detail, '$.tied_by') FROM device_events WHERE mac = '{NAMED_PHONE}' AND source = 'syslog'"
    ));
    assert_eq!(detail, "mac-in-line");
    let cut = desk.sqlite(&format!(
        "SELECT json_extract(detail, '$.cut_bytes') FROM device_events WHERE {mine} AND summary LIKE '%huge yyyy%'"
    ));
    assert_eq!(cut, (HUGE - 2048).to_string());
    let dropped_rows: u64 = desk
        .sqlite(&format!(
            "SELECT coalesce(sum(json_extract(detail, '$.lines')), 0) FROM device_events WHERE {mine} AND kind = 'dropped'"
        ))
        .parse()
        .expect("a sum");
    assert_eq!(dropped_rows, dropped, "the timeline holds the drop counts");
    // Bounded: the phone's rows are what passed, never more than its share.
    let stored = count(&desk, &mine);
    assert!(stored <= MAX_ROWS_PER_DEVICE, "{stored}");
    assert!(stored <= allowed + 20, "{stored}");
    let untied = count(&desk, "mac IS NULL");
    assert_eq!(
        count(&desk, "mac IS NULL AND summary LIKE '%stranger here%'"),
        1
    );
    assert!(untied <= MAX_ROWS_PER_DEVICE, "{untied}");
    let devices = desk.ok(&["device", "list", "--json"]);
    assert!(!devices.contains("c074ad999999"), "{devices}");
}

#[test]
fn the_text_log_says_where_the_receiver_listens() {
    let desk = Desk::init();
    let (mut child, lines) = desk.serve_lines(&[
        "--http",
        "127.0.0.1:0",
        "--tftp",
        "off",
        "--https",
        "off",
        "--syslog",
        "127.0.0.1:0",
    ]);
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    let listening = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = lines.recv_timeout(left) else {
            let _ = child.kill();
            panic!("no `listening syslog` line: {seen:#?}");
        };
        if line.starts_with("listening syslog ") {
            break line;
        }
        seen.push(line);
    };
    let port = listening
        .strip_prefix("listening syslog udp://127.0.0.1:")
        .unwrap_or_else(|| panic!("{listening}"));
    assert!(port.parse::<u16>().is_ok_and(|p| p != 0), "{listening}");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    assert!(child.wait().expect("wait").success());
}

#[test]
fn a_receiver_address_in_use_is_refused_with_the_flag_to_use() {
    let desk = Desk::init();
    let taken = UdpSocket::bind("127.0.0.1:0").expect("udp");
    let address = taken.local_addr().expect("address").to_string();
    let stderr = desk.fails(&[
        "serve",
        "--http",
        "127.0.0.1:0",
        "--tftp",
        "off",
        "--https",
        "off",
        "--syslog",
        &address,
    ]);
    assert!(stderr.contains(&address), "{stderr}");
    assert!(stderr.contains("already in use"), "{stderr}");
    assert!(stderr.contains("syslog"), "{stderr}");
}
