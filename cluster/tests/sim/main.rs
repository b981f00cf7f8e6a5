//! A deterministic simulation of a cluster: every node in this process, a
//! simulated network and clock that drop, delay, duplicate and reorder
//! messages, partition the nodes and crash and restart them, each run
//! reproducible from its seed. Checked on every run:
//!
//! - no two nodes apply different entries at one index (safety);
//! - an acknowledged entry (applied by its proposer) is never lost: at the
//!   end every node's log holds it at its index;
//! - nodes that applied the same index hold the same engine state digest;
//! - once the faults stop, every node catches up to the same state.
//!
//! Each node's log is a real `JournalLog` in a folder of its own (journal
//! segments, index and state files), so a crash and restart reopen it from
//! disk exactly as a venue restarting after `kill -9` would.
//!
//! `TONNEX_SIM_SEEDS` sets how many seeds the main test runs (200 by
//! default, in the workspace's debug test run; `scripts/test.sh` then runs
//! 2,000 in a release build); `TONNEX_SIM_SEED` runs one, to reproduce a
//! failure.

mod harness;

use tonnex_cluster::{Replica, Role};

use self::harness::{lead, run, Sim, STILL};

#[test]
fn no_two_nodes_apply_different_entries_and_nothing_acknowledged_is_lost() {
    if let Some(seed) = std::env::var("TONNEX_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        run(seed, 3, 0);
        run(seed, 5, 0);
        run(seed, 3, 2);
        return;
    }
    let seeds: u64 = std::env::var("TONNEX_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let (mut acked, mut installs, mut changes) = (0, 0, 0);
    for seed in 0..seeds {
        // Three voters; five; three with two spares that leaders add and
        // then voters they remove, all while the faults go on.
        let (a, i, c) = match seed % 4 {
            3 => run(seed, 5, 0),
            1 => run(seed, 3, 2),
            _ => run(seed, 3, 0),
        };
        acked += a;
        installs += i;
        changes += c;
    }
    // The faults must not stop the cluster from doing anything at all, and
    // nodes that fell behind must have caught up from snapshots.
    assert!(
        acked as u64 > seeds * 5,
        "only {acked} entries acknowledged over {seeds} seeds"
    );
    assert!(
        installs > seeds / 20,
        "only {installs} snapshots installed over {seeds} seeds"
    );
    assert!(
        changes > seeds / 4,
        "only {changes} membership changes applied over {seeds} seeds"
    );
    eprintln!(
        "{seeds} seeds: {acked} entries acknowledged, {installs} snapshots installed, \
         {changes} membership changes applied"
    );
}

#[test]
fn a_leader_cut_off_in_a_minority_acknowledges_nothing_and_the_majority_goes_on() {
    let mut taken_alone = 0;
    for seed in 0..20 {
        let mut sim = Sim::new(seed, 3);
        let leader = lead(&mut sim, STILL);
        // The leader alone on one side: it may still take proposals until it
        // notices (check quorum), but can commit none of them.
        for (i, node) in sim.nodes.iter_mut().enumerate() {
            node.group = u8::from(i == leader);
        }
        let (cut_acks, others_acks) = (
            sim.nodes[leader].acks,
            sim.nodes.iter().map(|n| n.acks).sum::<usize>(),
        );
        let cut = sim.nodes[leader].replica.as_ref().expect("live");
        let (cut_term, cut_last) = (cut.term(), cut.log().last());
        let mut cut_proposals = 0;
        for _ in 0..400 {
            let before = sim.next_command;
            let was_leader = sim.nodes[leader]
                .replica
                .as_ref()
                .is_some_and(|r| r.role() == Role::Leader);
            sim.step(STILL);
            if was_leader && sim.next_command > before {
                cut_proposals += 1;
            }
        }
        assert_eq!(
            sim.nodes[leader].acks, cut_acks,
            "seed {seed}: the cut-off leader acknowledged"
        );
        assert_ne!(
            sim.nodes[leader].replica.as_ref().map(Replica::role),
            Some(Role::Leader),
            "seed {seed}: the cut-off leader never stepped down"
        );
        let total: usize = sim.nodes.iter().map(|n| n.acks).sum();
        assert!(
            total > others_acks,
            "seed {seed}: the majority acknowledged nothing"
        );
        // Whatever the cut-off leader took alone is replaced once healed.
        sim.settle();
        let log = sim.nodes[0]
            .replica
            .as_ref()
            .expect("live")
            .log_entries(cut_last + 1)
            .expect("log");
        assert!(
            log.iter().all(|e| e.term != cut_term),
            "seed {seed}: {cut_proposals} proposals taken alone in term {cut_term}, some survived"
        );
        taken_alone += cut_proposals;
    }
    assert!(
        taken_alone > 0,
        "no cut-off leader took a proposal: nothing was tested"
    );
}

#[test]
fn leadership_moves_where_the_operator_says_and_nothing_is_lost() {
    for seed in 0..10 {
        let mut sim = Sim::new(seed, 3);
        let from = lead(&mut sim, STILL);
        let to = (from + 1 + seed as usize % 2) % 3;
        // Followers catch up first; then the hand-over.
        for _ in 0..30 {
            sim.step(STILL);
        }
        let status = sim.nodes[from].replica.as_ref().expect("live").status();
        assert_eq!(status.role, Role::Leader);
        assert_eq!(status.peers.len(), 3, "{status:?}");
        assert!(status.peers.iter().all(|p| p.lag <= 3), "{status:?}");
        sim.nodes[from]
            .replica
            .as_mut()
            .expect("live")
            .transfer_leader(to as u64 + 1);
        let asked = sim.now;
        while sim.nodes[to].replica.as_ref().map(Replica::role) != Some(Role::Leader) {
            sim.step(STILL);
            assert!(
                sim.now < asked + 100,
                "seed {seed}: node {} never took over",
                to + 1
            );
        }
        let before = sim.nodes[to].acks;
        for _ in 0..200 {
            sim.step(STILL);
        }
        assert!(
            sim.nodes[to].acks > before,
            "seed {seed}: the new leader acknowledged nothing"
        );
        let follower = sim.nodes[from].replica.as_ref().expect("live").status();
        assert_eq!(follower.leader, Some(to as u64 + 1));
        assert!(follower.peers.is_empty(), "only a leader reports its peers");
        sim.settle();
    }
}

#[test]
fn a_node_added_catches_up_and_takes_over_from_the_leader_it_then_removes() {
    for seed in 0..8 {
        let mut sim = Sim::with_spares(seed, 3, 1);
        lead(&mut sim, STILL);
        // Long enough for snapshots: node 4 catches up from one.
        for _ in 0..300 {
            sim.step(STILL);
        }
        let leader_of = |sim: &Sim| {
            (0..sim.nodes.len()).find(|&i| {
                sim.nodes[i]
                    .replica
                    .as_ref()
                    .is_some_and(|r| r.role() == Role::Leader)
            })
        };
        let start = sim.now;
        loop {
            if let Some(l) = leader_of(&sim) {
                if sim.nodes[l]
                    .replica
                    .as_mut()
                    .expect("live")
                    .propose_add(4)
                    .is_ok()
                {
                    break;
                }
            }
            sim.step(STILL);
            assert!(
                sim.now < start + 200,
                "seed {seed}: no leader took the change"
            );
        }
        sim.nodes[3].member = true;
        loop {
            sim.step(STILL);
            let l = leader_of(&sim);
            let caught_up = l.is_some_and(|l| {
                let leader = sim.nodes[l].replica.as_ref().expect("live");
                let new = sim.nodes[3].replica.as_ref().expect("live");
                leader.voters() == [1, 2, 3, 4]
                    && new.voters() == [1, 2, 3, 4]
                    && new.applied_index() == leader.commit_index()
            });
            if caught_up {
                break;
            }
            assert!(sim.now < start + 800, "seed {seed}: node 4 never caught up");
        }
        // Retire the leader: it may not remove itself, so it hands over
        // to the new node, which then removes it.
        let old = leader_of(&sim).expect("a leader");
        let refusal = sim.nodes[old]
            .replica
            .as_mut()
            .expect("live")
            .propose_remove(old as u64 + 1)
            .unwrap_err()
            .to_string();
        assert!(refusal.contains("transfer leadership first"), "{refusal}");
        sim.nodes[old]
            .replica
            .as_mut()
            .expect("live")
            .transfer_leader(4);
        let start = sim.now;
        while leader_of(&sim) != Some(3) {
            sim.step(STILL);
            assert!(sim.now < start + 200, "seed {seed}: node 4 never took over");
        }
        while sim.nodes[3]
            .replica
            .as_mut()
            .expect("live")
            .propose_remove(old as u64 + 1)
            .is_err()
        {
            sim.step(STILL);
            assert!(
                sim.now < start + 400,
                "seed {seed}: node 4 never took the removal"
            );
        }
        loop {
            sim.step(STILL);
            let others_agree = (0..4).filter(|&i| i != old).all(|i| {
                let voters = sim.nodes[i].replica.as_ref().expect("live").voters();
                !voters.contains(&(old as u64 + 1)) && voters.len() == 3
            });
            if others_agree {
                break;
            }
            assert!(
                sim.now < start + 800,
                "seed {seed}: the removal never applied"
            );
        }
        sim.nodes[old].member = false;
        sim.nodes[old].removed = true;
        sim.nodes[old].replica = None;
        let acks: usize = sim.nodes.iter().map(|n| n.acks).sum();
        for _ in 0..300 {
            sim.step(STILL);
        }
        let new_leader = leader_of(&sim).expect("a leader among the three");
        assert_ne!(new_leader, old);
        assert!(
            sim.nodes.iter().map(|n| n.acks).sum::<usize>() > acks,
            "seed {seed}: nothing acknowledged after the removal"
        );
        sim.settle();
    }
}
