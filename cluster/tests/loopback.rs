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

/// How the test reaches a running node.
#[derive(Clone)]
struct Contact {
    view: Arc<Mutex<View>>,
    proposals: Sender<Proposal>,
}

/// The running nodes, by id (the proposing thread and the test share it).
type Directory = Mutex<BTreeMap<u64, Contact>>;

/// A running node's thread.
struct Node {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<End>,
}

fn start(id: u64, dir: PathBuf, addrs: &BTreeMap<u64, SocketAddr>, directory: &Directory) -> Node {
    let view = Arc::new(Mutex::new(View::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let (proposals, inbox) = channel::<Proposal>();
    let peers = addrs.clone();
    let (view2, stop2) = (view.clone(), stop.clone());
    let thread = std::thread::spawn(move || run(id, &dir, peers, &view2, &stop2, &inbox));
    directory
        .lock()
        .unwrap()
        .insert(id, Contact { view, proposals });
    Node { stop, thread }
}

/// Stops node `id` dead: its thread returns, its folder stays.
fn kill(id: u64, nodes: &mut BTreeMap<u64, Node>, directory: &Directory) -> End {
    directory.lock().unwrap().remove(&id);
    let node = nodes.remove(&id).unwrap();
    node.stop.store(true, Ordering::Relaxed);
    node.thread.join().unwrap()
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

fn leader(directory: &Directory, within: Duration) -> u64 {
    let start = Instant::now();
    loop {
        let leaders: Vec<u64> = directory
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, c)| c.view.lock().unwrap().role == Some(Role::Leader))
            .map(|(&id, _)| id)
            .collect();
        if let [one] = leaders[..] {
            return one;
        }
        assert!(
            start.elapsed() < within,
            "no single leader within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Proposes `commands` until some node acknowledges them; returns (index, term).
fn propose(directory: &Directory, commands: &[Command]) -> (u64, u64) {
    let start = Instant::now();
    loop {
        let id = leader(directory, Duration::from_secs(5));
        let Some(contact) = directory.lock().unwrap().get(&id).cloned() else {
            continue;
        };
        let (answer, acked) = channel();
        if contact.proposals.send((commands.to_vec(), answer)).is_ok() {
            if let Ok(Some(at)) = acked.recv_timeout(Duration::from_millis(500)) {
                return at;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "nothing acknowledged in 10 s"
        );
    }
}

fn orders(from: u64, count: u64) -> Vec<Command> {
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
}

fn instrument() -> Command {
    Command::AddInstrument {
        instrument: 0,
        spec: workload::instrument(),
    }
}

/// Waits until every running node applied the same index, at least
/// `target`; then stops followers first (so no election adds an entry)
/// and checks every acknowledged entry is in every log and every state is
/// the same.
fn finish(mut nodes: BTreeMap<u64, Node>, directory: &Directory, acked: &[(u64, u64)]) {
    let target = acked.iter().map(|&(index, _)| index).max().unwrap();
    let start_wait = Instant::now();
    loop {
        let applied: Vec<u64> = directory
            .lock()
            .unwrap()
            .values()
            .map(|c| c.view.lock().unwrap().applied)
            .collect();
        if applied.iter().all(|&a| a >= target && a == applied[0]) {
            break;
        }
        assert!(
            start_wait.elapsed() < Duration::from_secs(10),
            "the nodes never caught up"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let last = leader(directory, Duration::from_secs(5));
    let mut order: Vec<u64> = nodes.keys().copied().filter(|&id| id != last).collect();
    order.push(last);
    let ends: Vec<End> = order
        .into_iter()
        .map(|id| kill(id, &mut nodes, directory))
        .collect();
    for (index, term) in acked {
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
    for end in &ends[1..] {
        assert_eq!(end.0, ends[0].0, "applied indexes differ");
        assert_eq!(end.1, ends[0].1, "states differ at index {}", end.0);
    }
}

#[test]
fn a_leader_stopped_dead_is_replaced_and_nothing_acknowledged_is_lost() {
    let root = std::env::temp_dir().join(format!("tonnex-loopback-{}-one", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let addrs: BTreeMap<u64, SocketAddr> = (1..=3).map(|id| (id, free_addr())).collect();
    let dir = |id: u64| root.join(format!("node-{id}"));
    let directory = Directory::default();
    let mut nodes: BTreeMap<u64, Node> = (1..=3)
        .map(|id| (id, start(id, dir(id), &addrs, &directory)))
        .collect();
    let mut acked = vec![propose(&directory, &[instrument()])];
    for i in 0..150 {
        acked.push(propose(&directory, &orders(i * 4 + 1, 4)));
    }
    let old = leader(&directory, Duration::from_secs(5));
    kill(old, &mut nodes, &directory);
    let killed = Instant::now();
    acked.push(propose(&directory, &orders(10_000, 3)));
    let failover = killed.elapsed();
    assert!(
        failover < Duration::from_secs(3),
        "failover took {failover:?}"
    );
    for i in 0..100 {
        acked.push(propose(&directory, &orders(20_000 + i * 3, 3)));
    }
    // The stopped node comes back on its folder and catches up.
    nodes.insert(old, start(old, dir(old), &addrs, &directory));
    finish(nodes, &directory, &acked);
    eprintln!("failover (leader stopped -> first acknowledgement on the new leader): {failover:?}");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn twenty_leaders_stopped_at_random_moments_lose_nothing_acknowledged() {
    let root = std::env::temp_dir().join(format!("tonnex-loopback-{}-twenty", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let addrs: BTreeMap<u64, SocketAddr> = (1..=3).map(|id| (id, free_addr())).collect();
    let dir = |id: u64| root.join(format!("node-{id}"));
    let directory = Arc::new(Directory::default());
    let mut nodes: BTreeMap<u64, Node> = (1..=3)
        .map(|id| (id, start(id, dir(id), &addrs, &directory)))
        .collect();
    let first = propose(&directory, &[instrument()]);
    // A client proposing all along, from its own thread.
    let done = Arc::new(AtomicBool::new(false));
    let client = {
        let (directory, done) = (directory.clone(), done.clone());
        std::thread::spawn(move || {
            let mut acked = vec![first];
            let mut next = 1;
            while !done.load(Ordering::Relaxed) {
                acked.push(propose(&directory, &orders(next, 3)));
                next += 3;
            }
            acked
        })
    };
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for _ in 0..20 {
        // A random moment: 20-80 ms into the client's flow.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        std::thread::sleep(Duration::from_millis(20 + x % 60));
        let old = leader(&directory, Duration::from_secs(5));
        kill(old, &mut nodes, &directory);
        // The two left elect a leader; the stopped node comes back.
        leader(&directory, Duration::from_secs(5));
        nodes.insert(old, start(old, dir(old), &addrs, &directory));
    }
    done.store(true, Ordering::Relaxed);
    let acked = client.join().unwrap();
    assert!(
        acked.len() > 100,
        "only {} proposals acknowledged",
        acked.len()
    );
    finish(nodes, &directory, &acked);
    eprintln!(
        "twenty leader kills: {} proposals acknowledged, none lost",
        acked.len()
    );
    std::fs::remove_dir_all(&root).unwrap();
}
