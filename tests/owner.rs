//! Scenario: `[access] device_files = "owner"` on a bench LAN of network namespaces. A switch
//! (a bridge), the desk at 198.51.100.1 running the real `provdesk serve --http
//! 198.51.100.1:8080 --tftp 198.51.100.1:6969`, and two phones with Grandstream MACs on their
//! own links, both in the inventory. Phone A fetches its own `cfg<macA>.xml` over HTTP (curl)
//! and TFTP (tftp-hpa): served. Phone B asking for A's file gets exactly what it gets for a
//! MAC nobody has (HTTP: status, headers but the date, body; TFTP: the error), and the fetch
//! log holds the denial naming both MACs. `serve` says on start what `owner` enforces.
//!
//! Needs root (CI runs as root) and iproute2; it never skips. Nothing leaves the namespaces
//! it creates (198.51.100.0/24, a documentation block), which a drop guard deletes.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use provdesk_core::inventory::{FetchLogQuery, Inventory};
use serde_json::Value;

mod support;
use support::lan::BenchLan;
use support::{Desk, PROVDESK, WAIT, text};

const DESK_IP: &str = "198.51.100.1";
const MAC_A: &str = "000b82aa0001";
const MAC_B: &str = "000b82bb0002";
/// A MAC no phone on the desk has.
const NOBODY: &str = "000b82ffffff";

/// The bench: the desk and phones A and B on one switch; dropping it stops what runs in its
/// namespaces and deletes them, also when the test fails half-way.
struct Bench {
    /// Held for its `Drop`, which takes the namespaces down.
    _lan: BenchLan,
    desk: String,
    a: String,
    b: String,
}

impl Bench {
    fn new() -> Bench {
        let mut lan = BenchLan::new("own");
        lan.host("desk", "eth0", Some(&format!("{DESK_IP}/24")), None);
        lan.host(
            "a",
            "eth0",
            Some("198.51.100.11/24"),
            Some("00:0b:82:aa:00:01"),
        );
        lan.host(
            "b",
            "eth0",
            Some("198.51.100.12/24"),
            Some("00:0b:82:bb:00:02"),
        );
        Bench {
            desk: lan.ns("desk"),
            a: lan.ns("a"),
            b: lan.ns("b"),
            _lan: lan,
        }
    }

    /// `ip netns exec NS PROGRAM ARGS`, to run, with nothing on its stdin.
    fn command(ns: &str, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", ns, program]);
        command.stdin(Stdio::null());
        command
    }
}

/// `provdesk serve` in the desk's namespace, its JSON events and its stderr (where the
/// listening and access lines go in JSON mode).
struct Serve {
    child: Child,
    events: mpsc::Receiver<Value>,
    stderr: mpsc::Receiver<String>,
    seen: Vec<Value>,
}

