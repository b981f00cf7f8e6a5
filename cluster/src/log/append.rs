//! Writing the log: a leader's or a follower's entries appended (commands
//! to the journal first, the index record last), and the suffix a new
//! leader overwrites cut off first.

use std::os::unix::fs::FileExt;

use raft::prelude::Entry;

use super::files::{index_record, RECORD};
use super::{io, journal_error, JournalLog, Kind, LogError, Meta, CACHED, INDEX_FILE};
use crate::batch;

impl JournalLog {
    /// Appends `entries` (Raft's, in order), first cutting off any suffix
    /// from the first one's index on.
    pub fn append(&mut self, entries: &[Entry]) -> Result<(), LogError> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        if first.index <= self.stored.snap.index || first.index > self.last() + 1 {
            return Err(LogError::Corrupt {
                path: self.dir.join(INDEX_FILE),
                what: format!(
                    "entry {} does not follow the log ({}..={}, snapshot at {})",
                    first.index,
                    self.first(),
                    self.last(),
                    self.stored.snap.index
                ),
            });
        }
        if first.index <= self.last() {
            self.cut_from(first.index)?;
        }
        for entry in entries {
            let kind = Kind::of(entry.get_entry_type());
            if kind != Kind::Commands {
                self.changes.insert(entry.index, entry.data.to_vec());
                self.write_changes()?;
            }
            let commands = if kind != Kind::Commands || entry.data.is_empty() {
                Vec::new()
            } else {
                batch::decode(&entry.data).map_err(|e| LogError::Corrupt {
                    path: self.dir.join(INDEX_FILE),
                    what: format!("entry {}: {e}", entry.index),
                })?
            };
            let first_seq = self.seq_after(entry.index - 1);
            for (seq, command) in (first_seq..).zip(&commands) {
                self.journal.append(seq, command).map_err(journal_error)?;
            }
            let meta = Meta {
                term: entry.term,
                first_seq,
                count: commands.len() as u32,
                kind,
            };
            let path = self.dir.join(INDEX_FILE);
            self.index_file
                .write_all_at(
                    &index_record(entry.index, &meta),
                    (entry.index - 1) * RECORD as u64,
                )
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
        self.read_at.set(None);
        self.journal
            .truncate_after(self.seq_after(keep) - 1)
            .map_err(journal_error)?;
        let path = self.dir.join(INDEX_FILE);
        self.index_file
            .set_len(keep * RECORD as u64)
            .map_err(io(&path))?;
        self.meta.truncate((keep - self.stored.base.index) as usize);
        if self.changes.range(index..).next().is_some() {
            self.changes.retain(|&i, _| i < index);
            self.write_changes()?;
        }
        if keep < self.cache_first {
            self.cache.clear();
            self.cache_first = keep + 1;
        } else {
            self.cache.truncate((keep + 1 - self.cache_first) as usize);
        }
        Ok(())
    }
}
