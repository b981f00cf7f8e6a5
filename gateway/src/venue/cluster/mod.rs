//! A venue node of a cluster (`tonnex-venue run --node N --peers ...`).
//!
//! Every node runs the same process on its own journal folder; the journal
//! is the Raft log ([`tonnex_cluster::JournalLog`]). A follower applies
//! committed entries to its core (state and fill log) and answers
//! order-entry logins with a redirect to the leader ([`follower`]). The
//! node that leads, once it has applied every entry before its term,
//! becomes the venue: the gateway is built from its state exactly as at a
//! restart, and from then on each batch of commands is applied at once,
//! proposed as one entry with the reports it made, which the gateway
//! sends once the entry commits
//! ([`Node::process`]). A leader that loses leadership drops its sessions
//! and starts again from its log as a follower (what it applied ahead of
//! the log may have been overwritten): the one recovery path.

mod follower;
mod node;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;

use tonnex_cluster::{JournalLog, Replica, ReplicaConfig};
use tonnex_engine::State;

pub use self::node::{Node, TICK, TOKEN_BASE};

use tonnex_engine::venue::SerialBlocks;

use super::admin::AdminDesk;
use super::core::Core;
use super::fills::FillLog;
use super::inline::Engine;
use super::launch;
use super::server::Ended;
use super::startup::Settling;
use super::{start_error, RunOptions, VenueError};

/// Entries between a node's snapshots (each entry is a batch of up to 256
/// commands).
pub const SNAPSHOT_EVERY_ENTRIES: u64 = 100_000;

/// Entries a node's log keeps behind its snapshot.
pub const RETAINED_ENTRIES: u64 = 100_000;

/// A node's journal segments: smaller than a single venue's, since each
/// node zero-fills its next segment in the background and three of them
/// doing so at once on one machine starve each other's event loops (and
/// heartbeats) of page-cache writeback.
pub const SEGMENT_BYTES: u64 = 64 << 20;

/// `--node`, `--peers` and `--peer-order-entry`.
#[derive(Clone, Debug, Default)]
pub struct ClusterOptions {
    /// This node's id.
    pub node: u64,
    /// Every node's Raft transport address, this one's included.
    pub peers: BTreeMap<u64, SocketAddr>,
    /// Every node's order-entry address (what a redirect names).
    pub order_entry: BTreeMap<u64, String>,
    /// `--join`: a new node, outside the membership until a leader adds it
    /// (`tonnex-admin cluster add`); it then catches up from the leader.
    pub join: bool,
}

impl ClusterOptions {
    /// Parses `1@ADDR,2@ADDR,...` (ids nonzero, each once).
    pub fn parse_list(flag: &str, text: &str) -> Result<BTreeMap<u64, String>, String> {
        let mut nodes = BTreeMap::new();
        for item in text.split(',').filter(|s| !s.is_empty()) {
            let (id, addr) = item
                .split_once('@')
                .ok_or_else(|| format!("{flag}: '{item}' is not ID@ADDR"))?;
            let id: u64 = id
                .parse()
                .ok()
                .filter(|&id| id != 0)
                .ok_or_else(|| format!("{flag}: '{id}' is not a node id (1, 2, ...)"))?;
            if nodes.insert(id, addr.to_string()).is_some() {
                return Err(format!("{flag}: node {id} is listed twice"));
            }
        }
        Ok(nodes)
    }

    /// Checks the options and parses the transport addresses.
    pub fn new(
        node: u64,
        peers: &str,
        order_entry: Option<&str>,
    ) -> Result<ClusterOptions, String> {
        let mut parsed = BTreeMap::new();
        for (id, addr) in ClusterOptions::parse_list("--peers", peers)? {
            let addr: SocketAddr = addr
                .parse()
                .map_err(|e| format!("--peers: node {id}: '{addr}': {e}"))?;
            parsed.insert(id, addr);
        }
        if !parsed.contains_key(&node) {
            return Err(format!("--peers does not list this node ({node})"));
        }
        let order_entry = match order_entry {
            Some(text) => ClusterOptions::parse_list("--peer-order-entry", text)?,
            None => BTreeMap::new(),
        };
        Ok(ClusterOptions {
            node,
            peers: parsed,
            order_entry,
            join: false,
        })
    }
}

/// Runs the node until SIGTERM/SIGINT, starting again from its log each
/// time it loses leadership.
pub fn run(
    options: &RunOptions,
    cluster: &ClusterOptions,
    stop: &AtomicBool,
) -> Result<(), VenueError> {
    loop {
        match run_once(options, cluster, stop)? {
            Ended::Stopped => return Ok(()),
            Ended::Demoted => tracing::warn!(node = cluster.node, "starting again as a follower"),
        }
    }
}

