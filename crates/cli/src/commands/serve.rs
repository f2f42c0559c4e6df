//! `provdesk serve`: runs the servers on the desk and prints every event, as readable lines or
//! as one JSON object per line, until Ctrl-C or SIGTERM. On start it says what each protocol
//! enforces (the allow-list, authentication, what TFTP withholds) and warns about every
//! trade-off the settings make: on stdout in text mode, on stderr beside the JSON stream.
//!
//! Invariant: the process exits only after the service has shut down, so every fetch it
//! served is in the fetch log.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, ValueEnum};
use provdesk_desk::DeskService;
use provdesk_serve::events::{Event, Fetch, Outcome, Progress, SyslogEvent};
use provdesk_serve::pnp::PnpOutcome;
use provdesk_serve::service::ServeOptions;
use tokio::sync::broadcast::{self, error::RecvError};

use super::{desk_error, open_service};

#[derive(Args)]
pub struct ServeArgs {
    /// HTTP listen address (IP:PORT, port 0 for any), or `off`. Default: server.http in
    /// provdesk.toml.
    #[arg(long, value_name = "ADDR")]
    http: Option<String>,
    /// HTTPS listen address, or `off`. Default: server.https in provdesk.toml.
    #[arg(long, value_name = "ADDR")]
    https: Option<String>,
    /// TFTP listen address, or `off`. Default: server.tftp in provdesk.toml. Port 69 needs
    /// privileges; e.g. --tftp 0.0.0.0:6969.
    #[arg(long, value_name = "ADDR")]
    tftp: Option<String>,
    /// Answer SIP plug-and-play (phones multicasting for their provisioning server to
    /// 224.0.1.75:5060) on this interface (a name, or one of its IPv4 addresses); without a
    /// value, on the first interface with an IPv4 address. Off unless given.
    #[arg(long, value_name = "IFACE", num_args = 0..=1, default_missing_value = "")]
    pnp: Option<String>,
    /// Answer DHCP on this interface (e.g. eth1), pointing phones at this desk with option
    /// 66; or `off`. Default: dhcp.interface in provdesk.toml (off when absent). The rest of
    /// [dhcp] gives the pool, lease and options. Needs port 67 (root or CAP_NET_BIND_SERVICE
    /// and CAP_NET_RAW).
    #[arg(long, value_name = "IFACE")]
    dhcp: Option<String>,
    /// Receive the phones' syslog over UDP on this address (IP:PORT, port 0 for any), or
    /// `off`. Default: syslog.listen in provdesk.toml (off when absent). Profiles that leave
    /// P207/P208 empty are pointed at it.
    #[arg(long, value_name = "ADDR")]
    syslog: Option<String>,
    /// How events are printed: readable lines, or one JSON object per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

pub fn run(desk_path: &Path, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let desk = open_service(desk_path)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(desk, args))
}

