//! One node of a replicated engine: a Raft node (raft-rs `RawNode`) whose
//! log entries are batches of engine commands ([`crate::batch`]), and the
//! engine state those entries build once committed.
//!
//! The leader proposes batches; every node, leader included, applies an
//! entry to its engine only when Raft reports it committed (a quorum holds
//! it durably), in log order, so every node holds the same state at every
//! applied index. A proposal is acknowledged when its proposer applies it
//! ([`Applied::tag`]): an entry the proposer wrote but a new leader
//! overwrote is never acknowledged. The Raft log is the storage the caller
//! hands in; restarting from that storage replays its committed entries
//! through the same [`Replica::handle_ready`] that applies live ones, the
//! one recovery path.

use std::collections::BTreeMap;

use raft::prelude::{Entry, EntryType, Message};
use raft::{Config, RawNode, StateRole, Storage};
use tonnex_engine::{Command, EngineConfig, State};

use crate::machine::StateMachine;

use crate::batch::{self, BatchError};
use crate::log::{JournalLog, LogError};

mod membership;
mod status;

pub use self::status::{PeerStatus, Status};

/// How a node runs.
#[derive(Clone, Debug)]
pub struct ReplicaConfig {
    /// This node's id (nonzero).
    pub id: u64,
    /// Ticks without a leader's word before a follower campaigns.
    pub election_tick: usize,
    /// Ticks between a leader's heartbeats.
    pub heartbeat_tick: usize,
    /// Use exactly `election_tick` instead of a random timeout in
    /// `[election_tick, 2 × election_tick)`: raft-rs draws that from the
    /// thread's random generator, which a reproducible simulation cannot
    /// seed (it varies when nodes tick instead).
    pub fixed_election_timeout: bool,
    /// The engine configuration (of a fresh state).
    pub engine: EngineConfig,
    /// Record the state digest after applying every this-many-th index
    /// (0: never), so nodes can be compared at the same index.
    pub checkpoint_every: u64,
    /// Write an engine snapshot and drop the entries it covers from the
    /// log once this many entries were applied since the last (0: never).
    pub snapshot_every: u64,
}

/// A committed entry, applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// Its Raft index.
    pub index: u64,
    /// The term it was proposed in.
    pub term: u64,
    /// The tag [`Replica::propose`] returned, when this node proposed it:
    /// the moment to acknowledge the proposal's clients.
    pub tag: Option<u64>,
    /// The engine sequence number of its first command.
    pub first_seq: u64,
    /// Its commands, in order.
    pub commands: usize,
    /// The entry data's length and CRC32C, to compare what nodes applied.
    pub data_hash: u64,
}

/// The data's length (high half) and CRC32C (low half): the hardware CRC
/// costs little per byte, where a byte-at-a-time hash over every entry
/// (reports included) was a few per cent of a busy leader.
fn data_hash(bytes: &[u8]) -> u64 {
    ((bytes.len() as u64) << 32) | u64::from(tonnex_engine::journal::crc::crc32c(bytes))
}

/// Why a node could not go on.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Raft refused (bad configuration, a message for another node...).
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    /// The log could not be written.
    #[error("log: {0}")]
    Log(#[from] LogError),
    /// A committed entry is not a batch of commands: the log is damaged.
    #[error("entry {index}: {source}")]
    Entry {
        /// The entry's index.
        index: u64,
        /// What was wrong with it.
        source: BatchError,
    },
    /// A committed entry of a kind this node does not apply.
    #[error("entry {index}: {what}")]
    Unsupported {
        /// The entry's index.
        index: u64,
        /// What it was.
        what: String,
    },
}

/// Why a proposal was not taken.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProposeError {
    /// Only the leader proposes; `leader` is who this node believes leads.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader's id, if one is known.
        leader: Option<u64>,
    },
    /// The leader is handing over leadership, or Raft dropped the proposal.
    #[error("proposal dropped: {0}")]
    Dropped(String),
}

/// This node's place in the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Sequences and proposes.
    Leader,
    /// Follows a leader.
    Follower,
    /// Asking for votes.
    Candidate,
    /// Asking whether it could win a vote.
    PreCandidate,
}

