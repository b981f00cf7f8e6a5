//! The Raft log on the venue's journal: one log, not two. A node's folder
//! holds:
//!
//! - the engine journal (`journal-*.seg`, unchanged): every command of
//!   every entry, in log order, one record each, so sequence numbers run
//!   on across entries;
//! - `raft-entries.idx`: one 32-byte record per Raft entry, saying where
//!   its commands are:
//!
//!   ```text
//!   index      u64 LE
//!   term       u64 LE
//!   first_seq  u64 LE   the journal sequence of its first command
//!   count      u32 LE   its commands (0: an empty entry, a new leader's)
//!   crc        u32 LE   CRC32C of the 28 bytes before
//!   ```
//!
//! - `raft-state`: the hard state (term, vote, commit) and the voters:
//!   `"TNXRAFT1"`, term, vote, commit (u64 LE each), the voter count (u32
//!   LE), each voter (u64 LE), CRC32C of everything before (u32 LE).
//!
//! An entry is appended commands first, index record last, so a crash
//! between them leaves journal records past the index's coverage: the
//! next open cuts them off (the entry was never persisted, so never
//! acknowledged to a leader). A new leader overwriting a suffix cuts both
//! files back ([`Journal::truncate_after`]). Recent entries are also kept
//! in memory as the bytes Raft sends; older ones are read back from the
//! journal. The log is never compacted yet: it starts at index 1.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use raft::prelude::{ConfState, Entry, EntryType, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, StorageError};
use tonnex_engine::journal::crc::crc32c;
use tonnex_engine::journal::{self, Durability, Journal, JournalConfig, RecoverOptions};
use tonnex_engine::EngineConfig;

use crate::batch;

const INDEX_FILE: &str = "raft-entries.idx";
const STATE_FILE: &str = "raft-state";
const STATE_MAGIC: &[u8; 8] = b"TNXRAFT1";
const RECORD: usize = 32;
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
    /// The journal refused or failed.
    #[error("journal: {0}")]
    Journal(String),
}

