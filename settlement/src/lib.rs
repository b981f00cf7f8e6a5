//! The tonnex settlement process: follows the venue's fill stream and moves
//! each trade through escrow, registry transfer and retirement.
//!
//! Not built yet (settlement issue). It links only the protocol crate, never
//! the engine: it speaks to the venue as any other client would.

pub use tonnex_protocol as protocol;
