//! A small blocking TFTP read client (RFC 1350, 2347, 2348, 7440) with scriptable faults, for
//! the loopback tests and the benchmark.
//!
//! It is blocking on purpose: one `recv_from` per packet with a socket read timeout is the
//! cheapest client there is, so the benchmark measures the servers, not the client. Every wait
//! is bounded by the read timeout and a retry count, so a broken server fails a test instead of
//! hanging it.
#![allow(dead_code)]

use std::collections::HashSet;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use provdesk_tftp::codec::{self, ErrorCode, Mode, Packet, TftpOption};

/// One download request and how to misbehave during it.
#[derive(Debug, Clone)]
pub struct Get {
    pub filename: String,
    pub mode: Mode,
    pub options: Vec<TftpOption>,
    /// How long to wait for a packet before resending the last one.
    pub timeout: Duration,
    /// Resends before giving up.
    pub retries: u32,
    pub faults: Faults,
}

impl Get {
    pub fn new(filename: &str) -> Self {
        Self {
            filename: filename.to_owned(),
            mode: Mode::Octet,
            options: Vec::new(),
            timeout: Duration::from_secs(2),
            retries: 5,
            faults: Faults::default(),
        }
    }

    pub fn option(mut self, name: &str, value: impl ToString) -> Self {
        self.options.push(TftpOption::new(name, value.to_string()));
        self
    }

    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }
}

/// Faults to inject, by absolute block index (1 is the first DATA block; 0 is the OACK's ACK).
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Do not send the first ACK for these blocks (as if it were lost on the way).
    pub drop_acks: Vec<u64>,
    /// Pretend the first copy of these DATA blocks never arrived.
    pub drop_data: Vec<u64>,
    /// Send every ACK twice.
    pub duplicate_acks: bool,
}

#[derive(Debug)]
pub struct Download {
    pub data: Vec<u8>,
    /// The options of the OACK, if the server sent one.
    pub oack: Option<Vec<TftpOption>>,
    /// DATA packets that carried the next expected block.
    pub data_packets: u64,
    /// DATA packets for a block already received (retransmissions the client saw).
    pub duplicates: u64,
    /// The server's transfer ID.
    pub server_tid: SocketAddr,
}

#[derive(Debug)]
pub enum GetError {
    Server { code: ErrorCode, message: String },
    Timeout,
    Io(io::Error),
    Protocol(String),
}

impl From<io::Error> for GetError {
    fn from(e: io::Error) -> Self {
        GetError::Io(e)
    }
}

/// Downloads `get.filename` from `server` on a fresh socket.
pub fn get(server: SocketAddr, get: &Get) -> Result<Download, GetError> {
    let local: SocketAddr = if server.is_ipv4() {
        "127.0.0.1:0".parse().expect("literal address")
    } else {
        "[::1]:0".parse().expect("literal address")
    };
    let socket = UdpSocket::bind(local)?;
    socket.set_read_timeout(Some(get.timeout))?;
    Client::new(socket, get).run(server)
}

struct Client<'a> {
    socket: UdpSocket,
    get: &'a Get,
    blksize: usize,
    window: u64,
    /// The last packet sent, resent when the server goes quiet.
    last_sent: Vec<u8>,
    dropped_acks: HashSet<u64>,
    dropped_data: HashSet<u64>,
}

impl<'a> Client<'a> {
    fn new(socket: UdpSocket, get: &'a Get) -> Self {
        Self {
            socket,
            get,
            blksize: 512,
            window: 1,
            last_sent: Vec::new(),
            dropped_acks: HashSet::new(),
            dropped_data: HashSet::new(),
        }
    }

    fn run(mut self, server: SocketAddr) -> Result<Download, GetError> {
        let rrq = Packet::Rrq {
            filename: self.get.filename.clone(),
            mode: self.get.mode,
            options: self.get.options.clone(),
        };
        rrq.encode(&mut self.last_sent);
        self.socket.send_to(&self.last_sent, server)?;

        let mut download = Download {
            data: Vec::new(),
            oack: None,
            data_packets: 0,
            duplicates: 0,
            server_tid: server,
        };
        let mut tid: Option<SocketAddr> = None;
        let mut received: u64 = 0; // absolute index of the last in-order block
        let mut in_window: u64 = 0;
        let mut gap_acked = false;
        let mut retries = 0;
        let mut buf = vec![0u8; 65536 + 4];
        loop {
            let (len, from) = match self.socket.recv_from(&mut buf) {
                Ok(r) => r,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    retries += 1;
                    if retries > self.get.retries {
                        return Err(GetError::Timeout);
                    }
                    self.socket
                        .send_to(&self.last_sent, tid.unwrap_or(server))?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            match tid {
                None => tid = Some(from),
                Some(t) if t != from => continue,
                Some(_) => {}
            }
            retries = 0;
            let packet = codec::parse(&buf[..len])
                .map_err(|e| GetError::Protocol(format!("unparsable packet: {e}")))?;
            match packet {
                Packet::Oack { options } if received == 0 && download.oack.is_none() => {
                    for option in &options {
                        let value: u64 = option.value.parse().unwrap_or(0);
                        if option.is("blksize") {
                            self.blksize = value as usize;
                        } else if option.is("windowsize") {
                            self.window = value.max(1);
                        }
                    }
                    download.oack = Some(options);
                    download.server_tid = from;
                    self.ack(0, 0, from)?;
                }
                Packet::Oack { .. } => {
                    // A repeated OACK: our ACK 0 was lost or slow; repeat it.
                    self.ack(0, 0, from)?;
                }
                Packet::Data { block, data } => {
                    download.server_tid = from;
                    let expected = received + 1;
                    let ahead = block.wrapping_sub(expected as u16);
                    if ahead == 0 {
                        if self.get.faults.drop_data.contains(&expected)
                            && self.dropped_data.insert(expected)
                        {
                            continue;
                        }
                        received = expected;
                        gap_acked = false;
                        in_window += 1;
                        download.data_packets += 1;
                        download.data.extend_from_slice(&data);
                        let last = data.len() < self.blksize;
                        if last || in_window == self.window {
                            in_window = 0;
                            self.ack(received, block, from)?;
                        }
                        if last {
                            return Ok(download);
                        }
                    } else if ahead < 0x8000 {
                        // A gap: RFC 7440 says to acknowledge the last block received in order,
                        // once, so the server restarts the window after it.
                        if !gap_acked {
                            gap_acked = true;
                            in_window = 0;
                            self.ack(received, received as u16, from)?;
                        }
                    } else {
                        // A block we already have: the server resent it, so our ACK was lost.
                        download.duplicates += 1;
                        in_window = 0;
                        self.ack(received, received as u16, from)?;
                    }
                }
                Packet::Error { code, message } => return Err(GetError::Server { code, message }),
                other => return Err(GetError::Protocol(format!("unexpected {other:?}"))),
            }
        }
    }

    /// Acknowledges absolute block `index` (wire number `block`), applying the faults.
    fn ack(&mut self, index: u64, block: u16, to: SocketAddr) -> io::Result<()> {
        self.last_sent.clear();
        Packet::Ack { block }.encode(&mut self.last_sent);
        if self.get.faults.drop_acks.contains(&index) && self.dropped_acks.insert(index) {
            return Ok(());
        }
        self.socket.send_to(&self.last_sent, to)?;
        if self.get.faults.duplicate_acks {
            self.socket.send_to(&self.last_sent, to)?;
        }
        Ok(())
    }
}
