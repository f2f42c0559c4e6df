//! The I/O around the codec and the transfer state machine: one tokio listener, and per
//! transfer one ephemeral socket driven by its own blocking thread.
//!
//! Why threads: lock-step TFTP is one round trip per block, so the cost that counts is the
//! path from an ACK arriving to the next DATA leaving. A thread blocked in `recv_from` takes
//! one wake-up and two system calls per block (receive, send), as tftpd-hpa's process per
//! transfer does; a tokio task adds a reactor wake-up, a task hand-off and a failed
//! `recv_from` before it parks again, which left lock-step behind tftpd-hpa and cost more CPU
//! per block. The thread count is bounded by the transfer limit, and a thread spends its life
//! blocked in the kernel.
//!
//! Invariants:
//! - The caller binds the listening socket; each transfer binds its own socket on the same
//!   local address with port 0, so its TID is fresh and replies leave from the address the
//!   request reached (bind one listener per interface address rather than a wildcard).
//! - Transfer sockets are not connected: a packet from another port gets ERROR 5 and the
//!   transfer carries on (RFC 1350 §4).
//! - Requests are answered only with ERRORs until a permit of the transfer limit is free,
//!   and, per client IP address, while that address has `max_transfers_per_address` transfers
//!   running. A transfer counts against both from its registration until its task ends.
//! - A transfer thread blocks at most until the machine's next deadline (the socket's read
//!   timeout, changed only when that wait differs from the last one, so not once per block in
//!   lock-step), and checks the stop flag on every wake-up. Shutdown sets the flag and wakes the
//!   thread with an empty datagram to its own socket, so it does not wait out a timeout.
//! - Each transfer thread has a tokio task that owns its permit and its events: it sends
//!   `Started`, waits for the thread's outcome, releases the permit and then sends the final
//!   event. `run` returns only after every such task has ended.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::codec::{self, ErrorCode, Mode, Packet, TftpOption};
use crate::event::{TransferEvent, TransferId};
use crate::options::negotiate;
use crate::source::Source;
use crate::transfer::{Action, FailReason, Input, Outcome, Transfer};

