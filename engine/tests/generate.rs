//! `tonnex-replay generate`: deterministic workloads whose every cancel and
//! replace names a live order, the basic mix without self-trades; and, when
//! `../shared/workloads/gen.py` is beside the repository, the same fills
//! from gen.py's independent reference book as from the engine.

use std::path::Path;
use std::process::Command as Process;

use tonnex_engine::generate::{generate, Mix, Options, Profile};
use tonnex_engine::{dump, workload, Command, EngineConfig, Event, State};
use tonnex_protocol::{CancelReason, RejectReason};

fn workload_of(profile: Profile, mix: Mix, ops: usize, seed: u64) -> String {
    let mut out = Vec::new();
    let written = generate(
        Options {
            profile,
            mix,
            ops,
            seed,
            depth: None,
        },
        &mut out,
    )
    .unwrap();
    assert_eq!(written, ops);
    String::from_utf8(out).unwrap()
}

/// Replays `text`, returning its fills (dump format) and every event.
fn replay(text: &str) -> (String, Vec<Event>) {
    let commands = workload::parse(text).unwrap();
    let mut state = State::new(EngineConfig {
        holds: false,
        order_capacity: 1 << 12,
        ..EngineConfig::default()
    });
    let mut events = Vec::new();
    state.apply(
        1,
        &Command::AddInstrument {
            instrument: 0,
            spec: workload::instrument(),
        },
        &mut events,
    );
    for (i, command) in commands.iter().enumerate() {
        state.apply(i as u64 + 2, command, &mut events);
    }
    state.check_invariants();
    let mut fills = Vec::new();
    for event in &events {
        dump::write_fill(&mut fills, event).unwrap();
    }
    (String::from_utf8(fills).unwrap(), events)
}

#[test]
fn every_cancel_and_replace_names_a_live_order_and_the_basic_mix_never_self_trades() {
    for profile in [Profile::Steady, Profile::Deep] {
        for mix in [Mix::Basic, Mix::Full] {
            let text = workload_of(profile, mix, 30_000, 11);
            let (fills, events) = replay(&text);
            assert!(!fills.is_empty(), "{profile:?} {mix:?} trades");
            assert!(
                !events.iter().any(|e| matches!(
                    e,
                    Event::Rejected {
                        reason: RejectReason::UnknownOrderId,
                        ..
                    }
                )),
                "{profile:?} {mix:?}: a cancel or replace of an order that is not live"
            );
            if mix == Mix::Basic {
                assert!(text
                    .lines()
                    .all(|l| l.starts_with("C ") || l.contains(" L ") || l.contains(" M ")));
                assert!(!events.iter().any(|e| matches!(
                    e,
                    Event::Cancelled {
                        reason: CancelReason::SelfTrade,
                        ..
                    }
                )));
            }
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_bytes_and_another_seed_other_ones() {
    let a = workload_of(Profile::Steady, Mix::Full, 5_000, 3);
    assert_eq!(a, workload_of(Profile::Steady, Mix::Full, 5_000, 3));
    assert_ne!(a, workload_of(Profile::Steady, Mix::Full, 5_000, 4));
}

#[test]
fn gen_py_reference_book_gives_the_same_fills_when_shared_is_beside_the_repository() {
    let gen = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/workloads/gen.py");
    if !gen.exists() {
        eprintln!("{} not found: the oracle check is skipped", gen.display());
        return;
    }
    for profile in [Profile::Steady, Profile::Deep] {
        let text = workload_of(profile, Mix::Basic, 40_000, 5);
        let path =
            std::env::temp_dir().join(format!("tonnex-gen-{profile:?}-{}.txt", std::process::id()));
        std::fs::write(&path, &text).unwrap();
        let oracle = Process::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/gen_oracle.py"))
            .arg(&gen)
            .arg(&path)
            .output()
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(
            oracle.status.success(),
            "{}",
            String::from_utf8_lossy(&oracle.stderr)
        );
        let (fills, _) = replay(&text);
        assert_eq!(
            String::from_utf8(oracle.stdout).unwrap(),
            fills,
            "{profile:?}: gen.py's book and the engine disagree"
        );
    }
}
