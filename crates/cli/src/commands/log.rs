//! `provdesk log`: the whole fetch log, which outlives the servers, oldest first; `--follow`
//! keeps printing what the servers add (in this process or another), by polling the
//! inventory with the id of the last row printed as its cursor.
//!
//! `--json` prints one JSON object per line (a fetch-log entry, the shape of
//! `device show --json`'s history), so a follower's output can be read line by line.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use provdesk_core::Mac;
use provdesk_core::inventory::{FetchLogEntry, FetchLogPage};

use super::open_service;
use crate::output;

/// How often `--follow` asks the inventory for new rows: the servers' recorder writes once a
/// second, so a request shows within about a second and a half.
const FOLLOW_EVERY: Duration = Duration::from_millis(500);

/// Rows read per query while catching up.
const PAGE: usize = 1000;

/// With `--follow` and no `--last`, only this many of the newest rows come first, as `tail -f`
/// does.
const FOLLOW_LAST: usize = 20;

#[derive(Args)]
pub struct LogArgs {
    /// Keep printing new requests as the servers log them (Ctrl-C to stop).
    #[arg(long)]
    follow: bool,
    /// Only this device's requests.
    #[arg(long, value_name = "MAC")]
    device: Option<String>,
    /// Only requests from this time on: RFC 3339 (2026-12-06T09:30:00Z) or an age (30s, 10m,
    /// 2h, 1d).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Only the newest N requests (then, with --follow, the new ones). Default: all, or 20
    /// with --follow.
    #[arg(long, value_name = "N")]
    last: Option<usize>,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
}

pub fn run(desk_path: &Path, args: &LogArgs) -> anyhow::Result<ExitCode> {
    let mac: Option<Mac> = args.device.as_deref().map(str::parse).transpose()?;
    let since = args
        .since
        .as_deref()
        .map(|text| output::parse_since(text, output::now_ms()))
        .transpose()?;
    let desk = open_service(desk_path)?;
    let last = args.last.or(args.follow.then_some(FOLLOW_LAST));
    let mut cursor = match last {
        Some(newest) => desk.fetch_log_tail_start(mac, since, newest)?,
        None => None,
    };
    let mut printed = 0usize;
    let stdout = std::io::stdout();
    loop {
        let page = desk.fetch_log_page(&FetchLogPage {
            after_id: cursor,
            mac,
            since,
            limit: PAGE,
        })?;
        {
            let mut out = stdout.lock();
            for entry in &page.entries {
                if args.json {
                    serde_json::to_writer(&mut out, entry)?;
                    writeln!(out)?;
                } else {
                    writeln!(out, "{}", line(entry))?;
                }
            }
            out.flush()?;
        }
        printed += page.entries.len();
        cursor = page.cursor;
        if page.entries.len() == PAGE {
            continue;
        }
        if !args.follow {
            break;
        }
        std::thread::sleep(FOLLOW_EVERY);
    }
    if printed == 0 && !args.json {
        eprintln!(
            "the fetch log has no request{}",
            match (&args.device, &args.since) {
                (Some(device), _) => format!(" from {device}"),
                (None, Some(since)) => format!(" since {since}"),
                _ => " yet (they are logged while `provdesk serve` runs)".into(),
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `2026-12-06 18:30:01.123  http   192.0.2.7:40000  cfg000b82123456.xml  200  000b82123456  1234 B  3 ms`.
fn line(entry: &FetchLogEntry) -> String {
    let mut line = format!(
        "{}  {:<5}  {:<21}  {}  {}  {}  {} B  {} ms",
        output::time_ms(entry.ts),
        entry.protocol,
        entry.peer,
        entry.name,
        entry.status,
        entry.mac.map_or_else(|| "-".to_string(), |m| m.to_string()),
        entry.bytes,
        entry.duration_ms
    );
    if let Some(reason) = &entry.reason {
        line.push_str(&format!("  {reason}"));
    }
    line
}
