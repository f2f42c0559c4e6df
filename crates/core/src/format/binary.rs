//! SKELETON — the formats helper replaces this file. Signatures are the agreed interface.
//! Legacy binary `cfg<mac>` files, byte-compatible with the Perl encode.pl.

use crate::{Mac, PName};

#[derive(Debug, thiserror::Error)]
pub enum BinaryError {
    #[error("not implemented yet")]
    NotImplemented,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedBinary {
    pub mac: Mac,
    pub params: Vec<(PName, String)>,
}

/// Encodes the values in the order given (trimmed, `%XX`-escaped), `gnkey=0b82` last.
pub fn encode(_mac: Mac, _params: &[(PName, String)]) -> Vec<u8> {
    Vec::new()
}

pub fn decode(_file: &[u8]) -> Result<DecodedBinary, BinaryError> {
    Err(BinaryError::NotImplemented)
}
