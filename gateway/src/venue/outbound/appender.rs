//! Appending to the outbound log through memory maps, as the journal
//! appends: the file runs ahead of its records by a region of zeros, mapped
//! with its pages faulted in by a helper thread, so an event-loop round's
//! records cost one copy into the page cache, not a `write` through the
//! file system (a profile at full load had that `write` at 12 % of the
//! gateway thread).
//!
//! The zeros are the end marker: a record's length is never 0, so a reader
//! ([`tonnex_engine::venue::sessions::Records`]) stops there, and the next
//! open cuts the file back to its last whole record. A round's records are
//! copied body first and the first record's length last: a process killed
//! in between leaves that length 0, and the round, never sent, is dropped
//! whole. Under `batch` and `sync` durability each of the two copies is
//! `msync`ed before the next step, as the `fdatasync` of a `write` was.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{compiler_fence, Ordering};
use std::thread::JoinHandle;

use memmap2::{Advice, MmapMut, MmapOptions};

/// The first region's size: a venue that sends little keeps little ahead.
const FIRST_REGION_BYTES: u64 = 1 << 20;
/// Regions double up to this size.
const LARGEST_REGION_BYTES: u64 = 64 << 20;
const PAGE_BYTES: u64 = 4096;

/// A mapped stretch of the file, from byte `at`.
struct Region {
    at: u64,
    map: MmapMut,
}

impl Region {
    fn end(&self) -> u64 {
        self.at + self.map.len() as u64
    }
}

/// The outbound log's file and where its records end.
pub(super) struct Appender {
    file: File,
    /// Where the records end: the next append's offset.
    end: u64,
    sync: bool,
    current: Region,
    /// Regions the append under way has left (its first length is written
    /// last, maybe into one of them).
    spent: Vec<Region>,
    next: Option<JoinHandle<std::io::Result<Region>>>,
    /// Whether dropping this appender cuts the file's zeros off (not for a
    /// file another has replaced).
    trim_on_drop: bool,
}

impl Appender {
    /// Appends to `file`, whose records end at `end` (nothing after it),
    /// with a first region of at least `region_bytes`; `sync` makes every
    /// append `msync`ed.
    pub fn new(file: File, end: u64, region_bytes: u64, sync: bool) -> std::io::Result<Appender> {
        let mut appender = Appender::settled(file, end, region_bytes, sync)?;
        appender.prepare_next()?;
        Ok(appender)
    }

    /// An appender whose file has every block allocated (`fdatasync`ed),
    /// its first region's zeros included, and no next region under way
    /// until [`Appender::prepare_next`]: a compacted file about to be
    /// renamed over the live one. (ext4 writes a file's delayed blocks out
    /// when it is renamed over another, in the `rename` call, and that
    /// writeback write-protects every mapped page again: each later copy
    /// into the map would fault.)
    pub fn settled(
        file: File,
        end: u64,
        region_bytes: u64,
        sync: bool,
    ) -> std::io::Result<Appender> {
        let current = prepare(&file, end, region_bytes.max(FIRST_REGION_BYTES), true)?;
        Ok(Appender {
            file,
            end,
            sync,
            current,
            spent: Vec::new(),
            next: None,
            trim_on_drop: true,
        })
    }

    /// Where the records end.
    #[must_use]
    pub fn end(&self) -> u64 {
        self.end
    }

    /// The file.
    #[must_use]
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The size the next region gets.
    #[must_use]
    pub fn region_bytes(&self) -> u64 {
        (self.current.map.len() as u64 * 2).min(LARGEST_REGION_BYTES)
    }

    /// This file has been replaced: dropping the appender leaves it as it is.
    pub fn retire(&mut self) {
        self.trim_on_drop = false;
    }

