//! Scenarios that drive the real `provdesk` binary on a fresh desk, with real peers
//! (`openssl`) where a format must interoperate.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

mod support;
use support::Desk;

fn openssl(args: &[&str], input: &Path, output: &Path) {
    let status = Command::new("openssl")
        .args(args)
        .arg("-in")
        .arg(input)
        .arg("-out")
        .arg(output)
        .status()
        .expect("openssl must be installed (scripts/test installs it)");
    assert!(status.success(), "openssl {args:?} failed");
}

#[test]
fn first_use_creates_the_sample_desk_and_builds_it() {
    let desk = Desk::new();
    let report = desk.json(&["build", "--json"]);
    assert_eq!(report["published"], true, "{report:#}");
    assert!(desk.root.join("profiles/global.toml").is_file());
    assert!(desk.root.join("build/cfg.xml").is_file());
    assert!(desk.root.join("build/cfggxp2170.xml").is_file());
    let cfg = std::fs::read_to_string(desk.root.join("build/cfg.xml")).expect("cfg.xml");
    assert!(cfg.contains("<P30>pool.ntp.org</P30>"), "{cfg}");
    // Nothing changed, nothing is rewritten.
    let again = desk.json(&["build", "--json"]);
    assert_eq!(
        again["written"].as_array().map(Vec::len),
        Some(0),
        "{again:#}"
    );
}

#[test]
fn devices_are_added_shown_with_sources_listed_and_removed() {
    let desk = Desk::new();
    desk.ok(&["init"]);
    desk.ok(&[
        "device",
        "add",
        "00:0B:82:12:34:56",
        "--model",
        "GXP2170",
        "--profile",
        "office",
        "--name",
        "Front desk",
        "--var",
        "ext=201",
        "--var",
        "sip_secret=s3cret",
        "--set",
        "P3=Reception",
    ]);
    let shown = desk.json(&["device", "show", "000b82123456", "--json"]);
    assert_eq!(shown["mac"], "000b82123456");
    assert_eq!(shown["model"], "gxp2170");
    assert_eq!(shown["profile"], "office");
    assert_eq!(shown["vars"]["ext"], "201");
    assert_eq!(shown["params"]["P35"]["value"], "201");
    assert_eq!(shown["params"]["P35"]["source"], "profiles/office.toml");
    assert_eq!(shown["params"]["P30"]["source"], "profiles/global.toml");
    assert_eq!(
        shown["params"]["P1650"]["source"],
        "profiles/models/gxp2170.toml"
    );
    assert_eq!(shown["params"]["P3"]["value"], "Reception");
    assert_eq!(shown["params"]["P3"]["source"], "device override");
    assert_eq!(shown["diagnostics"].as_array().map(Vec::len), Some(0));

    // People's output masks passwords unless asked.
    let text = desk.ok(&["device", "show", "000b82123456"]);
    assert!(!text.contains("s3cret"), "{text}");
    assert!(
        desk.ok(&["device", "show", "000b82123456", "--show-secrets"])
            .contains("s3cret")
    );

    let list = desk.json(&["device", "list", "--json"]);
    assert_eq!(list[0]["mac"], "000b82123456");
    assert_eq!(list[0]["state"], "inventory");
    assert_eq!(list[0]["name"], "Front desk");

    assert!(
        desk.fails(&["device", "add", "000b82123456", "--model", "gxp2170"])
            .contains("--replace")
    );
    assert!(
        desk.fails(&["device", "add", "000b8212345", "--model", "gxp2170"])
            .contains("\"000b8212345\"")
    );
    assert!(
        desk.fails(&[
            "device",
            "add",
            "000b82123457",
            "--model",
            "gxp2170",
            "--profile",
            "nope"
        ])
        .contains("nope")
    );
    assert!(
        desk.fails(&[
            "device",
            "add",
            "000b82123457",
            "--model",
            "gxp2170",
            "--set",
            "X3=1"
        ])
        .contains("\"X3\"")
    );

    desk.ok(&["device", "remove", "00-0b-82-12-34-56"]);
    assert_eq!(
        desk.json(&["device", "list", "--json"]),
        Value::Array(vec![])
    );
    assert!(
        desk.fails(&["device", "remove", "000b82123456"])
            .contains("not in the inventory")
    );
}

