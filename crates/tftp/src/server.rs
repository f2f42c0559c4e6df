//! The tokio loop around the codec and the transfer state machine: one listener, one task and
//! one ephemeral socket per transfer.
//!
//! Invariants:
//! - The caller binds the listening socket; each transfer binds its own socket on the same
//!   local address with port 0, so its TID is fresh and replies leave from the address the
//!   request reached (bind one listener per interface address rather than a wildcard).
//! - Transfer sockets are not connected: a packet from another port gets ERROR 5 and the
//!   transfer carries on (RFC 1350 §4).
//! - Requests are answered only with ERRORs until a permit of the transfer limit is free.
//! - `run` returns only after every transfer task has ended and sent its final event.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
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

/// The requests currently being served, by peer, with the request bytes and the transfer id.
/// A client that repeats its RRQ (because our first answer was slow) must not start a second
/// transfer that it would then kill with ERROR 5 and report as a failure.
type Active = Arc<Mutex<HashMap<SocketAddr, (TransferId, Vec<u8>)>>>;

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
        if self.is_repeat(peer, datagram) {
            return;
        }
        let Ok(permit) = Arc::clone(&self.limit).try_acquire_owned() else {
            return self
                .reject(peer, filename, ErrorCode::NOT_DEFINED, "server busy")
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
        lock(&self.active).insert(peer, (id, datagram.to_vec()));
        let task = TransferTask {
            id,
            peer,
            filename,
            socket,
            events: self.events.clone(),
            shutdown: self.transfers.clone(),
            _registration: Registration {
                active: Arc::clone(&self.active),
                peer,
                id,
            },
            _permit: permit,
        };
        let negotiation = negotiate(&options, mode, content.len() as u64, &self.config);
        let (max_retries, deadline) = (self.config.max_retries, self.config.transfer_deadline);
        self.tracker.spawn(async move {
            // Built on the transfer's task, not the listener's: netascii conversion is a pass
            // over the whole content, and a large file must not stall other requests.
            let transfer =
                Transfer::new(content, negotiation, max_retries, deadline, Instant::now());
            task.run(transfer).await;
        });
    }

    fn is_repeat(&self, peer: SocketAddr, datagram: &[u8]) -> bool {
        lock(&self.active)
            .get(&peer)
            .is_some_and(|(_, request)| request == datagram)
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

/// A fresh socket on the listener's address, ephemeral port: the transfer's TID.
fn bind_like(local: SocketAddr) -> io::Result<UdpSocket> {
    let mut addr = local;
    addr.set_port(0);
    let socket = std::net::UdpSocket::bind(addr)?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The map stays consistent even if a holder panicked: every update is a single call.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Removes a transfer from the active map when its task ends, however it ends.
struct Registration {
    active: Active,
    peer: SocketAddr,
    id: TransferId,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut active = lock(&self.active);
        // A newer, different request from the same peer may have replaced this entry.
        if active.get(&self.peer).is_some_and(|(id, _)| *id == self.id) {
            active.remove(&self.peer);
        }
    }
}

struct TransferTask {
    id: TransferId,
    peer: SocketAddr,
    filename: String,
    socket: UdpSocket,
    events: mpsc::Sender<TransferEvent>,
    shutdown: CancellationToken,
    _registration: Registration,
    _permit: OwnedSemaphorePermit,
}

impl TransferTask {
    async fn run(self, mut transfer: Transfer) {
        let started = TransferEvent::Started {
            id: self.id,
            peer: self.peer,
            filename: self.filename.clone(),
            options: *transfer.options(),
            size: transfer.size(),
        };
        let _ = self.events.send(started).await;
        let outcome = self.drive(&mut transfer).await;
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
        let _ = self.events.send(event).await;
    }

    /// Feeds the machine socket input, timer ticks and shutdown until it finishes.
    async fn drive(&self, transfer: &mut Transfer) -> Outcome {
        let mut actions = Vec::with_capacity(usize::from(transfer.options().windowsize) + 2);
        let mut send_buf = Vec::with_capacity(usize::from(transfer.options().blksize) + 4);
        let mut recv_buf = vec![0u8; TRANSFER_BUFFER];
        let mut recv_errors = 0;
        transfer.start(Instant::now(), &mut actions);
        let first_deadline = transfer.next_deadline().unwrap_or_else(Instant::now);
        let timer = tokio::time::sleep_until(first_deadline.into());
        let cancelled = self.shutdown.cancelled();
        tokio::pin!(timer, cancelled);
        loop {
            for action in actions.drain(..) {
                match action {
                    Action::Send(packet) => {
                        send_buf.clear();
                        packet.encode(&mut send_buf);
                        // A failed send is a lost packet: the retransmission timer covers it.
                        let _ = self.socket.send_to(&send_buf, self.peer).await;
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
            // The timer is only moved earlier here. When the deadline moves later (every ACK
            // does that) the timer fires early, the machine ignores the tick and the timer is
            // set again: one wasted wake-up per timeout period instead of a timer-wheel update
            // per packet.
            if timer.deadline() > deadline.into() {
                timer.as_mut().reset(deadline.into());
            }
            tokio::select! {
                biased;
                () = &mut cancelled => transfer.handle(Input::Shutdown, Instant::now(), &mut actions),
                received = self.socket.recv_from(&mut recv_buf) => match received {
                    Ok((len, from)) => {
                        recv_errors = 0;
                        let input = self.input(&recv_buf[..len], from, &mut send_buf).await;
                        let now = Instant::now();
                        if let Some(input) = input {
                            transfer.handle(input, now, &mut actions);
                        }
                        // A steady stream of datagrams (a flood from another port, say) keeps
                        // this branch ready and would starve the timer branch below, so the
                        // deadlines are checked here too.
                        if transfer.next_deadline().is_some_and(|deadline| now >= deadline) {
                            transfer.handle(Input::Tick, now, &mut actions);
                        }
                    }
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
                },
                () = &mut timer => {
                    transfer.handle(Input::Tick, Instant::now(), &mut actions);
                    if let Some(next) = transfer.next_deadline() {
                        timer.as_mut().reset(next.into());
                    }
                }
            }
        }
    }

    /// Turns a datagram into machine input. Packets from another TID get ERROR 5 and are
    /// otherwise ignored, as is anything from the client that is not an ACK or an ERROR.
    async fn input(&self, datagram: &[u8], from: SocketAddr, buf: &mut Vec<u8>) -> Option<Input> {
        if from != self.peer {
            buf.clear();
            error_packet(ErrorCode::UNKNOWN_TID, "unknown transfer ID").encode(buf);
            let _ = self.socket.send_to(buf, from).await;
            return None;
        }
        match codec::parse(datagram) {
            Ok(Packet::Ack { block }) => Some(Input::Ack(block)),
            Ok(Packet::Error { code, message }) => Some(Input::Error { code, message }),
            _ => None,
        }
    }
}
