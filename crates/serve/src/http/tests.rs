//! The servers against the real `curl` on loopback: every request's status, headers and body,
//! and the one event it produces. curl is a required test peer: a missing curl fails.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use provdesk_core::Mac;
use provdesk_core::build::{
    ArtifactKind, CredentialTable, HttpCredentials, Manifest, ManifestEntry,
};
use provdesk_core::desk::{AuthMode, AuthSettings, TlsSettings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::events::{Event, EventBus, Fetch, Outcome, Protocol};
use crate::store::{ArtifactStore, Snapshot};

const TIMEOUT: Duration = Duration::from_secs(20);
const PHONE_UA: &str = "Grandstream Model HW GXP2170 V1.1A SW 1.0.11.3 DevId 000b82123456";
const DEVICE_PASSWORD: &str = "Dev1ce-Secret!";
const GLOBAL_PASSWORD: &str = "Gl0bal-Secret!";
const DB_CONTENT: &[u8] = b"SQLite format 3\0 the inventory, never served";

fn mac(text: &str) -> Mac {
    text.parse().unwrap()
}

/// A desk with a published build: generic, model and device configs, a device binary and a
/// firmware image, plus a database file next to them that must stay unreachable.
fn build_store(root: &Path, firmware_size: usize, credentials: CredentialTable) -> ArtifactStore {
    std::fs::create_dir_all(root.join("build")).unwrap();
    std::fs::create_dir_all(root.join("firmware")).unwrap();
    std::fs::write(root.join("provdesk.db"), DB_CONTENT).unwrap();
    let firmware: Vec<u8> = (0..firmware_size).map(|i| (i % 251) as u8).collect();
    let device = Some(mac("000b82123456"));
    let gxp = Some("gxp2170");
    let mut manifest = Manifest {
        build: 7,
        ..Manifest::default()
    };
    let mut add = |folder: &str, name: &str, bytes: &[u8], kind, mac, model: Option<&str>| {
        let file = format!("{folder}/{name}");
        std::fs::write(root.join(&file), bytes).unwrap();
        let entry = ManifestEntry {
            file,
            // Firmware is checked against its manifest hash when loaded: the real one.
            hash: if kind == ArtifactKind::Firmware {
                hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes))
            } else {
                format!("hash-of-{name}")
            },
            input: "input".into(),
            version: 3,
            kind,
            mac,
            model: model.map(Into::into),
            encrypted: false,
            size: bytes.len() as u64,
        };
        manifest.entries.insert(name.into(), entry);
    };
    let xml = |what: &str| format!("<gs_provision version=\"1\"><{what}/></gs_provision>\n");
    add(
        "build",
        "cfg.xml",
        xml("config").as_bytes(),
        ArtifactKind::GenericXml,
        None,
        None,
    );
    add(
        "build",
        "cfggxp2170.xml",
        xml("model").as_bytes(),
        ArtifactKind::ModelXml,
        None,
        gxp,
    );
    let device_xml = xml("device");
    add(
        "build",
        "cfg000b82123456.xml",
        device_xml.as_bytes(),
        ArtifactKind::DeviceXml,
        device,
        gxp,
    );
    add(
        "build",
        "cfg000b82123456",
        &[0, 1, 2, 3, 4, 5, 6, 7],
        ArtifactKind::DeviceBinary,
        device,
        gxp,
    );
    add(
        "firmware",
        "gxp2170fw.bin",
        &firmware,
        ArtifactKind::Firmware,
        None,
        gxp,
    );
    ArtifactStore::new(Snapshot::load(root, manifest, credentials, None).unwrap())
}

fn credentials() -> CredentialTable {
    let mut table = CredentialTable::default();
    table.devices.insert(
        mac("000b82123456"),
        HttpCredentials {
            user: "phone".into(),
            password: DEVICE_PASSWORD.into(),
        },
    );
    table.generic = Some(HttpCredentials {
        user: "global".into(),
        password: GLOBAL_PASSWORD.into(),
    });
    table
}

struct Server {
    desk: tempfile::TempDir,
    port: u16,
    events: broadcast::Receiver<Arc<Event>>,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), HttpError>>,
    scheme: &'static str,
    /// Every event seen, to check at the end that no secret leaked into any of them.
    seen: Vec<Arc<Event>>,
}

#[derive(Default)]
struct Options {
    config: Option<HttpConfig>,
    tls: Option<TlsSettings>,
    credentials: Option<CredentialTable>,
    firmware_size: Option<usize>,
}

async fn start(options: Options) -> Server {
    let desk = tempfile::tempdir().unwrap();
    let store = Arc::new(build_store(
        desk.path(),
        options.firmware_size.unwrap_or(300_000),
        options.credentials.unwrap_or_else(credentials),
    ));
    let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = listener.local_addr().unwrap().port();
    let bus = EventBus::new(1024);
    let events = bus.subscribe();
    let shutdown = CancellationToken::new();
    let (task, scheme) = match options.tls {
        None => {
            let config = options
                .config
                .unwrap_or_else(|| HttpConfig::new(Protocol::Http));
            let task = tokio::spawn(run(listener, config, store, bus, shutdown.clone()));
            (task, "http")
        }
        Some(settings) => {
            let material = tls::load_or_generate(desk.path(), &settings, &[]).unwrap();
            let mut config = options
                .config
                .unwrap_or_else(|| HttpConfig::new(Protocol::Https));
            config.policy =
                AccessPolicy::default().with_client_certificates(material.require_client_cert);
            let task = tokio::spawn(run_tls(
                listener,
                config,
                material.config,
                store,
                bus,
                shutdown.clone(),
            ));
            (task, "https")
        }
    };
    let mut server = Server {
        desk,
        port,
        events,
        shutdown,
        task,
        scheme,
        seen: Vec::new(),
    };
    match server.next_event().await.as_ref() {
        Event::Listening { url, .. } => assert!(url.contains(&port.to_string()), "{url}"),
        other => panic!("expected Listening first, got {other:?}"),
    }
    server
}

