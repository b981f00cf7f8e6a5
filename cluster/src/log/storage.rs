//! What raft-rs reads of the log (`raft::Storage`): entries, terms, the
//! bounds, the snapshot to send.

use raft::prelude::{Entry, Snapshot};
use raft::{GetEntriesContext, RaftState, StorageError};
use tonnex_engine::journal;

use super::{journal_error, JournalLog, Kind, LogError, CHANGES_FILE};
use crate::batch;

impl JournalLog {
    /// Entries `low..high`: those past the cache read back from the
    /// journal in one pass.
    pub(super) fn read(&self, low: u64, high: u64) -> Result<Vec<Entry>, LogError> {
        let entry = |index: u64, data: Vec<u8>| {
            let meta = self.meta_of(index).expect("in the log");
            let mut entry = Entry {
                index,
                term: meta.term,
                data: data.into(),
                ..Entry::default()
            };
            entry.set_entry_type(meta.kind.entry_type());
            entry
        };
        let mut out = Vec::with_capacity((high - low) as usize);
        let uncached = high.min(self.cache_first);
        if low < uncached {
            let from = self.meta_of(low).expect("in the log").first_seq;
            let to = self.seq_after(uncached - 1) - 1;
            let mut commands = journal::read_commands(&self.dir, from, to)
                .map_err(journal_error)?
                .into_iter();
            for index in low..uncached {
                let meta = self.meta_of(index).expect("in the log");
                if meta.kind != Kind::Commands {
                    let data =
                        self.changes
                            .get(&index)
                            .cloned()
                            .ok_or_else(|| LogError::Corrupt {
                                path: self.dir.join(CHANGES_FILE),
                                what: format!("membership change {index} is missing"),
                            })?;
                    out.push(entry(index, data));
                    continue;
                }
                let mine: Vec<_> = commands.by_ref().take(meta.count as usize).collect();
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
            self.stored.hard_state.clone(),
            self.stored.conf_state.clone(),
        ))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low <= self.stored.base.index {
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
        let base = self.stored.base;
        if index == base.index {
            return Ok(base.term);
        }
        if index < base.index {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        self.meta_of(index)
            .map(|m| m.term)
            .ok_or(raft::Error::Store(StorageError::Unavailable))
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.first())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last())
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        self.raft_snapshot(request_index)
    }
}
