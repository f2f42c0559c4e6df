//! Scenario: each diagnosis a technician meets on site, from a scripted sequence of real
//! requests to the real `provdesk serve` — `curl` with a GXP2170's User-Agent over HTTP, and
//! tftp-hpa with the file names a phone asks for over TFTP — read back through
//! `provdesk device show --json` (the diagnosis and its evidence), `provdesk device history
//! --json` (the timeline the evidence points into) and `provdesk log` (the fetch log, after
//! the server stopped and followed while it serves).
//!
//! Every wait is on a server event, a process exit or a log line, with a timeout. A phone's
//! requests end with the server's SIGTERM, which writes the fetch log before it exits.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::Value;

mod support;
use support::{Desk, Server, TFTP_AND_HTTP, WAIT, text, tftp_get};

const PHONE: &str = "000b82123456";
const OTHER: &str = "000b82654321";
const OLD_FIRMWARE: &str = "1.0.11.3";
const NEW_FIRMWARE: &str = "1.0.11.23";

/// A GXP2170 asking over HTTP with its User-Agent (reporting `firmware`), like the phones of
/// tests/phones.rs; `extra` are more curl arguments (credentials). Returns the HTTP status.
fn http_get(base: &str, mac: &str, firmware: &str, name: &str, extra: &[&str]) -> u16 {
    let agent = format!("Grandstream Model HW GXP2170 V1.1A SW {firmware} DevId {mac}");
    let out = Command::new("curl")
        .args([
            "--silent",
            "--max-time",
            "20",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .args(["-A", &agent])
        .args(extra)
        .arg(format!("{base}/{name}"))
        .stdin(Stdio::null())
        .output()
        .expect("curl must be installed; scripts/test installs it");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no status from curl: {}", text(&out)))
}

/// A desk with the office phone `PHONE` (and `OTHER`), HTTP-served files in clear or not as
/// the settings say.
fn desk_with_phones() -> Desk {
    let desk = Desk::init();
    desk.add_office_phone(PHONE, "s3cret-sip", &[]);
    desk.add_office_phone(OTHER, "0ther-sip", &[]);
    desk
}

/// `device show MAC --json`'s diagnosis.
fn diagnosis(desk: &Desk, mac: &str) -> Value {
    desk.json(&["device", "show", mac, "--json"])["diagnosis"].clone()
}

/// The verdict codes of a diagnosis, most severe first.
fn codes(diagnosis: &Value) -> Vec<String> {
    diagnosis["verdicts"]
        .as_array()
        .expect("verdicts")
        .iter()
        .map(|v| v["code"].as_str().expect("code").to_string())
        .collect()
}

/// The verdict with `code`.
fn verdict<'a>(diagnosis: &'a Value, code: &str) -> &'a Value {
    diagnosis["verdicts"]
        .as_array()
        .expect("verdicts")
        .iter()
        .find(|v| v["code"] == code)
        .unwrap_or_else(|| panic!("no {code} verdict: {diagnosis:#}"))
}

