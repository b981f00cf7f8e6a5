//! The tonnex load-test harness: simulated market makers and takers over the
//! real binary protocol, open loop (latency from each order's scheduled send
//! time: no coordinated omission) or closed loop (`--rate 0`), with a JSON
//! report and an SVG chart. With `--buyers N` it adds corporate buyers of
//! a venue file, planned with the venue's own loader and pre-router.

pub mod buyers;
pub mod md_client;
pub mod report;
pub mod run;
pub mod sim;

pub use tonnex_protocol as protocol;
