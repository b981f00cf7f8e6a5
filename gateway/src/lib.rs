//! The tonnex venue: configuration, the compliance pre-router, and
//! [`venue`]: the mio event loop for every client session, with the engine
//! thread behind two bounded rings, the fill log and the fill-stream server.

pub use tonnex_protocol::admin_client;
pub mod compliance;
pub mod config;
pub mod csv;
pub(crate) mod interned;
pub mod values;
pub mod venue;

pub use tonnex_engine as engine;
