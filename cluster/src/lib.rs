//! Replicating the venue's engine across nodes by Raft (TiKV's raft-rs).
//!
//! The engine is a deterministic state machine over a log of commands;
//! consensus replicates that log. [`replica::Replica`] is one node: Raft
//! with batches of engine commands as entries ([`batch`]), applied to the
//! engine once committed. A node's messages, ticks and disk are the
//! caller's, so the same node runs under a simulated network and clock
//! (`tests/sim.rs`) as it will on sockets.

pub mod batch;
pub mod log;
pub mod machine;
pub mod replica;
pub mod runner;
pub mod transport;

pub use log::{JournalLog, LogError};
pub use machine::StateMachine;
pub use raft::prelude::Message;
pub use replica::{
    Applied, ClusterError, PeerStatus, ProposeError, Replica, ReplicaConfig, Role, Status,
};
pub use transport::{Hello, Reports, Transport};