async fn serve(desk: DeskService, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let options = ServeOptions {
        http: args.http,
        https: args.https,
        tftp: args.tftp,
        pnp: args.pnp,
        dhcp: args.dhcp,
        syslog: args.syslog,
    };
    let pnp = options.pnp.is_some();
    let format = args.log_format;
    // Listening before the servers start: a SIGTERM that comes at any point after they are
    // up must stop them cleanly, never kill the process with rows unwritten.
    let stop = provdesk_serve::signals::stop_requested()?;
    // Reused: in a storm, a fresh buffer per write grew (and copied) itself every time.
    let mut lines = Vec::new();
    // The desk service hands its one builder to the servers' publisher; the event stream is
    // subscribed before their first build, so no line is missed.
    let started = desk.start_serving(options).await.map_err(desk_error)?;
    let mut events = started.events;
    // What each protocol enforces and what the settings trade away, as the serve crate
    // words it; the app shows the same lines.
    let access = started.access.lines();
    if format == LogFormat::Json {
        // People watching a JSON stream still want to know where to point the phones.
        for (_, url) in &started.urls {
            eprintln!("listening {url}");
        }
        if pnp {
            eprintln!("{PNP_LINE}");
        }
        if let Some(url) = &started.syslog_url {
            eprintln!("listening syslog {url}");
        }
        for line in &access {
            eprintln!("{line}");
        }
    } else {
        if pnp {
            lines.extend_from_slice(PNP_LINE.as_bytes());
            lines.push(b'\n');
        }
        for line in &access {
            lines.extend_from_slice(line.as_bytes());
            lines.push(b'\n');
        }
        print_lines(&mut lines);
    }
    tokio::pin!(stop);
    loop {
        tokio::select! {
            biased;
            () = &mut stop => break,
            event = events.recv() => match event {
                Ok(event) => {
                    // Whatever else is queued goes out in the same write, and the loop
                    // pauses before it waits again: in a boot storm, waking this thread
                    // and writing once per request cost the servers a fifth of their CPU.
                    append(format, &event, &mut lines);
                    append_queued(format, &mut events, &mut lines);
                    print_lines(&mut lines);
                    tokio::time::sleep(PRINT_PAUSE).await;
                }
                Err(RecvError::Lagged(missed)) => warn_lagged(missed),
                Err(RecvError::Closed) => break,
            },
        }
    }
    desk.stop_serving().await.map_err(desk_error)?;
    // What the servers reported while stopping (transfers cut short) is still queued.
    append_queued(format, &mut events, &mut lines);
    print_lines(&mut lines);
    Ok(ExitCode::SUCCESS)
}

/// Printed once plug-and-play listens (the service fails to start when it cannot).
const PNP_LINE: &str = "listening pnp 224.0.1.75:5060";

/// Longest a log line waits after the one before it was printed.
const PRINT_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

/// Appends every event already queued, one line each.
fn append_queued(
    format: LogFormat,
    events: &mut broadcast::Receiver<Arc<Event>>,
    lines: &mut Vec<u8>,
) {
    loop {
        match events.try_recv() {
            Ok(event) => append(format, &event, lines),
            Err(broadcast::error::TryRecvError::Lagged(missed)) => warn_lagged(missed),
            Err(_) => return,
        }
    }
}

fn warn_lagged(missed: u64) {
    eprintln!(
        "warning: {missed} event(s) not shown (the terminal is slower than the servers); the fetch log has them all"
    );
}

/// Appends `event` as one line.
fn append(format: LogFormat, event: &Event, lines: &mut Vec<u8>) {
    match format {
        // The one event a storm is made of skips serde (same bytes, a fraction of the CPU).
        LogFormat::Json if let Event::Fetch(fetch) = event => fetch.append_json_event(lines),
        LogFormat::Json => {
            let start = lines.len();
            if let Err(e) = serde_json::to_writer(&mut *lines, event) {
                lines.truncate(start);
                eprintln!("warning: an event could not be written as JSON: {e}");
                return;
            }
        }
        LogFormat::Text => lines.extend_from_slice(text_line(event, &clock()).as_bytes()),
    }
    lines.push(b'\n');
}

fn clock() -> String {
    chrono::Local::now().format("%H:%M:%S").to_string()
}

