//! Scenarios for the catalogue and the Grandstream file round trips, driving the real
//! `provdesk` binary on a fresh desk: search ranking, coverage stats, template import into the
//! catalogue, profile import, device export, and validation in `device show` and `build`.

use std::collections::BTreeMap;

use serde_json::Value;

mod support;
use support::Desk;

fn first_p(results: &Value) -> &str {
    results[0]["p"].as_str().unwrap_or("(no result)")
}

#[test]
fn search_ranks_numbers_and_names_and_prints_entries() {
    let desk = Desk::init();
    let results = desk.json(&["catalog", "search", "P47", "--json"]);
    assert_eq!(first_p(&results), "P47", "{results:#}");
    let entry = &results[0];
    for field in ["p", "name", "page", "type", "description"] {
        assert!(entry[field].is_string(), "{field} in {entry:#}");
    }
    assert_eq!(entry["name"], "SIP Server");
    assert_eq!(entry["type"], "host");

    let results = desk.json(&["catalog", "search", "sip server", "--json"]);
    assert_eq!(first_p(&results), "P47", "{results:#}");
    // Account 1 first, then the other accounts' SIP servers.
    assert_eq!(results[1]["p"], "P402", "{results:#}");
    assert_eq!(
        first_p(&desk.json(&["catalog", "search", "47", "--json"])),
        "P47"
    );
    assert_eq!(
        first_p(&desk.json(&[
            "catalog",
            "search",
            "account.1.sip.server.1.address",
            "--json"
        ])),
        "P47"
    );

    let limited = desk.json(&["catalog", "search", "account", "--json", "--limit", "3"]);
    assert_eq!(limited.as_array().map(Vec::len), Some(3));
    assert_eq!(
        desk.json(&["catalog", "search", "zzzz no such thing", "--json"]),
        Value::Array(Vec::new())
    );
    let text = desk.ok(&["catalog", "search", "sip server"]);
    assert!(text.starts_with("P47 "), "{text}");
    assert!(text.contains("Account 1 / General Settings"), "{text}");
}

#[test]
fn stats_print_totals_by_page_and_family() {
    let desk = Desk::init();
    let stats = desk.json(&["catalog", "stats", "--json"]);
    let total = stats["total"].as_u64().expect("total");
    assert!(total >= 300, "{stats:#}");
    let pages = stats["pages"].as_object().expect("pages");
    assert_eq!(pages.values().filter_map(Value::as_u64).sum::<u64>(), total);
    assert!(pages["Account 1"].as_u64() >= Some(50), "{stats:#}");
    let families = stats["families"].as_object().expect("families");
    for family in ["all", "gxp", "grp"] {
        assert!(families[family].is_u64(), "{family} in {stats:#}");
    }
    let text = desk.ok(&["catalog", "stats"]);
    assert!(text.starts_with(&format!("{total} P-values\n")), "{text}");
}

/// A GXP text template with the odd cases: BOM, CRLF, a ruler heading, `#` inside a value,
/// blank values, a label list, a range, and a P-value the catalogue does not know.
const TEXT_TEMPLATE: &str = "\u{FEFF}######################\r\n## Account 1 ##\r\n\
    ######################\r\n\r\n# Account Active. 0 - No, 1 - Yes\r\n# Number: 0, 1\r\n\
    P271 = 1\r\n\r\n# SIP Server\r\n# String\r\nP47 =\r\n\r\n# Dial Plan\r\n\
    P290 = { x+ | *x+ | *#x+ } # kept\r\n\r\n# Use SBC. 0 - No, 1 - Yes\r\n# Number: 0, 1\r\n\
    P26090 = 0\r\n\r\n# SBC Port\r\n# Number: 1 - 65535\r\nP26091 = 5070\r\n\r\n\
    # Line Key 1 Mode\r\nP1363 = 0\r\n";

