//! Appending to the journal, on the engine thread, before a command's
//! events leave it.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use std::os::unix::fs::FileExt;

use memmap2::{Advice, MmapMut, MmapOptions};

use super::codec::MAX_ENCODED;
use super::segment::{
    record_bytes, segment_name, SegmentHeader, HEADER_BYTES, MAX_PAYLOAD, RECORD_HEADER_BYTES,
};
use super::{AppendError, Durability, JournalEnd, Recovered};
use crate::command::Command;
use crate::state::EngineConfig;

/// The largest record: header and the largest encoded command, 8-byte aligned.
const RECORD_BYTES_MAX: usize = (RECORD_HEADER_BYTES + MAX_ENCODED + 7) & !7;

/// Default segment size: 256 MiB.
pub const DEFAULT_SEGMENT_BYTES: u64 = 256 << 20;

/// How a journal is written.
#[derive(Clone, Debug)]
pub struct JournalConfig {
    /// The journal folder.
    pub dir: PathBuf,
    /// Size every segment is preallocated to.
    pub segment_bytes: u64,
    /// When records are forced to stable storage.
    pub durability: Durability,
}

impl JournalConfig {
    /// 256 MiB segments, `Process` durability, in `dir`.
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>) -> JournalConfig {
        JournalConfig {
            dir: dir.into(),
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            durability: Durability::Process,
        }
    }
}

/// The open newest segment.
pub(super) struct Segment {
    pub(super) path: PathBuf,
    pub(super) map: MmapMut,
    /// Keeps the file open for as long as it is mapped.
    pub(super) _file: File,
}

/// An open journal, positioned after its last record.
pub struct Journal {
    pub(super) config: JournalConfig,
    engine: EngineConfig,
    pub(super) segment: Option<Segment>,
    /// Next write offset in the segment.
    pub(super) pos: usize,
    /// Offset up to which the segment is known synced.
    pub(super) synced_pos: usize,
    pub(super) last_seq: u64,
    pub(super) durable_seq: u64,
    pub(super) pending_records: u32,
    /// `tick` time at which the oldest unsynced record was first seen.
    pub(super) pending_since_ns: Option<u64>,
    pub(super) poisoned: bool,
    /// The next segment, being prepared in the background.
    next: Option<std::thread::JoinHandle<std::io::Result<Prepared>>>,
    /// Reused buffer for variable-length records.
    large: Vec<u8>,
}

impl Journal {
    /// Opens the journal in `config.dir` for appending after the state that
    /// `recovered` rebuilt from it: continues its newest segment (cutting off
    /// a torn final record) or, for an empty folder, starts one at
    /// `recovered.last_seq + 1`. `engine` is recorded in new segments.
    pub fn open(
        config: JournalConfig,
        engine: EngineConfig,
        recovered: &Recovered,
    ) -> Result<Journal, AppendError> {
        Journal::open_at(config, engine, &JournalEnd::from(recovered))
    }