/// Longest file name asked of the source; longer requests are refused with error 1.
pub const MAX_FILENAME_LEN: usize = 255;
/// Enough for any UDP datagram, so a request is never silently truncated.
const LISTENER_BUFFER: usize = 65536;
/// Transfer sockets only expect ACKs and ERRORs; a larger stray datagram is truncated (or, on
/// Windows, reported as an error) and then ignored.
const TRANSFER_BUFFER: usize = 2048;
/// Consecutive receive errors on a transfer socket before the transfer is abandoned.
const MAX_RECV_ERRORS: u32 = 8;
/// The ERROR message when every transfer permit is taken.
pub const BUSY: &str = "server busy";
/// The ERROR message when the client's address has `max_transfers_per_address` running.
pub const BUSY_FROM_ADDRESS: &str = "server busy: too many transfers from this address";
/// Name of the transfer threads, so profilers and the benchmark can tell them apart.
const THREAD_NAME: &str = "tftp-transfer";
/// A transfer thread keeps a few buffers on the heap and calls no deep code; 2 MiB default
/// stacks times the transfer limit would only reserve address space for nothing.
const THREAD_STACK: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Largest block size agreed to. 1468 keeps a DATA packet inside a 1500-byte Ethernet MTU
    /// without IP fragmentation.
    pub max_blksize: u16,
    /// Largest RFC 7440 window agreed to (never more than 32768).
    pub max_windowsize: u16,
    /// Retransmission interval when the client does not negotiate `timeout`.
    pub timeout: Duration,
    /// Retransmissions of the same packet or window before the transfer fails.
    pub max_retries: u32,
    /// Transfers running at once; further requests get ERROR 0 "server busy".
    pub max_transfers: usize,
    /// Transfers running at once for one client IP address (at least 1); further requests
    /// from it get ERROR 0 at once, so one address cannot take the slots other phones need.
    pub max_transfers_per_address: usize,
    /// How long the first packet of a transfer (the OACK, or DATA 1) may wait for its ACK
    /// before the transfer ends quietly, whatever retries are left (see
    /// [`Transfer::first_ack_within`]).
    pub first_ack_timeout: Duration,
    /// Longest a single transfer may take, whatever the client does.
    pub transfer_deadline: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_blksize: 1468,
            max_windowsize: 64,
            timeout: Duration::from_secs(1),
            max_retries: 5,
            max_transfers: 256,
            // A phone fetches its files one after another (cfg<mac>, cfg<mac>.xml, firmware),
            // so one or two at a time is normal; 8 leaves room for a retry that overlaps a
            // transfer still timing out, and for a few devices behind one NAT address, while
            // one address can hold at most 1/32 of the default 256 slots.
            max_transfers_per_address: 8,
            // Three sends of the first packet at the default 1 s timer: enough for a phone on
            // a lossy link (and it resends its request if all three are lost, which starts a
            // fresh transfer), while a request that nobody will acknowledge, from a spoofed
            // or flooding address, frees its slot in 3 s instead of the 6 s of the full
            // retry budget, or longer when it asks for a long `timeout`.
            first_ack_timeout: Duration::from_secs(3),
            // A 40 MiB firmware in lock-step at 512 bytes over a slow Wi-Fi hop (5 ms RTT)
            // needs about 7 minutes; a stuck transfer must not hold its permit much longer.
            transfer_deadline: Duration::from_secs(600),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read the local address of the TFTP socket")]
    LocalAddr(#[source] io::Error),
    #[error("receiving on the TFTP socket failed")]
    Recv(#[source] io::Error),
}

/// Serves read requests on `socket` until `shutdown` is cancelled, then ends the transfers in
/// flight (each client gets an ERROR) and returns once they have all reported.
pub async fn run(
    socket: UdpSocket,
    config: Config,
    source: Arc<dyn Source>,
    events: mpsc::Sender<TransferEvent>,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let local = socket.local_addr().map_err(Error::LocalAddr)?;
    let mut listener = Listener {
        limit: Arc::new(Semaphore::new(config.max_transfers)),
        config,
        socket,
        local,
        source,
        events,
        tracker: TaskTracker::new(),
        transfers: shutdown.child_token(),
        active: Arc::default(),
        next_id: 0,
    };
    let mut buf = vec![0u8; LISTENER_BUFFER];
    let result = loop {
        let received = tokio::select! {
            biased;
            () = shutdown.cancelled() => break Ok(()),
            received = listener.socket.recv_from(&mut buf) => received,
        };
        match received {
            Ok((len, peer)) => listener.on_datagram(&buf[..len], peer).await,
            Err(e) if is_transient(&e) => {}
            Err(e) => break Err(Error::Recv(e)),
        }
    };
    listener.transfers.cancel();
    listener.tracker.close();
    listener.tracker.wait().await;
    result
}

/// Errors a UDP socket reports that say nothing about the socket itself: Windows turns an ICMP
/// "port unreachable" from an earlier send into `ConnectionReset` on the next receive.
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// The transfers currently running, behind one mutex that is taken when a request arrives
/// and when a transfer ends, never per block.
type Active = Arc<Mutex<Peers>>;

#[derive(Debug, Default)]
struct Peers {
    /// By peer, with the request bytes and the transfer id. A client that repeats its RRQ
    /// (because our first answer was slow) must not start a second transfer that it would
    /// then kill with ERROR 5 and report as a failure.
    requests: HashMap<SocketAddr, (TransferId, Vec<u8>)>,
    /// Transfers per client IP address, for `max_transfers_per_address`; an address leaves
    /// the map when its last transfer ends, so the map holds only addresses being served.
    per_ip: HashMap<IpAddr, usize>,
}

struct Listener {
    config: Config,
    socket: UdpSocket,
    local: SocketAddr,
    source: Arc<dyn Source>,
    events: mpsc::Sender<TransferEvent>,
    tracker: TaskTracker,
    limit: Arc<Semaphore>,
    transfers: CancellationToken,
    active: Active,
    next_id: u64,
}

impl Listener {
    async fn on_datagram(&mut self, datagram: &[u8], peer: SocketAddr) {
        match codec::parse(datagram) {
            Ok(Packet::Rrq {
                filename,
                mode,
                options,
            }) => {
                self.on_read_request(datagram, peer, filename, mode, options)
                    .await
            }
            Ok(Packet::Wrq { filename, .. }) => {
                self.reject(
                    peer,
                    filename,
                    ErrorCode::ACCESS_VIOLATION,
                    "read-only server",
                )
                .await;
            }
            // An ERROR is never answered, so two confused hosts cannot ping-pong.
            Ok(Packet::Error { .. }) => {}
            Ok(Packet::Data { .. } | Packet::Ack { .. } | Packet::Oack { .. }) => {
                let error = error_packet(ErrorCode::ILLEGAL_OPERATION, "expected a request");
                self.send(&error, peer).await;
            }
            Err(e) if codec::is_request(datagram) => {
                self.reject(
                    peer,
                    String::new(),
                    ErrorCode::ILLEGAL_OPERATION,
                    &e.to_string(),
                )
                .await;
            }
            // Not TFTP at all: stay silent rather than answer noise.
            Err(_) => {}
        }
    }

    async fn on_read_request(
        &mut self,
        datagram: &[u8],
        peer: SocketAddr,
        filename: String,
        mode: Mode,
        options: Vec<TftpOption>,
    ) {
        if filename.len() > MAX_FILENAME_LEN {
            let message = "file name too long";
            return self
                .reject(peer, filename, ErrorCode::FILE_NOT_FOUND, message)
                .await;
        }
        let from_ip = {
            let peers = lock(&self.active);
            if peers
                .requests
                .get(&peer)
                .is_some_and(|(_, request)| request == datagram)
            {
                return;
            }
            peers.per_ip.get(&peer.ip()).copied().unwrap_or(0)
        };
        // Checked before the global limit: an address over its share is told so even when
        // the server is also full. Only this task starts transfers, so the count cannot grow
        // between this check and the registration below.
        if from_ip >= self.config.max_transfers_per_address {
            return self
                .reject(peer, filename, ErrorCode::NOT_DEFINED, BUSY_FROM_ADDRESS)
                .await;
        }
        let Ok(permit) = Arc::clone(&self.limit).try_acquire_owned() else {
            return self
                .reject(peer, filename, ErrorCode::NOT_DEFINED, BUSY)
                .await;
        };
        let content = match self.source.open(&filename, peer) {
            Ok(content) => content,
            Err(e) => return self.reject(peer, filename, e.code(), e.message()).await,
        };
        let socket = match bind_like(self.local) {
            Ok(socket) => socket,
            Err(_) => {
                let message = "cannot open a transfer socket";
                return self
                    .reject(peer, filename, ErrorCode::NOT_DEFINED, message)
                    .await;
            }
        };
        let id = TransferId(self.next_id);
        self.next_id += 1;
        let task = TransferTask {
            id,
            peer,
            filename,
            socket,
            events: self.events.clone(),
            shutdown: self.transfers.clone(),
            _registration: Registration::new(&self.active, peer, id, datagram),
            _permit: permit,
        };
        let negotiation = negotiate(&options, mode, content.len() as u64, &self.config);
        let (max_retries, deadline) = (self.config.max_retries, self.config.transfer_deadline);
        let first_ack = self.config.first_ack_timeout;
        self.tracker.spawn(async move {
            // Built on the transfer's task, not the listener's: netascii conversion is a pass
            // over the whole content, and a large file must not stall other requests.
            let transfer =
                Transfer::new(content, negotiation, max_retries, deadline, Instant::now())
                    .first_ack_within(first_ack);
            task.run(transfer).await;
        });
    }

    /// Answers a request with an ERROR from the listening socket and reports it.
    async fn reject(&self, peer: SocketAddr, filename: String, code: ErrorCode, message: &str) {
        self.send(&error_packet(code, message), peer).await;
        let event = TransferEvent::Rejected {
            peer,
            filename,
            code,
            message: message.to_owned(),
        };
        // Never drop the outcome, but never stall the listener on a slow consumer either:
        // when the channel is full, a tracked task waits for room.
        if let Err(mpsc::error::TrySendError::Full(event)) = self.events.try_send(event) {
            let events = self.events.clone();
            self.tracker.spawn(async move {
                let _ = events.send(event).await;
            });
        }
    }

    async fn send(&self, packet: &Packet, peer: SocketAddr) {
        let mut buf = Vec::new();
        packet.encode(&mut buf);
        // A lost ERROR is as good as a dropped one; the client times out either way.
        let _ = self.socket.send_to(&buf, peer).await;
    }
}

fn error_packet(code: ErrorCode, message: &str) -> Packet {
    Packet::Error {
        code,
        message: message.to_owned(),
    }
}

/// A fresh blocking socket on the listener's address, ephemeral port: the transfer's TID.
fn bind_like(local: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let mut addr = local;
    addr.set_port(0);
    std::net::UdpSocket::bind(addr)
}

/// Where a datagram reaches a socket bound to `local`: a wildcard address is not a valid
/// destination everywhere, but loopback of the same family reaches a wildcard socket.
fn reachable(local: SocketAddr) -> SocketAddr {
    let ip = match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, local.port())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The map stays consistent even if a holder panicked: every update is a single call.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A transfer's place in the active map and in its address's count, from the moment it is
/// accepted until its task ends, however it ends.
struct Registration {
    active: Active,
    peer: SocketAddr,
    id: TransferId,
}

impl Registration {
    fn new(active: &Active, peer: SocketAddr, id: TransferId, request: &[u8]) -> Registration {
        let mut peers = lock(active);
        peers.requests.insert(peer, (id, request.to_vec()));
        *peers.per_ip.entry(peer.ip()).or_insert(0) += 1;
        Registration {
            active: Arc::clone(active),
            peer,
            id,
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut peers = lock(&self.active);
        // A newer, different request from the same peer may have replaced this entry.
        if peers
            .requests
            .get(&self.peer)
            .is_some_and(|(id, _)| *id == self.id)
        {
            peers.requests.remove(&self.peer);
        }
        let ip = self.peer.ip();
        if let Some(count) = peers.per_ip.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                peers.per_ip.remove(&ip);
            }
        }
    }
}

