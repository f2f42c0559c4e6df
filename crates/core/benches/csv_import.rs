//! CSV import benchmark: prints how long ProvDesk takes to check a device list (what
//! `provdesk device import --dry-run` does: split, validate every row, find duplicate MACs)
//! next to a plain `csv` crate pass over the same file, measured in the same run.
//!
//! Sizes 25,000, 50,000 and 100,000 rows show whether the time grows with the file (it must:
//! issue 13 saw 20,000 rows take 4.3 s and 80,000 take 64 s when each record's line was
//! counted from the start of the file). The 100,000-row file is also imported into a fresh
//! desk's SQLite inventory, the step the real import adds after the check.
//!
//! Run: `cargo bench -p provdesk-core --bench csv_import`.

use std::time::Instant;

use provdesk_core::desk::Desk;
use provdesk_core::inventory::{Device, parse_devices_csv_bytes};

const ROUNDS: usize = 3;
const SIZES: [usize; 3] = [25_000, 50_000, 100_000];

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// A device list as a customer's spreadsheet writes it: CRLF, quoted names with commas and
/// escaped quotes, a few variables.
fn device_list(rows: usize) -> String {
    let mut text = String::from("mac,model,profile,name,ext,sip_secret\r\n");
    for i in 0..rows {
        let model = ["gxp2170", "grp2614", "ht802"][i % 3];
        text.push_str(&format!(
            "000b82{i:06x},{model},office,\"Desk {i}, \"\"Floor {}\"\"\",{},s3cret-{i:06}\r\n",
            i % 40,
            1000 + i
        ));
    }
    text
}

/// The reference: every record of the file read by the `csv` crate, nothing checked.
fn csv_crate_pass(bytes: &[u8]) -> usize {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes);
    let mut record = csv::StringRecord::new();
    let mut count = 0;
    while reader
        .read_record(&mut record)
        .expect("csv crate reads the file")
    {
        count += 1;
    }
    count
}

fn profile_exists(name: &str) -> bool {
    name == "office"
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    println!(
        "CSV import check (median of {ROUNDS}), the csv crate reading the same file as reference"
    );
    println!(
        "{:>8}  {:>8}  {:>12}  {:>12}  {:>10}  {:>7}",
        "rows", "MB", "provdesk ms", "csv crate ms", "µs/row", "ratio"
    );
    let mut biggest = Vec::new();
    for rows in SIZES {
        let path = dir.path().join(format!("devices-{rows}.csv"));
        std::fs::write(&path, device_list(rows)).expect("write the list");
        let mut ours = Vec::new();
        let mut reference = Vec::new();
        for _ in 0..ROUNDS {
            let started = Instant::now();
            let bytes = std::fs::read(&path).expect("read");
            let (devices, diagnostics) = parse_devices_csv_bytes(&bytes, &profile_exists);
            ours.push(started.elapsed().as_secs_f64() * 1000.0);
            assert_eq!((devices.len(), diagnostics.len()), (rows, 0));

            let started = Instant::now();
            let bytes = std::fs::read(&path).expect("read");
            let count = csv_crate_pass(&bytes);
            reference.push(started.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(count, rows);
            if rows == SIZES[SIZES.len() - 1] {
                biggest = devices.into_iter().map(|(_, d)| d).collect::<Vec<Device>>();
            }
        }
        let size = std::fs::metadata(&path).map_or(0, |m| m.len()) as f64 / 1e6;
        let (ours, reference) = (median(ours), median(reference));
        println!(
            "{rows:>8}  {size:>8.1}  {ours:>12.1}  {reference:>12.1}  {:>10.2}  {:>6.1}x",
            ours * 1000.0 / rows as f64,
            ours / reference
        );
    }

    let desk = Desk::init(&dir.path().join("desk")).expect("desk");
    std::fs::write(desk.profiles_dir().join("office.toml"), "[params]\n").expect("profile");
    let inventory = desk.inventory().expect("inventory");
    let started = Instant::now();
    let imported = inventory.import_devices(&biggest).expect("import");
    println!(
        "import of {imported} checked devices into the SQLite inventory: {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
}
