//! Three nodes on loopback, each on a thread with its own mio loop, real
//! TCP between them and a journal folder each (`runner::Running`): a
//! leader is elected and acknowledges proposals; the leader is stopped
//! dead; the other two elect a new leader and go on; the stopped node
//! restarts on its folder and catches up; every acknowledged entry is in
//! every node's log and all three end in the same state. Then the same
//! with twenty leaders stopped at random moments under a client that
//! proposes all along.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tonnex_cluster::runner::{End, RunnerConfig, Running};
use tonnex_cluster::Role;
use tonnex_engine::journal::Durability;
use tonnex_engine::{workload, Command, EngineConfig};

fn engine() -> EngineConfig {
    EngineConfig {
        holds: false,
        order_capacity: 1 << 12,
        ..EngineConfig::default()
    }
}

/// The cluster key the nodes share.
const KEY: &[u8] = b"loopback-test-cluster-key";

/// The running nodes, by id (the proposing thread and the test share it).
type Directory = Mutex<BTreeMap<u64, Arc<Running>>>;

fn start(id: u64, dir: PathBuf, addrs: &BTreeMap<u64, SocketAddr>, directory: &Directory) {
    let node = Running::spawn(RunnerConfig {
        id,
        dir,
        peers: addrs.clone(),
        engine: engine(),
        durability: Durability::Process,
        // Often: a restarted node may catch up from a snapshot.
        snapshot_every: 64,
        tick: Duration::from_millis(10),
        key: KEY.to_vec(),
    })
    .unwrap();
    directory.lock().unwrap().insert(id, Arc::new(node));
}

