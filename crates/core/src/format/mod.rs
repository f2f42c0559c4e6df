//! The Grandstream file formats, each a pure function pair (write/read) with no I/O.

pub mod binary;
pub mod crypt;
pub mod template;
pub mod xml;
