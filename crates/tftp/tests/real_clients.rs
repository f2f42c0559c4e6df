//! Interoperability with the real clients phones' ecosystems use: tftp-hpa's `tftp`, `atftp`
//! and `curl tftp://`. Each download is compared byte for byte with what was served.
//!
//! A missing client fails the test with a message saying what to install; it never skips.

mod support;

use std::path::Path;
use std::process::{Output, Stdio};

use bytes::Bytes;
use provdesk_tftp::{Config, ErrorCode, TransferEvent};
use support::{STEP, TestServer, random_bytes, text};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// Sizes around the 512-byte block edge, a multiple of 1428, and more than 1 MiB.
const SIZES: [usize; 7] = [0, 511, 512, 513, 1428 * 50, 1024 * 1024 + 7, 512 * 2048];
/// 65536 blocks of 512 bytes and then some: the block number wraps from 65535 to 0.
const ROLLOVER_SIZE: usize = 65536 * 512 + 3000;

fn binary_files() -> Vec<(String, Bytes)> {
    SIZES
        .iter()
        .map(|&n| (format!("bin{n}"), random_bytes(n, n as u64 + 100)))
        .collect()
}

fn text_files() -> Vec<(String, Bytes)> {
    SIZES
        .iter()
        .map(|&n| (format!("txt{n}.cfg"), text(n, n as u64 + 200)))
        .collect()
}

/// Runs a client to completion, bounded in time; `stdin` is written and closed first.
async fn run_client(program: &str, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start `{program}` ({e}); install tftp-hpa, atftp and curl to run this test"
            )
        });
    let mut input = child.stdin.take().expect("piped stdin");
    input.write_all(stdin).await.expect("write stdin");
    drop(input);
    match tokio::time::timeout(STEP, child.wait_with_output()).await {
        Ok(output) => output.expect("wait for client"),
        Err(_) => panic!(
            "`{program} {}` did not finish within {STEP:?}",
            args.join(" ")
        ),
    }
}

