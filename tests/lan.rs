//! A bench LAN inside this machine: network namespaces joined by a bridge, 198.51.100.0/24
//! (a documentation network, so nothing here can be mistaken for a real one), the real
//! `provdesk serve --dhcp d0` in the desk's namespace, and real DHCP clients (ISC dhclient,
//! busybox udhcpc) and a rival server (dnsmasq) in theirs. Needs root (CI runs as root); every
//! namespace and process is removed by a guard's Drop, also when a check fails.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::lan::{BenchLan as Lan, ip};
use support::{Desk, PROVDESK, WAIT, text};

const DESK_IP: &str = "198.51.100.1";
const RIVAL_IP: &str = "198.51.100.3";
const PHONE_MAC: &str = "00:0b:82:12:34:56";
const SECOND_PHONE_MAC: &str = "00:0b:82:65:43:21";
const PC_MAC: &str = "02:00:5e:00:53:01";

/// A `provdesk serve` in the desk's namespace whose text log lines the test reads.
struct Serve {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Serve {
    fn start(lan: &Lan, desk: &Desk, args: &[&str]) -> Serve {
        let mut serve = lan.exec("desk", PROVDESK);
        serve.arg("--desk").arg(&desk.root).arg("serve").args(args);
        let (child, lines) = support::spawn_lines(serve);
        Serve {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    fn wait_for(&mut self, what: &str, pick: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("waiting for {what}: {e}; seen: {:#?}", self.seen));
            self.seen.push(line.clone());
            if pick(&line) {
                return line;
            }
        }
    }

    /// Every line that arrives within `wait`.
    fn drain(&mut self, wait: Duration) {
        let deadline = Instant::now() + wait;
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(line);
        }
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("provdesk serve did not stop after SIGTERM");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The hook both clients run: records what it was given, and configures the address so the
/// phone can fetch its files afterwards.
fn hook(dir: &Path) -> PathBuf {
    let path = dir.join("hook.sh");
    let out = dir.join("hook.out");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\n\
             env | sort >> {out}\n\
             echo ARG1=$1 >> {out}\n\
             case \"$reason$1\" in\n\
               BOUND|REBOOT) ip addr add \"$new_ip_address/24\" dev \"$interface\" ;;\n\
               bound) ip addr add \"$ip/24\" dev \"$interface\" ;;\n\
             esac\n\
             exit 0\n",
            out = out.display()
        ),
    )
    .expect("hook");
    let _ = Command::new("chmod").arg("+x").arg(&path).status();
    path
}

/// Reads `KEY=value` lines the hook recorded (the last value of each key wins).
fn recorded(dir: &Path, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("hook.out")).unwrap_or_default();
    text.lines()
        .rev()
        .find_map(|line| line.strip_prefix(&format!("{key}=")))
        .map(str::to_string)
}

/// ISC dhclient once (`-1`) in `host`'s namespace, bounded by `timeout` seconds.
fn dhclient(
    lan: &Lan,
    host: &str,
    iface: &str,
    dir: &Path,
    vendor: Option<&str>,
    timeout: u32,
) -> Output {
    let conf = dir.join("dhclient.conf");
    let mut text = String::new();
    if let Some(vendor) = vendor {
        text.push_str(&format!("send vendor-class-identifier \"{vendor}\";\n"));
    }
    text.push_str(&format!(
        "request subnet-mask, routers, time-offset, tftp-server-name, vendor-encapsulated-options;\n\
         timeout {timeout};\ninitial-interval 1;\n"
    ));
    std::fs::write(&conf, text).expect("dhclient.conf");
    let hook = hook(dir);
    lan.exec(host, "timeout")
        .arg((timeout + 10).to_string())
        .args(["dhclient", "-1", "-v", "-cf"])
        .arg(&conf)
        .arg("-sf")
        .arg(&hook)
        .arg("-lf")
        .arg(dir.join("leases"))
        .arg("-pf")
        .arg(dir.join("pid"))
        .arg(iface)
        .output()
        .expect("dhclient (isc-dhcp-client)")
}

/// Stops the dhclient that stayed behind after binding, so the next one can run.
fn stop_dhclient(dir: &Path) {
    if let Ok(pid) = std::fs::read_to_string(dir.join("pid")) {
        let _ = Command::new("kill").arg(pid.trim()).status();
    }
}

fn curl(lan: &Lan, host: &str, url: &str) -> Output {
    lan.exec(host, "curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            url,
        ])
        .output()
        .expect("curl")
}

