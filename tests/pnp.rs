//! SIP plug-and-play on a bench LAN inside this machine: network namespaces for a switch, the
//! desk and a phone (198.51.100.0/24, nothing leaves them), the real `provdesk serve --pnp`
//! in the desk's, and in the phone's a real GRP2612W's multicast SUBSCRIBE sent from port
//! 5080, as the phone does. The phone gets `200 OK` and then a NOTIFY whose body is the
//! desk's provisioning URL, and shows up among the discovered devices.
//!
//! Needs root (CI runs as root): it creates namespaces, and fails rather than skips without.
//! The phone side is a plain UDP socket made in the phone's namespace. `sipsak -f FILE -l
//! 5080` was tried: it puts a Via of its own above the phone's (with 127.0.0.1 as its host)
//! and reports one reply and exits, so it cannot show that the 200 OK and then the NOTIFY
//! both reach the phone's port 5080, which is what a phone needs.

mod support;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::lan::BenchLan;
use support::{Desk, PROVDESK, WAIT, lines_of};

const DESK_IP: &str = "198.51.100.1";
const PHONE_IP: &str = "198.51.100.2";
const PHONE_MAC: &str = "c0:74:ad:11:22:33";

/// The request a GRP2612W multicasts (lan-recipe.md, from the public gs_tools project), with
/// the phone's address on this bench.
fn subscribe() -> String {
    format!(
        "SUBSCRIBE sip:MAC%3AC074AD112233@224.0.1.75 SIP/2.0\r\n\
Via: SIP/2.0/UDP {PHONE_IP}:5080;branch=z9hG4bK1611133778;rport\r\n\
From: <sip:MAC%3AC074AD112233@224.0.1.75>;tag=395400190\r\n\
To: <sip:MAC%3AC074AD112233@224.0.1.75>\r\n\
Call-ID: 490431573-5080-1@BJC.BGI.IG.DA\r\n\
CSeq: 20000 SUBSCRIBE\r\n\
Contact: <sip:{PHONE_IP}:5080>\r\n\
User-Agent: Grandstream GRP2612W 1.0.5.67\r\n\
Expires: 0\r\n\
Event: ua-profile;profile-type=\"device\";vendor=\"Grandstream\";model=\"GRP2612W\";version=\"1.0.5.67\"\r\n\
Accept: application/url\r\n\
Content-Length: 0\r\n\r\n"
    )
}

/// The bench LAN and the server of one run; dropping it (also on a failed assertion) kills
/// the server, then the LAN goes with everything in it.
struct Lab {
    lan: BenchLan,
    server: Option<Child>,
}

impl Lab {
    fn ns(&self, name: &str) -> String {
        self.lan.ns(name)
    }

    /// A switch with the desk (`d0`, 198.51.100.1) and the phone (`p0`, 198.51.100.2, a
    /// Grandstream MAC) on it, as in lan-recipe.md.
    fn build() -> Lab {
        let mut lan = BenchLan::new("pnp");
        lan.host("desk", "d0", Some(&format!("{DESK_IP}/24")), None);
        lan.host(
            "phone",
            "p0",
            Some(&format!("{PHONE_IP}/24")),
            Some(PHONE_MAC),
        );
        Lab { lan, server: None }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = server.kill();
            let _ = server.wait();
        }
    }
}

fn wait_line(
    lines: &mpsc::Receiver<String>,
    what: &str,
    seen: &mut Vec<String>,
    pick: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("waiting for {what}: {e}; seen: {seen:#?}"));
        seen.push(line.clone());
        if pick(&line) {
            return line;
        }
    }
}

/// Runs `work` on a thread that has entered network namespace `ns`, so its sockets live there.
fn in_namespace<T: Send + 'static>(ns: &str, work: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: setns on a namespace file we hold open; it changes only this thread.
        let entered = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(
            entered,
            0,
            "setns {path}: {}",
            std::io::Error::last_os_error()
        );
        work()
    })
    .join()
    .expect("the phone's thread")
}

/// What the phone receives after it multicasts its SUBSCRIBE: the datagrams and their
/// senders, until two have come or the wait ends; then whether the NOTIFY comes again while
/// unanswered (a lost one must not strand the phone) and stops once answered.
struct PhoneSaw {
    first: Vec<(SocketAddr, String)>,
    resent: Option<String>,
    after_answer: Vec<String>,
}

/// The phone's `200 OK` to a NOTIFY: its dialog headers back.
fn ok_to(notify: &str) -> String {
    let mut ok = String::from("SIP/2.0 200 OK\r\n");
    for line in notify.split("\r\n") {
        if ["Via:", "From:", "To:", "Call-ID:", "CSeq:"]
            .iter()
            .any(|h| line.starts_with(h))
        {
            ok.push_str(line);
            ok.push_str("\r\n");
        }
    }
    ok.push_str("Content-Length: 0\r\n\r\n");
    ok
}

