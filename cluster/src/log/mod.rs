//! The Raft log on the venue's journal: one log, not two. A node's folder
//! holds:
//!
//! - the engine journal (`journal-*.seg`, unchanged): every command of
//!   every entry, in log order, one record each, so sequence numbers run
//!   on across entries;
//! - `raft-entries.idx`: one 40-byte record per Raft entry, at offset
//!   `(index - 1) × 40`, saying where its commands are:
//!
//!   ```text
//!   index      u64 LE
//!   term       u64 LE
//!   first_seq  u64 LE   the journal sequence of its first command
//!   count      u32 LE   its commands (0: an empty entry, a new leader's)
//!   kind       u32 LE   0 commands, 1 a membership change, 2 a joint one
//!   crc        u32 LE   CRC32C of the 32 bytes before
//!   zero       u32
//!   ```
//!
//! - `raft-conf-changes`: the membership changes still in the log (they
//!   are not engine commands): index, length, CRC32C, raft-rs's bytes;
//!   rewritten whole (they are rare) before the entry's index record;
//! - `raft-state`: `"TNXRAFT3"`, the hard state (term, vote, commit), the
//!   snapshot (index, term, journal sequence), the entry the log starts
//!   after (its base: the snapshot's, or an earlier one when the log keeps
//!   entries behind its snapshot; index, term, journal sequence), the
//!   voter count (u32 LE) and each voter (the membership at the snapshot),
//!   all integers little-endian u64 but the count, then a CRC32C of
//!   everything before;
//! - engine snapshots (`snapshot-<seq>.snap`, the engine's own format),
//!   which are also the Raft snapshots ([`snapshots`]).
//!
//! An entry is appended commands first, index record last, so a crash
//! between them leaves journal records past the index's coverage: the
//! next open cuts them off (the entry was never persisted, so never
//! acknowledged to a leader). A new leader overwriting a suffix cuts both
//! files back ([`Journal::truncate_after`]). Recent entries are also kept
//! in memory as the bytes Raft sends; older ones are read back from the
//! journal, no more of them per request than Raft's message size, from
//! where the last read stopped.

use std::cell::Cell;
use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use raft::prelude::{ConfState, EntryType, HardState};
use raft::StorageError;
use tonnex_engine::journal::{self, Durability, Journal, JournalConfig, ReadPosition};
use tonnex_engine::EngineConfig;

mod append;
mod files;
mod snapshots;
mod storage;

use self::files::{
    encode_changes, encode_state, read_changes, read_index, read_state, Stored, RECORD,
};

const INDEX_FILE: &str = "raft-entries.idx";
const CHANGES_FILE: &str = "raft-conf-changes";
/// The hard state, snapshot point and voters (see the module docs).
pub const STATE_FILE: &str = "raft-state";
/// Entries whose bytes stay in memory behind the last one.
const CACHED: usize = 1 << 16;

/// Why the log could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A file's contents are damaged or disagree with each other.
    #[error("{path}: {what}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// The journal or a snapshot refused or failed.
    #[error("journal: {0}")]
    Journal(String),
}

impl From<LogError> for raft::Error {
    fn from(e: LogError) -> raft::Error {
        raft::Error::Store(StorageError::Other(Box::new(e)))
    }
}

/// What an entry holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A batch of engine commands (or nothing: a new leader's entry).
    Commands,
    /// A membership change (raft-rs `ConfChange`).
    Change,
    /// A joint membership change (raft-rs `ConfChangeV2`).
    ChangeV2,
}

impl Kind {
    fn code(self) -> u8 {
        match self {
            Kind::Commands => 0,
            Kind::Change => 1,
            Kind::ChangeV2 => 2,
        }
    }

    fn from_code(code: u32) -> Option<Kind> {
        match code {
            0 => Some(Kind::Commands),
            1 => Some(Kind::Change),
            2 => Some(Kind::ChangeV2),
            _ => None,
        }
    }

    fn of(entry_type: EntryType) -> Kind {
        match entry_type {
            EntryType::EntryNormal => Kind::Commands,
            EntryType::EntryConfChange => Kind::Change,
            EntryType::EntryConfChangeV2 => Kind::ChangeV2,
        }
    }

    fn entry_type(self) -> EntryType {
        match self {
            Kind::Commands => EntryType::EntryNormal,
            Kind::Change => EntryType::EntryConfChange,
            Kind::ChangeV2 => EntryType::EntryConfChangeV2,
        }
    }
}