struct Reply {
    status: u16,
    headers: String,
    body: Vec<u8>,
    curl_exit: i32,
}

impl Reply {
    fn header(&self, name: &str) -> Option<String> {
        // With Digest, curl writes the 401's headers first; the last block is the answer.
        let last = self
            .headers
            .rsplit("\r\n\r\n")
            .find(|b| !b.trim().is_empty())?;
        last.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    }
}

impl Server {
    fn url(&self, path: &str) -> String {
        let host = if self.scheme == "https" {
            "localhost"
        } else {
            "127.0.0.1"
        };
        format!("{}://{host}:{}{path}", self.scheme, self.port)
    }

    fn tls_dir(&self) -> PathBuf {
        self.desk.path().join("tls")
    }

    /// Runs curl on `path` with `args` and returns what it got.
    async fn curl(&self, path: &str, args: &[&str]) -> Reply {
        let headers = self.desk.path().join("curl-headers");
        let body = self.desk.path().join("curl-body");
        let _ = std::fs::remove_file(&headers);
        let _ = std::fs::remove_file(&body);
        let resolve = format!("localhost:{}:127.0.0.1", self.port);
        let mut command = tokio::process::Command::new("curl");
        command
            .args(["-s", "-S", "--max-time", "15", "--resolve", &resolve])
            .arg("-D")
            .arg(&headers)
            .arg("-o")
            .arg(&body)
            .args(["-w", "%{http_code}"])
            .args(args)
            .arg(self.url(path))
            .kill_on_drop(true);
        let output = tokio::time::timeout(TIMEOUT, command.output())
            .await
            .expect("curl timed out")
            .expect("curl must be installed to test the HTTP server");
        Reply {
            status: String::from_utf8_lossy(&output.stdout)
                .trim()
                .parse()
                .unwrap_or(0),
            headers: std::fs::read_to_string(&headers).unwrap_or_default(),
            body: std::fs::read(&body).unwrap_or_default(),
            curl_exit: output.status.code().unwrap_or(-1),
        }
    }

    async fn next_event(&mut self) -> Arc<Event> {
        let event = tokio::time::timeout(TIMEOUT, self.events.recv())
            .await
            .expect("no event within the timeout")
            .expect("event bus closed or lagged");
        self.seen.push(Arc::clone(&event));
        event
    }

    async fn next_fetch(&mut self) -> Fetch {
        match self.next_event().await.as_ref() {
            Event::Fetch(fetch) => fetch.clone(),
            other => panic!("expected a fetch event, got {other:?}"),
        }
    }

    /// Checks the events seen: none carries a password, in Debug or in JSON.
    fn assert_no_secrets(&self) {
        for event in &self.seen {
            let debug = format!("{event:?}");
            let json = serde_json::to_string(event.as_ref()).unwrap();
            for secret in [DEVICE_PASSWORD, GLOBAL_PASSWORD] {
                assert!(!debug.contains(secret), "password in {debug}");
                assert!(!json.contains(secret), "password in {json}");
            }
            assert!(!json.contains("Authorization") && !json.contains("authorization"));
        }
    }

    async fn stop(mut self) {
        self.assert_no_secrets();
        self.shutdown.cancel();
        let result = tokio::time::timeout(TIMEOUT, &mut self.task)
            .await
            .expect("server did not stop")
            .expect("server task panicked");
        result.unwrap();
    }
}

fn served(fetch: &Fetch, status: u16) {
    assert_eq!(fetch.outcome, Outcome::Served { status }, "{fetch:?}");
}

fn refused(fetch: &Fetch, kind: &str, reason_part: &str) {
    let (got_kind, reason) = match &fetch.outcome {
        Outcome::NotFound { reason } => ("not-found", reason),
        Outcome::BadRequest { reason } => ("bad-request", reason),
        Outcome::Denied { reason } => ("denied", reason),
        Outcome::Failed { reason } => ("failed", reason),
        Outcome::Served { .. } => ("served", &String::new()),
    };
    assert_eq!(got_kind, kind, "{fetch:?}");
    assert!(
        reason.contains(reason_part),
        "{reason:?} lacks {reason_part:?}"
    );
}

