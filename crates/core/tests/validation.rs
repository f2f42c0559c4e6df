//! Catalogue validation through a real build: every rule, on a desk on disk with an inventory,
//! reported with device, P-value, file and line, and blocking publication only when it is an
//! error in a shared profile (an error in one device's own values holds back that device).

use std::fs;

use provdesk_core::build::{BuildOptions, BuildReport, Builder};
use provdesk_core::desk::Desk;
use provdesk_core::inventory::Device;
use provdesk_core::{Diagnostic, Severity};

struct Fixture {
    _dir: tempfile::TempDir,
    desk: Desk,
}

/// A sample desk whose `office` profile says `params` (TOML lines under `[params]`), with one
/// device of `model` in it.
fn fixture(model: &str, params: &str) -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let desk = Desk::init(&dir.path().join("desk")).expect("desk");
    fs::write(
        desk.profiles_dir().join("office.toml"),
        format!("extends = \"global\"\n\n[params]\n{params}"),
    )
    .expect("profile");
    let mut device = Device::new("000b82000001".parse().expect("MAC"), model);
    device.profile = Some("office".to_string());
    desk.inventory()
        .expect("inventory")
        .upsert_device(&device)
        .expect("device");
    Fixture { _dir: dir, desk }
}

fn build(f: &Fixture) -> BuildReport {
    let inventory = f.desk.inventory().expect("inventory");
    Builder::new(f.desk.clone())
        .build(&inventory, &BuildOptions::default())
        .expect("build runs")
}

/// Builds `params` on a `model` device and checks the one catalogue diagnostic it gives: its
/// kind, severity, field, line in `profiles/office.toml`, device, and a message fragment.
fn check(model: &str, params: &str, kind: &str, severity: Severity, fragment: &str) {
    let f = fixture(model, params);
    let report = build(&f);
    let found: Vec<&Diagnostic> = report
        .diagnostics
        .iter()
        .filter(|d| d.kind.starts_with("catalog-"))
        .collect();
    assert_eq!(found.len(), 1, "{params}: {:#?}", report.diagnostics);
    let d = found[0];
    assert_eq!(d.kind, kind, "{d}");
    assert_eq!(d.severity, severity, "{d}");
    assert_eq!(
        d.file.as_deref(),
        Some(std::path::Path::new("profiles/office.toml"))
    );
    assert_eq!(d.line, Some(4), "{d}");
    assert_eq!(
        d.device.map(|m| m.to_string()).as_deref(),
        Some("000b82000001")
    );
    let p = params.split_whitespace().next().expect("a P-value");
    assert_eq!(d.field.as_deref(), Some(p));
    assert!(d.message.contains(fragment), "{d}");
    assert!(d.message.ends_with("; set by profile office"), "{d}");
    // Errors publish nothing; warnings do not stop the build.
    assert_eq!(report.published, severity == Severity::Warning, "{d}");
}

#[test]
fn unknown_p_value_is_a_warning() {
    check(
        "gxp2170",
        "P29999 = \"1\"\n",
        "catalog-unknown-for-model",
        Severity::Warning,
        "not in the catalogue at all",
    );
}

#[test]
fn p_value_of_another_family_is_a_warning() {
    check(
        "ht802",
        "P402 = \"pbx.example.com\"\n",
        "catalog-unknown-for-model",
        Severity::Warning,
        "listed only for gxp, grp, gxv models, not ht802",
    );
}

#[test]
fn wrong_type_is_an_error() {
    check(
        "gxp2170",
        "P271 = \"yes\"\n",
        "catalog-wrong-type",
        Severity::Error,
        "expected 0 (no) or 1 (yes)",
    );
}

#[test]
fn out_of_range_is_an_error() {
    check(
        "gxp2170",
        "P32 = 100000\n",
        "catalog-out-of-range",
        Severity::Error,
        "allowed is 1 to 64800",
    );
}

#[test]
fn not_a_choice_is_an_error() {
    check(
        "gxp2170",
        "P130 = \"TCP\"\n",
        "catalog-not-a-choice",
        Severity::Error,
        "for \"TCP\" write 1",
    );
}

