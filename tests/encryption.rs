//! Scenario: secure by default. A fresh desk encrypts every phone's `cfg<mac>.xml` with a
//! password ProvDesk generated for that phone and keeps in the inventory; the phone's binary
//! `cfg<mac>` carries it as P1359. Checked with the real binary and real peers: `sqlite3`
//! reads the password from the inventory, `openssl enc` decrypts the file the way Grandstream
//! documents (AES-256-CBC, salted, MD5 key derivation), `provdesk binary decode` shows the
//! bootstrap. `[encryption] mode = "off"` serves the XML in clear, and says so only by choice.

mod support;
use support::{Desk, openssl_decrypt};

const MAC: &str = "000b82000001";
const SECRET: &str = "sip-s3cret-201";

fn add_phone(desk: &Desk) {
    desk.add_office_phone(MAC, SECRET, &[]);
}

fn stored_password(desk: &Desk) -> String {
    desk.sqlite(&format!(
        "SELECT xml_password FROM devices WHERE mac = '{MAC}'"
    ))
}

/// The P-values of the built binary `cfg<mac>`, through `provdesk binary decode --json`.
fn bootstrap(desk: &Desk) -> serde_json::Value {
    let file = desk.root.join(format!("build/cfg{MAC}"));
    let decoded = desk.json(&["binary", "decode", &file.to_string_lossy(), "--json"]);
    assert_eq!(decoded["mac"], MAC);
    decoded["params"].clone()
}

#[test]
fn a_new_desk_encrypts_each_phones_xml_with_its_own_password() {
    let desk = Desk::init();
    add_phone(&desk);
    let password = stored_password(&desk);
    assert!(
        password.len() >= 16 && password.bytes().all(|b| b.is_ascii_alphanumeric()),
        "generated password {password:?}"
    );
    desk.ok(&["build"]);

    let xml = desk.root.join(format!("build/cfg{MAC}.xml"));
    let body = std::fs::read(&xml).expect("built XML");
    assert!(body.starts_with(b"Salted__"), "not encrypted");
    let text = String::from_utf8_lossy(&body);
    assert!(
        !text.contains("<P34>") && !text.contains(SECRET),
        "plaintext on disk"
    );

    let out = openssl_decrypt(&xml, &password);
    assert!(out.status.success(), "{}", support::text(&out));
    let plain = String::from_utf8(out.stdout).expect("XML");
    assert!(plain.contains(&format!("<P34>{SECRET}</P34>")), "{plain}");
    assert!(plain.contains(&format!("<mac>{MAC}</mac>")), "{plain}");
    let wrong = openssl_decrypt(&xml, "not-the-password");
    assert!(
        !wrong.status.success() || !String::from_utf8_lossy(&wrong.stdout).contains("<P34>"),
        "decrypted with a wrong password"
    );

    // The binary file carries the password (as the format requires) and never the SIP secret.
    let params = bootstrap(&desk);
    assert_eq!(params["P1359"], password.as_str(), "{params}");
    assert!(params.get("P34").is_none(), "{params}");

    // Shown as a secret: masked unless asked for.
    let shown = desk.ok(&["device", "show", MAC]);
    assert!(shown.contains("P1359"), "{shown}");
    assert!(!shown.contains(&password), "{shown}");

    // Rebuilding keeps the same file (no new salt for the same content and password).
    desk.ok(&["build"]);
    assert_eq!(std::fs::read(&xml).expect("built XML"), body);
}

#[test]
fn a_device_from_before_passwords_gets_one_on_the_first_build() {
    let desk = Desk::init();
    add_phone(&desk);
    // As a row from before the migration: no password.
    desk.sqlite(&format!(
        "UPDATE devices SET xml_password = NULL WHERE mac = '{MAC}'"
    ));
    assert_eq!(stored_password(&desk), "");
    desk.ok(&["build"]);
    let password = stored_password(&desk);
    assert!(password.len() >= 16, "{password:?}");
    let xml = desk.root.join(format!("build/cfg{MAC}.xml"));
    let out = openssl_decrypt(&xml, &password);
    assert!(out.status.success(), "{}", support::text(&out));
    assert_eq!(bootstrap(&desk)["P1359"], password.as_str());
}

#[test]
fn a_p1359_set_explicitly_wins() {
    let desk = Desk::init();
    desk.add_office_phone(MAC, SECRET, &["--set", "P1359=chosen-by-hand"]);
    desk.ok(&["build"]);
    let xml = desk.root.join(format!("build/cfg{MAC}.xml"));
    let out = openssl_decrypt(&xml, "chosen-by-hand");
    assert!(out.status.success(), "{}", support::text(&out));
    assert_eq!(bootstrap(&desk)["P1359"], "chosen-by-hand");
}

#[test]
fn encryption_off_is_a_setting_and_serves_plaintext() {
    let desk = Desk::init();
    let text = desk.edit_settings("mode = \"per-device\"", "mode = \"off\"");
    assert!(text.contains("[encryption]\n"), "{text}");
    add_phone(&desk);
    desk.ok(&["build"]);
    let xml =
        std::fs::read_to_string(desk.root.join(format!("build/cfg{MAC}.xml"))).expect("plain XML");
    assert!(xml.contains(&format!("<P34>{SECRET}</P34>")), "{xml}");
    let params = bootstrap(&desk);
    assert!(params.get("P1359").is_none(), "{params}");
}
