//! The HTTP and HTTPS servers: the published build from memory, to phones, with the
//! allow-list, P1360/P1361 authentication and one fetch event per request.
//!
//! Shape: [`run`] and [`run_tls`] take a listener the caller bound, serve until `shutdown`
//! is cancelled, then stop accepting and give requests in flight `shutdown_grace` to finish.
//! Accepting is our own ([`accept`], not `axum::serve`) so HTTPS can hand each request its
//! client certificate and plain HTTP can answer a first request without a task of its own
//! (`plain::serve_at_once`). Plain HTTP connections are served by our own
//! HTTP/1 loop ([`plain`], for boot-storm throughput); HTTPS connections by hyper, which
//! also speaks HTTP/2. Both call the same [`Handler`]. Every accepted socket gets
//! TCP_NODELAY: without it a response can stall ~40 ms on Nagle and delayed ACKs.
//!
//! Invariants: nothing is read from disk per request; every request ends in exactly one
//! `Event::Fetch`; a password never reaches an event or a log line.

mod accept;
pub mod access;
pub mod auth;
// Crate-visible for the fuzz targets (`crate::fuzzing`) only.
pub(crate) mod handler;
pub(crate) mod plain;
pub mod tls;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use provdesk_core::desk::AuthSettings;

use crate::access::AccessPolicy;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use access::AccessList;
pub use handler::ClientIdentity;
pub use provdesk_core::user_agent::{PhoneAgent, parse_user_agent};

use crate::events::{Event, EventBus, Fetch, Outcome, Protocol, now_ms};
use crate::store::ArtifactStore;
use accept::{Acceptor, ConnectionLimits, Slot};
use handler::Handler;

/// A TLS handshake that takes longer than this is a stuck or hostile client.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after an accept error such as "too many open files", so the loop cannot spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// The event name of a TLS handshake that failed before any request was read.
pub const HANDSHAKE_NAME: &str = "(tls handshake)";
/// The event name of a connection closed unread for being over a connection limit.
pub const CONNECTION_LIMIT_NAME: &str = "(connection limit)";
/// Connections one server keeps open at once. Each costs a descriptor and a little memory;
/// a boot storm of a few hundred phones, one connection each, stays well below it.
pub const MAX_CONNECTIONS: usize = 1024;
/// Connections one client address may keep open at once. A phone uses one or two, a
/// browser six; 32 leaves room for a few devices behind one NAT, and one address can hold
/// at most 1/32 of the server's connections, however slow or idle it is.
pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 32;
/// Connections the kernel queues before we accept them; above a boot storm's burst.
pub const LISTEN_BACKLOG: u32 = 1024;

/// Binds a listener for [`run`] or [`run_tls`]. Use this rather than
/// `TcpListener::bind`, which (tokio on mio 1.2) asks for a backlog of only 128: when 200
/// phones reboot at once the queue overflows and the kernel drops SYNs, which costs each
/// dropped phone a full second before it retries. Must be called inside a tokio runtime.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // Restarting the server must not wait for the old socket's TIME_WAIT.
    #[cfg(not(windows))]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// How one HTTP or HTTPS server behaves.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// The URL path the files are served under (`/`, `/gs/`); a trailing `/` is implied.
    pub base_path: String,
    pub auth: AuthSettings,
    /// The desk's one access policy: the allow-list, and for HTTPS whether a client without
    /// a certificate is refused (with 403: the handshake itself accepts such clients so the
    /// refusal is a request with a name, a User-Agent and an event, not an anonymous
    /// handshake failure).
    pub policy: AccessPolicy,
    /// `Http` or `Https`, as recorded in events.
    pub protocol: Protocol,
    /// How long requests in flight may take to finish after shutdown.
    pub shutdown_grace: Duration,
    /// Time a client has to send a request head, counted from when the server starts
    /// waiting for it (idle keep-alive time included); guards against slow-loris
    /// connections holding a task.
    pub head_timeout: Duration,
    /// Connections open at once; one over it is closed at once (plain HTTP: after a 503).
    pub max_connections: usize,
    /// Connections open at once from one client IP address, likewise.
    pub max_connections_per_address: usize,
}

