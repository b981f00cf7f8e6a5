//! The journal and snapshots: what is journaled and recovered is exactly
//! the state the engine had; a cut at any byte of the last records loses
//! only what was never whole; damage in the middle is reported with its
//! file and offset, never skipped; and `tonnex-replay --journal` keeps the
//! CONTRACTS.md interface.

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use tonnex_engine::journal::{
    self, AppendError, Durability, Journal, JournalConfig, RecoverError, RecoverOptions, Recovered,
};
use tonnex_engine::{
    snapshot, Asset, Command, Compliance, EngineConfig, InstrumentSpec, NewOrder, State,
    StateImage, OPERATOR,
};
use tonnex_protocol::{Cash, OrderKind, Pathway, Price, Qty, Side, Symbol};

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("tonnex-journal-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn engine_config() -> EngineConfig {
    EngineConfig {
        holds: true,
        order_capacity: 64,
        window_ticks: 256,
    }
}

fn options(use_snapshot: bool) -> RecoverOptions {
    RecoverOptions {
        use_snapshot,
        track_orders: true,
        config: engine_config(),
    }
}

fn recover(dir: &Path, use_snapshot: bool) -> Result<Recovered, RecoverError> {
    journal::recover(dir, options(use_snapshot))
}

/// A deterministic stream of every kind of command: two instruments,
/// deposits, all order kinds (with compliance fields), cancels and replaces
/// of live and dead ids, mass cancels, halts.
fn commands(count: usize, seed: u64) -> Vec<Command> {
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let spec = |symbol: &str| InstrumentSpec {
        symbol: Symbol::new(symbol).unwrap(),
        tick_micros: 10_000,
        min_price: Price(1),
        max_price: Price(10_000),
    };
    let mut out = vec![
        Command::AddInstrument {
            instrument: 0,
            spec: spec("NBR-2024.CCP"),
        },
        Command::AddInstrument {
            instrument: 1,
            spec: spec("DAC-2025.REM"),
        },
    ];
    for account in 1..=4 {
        out.push(Command::Deposit {
            account,
            asset: Asset::Cash(Cash(1_000_000_000_000)),
        });
        for instrument in 0..2 {
            out.push(Command::Deposit {
                account,
                asset: Asset::Credits {
                    instrument,
                    qty: Qty(1_000_000),
                },
            });
        }
    }
    let mut id = 0;
    while out.len() < count {
        let r = next() % 100;
        let instrument = (next() % 2) as u32;
        if r < 55 || id == 0 {
            id += 1;
            let kind = [
                OrderKind::Limit,
                OrderKind::Limit,
                OrderKind::Market,
                OrderKind::Ioc,
                OrderKind::Fok,
                OrderKind::PostOnly,
            ][(next() % 6) as usize];
            let side = if next() % 2 == 0 {
                Side::Buy
            } else {
                Side::Sell
            };
            let attested = next() % 3 == 0;
            out.push(Command::New(NewOrder {
                id,
                // Half the orders a client's (the pool slot keeps the id,
                // and snapshots with it), half a workload's.
                client_order_id: if id % 2 == 0 { id } else { 0 },
                account: 1 + next() % 4,
                instrument,
                side,
                kind,
                price: Price(if kind == OrderKind::Market {
                    0
                } else {
                    2_000 + (next() % 60) as i64
                }),
                qty: Qty(1 + next() % 30),
                cash_budget: Cash(5_000_000_000),
                compliance: if side == Side::Buy && next() % 4 == 0 {
                    Compliance {
                        pathway: Pathway::Recognised,
                        floor_ticks: 2_020,
                        attestation_id: u64::from(attested) * 7,
                        skip_below_floor: next() % 2 == 0,
                    }
                } else {
                    Compliance::NONE
                },
                ts_ns: 1_700_000_000_000_000_000 + out.len() as u64,
            }));
        } else if r < 80 {
            out.push(Command::Cancel {
                order_id: 1 + next() % id,
                account: OPERATOR,
            });
        } else if r < 95 {
            out.push(Command::Replace {
                order_id: 1 + next() % id,
                account: OPERATOR,
                price: Price(2_000 + (next() % 60) as i64),
                qty: Qty(1 + next() % 30),
            });
        } else if r < 97 {
            out.push(Command::MassCancel {
                account: 1 + next() % 4,
                instrument: Some(instrument),
            });
        } else if r < 98 {
            out.push(Command::Halt {
                instrument,
                cancel_resting: next() % 2 == 0,
            });
        } else {
            out.push(Command::Resume { instrument });
        }
    }
    out
}