/// `device history MAC --json`'s entries by id.
fn history(desk: &Desk, mac: &str) -> BTreeMap<String, Value> {
    desk.json(&["device", "history", mac, "--json"])["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| (e["id"].as_str().expect("id").to_string(), e.clone()))
        .collect()
}

/// What a verdict's evidence is, in the device's history: `fetch NAME STATUS PROTOCOL` for a
/// request, `SOURCE KIND` for an event.
fn evidence(desk: &Desk, mac: &str, verdict: &Value) -> Vec<String> {
    let entries = history(desk, mac);
    verdict["evidence"]
        .as_array()
        .expect("evidence")
        .iter()
        .map(|id| {
            let id = id.as_str().expect("an id");
            let entry = entries
                .get(id)
                .unwrap_or_else(|| panic!("{id} is not in the history: {entries:#?}"));
            match entry["fetch"].as_object() {
                Some(fetch) => format!(
                    "fetch {} {} {}",
                    fetch["name"].as_str().unwrap_or_default(),
                    fetch["status"].as_str().unwrap_or_default(),
                    fetch["protocol"].as_str().unwrap_or_default()
                ),
                None => format!(
                    "{} {}",
                    entry["source"].as_str().unwrap_or_default(),
                    entry["kind"].as_str().unwrap_or_default()
                ),
            }
        })
        .collect()
}

fn words(verdict: &Value) -> &str {
    verdict["words"].as_str().expect("words")
}

#[test]
fn never_asked_and_the_builds_that_changed_its_files() {
    let desk = desk_with_phones();
    desk.ok(&["build"]);
    let found = diagnosis(&desk, PHONE);
    assert_eq!(codes(&found), ["never-asked"], "{found:#}");
    assert_eq!(found["status"]["state"], "never-seen");
    // The desk's build is in its history, naming its files.
    let builds: Vec<Value> = history(&desk, PHONE)
        .into_values()
        .filter(|e| e["source"] == "build")
        .collect();
    assert_eq!(builds.len(), 1, "{builds:#?}");
    let summary = builds[0]["summary"].as_str().expect("summary");
    assert!(
        summary.starts_with("build 1 changed") && summary.contains(&format!("cfg{PHONE}.xml")),
        "{summary}"
    );
    // Building again changes nothing and adds nothing.
    desk.ok(&["build"]);
    assert_eq!(
        history(&desk, PHONE)
            .values()
            .filter(|e| e["source"] == "build")
            .count(),
        1
    );
    let shown = desk.ok(&["device", "show", PHONE]);
    assert!(
        shown.contains("never-asked: It has never asked this desk"),
        "{shown}"
    );
    // An unknown MAC has no history.
    let err = desk.fails(&["device", "history", "000b82000000"]);
    assert!(err.contains("no history"), "{err}");
}

#[test]
fn asking_over_tftp_while_only_http_is_served_and_the_log_after_the_server_stopped() {
    let desk = Desk::init();
    desk.edit_settings("mode = \"per-device\"", "mode = \"off\"");
    desk.add_office_phone(PHONE, "s3cret-sip", &[]);
    let mut server = Server::start(&desk, TFTP_AND_HTTP);
    let port = server.port("tftp");
    let work = tempfile::tempdir().expect("work dir");
    // The chain a phone on TFTP walks: binary, then its XML.
    for name in [format!("cfg{PHONE}"), format!("cfg{PHONE}.xml")] {
        let out = tftp_get("127.0.0.1", port, &name, &work.path().join("got"));
        assert!(work.path().join("got").exists(), "{name}: {}", text(&out));
        server.wait_for_fetch(&name);
    }
    let (status, _) = server.terminate();
    assert!(status.success());

    // The servers are gone; the fetch log is not.
    let log = desk.ok(&["log", "--json"]);
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let names: Vec<&str> = lines.iter().filter_map(|l| l["name"].as_str()).collect();
    assert_eq!(
        names,
        [format!("cfg{PHONE}"), format!("cfg{PHONE}.xml")],
        "{log}"
    );
    assert!(
        lines
            .iter()
            .all(|l| l["protocol"] == "tftp" && l["mac"] == PHONE)
    );
    let text_log = desk.ok(&["log", "--device", PHONE, "--last", "1"]);
    assert_eq!(text_log.lines().count(), 1, "{text_log}");
    assert!(
        text_log.contains(&format!("cfg{PHONE}.xml  200  {PHONE}")),
        "{text_log}"
    );
    assert!(desk.ok(&["log", "--since", "1h", "--json"]).lines().count() == 2);

    // While TFTP was served, nothing is wrong.
    assert_eq!(codes(&diagnosis(&desk, PHONE)), Vec::<String>::new());
    // The technician turns TFTP off: the phone still asks over TFTP.
    let before = desk.edit_settings("tftp = \"0.0.0.0:69\"", "tftp = \"off\"");
    assert!(before.contains("tftp = \"0.0.0.0:69\""), "{before}");
    let found = diagnosis(&desk, PHONE);
    assert_eq!(codes(&found), ["protocol-not-served"], "{found:#}");
    let verdict = verdict(&found, "protocol-not-served");
    assert!(words(verdict).contains("asks over TFTP, but this desk serves only HTTP"));
    assert_eq!(
        evidence(&desk, PHONE, verdict),
        [
            format!("fetch cfg{PHONE} 200 tftp"),
            format!("fetch cfg{PHONE}.xml 200 tftp")
        ]
    );
}

#[test]
fn refused_by_authentication_over_http_and_withheld_over_tftp() {
    let desk = Desk::init();
    let before = desk.edit_settings("mode = \"none\"", "mode = \"digest\"");
    assert!(before.contains("mode = \"none\""));
    desk.write(
        "profiles/authed.toml",
        "extends = \"office\"\n[params]\nP1360 = \"phone{{ ext }}\"\nP1361 = \"{{ http_password }}\"\n",
    );
    for mac in [PHONE, OTHER] {
        desk.ok(&[
            "device",
            "add",
            mac,
            "--model",
            "gxp2170",
            "--profile",
            "authed",
            "--var",
            "ext=201",
            "--var",
            "sip_secret=s3cret-sip",
            "--var",
            "http_password=h3ll0-http",
        ]);
    }
    let mut server = Server::start(&desk, TFTP_AND_HTTP);
    let base = server.url("http").to_string();
    let xml = format!("cfg{PHONE}.xml");
    // Digest: a first request without credentials, then the phone's (wrong) password.
    let status = http_get(
        &base,
        PHONE,
        OLD_FIRMWARE,
        &xml,
        &["--digest", "-u", "phone201:wrong"],
    );
    assert_eq!(status, 401);
    server.wait_for("both refusals", |e| {
        e["event"] == "fetch"
            && e["name"] == xml.as_str()
            && e["outcome"]["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("wrong password"))
    });
    // The other phone asks for its own file over TFTP, which cannot authenticate.
    let work = tempfile::tempdir().expect("work dir");
    let other_xml = format!("cfg{OTHER}.xml");
    let out = tftp_get(
        "127.0.0.1",
        server.port("tftp"),
        &other_xml,
        &work.path().join("x"),
    );
    assert!(text(&out).contains("Error code"), "{}", text(&out));
    server.wait_for_fetch(&other_xml);
    let (status, _) = server.terminate();
    assert!(status.success());

    let found = diagnosis(&desk, PHONE);
    assert_eq!(codes(&found), ["refused"], "{found:#}");
    let refused = verdict(&found, "refused");
    assert_eq!(refused["severity"], "problem");
    for expected in [
        "HTTP 401",
        "(2 times)",
        "wrong password for user phone201",
        "P1360/P1361",
    ] {
        assert!(words(refused).contains(expected), "{expected}: {refused:#}");
    }
    assert_eq!(
        evidence(&desk, PHONE, refused),
        [
            format!("fetch {xml} denied http"),
            format!("fetch {xml} denied http")
        ]
    );
    assert!(
        !words(refused).contains("wrong\""),
        "the password is never quoted"
    );

    let found = diagnosis(&desk, OTHER);
    let refused = verdict(&found, "refused");
    assert!(words(refused).contains("a TFTP error"), "{refused:#}");
    assert!(
        words(refused).contains("tftp_device_files = true"),
        "{refused:#}"
    );
    assert_eq!(
        evidence(&desk, OTHER, refused),
        [format!("fetch {other_xml} denied tftp")]
    );
}

#[test]
fn the_binary_but_never_the_xml() {
    let desk = desk_with_phones();
    let mut server = Server::start_http(&desk);
    let base = server.url("http").to_string();
    let binary = format!("cfg{PHONE}");
    assert_eq!(http_get(&base, PHONE, OLD_FIRMWARE, &binary, &[]), 200);
    server.wait_for_fetch(&binary);
    server.terminate();

    let found = diagnosis(&desk, PHONE);
    assert_eq!(codes(&found), ["binary-without-xml"], "{found:#}");
    let verdict = verdict(&found, "binary-without-xml");
    assert!(words(verdict).contains(&format!("has not asked for its XML (cfg{PHONE}.xml)")));
    assert_eq!(
        evidence(&desk, PHONE, verdict),
        [format!("fetch {binary} 200 http")]
    );
    assert_eq!(found["status"]["state"], "got-config");
}

#[test]
fn the_encrypted_xml_then_a_fallback_over_tftp_is_a_p1359_mismatch() {
    // Encryption is per-device in the sample: the phone fetches its encrypted XML without
    // first fetching the binary that carries the password, and falls back.
    let desk = desk_with_phones();
    let mut server = Server::start(&desk, TFTP_AND_HTTP);
    let port = server.port("tftp");
    let work = tempfile::tempdir().expect("work dir");
    let names = [
        format!("cfg{PHONE}.xml"),
        "cfggxp2170.xml".into(),
        "cfg.xml".into(),
    ];
    for name in &names {
        tftp_get("127.0.0.1", port, name, &work.path().join("got"));
        server.wait_for_fetch(name);
    }
    server.terminate();

    let found = diagnosis(&desk, PHONE);
    assert_eq!(codes(&found), ["xml-not-decrypted"], "{found:#}");
    let verdict = verdict(&found, "xml-not-decrypted");
    assert!(
        words(verdict).contains(&format!("encrypted cfg{PHONE}.xml")),
        "{verdict:#}"
    );
    assert!(words(verdict).contains("P1359"), "{verdict:#}");
    // The shared files' requests carry no MAC: the server tied them to the phone by its
    // address, and the history shows them.
    assert_eq!(
        evidence(&desk, PHONE, verdict),
        names
            .iter()
            .map(|n| format!("fetch {n} 200 tftp"))
            .collect::<Vec<_>>()
    );
    assert_eq!(found["status"]["state"], "up-to-date", "never applied");
}

/// A GXP2170 firmware image and the version the desk knows it by.
fn add_firmware(desk: &Desk) {
    let image: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
    std::fs::write(desk.root.join("firmware/gxp2170fw.bin"), &image).expect("firmware");
    desk.write(
        "firmware/.versions.toml",
        &format!(
            "[\"gxp2170fw.bin\"]\nversion = \"{NEW_FIRMWARE}\"\nsource = \"GXP2170-{NEW_FIRMWARE}.bin\"\nsize = {}\n",
            image.len()
        ),
    );
}

#[test]
fn firmware_downloaded_but_the_phone_came_back_on_the_old_version_then_on_target() {
    let desk = desk_with_phones();
    add_firmware(&desk);
    let mut server = Server::start_http(&desk);
    let base = server.url("http").to_string();
    let boot = |server: &mut Server, firmware: &str, with_image: bool| {
        let mut names = vec![format!("cfg{PHONE}"), format!("cfg{PHONE}.xml")];
        if with_image {
            names.push("gxp2170fw.bin".into());
        }
        for name in &names {
            assert_eq!(http_get(&base, PHONE, firmware, name, &[]), 200, "{name}");
            server.wait_for_fetch(name);
        }
    };
    boot(&mut server, OLD_FIRMWARE, true);
    // It reboots and comes back: applied, but still on the old firmware.
    boot(&mut server, OLD_FIRMWARE, false);
    let mut server = {
        server.terminate();
        let found = diagnosis(&desk, PHONE);
        assert_eq!(codes(&found), ["firmware-not-taken"], "{found:#}");
        assert_eq!(found["status"]["state"], "applied");
        let verdict = verdict(&found, "firmware-not-taken");
        assert!(
            words(verdict).contains(&format!(
                "downloaded gxp2170fw.bin (firmware {NEW_FIRMWARE}) but came back still on firmware {OLD_FIRMWARE}"
            )),
            "{verdict:#}"
        );
        assert_eq!(
            evidence(&desk, PHONE, verdict),
            [
                format!("fetch cfg{PHONE}.xml 200 http"),
                "fetch gxp2170fw.bin 200 http".to_string(),
                format!("fetch cfg{PHONE}.xml 200 http"),
            ]
        );
        Server::start_http(&desk)
    };
    // This time it installs it. The restarted server listens on another port, so its build
    // changed the phone's P237: the phone takes the new XML and comes back once more.
    let base = server.url("http").to_string();
    for _ in 0..2 {
        for name in [format!("cfg{PHONE}"), format!("cfg{PHONE}.xml")] {
            assert_eq!(http_get(&base, PHONE, NEW_FIRMWARE, &name, &[]), 200);
            server.wait_for_fetch(&name);
        }
    }
    server.terminate();
    let found = diagnosis(&desk, PHONE);
    assert_eq!(codes(&found), Vec::<String>::new(), "{found:#}");
    assert_eq!(found["status"]["state"], "on-target-firmware");
    assert!(
        found["summary"]
            .as_str()
            .is_some_and(|s| s.contains(&format!("runs firmware {NEW_FIRMWARE}"))),
        "{found:#}"
    );
    let list = desk.json(&["device", "list", "--json"]);
    let listed = list
        .as_array()
        .expect("list")
        .iter()
        .find(|d| d["mac"] == PHONE)
        .expect("listed")
        .clone();
    assert_eq!(
        listed["status"]["state"], "on-target-firmware",
        "the list climbs too"
    );
}

#[test]
fn stale_after_an_edit_that_the_servers_rebuilt() {
    let desk = Desk::init();
    desk.edit_settings("mode = \"per-device\"", "mode = \"off\"");
    desk.add_office_phone(PHONE, "s3cret-sip", &[]);
    let mut server = Server::start_http(&desk);
    let base = server.url("http").to_string();
    for name in [format!("cfg{PHONE}"), format!("cfg{PHONE}.xml")] {
        assert_eq!(http_get(&base, PHONE, OLD_FIRMWARE, &name, &[]), 200);
        server.wait_for_fetch(&name);
    }
    let global = desk.root.join("profiles/global.toml");
    let edited = std::fs::read_to_string(&global)
        .expect("global.toml")
        .replace("pool.ntp.org", "ntp.example.org");
    std::fs::write(&global, edited).expect("edit");
    server.wait_for("the watcher's build", |e| {
        e["event"] == "build" && e["published"] == true && e["written"].as_u64() > Some(0)
    });
    server.terminate();

    let found = diagnosis(&desk, PHONE);
    assert_eq!(codes(&found), ["stale"], "{found:#}");
    let verdict = verdict(&found, "stale");
    assert!(words(verdict).contains("resync"), "{verdict:#}");
    let evidence = evidence(&desk, PHONE, verdict);
    assert_eq!(
        evidence,
        [
            format!("fetch cfg{PHONE} 200 http"),
            format!("fetch cfg{PHONE}.xml 200 http"),
            "build changed".to_string()
        ]
    );
    // The servers' build names what it changed for this phone.
    let builds: Vec<String> = history(&desk, PHONE)
        .into_values()
        .filter(|e| e["source"] == "build")
        .map(|e| e["summary"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        builds.len(),
        2,
        "the first build and the edit's: {builds:?}"
    );
    assert!(builds[1].contains(&format!("cfg{PHONE}.xml")), "{builds:?}");
    // The text history shows the same, in time order with the ids.
    let text_history = desk.ok(&["device", "history", PHONE, "--since", "1h"]);
    let sources: Vec<&str> = text_history
        .lines()
        .map(|l| l.split_whitespace().nth(2).unwrap_or_default())
        .collect();
    assert_eq!(
        sources,
        ["build", "fetch", "fetch", "build"],
        "{text_history}"
    );
}

#[test]
fn log_follow_sees_a_request_while_another_process_serves() {
    let desk = desk_with_phones();
    let mut server = Server::start_http(&desk);
    let base = server.url("http").to_string();
    let (mut follower, lines) =
        support::spawn_lines(desk.command(&["log", "--follow", "--json", "--device", PHONE]));
    let name = format!("cfg{PHONE}.xml");
    assert_eq!(http_get(&base, PHONE, OLD_FIRMWARE, &name, &[]), 200);
    server.wait_for_fetch(&name);
    let deadline = Instant::now() + WAIT;
    let seen = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("log --follow printed nothing in time: {e}"));
        let entry: Value = serde_json::from_str(&line).expect("a JSON line");
        if entry["name"] == name.as_str() {
            break entry;
        }
    };
    assert_eq!(seen["mac"], PHONE);
    assert_eq!(seen["status"], "200");
    follower.kill().expect("stop the follower");
    follower.wait().expect("wait");
    server.terminate();
}
