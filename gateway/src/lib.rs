//! The tonnex venue: one mio event loop for every client session, the
//! compliance pre-router, and the engine thread behind two SPSC rings.
//!
//! Not built yet (gateway and compliance issues). The crate exists so the
//! workspace has its final shape and the dependency direction
//! `protocol ◀ engine ◀ gateway` is fixed from the start.

pub use tonnex_engine as engine;
