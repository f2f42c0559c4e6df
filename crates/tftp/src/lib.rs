//! A read-only TFTP server (RFC 1350, 2347–2349, 7440) that serves bytes from a [`Source`].
//!
//! Layers, from pure to I/O: [`codec`] (packets), [`options`] (negotiation), [`netascii`],
//! [`transfer`] (the sans-IO state machine of one transfer), and [`server::run`], the I/O
//! (a tokio listener, a blocking thread per transfer) that owns the sockets. Invariant: nothing
//! here touches the file system or knows which files a phone asks for; the [`Source`] decides.

pub mod codec;
pub mod event;
pub mod netascii;
pub mod options;
pub mod server;
pub mod source;
pub mod transfer;

#[doc(hidden)]
pub mod fuzzing;

pub use codec::{ErrorCode, Mode, Packet, ParseError, TftpOption};
pub use event::{TransferEvent, TransferId};
pub use options::TransferOptions;
pub use server::{Config, Error, run};
pub use source::{Source, SourceError};
pub use transfer::FailReason;
