//! Simulated Grandstream phones booting against a real `provdesk serve` over HTTP and HTTPS.
//!
//! Each phone does what the firmware does (facts §4.1): fetch the binary `cfg<mac>.bin`,
//! apply it (it may carry the XML password P1359 and the config prefix/postfix P234/P235),
//! then `cfg<mac>.xml`, falling back to `cfg<model>.xml` and `cfg.xml`. The transport is the
//! real `curl` binary, which also plays Digest authentication and client certificates.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use provdesk_core::format::{binary, crypt, xml};
use provdesk_core::{Mac, PName};
use serde_json::Value;

mod support;
use support::{Desk, Server};

/// A desk made by `provdesk init` and prepared by `setup`, served with `args`.
fn serve(setup: impl FnOnce(&Desk), args: &[&str]) -> (Desk, Server) {
    let desk = Desk::init();
    setup(&desk);
    let server = Server::start(&desk, args);
    (desk, server)
}

/// What a fetch returned: HTTP status and body.
struct Response {
    status: u16,
    body: Vec<u8>,
}

/// A phone: its identity and how it talks to the server.
struct Phone {
    mac: Mac,
    model: &'static str,
    /// Extra curl arguments: credentials, CA, client certificate.
    curl_args: Vec<String>,
}

/// What a phone ended up with after one boot.
#[derive(Debug)]
struct Boot {
    fetched: Vec<(String, u16)>,
    config: BTreeMap<PName, String>,
    /// Which file the config came from.
    source: String,
}

impl Phone {
    fn new(mac: &str, model: &'static str) -> Phone {
        Phone {
            mac: mac.parse().expect("mac"),
            model,
            curl_args: Vec::new(),
        }
    }

    fn user_agent(&self) -> String {
        format!(
            "Grandstream Model HW {} V1.1A SW 1.0.11.3 DevId {}",
            self.model.to_uppercase(),
            self.mac
        )
    }

    fn get(&self, base: &str, name: &str) -> Response {
        let dir = tempfile::tempdir().expect("temp dir");
        let body = dir.path().join("body");
        let out = Command::new("curl")
            .args(["-s", "--path-as-is", "-o"])
            .arg(&body)
            .args([
                "-w",
                "%{http_code}",
                "--max-time",
                "10",
                "-A",
                &self.user_agent(),
            ])
            .args(&self.curl_args)
            .arg(format!("{base}/{name}"))
            .output()
            .expect("curl must be installed (scripts/test installs it)");
        let status = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0);
        Response {
            status,
            body: std::fs::read(&body).unwrap_or_default(),
        }
    }

    /// The firmware's provisioning sequence.
    fn boot(&self, base: &str) -> Boot {
        let mut fetched = Vec::new();
        let mut password = None;
        let (mut prefix, mut postfix) = (String::new(), String::new());
        let mut config = BTreeMap::new();
        let bin = format!("cfg{}.bin", self.mac);
        let response = self.get(base, &bin);
        fetched.push((bin, response.status));
        if response.status == 200 {
            let decoded = binary::decode(&response.body).expect("a valid binary config");
            assert_eq!(decoded.mac, self.mac, "binary file for another phone");
            for (name, value) in decoded.params {
                match name.number() {
                    1359 => password = Some(value.clone()),
                    234 => prefix = value.clone(),
                    235 => postfix = value.clone(),
                    _ => {}
                }
                config.insert(name, value);
            }
        }
        let candidates = [
            format!("{prefix}cfg{}.xml{postfix}", self.mac),
            format!("{prefix}cfg{}.xml{postfix}", self.model),
            format!("{prefix}cfg.xml{postfix}"),
        ];
        for name in candidates {
            let response = self.get(base, &name);
            fetched.push((name.clone(), response.status));
            if response.status != 200 {
                continue;
            }
            let text = if crypt::is_encrypted(&response.body) {
                let password = password
                    .as_deref()
                    .expect("an encrypted XML needs P1359 from the binary file");
                crypt::decrypt(&response.body, password).expect("decrypts with P1359")
            } else {
                response.body
            };
            let parsed =
                xml::read_config(std::str::from_utf8(&text).expect("utf-8")).expect("valid XML");
            if let Some(mac) = parsed.mac {
                assert_eq!(mac, self.mac, "XML for another phone");
            }
            config.extend(parsed.params);
            return Boot {
                fetched,
                config,
                source: name,
            };
        }
        Boot {
            fetched,
            config,
            source: String::new(),
        }
    }
}