impl From<LogError> for raft::Error {
    fn from(e: LogError) -> raft::Error {
        raft::Error::Store(StorageError::Other(Box::new(e)))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Meta {
    term: u64,
    first_seq: u64,
    count: u32,
}

/// A node's Raft log over its journal.
pub struct JournalLog {
    dir: PathBuf,
    journal: Journal,
    durability: Durability,
    /// Entry `i` at position `i - 1`.
    meta: Vec<Meta>,
    index_file: File,
    state_file: File,
    hard_state: HardState,
    conf_state: ConfState,
    /// The bytes of the last entries, the first at index `cache_first`.
    cache: VecDeque<Vec<u8>>,
    cache_first: u64,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.to_path_buf(),
        source,
    }
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
        let (hard_state, conf_state) = read_state(dir, voters)?;
        let index_path = dir.join(INDEX_FILE);
        let mut index_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&index_path)
            .map_err(io(&index_path))?;
        let meta = read_index(&mut index_file, &index_path)?;
        let state_path = dir.join(STATE_FILE);
        let state_file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&state_path)
            .map_err(io(&state_path))?;
        let recovered = journal::recover(
            dir,
            RecoverOptions {
                use_snapshot: false,
                track_orders: false,
                config: engine,
            },
        )
        .map_err(|e| LogError::Journal(e.to_string()))?;
        let config = JournalConfig {
            dir: dir.to_path_buf(),
            segment_bytes,
            durability,
        };
        let mut journal = Journal::open(config, engine, &recovered)
            .map_err(|e| LogError::Journal(e.to_string()))?;
        let covered = meta
            .last()
            .map_or(0, |m| m.first_seq + u64::from(m.count) - 1);
        if journal.last_seq() < covered {
            return Err(LogError::Corrupt {
                path: index_path,
                what: format!(
                    "entries reach journal sequence {covered}, the journal ends at {}",
                    journal.last_seq()
                ),
            });
        }
        // Commands of an entry whose index record never landed.
        journal
            .truncate_after(covered)
            .map_err(|e| LogError::Journal(e.to_string()))?;
        let last = meta.len() as u64;
        if hard_state.commit > last {
            return Err(LogError::Corrupt {
                path: dir.join(STATE_FILE),
                what: format!("commit {} is past the last entry {last}", hard_state.commit),
            });
        }
        Ok(JournalLog {
            dir: dir.to_path_buf(),
            journal,
            durability,
            meta,
            index_file,
            state_file,
            hard_state,
            conf_state,
            cache: VecDeque::new(),
            cache_first: last + 1,
        })
    }

    /// The journal sequence after entry `index`'s commands (1 after index 0).
    #[must_use]
    pub fn seq_after(&self, index: u64) -> u64 {
        match index.checked_sub(1).and_then(|i| self.meta.get(i as usize)) {
            Some(m) => m.first_seq + u64::from(m.count),
            None => 1,
        }
    }

    /// The last entry's index.
    #[must_use]
    pub fn last(&self) -> u64 {
        self.meta.len() as u64
    }

    /// The folder.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends `entries` (Raft's, in order), first cutting off any suffix
    /// from the first one's index on.
    pub fn append(&mut self, entries: &[Entry]) -> Result<(), LogError> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        if first.index == 0 || first.index > self.last() + 1 {
            return Err(LogError::Corrupt {
                path: self.dir.join(INDEX_FILE),
                what: format!(
                    "entry {} would leave a gap after {}",
                    first.index,
                    self.last()
                ),
            });
        }
        if first.index <= self.last() {
            self.cut_from(first.index)?;
        }
        for entry in entries {
            if entry.get_entry_type() != EntryType::EntryNormal {
                return Err(LogError::Corrupt {
                    path: self.dir.join(INDEX_FILE),
                    what: format!(
                        "entry {}: membership changes are not supported yet",
                        entry.index
                    ),
                });
            }
            let commands = if entry.data.is_empty() {
                Vec::new()
            } else {
                batch::decode(&entry.data).map_err(|e| LogError::Corrupt {
                    path: self.dir.join(INDEX_FILE),
                    what: format!("entry {}: {e}", entry.index),
                })?
            };
            let first_seq = self.seq_after(entry.index - 1);
            for (seq, command) in (first_seq..).zip(&commands) {
                self.journal
                    .append(seq, command)
                    .map_err(|e| LogError::Journal(e.to_string()))?;
            }
            let meta = Meta {
                term: entry.term,
                first_seq,
                count: commands.len() as u32,
            };
            let mut record = [0u8; RECORD];
            record[0..8].copy_from_slice(&entry.index.to_le_bytes());
            record[8..16].copy_from_slice(&meta.term.to_le_bytes());
            record[16..24].copy_from_slice(&first_seq.to_le_bytes());
            record[24..28].copy_from_slice(&meta.count.to_le_bytes());
            let crc = crc32c(&record[..28]);
            record[28..32].copy_from_slice(&crc.to_le_bytes());
            let path = self.dir.join(INDEX_FILE);
            self.index_file
                .write_all_at(&record, (entry.index - 1) * RECORD as u64)
                .map_err(io(&path))?;
            self.meta.push(meta);
            self.cache.push_back(entry.data.to_vec());
            if self.cache.len() > CACHED {
                self.cache.pop_front();
                self.cache_first += 1;
            }
        }
        self.sync_if_asked()
    }

    fn cut_from(&mut self, index: u64) -> Result<(), LogError> {
        let keep = index - 1;
        self.journal
            .truncate_after(self.seq_after(keep) - 1)
            .map_err(|e| LogError::Journal(e.to_string()))?;
        let path = self.dir.join(INDEX_FILE);
        self.index_file
            .set_len(keep * RECORD as u64)
            .map_err(io(&path))?;
        self.meta.truncate(keep as usize);
        if keep < self.cache_first {
            self.cache.clear();
            self.cache_first = keep + 1;
        } else {
            self.cache.truncate((keep + 1 - self.cache_first) as usize);
        }
        Ok(())
    }

    /// Records Raft's hard state.
    pub fn set_hard_state(&mut self, hard_state: &HardState) -> Result<(), LogError> {
        self.hard_state = hard_state.clone();
        self.write_state()
    }

    /// Records a new commit index.
    pub fn set_commit(&mut self, commit: u64) -> Result<(), LogError> {
        self.hard_state.commit = commit;
        self.write_state()
    }

    fn write_state(&mut self) -> Result<(), LogError> {
        let bytes = encode_state(&self.hard_state, &self.conf_state);
        let path = self.dir.join(STATE_FILE);
        let file = &self.state_file;
        file.write_all_at(&bytes, 0).map_err(io(&path))?;
        file.set_len(bytes.len() as u64).map_err(io(&path))?;
        if self.durability != Durability::Process {
            file.sync_data().map_err(io(&path))?;
        }
        Ok(())
    }

    fn sync_if_asked(&mut self) -> Result<(), LogError> {
        if self.durability != Durability::Process {
            self.journal
                .sync()
                .map_err(|e| LogError::Journal(e.to_string()))?;
            let path = self.dir.join(INDEX_FILE);
            self.index_file.sync_data().map_err(io(&path))?;
        }
        Ok(())
    }

    /// Entries `low..high`: those past the cache read back from the
    /// journal in one pass.
    fn read(&self, low: u64, high: u64) -> Result<Vec<Entry>, LogError> {
        let entry = |index: u64, data: Vec<u8>| Entry {
            index,
            term: self.meta[(index - 1) as usize].term,
            data: data.into(),
            ..Entry::default()
        };
        let mut out = Vec::with_capacity((high - low) as usize);
        let uncached = high.min(self.cache_first);
        if low < uncached {
            let from = self.meta[(low - 1) as usize].first_seq;
            let to = self.seq_after(uncached - 1) - 1;
            let mut commands = journal::read_commands(&self.dir, from, to)
                .map_err(|e| LogError::Journal(e.to_string()))?
                .into_iter();
            for index in low..uncached {
                let count = self.meta[(index - 1) as usize].count as usize;
                let mine: Vec<_> = commands.by_ref().take(count).collect();
                let data = if mine.is_empty() {
                    Vec::new()
                } else {
                    batch::encode(&mine)
                };
                out.push(entry(index, data));
            }
        }
        for index in low.max(self.cache_first)..high {
            out.push(entry(
                index,
                self.cache[(index - self.cache_first) as usize].clone(),
            ));
        }
        Ok(out)
    }
}