fn in_pool(address: &str) -> bool {
    // The default pool on 198.51.100.1/24: the upper half.
    address
        .strip_prefix("198.51.100.")
        .and_then(|last| last.parse::<u8>().ok())
        .is_some_and(|last| (128..=254).contains(&last))
}

#[test]
fn phones_get_a_lease_and_their_config_others_get_nothing_and_leases_survive_a_restart() {
    let mut lan = Lan::new("a");
    lan.host("desk", "d0", Some(&format!("{DESK_IP}/24")), None);
    lan.host("phone", "p0", None, Some(PHONE_MAC));
    lan.host("phone2", "p1", None, Some(SECOND_PHONE_MAC));
    lan.host("pc", "c0", None, Some(PC_MAC));
    let desk = Desk::init();
    // The second phone is a known device with a reserved address.
    desk.add_office_phone(
        SECOND_PHONE_MAC,
        "s3cret",
        &["--var", "dhcp_address=198.51.100.50"],
    );
    // Each phone's own files go to that phone only, by its DHCP lease (and the neighbour table).
    let before = desk.edit_settings("device_files = \"any\"", "device_files = \"owner\"");
    assert!(
        before.contains("device_files = \"any\""),
        "the sample sets it"
    );
    let args = [
        "--dhcp",
        "d0",
        "--http",
        "198.51.100.1:8080",
        "--tftp",
        "off",
        "--https",
        "off",
    ];
    let mut serve = Serve::start(&lan, &desk, &args);
    let listening = serve.wait_for("listening dhcp", |l| l.starts_with("listening dhcp"));
    assert!(
        listening.starts_with("listening dhcp d0 198.51.100.1"),
        "{listening}"
    );

    // ISC dhclient as a GXP2170: a lease from the pool, option 66 = the desk's URL.
    let phone_dir = desk.scratch().join("phone");
    std::fs::create_dir_all(&phone_dir).expect("dir");
    let out = dhclient(
        &lan,
        "phone",
        "p0",
        &phone_dir,
        Some("Grandstream GXP2170"),
        15,
    );
    assert!(out.status.success(), "dhclient: {}", text(&out));
    assert_eq!(recorded(&phone_dir, "reason").as_deref(), Some("BOUND"));
    let address = recorded(&phone_dir, "new_ip_address").expect("an address");
    assert!(in_pool(&address), "{address}");
    assert_eq!(
        recorded(&phone_dir, "new_tftp_server_name").as_deref(),
        Some("http://198.51.100.1:8080/")
    );
    assert_eq!(
        recorded(&phone_dir, "new_next_server").as_deref(),
        Some(DESK_IP)
    );
    assert!(
        recorded(&phone_dir, "new_vendor_encapsulated_options")
            .is_some_and(|v| v.starts_with("1:19:")),
        "option 43: sub-option 1, 25 bytes"
    );
    // The phone fetches its configuration from the URL it was given.
    let out = curl(&lan, "phone", "http://198.51.100.1:8080/cfg.xml");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "200",
        "{}",
        text(&out)
    );
    serve.wait_for("the fetch of cfg.xml", |l| l.contains("cfg.xml 200"));
    stop_dhclient(&phone_dir);

    // busybox udhcpc as another phone, which the inventory reserves an address for.
    let phone2_dir = desk.scratch().join("phone2");
    std::fs::create_dir_all(&phone2_dir).expect("dir");
    let hook2 = hook(&phone2_dir);
    let out = lan
        .exec("phone2", "timeout")
        .args([
            "30", "busybox", "udhcpc", "-i", "p1", "-n", "-q", "-f", "-t", "4", "-T", "2",
        ])
        .args(["-V", "Grandstream GRP2612W", "-O", "66", "-s"])
        .arg(&hook2)
        .output()
        .expect("busybox udhcpc");
    assert!(out.status.success(), "udhcpc: {}", text(&out));
    assert_eq!(recorded(&phone2_dir, "ARG1").as_deref(), Some("bound"));
    assert_eq!(
        recorded(&phone2_dir, "ip").as_deref(),
        Some("198.51.100.50")
    );
    assert_eq!(recorded(&phone2_dir, "siaddr").as_deref(), Some(DESK_IP));
    assert!(
        serve
            .seen
            .iter()
            .any(|l| l.contains("(by neighbour table or DHCP lease)")),
        "the access summary names the leases: {:#?}",
        serve.seen
    );
    // Its own file goes to the address the desk leased it (udhcpc's hook put it on p1); the
    // PC, given an address by hand,
    // gets the answer for a file that does not exist, and the log says why.
    let own = "http://198.51.100.1:8080/cfg000b82654321.xml";
    let out = curl(&lan, "phone2", own);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "200",
        "{}",
        text(&out)
    );
    ip(&[
        "-n",
        &lan.ns("pc"),
        "addr",
        "add",
        "198.51.100.60/24",
        "dev",
        "c0",
    ]);
    let out = curl(&lan, "pc", own);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "404",
        "{}",
        text(&out)
    );
    serve.wait_for("the denial", |l| l.contains("not the owner"));
    ip(&[
        "-n",
        &lan.ns("pc"),
        "addr",
        "del",
        "198.51.100.60/24",
        "dev",
        "c0",
    ]);

    // A PC (no Grandstream vendor class) gets nothing in phones mode.
    let pc_dir = desk.scratch().join("pc");
    std::fs::create_dir_all(&pc_dir).expect("dir");
    let out = dhclient(&lan, "pc", "c0", &pc_dir, None, 5);
    assert!(!out.status.success(), "the PC got a lease: {}", text(&out));
    assert_eq!(
        recorded(&pc_dir, "reason").as_deref(),
        Some("FAIL"),
        "{}",
        text(&out)
    );
    serve.drain(Duration::from_millis(300));
    assert!(
        serve
            .seen
            .iter()
            .any(|l| l.contains("dhcp ignored 02005e005301")),
        "{:#?}",
        serve.seen
    );
    for kind in ["discover", "offer", "request", "ack"] {
        let needle = format!("dhcp {kind} 000b82123456");
        assert!(
            serve.seen.iter().any(|l| l.contains(&needle)),
            "{needle}: {:#?}",
            serve.seen
        );
    }
    serve.stop();

    // The leases are in the inventory...
    let leases = desk.json(&["dhcp", "leases", "--json"]);
    let macs: Vec<&str> = leases
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|l| l["mac"].as_str())
        .collect();
    assert_eq!(macs.len(), 2, "{leases:#}");
    assert!(
        macs.contains(&"000b82123456") && macs.contains(&"000b82654321"),
        "{leases:#}"
    );
    let table = desk.ok(&["dhcp", "leases"]);
    assert!(
        table.contains(&address) && table.contains("198.51.100.50"),
        "{table}"
    );

    // ...and after a restart the phone, rebooting with its old lease, keeps its address.
    let mut serve = Serve::start(&lan, &desk, &args);
    serve.wait_for("listening dhcp", |l| l.starts_with("listening dhcp"));
    let _ = Command::new("ip")
        .args(["-n", &lan.ns("phone"), "addr", "flush", "dev", "p0"])
        .status();
    let out = dhclient(
        &lan,
        "phone",
        "p0",
        &phone_dir,
        Some("Grandstream GXP2170"),
        15,
    );
    assert!(out.status.success(), "dhclient again: {}", text(&out));
    assert_eq!(
        recorded(&phone_dir, "new_ip_address").as_deref(),
        Some(address.as_str())
    );
    stop_dhclient(&phone_dir);
    serve.stop();
}

