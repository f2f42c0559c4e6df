//! A read-only TFTP server (RFC 1350, 2347–2349, 7440). See the crate README in ARCHITECTURE.md.
