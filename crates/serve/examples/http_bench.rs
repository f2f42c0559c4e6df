//! The boot-storm benchmark: 1,000 distinct ~20 KB configs fetched on fresh connections
//! (`Connection: close`, as phones do after a reboot) at concurrency 50 and 200, from our
//! HTTP server with every fetch recorded, and from nginx with and without its access log
//! (and with `listen … deferred`, the TCP_DEFER_ACCEPT our plain-HTTP listener uses, and
//! without it, as nginx ships).
//! Rounds are interleaved with the order rotated, and each figure is the median over rounds;
//! compare the ratios, not the absolute numbers (the machine is shared and noisy).
//!
//! Run: `cargo run --release -p provdesk-serve --example http_bench -- [--rounds 3]
//! [--requests 40000] [--seconds 30] [--nginx /usr/sbin/nginx] [--provdesk PATH]`.
//! Everything stays on 127.0.0.1; every run is bounded in requests and in time.
//!
//! With `--provdesk target/release/provdesk` (build it with `cargo build --release -p
//! provdesk-cli`), the configs come from a real desk of 1,000 phones made through that
//! binary, every server serves that desk's `build/`, and `provdesk serve` itself joins the
//! table: its fetch log in SQLite and one JSON event line per request on stdout (to a file),
//! as a technician runs it.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use provdesk_core::build::{ArtifactKind, CredentialTable, Manifest, ManifestEntry};
use provdesk_serve::events::{Event, EventBus, Protocol};
use provdesk_serve::http::{self, HttpConfig};
use provdesk_serve::store::{ArtifactStore, Snapshot};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

// The allocator the `provdesk` binary uses (`provdesk serve` is what this measures).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const FILES: usize = 1000;
const FILE_SIZE: usize = 20 * 1024;

struct Options {
    rounds: usize,
    requests: usize,
    seconds: u64,
    nginx: PathBuf,
    /// The `provdesk` binary to measure as well, on a desk it makes.
    provdesk: Option<PathBuf>,
    concurrency: Vec<usize>,
    /// Indexes into the server list to run (all by default), for profiling one alone.
    only: Option<Vec<usize>>,
    layout: Layout,
    log: LogMode,
}

/// How the fetch-log recorder and the UI subscriber consume events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogMode {
    /// Block on each event: every emit may wake a parked thread and a parked task.
    Wake,
    /// Drain everything every 10 ms (as a batching recorder and the app's UI batches do):
    /// nobody is parked on the channels, so emitting never wakes anyone.
    Batch,
    /// No consumers at all: the cost of the server alone, for reference.
    None,
}

