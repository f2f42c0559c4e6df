//! Accepting connections for the HTTP and HTTPS servers.
//!
//! Plain HTTP on Unix: one accept task per runtime worker, all on the one listener. Each
//! serves a new connection's first request at once when it is already waiting
//! ([`serve_at_once`](super::plain::serve_at_once)) and spawns a task for the connection only when it has to wait.
//! On Linux the listener has TCP_DEFER_ACCEPT, so the kernel hands over a connection once
//! its request has arrived, and TCP_NODELAY, which accepted sockets inherit there (one
//! system call less per connection). HTTPS, and plain HTTP elsewhere: one loop that spawns a
//! task per connection.
//!
//! Every accepted connection takes a [`Slot`] of the server's [`ConnectionLimits`] first: a
//! cap on open connections, and a smaller one per client address, so one host holding many
//! idle or slow connections cannot take the places other phones need. A connection over a
//! cap is closed at once (plain HTTP answers 503 first, when that costs no wait) and reported
//! as one `Event::Fetch` named [`CONNECTION_LIMIT_NAME`].
//!
//! Invariants: every accepted socket has TCP_NODELAY (without it a response can stall
//! ~40 ms on Nagle and delayed ACKs); accepting stops as soon as shutdown begins, and the
//! listening socket is closed when [`Acceptor::run`] returns; a connection holds its slot
//! from accept until it is closed, and the limits' mutex is taken only then, never per
//! request.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;

use super::{ACCEPT_BACKOFF, CONNECTION_LIMIT_NAME, Connection, Shared};
use crate::events::{Event, Fetch, Outcome, now_ms};

/// What a plain-HTTP client over a limit is told, when its socket takes it at once.
const BUSY_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\n\
    content-length: 0\r\nconnection: close\r\n\r\n";
/// Input read and dropped before a refused socket is closed, so the close is not a reset
/// that could destroy the 503 before the client reads it.
const REFUSED_DRAIN: usize = 16 * 1024;

/// How many connections one server may have open, in all and from one client IP address,
/// and how many it has.
pub(super) struct ConnectionLimits {
    max: usize,
    per_address: usize,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    total: usize,
    /// Only addresses with a connection open, so the map stays as small as the set of
    /// clients being served.
    per_ip: HashMap<IpAddr, usize>,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OverLimit {
    /// The server has `max` connections open.
    Server(usize),
    /// The client's address has `per_address` connections open.
    Address(usize),
}

impl OverLimit {
    fn reason(self) -> String {
        match self {
            OverLimit::Server(max) => {
                format!("server busy: {max} connections open, the server's limit; closed")
            }
            OverLimit::Address(per_address) => format!(
                "server busy: {per_address} connections already open from this address, \
                 the per-address limit; closed"
            ),
        }
    }
}

impl ConnectionLimits {
    /// `max` and `per_address` below 1 are taken as 1: a server that admits nobody is
    /// never what the settings meant (they refuse 0).
    pub(super) fn new(max: usize, per_address: usize) -> Arc<ConnectionLimits> {
        Arc::new(ConnectionLimits {
            max: max.max(1),
            per_address: per_address.max(1),
            open: Mutex::default(),
        })
    }

    /// A slot for a new connection from `ip`, unless that would pass a limit. The address's
    /// own limit is checked first, so a flooding address is told that it is the problem.
    pub(super) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, OverLimit> {
        let mut open = lock(&self.open);
        if open.per_ip.get(&ip).is_some_and(|n| *n >= self.per_address) {
            return Err(OverLimit::Address(self.per_address));
        }
        if open.total >= self.max {
            return Err(OverLimit::Server(self.max));
        }
        open.total += 1;
        *open.per_ip.entry(ip).or_insert(0) += 1;
        drop(open);
        Ok(Slot {
            limits: Arc::clone(self),
            ip,
        })
    }