/// One readable line per event, e.g.
/// `12:03:04 tftp 192.168.1.20:50000 cfg000b82123456.xml 404 (0 B, 2 ms) [000b82123456] no files for device …`.
fn text_line(event: &Event, time: &str) -> String {
    match event {
        Event::Listening { url, .. } => format!("listening {url}"),
        Event::Fetch(fetch) => fetch_line(fetch, time),
        Event::Progress(progress) => progress_line(progress, time),
        Event::Build(build) => {
            let mut line = if build.published {
                format!(
                    "{time} build {}: {} files, {} written, {} removed ({:.1} ms)",
                    build.build, build.artifacts, build.written, build.removed, build.elapsed_ms
                )
            } else {
                let errors = build.diagnostics.iter().filter(|d| d.is_error()).count();
                format!(
                    "{time} build failed with {errors} error(s): the last good build keeps serving"
                )
            };
            for d in &build.diagnostics {
                let _ = write!(line, "\n    {d}");
            }
            for held in &build.held {
                let _ = write!(
                    line,
                    "\n    {} needs attention: its files were held back, the last good ones keep serving",
                    held.mac
                );
                for d in &held.diagnostics {
                    let _ = write!(line, "\n      {d}");
                }
            }
            line
        }
        Event::Discovered {
            mac,
            model,
            ip,
            firmware_version,
        } => format!(
            "{time} discovered {mac} ({}, firmware {}) at {ip}: `provdesk device list` shows it",
            model.as_deref().unwrap_or("model unknown"),
            firmware_version.as_deref().unwrap_or("unknown")
        ),
        Event::PlugAndPlay {
            mac,
            model,
            firmware,
            ip,
            outcome,
        } => {
            let mac = mac.map_or_else(|| "(no MAC)".to_string(), |m| m.to_string());
            let phone = format!(
                "{mac} ({}, firmware {}) at {ip}",
                model.as_deref().unwrap_or("model unknown"),
                firmware.as_deref().unwrap_or("unknown")
            );
            match outcome {
                PnpOutcome::Notified { url } => {
                    format!("{time} pnp {phone} asked for its server: sent {url}")
                }
                PnpOutcome::Failed { reason } => {
                    format!("{time} pnp {phone} asked for its server: not answered: {reason}")
                }
            }
        }
        Event::Warning { message } => format!("{time} warning: {message}"),
        Event::Dhcp(dhcp) => dhcp_line(dhcp, time),
        Event::Syslog(syslog) => syslog_line(syslog, time),
    }
}

/// `listening syslog udp://HOST:PORT` when it starts, then
/// `12:03:04 syslog 198.51.100.7:514 [000b82123456] info GS_LOG: [00:0b:82:12:34:56][000] …`.
fn syslog_line(event: &SyslogEvent, time: &str) -> String {
    match event {
        SyslogEvent::Listening { url } => format!("listening syslog {url}"),
        SyslogEvent::Line(line) => {
            let mut text = format!("{time} syslog {}", line.peer);
            if let Some(mac) = line.mac {
                let _ = write!(text, " [{mac}]");
            }
            if let Some(severity) = line.severity {
                let _ = write!(text, " {severity}");
            }
            if let Some(app) = &line.app {
                let _ = write!(text, " {app}:");
            }
            let _ = write!(text, " {}", line.message);
            if line.cut_bytes > 0 {
                let _ = write!(text, " (cut: {} more)", bytes(line.cut_bytes));
            }
            text
        }
        SyslogEvent::Dropped(dropped) => {
            let mut text = format!("{time} syslog");
            if let Some(peer) = dropped.peer {
                let _ = write!(text, " {peer}");
            }
            if let Some(mac) = dropped.mac {
                let _ = write!(text, " [{mac}]");
            }
            let _ = write!(text, " {}", dropped.summary());
            text
        }
    }
}

/// `listening dhcp d0 198.51.100.1 (...)` when it starts, then
/// `12:03:04 dhcp ack 000b82123456 198.51.100.128 (Grandstream GXP2170)`.
fn dhcp_line(dhcp: &provdesk_serve::events::DhcpEvent, time: &str) -> String {
    let address = dhcp.address.map(|a| a.to_string()).unwrap_or_default();
    if dhcp.kind == "listening" {
        let mut line = format!("listening dhcp {} {address}", dhcp.interface);
        if let Some(detail) = &dhcp.detail {
            let _ = write!(line, " ({detail})");
        }
        return line;
    }
    let mut line = format!("{time} dhcp {}", dhcp.kind);
    if let Some(mac) = dhcp.mac {
        let _ = write!(line, " {mac}");
    }
    if !address.is_empty() {
        let _ = write!(line, " {address}");
    }
    if let Some(vendor) = &dhcp.vendor_class {
        let _ = write!(line, " ({vendor})");
    }
    if let Some(detail) = &dhcp.detail {
        let _ = write!(line, ": {detail}");
    }
    line
}

