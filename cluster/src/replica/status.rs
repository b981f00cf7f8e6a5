//! What a node tells operators (status) and what its transport and
//! operators tell it (snapshot delivery, unreachable peers, planned
//! leadership transfer).

use raft::StateRole;

use super::{Replica, Role};
use crate::machine::StateMachine;

/// What a node knows of the cluster, for operators.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// This node.
    pub id: u64,
    /// Its role.
    pub role: Role,
    /// Its term.
    pub term: u64,
    /// The leader it knows of.
    pub leader: Option<u64>,
    /// The highest index it knows committed.
    pub commit: u64,
    /// The highest index applied to its engine.
    pub applied: u64,
    /// Its log's last index.
    pub last_index: u64,
    /// On the leader: every node's replication progress, by id.
    pub peers: Vec<PeerStatus>,
}

/// A node's replication progress, as the leader sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerStatus {
    /// The node.
    pub id: u64,
    /// The highest index known to match the leader's log.
    pub match_index: u64,
    /// Entries it is behind the leader's last index.
    pub lag: u64,
}

impl<M: StateMachine> Replica<M> {
    /// Role, term, commit and applied index, and on the leader each peer's
    /// match index and lag.
    #[must_use]
    pub fn status(&self) -> Status {
        let raft = &self.node.raft;
        let last_index = raft.raft_log.last_index();
        let mut peers = Vec::new();
        if raft.state == StateRole::Leader {
            peers = raft
                .prs()
                .iter()
                .map(|(&id, progress)| PeerStatus {
                    id,
                    match_index: progress.matched,
                    lag: last_index.saturating_sub(progress.matched),
                })
                .collect();
            peers.sort_by_key(|p| p.id);
        }
        Status {
            id: raft.id,
            role: self.role(),
            term: raft.term,
            leader: self.leader(),
            commit: raft.raft_log.committed,
            applied: raft.raft_log.applied,
            last_index,
            peers,
        }
    }

    /// What became of a snapshot this node sent `to`: the transport says
    /// whether it arrived whole. Until told, the leader sends that
    /// follower nothing more (so a lost snapshot must be reported lost).
    pub fn report_snapshot(&mut self, to: u64, delivered: bool) {
        let status = if delivered {
            raft::SnapshotStatus::Finish
        } else {
            raft::SnapshotStatus::Failure
        };
        self.node.report_snapshot(to, status);
    }

    /// The transport could not reach `to`: the leader stops streaming
    /// entries to it and probes instead.
    pub fn report_unreachable(&mut self, to: u64) {
        self.node.report_unreachable(to);
    }

    /// Hands leadership to `to` (it must be caught up; Raft refuses
    /// proposals meanwhile).
    pub fn transfer_leader(&mut self, to: u64) {
        self.node.transfer_leader(to);
    }
}