/// One node, applying committed entries to `M` (the engine state itself,
/// by default).
pub struct Replica<M: StateMachine = State> {
    node: RawNode<JournalLog>,
    state: M,
    outbox: Vec<Message>,
    next_tag: u64,
    /// This node's proposals not yet applied: index -> (term, tag). An
    /// entry applied at that index in another term replaced the proposal.
    proposed: BTreeMap<u64, (u64, u64)>,
    checkpoint_every: u64,
    checkpoints: Vec<(u64, String)>,
    snapshot_every: u64,
    installed: u64,
    /// A node was added: snapshot once this round's entries are applied.
    snapshot_soon: bool,
    /// Nodes added, with the address their change carried.
    joined: Vec<(u64, String)>,
}

impl Replica<State> {
    /// A node applying entries to an engine state of its own
    /// ([`Replica::open_with`]).
    pub fn open(config: &ReplicaConfig, log: JournalLog) -> Result<Replica, ClusterError> {
        Replica::open_with(config, log, State::new(config.engine))
    }
}

impl<M: StateMachine> Replica<M> {
    /// Starts (or restarts) a node on `log`, applying to `state` (fresh):
    /// from the engine snapshot the log starts after, if any; committed
    /// entries after it are applied again by the first
    /// [`Replica::handle_ready`] calls.
    pub fn open_with(
        config: &ReplicaConfig,
        log: JournalLog,
        mut state: M,
    ) -> Result<Replica<M>, ClusterError> {
        if let Some(image) = log.snapshot_image()? {
            state
                .restore(&image)
                .map_err(|what| ClusterError::Unsupported {
                    index: log.snapshot_meta().index,
                    what: format!("its snapshot: {what}"),
                })?;
        }
        let applied = log.snapshot_meta().index;
        let raft_config = Config {
            id: config.id,
            election_tick: config.election_tick,
            heartbeat_tick: config.heartbeat_tick,
            min_election_tick: config.election_tick,
            max_election_tick: if config.fixed_election_timeout {
                config.election_tick + 1
            } else {
                2 * config.election_tick
            },
            // The engine state is the snapshot's: every committed entry
            // after it is applied again.
            applied,
            max_size_per_msg: 1 << 20,
            max_inflight_msgs: 32,
            // A leader that cannot hear a quorum steps down, and a node
            // rejoining from a partition cannot disrupt a working leader.
            check_quorum: true,
            pre_vote: true,
            ..Config::default()
        };
        raft_config.validate()?;
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let node = RawNode::new(&raft_config, log, &logger)?;
        Ok(Replica {
            node,
            state,
            outbox: Vec::new(),
            next_tag: 1,
            proposed: BTreeMap::new(),
            checkpoint_every: config.checkpoint_every,
            checkpoints: Vec::new(),
            snapshot_every: config.snapshot_every,
            installed: 0,
            snapshot_soon: false,
            joined: Vec::new(),
        })
    }

    /// Whether this node leads and has applied every entry before its
    /// term's: its state is the whole committed log, so it may start
    /// sequencing on top of it.
    #[must_use]
    pub fn ready_to_lead(&self) -> bool {
        let raft = &self.node.raft;
        raft.state == StateRole::Leader
            && raft.commit_to_current_term()
            && raft.raft_log.applied == raft.raft_log.committed
    }

    /// This node's id.
    #[must_use]
    pub fn id(&self) -> u64 {
        self.node.raft.id
    }

    /// Its role now.
    #[must_use]
    pub fn role(&self) -> Role {
        match self.node.raft.state {
            StateRole::Leader => Role::Leader,
            StateRole::Follower => Role::Follower,
            StateRole::Candidate => Role::Candidate,
            StateRole::PreCandidate => Role::PreCandidate,
        }
    }

    /// The leader it knows of.
    #[must_use]
    pub fn leader(&self) -> Option<u64> {
        let leader = self.node.raft.leader_id;
        (leader != raft::INVALID_ID).then_some(leader)
    }

    /// Its current term.
    #[must_use]
    pub fn term(&self) -> u64 {
        self.node.raft.term
    }

    /// The highest index it knows committed.
    #[must_use]
    pub fn commit_index(&self) -> u64 {
        self.node.raft.raft_log.committed
    }

    /// The highest index applied to its engine.
    #[must_use]
    pub fn applied_index(&self) -> u64 {
        self.node.raft.raft_log.applied
    }

    /// The state machine.
    #[must_use]
    pub fn state(&self) -> &M {
        &self.state
    }

    /// The state machine, to drain what applying produced.
    pub fn state_mut(&mut self) -> &mut M {
        &mut self.state
    }

