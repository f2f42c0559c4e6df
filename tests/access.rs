//! Scenario: one access policy for every protocol, against the real `provdesk serve`. A desk
//! with `allow = ["127.0.0.2"]` and Digest authentication is fetched from over TFTP with the
//! real clients (tftp-hpa's `tftp` from 127.0.0.1, `curl tftp://` with `--interface` to pick
//! 127.0.0.1 or 127.0.0.2 as the source) and over HTTP with `curl`: peers outside the list are
//! refused by every protocol, TFTP withholds per-device files while HTTP authenticates unless
//! `tftp_device_files = true`, and shared files stay served. Also: `serve` says on start what
//! each protocol enforces, a denial never echoes an unknown user name, and a Digest header
//! without `qop` works once.
//!
//! Loopback only; 127.0.0.2 is a loopback address on Linux without any set-up.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use provdesk_core::inventory::{FetchLogQuery, Inventory};
use serde_json::Value;

mod support;
use support::{Desk, Server, TFTP_AND_HTTP, WAIT, text, tftp_get};

const MAC: &str = "000b82123456";
const ALLOWED: &str = "127.0.0.2";
const OUTSIDE: &str = "127.0.0.1";
const USER: &str = "phone201";
const PASSWORD: &str = "h3ll0-http";
const SIP_SECRET: &str = "s3cret-sip";

/// A desk that only 127.0.0.2 may fetch from, with Digest on and one phone that has
/// P1360/P1361; `tftp_device_files` as given.
fn desk(tftp_device_files: bool) -> Desk {
    let desk = Desk::init();
    let path = desk.root.join("provdesk.toml");
    let settings = std::fs::read_to_string(&path).expect("settings");
    let mut edited = settings
        .replace("mode = \"none\"", "mode = \"digest\"")
        .replace("allow = []", &format!("allow = [\"{ALLOWED}\"]"));
    if tftp_device_files {
        edited = edited.replace("tftp_device_files = false", "tftp_device_files = true");
    }
    assert!(edited.contains("mode = \"digest\""), "{edited}");
    assert!(edited.contains(ALLOWED), "{edited}");
    assert_eq!(
        edited.contains("tftp_device_files = true"),
        tftp_device_files,
        "{edited}"
    );
    std::fs::write(&path, edited).expect("write settings");
    desk.write(
        "profiles/authed.toml",
        "extends = \"office\"\n[params]\nP1360 = \"phone{{ ext }}\"\nP1361 = \"{{ http_password }}\"\n",
    );
    desk.ok(&[
        "device",
        "add",
        MAC,
        "--model",
        "gxp2170",
        "--profile",
        "authed",
        "--var",
        "ext=201",
        "--var",
        &format!("sip_secret={SIP_SECRET}"),
        "--var",
        &format!("http_password={PASSWORD}"),
    ]);
    desk
}

fn start(desk: &Desk) -> Server {
    Server::start(desk, TFTP_AND_HTTP)
}

/// `curl tftp://` from the source address `from`.
fn curl_tftp(from: &str, port: u16, remote: &str, local: &Path) -> Output {
    let _ = std::fs::remove_file(local);
    Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "20"])
        .args(["--interface", from, "--output"])
        .arg(local)
        .arg(format!("tftp://127.0.0.1:{port}/{remote}"))
        .stdin(Stdio::null())
        .output()
        .expect("curl must be installed; scripts/test installs it")
}

/// An HTTP GET from `from`: status and headers (`-D -`, body discarded).
fn http(from: &str, url: &str, extra: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["--silent", "--max-time", "20", "--interface", from])
        .args(["-o", "/dev/null", "-D", "-", "-w", "%{http_code}"])
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .expect("curl must be installed");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    // The headers of every response, then the last status code.
    let status = stdout
        .get(stdout.len().saturating_sub(3)..)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status from curl: {}", text(&out)));
    (status, stdout)
}

fn built(desk: &Desk, name: &str) -> Vec<u8> {
    std::fs::read(desk.root.join("build").join(name)).expect("built file")
}

fn reason(fetch: &Value) -> &str {
    fetch["outcome"]["reason"].as_str().unwrap_or_default()
}

/// The next HTTP fetch of `name` (a request refused before its name was decoded carries
/// the raw path).
fn wait_for_http(server: &mut Server, name: &str) -> Value {
    let path = format!("/{name}");
    server.wait_for(&format!("the HTTP fetch of {name}"), |e| {
        e["event"] == "fetch" && e["protocol"] == "http" && (e["name"] == name || e["name"] == path)
    })
}

