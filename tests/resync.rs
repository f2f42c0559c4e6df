//! Push re-provisioning with the real `provdesk` binary, on loopback only (127.0.0.x):
//!
//! - a real SIP user agent, baresip, receives the check-sync NOTIFY at the address the
//!   phone last fetched from (a real curl request from that address through `provdesk
//!   serve`) on the phone's own local SIP port (P40), and answers it (481: it has no
//!   subscription; what matters is that a real SIP stack parsed the request and answered
//!   within its transaction); the reboot variant carries `check-sync;reboot=true`;
//! - a phone that challenges with 401 (a small peer in Python whose Digest check is
//!   `hashlib`, independent of ours) accepts the answer computed from the device's own SIP
//!   account and refuses the answer of a device with another password: "challenge failed";
//! - a bound socket that never answers gets the NOTIFY four times (0, 0.5, 1.5, 3.5 s) and
//!   "no answer" at 4 s; a device the desk never saw gets "no known address";
//! - `--stale` picks the phone whose file the servers rebuilt after it fetched it, not the
//!   one whose file did not change;
//! - every outcome is a `device_events` row of its device (source `notify`), read with
//!   sqlite3, and no password appears in any output or row.
//!
//! sipsak cannot be the phone: it sends requests and reports replies but cannot answer one.

mod support;

use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Desk, Server, WAIT, lines_of, text};

const PHONE: &str = "000b82000001";
const OTHER: &str = "000b82000002";
const SECRET: &str = "Sip-Secret-71";

/// A free UDP port on `ip` (bound and released: the peer binds it next).
fn free_port(ip: &str) -> u16 {
    UdpSocket::bind((ip, 0))
        .expect("bind loopback")
        .local_addr()
        .expect("address")
        .port()
}

/// The next line of `lines` that contains `wanted`, within [`WAIT`].
fn wait_for_line(lines: &mpsc::Receiver<String>, wanted: &str, seen: &mut Vec<String>) {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(wanted) => {
                seen.push(line);
                return;
            }
            Ok(line) => seen.push(line),
            Err(e) => panic!("waiting for {wanted:?}: {e}; seen:\n{}", seen.join("\n")),
        }
    }
}

/// A child killed when the test ends, also on a failed assertion.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// baresip listening on `ip:port` with SIP tracing on, its stdout line by line.
fn baresip(desk: &Desk, ip: &str, port: u16) -> (Peer, mpsc::Receiver<String>) {
    let config = desk.scratch().join("baresip");
    std::fs::create_dir_all(&config).expect("mkdir");
    std::fs::write(
        config.join("config"),
        format!("sip_listen {ip}:{port}\nmodule_path /usr/lib/baresip/modules\n"),
    )
    .expect("config");
    std::fs::write(config.join("accounts"), "").expect("accounts");
    // stdbuf: baresip writes its trace through stdio, fully buffered into a pipe.
    let mut child = Command::new("stdbuf")
        .args(["-oL", "baresip", "-4", "-s", "-f"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("baresip (baresip-core) must be installed; scripts/test installs it");
    let lines = lines_of(child.stdout.take().expect("stdout"));
    (Peer(child), lines)
}

#[test]
fn baresip_gets_the_check_sync_notify_at_the_phones_last_fetch_address_and_port() {
    let desk = Desk::init();
    let phone_ip = "127.0.0.23";
    let port = free_port(phone_ip);
    desk.add_office_phone(PHONE, SECRET, &["--set", &format!("P40={port}")]);

    // The phone fetches its file from 127.0.0.23: that is where the desk last saw it.
    let mut server = Server::start_http(&desk);
    let url = format!("{}/cfg{PHONE}.xml", server.url("http"));
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "--interface", phone_ip])
        .args(["-A", "Grandstream GXP2170 1.0.11.6", &url])
        .output()
        .expect("curl must be installed; scripts/test installs it");
    assert!(out.status.success(), "{}", text(&out));
    server.wait_for_fetch(&format!("cfg{PHONE}.xml"));
    let (status, _) = server.terminate();
    assert!(status.success());

    let (_baresip, lines) = baresip(&desk, phone_ip, port);
    let mut seen = Vec::new();
    wait_for_line(&lines, "baresip is ready", &mut seen);

    let out = desk.run(&["device", "resync", PHONE]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    // Not a 2xx: the command says so by its exit status, the line says what came.
    assert!(!out.status.success(), "{}", text(&out));
    assert_eq!(
        stdout.trim(),
        format!(
            "{PHONE}  -  re-provision NOTIFY to {phone_ip}:{port} (last fetch): answered 481 Subscription Does Not Exist"
        )
    );
    wait_for_line(
        &lines,
        &format!("NOTIFY sip:201@{phone_ip}:{port} SIP/2.0"),
        &mut seen,
    );
    wait_for_line(&lines, "Event: check-sync", &mut seen);
    assert!(
        seen.last()
            .unwrap()
            .trim_end()
            .ends_with("Event: check-sync")
    );

    let out = desk.run(&["device", "resync", PHONE, "--reboot", "--json"]);
    let results: Value = serde_json::from_slice(&out.stdout).expect("JSON array");
    assert_eq!(results.as_array().map(Vec::len), Some(1), "{results}");
    let result = &results[0];
    assert_eq!(result["mac"], PHONE);
    assert_eq!(result["reboot"], true);
    assert_eq!(result["target"], format!("{phone_ip}:{port}"));
    assert_eq!(result["origin"], "last-fetch");
    assert_eq!(result["outcome"]["kind"], "answered");
    assert_eq!(result["outcome"]["code"], 481);
    assert_eq!(result["outcome"]["authenticated"], false);
    wait_for_line(&lines, "Event: check-sync;reboot=true", &mut seen);

    // Both outcomes are in the phone's history, in order.
    let rows = desk.sqlite(&format!(
        "SELECT kind, peer, summary FROM device_events \
         WHERE source = 'notify' AND mac = '{PHONE}' ORDER BY id"
    ));
    let rows: Vec<&str> = rows.lines().collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows[0].starts_with(&format!("answered|{phone_ip}:{port}|re-provision NOTIFY")));
    assert!(rows[1].starts_with(&format!("answered|{phone_ip}:{port}|reboot NOTIFY")));
    assert!(!desk.sqlite("SELECT * FROM device_events").contains(SECRET));
}

