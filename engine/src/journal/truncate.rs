//! Cutting the journal back: a replicated node's journal may end in
//! records a new Raft leader overwrites (never applied, never
//! acknowledged: they were not committed). Reading commands back, for a
//! leader to send, is [`super::read_back`].

use std::fs::OpenOptions;

use memmap2::MmapMut;

use super::reader::{list_segments, SegmentFile};
use super::writer::{Journal, Segment};
use super::{AppendError, Durability, RecoverError};

fn recover_to_append(e: RecoverError) -> AppendError {
    match e {
        RecoverError::Io { path, source } => AppendError::Io { path, source },
        other => AppendError::Io {
            path: std::path::PathBuf::new(),
            source: std::io::Error::other(other.to_string()),
        },
    }
}

impl Journal {
    /// Removes every record after `seq` (none when `seq` is the last):
    /// zeroes them in their segment and deletes any later segment, so the
    /// next append is `seq + 1`. Records already synced stay synced; under
    /// `batch` and `sync` durability the cut is synced before this returns.
    pub fn truncate_after(&mut self, seq: u64) -> Result<(), AppendError> {
        if self.poisoned {
            return Err(AppendError::Poisoned);
        }
        if seq >= self.last_seq {
            return Ok(());
        }
        let result = self.cut(seq);
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    fn cut(&mut self, seq: u64) -> Result<(), AppendError> {
        let dir = self.config.dir.clone();
        let segments = list_segments(&dir).map_err(recover_to_append)?;
        let keep = segments
            .iter()
            .rposition(|(first, _)| *first <= seq + 1)
            .ok_or_else(|| AppendError::Io {
                path: dir.clone(),
                source: std::io::Error::other(format!("no segment holds sequence {}", seq + 1)),
            })?;
        // Let go of the newest segment's mapping before touching files.
        self.segment = None;
        for (_, path) in &segments[keep + 1..] {
            std::fs::remove_file(path).map_err(|source| AppendError::Io {
                path: path.clone(),
                source,
            })?;
        }
        let (first, path) = &segments[keep];
        let (at, end) = {
            let segment = SegmentFile::open(path, *first).map_err(recover_to_append)?;
            let mut at = None;
            let end = segment
                .scan(true, |record_seq, _, offset| {
                    if record_seq == seq + 1 {
                        at = Some(offset);
                    }
                    Ok(())
                })
                .map_err(recover_to_append)?;
            // The cut is the record after `seq`, or the end when that
            // record is the segment's first (a segment named seq + 1 with
            // no record yet).
            (
                at.unwrap_or(end.pos),
                end.torn_end.map_or(end.pos, |t| t as usize),
            )
        };
        let io = |source| AppendError::Io {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io)?;
        // SAFETY: this journal is the folder's only writer and no longer maps
        // any segment; nothing truncates the file while it is mapped.
        let mut map = unsafe { MmapMut::map_mut(&file) }.map_err(io)?;
        map[at..end].fill(0);
        if self.config.durability != Durability::Process {
            map.flush_range(at, end - at).map_err(io)?;
            if let Ok(folder) = std::fs::File::open(&dir) {
                folder.sync_all().map_err(io)?;
            }
        }
        self.segment = Some(Segment {
            path: path.clone(),
            map,
            _file: file,
        });
        self.pos = at;
        self.synced_pos = self.synced_pos.min(at);
        self.last_seq = seq;
        self.durable_seq = self.durable_seq.min(seq);
        self.pending_records = 0;
        self.pending_since_ns = None;
        Ok(())
    }
}
