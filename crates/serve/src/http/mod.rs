//! The HTTP and HTTPS servers: the published build from memory, to phones, with the
//! allow-list, P1360/P1361 authentication and one fetch event per request.

pub mod access;
pub mod agent;
pub mod auth;
pub mod tls;

pub use access::AccessList;
pub use agent::{PhoneAgent, parse_user_agent};