impl Serve {
    fn start(bench: &Bench, desk: &Desk) -> Serve {
        let mut child = Bench::command(&bench.desk, PROVDESK)
            .arg("--desk")
            .arg(&desk.root)
            .args(["serve", "--log-format", "json"])
            .args(["--http", &format!("{DESK_IP}:8080")])
            .args(["--tftp", &format!("{DESK_IP}:6969")])
            .args(["--https", "off"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start provdesk serve");
        let (tx, events) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let event = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
                if tx.send(event).is_err() {
                    return;
                }
            }
        });
        let (tx, stderr) = mpsc::channel();
        let err = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("serve: {line}");
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Serve {
            child,
            events,
            stderr,
            seen: Vec::new(),
        }
    }

    /// The next event matching `pick`, within `WAIT`.
    fn wait_for(&mut self, what: &str, pick: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let event = self
                .events
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("waiting for {what}: {e}; seen: {:#?}", self.seen));
            self.seen.push(event.clone());
            if pick(&event) {
                return event;
            }
        }
    }

    /// The stderr lines up to and including the first one that `last` matches, within `WAIT`.
    fn stderr_until(&self, last: impl Fn(&str) -> bool) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        let mut lines = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .stderr
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("waiting on stderr: {e}; got {lines:#?}"));
            let done = last(&line);
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    fn fetch(&mut self, protocol: &str, peer_ip: &str, name: &str) -> Value {
        self.wait_for(
            &format!("the {protocol} fetch of {name} from {peer_ip}"),
            |e| {
                e["event"] == "fetch"
                    && e["protocol"] == protocol
                    && e["name"] == name
                    && e["peer"]
                        .as_str()
                        .is_some_and(|p| p.starts_with(&format!("{peer_ip}:")))
            },
        )
    }

    /// SIGTERM, then wait (bounded) for the exit, so the recorder has written the fetch log.
    fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let deadline = Instant::now() + WAIT;
        loop {
            match self.child.try_wait().expect("wait") {
                Some(status) => {
                    assert!(status.success(), "serve exited with {status}");
                    return;
                }
                None if Instant::now() < deadline => {
                    // Drain events so the server never blocks on a full pipe.
                    let _ = self
                        .events
                        .recv_timeout(std::time::Duration::from_millis(50));
                }
                None => panic!("provdesk serve did not stop after SIGTERM"),
            }
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP GET of `name` from namespace `ns`: status line and headers without `date`, body.
fn http_get(ns: &str, name: &str) -> (String, Vec<u8>) {
    let out = Bench::command(ns, "curl")
        .args(["--silent", "--show-error", "--max-time", "15"])
        .args(["-A", "Grandstream Model HW GXP2170 V1.1A SW 1.0.11.3"])
        .args(["-D", "/dev/stderr", "-o", "-"])
        .arg(format!("http://{DESK_IP}:8080/{name}"))
        .output()
        .expect("curl must be installed");
    assert!(out.status.success(), "curl {name}: {}", text(&out));
    let head = String::from_utf8_lossy(&out.stderr)
        .split_inclusive("\r\n")
        .filter(|line| !line.to_ascii_lowercase().starts_with("date:"))
        .collect();
    (head, out.stdout)
}

/// tftp-hpa in namespace `ns`: its message (it exits 0 even on a TFTP error) and the file.
fn tftp_get(ns: &str, name: &str, local: &Path) -> (String, Option<Vec<u8>>) {
    let _ = std::fs::remove_file(local);
    let out = Bench::command(ns, "timeout")
        .args([
            "20", "tftp", "-m", "binary", DESK_IP, "6969", "-c", "get", name,
        ])
        .arg(local)
        .output()
        .expect("tftp (tftp-hpa) must be installed; scripts/test installs it");
    // tftp-hpa leaves an empty file behind on an error.
    let body = std::fs::read(local).ok().filter(|b| !b.is_empty());
    (text(&out), body)
}

#[test]
fn a_phones_own_files_go_to_that_phone_only() {
    let desk = Desk::init();
    let before = desk.edit_settings("device_files = \"any\"", "device_files = \"owner\"");
    assert!(before.contains("device_files = \"any\""), "{before}");
    desk.add_office_phone(MAC_A, "secret-a", &[]);
    desk.add_office_phone(MAC_B, "secret-b", &["--var", "ext=202"]);
    let own = format!("cfg{MAC_A}.xml");

    let bench = Bench::new();
    let mut serve = Serve::start(&bench, &desk);
    // The listening lines, then what each protocol enforces and the trade-offs.
    let startup = serve.stderr_until(|line| line.starts_with("tftp: "));
    for protocol in ["http", "tftp"] {
        let line = startup
            .iter()
            .find(|l| l.starts_with(&format!("{protocol}: ")))
            .unwrap_or_else(|| panic!("no {protocol} access line in {startup:#?}"));
        assert!(
            line.ends_with(
                "; per-device files only to the phone with that MAC (by neighbour table)"
            ),
            "{line}"
        );
    }
    for _ in 0..2 {
        serve.wait_for("the listening lines", |e| e["event"] == "listening");
    }
    // Built before the servers started.
    let built = std::fs::read(desk.root.join("build").join(&own)).expect("built file");

    // Phone A, its own file: served over HTTP and TFTP. Its TCP handshake and its ARP for
    // the desk put it in the desk's neighbour table before the request is read.
    let (head, body) = http_get(&bench.a, &own);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, built);
    let fetch = serve.fetch("http", "198.51.100.11", &own);
    assert_eq!(fetch["outcome"]["kind"], "served", "{fetch}");
    let local = desk.scratch().join("a.xml");
    let (message, got) = tftp_get(&bench.a, &own, &local);
    assert_eq!(got.as_deref(), Some(&built[..]), "{message}");
    let fetch = serve.fetch("tftp", "198.51.100.11", &own);
    assert_ne!(fetch["outcome"]["kind"], "denied", "{fetch}");

    // Phone B, A's file: what a MAC nobody has gets, over both protocols.
    let nobodys = format!("cfg{NOBODY}.xml");
    let (head, body) = http_get(&bench.b, &own);
    let (miss_head, miss_body) = http_get(&bench.b, &nobodys);
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    assert_eq!((&head, &body), (&miss_head, &miss_body));
    let denied = serve.fetch("http", "198.51.100.12", &own);
    let expected = format!(
        "not the owner: 198.51.100.12 is {MAC_B} (neighbour table), the file is {MAC_A}'s ([access] device_files = \"owner\")"
    );
    assert_eq!(denied["outcome"]["kind"], "denied", "{denied}");
    assert_eq!(denied["outcome"]["reason"], expected.as_str(), "{denied}");
    let miss = serve.fetch("http", "198.51.100.12", &nobodys);
    assert_eq!(miss["outcome"]["kind"], "not-found", "{miss}");

    let local = desk.scratch().join("b.xml");
    let (message, got) = tftp_get(&bench.b, &own, &local);
    assert_eq!(got, None, "B got A's file over TFTP: {message}");
    let (miss_message, _) = tftp_get(&bench.b, &nobodys, &local);
    // tftp-hpa prints the server's message, which names the MAC of the name asked for.
    assert_eq!(message, miss_message.replace(NOBODY, MAC_A));
    assert!(message.contains("Error code 1"), "{message}");
    let denied_tftp = serve.fetch("tftp", "198.51.100.12", &own);
    assert_eq!(
        denied_tftp["outcome"]["reason"],
        expected.as_str(),
        "{denied_tftp}"
    );
    serve.fetch("tftp", "198.51.100.12", &nobodys);

    // The fetch log keeps both denials, on A's history.
    serve.stop();
    let inventory = Inventory::open(&desk.root.join("provdesk.db")).expect("inventory");
    let log = inventory
        .fetch_log(&FetchLogQuery {
            mac: MAC_A.parse().ok(),
            ..FetchLogQuery::default()
        })
        .expect("fetch log");
    let denials: Vec<_> = log
        .iter()
        .filter(|row| row.status == "denied")
        .map(|row| (row.protocol.as_str(), row.reason.as_deref()))
        .collect();
    assert_eq!(denials.len(), 2, "{log:#?}");
    for (protocol, reason) in denials {
        assert_eq!(reason, Some(expected.as_str()), "{protocol}");
    }
    drop(bench);
    let left = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip");
    assert!(
        !String::from_utf8_lossy(&left.stdout).contains(&format!("-{}", std::process::id())),
        "namespaces left behind"
    );
}