#[test]
fn a_rival_dhcp_server_makes_the_preflight_refuse_and_name_it() {
    let mut lan = Lan::new("b");
    lan.host("desk", "d0", Some(&format!("{DESK_IP}/24")), None);
    lan.host("rival", "r0", Some(&format!("{RIVAL_IP}/24")), None);
    let desk = Desk::init();
    let leases = desk.scratch().join("dnsmasq.leases");
    let rival = lan
        .exec("rival", "dnsmasq")
        .args([
            "--no-daemon",
            "--interface=r0",
            "--bind-interfaces",
            "--port=0",
            "--no-resolv",
            "--no-ping",
            "--dhcp-range=198.51.100.160,198.51.100.170,5m",
            "--dhcp-option=66,\"http://198.51.100.3:8080/\"",
        ])
        .arg(format!("--dhcp-leasefile={}", leases.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dnsmasq (dnsmasq-base)");
    struct Kill(Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _rival = Kill(rival);
    // dnsmasq binds its socket right after it starts.
    std::thread::sleep(Duration::from_millis(500));

    let mut serve = Serve::start(
        &lan,
        &desk,
        &[
            "--dhcp",
            "d0",
            "--http",
            "198.51.100.1:8080",
            "--tftp",
            "off",
            "--https",
            "off",
        ],
    );
    let warning = serve.wait_for("the pre-flight's refusal", |l| {
        l.contains("another DHCP server answers on d0")
    });
    // dnsmasq's range is .160–.170 (it picks by a hash of the MAC).
    let offered = warning
        .split("198.51.100.3 offers 198.51.100.")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|last| last.parse::<u8>().ok());
    assert!(
        offered.is_some_and(|last| (160..=170).contains(&last)),
        "{warning}"
    );
    assert!(warning.contains("http://198.51.100.3:8080/"), "{warning}");
    assert!(warning.contains("not started"), "{warning}");
    // The rest of serve keeps running.
    let out = lan
        .exec("desk", "curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg("http://198.51.100.1:8080/cfg.xml")
        .output()
        .expect("curl");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "200",
        "{}",
        text(&out)
    );
    serve.drain(Duration::from_millis(300));
    assert!(
        !serve.seen.iter().any(|l| l.starts_with("listening dhcp")),
        "{:#?}",
        serve.seen
    );
    serve.stop();
}

#[test]
fn the_pool_time_offset_and_pnp_from_the_settings_are_used_and_an_exhausted_pool_is_logged() {
    let mut lan = Lan::new("c");
    lan.host("desk", "d0", Some(&format!("{DESK_IP}/24")), None);
    lan.host("phone", "p0", None, Some(PHONE_MAC));
    lan.host("phone2", "p1", None, Some(SECOND_PHONE_MAC));
    let desk = Desk::init();
    let settings = desk.root.join("provdesk.toml");
    let mut toml = std::fs::read_to_string(&settings).expect("settings");
    toml.push_str(
        "\n[dhcp]\npool_start = \"198.51.100.200\"\npool_end = \"198.51.100.200\"\nlease_secs = 600\n\
         utc_offset = \"-05:00\"\n\n[pnp]\ninterface = \"d0\"\n",
    );
    std::fs::write(&settings, toml).expect("settings");
    let mut serve = Serve::start(
        &lan,
        &desk,
        &[
            "--dhcp",
            "d0",
            "--http",
            "198.51.100.1:8080",
            "--tftp",
            "off",
            "--https",
            "off",
        ],
    );
    serve.wait_for("listening dhcp", |l| l.starts_with("listening dhcp d0"));
    // `[pnp] interface` turns plug-and-play on without `--pnp`.
    assert!(
        serve
            .seen
            .iter()
            .any(|l| l == "listening pnp 224.0.1.75:5060"),
        "{:#?}",
        serve.seen
    );

    let phone_dir = desk.scratch().join("phone");
    std::fs::create_dir_all(&phone_dir).expect("dir");
    let out = dhclient(
        &lan,
        "phone",
        "p0",
        &phone_dir,
        Some("Grandstream GXP2170"),
        15,
    );
    assert!(out.status.success(), "dhclient: {}", text(&out));
    assert_eq!(
        recorded(&phone_dir, "new_ip_address").as_deref(),
        Some("198.51.100.200")
    );
    assert_eq!(
        recorded(&phone_dir, "new_dhcp_lease_time").as_deref(),
        Some("600")
    );
    // Option 2, as dhclient reads it: seconds east of UTC.
    assert_eq!(
        recorded(&phone_dir, "new_time_offset").as_deref(),
        Some("-18000")
    );
    stop_dhclient(&phone_dir);

    let phone2_dir = desk.scratch().join("phone2");
    std::fs::create_dir_all(&phone2_dir).expect("dir");
    let out = dhclient(
        &lan,
        "phone2",
        "p1",
        &phone2_dir,
        Some("Grandstream GXP2160"),
        4,
    );
    assert!(
        !out.status.success(),
        "a lease from an empty pool: {}",
        text(&out)
    );
    let line = serve.wait_for("the exhausted pool", |l| l.contains("dhcp pool-exhausted"));
    assert!(line.contains("000b82654321"), "{line}");
    assert!(line.contains("198.51.100.200"), "{line}");
    serve.stop();
}

/// 5,000 DISCOVERs from random MACs, as fast as one socket sends them: broadcast from
/// 0.0.0.0:68 with the broadcast flag, a Grandstream vendor class so `phones` mode answers.
/// Returns how long sending took.
fn discover_flood(lan: &Lan, host: &str, iface: &str, count: usize) -> Duration {
    use socket2::{Domain, Protocol, Socket, Type};
    let ns = std::fs::File::open(format!("/run/netns/{}", lan.ns(host))).expect("the namespace");
    // The flood's socket lives in the flood's namespace: a thread that joins it, sends, ends.
    let iface = iface.to_string();
    let sender = std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        // SAFETY: setns on a namespace file descriptor this thread owns for the call; it moves
        // only this (short-lived) thread into the namespace.
        let joined = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(joined, 0, "setns: {}", std::io::Error::last_os_error());
        let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).expect("socket");
        socket.set_reuse_address(true).expect("reuse");
        socket.set_broadcast(true).expect("broadcast");
        socket
            .bind_device(Some(iface.as_bytes()))
            .expect("bind to the interface");
        let any: std::net::SocketAddr = "0.0.0.0:68".parse().expect("address");
        socket.bind(&any.into()).expect("bind 0.0.0.0:68");
        let to: std::net::SocketAddr = "255.255.255.255:67".parse().expect("address");
        let to = to.into();
        let started = Instant::now();
        for n in 0..count {
            let mut mac: [u8; 6] = random_bytes();
            mac[0] = (mac[0] & 0xfe) | 0x02;
            let discover = provdesk_dhcp::probe_discover(mac, n as u32);
            // A full send buffer is the flood's problem, not the test's: keep going.
            let _ = socket.send_to(&discover, &to);
            if started.elapsed() > Duration::from_secs(20) {
                panic!("the flood took over 20 s to send {n} packets");
            }
        }
        started.elapsed()
    });
    sender.join().expect("the flood's thread")
}