fn p(name: &str) -> PName {
    name.parse().expect("P-value")
}

/// Fails if any of `secrets` appears anywhere in the logged event.
fn assert_no_secret(event: &Value, secrets: &[&str]) {
    let log = serde_json::to_string(event).expect("json");
    for secret in secrets {
        assert!(!log.contains(secret), "{secret} in the fetch log: {log}");
    }
}

const SECURE: &str = r#"extends = "office"
[params]
P1359 = "{{ xml_password }}"
"#;

#[test]
fn known_encrypted_phone_reads_p1359_from_the_binary_then_decrypts_its_xml() {
    let (_desk, mut server) = serve(
        |desk| {
            desk.write("profiles/secure.toml", SECURE);
            desk.ok(&[
                "device",
                "add",
                "000b82000011",
                "--model",
                "gxp2170",
                "--profile",
                "secure",
                "--var",
                "ext=211",
                "--var",
                "sip_secret=sip211",
                "--var",
                "xml_password=xml211",
            ]);
        },
        &["--http", "127.0.0.1:0", "--https", "off", "--tftp", "off"],
    );
    let phone = Phone::new("000b82000011", "gxp2170");
    let boot = phone.boot(server.url("http"));
    assert_eq!(boot.source, "cfg000b82000011.xml", "{boot:?}");
    assert_eq!(boot.config[&p("P35")], "211");
    assert_eq!(boot.config[&p("P34")], "sip211");
    // The server filled P237 with its own address, so the phone comes back here.
    let host = server.url("http").trim_start_matches("http://").to_string();
    assert_eq!(boot.config[&p("P237")], host);
    assert_eq!(boot.config[&p("P212")], "1");

    let event = server.wait_for("fetch of the XML", |e| {
        e["event"] == "fetch" && e["name"] == "cfg000b82000011.xml"
    });
    assert_eq!(event["mac"], "000b82000011");
    assert_eq!(event["outcome"]["kind"], "served");
    assert_no_secret(&event, &["xml211", "sip211"]);
    assert!(server.terminate().0.success());
}

#[test]
fn prefixed_phone_unknown_phone_fallback_and_discovery() {
    let (desk, mut server) = serve(
        |desk| {
            desk.write(
                "profiles/prefixed.toml",
                "extends = \"office\"\n[params]\nP234 = \"gs_\"\nP235 = \"_v1\"\n",
            );
            desk.ok(&[
                "device",
                "add",
                "000b82000012",
                "--model",
                "gxp2170",
                "--profile",
                "prefixed",
                "--var",
                "ext=212",
                "--var",
                "sip_secret=x",
            ]);
        },
        &["--http", "127.0.0.1:0", "--https", "off", "--tftp", "off"],
    );
    let prefixed = Phone::new("000b82000012", "gxp2170").boot(server.url("http"));
    assert_eq!(prefixed.source, "gs_cfg000b82000012.xml_v1", "{prefixed:?}");
    assert_eq!(prefixed.config[&p("P35")], "212");

    let stranger = Phone::new("c074ad0b63ee", "grp2614");
    let boot = stranger.boot(server.url("http"));
    assert_eq!(boot.fetched[0], ("cfgc074ad0b63ee.bin".to_string(), 404));
    assert_eq!(boot.fetched[1], ("cfgc074ad0b63ee.xml".to_string(), 404));
    assert_eq!(boot.fetched[2], ("cfggrp2614.xml".to_string(), 404));
    assert_eq!(boot.source, "cfg.xml", "{boot:?}");
    assert_eq!(boot.config[&p("P30")], "pool.ntp.org");
    let miss = server.wait_for("the stranger's miss", |e| {
        e["event"] == "fetch" && e["name"] == "cfgc074ad0b63ee.xml"
    });
    assert_eq!(miss["outcome"]["kind"], "not-found");
    assert!(
        miss["outcome"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("c074ad0b63ee")),
        "{miss}"
    );
    server.wait_for("discovery", |e| {
        e["event"] == "discovered" && e["mac"] == "c074ad0b63ee"
    });
    assert!(server.terminate().0.success());

    let list: Value = serde_json::from_str(&desk.ok(&["device", "list", "--json"])).expect("json");
    let stranger = list
        .as_array()
        .expect("array")
        .iter()
        .find(|d| d["mac"] == "c074ad0b63ee")
        .expect("discovered device listed");
    assert_eq!(stranger["state"], "discovered");
    assert_eq!(stranger["model"], "grp2614");
}