struct TransferTask {
    id: TransferId,
    peer: SocketAddr,
    filename: String,
    socket: std::net::UdpSocket,
    events: mpsc::Sender<TransferEvent>,
    shutdown: CancellationToken,
    _registration: Registration,
    _permit: OwnedSemaphorePermit,
}

impl TransferTask {
    async fn run(self, transfer: Transfer) {
        let started = TransferEvent::Started {
            id: self.id,
            peer: self.peer,
            filename: self.filename.clone(),
            options: *transfer.options(),
            size: transfer.size(),
        };
        let _ = self.events.send(started).await;
        let outcome = self.drive_on_thread(transfer).await;
        let event = match outcome {
            Outcome::Completed {
                bytes,
                duration,
                retransmits,
            } => TransferEvent::Completed {
                id: self.id,
                bytes,
                duration,
                retransmits,
            },
            Outcome::Failed {
                reason,
                bytes_acked,
            } => TransferEvent::Failed {
                id: self.id,
                reason,
                bytes_acked,
            },
        };
        // The transfer is over before anyone hears so: whoever acts on the final event (a
        // client's next request, a test) must find the permit free and the peer unregistered.
        let events = self.events.clone();
        drop(self);
        let _ = events.send(event).await;
    }

    /// Runs the transfer on its own thread and waits for its outcome, waking the thread when
    /// the server shuts down.
    async fn drive_on_thread(&self, transfer: Transfer) -> Outcome {
        let (socket, local) = match (self.socket.try_clone(), self.socket.local_addr()) {
            (Ok(socket), Ok(local)) => (socket, local),
            (Err(e), _) | (_, Err(e)) => return self.refuse(&e),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let (done, mut outcome) = oneshot::channel();
        let driver = Driver {
            socket,
            local,
            peer: self.peer,
            id: self.id,
            events: self.events.clone(),
            stop: Arc::clone(&stop),
            done,
        };
        let spawned = std::thread::Builder::new()
            .name(THREAD_NAME.to_owned())
            .stack_size(THREAD_STACK)
            .spawn(move || driver.run(transfer));
        if let Err(e) = spawned {
            return self.refuse(&e);
        }
        let received = tokio::select! {
            received = &mut outcome => received,
            () = self.shutdown.cancelled() => {
                stop.store(true, Ordering::Release);
                // If this datagram is lost the thread still sees the flag at its next timeout.
                let _ = self.socket.send_to(&[], reachable(local));
                outcome.await
            }
        };
        // The thread only drops its sender without an outcome if it panicked, a bug whose
        // progress is unknown; the transfer still ends with a final event.
        received.unwrap_or(Outcome::Failed {
            reason: FailReason::Io(io::ErrorKind::Other),
            bytes_acked: 0,
        })
    }

    /// Tells the client that its transfer cannot start, when no thread could be set up for it.
    fn refuse(&self, e: &io::Error) -> Outcome {
        let mut buf = Vec::new();
        error_packet(ErrorCode::NOT_DEFINED, "cannot start the transfer").encode(&mut buf);
        let _ = self.socket.send_to(&buf, self.peer);
        Outcome::Failed {
            reason: FailReason::Io(e.kind()),
            bytes_acked: 0,
        }
    }
}

/// What a transfer thread owns: its socket, the peer, and the way back to the tokio side.
struct Driver {
    socket: std::net::UdpSocket,
    /// The socket's own address, where a shutdown wake-up comes from.
    local: SocketAddr,
    peer: SocketAddr,
    id: TransferId,
    events: mpsc::Sender<TransferEvent>,
    stop: Arc<AtomicBool>,
    done: oneshot::Sender<Outcome>,
}

impl Driver {
    fn run(self, mut transfer: Transfer) {
        let outcome = self.drive(&mut transfer);
        let _ = self.done.send(outcome);
    }

