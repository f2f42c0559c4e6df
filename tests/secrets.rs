//! Secrets are secret by what they feed, through the real binary: issue 13 saw
//! `device show --json` print every secret, and text mode show a `--var acct=…` feeding P34
//! in clear because only names like `sip_secret` were masked.

use serde_json::Value;

mod support;
use support::Desk;

const SECRET: &str = "hunter2secret";

/// A desk with one device whose `acct` variable feeds P34 (the SIP password) and the account
/// name P270, and whose override sets the secret P1359.
fn desk() -> Desk {
    let desk = Desk::init();
    desk.write(
        "profiles/acct.toml",
        "[params]\nP34 = \"{{ acct }}\"\nP270 = \"Line {{ acct }}\"\nP35 = \"{{ ext }}\"\n",
    );
    let acct = format!("acct={SECRET}");
    desk.add_device(
        "000b82000001",
        "gxp2170",
        "acct",
        &[
            "--name",
            "Front desk",
            "--var",
            &acct,
            "--var",
            "ext=201",
            "--set",
            "P1359=xmlpw-override",
        ],
    );
    desk.add_device(
        "000b82000002",
        "gxp2170",
        "acct",
        &["--var", "acct=another-acct-pw", "--var", "ext=202"],
    );
    // A build fills in what the builder adds (a generated P1359 where the desk encrypts).
    desk.ok(&["build"]);
    desk
}

#[test]
fn device_show_masks_what_feeds_a_secret_in_text_and_json() {
    let desk = desk();
    let text = desk.ok(&["device", "show", "000b82000001"]);
    assert!(!text.contains(SECRET), "{text}");
    assert!(!text.contains("xmlpw-override"), "{text}");
    assert!(text.contains("var acct = ••••••"), "{text}");
    assert!(text.contains("var ext = 201"), "{text}");

    let shown = desk.json(&["device", "show", "000b82000001", "--json"]);
    let raw = shown.to_string();
    assert!(!raw.contains(SECRET), "{shown:#}");
    assert!(!raw.contains("xmlpw-override"), "{shown:#}");
    assert_eq!(shown["vars"]["acct"], "••••••");
    assert_eq!(shown["vars"]["ext"], "201");
    assert_eq!(shown["secret_vars"], Value::from(vec!["acct"]));
    for p in ["P34", "P270", "P1359"] {
        assert_eq!(shown["params"][p]["value"], "••••••", "{p}: {shown:#}");
        assert_eq!(shown["params"][p]["secret"], true, "{p}");
    }
    assert_eq!(shown["params"]["P35"]["value"], "201");
    assert_eq!(shown["params"]["P35"]["secret"], false);
    // Whatever sets a secret P-value (a layer, an override, the builder), it is masked.
    for (p, param) in shown["params"].as_object().expect("params") {
        if param["secret"] == true {
            assert!(
                param["value"] == "••••••" || param["value"] == "",
                "{p}: {param:#}"
            );
        }
    }
}

#[test]
fn a_secret_the_builder_fills_in_is_masked_too() {
    let desk = desk();
    let shown = desk.json(&["device", "show", "000b82000002", "--json"]);
    assert!(!shown.to_string().contains("another-acct-pw"), "{shown:#}");
    for (p, param) in shown["params"].as_object().expect("params") {
        if param["secret"] == true {
            assert!(
                param["value"] == "••••••" || param["value"] == "",
                "{p}: {param:#}"
            );
        }
    }
    let clear = desk.json(&["device", "show", "000b82000002", "--json", "--show-secrets"]);
    if let Some(password) = clear["params"]["P1359"]["value"].as_str() {
        assert_eq!(shown["params"]["P1359"]["secret"], true);
        let text = desk.ok(&["device", "show", "000b82000002"]);
        assert!(!text.contains(password), "{text}");
    }
}

#[test]
fn show_secrets_shows_them_in_text_and_json() {
    let desk = desk();
    let text = desk.ok(&["device", "show", "000b82000001", "--show-secrets"]);
    assert!(text.contains(&format!("var acct = {SECRET}")), "{text}");
    assert!(text.contains("xmlpw-override"), "{text}");

    let shown = desk.json(&["device", "show", "000b82000001", "--json", "--show-secrets"]);
    assert_eq!(shown["vars"]["acct"], SECRET);
    assert_eq!(shown["params"]["P34"]["value"], SECRET);
    assert_eq!(shown["params"]["P270"]["value"], format!("Line {SECRET}"));
    assert_eq!(shown["params"]["P1359"]["value"], "xmlpw-override");
    // Still flagged, so a script knows what it holds.
    assert_eq!(shown["params"]["P34"]["secret"], true);
}

#[test]
fn device_list_says_no_secret() {
    let desk = desk();
    let text = desk.ok(&["device", "list"]);
    assert!(text.contains("000b82000001"), "{text}");
    assert!(!text.contains(SECRET), "{text}");
    let list = desk.ok(&["device", "list", "--json"]);
    assert!(
        list.contains("000b82000001") && !list.contains(SECRET),
        "{list}"
    );
}