/// Asserts that `fetch` was denied for a reason containing `why`.
fn denied(fetch: &Value, why: &str) {
    assert_eq!(fetch["outcome"]["kind"], "denied", "{fetch}");
    assert!(reason(fetch).contains(why), "{fetch}");
}

#[test]
fn every_protocol_obeys_the_allow_list_and_tftp_withholds_device_files_while_http_authenticates() {
    let desk = desk(false);
    let mut server = start(&desk);
    let port = server.port("tftp");
    let base = server.url("http").to_string();
    let work = tempfile::tempdir().expect("work dir");
    let local = |name: &str| work.path().join(name);
    let binary = format!("cfg{MAC}");
    let xml = format!("cfg{MAC}.xml");

    // Outside the allow-list: every TFTP client is refused, whatever the name.
    for name in [&binary, &xml] {
        let out = tftp_get(OUTSIDE, port, name, &local("hpa"));
        assert!(text(&out).contains("Error code 2"), "{}", text(&out));
        assert!(!local("hpa").exists() || std::fs::read(local("hpa")).unwrap().is_empty());
        denied(&server.wait_for_fetch(name), "not in the allow-list");
        let out = curl_tftp(OUTSIDE, port, name, &local("curl"));
        assert!(!out.status.success(), "curl got {name}: {}", text(&out));
        let fetch = server.wait_for_fetch(name);
        denied(&fetch, "not in the allow-list");
        assert_eq!(
            fetch["peer"].as_str().unwrap().split(':').next(),
            Some(OUTSIDE)
        );
    }
    let out = curl_tftp(OUTSIDE, port, "cfg.xml", &local("shared"));
    assert!(!out.status.success(), "{}", text(&out));
    denied(&server.wait_for_fetch("cfg.xml"), "not in the allow-list");
    // HTTP as before: 403 outside the list, 401 inside it without credentials.
    assert_eq!(http(OUTSIDE, &format!("{base}/{xml}"), &[]).0, 403);
    denied(&wait_for_http(&mut server, &xml), "not in the allow-list");
    assert_eq!(http(ALLOWED, &format!("{base}/{xml}"), &[]).0, 401);
    denied(&wait_for_http(&mut server, &xml), "no credentials sent");

    // Inside the list: TFTP cannot authenticate, so no per-device file goes out over it.
    for name in [&binary, &format!("cfg{MAC}.bin"), &xml] {
        let out = curl_tftp(ALLOWED, port, name, &local("device"));
        assert!(!out.status.success(), "curl got {name}: {}", text(&out));
        let fetch = server.wait_for_fetch(name);
        denied(
            &fetch,
            "per-device file over TFTP while HTTP authentication is on",
        );
        assert_eq!(fetch["mac"], MAC, "{fetch}");
    }
    // Shared files stay served over TFTP.
    for name in ["cfg.xml", "cfggxp2170.xml"] {
        let out = curl_tftp(ALLOWED, port, name, &local("shared"));
        assert!(out.status.success(), "{name}: {}", text(&out));
        assert_eq!(
            std::fs::read(local("shared")).expect("shared"),
            built(&desk, name)
        );
        assert_eq!(server.wait_for_fetch(name)["outcome"]["kind"], "served");
    }
    // And HTTP with the phone's credentials gets its file.
    let credentials = format!("{USER}:{PASSWORD}");
    let (status, _) = http(
        ALLOWED,
        &format!("{base}/{xml}"),
        &["--digest", "-u", &credentials],
    );
    assert_eq!(status, 200);

    let (status, seen) = server.terminate();
    assert!(status.success());
    let all = serde_json::to_string(&seen).expect("events");
    assert!(!all.contains(SIP_SECRET) && !all.contains(PASSWORD));
    // Exactly one fetch event, and one fetch-log row, per request.
    let fetches: Vec<&Value> = seen.iter().filter(|e| e["event"] == "fetch").collect();
    let tftp_denied = fetches
        .iter()
        .filter(|f| f["protocol"] == "tftp" && f["outcome"]["kind"] == "denied")
        .count();
    // Two names by two clients from outside, cfg.xml from outside, three device files inside.
    assert_eq!(tftp_denied, 2 * 2 + 1 + 3, "{fetches:#?}");
    let inventory = Inventory::open(&desk.root.join("provdesk.db")).expect("inventory");
    let log = inventory
        .fetch_log(&FetchLogQuery::default())
        .expect("fetch log");
    assert_eq!(log.len(), fetches.len(), "{log:#?}");
    let denied_rows = log
        .iter()
        .filter(|row| row.protocol == "tftp" && row.status == "denied")
        .count();
    assert_eq!(denied_rows, tftp_denied);
}

