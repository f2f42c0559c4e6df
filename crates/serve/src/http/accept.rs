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
//! Invariants: every accepted socket has TCP_NODELAY (without it a response can stall
//! ~40 ms on Nagle and delayed ACKs); accepting stops as soon as shutdown begins, and the
//! listening socket is closed when [`Acceptor::run`] returns.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;

use super::{ACCEPT_BACKOFF, Connection, Shared};

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
                accept_each(listener, shared, |stream, peer| {
                    let connection = Connection::new(shared, peer);
                    tracker.spawn(connection.run_plain(stream, super::plain::Resume::fresh()));
                })
                .await;
            }
            Acceptor::Tls(listener, tls) => {
                accept_each(listener, shared, |stream, peer| {
                    let connection = Connection::new(shared, peer);
                    tracker.spawn(connection.run_tls(stream, tls.clone()));
                })
                .await;
            }
        }
    }
}

/// One loop that passes each accepted connection to `serve`.
async fn accept_each(
    listener: TcpListener,
    shared: &Shared,
    mut serve: impl FnMut(TcpStream, SocketAddr),
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
                serve(stream, peer);
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
        match serve_at_once(&socket, peer, &shared) {
            AtOnce::Close => {}
            AtOnce::Continue(resume) => match TcpStream::from_std(socket.into()) {
                Ok(stream) => {
                    let connection = Connection::new(&shared, peer);
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
