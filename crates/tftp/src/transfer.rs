//! The sans-IO state machine of one read transfer: (state, input, now) → actions.
//!
//! Invariants:
//! - Blocks are numbered from 1 as `u64` internally and sent as their low 16 bits, so block
//!   65535 is followed by block 0 (the usual roll-over) and files of any size work.
//! - Data is only ever resent when the retransmission timer fires or when the client
//!   acknowledges part of a window (RFC 7440: the next window starts after the acknowledged
//!   block). A duplicate or stale ACK changes nothing, which is what prevents the Sorcerer's
//!   Apprentice syndrome (RFC 1123 §4.2.3.1).
//! - The last block is shorter than the block size, and empty when the size is a multiple of it.
//! - Once a [`Action::Finish`] has been produced, every later input is ignored.
//! - With a first-ACK deadline ([`Transfer::first_ack_within`]), a transfer whose first packet
//!   (the OACK, or DATA 1) is never acknowledged ends silently at that deadline, however many
//!   retries are left: no ERROR goes to an address that may not have asked.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::codec::{ErrorCode, Mode, Packet, TftpOption};
use crate::netascii;
use crate::options::{Negotiation, TransferOptions};

/// Progress is reported after this many newly acknowledged bytes...
pub const PROGRESS_BYTES: u64 = 64 * 1024;
/// ...or after this much time, whichever comes first.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// An ACK from the client's TID.
    Ack(u16),
    /// An ERROR from the client's TID: the client gave up.
    Error { code: ErrorCode, message: String },
    /// Time has passed; the machine compares `now` with its own deadlines.
    Tick,
    /// The server is shutting down.
    Shutdown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Send(Packet),
    Progress { bytes_acked: u64, total: u64 },
    Finish(Outcome),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Completed {
        bytes: u64,
        duration: Duration,
        retransmits: u64,
    },
    Failed {
        reason: FailReason,
        bytes_acked: u64,
    },
}

/// Why a transfer ended without delivering the whole file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FailReason {
    #[error("no acknowledgement after {retries} retransmissions")]
    TimedOut { retries: u32 },
    /// The client sent an ERROR packet. Code 8 in answer to the OACK means it refused the options.
    #[error("the client sent error {code}: {message}")]
    ClientError { code: ErrorCode, message: String },
    #[error("the transfer took longer than its deadline of {0:?}")]
    DeadlineExceeded(Duration),
    /// The first packet was never acknowledged: a spoofed or flooding request, or a client
    /// that went away at once.
    #[error("no acknowledgement of the first packet within {0:?}")]
    NoFirstAck(Duration),
    #[error("the server is shutting down")]
    Shutdown,
    #[error("socket error: {0}")]
    Io(std::io::ErrorKind),
}

#[derive(Debug)]
pub struct Transfer {
    /// The bytes as they go on the wire (already netascii-encoded in netascii mode).
    data: Bytes,
    options: TransferOptions,
    blksize: u64,
    window: u64,
    total_blocks: u64,
    /// The OACK while it waits for ACK 0; `None` once data flows (or if there was none).
    oack: Option<Vec<TftpOption>>,
    /// Highest block acknowledged (0: none).
    acked: u64,
    /// Highest block sent since the last rewind.
    sent: u64,
    retries: u32,
    max_retries: u32,
    retransmits: u64,
    started: Instant,
    max_duration: Duration,
    /// Until the first ACK: how long it may take, and when that is. `None` once it came (or
    /// when there is no such deadline).
    first_ack: Option<(Duration, Instant)>,
    retransmit_at: Instant,
    progress_bytes: u64,
    progress_at: Instant,
    finished: bool,
}

