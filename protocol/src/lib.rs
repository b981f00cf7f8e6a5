//! Wire-level vocabulary shared by every tonnex process: integer fixed-point
//! numbers, sides, order kinds, OER pathways and the reason codes carried by
//! rejections and cancellations. No I/O lives here.
//! [`frame`] and [`wire`] are the order-entry and fill-stream protocol:
//! length-prefixed bincode 2 frames with fixed-width little-endian integers,
//! drawn byte by byte in `docs/protocol.md`. [`admin`] is the operators'
//! control plane on its own port, every request signed (`docs/admin.md`).

pub mod admin;
pub mod admin_client;
pub mod calendar;
pub mod frame;
pub mod md;
pub mod name;
pub mod numeric;
pub mod reason;
pub mod stream;
pub mod types;
pub mod wire;

pub use name::Name;
pub use numeric::{Cash, Price, Qty};
pub use reason::{CancelReason, RejectReason};
pub use types::{OrderKind, Pathway, Side, Symbol};

/// The bincode configuration every tonnex message uses: fixed-width,
/// little-endian integers, so every message has a byte layout that can be drawn.
#[must_use]
pub fn codec_config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_fixed_int_encoding()
        .with_little_endian()
}
