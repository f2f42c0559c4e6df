//! Where the bytes come from: the server asks a [`Source`] for each requested name.
//!
//! Invariant: the server never touches the file system. A source decides which names exist
//! and what they contain; ProvDesk's sources serve generated configs and firmware from memory.

use std::net::SocketAddr;

use bytes::Bytes;

use crate::codec::ErrorCode;

/// Answers read requests with whole contents. `open` runs on the listener's task, once per
/// request, so it must return promptly: look the name up, do not build or read files there.
pub trait Source: Send + Sync {
    fn open(&self, filename: &str, peer: SocketAddr) -> Result<Bytes, SourceError>;
}

/// Any `Fn(&str, SocketAddr) -> Result<Bytes, SourceError>` is a source, which keeps tests and
/// small adapters free of boilerplate.
impl<F> Source for F
where
    F: Fn(&str, SocketAddr) -> Result<Bytes, SourceError> + Send + Sync,
{
    fn open(&self, filename: &str, peer: SocketAddr) -> Result<Bytes, SourceError> {
        self(filename, peer)
    }
}

/// A refusal, with the message the client sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// TFTP error 1: the name is unknown. Phones then try their next candidate name.
    #[error("file not found: {0}")]
    NotFound(String),
    /// TFTP error 2: the name exists but this peer may not have it.
    #[error("access violation: {0}")]
    AccessViolation(String),
    /// TFTP error 0: anything else (for example, the content is being rebuilt).
    #[error("{0}")]
    Other(String),
}

impl SourceError {
    pub fn code(&self) -> ErrorCode {
        match self {
            SourceError::NotFound(_) => ErrorCode::FILE_NOT_FOUND,
            SourceError::AccessViolation(_) => ErrorCode::ACCESS_VIOLATION,
            SourceError::Other(_) => ErrorCode::NOT_DEFINED,
        }
    }

    /// The text sent to the client in the ERROR packet.
    pub fn message(&self) -> &str {
        match self {
            SourceError::NotFound(m) | SourceError::AccessViolation(m) | SourceError::Other(m) => m,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_tftp_codes() {
        let check = |e: SourceError, code: u16| {
            assert_eq!(e.code(), ErrorCode(code));
            assert_eq!(e.message(), "m");
        };
        check(SourceError::NotFound("m".into()), 1);
        check(SourceError::AccessViolation("m".into()), 2);
        check(SourceError::Other("m".into()), 0);
    }

    #[test]
    fn closures_are_sources() {
        let source = |name: &str, _: SocketAddr| match name {
            "a" => Ok(Bytes::from_static(b"A")),
            _ => Err(SourceError::NotFound("no".into())),
        };
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let dyn_source: &dyn Source = &source;
        assert_eq!(dyn_source.open("a", peer), Ok(Bytes::from_static(b"A")));
        assert_eq!(dyn_source.open("b", peer).unwrap_err().code(), ErrorCode(1));
    }
}
