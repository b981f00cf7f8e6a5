//! The Raft log on the journal (`JournalLog`): entries and hard state
//! survive a reopen, a new leader's overwrite cuts both files back, a
//! crash between an entry's commands and its index record loses only that
//! entry, and damage is an error naming the file.

use std::path::{Path, PathBuf};

use raft::prelude::{Entry, HardState};
use raft::{GetEntriesContext, Storage};
use tonnex_cluster::{batch, JournalLog};
use tonnex_engine::journal::{self, Durability};
use tonnex_engine::{workload, Command, EngineConfig};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tonnex-raft-log-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn engine() -> EngineConfig {
    EngineConfig {
        holds: false,
        order_capacity: 1 << 10,
        ..EngineConfig::default()
    }
}

fn open(dir: &Path) -> JournalLog {
    JournalLog::open(dir, &[1, 2, 3], engine(), Durability::Process, 8 << 10).unwrap()
}

fn orders(from: u64, count: u64) -> Vec<Command> {
    let text: String = (from..from + count)
        .map(|id| format!("N {id} 7 B L {} 1\n", 100 + id % 5))
        .collect();
    workload::parse(&text).unwrap()
}

fn entry(index: u64, term: u64, commands: &[Command]) -> Entry {
    let data = if commands.is_empty() {
        Vec::new()
    } else {
        batch::encode(commands)
    };
    Entry {
        index,
        term,
        data: data.into(),
        ..Entry::default()
    }
}

fn all(log: &JournalLog) -> Vec<Entry> {
    log.entries(1, log.last() + 1, None, GetEntriesContext::empty(false))
        .unwrap()
}