    /// [`Journal::open`] after the end [`super::locate_end`] found (no
    /// state rebuilt).
    pub fn open_at(
        config: JournalConfig,
        engine: EngineConfig,
        recovered: &JournalEnd,
    ) -> Result<Journal, AppendError> {
        let io = |path: &Path, source| AppendError::Io {
            path: path.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(&config.dir).map_err(|e| io(&config.dir, e))?;
        let mut journal = Journal {
            engine,
            segment: None,
            pos: 0,
            synced_pos: 0,
            last_seq: recovered.last_seq,
            durable_seq: recovered.last_seq,
            pending_records: 0,
            pending_since_ns: None,
            poisoned: false,
            next: None,
            large: Vec::with_capacity(1024),
            config,
        };
        if let Some((path, offset)) = &recovered.append_at {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .map_err(|e| io(path, e))?;
            // SAFETY: the venue is the journal's only writer (one engine per
            // folder); nothing truncates the file while it is mapped.
            let mut map = unsafe { MmapMut::map_mut(&file) }.map_err(|e| io(path, e))?;
            let offset = *offset as usize;
            if let Some(torn) = &recovered.torn {
                // Cut the never-acknowledged torn record off: zero it.
                let end = (torn.end as usize).min(map.len());
                map[offset..end].fill(0);
                map.flush_range(offset, end - offset)
                    .map_err(|e| io(path, e))?;
            }
            journal.segment = Some(Segment {
                path: path.clone(),
                map,
                _file: file,
            });
            journal.pos = offset;
            journal.synced_pos = offset;
        }
        Ok(journal)
    }

    /// Sequence number of the last record appended.
    #[must_use]
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Highest sequence number that survives what the durability policy
    /// promises: the venue acknowledges commands up to here only.
    #[must_use]
    pub fn durable_seq(&self) -> u64 {
        self.durable_seq
    }

    /// Appends command `seq`, which must follow the last record.
    #[inline]
    pub fn append(&mut self, seq: u64, command: &Command) -> Result<(), AppendError> {
        if self.poisoned {
            return Err(AppendError::Poisoned);
        }
        if seq != self.last_seq + 1 {
            return Err(AppendError::Gap {
                expected: self.last_seq + 1,
                got: seq,
            });
        }
        let result = self.write(seq, command);
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    #[inline]
    fn write(&mut self, seq: u64, command: &Command) -> Result<(), AppendError> {
        if super::codec::is_large(command) {
            return self.write_large(seq, command);
        }
        // Room for the largest record, so the command encodes straight into
        // the mapping; the few bytes left at a segment's end stay zero.
        let room = self.segment.as_ref().map_or(0, |s| s.map.len() - self.pos);
        if room < RECORD_BYTES_MAX {
            self.roll(seq)?;
        }
        let segment = self.segment.as_mut().expect("a segment after roll");
        let record: &mut [u8; RECORD_BYTES_MAX] = (&mut segment.map
            [self.pos..self.pos + RECORD_BYTES_MAX])
            .try_into()
            .expect("RECORD_BYTES_MAX bytes");
        let (header, payload) = record.split_at_mut(RECORD_HEADER_BYTES);
        let payload: &mut [u8; MAX_ENCODED] = (&mut payload[..MAX_ENCODED])
            .try_into()
            .expect("MAX_ENCODED bytes");
        let len = super::codec::encode(command, payload);
        let size = record_bytes(len);
        let crc = super::crc::record(len as u32, seq, &payload[..len]);
        header[4..12].copy_from_slice(&seq.to_le_bytes());
        header[12..16].copy_from_slice(&crc.to_le_bytes());
        // The length goes last, with release ordering: a reader (or the page
        // cache after a crash) sees either no record or all of it.
        let len_field = record.as_mut_ptr().cast::<u32>();
        debug_assert!(len_field.is_aligned(), "records start 8-byte aligned");
        // SAFETY: `len_field` points at 4 aligned, writable bytes inside the
        // mapping, which lives as long as `segment`; nothing else accesses
        // them concurrently.
        unsafe { AtomicU32::from_ptr(len_field) }.store((len as u32).to_le(), Ordering::Release);
        self.pos += size;
        self.last_seq = seq;
        self.appended(seq)
    }

    /// A variable-length command (a buyer's scoped order, a venue record):
    /// encoded into a reused buffer first, then copied into the mapping.
    #[inline(never)]
    fn write_large(&mut self, seq: u64, command: &Command) -> Result<(), AppendError> {
        let mut payload = std::mem::take(&mut self.large);
        super::codec::encode_large(command, &mut payload);
        if payload.len() > MAX_PAYLOAD {
            return Err(AppendError::TooLarge {
                seq,
                bytes: payload.len(),
            });
        }
        let size = record_bytes(payload.len());
        let room = self.segment.as_ref().map_or(0, |s| s.map.len() - self.pos);
        if room < size + RECORD_BYTES_MAX {
            self.roll(seq)?;
        }
        let segment = self.segment.as_mut().expect("a segment after roll");
        let record = &mut segment.map[self.pos..self.pos + size];
        let crc = super::crc::record(payload.len() as u32, seq, &payload);
        record[4..12].copy_from_slice(&seq.to_le_bytes());
        record[12..16].copy_from_slice(&crc.to_le_bytes());
        record[RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + payload.len()].copy_from_slice(&payload);
        let len_field = record.as_mut_ptr().cast::<u32>();
        debug_assert!(len_field.is_aligned(), "records start 8-byte aligned");
        // SAFETY: as in `write`: 4 aligned, writable bytes inside the mapping.
        unsafe { AtomicU32::from_ptr(len_field) }
            .store((payload.len() as u32).to_le(), Ordering::Release);
        self.pos += size;
        self.last_seq = seq;
        self.large = payload;
        self.appended(seq)
    }

    /// After a record is in the mapping: the next segment's preparation and
    /// the durability policy.
    #[inline]
    fn appended(&mut self, seq: u64) -> Result<(), AppendError> {
        self.prepare_next_if_due();
        match self.config.durability {
            Durability::Process => self.durable_seq = seq,
            Durability::Sync => self.sync()?,
            Durability::Batch { records, .. } => {
                self.pending_records += 1;
                if self.pending_records >= records {
                    self.sync()?;
                }
            }
        }
        Ok(())
    }

    /// Forces every appended record to stable storage.
    pub fn sync(&mut self) -> Result<(), AppendError> {
        if let Some(segment) = &self.segment {
            if self.pos > self.synced_pos {
                if let Err(source) = segment
                    .map
                    .flush_range(self.synced_pos, self.pos - self.synced_pos)
                {
                    self.poisoned = true;
                    return Err(AppendError::Io {
                        path: segment.path.clone(),
                        source,
                    });
                }
                self.synced_pos = self.pos;
            }
        }
        self.durable_seq = self.last_seq;
        self.pending_records = 0;
        self.pending_since_ns = None;
        Ok(())
    }

    /// For `Batch` durability: called by the engine loop with the time
    /// (nanoseconds, any monotonic origin) whenever it has a moment; syncs
    /// once the oldest pending record has waited the policy's delay.
    pub fn tick(&mut self, now_ns: u64) -> Result<(), AppendError> {
        let Durability::Batch { micros, .. } = self.config.durability else {
            return Ok(());
        };
        if self.pending_records == 0 {
            return Ok(());
        }
        let since = *self.pending_since_ns.get_or_insert(now_ns);
        if now_ns.saturating_sub(since) >= micros.saturating_mul(1000) {
            self.sync()?;
        }
        Ok(())
    }

    /// Seals the current segment and starts `journal-<seq>.seg`, from the
    /// file a background thread has prepared (created, sized and faulted in,
    /// so the engine thread neither waits for the file system nor takes a
    /// page fault per 4 KiB of new records).
    fn roll(&mut self, seq: u64) -> Result<(), AppendError> {
        if self.segment.is_some() && self.config.durability != Durability::Process {
            self.sync()?;
        }
        let prepared = match self.next.take() {
            Some(handle) => handle
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("segment preparation panicked"))),
            None => prepare(&self.config.dir, self.segment_bytes()),
        };
        let path = self.config.dir.join(segment_name(seq));
        let io = |source| AppendError::Io {
            path: path.clone(),
            source,
        };
        let Prepared { tmp, file, mut map } = prepared.map_err(io)?;
        let header = SegmentHeader {
            first_seq: seq,
            config: self.engine,
        };
        map[..HEADER_BYTES].copy_from_slice(&header.encode());
        std::fs::rename(&tmp, &path).map_err(io)?;
        if self.config.durability != Durability::Process {
            map.flush_range(0, HEADER_BYTES).map_err(io)?;
            if let Ok(dir) = File::open(&self.config.dir) {
                dir.sync_all().map_err(io)?;
            }
        }
        let sealed = self.segment.replace(Segment {
            path,
            map,
            _file: file,
        });
        if let Some(sealed) = sealed {
            // Unmapping 256 MiB takes milliseconds: not on the engine thread.
            std::thread::spawn(move || drop(sealed));
        }
        self.pos = HEADER_BYTES;
        self.synced_pos = HEADER_BYTES;
        Ok(())
    }

