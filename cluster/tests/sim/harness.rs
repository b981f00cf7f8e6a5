//! The simulated cluster: nodes on journal folders of their own, a
//! seeded network and clock, and the checks every run makes.

use std::collections::BTreeMap;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use raft::prelude::MessageType;
use tonnex_cluster::{Applied, JournalLog, Message, Replica, ReplicaConfig, Role};
use tonnex_engine::command::Command;
use tonnex_engine::generate::{generate, Mix, Options, Profile};
use tonnex_engine::journal::Durability;
use tonnex_engine::{workload, EngineConfig};

/// xorshift64*: the simulation's only source of chance.
pub struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// True `per_mille` times in a thousand.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

/// How hostile the network and hosts are, per mille per message or step.
#[derive(Clone, Copy)]
pub struct Faults {
    pub drop: u64,
    pub duplicate: u64,
    pub max_delay: u64,
    pub crash: u64,
    pub partition: u64,
    pub heal: u64,
    /// A leader proposes adding a spare or removing a voter.
    pub membership: u64,
}

pub const HOSTILE: Faults = Faults {
    drop: 80,
    duplicate: 40,
    max_delay: 6,
    crash: 4,
    partition: 6,
    heal: 20,
    membership: 0,
};

/// No faults, and a partition stays as it was set.
pub const STILL: Faults = Faults {
    drop: 0,
    duplicate: 0,
    max_delay: 1,
    crash: 0,
    partition: 0,
    heal: 0,
    membership: 0,
};

pub const CALM: Faults = Faults {
    drop: 0,
    duplicate: 0,
    max_delay: 1,
    crash: 0,
    partition: 0,
    heal: 1000,
    membership: 0,
};

pub struct Node {
    pub replica: Option<Replica>,
    /// The node's journal folder: its disk, which outlives a crash.
    pub dir: PathBuf,
    pub voters: Vec<u64>,
    pub config: ReplicaConfig,
    /// Step at which a crashed node comes back.
    pub restart_at: u64,
    /// Checkpoints of the running instance already compared.
    pub checkpoints_seen: usize,
    pub group: u8,
    /// Proposals this node acknowledged.
    pub acks: usize,
    /// In the cluster's membership (a spare waits to be added).
    pub member: bool,
    /// Removed from the membership: down for good.
    pub removed: bool,
    /// Entries its log keeps behind a snapshot ([`JournalLog::retain`]).
    pub retain: u64,
}

pub struct Sim {
    pub rng: Rng,
    pub now: u64,
    pub nodes: Vec<Node>,
    pub in_flight: Vec<(u64, Message)>,
    pub workload: Vec<Command>,
    pub next_command: usize,
    /// What was applied at each index, first seen: (term, data hash).
    pub applied_at: BTreeMap<u64, (u64, u64)>,
    /// The state digest at each checkpoint index, first seen.
    pub digests: BTreeMap<u64, String>,
    /// Acknowledged entries: index, (term, data hash).
    pub acked: BTreeMap<u64, (u64, u64)>,
    /// Snapshots nodes installed from a leader.
    pub installs: u64,
    /// Membership changes applied (counted on every node that applied one).
    pub changes: u64,
    pub seed: u64,
}

impl Drop for Sim {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.replica = None;
            let _ = std::fs::remove_dir_all(&node.dir);
        }
    }
}

/// Opens (or reopens, after a crash) a node on its folder.
fn start(node: &Node) -> Replica {
    // Small segments, so logs roll over and cuts cross segment files.
    let log = JournalLog::open(
        &node.dir,
        &node.voters,
        engine(),
        Durability::Process,
        64 << 10,
    )
    .expect("open log")
    .retain(node.retain);
    Replica::open(&node.config, log).expect("open replica")
}

fn engine() -> EngineConfig {
    EngineConfig {
        holds: false,
        order_capacity: 1 << 10,
        ..EngineConfig::default()
    }
}

fn workload_for(seed: u64) -> Vec<Command> {
    let mut text = Vec::new();
    generate(
        Options {
            profile: Profile::Steady,
            mix: Mix::Full,
            ops: 400,
            seed,
            depth: None,
        },
        &mut text,
    )
    .expect("generate");
    let mut commands = vec![Command::AddInstrument {
        instrument: 0,
        spec: workload::instrument(),
    }];
    commands.extend(workload::parse(&String::from_utf8(text).expect("utf-8")).expect("parse"));
    commands
}

