//! What raft-rs reads of the log (`raft::Storage`): entries, terms, the
//! bounds, the snapshot to send.

use raft::prelude::{Entry, Snapshot};
use raft::{GetEntriesContext, RaftState, StorageError};
use tonnex_engine::journal;

use super::{journal_error, JournalLog, Kind, LogError, CHANGES_FILE};
use crate::batch;

/// Commands in the first chunk read back for a request; the next ones are
/// sized from its bytes to the room left in the message (an entry whole,
/// whatever its size).
const FIRST_CHUNK: u64 = 256;
/// The fewest and most commands in a later chunk.
const CHUNK_RANGE: (u64, u64) = (64, 16_384);

impl JournalLog {
    /// Entries from `low` on, before `high`, about `max_size` bytes of them
    /// (at least one): those before the cache read back from the journal a
    /// chunk at a time, from where the last read stopped. Raft asks for
    /// everything a follower lacks and keeps what fits one message: reading
    /// it all first made a follower 100,000 entries behind cost its leader
    /// the whole tail, decoded and encoded, for every message it sent.
    pub(super) fn read(&self, low: u64, high: u64, max_size: u64) -> Result<Vec<Entry>, LogError> {
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
        let mut out = Vec::new();
        let mut size = 0u64;
        let full = |out: &Vec<Entry>, size: u64| !out.is_empty() && size >= max_size;
        let uncached = high.min(self.cache_first);
        let mut next = low;
        let mut want = FIRST_CHUNK;
        while next < uncached && !full(&out, size) {
            // A chunk: entries from `next` while their commands fit.
            let mut end = next + 1;
            let mut chunk = u64::from(self.meta_of(next).expect("in the log").count);
            while end < uncached {
                let count = u64::from(self.meta_of(end).expect("in the log").count);
                if chunk + count > want {
                    break;
                }
                chunk += count;
                end += 1;
            }
            let from = self.meta_of(next).expect("in the log").first_seq;
            let to = self.seq_after(end - 1) - 1;
            // The last read's end, or its start when the message before had
            // no room for all of it.
            let hint = self
                .read_at
                .get()
                .and_then(|(start, stop)| [stop, start].into_iter().find(|p| p.seq <= from));
            // The records as they lie: an entry's command fields are the
            // journal's bytes, so nothing is decoded or encoded again.
            let mut framed = Vec::new();
            let span = journal::read_framed_at(&self.dir, from, to, hint, &mut framed)
                .map_err(journal_error)?;
            if span.is_some() {
                self.read_at.set(span);
            }
            self.read_back
                .set(self.read_back.get() + (to + 1).saturating_sub(from));
            let before = size;
            let mut at = 0;
            for index in next..end {
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
                let data = if meta.count == 0 {
                    Vec::new()
                } else {
                    let end = batch::fields_end(&framed, at, meta.count as usize).map_err(|e| {
                        LogError::Corrupt {
                            path: self.dir.clone(),
                            what: format!("entry {index} read back from the journal: {e}"),
                        }
                    })?;
                    let mut data = Vec::with_capacity(4 + end - at);
                    data.extend_from_slice(&meta.count.to_le_bytes());
                    data.extend_from_slice(&framed[at..end]);
                    at = end;
                    data
                };
                size += data.len() as u64;
                out.push(entry(index, data));
            }
            next = end;
            // The next chunk: what the room left holds at this one's bytes
            // per command.
            if let Some(per_command) = (size - before).checked_div(chunk) {
                let per_command = per_command.max(1);
                want = (max_size.saturating_sub(size) / per_command + 1)
                    .clamp(CHUNK_RANGE.0, CHUNK_RANGE.1);
            }
        }
        if next < uncached {
            return Ok(out);
        }
        for index in low.max(self.cache_first)..high {
            if full(&out, size) {
                break;
            }
            let data = self.cache[(index - self.cache_first) as usize].clone();
            size += data.len() as u64;
            out.push(entry(index, data));
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
        let max_size = max_size.into();
        let mut out = self.read(low, high, max_size.unwrap_or(u64::MAX))?;
        raft::util::limit_size(&mut out, max_size);
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
