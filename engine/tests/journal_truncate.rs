//! Cutting the journal back (`Journal::truncate_after`) and reading
//! commands back (`journal::read_commands`, and on from a position with
//! `read_commands_at`), as a replicated node's log needs: across segment
//! boundaries, within one segment, after reopening.

use std::path::{Path, PathBuf};

use tonnex_engine::journal::{self, Durability, Journal, JournalConfig, RecoverOptions};
use tonnex_engine::{workload, Command, EngineConfig};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tonnex-journal-truncate-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn engine() -> EngineConfig {
    EngineConfig {
        holds: false,
        order_capacity: 1 << 10,
        ..EngineConfig::default()
    }
}

fn options() -> RecoverOptions {
    RecoverOptions {
        use_snapshot: false,
        track_orders: false,
        config: engine(),
    }
}

/// Orders `from..from + count`, each its own id, alternating sides.
fn orders(from: u64, count: u64, price: i64) -> Vec<Command> {
    let text: String = (from..from + count)
        .map(|id| {
            format!(
                "N {id} {} {} L {price} 1\n",
                1 + id % 7,
                if id % 2 == 0 { 'B' } else { 'S' }
            )
        })
        .collect();
    workload::parse(&text).unwrap()
}

fn open(dir: &Path) -> Journal {
    let recovered = journal::recover(dir, options()).unwrap();
    let config = JournalConfig {
        dir: dir.to_path_buf(),
        // Small segments: about forty records each.
        segment_bytes: 4 << 10,
        durability: Durability::Process,
    };
    Journal::open(config, engine(), &recovered).unwrap()
}

fn segments(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".seg")
        })
        .count()
}