#[test]
fn csv_import_reports_every_bad_row_and_imports_nothing_unless_told() {
    let desk = Desk::new();
    desk.ok(&["init"]);
    let csv = desk.write(
        "order.csv",
        "mac,model,profile,name,ext,sip_secret\n\
         000b82000001,GXP2170,office,Reception,201,a\n\
         not-a-mac,GXP2170,office,Bad,202,b\n\
         000b82000003,GXP2170,nosuch,Unknown profile,203,c\n\
         000b82000004,GRP2614,office,Sales,204,d\n",
    );
    let csv = csv.to_str().expect("path");
    let err = desk.fails(&["device", "import", csv]);
    assert!(err.contains("order.csv:3"), "{err}");
    assert!(err.contains("order.csv:4"), "{err}");
    assert!(err.contains("nothing imported"), "{err}");
    assert_eq!(
        desk.json(&["device", "list", "--json"]),
        Value::Array(vec![])
    );

    let dry = desk.ok(&["device", "import", csv, "--skip-bad", "--dry-run"]);
    assert!(dry.contains("would import 2"), "{dry}");
    assert_eq!(
        desk.json(&["device", "list", "--json"]),
        Value::Array(vec![])
    );

    desk.ok(&["device", "import", csv, "--skip-bad"]);
    let macs: Vec<String> = desk
        .json(&["device", "list", "--json"])
        .as_array()
        .expect("array")
        .iter()
        .map(|d| d["mac"].as_str().expect("mac").to_string())
        .collect();
    assert_eq!(macs, ["000b82000001", "000b82000004"]);

    let report = desk.json(&["build", "--json"]);
    assert_eq!(report["published"], true, "{report:#}");
    assert!(desk.root.join("build/cfg000b82000004.xml").is_file());
    assert!(desk.root.join("build/cfggrp2614.xml").is_file());
}

#[test]
fn a_broken_profile_keeps_the_last_good_build() {
    let desk = Desk::new();
    desk.ok(&["init"]);
    desk.ok(&[
        "device",
        "add",
        "000b82000001",
        "--model",
        "gxp2170",
        "--profile",
        "office",
        "--var",
        "ext=201",
        "--var",
        "sip_secret=x",
    ]);
    desk.ok(&["build"]);
    let good = std::fs::read(desk.root.join("build/cfg000b82000001.xml")).expect("artifact");

    desk.write(
        "profiles/office.toml",
        "extends = \"global\"\n[params]\nP47 = \"new.example\nP35 = \"{{ nope }}\"\n",
    );
    let out = desk.run(&["build", "--json"]);
    assert!(!out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["published"], false);
    let diagnostic = &report["diagnostics"][0];
    assert_eq!(diagnostic["file"], "profiles/office.toml");
    assert_eq!(diagnostic["line"], 3);
    assert_eq!(
        std::fs::read(desk.root.join("build/cfg000b82000001.xml")).expect("artifact"),
        good
    );

    desk.write(
        "profiles/office.toml",
        "extends = \"global\"\n[params]\nP47 = \"new.example\"\nP35 = \"{{ nope }}\"\n",
    );
    // A variable the device lacks is its own problem, not the profile's: the build publishes
    // (exit 0) and holds back only that device, which keeps its last good file.
    let (_, err) = desk.ok_with_stderr(&["build"]);
    assert!(
        err.contains(
            "profiles/office.toml:4:8: error: P35: undefined variable `nope` (device 000b82000001)"
        ),
        "{err}"
    );
    assert!(err.contains("000b82000001 needs attention"), "{err}");
    assert_eq!(
        std::fs::read(desk.root.join("build/cfg000b82000001.xml")).expect("artifact"),
        good
    );
}

#[test]
fn encryption_interoperates_with_openssl_both_ways() {
    let desk = Desk::new();
    let dir = desk.scratch();
    let plain = dir.join("plain.xml");
    std::fs::write(&plain, "<gs_provision version=\"1\"><config version=\"1\"><P2>pässword</P2></config></gs_provision>\n").expect("write");

    let ours = dir.join("ours.enc");
    desk.ok(&[
        "crypt",
        "encrypt",
        "--password",
        "pw 123",
        plain.to_str().expect("p"),
        ours.to_str().expect("p"),
    ]);
    let back = dir.join("back.xml");
    openssl(
        &["enc", "-d", "-aes-256-cbc", "-md", "md5", "-k", "pw 123"],
        &ours,
        &back,
    );
    assert_eq!(
        std::fs::read(&back).expect("read"),
        std::fs::read(&plain).expect("read")
    );

    let theirs = dir.join("theirs.enc");
    openssl(
        &["enc", "-e", "-aes-256-cbc", "-md", "md5", "-k", "pw 123"],
        &plain,
        &theirs,
    );
    let decrypted = dir.join("decrypted.xml");
    desk.ok(&[
        "crypt",
        "decrypt",
        "--password",
        "pw 123",
        theirs.to_str().expect("p"),
        decrypted.to_str().expect("p"),
    ]);
    assert_eq!(
        std::fs::read(&decrypted).expect("read"),
        std::fs::read(&plain).expect("read")
    );

    let err = desk.fails(&[
        "crypt",
        "decrypt",
        "--password",
        "wrong",
        theirs.to_str().expect("p"),
        "-",
    ]);
    assert!(err.to_lowercase().contains("password"), "{err}");
}

