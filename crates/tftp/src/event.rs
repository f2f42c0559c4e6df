//! What the server reports: one closed enum, sent on one bounded channel.
//!
//! Invariant: `Progress` may be dropped when the channel is full; `Started`, `Completed`,
//! `Failed` and `Rejected` are always delivered (the server waits for room), so a consumer must
//! keep draining the channel until `run` returns.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use crate::codec::ErrorCode;
use crate::options::TransferOptions;
use crate::transfer::FailReason;

/// Identifies one transfer within one `run`, in the order requests were accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransferId(pub u64);

impl fmt::Display for TransferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tftp#{}", self.0)
    }
}

/// Byte counts are bytes on the wire: in netascii mode that is the converted text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferEvent {
    Started {
        id: TransferId,
        peer: SocketAddr,
        filename: String,
        options: TransferOptions,
        size: u64,
    },
    /// Throttled to one per 64 KiB acknowledged or per 100 ms, whichever comes first.
    Progress {
        id: TransferId,
        bytes_acked: u64,
        total: u64,
    },
    Completed {
        id: TransferId,
        bytes: u64,
        duration: Duration,
        retransmits: u64,
    },
    Failed {
        id: TransferId,
        reason: FailReason,
        bytes_acked: u64,
    },
    /// A request answered with an ERROR before any transfer began (no `Started` precedes it).
    /// `filename` is empty when the request could not be parsed.
    Rejected {
        peer: SocketAddr,
        filename: String,
        code: ErrorCode,
        message: String,
    },
}