    /// The log (the node's disk).
    #[must_use]
    pub fn log(&self) -> &JournalLog {
        self.node.store()
    }

    /// `(index, state digest)` at every checkpoint applied so far.
    #[must_use]
    pub fn checkpoints(&self) -> &[(u64, String)] {
        &self.checkpoints
    }

    /// Proposes `commands` as one entry; returns the tag its
    /// [`Applied::tag`] will carry once committed and applied here. A new
    /// order without an id (0) gets its journal sequence number, as on a
    /// single venue: the leader knows it, since the entry's place in the
    /// log fixes its commands' sequence numbers.
    pub fn propose(&mut self, commands: &mut [Command]) -> Result<u64, ProposeError> {
        if self.node.raft.state != StateRole::Leader {
            return Err(ProposeError::NotLeader {
                leader: self.leader(),
            });
        }
        for (seq, command) in (self.next_seq()..).zip(commands.iter_mut()) {
            if let Command::New(order) = command {
                if order.id == 0 {
                    order.id = seq;
                }
            }
        }
        self.node
            .propose(Vec::new(), batch::encode(commands))
            .map_err(|e| ProposeError::Dropped(e.to_string()))?;
        Ok(self.track_proposal())
    }

    /// Remembers the entry just proposed (the log's last, in this term)
    /// and returns the tag its [`Applied`] will carry.
    pub(super) fn track_proposal(&mut self) -> u64 {
        let tag = self.next_tag;
        let log = &self.node.raft.raft_log;
        self.proposed
            .insert(log.last_index(), (self.node.raft.term, tag));
        self.next_tag += 1;
        tag
    }

    /// The journal sequence the next proposed command gets: after the
    /// persisted log's commands below the unpersisted entries, and theirs.
    fn next_seq(&self) -> u64 {
        let log = &self.node.raft.raft_log;
        let unstable = &log.unstable;
        let below = unstable.offset.min(log.store.last() + 1) - 1;
        let pending: u64 = unstable
            .entries
            .iter()
            .filter(|e| e.get_entry_type() == EntryType::EntryNormal)
            .map(|e| {
                e.data.get(..4).map_or(0, |b| {
                    u64::from(u32::from_le_bytes(b.try_into().expect("4")))
                })
            })
            .sum();
        log.store.seq_after(below) + pending
    }

    /// One tick of the logical clock.
    pub fn tick(&mut self) {
        self.node.tick();
    }

