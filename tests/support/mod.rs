//! What every scenario needs: a desk in a temp folder driven through the real `provdesk`
//! binary, and a running `provdesk serve` whose JSON event lines the test reads.
//!
//! Each scenario file is its own test crate and uses part of this module, hence the
//! `dead_code` allowance.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod lan;

pub const PROVDESK: &str = env!("CARGO_BIN_EXE_provdesk");
/// Longest wait for anything a scenario expects (a line, an event, an exit).
pub const WAIT: Duration = Duration::from_secs(20);

/// `serve` arguments for TFTP and HTTP on loopback ports with HTTPS off, shared by the
/// scenarios that fetch over both.
pub const TFTP_AND_HTTP: &[&str] = &[
    "--tftp",
    "127.0.0.1:0",
    "--http",
    "127.0.0.1:0",
    "--https",
    "off",
];

/// A desk folder inside a temp dir that lives as long as this value.
pub struct Desk {
    dir: tempfile::TempDir,
    pub root: PathBuf,
}

impl Desk {
    /// A folder for a desk that does not exist yet (`provdesk init` or any command creates it).
    pub fn new() -> Desk {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("desk");
        Desk { dir, root }
    }

    /// A desk made by `provdesk init`, with the sample profiles.
    pub fn init() -> Desk {
        let desk = Desk::new();
        desk.ok(&["init"]);
        desk
    }

    /// The temp dir around the desk, for files that must stay outside it.
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(PROVDESK);
        command.arg("--desk").arg(&self.root).args(args);
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args)
            .stdin(Stdio::null())
            .output()
            .expect("run provdesk")
    }

    /// Runs a command that must succeed; returns stdout and stderr.
    pub fn ok_with_stderr(&self, args: &[&str]) -> (String, String) {
        let out = self.run(args);
        let stdout = String::from_utf8(out.stdout).expect("utf-8 output");
        let stderr = String::from_utf8(out.stderr).expect("utf-8 output");
        assert!(
            out.status.success(),
            "provdesk {args:?} failed:\n{stdout}\n{stderr}"
        );
        (stdout, stderr)
    }

    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_with_stderr(args).0
    }

    /// Runs a command that must fail; returns its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "provdesk {args:?} should fail");
        String::from_utf8(out.stderr).expect("utf-8 output")
    }

    pub fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).expect("JSON output")
    }

    /// Writes a file outside the desk (an input the technician brings) and returns its path.
    pub fn input(&self, name: &str, content: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).expect("write input");
        path.to_string_lossy().into_owned()
    }

    /// `device add MAC --model MODEL --profile PROFILE EXTRA…`, which must succeed; so that each
    /// scenario adds its phones in one line and shows only what is particular to them.
    pub fn add_device(&self, mac: &str, model: &str, profile: &str, extra: &[&str]) -> String {
        let args = ["device", "add", mac, "--model", model, "--profile", profile];
        self.ok(&[&args[..], extra].concat())
    }

    /// A GXP2170 on the sample `office` profile with `ext=201` and the given `sip_secret`, the
    /// phone most scenarios need, plus `extra` arguments (`--var`, `--set`, …).
    pub fn add_office_phone(&self, mac: &str, sip_secret: &str, extra: &[&str]) -> String {
        let secret = format!("sip_secret={sip_secret}");
        let vars = ["--var", "ext=201", "--var", &secret];
        self.add_device(mac, "GXP2170", "office", &[&vars[..], extra].concat())
    }

    /// Replaces `from` by `to` in `provdesk.toml` and returns the text as it was, for the
    /// scenario to check that the sample had what it changed (several scenarios edit one
    /// setting of the sample this way).
    pub fn edit_settings(&self, from: &str, to: &str) -> String {
        let path = self.root.join("provdesk.toml");
        let text = std::fs::read_to_string(&path).expect("settings");
        std::fs::write(&path, text.replace(from, to)).expect("settings");
        text
    }

    /// Spawns `provdesk serve ARGS` with stdout piped, and the channel of its stdout lines: what
    /// a `Server` reads as JSON events and a scenario that reads the text log reads as text.
    pub fn serve_lines(&self, args: &[&str]) -> (Child, mpsc::Receiver<String>) {
        let mut serve = self.command(&["serve"]);
        serve.args(args);
        spawn_lines(serve)
    }

    /// `sqlite3 DB SQL` on the desk's inventory, which must succeed; its output, trimmed. The
    /// inventory as any SQLite tool sees it, for scenarios that check what was stored.
    pub fn sqlite(&self, sql: &str) -> String {
        let out = Command::new("sqlite3")
            .arg(self.root.join("provdesk.db"))
            .arg(sql)
            .output()
            .expect("sqlite3 must be installed; scripts/test installs it");
        assert!(out.status.success(), "sqlite3 {sql:?}: {}", text(&out));
        String::from_utf8(out.stdout)
            .expect("UTF-8")
            .trim()
            .to_string()
    }

    /// Writes a file under the desk, creating its folders.
    pub fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.root.join(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write");
        path
    }
}

