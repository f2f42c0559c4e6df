//! Scenario: the real `provdesk serve` on a fresh desk, fetched from with the real TFTP
//! clients phones' firmware is tested against (tftp-hpa's `tftp` and `curl tftp://`), its
//! JSON event log read line by line, and its fetch log checked after SIGTERM.
//!
//! Every wait is on a log line or a process exit, with a timeout; the clients must be
//! installed (`scripts/test` installs them), and a missing one fails the test.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use provdesk_core::inventory::{FetchLogQuery, Inventory};
use serde_json::Value;

mod support;
use support::{Desk, Server, text, tftp_get};

const KNOWN: &str = "000b82123456";
const UNKNOWN: &str = "000b82abcdef";
const FIRMWARE_SIZE: usize = 2 * 1024 * 1024 + 123;

fn curl_tftp(port: u16, remote: &str, local: &Path) -> Output {
    Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "60", "--output"])
        .arg(local)
        .arg(format!("tftp://127.0.0.1:{port}/{remote}"))
        .stdin(Stdio::null())
        .output()
        .expect("curl must be installed; scripts/test installs it")
}

#[test]
fn phones_fetch_over_tftp_and_everything_is_logged() {
    let desk = Desk::new();
    desk.ok(&["init"]);
    // This scenario reads the XML as served; encryption, on by default, has its own scenario
    // (tests/encryption.rs).
    let sample = desk.edit_settings("mode = \"per-device\"", "mode = \"off\"");
    assert!(sample.contains("mode = \"per-device\""), "{sample}");
    desk.add_office_phone(KNOWN, "s3cret-pw", &[]);
    let firmware: Vec<u8> = (0..FIRMWARE_SIZE)
        .map(|i| (i.wrapping_mul(31) % 251) as u8)
        .collect();
    std::fs::write(desk.root.join("firmware/gxp2170fw.bin"), &firmware).expect("firmware");
    let work = tempfile::tempdir().expect("work dir");
    let local = |name: &str| work.path().join(name);

    let mut server = Server::start(
        &desk,
        &["--tftp", "127.0.0.1:0", "--http", "off", "--https", "off"],
    );
    let port = server.port("tftp");

    // A known device's XML, byte for byte what the build wrote, pointing back at this server.
    let xml_name = format!("cfg{KNOWN}.xml");
    let out = tftp_get("127.0.0.1", port, &xml_name, &local("known.xml"));
    let served = std::fs::read(local("known.xml"))
        .unwrap_or_else(|_| panic!("tftp got nothing: {}", text(&out)));
    let built = std::fs::read(desk.root.join("build").join(&xml_name)).expect("built file");
    assert_eq!(served, built);
    let served = String::from_utf8(served).expect("plain XML");
    assert!(
        served.contains(&format!("<P237>127.0.0.1:{port}</P237>")),
        "{served}"
    );
    assert!(served.contains("<P212>0</P212>"), "{served}");
    let fetch = server.wait_for_fetch(&xml_name);
    assert_eq!(fetch["outcome"]["kind"], "served");
    assert_eq!(fetch["mac"], KNOWN);
    assert_eq!(fetch["bytes"], built.len());

    // An unknown MAC: the clients fail, the request is logged and the phone discovered.
    let unknown_name = format!("cfg{UNKNOWN}.xml");
    let out = curl_tftp(port, &unknown_name, &local("unknown.xml"));
    assert!(!out.status.success(), "curl should fail: {}", text(&out));
    let out = tftp_get("127.0.0.1", port, &unknown_name, &local("unknown2.xml"));
    assert!(text(&out).contains("Error code 1"), "{}", text(&out));
    let fetch = server.wait_for_fetch(&unknown_name);
    assert_eq!(fetch["outcome"]["kind"], "not-found");
    assert!(
        fetch["outcome"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains(UNKNOWN)),
        "{fetch}"
    );
    server.wait_for("the discovery", |e| {
        e["event"] == "discovered" && e["mac"] == UNKNOWN
    });
    let list = desk.json(&["device", "list", "--json"]);
    let found = list
        .as_array()
        .expect("a list")
        .iter()
        .find(|d| d["mac"] == UNKNOWN)
        .unwrap_or_else(|| panic!("{UNKNOWN} not listed: {list:#}"))
        .clone();
    assert_eq!(found["state"], "discovered");
    assert_eq!(found["model"], "unknown");
    assert_eq!(found["last_ip"], "127.0.0.1");
    assert_eq!(found["status"]["state"], "requesting");

    // Firmware: streamed whole, with progress on the way.
    let out = curl_tftp(port, "gxp2170fw.bin", &local("fw.bin"));
    assert!(out.status.success(), "{}", text(&out));
    assert!(std::fs::read(local("fw.bin")).expect("firmware") == firmware);
    let fetch = server.wait_for_fetch("gxp2170fw.bin");
    assert_eq!(fetch["outcome"]["kind"], "served");
    assert_eq!(fetch["bytes"], FIRMWARE_SIZE);
    let progress: Vec<&Value> = server
        .seen
        .iter()
        .filter(|e| e["event"] == "progress" && e["name"] == "gxp2170fw.bin")
        .collect();
    assert!(progress.len() >= 2, "progress events: {progress:#?}");
    assert!(progress.iter().all(|p| p["total"] == FIRMWARE_SIZE));

    // An edit reaches the served files once its build is reported.
    let global = desk.root.join("profiles/global.toml");
    let edited = std::fs::read_to_string(&global)
        .expect("global.toml")
        .replace("pool.ntp.org", "ntp.example.org");
    std::fs::write(&global, edited).expect("edit");
    let build = server.wait_for("the rebuild", |e| {
        e["event"] == "build" && e["written"].as_u64().is_some_and(|w| w > 0)
    });
    assert_eq!(build["published"], true, "{build}");
    let out = tftp_get("127.0.0.1", port, "cfg.xml", &local("cfg.xml"));
    let generic = std::fs::read_to_string(local("cfg.xml"))
        .unwrap_or_else(|_| panic!("tftp got nothing: {}", text(&out)));
    assert!(generic.contains("ntp.example.org"), "{generic}");
    server.wait_for_fetch("cfg.xml");

    // Names that try to leave the flat folder are refused and logged.
    for name in ["../provdesk.db", "/etc/passwd"] {
        let out = tftp_get("127.0.0.1", port, name, &local("traversal"));
        assert!(
            text(&out).contains("Error code 2"),
            "{name}: {}",
            text(&out)
        );
        assert!(
            !local("traversal").exists()
                || std::fs::read(local("traversal")).expect("read").is_empty()
        );
        let fetch = server.wait_for_fetch(name);
        assert_eq!(fetch["outcome"]["kind"], "bad-request", "{fetch}");
    }

    let (status, seen) = server.terminate();
    assert!(status.success(), "exit status {status}");
    let all = serde_json::to_string(&seen).expect("events as JSON");
    assert!(
        !all.contains("s3cret-pw"),
        "a password reached the event log"
    );

    // Every fetch is in the database, written before the process exited.
    let inventory = Inventory::open(&desk.root.join("provdesk.db")).expect("open the inventory");
    let log = inventory
        .fetch_log(&FetchLogQuery::default())
        .expect("fetch log");
    let fetches = seen.iter().filter(|e| e["event"] == "fetch").count();
    assert_eq!(log.len(), fetches, "{log:#?}");
    // Known XML, the unknown one twice, firmware, cfg.xml, two refused names.
    assert_eq!(fetches, 7);
    let firmware_row = log
        .iter()
        .find(|row| row.name == "gxp2170fw.bin")
        .expect("firmware row");
    assert_eq!(firmware_row.status, "200");
    assert_eq!(firmware_row.bytes, FIRMWARE_SIZE as u64);
    assert!(firmware_row.artifact_hash.is_some());
    assert!(
        log.iter()
            .any(|row| row.name == unknown_name && row.status == "404")
    );
    assert!(!format!("{log:?}").contains("s3cret-pw"));

    // The known device fetched its XML before the edit changed it.
    let shown = desk.json(&["device", "show", KNOWN, "--json"]);
    assert_eq!(shown["status"]["state"], "stale", "{:#}", shown["status"]);
}
