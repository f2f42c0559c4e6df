//! ProvDesk's servers. The caller binds the sockets; each server has the shape
//! `run(socket, config, source, events, shutdown)`. Everything that happens becomes one
//! [`events::Event`] on one [`events::EventBus`].
//!
//! Invariant: servers never build; they serve the builder's published artifacts from an
//! [`store::ArtifactStore`] snapshot that is swapped whole after each build. The
//! [`publisher`] builds, the [`watcher`] asks it to, the [`recorder`] writes the fetch log,
//! and [`service`] starts them all in order and stops them without losing a fetch, also when
//! [`signals`] ask the process to stop.

pub mod access;
pub mod dhcp;
pub mod events;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod owners;
pub mod pnp;
pub mod publisher;
pub mod recorder;
pub mod resync;
pub mod service;
pub mod signals;
pub mod store;
pub mod syslog;
pub mod tftp;
pub mod watcher;