/// Six random bytes from the kernel, without a dependency for one call.
fn random_bytes() -> [u8; 6] {
    use std::io::Read;
    let mut bytes = [0u8; 6];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("/dev/urandom");
    bytes
}

#[test]
fn a_discover_flood_from_5000_macs_stays_bounded_and_a_phone_still_gets_its_lease() {
    let mut lan = Lan::new("f");
    lan.host("desk", "d0", Some(&format!("{DESK_IP}/24")), None);
    lan.host("flood", "f0", None, Some(PC_MAC));
    lan.host("phone", "p0", None, Some(PHONE_MAC));
    let desk = Desk::init();
    let settings = desk.root.join("provdesk.toml");
    let mut toml = std::fs::read_to_string(&settings).expect("settings");
    // A 20-address pool: the flood goes round it 250 times.
    toml.push_str("\n[dhcp]\npool_start = \"198.51.100.200\"\npool_end = \"198.51.100.219\"\n");
    std::fs::write(&settings, toml).expect("settings");
    let mut serve = Serve::start(
        &lan,
        &desk,
        &[
            "--dhcp",
            "d0",
            "--http",
            "198.51.100.1:8080",
            "--tftp",
            "off",
            "--https",
            "off",
        ],
    );
    serve.wait_for("listening dhcp", |l| l.starts_with("listening dhcp d0"));

    let took = discover_flood(&lan, "flood", "f0", 5000);
    assert!(took < Duration::from_secs(20), "{took:?}");
    // The responder answered the flood (offers to random MACs), not only dropped it.
    serve.drain(Duration::from_secs(2));
    let offers = serve
        .seen
        .iter()
        .filter(|l| l.contains(" dhcp offer ") && l.contains("Grandstream ProvDesk-preflight"))
        .count();
    assert!(offers >= 100, "{offers} offers to the flood");

    // A real phone right after it: a lease from the pool and option 66.
    let phone_dir = desk.scratch().join("phone");
    std::fs::create_dir_all(&phone_dir).expect("dir");
    let out = dhclient(
        &lan,
        "phone",
        "p0",
        &phone_dir,
        Some("Grandstream GXP2170"),
        20,
    );
    assert!(
        out.status.success(),
        "dhclient after the flood: {}",
        text(&out)
    );
    let address = recorded(&phone_dir, "new_ip_address").expect("an address");
    let last: u8 = address
        .strip_prefix("198.51.100.")
        .and_then(|l| l.parse().ok())
        .expect("198.51.100.x");
    assert!((200..=219).contains(&last), "{address}");
    assert_eq!(
        recorded(&phone_dir, "new_tftp_server_name").as_deref(),
        Some("http://198.51.100.1:8080/")
    );
    stop_dhclient(&phone_dir);
    serve.wait_for("the phone's ack", |l| l.contains("dhcp ack 000b82123456"));
    serve.stop();

    // Only bound leases are stored: the phone's, never more than the pool.
    let leases = desk.json(&["dhcp", "leases", "--json"]);
    let leases = leases.as_array().expect("array");
    assert!(leases.len() <= 20, "{} leases", leases.len());
    assert_eq!(leases.len(), 1, "{leases:#?}");
    assert_eq!(leases[0]["mac"], "000b82123456");
}
