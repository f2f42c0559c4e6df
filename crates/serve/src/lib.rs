//! ProvDesk's servers. The caller binds the sockets; each server has the shape
//! `run(socket, config, source, events, shutdown)`. Everything that happens becomes one
//! [`events::Event`] on one [`events::EventBus`].
//!
//! Invariant: servers never build; they serve the builder's published artifacts from an
//! [`store::ArtifactStore`] snapshot that is swapped whole after each build.

pub mod events;
pub mod http;
pub mod store;
