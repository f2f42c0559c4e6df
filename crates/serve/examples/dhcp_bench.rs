//! The power-cut storm (issue 15's benchmark): N DHCP clients (1,000 by default) start within
//! one second and each runs a full DISCOVER/OFFER/REQUEST/ACK; the time from the first
//! DISCOVER to the last ACK and the leases per second, for `provdesk serve --dhcp` and for
//! dnsmasq in turn, on the same network namespaces.
//!
//! ```sh
//! cargo build --release -p provdesk-cli
//! sudo cargo run --release -p provdesk-serve --example dhcp_bench -- --rounds 3 --clients 1000
//!     # --provdesk PATH: default, the `provdesk` next to this example's target folder
//!     # --within-ms 0: every client at once, to see each server's capacity rather than the
//!     #   storm's arrival rate
//! ```
//!
//! Needs root (namespaces, port 67), `ip`, and `dnsmasq`. The generator is this program run
//! again inside the clients' namespace (`--generate`): one socket on 0.0.0.0:68, broadcast
//! flag set, a distinct locally administered `chaddr` and transaction per client, vendor class
//! `Grandstream GXP2170`, a retransmission after 2 s as real clients do, everything over in
//! 30 s. A lease counts only when its ACK carries option 66.
//!
//! Addresses: 1,000 concurrent leases do not fit a documentation /24, so the storm's segment
//! is 198.18.0.0/22, from the block IANA reserves for benchmarking network devices (RFC 2544,
//! RFC 6890: 198.18.0.0/15, never routed). Nothing leaves the namespaces, which are deleted
//! at the end (also on failure).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, OptionCode};
use dhcproto::{Decodable, Encodable};

const DESK: &str = "198.18.0.1";
const PREFIX: &str = "198.18.0.1/22";
const POOL_START: &str = "198.18.0.10";
const POOL_END: &str = "198.18.3.250";
const URL: &str = "http://198.18.0.1:8080/";
const RETRANSMIT: Duration = Duration::from_secs(2);
const STORM_LIMIT: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let clients: usize = value("--clients")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    if args.iter().any(|a| a == "--generate") {
        let seed = value("--seed").and_then(|v| v.parse().ok()).unwrap_or(1);
        let within = Duration::from_millis(
            value("--within-ms")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1000),
        );
        let result = generate(
            clients,
            value("--interface").as_deref().unwrap_or("c0"),
            seed,
            within,
        );
        println!("{}", result.line());
        return ExitCode::SUCCESS;
    }
    let rounds: usize = value("--rounds").and_then(|v| v.parse().ok()).unwrap_or(3);
    let provdesk = value("--provdesk").map(PathBuf::from).unwrap_or_else(|| {
        // target/<profile>/examples/dhcp_bench → target/<profile>/provdesk
        let exe = std::env::current_exe().unwrap_or_default();
        exe.parent()
            .and_then(Path::parent)
            .map(|dir| dir.join("provdesk"))
            .unwrap_or_default()
    });
    match bench(&provdesk, clients, rounds) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("dhcp_bench: {message}");
            ExitCode::FAILURE
        }
    }
}

/// What one storm achieved, as the generator prints it on one line.
#[derive(Debug, Clone, Default)]
struct Storm {
    clients: usize,
    acked: usize,
    with_option66: usize,
    naks: usize,
    retransmits: usize,
    /// First DISCOVER sent to last ACK received.
    last_ack: Duration,
}

impl Storm {
    fn line(&self) -> String {
        format!(
            "storm clients={} acked={} option66={} naks={} retransmits={} last_ack_ms={:.1}",
            self.clients,
            self.acked,
            self.with_option66,
            self.naks,
            self.retransmits,
            self.last_ack.as_secs_f64() * 1000.0
        )
    }

    fn parse(line: &str) -> Option<Storm> {
        let fields: HashMap<&str, &str> = line
            .strip_prefix("storm ")?
            .split(' ')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let number = |key: &str| fields.get(key)?.parse::<usize>().ok();
        Some(Storm {
            clients: number("clients")?,
            acked: number("acked")?,
            with_option66: number("option66")?,
            naks: number("naks")?,
            retransmits: number("retransmits")?,
            last_ack: Duration::from_secs_f64(
                fields.get("last_ack_ms")?.parse::<f64>().ok()? / 1000.0,
            ),
        })
    }

