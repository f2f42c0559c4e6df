//! Hand-over report benchmark: how long `provdesk report` takes for a desk of 1,000 phones
//! (goal: under 2 s), split into gathering the rows (inventory queries, one effective
//! configuration per phone, statuses) and rendering the CSV and the PDF.
//!
//! The desk is built once and each phone has a boot's worth of requests in its fetch log
//! (written straight into the inventory, as the servers' recorder does), so statuses,
//! firmware versions and last contacts are all there to read.
//!
//! Run: `cargo bench -p provdesk-desk --bench report`.

use std::time::{Duration, Instant};

use provdesk_core::build::Manifest;
use provdesk_core::inventory::FetchLogEntry;
use provdesk_core::report::ReportFormat;
use provdesk_desk::DeskService;
use provdesk_desk::devices::{ImportOptions, Rebuild};
use provdesk_desk::report::render;

const DEVICES: usize = 1000;
const ROUNDS: usize = 5;

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn device_list() -> String {
    let mut text = String::from("mac,model,profile,name,ext,sip_secret\n");
    for i in 0..DEVICES {
        text.push_str(&format!(
            "000b82{i:06x},GXP2170,office,\"Desk {i}, floor {}\",{},s3cret-{i:04}\n",
            i % 12,
            2000 + i
        ));
    }
    text
}

/// A boot's requests: the binary file, then the XML, on old firmware; the XML again on new.
/// Each served as the build has it (its hash), so the phones are up to date.
fn boot_log(i: usize, manifest: &Manifest) -> Vec<FetchLogEntry> {
    let mac = format!("000b82{i:06x}");
    let at = 1_765_000_000_000 + i as i64 * 1000;
    ["cfg{}", "cfg{}.xml", "cfg{}.xml"]
        .iter()
        .enumerate()
        .map(|(n, name)| {
            let version = if n < 2 { "1.0.9.1" } else { "1.0.11.3" };
            let name = name.replace("{}", &mac);
            let artifact_hash = manifest.get(&name).map(|entry| entry.hash.clone());
            FetchLogEntry {
                id: None,
                ts: at + n as i64 * 100,
                protocol: "http".into(),
                peer: format!("192.0.2.{}:5060", i % 250),
                name,
                mac: Some(mac.parse().expect("MAC")),
                user_agent: Some(format!(
                    "Grandstream Model HW GXP2170 SW {version} DevId {mac}"
                )),
                status: "200".into(),
                reason: None,
                bytes: 20_000,
                duration_ms: 3,
                artifact_hash,
            }
        })
        .collect()
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let desk = DeskService::open(&dir.path().join("bench-desk")).expect("desk");
    let imported = desk
        .import_devices(&device_list(), ImportOptions::default(), Rebuild::Later)
        .expect("import");
    assert_eq!(imported.imported, Some(DEVICES));
    desk.build().expect("build");
    let manifest = desk.manifest();
    let log: Vec<FetchLogEntry> = (0..DEVICES).flat_map(|i| boot_log(i, &manifest)).collect();
    desk.inventory().append_fetch_log(&log).expect("fetch log");

    let (mut gather, mut csv, mut pdf, mut total) = (vec![], vec![], vec![], vec![]);
    let (mut csv_bytes, mut pdf_bytes, mut problems, mut pages) = (0, 0, 0, 0);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let report = desk.handover().expect("report");
        gather.push(started.elapsed());
        problems = report.summary().problems;

        let started = Instant::now();
        csv_bytes = render(&report, ReportFormat::Csv).len();
        csv.push(started.elapsed());

        let started = Instant::now();
        let document = render(&report, ReportFormat::Pdf);
        pdf.push(started.elapsed());
        pdf_bytes = document.len();
        pages = document
            .windows(b"/Type /Page\n".len())
            .filter(|w| *w == b"/Type /Page\n")
            .count();

        let started = Instant::now();
        let target = dir.path().join("handover.pdf");
        desk.write_handover_report(ReportFormat::Pdf, &target)
            .expect("write");
        total.push(started.elapsed());
    }
    println!(
        "hand-over report of {DEVICES} phones, median of {ROUNDS} rounds ({problems} with problems):"
    );
    println!(
        "  gather rows (queries, configs, statuses) {:>8.1?}",
        median(gather)
    );
    println!(
        "  render CSV ({csv_bytes} bytes)            {:>8.1?}",
        median(csv)
    );
    println!(
        "  render PDF ({pdf_bytes} bytes, {pages} pages) {:>8.1?}",
        median(pdf)
    );
    println!(
        "  whole PDF report, written to disk        {:>8.1?}  (goal < 2 s)",
        median(total)
    );
}
