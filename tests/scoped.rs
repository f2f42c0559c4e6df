//! Scenario: one phone's problem stays that phone's. A phone the desk auto-enrolls into the
//! sample `office` profile lacks the variables it uses (`{{ ext }}`, `{{ sip_secret }}`); an
//! edit to `global.toml` must still reach every complete phone, while the incomplete one is
//! "needs attention" in the build events, `device list`, `device show` and `provdesk build`.
//!
//! Real binary, real `curl` as the phones; the complete phone decrypts its XML with the P1359
//! of its binary file, as the firmware does (encryption is on by default).

use std::collections::BTreeMap;
use std::process::Command;

use provdesk_core::PName;
use provdesk_core::format::{binary, crypt};
use serde_json::Value;

mod support;
use support::{Desk, Server};

const COMPLETE: &str = "000b82000001";
const UNKNOWN: &str = "000b82aabbcc";

/// GET `name` with curl as a GXP2170 whose DevId is `mac`; the status and the body.
fn fetch(server: &Server, mac: &str, name: &str) -> (u16, Vec<u8>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let body = dir.path().join("body");
    let out = Command::new("curl")
        .args(["-s", "-o"])
        .arg(&body)
        .args(["-w", "%{http_code}", "--max-time", "10", "-A"])
        .arg(format!(
            "Grandstream Model HW GXP2170 SW 1.0.11.3 DevId {mac}"
        ))
        .arg(format!("{}/{name}", server.url("http")))
        .output()
        .expect("curl must be installed; scripts/test installs it");
    let status = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("curl prints the status");
    (status, std::fs::read(&body).unwrap_or_default())
}

/// What the complete phone ends up with: the binary file's P1359 decrypts its XML.
fn boot(server: &Server) -> String {
    let (status, bin) = fetch(server, COMPLETE, &format!("cfg{COMPLETE}"));
    assert_eq!(status, 200);
    let values: BTreeMap<PName, String> = binary::decode(&bin)
        .expect("binary config")
        .params
        .into_iter()
        .collect();
    let password = &values[&"P1359".parse::<PName>().expect("P1359")];
    let (status, body) = fetch(server, COMPLETE, &format!("cfg{COMPLETE}.xml"));
    assert_eq!(status, 200);
    let plain = crypt::decrypt(&body, password).expect("decrypts with the binary's P1359");
    String::from_utf8(plain).expect("XML")
}

fn holds(event: &Value, mac: &str) -> bool {
    event["held"]
        .as_array()
        .is_some_and(|held| held.iter().any(|h| h["mac"] == mac))
}

#[test]
fn an_incomplete_auto_enrolled_phone_needs_attention_and_every_other_phone_gets_the_edit() {
    let desk = Desk::init();
    let text = desk.edit_settings(
        "# auto_enroll_profile = \"office\"",
        "auto_enroll_profile = \"office\"",
    );
    assert!(
        text.contains("# auto_enroll_profile = \"office\""),
        "{text}"
    );
    desk.add_office_phone(COMPLETE, "s3cret-201", &[]);
    let mut server = Server::start_http(&desk);
    let first = boot(&server);
    assert!(first.contains("<P30>pool.ntp.org</P30>"), "{first}");

    // An unknown phone asks; it is enrolled into `office`, which it cannot complete.
    let (status, _) = fetch(&server, UNKNOWN, &format!("cfg{UNKNOWN}.xml"));
    assert_eq!(status, 404);
    let warning = server.wait_for("the auto-enroll warning", |e| {
        e["event"] == "warning"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains(UNKNOWN) && m.contains("enrolled"))
    });
    let message = warning["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("needs attention") && message.contains("ext, sip_secret"),
        "{message}"
    );
    let held = server.wait_for("the build of the enrolled phone", |e| {
        e["event"] == "build" && holds(e, UNKNOWN)
    });
    assert_eq!(held["published"], true, "{held}");

    // The edit of a shared file reaches the complete phone all the same.
    let global = desk.root.join("profiles/global.toml");
    let text = std::fs::read_to_string(&global).expect("global.toml");
    std::fs::write(
        &global,
        text.replace("P30 = \"pool.ntp.org\"", "P30 = \"ntp.example.org\""),
    )
    .expect("edit");
    let build = server.wait_for("the build of the edit", |e| {
        e["event"] == "build" && e["published"] == true && e["written"].as_u64() > Some(0)
    });
    assert!(holds(&build, UNKNOWN), "{build}");
    let after = boot(&server);
    assert!(after.contains("<P30>ntp.example.org</P30>"), "{after}");
    assert!(after.contains("<P34>s3cret-201</P34>"), "{after}");
    // The incomplete phone breaks nothing and gets nothing half-made.
    assert_eq!(fetch(&server, UNKNOWN, &format!("cfg{UNKNOWN}.xml")).0, 404);
    let (status, _) = server.terminate();
    assert!(status.success());

    // It is in the inventory, and says what it needs, everywhere a technician looks.
    let list = desk.json(&["device", "list", "--json"]);
    let entry = list
        .as_array()
        .expect("a list")
        .iter()
        .find(|d| d["mac"] == UNKNOWN)
        .expect("the enrolled phone is listed");
    assert_eq!(entry["state"], "inventory");
    assert_eq!(entry["profile"], "office");
    assert_eq!(entry["status"]["state"], "needs-attention", "{entry}");
    let reason = entry["status"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("undefined variable `ext`"), "{reason}");
    let table = desk.ok(&["device", "list"]);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(UNKNOWN) && l.contains("needs attention")),
        "{table}"
    );
    let shown = desk.ok(&["device", "show", UNKNOWN]);
    assert!(
        shown.contains("status: needs attention (") && shown.contains("sip_secret"),
        "{shown}"
    );
    let complete = desk.json(&["device", "list", "--json"]);
    let complete = complete
        .as_array()
        .and_then(|l| l.iter().find(|d| d["mac"] == COMPLETE))
        .expect("listed");
    assert_ne!(complete["status"]["state"], "needs-attention");

    // `provdesk build` publishes for everyone else and says who is held and why: exit 0.
    let (_, err) = desk.ok_with_stderr(&["build"]);
    assert!(err.contains(&format!("{UNKNOWN} needs attention")), "{err}");
    assert!(err.contains("undefined variable `sip_secret`"), "{err}");
    let report = desk.json(&["build", "--json"]);
    assert_eq!(report["published"], true);
    assert_eq!(report["held"][0]["mac"], UNKNOWN, "{report}");
}
