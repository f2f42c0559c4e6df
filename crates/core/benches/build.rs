//! Build benchmark: prints figures, side by side with `openssl speed` measured in the same run.
//!
//! - full build of 1,000 and 10,000 devices, every one with an encrypted XML (P1359);
//! - rebuild after one device edit: the targeted path (`rebuild_devices`, what the app and the
//!   watcher use) and a full incremental build (what `provdesk build` does);
//! - AES-256-CBC encryption MB/s of our crypt module next to `openssl speed -evp aes-256-cbc`.
//!
//! Run: `cargo bench -p provdesk-core --bench build` (add `-- --quick` for 1,000 devices only).

use std::process::Command;
use std::time::Instant;

use provdesk_core::Mac;
use provdesk_core::build::{BuildOptions, Builder};
use provdesk_core::desk::Desk;
use provdesk_core::format::crypt;
use provdesk_core::inventory::Device;

const ROUNDS: usize = 3;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

const PROFILE: &str = r#"extends = "global"
[params]
P271 = 1
P47 = "pbx.example.com"
P35 = "{{ ext }}"
P36 = "{{ ext }}"
P34 = "{{ sip_secret }}"
P3 = "{{ name }}"
P270 = "Office {{ ext }}"
P1359 = "{{ xml_password }}"
P237 = "prov.example.com/gs"
P212 = 1
P401 = 1
P402 = "backup.example.com"
P404 = "{{ ext }}"
P406 = "{{ sip_secret }}"
P57 = 0
P58 = 8
P59 = 9
P60 = 18
P61 = 2
P62 = 98
P46 = 4
P290 = "{ x+ | *x+ | *xx*x+ }"
P32 = 60
P40 = 5060
P52 = 2
P130 = 0
P99 = 1
P81 = 1
P2 = "admin-{{ ext }}"
P196 = "user-{{ ext }}"
"#;

fn desk_with(devices: usize) -> (tempfile::TempDir, Desk, provdesk_core::inventory::Inventory) {
    let dir = tempfile::tempdir().expect("temp dir");
    let desk = Desk::init(&dir.path().join("desk")).expect("desk");
    std::fs::write(desk.profiles_dir().join("secure.toml"), PROFILE).expect("profile");
    let inventory = desk.inventory().expect("inventory");
    let rows: Vec<Device> = (0..devices)
        .map(|i| {
            let mac = Mac::from_bytes([0x00, 0x0b, 0x82, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
            let mut device = Device::new(mac, if i % 3 == 0 { "grp2614" } else { "gxp2170" });
            device.profile = Some("secure".into());
            device.name = Some(format!("Phone {i}"));
            device.vars.insert("ext".into(), (1000 + i).to_string());
            device
                .vars
                .insert("sip_secret".into(), format!("secret-{i:06}-xyz"));
            device
                .vars
                .insert("xml_password".into(), format!("xmlpw-{i:06}"));
            device
        })
        .collect();
    inventory.import_devices(&rows).expect("import");
    (dir, desk, inventory)
}

fn bench_builds(devices: usize) {
    let options = BuildOptions::default();
    let mut full = Vec::new();
    let mut noop = Vec::new();
    let mut one_edit_full_scan = Vec::new();
    let mut one_edit_targeted = Vec::new();
    let mut artifacts = 0;
    for round in 0..ROUNDS {
        let (_dir, desk, inventory) = desk_with(devices);
        let mut builder = Builder::new(desk.clone());
        let started = Instant::now();
        let report = builder.build(&inventory, &options).expect("build");
        full.push(started.elapsed().as_secs_f64() * 1000.0);
        assert!(
            report.published && report.errors() == 0,
            "{:?}",
            report.diagnostics
        );
        artifacts = report.artifacts;

        let started = Instant::now();
        let report = builder.build(&inventory, &options).expect("build");
        noop.push(started.elapsed().as_secs_f64() * 1000.0);
        assert!(report.written.is_empty());

        let mac = Mac::from_bytes([0x00, 0x0b, 0x82, 0, 0, 7]);
        let mut device = inventory.get_device(mac).expect("get").expect("device");
        device.vars.insert("ext".into(), format!("9{round}07"));
        inventory.upsert_device(&device).expect("edit");
        let started = Instant::now();
        let report = builder
            .rebuild_devices(&inventory, &[mac], &options)
            .expect("rebuild");
        one_edit_targeted.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(
            report.written,
            [format!("cfg{mac}.xml")],
            "only the encrypted XML carries the extension"
        );

        device.vars.insert("ext".into(), format!("8{round}07"));
        inventory.upsert_device(&device).expect("edit");
        let mut fresh = Builder::new(desk);
        let started = Instant::now();
        let report = fresh.build(&inventory, &options).expect("build");
        one_edit_full_scan.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(
            report.written,
            [format!("cfg{mac}.xml")],
            "only the encrypted XML carries the extension"
        );
    }
    println!("devices {devices:>6}  ({artifacts} request names, every device encrypted)");
    println!(
        "  full build                                 {:>9.1} ms",
        median(full)
    );
    println!(
        "  rebuild, nothing changed                   {:>9.1} ms",
        median(noop)
    );
    println!(
        "  one device edited, targeted rebuild        {:>9.1} ms",
        median(one_edit_targeted)
    );
    println!(
        "  one device edited, `provdesk build` (scan) {:>9.1} ms",
        median(one_edit_full_scan)
    );
}

/// Our encryption throughput on 16 KiB messages (the size `openssl speed` uses below).
fn ours_mb_per_s() -> f64 {
    let message = vec![b'x'; 16 * 1024];
    let count = 20_000;
    let started = Instant::now();
    let mut total = 0usize;
    for _ in 0..count {
        total += crypt::encrypt(&message, "password").len();
    }
    total as f64 / started.elapsed().as_secs_f64() / 1e6
}

/// `openssl speed -evp aes-256-cbc` at 16 KiB, in MB/s (its `k` unit is 1000 bytes/s).
fn openssl_mb_per_s() -> Option<f64> {
    let output = Command::new("openssl")
        .args([
            "speed",
            "-evp",
            "aes-256-cbc",
            "-seconds",
            "2",
            "-bytes",
            "16384",
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let last = text
        .lines()
        .rev()
        .find(|l| l.to_ascii_lowercase().starts_with("aes-256-cbc"))?;
    let figure = last.split_whitespace().last()?.trim_end_matches('k');
    figure.parse::<f64>().ok().map(|k| k * 1000.0 / 1e6)
}

fn bench_crypt() {
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..ROUNDS {
        ours.push(ours_mb_per_s());
        theirs.push(
            openssl_mb_per_s().expect("openssl speed must run (scripts/test installs openssl)"),
        );
    }
    let (ours, theirs) = (median(ours), median(theirs));
    println!("encryption AES-256-CBC, 16 KiB messages ({ROUNDS} interleaved rounds, medians)");
    println!("  provdesk crypt             {ours:>9.0} MB/s");
    println!("  openssl speed -evp         {theirs:>9.0} MB/s");
    println!(
        "  ratio                      {:>9.2}x   (goal: at least 0.8x)",
        ours / theirs
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    println!(
        "provdesk build benchmark ({ROUNDS} rounds each, medians; machine: {} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    bench_builds(1_000);
    if !quick {
        bench_builds(10_000);
    }
    bench_crypt();
}
