//! The admin port's cluster verbs: a node's view (every node answers it),
//! a planned leadership transfer, and adding or removing a voter (the
//! leader proposes; the change takes effect once committed). None is
//! journaled as an admin command: membership changes are Raft entries of
//! their own, and the log records them.

use tonnex_cluster::Role;
use tonnex_protocol::admin::{AdminReply, AdminVerb, ClusterPeer};
use tonnex_protocol::RejectReason;

use super::cluster::Node;
use super::inline::Engine;
use super::server::Gateway;

/// `role` as the status reply spells it.
fn role_name(role: Role) -> &'static str {
    match role {
        Role::Leader => "leader",
        Role::Follower => "follower",
        Role::Candidate => "candidate",
        Role::PreCandidate => "pre-candidate",
    }
}

/// A node's answer to `ClusterStatus`.
pub(super) fn cluster_status(node: &Node, nonce: u64) -> AdminReply {
    let status = node.status();
    AdminReply::Cluster {
        nonce,
        node: status.id,
        role: role_name(status.role).into(),
        term: status.term,
        leader: status.leader.unwrap_or(0),
        commit: status.commit,
        applied: status.applied,
        voters: node.voters(),
        peers: status
            .peers
            .iter()
            .filter(|p| p.id != status.id)
            .map(|p| ClusterPeer {
                node: p.id,
                matched: p.match_index,
                lag: p.lag,
            })
            .collect(),
    }
}

/// A follower's refusal of anything but `ClusterStatus`.
pub(super) fn not_leader(node: &Node) -> (RejectReason, String) {
    let (leader, order_entry) = node.leader();
    let text = if leader == 0 {
        format!(
            "node {} follows and knows no leader right now (an election?)",
            node.status().id
        )
    } else {
        format!(
            "node {} follows; node {leader} leads (order entry {})",
            node.status().id,
            if order_entry.is_empty() {
                "unknown"
            } else {
                &order_entry
            }
        )
    };
    (RejectReason::NotLeader, text)
}

impl Gateway {
    /// Carries out a cluster verb on this (leading) node.
    pub(super) fn cluster_verb(
        &mut self,
        nonce: u64,
        verb: AdminVerb,
    ) -> Result<AdminReply, (RejectReason, String)> {
        let Some(Engine::Cluster(node)) = self.link.inline.as_mut().map(|i| &mut i.engine) else {
            return Err((
                RejectReason::InvalidRequest,
                "this venue runs alone (no --node): it has no cluster".into(),
            ));
        };
        let done = |text: String| AdminReply::Done {
            nonce,
            seq: 0,
            text,
        };
        let refused =
            |e: tonnex_cluster::ProposeError| (RejectReason::InvalidRequest, e.to_string());
        match verb {
            AdminVerb::ClusterStatus => Ok(cluster_status(node, nonce)),
            AdminVerb::ClusterTransfer { to } => {
                if !node.voters().contains(&to) || to == node.status().id {
                    return Err((
                        RejectReason::InvalidRequest,
                        format!(
                            "node {to} is not another voter (voters {:?})",
                            node.voters()
                        ),
                    ));
                }
                node.transfer_leader(to);
                Ok(done(format!(
                    "leadership handed to node {to}: this node stops taking orders once it leads"
                )))
            }
            AdminVerb::ClusterAdd { node: id, address } => {
                let parsed: std::net::SocketAddr = address.parse().map_err(|e| {
                    (
                        RejectReason::InvalidRequest,
                        format!("address '{address}': {e}"),
                    )
                })?;
                if node.voters().contains(&id) || id == 0 {
                    return Err((
                        RejectReason::InvalidRequest,
                        format!("node {id} is already a voter (or not an id)"),
                    ));
                }
                node.propose_add(id, parsed).map_err(refused)?;
                Ok(done(format!(
                    "proposed: add node {id} at {parsed} (a voter once committed; see cluster status)"
                )))
            }
            AdminVerb::ClusterRemove { node: id } => {
                if !node.voters().contains(&id) {
                    return Err((
                        RejectReason::InvalidRequest,
                        format!("node {id} is not a voter (voters {:?})", node.voters()),
                    ));
                }
                node.propose_remove(id).map_err(refused)?;
                Ok(done(format!(
                    "proposed: remove node {id} (gone from the voters once committed)"
                )))
            }
            _ => Err((RejectReason::InvalidRequest, "not a cluster verb".into())),
        }
    }
}