#[test]
fn digest_credentials_admit_the_phone_and_a_wrong_password_is_denied() {
    let (_desk, mut server) = serve(
        |desk| {
            let settings =
                std::fs::read_to_string(desk.root.join("provdesk.toml")).expect("settings");
            std::fs::write(
                desk.root.join("provdesk.toml"),
                settings.replace("mode = \"none\"", "mode = \"digest\""),
            )
            .expect("write");
            desk.write("profiles/authed.toml",
                "extends = \"office\"\n[params]\nP1360 = \"phone{{ ext }}\"\nP1361 = \"{{ http_password }}\"\n",
            );
            desk.ok(&[
                "device",
                "add",
                "000b82000013",
                "--model",
                "gxp2170",
                "--profile",
                "authed",
                "--var",
                "ext=213",
                "--var",
                "sip_secret=x",
                "--var",
                "http_password=h3ll0",
            ]);
        },
        &["--http", "127.0.0.1:0", "--https", "off", "--tftp", "off"],
    );
    let mut phone = Phone::new("000b82000013", "gxp2170");
    assert_eq!(
        phone.get(server.url("http"), "cfg000b82000013.xml").status,
        401
    );
    phone.curl_args = vec!["--digest".into(), "-u".into(), "phone213:h3ll0".into()];
    let boot = phone.boot(server.url("http"));
    assert_eq!(boot.source, "cfg000b82000013.xml", "{boot:?}");
    assert_eq!(boot.config[&p("P35")], "213");

    phone.curl_args = vec!["--digest".into(), "-u".into(), "phone213:n0tTh1s".into()];
    assert_eq!(
        phone.get(server.url("http"), "cfg000b82000013.xml").status,
        401
    );
    let denied = server.wait_for("the denial", |e| {
        e["event"] == "fetch"
            && e["outcome"]["kind"] == "denied"
            && e["outcome"]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("phone213"))
    });
    assert_no_secret(&denied, &["n0tTh1s", "h3ll0"]);
    assert!(server.terminate().0.success());
}

#[test]
fn https_with_and_without_trusting_the_desk_ca() {
    let (desk, server) = serve(
        |desk| {
            desk.ok(&[
                "device",
                "add",
                "000b82000014",
                "--model",
                "gxp2170",
                "--profile",
                "office",
                "--var",
                "ext=214",
                "--var",
                "sip_secret=x",
            ]);
        },
        &["--https", "127.0.0.1:0", "--http", "off", "--tftp", "off"],
    );
    let ca = desk.root.join("tls/ca.pem");
    let mut phone = Phone::new("000b82000014", "gxp2170");
    phone.curl_args = vec!["--cacert".into(), ca.display().to_string()];
    let boot = phone.boot(server.url("https"));
    assert_eq!(boot.source, "cfg000b82000014.xml", "{boot:?}");
    assert_eq!(boot.config[&p("P212")], "2", "P212 filled for HTTPS");
    // Without the CA the phone cannot trust the server: the TLS handshake fails (curl: 000).
    let untrusted = Phone::new("000b82000014", "gxp2170");
    assert_eq!(untrusted.get(server.url("https"), "cfg.xml").status, 0);
    assert!(server.terminate().0.success());
}

#[test]
fn an_edit_to_global_toml_reaches_the_next_fetch_and_traversal_is_refused() {
    let (desk, mut server) = serve(
        |_| {},
        &["--http", "127.0.0.1:0", "--https", "off", "--tftp", "off"],
    );
    let phone = Phone::new("c074ad000001", "gxp2170");
    let before = phone.boot(server.url("http"));
    assert_eq!(before.config[&p("P30")], "pool.ntp.org");
    let global = desk.root.join("profiles/global.toml");
    let text = std::fs::read_to_string(&global).expect("global");
    std::fs::write(&global, text.replace("pool.ntp.org", "ntp.example.net")).expect("edit");
    server.wait_for("the rebuild", |e| {
        e["event"] == "build" && e["published"] == true
    });
    let after = phone.boot(server.url("http"));
    assert_eq!(after.config[&p("P30")], "ntp.example.net");

    for name in [
        "../provdesk.db",
        "%2e%2e/provdesk.db",
        "..%2fprovdesk.db",
        "%2e%2e%2fprovdesk.toml",
        "cfg%00.xml",
        "..%5cprovdesk.db",
    ] {
        let response = phone.get(server.url("http"), name);
        assert!(
            matches!(response.status, 400 | 404),
            "{name}: {}",
            response.status
        );
        assert!(
            !String::from_utf8_lossy(&response.body).contains("SQLite"),
            "{name} leaked the database"
        );
    }
    assert!(server.terminate().0.success());
}