impl Sim {
    pub fn new(seed: u64, size: u64) -> Sim {
        Sim::with_spares(seed, size, 0)
    }

    /// A cluster of `size` voters, and `spares` nodes beyond them that
    /// run with no membership until a leader adds them.
    pub fn with_spares(seed: u64, size: u64, spares: u64) -> Sim {
        // Tests run side by side: every simulation gets folders of its own.
        static RUNS: AtomicU64 = AtomicU64::new(0);
        let run = RUNS.fetch_add(1, Ordering::Relaxed);
        let voters: Vec<u64> = (1..=size).collect();
        let nodes = (1..=size + spares)
            .map(|id| {
                let config = ReplicaConfig {
                    id,
                    election_tick: 10,
                    heartbeat_tick: 2,
                    fixed_election_timeout: true,
                    engine: engine(),
                    checkpoint_every: 16,
                    // Often enough that nodes back from a crash or a
                    // partition catch up from a snapshot.
                    snapshot_every: 50,
                };
                let dir = std::env::temp_dir()
                    .join(format!("tonnex-sim-{}-{run}-{id}", std::process::id()));
                let _ = std::fs::remove_dir_all(&dir);
                let mut node = Node {
                    replica: None,
                    dir,
                    voters: if id <= size {
                        voters.clone()
                    } else {
                        Vec::new()
                    },
                    config,
                    restart_at: 0,
                    checkpoints_seen: 0,
                    group: 0,
                    acks: 0,
                    member: id <= size,
                    removed: false,
                    // A third of the runs drop every entry a snapshot
                    // covers; the others keep a tail behind it (shorter
                    // and longer than the snapshot interval).
                    retain: [0, 20, 80][(seed % 3) as usize],
                };
                node.replica = Some(start(&node));
                node
            })
            .collect();
        Sim {
            rng: Rng::new(seed),
            now: 0,
            nodes,
            in_flight: Vec::new(),
            workload: workload_for(seed),
            next_command: 0,
            applied_at: BTreeMap::new(),
            digests: BTreeMap::new(),
            acked: BTreeMap::new(),
            installs: 0,
            changes: 0,
            seed,
        }
    }

    fn fail(&self, what: String) -> ! {
        panic!("seed {}: step {}: {what}", self.seed, self.now)
    }

    pub fn step(&mut self, faults: Faults) {
        self.now += 1;
        let n = self.nodes.len();
        // Hosts: crashes (the log is the disk and survives), restarts.
        for i in 0..n {
            if self.nodes[i].removed {
                continue;
            }
            if self.nodes[i].replica.is_none() && self.now >= self.nodes[i].restart_at {
                let replica = start(&self.nodes[i]);
                let node = &mut self.nodes[i];
                node.replica = Some(replica);
                node.checkpoints_seen = 0;
            } else if self.nodes[i].replica.is_some() && self.rng.chance(faults.crash) {
                let back = self.now + 20 + self.rng.below(150);
                let node = &mut self.nodes[i];
                node.replica = None;
                node.restart_at = back;
            }
        }
        // The network: a random split into two sides, or whole again.
        if self.rng.chance(faults.partition) {
            for i in 0..n {
                self.nodes[i].group = (self.rng.below(2)) as u8;
            }
        } else if self.rng.chance(faults.heal) {
            for node in &mut self.nodes {
                node.group = 0;
            }
        }
        // Clients: whoever believes it leads gets the next commands.
        if self.next_command < self.workload.len() && self.rng.chance(400) {
            let leaders: Vec<usize> = (0..n)
                .filter(|&i| {
                    self.nodes[i]
                        .replica
                        .as_ref()
                        .is_some_and(|r| r.role() == Role::Leader)
                })
                .collect();
            if !leaders.is_empty() {
                let pick = leaders[self.rng.below(leaders.len() as u64) as usize];
                let take =
                    (1 + self.rng.below(3) as usize).min(self.workload.len() - self.next_command);
                let mut commands =
                    self.workload[self.next_command..self.next_command + take].to_vec();
                let replica = self.nodes[pick].replica.as_mut().expect("live");
                if replica.propose(&mut commands).is_ok() {
                    self.next_command += take;
                }
            }
        }
        if self.rng.chance(faults.membership) {
            self.change_membership();
        }
        // Clocks: each node ticks most steps, not all, so timeouts drift.
        for i in 0..n {
            let tick = self.rng.chance(850);
            if let Some(replica) = self.nodes[i].replica.as_mut() {
                if tick {
                    replica.tick();
                }
            }
        }
        self.deliver();
        for i in 0..n {
            self.ready(i, faults);
        }
    }