/// One run of the node: follow, and lead if elected, until stopped or
/// demoted.
fn run_once(
    options: &RunOptions,
    cluster: &ClusterOptions,
    stop: &AtomicBool,
) -> Result<Ended, VenueError> {
    let mut prepared = launch::prepare(options)?;
    let config = &prepared.config;
    // Fail closed: the transport takes entries that overwrite the log.
    let key = config.cluster_key.clone().ok_or_else(|| {
        start_error(format!(
            "{}: [cluster] key: a cluster node needs the key every node of the cluster shares \
             (16 bytes or more; docs/operations.md, \"Running a cluster\")",
            config.path.display()
        ))
    })?;
    let dir = config.journal_dir.clone();
    refuse_single_journal(&dir)?;
    let engine_config = super::engine_config(config);
    // The founding membership: every node of --peers (the log's own, once
    // it has one); a joining node starts with none.
    let voters: Vec<u64> = if cluster.join {
        Vec::new()
    } else {
        cluster.peers.keys().copied().collect()
    };
    let log = JournalLog::open(
        &dir,
        &voters,
        engine_config,
        config.durability.journal(),
        SEGMENT_BYTES,
    )
    .map_err(start_error)?
    // A node back from a crash or a restart catches up from entries (its
    // journal and fill log whole) unless it missed more than these.
    .retain(RETAINED_ENTRIES);
    // The fill log is cut back to the snapshot: replaying the committed
    // entries after it writes the rest again, record for record.
    let from = log.snapshot_meta().seq;
    let fill_log = FillLog::open(&dir, from, from).map_err(start_error)?;
    let core = Core::replicated(
        State::new(engine_config),
        fill_log,
        dir.clone(),
        config.session.replay_capacity,
    );
    let replica_config = ReplicaConfig {
        id: cluster.node,
        // 200 to 400 ms without a leader's word: a start-up or a page-cache
        // stall of a busy machine is not a failover.
        election_tick: 20,
        heartbeat_tick: 2,
        fixed_election_timeout: false,
        engine: engine_config,
        checkpoint_every: 0,
        snapshot_every: SNAPSHOT_EVERY_ENTRIES,
    };
    let replica = Replica::open_with(&replica_config, log, core).map_err(start_error)?;
    let mut poll = mio::Poll::new().map_err(start_error)?;
    let mut listening = launch::listen(config)?;
    let listen = cluster.peers[&cluster.node];
    // Where this node's clients reach it, for the hello its peers learn it
    // from: --peer-order-entry's word, else the address it listens on (an
    // unspecified one, 0.0.0.0, names nothing a client can dial).
    let mut order_entry = cluster.order_entry.clone();
    if let Ok(own) = listening.order_entry.local_addr() {
        if !own.ip().is_unspecified() {
            order_entry
                .entry(cluster.node)
                .or_insert_with(|| own.to_string());
        }
    }
    let mut node = Node::new(
        replica,
        listen,
        key.as_bytes(),
        cluster.peers.clone(),
        order_entry,
        poll.registry(),
    )
    .map_err(|e| start_error(format!("--peers: cannot listen on {listen}: {e}")))?;
    let background = launch::background(config, &mut listening, node.core().fill_log())?;
    node.set_metrics(&background.metrics);
    // The committed log, applied again (the one recovery path).
    loop {
        let before = node.status().applied;
        if before >= node.status().commit {
            break;
        }
        node.pump().map_err(start_error)?;
        if node.status().applied == before {
            return Err(start_error(format!(
                "{}: the log is committed to {} but does not apply past {before}",
                dir.display(),
                node.status().commit
            )));
        }
    }
    let records = node.core().state().last_seq();
    let ready = |role: &str| {
        format!(
            "{} recovered_records={records}{} node={} role={role}",
            listening.head, listening.tail, cluster.node
        )
    };
    println!("ready {}", ready("follower"));
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let mut desk = follower::Desk {
        order_entry: &mut listening.order_entry,
        admin: listening.admin.as_mut(),
        verifier: AdminDesk::new(&prepared.config, Vec::new(), SerialBlocks::default()),
    };
    let followed = follower::follow(&mut node, &mut poll, &mut desk, stop);
    if !matches!(followed, Ok(follower::Followed::Lead)) {
        background.stop();
        return followed.map(|_| Ended::Stopped);
    }
    tracing::info!(node = cluster.node, term = node.status().term, "leading");
    node.lead();
    prepared.adopt(node.core().state())?;
    let seed = prepared.start(&mut Settling {
        node: &mut node,
        poll: &mut poll,
    });
    let seed = match seed {
        Ok(seed) => seed,
        Err(e @ VenueError::NoQuorum(_)) => {
            // Not a venue yet: follow again (anything else is fatal, as on
            // a single venue).
            tracing::warn!(error = %e, "could not start as leader");
            background.stop();
            return Ok(Ended::Demoted);
        }
        Err(e) => {
            background.stop();
            return Err(e);
        }
    };
    let ready_line = ready("leader");
    let served = launch::serve(
        prepared,
        listening,
        &background,
        poll,
        None,
        Ok(Engine::Cluster(Box::new(node))),
        seed,
        &ready_line,
        stop,
    );
    background.stop();
    served
}

/// A single venue's journal folder cannot become a cluster node's: its
/// commands have no Raft entries.
fn refuse_single_journal(dir: &std::path::Path) -> Result<(), VenueError> {
    let has_segments = std::fs::read_dir(dir).ok().is_some_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("journal-"))
    });
    if has_segments && !dir.join(tonnex_cluster::log::STATE_FILE).exists() {
        return Err(start_error(format!(
            "{}: a single venue's journal (no {}): a cluster node starts on an empty folder",
            dir.display(),
            tonnex_cluster::log::STATE_FILE
        )));
    }
    Ok(())
}