    /// Appends whole records (`bytes` starts with a record's length).
    pub fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let head = bytes.len().min(4);
        self.write_at(self.end + head as u64, &bytes[head..])?;
        if self.sync {
            self.flush(self.end + head as u64, bytes.len() - head)?;
        }
        // The body is in the file before the length that makes it a record.
        compiler_fence(Ordering::Release);
        self.write_at(self.end, &bytes[..head])?;
        if self.sync {
            self.flush(self.end, head)?;
        }
        self.end += bytes.len() as u64;
        self.release_spent();
        Ok(())
    }

    /// Copies the body of an append and not its first length, as a process
    /// killed in between leaves it (tests).
    #[cfg(test)]
    pub fn append_body_only(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.write_at(self.end + 4, &bytes[4..])
    }

    /// Stops as a killed process does: no cut, the zeros stay (tests). The
    /// helper is waited for, as a kill would have stopped it.
    #[cfg(test)]
    pub fn abandon(mut self) {
        if let Some(job) = self.next.take() {
            let _ = job.join();
        }
        self.trim_on_drop = false;
    }

    fn write_at(&mut self, mut at: u64, mut bytes: &[u8]) -> std::io::Result<()> {
        while !bytes.is_empty() {
            while at >= self.current.end() {
                self.advance()?;
            }
            let region = if at >= self.current.at {
                &mut self.current
            } else {
                self.spent
                    .iter_mut()
                    .find(|r| r.at <= at && at < r.end())
                    .expect("an append's bytes lie in the regions it used")
            };
            let from = (at - region.at) as usize;
            let n = bytes.len().min(region.map.len() - from);
            region.map[from..from + n].copy_from_slice(&bytes[..n]);
            at += n as u64;
            bytes = &bytes[n..];
        }
        Ok(())
    }

    fn flush(&self, mut at: u64, mut len: usize) -> std::io::Result<()> {
        for region in self.spent.iter().chain(std::iter::once(&self.current)) {
            if len == 0 {
                break;
            }
            if region.at <= at && at < region.end() {
                let from = (at - region.at) as usize;
                let n = len.min(region.map.len() - from);
                region.map.flush_range(from, n)?;
                at += n as u64;
                len -= n;
            }
        }
        Ok(())
    }

    /// Moves on to the next region (waiting for it if the helper is not
    /// done) and starts preparing the one after.
    fn advance(&mut self) -> std::io::Result<()> {
        let next = match self.next.take() {
            Some(job) => job
                .join()
                .map_err(|_| std::io::Error::other("the outbound log's region helper panicked"))??,
            None => prepare(&self.file, self.current.end(), self.region_bytes(), false)?,
        };
        let left = std::mem::replace(&mut self.current, next);
        self.spent.push(left);
        self.prepare_next()
    }

    /// Starts preparing the region after the current one.
    pub fn prepare_next(&mut self) -> std::io::Result<()> {
        let (file, at, bytes) = (
            self.file.try_clone()?,
            self.current.end(),
            self.region_bytes(),
        );
        self.next = Some(
            std::thread::Builder::new()
                .name("outbound-region".into())
                .spawn(move || prepare(&file, at, bytes, false))?,
        );
        Ok(())
    }

    fn release_spent(&mut self) {
        if self.spent.is_empty() {
            return;
        }
        let spent = std::mem::take(&mut self.spent);
        // Unmapping tens of MiB takes milliseconds: not on the event loop.
        std::thread::spawn(move || drop(spent));
    }
}

impl Drop for Appender {
    /// Waits for a region being prepared (it would lengthen the file again)
    /// and cuts the zeros off a file still in use.
    fn drop(&mut self) {
        if let Some(job) = self.next.take() {
            let _ = job.join();
        }
        if self.trim_on_drop {
            let _ = self.file.set_len(self.end);
        }
    }
}

/// Zeros written to `file` from byte `at` to a page boundary at least
/// `bytes` on (and, if `settle`, the file `fdatasync`ed), mapped with every
/// page faulted in writable: the journal's recipe
/// (`engine/src/journal/writer.rs`, `prepare`).
fn prepare(file: &File, at: u64, bytes: u64, settle: bool) -> std::io::Result<Region> {
    let end = (at + bytes).div_ceil(PAGE_BYTES) * PAGE_BYTES;
    let zeros = vec![0u8; (1 << 20).min(end - at) as usize];
    let mut written = at;
    while written < end {
        let chunk = (end - written).min(zeros.len() as u64) as usize;
        file.write_all_at(&zeros[..chunk], written)?;
        written += chunk as u64;
    }
    if settle {
        file.sync_data()?;
    }
    // SAFETY: the outbound log is this process's alone, and these bytes,
    // past every record, are written only through this map.
    let mut map = unsafe {
        MmapOptions::new()
            .offset(at)
            .len((end - at) as usize)
            .map_mut(file)
    }?;
    if map.advise(Advice::PopulateWrite).is_err() {
        // Kernels before 5.14: one write per page (of the zero already there).
        for page in map.chunks_mut(PAGE_BYTES as usize) {
            // SAFETY: a valid, exclusively borrowed byte; the volatile write
            // keeps the compiler from dropping a store of the value present.
            unsafe { std::ptr::write_volatile(page.as_mut_ptr(), 0) };
        }
    }
    Ok(Region { at, map })
}