fn fetch_line(fetch: &Fetch, time: &str) -> String {
    let mut line = format!(
        "{time} {} {} {} {} ({}, {} ms)",
        fetch.protocol.as_str(),
        fetch.peer,
        fetch.name,
        fetch.outcome.status_text(),
        bytes(fetch.bytes),
        fetch.duration_ms
    );
    if let Some(mac) = fetch.mac {
        let _ = write!(line, " [{mac}]");
    }
    if let Some(artifact) = &fetch.artifact {
        let _ = write!(line, " v{}", artifact.version);
    }
    match &fetch.outcome {
        Outcome::Served { .. } => {}
        Outcome::NotFound { reason }
        | Outcome::BadRequest { reason }
        | Outcome::Denied { reason }
        | Outcome::Failed { reason } => {
            let _ = write!(line, " {reason}");
        }
    }
    line
}

fn progress_line(progress: &Progress, time: &str) -> String {
    let share = match progress.total {
        Some(total) if total > 0 => format!(
            "{}% ({} of {})",
            progress.bytes.min(total) * 100 / total,
            bytes(progress.bytes),
            bytes(total)
        ),
        _ => bytes(progress.bytes),
    };
    let mut line = format!(
        "{time} {} {} {} {share}",
        progress.protocol.as_str(),
        progress.peer,
        progress.name
    );
    if let Some(mac) = progress.mac {
        let _ = write!(line, " [{mac}]");
    }
    line
}

fn bytes(n: u64) -> String {
    match n {
        0..1024 => format!("{n} B"),
        1024..1_048_576 => format!("{:.1} KiB", n as f64 / 1024.0),
        _ => format!("{:.1} MiB", n as f64 / 1_048_576.0),
    }
}