#[test]
fn tftp_device_files_true_serves_them_over_tftp_and_serve_says_so_on_start() {
    let desk = desk(true);

    // Text mode: the start-up notice, one line per protocol and a warning per trade-off.
    let notice = start_up_notice(&desk);
    assert!(
        notice.contains(&format!(
            "http: allow-list {ALLOWED}, digest authentication (P1360/P1361)"
        )),
        "{notice}"
    );
    assert!(
        notice.contains(&format!(
            "tftp: allow-list {ALLOWED}, no authentication possible; per-device files served without authentication (tftp_device_files = true)"
        )),
        "{notice}"
    );
    assert!(
        notice.contains("warning: tftp_device_files = true"),
        "{notice}"
    );

    let mut server = start(&desk);
    let port = server.port("tftp");
    let work = tempfile::tempdir().expect("work dir");
    let local = work.path().join("device.xml");
    let xml = format!("cfg{MAC}.xml");
    let out = curl_tftp(ALLOWED, port, &xml, &local);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(std::fs::read(&local).expect("served"), built(&desk, &xml));
    assert_eq!(server.wait_for_fetch(&xml)["outcome"]["kind"], "served");
    // The allow-list still holds.
    let out = tftp_get(OUTSIDE, port, &xml, &local);
    assert!(text(&out).contains("Error code 2"), "{}", text(&out));
    denied(&server.wait_for_fetch(&xml), "not in the allow-list");
    assert!(server.terminate().0.success());
}

/// `provdesk serve` in text mode: its stdout up to the `listening http` line.
fn start_up_notice(desk: &Desk) -> String {
    let (mut child, rx) = desk.serve_lines(TFTP_AND_HTTP);
    let deadline = Instant::now() + WAIT;
    let mut notice = String::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left.max(Duration::from_millis(1)))
            .unwrap_or_else(|e| panic!("waiting for the start-up lines: {e}; got {notice}"));
        notice.push_str(&line);
        notice.push('\n');
        if line.starts_with("listening http") {
            break;
        }
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    assert!(child.wait().expect("wait").success());
    notice
}

#[test]
fn denials_never_echo_an_unknown_user_and_a_digest_header_without_qop_works_once() {
    let desk = desk(false);
    let mut server = start(&desk);
    let base = server.url("http").to_string();
    let xml = format!("cfg{MAC}.xml");
    let url = format!("{base}/{xml}");

    // The password typed into the user field, as happens.
    let swapped = format!("{PASSWORD}:{USER}");
    assert_eq!(http(ALLOWED, &url, &["--digest", "-u", &swapped]).0, 401);
    let fetch = server.wait_for("the unknown user's denial", |e| {
        e["event"] == "fetch" && e["outcome"]["reason"] == "unknown user"
    });
    assert!(!fetch.to_string().contains(PASSWORD), "{fetch}");
    // A known user is still named.
    let wrong = format!("{USER}:guess");
    assert_eq!(http(ALLOWED, &url, &["--digest", "-u", &wrong]).0, 401);
    let fetch = server.wait_for("the wrong password", |e| {
        e["event"] == "fetch" && reason(e).contains("wrong password")
    });
    assert_eq!(reason(&fetch), format!("wrong password for user {USER}"));

    // An RFC 2069 client: no qop, so the response covers only nonce, method and uri. The
    // same header, captured, must not open the file a second time.
    let (status, headers) = http(ALLOWED, &url, &[]);
    assert_eq!(status, 401);
    let nonce = headers
        .split("nonce=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no nonce in {headers}"));
    let ha1 = md5(&format!("{USER}:ProvDesk:{PASSWORD}"));
    let ha2 = md5(&format!("GET:/{xml}"));
    let response = md5(&format!("{ha1}:{nonce}:{ha2}"));
    let header = format!(
        "Authorization: Digest username=\"{USER}\", realm=\"ProvDesk\", nonce=\"{nonce}\", uri=\"/{xml}\", response=\"{response}\""
    );
    assert_eq!(http(ALLOWED, &url, &["-H", &header]).0, 200);
    let (status, headers) = http(ALLOWED, &url, &["-H", &header]);
    assert_eq!(status, 401, "the replayed header was accepted");
    assert!(headers.contains("stale=true"), "{headers}");
    server.wait_for("the refused replay", |e| {
        e["event"] == "fetch" && reason(e).contains("nonce without qop used twice")
    });

    let (status, seen) = server.terminate();
    assert!(status.success());
    let all = serde_json::to_string(&seen).expect("events");
    assert!(!all.contains(PASSWORD), "a password reached the event log");
}

/// MD5 in hex, by coreutils' `md5sum` (the test crate has no MD5 of its own).
fn md5(text: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("md5sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("md5sum");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("md5sum output");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("a hash")
        .to_string()
}
