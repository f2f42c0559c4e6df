//! Firmware download throughput: this crate's server against tftpd-hpa, in one run.
//!
//! Serves one 40 MiB random file from `provdesk_tftp::run` (tokio, 2 workers) and from
//! tftpd-hpa (`in.tftpd`, started here as a child and killed at the end), and downloads it with
//! the same in-process blocking client at blksize 512 and 1428 from both, plus ours with
//! windowsize 16. Rounds are interleaved and their order rotated, so noise from other work on
//! the machine hits every case alike; the table shows the median MB/s (10^6 bytes) with min–max,
//! and the median of the per-round ratios ours/tftpd-hpa.
//!
//! Wall time on a shared machine is noisy, so each download also records the CPU time the server
//! spent on it, which other work on the machine disturbs far less. tftpd-hpa forks a child per
//! transfer: its CPU is the daemon's plus the child's, sampled from `/proc` while the download
//! runs. Ours runs in this process: its CPU is the process's `utime + stime` (which keeps the
//! time of threads that have ended) minus the client's, the main thread; the server's threads
//! are named `tftp-*` to tell them apart. Times are clock ticks of 10 ms, a small error against
//! the hundreds of milliseconds a 40 MiB download takes.
//!
//! Each download is also printed on stderr as `raw<TAB>case<TAB>round<TAB>MB/s<TAB>CPU s`, so
//! the rounds of several runs (of different builds, say) can be pooled.
//!
//! Run: `cargo run --release -p provdesk-tftp --example tftp_bench [ROUNDS]` (default 3);
//! `BENCH_WORKERS=N` changes the server runtime's worker threads (default 2).
//! Bounded: every download has a client timeout and retry limit, and the whole run stops with
//! an error after `MAX_WALL`.

#[path = "../tests/support/client.rs"]
mod client;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use client::{Get, GetError};
use provdesk_tftp::{Config, SourceError, TransferEvent};
use tokio_util::sync::CancellationToken;

const SIZE: usize = 40 * 1024 * 1024;
const NAME: &str = "gxp2170fw.bin";
const TFTPD: &str = "/usr/sbin/in.tftpd";
const MAX_WALL: Duration = Duration::from_secs(600);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Server {
    Ours,
    Hpa,
}

#[derive(Clone, Copy)]
struct Case {
    server: Server,
    blksize: u16,
    windowsize: u16,
}

impl Case {
    fn label(&self) -> String {
        let server = match self.server {
            Server::Ours => "provdesk-tftp",
            Server::Hpa => "tftpd-hpa",
        };
        let window = if self.windowsize > 1 {
            format!(" + windowsize {}", self.windowsize)
        } else {
            String::new()
        };
        format!("{server}, blksize {}{window}", self.blksize)
    }

    /// The tftpd-hpa case this one is compared with: same block size, lock-step.
    fn reference(&self) -> (u16, u16) {
        (self.blksize, 1)
    }
}

const CASES: [Case; 5] = [
    Case {
        server: Server::Ours,
        blksize: 512,
        windowsize: 1,
    },
    Case {
        server: Server::Hpa,
        blksize: 512,
        windowsize: 1,
    },
    Case {
        server: Server::Ours,
        blksize: 1428,
        windowsize: 1,
    },
    Case {
        server: Server::Hpa,
        blksize: 1428,
        windowsize: 1,
    },
    Case {
        server: Server::Ours,
        blksize: 1428,
        windowsize: 16,
    },
];