/// Prints whole lines and empties `lines`; a closed stdout (the reader went away) loses them,
/// not the server.
fn print_lines(lines: &mut Vec<u8>) {
    use std::io::Write;
    if lines.is_empty() {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(lines).and_then(|()| stdout.flush());
    lines.clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use provdesk_serve::events::Protocol;

    fn fetch(outcome: Outcome) -> Fetch {
        Fetch {
            at_ms: 0,
            protocol: Protocol::Tftp,
            peer: "127.0.0.1:50000".parse().unwrap(),
            name: "cfg000b82123456.xml".into(),
            mac: "000b82123456".parse().ok(),
            model: None,
            user_agent: None,
            outcome,
            bytes: 0,
            duration_ms: 2,
            artifact: None,
        }
    }

    #[test]
    fn fetch_lines_say_who_asked_what_and_why_it_failed() {
        let line = text_line(
            &Event::Fetch(fetch(Outcome::NotFound {
                reason: "not in the inventory".into(),
            })),
            "12:03:04",
        );
        assert_eq!(
            line,
            "12:03:04 tftp 127.0.0.1:50000 cfg000b82123456.xml 404 (0 B, 2 ms) [000b82123456] not in the inventory"
        );
    }

    #[test]
    fn plug_and_play_lines_name_the_phone_and_the_url() {
        let event = |outcome| Event::PlugAndPlay {
            mac: "c074ad112233".parse().ok(),
            model: Some("GRP2612W".into()),
            firmware: Some("1.0.5.67".into()),
            ip: "198.51.100.2".into(),
            outcome,
        };
        let sent = text_line(
            &event(PnpOutcome::Notified {
                url: "http://198.51.100.1:8080/".into(),
            }),
            "12:03:04",
        );
        assert_eq!(
            sent,
            "12:03:04 pnp c074ad112233 (GRP2612W, firmware 1.0.5.67) at 198.51.100.2 asked for its server: sent http://198.51.100.1:8080/"
        );
        let failed = text_line(
            &event(PnpOutcome::Failed {
                reason: "unreachable".into(),
            }),
            "12:03:04",
        );
        assert!(failed.ends_with("not answered: unreachable"), "{failed}");
    }

    #[test]
    fn progress_lines_show_percent_and_sizes() {
        let line = text_line(
            &Event::Progress(Progress {
                transfer: 1,
                protocol: Protocol::Tftp,
                peer: "127.0.0.1:50000".parse().unwrap(),
                name: "gxp2170fw.bin".into(),
                mac: None,
                bytes: 1_048_576,
                total: Some(4 * 1_048_576),
            }),
            "12:03:04",
        );
        assert_eq!(
            line,
            "12:03:04 tftp 127.0.0.1:50000 gxp2170fw.bin 25% (1.0 MiB of 4.0 MiB)"
        );
        assert_eq!(bytes(1536), "1.5 KiB");
    }

    #[test]
    fn syslog_lines_say_where_it_listens_who_spoke_and_what_was_dropped() {
        use provdesk_serve::events::{SyslogDropped, SyslogLine, TiedBy};
        let listening = Event::Syslog(SyslogEvent::Listening {
            url: "udp://127.0.0.1:5514".into(),
        });
        assert_eq!(
            text_line(&listening, "12:03:04"),
            "listening syslog udp://127.0.0.1:5514"
        );
        let line = Event::Syslog(SyslogEvent::Line(SyslogLine {
            at_ms: 0,
            peer: "198.51.100.7:514".parse().unwrap(),
            mac: "000b82123456".parse().ok(),
            tied_by: Some(TiedBy::Lease),
            format: provdesk_core::syslog::Format::Rfc3164,
            facility: Some("user"),
            severity: Some(provdesk_core::syslog::Severity::Info),
            hostname: None,
            app: Some("GS_LOG".into()),
            message: "[00:0b:82:12:34:56][000] Ethernet link is up".into(),
            sent_at_ms: None,
            other_macs: Vec::new(),
            cut_bytes: 63_459,
        }));
        assert_eq!(
            text_line(&line, "12:03:04"),
            "12:03:04 syslog 198.51.100.7:514 [000b82123456] info GS_LOG: [00:0b:82:12:34:56][000] Ethernet link is up (cut: 62.0 KiB more)"
        );
        let dropped = Event::Syslog(SyslogEvent::Dropped(SyslogDropped {
            at_ms: 0,
            peer: "198.51.100.7".parse().ok(),
            mac: "000b82123456".parse().ok(),
            lines: 9_400,
            sources: 1,
            reason: "rate",
            per_second: 100,
        }));
        assert_eq!(
            text_line(&dropped, "12:03:04"),
            "12:03:04 syslog 198.51.100.7 [000b82123456] 9400 syslog line(s) dropped: over 100 lines a second from this address"
        );
    }

    #[test]
    fn dhcp_lines_start_with_listening_and_then_name_the_mac() {
        use provdesk_serve::events::DhcpEvent;
        let event = |kind, mac: Option<&str>, address: Option<&str>, detail: Option<&str>| {
            Event::Dhcp(DhcpEvent {
                at_ms: 0,
                interface: "d0".into(),
                kind,
                mac: mac.and_then(|m| m.parse().ok()),
                address: address.and_then(|a| a.parse().ok()),
                vendor_class: mac.map(|_| "Grandstream GXP2170".into()),
                detail: detail.map(str::to_string),
            })
        };
        let line = text_line(
            &event("listening", None, Some("198.51.100.1"), Some("pool x")),
            "12:03:04",
        );
        assert_eq!(line, "listening dhcp d0 198.51.100.1 (pool x)");
        let line = text_line(
            &event("ack", Some("000b82123456"), Some("198.51.100.128"), None),
            "12:03:04",
        );
        assert_eq!(
            line,
            "12:03:04 dhcp ack 000b82123456 198.51.100.128 (Grandstream GXP2170)"
        );
        let line = text_line(
            &event(
                "pool-exhausted",
                Some("000b82123456"),
                None,
                Some("no free address"),
            ),
            "12:03:04",
        );
        assert!(
            line.ends_with("(Grandstream GXP2170): no free address"),
            "{line}"
        );
    }
}