    fn leases_per_second(&self) -> f64 {
        self.with_option66 as f64 / self.last_ack.as_secs_f64().max(1e-9)
    }
}

// ---- the orchestration (root namespace) ----

fn value_of(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

fn bench(provdesk: &Path, clients: usize, rounds: usize) -> Result<(), String> {
    if !provdesk.is_file() {
        return Err(format!(
            "{} not found: build it (cargo build --release -p provdesk-cli) or pass --provdesk PATH",
            provdesk.display()
        ));
    }
    let lan = Lan::new()?;
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for round in 1..=rounds {
        let seed = round as u64;
        let storm = provdesk_round(&lan, provdesk, clients, seed)?;
        println!("round {round} provdesk: {}", storm.line());
        ours.push(storm);
        let storm = dnsmasq_round(&lan, clients, seed)?;
        println!("round {round} dnsmasq:  {}", storm.line());
        theirs.push(storm);
    }
    println!();
    println!(
        "power-cut storm: {clients} clients starting within {} ms, median of {rounds} rounds",
        value_of("--within-ms").unwrap_or_else(|| "1000".into())
    );
    println!(
        "{:<10} {:>7} {:>9} {:>14} {:>10} {:>12}",
        "server", "acked", "option66", "last ACK (s)", "leases/s", "retransmits"
    );
    for (name, storms) in [("provdesk", &mut ours), ("dnsmasq", &mut theirs)] {
        storms.sort_by_key(|storm| storm.last_ack);
        let median = &storms[storms.len() / 2];
        println!(
            "{:<10} {:>7} {:>9} {:>14.3} {:>10.0} {:>12}",
            name,
            median.acked,
            median.with_option66,
            median.last_ack.as_secs_f64(),
            median.leases_per_second(),
            median.retransmits
        );
    }
    Ok(())
}

fn provdesk_round(lan: &Lan, provdesk: &Path, clients: usize, seed: u64) -> Result<Storm, String> {
    let dir = tempdir()?;
    let desk = dir.join("desk");
    let init = Command::new(provdesk)
        .arg("--desk")
        .arg(&desk)
        .arg("init")
        .output()
        .map_err(|e| format!("provdesk init: {e}"))?;
    if !init.status.success() {
        return Err(format!(
            "provdesk init: {}",
            String::from_utf8_lossy(&init.stderr)
        ));
    }
    let settings = desk.join("provdesk.toml");
    let mut text = std::fs::read_to_string(&settings).map_err(|e| e.to_string())?;
    text.push_str(&format!(
        "\n[dhcp]\npool_start = \"{POOL_START}\"\npool_end = \"{POOL_END}\"\n"
    ));
    std::fs::write(&settings, text).map_err(|e| e.to_string())?;
    let mut serve = lan
        .exec("desk", provdesk)
        .arg("--desk")
        .arg(&desk)
        .args(["serve", "--dhcp", "d0", "--http", &format!("{DESK}:8080")])
        .args(["--tftp", "off", "--https", "off"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("provdesk serve: {e}"))?;
    let (ready_tx, ready) = mpsc::channel();
    let stdout = serve.stdout.take().ok_or("no stdout")?;
    // Reads (and drops) the log the whole time, as a terminal would, so serve never blocks.
    let reader = std::thread::spawn(move || {
        let mut lines = 0usize;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("listening dhcp") || line.contains("another DHCP server") {
                let _ = ready_tx.send(line);
            }
            lines += 1;
        }
        lines
    });
    let serve = Guard(serve);
    let line = ready
        .recv_timeout(Duration::from_secs(30))
        .map_err(|_| "provdesk serve did not start its DHCP responder within 30 s".to_string())?;
    if !line.starts_with("listening dhcp") {
        return Err(line);
    }
    let storm = lan.storm(clients, seed)?;
    // SIGTERM: the leases written so far must be in the inventory when serve has stopped.
    serve.terminate();
    let _ = reader.join();
    let leases = Command::new(provdesk)
        .arg("--desk")
        .arg(&desk)
        .args(["dhcp", "leases", "--json"])
        .output()
        .map_err(|e| format!("provdesk dhcp leases: {e}"))?;
    let stored = serde_json::from_slice::<serde_json::Value>(&leases.stdout)
        .ok()
        .and_then(|v| v.as_array().map(Vec::len))
        .unwrap_or(0);
    if stored != storm.acked {
        return Err(format!(
            "{} leases acknowledged but {stored} in the inventory after serve stopped",
            storm.acked
        ));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(storm)
}

fn dnsmasq_round(lan: &Lan, clients: usize, seed: u64) -> Result<Storm, String> {
    let dir = tempdir()?;
    let leases = dir.join("dnsmasq.leases");
    let dnsmasq = lan
        .exec("desk", Path::new("dnsmasq"))
        .args([
            "--no-daemon",
            "--conf-file=/dev/null",
            "--interface=d0",
            "--bind-interfaces",
            "--port=0",
            "--no-resolv",
            // Its fastest: no ICMP check of each address before offering it.
            "--no-ping",
            "--dhcp-authoritative",
            "--dhcp-lease-max=100000",
        ])
        .arg(format!("--dhcp-range={POOL_START},{POOL_END},1h"))
        .arg(format!("--dhcp-option=66,{URL}"))
        .arg(format!("--dhcp-leasefile={}", leases.display()))
        .args(
            std::env::var("DHCP_BENCH_DNSMASQ_LOG")
                .ok()
                .map(|file| format!("--log-dhcp --log-facility={file}"))
                .unwrap_or_default()
                .split_whitespace(),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("dnsmasq: {e}"))?;
    let dnsmasq = Guard(dnsmasq);
    lan.wait_for_port_67()?;
    let storm = lan.storm(clients, seed)?;
    dnsmasq.terminate();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(storm)
}

/// A child that is stopped when dropped.
struct Guard(Child);

impl Guard {
    fn terminate(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tempdir() -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!(
        "dhcp-bench-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

/// Three namespaces: a switch (a bridge), the desk (d0, 198.18.0.1/22) and the clients (c0).
struct Lan {
    prefix: String,
    namespaces: Vec<String>,
}

impl Lan {
    fn new() -> Result<Lan, String> {
        let mut lan = Lan {
            prefix: format!("pdb{}", std::process::id() % 100_000),
            namespaces: Vec::new(),
        };
        let sw = lan.ns("sw");
        lan.add(&sw)?;
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &sw, "link", "set", "br0", "up"])?;
        lan.host("desk", "d0", Some(PREFIX))?;
        lan.host("clients", "c0", None)?;
        Ok(lan)
    }

    fn ns(&self, host: &str) -> String {
        format!("{}{host}", self.prefix)
    }

    fn add(&mut self, ns: &str) -> Result<(), String> {
        ip(&["netns", "add", ns])?;
        self.namespaces.push(ns.to_string());
        Ok(())
    }

    fn host(&mut self, host: &str, iface: &str, address: Option<&str>) -> Result<(), String> {
        let (ns, sw) = (self.ns(host), self.ns("sw"));
        self.add(&ns)?;
        let port = format!("sw-{host}");
        ip(&[
            "link", "add", iface, "netns", &ns, "type", "veth", "peer", "name", &port, "netns", &sw,
        ])?;
        ip(&["-n", &sw, "link", "set", &port, "master", "br0"])?;
        ip(&["-n", &sw, "link", "set", &port, "up"])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        ip(&["-n", &ns, "link", "set", iface, "up"])?;
        if let Some(address) = address {
            ip(&["-n", &ns, "addr", "add", address, "dev", iface])?;
        }
        Ok(())
    }

    fn exec(&self, host: &str, program: &Path) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.ns(host)]).arg(program);
        command
    }

    /// This program as the generator, in the clients' namespace.
    fn storm(&self, clients: usize, seed: u64) -> Result<Storm, String> {
        let within = value_of("--within-ms").unwrap_or_else(|| "1000".into());
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let out = self
            .exec("clients", &exe)
            .args(["--generate", "--clients", &clients.to_string()])
            .args(["--seed", &seed.to_string(), "--within-ms", &within])
            .output()
            .map_err(|e| format!("generator: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        text.lines().find_map(Storm::parse).ok_or_else(|| {
            format!(
                "the generator printed no result: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    /// Until something in the desk's namespace listens on UDP port 67 (at most 10 s).
    fn wait_for_port_67(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let out = self
                .exec("desk", Path::new("ss"))
                .args(["-Hluna", "sport", "=", ":67"])
                .output()
                .map_err(|e| format!("ss: {e}"))?;
            if !String::from_utf8_lossy(&out.stdout).trim().is_empty() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err("dnsmasq did not listen on port 67 within 10 s".into())
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-KILL", pid]).status();
                }
            }
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

// ---- the generator (inside the clients' namespace) ----

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Discovering,
    Requesting { server: Ipv4Addr, address: Ipv4Addr },
    Bound,
}

struct Client {
    mac: [u8; 6],
    state: State,
    last_sent: Instant,
}

fn xid_of(base: u32, index: usize) -> u32 {
    base.wrapping_add(index as u32)
}

fn discover(mac: &[u8; 6], xid: u32) -> Vec<u8> {
    let mut message = Message::default();
    message
        .set_xid(xid)
        .set_flags(Flags::default().set_broadcast())
        .set_chaddr(mac);
    let opts = message.opts_mut();
    opts.insert(DhcpOption::MessageType(MessageType::Discover));
    opts.insert(DhcpOption::ClassIdentifier(b"Grandstream GXP2170".to_vec()));
    opts.insert(DhcpOption::ParameterRequestList(vec![
        OptionCode::SubnetMask,
        OptionCode::Router,
        OptionCode::TFTPServerName,
    ]));
    message.to_vec().unwrap_or_default()
}

fn request(mac: &[u8; 6], xid: u32, server: Ipv4Addr, address: Ipv4Addr) -> Vec<u8> {
    let mut message = Message::default();
    message
        .set_xid(xid)
        .set_flags(Flags::default().set_broadcast())
        .set_chaddr(mac);
    let opts = message.opts_mut();
    opts.insert(DhcpOption::MessageType(MessageType::Request));
    opts.insert(DhcpOption::ClassIdentifier(b"Grandstream GXP2170".to_vec()));
    opts.insert(DhcpOption::ServerIdentifier(server));
    opts.insert(DhcpOption::RequestedIpAddress(address));
    opts.insert(DhcpOption::ParameterRequestList(vec![
        OptionCode::SubnetMask,
        OptionCode::Router,
        OptionCode::TFTPServerName,
    ]));
    message.to_vec().unwrap_or_default()
}

fn client_socket(interface: &str) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.set_broadcast(true)?;
    // Replies to 1,000 clients arrive at once; the generator must not be what drops them.
    socket.set_recv_buffer_size(8 << 20)?;
    socket.bind_device(Some(interface.as_bytes()))?;
    socket.bind(&SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68)).into())?;
    socket.set_read_timeout(Some(Duration::from_millis(5)))?;
    Ok(socket.into())
}