/// A phone that challenges every NOTIFY without credentials (401, a fresh nonce, qop=auth)
/// and checks an answer with Python's hashlib: 200 for the right password, else 401 again.
/// Prints its port, then one JSON line per request.
const CHALLENGER: &str = r#"
import hashlib, json, os, re, socket, sys
ip, password = sys.argv[1], sys.argv[2]
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind((ip, 0))
sock.settimeout(20)
print(sock.getsockname()[1], flush=True)
md5 = lambda text: hashlib.md5(text.encode()).hexdigest()
answered = 0
while answered < 2:
    data, peer = sock.recvfrom(65535)
    head = data.decode().split("\r\n\r\n")[0].split("\r\n")
    method, uri, _ = head[0].split(" ")
    headers = [line.split(":", 1) for line in head[1:]]
    copied = "".join(f"{name}:{value}\r\n" for name, value in headers
                     if name.lower() in ("via", "from", "to", "call-id", "cseq"))
    auth = next((value.strip() for name, value in headers if name.lower() == "authorization"), None)
    verdict = "challenged"
    if auth is not None:
        answered += 1
        params = dict((k, v1 or v2) for k, v1, v2 in re.findall(r'(\w+)=(?:"([^"]*)"|([^,\s]+))', auth))
        ha1 = md5(f"{params['username']}:grandstream:{password}")
        ha2 = md5(f"{method}:{uri}")
        expected = md5(f"{ha1}:{params['nonce']}:{params['nc']}:{params['cnonce']}:auth:{ha2}")
        good = params["uri"] == uri and params.get("qop") == "auth" and params["response"] == expected
        verdict = "accepted" if good else "refused"
    if verdict == "accepted":
        reply = f"SIP/2.0 200 OK\r\n{copied}Content-Length: 0\r\n\r\n"
    else:
        nonce = os.urandom(8).hex()
        reply = (f"SIP/2.0 401 Unauthorized\r\n{copied}WWW-Authenticate: Digest realm=\"grandstream\", "
                 f"nonce=\"{nonce}\", qop=\"auth\", algorithm=MD5\r\nContent-Length: 0\r\n\r\n")
    sock.sendto(reply.encode(), peer)
    user = re.search(r'username="([^"]*)"', auth or "")
    print(json.dumps({"uri": uri, "verdict": verdict, "user": user and user.group(1)}), flush=True)
"#;