    fn deliver(&mut self) {
        let mut due = Vec::new();
        let mut later = Vec::new();
        for (at, message) in self.in_flight.drain(..) {
            if at <= self.now {
                due.push(message);
            } else {
                later.push((at, message));
            }
        }
        self.in_flight = later;
        // Reordered: delivered in a random order.
        while !due.is_empty() {
            let message = due.swap_remove(self.rng.below(due.len() as u64) as usize);
            let (from, to) = (message.from as usize - 1, message.to as usize - 1);
            let snapshot = message.get_msg_type() == MessageType::MsgSnapshot;
            let delivered =
                self.nodes[from].group == self.nodes[to].group && self.nodes[to].replica.is_some();
            if delivered {
                let replica = self.nodes[to].replica.as_mut().expect("live");
                replica.step(message).expect("step");
            }
            // The transport tells the sender what became of a snapshot.
            if snapshot {
                if let Some(sender) = self.nodes[from].replica.as_mut() {
                    sender.report_snapshot(to as u64 + 1, delivered);
                }
            }
        }
    }

    fn ready(&mut self, i: usize, faults: Faults) {
        let seen = self.nodes[i].checkpoints_seen;
        let Some(replica) = self.nodes[i].replica.as_mut() else {
            return;
        };
        let mut applied = Vec::new();
        let installed = replica.installed_snapshots();
        replica.handle_ready(&mut applied).expect("ready");
        self.installs += replica.installed_snapshots() - installed;
        let messages = replica.take_messages();
        let checkpoints: Vec<(u64, String)> = replica.checkpoints()[seen..].to_vec();
        self.nodes[i].checkpoints_seen += checkpoints.len();
        for a in applied {
            self.check_applied(i, &a);
        }
        for (index, digest) in checkpoints {
            match self.digests.get(&index) {
                Some(seen) if *seen != digest => self.fail(format!(
                    "node {} state at index {index} differs from another node's",
                    i + 1
                )),
                Some(_) => {}
                None => {
                    self.digests.insert(index, digest);
                }
            }
        }
        for message in messages {
            if self.rng.chance(faults.drop) {
                if message.get_msg_type() == MessageType::MsgSnapshot {
                    let to = message.to;
                    if let Some(sender) = self.nodes[i].replica.as_mut() {
                        sender.report_snapshot(to, false);
                    }
                }
                continue;
            }
            let copies = if self.rng.chance(faults.duplicate) {
                2
            } else {
                1
            };
            for _ in 0..copies {
                let at = self.now + 1 + self.rng.below(faults.max_delay);
                self.in_flight.push((at, message.clone()));
            }
        }
    }

    fn check_applied(&mut self, i: usize, a: &Applied) {
        let entry = (a.term, a.data_hash);
        match self.applied_at.get(&a.index) {
            Some(seen) if *seen != entry => self.fail(format!(
                "node {} applied {entry:?} at index {}, another node applied {seen:?}",
                i + 1,
                a.index
            )),
            Some(_) => {}
            None => {
                self.applied_at.insert(a.index, entry);
            }
        }
        if a.commands == 0 {
            self.changes += 1;
        }
        if a.tag.is_some() {
            self.nodes[i].acks += 1;
            self.acked.insert(a.index, entry);
        }
    }

    /// Stops the faults and runs until every node applied the same last
    /// index; then checks logs and states.
    /// A leader adds a spare (a live node outside the membership) or,
    /// with none, removes a voter other than itself while more than three
    /// remain. Refusals (a change pending) are simply retried later.
    fn change_membership(&mut self) {
        let Some(l) = (0..self.nodes.len()).find(|&i| {
            self.nodes[i]
                .replica
                .as_ref()
                .is_some_and(|r| r.role() == Role::Leader)
        }) else {
            return;
        };
        let voters = self.nodes[l].replica.as_ref().expect("live").voters();
        let spare = (1..=self.nodes.len() as u64).find(|id| !voters.contains(id));
        let pick = self.rng.below(voters.len() as u64) as usize;
        let replica = self.nodes[l].replica.as_mut().expect("live");
        if let Some(spare) = spare {
            let _ = replica.propose_add(spare);
        } else if voters.len() > 3 && voters[pick] != replica.id() {
            let _ = replica.propose_remove(voters[pick]);
        }
    }

