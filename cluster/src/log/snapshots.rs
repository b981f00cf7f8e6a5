//! Engine snapshots as Raft snapshots. A node that has applied up to an
//! entry writes the engine snapshot (the engine's own file, as a single
//! venue does) and drops the entries it covers from the log, but for the
//! last [`JournalLog::retain`] of them; a follower too far behind for the
//! entries that remain gets the snapshot file itself, installs it and
//! starts its journal over after it.

use raft::prelude::{ConfState, Snapshot, SnapshotMetadata};
use raft::StorageError;
use tonnex_engine::snapshot::{self, snapshot_name};
use tonnex_engine::StateImage;

use super::{io, journal_error, open_journal, JournalLog, LogError, SnapMeta, INDEX_FILE, RECORD};

impl JournalLog {
    /// Records that `image` is the engine state, and `conf_state` the
    /// membership, after entry `index`: writes the engine snapshot and
    /// drops entries up to `index` from the log (but for the retained).
    pub fn take_snapshot(
        &mut self,
        index: u64,
        image: &StateImage,
        conf_state: ConfState,
    ) -> Result<(), LogError> {
        self.snapshot_keeping(index, image, conf_state, self.retained)
    }

    /// [`JournalLog::take_snapshot`] dropping every entry it covers, the
    /// retained too: before a node joins, so that its first contact needs
    /// entries no log has and it gets the snapshot, which carries the
    /// membership (from index 1 it would rebuild one from nothing).
    pub fn take_snapshot_compacted(
        &mut self,
        index: u64,
        image: &StateImage,
        conf_state: ConfState,
    ) -> Result<(), LogError> {
        self.snapshot_keeping(index, image, conf_state, 0)
    }

    /// Whether entries the snapshot covers are still in the log.
    #[must_use]
    pub fn keeps_covered(&self) -> bool {
        self.stored.base.index < self.stored.snap.index
    }

    fn snapshot_keeping(
        &mut self,
        index: u64,
        image: &StateImage,
        conf_state: ConfState,
        retained: u64,
    ) -> Result<(), LogError> {
        let Some(meta) = self.meta_of(index).copied() else {
            return Err(LogError::Journal(format!(
                "no entry {index} to snapshot at (log {}..={})",
                self.first(),
                self.last()
            )));
        };
        let seq = self.seq_after(index) - 1;
        if image.last_seq != seq {
            return Err(LogError::Journal(format!(
                "a snapshot after entry {index} must end at sequence {seq}, not {}",
                image.last_seq
            )));
        }
        snapshot::write(&self.dir, image).map_err(journal_error)?;
        // The log's new base: the retained entries stay behind it.
        let base = self.stored.base;
        let keep_after = index.saturating_sub(retained).max(base.index);
        if keep_after > base.index {
            let term = self.meta_of(keep_after).expect("in the log").term;
            let base_seq = self.seq_after(keep_after) - 1;
            self.meta.drain(..(keep_after - base.index) as usize);
            self.stored.base = SnapMeta {
                index: keep_after,
                term,
                seq: base_seq,
            };
        }
        if keep_after >= self.cache_first {
            let drop = ((keep_after + 1 - self.cache_first) as usize).min(self.cache.len());
            self.cache.drain(..drop);
            self.cache_first = keep_after + 1;
        }
        self.stored.snap = SnapMeta {
            index,
            term: meta.term,
            seq,
        };
        self.stored.conf_state = conf_state;
        self.write_state()?;
        if self.changes.range(..=keep_after).next().is_some() {
            self.changes.retain(|&i, _| i > keep_after);
            self.write_changes()?;
        }
        self.remove_older_snapshots(seq)
    }

    /// Installs a snapshot a leader sent: the engine snapshot file it
    /// carries is checked and kept, the journal and the entry index start
    /// over after it. Returns the engine state it holds.
    pub fn install_snapshot(&mut self, raft_snapshot: &Snapshot) -> Result<StateImage, LogError> {
        let metadata = raft_snapshot.get_metadata();
        let tmp = self.dir.join("snapshot-install.tmp");
        std::fs::write(&tmp, &raft_snapshot.data).map_err(io(&tmp))?;
        let image = snapshot::read(&tmp).map_err(journal_error)?;
        let path = self.dir.join(snapshot_name(image.last_seq));
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        // Every journal segment goes: the log now starts after the snapshot.
        self.read_at.set(None);
        // (The open journal still maps one; it is unlinked, and dropped
        // below.)
        for entry in std::fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let entry = entry.map_err(io(&self.dir))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("journal-") && name.ends_with(".seg") {
                std::fs::remove_file(entry.path()).map_err(io(&entry.path()))?;
            }
        }
        self.journal = open_journal(
            &self.dir,
            image.last_seq,
            self.engine,
            self.durability,
            self.segment_bytes,
        )?;
        let index_path = self.dir.join(INDEX_FILE);
        self.index_file
            .set_len(metadata.index * RECORD as u64)
            .map_err(io(&index_path))?;
        self.meta.clear();
        if !self.changes.is_empty() {
            self.changes.clear();
            self.write_changes()?;
        }
        self.cache.clear();
        self.cache_first = metadata.index + 1;
        self.stored.snap = SnapMeta {
            index: metadata.index,
            term: metadata.term,
            seq: image.last_seq,
        };
        self.stored.base = self.stored.snap;
        self.stored.hard_state.commit = self.stored.hard_state.commit.max(metadata.index);
        self.stored.conf_state = metadata.get_conf_state().clone();
        self.write_state()?;
        self.remove_older_snapshots(image.last_seq)?;
        Ok(image)
    }

    /// The engine state of the snapshot the log starts after, if any.
    pub fn snapshot_image(&self) -> Result<Option<StateImage>, LogError> {
        let snap = self.stored.snap;
        if snap.index == 0 {
            return Ok(None);
        }
        let path = self.dir.join(snapshot_name(snap.seq));
        snapshot::read(&path).map(Some).map_err(journal_error)
    }

    /// The Raft snapshot to send a follower.
    pub(super) fn raft_snapshot(&self, request_index: u64) -> raft::Result<Snapshot> {
        let snap = self.stored.snap;
        if snap.index == 0 || snap.index < request_index {
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        let path = self.dir.join(snapshot_name(snap.seq));
        let data = std::fs::read(&path).map_err(io(&path))?;
        let mut metadata = SnapshotMetadata {
            index: snap.index,
            term: snap.term,
            ..SnapshotMetadata::default()
        };
        metadata.set_conf_state(self.stored.conf_state.clone());
        let mut out = Snapshot {
            data: data.into(),
            ..Snapshot::default()
        };
        out.set_metadata(metadata);
        Ok(out)
    }

    /// Engine snapshots before the one at `seq` are no longer needed.
    fn remove_older_snapshots(&self, seq: u64) -> Result<(), LogError> {
        for (older, path) in snapshot::list(&self.dir).map_err(journal_error)? {
            if older < seq {
                std::fs::remove_file(&path).map_err(io(&path))?;
            }
        }
        Ok(())
    }
}
