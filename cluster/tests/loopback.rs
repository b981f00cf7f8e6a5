//! Three nodes on loopback, each on a thread with its own mio loop, real
//! TCP between them (`Transport`) and a journal folder each: a leader is
//! elected and acknowledges proposals; the leader's thread is stopped
//! dead; the other two elect a new leader and go on; the stopped node
//! restarts on its folder and catches up; every acknowledged entry is in
//! every node's log and all three end in the same state.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::{Events, Poll};
use tonnex_cluster::transport::Transport;
use tonnex_cluster::{JournalLog, Replica, ReplicaConfig, Role};
use tonnex_engine::journal::Durability;
use tonnex_engine::{workload, Command, EngineConfig};

fn engine() -> EngineConfig {
    EngineConfig {
        holds: false,
        order_capacity: 1 << 12,
        ..EngineConfig::default()
    }
}

/// What a node's thread shows the test.
#[derive(Clone, Debug, Default)]
struct View {
    role: Option<Role>,
    applied: u64,
}

/// Where to say a proposal was acknowledged: (index, term), or `None`
/// when this node does not lead.
type Answer = Sender<Option<(u64, u64)>>;

/// A proposal and where to answer.
type Proposal = (Vec<Command>, Answer);

/// A stopped node's final applied index, state digest and log (index, term).
type End = (u64, String, Vec<(u64, u64)>);

struct Node {
    view: Arc<Mutex<View>>,
    proposals: Sender<Proposal>,
    stop: Arc<AtomicBool>,
    /// Returns the node's final applied index, state digest and log.
    thread: JoinHandle<End>,
}

