//! A bench LAN inside this machine, as `../shared/reference/lan-recipe.md` builds it: network
//! namespaces joined by a bridge in a namespace of its own, 198.51.100.0/24 only (a
//! documentation network). Needs root (CI runs as root). Dropping it kills whatever still runs
//! in its namespaces and deletes them, also when a check failed.

use std::process::Command;

pub struct BenchLan {
    prefix: String,
    /// Every namespace made, the switch first.
    namespaces: Vec<String>,
}

impl BenchLan {
    /// A switch; namespaces are named after this process and `scenario`, so parallel tests
    /// (and other test runs) never share one.
    pub fn new(scenario: &str) -> BenchLan {
        assert!(
            is_root(),
            "bench-LAN tests create network namespaces and need root (CI runs as root)"
        );
        let mut lan = BenchLan {
            prefix: format!("pd{}{scenario}", std::process::id() % 100_000),
            namespaces: Vec::new(),
        };
        let sw = lan.ns("sw");
        lan.add_namespace(&sw);
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"]);
        // Flood multicast to every port: the tests are about our servers, not IGMP snooping.
        ip(&[
            "-n",
            &sw,
            "link",
            "set",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ]);
        ip(&["-n", &sw, "link", "set", "br0", "up"]);
        lan
    }

    /// The namespace of `host`.
    pub fn ns(&self, host: &str) -> String {
        format!("{}{host}", self.prefix)
    }

    fn add_namespace(&mut self, ns: &str) {
        ip(&["netns", "add", ns]);
        self.namespaces.push(ns.to_string());
    }

    /// A host on the switch: namespace `host`, interface `iface`, an optional address
    /// (`198.51.100.1/24`) and MAC; multicast (SIP plug-and-play's 224.0.1.75) leaves by it.
    pub fn host(&mut self, host: &str, iface: &str, address: Option<&str>, mac: Option<&str>) {
        let (ns, sw) = (self.ns(host), self.ns("sw"));
        self.add_namespace(&ns);
        let port = format!("sw-{host}");
        ip(&[
            "link", "add", iface, "netns", &ns, "type", "veth", "peer", "name", &port, "netns", &sw,
        ]);
        ip(&["-n", &sw, "link", "set", &port, "master", "br0"]);
        ip(&["-n", &sw, "link", "set", &port, "up"]);
        if let Some(mac) = mac {
            ip(&["-n", &ns, "link", "set", iface, "address", mac]);
        }
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        ip(&["-n", &ns, "link", "set", iface, "up"]);
        if let Some(address) = address {
            ip(&["-n", &ns, "addr", "add", address, "dev", iface]);
        }
        ip(&["-n", &ns, "route", "add", "224.0.0.0/4", "dev", iface]);
    }

    /// `ip netns exec NS PROGRAM`, for the caller to add arguments.
    pub fn exec(&self, host: &str, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.ns(host), program]);
        command
    }
}

impl Drop for BenchLan {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            // Whatever still runs there (a server, a dhclient that outlived its test) first.
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-KILL", pid]).status();
                }
            }
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `ip ARGS`, which must succeed.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("ip (iproute2) must be installed");
    assert!(
        out.status.success(),
        "ip {args:?} failed: {}",
        super::text(&out)
    );
}