    /// Starts preparing the next segment in the background once the current
    /// one is an eighth full: early enough that the engine at full speed
    /// rarely waits for it, late enough that a venue which journals little
    /// does not hold two segments' worth of zeros on disk from its start.
    #[inline]
    fn prepare_next_if_due(&mut self) {
        if self.next.is_none()
            && self
                .segment
                .as_ref()
                .is_some_and(|s| self.pos > s.map.len() / 8)
        {
            let (dir, bytes) = (self.config.dir.clone(), self.segment_bytes());
            self.next = Some(std::thread::spawn(move || prepare(&dir, bytes)));
        }
    }

    fn segment_bytes(&self) -> u64 {
        self.config
            .segment_bytes
            .max((HEADER_BYTES + RECORD_BYTES_MAX) as u64)
    }
}

impl Drop for Journal {
    /// Waits for a segment being prepared: a helper left running could
    /// otherwise, in a journal opened again in this process (a restarted
    /// replica, a test), remove or replace that journal's own next segment
    /// file, which shares its name.
    fn drop(&mut self) {
        if let Some(next) = self.next.take() {
            let _ = next.join();
        }
    }
}

/// A segment file ready to become the next one: `journal-next.tmp`, sized and
/// mapped with its pages faulted in.
struct Prepared {
    tmp: PathBuf,
    file: File,
    map: MmapMut,
}

fn prepare(dir: &Path, bytes: u64) -> std::io::Result<Prepared> {
    let tmp = dir.join("journal-next.tmp");
    // A leftover from a crash is an unused, unnamed segment: start afresh.
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&tmp)?;
    // Zeros written through the file, in large writes: the page cache
    // fills by plain copies. (Faulting a sparse file's pages in through the
    // mapping instead took each page twice, a read fault that zeroed whole
    // read-ahead folios, then a write fault: about 3x slower here, slower
    // than the engine fills a segment.)
    let zeros = vec![0u8; 1 << 20];
    let mut written = 0u64;
    while written < bytes {
        let chunk = (bytes - written).min(zeros.len() as u64) as usize;
        file.write_all_at(&zeros[..chunk], written)?;
        written += chunk as u64;
    }
    // SAFETY: a file this journal just created and alone writes.
    let mut map = unsafe { MmapOptions::new().map_mut(&file) }?;
    // Map every page writable now, here, before the engine thread owns the
    // map, so that its appends never stop for a page fault.
    if map.advise(Advice::PopulateWrite).is_err() {
        // Kernels before 5.14: one write per page (of the zero already there).
        for page in map.chunks_mut(4096) {
            // SAFETY: a valid, exclusively borrowed byte; the volatile write
            // keeps the compiler from dropping a store of the value present.
            unsafe { std::ptr::write_volatile(page.as_mut_ptr(), 0) };
        }
    }
    Ok(Prepared { tmp, file, map })
}