/// A running `provdesk serve --log-format json`: every stdout line is one event.
pub struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Every event read so far, for failure messages and the final checks.
    pub seen: Vec<Value>,
    /// Scheme (`http`, `https`, `tftp`) → the URL the server printed, without a trailing `/`.
    urls: BTreeMap<String, String>,
}

impl Server {
    /// Starts serving `desk` with extra arguments (`--http 127.0.0.1:0`, `--tftp off`, …) and
    /// waits for one `listening` event per loopback address among them.
    pub fn start(desk: &Desk, args: &[&str]) -> Server {
        let (child, lines) = desk.serve_lines(&[&["--log-format", "json"], args].concat());
        let mut server = Server {
            child,
            lines,
            seen: Vec::new(),
            urls: BTreeMap::new(),
        };
        // The file servers' addresses; the syslog receiver announces itself apart.
        let expected = args
            .windows(2)
            .filter(|pair| matches!(pair[0], "--http" | "--https" | "--tftp"))
            .filter(|pair| pair[1].starts_with("127.") || pair[1].starts_with("[::1]"))
            .count();
        while server.urls.len() < expected {
            let listening = server.wait_for("the listening lines", |e| e["event"] == "listening");
            let url = listening["url"].as_str().expect("url");
            let scheme = url.split("://").next().expect("scheme").to_string();
            assert!(!url.ends_with(":0/") && !url.ends_with(":0"), "{url}");
            server
                .urls
                .insert(scheme, url.trim_end_matches('/').to_string());
        }
        server
    }

    /// HTTP alone on a loopback port (TFTP and HTTPS off): what the scenarios that fetch as
    /// phones over HTTP start.
    pub fn start_http(desk: &Desk) -> Server {
        Server::start(
            desk,
            &["--http", "127.0.0.1:0", "--tftp", "off", "--https", "off"],
        )
    }

    /// The URL the server printed for `scheme`, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self, scheme: &str) -> &str {
        self.urls
            .get(scheme)
            .unwrap_or_else(|| panic!("no {scheme} server was started: {:?}", self.urls))
    }

    /// The real port of the `scheme` server.
    pub fn port(&self, scheme: &str) -> u16 {
        let url = self.url(scheme);
        url.rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {url}"))
    }

    /// The next event matching `pick`; every event read is kept in `seen`.
    pub fn wait_for(&mut self, what: &str, pick: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("waiting for {what}: {e}; seen: {:#?}", self.seen));
            let event: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            self.seen.push(event.clone());
            if pick(&event) {
                return event;
            }
        }
    }

    pub fn wait_for_fetch(&mut self, name: &str) -> Value {
        self.wait_for(&format!("the fetch of {name}"), |e| {
            e["event"] == "fetch" && e["name"] == name
        })
    }

    /// SIGTERM; then the exit status and every event, once the process has closed its stdout.
    pub fn terminate(mut self) -> (ExitStatus, Vec<Value>) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self
                    .seen
                    .push(serde_json::from_str(&line).expect("JSON line")),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    panic!("provdesk serve did not stop after SIGTERM");
                }
            }
        }
        let status = self.child.wait().expect("wait");
        (status, std::mem::take(&mut self.seen))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Only reached when a test fails half-way: do not leave a server behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// stdout and stderr of a finished command, for failure messages and matching.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// tftp-hpa: `tftp -m binary HOST PORT -c get REMOTE LOCAL`, after removing LOCAL. It exits 0
/// even on a TFTP error, so the outcome is its message and the local file. One copy for every
/// scenario that fetches as a phone over TFTP; tftp-hpa cannot choose its source address.
pub fn tftp_get(host: &str, port: u16, remote: &str, local: &Path) -> Output {
    let _ = std::fs::remove_file(local);
    Command::new("tftp")
        .args(["-m", "binary", host, &port.to_string(), "-c", "get", remote])
        .arg(local)
        .stdin(Stdio::null())
        .output()
        .expect("tftp (tftp-hpa) must be installed; scripts/test installs it")
}

/// `openssl enc -d -aes-256-cbc -md md5 -pass pass:PW -in FILE`, as Grandstream's guide has it:
/// the independent check that a served or built XML decrypts the way the phones decrypt it.
pub fn openssl_decrypt(file: &Path, password: &str) -> Output {
    Command::new("openssl")
        .args(["enc", "-d", "-aes-256-cbc", "-md", "md5", "-pass"])
        .arg(format!("pass:{password}"))
        .arg("-in")
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .expect("openssl must be installed; scripts/test installs it")
}

/// Spawns `command` (a `provdesk serve`, wherever it runs) with stdout piped, and the channel
/// of its stdout lines; stderr goes to the test's.
pub fn spawn_lines(mut command: Command) -> (Child, mpsc::Receiver<String>) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start provdesk serve");
    let lines = lines_of(child.stdout.take().expect("stdout"));
    (child, lines)
}

/// Every line of a child's stream, on a channel, read by a thread of its own.
pub fn lines_of(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}