    /// A message from a peer.
    pub fn step(&mut self, message: Message) -> Result<(), ClusterError> {
        match self.node.step(message) {
            // A message for a peer this node no longer knows: dropped, as
            // the network might have.
            Ok(()) | Err(raft::Error::StepPeerNotFound) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Messages for peers, to send.
    pub fn take_messages(&mut self) -> Vec<Message> {
        std::mem::take(&mut self.outbox)
    }

    /// Does what Raft asks: persists new entries and the hard state,
    /// queues messages (those that must follow persistence after it), and
    /// applies committed entries, appending each to `applied`.
    pub fn handle_ready(&mut self, applied: &mut Vec<Applied>) -> Result<(), ClusterError> {
        if !self.node.has_ready() {
            return Ok(());
        }
        let mut ready = self.node.ready();
        self.outbox.extend(ready.take_messages());
        if !ready.snapshot().is_empty() {
            let index = ready.snapshot().get_metadata().index;
            let image = self.node.mut_store().install_snapshot(ready.snapshot())?;
            self.state
                .restore(&image)
                .map_err(|what| ClusterError::Unsupported {
                    index,
                    what: format!("the leader's snapshot: {what}"),
                })?;
            self.installed += 1;
            // Proposals at or below it were settled without us.
            self.proposed = self.proposed.split_off(&(index + 1));
        }
        self.apply(ready.take_committed_entries(), applied)?;
        if !ready.entries().is_empty() {
            self.node.mut_store().append(ready.entries())?;
        }
        if let Some(hard_state) = ready.hs() {
            self.node.mut_store().set_hard_state(hard_state)?;
        }
        self.outbox.extend(ready.take_persisted_messages());
        let mut light = self.node.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.node.mut_store().set_commit(commit)?;
        }
        self.outbox.extend(light.take_messages());
        self.apply(light.take_committed_entries(), applied)?;
        self.node.advance_apply();
        if self.snapshot_due() && self.state.settled() {
            // After an addition every node drops the whole log its snapshot
            // covers: a new node must never be sent entries from index 1.
            let whole = std::mem::take(&mut self.snapshot_soon);
            self.snapshot_now(whole)?;
        }
        Ok(())
    }

    /// Whether a snapshot is due: `snapshot_every` entries applied since
    /// the last, or a node was added. It is taken once the state is
    /// settled ([`StateMachine::settled`]); a venue leader, whose state
    /// runs ahead of the log, holds new input back until it is.
    #[must_use]
    pub fn snapshot_due(&self) -> bool {
        let done = self.node.raft.raft_log.applied;
        let last_snapshot = self.node.store().snapshot_meta().index;
        self.snapshot_soon
            || (self.snapshot_every != 0 && done >= last_snapshot + self.snapshot_every)
    }

    /// Writes a snapshot at the applied index (if past the last one) and
    /// compacts the log up to it: all of it when `whole`, else but for the
    /// entries the log retains ([`JournalLog::retain`]).
    pub(super) fn snapshot_now(&mut self, whole: bool) -> Result<(), ClusterError> {
        let done = self.node.raft.raft_log.applied;
        let store = self.node.store();
        let newer = done > store.snapshot_meta().index;
        if done > 0 && (newer || (whole && store.keeps_covered())) {
            let image = self.state.image();
            let conf_state = self.node.raft.prs().conf().to_conf_state();
            let store = self.node.mut_store();
            if whole {
                store.take_snapshot_compacted(done, &image, conf_state)?;
            } else {
                store.take_snapshot(done, &image, conf_state)?;
            }
        }
        Ok(())
    }

    /// Snapshots installed from a leader since this node started.
    #[must_use]
    pub fn installed_snapshots(&self) -> u64 {
        self.installed
    }

    fn apply(
        &mut self,
        entries: Vec<Entry>,
        applied: &mut Vec<Applied>,
    ) -> Result<(), ClusterError> {
        for entry in entries {
            let index = entry.index;
            let mine = self.proposed.remove(&index);
            // An earlier proposal of ours at a lower index was replaced.
            while let Some((&lower, _)) = self.proposed.first_key_value() {
                if lower >= index {
                    break;
                }
                self.proposed.remove(&lower);
            }
            let tag = mine
                .filter(|&(term, _)| term == entry.term)
                .map(|(_, tag)| tag);
            if entry.get_entry_type() != EntryType::EntryNormal {
                self.change_membership(&entry)?;
                applied.push(Applied {
                    index,
                    term: entry.term,
                    tag,
                    first_seq: self.state.last_seq() + 1,
                    commands: 0,
                    data_hash: data_hash(&entry.data),
                });
            } else if !entry.data.is_empty() {
                // (A new leader's first entry is empty: nothing to apply.)
                let first_seq = self.state.last_seq() + 1;
                let count = batch::count(&entry.data)
                    .map_err(|source| ClusterError::Entry { index, source })?;
                if !self.state.applied_ahead(first_seq, count) {
                    let commands = batch::decode(&entry.data)
                        .map_err(|source| ClusterError::Entry { index, source })?;
                    self.state.apply(first_seq, &commands);
                }
                applied.push(Applied {
                    index,
                    term: entry.term,
                    tag,
                    first_seq,
                    commands: count,
                    data_hash: data_hash(&entry.data),
                });
            }
            if self.checkpoint_every != 0 && index % self.checkpoint_every == 0 {
                self.checkpoints.push((index, self.state.digest()));
            }
        }
        Ok(())
    }

    /// The log's entries from `from` (1 at the least) to the last, for
    /// comparing logs.
    pub fn log_entries(&self, from: u64) -> Result<Vec<Entry>, ClusterError> {
        let last = self.node.store().last();
        let from = from.max(self.node.store().first());
        if last < from {
            return Ok(Vec::new());
        }
        Ok(self.node.store().entries(
            from,
            last + 1,
            None,
            raft::GetEntriesContext::empty(false),
        )?)
    }
}

impl<M: StateMachine> std::fmt::Debug for Replica<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("id", &self.id())
            .field("role", &self.role())
            .field("term", &self.term())
            .field("commit", &self.commit_index())
            .field("applied", &self.applied_index())
            .field("voters", &self.voters())
            .field("leader", &self.leader())
            .finish_non_exhaustive()
    }
}