impl HttpConfig {
    /// Serve everything under `/` to everyone without authentication.
    pub fn new(protocol: Protocol) -> HttpConfig {
        HttpConfig {
            base_path: "/".into(),
            auth: AuthSettings::default(),
            policy: AccessPolicy::default(),
            protocol,
            shutdown_grace: Duration::from_secs(10),
            head_timeout: Duration::from_secs(10),
            max_connections: MAX_CONNECTIONS,
            max_connections_per_address: MAX_CONNECTIONS_PER_ADDRESS,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("base path {0:?} must start with '/' and contain no '%', '?' or '#'")]
    BasePath(String),
    #[error("cannot read the listening socket's address: {0}")]
    LocalAddr(#[source] std::io::Error),
    #[error("cannot set up the listening socket {address}: {source}")]
    Listener {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Serves plain HTTP on `listener` until `shutdown` is cancelled.
pub async fn run(
    listener: TcpListener,
    config: HttpConfig,
    store: Arc<ArtifactStore>,
    events: EventBus,
    shutdown: CancellationToken,
) -> Result<(), HttpError> {
    let handler = handler(&config, store, events)?;
    serve(listener, handler, None, &config, shutdown).await
}

/// Serves HTTPS on `listener` with `tls` (see [`tls::load_or_generate`]) until `shutdown`
/// is cancelled. The client certificate chain, when one was presented and verified, is put
/// into each request's extensions as a [`ClientIdentity`].
pub async fn run_tls(
    listener: TcpListener,
    config: HttpConfig,
    tls: Arc<rustls::ServerConfig>,
    store: Arc<ArtifactStore>,
    events: EventBus,
    shutdown: CancellationToken,
) -> Result<(), HttpError> {
    let handler = handler(&config, store, events)?;
    let acceptor = TlsAcceptor::from(tls);
    serve(listener, handler, Some(acceptor), &config, shutdown).await
}

fn handler(
    config: &HttpConfig,
    store: Arc<ArtifactStore>,
    events: EventBus,
) -> Result<Arc<Handler>, HttpError> {
    let base_path = normalize_base_path(&config.base_path)?;
    Ok(Arc::new(Handler::new(config, base_path, store, events)))
}

fn hyper_builder(head_timeout: Duration) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(head_timeout);
    builder.http2().timer(TokioTimer::new());
    builder
}

/// `gs` → `/gs/`, `/` → `/`.
fn normalize_base_path(base: &str) -> Result<String, HttpError> {
    let trimmed = base.trim();
    if !trimmed.starts_with('/') || trimmed.contains(['%', '?', '#']) || trimmed.contains("//") {
        return Err(HttpError::BasePath(base.to_string()));
    }
    let mut path = trimmed.to_string();
    if !path.ends_with('/') {
        path.push('/');
    }
    Ok(path)
}

async fn serve(
    listener: TcpListener,
    handler: Arc<Handler>,
    tls: Option<TlsAcceptor>,
    config: &HttpConfig,
    shutdown: CancellationToken,
) -> Result<(), HttpError> {
    let local = listener.local_addr().map_err(HttpError::LocalAddr)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let acceptor = match tls {
        None => Acceptor::plain(listener),
        Some(tls) => Acceptor::tls(listener, tls),
    }
    .map_err(|source| HttpError::Listener {
        address: local,
        source,
    })?;
    handler.events.emit(Event::Listening {
        protocol: handler.protocol,
        url: format!("{scheme}://{local}{}", handler.base_path),
    });
    // Cloning a CancellationToken locks its tree node; an Arc clone per connection is an
    // atomic increment.
    let shared = Arc::new(Shared {
        handler: Arc::clone(&handler),
        hyper: hyper_builder(config.head_timeout),
        head_timeout: config.head_timeout,
        limits: ConnectionLimits::new(config.max_connections, config.max_connections_per_address),
        shutdown,
        // Cancelled when the grace period is over: connections still open are dropped.
        hard_stop: CancellationToken::new(),
    });
    let tracker = TaskTracker::new();
    // Returns once shutdown begins, having closed the listener: new phones get "connection
    // refused" and retry later.
    acceptor.run(&shared, &tracker).await;
    tracker.close();
    if tokio::time::timeout(config.shutdown_grace, tracker.wait())
        .await
        .is_err()
    {
        tracing::info!(
            open = tracker.len(),
            "HTTP shutdown grace period over; closing the remaining connections"
        );
        shared.hard_stop.cancel();
        tracker.wait().await;
    }
    Ok(())
}

/// What every connection of one server needs.
struct Shared {
    handler: Arc<Handler>,
    /// Serves HTTPS connections.
    hyper: auto::Builder<TokioExecutor>,
    head_timeout: Duration,
    limits: Arc<ConnectionLimits>,
    shutdown: CancellationToken,
    /// Cancelled when the grace period after `shutdown` is over. Waited on only while it can
    /// matter (a plain response that is still being written, an HTTPS connection after
    /// `shutdown`), so a fast request registers no waiter on it.
    hard_stop: CancellationToken,
}

struct Connection {
    shared: Arc<Shared>,
    peer: SocketAddr,
    /// Held until the connection is dropped, however it ends.
    _slot: Slot,
}

impl Connection {
    fn new(shared: &Arc<Shared>, peer: SocketAddr, slot: Slot) -> Connection {
        Connection {
            shared: Arc::clone(shared),
            peer,
            _slot: slot,
        }
    }

    async fn run_plain(self, mut stream: TcpStream, resume: plain::Resume) {
        plain::serve(&mut stream, self.peer, &self.shared, resume).await;
        // The slot is given back before the socket closes: a client that connects again as
        // soon as it sees the close must find its place free.
        drop(self);
        drop(stream);
    }

    async fn run_tls(self, stream: TcpStream, acceptor: TlsAcceptor) {
        let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
        let stream = tokio::select! {
            // No request is in flight during a handshake; nothing to wait for.
            () = self.shared.shutdown.cancelled() => return,
            result = handshake => match result {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    self.handshake_failed(handshake_outcome(&e));
                    return;
                }
                Err(_) => {
                    self.handshake_failed(Outcome::Failed {
                        reason: format!(
                            "TLS handshake not finished within {} s",
                            HANDSHAKE_TIMEOUT.as_secs()
                        ),
                    });
                    return;
                }
            },
        };
        let identity = stream
            .get_ref()
            .1
            .peer_certificates()
            .filter(|chain| !chain.is_empty())
            .map(|chain| ClientIdentity {
                certificates: chain.iter().map(|c| c.clone().into_owned()).collect(),
            });
        self.serve_https(stream, identity).await;
    }

    async fn serve_https<S>(&self, stream: S, identity: Option<ClientIdentity>)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let handler = Arc::clone(&self.shared.handler);
        let peer = self.peer;
        let service = service_fn(move |mut request: http::Request<Incoming>| {
            if let Some(identity) = &identity {
                request.extensions_mut().insert(identity.clone());
            }
            let response = http::Response::from(handler.handle(&request, peer));
            std::future::ready(Ok::<_, Infallible>(response))
        });
        // hyper has its own I/O traits; TokioIo adapts tokio's to them.
        let connection = self
            .shared
            .hyper
            .serve_connection(TokioIo::new(stream), service);
        tokio::pin!(connection);
        let result = tokio::select! {
            biased;
            result = connection.as_mut() => result,
            () = self.shared.shutdown.cancelled() => {
                // Finish the request in flight (if any), then close; idle keep-alive
                // connections close at once. After the grace period the connection is
                // dropped, which also drops a response body midway (a failed fetch).
                connection.as_mut().graceful_shutdown();
                tokio::select! {
                    result = connection.as_mut() => result,
                    () = self.shared.hard_stop.cancelled() => return,
                }
            }
        };
        if let Err(e) = result {
            // Resets and half-sent requests are the network's doing, not ours.
            tracing::debug!(peer = %self.peer, error = %e, "HTTP connection ended with an error");
        }
    }

    fn handshake_failed(&self, outcome: Outcome) {
        let handler = &self.shared.handler;
        handler.events.emit(Event::Fetch(Fetch {
            at_ms: now_ms(),
            protocol: handler.protocol,
            peer: self.peer,
            name: HANDSHAKE_NAME.into(),
            mac: None,
            model: None,
            user_agent: None,
            outcome,
            bytes: 0,
            duration_ms: 0,
            artifact: None,
        }));
    }
}

/// A refused or invalid client certificate is a denial; anything else is a failure, with a
/// hint when the client did not trust our certificate (the usual first-setup problem).
fn handshake_outcome(error: &std::io::Error) -> Outcome {
    let tls_error = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls_error {
        Some(rustls::Error::NoCertificatesPresented) => Outcome::Denied {
            reason: "TLS handshake refused: no client certificate".into(),
        },
        Some(rustls::Error::InvalidCertificate(why)) => Outcome::Denied {
            reason: format!("TLS handshake refused: client certificate not accepted ({why:?})"),
        },
        Some(rustls::Error::AlertReceived(alert)) => Outcome::Failed {
            reason: format!(
                "TLS handshake failed: the client sent {alert:?} (does it trust the desk's CA, tls/ca.pem?)"
            ),
        },
        Some(other) => Outcome::Failed {
            reason: format!("TLS handshake failed: {other}"),
        },
        None => Outcome::Failed {
            reason: format!("TLS handshake failed: {error}"),
        },
    }
}

#[cfg(test)]
mod tests;