/// Stops node `id` dead: its thread returns, its folder stays.
fn kill(id: u64, directory: &Directory) -> End {
    let mut node = directory.lock().unwrap().remove(&id).unwrap();
    // The proposing thread may hold it a moment longer.
    let node = loop {
        match Arc::try_unwrap(node) {
            Ok(node) => break node,
            Err(shared) => {
                node = shared;
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    };
    node.stop().unwrap()
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
            .filter(|(_, node)| node.view().role == Some(Role::Leader))
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
        let Some(node) = directory.lock().unwrap().get(&id).cloned() else {
            continue;
        };
        let (answer, acked) = channel();
        if node.propose(commands.to_vec(), answer) {
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
            let side = if i % 2 == 0 { 'B' } else { 'S' };
            format!("N {i} {} {side} L {} 2\n", 1 + i % 5, 100 + i % 7)
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

/// Waits until every running node applied the same index, at least the
/// last acknowledged; then stops followers first (so no election adds an
/// entry) and checks every acknowledged entry is in every log and every
/// state is the same.
fn finish(directory: &Directory, acked: &[(u64, u64)]) {
    let target = acked.iter().map(|&(index, _)| index).max().unwrap();
    let start_wait = Instant::now();
    loop {
        let applied: Vec<u64> = directory
            .lock()
            .unwrap()
            .values()
            .map(|node| node.view().applied)
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
    let ids: Vec<u64> = directory.lock().unwrap().keys().copied().collect();
    let mut order: Vec<u64> = ids.into_iter().filter(|&id| id != last).collect();
    order.push(last);
    let ends: Vec<End> = order.into_iter().map(|id| kill(id, directory)).collect();
    for (index, term) in acked {
        for (k, end) in ends.iter().enumerate() {
            let first = end.log.first().map_or(u64::MAX, |e| e.0);
            if *index >= first {
                assert!(
                    end.log.contains(&(*index, *term)),
                    "node {k}: acknowledged {index}/{term} lost"
                );
            }
        }
    }
    for end in &ends[1..] {
        assert_eq!(end.applied, ends[0].applied, "applied indexes differ");
        assert_eq!(
            end.digest, ends[0].digest,
            "states differ at index {}",
            end.applied
        );
    }
}

/// Three nodes in a fresh folder under the temporary directory.
fn cluster(name: &str) -> (PathBuf, BTreeMap<u64, SocketAddr>, Arc<Directory>) {
    let root = std::env::temp_dir().join(format!("tonnex-loopback-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let addrs: BTreeMap<u64, SocketAddr> = (1..=3).map(|id| (id, free_addr())).collect();
    let directory = Arc::new(Directory::default());
    for id in 1..=3 {
        start(id, root.join(format!("node-{id}")), &addrs, &directory);
    }
    (root, addrs, directory)
}

#[test]
fn a_leader_stopped_dead_is_replaced_and_nothing_acknowledged_is_lost() {
    let (root, addrs, directory) = cluster("one");
    let mut acked = vec![propose(&directory, &[instrument()])];
    for i in 0..150 {
        acked.push(propose(&directory, &orders(i * 4 + 1, 4)));
    }
    let old = leader(&directory, Duration::from_secs(5));
    kill(old, &directory);
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
    start(old, root.join(format!("node-{old}")), &addrs, &directory);
    finish(&directory, &acked);
    eprintln!("failover (leader stopped -> first acknowledgement on the new leader): {failover:?}");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn twenty_leaders_stopped_at_random_moments_lose_nothing_acknowledged() {
    let (root, addrs, directory) = cluster("twenty");
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
        kill(old, &directory);
        // The two left elect a leader; the stopped node comes back.
        leader(&directory, Duration::from_secs(5));
        start(old, root.join(format!("node-{old}")), &addrs, &directory);
    }
    done.store(true, Ordering::Relaxed);
    let acked = client.join().unwrap();
    assert!(
        acked.len() > 100,
        "only {} proposals acknowledged",
        acked.len()
    );
    finish(&directory, &acked);
    eprintln!(
        "twenty leader kills: {} proposals acknowledged, none lost",
        acked.len()
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_stranger_speaking_garbage_is_hung_up_on_and_harms_nothing() {
    use std::io::{Read, Write};
    let (root, addrs, directory) = cluster("garbage");
    let mut acked = vec![propose(&directory, &[instrument()])];
    // Not a raft-rs message, then a frame longer than any allowed: each
    // connection is dropped by the node it reached.
    for bytes in [
        [&5u32.to_le_bytes()[..], b"hello"].concat(),
        (u32::MAX).to_le_bytes().to_vec(),
    ] {
        for addr in addrs.values() {
            let mut stranger = std::net::TcpStream::connect(addr).unwrap();
            stranger.write_all(&bytes).unwrap();
            stranger
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut buf = [0u8; 16];
            assert_eq!(
                stranger.read(&mut buf).unwrap(),
                0,
                "{addr}: not hung up on"
            );
        }
    }
    // A well-formed message Raft must not take from the network (a local
    // kind), after a hello naming its sender: refused and dropped, the node
    // goes on.
    {
        use protobuf::Message as _;
        let mut hup = raft::prelude::Message::default();
        hup.set_msg_type(raft::prelude::MessageType::MsgHup);
        hup.to = 1;
        hup.from = 2;
        let bytes = hup.write_to_bytes().unwrap();
        let hello = tonnex_cluster::Hello {
            id: 2,
            listen: addrs[&2],
            client: String::new(),
        };
        let mut stranger = std::net::TcpStream::connect(addrs[&1]).unwrap();
        stranger
            .write_all(
                &[
                    &hello.frame(KEY)[..],
                    &(bytes.len() as u32).to_le_bytes()[..],
                    &bytes,
                ]
                .concat(),
            )
            .unwrap();
        let start = Instant::now();
        while directory.lock().unwrap()[&1].view().refused == 0 {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "the local message was not refused"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    for i in 0..50 {
        acked.push(propose(&directory, &orders(i * 2 + 1, 2)));
    }
    finish(&directory, &acked);
    std::fs::remove_dir_all(&root).unwrap();
}
