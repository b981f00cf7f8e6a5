//! The engine thread's promise: no output leaves before the journal holds
//! its command as durably as the policy asks.

use tonnex_engine::journal::{recover, Durability, Journal, JournalConfig, RecoverOptions};
use tonnex_engine::{Asset, Command, Compliance, EngineConfig, InstrumentSpec, NewOrder};
use tonnex_protocol::{Cash, OrderKind, Price, Qty, Side, Symbol};

use super::*;

fn core(name: &str, durability: Durability) -> (Core, PathBuf) {
    core_snapshotting(name, durability, u64::MAX)
}

fn core_snapshotting(name: &str, durability: Durability, every: u64) -> (Core, PathBuf) {
    let dir = std::env::temp_dir().join(format!("tonnex-core-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = EngineConfig {
        holds: true,
        ..EngineConfig::default()
    };
    let recovered = recover(
        &dir,
        RecoverOptions {
            use_snapshot: false,
            track_orders: false,
            config,
        },
    )
    .unwrap();
    let fills = FillLog::open(&dir, 0, 0).unwrap();
    let journal = Journal::open(
        JournalConfig {
            durability,
            segment_bytes: 1 << 20,
            ..JournalConfig::new(&dir)
        },
        config,
        &recovered,
    )
    .unwrap();
    let core = Core::new(recovered.state, journal, fills, dir.clone(), every);
    (core, dir)
}

fn deposit(corr: u64) -> Input {
    Input::Command {
        corr,
        command: Command::Deposit {
            account: 7,
            asset: Asset::Cash(Cash(1_000_000)),
        },
        annotation: None,
    }
}

/// The correlation ids of the `Begin`s emitted.
fn begun(outputs: &[Output]) -> Vec<u64> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Begin { corr, .. } => Some(*corr),
            _ => None,
        })
        .collect()
}

#[test]
fn outputs_wait_for_the_group_commit_that_covers_them() {
    let (mut core, dir) = core(
        "batch",
        Durability::Batch {
            records: 3,
            micros: 60_000_000,
        },
    );
    let mut out = Vec::new();
    core.process(&mut vec![deposit(1), deposit(2)], &mut |o| out.push(o))
        .unwrap();
    assert!(out.is_empty() && core.awaiting(), "nothing before a sync");
    core.idle(&mut |o| out.push(o)).unwrap();
    assert!(out.is_empty(), "the batch's delay has not passed");
    // The third record completes the group: all three go out, in order.
    core.process(&mut vec![deposit(3)], &mut |o| out.push(o))
        .unwrap();
    assert_eq!(begun(&out), [1, 2, 3]);
    assert!(!core.awaiting());
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn sync_acknowledges_each_batch_once_synced_and_process_at_once() {
    for (name, durability) in [
        ("sync", crate::config::VenueDurability::Sync.journal()),
        ("process", Durability::Process),
    ] {
        let (mut core, dir) = core(name, durability);
        let mut out = Vec::new();
        core.process(&mut vec![deposit(5), deposit(6)], &mut |o| out.push(o))
            .unwrap();
        assert_eq!(begun(&out), [5, 6], "{name}");
        assert!(!core.awaiting());
        std::fs::remove_dir_all(dir).ok();
    }
}

/// A cluster node's core on a scratch folder (its fill log only).
fn replicated(name: &str) -> (Core, PathBuf) {
    let dir = std::env::temp_dir().join(format!("tonnex-core-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let state = State::new(EngineConfig::default());
    let core = Core::replicated(state, FillLog::open(&dir, 0, 0).unwrap(), dir.clone(), 10);
    (core, dir)
}

#[test]
fn a_followers_core_keeps_the_leaders_reports_and_a_new_leader_numbers_on() {
    use tonnex_cluster::StateMachine;
    use tonnex_protocol::wire::VenueMessage;

    let (mut leader, leader_dir) = replicated("leader");
    let (mut follower, follower_dir) = replicated("follower");
    // The leader's gateway numbers two messages for account 7 in session 31.
    let mut sent = leader.take_reports(31).unwrap();
    for n in 0..2 {
        sent.push(
            7,
            VenueMessage::SessionError {
                text: format!("answer {n}"),
            },
        );
    }
    let mut out = Vec::new();
    let mut round = vec![deposit(1)];
    round.extend(sent.take_round().into_iter().map(|records| Input::Command {
        corr: 0,
        command: Command::Venue(Box::new(tonnex_engine::VenueCommand::Reports {
            session_id: 31,
            records,
        })),
        annotation: None,
    }));
    leader.process(&mut round, &mut |o| out.push(o)).unwrap();
    assert_eq!(
        begun(&out),
        [1, 0],
        "outputs at once: the gateway holds them"
    );
    let entry = leader.take_proposal();
    assert_eq!(entry.len(), 2);
    follower.apply(1, &entry);
    assert_eq!(follower.digest(), leader.state().digest());
    let taken = follower.take_reports(99).unwrap();
    assert_eq!(taken.session_id(), 31);
    assert_eq!(taken.next_seq(7), 3);
    let (mut theirs, mut ours) = (Vec::new(), Vec::new());
    sent.stream(7).unwrap().replay_into(1, &mut theirs);
    taken.stream(7).unwrap().replay_into(1, &mut ours);
    assert_eq!(theirs, ours, "the same frames, numbers and all");
    assert!(follower.take_reports(99).is_none(), "taken once");
    std::fs::remove_dir_all(leader_dir).ok();
    std::fs::remove_dir_all(follower_dir).ok();
}

#[test]
fn snapshots_are_spaced_by_the_state_they_copy_once_it_outgrows_the_venues_gap() {
    // Every 10 commands, or 4 per resting order once that is more.
    let (mut core, dir) = core_snapshotting("snapshot-gap", Durability::Process, 10);
    let mut commands = vec![
        Command::AddInstrument {
            instrument: 0,
            spec: InstrumentSpec {
                symbol: Symbol::new("NBR-2024.CCP").unwrap(),
                tick_micros: 10_000,
                min_price: Price(1),
                max_price: Price(10_000),
            },
        },
        Command::Deposit {
            account: 7,
            asset: Asset::Credits {
                instrument: 0,
                qty: Qty(1_000),
            },
        },
    ];
    // Forty offers that rest (seq 3-42), then deposits.
    for n in 0..40 {
        commands.push(Command::New(NewOrder {
            id: 0,
            client_order_id: n + 1,
            account: 7,
            instrument: 0,
            side: Side::Sell,
            kind: OrderKind::Limit,
            price: Price(2_000 + n as i64),
            qty: Qty(1),
            cash_budget: Cash(0),
            compliance: Compliance::NONE,
            ts_ns: 0,
        }));
    }
    while commands.len() < 210 {
        commands.push(Command::Deposit {
            account: 7,
            asset: Asset::Cash(Cash(1)),
        });
    }
    for (corr, command) in commands.into_iter().enumerate() {
        let input = Input::Command {
            corr: corr as u64 + 1,
            command,
            annotation: None,
        };
        core.process(&mut vec![input], &mut |_| {}).unwrap();
        // Each snapshot written before the next command, so none is
        // skipped for one still being written.
        core.close().unwrap();
    }
    let mut taken = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            let seq = name.strip_prefix("snapshot-")?.strip_suffix(".snap")?;
            seq.parse::<u64>().ok()
        })
        .collect::<Vec<_>>();
    taken.sort_unstable();
    // At 10: 8 resting, the gap stays 32 (> 10); at 42: 40 resting, 160.
    assert_eq!(taken, vec![10, 42, 202]);
    std::fs::remove_dir_all(dir).ok();
}