/// Where an entry's commands are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Meta {
    term: u64,
    first_seq: u64,
    count: u32,
    kind: Kind,
}

/// The snapshot the log starts after (all zero: none, the log starts at 1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnapMeta {
    /// The last Raft index it includes.
    pub index: u64,
    /// That entry's term.
    pub term: u64,
    /// The last journal sequence it includes.
    pub seq: u64,
}

/// A node's Raft log over its journal.
pub struct JournalLog {
    dir: PathBuf,
    engine: EngineConfig,
    segment_bytes: u64,
    journal: Journal,
    durability: Durability,
    /// Entry `base.index + 1 + i` at position `i`.
    meta: Vec<Meta>,
    index_file: File,
    state_file: File,
    stored: Stored,
    /// Membership changes in the log, by index.
    changes: BTreeMap<u64, Vec<u8>>,
    /// The state last synced, commit index aside.
    synced: Option<(HardState, SnapMeta, SnapMeta, ConfState)>,
    /// The bytes of the last entries, the first at index `cache_first`.
    cache: VecDeque<Vec<u8>>,
    cache_first: u64,
    /// Entries kept behind a snapshot taken here ([`JournalLog::retain`]).
    retained: u64,
    /// Where the last read from the journal started and stopped: a
    /// follower catching up asks for what follows, or for the end of that
    /// read when a message had no room for all of it ([`storage`]).
    read_at: Cell<Option<(ReadPosition, ReadPosition)>>,
    /// Commands read back from the journal since the log was opened.
    read_back: Cell<u64>,
}