#[tokio::test]
async fn serves_get_and_head_with_validators() {
    let mut server = start(Options::default()).await;
    let reply = server.curl("/cfg.xml", &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body,
        b"<gs_provision version=\"1\"><config/></gs_provision>\n"
    );
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("application/xml")
    );
    assert_eq!(reply.header("etag").as_deref(), Some("\"hash-of-cfg.xml\""));
    assert_eq!(reply.header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(reply.header("content-length").as_deref(), Some("51"));
    let fetch = server.next_fetch().await;
    served(&fetch, 200);
    assert_eq!(fetch.name, "cfg.xml");
    assert_eq!(fetch.protocol, Protocol::Http);
    assert_eq!(fetch.peer.ip().to_string(), "127.0.0.1");
    assert_eq!(fetch.bytes, 51);
    let artifact = fetch.artifact.unwrap();
    assert_eq!(artifact.kind, ArtifactKind::GenericXml);
    assert_eq!(artifact.hash, "hash-of-cfg.xml");
    assert_eq!(artifact.version, 3);
    assert!(fetch.user_agent.unwrap().starts_with("curl/"));
    assert_eq!(fetch.mac, None);

    let reply = server.curl("/CFG.XML", &["-I"]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-length").as_deref(), Some("51"));
    // With -I curl writes the headers where the body would go; there must be no body.
    assert!(!reply.body.windows(5).any(|w| w == b"<gs_p"));
    let fetch = server.next_fetch().await;
    served(&fetch, 200);
    assert_eq!(fetch.bytes, 0);

    let reply = server
        .curl("/cfg.xml", &["-H", "If-None-Match: \"hash-of-cfg.xml\""])
        .await;
    assert_eq!(reply.status, 304);
    assert!(reply.body.is_empty());
    served(&server.next_fetch().await, 304);

    let reply = server.curl("/cfg000b82123456", &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("application/octet-stream")
    );
    let fetch = server.next_fetch().await;
    served(&fetch, 200);
    assert_eq!(fetch.mac, Some(mac("000b82123456")));
    // The manifest knows the model when the User-Agent does not say.
    assert_eq!(fetch.model.as_deref(), Some("gxp2170"));
    server.stop().await;
}

#[tokio::test]
async fn serves_byte_ranges_of_firmware() {
    let mut server = start(Options::default()).await;
    let reply = server.curl("/gxp2170fw.bin", &["-r", "0-99"]).await;
    assert_eq!(reply.status, 206);
    assert_eq!(reply.body.len(), 100);
    assert_eq!(reply.body[99], 99);
    assert_eq!(
        reply.header("content-range").as_deref(),
        Some("bytes 0-99/300000")
    );
    assert_eq!(reply.header("cache-control").as_deref(), Some("no-cache"));
    let fetch = server.next_fetch().await;
    served(&fetch, 206);
    assert_eq!(fetch.bytes, 100);
    assert_eq!(fetch.artifact.unwrap().kind, ArtifactKind::Firmware);

    let reply = server.curl("/gxp2170fw.bin", &["-r", "-10"]).await;
    assert_eq!(reply.status, 206);
    assert_eq!(
        reply.header("content-range").as_deref(),
        Some("bytes 299990-299999/300000")
    );
    served(&server.next_fetch().await, 206);

    let reply = server.curl("/gxp2170fw.bin", &["-r", "299000-"]).await;
    assert_eq!(reply.status, 206);
    assert_eq!(reply.body.len(), 1000);
    served(&server.next_fetch().await, 206);

    let reply = server.curl("/gxp2170fw.bin", &["-r", "300000-"]).await;
    assert_eq!(reply.status, 416);
    assert_eq!(
        reply.header("content-range").as_deref(),
        Some("bytes */300000")
    );
    refused(&server.next_fetch().await, "bad-request", "not satisfiable");

    // The whole image, bigger than one body slice.
    let reply = server.curl("/gxp2170fw.bin", &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body.len(), 300_000);
    let fetch = server.next_fetch().await;
    served(&fetch, 200);
    assert_eq!(fetch.bytes, 300_000);
    server.stop().await;
}

#[tokio::test]
async fn reads_mac_and_model_from_the_user_agent_and_explains_misses() {
    let mut server = start(Options::default()).await;
    let reply = server.curl("/cfg.xml", &["-A", PHONE_UA]).await;
    assert_eq!(reply.status, 200);
    let fetch = server.next_fetch().await;
    served(&fetch, 200);
    assert_eq!(fetch.mac, Some(mac("000b82123456")));
    assert_eq!(fetch.model.as_deref(), Some("gxp2170"));
    assert_eq!(fetch.user_agent.as_deref(), Some(PHONE_UA));

    // A phone the build does not know: 404, and the event says what the phone does next.
    let reply = server.curl("/cfg000b82aabbcc.xml", &["-A", PHONE_UA]).await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.body, b"not found\n");
    let fetch = server.next_fetch().await;
    refused(&fetch, "not-found", "falls back to cfg<model>.xml");
    // The name's MAC wins over the User-Agent's.
    assert_eq!(fetch.mac, Some(mac("000b82aabbcc")));
    assert_eq!(fetch.model.as_deref(), Some("gxp2170"));

    let reply = server.curl("/cfggrp2614.xml", &[]).await;
    assert_eq!(reply.status, 404);
    refused(&server.next_fetch().await, "not-found", "no such file");
    server.stop().await;
}

#[tokio::test]
async fn refuses_traversal_and_malformed_names() {
    let mut server = start(Options::default()).await;
    let long = format!("/{}.xml", "a".repeat(300));
    let cases: [(&str, u16, &str, &str); 12] = [
        ("/../provdesk.db", 400, "bad-request", "traversal"),
        ("/%2e%2e/provdesk.db", 400, "bad-request", "traversal"),
        ("/%2E%2E%2Fprovdesk.db", 400, "bad-request", "encoded '/'"),
        ("/..%2fprovdesk.db", 400, "bad-request", "encoded '/'"),
        ("/..%5cprovdesk.db", 400, "bad-request", "encoded '/'"),
        ("/cfg%00.xml", 400, "bad-request", "NUL"),
        ("/cfg%zz.xml", 400, "bad-request", "percent-encoding"),
        ("/cfg%0a.xml", 400, "bad-request", "control"),
        ("/build/cfg.xml", 400, "bad-request", "separators"),
        (long.as_str(), 400, "bad-request", "longer than 255"),
        ("/", 404, "not-found", "directory listing"),
        ("/build/", 404, "not-found", "directory listing"),
    ];
    for (path, status, kind, reason) in cases {
        let reply = server.curl(path, &["--path-as-is"]).await;
        assert_eq!(reply.status, status, "{path}");
        assert!(!reply.body.windows(6).any(|w| w == b"SQLite"), "{path}");
        let fetch = server.next_fetch().await;
        refused(&fetch, kind, reason);
        assert!(fetch.artifact.is_none());
    }
    // The event shows a decoded control character escaped, never raw.
    let reply = server.curl("/cfg%1b.xml", &[]).await;
    assert_eq!(reply.status, 400);
    let fetch = server.next_fetch().await;
    assert_eq!(fetch.name, "cfg\\u{1b}.xml");

    // Raw backslashes reach the handler as they are and are refused like encoded ones.
    for (path, reason) in [
        ("/..\\provdesk.db", "traversal"),
        ("/build\\cfg.xml", "separators"),
    ] {
        let reply = server.curl(path, &["--path-as-is"]).await;
        assert_eq!(reply.status, 400, "{path}");
        assert!(!reply.body.windows(6).any(|w| w == b"SQLite"));
        refused(&server.next_fetch().await, "bad-request", reason);
    }
    // The next event is the next request's: nothing stray in between.
    server.curl("/cfg.xml", &[]).await;
    served(&server.next_fetch().await, 200);
    server.stop().await;
}

