//! `tonnex-admin cluster ...`: the verbs and how their answers print.

use std::process::ExitCode;

use clap::Subcommand;
use tonnex_protocol::admin::{AdminVerb, ClusterPeer};

/// What to do with the cluster.
#[derive(Subcommand)]
pub enum ClusterAction {
    /// This node's view: role, term, leader, commit and applied index,
    /// voters, and on the leader each peer's match index and lag.
    Status,
    /// Hand leadership to voter NODE (ask the leader).
    Transfer { node: u64 },
    /// Add NODE, listening for Raft at ADDRESS, as a voter (ask the
    /// leader; start the node with `--join` first).
    Add { node: u64, address: String },
    /// Remove voter NODE (ask the leader; not the leader itself).
    Remove { node: u64 },
}

impl ClusterAction {
    /// The request's verb.
    pub fn verb(self) -> AdminVerb {
        match self {
            ClusterAction::Status => AdminVerb::ClusterStatus,
            ClusterAction::Transfer { node } => AdminVerb::ClusterTransfer { to: node },
            ClusterAction::Add { node, address } => AdminVerb::ClusterAdd { node, address },
            ClusterAction::Remove { node } => AdminVerb::ClusterRemove { node },
        }
    }
}

/// A node's view, as `AdminReply::Cluster` carries it.
pub struct View<'a> {
    pub node: u64,
    pub role: &'a str,
    pub term: u64,
    pub leader: u64,
    pub commit: u64,
    pub applied: u64,
    pub voters: &'a [u64],
    pub peers: &'a [ClusterPeer],
}

impl View<'_> {
    /// Node, role, term, leader, commit and applied as `name SEP value`
    /// pairs joined by `between`, names quoted with `quote` (and the role,
    /// the one string, too).
    fn fields(&self, sep: &str, between: &str, quote: &str) -> String {
        let role = format!("{quote}{}{quote}", self.role);
        [
            ("node", self.node.to_string()),
            ("role", role),
            ("term", self.term.to_string()),
            ("leader", self.leader.to_string()),
            ("commit", self.commit.to_string()),
            ("applied", self.applied.to_string()),
        ]
        .iter()
        .map(|(name, value)| format!("{quote}{name}{quote}{sep}{value}"))
        .collect::<Vec<_>>()
        .join(between)
    }
}

/// Prints the view: one line per peer, then the last line.
pub fn report(view: &View<'_>, json: bool) -> ExitCode {
    let voters: Vec<String> = view.voters.iter().map(u64::to_string).collect();
    if json {
        let peers: Vec<String> = view
            .peers
            .iter()
            .map(|p| {
                format!(
                    "{{\"node\": {}, \"matched\": {}, \"lag\": {}}}",
                    p.node, p.matched, p.lag
                )
            })
            .collect();
        println!(
            "{{\"ok\": true, {}, \"voters\": [{}], \"peers\": [{}]}}",
            view.fields(": ", ", ", "\""),
            voters.join(", "),
            peers.join(", ")
        );
    } else {
        for p in view.peers {
            println!("peer node={} matched={} lag={}", p.node, p.matched, p.lag);
        }
    }
    println!(
        "ok=true {} voters={}",
        view.fields("=", " ", ""),
        voters.join(",")
    );
    ExitCode::SUCCESS
}