/// `count` distinct random locally administered MACs, the same for the same `seed`, so both
/// servers of a round see the same clients. Random rather than sequential: dnsmasq places a
/// client by a hash of its MAC that maps a run of sequential MACs onto a run of addresses, and
/// its offers, which it does not hold, then collide (NAK "address in use") over and over.
fn macs(seed: u64, count: usize) -> Vec<[u8; 6]> {
    let mut state = seed;
    let mut next = || {
        // splitmix64
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let [_, _, a, b, c, d, e, f] = next().to_be_bytes();
        let mac = [(a & 0xfe) | 0x02, b, c, d, e, f];
        if seen.insert(mac) {
            out.push(mac);
        }
    }
    out
}

fn generate(count: usize, interface: &str, seed: u64, within: Duration) -> Storm {
    let socket = match client_socket(interface) {
        Ok(socket) => socket,
        Err(e) => {
            eprintln!("generator: cannot bind 0.0.0.0:68 on {interface}: {e}");
            return Storm::default();
        }
    };
    let base: u32 = rand::random();
    let to = SocketAddrV4::new(Ipv4Addr::BROADCAST, 67);
    let start = Instant::now();
    let mut clients: Vec<Client> = macs(seed, count)
        .into_iter()
        .map(|mac| Client {
            mac,
            state: State::Discovering,
            last_sent: start,
        })
        .collect();
    let index: HashMap<u32, usize> = (0..count).map(|i| (xid_of(base, i), i)).collect();
    let mut storm = Storm {
        clients: count,
        ..Storm::default()
    };
    let spacing = within / count.max(1) as u32;
    let mut started = 0usize;
    let mut buffer = vec![0u8; 1500];
    let mut last_ack = start;
    let mut last_check = start;
    while storm.acked < count && start.elapsed() < STORM_LIMIT {
        // Clients power up on schedule: all N within `within` (a second by default).
        while started < count && start + spacing * started as u32 <= Instant::now() {
            let client = &mut clients[started];
            let _ = socket.send_to(&discover(&client.mac, xid_of(base, started)), to);
            client.last_sent = Instant::now();
            started += 1;
        }
        match socket.recv_from(&mut buffer) {
            Ok((len, _)) => {
                let Ok(message) = Message::from_bytes(&buffer[..len]) else {
                    continue;
                };
                let Some(&i) = index.get(&message.xid()) else {
                    continue;
                };
                let client = &mut clients[i];
                match (message.opts().msg_type(), client.state) {
                    (Some(MessageType::Offer), State::Discovering) => {
                        let server = match message.opts().get(OptionCode::ServerIdentifier) {
                            Some(DhcpOption::ServerIdentifier(server)) => *server,
                            _ => message.siaddr(),
                        };
                        let address = message.yiaddr();
                        client.state = State::Requesting { server, address };
                        let bytes = request(&client.mac, message.xid(), server, address);
                        let _ = socket.send_to(&bytes, to);
                        client.last_sent = Instant::now();
                    }
                    (Some(MessageType::Ack), State::Requesting { .. }) => {
                        client.state = State::Bound;
                        storm.acked += 1;
                        let option66 = matches!(
                            message.opts().get(OptionCode::TFTPServerName),
                            // dnsmasq ends string options with a NUL, as phones read them.
                            Some(DhcpOption::TFTPServerName(url))
                                if url.strip_suffix(&[0]).unwrap_or(url) == URL.as_bytes()
                        );
                        if !option66 && storm.acked == 1 {
                            eprintln!(
                                "generator: first ACK's option 66: {:?}",
                                message.opts().get(OptionCode::TFTPServerName)
                            );
                        }
                        storm.with_option66 += usize::from(option66);
                        last_ack = Instant::now();
                    }
                    (Some(MessageType::Nak), State::Requesting { .. }) => {
                        if storm.naks == 0 {
                            let why = match message.opts().get(OptionCode::Message) {
                                Some(DhcpOption::Message(text)) => text.clone(),
                                _ => String::new(),
                            };
                            eprintln!("generator: first NAK: {why:?}");
                        }
                        storm.naks += 1;
                        // As dhclient does: back to INIT, a new DISCOVER at once.
                        client.state = State::Discovering;
                        let _ = socket.send_to(&discover(&client.mac, message.xid()), to);
                        client.last_sent = Instant::now();
                    }
                    _ => {}
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => {
                eprintln!("generator: receive: {e}");
                break;
            }
        }
        // Real clients retransmit when no answer came: here after RETRANSMIT.
        if last_check.elapsed() >= Duration::from_millis(100) {
            last_check = Instant::now();
            for (i, client) in clients.iter_mut().enumerate().take(started) {
                if client.last_sent.elapsed() < RETRANSMIT {
                    continue;
                }
                let bytes = match client.state {
                    State::Bound => continue,
                    State::Discovering => discover(&client.mac, xid_of(base, i)),
                    State::Requesting { server, address } => {
                        request(&client.mac, xid_of(base, i), server, address)
                    }
                };
                let _ = socket.send_to(&bytes, to);
                client.last_sent = Instant::now();
                storm.retransmits += 1;
            }
        }
    }
    storm.last_ack = last_ack.duration_since(start);
    storm
}