impl Transfer {
    /// A transfer of `content` (the source's bytes) with the negotiated parameters. Nothing is
    /// sent until [`Transfer::start`].
    pub fn new(
        content: Bytes,
        negotiation: Negotiation,
        max_retries: u32,
        max_duration: Duration,
        now: Instant,
    ) -> Self {
        let Negotiation { options, oack } = negotiation;
        let data = if options.mode == Mode::Netascii && netascii::needs_encoding(&content) {
            Bytes::from(netascii::encode(&content))
        } else {
            content
        };
        let blksize = u64::from(options.blksize.max(1));
        let total_blocks = data.len() as u64 / blksize + 1;
        Self {
            data,
            options,
            blksize,
            window: u64::from(options.windowsize.max(1)),
            total_blocks,
            oack: (!oack.is_empty()).then_some(oack),
            acked: 0,
            sent: 0,
            retries: 0,
            max_retries,
            retransmits: 0,
            started: now,
            max_duration,
            first_ack: None,
            retransmit_at: now,
            progress_bytes: 0,
            progress_at: now,
            finished: false,
        }
    }

    /// Ends the transfer, without an ERROR, if its first packet is not acknowledged within
    /// `limit` of the transfer's creation. Shorter than the retry budget on purpose: an
    /// unanswered first packet is what a spoofed or flooding request looks like, and its slot
    /// should be free again quickly. A real client that lost our first packets keeps
    /// resending its request, which starts the transfer afresh once this one is gone.
    pub fn first_ack_within(mut self, limit: Duration) -> Self {
        self.first_ack = Some((limit, self.started + limit));
        self
    }

    pub fn options(&self) -> &TransferOptions {
        &self.options
    }

    /// Bytes on the wire, the figure progress is measured against.
    pub fn size(&self) -> u64 {
        self.data.len() as u64
    }

    pub fn bytes_acked(&self) -> u64 {
        (self.acked * self.blksize).min(self.size())
    }