    /// Connections open now, in all.
    #[cfg(test)]
    pub(super) fn open(&self) -> usize {
        lock(&self.open).total
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every update is a pair of counter changes made under one lock, with nothing between
    // them that can panic, so the counts stay right even after a holder panicked.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One open connection's place in its server's [`ConnectionLimits`], given back on drop.
pub(super) struct Slot {
    limits: Arc<ConnectionLimits>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = lock(&self.limits.open);
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.per_ip.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.per_ip.remove(&self.ip);
            }
        }
    }
}

/// Reports a connection closed for being over a limit: one fetch event, as a refused
/// request makes, so a flood shows in the log and the app instead of passing silently.
fn report_refused(shared: &Shared, peer: SocketAddr, over: OverLimit) {
    let handler = &shared.handler;
    handler.events.emit(Event::Fetch(Fetch {
        at_ms: now_ms(),
        protocol: handler.protocol,
        peer,
        name: CONNECTION_LIMIT_NAME.into(),
        mac: None,
        model: None,
        user_agent: None,
        outcome: Outcome::Failed {
            reason: over.reason(),
        },
        bytes: 0,
        duration_ms: 0,
        artifact: None,
    }));
}

/// Answers 503 on a plain-HTTP socket over a limit, without waiting for anything: drops
/// what the client has sent (with TCP_DEFER_ACCEPT, usually its whole request) and writes
/// the answer if the socket takes it. The caller then closes the socket.
fn answer_busy(
    read: impl Fn(&mut [u8]) -> io::Result<usize>,
    write: impl Fn(&[u8]) -> io::Result<usize>,
) {
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    while drained < REFUSED_DRAIN {
        match read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
    // A partial or failed write only costs the client its explanation; it sees the close.
    let _ = write(BUSY_RESPONSE);
}

/// A listener made ready for its server's accept loop.
pub(super) enum Acceptor {
    #[cfg(unix)]
    Plain(Arc<tokio::io::unix::AsyncFd<socket2::Socket>>),
    #[cfg(not(unix))]
    Plain(TcpListener),
    Tls(TcpListener, TlsAcceptor),
}

impl Acceptor {
    pub(super) fn plain(listener: TcpListener) -> io::Result<Acceptor> {
        #[cfg(unix)]
        {
            // `into_std` leaves the socket non-blocking, as AsyncFd needs.
            let socket = socket2::Socket::from(listener.into_std()?);
            socket.set_tcp_nodelay(true)?;
            #[cfg(target_os = "linux")]
            defer_accept(&socket)?;
            // SAFETY: the Socket owns its descriptor, which stays open and the same until
            // the AsyncFd, which owns the Socket, is dropped.
            let socket = unsafe {
                tokio::io::unix::AsyncFd::register_with_interest(
                    socket,
                    tokio::io::Interest::READABLE,
                )
            }?;
            Ok(Acceptor::Plain(Arc::new(socket)))
        }
        #[cfg(not(unix))]
        {
            Ok(Acceptor::Plain(listener))
        }
    }

    pub(super) fn tls(listener: TcpListener, tls: TlsAcceptor) -> io::Result<Acceptor> {
        socket2::SockRef::from(&listener).set_tcp_nodelay(true)?;
        Ok(Acceptor::Tls(listener, tls))
    }

    /// Accepts until shutdown begins, handing each connection to `tracker`'s tasks.
    pub(super) async fn run(self, shared: &Arc<Shared>, tracker: &TaskTracker) {
        match self {
            #[cfg(unix)]
            Acceptor::Plain(listener) => accept_at_once(listener, shared, tracker).await,
            #[cfg(not(unix))]
            Acceptor::Plain(listener) => {
                accept_each(listener, shared, |stream, peer, slot| match slot {
                    Ok(slot) => {
                        let connection = Connection::new(shared, peer, slot);
                        tracker.spawn(connection.run_plain(stream, super::plain::Resume::fresh()));
                    }
                    Err(_) => {
                        answer_busy(|buf| stream.try_read(buf), |buf| stream.try_write(buf));
                    }
                })
                .await;
            }
            Acceptor::Tls(listener, tls) => {
                // A refused TLS client is closed without a handshake: answering it 503
                // would cost the handshake the limit is there to spare.
                accept_each(listener, shared, |stream, peer, slot| {
                    if let Ok(slot) = slot {
                        let connection = Connection::new(shared, peer, slot);
                        tracker.spawn(connection.run_tls(stream, tls.clone()));
                    }
                })
                .await;
            }
        }
    }
}

/// One loop that passes each accepted connection to `serve`, with its slot or, over a
/// limit, with the refusal (already reported); `serve` drops a refused stream.
async fn accept_each(
    listener: TcpListener,
    shared: &Arc<Shared>,
    mut serve: impl FnMut(TcpStream, SocketAddr, Result<Slot, OverLimit>),
) {
    // One waiter for the whole loop: a fresh `cancelled()` per accept would lock the
    // token's waiter list twice per connection.
    let stopping = shared.shutdown.cancelled();
    tokio::pin!(stopping);
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut stopping => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                // Linux copies it from the listener; elsewhere it is set per connection.
                #[cfg(not(target_os = "linux"))]
                let _ = stream.set_nodelay(true);
                let slot = shared.limits.admit(peer.ip());
                if let Err(over) = slot {
                    report_refused(shared, peer, over);
                }
                serve(stream, peer, slot);
            }
            Err(e) => {
                if pause_after(&e, shared).await {
                    return;
                }
            }
        }
    }
}