    /// Stops on shutdown, and also if the task waiting for the outcome is gone (its runtime
    /// was dropped), so a thread never outlives its server by more than one timeout.
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire) || self.done.is_closed()
    }

    /// Feeds the machine socket input, timeouts and shutdown until it finishes.
    fn drive(&self, transfer: &mut Transfer) -> Outcome {
        let mut actions = Vec::with_capacity(usize::from(transfer.options().windowsize) + 2);
        let mut send_buf = Vec::with_capacity(usize::from(transfer.options().blksize) + 4);
        let mut recv_buf = vec![0u8; TRANSFER_BUFFER];
        let mut recv_errors = 0;
        let mut read_timeout = None;
        let mut now = Instant::now();
        transfer.start(now, &mut actions);
        loop {
            for action in actions.drain(..) {
                match action {
                    Action::Send(packet) => {
                        send_buf.clear();
                        packet.encode(&mut send_buf);
                        // A failed send is a lost packet: the retransmission timer covers it.
                        let _ = self.socket.send_to(&send_buf, self.peer);
                    }
                    Action::Progress { bytes_acked, total } => {
                        let _ = self.events.try_send(TransferEvent::Progress {
                            id: self.id,
                            bytes_acked,
                            total,
                        });
                    }
                    Action::Finish(outcome) => return outcome,
                }
            }
            let Some(deadline) = transfer.next_deadline() else {
                unreachable!("an unfinished transfer always has a deadline");
            };
            // `now` is when the last input arrived, and an ACK sets the next deadline from it,
            // so in steady lock-step the wait is the same every block and the socket option
            // is left alone.
            let wait = deadline.saturating_duration_since(now);
            if wait.is_zero() {
                now = Instant::now();
                transfer.handle(Input::Tick, now, &mut actions);
                continue;
            }
            if read_timeout != Some(wait) {
                if let Err(e) = self.socket.set_read_timeout(Some(wait)) {
                    // Without a timeout the thread could block forever on a silent client.
                    return Outcome::Failed {
                        reason: FailReason::Io(e.kind()),
                        bytes_acked: transfer.bytes_acked(),
                    };
                }
                read_timeout = Some(wait);
            }
            let received = self.socket.recv_from(&mut recv_buf);
            now = Instant::now();
            if self.stopping() {
                transfer.handle(Input::Shutdown, now, &mut actions);
                continue;
            }
            match received {
                Ok((len, from)) => {
                    recv_errors = 0;
                    if let Some(input) = self.input(&recv_buf[..len], from, &mut send_buf) {
                        transfer.handle(input, now, &mut actions);
                    }
                    // A steady stream of datagrams (a flood from another port, say) never lets
                    // the read time out, so the deadlines are checked here too.
                    if transfer
                        .next_deadline()
                        .is_some_and(|deadline| now >= deadline)
                    {
                        transfer.handle(Input::Tick, now, &mut actions);
                    }
                }
                Err(e) if is_timeout(&e) => transfer.handle(Input::Tick, now, &mut actions),
                Err(e) if is_transient(&e) => {}
                Err(e) => {
                    recv_errors += 1;
                    if recv_errors >= MAX_RECV_ERRORS {
                        return Outcome::Failed {
                            reason: FailReason::Io(e.kind()),
                            bytes_acked: transfer.bytes_acked(),
                        };
                    }
                }
            }
        }
    }

    /// Turns a datagram into machine input. Packets from another TID get ERROR 5 and are
    /// otherwise ignored, as is anything from the client that is not an ACK or an ERROR.
    fn input(&self, datagram: &[u8], from: SocketAddr, buf: &mut Vec<u8>) -> Option<Input> {
        if from != self.peer {
            // A late shutdown wake-up comes from this very socket; answering it would start
            // an exchange of ERRORs with ourselves.
            if from != reachable(self.local) {
                buf.clear();
                error_packet(ErrorCode::UNKNOWN_TID, "unknown transfer ID").encode(buf);
                let _ = self.socket.send_to(buf, from);
            }
            return None;
        }
        match codec::parse(datagram) {
            Ok(Packet::Ack { block }) => Some(Input::Ack(block)),
            Ok(Packet::Error { code, message }) => Some(Input::Error { code, message }),
            _ => None,
        }
    }
}