#[test]
fn a_far_behind_follower_is_sent_the_log_a_message_at_a_time() {
    use protobuf::Message as _;
    let dir = scratch("paged");
    let mut log = open(&dir);
    // 400 entries of 25 commands (10,000 commands, many small segments),
    // every tenth with a large record as a venue journals its reports;
    // reopened, none are in memory: every read comes from the journal.
    let written: Vec<Entry> = (0..400)
        .map(|i| {
            let mut commands = orders(i * 25 + 1, 25);
            if i % 10 == 0 {
                commands[7] = Command::Venue(Box::new(tonnex_engine::VenueCommand::Reports {
                    session_id: 9,
                    records: vec![i as u8; 1500],
                }));
            }
            entry(i + 1, 1, &commands)
        })
        .collect();
    log.append(&written).unwrap();
    drop(log);
    let log = open(&dir);
    let max = 16 << 10;
    let mut low = 1;
    let mut pages = 0;
    while low <= 400 {
        let page = log
            .entries(low, 401, Some(max), GetEntriesContext::empty(false))
            .unwrap();
        let size: u64 = page.iter().map(|e| u64::from(e.compute_size())).sum();
        assert!(!page.is_empty() && (size <= max || page.len() == 1));
        assert_eq!(
            page,
            written[low as usize - 1..low as usize - 1 + page.len()]
        );
        low += page.len() as u64;
        pages += 1;
    }
    assert!(pages > 10, "{pages} pages of {max} bytes for the whole log");
    // Each command was read from the journal about once (some twice, at
    // the end of a page), not once for every message sent before it.
    assert!(
        log.commands_read_back() <= 2 * 10_000,
        "{} commands read back for 10,000",
        log.commands_read_back()
    );
    // Asked again from the start, or from the middle, the same entries.
    assert_eq!(all(&log), written);
    let middle = log
        .entries(150, 401, Some(max), GetEntriesContext::empty(false))
        .unwrap();
    assert_eq!(middle, written[149..149 + middle.len()]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn entries_and_hard_state_survive_a_reopen_and_an_overwrite_cuts_both_files() {
    let dir = scratch("reopen");
    let mut log = open(&dir);
    // An empty entry (a new leader's), then batches large enough to roll
    // the journal's small segments.
    let mut written = vec![entry(1, 1, &[])];
    for i in 0..30 {
        written.push(entry(i + 2, 1, &orders(i * 10 + 1, 10)));
    }
    log.append(&written).unwrap();
    let hard_state = HardState {
        term: 2,
        vote: 3,
        commit: 20,
        ..HardState::default()
    };
    log.set_hard_state(&hard_state).unwrap();
    assert_eq!(log.seq_after(1), 1);
    assert_eq!(log.seq_after(31), 301);
    drop(log);
    let mut log = open(&dir);
    assert_eq!(
        all(&log),
        written,
        "read back from the journal after a reopen"
    );
    assert_eq!(log.initial_state().unwrap().hard_state, hard_state);
    assert_eq!(
        log.initial_state().unwrap().conf_state.voters,
        vec![1, 2, 3]
    );
    assert_eq!(log.term(0).unwrap(), 0);
    assert_eq!(log.term(31).unwrap(), 1);
    assert!(log.term(32).is_err());
    // A new leader (term 3) overwrites from index 25 on.
    let over = vec![entry(25, 3, &orders(5_000, 4)), entry(26, 3, &[])];
    log.append(&over).unwrap();
    let mut expected = written[..24].to_vec();
    expected.extend(over.iter().cloned());
    assert_eq!(all(&log), expected);
    drop(log);
    let log = open(&dir);
    assert_eq!(all(&log), expected, "the cut survives a reopen");
    assert_eq!(log.seq_after(26), 24 * 10 - 10 + 1 + 4);
    // The journal holds exactly the log's commands.
    let commands = journal::read_commands(&dir, 1, log.seq_after(26) - 1).unwrap();
    assert_eq!(commands.len() as u64, log.seq_after(26) - 1);
    assert!(journal::read_commands(&dir, 1, log.seq_after(26)).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_crash_before_an_entrys_index_record_loses_that_entry_only() {
    let dir = scratch("torn");
    let mut log = open(&dir);
    let written: Vec<Entry> = (1..=5).map(|i| entry(i, 1, &orders(i * 10, 3))).collect();
    log.append(&written).unwrap();
    drop(log);
    // The last index record never landed whole: its commands are in the
    // journal, its record half written.
    let index = dir.join("raft-entries.idx");
    let bytes = std::fs::read(&index).unwrap();
    std::fs::write(&index, &bytes[..bytes.len() - 13]).unwrap();
    let mut log = open(&dir);
    assert_eq!(all(&log), written[..4].to_vec());
    // Its commands were cut from the journal: the entry appends again.
    log.append(&written[4..]).unwrap();
    drop(log);
    assert_eq!(all(&open(&dir)), written);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn damage_is_an_error_naming_the_file() {
    let dir = scratch("damage");
    let mut log = open(&dir);
    let written: Vec<Entry> = (1..=4).map(|i| entry(i, 1, &orders(i * 10, 2))).collect();
    log.append(&written).unwrap();
    log.set_commit(3).unwrap();
    drop(log);
    let index = dir.join("raft-entries.idx");
    let good = std::fs::read(&index).unwrap();
    let mut bad = good.clone();
    bad[32 + 9] ^= 1; // record 2's term
    std::fs::write(&index, &bad).unwrap();
    let err = JournalLog::open(&dir, &[1, 2, 3], engine(), Durability::Process, 8 << 10)
        .err()
        .expect("a damaged record")
        .to_string();
    assert!(
        err.contains("raft-entries.idx") && err.contains("record 2"),
        "{err}"
    );
    std::fs::write(&index, &good).unwrap();
    let state = dir.join("raft-state");
    let mut bytes = std::fs::read(&state).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&state, &bytes).unwrap();
    let err = JournalLog::open(&dir, &[1, 2, 3], engine(), Durability::Process, 8 << 10)
        .err()
        .expect("a damaged state file")
        .to_string();
    assert!(
        err.contains("raft-state") && err.contains("checksum"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_snapshot_compacts_the_log_and_installs_on_another_node() {
    let (dir, other) = (scratch("snap-leader"), scratch("snap-follower"));
    let mut log = open(&dir);
    let written: Vec<Entry> = (1..=6).map(|i| entry(i, 2, &orders(i * 10, 3))).collect();
    log.append(&written).unwrap();
    // The engine state after entry 4 (12 commands).
    let err = log
        .take_snapshot(4, &state_through(1).image(), voters())
        .unwrap_err()
        .to_string();
    assert!(err.contains("must end at sequence 12"), "{err}");
    let state = state_through(12);
    log.take_snapshot(4, &state.image(), voters()).unwrap();
    assert_eq!(log.first_index().unwrap(), 5);
    assert_eq!(log.term(4).unwrap(), 2);
    assert!(log.term(3).is_err());
    assert!(log
        .entries(4, 7, None, GetEntriesContext::empty(false))
        .is_err());
    assert_eq!(all_after(&log, 5), written[4..].to_vec());
    let sent = log.snapshot(0, 2).unwrap();
    assert_eq!(sent.get_metadata().index, 4);
    drop(log);
    let log = open(&dir);
    assert_eq!(all_after(&log, 5), written[4..].to_vec(), "after a reopen");
    assert_eq!(log.snapshot_image().unwrap().unwrap(), state.image());
    // A node that had entries 1..=2 installs it: its journal starts over.
    let mut follower = open(&other);
    follower.append(&written[..2]).unwrap();
    let image = follower.install_snapshot(&sent).unwrap();
    assert_eq!(image, state.image());
    assert_eq!(follower.first_index().unwrap(), 5);
    assert_eq!(follower.seq_after(4), 13);
    follower.append(&written[4..]).unwrap();
    drop(follower);
    let follower = open(&other);
    assert_eq!(all_after(&follower, 5), written[4..].to_vec());
    assert_eq!(follower.initial_state().unwrap().hard_state.commit, 4);
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&other).unwrap();
}

/// An engine state with `last_seq` commands applied: an instrument, then
/// one order each (a snapshot's contents need only the right last sequence).
fn state_through(last_seq: u64) -> tonnex_engine::State {
    let mut state = tonnex_engine::State::new(engine());
    let mut events = Vec::new();
    state.apply(
        1,
        &Command::AddInstrument {
            instrument: 0,
            spec: workload::instrument(),
        },
        &mut events,
    );
    for seq in 2..=last_seq {
        state.apply(seq, &orders(900 + seq, 1)[0], &mut events);
    }
    state
}

fn voters() -> raft::prelude::ConfState {
    raft::prelude::ConfState::from((vec![1, 2, 3], vec![]))
}

fn all_after(log: &JournalLog, from: u64) -> Vec<Entry> {
    log.entries(from, log.last() + 1, None, GetEntriesContext::empty(false))
        .unwrap()
}

#[test]
fn membership_changes_are_kept_beside_the_commands_and_cut_with_them() {
    use protobuf::Message as _;
    use raft::prelude::{ConfChange, ConfChangeType, EntryType};
    let dir = scratch("changes");
    let mut log = open(&dir);
    let mut change = ConfChange::default();
    change.set_change_type(ConfChangeType::AddNode);
    change.node_id = 4;
    let mut conf = Entry {
        index: 3,
        term: 1,
        data: change.write_to_bytes().unwrap().into(),
        ..Entry::default()
    };
    conf.set_entry_type(EntryType::EntryConfChange);
    let written = vec![
        entry(1, 1, &orders(10, 2)),
        entry(2, 1, &orders(20, 2)),
        conf,
        entry(4, 1, &orders(30, 2)),
    ];
    log.append(&written).unwrap();
    drop(log);
    let mut log = open(&dir);
    assert_eq!(all(&log), written, "the change reads back after a reopen");
    assert_eq!(log.seq_after(4), 7, "a change takes no journal sequence");
    // A new leader overwrites from the change on: it goes too.
    log.append(&[entry(3, 2, &orders(40, 1))]).unwrap();
    drop(log);
    let log = open(&dir);
    let now = all(&log);
    assert_eq!(now.len(), 3);
    assert_eq!(now[2].get_entry_type(), EntryType::EntryNormal);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn under_sync_durability_a_log_reopens_cuts_and_rolls_segments_the_same() {
    let dir = scratch("sync");
    let open_sync =
        || JournalLog::open(&dir, &[1, 2, 3], engine(), Durability::Sync, 8 << 10).unwrap();
    let mut log = open_sync();
    // Enough commands to roll the small segments (each roll syncs the new
    // segment's header), one append call per entry (one sync each).
    let written: Vec<Entry> = (1..=20)
        .map(|i| entry(i, 1, &orders(i * 100, 16)))
        .collect();
    for e in &written {
        log.append(std::slice::from_ref(e)).unwrap();
    }
    log.set_hard_state(&HardState {
        term: 2,
        vote: 1,
        commit: 12,
        ..HardState::default()
    })
    .unwrap();
    log.set_commit(15).unwrap();
    drop(log);
    let mut log = open_sync();
    assert_eq!(all(&log), written);
    assert_eq!(log.initial_state().unwrap().hard_state.commit, 15);
    let over = vec![entry(16, 2, &orders(900, 2))];
    log.append(&over).unwrap();
    drop(log);
    let log = open_sync();
    let mut expected = written[..15].to_vec();
    expected.extend(over);
    assert_eq!(all(&log), expected);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_log_can_keep_entries_behind_its_snapshot_until_it_is_compacted_whole() {
    let dir = scratch("retain");
    let mut log = open(&dir).retain(2);
    let written: Vec<Entry> = (1..=6).map(|i| entry(i, 2, &orders(i * 10, 3))).collect();
    log.append(&written).unwrap();
    let state = state_through(15);
    // A snapshot after entry 5 (15 commands) keeps entries 4 and 5.
    log.take_snapshot(5, &state.image(), voters()).unwrap();
    assert_eq!(log.snapshot_meta().index, 5);
    assert_eq!(log.first_index().unwrap(), 4);
    assert_eq!(log.term(3).unwrap(), 2, "the entry the log starts after");
    assert!(log.term(2).is_err());
    assert_eq!(all_after(&log, 4), written[3..].to_vec());
    // The snapshot is sent only to a follower the entries cannot serve.
    assert_eq!(log.snapshot(5, 2).unwrap().get_metadata().index, 5);
    drop(log);
    let mut log = open(&dir).retain(2);
    assert_eq!(log.first_index().unwrap(), 4, "after a reopen");
    assert_eq!(all_after(&log, 4), written[3..].to_vec(), "after a reopen");
    assert_eq!(log.snapshot_image().unwrap().unwrap(), state.image());
    // Before a node joins, the whole covered log goes (at the same point).
    assert!(log.keeps_covered());
    log.take_snapshot_compacted(5, &state.image(), voters())
        .unwrap();
    assert!(!log.keeps_covered());
    assert_eq!(log.first_index().unwrap(), 6);
    assert_eq!(all_after(&log, 6), written[5..].to_vec());
    drop(log);
    assert_eq!(open(&dir).first_index().unwrap(), 6);
    std::fs::remove_dir_all(&dir).unwrap();
}