/// Runs one [`accept_task`] per runtime worker until shutdown. A task ended by a panic (a
/// bug in answering a request) is replaced, so the server keeps serving on every worker.
#[cfg(unix)]
async fn accept_at_once(
    listener: Arc<tokio::io::unix::AsyncFd<socket2::Socket>>,
    shared: &Arc<Shared>,
    tracker: &TaskTracker,
) {
    let spawn = |tasks: &mut tokio::task::JoinSet<()>| {
        tasks.spawn(accept_task(
            Arc::clone(&listener),
            Arc::clone(shared),
            tracker.clone(),
        ));
    };
    let workers = tokio::runtime::Handle::current().metrics().num_workers();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers.max(1) {
        spawn(&mut tasks);
    }
    while let Some(ended) = tasks.join_next().await {
        if ended.is_err() && !shared.shutdown.is_cancelled() {
            tracing::error!("an HTTP accept task panicked; starting another");
            spawn(&mut tasks);
        }
    }
}

/// Accepts connections on the shared listener and serves what it can at once.
#[cfg(unix)]
async fn accept_task(
    listener: Arc<tokio::io::unix::AsyncFd<socket2::Socket>>,
    shared: Arc<Shared>,
    tracker: TaskTracker,
) {
    use super::plain::{AtOnce, serve_at_once};

    let stopping = shared.shutdown.cancelled();
    tokio::pin!(stopping);
    loop {
        let ready = tokio::select! {
            biased;
            () = &mut stopping => return,
            ready = listener.readable() => ready,
        };
        let accepted = match ready {
            // Another task may have taken the connection: then wait for the next one.
            Ok(mut ready) => {
                match ready.try_io(|listener| accept_nonblocking(listener.get_ref())) {
                    Ok(accepted) => accepted,
                    Err(_would_block) => continue,
                }
            }
            Err(e) => Err(e),
        };
        let (socket, address) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                if pause_after(&e, &shared).await {
                    return;
                }
                continue;
            }
        };
        // An IPv4 or IPv6 listener has only IP peers.
        let Some(peer) = address.as_socket() else {
            continue;
        };
        let slot = match shared.limits.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(over) => {
                use std::io::{Read as _, Write as _};
                answer_busy(|buf| (&socket).read(buf), |buf| (&socket).write(buf));
                let _ = socket.shutdown(std::net::Shutdown::Write);
                report_refused(&shared, peer, over);
                continue;
            }
        };
        match serve_at_once(&socket, peer, &shared) {
            // Dropping the slot here frees it as the socket closes.
            AtOnce::Close => {}
            AtOnce::Continue(resume) => match TcpStream::from_std(socket.into()) {
                Ok(stream) => {
                    let connection = Connection::new(&shared, peer, slot);
                    tracker.spawn(connection.run_plain(stream, resume));
                }
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "cannot hand an HTTP connection to the runtime");
                }
            },
        }
    }
}

