//! Scenario: what the real `provdesk serve` publishes when its inputs are not whole. A
//! profile saved slowly in place (truncated, then written up to 2 s later) while curl fetches
//! in a loop: every body must be encrypted (checked with `openssl enc -d`) and whole. And a
//! start after a stopped build and with broken profiles: only files that match the manifest
//! are served, with their credentials (curl `--digest`), and the temp files are gone.
//!
//! Every wait is on a log line, a fetched body or a process exit, with a timeout; the pauses
//! between truncating and writing are the scenario itself. curl and openssl must be
//! installed (`scripts/test` installs them); a missing one fails the test.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use provdesk_core::format::crypt;

mod support;
use support::{Desk, Server, WAIT, text};

const MAC: &str = "000b82123456";
const SIP_SECRET: &str = "sip-secret-4711";
const XML_PASSWORD: &str = "xml-pw-8642";

fn global(round: u32) -> String {
    format!(
        "[params]\nP30 = \"round-{round}.example.org\"\nP1359 = \"{XML_PASSWORD}\"\nP64 = \"CET-1CEST-2,M3.5.0/02:00:00,M10.5.0/03:00:00\"\n"
    )
}

/// `curl -o FILE -w %{http_code} URL` with extra arguments; the status and the body.
fn curl(url: &str, extra: &[&str], out: &Path) -> (String, Vec<u8>) {
    let _ = std::fs::remove_file(out);
    let output = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "10"])
        .args(extra)
        .args(["--write-out", "%{http_code}", "--output"])
        .arg(out)
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .expect("curl must be installed; scripts/test installs it");
    let status = String::from_utf8_lossy(&output.stdout).trim().to_string();
    (status, std::fs::read(out).unwrap_or_default())
}

/// `openssl enc -d` with the parameters the phones use (AES-256-CBC, MD5 key derivation).
fn openssl_decrypt(body: &[u8], dir: &Path) -> Result<String, String> {
    let file = dir.join("body.enc");
    std::fs::write(&file, body).expect("write body");
    let output = support::openssl_decrypt(&file, XML_PASSWORD);
    if output.status.success() {
        String::from_utf8(output.stdout).map_err(|e| e.to_string())
    } else {
        Err(text(&output))
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn a_profile_saved_slowly_in_place_is_never_served_in_clear_or_half_written() {
    let desk = Desk::init();
    let global_path = desk.write("profiles/global.toml", &global(0));
    desk.write(
        "profiles/office.toml",
        "extends = \"global\"\n[params]\nP47 = \"pbx.example.com\"\nP35 = \"{{ ext }}\"\nP34 = \"{{ sip_secret }}\"\n",
    );
    desk.add_office_phone(MAC, SIP_SECRET, &[]);
    let server = Server::start_http(&desk);
    let url = format!("{}/cfg{MAC}.xml", server.url("http"));
    let work = tempfile::tempdir().expect("work dir");

    // The phone: fetches in a loop; reports each new round it is served and every problem.
    let stop = Arc::new(AtomicBool::new(false));
    let (rounds_tx, rounds) = mpsc::channel::<u32>();
    let client = {
        let (stop, url, out) = (Arc::clone(&stop), url.clone(), work.path().join("fetched"));
        std::thread::spawn(move || {
            let mut fetches = 0u32;
            let mut problems = Vec::new();
            let mut bodies = BTreeSet::new();
            let mut last_round = None;
            let started = Instant::now();
            while !stop.load(Ordering::Relaxed) && fetches < 20_000 && started.elapsed() < 4 * WAIT
            {
                let (status, body) = curl(&url, &[], &out);
                fetches += 1;
                if status != "200" {
                    problems.push(format!("fetch {fetches}: status {status}"));
                    continue;
                }
                if !body.starts_with(b"Salted__") || contains(&body, SIP_SECRET) {
                    problems.push(format!(
                        "fetch {fetches}: served in clear: {}",
                        String::from_utf8_lossy(&body)
                    ));
                    continue;
                }
                // The quick check here; openssl checks every distinct body below.
                let round = crypt::decrypt(&body, XML_PASSWORD)
                    .ok()
                    .and_then(|plain| String::from_utf8(plain).ok())
                    .and_then(|text| {
                        let round = text.split("round-").nth(1)?.split('.').next()?;
                        round.parse::<u32>().ok()
                    });
                match round {
                    Some(round) if last_round != Some(round) => {
                        last_round = Some(round);
                        let _ = rounds_tx.send(round);
                    }
                    Some(_) => {}
                    None => problems.push(format!("fetch {fetches}: no round in the body")),
                }
                bodies.insert(body);
            }
            (fetches, problems, bodies)
        })
    };
    let wait_for_round = |round: u32| {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rounds.recv_timeout(left) {
                Ok(seen) if seen == round => return,
                Ok(_) => continue,
                Err(e) => panic!("round {round} was not served: {e}"),
            }
        }
    };
    wait_for_round(0);

    // The editor: truncate in place, pause, write the whole new text.
    let pauses_ms = [50u64, 200, 500, 1000, 2000];
    for (index, pause) in pauses_ms.iter().enumerate() {
        let round = index as u32 + 1;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&global_path)
            .expect("truncate global.toml");
        std::thread::sleep(Duration::from_millis(*pause));
        file.write_all(global(round).as_bytes())
            .expect("write global.toml");
        drop(file);
        wait_for_round(round);
    }
    stop.store(true, Ordering::Relaxed);
    let (fetches, problems, bodies) = client.join().expect("client thread");
    assert!(
        problems.is_empty(),
        "{} of {fetches} fetches went wrong; the first: {:#?}",
        problems.len(),
        &problems[..problems.len().min(3)]
    );
    assert!(fetches >= 20, "only {fetches} fetches");
    for body in &bodies {
        let plain = openssl_decrypt(body, work.path())
            .unwrap_or_else(|e| panic!("openssl cannot decrypt a served body: {e}"));
        assert!(plain.contains(SIP_SECRET), "{plain}");
        assert!(plain.contains("round-"), "{plain}");
        assert!(plain.trim_end().ends_with("</gs_provision>"), "{plain}");
    }
    let (status, events) = server.terminate();
    assert!(status.success(), "{status}");
    assert!(
        events.iter().any(|e| e["event"] == "warning"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("being saved") && m.contains("global.toml"))),
        "the build should have said why it waited: {events:#?}"
    );
}

