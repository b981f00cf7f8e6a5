//! Membership changes: adding and removing voters one at a time, as
//! raft-rs applies them in one step.

use protobuf::Message as _;
use raft::prelude::{ConfChange, ConfChangeType, ConfChangeV2, Entry, EntryType};
use raft::StateRole;

use super::{ClusterError, ProposeError, Replica};
use crate::machine::StateMachine;

impl<M: StateMachine> Replica<M> {
    /// Applies a committed membership change to Raft and records the
    /// membership it makes.
    pub(super) fn change_membership(&mut self, entry: &Entry) -> Result<(), ClusterError> {
        let bad = |e: protobuf::ProtobufError| ClusterError::Unsupported {
            index: entry.index,
            what: format!("a membership change that does not decode: {e}"),
        };
        let (v1, v2) = if entry.get_entry_type() == EntryType::EntryConfChange {
            (
                Some(ConfChange::parse_from_bytes(&entry.data).map_err(bad)?),
                None,
            )
        } else {
            (
                None,
                Some(ConfChangeV2::parse_from_bytes(&entry.data).map_err(bad)?),
            )
        };
        // Each single change, (node, kind), whichever encoding carried it.
        let singles: Vec<(u64, ConfChangeType)> = match (&v1, &v2) {
            (Some(c), _) => vec![(c.node_id, c.get_change_type())],
            (_, Some(c)) => c
                .get_changes()
                .iter()
                .map(|c| (c.node_id, c.get_change_type()))
                .collect(),
            _ => Vec::new(),
        };
        let removes_me = singles.contains(&(self.id(), ConfChangeType::RemoveNode));
        if removes_me && self.node.raft.state == StateRole::Leader {
            // raft-rs keeps a leader that removed itself leading (and then
            // trips over its own missing progress): step down first. Only a
            // leader elected with the change already in its log gets here;
            // `propose_remove` refuses to remove the leader proposing.
            let term = self.node.raft.term;
            self.node.raft.become_follower(term, raft::INVALID_ID);
        }
        let adds = singles
            .iter()
            .any(|&(_, kind)| kind == ConfChangeType::AddNode);
        // An added node's transport address, if the proposal carried it.
        if let Some(c) = &v1 {
            if c.get_change_type() == ConfChangeType::AddNode && !c.context.is_empty() {
                let address = String::from_utf8_lossy(&c.context).into_owned();
                self.joined.push((c.node_id, address));
            }
        }
        match (v1, v2) {
            (Some(c), _) => self.node.apply_conf_change(&c)?,
            (_, Some(c)) => self.node.apply_conf_change(&c)?,
            _ => unreachable!("one of the two decoded"),
        };
        // The new node refuses a snapshot whose membership lacks it (raft-rs
        // checks): the one to send it is taken once this change applied.
        self.snapshot_soon |= adds;
        // The log keeps the membership of its snapshot point only: a restart
        // applies the changes after it again, in order.
        Ok(())
    }

    /// Proposes adding node `id` as a voter (one node at a time, as raft-rs
    /// allows in one step); returns the tag its [`Applied`] will carry. The
    /// new node starts with an empty membership and catches up from the
    /// leader (entries or a snapshot).
    pub fn propose_add(&mut self, id: u64) -> Result<u64, ProposeError> {
        self.propose_change(id, ConfChangeType::AddNode, Vec::new())
    }

    /// [`Replica::propose_add`], the new node's transport `address` riding
    /// in the change: every node that applies it learns where the new one
    /// listens ([`Replica::take_joined`]).
    pub fn propose_add_at(&mut self, id: u64, address: &str) -> Result<u64, ProposeError> {
        self.propose_change(id, ConfChangeType::AddNode, address.as_bytes().to_vec())
    }

    /// Nodes added since the last call, with the transport address their
    /// change carried.
    pub fn take_joined(&mut self) -> Vec<(u64, String)> {
        std::mem::take(&mut self.joined)
    }

    /// Proposes removing node `id`, which must not be this leader: hand
    /// leadership over first ([`Replica::transfer_leader`]).
    pub fn propose_remove(&mut self, id: u64) -> Result<u64, ProposeError> {
        if id == self.id() {
            return Err(ProposeError::Dropped(
                "a leader does not remove itself: transfer leadership first".into(),
            ));
        }
        self.propose_change(id, ConfChangeType::RemoveNode, Vec::new())
    }

    fn propose_change(
        &mut self,
        id: u64,
        change_type: ConfChangeType,
        context: Vec<u8>,
    ) -> Result<u64, ProposeError> {
        if self.node.raft.state != StateRole::Leader {
            return Err(ProposeError::NotLeader {
                leader: self.leader(),
            });
        }
        if self.node.raft.has_pending_conf() {
            // raft-rs would turn the change into an empty entry, silently.
            return Err(ProposeError::Dropped(
                "a membership change (or this leader's first entry) is not applied yet: retry"
                    .into(),
            ));
        }
        if change_type == ConfChangeType::AddNode {
            // A node joins with no membership of its own: replaying the log
            // from index 1 would rebuild the membership from nothing (the
            // founding voters are not entries). A snapshot carries the
            // membership at its index, so compact now: the new node's first
            // contact needs entries the log no longer has, and it gets a
            // snapshot (the one taken once the change applied, which names
            // it: raft-rs makes a node refuse a snapshot that does not).
            if !self.state.settled() {
                return Err(ProposeError::Dropped(
                    "proposals are in flight (a snapshot must come first): retry".into(),
                ));
            }
            self.snapshot_now(true)
                .map_err(|e| ProposeError::Dropped(format!("snapshot before adding: {e}")))?;
        }
        let mut change = ConfChange::default();
        change.set_change_type(change_type);
        change.node_id = id;
        change.context = context.into();
        self.node
            .propose_conf_change(Vec::new(), change)
            .map_err(|e| ProposeError::Dropped(e.to_string()))?;
        Ok(self.track_proposal())
    }

    /// The voters, as this node last applied them.
    #[must_use]
    pub fn voters(&self) -> Vec<u64> {
        let mut voters: Vec<u64> = self.node.raft.prs().conf().voters().ids().iter().collect();
        voters.sort_unstable();
        voters
    }
}