fn start(id: u64, dir: PathBuf, addrs: &BTreeMap<u64, SocketAddr>) -> Node {
    let view = Arc::new(Mutex::new(View::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let (proposals, inbox) = channel::<Proposal>();
    let peers = addrs.clone();
    let (view2, stop2) = (view.clone(), stop.clone());
    let thread = std::thread::spawn(move || run(id, &dir, peers, &view2, &stop2, &inbox));
    Node {
        view,
        proposals,
        stop,
        thread,
    }
}

fn run(
    id: u64,
    dir: &std::path::Path,
    peers: BTreeMap<u64, SocketAddr>,
    view: &Mutex<View>,
    stop: &AtomicBool,
    inbox: &Receiver<Proposal>,
) -> End {
    let mut poll = Poll::new().unwrap();
    let voters: Vec<u64> = peers.keys().copied().collect();
    let listen = peers[&id];
    let mut transport = Transport::bind(listen, peers, poll.registry(), 0).unwrap();
    let config = ReplicaConfig {
        id,
        election_tick: 10,
        heartbeat_tick: 2,
        fixed_election_timeout: false,
        engine: engine(),
        checkpoint_every: 0,
        // Often: the restarted node may catch up from a snapshot.
        snapshot_every: 64,
    };
    let log = JournalLog::open(dir, &voters, engine(), Durability::Process, 1 << 20).unwrap();
    let mut replica = Replica::open(&config, log).unwrap();
    let mut events = Events::with_capacity(256);
    let mut last_tick = Instant::now();
    let mut waiting: BTreeMap<u64, Answer> = BTreeMap::new();
    let mut applied = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        poll.poll(&mut events, Some(Duration::from_millis(2)))
            .unwrap();
        let registry = poll.registry();
        for event in &events {
            transport.on_event(event.token(), registry, &mut |m| {
                replica.step(m).unwrap();
            });
        }
        // A 10 ms tick: elections after 100-200 ms without a leader.
        if last_tick.elapsed() >= Duration::from_millis(10) {
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
        replica.handle_ready(&mut applied).unwrap();
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
        let mut shown = view.lock().unwrap();
        shown.role = Some(replica.role());
        shown.applied = replica.applied_index();
    }
    let entries = replica
        .log_entries(1)
        .unwrap()
        .iter()
        .map(|e| (e.index, e.term))
        .collect();
    (replica.applied_index(), replica.state().digest(), entries)
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn leader(nodes: &BTreeMap<u64, Node>, within: Duration) -> u64 {
    let start = Instant::now();
    loop {
        let leaders: Vec<u64> = nodes
            .iter()
            .filter(|(_, n)| n.view.lock().unwrap().role == Some(Role::Leader))
            .map(|(&id, _)| id)
            .collect();
        if let [one] = leaders[..] {
            return one;
        }
        assert!(
            start.elapsed() < within,
            "no single leader within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Proposes `commands` until some node acknowledges them; returns (index, term).
fn propose(nodes: &BTreeMap<u64, Node>, commands: &[Command]) -> (u64, u64) {
    let start = Instant::now();
    loop {
        let id = leader(nodes, Duration::from_secs(5));
        let (answer, acked) = channel();
        nodes[&id]
            .proposals
            .send((commands.to_vec(), answer))
            .unwrap();
        if let Ok(Some(at)) = acked.recv_timeout(Duration::from_millis(500)) {
            return at;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "nothing acknowledged in 10 s"
        );
    }
}

#[test]
fn a_leader_stopped_dead_is_replaced_and_nothing_acknowledged_is_lost() {
    let root = std::env::temp_dir().join(format!("tonnex-loopback-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let addrs: BTreeMap<u64, SocketAddr> = (1..=3).map(|id| (id, free_addr())).collect();
    let dir = |id: u64| root.join(format!("node-{id}"));
    let mut nodes: BTreeMap<u64, Node> =
        (1..=3).map(|id| (id, start(id, dir(id), &addrs))).collect();
    let orders = |from: u64, count: u64| -> Vec<Command> {
        let text: String = (from..from + count)
            .map(|i| {
                format!(
                    "N {i} {} {} L {} 2\n",
                    1 + i % 5,
                    if i % 2 == 0 { 'B' } else { 'S' },
                    100 + i % 7
                )
            })
            .collect();
        workload::parse(&text).unwrap()
    };
    let mut acked = Vec::new();
    acked.push(propose(
        &nodes,
        &[Command::AddInstrument {
            instrument: 0,
            spec: workload::instrument(),
        }],
    ));
    for i in 0..150 {
        acked.push(propose(&nodes, &orders(i * 4 + 1, 4)));
    }
    // Stop the leader dead (its thread returns; its folder stays).
    let old = leader(&nodes, Duration::from_secs(5));
    let dead = nodes.remove(&old).unwrap();
    dead.stop.store(true, Ordering::Relaxed);
    let killed = Instant::now();
    dead.thread.join().unwrap();
    acked.push(propose(&nodes, &orders(10_000, 3)));
    let failover = killed.elapsed();
    assert!(
        failover < Duration::from_secs(3),
        "failover took {failover:?}"
    );
    for i in 0..100 {
        acked.push(propose(&nodes, &orders(20_000 + i * 3, 3)));
    }
    // The stopped node comes back on its folder and catches up.
    nodes.insert(old, start(old, dir(old), &addrs));
    let target = acked.iter().map(|&(index, _)| index).max().unwrap();
    let start_wait = Instant::now();
    loop {
        let applied: Vec<u64> = nodes
            .values()
            .map(|n| n.view.lock().unwrap().applied)
            .collect();
        if applied.iter().all(|&a| a >= target && a == applied[0]) {
            break;
        }
        assert!(
            start_wait.elapsed() < Duration::from_secs(10),
            "the restarted node never caught up"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Followers first, so no election adds an entry while nodes stop.
    let last = leader(&nodes, Duration::from_secs(5));
    let mut order: Vec<u64> = nodes.keys().copied().filter(|&id| id != last).collect();
    order.push(last);
    let mut ends = Vec::new();
    for id in order {
        let node = nodes.remove(&id).unwrap();
        node.stop.store(true, Ordering::Relaxed);
        ends.push(node.thread.join().unwrap());
    }
    let applied = ends.iter().map(|e| e.0).min().unwrap();
    assert!(applied >= target);
    for (index, term) in &acked {
        for (k, (_, _, log)) in ends.iter().enumerate() {
            let first = log.first().map_or(u64::MAX, |e| e.0);
            if *index >= first {
                assert!(
                    log.contains(&(*index, *term)),
                    "node {k}: acknowledged {index}/{term} lost"
                );
            }
        }
    }
    // The same index applied everywhere, and the same state.
    for end in &ends[1..] {
        assert_eq!(end.0, ends[0].0, "applied indexes differ");
        assert_eq!(end.1, ends[0].1, "states differ at index {}", end.0);
    }
    eprintln!("failover (leader stopped -> first acknowledgement on the new leader): {failover:?}");
    std::fs::remove_dir_all(&root).unwrap();
}
