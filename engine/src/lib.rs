//! The tonnex matching engine: a deterministic state machine over order
//! books and account holds.
//!
//! [`State::apply`] is the whole core: a [`Command`] in, [`Event`]s out into a
//! caller-owned buffer. No clock, randomness, I/O or hash-order iteration;
//! orders live in a preallocated [`pool`], price levels in a dense tick-indexed
//! [`ladder`], ids in an open-addressing [`idmap`]. The `tonnex-replay` binary
//! drives it from workload files ([`workload`]) and writes the dump formats
//! ([`dump`]).

pub mod accounts;
pub mod book;
pub mod chunked;
pub mod command;
pub mod dump;
pub mod event;
pub mod fill_log;
pub mod generate;
pub mod idmap;
pub mod journal;
pub mod ladder;
pub mod owners;
pub mod pool;
pub mod seqhash;
pub mod settlement;
pub mod snapshot;
pub mod state;
pub mod venue;
pub mod workload;

pub use command::{
    AccountListing, AdminCommand, Asset, Command, Compliance, InstrumentListing, InstrumentSpec,
    InventoryRecord, NewOrder, ScopedOrder, VenueCommand, OPERATOR,
};
pub use event::Event;
pub use state::{
    EngineConfig, InstrumentImage, OrderImage, PrefetchStage, SnapshotCopy, State, StateImage,
    MAX_QTY,
};