#[test]
fn catalog_import_learns_from_text_and_xml_templates_once() {
    let desk = Desk::init();
    let before = desk.json(&["catalog", "stats", "--json"])["total"]
        .as_u64()
        .expect("total");
    let template = desk.input("grp2614.txt", TEXT_TEMPLATE);

    let dry = desk.json(&[
        "catalog",
        "import",
        &template,
        "--model",
        "GRP2614",
        "--dry-run",
        "--json",
    ]);
    assert_eq!(dry["written"], false);
    assert!(!desk.root.join("catalog/00-imported.toml").exists());

    let report = desk.json(&[
        "catalog",
        "import",
        &template,
        "--model",
        "GRP2614",
        "--firmware",
        "1.0.5.9",
        "--json",
    ]);
    assert_eq!(report["written"], true, "{report:#}");
    assert_eq!(report["file"], "catalog/00-imported.toml");
    assert_eq!(report["family"], "grp");
    let new: Vec<(&str, &str, &str)> = report["new"]
        .as_array()
        .expect("new")
        .iter()
        .map(|n| {
            (
                n["p"].as_str().unwrap_or(""),
                n["name"].as_str().unwrap_or(""),
                n["type"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        new,
        [
            ("P26090", "Use SBC", "bool"),
            ("P26091", "SBC Port", "integer")
        ]
    );
    let learned: Vec<(&str, &str, &str)> = report["learned"]
        .as_array()
        .expect("learned")
        .iter()
        .map(|l| {
            (
                l["p"].as_str().unwrap_or(""),
                l["field"].as_str().unwrap_or(""),
                l["value"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        learned,
        [("P1363", "default", "0"), ("P1363", "family", "grp")]
    );
    let conflicts = report["conflicts"].as_array().expect("conflicts");
    assert_eq!(conflicts.len(), 1, "{report:#}");
    assert_eq!(conflicts[0]["p"], "P290");
    assert_eq!(conflicts[0]["field"], "default");
    assert_eq!(conflicts[0]["template"], "{ x+ | *x+ | *#x+ } # kept");
    assert_eq!(conflicts[0]["line"], 14);
    assert_eq!(report["unchanged"], 2);

    // Importing the same file again learns nothing and leaves the file alone.
    let file = desk.root.join("catalog/00-imported.toml");
    let written = std::fs::read_to_string(&file).expect("overlay");
    let again = desk.json(&[
        "catalog", "import", &template, "--model", "GRP2614", "--json",
    ]);
    assert_eq!(again["written"], false);
    assert_eq!(again["new"], Value::Array(Vec::new()));
    assert_eq!(again["learned"], Value::Array(Vec::new()));
    assert_eq!(std::fs::read_to_string(&file).expect("overlay"), written);

    // The catalogue now knows the new P-values, and search finds them.
    let stats = desk.json(&["catalog", "stats", "--json"]);
    assert_eq!(stats["total"].as_u64(), Some(before + 2));
    assert_eq!(stats["pages"]["Imported"], 2);
    let sbc = desk.json(&["catalog", "search", "sbc port", "--json"]);
    assert_eq!(first_p(&sbc), "P26091");
    assert_eq!(sbc[0]["min"], 1);
    assert_eq!(sbc[0]["max"], 65535);
    assert_eq!(sbc[0]["families"], serde_json::json!(["grp"]));

    // The XML form of a template from another family: comments, blank elements, a v2 alias.
    let xml = desk.input(
        "ht802.xml",
        "\u{FEFF}<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<gs_provision version=\"1\">\r\n\
         <config version=\"1\">\r\n<!-- Use SBC. 0 - No, 1 - Yes -->\r\n<!-- Number: 0, 1 -->\r\n\
         <P26090>0</P26090>\r\n<P47/>\r\n<!-- Outbound proxy -->\r\n\
         <item name=\"account.1.sip.transport\">0</item>\r\n</config>\r\n</gs_provision>\r\n",
    );
    let report = desk.json(&["catalog", "import", &xml, "--model", "HT802", "--json"]);
    assert_eq!(report["format"], "xml");
    assert_eq!(report["new"], Value::Array(Vec::new()), "{report:#}");
    assert_eq!(report["learned"][0]["p"], "P26090", "{report:#}");
    assert_eq!(report["learned"][0]["field"], "family");
    assert_eq!(report["learned"][0]["value"], "ht");
    let sbc = desk.json(&["catalog", "search", "use sbc", "--json"]);
    assert_eq!(sbc[0]["families"], serde_json::json!(["grp", "ht"]));
}

#[test]
fn catalog_import_refuses_bad_files_unless_told() {
    let desk = Desk::init();
    let template = desk.input("bad.txt", "P26090 = 0\nthis is not a line\n");
    let err = desk.fails(&["catalog", "import", &template, "--model", "GXP2170"]);
    assert!(err.contains("bad.txt:2:1: error:"), "{err}");
    assert!(err.contains("nothing learned"), "{err}");
    assert!(!desk.root.join("catalog/00-imported.toml").exists());
    let text = desk.ok(&[
        "catalog",
        "import",
        &template,
        "--model",
        "GXP2170",
        "--skip-bad",
    ]);
    assert!(text.contains("1 new"), "{text}");
    let err = desk.fails(&["catalog", "import", &template, "--model", "2170"]);
    assert!(err.contains("model \"2170\""), "{err}");
    let broken = desk.input("broken.xml", "<gs_provision>\n<config>\n<P2>a</P3>\n");
    let err = desk.fails(&["catalog", "import", &broken, "--model", "GXP2170"]);
    assert!(err.contains("broken.xml:3: error:"), "{err}");
}

/// The values of a device's effective config, without their sources.
fn values(desk: &Desk, mac: &str) -> BTreeMap<String, String> {
    let shown = desk.json(&["device", "show", mac, "--json", "--show-secrets"]);
    shown["params"]
        .as_object()
        .expect("params")
        .iter()
        .map(|(k, v)| (k.clone(), v["value"].as_str().unwrap_or("").to_string()))
        .collect()
}

/// import FILE as a profile → device → export in both formats → import each again → the
/// devices built from the re-imported profiles have the same values.
fn round_trip(desk: &Desk, name: &str, content: &str) {
    let file = desk.input(name, content);
    let profile = name.split('.').next().expect("stem");
    desk.ok(&["profile", "import", &file]);
    let mac = "000b82000010";
    desk.ok(&[
        "device",
        "add",
        mac,
        "--model",
        "gxp2170",
        "--profile",
        profile,
        "--replace",
    ]);
    let expected = values(desk, mac);
    for format in ["text", "xml"] {
        let exported = desk.ok(&["device", "export", mac, "--format", format]);
        let again = desk.input(&format!("{profile}-export.{format}"), &exported);
        let copy = format!("{profile}-{format}");
        desk.ok(&["profile", "import", &again, "--name", &copy]);
        desk.ok(&[
            "device",
            "add",
            "000b82000011",
            "--model",
            "gxp2170",
            "--profile",
            &copy,
            "--replace",
        ]);
        assert_eq!(
            values(desk, "000b82000011"),
            expected,
            "{name} via {format}"
        );
    }
}

#[test]
fn profile_import_and_device_export_round_trip_every_form() {
    let desk = Desk::init();
    round_trip(&desk, "text.txt", TEXT_TEMPLATE);
    round_trip(
        &desk,
        "v1.xml",
        "<?xml version=\"1.0\"?>\r\n<gs_provision version=\"1\">\r\n<config version=\"1\">\r\n\
         <!-- Display name -->\r\n<P3>R&amp;D &lt;lab&gt;</P3>\r\n<P48/>\r\n\
         <P47>pbx.example.com:5060</P47>\r\n</config>\r\n</gs_provision>\r\n",
    );
    round_trip(
        &desk,
        "v2.xml",
        "<gs_provision version=\"1\">\n<config version=\"2\">\n\
         <item name=\"account.1.sip.server.1.address\">pbx.example.com</item>\n\
         <item name=\"account.1.enable\">Yes</item>\n\
         <item name=\"account.1.sip.transport\">TCP</item>\n</config>\n</gs_provision>\n",
    );
    let text = std::fs::read_to_string(desk.root.join("profiles/v2.toml")).expect("profile");
    assert!(
        text.contains("P271 = \"1\"  # XML v2 value \"Yes\"\n"),
        "{text}"
    );
}

#[test]
fn profile_import_keeps_comments_warns_about_unknown_items_and_never_overwrites() {
    let desk = Desk::init();
    let file = desk.input(
        "site.xml",
        "<gs_provision><config version=\"2\">\n<!-- Our PBX -->\n\
         <item name=\"account.1.sip.server.1.address\">pbx</item>\n\
         <item name=\"vendor.unknown.item\">7</item>\n</config></gs_provision>\n",
    );
    let (stdout, stderr) = desk.ok_with_stderr(&["profile", "import", &file]);
    assert!(stdout.contains("profiles/site.toml"), "{stdout}");
    assert!(
        stderr.contains("site.xml:4: warning: XML v2 item \"vendor.unknown.item\""),
        "{stderr}"
    );
    let text = std::fs::read_to_string(desk.root.join("profiles/site.toml")).expect("profile");
    assert!(text.contains("# Our PBX\nP47 = \"pbx\"\n"), "{text}");
    assert!(
        text.contains("# unknown XML v2 item (line 4): vendor.unknown.item = \"7\""),
        "{text}"
    );

    let err = desk.fails(&["profile", "import", &file]);
    assert!(err.contains("profiles/site.toml already exists"), "{err}");
    assert!(err.contains("--force"), "{err}");
    let office = desk.input("office.txt", "P47 = other.example.com\n");
    desk.fails(&["profile", "import", &office]);
    desk.ok(&["profile", "import", &office, "--force"]);
    let replaced =
        std::fs::read_to_string(desk.root.join("profiles/office.toml")).expect("profile");
    assert!(
        replaced.contains("P47 = \"other.example.com\""),
        "{replaced}"
    );
    desk.ok(&["profile", "import", &office, "--name", "branch"]);
    assert!(desk.root.join("profiles/branch.toml").is_file());
    let err = desk.fails(&["profile", "import", &office, "--name", "../escape"]);
    assert!(err.contains("profile name"), "{err}");

    let bad = desk.input("bad.txt", "P2 = a\nP3 oops\n");
    let err = desk.fails(&["profile", "import", &bad]);
    assert!(err.contains("bad.txt:2:1: error:"), "{err}");
    assert!(!desk.root.join("profiles/bad.toml").exists());
    desk.ok(&["profile", "import", &bad, "--skip-bad"]);
    let kept = std::fs::read_to_string(desk.root.join("profiles/bad.toml")).expect("profile");
    assert!(kept.contains("# not imported (line 2): P3 oops"), "{kept}");
}

#[test]
fn device_export_writes_files_and_refuses_broken_configs() {
    let desk = Desk::init();
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
        "sip_secret=s3cret",
    ]);
    let text = desk.ok(&["device", "export", "000b82000001", "--format", "text"]);
    assert!(
        text.contains("# SIP Server (Account 1)\nP47 = pbx.example.com\n"),
        "{text}"
    );
    assert!(text.contains("P34 = s3cret\n"), "{text}");
    let out = desk.scratch().join("cfg.xml");
    let out_text = out.to_string_lossy().into_owned();
    desk.ok(&[
        "device",
        "export",
        "000b82000001",
        "--format",
        "xml",
        "--output",
        &out_text,
    ]);
    let xml = std::fs::read_to_string(&out).expect("exported file");
    assert!(xml.contains("<mac>000b82000001</mac>"), "{xml}");
    assert!(xml.contains("<P35>201</P35>"), "{xml}");

    // A device whose profile needs a variable it lacks has no complete config to export
    // (`device add` refuses such a device unless told it is meant to be incomplete).
    desk.ok(&[
        "device",
        "add",
        "000b82000002",
        "--model",
        "gxp2170",
        "--profile",
        "office",
        "--incomplete",
    ]);
    let err = desk.fails(&["device", "export", "000b82000002", "--format", "xml"]);
    assert!(err.contains("undefined variable `ext`"), "{err}");
    assert!(err.contains("nothing exported"), "{err}");
    desk.fails(&["device", "export", "000b82000099", "--format", "xml"]);
}

#[test]
fn validation_shows_in_device_show_and_blocks_the_build_only_on_errors() {
    let desk = Desk::init();
    desk.ok(&[
        "device",
        "add",
        "000b82000001",
        "--model",
        "ht802",
        "--profile",
        "office",
        "--var",
        "ext=201",
        "--var",
        "sip_secret=x",
        "--set",
        "P402=pbx.example.com",
    ]);
    // A warning: shown, and the build still publishes.
    let shown = desk.json(&["device", "show", "000b82000001", "--json"]);
    let diagnostics = shown["diagnostics"].as_array().expect("diagnostics");
    assert_eq!(diagnostics.len(), 1, "{shown:#}");
    assert_eq!(diagnostics[0]["kind"], "catalog-unknown-for-model");
    assert_eq!(diagnostics[0]["severity"], "warning");
    assert_eq!(diagnostics[0]["field"], "P402");
    assert_eq!(diagnostics[0]["device"], "000b82000001");
    assert_eq!(desk.json(&["build", "--json"])["published"], true);

    // An error set in a profile: named with its file and line, and nothing is published.
    let office = desk.root.join("profiles/office.toml");
    let mut text = std::fs::read_to_string(&office).expect("office profile");
    text.push_str("P32 = 100000\n");
    std::fs::write(&office, text).expect("edit profile");
    let line = std::fs::read_to_string(&office)
        .expect("office profile")
        .lines()
        .count();
    let (_, stderr) = desk.ok_with_stderr(&["device", "show", "000b82000001"]);
    assert!(
        stderr.contains(&format!(
            "profiles/office.toml:{line}: error: P32 (Register Expiration): 100000 is out of \
             range; allowed is 1 to 64800; set by profile office (device 000b82000001)"
        )),
        "{stderr}"
    );
    let out = desk.run(&["build", "--json"]);
    assert!(!out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["published"], false);
    let error = report["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .find(|d| d["severity"] == "error")
        .expect("an error");
    assert_eq!(error["kind"], "catalog-out-of-range");
    assert_eq!(error["file"], "profiles/office.toml");
    assert_eq!(error["line"], line);
    assert_eq!(error["field"], "P32");
    assert_eq!(error["device"], "000b82000001");
}