/// A journal folder written live; returns the images after every sequence
/// number (index = seq) and the final live state.
fn write_journal(
    dir: &Path,
    commands: &[Command],
    segment_bytes: u64,
    snapshot_at: &[u64],
) -> (Vec<StateImage>, State) {
    let empty = recover(dir, true).unwrap();
    let config = JournalConfig {
        dir: dir.to_path_buf(),
        segment_bytes,
        durability: Durability::Process,
    };
    let mut journal = Journal::open(config, engine_config(), &empty).unwrap();
    let mut state = State::new(engine_config());
    let mut images = vec![state.image()];
    let mut events = Vec::new();
    for (seq, command) in (1..).zip(commands) {
        journal.append(seq, command).unwrap();
        events.clear();
        state.apply(seq, command, &mut events);
        images.push(state.image());
        if snapshot_at.contains(&seq) {
            snapshot::write(dir, &state.image()).unwrap();
        }
    }
    (images, state)
}

#[test]
fn recovery_rebuilds_exactly_the_live_state_with_and_without_snapshots() {
    let dir = scratch("round-trip");
    let flow = commands(3_000, 5);
    // Small segments: the journal rolls over many times.
    let (_, live) = write_journal(&dir, &flow, 16 << 10, &[1_000, 2_000]);
    let segments = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".seg")
        })
        .count();
    assert!(segments > 5, "{segments} segments");
    let image = live.image();
    assert!(
        image.orders.iter().any(|o| o.client_order_id != 0)
            && image.orders.iter().any(|o| o.client_order_id == 0),
        "orders rest with and without client ids"
    );
    assert_eq!(State::from_image(&image).unwrap().image(), image);
    // What a background snapshot copies builds the same image.
    assert_eq!(live.snapshot_copy().image(), image);
    for use_snapshot in [true, false] {
        let recovered = recover(&dir, use_snapshot).unwrap();
        assert_eq!(
            recovered.state.image(),
            live.image(),
            "use_snapshot={use_snapshot}"
        );
        assert_eq!(recovered.last_seq, 3_000);
        recovered.state.check_invariants();
        assert!(recovered.torn.is_none() && recovered.warnings.is_empty());
        if use_snapshot {
            assert_eq!(recovered.snapshot_seq, Some(2_000));
            assert_eq!(recovered.records, 1_000);
        } else {
            assert_eq!(recovered.records, 3_000);
        }
    }
    // The journal goes on after a restart, and recovers again.
    let recovered = recover(&dir, true).unwrap();
    let config = JournalConfig {
        dir: dir.clone(),
        segment_bytes: 16 << 10,
        durability: Durability::Batch {
            records: 10,
            micros: 1_000,
        },
    };
    let mut journal = Journal::open(config, engine_config(), &recovered).unwrap();
    let mut state = recovered.state;
    let more = commands(3_500, 5);
    let mut events = Vec::new();
    for (seq, command) in (3_001..).zip(&more[3_000..]) {
        journal.append(seq, command).unwrap();
        state.apply(seq, command, &mut events);
    }
    assert!(
        journal.durable_seq() >= 3_490,
        "batch policy syncs every 10 records"
    );
    journal.sync().unwrap();
    assert_eq!(journal.durable_seq(), 3_500);
    assert_eq!(recover(&dir, true).unwrap().state.image(), state.image());
    assert_eq!(recover(&dir, false).unwrap().state.image(), state.image());
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn batch_durability_syncs_by_count_or_by_age() {
    let dir = scratch("batch");
    let empty = recover(&dir, true).unwrap();
    let config = JournalConfig {
        dir: dir.clone(),
        segment_bytes: 1 << 20,
        durability: Durability::Batch {
            records: 4,
            micros: 50,
        },
    };
    let mut journal = Journal::open(config, engine_config(), &empty).unwrap();
    let flow = commands(20, 4);
    for seq in 1..=4 {
        journal.append(seq, &flow[seq as usize - 1]).unwrap();
    }
    assert_eq!(
        journal.durable_seq(),
        4,
        "the fourth record completes a group"
    );
    journal.append(5, &flow[4]).unwrap();
    journal.append(6, &flow[5]).unwrap();
    assert_eq!(journal.durable_seq(), 4, "a partial group waits");
    journal.tick(1_000_000).unwrap(); // the oldest pending record is first seen waiting now
    journal.tick(1_040_000).unwrap();
    assert_eq!(journal.durable_seq(), 4, "40 us < 50 us");
    journal.tick(1_050_000).unwrap();
    assert_eq!(journal.durable_seq(), 6, "50 us: the group commits");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn the_journal_refuses_a_sequence_gap() {
    let dir = scratch("gap");
    let empty = recover(&dir, true).unwrap();
    let mut journal = Journal::open(JournalConfig::new(&dir), engine_config(), &empty).unwrap();
    let flow = commands(20, 3);
    journal.append(1, &flow[0]).unwrap();
    match journal.append(3, &flow[1]) {
        Err(AppendError::Gap {
            expected: 2,
            got: 3,
        }) => {}
        other => panic!("expected a gap error, got {other:?}"),
    }
    journal.append(2, &flow[1]).unwrap();
    std::fs::remove_dir_all(dir).ok();
}

/// Offsets of every record in the newest segment, with its sequence number
/// and the end of its meaningful bytes (header and payload, not padding).
fn records_of(dir: &Path) -> Vec<(u64, usize, usize, PathBuf)> {
    let mut out = Vec::new();
    journal::dump(dir, |line| {
        out.push((line.seq, line.offset as usize, line.path.clone()))
    })
    .unwrap();
    let newest = out.last().unwrap().2.clone();
    let bytes = std::fs::read(&newest).unwrap();
    out.into_iter()
        .filter(|r| r.2 == newest)
        .map(|(seq, offset, path)| {
            let len = u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap()) as usize;
            (
                seq,
                offset,
                offset + journal::RECORD_HEADER_BYTES + len,
                path,
            )
        })
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

#[test]
fn a_cut_at_any_byte_of_the_last_records_recovers_exactly_the_whole_ones() {
    let dir = scratch("torn");
    let flow = commands(121, 9);
    let (images, _) = write_journal(&dir, &flow[..120], 64 << 10, &[]);
    let records = records_of(&dir);
    let last_three = &records[records.len() - 3..];
    let (first_cut, end) = (last_three[0].1, last_three[2].2 + 8);
    let copy = dir.join("copy");
    let original = std::fs::read(&last_three[0].3).unwrap();
    for cut in first_cut..end {
        copy_dir(&dir, &copy);
        let segment = copy.join(last_three[0].3.file_name().unwrap());
        let mut bytes = original.clone();
        bytes[cut..].fill(0);
        std::fs::write(&segment, &bytes).unwrap();
        // A record survives the cut whole when the cut only zeroed bytes that
        // were zero already; the log ends before the first one that did not.
        let intact = |r: &(u64, usize, usize, PathBuf)| {
            original[cut.max(r.1)..r.2.max(cut)].iter().all(|&b| b == 0)
        };
        let first_broken = records.iter().find(|r| !intact(r));
        let whole = first_broken.map_or(records.last().unwrap().0, |r| r.0 - 1);
        let recovered = recover(&copy, true).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        assert_eq!(recovered.last_seq, whole, "cut at {cut}");
        assert_eq!(
            recovered.state.image(),
            images[whole as usize],
            "cut at {cut}"
        );
        let torn = first_broken.is_some_and(|r| cut > r.1);
        assert_eq!(
            recovered.torn.is_some(),
            torn,
            "cut at {cut}: torn tail reported"
        );
        // The venue cuts the torn record off and appends after it.
        let config = JournalConfig {
            dir: copy.clone(),
            segment_bytes: 64 << 10,
            durability: Durability::Process,
        };
        let mut journal = Journal::open(config, engine_config(), &recovered).unwrap();
        let mut state = recovered.state;
        let seq = whole + 1;
        journal.append(seq, &flow[seq as usize - 1]).unwrap();
        drop(journal);
        state.apply(seq, &flow[seq as usize - 1], &mut Vec::new());
        let again = recover(&copy, true).unwrap();
        assert!(
            again.torn.is_none(),
            "cut at {cut}: the torn bytes are gone"
        );
        assert_eq!(
            again.state.image(),
            state.image(),
            "cut at {cut}: after appending again"
        );
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_flipped_bit_mid_journal_is_reported_with_file_and_offset_never_skipped() {
    let dir = scratch("flip");
    let flow = commands(200, 13);
    let (images, live) = write_journal(&dir, &flow, 1 << 20, &[]);
    let records = records_of(&dir);
    let copy = dir.join("copy");
    let segment_name = records[0].3.file_name().unwrap().to_owned();
    let mut reported = 0;
    for record in &records[20..40] {
        for byte in (record.1..record.2).step_by(3) {
            copy_dir(&dir, &copy);
            let segment = copy.join(&segment_name);
            let mut bytes = std::fs::read(&segment).unwrap();
            bytes[byte] ^= 1 << (byte % 8);
            std::fs::write(&segment, &bytes).unwrap();
            match recover(&copy, true) {
                Err(RecoverError::Corrupt { path, offset, .. }) => {
                    assert_eq!(path, segment, "byte {byte}");
                    assert_eq!(
                        offset as usize, record.1,
                        "byte {byte}: offset of the damaged record"
                    );
                    reported += 1;
                }
                Ok(recovered) => panic!(
                    "byte {byte}: damage skipped, recovered to {}",
                    recovered.last_seq
                ),
                Err(other) => panic!("byte {byte}: {other}"),
            }
        }
    }
    assert!(reported > 100);
    // A flip in the segment header is reported at offset 0.
    copy_dir(&dir, &copy);
    let segment = copy.join(&segment_name);
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[13] ^= 4;
    std::fs::write(&segment, &bytes).unwrap();
    assert!(matches!(
        recover(&copy, true),
        Err(RecoverError::Corrupt { offset: 0, .. })
    ));
    // The undamaged journal still recovers whole.
    assert_eq!(recover(&dir, true).unwrap().state.image(), live.image());
    assert_eq!(images.last().unwrap(), &live.image());
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_bad_snapshot_falls_back_and_a_missing_start_is_an_error() {
    let dir = scratch("snapshots");
    let flow = commands(1_500, 17);
    let (_, live) = write_journal(&dir, &flow, 16 << 10, &[500, 1_000]);
    let newest = dir.join(snapshot::snapshot_name(1_000));
    let mut bytes = std::fs::read(&newest).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xFF;
    std::fs::write(&newest, &bytes).unwrap();
    let recovered = recover(&dir, true).unwrap();
    assert_eq!(recovered.snapshot_seq, Some(500));
    assert_eq!(recovered.warnings.len(), 1, "{:?}", recovered.warnings);
    assert_eq!(recovered.state.image(), live.image());
    // A journal that lost records the newest snapshot holds: recovery uses
    // the snapshot and appends go to a new segment, without a gap.
    let segments: Vec<PathBuf> = {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".seg"))
            .collect();
        v.sort();
        v
    };
    let tail_dir = dir.join("lost-tail");
    copy_dir(&dir, &tail_dir);
    let good = snapshot::read(&dir.join(snapshot::snapshot_name(500))).unwrap();
    let mut state = State::from_image(&good).unwrap();
    let mut events = Vec::new();
    for (seq, command) in (501..).zip(&flow[500..1_000]) {
        state.apply(seq, command, &mut events);
    }
    std::fs::remove_file(tail_dir.join(snapshot::snapshot_name(1_000))).unwrap();
    snapshot::write(&tail_dir, &state.image()).unwrap();
    // Lose every segment that starts after sequence 600 (one holds ~170 records).
    for segment in &segments {
        let name = segment.file_name().unwrap().to_string_lossy().into_owned();
        let first: u64 = name["journal-".len()..name.len() - ".seg".len()]
            .parse()
            .unwrap();
        if first > 600 {
            std::fs::remove_file(tail_dir.join(&name)).unwrap();
        }
    }
    let recovered = recover(&tail_dir, true).unwrap();
    assert_eq!(recovered.last_seq, 1_000);
    assert!(
        recovered
            .warnings
            .iter()
            .any(|w| w.contains("snapshot reaches 1000")),
        "{:?}",
        recovered.warnings
    );
    let config = JournalConfig {
        dir: tail_dir.clone(),
        segment_bytes: 16 << 10,
        durability: Durability::Process,
    };
    let mut journal = Journal::open(config, engine_config(), &recovered).unwrap();
    for (seq, command) in (1_001..).zip(&flow[1_000..1_100]) {
        journal.append(seq, command).unwrap();
        state.apply(seq, command, &mut events);
    }
    drop(journal);
    assert!(tail_dir.join(journal::segment_name(1_001)).exists());
    let again = recover(&tail_dir, true).unwrap();
    assert_eq!(again.state.image(), state.image());
    assert!(again.warnings.is_empty(), "{:?}", again.warnings);
    // Without its first segment, and no usable snapshot, the journal cannot be replayed.
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().ends_with(".snap") {
            std::fs::remove_file(path).unwrap();
        }
    }
    std::fs::remove_file(dir.join(journal::segment_name(1))).unwrap();
    assert!(matches!(
        recover(&dir, true),
        Err(RecoverError::MissingStart { .. })
    ));
    std::fs::remove_dir_all(dir).ok();
}

fn replay(args: &[&str]) -> std::process::Output {
    Process::new(env!("CARGO_BIN_EXE_tonnex-replay"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn replay_journal_mode_keeps_the_contract() {
    let dir = scratch("cli");
    let flow = commands(400, 21);
    let (_, live) = write_journal(&dir, &flow, 1 << 20, &[]);
    let (book, orders) = (dir.join("book.txt"), dir.join("orders.txt"));
    let output = replay(&[
        "--journal",
        dir.to_str().unwrap(),
        "--book",
        book.to_str().unwrap(),
        "--orders",
        orders.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let last = stdout.lines().last().unwrap();
    let keys: Vec<&str> = last
        .split(' ')
        .map(|kv| kv.split('=').next().unwrap())
        .collect();
    assert_eq!(keys, ["records", "last_seq", "recovered_ms"]);
    assert!(last.starts_with("records=400 last_seq=400 "), "{last}");
    // --digest: the state digest on the line before, the live state's.
    let output = replay(&["--journal", dir.to_str().unwrap(), "--digest"]);
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(lines[0], format!("digest={}", live.digest()));
    // Books: instruments in symbol order, each headed `I <symbol>`.
    let book = std::fs::read_to_string(&book).unwrap();
    let headers: Vec<&str> = book.lines().filter(|l| l.starts_with("I ")).collect();
    assert_eq!(headers, ["I DAC-2025.REM", "I NBR-2024.CCP"]);
    assert_eq!(
        book.lines().filter(|l| l.starts_with("O ")).count(),
        live.resting_orders()
    );
    // Orders: every id, ascending, with a status; the open ones are the book's.
    let orders = std::fs::read_to_string(&orders).unwrap();
    let ids: Vec<u64> = orders
        .lines()
        .map(|l| l.split(' ').next().unwrap().parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    let open: Vec<u64> = orders
        .lines()
        .filter(|l| l.ends_with(" open"))
        .map(|l| l.split(' ').next().unwrap().parse().unwrap())
        .collect();
    let mut resting: Vec<u64> = live.image().orders.iter().map(|o| o.id).collect();
    resting.sort_unstable();
    assert_eq!(open, resting);
    assert!(orders
        .lines()
        .all(|l| ["open", "filled", "cancelled", "rejected"]
            .contains(&l.rsplit(' ').next().unwrap())));
    // --dump: one line per record, then the last line.
    let output = replay(&["--journal", dir.to_str().unwrap(), "--dump"]);
    assert_eq!(
        String::from_utf8(output.stdout).unwrap().lines().count(),
        401
    );
    // A torn tail: reported on standard error, ignored, exit 0.
    let records = records_of(&dir);
    let last_record = records.last().unwrap();
    let mut bytes = std::fs::read(&last_record.3).unwrap();
    bytes[last_record.1 + 16..].fill(0); // from the payload's first (tag) byte on
    std::fs::write(&last_record.3, &bytes).unwrap();
    let output = replay(&["--journal", dir.to_str().unwrap()]);
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("torn final record"));
    assert!(String::from_utf8(output.stdout)
        .unwrap()
        .starts_with("records=399 last_seq=399 "));
    // Corruption before the tail: exit 3, naming the segment and the offset.
    let damaged = &records[100];
    bytes[damaged.1 + 18] ^= 0x10;
    std::fs::write(&damaged.3, &bytes).unwrap();
    let output = replay(&["--journal", dir.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(3));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains(&damaged.3.display().to_string()),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("offset {}", damaged.1)),
        "{stderr}"
    );
    std::fs::remove_dir_all(dir).ok();
}