#[test]
fn encrypted_device_gets_bootstrap_binary_and_encrypted_xml() {
    let desk = Desk::new();
    desk.ok(&["init"]);
    desk.write(
        "profiles/secure.toml",
        "extends = \"office\"\n[params]\nP1359 = \"{{ xml_password }}\"\nP237 = \"prov.example.com/gs\"\nP234 = \"gs_\"\n",
    );
    desk.ok(&[
        "device",
        "add",
        "000b82000009",
        "--model",
        "gxp2170",
        "--profile",
        "secure",
        "--var",
        "ext=209",
        "--var",
        "sip_secret=topsecret",
        "--var",
        "xml_password=xmlpw",
    ]);
    desk.ok(&["build"]);
    let build = desk.root.join("build");

    let decoded = desk.json(&[
        "binary",
        "decode",
        build.join("cfg000b82000009").to_str().expect("p"),
        "--json",
    ]);
    assert_eq!(decoded["mac"], "000b82000009");
    assert_eq!(decoded["params"]["P1359"], "xmlpw");
    assert_eq!(decoded["params"]["P237"], "prov.example.com/gs");
    assert!(
        decoded["params"].get("P34").is_none(),
        "SIP secret leaked into the binary: {decoded:#}"
    );
    assert_eq!(
        std::fs::read(build.join("cfg000b82000009")).ok(),
        std::fs::read(build.join("cfg000b82000009.bin")).ok()
    );

    let xml = build.join("cfg000b82000009.xml");
    assert!(std::fs::read(&xml).expect("xml").starts_with(b"Salted__"));
    let plain = desk.scratch().join("plain.xml");
    openssl(
        &["enc", "-d", "-aes-256-cbc", "-md", "md5", "-k", "xmlpw"],
        &xml,
        &plain,
    );
    let text = std::fs::read_to_string(&plain).expect("plain");
    assert!(
        text.contains("<mac>000b82000009</mac>") && text.contains("<P34>topsecret</P34>"),
        "{text}"
    );

    // The prefixed names (P234) answer too.
    assert!(build.join("gs_cfg000b82000009.xml").is_file());
    assert!(build.join("gs_cfg000b82000009.bin").is_file());
    assert!(build.join("gs_cfg.xml").is_file());
}

#[test]
fn binary_encode_matches_the_worked_example_and_decodes_back() {
    let desk = Desk::new();
    let dir = desk.scratch();
    let text = dir.join("in.txt");
    std::fs::write(
        &text,
        "# worked example\nP2 = admin\nP271=0\nP270 = Account name  \n",
    )
    .expect("write");
    let out = dir.join("cfg000b82123456");
    desk.ok(&[
        "binary",
        "encode",
        "--mac",
        "00:0b:82:12:34:56",
        text.to_str().expect("p"),
        out.to_str().expect("p"),
    ]);
    let mut expected = vec![
        0x00, 0x00, 0x00, 0x20, 0x43, 0x3b, 0x00, 0x0b, 0x82, 0x12, 0x34, 0x56, 0x0d, 0x0a, 0x0d,
        0x0a,
    ];
    expected.extend_from_slice(b"P2=admin&P271=0&P270=Account%20name&gnkey=0b82\0\0");
    assert_eq!(std::fs::read(&out).expect("read"), expected);

    let decoded = desk.json(&["binary", "decode", out.to_str().expect("p"), "--json"]);
    assert_eq!(
        decoded,
        serde_json::json!({"mac": "000b82123456", "params": {"P2": "admin", "P271": "0", "P270": "Account name"}})
    );
    let corrupt = dir.join("corrupt");
    let mut bytes = expected.clone();
    bytes[20] ^= 1;
    std::fs::write(&corrupt, bytes).expect("write");
    assert!(
        desk.fails(&["binary", "decode", corrupt.to_str().expect("p")])
            .contains("checksum")
    );
}