/// Kills tftpd-hpa however the benchmark ends.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rounds: usize = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => 3,
    };
    let started = Instant::now();
    let firmware = random_bytes(SIZE, 2170);

    // tftpd-hpa serves a copy on disk; it chroots and drops to the tftp user, so the
    // directory and file must be world-readable.
    let dir = tempfile::tempdir()?;
    set_mode(dir.path(), 0o755)?;
    let path = dir.path().join(NAME);
    std::fs::write(&path, &firmware)?;
    set_mode(&path, 0o644)?;
    let hpa_addr = free_udp_port()?;
    let tftpd = ChildGuard(
        Command::new(TFTPD)
            .args(["-L", "-a", &hpa_addr.to_string(), "-s"])
            .arg(dir.path())
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {TFTPD} (install tftpd-hpa): {e}"))?,
    );
    let hpa_pid = tftpd.0.id();

    // Our server, on its own 2-worker runtime as the app would run it.
    let workers = match std::env::var("BENCH_WORKERS") {
        Ok(n) => n.parse()?,
        Err(_) => 2,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("tftp-server")
        .enable_all()
        .build()?;
    let shutdown = CancellationToken::new();
    let content = firmware.clone();
    let source = move |name: &str, _: SocketAddr| match name {
        NAME => Ok(content.clone()),
        _ => Err(SourceError::NotFound("File not found".into())),
    };
    let socket = runtime.block_on(tokio::net::UdpSocket::bind("127.0.0.1:0"))?;
    let ours_addr = socket.local_addr()?;
    let (events, mut events_rx) = tokio::sync::mpsc::channel::<TransferEvent>(1024);
    let server = runtime.spawn(provdesk_tftp::run(
        socket,
        Config::default(),
        Arc::new(source),
        events,
        shutdown.clone(),
    ));
    let drain = runtime.spawn(async move {
        let mut failures = 0;
        while let Some(event) = events_rx.recv().await {
            if matches!(event, TransferEvent::Failed { .. }) {
                failures += 1;
            }
        }
        failures
    });

    wait_until_serving(hpa_addr)?;
    println!("40 MiB firmware, {rounds} interleaved rounds, in-process blocking client, 127.0.0.1");
    // results[case][round] = MB/s; cpu[case][round] = server CPU seconds
    let mut results = vec![Vec::new(); CASES.len()];
    let mut cpu = vec![Vec::new(); CASES.len()];
    for round in 0..rounds {
        for k in 0..CASES.len() {
            let i = (k + round) % CASES.len();
            if started.elapsed() > MAX_WALL {
                return Err(format!("benchmark exceeded {MAX_WALL:?}").into());
            }
            let case = CASES[i];
            let addr = match case.server {
                Server::Ours => ours_addr,
                Server::Hpa => hpa_addr,
            };
            let meter = CpuMeter::start(case.server, hpa_pid)?;
            let before = meter.read()?;
            let mbps =
                download(addr, &case, &firmware).map_err(|e| format!("{}: {e:?}", case.label()))?;
            let ticks = meter.read()?.saturating_sub(before) + meter.children();
            let seconds = ticks as f64 / CLOCK_TICKS_PER_SEC;
            // One line per download on stderr, so runs of different builds can be pooled.
            eprintln!(
                "raw\t{}\t{}\t{mbps:.2}\t{seconds:.2}",
                case.label(),
                round + 1
            );
            results[i].push(mbps);
            cpu[i].push(seconds);
        }
        eprintln!("round {} done", round + 1);
    }

    shutdown.cancel();
    runtime.block_on(server)??;
    let failures = runtime.block_on(drain)?;

    println!();
    println!(
        "| case | MB/s median (min–max) | MB/s ours / tftpd-hpa | server CPU s per transfer | CPU ours / tftpd-hpa |"
    );
    println!("| --- | --- | --- | --- | --- |");
    for (i, case) in CASES.iter().enumerate() {
        let (ratio, cpu_ratio) = if case.server == Server::Ours {
            let reference = CASES
                .iter()
                .position(|c| {
                    c.server == Server::Hpa && (c.blksize, c.windowsize) == case.reference()
                })
                .expect("every block size has a tftpd-hpa case");
            // Rates: higher is better for ours; CPU: lower is better for ours.
            (
                spread(&per_round_ratios(&results[i], &results[reference]), 2),
                spread(&per_round_ratios(&cpu[i], &cpu[reference]), 2),
            )
        } else {
            ("1 (reference)".to_owned(), "1 (reference)".to_owned())
        };
        println!(
            "| {} | {} | {ratio} | {} | {cpu_ratio} |",
            case.label(),
            spread(&results[i], 1),
            spread(&cpu[i], 2),
        );
    }
    println!();
    println!(
        "server-side failures reported by provdesk-tftp: {failures}; wall time {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `/proc` reports CPU times in USER_HZ ticks, which Linux fixes at 100 per second.
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

/// Where a server's CPU time is read.
enum CpuMeter {
    /// Ours, in this process: every thread but the client's.
    InProcess,
    /// A daemon that forks a child per transfer (tftpd-hpa), sampled while the download runs.
    Forking(u32, ChildSampler),
}

impl CpuMeter {
    fn start(server: Server, hpa_pid: u32) -> Result<Self, Box<dyn std::error::Error>> {
        Ok(match server {
            Server::Ours => CpuMeter::InProcess,
            Server::Hpa => CpuMeter::Forking(hpa_pid, ChildSampler::start(hpa_pid)),
        })
    }

    /// Cumulative CPU of the server outside its per-transfer children, in clock ticks.
    fn read(&self) -> Result<u64, Box<dyn std::error::Error>> {
        match self {
            CpuMeter::InProcess => {
                let process = stat_fields("/proc/self/stat")?;
                let client = stat_fields(&format!("/proc/self/task/{}/stat", std::process::id()))?;
                Ok((process[0] + process[1]).saturating_sub(client[0] + client[1]))
            }
            CpuMeter::Forking(pid, _) => {
                let daemon = stat_fields(&format!("/proc/{pid}/stat"))?;
                Ok(daemon[0] + daemon[1])
            }
        }
    }

    /// The ticks spent by per-transfer children since `start`.
    fn children(self) -> u64 {
        match self {
            CpuMeter::InProcess => 0,
            CpuMeter::Forking(_, sampler) => sampler.finish(),
        }
    }
}

/// tftpd-hpa ignores SIGCHLD, so its children are reaped by the kernel and their CPU never
/// reaches the daemon's `cutime`. A thread reads each child's own counters every 5 ms and keeps
/// the last value; what a child spends after the last sample (its final ACK and exit) is lost,
/// well under one 10 ms tick.
struct ChildSampler {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl ChildSampler {
    fn start(pid: u32) -> Self {
        use std::sync::atomic::Ordering;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let children = format!("/proc/{pid}/task/{pid}/children");
            let mut seen = std::collections::HashMap::<u32, u64>::new();
            loop {
                let stopping = flag.load(Ordering::Acquire);
                let list = std::fs::read_to_string(&children).unwrap_or_default();
                for child in list
                    .split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok())
                {
                    if let Ok(f) = stat_fields(&format!("/proc/{child}/stat")) {
                        seen.insert(child, f[0] + f[1]);
                    }
                }
                if stopping {
                    return seen.values().sum();
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Self { stop, thread }
    }

    fn finish(self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        self.thread.join().unwrap_or(0)
    }
}

/// utime, stime, cutime and cstime (fields 14–17) of a `/proc/.../stat` file.
fn stat_fields(path: &str) -> Result<[u64; 4], Box<dyn std::error::Error>> {
    let stat = std::fs::read_to_string(path)?;
    // The command name (field 2) may contain spaces; the fields after it never do.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| format!("unexpected {path}: {stat}"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (the state), so field n is fields[n - 3].
    let mut out = [0; 4];
    for (k, slot) in out.iter_mut().enumerate() {
        let field = fields
            .get(11 + k)
            .ok_or_else(|| format!("short {path}: {stat}"))?;
        *slot = field.parse()?;
    }
    Ok(out)
}

fn per_round_ratios(ours: &[f64], reference: &[f64]) -> Vec<f64> {
    ours.iter().zip(reference).map(|(o, r)| o / r).collect()
}

/// "median (min–max)" with `decimals` digits.
fn spread(values: &[f64], decimals: usize) -> String {
    format!(
        "{:.*} ({:.*}–{:.*})",
        decimals,
        median(values),
        decimals,
        min(values),
        decimals,
        max(values)
    )
}

/// One timed download; the content check happens after the clock stops.
fn download(addr: SocketAddr, case: &Case, expected: &[u8]) -> Result<f64, GetError> {
    let mut get = Get::new(NAME);
    get.timeout = Duration::from_secs(1);
    if case.blksize != 512 {
        get = get.option("blksize", case.blksize);
    }
    if case.windowsize > 1 {
        get = get.option("windowsize", case.windowsize);
    }
    let start = Instant::now();
    let d = client::get(addr, &get)?;
    let elapsed = start.elapsed();
    if d.data != expected {
        return Err(GetError::Protocol(format!(
            "{}: downloaded {} bytes that differ from the file",
            case.label(),
            d.data.len()
        )));
    }
    Ok(SIZE as f64 / 1e6 / elapsed.as_secs_f64())
}

/// Polls tftpd-hpa with a small request until it answers (it needs a moment to bind).
fn wait_until_serving(addr: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    let mut probe = Get::new("no-such-file");
    probe.timeout = Duration::from_millis(100);
    probe.retries = 0;
    for _ in 0..50 {
        match client::get(addr, &probe) {
            Err(GetError::Server { .. }) => return Ok(()),
            Err(GetError::Timeout) | Err(GetError::Io(_)) => continue,
            other => return Err(format!("unexpected answer from tftpd-hpa: {other:?}").into()),
        }
    }
    Err("tftpd-hpa did not answer within 5 s".into())
}

/// A loopback UDP port that was free a moment ago (tftpd-hpa binds it itself).
fn free_udp_port() -> std::io::Result<SocketAddr> {
    std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()
}

fn set_mode(path: &std::path::Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

fn random_bytes(len: usize, seed: u64) -> Bytes {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out.into()
}

fn sorted(values: &[f64]) -> Vec<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

fn median(values: &[f64]) -> f64 {
    let v = sorted(values);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn min(values: &[f64]) -> f64 {
    sorted(values).first().copied().unwrap_or(f64::NAN)
}

fn max(values: &[f64]) -> f64 {
    sorted(values).last().copied().unwrap_or(f64::NAN)
}
