//! The tonnex venue: configuration, the compliance pre-router and (with the
//! gateway issue) the mio event loop for every client session, with the
//! engine thread behind two SPSC rings.

pub mod compliance;
pub mod config;
pub mod csv;
pub mod values;

pub use tonnex_engine as engine;
