//! Compacting the outbound log off the gateway thread. A helper thread
//! reads the log up to where it ended when compaction started and writes,
//! from the start of the spare file `outbound.log.next`, the header and
//! every record still inside its account's replay window then, and zeros
//! over whatever the spare held after them. The gateway keeps appending to
//! the live file meanwhile, and publishes where its records end; the helper
//! follows, copying what was appended to the spare, until less than
//! [`CAUGHT_UP`] is left. The gateway then copies that rest (a few rounds'
//! worth, not the hundreds of milliseconds' the helper took) and swaps the
//! two names in one step (`renameat2` with `RENAME_EXCHANGE`): the spare is
//! the log, and the old log is the next compaction's spare. A crash at any
//! point leaves one whole log under `outbound.log`.
//!
//! Why a spare and not a new file: the gateway then appends over pages the
//! page cache already holds, with disk blocks already allocated, where
//! appending to a new file makes the kernel allocate and account a page
//! (and ext4 reserve a block) for every 4 KiB written, on the event loop.
//! The zeros end the log for a reader: a record never has length 0. Where
//! the file system cannot exchange names, the spare is renamed over the log
//! (and the next compaction starts a new spare).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::{HEADER, RECORD_HEAD};

/// What the helper leaves for the gateway to copy itself: a few rounds'
/// appends at most.
const CAUGHT_UP: u64 = 256 << 10;

/// A compaction under way.
pub(super) struct Compaction {
    job: JoinHandle<std::io::Result<Copied>>,
    spare: PathBuf,
}

/// What the helper did.
struct Copied {
    /// The spare.
    file: File,
    /// Where the records it wrote to the spare end.
    end: u64,
    /// How much of the live file it copied (the rest is the gateway's).
    upto: u64,
}

impl Compaction {
    /// Starts compacting `path` up to byte `upto`, keeping each account's
    /// records from sequence `keep_from[account]` on, then following the
    /// appends the gateway publishes in `live_end`; `header` opens the
    /// spare, written out (durable) before it replaces the log when `sync`.
    pub fn start(
        path: &Path,
        upto: u64,
        live_end: Arc<AtomicU64>,
        header: Vec<u8>,
        keep_from: HashMap<u64, u64>,
        sync: bool,
    ) -> Compaction {
        let spare = path.with_extension("log.next");
        let (from, to) = (path.to_path_buf(), spare.clone());
        let job = std::thread::Builder::new()
            .name("outbound-compaction".into())
            .spawn(move || {
                let live = File::open(&from)?;
                let (file, end) = copy_windows(&live, &to, upto, &header, &keep_from)?;
                let mut copied = Copied { file, end, upto };
                copied.catch_up(&live, &live_end)?;
                copied.zero_the_rest()?;
                copied.catch_up(&live, &live_end)?;
                if sync {
                    copied.file.sync_data()?;
                }
                Ok(copied)
            })
            .expect("spawning the compaction thread");
        Compaction { job, spare }
    }

    /// Whether the helper is done.
    pub fn is_finished(&self) -> bool {
        self.job.is_finished()
    }

    /// Completes the compaction: appends the live file's bytes from where
    /// the helper stopped up to `live_end` to the spare, and makes the
    /// spare `path` (and the old log the spare). Returns the new log, where
    /// its records end, and how many bytes were copied here.
    pub fn finish(
        self,
        live: &File,
        live_end: u64,
        path: &Path,
        sync: bool,
    ) -> std::io::Result<(File, u64, u64)> {
        let Copied { file, end, upto } = self
            .job
            .join()
            .map_err(|_| std::io::Error::other("the compaction thread panicked"))??;
        let mut tail = vec![0u8; (live_end - upto) as usize];
        live.read_exact_at(&mut tail, upto)?;
        file.write_all_at(&tail, end)?;
        if sync {
            file.sync_data()?;
        }
        exchange(&self.spare, path)?;
        let tail = tail.len() as u64;
        Ok((file, end + tail, tail))
    }
}

/// Swaps the names `spare` and `log` in one step, or, where the file
/// system cannot, renames `spare` over `log`.
fn exchange(spare: &Path, log: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes()).map_err(|_| std::io::Error::other("a NUL in a path"))
    };
    let (from, to) = (c(spare)?, c(log)?);
    // SAFETY: two NUL-terminated paths that outlive the call.
    let done = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if done == 0 {
        return Ok(());
    }
    let error = std::io::Error::last_os_error();
    match error.raw_os_error() {
        Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP) => std::fs::rename(spare, log),
        _ => Err(error),
    }
}

impl Copied {
    /// Zeros over the rest of what the spare held: the log ends at them.
    fn zero_the_rest(&self) -> std::io::Result<()> {
        let zeros = vec![0u8; 1 << 20];
        let mut at = self.end;
        let old_end = self.file.metadata()?.len();
        while at < old_end {
            let n = (old_end - at).min(zeros.len() as u64);
            self.file.write_all_at(&zeros[..n as usize], at)?;
            at += n;
        }
        Ok(())
    }