fn options() -> Options {
    let mut options = Options {
        rounds: 3,
        // A few seconds a round: long enough that `provdesk serve`'s one-second fetch-log
        // commits happen inside its rounds, as in a sustained storm, not only after them.
        requests: 40_000,
        seconds: 30,
        nginx: PathBuf::from("/usr/sbin/nginx"),
        provdesk: None,
        concurrency: vec![50, 200],
        only: None,
        layout: Layout::Multi(2),
        log: LogMode::Batch,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i + 1 < args.len() {
        let value = &args[i + 1];
        match args[i].as_str() {
            "--rounds" => options.rounds = value.parse().expect("--rounds N"),
            "--requests" => options.requests = value.parse().expect("--requests N"),
            "--seconds" => options.seconds = value.parse().expect("--seconds N"),
            "--nginx" => options.nginx = PathBuf::from(value),
            "--provdesk" => options.provdesk = Some(PathBuf::from(value)),
            "--concurrency" => {
                options.concurrency = value
                    .split(',')
                    .map(|c| c.parse().expect("--concurrency 50,200"))
                    .collect()
            }
            "--layout" => options.layout = Layout::parse(value),
            "--log" => {
                options.log = match value.as_str() {
                    "wake" => LogMode::Wake,
                    "batch" => LogMode::Batch,
                    "none" => LogMode::None,
                    _ => panic!("--log wake|batch|none"),
                }
            }
            "--only" => {
                options.only = Some(
                    value
                        .split(',')
                        .map(|c| c.parse().expect("--only 0,1,2"))
                        .collect(),
                )
            }
            other => panic!("unknown option {other}"),
        }
        i += 2;
    }
    options
}

/// P-values added to the desk's global profile so each built config is about FILE_SIZE.
const FILLER_PARAMS: usize = 480;

/// Runs the `provdesk` binary on `desk`; it must succeed.
fn provdesk(binary: &Path, desk: &Path, args: &[&str]) {
    let output = Command::new(binary)
        .arg("--desk")
        .arg(desk)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
    assert!(
        output.status.success(),
        "provdesk {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The server's defaults, except that every simulated phone comes from 127.0.0.1, so the
/// per-address share is lifted to the server-wide cap. The bookkeeping still runs for every
/// connection, so its cost is in the figures.
fn bench_config() -> HttpConfig {
    HttpConfig {
        max_connections_per_address: http::MAX_CONNECTIONS,
        ..HttpConfig::new(Protocol::Http)
    }
}

/// Makes a desk of FILES phones through the binary (init, catalogue, profile, CSV import,
/// build) and returns its manifest and the phones' config names.
fn write_desk(binary: &Path, desk: &Path) -> (Manifest, Vec<String>) {
    provdesk(binary, desk, &["init"]);
    // Every simulated phone comes from 127.0.0.1: lift that address's share to the
    // server-wide cap, as for the in-process servers (see `bench_config`).
    let settings_path = desk.join("provdesk.toml");
    let settings = std::fs::read_to_string(&settings_path).unwrap();
    let share = format!(
        "http_connections_per_address = {}",
        http::MAX_CONNECTIONS_PER_ADDRESS
    );
    assert!(
        settings.contains(&share),
        "the sample desk's [limits] changed"
    );
    let lifted = format!("http_connections_per_address = {}", http::MAX_CONNECTIONS);
    std::fs::write(&settings_path, settings.replace(&share, &lifted)).unwrap();
    // A full template's worth of P-values, described in the catalogue first so the build
    // does not warn about each of them for every phone.
    let value = |i: usize| format!("filler-value-{i:08}");
    let template: String = (0..FILLER_PARAMS)
        .map(|i| format!("P{} = {}\n", 20000 + i, value(i)))
        .collect();
    let template_path = desk.join("bench-template.txt");
    std::fs::write(&template_path, template).unwrap();
    let template_arg = template_path.to_str().unwrap();
    provdesk(
        binary,
        desk,
        &["catalog", "import", "--model", "GXP2170", template_arg],
    );
    let global = desk.join("profiles/global.toml");
    let mut profile = std::fs::read_to_string(&global).unwrap();
    for i in 0..FILLER_PARAMS {
        profile.push_str(&format!("P{} = \"{}\"\n", 20000 + i, value(i)));
    }
    std::fs::write(&global, profile).unwrap();
    let mut csv = String::from("mac,model,profile,name,ext,sip_secret\n");
    for n in 0..FILES {
        csv.push_str(&format!(
            "000b82{n:06x},GXP2170,office,Phone {n},{},secret-{n}\n",
            1000 + n
        ));
    }
    let csv_path = desk.join("bench-phones.csv");
    std::fs::write(&csv_path, csv).unwrap();
    provdesk(
        binary,
        desk,
        &["device", "import", csv_path.to_str().unwrap()],
    );
    provdesk(binary, desk, &["build"]);
    let manifest: Manifest =
        serde_json::from_slice(&std::fs::read(desk.join("build/manifest.json")).unwrap()).unwrap();
    let names: Vec<String> = (0..FILES)
        .map(|n| format!("cfg000b82{n:06x}.xml"))
        .collect();
    for name in &names {
        assert!(manifest.entries.contains_key(name), "{name} not built");
    }
    (manifest, names)
}

/// `provdesk serve` on its desk, HTTP on a free loopback port, HTTPS and TFTP off.
struct Binary {
    addr: SocketAddr,
    child: Child,
    desk: PathBuf,
    events: PathBuf,
}

impl Binary {
    fn start(binary: &Path, desk: &Path, events: &Path) -> Binary {
        let log = std::fs::File::create(events).unwrap();
        let mut child = Command::new(binary)
            .arg("--desk")
            .arg(desk)
            .args([
                "serve",
                "--http",
                "127.0.0.1:0",
                "--https",
                "off",
                "--tftp",
                "off",
            ])
            .args(["--log-format", "json"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        // Bounded wait for the `listening` event with the port it got.
        for _ in 0..500 {
            let text = std::fs::read_to_string(events).unwrap_or_default();
            let url = text
                .lines()
                .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
                .find(|event| event["event"] == "listening")
                .and_then(|event| event["url"].as_str().map(str::to_string));
            if let Some(url) = url {
                let addr = url
                    .trim_start_matches("http://")
                    .trim_end_matches('/')
                    .parse()
                    .unwrap_or_else(|e| panic!("listening URL {url}: {e}"));
                return Binary {
                    addr,
                    child,
                    desk: desk.to_path_buf(),
                    events: events.to_path_buf(),
                };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "provdesk serve did not report listening; see {}",
            events.display()
        );
    }

    /// Fetch-log rows in its SQLite database so far.
    fn logged_rows(&self) -> u64 {
        let count = Command::new("sqlite3")
            .arg(self.desk.join("provdesk.db"))
            .arg("SELECT count(*) FROM fetch_log")
            .output()
            .expect("sqlite3 (apt install sqlite3) counts the fetch log");
        String::from_utf8_lossy(&count.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("sqlite3: {}", String::from_utf8_lossy(&count.stderr)))
    }

    /// Waits (bounded) until `rows` fetches are in the fetch log. The recorder commits up to
    /// a second after a request; without this wait that work would be missing from its CPU
    /// figure and would land in the next server's round instead.
    fn wait_logged(&self, rows: u64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.logged_rows() < rows {
            assert!(
                Instant::now() < deadline,
                "provdesk serve logged {} of {rows} fetches after 10 s",
                self.logged_rows()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops it with SIGINT (as Ctrl-C) and returns (fetch-log rows, JSON fetch lines).
    fn stop(mut self) -> (u64, u64) {
        assert!(
            stop_child(&mut self.child, "-INT", Duration::from_secs(20)),
            "provdesk serve did not stop within 20 s of SIGINT"
        );
        let rows = self.logged_rows();
        let lines = std::fs::read_to_string(&self.events)
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains("\"event\":\"fetch\""))
            .count() as u64;
        (rows, lines)
    }
}

/// Writes the configs (random `<Pnnnn>value</Pnnnn>` XML, as the builder makes) and the
/// manifest; returns the request names.
fn write_build(root: &Path) -> (Manifest, Vec<String>) {
    let build = root.join("build");
    std::fs::create_dir_all(&build).unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        // xorshift64: reproducible data without a dependency.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut manifest = Manifest {
        build: 1,
        ..Manifest::default()
    };
    let mut names = Vec::with_capacity(FILES);
    for n in 0..FILES {
        let name = format!("cfg000b82{n:06x}.xml");
        let mut xml = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<gs_provision version=\"1\">\n<config version=\"1\">\n",
        );
        while xml.len() < FILE_SIZE - 40 {
            let p = next() % 9000 + 1;
            let value = next();
            xml.push_str(&format!("<P{p}>{value:x}</P{p}>\n"));
        }
        xml.push_str("</config>\n</gs_provision>\n");
        let file = format!("build/{name}");
        std::fs::write(root.join(&file), &xml).unwrap();
        manifest.entries.insert(
            name.clone(),
            ManifestEntry {
                file,
                hash: format!("{:016x}{:016x}", next(), next()),
                input: String::new(),
                version: 1,
                kind: ArtifactKind::DeviceXml,
                mac: format!("000b82{n:06x}").parse().ok(),
                model: None,
                encrypted: false,
                size: xml.len() as u64,
            },
        );
        names.push(name);
    }
    std::fs::write(
        build.join("manifest.json"),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    (manifest, names)
}

/// How our server's runtime is laid out; the caller of `http::run` chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// One multi-thread runtime with this many workers and one listener (the app's shape).
    Multi(usize),
    /// This many threads, each a current-thread runtime with its own SO_REUSEPORT listener
    /// on the same port and its own `http::run` (nginx's shape: one accept queue per worker).
    PerCore(usize),
}

impl Layout {
    fn parse(text: &str) -> Layout {
        match text.split_once(':') {
            Some(("multi", n)) => Layout::Multi(n.parse().expect("multi:N")),
            Some(("percore", n)) => Layout::PerCore(n.parse().expect("percore:N")),
            _ => panic!("--layout multi:N or percore:N"),
        }
    }
}

/// Our server, with a fetch-log writer thread (JSON lines to a file, as the recorder will)
/// and a UI-like subscriber, both counting what they got.
struct Ours {
    addr: SocketAddr,
    shutdown: CancellationToken,
    logged: Arc<AtomicU64>,
    seen: Arc<AtomicU64>,
    runtime: Option<tokio::runtime::Runtime>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

fn reuseport_listener(addr: SocketAddr) -> tokio::net::TcpListener {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket.set_reuseport(true).unwrap();
    socket.bind(addr).unwrap();
    socket.listen(http::LISTEN_BACKLOG).unwrap()
}

impl Ours {
    fn start(root: &Path, manifest: Manifest, layout: Layout, log: LogMode) -> Ours {
        let snapshot = Snapshot::load(root, manifest, CredentialTable::default(), None).unwrap();
        let store = Arc::new(ArtifactStore::new(snapshot));
        let (bus, mut recorder) = match log {
            LogMode::None => {
                // A recorder nobody drains would grow without bound; keep a closed one.
                let (_, rx) = tokio::sync::mpsc::unbounded_channel();
                (EventBus::new(4096), rx)
            }
            _ => EventBus::new(4096).with_recorder(),
        };
        let logged = Arc::new(AtomicU64::new(0));
        let seen = Arc::new(AtomicU64::new(0));
        let log_path = root.join("fetch.log");
        let mut threads = Vec::new();
        let writer = {
            let logged = Arc::clone(&logged);
            std::thread::Builder::new()
                .name("fetch-log".into())
                .spawn(move || {
                    let file = std::fs::File::create(log_path).unwrap();
                    let mut out = std::io::BufWriter::with_capacity(256 * 1024, file);
                    let mut write = |event: &Event| {
                        if let Event::Fetch(_) = event {
                            serde_json::to_writer(&mut out, event).unwrap();
                            out.write_all(b"\n").unwrap();
                            logged.fetch_add(1, Ordering::Relaxed);
                        }
                    };
                    match log {
                        LogMode::Wake => {
                            while let Some(event) = recorder.blocking_recv() {
                                write(&event);
                            }
                        }
                        LogMode::Batch | LogMode::None => loop {
                            let mut closed = false;
                            loop {
                                match recorder.try_recv() {
                                    Ok(event) => write(&event),
                                    Err(tokio::sync::mpsc::error::TryRecvError::Empty) => break,
                                    Err(_) => {
                                        closed = true;
                                        break;
                                    }
                                }
                            }
                            if closed {
                                break;
                            }
                            std::thread::sleep(Duration::from_millis(10));
                        },
                    }
                    out.flush().unwrap();
                })
                .unwrap()
        };
        threads.push(writer);
        let shutdown = CancellationToken::new();
        // The subscriber and (for Multi) the server live on this runtime.
        let workers = match layout {
            Layout::Multi(n) => n,
            Layout::PerCore(_) => 1,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("provdesk-http")
            .enable_all()
            .build()
            .unwrap();
        let mut subscriber = bus.subscribe();
        let seen_by_ui = Arc::clone(&seen);
        let count = move |event: &Event| {
            if let Event::Fetch(_) = event {
                seen_by_ui.fetch_add(1, Ordering::Relaxed);
            }
        };
        use tokio::sync::broadcast::error::{RecvError, TryRecvError};
        match log {
            LogMode::Wake => {
                runtime.spawn(async move {
                    loop {
                        match subscriber.recv().await {
                            Ok(event) => count(&event),
                            Err(RecvError::Lagged(_)) => {}
                            Err(RecvError::Closed) => break,
                        }
                    }
                });
            }
            LogMode::Batch => {
                runtime.spawn(async move {
                    let mut tick = tokio::time::interval(Duration::from_millis(10));
                    loop {
                        tick.tick().await;
                        loop {
                            match subscriber.try_recv() {
                                Ok(event) => count(&event),
                                Err(TryRecvError::Lagged(_)) => {}
                                Err(TryRecvError::Empty) => break,
                                Err(TryRecvError::Closed) => return,
                            }
                        }
                    }
                });
            }
            LogMode::None => drop(subscriber),
        }
        let addr = match layout {
            Layout::Multi(_) => runtime.block_on(async {
                let listener = http::bind("127.0.0.1:0".parse().unwrap()).unwrap();
                let addr = listener.local_addr().unwrap();
                let config = bench_config();
                tokio::spawn(http::run(listener, config, store, bus, shutdown.clone()));
                addr
            }),
            Layout::PerCore(n) => {
                let first = runtime.block_on(async {
                    reuseport_listener("127.0.0.1:0".parse().unwrap())
                        .local_addr()
                        .unwrap()
                });
                for _ in 0..n {
                    let (store, bus, shutdown) =
                        (Arc::clone(&store), bus.clone(), shutdown.clone());
                    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
                    threads.push(
                        std::thread::Builder::new()
                            .name("provdesk-http".into())
                            .spawn(move || {
                                let rt = tokio::runtime::Builder::new_current_thread()
                                    .enable_all()
                                    .build()
                                    .unwrap();
                                rt.block_on(async {
                                    let listener = reuseport_listener(first);
                                    ready_tx.send(()).unwrap();
                                    let config = bench_config();
                                    http::run(listener, config, store, bus, shutdown)
                                        .await
                                        .unwrap();
                                });
                            })
                            .unwrap(),
                    );
                    ready_rx.recv().unwrap();
                }
                first
            }
        };
        Ours {
            addr,
            shutdown,
            logged,
            seen,
            runtime: Some(runtime),
            threads,
        }
    }

    fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
        // Server threads end with their runs; the writer ends when the last bus is gone.
        for thread in self.threads.drain(..).rev() {
            thread.join().unwrap();
        }
    }
}

struct Nginx {
    addr: SocketAddr,
    child: Child,
}

impl Nginx {
    fn start(binary: &Path, dir: &Path, build: &Path, access_log: bool, deferred: bool) -> Nginx {
        std::fs::create_dir_all(dir).unwrap();
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let d = dir.display();
        let log = if access_log {
            format!("access_log {d}/access.log;")
        } else {
            "access_log off;".to_string()
        };
        // `deferred` is TCP_DEFER_ACCEPT, which `provdesk serve` sets on Linux: with it, both
        // get the same help from the kernel.
        let deferred = if deferred { " deferred" } else { "" };
        // As root, the workers would otherwise switch to `nobody` and lose the temp dir.
        let user = if is_root() { "user root;" } else { "" };
        let conf = format!(
            "{user}
daemon off;
worker_processes 2;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 4096; }}
http {{
    {log}
    sendfile on;
    tcp_nopush on;
    open_file_cache max=2000;
    keepalive_requests 100000;
    types {{ application/xml xml; }}
    default_type application/octet-stream;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port}{deferred};
        root {build};
    }}
}}
",
            build = build.display()
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let mut child = Command::new(binary)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        // Bounded wait for the port to open.
        for _ in 0..250 {
            if std::net::TcpStream::connect(addr).is_ok() {
                return Nginx { addr, child };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("nginx did not open {addr}; see {d}/error.log");
    }

    fn stop(mut self) {
        stop_child(&mut self.child, "-QUIT", Duration::from_secs(5));
    }
}

/// Sends `signal` and waits up to `grace` for the child to exit, then kills it; whether it
/// exited on the signal.
fn stop_child(child: &mut Child, signal: &str, grace: Duration) -> bool {
    let _ = Command::new("kill")
        .arg(signal)
        .arg(child.id().to_string())
        .status();
    let started = Instant::now();
    while started.elapsed() < grace {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

/// utime + stime in clock ticks of one /proc stat file (fields 14 and 15, counted after
/// the parenthesised command name, which may contain spaces).
fn stat_ticks(path: &Path) -> u64 {
    let Ok(text) = std::fs::read_to_string(path) else {
        return 0;
    };
    let Some((_, rest)) = text.rsplit_once(')') else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // `rest` starts at field 3 (state), so utime (14) and stime (15) are at 11 and 12.
    num(11) + num(12)
}

/// CPU ticks used so far by our server's threads (HTTP workers and the fetch-log writer).
fn ours_cpu_ticks() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm")).is_ok_and(|comm| {
                comm.starts_with("provdesk-http") || comm.starts_with("fetch-log")
            })
        })
        .map(|task| stat_ticks(&task.path().join("stat")))
        .sum()
}

/// CPU ticks used so far by a process (all its threads) and its child processes (nginx's
/// workers).
fn process_cpu_ticks(master: u32) -> u64 {
    let children = std::fs::read_to_string(format!("/proc/{master}/task/{master}/children"))
        .unwrap_or_default();
    let mut total = stat_ticks(Path::new(&format!("/proc/{master}/stat")));
    for child in children.split_whitespace() {
        total += stat_ticks(Path::new(&format!("/proc/{child}/stat")));
    }
    total
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

#[derive(Debug, Clone, Copy)]
struct RunResult {
    /// Server CPU (user + system) per successful request.
    cpu_us: f64,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    ok: usize,
    errors: usize,
}

/// `total` requests (or until `limit` passes) from `concurrency` workers, each on a new
/// connection with `Connection: close`; latency runs from connect to the last byte.
fn load(
    runtime: &tokio::runtime::Runtime,
    addr: SocketAddr,
    names: &Arc<Vec<String>>,
    concurrency: usize,
    total: usize,
    limit: Duration,
) -> RunResult {
    runtime.block_on(async {
        let next = Arc::new(AtomicUsize::new(0));
        let errors = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let deadline = started + limit;
        let mut workers = Vec::with_capacity(concurrency);
        for _ in 0..concurrency {
            let next = Arc::clone(&next);
            let errors = Arc::clone(&errors);
            let names = Arc::clone(names);
            workers.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= total || Instant::now() >= deadline {
                        break;
                    }
                    let name = &names[n % names.len()];
                    let request = format!(
                        "GET /{name} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: Grandstream Model HW GXP2170 SW 1.0.11.3 DevId 000b82{:06x}\r\nConnection: close\r\n\r\n",
                        n % names.len()
                    );
                    let t0 = Instant::now();
                    match fetch(addr, request.as_bytes(), &mut buf).await {
                        Some(true) => latencies.push(t0.elapsed().as_micros() as u32),
                        _ => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                latencies
            }));
        }
        let mut latencies = Vec::new();
        for worker in workers {
            latencies.extend(worker.await.unwrap());
        }
        let elapsed = started.elapsed().as_secs_f64();
        latencies.sort_unstable();
        let pct = |p: f64| {
            latencies
                .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
                .map_or(0.0, |&us| f64::from(us) / 1000.0)
        };
        RunResult {
            cpu_us: 0.0,
            rps: latencies.len() as f64 / elapsed,
            p50_ms: pct(0.50),
            p99_ms: pct(0.99),
            ok: latencies.len(),
            errors: errors.load(Ordering::Relaxed),
        }
    })
}

/// One fetch; `Some(true)` for a complete 200 response.
async fn fetch(addr: SocketAddr, request: &[u8], buf: &mut [u8]) -> Option<bool> {
    let io = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        stream.set_nodelay(true).ok()?;
        stream.write_all(request).await.ok()?;
        let mut total = 0usize;
        let last = buf.len() - 1;
        let mut head_ok = None;
        loop {
            let n = stream.read(&mut buf[total.min(last)..]).await.ok()?;
            if n == 0 {
                break;
            }
            if head_ok.is_none() && total + n >= 12 {
                head_ok = Some(buf.starts_with(b"HTTP/1.1 200"));
            }
            total = (total + n).min(last);
        }
        Some(head_ok == Some(true) && total > FILE_SIZE / 2)
    };
    tokio::time::timeout(Duration::from_secs(10), io)
        .await
        .ok()
        .flatten()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

fn main() {
    let options = options();
    let dir = tempfile::tempdir().unwrap();
    // nginx's workers read the files; the temp dir must be traversable.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let root = dir.path();
    // Where the served files live: a synthetic build, or the desk the binary made.
    let desk = root.join("desk");
    let (site, (manifest, names)) = match &options.provdesk {
        Some(binary) => (desk.clone(), write_desk(binary, &desk)),
        None => (root.to_path_buf(), write_build(root)),
    };
    let average_size = names
        .iter()
        .filter_map(|name| manifest.entries.get(name))
        .map(|entry| entry.size)
        .sum::<u64>()
        / names.len().max(1) as u64;
    let names = Arc::new(names);
    let ours = Ours::start(&site, manifest, options.layout, options.log);
    eprintln!(
        "provdesk layout: {:?}, log: {:?}",
        options.layout, options.log
    );
    let nginx = |dir: &str, access_log: bool, deferred: bool| {
        Nginx::start(
            &options.nginx,
            &root.join(dir),
            &site.join("build"),
            access_log,
            deferred,
        )
    };
    let nginx_log = nginx("nginx-log", true, true);
    let nginx_plain = nginx("nginx-plain", true, false);
    let nginx_nolog = nginx("nginx-nolog", false, true);
    let binary = options
        .provdesk
        .as_ref()
        .map(|binary| Binary::start(binary, &desk, &root.join("events.jsonl")));
    let ours_label = match options.log {
        LogMode::Batch => "provdesk (fetch log on)",
        LogMode::Wake => "provdesk (log, per-event)",
        LogMode::None => "provdesk (no consumers)",
    };
    // The first server is the one the ratios are for: `provdesk serve` when it is measured.
    let mut servers: Vec<(&str, SocketAddr, Kind)> = vec![
        (ours_label, ours.addr, Kind::InProcess),
        (
            "nginx (access_log on, deferred)",
            nginx_log.addr,
            Kind::Process(nginx_log.child.id()),
        ),
        (
            "nginx (access_log on)",
            nginx_plain.addr,
            Kind::Process(nginx_plain.child.id()),
        ),
        (
            "nginx (access_log off, deferred)",
            nginx_nolog.addr,
            Kind::Process(nginx_nolog.child.id()),
        ),
    ];
    if let Some(binary) = &binary {
        servers.insert(
            0,
            (
                "provdesk serve (binary)",
                binary.addr,
                Kind::Process(binary.child.id()),
            ),
        );
    }
    let in_process = servers
        .iter()
        .position(|(_, _, kind)| *kind == Kind::InProcess)
        .unwrap_or(0);
    let cpu_ticks = |s: usize| match servers[s].2 {
        Kind::InProcess => ours_cpu_ticks(),
        Kind::Process(pid) => process_cpu_ticks(pid),
    };
    let mut binary_requests = 0u64;
    // USER_HZ, which Linux fixes at 100 for /proc on every common architecture.
    let ticks_per_second = 100.0;
    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("load")
        .enable_all()
        .build()
        .unwrap();
    let limit = Duration::from_secs(options.seconds);
    let mut ours_requests = 0u64;
    for (s, (label, addr, _)) in servers.iter().enumerate() {
        let warm = load(&client, *addr, &names, 50, 2_000, limit);
        assert!(
            warm.errors == 0,
            "{label}: {} errors in warm-up",
            warm.errors
        );
        if s == in_process {
            ours_requests += (warm.ok + warm.errors) as u64;
        } else if let Some(binary) = binary.as_ref().filter(|_| s == 0) {
            binary_requests += (warm.ok + warm.errors) as u64;
            binary.wait_logged(binary_requests);
        }
    }
    // results[concurrency][server] = one result per round
    let mut results = vec![vec![Vec::new(); servers.len()]; options.concurrency.len()];
    for round in 0..options.rounds {
        for (ci, &c) in options.concurrency.iter().enumerate() {
            for k in 0..servers.len() {
                let s = (k + round) % servers.len();
                if options.only.as_ref().is_some_and(|only| !only.contains(&s)) {
                    continue;
                }
                let (label, addr, _) = servers[s];
                let before = cpu_ticks(s);
                let mut r = load(&client, addr, &names, c, options.requests, limit);
                if s == in_process && options.log != LogMode::None {
                    // Count the log writer's work for these requests too (bounded wait).
                    for _ in 0..100 {
                        if ours.logged.load(Ordering::Relaxed) >= ours_requests + r.ok as u64 {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
                if let Some(binary) = binary.as_ref().filter(|_| s == 0) {
                    binary.wait_logged(binary_requests + (r.ok + r.errors) as u64);
                }
                let ticks = cpu_ticks(s).saturating_sub(before);
                r.cpu_us = ticks as f64 / ticks_per_second * 1e6 / r.ok.max(1) as f64;
                eprintln!(
                    "round {} c={c:<3} {label:<24} {:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  cpu {:>5.1} us/req  ok {} errors {}",
                    round + 1,
                    r.rps,
                    r.p50_ms,
                    r.p99_ms,
                    r.cpu_us,
                    r.ok,
                    r.errors
                );
                if s == in_process {
                    ours_requests += (r.ok + r.errors) as u64;
                } else if binary.is_some() && s == 0 {
                    binary_requests += (r.ok + r.errors) as u64;
                }
                results[ci][s].push(r);
            }
        }
    }
    println!();
    println!(
        "Boot storm: {FILES} distinct configs of {:.1} KB on average, fresh connection per request, {} rounds interleaved, medians (min-max)",
        average_size as f64 / 1024.0,
        options.rounds
    );
    println!(
        "| c | server | req/s | p50 ms | p99 ms | CPU us/req | ours / this (req/s, per-round median) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (ci, &c) in options.concurrency.iter().enumerate() {
        for (s, (label, _, _)) in servers.iter().enumerate() {
            let runs = &results[ci][s];
            if runs.is_empty() {
                continue;
            }
            let mut rps: Vec<f64> = runs.iter().map(|r| r.rps).collect();
            let mut p50: Vec<f64> = runs.iter().map(|r| r.p50_ms).collect();
            let mut p99: Vec<f64> = runs.iter().map(|r| r.p99_ms).collect();
            let mut cpu: Vec<f64> = runs.iter().map(|r| r.cpu_us).collect();
            let (lo, hi) = (
                rps.iter().copied().fold(f64::MAX, f64::min),
                rps.iter().copied().fold(0.0, f64::max),
            );
            let ratio = if s == 0 || results[ci][0].is_empty() {
                "-".to_string()
            } else {
                let mut ratios: Vec<f64> = results[ci][0]
                    .iter()
                    .zip(runs)
                    .map(|(o, n)| o.rps / n.rps)
                    .collect();
                let mut p99_ratios: Vec<f64> = results[ci][0]
                    .iter()
                    .zip(runs)
                    .map(|(o, n)| o.p99_ms / n.p99_ms)
                    .collect();
                let mut cpu_ratios: Vec<f64> = results[ci][0]
                    .iter()
                    .zip(runs)
                    .map(|(o, n)| o.cpu_us / n.cpu_us)
                    .collect();
                format!(
                    "{:.2}x (p99 {:.2}x, CPU {:.2}x)",
                    median(&mut ratios),
                    median(&mut p99_ratios),
                    median(&mut cpu_ratios)
                )
            };
            println!(
                "| {c} | {label} | {:.0} ({lo:.0}-{hi:.0}) | {:.2} | {:.2} | {:.1} | {ratio} |",
                median(&mut rps),
                median(&mut p50),
                median(&mut p99),
                median(&mut cpu),
            );
        }
    }
    let errors: usize = results.iter().flatten().flatten().map(|r| r.errors).sum();
    // Let the log writer catch up (bounded), then check every fetch was recorded.
    let expected = ours_requests;
    for _ in 0..500 {
        if options.log == LogMode::None || ours.logged.load(Ordering::Relaxed) >= expected {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    println!();
    println!(
        "errors: {errors}; provdesk fetch events: recorder wrote {} JSON lines (expected {expected}), UI subscriber saw {}",
        ours.logged.load(Ordering::Relaxed),
        ours.seen.load(Ordering::Relaxed)
    );
    assert!(
        options.log == LogMode::None || ours.logged.load(Ordering::Relaxed) == expected,
        "the in-process recorder lost fetches"
    );
    if let Some(binary) = binary {
        let (rows, lines) = binary.stop();
        println!(
            "provdesk serve (binary): {rows} fetch-log rows in SQLite and {lines} JSON fetch lines (expected {binary_requests} each)"
        );
        assert!(
            rows == binary_requests && lines == binary_requests,
            "provdesk serve lost fetches: {rows} rows, {lines} lines, {binary_requests} requests"
        );
    }
    ours.stop();
    nginx_log.stop();
    nginx_plain.stop();
    nginx_nolog.stop();
}

/// How a server's CPU time is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Threads of this process, told apart by name.
    InProcess,
    /// A process and its children.
    Process(u32),
}