#[test]
fn a_cut_across_segments_then_new_records_read_and_recover_as_one_log() {
    let dir = scratch("across");
    let mut log = open(&dir);
    let first = orders(1, 200, 100);
    for (seq, command) in (1..).zip(&first) {
        log.append(seq, command).unwrap();
    }
    let before = segments(&dir);
    assert!(before >= 4, "{before} segments: the test wants several");
    // Cut back into an early segment: the later ones go.
    log.truncate_after(57).unwrap();
    assert_eq!(log.last_seq(), 57);
    assert!(segments(&dir) < before);
    assert_eq!(
        log.append(59, &first[0]).unwrap_err().to_string(),
        "journal refuses sequence 59: expected 58"
    );
    let second = orders(1_000, 100, 120);
    for (seq, command) in (58..).zip(&second) {
        log.append(seq, command).unwrap();
    }
    drop(log);
    let mut expected = first[..57].to_vec();
    expected.extend(second.iter().cloned());
    assert_eq!(journal::read_commands(&dir, 1, 157).unwrap(), expected);
    assert_eq!(
        journal::read_commands(&dir, 50, 60).unwrap(),
        expected[49..60].to_vec()
    );
    let recovered = journal::recover(&dir, options()).unwrap();
    assert_eq!(recovered.last_seq, 157);
    assert!(recovered.warnings.is_empty(), "{:?}", recovered.warnings);
    let err = journal::read_commands(&dir, 150, 158)
        .unwrap_err()
        .to_string();
    assert!(err.contains("sequence 158 is not in the journal"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn reading_on_from_a_position_gives_what_reading_from_the_start_gives() {
    let dir = scratch("positions");
    let mut log = open(&dir);
    let flow = orders(1, 300, 100);
    for (seq, command) in (1..).zip(&flow) {
        log.append(seq, command).unwrap();
    }
    assert!(segments(&dir) >= 5);
    // Ranges of every length, each read on from where the last stopped:
    // within a segment, across one or several boundaries, up to the end.
    let mut at = None;
    let mut from = 1;
    for len in (1..).cycle() {
        if from > 300 {
            break;
        }
        let to = (from + len - 1).min(300);
        let read = journal::read_commands_at(&dir, from, to, at).unwrap();
        assert_eq!(read.commands, flow[from as usize - 1..to as usize].to_vec());
        let (start, next) = read.span.unwrap();
        assert_eq!((start.seq, next.seq), (from, to + 1));
        // Reading again from the range's start position gives the same.
        let again = journal::read_commands_at(&dir, from, to, Some(start)).unwrap();
        assert_eq!(again, read);
        at = Some(next);
        from = to + 1;
    }
    // A position is a hint: asked for a range before it, or after a cut
    // and new records where it pointed, the answer is still the journal's.
    let early = journal::read_commands_at(&dir, 10, 12, at).unwrap();
    assert_eq!(early.commands, flow[9..12].to_vec());
    let mid = journal::read_commands_at(&dir, 1, 250, None)
        .unwrap()
        .span
        .map(|(_, next)| next);
    log.truncate_after(240).unwrap();
    // Cancels: smaller records, so the old position falls mid-record.
    let text: String = (1..=60).map(|id| format!("C {id}\n")).collect();
    let other = tonnex_engine::workload::parse(&text).unwrap();
    for (seq, command) in (241..).zip(&other) {
        log.append(seq, command).unwrap();
    }
    let rewritten = journal::read_commands_at(&dir, 251, 260, mid).unwrap();
    assert_eq!(rewritten.commands, other[10..20].to_vec());
    assert_eq!(
        journal::read_commands_at(&dir, 5, 4, mid).unwrap(),
        journal::ReadBack::default()
    );
    let err = journal::read_commands_at(&dir, 295, 301, mid)
        .unwrap_err()
        .to_string();
    assert!(err.contains("sequence 301 is not in the journal"), "{err}");
    drop(log);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_cut_inside_the_newest_segment_and_to_nothing_reopen_cleanly() {
    let dir = scratch("inside");
    let mut log = open(&dir);
    let flow = orders(1, 20, 100);
    for (seq, command) in (1..).zip(&flow) {
        log.append(seq, command).unwrap();
    }
    log.truncate_after(15).unwrap();
    log.truncate_after(15).unwrap(); // nothing more to cut
    drop(log);
    let mut log = open(&dir);
    assert_eq!(log.last_seq(), 15);
    log.truncate_after(0).unwrap();
    assert_eq!(log.last_seq(), 0);
    log.append(1, &flow[3]).unwrap();
    drop(log);
    assert_eq!(
        journal::read_commands(&dir, 1, 1).unwrap(),
        vec![flow[3].clone()]
    );
    assert_eq!(journal::recover(&dir, options()).unwrap().last_seq, 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_end_found_without_applying_is_the_end_recovery_finds() {
    let dir = scratch("locate-end");
    let mut journal = open(&dir);
    for (seq, command) in (1..).zip(orders(1, 100, 2500)) {
        journal.append(seq, &command).unwrap();
    }
    journal.sync().unwrap();
    drop(journal);
    let recovered = journal::recover(&dir, options()).unwrap();
    let end = journal::locate_end(&dir, 0).unwrap();
    assert_eq!(end.last_seq, 100);
    assert_eq!(end.records, recovered.records);
    assert_eq!(end.append_at, recovered.append_at);
    // Reopened at that end, the journal goes on at 101 (several segments).
    let config = JournalConfig {
        dir: dir.clone(),
        segment_bytes: 4 << 10,
        durability: Durability::Process,
    };
    let mut journal = Journal::open_at(config, engine(), &end).unwrap();
    journal.append(101, &orders(101, 1, 2500)[0]).unwrap();
    journal.sync().unwrap();
    drop(journal);
    assert_eq!(journal::recover(&dir, options()).unwrap().last_seq, 101);
    // Past a snapshot at 60, only what follows counts.
    assert_eq!(journal::locate_end(&dir, 60).unwrap().records, 41);
    std::fs::remove_dir_all(&dir).unwrap();
}