impl raft::Storage for JournalLog {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(
            self.hard_state.clone(),
            self.conf_state.clone(),
        ))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low == 0 {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > self.last() + 1 {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let mut out = self.read(low, high)?;
        raft::util::limit_size(&mut out, max_size.into());
        Ok(out)
    }

    fn term(&self, index: u64) -> raft::Result<u64> {
        if index == 0 {
            return Ok(0);
        }
        self.meta
            .get((index - 1) as usize)
            .map(|m| m.term)
            .ok_or(raft::Error::Store(StorageError::Unavailable))
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(1)
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last())
    }

    fn snapshot(&self, _request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        // Never compacted: a follower always catches up from entries.
        Err(raft::Error::Store(
            StorageError::SnapshotTemporarilyUnavailable,
        ))
    }
}

fn encode_state(hard_state: &HardState, conf_state: &ConfState) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(STATE_MAGIC);
    out.extend_from_slice(&hard_state.term.to_le_bytes());
    out.extend_from_slice(&hard_state.vote.to_le_bytes());
    out.extend_from_slice(&hard_state.commit.to_le_bytes());
    out.extend_from_slice(&(conf_state.voters.len() as u32).to_le_bytes());
    for voter in &conf_state.voters {
        out.extend_from_slice(&voter.to_le_bytes());
    }
    let crc = crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn read_state(dir: &Path, voters: &[u64]) -> Result<(HardState, ConfState), LogError> {
    let path = dir.join(STATE_FILE);
    let bytes = match std::fs::read(&path) {
        // Created empty by an open that crashed before its first write.
        Ok(bytes) if bytes.is_empty() => {
            return Ok((
                HardState::default(),
                ConfState::from((voters.to_vec(), vec![])),
            ));
        }
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok((
                HardState::default(),
                ConfState::from((voters.to_vec(), vec![])),
            ));
        }
        Err(source) => return Err(LogError::Io { path, source }),
    };
    let corrupt = |what: &str| LogError::Corrupt {
        path: path.clone(),
        what: what.to_string(),
    };
    let u64_at = |at: usize| -> Result<u64, LogError> {
        Ok(u64::from_le_bytes(
            bytes
                .get(at..at + 8)
                .ok_or_else(|| corrupt("cut short"))?
                .try_into()
                .expect("8"),
        ))
    };
    if bytes.len() < 40 || &bytes[..8] != STATE_MAGIC {
        return Err(corrupt(
            "not a tonnex Raft state file (bad magic or length)",
        ));
    }
    let count = u32::from_le_bytes(bytes[32..36].try_into().expect("4")) as usize;
    let end = 36 + count * 8;
    if bytes.len() != end + 4 {
        return Err(corrupt("length does not match its voter count"));
    }
    if crc32c(&bytes[..end]) != u32::from_le_bytes(bytes[end..end + 4].try_into().expect("4")) {
        return Err(corrupt("checksum mismatch"));
    }
    let hard_state = HardState {
        term: u64_at(8)?,
        vote: u64_at(16)?,
        commit: u64_at(24)?,
        ..HardState::default()
    };
    let stored: Vec<u64> = (0..count)
        .map(|i| u64_at(36 + i * 8))
        .collect::<Result<_, _>>()?;
    Ok((hard_state, ConfState::from((stored, vec![]))))
}

fn read_index(file: &mut File, path: &Path) -> Result<Vec<Meta>, LogError> {
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(io(path))?;
    let whole = bytes.len() / RECORD;
    let mut meta = Vec::with_capacity(whole);
    let mut next_seq = 1;
    for (i, record) in bytes.chunks_exact(RECORD).enumerate() {
        let field = |at: usize| u64::from_le_bytes(record[at..at + 8].try_into().expect("8"));
        let crc = u32::from_le_bytes(record[28..32].try_into().expect("4"));
        let (index, term, first_seq) = (field(0), field(8), field(16));
        let count = u32::from_le_bytes(record[24..28].try_into().expect("4"));
        let good = crc == crc32c(&record[..28]) && index == i as u64 + 1 && first_seq == next_seq;
        if !good {
            if i + 1 == whole {
                break; // a torn last record: the entry was never persisted
            }
            return Err(LogError::Corrupt {
                path: path.to_path_buf(),
                what: format!("record {} (offset {}) is damaged", i + 1, i * RECORD),
            });
        }
        next_seq = first_seq + u64::from(count);
        meta.push(Meta {
            term,
            first_seq,
            count,
        });
    }
    if meta.len() * RECORD != bytes.len() {
        file.set_len((meta.len() * RECORD) as u64)
            .map_err(io(path))?;
    }
    Ok(meta)
}
