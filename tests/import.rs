//! Imports of broken files, driven through the real binary, as issue 13 saw them:
//! - `provdesk device import` of a CSV whose quote never closes used to swallow the next rows
//!   into one name and lose those devices with exit 0; SQLite's own `integrity_check` and a
//!   count look at the inventory after;
//! - `provdesk profile import --skip-bad` of an XML v1 file with one unknown element used to
//!   write an empty profile and say it succeeded.

use serde_json::Value;

mod support;
use support::Desk;

fn macs(desk: &Desk) -> Vec<String> {
    desk.json(&["device", "list", "--json"])
        .as_array()
        .expect("array")
        .iter()
        .map(|d| d["mac"].as_str().expect("mac").to_string())
        .collect()
}

/// Line 3 opens a quote it never closes; lines 4 and 5 are good rows it used to swallow.
const UNCLOSED: &str = "mac,model,profile,name,ext,sip_secret\n\
                        000b82000001,GXP2170,office,Reception,201,a\n\
                        000b82000002,GXP2170,office,\"Smith,202,b\n\
                        000b82000003,GXP2170,office,Jones,203,c\n\
                        000b82000004,GRP2614,office,Sales,204,d\n";

#[test]
fn an_unclosed_quote_fails_the_import_at_its_line_and_imports_nothing() {
    let desk = Desk::init();
    let csv = desk.input("order.csv", UNCLOSED);
    let err = desk.fails(&["device", "import", &csv]);
    assert!(err.contains("order.csv:3:"), "{err}");
    assert!(
        err.contains("name: the quote that opens this value is never closed"),
        "{err}"
    );
    assert!(err.contains("nothing imported"), "{err}");
    assert_eq!(macs(&desk), Vec::<String>::new());

    let err = desk.fails(&["device", "import", &csv, "--dry-run"]);
    assert!(err.contains("order.csv:3:"), "{err}");
    assert_eq!(desk.sqlite("PRAGMA integrity_check"), "ok");
    assert_eq!(desk.sqlite("SELECT count(*) FROM devices"), "0");
}

#[test]
fn skip_bad_reports_the_broken_record_and_imports_every_other_row() {
    let desk = Desk::init();
    let csv = desk.input("order.csv", UNCLOSED);
    let (out, err) = desk.ok_with_stderr(&["device", "import", &csv, "--skip-bad"]);
    assert!(err.contains("order.csv:3:"), "{err}");
    assert!(err.contains("never closed"), "{err}");
    assert!(out.contains("imported 3 device(s)"), "{out}");
    assert!(out.contains("skipped 1 bad row(s)"), "{out}");
    assert_eq!(
        macs(&desk),
        ["000b82000001", "000b82000003", "000b82000004"]
    );
    // The row after the broken one keeps its own name, not a piece of the broken one.
    let jones = desk.json(&["device", "show", "000b82000003", "--json"]);
    assert_eq!(jones["name"], "Jones", "{jones:#}");

    assert_eq!(desk.sqlite("PRAGMA integrity_check"), "ok");
    assert_eq!(desk.sqlite("SELECT count(*) FROM devices"), "3");
    let names = desk.sqlite("SELECT group_concat(name, '|') FROM devices ORDER BY mac");
    assert!(!names.contains('\n') && !names.contains("Smith"), "{names}");
}

#[test]
fn a_value_with_a_line_break_and_a_short_row_are_errors_at_their_lines() {
    let desk = Desk::init();
    let csv = desk.input(
        "order.csv",
        "mac,model,profile,name\r\n\
         000b82000001,GXP2170,office,\"Front\r\ndesk\"\r\n\
         000b82000002,GXP2170\r\n\
         000b82000003,GXP2170,office,Hall\r\n",
    );
    let err = desk.fails(&["device", "import", &csv]);
    assert!(
        err.contains("order.csv:2:4: error: name: the quoted value runs on to line 3"),
        "{err}"
    );
    assert!(
        err.contains("order.csv:4: error: this row has 2 fields but the header has 4"),
        "{err}"
    );
    assert_eq!(desk.sqlite("SELECT count(*) FROM devices"), "0");

    desk.ok(&["device", "import", &csv, "--skip-bad"]);
    assert_eq!(macs(&desk), ["000b82000003"]);
    assert_eq!(desk.sqlite("PRAGMA integrity_check"), "ok");
    let list = desk.json(&["device", "list", "--json"]);
    assert_eq!(list[0]["name"], Value::from("Hall"));
}

/// Six good values and one element the reader does not know, on line 6.
const XML_V1: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
                      <gs_provision version=\"1\">\n\
                      <config version=\"1\">\n\
                      <P271>1</P271>\n\
                      <P47>pbx.example.com</P47>\n\
                      <Vendor_Thing>on</Vendor_Thing>\n\
                      <P35>201</P35>\n\
                      <P36>201</P36>\n\
                      <P3>Front desk</P3>\n\
                      <P30>ntp.example.com</P30>\n\
                      </config>\n\
                      </gs_provision>\n";

#[test]
fn profile_import_skip_bad_keeps_every_good_value_and_the_bad_element_as_a_comment() {
    let desk = Desk::init();
    let file = desk.input("vendor.xml", XML_V1);
    let profile = desk.root.join("profiles/vendor.toml");

    let err = desk.fails(&["profile", "import", &file]);
    assert!(
        err.contains("vendor.xml:6: error: line 6: unexpected element <Vendor_Thing>"),
        "{err}"
    );
    assert!(!profile.exists(), "nothing is written without --skip-bad");

    let (out, err) = desk.ok_with_stderr(&["profile", "import", &file, "--skip-bad"]);
    assert!(err.contains("vendor.xml:6:"), "{err}");
    assert!(
        out.contains("(6 value(s), 1 bad part(s) kept as comments)"),
        "{out}"
    );
    let toml = std::fs::read_to_string(&profile).expect("profiles/vendor.toml");
    assert!(
        toml.contains("# not imported (line 6): <Vendor_Thing>on</Vendor_Thing>"),
        "{toml}"
    );

    // The desk reads the profile as the build will: all six values, from that file.
    desk.add_device("000b82000001", "gxp2170", "vendor", &[]);
    let shown = desk.json(&["device", "show", "000b82000001", "--json"]);
    for (p, value) in [
        ("P271", "1"),
        ("P47", "pbx.example.com"),
        ("P35", "201"),
        ("P36", "201"),
        ("P3", "Front desk"),
        ("P30", "ntp.example.com"),
    ] {
        assert_eq!(shown["params"][p]["value"], value, "{p}: {shown:#}");
        assert_eq!(shown["params"][p]["source"], "profiles/vendor.toml", "{p}");
    }
    assert_eq!(shown["diagnostics"], Value::Array(vec![]), "{shown:#}");
}

#[test]
fn profile_import_skip_bad_refuses_a_file_it_cannot_read_at_all() {
    let desk = Desk::init();
    let file = desk.input("broken.xml", "<gs_provision>\n<config>\n<P2>a</P2>\n<P3>b");
    let err = desk.fails(&["profile", "import", &file, "--skip-bad"]);
    assert!(
        err.contains("no value could be read: no profile written"),
        "{err}"
    );
    assert!(!desk.root.join("profiles/broken.toml").exists());
}
