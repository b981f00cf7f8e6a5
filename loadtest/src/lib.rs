//! The tonnex load-test harness: simulated market makers and takers over the
//! real binary protocol, open loop (latency from each order's scheduled send
//! time: no coordinated omission) or closed loop (`--rate 0`), with a JSON
//! report and an SVG chart. It links only the protocol crate.

pub mod report;
pub mod run;
pub mod sim;

pub use tonnex_protocol as protocol;
