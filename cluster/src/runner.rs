//! A node on a thread of its own, with its own mio loop, transport and
//! journal folder: what the loopback tests and the cluster benchmark run.
//! (A venue runs the node inside its own event loop instead.)

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token, Waker};
use tonnex_engine::journal::Durability;
use tonnex_engine::{Command, EngineConfig};

use crate::transport::{Hello, Transport};
use crate::{ClusterError, JournalLog, Replica, ReplicaConfig, Role};

/// The transport's tokens start here; the waker has token 0.
const TRANSPORT_TOKENS: usize = 1;

/// How to run a node.
#[derive(Clone, Debug)]
pub struct RunnerConfig {
    /// The node's id.
    pub id: u64,
    /// Its journal folder.
    pub dir: PathBuf,
    /// Every node's transport address, this one's included.
    pub peers: BTreeMap<u64, SocketAddr>,
    /// The engine configuration.
    pub engine: EngineConfig,
    /// The journal's durability.
    pub durability: Durability,
    /// Entries between snapshots.
    pub snapshot_every: u64,
    /// The Raft tick (elections after 10 to 20 ticks without a leader).
    pub tick: Duration,
    /// The cluster key every node's hello proves.
    pub key: Vec<u8>,
}

/// Where a proposal's outcome goes: `(index, term)` once the node applied
/// it, `None` when the node did not take it (not the leader).
pub type Answer = Sender<Option<(u64, u64)>>;

/// What a running node shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct View {
    /// Its role (`None` before its first round).
    pub role: Option<Role>,
    /// Its applied index.
    pub applied: u64,
    /// Messages from the network Raft refused (dropped).
    pub refused: u64,
}

/// What a stopped node leaves: its applied index, state digest and log.
#[derive(Clone, Debug)]
pub struct End {
    /// The applied index.
    pub applied: u64,
    /// The engine state's digest.
    pub digest: String,
    /// `(index, term)` of every entry in its log.
    pub log: Vec<(u64, u64)>,
}

/// A node running on its thread.
pub struct Running {
    view: Arc<Mutex<View>>,
    proposals: Sender<(Vec<Command>, Answer)>,
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Result<End, ClusterError>>,
}

impl Running {
    /// Starts the node (on its folder as it is: a restart picks up).
    pub fn spawn(config: RunnerConfig) -> Result<Running, ClusterError> {
        let poll = Poll::new().map_err(io)?;
        let waker = Arc::new(Waker::new(poll.registry(), Token(0)).map_err(io)?);
        let view = Arc::new(Mutex::new(View::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (proposals, inbox) = channel();
        let (shown, stopping) = (view.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name(format!("node-{}", config.id))
            .spawn(move || run(&config, poll, &shown, &stopping, &inbox))
            .map_err(io)?;
        Ok(Running {
            view,
            proposals,
            waker,
            stop,
            thread,
        })
    }

    /// Hands the node a proposal; false if it has stopped.
    pub fn propose(&self, commands: Vec<Command>, answer: Answer) -> bool {
        self.proposals.send((commands, answer)).is_ok() && self.waker.wake().is_ok()
    }

    /// What it shows now.
    #[must_use]
    pub fn view(&self) -> View {
        *self.view.lock().expect("view lock")
    }

    /// Stops it dead (its folder stays) and returns what it leaves.
    pub fn stop(self) -> Result<End, ClusterError> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.waker.wake();
        self.thread.join().unwrap_or_else(|_| {
            Err(ClusterError::Unsupported {
                index: 0,
                what: "the node's thread panicked".into(),
            })
        })
    }
}

fn io(e: std::io::Error) -> ClusterError {
    ClusterError::Raft(raft::Error::Io(e))
}

fn run(
    config: &RunnerConfig,
    mut poll: Poll,
    view: &Mutex<View>,
    stop: &AtomicBool,
    inbox: &Receiver<(Vec<Command>, Answer)>,
) -> Result<End, ClusterError> {
    let voters: Vec<u64> = config.peers.keys().copied().collect();
    let listen = config.peers[&config.id];
    let hello = Hello {
        id: config.id,
        listen,
        client: String::new(),
    };
    let mut transport = Transport::bind(
        &hello,
        &config.key,
        config.peers.clone(),
        poll.registry(),
        TRANSPORT_TOKENS,
    )
    .map_err(io)?;
    let replica_config = ReplicaConfig {
        id: config.id,
        election_tick: 10,
        heartbeat_tick: 2,
        fixed_election_timeout: false,
        engine: config.engine,
        checkpoint_every: 0,
        snapshot_every: config.snapshot_every,
    };
    let log = JournalLog::open(
        &config.dir,
        &voters,
        config.engine,
        config.durability,
        64 << 20,
    )?;
    let mut replica = Replica::open(&replica_config, log)?;
    let mut events = Events::with_capacity(256);
    let mut last_tick = Instant::now();
    let mut waiting: BTreeMap<u64, Answer> = BTreeMap::new();
    let mut applied = Vec::new();
    let mut refused = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let wait = config.tick.saturating_sub(last_tick.elapsed());
        poll.poll(&mut events, Some(wait)).map_err(io)?;
        let registry = poll.registry();
        for event in &events {
            transport.on_event(event.token(), registry, &mut |m| {
                // A message Raft refuses (a local kind from the network, a
                // stranger's) is dropped: it never stops the node.
                if replica.step(m).is_err() {
                    refused += 1;
                }
            });
        }
        if last_tick.elapsed() >= config.tick {
            last_tick = Instant::now();
            replica.tick();
        }
        while let Ok((mut commands, answer)) = inbox.try_recv() {
            match replica.propose(&mut commands) {
                Ok(tag) => {
                    waiting.insert(tag, answer);
                }
                Err(_) => {
                    let _ = answer.send(None);
                }
            }
        }
        applied.clear();
        replica.handle_ready(&mut applied)?;
        for a in &applied {
            if let Some(answer) = a.tag.and_then(|tag| waiting.remove(&tag)) {
                let _ = answer.send(Some((a.index, a.term)));
            }
        }
        transport.send(replica.take_messages(), poll.registry());
        let reports = transport.take_reports();
        for peer in reports.unreachable {
            replica.report_unreachable(peer);
        }
        for (peer, delivered) in reports.snapshots {
            replica.report_snapshot(peer, delivered);
        }
        // Proposals a lost leadership will never apply: answered now.
        if replica.role() != Role::Leader && !waiting.is_empty() {
            waiting.clear();
        }
        *view.lock().expect("view lock") = View {
            role: Some(replica.role()),
            applied: replica.applied_index(),
            refused,
        };
    }
    let log = replica
        .log_entries(1)?
        .iter()
        .map(|e| (e.index, e.term))
        .collect();
    Ok(End {
        applied: replica.applied_index(),
        digest: replica.state().digest(),
        log,
    })
}