#[tokio::test]
async fn allows_only_get_and_head() {
    let mut server = start(Options::default()).await;
    for method in ["POST", "PUT", "DELETE"] {
        let reply = server.curl("/cfg.xml", &["-X", method, "-d", "x"]).await;
        assert_eq!(reply.status, 405, "{method}");
        assert_eq!(reply.header("allow").as_deref(), Some("GET, HEAD"));
        refused(
            &server.next_fetch().await,
            "bad-request",
            &format!("method {method} not allowed"),
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn serves_under_a_base_path_only() {
    let mut config = HttpConfig::new(Protocol::Http);
    config.base_path = "/gs".into();
    let mut server = start(Options {
        config: Some(config),
        ..Options::default()
    })
    .await;
    let reply = server.curl("/gs/cfg.xml", &[]).await;
    assert_eq!(reply.status, 200);
    served(&server.next_fetch().await, 200);
    let reply = server.curl("/cfg.xml", &[]).await;
    assert_eq!(reply.status, 404);
    refused(
        &server.next_fetch().await,
        "not-found",
        "outside the base path /gs/",
    );
    let reply = server.curl("/gs", &[]).await;
    assert_eq!(reply.status, 404);
    refused(
        &server.next_fetch().await,
        "not-found",
        "outside the base path",
    );
    let reply = server.curl("/gs/", &[]).await;
    assert_eq!(reply.status, 404);
    refused(&server.next_fetch().await, "not-found", "directory listing");
    server.stop().await;

    let bad = HttpConfig {
        base_path: "gs/".into(),
        ..HttpConfig::new(Protocol::Http)
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let store = Arc::new(ArtifactStore::default());
    let result = run(
        listener,
        bad,
        store,
        EventBus::new(16),
        CancellationToken::new(),
    )
    .await;
    assert!(matches!(result, Err(HttpError::BasePath(_))));
}

#[tokio::test]
async fn denies_peers_outside_the_allow_list_before_anything_else() {
    let mut config = HttpConfig::new(Protocol::Http);
    config.policy =
        AccessPolicy::default().with_allow(AccessList::parse(&["10.0.0.0/8".to_string()]).unwrap());
    config.auth = AuthSettings {
        mode: AuthMode::Digest,
        realm: "ProvDesk".into(),
    };
    let mut server = start(Options {
        config: Some(config),
        ..Options::default()
    })
    .await;
    for (path, args) in [
        ("/cfg.xml", vec![]),
        ("/../provdesk.db", vec!["--path-as-is"]),
    ] {
        let reply = server.curl(path, &args).await;
        assert_eq!(reply.status, 403, "{path}");
        assert!(reply.header("www-authenticate").is_none());
        refused(
            &server.next_fetch().await,
            "denied",
            "not in the allow-list",
        );
    }
    let reply = server.curl("/cfg.xml", &["-X", "POST"]).await;
    assert_eq!(reply.status, 403);
    refused(
        &server.next_fetch().await,
        "denied",
        "not in the allow-list",
    );
    server.stop().await;
}

fn auth_config(mode: AuthMode) -> HttpConfig {
    HttpConfig {
        auth: AuthSettings {
            mode,
            realm: "ProvDesk".into(),
        },
        ..HttpConfig::new(Protocol::Http)
    }
}

#[tokio::test]
async fn basic_auth_with_the_devices_p1360_p1361() {
    let mut server = start(Options {
        config: Some(auth_config(AuthMode::Basic)),
        ..Options::default()
    })
    .await;
    let device = format!("phone:{DEVICE_PASSWORD}");
    let reply = server
        .curl("/cfg000b82123456.xml", &["--basic", "-u", &device])
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body,
        b"<gs_provision version=\"1\"><device/></gs_provision>\n"
    );
    served(&server.next_fetch().await, 200);

    let reply = server
        .curl("/cfg000b82123456.xml", &["--basic", "-u", "phone:guess"])
        .await;
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.header("www-authenticate").as_deref(),
        Some("Basic realm=\"ProvDesk\", charset=\"UTF-8\"")
    );
    refused(
        &server.next_fetch().await,
        "denied",
        "wrong password for user phone",
    );

    // The device's password does not open the generic file; the global layer's does.
    let reply = server.curl("/cfg.xml", &["--basic", "-u", &device]).await;
    assert_eq!(reply.status, 401);
    // A user name that is not this file's is never echoed (it is often a password).
    let fetch = server.next_fetch().await;
    refused(&fetch, "denied", "unknown user");
    assert_eq!(fetch.outcome.reason(), Some("unknown user"));
    let global = format!("global:{GLOBAL_PASSWORD}");
    let reply = server.curl("/cfg.xml", &["--basic", "-u", &global]).await;
    assert_eq!(reply.status, 200);
    served(&server.next_fetch().await, 200);
    // ... unless the phone says who it is: its User-Agent names the device.
    let reply = server
        .curl("/cfg.xml", &["--basic", "-u", &device, "-A", PHONE_UA])
        .await;
    assert_eq!(reply.status, 200);
    served(&server.next_fetch().await, 200);

    let reply = server.curl("/cfg.xml", &[]).await;
    assert_eq!(reply.status, 401);
    refused(&server.next_fetch().await, "denied", "no credentials sent");
    server.stop().await;
}

#[tokio::test]
async fn auth_without_configured_credentials_denies() {
    let mut server = start(Options {
        config: Some(auth_config(AuthMode::Digest)),
        credentials: Some(CredentialTable::default()),
        ..Options::default()
    })
    .await;
    let reply = server.curl("/cfg.xml", &["--digest", "-u", "a:b"]).await;
    assert_eq!(reply.status, 401);
    refused(
        &server.next_fetch().await,
        "denied",
        "no P1360/P1361 configured for this device",
    );
    server.stop().await;
}

#[tokio::test]
async fn digest_auth_with_curl() {
    let mut server = start(Options {
        config: Some(auth_config(AuthMode::Digest)),
        ..Options::default()
    })
    .await;
    let device = format!("phone:{DEVICE_PASSWORD}");
    let reply = server
        .curl(
            "/cfg000b82123456.xml?x=1",
            &["--digest", "-u", &device, "-A", PHONE_UA],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.headers);
    assert_eq!(
        reply.body,
        b"<gs_provision version=\"1\"><device/></gs_provision>\n"
    );
    // curl asks once without credentials, then answers the challenge.
    let challenge = server.next_fetch().await;
    refused(&challenge, "denied", "challenged for Digest");
    assert_eq!(challenge.mac, Some(mac("000b82123456")));
    let fetch = server.next_fetch().await;
    served(&fetch, 200);
    assert_eq!(fetch.model.as_deref(), Some("gxp2170"));
    assert!(
        reply.headers.to_ascii_lowercase().contains(
            "www-authenticate: digest realm=\"provdesk\", qop=\"auth\", algorithm=md5, nonce=\""
        ),
        "{}",
        reply.headers
    );

    let reply = server
        .curl("/cfg000b82123456.xml", &["--digest", "-u", "phone:wrong"])
        .await;
    assert_eq!(reply.status, 401);
    refused(
        &server.next_fetch().await,
        "denied",
        "challenged for Digest",
    );
    refused(
        &server.next_fetch().await,
        "denied",
        "wrong password for user phone",
    );

    let reply = server
        .curl(
            "/gxp2170fw.bin",
            &["--digest", "-u", &format!("global:{GLOBAL_PASSWORD}"), "-I"],
        )
        .await;
    assert_eq!(reply.status, 200);
    refused(
        &server.next_fetch().await,
        "denied",
        "challenged for Digest",
    );
    served(&server.next_fetch().await, 200);
    server.stop().await;
}

#[tokio::test]
async fn https_with_the_generated_ca() {
    let mut server = start(Options {
        tls: Some(TlsSettings::default()),
        ..Options::default()
    })
    .await;
    let ca = server.tls_dir().join("ca.pem");
    let ca = ca.to_str().unwrap().to_string();
    for version in ["--http1.1", "--http2"] {
        let reply = server
            .curl("/cfg.xml", &["--cacert", &ca, version, "-A", PHONE_UA])
            .await;
        assert_eq!(reply.status, 200, "{version}");
        assert_eq!(
            reply.body,
            b"<gs_provision version=\"1\"><config/></gs_provision>\n"
        );
        let fetch = server.next_fetch().await;
        served(&fetch, 200);
        assert_eq!(fetch.protocol, Protocol::Https);
        assert_eq!(fetch.mac, Some(mac("000b82123456")));
    }
    // A client that does not trust the desk's CA gives up in the handshake.
    let reply = server.curl("/cfg.xml", &[]).await;
    assert_eq!(reply.curl_exit, 60, "curl should reject an unknown CA");
    let fetch = server.next_fetch().await;
    assert_eq!(fetch.name, HANDSHAKE_NAME);
    refused(&fetch, "failed", "does it trust the desk's CA");
    server.stop().await;
}

/// A client CA and one client certificate it signed, written as PEM files into `dir`.
fn client_pki(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("{name} client CA"));
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["phone.example".to_string()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("{name} phone"));
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, &issuer).unwrap();
    let paths = (
        dir.join(format!("{name}-ca.pem")),
        dir.join(format!("{name}-client.pem")),
        dir.join(format!("{name}-client.key")),
    );
    std::fs::write(&paths.0, ca_cert.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

#[tokio::test]
async fn https_client_certificates_when_required() {
    let pki = tempfile::tempdir().unwrap();
    let (client_ca, cert, key) = client_pki(pki.path(), "good");
    let (_, stranger_cert, stranger_key) = client_pki(pki.path(), "stranger");
    let settings = TlsSettings {
        client_ca: Some(client_ca),
        require_client_cert: true,
        ..TlsSettings::default()
    };
    let mut server = start(Options {
        tls: Some(settings),
        ..Options::default()
    })
    .await;
    let ca = server
        .tls_dir()
        .join("ca.pem")
        .to_str()
        .unwrap()
        .to_string();
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let reply = server
        .curl("/cfg.xml", &["--cacert", &ca, "--cert", cert, "--key", key])
        .await;
    assert_eq!(reply.status, 200);
    served(&server.next_fetch().await, 200);

    let reply = server
        .curl("/cfg.xml", &["--cacert", &ca, "-A", PHONE_UA])
        .await;
    assert_eq!(reply.status, 403);
    let fetch = server.next_fetch().await;
    refused(&fetch, "denied", "no client certificate");
    assert_eq!(fetch.mac, Some(mac("000b82123456")));

    let reply = server
        .curl(
            "/cfg.xml",
            &[
                "--cacert",
                &ca,
                "--cert",
                stranger_cert.to_str().unwrap(),
                "--key",
                stranger_key.to_str().unwrap(),
            ],
        )
        .await;
    assert_ne!(reply.status, 200);
    let fetch = server.next_fetch().await;
    assert_eq!(fetch.name, HANDSHAKE_NAME);
    refused(&fetch, "denied", "client certificate not accepted");
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_leaves_midway_is_a_failed_fetch() {
    // Far more than loopback socket buffers hold, so the server sees the client go.
    let size = 48 * 1024 * 1024;
    let mut server = start(Options {
        firmware_size: Some(size),
        ..Options::default()
    })
    .await;
    let mut stream = TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    stream
        .write_all(b"GET /gxp2170fw.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 1024];
    let n = tokio::time::timeout(TIMEOUT, stream.read(&mut head))
        .await
        .unwrap()
        .unwrap();
    assert!(head[..n].starts_with(b"HTTP/1.1 200"));
    drop(stream);
    let fetch = server.next_fetch().await;
    refused(&fetch, "failed", "connection closed after");
    assert!(fetch.bytes < size as u64, "{fetch:?}");
    server.stop().await;
}

#[tokio::test]
async fn shutdown_stops_accepting_and_lets_idle_connections_go() {
    let server = start(Options::default()).await;
    let port = server.port;
    // An idle keep-alive connection must not hold the shutdown for the grace period.
    let mut idle = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    idle.write_all(b"GET /cfg.xml HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(TIMEOUT, idle.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let started = std::time::Instant::now();
    server.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
    // The idle connection was closed by the server.
    let n = tokio::time::timeout(TIMEOUT, idle.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0);
}

/// Writes `request` on a fresh connection and reads until the server closes it.
async fn exchange(port: u16, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut reply))
        .await
        .expect("the server did not close the connection")
        .unwrap();
    String::from_utf8_lossy(&reply).into_owned()
}

fn status_lines(reply: &str) -> Vec<&str> {
    // `lines` also splits where a body without a final CRLF runs into the next status line.
    reply
        .lines()
        .filter(|line| line.starts_with("HTTP/1.1 "))
        .collect()
}

#[tokio::test]
async fn keeps_connections_alive_and_answers_pipelined_requests() {
    let mut server = start(Options::default()).await;
    // Three requests in one write; the last asks the server to close after it.
    let reply = exchange(
        server.port,
        b"GET /cfg.xml HTTP/1.1\r\nHost: x\r\n\r\n\
          HEAD /cfg000b82123456 HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /nothing.xml HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(
        status_lines(&reply),
        [
            "HTTP/1.1 200 OK",
            "HTTP/1.1 200 OK",
            "HTTP/1.1 404 Not Found"
        ],
        "{reply}"
    );
    assert_eq!(reply.matches("connection: close").count(), 1, "{reply}");
    assert!(reply.contains("<gs_provision"), "{reply}");
    served(&server.next_fetch().await, 200);
    let head = server.next_fetch().await;
    served(&head, 200);
    assert_eq!((head.name.as_str(), head.bytes), ("cfg000b82123456", 0));
    refused(&server.next_fetch().await, "not-found", "no such file");
    server.stop().await;
}

#[tokio::test]
async fn http_1_0_gets_one_answer_then_the_connection_closes() {
    let mut server = start(Options::default()).await;
    let reply = exchange(
        server.port,
        b"GET /cfg.xml HTTP/1.0\r\n\r\nGET /cfg.xml HTTP/1.0\r\n\r\n",
    )
    .await;
    assert_eq!(status_lines(&reply), ["HTTP/1.1 200 OK"], "{reply}");
    assert!(reply.contains("content-length: 51\r\n"), "{reply}");
    assert!(reply.contains("connection: close\r\n"), "{reply}");
    served(&server.next_fetch().await, 200);
    server.stop().await;
}

#[tokio::test]
async fn refuses_oversized_and_malformed_heads_before_the_handler() {
    let mut server = start(Options::default()).await;
    let huge = format!(
        "GET /cfg.xml HTTP/1.1\r\nX-Filler: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let reply = exchange(server.port, huge.as_bytes()).await;
    assert!(
        reply.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{reply}"
    );
    for garbage in [
        &b"HELLO\r\n\r\n"[..],
        b"GET /cfg.xml HTTP/1.1\r\nNo-Colon\r\n\r\n",
    ] {
        let reply = exchange(server.port, garbage).await;
        assert!(reply.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{reply}");
        assert!(reply.contains("connection: close\r\n"), "{reply}");
    }
    // None of them made an event: the next one is this request's.
    server.curl("/cfg.xml", &[]).await;
    assert_eq!(server.next_fetch().await.name, "cfg.xml");
    server.stop().await;
}

#[tokio::test]
async fn reads_past_a_small_request_body_and_keeps_the_connection() {
    let mut server = start(Options::default()).await;
    let reply = exchange(
        server.port,
        b"POST /cfg.xml HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
          GET /cfg.xml HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(
        status_lines(&reply),
        ["HTTP/1.1 405 Method Not Allowed", "HTTP/1.1 200 OK"],
        "{reply}"
    );
    refused(
        &server.next_fetch().await,
        "bad-request",
        "method POST not allowed",
    );
    served(&server.next_fetch().await, 200);
    // A chunked body is not read: one answer, then the connection closes.
    let reply = exchange(
        server.port,
        b"POST /cfg.xml HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\r\n0\r\n\r\nGET /cfg.xml HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert_eq!(
        status_lines(&reply),
        ["HTTP/1.1 405 Method Not Allowed"],
        "{reply}"
    );
    assert!(reply.contains("connection: close\r\n"), "{reply}");
    refused(&server.next_fetch().await, "bad-request", "method POST");
    server.stop().await;
}

#[tokio::test]
async fn closes_connections_slow_to_send_a_head() {
    let mut config = HttpConfig::new(Protocol::Http);
    config.head_timeout = Duration::from_millis(300);
    let mut server = start(Options {
        config: Some(config),
        ..Options::default()
    })
    .await;
    // Half a head, then nothing (slow loris): closed without an answer.
    let started = std::time::Instant::now();
    let reply = exchange(server.port, b"GET /cfg.xml HTTP/1.1\r\n").await;
    assert!(reply.is_empty(), "{reply}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    // An idle keep-alive connection gets the same time for its next head.
    let reply = exchange(server.port, b"GET /cfg.xml HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(status_lines(&reply), ["HTTP/1.1 200 OK"]);
    served(&server.next_fetch().await, 200);
    server.stop().await;
}

/// A connection to the test server from `ip` (another loopback address: another host, as
/// far as the server can tell).
async fn connect_from(ip: &str, port: u16) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{ip}:0").parse().unwrap()).unwrap();
    tokio::time::timeout(TIMEOUT, socket.connect(([127, 0, 0, 1], port).into()))
        .await
        .expect("connect in time")
        .unwrap()
}

/// Reads one response with a `content-length` off `stream`, leaving the connection open.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&reply).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if reply.len() >= end + 4 + length {
                return text;
            }
        }
        let n = tokio::time::timeout(TIMEOUT, stream.read(&mut buf))
            .await
            .expect("a response in time")
            .unwrap();
        assert!(n > 0, "closed mid-response: {text}");
        reply.extend_from_slice(&buf[..n]);
    }
}

/// A keep-alive connection from `ip` that has fetched once and stays open, idle: the
/// server holds its place until the head timeout. The fetch's event is consumed.
async fn hold(server: &mut Server, ip: &str) -> TcpStream {
    let mut stream = connect_from(ip, server.port).await;
    stream
        .write_all(b"GET /cfg.xml HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let reply = read_response(&mut stream).await;
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    let fetch = server.next_fetch().await;
    served(&fetch, 200);
    assert_eq!(fetch.peer.ip().to_string(), ip);
    stream
}

/// A fresh connection from `ip` when the server is over a limit: a 503, then the close, and
/// one fetch event that says which limit.
async fn refused_connection(server: &mut Server, ip: &str, limit: &str) {
    let mut stream = connect_from(ip, server.port).await;
    stream
        .write_all(b"GET /cfg.xml HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut reply))
        .await
        .expect("the server did not close the refused connection")
        .unwrap();
    let reply = String::from_utf8_lossy(&reply);
    assert!(
        reply.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{reply}"
    );
    let fetch = server.next_fetch().await;
    assert_eq!(fetch.name, CONNECTION_LIMIT_NAME);
    assert_eq!(fetch.peer.ip().to_string(), ip);
    refused(&fetch, "failed", limit);
}

/// Lets `stream` end with a last request: the server answers and closes, and its place is
/// free by the time the client sees the close.
async fn release(server: &mut Server, mut stream: TcpStream) {
    stream
        .write_all(b"GET /cfg.xml HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut reply))
        .await
        .expect("the server did not close the connection")
        .unwrap();
    assert!(reply.starts_with(b"HTTP/1.1 200 OK\r\n"));
    served(&server.next_fetch().await, 200);
}

fn limited(max: usize, per_address: usize) -> HttpConfig {
    HttpConfig {
        max_connections: max,
        max_connections_per_address: per_address,
        // Longer than the test: the held connections stay until the test lets them go.
        head_timeout: Duration::from_secs(120),
        ..HttpConfig::new(Protocol::Http)
    }
}

/// Issue 13 item 5: one address holding as many idle connections as it likes took every
/// place; now it gets its share, the rest are answered 503 at once, and another address is
/// served throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_gets_its_share_of_connections_and_others_are_served() {
    let mut server = start(Options {
        config: Some(limited(64, 4)),
        ..Options::default()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(hold(&mut server, "127.0.0.2").await);
    }
    for round in 0..20 {
        refused_connection(&mut server, "127.0.0.2", "per-address limit").await;
        if round % 5 == 0 {
            let reply = server.curl("/cfg.xml", &[]).await;
            assert_eq!(
                reply.status, 200,
                "127.0.0.1 while 127.0.0.2 is over its share"
            );
            let fetch = server.next_fetch().await;
            served(&fetch, 200);
            assert_eq!(fetch.peer.ip().to_string(), "127.0.0.1");
        }
    }
    // A place given back is free at once.
    let first = held.remove(0);
    release(&mut server, first).await;
    held.push(hold(&mut server, "127.0.0.2").await);
    refused_connection(&mut server, "127.0.0.2", "per-address limit").await;
    drop(held);
    server.stop().await;
}

/// The server's own cap still holds when many addresses each stay within their share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_wide_connection_cap_still_protects() {
    let mut server = start(Options {
        config: Some(limited(6, 4)),
        ..Options::default()
    })
    .await;
    let mut held = Vec::new();
    for ip in ["127.0.0.2", "127.0.0.2", "127.0.0.2", "127.0.0.2"] {
        held.push(hold(&mut server, ip).await);
    }
    held.push(hold(&mut server, "127.0.0.3").await);
    held.push(hold(&mut server, "127.0.0.3").await);
    refused_connection(&mut server, "127.0.0.3", "the server's limit").await;
    refused_connection(&mut server, "127.0.0.1", "the server's limit").await;
    let reply = server.curl("/cfg.xml", &[]).await;
    assert_eq!(reply.status, 503);
    refused(&server.next_fetch().await, "failed", "the server's limit");
    let first = held.remove(0);
    release(&mut server, first).await;
    let reply = server.curl("/cfg.xml", &[]).await;
    assert_eq!(reply.status, 200);
    served(&server.next_fetch().await, 200);
    drop(held);
    server.stop().await;
}

/// Slow clients still time out, and a slow-loris address only ever holds its share: its
/// connections are closed at the head timeout and their places come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_heads_time_out_and_give_their_places_back() {
    let mut config = limited(64, 3);
    config.head_timeout = Duration::from_millis(300);
    let mut server = start(Options {
        config: Some(config),
        ..Options::default()
    })
    .await;
    for _ in 0..3 {
        let mut slow = Vec::new();
        for _ in 0..3 {
            let mut stream = connect_from("127.0.0.2", server.port).await;
            stream
                .write_all(b"GET /cfg.xml HTTP/1.1\r\n")
                .await
                .unwrap();
            slow.push(stream);
        }
        // Each is closed unanswered at the head timeout.
        for mut stream in slow {
            let mut reply = Vec::new();
            tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut reply))
                .await
                .expect("a slow head was not cut off")
                .unwrap_or(0);
            assert!(reply.is_empty(), "{:?}", String::from_utf8_lossy(&reply));
        }
    }
    // Three rounds of three needed the places back each time; a normal request works too.
    let reply = exchange(
        server.port,
        b"GET /cfg.xml HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status_lines(&reply), ["HTTP/1.1 200 OK"]);
    served(&server.next_fetch().await, 200);
    server.stop().await;
}

/// HTTPS: a client over its address's share is closed before any handshake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_connections_over_the_share_are_closed_before_the_handshake() {
    let mut server = start(Options {
        config: Some(HttpConfig {
            max_connections_per_address: 1,
            ..HttpConfig::new(Protocol::Https)
        }),
        tls: Some(TlsSettings::default()),
        ..Options::default()
    })
    .await;
    // A TCP connection that never starts its handshake holds 127.0.0.2's one place.
    let _holder = connect_from("127.0.0.2", server.port).await;
    let ca = server.tls_dir().join("ca.pem");
    let ca = ca.to_str().unwrap();
    let reply = server
        .curl("/cfg.xml", &["--cacert", ca, "--interface", "127.0.0.2"])
        .await;
    assert_ne!(reply.curl_exit, 0, "the refused client got an answer");
    let fetch = server.next_fetch().await;
    assert_eq!(fetch.name, CONNECTION_LIMIT_NAME);
    assert_eq!(fetch.protocol, Protocol::Https);
    refused(&fetch, "failed", "per-address limit");
    let reply = server.curl("/cfg.xml", &["--cacert", ca]).await;
    assert_eq!(reply.status, 200);
    served(&server.next_fetch().await, 200);
    server.stop().await;
}

#[test]
fn the_desk_defaults_are_the_servers_defaults() {
    let limits = provdesk_core::desk::LimitsSettings::default();
    let http = HttpConfig::new(Protocol::Http);
    assert_eq!(limits.http_connections as usize, http.max_connections);
    assert_eq!(
        limits.http_connections_per_address as usize,
        http.max_connections_per_address
    );
    let tftp = provdesk_tftp::Config::default();
    assert_eq!(limits.tftp_transfers as usize, tftp.max_transfers);
    assert_eq!(
        limits.tftp_transfers_per_address as usize,
        tftp.max_transfers_per_address
    );
}

/// 127.0.0.1 is the phone `owner`, as a neighbour table would say; 127.0.0.2 is unknown.
struct LoopbackIs(Mac);

impl crate::access::OwnerDirectory for LoopbackIs {
    fn name(&self) -> &'static str {
        "neighbour table"
    }

    fn owner_of(&self, peer: std::net::IpAddr) -> Option<Mac> {
        (peer == std::net::IpAddr::from([127, 0, 0, 1])).then_some(self.0)
    }
}

/// One raw GET from `ip` and the whole answer but its `date` line, which is all that may
/// differ between two answers.
async fn raw_get(server: &Server, ip: &str, path: &str, extra: &str) -> String {
    let mut stream = connect_from(ip, server.port).await;
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let reply = read_response(&mut stream).await;
    reply
        .split_inclusive("\r\n")
        .filter(|line| !line.to_ascii_lowercase().starts_with("date:"))
        .collect()
}

#[tokio::test]
async fn a_phones_files_go_to_its_owner_and_anyone_else_gets_the_answer_for_a_miss() {
    let mut settings = provdesk_core::desk::DeskSettings::default();
    settings.access.device_files = provdesk_core::desk::DeviceFiles::Owner;
    let policy = AccessPolicy::from_settings(&settings)
        .unwrap()
        .with_owners(vec![Arc::new(LoopbackIs(mac("000b82123456")))]);
    let mut server = start(Options {
        config: Some(HttpConfig {
            policy,
            ..HttpConfig::new(Protocol::Http)
        }),
        ..Options::default()
    })
    .await;
    let ua = format!("User-Agent: {PHONE_UA}\r\n");
    for name in ["cfg000b82123456.xml", "cfg000b82123456"] {
        let path = format!("/{name}");
        let mine = raw_get(&server, "127.0.0.1", &path, &ua).await;
        assert!(mine.starts_with("HTTP/1.1 200 OK\r\n"), "{mine}");
        served(&server.next_fetch().await, 200);

        let theirs = raw_get(&server, "127.0.0.2", &path, &ua).await;
        let fetch = server.next_fetch().await;
        refused(
            &fetch,
            "denied",
            "not the owner: 127.0.0.2 has no MAC this desk knows of, the file is 000b82123456's",
        );
        assert_eq!(fetch.mac, Some(mac("000b82123456")));
        assert_eq!(fetch.artifact, None);
        let nobodys = raw_get(&server, "127.0.0.2", "/cfg000b82ffffff.xml", &ua).await;
        refused(&server.next_fetch().await, "not-found", "000b82ffffff");
        assert_eq!(theirs, nobodys, "{name}");
        assert!(theirs.starts_with("HTTP/1.1 404 Not Found\r\n"), "{theirs}");
    }
    // Shared files stay anyone's.
    let shared = raw_get(&server, "127.0.0.2", "/cfg.xml", "").await;
    assert!(shared.starts_with("HTTP/1.1 200 OK\r\n"), "{shared}");
    served(&server.next_fetch().await, 200);
    server.stop().await;
}