    pub fn retransmits(&self) -> u64 {
        self.retransmits
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// When the machine next wants a [`Input::Tick`]; `None` once finished.
    pub fn next_deadline(&self) -> Option<Instant> {
        (!self.finished).then(|| {
            let deadline = self.retransmit_at.min(self.started + self.max_duration);
            self.first_ack
                .map_or(deadline, |(_, first)| deadline.min(first))
        })
    }

    /// Sends the OACK, or the first window when no option was accepted.
    pub fn start(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.finished {
            return;
        }
        match &self.oack {
            Some(options) => {
                out.push(Action::Send(Packet::Oack {
                    options: options.clone(),
                }));
                self.retransmit_at = now + self.options.timeout;
            }
            None => self.send_window(now, out),
        }
    }

    pub fn handle(&mut self, input: Input, now: Instant, out: &mut Vec<Action>) {
        if self.finished {
            return;
        }
        match input {
            Input::Ack(block) => self.on_ack(block, now, out),
            Input::Error { code, message } => {
                // The client has already given up, so answering would only reach a closed port.
                self.fail(FailReason::ClientError { code, message }, out);
            }
            Input::Tick => self.on_tick(now, out),
            Input::Shutdown => {
                self.send_error("server shutting down", out);
                self.fail(FailReason::Shutdown, out);
            }
        }
    }

    fn on_ack(&mut self, block: u16, now: Instant, out: &mut Vec<Action>) {
        if self.oack.is_some() {
            // Only ACK 0 confirms the OACK; anything else is a confused client and is ignored
            // (the timer resends the OACK).
            if block == 0 {
                self.oack = None;
                self.first_ack = None;
                self.retries = 0;
                self.send_window(now, out);
            }
            return;
        }
        // Place the 16-bit number relative to the last ACK. The window is at most 32768 blocks
        // (see `options::MAX_WINDOWSIZE`), so a distance within what was sent is a new ACK and
        // anything else (0: a duplicate, larger: stale) is ignored.
        let distance = u64::from(block.wrapping_sub(self.acked as u16));
        if distance == 0 || distance > self.sent - self.acked {
            return;
        }
        self.acked += distance;
        self.first_ack = None;
        self.retries = 0;
        if self.acked == self.total_blocks {
            self.finished = true;
            out.push(Action::Finish(Outcome::Completed {
                bytes: self.size(),
                duration: now.saturating_duration_since(self.started),
                retransmits: self.retransmits,
            }));
            return;
        }
        let bytes_acked = self.bytes_acked();
        if bytes_acked - self.progress_bytes >= PROGRESS_BYTES
            || now.saturating_duration_since(self.progress_at) >= PROGRESS_INTERVAL
        {
            self.progress_bytes = bytes_acked;
            self.progress_at = now;
            out.push(Action::Progress {
                bytes_acked,
                total: self.size(),
            });
        }
        if self.acked < self.sent {
            // A partial ACK: the client lost a block of the window and expects the next
            // window to start right after the block it acknowledged (RFC 7440 §4).
            self.rewind();
        }
        self.send_window(now, out);
    }

    fn on_tick(&mut self, now: Instant, out: &mut Vec<Action>) {
        if let Some((limit, at)) = self.first_ack
            && now >= at
        {
            self.fail(FailReason::NoFirstAck(limit), out);
            return;
        }
        if now >= self.started + self.max_duration {
            self.send_error("transfer deadline exceeded", out);
            self.fail(FailReason::DeadlineExceeded(self.max_duration), out);
            return;
        }
        if now < self.retransmit_at {
            return;
        }
        if self.retries >= self.max_retries {
            self.send_error("timed out waiting for an acknowledgement", out);
            self.fail(
                FailReason::TimedOut {
                    retries: self.retries,
                },
                out,
            );
            return;
        }
        self.retries += 1;
        match &self.oack {
            Some(options) => {
                self.retransmits += 1;
                out.push(Action::Send(Packet::Oack {
                    options: options.clone(),
                }));
                self.retransmit_at = now + self.options.timeout;
            }
            None => {
                self.rewind();
                self.send_window(now, out);
            }
        }
    }

    /// Forgets what was sent past the last ACK, so the next window starts right after it.
    fn rewind(&mut self) {
        self.retransmits += self.sent - self.acked;
        self.sent = self.acked;
    }

    /// Sends blocks up to a full window past the last ACK and restarts the timer.
    fn send_window(&mut self, now: Instant, out: &mut Vec<Action>) {
        let end = (self.acked + self.window).min(self.total_blocks);
        while self.sent < end {
            self.sent += 1;
            let start = ((self.sent - 1) * self.blksize) as usize;
            let stop = (start + self.blksize as usize).min(self.data.len());
            out.push(Action::Send(Packet::Data {
                block: self.sent as u16,
                data: self.data.slice(start..stop),
            }));
        }
        self.retransmit_at = now + self.options.timeout;
    }

    fn send_error(&self, message: &str, out: &mut Vec<Action>) {
        out.push(Action::Send(Packet::Error {
            code: ErrorCode::NOT_DEFINED,
            message: message.to_owned(),
        }));
    }

    fn fail(&mut self, reason: FailReason, out: &mut Vec<Action>) {
        self.finished = true;
        out.push(Action::Finish(Outcome::Failed {
            reason,
            bytes_acked: self.bytes_acked(),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Mode;

    const TIMEOUT: Duration = Duration::from_secs(1);

    fn options(blksize: u16, windowsize: u16) -> TransferOptions {
        TransferOptions {
            mode: Mode::Octet,
            blksize,
            windowsize,
            timeout: TIMEOUT,
            tsize: None,
        }
    }

    fn content(len: usize) -> Bytes {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    /// A transfer of `len` bytes with no OACK, and the instant it started.
    fn transfer(len: usize, blksize: u16, windowsize: u16) -> (Transfer, Instant) {
        let now = Instant::now();
        let negotiation = Negotiation {
            options: options(blksize, windowsize),
            oack: Vec::new(),
        };
        (
            Transfer::new(content(len), negotiation, 3, Duration::from_secs(600), now),
            now,
        )
    }

    /// The block numbers of the DATA packets in `actions`.
    fn data_blocks(actions: &[Action]) -> Vec<u16> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send(Packet::Data { block, .. }) => Some(*block),
                _ => None,
            })
            .collect()
    }

    fn finish(actions: &[Action]) -> Option<&Outcome> {
        actions.iter().find_map(|a| match a {
            Action::Finish(outcome) => Some(outcome),
            _ => None,
        })
    }

    fn step(t: &mut Transfer, input: Input, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        t.handle(input, now, &mut out);
        out
    }

    fn started(t: &mut Transfer, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        t.start(now, &mut out);
        out
    }

    #[test]
    fn lock_step_sends_one_block_per_ack_and_completes() {
        let (mut t, now) = transfer(1300, 512, 1);
        assert_eq!(data_blocks(&started(&mut t, now)), [1]);
        assert_eq!(data_blocks(&step(&mut t, Input::Ack(1), now)), [2]);
        let last = step(&mut t, Input::Ack(2), now);
        match &last[..] {
            [Action::Send(Packet::Data { block: 3, data })] => assert_eq!(data.len(), 276),
            other => panic!("unexpected {other:?}"),
        }
        let done = step(&mut t, Input::Ack(3), now);
        assert_eq!(
            finish(&done),
            Some(&Outcome::Completed {
                bytes: 1300,
                duration: Duration::ZERO,
                retransmits: 0
            })
        );
        assert!(t.is_finished());
        assert_eq!(t.next_deadline(), None);
        assert!(step(&mut t, Input::Ack(3), now).is_empty());
    }

    #[test]
    fn window_slides_on_each_ack_and_a_partial_ack_restarts_after_it() {
        let (mut t, now) = transfer(512 * 20, 512, 4);
        assert_eq!(data_blocks(&started(&mut t, now)), [1, 2, 3, 4]);
        assert_eq!(data_blocks(&step(&mut t, Input::Ack(4), now)), [5, 6, 7, 8]);
        // The client lost block 7: it acknowledges 6, and the next window starts at 7.
        assert_eq!(
            data_blocks(&step(&mut t, Input::Ack(6), now)),
            [7, 8, 9, 10]
        );
        assert_eq!(t.retransmits(), 2);
        // A stale ACK from before the rewind does nothing.
        assert!(step(&mut t, Input::Ack(5), now).is_empty());
        assert_eq!(
            data_blocks(&step(&mut t, Input::Ack(10), now)),
            [11, 12, 13, 14]
        );
    }

    #[test]
    fn duplicate_ack_does_not_resend() {
        let (mut t, now) = transfer(5000, 512, 1);
        started(&mut t, now);
        assert_eq!(data_blocks(&step(&mut t, Input::Ack(1), now)), [2]);
        assert!(step(&mut t, Input::Ack(1), now).is_empty());
        assert!(step(&mut t, Input::Ack(0), now).is_empty());
        let (mut w, now) = transfer(5000, 512, 4);
        started(&mut w, now);
        assert_eq!(data_blocks(&step(&mut w, Input::Ack(4), now)), [5, 6, 7, 8]);
        assert!(step(&mut w, Input::Ack(4), now).is_empty());
        assert_eq!(w.retransmits(), 0);
    }

    #[test]
    fn ack_beyond_what_was_sent_is_ignored() {
        let (mut t, now) = transfer(5000, 512, 2);
        started(&mut t, now);
        assert!(step(&mut t, Input::Ack(3), now).is_empty());
        assert!(step(&mut t, Input::Ack(40000), now).is_empty());
        assert_eq!(data_blocks(&step(&mut t, Input::Ack(2), now)), [3, 4]);
    }

    #[test]
    fn timeout_resends_from_the_block_after_the_last_ack() {
        let (mut t, now) = transfer(512 * 20, 512, 4);
        started(&mut t, now);
        step(&mut t, Input::Ack(4), now);
        // Sent 1..=8, acknowledged 4: a timer expiry resends 5..=8, and nothing before.
        let early = now + TIMEOUT - Duration::from_millis(1);
        assert!(step(&mut t, Input::Tick, early).is_empty());
        assert_eq!(t.next_deadline(), Some(now + TIMEOUT));
        assert_eq!(
            data_blocks(&step(&mut t, Input::Tick, now + TIMEOUT)),
            [5, 6, 7, 8]
        );
        assert_eq!(t.retransmits(), 4);
        assert_eq!(t.next_deadline(), Some(now + 2 * TIMEOUT));
    }

    #[test]
    fn retries_exhausted_sends_an_error_and_fails() {
        let (mut t, mut now) = transfer(5000, 512, 1);
        started(&mut t, now);
        step(&mut t, Input::Ack(1), now);
        for _ in 0..3 {
            now += TIMEOUT;
            assert_eq!(data_blocks(&step(&mut t, Input::Tick, now)), [2]);
        }
        now += TIMEOUT;
        let out = step(&mut t, Input::Tick, now);
        assert!(matches!(
            &out[0],
            Action::Send(Packet::Error {
                code: ErrorCode::NOT_DEFINED,
                ..
            })
        ));
        assert_eq!(
            finish(&out),
            Some(&Outcome::Failed {
                reason: FailReason::TimedOut { retries: 3 },
                bytes_acked: 512
            })
        );
        assert!(step(&mut t, Input::Ack(2), now).is_empty());
    }

    #[test]
    fn an_ack_resets_the_retry_count() {
        let (mut t, mut now) = transfer(512 * 10, 512, 1);
        started(&mut t, now);
        for block in 1..=5u16 {
            for _ in 0..3 {
                now += TIMEOUT;
                assert_eq!(data_blocks(&step(&mut t, Input::Tick, now)), [block]);
            }
            assert_eq!(
                data_blocks(&step(&mut t, Input::Ack(block), now)),
                [block + 1]
            );
        }
        assert!(!t.is_finished());
    }

    #[test]
    fn client_error_aborts_without_an_answer() {
        let (mut t, now) = transfer(5000, 512, 4);
        started(&mut t, now);
        step(&mut t, Input::Ack(4), now);
        let out = step(
            &mut t,
            Input::Error {
                code: ErrorCode::DISK_FULL,
                message: "full".into(),
            },
            now,
        );
        assert_eq!(
            out,
            [Action::Finish(Outcome::Failed {
                reason: FailReason::ClientError {
                    code: ErrorCode::DISK_FULL,
                    message: "full".into()
                },
                bytes_acked: 2048
            })]
        );
        assert!(step(&mut t, Input::Tick, now + TIMEOUT * 10).is_empty());
    }

    #[test]
    fn oack_waits_for_ack_zero_and_is_resent_on_timeout() {
        let now = Instant::now();
        let oack = vec![TftpOption::new("blksize", "1024")];
        let negotiation = Negotiation {
            options: options(1024, 1),
            oack: oack.clone(),
        };
        let mut t = Transfer::new(content(3000), negotiation, 3, Duration::from_secs(60), now);
        assert_eq!(
            started(&mut t, now),
            [Action::Send(Packet::Oack {
                options: oack.clone()
            })]
        );
        assert!(step(&mut t, Input::Ack(1), now).is_empty());
        assert_eq!(
            step(&mut t, Input::Tick, now + TIMEOUT),
            [Action::Send(Packet::Oack { options: oack })]
        );
        assert_eq!(
            data_blocks(&step(&mut t, Input::Ack(0), now + TIMEOUT)),
            [1]
        );
        // A late duplicate ACK 0 must not resend block 1.
        assert!(step(&mut t, Input::Ack(0), now + TIMEOUT).is_empty());
    }

    #[test]
    fn error_8_after_oack_ends_the_transfer_quietly() {
        let now = Instant::now();
        let negotiation = Negotiation {
            options: options(1024, 1),
            oack: vec![TftpOption::new("blksize", "1024")],
        };
        let mut t = Transfer::new(content(3000), negotiation, 3, Duration::from_secs(60), now);
        started(&mut t, now);
        let out = step(
            &mut t,
            Input::Error {
                code: ErrorCode::OPTION_REFUSED,
                message: "no".into(),
            },
            now,
        );
        assert_eq!(out.len(), 1, "no packet goes back: {out:?}");
        assert!(matches!(
            finish(&out),
            Some(Outcome::Failed {
                reason: FailReason::ClientError {
                    code: ErrorCode::OPTION_REFUSED,
                    ..
                },
                bytes_acked: 0
            })
        ));
    }

    #[test]
    fn size_multiple_of_blksize_ends_with_an_empty_block() {
        for (len, blocks) in [(0usize, 1u16), (512, 2), (1024, 3), (511, 1), (513, 2)] {
            let (mut t, now) = transfer(len, 512, 1);
            let mut out = started(&mut t, now);
            let mut received = Vec::new();
            for block in 1..=blocks {
                let Some(Action::Send(Packet::Data { block: b, data })) = out.pop() else {
                    panic!("expected DATA {block} for size {len}");
                };
                assert_eq!(b, block);
                received.extend_from_slice(&data);
                if block == blocks {
                    assert!(data.len() < 512, "last block of {len} must be short");
                }
                out = step(&mut t, Input::Ack(block), now);
            }
            assert!(matches!(finish(&out), Some(Outcome::Completed { .. })));
            assert_eq!(received, content(len), "size {len}");
        }
    }

    #[test]
    fn netascii_converts_before_chunking() {
        let now = Instant::now();
        let negotiation = Negotiation {
            options: TransferOptions {
                mode: Mode::Netascii,
                ..options(8, 1)
            },
            oack: Vec::new(),
        };
        let mut t = Transfer::new(
            Bytes::from_static(b"ab\ncd\ref"),
            negotiation,
            3,
            Duration::from_secs(60),
            now,
        );
        assert_eq!(t.size(), 10);
        let out = started(&mut t, now);
        assert_eq!(
            out,
            [Action::Send(Packet::Data {
                block: 1,
                data: Bytes::from_static(b"ab\r\ncd\r\0")
            })]
        );
        let out = step(&mut t, Input::Ack(1), now);
        assert_eq!(
            out,
            [Action::Send(Packet::Data {
                block: 2,
                data: Bytes::from_static(b"ef")
            })]
        );
    }

    /// Drives a whole transfer with a perfect client that acknowledges the last block of each
    /// batch, checks that every batch but the last is a full window, and returns the
    /// reassembled bytes and the block numbers seen on the wire.
    fn download(t: &mut Transfer, now: Instant, windowsize: u16) -> (Vec<u8>, Vec<u16>) {
        let mut received = Vec::with_capacity(t.size() as usize);
        let mut blocks = Vec::new();
        let mut out = started(t, now);
        let limit = t.size() / 8 + 10;
        for _ in 0..limit {
            let batch_start = blocks.len();
            for action in out.drain(..) {
                match action {
                    Action::Send(Packet::Data { block, data }) => {
                        received.extend_from_slice(&data);
                        blocks.push(block);
                    }
                    Action::Finish(outcome) => {
                        assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
                        return (received, blocks);
                    }
                    Action::Progress { .. } => {}
                    other => panic!("unexpected {other:?}"),
                }
            }
            let batch = blocks.len() - batch_start;
            let last = *blocks.last().expect("every ACK yields data until the end");
            if received.len() < t.size() as usize {
                assert_eq!(
                    batch,
                    usize::from(windowsize),
                    "a window before block {last}"
                );
            }
            t.handle(Input::Ack(last), now, &mut out);
        }
        panic!("transfer did not finish within {limit} rounds");
    }

    #[test]
    fn block_numbers_roll_over_from_65535_to_0_past_32_mib() {
        let len = 65536 * 512 + 1000;
        for windowsize in [1, 16] {
            let (mut t, now) = transfer(len, 512, windowsize);
            let (received, blocks) = download(&mut t, now, windowsize);
            // 65537 full blocks and a short one.
            assert_eq!(blocks.len(), 65538);
            assert_eq!(&blocks[65533..65538], [65534, 65535, 0, 1, 2]);
            assert!(received == content(len), "content differs");
            assert_eq!(t.retransmits(), 0);
        }
    }

    #[test]
    fn progress_is_throttled_by_bytes_and_time() {
        let (mut t, now) = transfer(1024 * 1024, 1024, 1);
        started(&mut t, now);
        let mut reports = Vec::new();
        for block in 1..=200u16 {
            for action in step(&mut t, Input::Ack(block), now) {
                if let Action::Progress { bytes_acked, total } = action {
                    assert_eq!(total, 1024 * 1024);
                    reports.push(bytes_acked);
                }
            }
        }
        assert_eq!(reports, [65536, 131072, 196608]);
        let later = now + PROGRESS_INTERVAL;
        let out = step(&mut t, Input::Ack(201), later);
        assert!(out.contains(&Action::Progress {
            bytes_acked: 201 * 1024,
            total: 1024 * 1024
        }));
    }

    #[test]
    fn deadline_fails_the_transfer() {
        let now = Instant::now();
        let negotiation = Negotiation {
            options: options(512, 1),
            oack: Vec::new(),
        };
        let max = Duration::from_millis(2500);
        let mut t = Transfer::new(content(5000), negotiation, 100, max, now);
        started(&mut t, now);
        assert_eq!(t.next_deadline(), Some(now + TIMEOUT));
        step(&mut t, Input::Tick, now + 2 * TIMEOUT);
        assert_eq!(t.next_deadline(), Some(now + max));
        let out = step(&mut t, Input::Tick, now + max);
        assert!(matches!(out[0], Action::Send(Packet::Error { .. })));
        assert_eq!(
            finish(&out),
            Some(&Outcome::Failed {
                reason: FailReason::DeadlineExceeded(max),
                bytes_acked: 0
            })
        );
    }

    #[test]
    fn an_unacknowledged_first_packet_ends_quietly_at_its_deadline() {
        let (t, now) = transfer(5000, 512, 1);
        let limit = TIMEOUT * 2 + TIMEOUT / 2;
        let mut t = t.first_ack_within(limit);
        assert_eq!(data_blocks(&started(&mut t, now)), [1]);
        // The retransmission timer still runs inside the deadline.
        assert_eq!(data_blocks(&step(&mut t, Input::Tick, now + TIMEOUT)), [1]);
        assert_eq!(
            data_blocks(&step(&mut t, Input::Tick, now + 2 * TIMEOUT)),
            [1]
        );
        assert_eq!(t.next_deadline(), Some(now + limit));
        let out = step(&mut t, Input::Tick, now + limit);
        assert_eq!(
            out,
            [Action::Finish(Outcome::Failed {
                reason: FailReason::NoFirstAck(limit),
                bytes_acked: 0
            })],
            "no ERROR to a peer that may not have asked"
        );
    }

    #[test]
    fn the_first_ack_lifts_the_first_ack_deadline() {
        let limit = TIMEOUT * 2;
        // Lock-step: ACK 1 is the first ACK.
        let (t, now) = transfer(5000, 512, 1);
        let mut t = t.first_ack_within(limit);
        started(&mut t, now);
        step(&mut t, Input::Ack(1), now + TIMEOUT);
        let later = now + limit + TIMEOUT / 2;
        assert_eq!(data_blocks(&step(&mut t, Input::Tick, later)), [2]);
        assert!(!t.is_finished());
        // With an OACK: ACK 0 is the first ACK.
        let negotiation = Negotiation {
            options: options(512, 1),
            oack: vec![TftpOption::new("blksize", "512")],
        };
        let mut t = Transfer::new(
            content(5000),
            negotiation,
            100,
            Duration::from_secs(600),
            now,
        )
        .first_ack_within(limit);
        started(&mut t, now);
        assert_eq!(
            data_blocks(&step(&mut t, Input::Ack(0), now + TIMEOUT)),
            [1]
        );
        assert_eq!(t.next_deadline(), Some(now + 2 * TIMEOUT));
        assert_eq!(data_blocks(&step(&mut t, Input::Tick, now + limit)), [1]);
        assert!(!t.is_finished());
    }

    #[test]
    fn shutdown_tells_the_client() {
        let (mut t, now) = transfer(5000, 512, 1);
        started(&mut t, now);
        let out = step(&mut t, Input::Shutdown, now);
        assert!(matches!(out[0], Action::Send(Packet::Error { .. })));
        assert!(matches!(
            finish(&out),
            Some(Outcome::Failed {
                reason: FailReason::Shutdown,
                ..
            })
        ));
    }
}