/// How a blocking receive reports that its read timeout passed (`WouldBlock` on Unix,
/// `TimedOut` on Windows).
fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An octet RRQ for `filename` without options, as a client sends it.
    fn read_request(filename: &str) -> Vec<u8> {
        let mut buf = Vec::new();
        Packet::Rrq {
            filename: filename.into(),
            mode: Mode::Octet,
            options: Vec::new(),
        }
        .encode(&mut buf);
        buf
    }

    #[test]
    fn a_wildcard_socket_is_reached_on_loopback() {
        let v4: SocketAddr = "0.0.0.0:69".parse().expect("literal");
        assert_eq!(reachable(v4), "127.0.0.1:69".parse().expect("literal"));
        let v6: SocketAddr = "[::]:69".parse().expect("literal");
        assert_eq!(reachable(v6), "[::1]:69".parse().expect("literal"));
        let bound: SocketAddr = "192.0.2.7:1069".parse().expect("literal");
        assert_eq!(reachable(bound), bound);
    }

    /// A runtime dropped without a shutdown drops the tasks waiting for the threads; each
    /// thread notices at its next timeout and tells its client, instead of serving on alone.
    #[test]
    fn a_transfer_thread_ends_when_its_runtime_is_dropped() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let socket = runtime
            .block_on(UdpSocket::bind("127.0.0.1:0"))
            .expect("bind loopback");
        let addr = socket.local_addr().expect("local address");
        let source = |_: &str, _: SocketAddr| Ok(bytes::Bytes::from(vec![7u8; 5000]));
        let (events, _rx) = mpsc::channel(64);
        let config = Config {
            timeout: Duration::from_millis(200),
            max_retries: 1000,
            ..Config::default()
        };
        runtime.spawn(run(
            socket,
            config,
            Arc::new(source),
            events,
            CancellationToken::new(),
        ));
        let client = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind loopback");
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        let buf = read_request("a");
        client.send_to(&buf, addr).expect("send");
        let mut reply = vec![0u8; 2048];
        let (len, _) = client.recv_from(&mut reply).expect("first block");
        assert!(matches!(
            codec::parse(&reply[..len]),
            Ok(Packet::Data { block: 1, .. })
        ));
        drop(runtime);
        // Retransmissions of block 1 may come first; the ERROR must follow within the bound.
        for _ in 0..100 {
            let (len, _) = client
                .recv_from(&mut reply)
                .expect("the thread went silent");
            if let Ok(Packet::Error { message, .. }) = codec::parse(&reply[..len]) {
                assert_eq!(message, "server shutting down");
                return;
            }
        }
        panic!("the thread kept serving after its runtime was dropped");
    }

    /// On a wildcard listener the transfer socket is a wildcard too; shutdown must still reach
    /// the thread blocked on it (through loopback) well before its 60 s timeout.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_wakes_a_transfer_on_a_wildcard_socket() {
        let socket = UdpSocket::bind("0.0.0.0:0").await.expect("bind wildcard");
        let port = socket.local_addr().expect("local address").port();
        let source = |_: &str, _: SocketAddr| Ok(bytes::Bytes::from(vec![7u8; 5000]));
        let (events, mut rx) = mpsc::channel(64);
        let shutdown = CancellationToken::new();
        let config = Config {
            timeout: Duration::from_secs(60),
            ..Config::default()
        };
        let server = tokio::spawn(run(
            socket,
            config,
            Arc::new(source),
            events,
            shutdown.clone(),
        ));
        let client = UdpSocket::bind("127.0.0.1:0").await.expect("bind loopback");
        let buf = read_request("a");
        client
            .send_to(&buf, ("127.0.0.1", port))
            .await
            .expect("send");
        let mut reply = vec![0u8; 2048];
        let wait = Duration::from_secs(30);
        let (len, _) = tokio::time::timeout(wait, client.recv_from(&mut reply))
            .await
            .expect("first block in time")
            .expect("receive");
        assert!(matches!(
            codec::parse(&reply[..len]),
            Ok(Packet::Data { block: 1, .. })
        ));
        shutdown.cancel();
        let ended = tokio::time::timeout(Duration::from_secs(10), server).await;
        assert!(
            matches!(ended, Ok(Ok(Ok(())))),
            "run did not end promptly: {ended:?}"
        );
        let mut last = None;
        while let Some(event) = rx.recv().await {
            last = Some(event);
        }
        assert!(
            matches!(
                last,
                Some(TransferEvent::Failed {
                    reason: FailReason::Shutdown,
                    ..
                })
            ),
            "{last:?}"
        );
    }
}