#[test]
fn too_long_is_an_error() {
    check(
        "gxp2170",
        &format!("P207 = \"{}b\"\n", "a.".repeat(32)),
        "catalog-too-long",
        Severity::Error,
        "at most 64",
    );
}

#[test]
fn password_shaped_text_is_a_warning() {
    check(
        "gxp2170",
        "P270 = \"Tr0ub4dor&3xyz\"\n",
        "catalog-secret-shape",
        Severity::Warning,
        "looks like a password",
    );
}

#[test]
fn values_are_checked_after_substitution_and_overrides_are_named() {
    let f = fixture("gxp2170", "P32 = \"{{ expiry }}\"\n");
    let inventory = f.desk.inventory().expect("inventory");
    let mut device = inventory
        .get_device("000b82000001".parse().expect("MAC"))
        .expect("read")
        .expect("device");
    device.vars.insert("expiry".into(), "0".into());
    device
        .overrides
        .insert("P130".parse().expect("P130"), "9".into());
    inventory.upsert_device(&device).expect("update");
    let report = build(&f);
    // Both errors are the device's own (a substituted value, an override): the device is
    // held back, the rest of the desk publishes.
    assert!(report.published);
    assert_eq!(report.errors(), 0, "{:#?}", report.diagnostics);
    assert_eq!(report.held.len(), 1);
    let shown: Vec<String> = report.held[0]
        .diagnostics
        .iter()
        .map(|d| format!("{} {}", d.kind, d))
        .collect();
    assert_eq!(shown.len(), 2, "{shown:#?}");
    assert!(
        shown[0].starts_with("catalog-out-of-range profiles/office.toml:4: error: P32"),
        "{shown:#?}"
    );
    assert!(
        shown[1].starts_with("catalog-not-a-choice error: P130")
            && shown[1].ends_with("set by the device's own override (device 000b82000001)"),
        "{shown:#?}"
    );
}

#[test]
fn the_desk_overlay_is_used_and_its_problems_do_not_block() {
    let f = fixture("gxp2170", "P32 = 300\n");
    let overlay = f.desk.root().join("catalog");
    fs::create_dir_all(&overlay).expect("catalog dir");
    fs::write(
        overlay.join("broken.toml"),
        "[[param]]\np = \"P9\"\ntype = \"nonsense\"\n",
    )
    .expect("overlay");
    // A bad catalogue entry means less checking, not a stopped build.
    let report = build(&f);
    let shown: Vec<String> = report.diagnostics.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        shown,
        [
            "catalog/broken.toml:1: warning: unknown type \"nonsense\"; use one of bool, \
          integer, choice, text, secret, host, url, timezone"
        ]
    );
    assert!(report.published);
    // The site's own limit applies to the next build.
    fs::write(
        overlay.join("site.toml"),
        "[[param]]\np = \"P32\"\nmax = 120\n",
    )
    .expect("overlay");
    let report = build(&f);
    assert_eq!(report.diagnostics.len(), 2, "{:#?}", report.diagnostics);
    assert!(
        report.diagnostics[1]
            .message
            .contains("allowed is 1 to 120"),
        "{:#?}",
        report.diagnostics
    );
    assert!(!report.published);
}

#[test]
fn the_sample_desk_builds_without_catalogue_diagnostics() {
    let dir = tempfile::tempdir().expect("temp dir");
    let desk = Desk::init(&dir.path().join("desk")).expect("desk");
    let inventory = desk.inventory().expect("inventory");
    let csv = fs::read_to_string(desk.root().join("devices-example.csv")).expect("sample CSV");
    let (rows, problems) =
        provdesk_core::inventory::parse_devices_csv(&csv, &|name| name == "office");
    assert!(problems.is_empty(), "{problems:?}");
    for (_, mut device) in rows {
        // One phone of another family, to see that the shared profiles suit it too.
        if device.mac.to_string().ends_with('2') {
            device.model = "ht802".into();
        }
        inventory.upsert_device(&device).expect("device");
    }
    let report = Builder::new(desk)
        .build(&inventory, &BuildOptions::default())
        .expect("build");
    assert!(report.published);
    assert!(report.diagnostics.is_empty(), "{:#?}", report.diagnostics);
}