    /// The membership now: the voters of a leader that sees a quorum of
    /// them live (the nodes flagged members until there is one).
    fn members(&self) -> Vec<usize> {
        for node in &self.nodes {
            if let Some(r) = node.replica.as_ref().filter(|r| r.role() == Role::Leader) {
                return r.voters().iter().map(|&id| id as usize - 1).collect();
            }
        }
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].member)
            .collect()
    }

    pub fn settle(&mut self) {
        for node in &mut self.nodes {
            node.restart_at = 0;
            node.group = 0;
        }
        let mut steady_for = 0;
        for _ in 0..3000 {
            self.step(CALM);
            let ids = self.members();
            let members = || ids.iter().map(|&i| &self.nodes[i]);
            let applied: Vec<u64> = members()
                .map(|n| n.replica.as_ref().map_or(0, Replica::applied_index))
                .collect();
            let has_leader =
                members().any(|n| n.replica.as_ref().is_some_and(|r| r.role() == Role::Leader));
            let commits_done = members().all(|n| {
                n.replica
                    .as_ref()
                    .is_some_and(|r| r.applied_index() == r.commit_index())
            });
            if has_leader && commits_done && applied.iter().all(|&x| x == applied[0]) {
                steady_for += 1;
                if steady_for > 30 {
                    return self.check_end();
                }
            } else {
                steady_for = 0;
            }
        }
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("{:?}", n.replica))
            .collect();
        self.fail(format!(
            "the cluster did not settle in 3000 calm steps: {nodes:?}"
        ));
    }

    fn check_end(&self) {
        let replicas: Vec<&Replica> = self
            .members()
            .into_iter()
            .map(|i| self.nodes[i].replica.as_ref().expect("live"))
            .collect();
        let logs: Vec<_> = replicas
            .iter()
            .map(|r| r.log_entries(1).expect("log"))
            .collect();
        let commit = replicas[0].commit_index();
        // Logs start after each node's snapshot: compare where both hold entries.
        for (k, log) in logs.iter().enumerate() {
            for entry in log.iter().take_while(|e| e.index <= commit) {
                if let Some(other) = logs[0].iter().find(|e| e.index == entry.index) {
                    if other != entry {
                        self.fail(format!(
                            "node {}'s committed entry {} differs from node 1's",
                            k + 1,
                            entry.index
                        ));
                    }
                }
            }
        }
        for (&index, &(term, _)) in &self.acked {
            if index > commit {
                self.fail(format!(
                    "acknowledged index {index} is past the commit index"
                ));
            }
            for (k, (log, replica)) in logs.iter().zip(&replicas).enumerate() {
                let snapshot = replica.log().snapshot_meta().index;
                if index <= snapshot {
                    continue; // in the snapshot: applied everywhere as checked live
                }
                match log.iter().find(|e| e.index == index) {
                    Some(entry) if entry.term == term => {}
                    _ => self.fail(format!(
                        "acknowledged index {index} (term {term}) is gone from node {}",
                        k + 1
                    )),
                }
            }
        }
        let digest = replicas[0].state().digest();
        for (k, r) in replicas.iter().enumerate() {
            if r.state().digest() != digest {
                self.fail(format!("node {} ends in another state than node 1", k + 1));
            }
        }
    }
}

/// One hostile run of `size` voters and `spares` nodes a leader may add
/// (then voters it may remove); returns (entries acknowledged, snapshots
/// installed, membership changes applied).
pub fn run(seed: u64, size: u64, spares: u64) -> (usize, u64, u64) {
    let mut sim = Sim::with_spares(seed, size, spares);
    let faults = Faults {
        membership: if spares > 0 { 6 } else { 0 },
        ..HOSTILE
    };
    for _ in 0..800 {
        sim.step(faults);
    }
    sim.settle();
    (sim.acked.len(), sim.installs, sim.changes)
}

/// Steps until node `i` (0-based) alone leads, with nothing in the way.
pub fn lead(sim: &mut Sim, faults: Faults) -> usize {
    loop {
        sim.step(faults);
        let leaders: Vec<usize> = (0..sim.nodes.len())
            .filter(|&i| {
                sim.nodes[i]
                    .replica
                    .as_ref()
                    .is_some_and(|r| r.role() == Role::Leader)
            })
            .collect();
        if let [one] = leaders[..] {
            if sim.nodes[one].acks > 0 {
                return one;
            }
        }
        assert!(
            sim.now < 5000,
            "seed {}: no leader acknowledged anything",
            sim.seed
        );
    }
}