pub(crate) fn io(path: &Path) -> impl Fn(std::io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn journal_error(e: impl std::fmt::Display) -> LogError {
    LogError::Journal(e.to_string())
}

impl JournalLog {
    /// Opens the log in `dir` (creating it for a cluster of `voters` when
    /// the folder holds none), cutting off an entry whose index record a
    /// crash left unwritten.
    pub fn open(
        dir: &Path,
        voters: &[u64],
        engine: EngineConfig,
        durability: Durability,
        segment_bytes: u64,
    ) -> Result<JournalLog, LogError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let state_path = dir.join(STATE_FILE);
        let stored = read_state(&state_path, voters)?;
        let index_path = dir.join(INDEX_FILE);
        let mut index_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&index_path)
            .map_err(io(&index_path))?;
        let meta = read_index(&mut index_file, &index_path, stored.base)?;
        let state_file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&state_path)
            .map_err(io(&state_path))?;
        let journal = open_journal(dir, stored.snap.seq, engine, durability, segment_bytes)?;
        let mut changes = read_changes(&dir.join(CHANGES_FILE))?;
        // Changes whose entries never landed, or a snapshot covers.
        let last = stored.base.index + meta.len() as u64;
        changes.retain(|&index, _| index > stored.base.index && index <= last);
        let mut log = JournalLog {
            dir: dir.to_path_buf(),
            engine,
            segment_bytes,
            journal,
            durability,
            meta,
            index_file,
            state_file,
            stored,
            changes,
            synced: None,
            cache: VecDeque::new(),
            cache_first: 0,
            retained: 0,
            read_at: Cell::new(None),
            read_back: Cell::new(0),
        };
        let covered = log.seq_after(log.last()) - 1;
        if log.journal.last_seq() < covered {
            return Err(LogError::Corrupt {
                path: index_path,
                what: format!(
                    "entries reach journal sequence {covered}, the journal ends at {}",
                    log.journal.last_seq()
                ),
            });
        }
        // Commands of an entry whose index record never landed.
        log.journal.truncate_after(covered).map_err(journal_error)?;
        if log.stored.hard_state.commit > log.last() {
            return Err(LogError::Corrupt {
                path: dir.join(STATE_FILE),
                what: format!(
                    "commit {} is past the last entry {}",
                    log.stored.hard_state.commit,
                    log.last()
                ),
            });
        }
        log.cache_first = log.last() + 1;
        Ok(log)
    }

    /// Keeps up to `entries` entries behind each snapshot taken from now
    /// on (0, the default: a snapshot drops every entry it covers). A
    /// follower that fell a little behind then catches up from entries,
    /// with its journal and fill log whole, instead of from a snapshot.
    #[must_use]
    pub fn retain(mut self, entries: u64) -> JournalLog {
        self.retained = entries;
        self
    }

    /// The journal sequence after entry `index`'s commands (`index` at or
    /// after the entry the log starts after).
    #[must_use]
    pub fn seq_after(&self, index: u64) -> u64 {
        let base = self.stored.base;
        match index
            .checked_sub(base.index + 1)
            .and_then(|i| self.meta.get(i as usize))
        {
            Some(m) => m.first_seq + u64::from(m.count),
            None => base.seq + 1,
        }
    }

    /// The last entry's index.
    #[must_use]
    pub fn last(&self) -> u64 {
        self.stored.base.index + self.meta.len() as u64
    }

    /// The first entry's index.
    #[must_use]
    pub fn first(&self) -> u64 {
        self.stored.base.index + 1
    }

    /// The snapshot the log starts after.
    #[must_use]
    pub fn snapshot_meta(&self) -> SnapMeta {
        self.stored.snap
    }

    /// Commands read back from the journal since the log was opened (for
    /// followers behind the entries kept in memory): what catching them
    /// up has cost this node.
    #[must_use]
    pub fn commands_read_back(&self) -> u64 {
        self.read_back.get()
    }

    /// The folder.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn meta_of(&self, index: u64) -> Option<&Meta> {
        index
            .checked_sub(self.stored.base.index + 1)
            .and_then(|i| self.meta.get(i as usize))
    }

    /// Records Raft's hard state.
    pub fn set_hard_state(&mut self, hard_state: &HardState) -> Result<(), LogError> {
        self.stored.hard_state = hard_state.clone();
        self.write_state()
    }

    /// Rewrites the membership changes' file (a new file renamed over the
    /// old: a crash leaves one or the other).
    fn write_changes(&self) -> Result<(), LogError> {
        let path = self.dir.join(CHANGES_FILE);
        let tmp = self.dir.join(format!("{CHANGES_FILE}.tmp"));
        std::fs::write(&tmp, encode_changes(&self.changes)).map_err(io(&tmp))?;
        if self.durability != Durability::Process {
            File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(io(&tmp))?;
        }
        std::fs::rename(&tmp, &path).map_err(io(&path))
    }

    /// Records a new commit index.
    pub fn set_commit(&mut self, commit: u64) -> Result<(), LogError> {
        self.stored.hard_state.commit = commit;
        self.write_state()
    }

    /// Writes the state file; under `batch` and `sync` syncs it when what
    /// Raft needs durable changed (term, vote, the snapshot point, the
    /// voters). A commit index alone is not synced: Raft learns it again
    /// from the leader, and a restart only starts from an older one.
    fn write_state(&mut self) -> Result<(), LogError> {
        let bytes = encode_state(&self.stored);
        let path = self.dir.join(STATE_FILE);
        let file = &self.state_file;
        file.write_all_at(&bytes, 0).map_err(io(&path))?;
        file.set_len(bytes.len() as u64).map_err(io(&path))?;
        let mut durable = self.stored.hard_state.clone();
        durable.commit = 0;
        let key = (
            durable,
            self.stored.snap,
            self.stored.base,
            self.stored.conf_state.clone(),
        );
        if self.durability != Durability::Process && self.synced.as_ref() != Some(&key) {
            file.sync_data().map_err(io(&path))?;
            self.synced = Some(key);
        }
        Ok(())
    }

    fn sync_if_asked(&mut self) -> Result<(), LogError> {
        if self.durability != Durability::Process {
            self.journal.sync().map_err(journal_error)?;
            let path = self.dir.join(INDEX_FILE);
            self.index_file.sync_data().map_err(io(&path))?;
        }
        Ok(())
    }
}

/// The journal in `dir`, positioned after its last record past the
/// snapshot at journal sequence `covered` (checksums and continuity checked
/// as at recovery; nothing applied: the replica replays the committed log).
fn open_journal(
    dir: &Path,
    covered: u64,
    engine: EngineConfig,
    durability: Durability,
    segment_bytes: u64,
) -> Result<Journal, LogError> {
    // Only where the journal ends: the node rebuilds its state by replaying
    // its committed log through its state machine.
    let end = journal::locate_end(dir, covered).map_err(journal_error)?;
    // The log syncs once per append call (a Raft ready: its group commit),
    // not per record: under `batch` and `sync` the journal is told to sync
    // never by itself, yet still syncs a new segment's header and folder
    // entry when it rolls over.
    let durability = match durability {
        Durability::Process => Durability::Process,
        Durability::Batch { .. } | Durability::Sync => Durability::Batch {
            records: u32::MAX,
            micros: u64::MAX,
        },
    };
    let config = JournalConfig {
        dir: dir.to_path_buf(),
        segment_bytes,
        durability,
    };
    Journal::open_at(config, engine, &end).map_err(journal_error)
}