fn transcript(output: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// tftp-hpa prints nothing on success, and its errors on stdout with exit status 0.
fn assert_quiet(output: &Output) {
    let quiet = output.stdout.is_empty() && output.stderr.is_empty();
    assert!(quiet, "{}", transcript(output));
}

fn assert_same_file(path: &Path, expected: &[u8], what: &str) {
    let got = std::fs::read(path).unwrap_or_else(|e| panic!("{what}: no output file ({e})"));
    assert_eq!(got.len(), expected.len(), "{what}: size");
    assert!(got == expected, "{what}: content differs");
}

/// Waits for the server's outcome of the transfer the client just ran.
async fn expect_completed(server: &mut TestServer, bytes: usize, what: &str) {
    match server.next_outcome().await {
        TransferEvent::Completed { bytes: b, .. } => assert_eq!(b, bytes as u64, "{what}"),
        other => panic!("{what}: expected a completion, got {other:?}"),
    }
}

async fn expect_rejected(server: &mut TestServer, code: ErrorCode, what: &str) {
    match server.next_outcome().await {
        TransferEvent::Rejected { code: c, .. } => assert_eq!(c, code, "{what}"),
        other => panic!("{what}: expected a rejection, got {other:?}"),
    }
}

fn out_path(dir: &tempfile::TempDir, name: &str) -> String {
    dir.path().join(name).to_string_lossy().into_owned()
}

/// tftp-hpa's client: `tftp -m MODE HOST PORT -c get REMOTE LOCAL`. It negotiates no options.
async fn tftp_hpa(server: &TestServer, mode: &str, command: &[&str]) -> Output {
    let port = server.addr.port().to_string();
    let mut args = vec!["-m", mode, "127.0.0.1", &port, "-c"];
    args.extend_from_slice(command);
    run_client("tftp", &args, b"").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tftp_hpa_downloads_in_octet_and_netascii() {
    let files: Vec<_> = binary_files().into_iter().chain(text_files()).collect();
    let mut server = TestServer::start(Config::default(), files.clone()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, content) in &files {
        let out = out_path(&dir, name);
        let output = tftp_hpa(&server, "octet", &["get", name, &out]).await;
        assert_same_file(Path::new(&out), content, &format!("tftp octet {name}"));
        assert_quiet(&output);
        expect_completed(&mut server, content.len(), name).await;
    }
    for (name, content) in text_files() {
        let out = out_path(&dir, &format!("ascii-{name}"));
        let output = tftp_hpa(&server, "netascii", &["get", &name, &out]).await;
        assert_same_file(Path::new(&out), &content, &format!("tftp netascii {name}"));
        assert_quiet(&output);
        let wire = provdesk_tftp::netascii::encode(&content).len();
        expect_completed(&mut server, wire, &name).await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tftp_hpa_sees_missing_files_and_refused_writes() {
    let mut server = TestServer::start(Config::default(), binary_files()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let out = out_path(&dir, "missing");
    let output = tftp_hpa(&server, "octet", &["get", "missing.cfg", &out]).await;
    // tftp-hpa exits 0 even on errors and prints them on stdout.
    let said = transcript(&output);
    assert!(said.contains("Error code 1: File not found"), "{said}");
    expect_rejected(&mut server, ErrorCode::FILE_NOT_FOUND, "missing").await;

    let local = dir.path().join("upload.bin");
    std::fs::write(&local, b"firmware?").expect("write upload");
    let local = local.to_string_lossy().into_owned();
    let output = tftp_hpa(&server, "octet", &["put", &local, "upload.bin"]).await;
    let said = transcript(&output);
    assert!(said.contains("Error code 2: read-only server"), "{said}");
    expect_rejected(&mut server, ErrorCode::ACCESS_VIOLATION, "put").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atftp_downloads_with_blksize_windowsize_and_tsize() {
    let files = binary_files();
    let mut server = TestServer::start(Config::default(), files.clone()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let port = server.addr.port().to_string();
    for (name, content) in &files {
        for options in [
            &[][..],
            &["--option", "blksize 1428", "--option", "tsize 0"][..],
            &[
                "--option",
                "blksize 1428",
                "--option",
                "windowsize 8",
                "--option",
                "tsize 0",
            ][..],
        ] {
            let out = out_path(&dir, name);
            let mut args = vec!["--get", "-r", name, "-l", &out, "--trace"];
            args.extend_from_slice(options);
            args.extend_from_slice(&["127.0.0.1", &port]);
            let output = run_client("atftp", &args, b"").await;
            let what = format!("atftp {name} {options:?}");
            assert!(output.status.success(), "{what}: {}", transcript(&output));
            assert_same_file(Path::new(&out), content, &what);
            if options.len() == 6 {
                // The trace shows the OACK: windowsize accepted, tsize the real size.
                let trace = transcript(&output);
                assert!(trace.contains("windowsize: 8"), "{what}: {trace}");
                if !content.is_empty() {
                    let tsize = format!("tsize: {}", content.len());
                    assert!(trace.contains(&tsize), "{what}: {trace}");
                }
            }
            expect_completed(&mut server, content.len(), &what).await;
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atftp_downloads_netascii_and_sees_errors() {
    let files = text_files();
    let mut server = TestServer::start(Config::default(), files.clone()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let port = server.addr.port().to_string();
    // atftp only offers netascii in its interactive mode, so drive it through stdin.
    for (name, content) in &files {
        let out = out_path(&dir, name);
        let script = format!("mode netascii\nget {name} {out}\nquit\n");
        let output = run_client("atftp", &["127.0.0.1", &port], script.as_bytes()).await;
        assert_same_file(Path::new(&out), content, &format!("atftp netascii {name}"));
        let wire = provdesk_tftp::netascii::encode(content).len();
        expect_completed(&mut server, wire, name).await;
        assert!(output.status.success(), "{}", transcript(&output));
    }

    let out = out_path(&dir, "missing");
    let args = ["--get", "-r", "missing.cfg", "-l", &out, "127.0.0.1", &port];
    let output = run_client("atftp", &args, b"").await;
    assert!(!output.status.success(), "{}", transcript(&output));
    assert!(
        transcript(&output).contains("File not found"),
        "{}",
        transcript(&output)
    );
    expect_rejected(&mut server, ErrorCode::FILE_NOT_FOUND, "missing").await;

    let local = dir.path().join("upload.cfg");
    std::fs::write(&local, b"P1=2\n").expect("write upload");
    let local = local.to_string_lossy().into_owned();
    let args = [
        "--put",
        "-l",
        &local,
        "-r",
        "upload.cfg",
        "127.0.0.1",
        &port,
    ];
    let output = run_client("atftp", &args, b"").await;
    assert!(!output.status.success(), "{}", transcript(&output));
    assert!(
        transcript(&output).contains("read-only server"),
        "{}",
        transcript(&output)
    );
    expect_rejected(&mut server, ErrorCode::ACCESS_VIOLATION, "put").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_downloads_and_maps_errors() {
    let files = binary_files();
    let mut server = TestServer::start(Config::default(), files.clone()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let port = server.addr.port();
    for (name, content) in &files {
        for blksize in ["512", "1428"] {
            let out = out_path(&dir, name);
            let url = format!("tftp://127.0.0.1:{port}/{name}");
            let args = ["-sS", "-o", &out, "--tftp-blksize", blksize, &url];
            let output = run_client("curl", &args, b"").await;
            let what = format!("curl {name} at {blksize}");
            assert!(output.status.success(), "{what}: {}", transcript(&output));
            assert_same_file(Path::new(&out), content, &what);
            expect_completed(&mut server, content.len(), &what).await;
        }
    }
    // curl's exit codes name the TFTP errors: 68 is "file not found", 69 "permission".
    let out = out_path(&dir, "missing");
    let url = format!("tftp://127.0.0.1:{port}/missing.cfg");
    let output = run_client("curl", &["-sS", "-o", &out, &url], b"").await;
    assert_eq!(output.status.code(), Some(68), "{}", transcript(&output));
    expect_rejected(&mut server, ErrorCode::FILE_NOT_FOUND, "missing").await;

    let local = dir.path().join("upload.bin");
    std::fs::write(&local, b"firmware?").expect("write upload");
    let local = local.to_string_lossy().into_owned();
    let url = format!("tftp://127.0.0.1:{port}/upload.bin");
    let output = run_client("curl", &["-sS", "-T", &local, &url], b"").await;
    assert_eq!(output.status.code(), Some(69), "{}", transcript(&output));
    expect_rejected(&mut server, ErrorCode::ACCESS_VIOLATION, "put").await;
    server.stop().await;
}

/// Past 32 MiB at 512-byte blocks the block number wraps; every client must get it whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_clients_survive_block_number_rollover() {
    let content = random_bytes(ROLLOVER_SIZE, 99);
    let files = vec![("big.bin".to_owned(), content.clone())];
    let mut server = TestServer::start(Config::default(), files).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let port = server.addr.port().to_string();

    let out = out_path(&dir, "hpa.bin");
    let output = tftp_hpa(&server, "octet", &["get", "big.bin", &out]).await;
    assert_same_file(Path::new(&out), &content, "tftp-hpa rollover");
    assert_quiet(&output);
    expect_completed(&mut server, ROLLOVER_SIZE, "tftp-hpa").await;

    let out = out_path(&dir, "atftp.bin");
    let args = [
        "--get",
        "-r",
        "big.bin",
        "-l",
        &out,
        "--option",
        "windowsize 8",
        "127.0.0.1",
        &port,
    ];
    let output = run_client("atftp", &args, b"").await;
    assert!(output.status.success(), "{}", transcript(&output));
    assert_same_file(Path::new(&out), &content, "atftp rollover");
    expect_completed(&mut server, ROLLOVER_SIZE, "atftp").await;

    let out = out_path(&dir, "curl.bin");
    let url = format!("tftp://127.0.0.1:{port}/big.bin");
    let output = run_client("curl", &["-sS", "-o", &out, &url], b"").await;
    assert!(output.status.success(), "{}", transcript(&output));
    assert_same_file(Path::new(&out), &content, "curl rollover");
    expect_completed(&mut server, ROLLOVER_SIZE, "curl").await;
    server.stop().await;
}