fn phone_asks(ns: &str) -> PhoneSaw {
    in_namespace(ns, || {
        let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 5080)).expect("phone port 5080");
        socket
            .set_read_timeout(Some(Duration::from_millis(500)))
            .expect("timeout");
        let mut got = Vec::new();
        let mut buffer = [0u8; 65_535];
        let deadline = Instant::now() + WAIT;
        // Resent every half second, as a phone does, until answered: the responder may still
        // be joining the group when the first one goes out.
        while got.len() < 2 && Instant::now() < deadline {
            if got.is_empty() {
                socket
                    .send_to(subscribe().as_bytes(), ("224.0.1.75", 5060))
                    .expect("multicast SUBSCRIBE");
            }
            if let Ok((len, from)) = socket.recv_from(&mut buffer) {
                got.push((from, String::from_utf8_lossy(&buffer[..len]).into_owned()));
            }
        }
        let mut receive = |within: Duration| {
            let until = Instant::now() + within;
            let mut seen = Vec::new();
            while Instant::now() < until {
                if let Ok((len, _)) = socket.recv_from(&mut buffer) {
                    seen.push(String::from_utf8_lossy(&buffer[..len]).into_owned());
                }
            }
            seen
        };
        // Unanswered, the NOTIFY comes again half a second later.
        let resent = receive(Duration::from_secs(2)).into_iter().next();
        if let (Some(notify), Some((from, _))) = (&resent, got.get(1)) {
            socket
                .send_to(ok_to(notify).as_bytes(), from)
                .expect("answer");
        }
        // Answered, it stops (the next resend was due a second later).
        let after_answer = receive(Duration::from_millis(1500));
        PhoneSaw {
            first: got,
            resent,
            after_answer,
        }
    })
}

#[test]
fn a_phone_multicasting_for_its_server_gets_the_desks_url_and_is_discovered() {
    let desk = Desk::init();
    let mut lab = Lab::build();
    let desk_ns = lab.ns("desk");
    let mut server = Command::new("ip")
        .args(["netns", "exec", &desk_ns, PROVDESK, "--desk"])
        .arg(&desk.root)
        .args([
            "serve",
            "--pnp",
            "d0",
            "--http",
            &format!("{DESK_IP}:8080"),
            "--https",
            "off",
            "--tftp",
            "off",
            "--log-format",
            "json",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start provdesk serve");
    let stdout = lines_of(server.stdout.take().expect("stdout"));
    let stderr = lines_of(server.stderr.take().expect("stderr"));
    lab.server = Some(server);
    let (mut out_seen, mut err_seen) = (Vec::new(), Vec::new());
    wait_line(&stderr, "the pnp listening line", &mut err_seen, |l| {
        l == "listening pnp 224.0.1.75:5060"
    });
    wait_line(&stdout, "HTTP listening", &mut out_seen, |l| {
        l.contains("\"event\":\"listening\"")
    });

    let saw = phone_asks(&lab.ns("phone"));
    let got = &saw.first;
    assert_eq!(
        got.len(),
        2,
        "{got:#?}\nserver: {out_seen:#?}\n{err_seen:#?}"
    );
    let desk_sip: SocketAddr = format!("{DESK_IP}:5060").parse().expect("address");
    let (from, ok) = &got[0];
    assert_eq!(*from, desk_sip, "{ok}");
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"), "{ok}");
    assert!(
        ok.contains(&format!("rport=5080;received={PHONE_IP}")),
        "{ok}"
    );
    assert!(
        ok.contains("Call-ID: 490431573-5080-1@BJC.BGI.IG.DA\r\n"),
        "{ok}"
    );
    let (from, notify) = &got[1];
    assert_eq!(*from, desk_sip, "{notify}");
    assert!(
        notify.starts_with(&format!("NOTIFY sip:{PHONE_IP}:5080 SIP/2.0\r\n")),
        "{notify}"
    );
    assert!(notify.contains("\r\nEvent: ua-profile"), "{notify}");
    assert!(
        notify.contains("\r\nSubscription-State: terminated"),
        "{notify}"
    );
    assert!(
        notify.contains("\r\nContent-Type: application/url\r\n"),
        "{notify}"
    );
    let url = format!("http://{DESK_IP}:8080/");
    assert!(notify.ends_with(&format!("\r\n\r\n{url}")), "{notify}");
    assert_eq!(
        saw.resent.as_ref(),
        Some(notify),
        "the same NOTIFY, sent again"
    );
    assert!(saw.after_answer.is_empty(), "{:#?}", saw.after_answer);

    let event = wait_line(&stdout, "the plug-and-play event", &mut out_seen, |l| {
        l.contains("\"event\":\"plug-and-play\"")
    });
    let event: Value = serde_json::from_str(&event).expect("JSON event");
    assert_eq!(event["mac"], "c074ad112233", "{event}");
    assert_eq!(event["model"], "GRP2612W", "{event}");
    assert_eq!(event["firmware"], "1.0.5.67", "{event}");
    assert_eq!(event["ip"], PHONE_IP, "{event}");
    assert_eq!(event["outcome"]["kind"], "notified", "{event}");
    assert_eq!(event["outcome"]["url"], url.as_str(), "{event}");
    wait_line(&stdout, "the discovery", &mut out_seen, |l| {
        l.contains("\"event\":\"discovered\"") && l.contains("c074ad112233")
    });

    let list = desk.json(&["device", "list", "--json"]);
    let phone = list
        .as_array()
        .expect("a list")
        .iter()
        .find(|d| d["mac"] == "c074ad112233")
        .unwrap_or_else(|| panic!("the phone is listed: {list:#}"));
    assert_eq!(phone["state"], "discovered", "{phone}");
    assert_eq!(phone["model"], "grp2612w", "{phone}");
    assert_eq!(phone["firmware_version"], "1.0.5.67", "{phone}");
}
