//! The fill log's next pages, prepared off the event loop. Appending to a
//! file's end makes the kernel allocate and account a page-cache page, and
//! ext4 reserve a block, for every 4 KiB, inside the appender's `write`: in
//! a closed loop that was most of the fill log's cost on the gateway thread
//! (removing the write altogether measured +5-10 %). A helper thread keeps
//! the file in zeros some way past where the records end; the appender
//! writes over those pages at the records' end (`pwrite`), and a record of
//! length 0 ends the log for every reader ([`tonnex_engine::fill_log`]).
//! The zeros are cut when the log is closed and when it is opened again.
//!
//! Who writes where: the helper writes only at or past `prepared`, a step
//! at a time, holding `zeroing`, and moves `prepared` on after each step.
//! The appender writes below `prepared` without a lock; a write that
//! reaches past it (the helper behind, or stopped by an error) takes
//! `zeroing`, so no step of zeros can land on records, and moves `prepared`
//! past itself.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Most zeros kept past the records' end.
const MOST_AHEAD: u64 = 32 << 20;
/// Fewest (a small log, a test's, stays small).
const LEAST_AHEAD: u64 = 1 << 20;
/// Zeros written per step: the file's inode lock is held for one, which
/// the appender may wait for.
const STEP: usize = 64 << 10;

/// How far past `written` the file is kept in zeros: a quarter of the log,
/// between [`LEAST_AHEAD`] and [`MOST_AHEAD`].
fn ahead(written: u64) -> u64 {
    (written / 4).clamp(LEAST_AHEAD, MOST_AHEAD)
}

/// What the appender and the helper share.
struct Shared {
    /// Where the records end, published after each write.
    written: AtomicU64,
    /// Below it, every byte is a record or the helper's zeros.
    prepared: AtomicU64,
    /// Held by whoever writes at or past `prepared`.
    zeroing: Mutex<()>,
    stop: AtomicBool,
}

/// The helper and how to reach it.
pub(super) struct Ahead {
    shared: Arc<Shared>,
    helper: Option<JoinHandle<()>>,
}

impl Ahead {
    /// Starts preparing `file`, whose records end at `end` (and whose
    /// length is `end`: the zeros start there).
    pub fn start(file: &File, end: u64) -> std::io::Result<Ahead> {
        let file = file.try_clone()?;
        let shared = Arc::new(Shared {
            written: AtomicU64::new(end),
            prepared: AtomicU64::new(end),
            zeroing: Mutex::new(()),
            stop: AtomicBool::new(false),
        });
        let theirs = Arc::clone(&shared);
        let helper = std::thread::Builder::new()
            .name("fill-log-ahead".into())
            .spawn(move || prepare(&file, &theirs))?;
        Ok(Ahead {
            shared,
            helper: Some(helper),
        })
    }

    /// Writes `bytes` to `file` at `at`, where the records end.
    pub fn write(&self, file: &File, bytes: &[u8], at: u64) -> std::io::Result<()> {
        let shared = &*self.shared;
        let end = at + bytes.len() as u64;
        if end <= shared.prepared.load(Ordering::Acquire) {
            file.write_all_at(bytes, at)?;
        } else {
            let _only_writer = shared.zeroing.lock().unwrap_or_else(|e| e.into_inner());
            file.write_all_at(bytes, at)?;
            shared.prepared.fetch_max(end, Ordering::Release);
        }
        shared.written.store(end, Ordering::Release);
        if shared.prepared.load(Ordering::Relaxed) < end + ahead(end) / 2 {
            if let Some(helper) = &self.helper {
                helper.thread().unpark();
            }
        }
        Ok(())
    }

    /// Stops the helper and waits for it: no zeros are written after this
    /// returns (writes still work, each extending the file itself).
    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(helper) = self.helper.take() {
            helper.thread().unpark();
            let _ = helper.join();
        }
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The helper: zeros up to [`ahead`] past the records, then sleeps until
/// the appender has used half of them.
fn prepare(file: &File, shared: &Shared) {
    let zeros = vec![0u8; STEP];
    while !shared.stop.load(Ordering::Acquire) {
        let written = shared.written.load(Ordering::Acquire);
        if shared.prepared.load(Ordering::Acquire) >= written + ahead(written) {
            std::thread::park();
            continue;
        }
        let _only_writer = shared.zeroing.lock().unwrap_or_else(|e| e.into_inner());
        let at = shared.prepared.load(Ordering::Acquire);
        if let Err(e) = file.write_all_at(&zeros, at) {
            // The appender goes on without zeros ahead (every write then
            // extends the file itself, as before).
            tracing::warn!(error = %e, "fill log: preparing pages ahead stopped");
            return;
        }
        shared.prepared.store(at + STEP as u64, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> (std::path::PathBuf, File) {
        let dir = std::env::temp_dir().join(format!("tonnex-ahead-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("fills.log");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .unwrap();
        (dir, file)
    }

    fn wait_for(what: impl Fn() -> bool) {
        for _ in 0..10_000 {
            if what() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        panic!("not reached in 10 s");
    }

    #[test]
    fn zeros_run_ahead_of_the_records_and_never_over_them() {
        let (dir, file) = scratch("run");
        let ahead_of = Ahead::start(&file, 0).unwrap();
        wait_for(|| file.metadata().unwrap().len() >= LEAST_AHEAD);
        // Records written in steps of odd sizes, over the zeros and past
        // them: every byte as written, zeros after.
        let mut at = 0u64;
        let mut expected = Vec::new();
        for i in 0..600u32 {
            let record: Vec<u8> = (0..(1000 + i * 7)).map(|b| (b % 251 + 1) as u8).collect();
            ahead_of.write(&file, &record, at).unwrap();
            at += record.len() as u64;
            expected.extend_from_slice(&record);
        }
        // The helper is woken once less than half the distance is left, so
        // at least that much is prepared once it is done.
        wait_for(|| file.metadata().unwrap().len() >= at + ahead(at) / 2);
        drop(ahead_of);
        let on_disk = std::fs::read(dir.join("fills.log")).unwrap();
        assert_eq!(&on_disk[..expected.len()], &expected[..]);
        assert!(on_disk[expected.len()..].iter().all(|&b| b == 0));
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn a_write_past_the_zeros_moves_them_on() {
        let (dir, file) = scratch("past");
        let ahead_of = Ahead::start(&file, 0).unwrap();
        // Farther than the helper could have prepared yet.
        let record = vec![7u8; 3 << 20];
        ahead_of.write(&file, &record, 0).unwrap();
        assert!(ahead_of.shared.prepared.load(Ordering::Acquire) >= record.len() as u64);
        wait_for(|| file.metadata().unwrap().len() >= record.len() as u64 + LEAST_AHEAD);
        drop(ahead_of);
        let on_disk = std::fs::read(dir.join("fills.log")).unwrap();
        assert!(on_disk[..record.len()].iter().all(|&b| b == 7));
        assert!(on_disk[record.len()..].iter().all(|&b| b == 0));
        std::fs::remove_dir_all(dir).ok();
    }
}