    /// Copies what the gateway appended to `live` since, as published in
    /// `live_end`, until less than [`CAUGHT_UP`] is left. The gateway only
    /// appends, and publishes an end once the records before it are
    /// written, so every byte read here is final.
    fn catch_up(&mut self, live: &File, live_end: &AtomicU64) -> std::io::Result<()> {
        let mut chunk = vec![0u8; 1 << 20];
        loop {
            let end = live_end.load(Ordering::Acquire);
            if end.saturating_sub(self.upto) < CAUGHT_UP {
                return Ok(());
            }
            while self.upto < end {
                let n = (end - self.upto).min(chunk.len() as u64) as usize;
                live.read_exact_at(&mut chunk[..n], self.upto)?;
                self.file.write_all_at(&chunk[..n], self.end)?;
                self.upto += n as u64;
                self.end += n as u64;
            }
        }
    }
}

/// Writes `header` and the records of `live` (up to `upto`) still inside
/// their windows from the start of the spare `to`; returns the spare and
/// where the records end.
fn copy_windows(
    live: &File,
    to: &Path,
    upto: u64,
    header: &[u8],
    keep_from: &HashMap<u64, u64>,
) -> std::io::Result<(File, u64)> {
    let mut input = BufReader::with_capacity(1 << 20, live.take(upto));
    // The spare is overwritten from its start, not truncated: its pages
    // stay in the page cache for the gateway to append over.
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(to)?;
    let mut out = BufWriter::with_capacity(1 << 20, &file);
    out.write_all(header)?;
    let mut end = header.len() as u64;
    let mut skip = vec![0u8; HEADER];
    input.read_exact(&mut skip)?;
    let mut head = [0u8; RECORD_HEAD];
    let mut framed = Vec::with_capacity(4096);
    loop {
        match input.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e),
        }
        let len = u32::from_le_bytes(head[..4].try_into().expect("4")) as usize;
        let account = u64::from_le_bytes(head[4..].try_into().expect("8"));
        framed.resize(len, 0);
        input.read_exact(&mut framed)?;
        let seq = u64::from_le_bytes(
            framed
                .get(tonnex_protocol::frame::HEADER_BYTES..tonnex_protocol::frame::HEADER_BYTES + 8)
                .ok_or_else(|| std::io::Error::other("a record too short for its sequence"))?
                .try_into()
                .expect("8"),
        );
        if keep_from.get(&account).is_some_and(|&first| seq >= first) {
            out.write_all(&head)?;
            out.write_all(&framed)?;
            end += (RECORD_HEAD + len) as u64;
        }
    }
    out.flush()?;
    drop(out);
    Ok((file, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchange_swaps_the_two_files_and_a_missing_spare_is_an_error() {
        let dir = std::env::temp_dir().join(format!("tonnex-exchange-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (log, spare) = (dir.join("outbound.log"), dir.join("outbound.log.next"));
        std::fs::write(&log, b"old log").unwrap();
        std::fs::write(&spare, b"compacted").unwrap();
        exchange(&spare, &log).unwrap();
        assert_eq!(std::fs::read(&log).unwrap(), b"compacted");
        assert_eq!(std::fs::read(&spare).unwrap(), b"old log");
        std::fs::remove_file(&spare).unwrap();
        let error = exchange(&spare, &log).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
        assert_eq!(
            std::fs::read(&log).unwrap(),
            b"compacted",
            "the log untouched"
        );
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn the_helper_follows_the_appends_and_leaves_less_than_caught_up() {
        let dir = std::env::temp_dir().join(format!("tonnex-catch-up-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let appended: Vec<u8> = (0..(CAUGHT_UP as usize * 3)).map(|i| i as u8).collect();
        std::fs::write(dir.join("live"), &appended).unwrap();
        let live = File::open(dir.join("live")).unwrap();
        let spare = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join("spare"))
            .unwrap();
        // The helper copied the windows (100 bytes) up to live byte 1000.
        let mut copied = Copied {
            file: spare,
            end: 100,
            upto: 1000,
        };
        // Appended since, but less than CAUGHT_UP: left to the gateway.
        let live_end = AtomicU64::new(1000 + CAUGHT_UP - 1);
        copied.catch_up(&live, &live_end).unwrap();
        assert_eq!((copied.end, copied.upto), (100, 1000));
        // More: copied through the published end, byte for byte.
        let end = appended.len() as u64 - 5;
        live_end.store(end, Ordering::Release);
        copied.catch_up(&live, &live_end).unwrap();
        assert_eq!((copied.end, copied.upto), (100 + end - 1000, end));
        let written = std::fs::read(dir.join("spare")).unwrap();
        assert_eq!(&written[100..], &appended[1000..end as usize]);
        std::fs::remove_dir_all(dir).ok();
    }
}
