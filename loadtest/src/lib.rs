//! The tonnex load-test harness: market makers and buyers over the real
//! binary protocol, open- and closed-loop, latency without coordinated omission.
//!
//! Not built yet (load test issue). It links only the protocol crate.

pub use tonnex_protocol as protocol;