/// Accepts one connection as a non-blocking socket.
#[cfg(unix)]
fn accept_nonblocking(
    listener: &socket2::Socket,
) -> io::Result<(socket2::Socket, socket2::SockAddr)> {
    #[cfg(target_os = "linux")]
    {
        listener.accept4(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let (socket, address) = listener.accept()?;
        socket.set_nonblocking(true)?;
        Ok((socket, address))
    }
}

/// Lets the kernel hand over a connection only once data has arrived on it (or after a
/// second, for a client that connects and waits): the request is then there to be served
/// at once, and a silent connection costs no accept.
#[cfg(target_os = "linux")]
fn defer_accept(socket: &socket2::Socket) -> io::Result<()> {
    use std::os::fd::AsRawFd as _;
    let seconds: libc::c_int = 1;
    let size = libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>())
        .map_err(|_| io::Error::other("socklen_t too small for an int"))?;
    // SAFETY: the descriptor is an open socket for the duration of the call, and the option
    // value points to an initialised int whose size is passed with it.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&raw const seconds).cast(),
            size,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// After a failed accept, waits a little so the loop cannot spin. Per-connection errors
/// (reset before accept, out of descriptors) are not fatal to a server phones depend on.
/// Returns whether shutdown began meanwhile.
async fn pause_after(error: &io::Error, shared: &Shared) -> bool {
    tracing::warn!(error = %error, "accepting an HTTP connection failed");
    tokio::select! {
        () = shared.shutdown.cancelled() => true,
        () = tokio::time::sleep(ACCEPT_BACKOFF) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_count_per_address_and_in_all_and_free_on_drop() {
        let limits = ConnectionLimits::new(3, 2);
        let (a, b): (IpAddr, IpAddr) = ("127.0.0.2".parse().unwrap(), "::1".parse().unwrap());
        let first = limits.admit(a).unwrap();
        let second = limits.admit(a).unwrap();
        assert_eq!(limits.admit(a).err(), Some(OverLimit::Address(2)));
        let third = limits.admit(b).unwrap();
        assert_eq!(limits.admit(b).err(), Some(OverLimit::Server(3)));
        assert_eq!(limits.open(), 3);
        drop(first);
        assert!(limits.admit(a).is_ok(), "a's place came back");
        drop((second, third));
        assert_eq!(limits.open(), 0);
        assert!(lock(&limits.open).per_ip.is_empty(), "no address is kept");
        // 0 would admit nobody; it is taken as 1.
        let one = ConnectionLimits::new(0, 0);
        let only = one.admit(a).unwrap();
        assert_eq!(one.admit(b).err(), Some(OverLimit::Server(1)));
        drop(only);
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn accepted_sockets_have_nodelay_and_arrive_with_their_request() {
        use std::io::Write as _;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let Acceptor::Plain(listener) = Acceptor::plain(listener).unwrap() else {
            panic!("a plain acceptor");
        };
        let mut client = std::net::TcpStream::connect(address).unwrap();
        // Connected, but nothing sent: the kernel holds the connection back.
        std::thread::sleep(std::time::Duration::from_millis(200));
        let held = accept_nonblocking(listener.get_ref());
        assert_eq!(
            held.as_ref().map(|_| ()).map_err(io::Error::kind),
            Err(io::ErrorKind::WouldBlock)
        );
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        let mut ready = listener.readable().await.unwrap();
        let (socket, _) = ready
            .try_io(|listener| accept_nonblocking(listener.get_ref()))
            .unwrap()
            .unwrap();
        assert!(
            socket.tcp_nodelay().unwrap(),
            "TCP_NODELAY from the listener"
        );
        assert!(socket.nonblocking().unwrap());
        let mut request = [0u8; 64];
        let read = std::io::Read::read(&mut &socket, &mut request).unwrap();
        assert_eq!(
            read, 18,
            "the request is waiting when the connection is accepted"
        );
    }
}