#[test]
fn start_up_after_a_stopped_build_serves_only_published_files_with_their_credentials() {
    let desk = Desk::init();
    let settings = desk.root.join("provdesk.toml");
    let text = std::fs::read_to_string(&settings).expect("provdesk.toml");
    let digest = text.replacen("mode = \"none\"", "mode = \"digest\"", 1);
    assert_ne!(
        text, digest,
        "the sample provdesk.toml has [auth] mode = \"none\""
    );
    std::fs::write(&settings, digest).expect("write provdesk.toml");
    let office = desk.write(
        "profiles/office.toml",
        "extends = \"global\"\n[params]\nP35 = \"{{ ext }}\"\nP34 = \"{{ sip_secret }}\"\nP1360 = \"{{ http_user }}\"\nP1361 = \"{{ http_pw }}\"\n",
    );
    desk.add_office_phone(
        MAC,
        SIP_SECRET,
        &[
            "--var",
            "http_user=phone201",
            "--var",
            "http_pw=http-pw-201",
        ],
    );
    desk.ok(&["build"]);
    let build = desk.root.join("build");
    let binary = std::fs::read(build.join(format!("cfg{MAC}"))).expect("built cfg<mac>");
    // What a build stopped with kill -9 leaves: a file that is not the manifest's, and a
    // temp file.
    std::fs::write(build.join(format!("cfg{MAC}.xml")), "<tampered/>").expect("tamper");
    std::fs::create_dir_all(build.join(".tmp")).expect(".tmp");
    std::fs::write(build.join(".tmp/0123456789abcdef"), "half a file").expect("stray");
    // And profiles the start-up build cannot use.
    std::fs::write(&office, "[params\nP35 = \"{{ ext }}\"\n").expect("break office.toml");

    let mut server = Server::start_http(&desk);
    // The start-up build is reported before the servers listen, so it may be read already.
    let first = match server.seen.iter().find(|e| e["event"] == "build") {
        Some(found) => found.clone(),
        None => server.wait_for("the start-up build", |e| e["event"] == "build"),
    };
    assert_eq!(first["published"], false, "{first}");
    let leftover: Vec<_> = std::fs::read_dir(build.join(".tmp"))
        .expect("read .tmp")
        .collect();
    assert!(leftover.is_empty(), "{leftover:?}");
    assert!(
        server.seen.iter().any(|e| e["event"] == "warning"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains(&format!("build/cfg{MAC}.xml")))),
        "the tampered file should be reported: {:#?}",
        server.seen
    );

    let work = tempfile::tempdir().expect("work dir");
    let out = work.path().join("fetched");
    let base = server.url("http").to_string();
    let auth = ["--digest", "--user", "phone201:http-pw-201"];
    let (status, body) = curl(&format!("{base}/cfg{MAC}"), &auth, &out);
    assert_eq!(status, "200", "{}", String::from_utf8_lossy(&body));
    assert_eq!(body, binary, "the published binary file");
    let (status, body) = curl(&format!("{base}/cfg{MAC}.xml"), &auth, &out);
    assert_eq!(status, "404", "{}", String::from_utf8_lossy(&body));
    assert!(!contains(&body, "tampered"));
    // Wrong credentials are still refused.
    let wrong = ["--digest", "--user", "phone201:guess"];
    let (status, _) = curl(&format!("{base}/cfg{MAC}"), &wrong, &out);
    assert_eq!(status, "401");
    let (status, _) = server.terminate();
    assert!(status.success(), "{status}");
}
