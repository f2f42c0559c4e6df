//! Shared harness for the loopback scenarios: a server on 127.0.0.1:0 with an in-memory source,
//! its event stream, deterministic test content, and a bound on every wait.
#![allow(dead_code)]

pub mod client;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use provdesk_tftp::codec::{self, Packet};
use provdesk_tftp::{Config, Error, SourceError, TransferEvent};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The longest any single step of a test may take before it counts as a hang.
pub const STEP: Duration = Duration::from_secs(30);

/// Awaits `future`, failing the test if it takes longer than [`STEP`].
pub async fn within<F: Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(STEP, future).await {
        Ok(output) => output,
        Err(_) => panic!("timed out after {STEP:?}: {what}"),
    }
}

/// The name the test source refuses with an access violation.
pub const FORBIDDEN: &str = "forbidden.bin";

pub struct TestServer {
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    handle: JoinHandle<Result<(), Error>>,
    events: mpsc::Receiver<TransferEvent>,
}

impl TestServer {
    /// Starts `run` on 127.0.0.1:0 serving `files` (and refusing [`FORBIDDEN`]).
    pub async fn start(config: Config, files: Vec<(String, Bytes)>) -> Self {
        let files: HashMap<String, Bytes> = files.into_iter().collect();
        let source = move |name: &str, _peer: SocketAddr| {
            if name == FORBIDDEN {
                return Err(SourceError::AccessViolation("not for you".into()));
            }
            files
                .get(name)
                .cloned()
                .ok_or_else(|| SourceError::NotFound("File not found".into()))
        };
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = socket.local_addr().expect("local address");
        let (tx, events) = mpsc::channel(256);
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(provdesk_tftp::run(
            socket,
            config,
            Arc::new(source),
            tx,
            shutdown.clone(),
        ));
        Self {
            addr,
            shutdown,
            handle,
            events,
        }
    }

    pub async fn next_event(&mut self) -> TransferEvent {
        within("waiting for a server event", self.events.recv())
            .await
            .expect("the server closed its event channel")
    }

    /// The next event that is not `Started` or `Progress`.
    pub async fn next_outcome(&mut self) -> TransferEvent {
        for _ in 0..100_000 {
            match self.next_event().await {
                TransferEvent::Started { .. } | TransferEvent::Progress { .. } => {}
                other => return other,
            }
        }
        panic!("no outcome among 100000 events");
    }

    /// Cancels the server, waits for `run` to return while draining events, and returns the
    /// events that had not been read yet.
    pub async fn stop(mut self) -> Vec<TransferEvent> {
        self.shutdown.cancel();
        let mut rest = Vec::new();
        let result = within("server shutdown", async {
            loop {
                tokio::select! {
                    result = &mut self.handle => break result,
                    Some(event) = self.events.recv() => rest.push(event),
                }
            }
        })
        .await;
        result.expect("run panicked").expect("run failed");
        while let Some(event) = self.events.recv().await {
            rest.push(event);
        }
        rest
    }
}

/// Runs the blocking test client on a blocking thread, bounded by [`STEP`].
pub async fn download(
    server: SocketAddr,
    get: client::Get,
) -> Result<client::Download, client::GetError> {
    within(
        "test client download",
        tokio::task::spawn_blocking(move || client::get(server, &get)),
    )
    .await
    .expect("client thread panicked")
}

/// A hand-driven peer for scripted exchanges.
pub struct Peer {
    pub socket: UdpSocket,
}

impl Peer {
    pub async fn new() -> Self {
        Self::on("127.0.0.1").await
    }

    /// A peer on another loopback address (`127.0.0.2`): another phone, as far as the
    /// server can tell.
    pub async fn on(ip: &str) -> Self {
        Self {
            socket: UdpSocket::bind((ip, 0)).await.expect("bind loopback"),
        }
    }

    pub async fn send(&self, packet: &Packet, to: SocketAddr) {
        let mut buf = Vec::new();
        packet.encode(&mut buf);
        self.socket.send_to(&buf, to).await.expect("send");
    }

    pub async fn recv(&self) -> (Packet, SocketAddr) {
        let mut buf = vec![0u8; 65536];
        let (len, from) = within("peer receive", self.socket.recv_from(&mut buf))
            .await
            .expect("receive");
        (
            codec::parse(&buf[..len]).expect("server sent a valid packet"),
            from,
        )
    }
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub fn random_bytes(len: usize, seed: u64) -> Bytes {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out.into()
}

/// Text with plenty of LF, CR LF and bare CR, to exercise netascii both ways.
pub fn text(len: usize, seed: u64) -> Bytes {
    const ALPHABET: &[u8] = b"abcdefghij <P8>=01\n\n\r";
    random_bytes(len, seed)
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()])
        .collect()
}

/// A config with a short timer, so tests of loss recovery are quick.
pub fn fast_config() -> Config {
    Config {
        timeout: Duration::from_millis(100),
        ..Config::default()
    }
}

/// A config whose timer never fires in a healthy test, even on a loaded machine: any
/// retransmission then comes from the behaviour under test, not from scheduling noise.
pub fn steady_config() -> Config {
    Config {
        timeout: Duration::from_secs(5),
        ..Config::default()
    }
}