#[test]
fn a_challenging_phone_accepts_the_devices_own_digest_and_refuses_another_password() {
    let desk = Desk::init();
    let phone_ip = "127.0.0.24";
    let mut child = Command::new("python3")
        .args(["-c", CHALLENGER, phone_ip, SECRET])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 must be installed; scripts/test installs it");
    let lines = lines_of(child.stdout.take().expect("stdout"));
    let _peer = Peer(child);
    let port: u16 = lines
        .recv_timeout(WAIT)
        .expect("the peer's port")
        .parse()
        .expect("a port");

    // The right password, its port from P40 (the address is given without one) ...
    desk.add_office_phone(PHONE, SECRET, &["--set", &format!("P40={port}")]);
    // ... and another phone whose profile gives it a password the phone does not know.
    let p40 = format!("P40={port}");
    desk.add_device(
        OTHER,
        "GXP2170",
        "office",
        &[
            "--var",
            "ext=202",
            "--var",
            "sip_secret=Not-The-Phones",
            "--set",
            &p40,
        ],
    );
    let out = desk.run(&["device", "resync", PHONE, OTHER, "--to", phone_ip]);
    let all = text(&out);
    assert!(!out.status.success(), "one challenge failed: {all}");
    assert!(
        !all.contains(SECRET) && !all.contains("Not-The-Phones"),
        "{all}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines_out: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines_out,
        [
            format!(
                "{PHONE}  -  re-provision NOTIFY to {phone_ip}:{port} (given): answered 200 OK (after a Digest challenge)"
            ),
            format!(
                "{OTHER}  -  re-provision NOTIFY to {phone_ip}:{port} (given): challenge failed (401): the phone refused the Digest answer for user \"202\" (wrong SIP password?)"
            ),
        ]
    );

    // The phone saw two challenges, one answer it accepted (user 201) and one it refused
    // (user 202); the requests went to the URI of each account.
    let verdicts: Vec<Value> = (0..4)
        .map(|_| serde_json::from_str(&lines.recv_timeout(WAIT).expect("a verdict")).unwrap())
        .collect();
    let mut seen: Vec<(String, String)> = verdicts
        .iter()
        .map(|v| {
            (
                v["verdict"].as_str().unwrap().to_string(),
                v["user"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("accepted".into(), "201".into()),
            ("challenged".into(), "-".into()),
            ("challenged".into(), "-".into()),
            ("refused".into(), "202".into()),
        ]
    );
    assert!(
        verdicts
            .iter()
            .all(|v| v["uri"] == format!("sip:201@{phone_ip}:{port}")
                || v["uri"] == format!("sip:202@{phone_ip}:{port}"))
    );

    let kinds =
        desk.sqlite("SELECT mac, kind FROM device_events WHERE source = 'notify' ORDER BY mac");
    assert_eq!(kinds, format!("{PHONE}|answered\n{OTHER}|challenge-failed"));
    assert!(!desk.sqlite("SELECT * FROM device_events").contains(SECRET));
}

#[test]
fn a_phone_that_never_answers_gets_four_sends_and_no_answer_at_four_seconds() {
    let desk = Desk::init();
    desk.add_office_phone(PHONE, SECRET, &[]);
    desk.add_device(
        OTHER,
        "GXP2170",
        "office",
        &["--var", "ext=202", "--var", "sip_secret=x"],
    );
    let silent = UdpSocket::bind("127.0.0.25:0").expect("bind");
    let target = silent.local_addr().expect("address").to_string();

    let started = Instant::now();
    let out = desk.run(&["device", "resync", PHONE, "--to", &target]);
    let took = started.elapsed();
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let prefix = format!(
        "{PHONE}  -  re-provision NOTIFY to {target} (given): no answer after 4 send(s) in "
    );
    let waited: f64 = stdout
        .trim()
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix(" s"))
        .and_then(|seconds| seconds.parse().ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    // The bound is 4 s from the first send (a busy machine may wake a little late); the rest
    // of the run is the process starting and stopping.
    assert!((4.0..4.5).contains(&waited), "{stdout}");
    assert!(took >= Duration::from_millis(3_900), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");

    // Every send reached the socket, the same request each time (a retransmission).
    silent.set_nonblocking(true).expect("nonblocking");
    let mut buffer = [0u8; 4096];
    let mut datagrams = Vec::new();
    while let Ok((len, _)) = silent.recv_from(&mut buffer) {
        datagrams.push(buffer[..len].to_vec());
    }
    assert_eq!(datagrams.len(), 4);
    assert!(datagrams.iter().all(|d| *d == datagrams[0]));
    assert!(String::from_utf8_lossy(&datagrams[0]).contains("Event: check-sync\r\n"));

    // A phone the desk never saw: an outcome, not an error.
    let out = desk.run(&["device", "resync", OTHER, "--json"]);
    assert!(!out.status.success());
    let results: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(results[0]["outcome"]["kind"], "not-sent");
    assert!(
        results[0]["outcome"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("no known address"),
        "{results}"
    );
    assert_eq!(results[0]["target"], Value::Null);

    let rows = desk.sqlite(
        "SELECT mac, kind, json_extract(detail, '$.outcome.sends') FROM device_events \
         WHERE source = 'notify' ORDER BY id",
    );
    assert_eq!(rows, format!("{PHONE}|no-answer|4\n{OTHER}|not-sent|"));
}

#[test]
fn bad_input_is_refused_before_anything_is_sent() {
    let desk = Desk::init();
    desk.add_office_phone(PHONE, SECRET, &[]);
    let unknown = desk.fails(&["device", "resync", PHONE, "000b82000099"]);
    assert!(
        unknown.contains("000b82000099 is not in the inventory; nothing sent"),
        "{unknown}"
    );
    let bad_to = desk.fails(&["device", "resync", PHONE, "--to", "127.0.0.1:sip"]);
    assert!(bad_to.contains("write it as HOST:PORT"), "{bad_to}");
    let profile = desk.fails(&["device", "resync", "--profile", "nope"]);
    assert!(
        profile.contains("profile \"nope\" does not exist"),
        "{profile}"
    );
    let nothing = desk.fails(&["device", "resync"]);
    assert!(nothing.contains("--all"), "{nothing}");
    let both = desk.fails(&["device", "resync", PHONE, "--all"]);
    assert!(both.contains("cannot be used with"), "{both}");
    // None of those reached the history.
    assert_eq!(desk.sqlite("SELECT count(*) FROM device_events"), "0");
    // An empty selection is not an error: nothing is stale yet.
    assert_eq!(
        desk.ok(&["device", "resync", "--stale"]).trim(),
        "no device selected; nothing sent"
    );
}

/// A phone on loopback that answers every request with `200 OK` (the headers a response
/// copies, RFC 3261 §8.2.6.2), until the test ends; its address and what it got.
fn answering_phone(ip: &str) -> (String, mpsc::Receiver<String>) {
    let socket = UdpSocket::bind((ip, 0)).expect("bind");
    let address = socket.local_addr().expect("address").to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok((len, peer)) = socket.recv_from(&mut buffer) {
            let request = String::from_utf8_lossy(&buffer[..len]).into_owned();
            let copied: String = request
                .split("\r\n")
                .filter(|line| {
                    let name = line.split(':').next().unwrap_or("").to_ascii_lowercase();
                    ["via", "from", "to", "call-id", "cseq"].contains(&name.as_str())
                })
                .map(|line| format!("{line}\r\n"))
                .collect();
            let answer = format!("SIP/2.0 200 OK\r\n{copied}Content-Length: 0\r\n\r\n");
            let _ = socket.send_to(answer.as_bytes(), peer);
            if tx.send(request).is_err() {
                return;
            }
        }
    });
    (address, rx)
}

#[test]
fn stale_selects_the_phone_whose_files_changed_since_it_fetched_them() {
    let desk = Desk::init();
    desk.add_office_phone(PHONE, SECRET, &[]);
    desk.add_office_phone(OTHER, SECRET, &[]);
    // Both phones fetch their files.
    let mut server = Server::start_http(&desk);
    if !server.seen.iter().any(|e| e["event"] == "build") {
        server.wait_for("the start-up build", |e| e["event"] == "build");
    }
    for mac in [PHONE, OTHER] {
        let url = format!("{}/cfg{mac}.xml", server.url("http"));
        let out = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-A",
                "Grandstream GXP2170 1.0.11.6",
                &url,
            ])
            .output()
            .expect("curl");
        assert!(out.status.success(), "{}", text(&out));
        server.wait_for_fetch(&format!("cfg{mac}.xml"));
    }
    // Only the first phone's values change, so only its file does: the servers' watcher
    // rebuilds it.
    desk.add_office_phone(PHONE, SECRET, &["--name", "Moved desk", "--replace"]);
    server.wait_for("the rebuild", |e| {
        e["event"] == "build" && e["published"] == true && e["written"].as_u64() > Some(0)
    });
    let (status, _) = server.terminate();
    assert!(status.success());
    let list = desk.json(&["device", "list", "--json"]);
    let status_of = |mac: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|d| d["mac"] == mac)
            .map(|d| d["status"]["state"].clone())
    };
    assert_eq!(status_of(PHONE), Some("stale".into()), "{list}");
    assert_ne!(status_of(OTHER), Some("stale".into()), "{list}");

    let (address, requests) = answering_phone("127.0.0.27");
    let out = desk.ok(&["device", "resync", "--stale", "--to", &address]);
    assert_eq!(
        out.trim(),
        format!("{PHONE}  Moved desk  re-provision NOTIFY to {address} (given): answered 200 OK")
    );
    let request = requests.recv_timeout(WAIT).expect("the NOTIFY");
    assert!(request.starts_with(&format!("NOTIFY sip:201@{address} SIP/2.0\r\n")));
    assert!(requests.try_recv().is_err(), "one phone, one NOTIFY");
}