/// A client CA and one phone certificate it signed, made by the real `openssl` command the
/// way a site's PKI would: `(ca.pem, phone.pem, phone.key)`.
fn phone_pki(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let file = |suffix: &str| dir.join(format!("{name}-{suffix}"));
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl must be installed (scripts/test installs it)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let (ca_key, ca, key, csr, cert, ext) = (
        format!("{name}-ca.key"),
        format!("{name}-ca.pem"),
        format!("{name}-phone.key"),
        format!("{name}-phone.csr"),
        format!("{name}-phone.pem"),
        format!("{name}-phone.ext"),
    );
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &ca_key,
        "-out",
        &ca,
        "-days",
        "2",
        "-subj",
        &format!("/CN={name} phones CA"),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &key,
        "-out",
        &csr,
        "-subj",
        &format!("/CN={name} GXP2170"),
    ]);
    std::fs::write(dir.join(&ext), "extendedKeyUsage=clientAuth\n").expect("ext file");
    openssl(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-out",
        &cert,
        "-days",
        "2",
        "-extfile",
        &ext,
    ]);
    (file("ca.pem"), file("phone.pem"), file("phone.key"))
}

#[test]
fn https_requiring_a_client_certificate_admits_only_phones_with_one() {
    let pki = tempfile::tempdir().expect("temp dir");
    let (client_ca, cert, key) = phone_pki(pki.path(), "site");
    let (_, stranger_cert, stranger_key) = phone_pki(pki.path(), "stranger");
    let (desk, mut server) = serve(
        |desk| {
            let settings = std::fs::read_to_string(desk.root.join("provdesk.toml")).expect("read");
            let settings = settings
                .replace(
                    "# client_ca = \"/path/to/phones-ca.pem\"",
                    &format!("client_ca = {:?}", client_ca.display().to_string()),
                )
                .replace(
                    "# require_client_cert = false",
                    "require_client_cert = true",
                );
            std::fs::write(desk.root.join("provdesk.toml"), settings).expect("write");
            desk.ok(&[
                "device",
                "add",
                "000b82000015",
                "--model",
                "gxp2170",
                "--profile",
                "office",
                "--var",
                "ext=215",
                "--var",
                "sip_secret=x",
            ]);
        },
        &["--https", "127.0.0.1:0", "--http", "off", "--tftp", "off"],
    );
    let ca = desk.root.join("tls/ca.pem").display().to_string();
    let mut phone = Phone::new("000b82000015", "gxp2170");
    phone.curl_args = vec![
        "--cacert".into(),
        ca.clone(),
        "--cert".into(),
        cert.display().to_string(),
        "--key".into(),
        key.display().to_string(),
    ];
    let boot = phone.boot(server.url("https"));
    assert_eq!(boot.source, "cfg000b82000015.xml", "{boot:?}");
    assert_eq!(boot.config[&p("P35")], "215");

    // Trusting the server is not enough: without a certificate the phone is refused, and the
    // log says why.
    let mut bare = Phone::new("000b82000015", "gxp2170");
    bare.curl_args = vec!["--cacert".into(), ca.clone()];
    assert_eq!(
        bare.get(server.url("https"), "cfg000b82000015.xml").status,
        403
    );
    let denied = server.wait_for("the denial without a certificate", |e| {
        e["event"] == "fetch" && e["outcome"]["kind"] == "denied"
    });
    assert!(
        denied["outcome"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("no client certificate")),
        "{denied}"
    );

    // A certificate from another CA fails the handshake.
    let mut stranger = Phone::new("000b82000015", "gxp2170");
    stranger.curl_args = vec![
        "--cacert".into(),
        ca,
        "--cert".into(),
        stranger_cert.display().to_string(),
        "--key".into(),
        stranger_key.display().to_string(),
    ];
    assert_ne!(stranger.get(server.url("https"), "cfg.xml").status, 200);
    let refused = server.wait_for("the refused handshake", |e| {
        e["event"] == "fetch"
            && e["outcome"]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("client certificate not accepted"))
    });
    assert_eq!(refused["outcome"]["kind"], "denied", "{refused}");
    assert!(server.terminate().0.success());
}
