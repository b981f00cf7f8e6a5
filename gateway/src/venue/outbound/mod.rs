//! Each account's sequenced messages (execution reports and answers to its
//! requests), numbered 1, 2, 3... and kept for replay across reconnects and
//! venue restarts, as SoupBinTCP keeps a session for the trading day.
//!
//! The log is a file in the journal folder, `outbound.log`:
//!
//! ```text
//! header:  "TNXOUT01" (8 bytes), session id u64 LE
//! record:  length u32 LE, account u64 LE, the frame as sent (length bytes)
//! ```
//!
//! A message is in the file (one `write` per event-loop round, before any
//! socket write of that round; under `batch` and `sync` durability also
//! `fdatasync`ed) before any client can have it, so after a restart the
//! sequence goes on above everything a client saw. A record cut short by a
//! crash was never sent and is dropped at the next start, and so are the
//! zeros a compaction leaves after the records (no record has length 0).
//! When the file has grown well past what the replay windows hold,
//! a helper thread rewrites a spare file with just those windows, which
//! then takes the log's name ([`compact`]), off the gateway thread. The
//! session id is drawn when the file is created; it names the sequence
//! space, so a client that sees a new one starts over.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::hash::BuildHasherDefault;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tonnex_engine::accounts::IntHasher;
use tonnex_engine::venue::sessions::Records;
use tonnex_protocol::frame;
use tonnex_protocol::wire::{Sequenced, VenueMessage};

mod compact;
mod replicated;
mod stream;

use self::compact::Compaction;
pub use self::stream::Stream;

const MAGIC: &[u8; 8] = b"TNXOUT01";
const HEADER: usize = 16;
/// Bytes before a record's frame: its length and account.
const RECORD_HEAD: usize = 12;
/// Smallest file size that is ever compacted.
const COMPACT_MIN_BYTES: u64 = 64 << 20;

/// Why the outbound log could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {what}")]
pub struct OutboundError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    pub what: String,
}

/// Every account's stream and the file behind them.
pub struct Outbound {
    path: PathBuf,
    /// None on a cluster node: the log's `Reports` commands keep the
    /// messages instead ([`replicated`]).
    file: Option<File>,
    session_id: u64,
    streams: HashMap<u64, Stream, BuildHasherDefault<IntHasher>>,
    capacity: usize,
    /// Records not yet written to the file.
    buffer: Vec<u8>,
    file_bytes: u64,
    /// `file_bytes` for a compaction's helper, which follows the appends.
    live_end: Arc<AtomicU64>,
    /// Bytes the replay windows hold (what a compaction keeps).
    window_bytes: u64,
    sync: bool,
    compaction: Option<Compaction>,
}

impl Outbound {
    /// Opens (or creates, drawing a session id from `new_session_id`) the
    /// log in `dir`, keeping the last `capacity` messages per account;
    /// `sync` makes every write `fdatasync`.
    pub fn open(
        dir: &Path,
        capacity: usize,
        sync: bool,
        new_session_id: u64,
    ) -> Result<Outbound, OutboundError> {
        let path = dir.join("outbound.log");
        let fail = |what: String| OutboundError {
            path: path.clone(),
            what,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| fail(e.to_string()))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| fail(e.to_string()))?;
        let mut log = Outbound::without_file(path.clone(), capacity, sync, new_session_id);
        if bytes.len() < HEADER {
            // New (or cut before its header was whole): start a session.
            log.rewrite_empty(&mut file)
                .map_err(|e| fail(e.to_string()))?;
            log.file = Some(file);
            return Ok(log);
        }
        if &bytes[..8] != MAGIC {
            return Err(fail(
                "not a tonnex outbound log (bad magic); move it away to start a new session".into(),
            ));
        }
        log.session_id = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
        let mut records = Records(&bytes[HEADER..]);
        let mut at = HEADER;
        while let Some((account, seq, framed)) = records.next() {
            // A compacted file starts each account past 1.
            let stream = log
                .streams
                .entry(account)
                .or_insert_with(|| Stream::starting_at(seq));
            if seq != stream.next_seq {
                return Err(fail(format!(
                    "offset {at}: account {account} message {seq} follows {}",
                    stream.next_seq - 1
                )));
            }
            log.window_bytes = log
                .window_bytes
                .wrapping_add(stream.keep(framed, log.capacity));
            at = bytes.len() - records.0.len();
        }
        if at < bytes.len() {
            // A record cut short by a crash: never sent, dropped.
            file.set_len(at as u64).map_err(|e| fail(e.to_string()))?;
        }
        log.file_bytes = at as u64;
        log.file = Some(file);
        Ok(log)
    }

    /// Streams with no file behind them (yet).
    fn without_file(path: PathBuf, capacity: usize, sync: bool, session_id: u64) -> Outbound {
        Outbound {
            path,
            file: None,
            session_id,
            streams: HashMap::default(),
            capacity: capacity.max(1),
            buffer: Vec::with_capacity(1 << 16),
            file_bytes: 0,
            live_end: Arc::default(),
            window_bytes: 0,
            sync,
            compaction: None,
        }
    }

    fn rewrite_empty(&mut self, file: &mut File) -> std::io::Result<()> {
        file.set_len(0)?;
        let header = self.header();
        file.write_all_at(&header, 0)?;
        file.sync_all()?;
        self.file_bytes = HEADER as u64;
        Ok(())
    }

    /// The session id (see the module documentation).
    #[must_use]
    pub fn session_id(&self) -> u64 {
        self.session_id
    }

    /// An account's stream, if it has had a message.
    #[must_use]
    pub fn stream(&self, account: u64) -> Option<&Stream> {
        self.streams.get(&account)
    }

    /// The sequence number `account`'s next message gets.
    #[must_use]
    pub fn next_seq(&self, account: u64) -> u64 {
        self.streams.get(&account).map_or(1, |s| s.next_seq)
    }

    /// Numbers `message` in `account`'s stream, keeps it for replay and the
    /// file, and returns its frame.
    pub fn push(&mut self, account: u64, message: VenueMessage) -> &[u8] {
        let stream = self.streams.entry(account).or_default();
        let at = self.buffer.len();
        self.buffer.extend_from_slice(&[0; RECORD_HEAD]);
        let seq = stream.next_seq;
        frame::encode_into(&Sequenced { seq, message }, &mut self.buffer);
        let len = (self.buffer.len() - at - RECORD_HEAD) as u32;
        self.buffer[at..at + 4].copy_from_slice(&len.to_le_bytes());
        self.buffer[at + 4..at + 12].copy_from_slice(&account.to_le_bytes());
        let framed = &self.buffer[at + RECORD_HEAD..];
        self.window_bytes = self
            .window_bytes
            .wrapping_add(stream.keep(framed, self.capacity));
        framed
    }

    /// Whether messages wait to be written.
    #[must_use]
    pub fn has_pending(&self) -> bool {
        !self.buffer.is_empty()
    }

    /// Writes what was pushed since the last call to the file (and syncs it
    /// under `sync`): called before any socket write of the round.
    pub fn write_pending(&mut self) -> Result<(), OutboundError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let Some(file) = self.file.as_mut() else {
            // A cluster leader's: the round's records went into the log.
            self.buffer.clear();
            return Ok(());
        };
        let fail = |e: std::io::Error| OutboundError {
            path: self.path.clone(),
            what: e.to_string(),
        };
        // At where the records end, not the file's end: after a compaction
        // the file goes on in zeros, the pages appended over.
        file.write_all_at(&self.buffer, self.file_bytes)
            .map_err(fail)?;
        if self.sync {
            file.sync_data().map_err(fail)?;
        }
        self.file_bytes += self.buffer.len() as u64;
        self.live_end.store(self.file_bytes, Ordering::Release);
        self.buffer.clear();
        self.compact_in_background()
    }

    /// Starts rewriting the file with just the replay windows (same
    /// session id) on a helper thread, or completes a rewrite the helper
    /// has finished.
    fn compact_in_background(&mut self) -> Result<(), OutboundError> {
        if let Some(running) = &self.compaction {
            if !running.is_finished() {
                return Ok(());
            }
            let running = self.compaction.take().expect("checked");
            let Some(current) = &self.file else {
                return Ok(());
            };
            let from_bytes = self.file_bytes;
            let (file, length, tail_bytes) = running
                .finish(current, self.file_bytes, &self.path, self.sync)
                .map_err(|e| OutboundError {
                    path: self.path.clone(),
                    what: format!("compaction: {e}"),
                })?;
            tracing::info!(
                from_bytes,
                to_bytes = length,
                tail_bytes,
                "outbound log compacted"
            );
            if let Some(replaced) = self.file.replace(file) {
                // Now the spare (a close of nothing much), or, where names
                // could not be exchanged, unlinked: closing it then frees its
                // pages, milliseconds for hundreds of MiB, not on the event loop.
                std::thread::spawn(move || drop(replaced));
            }
            self.file_bytes = length;
            return Ok(());
        }
        if self.file.is_some() && self.file_bytes > COMPACT_MIN_BYTES.max(4 * self.window_bytes) {
            let keep_from = self
                .streams
                .iter()
                .map(|(&account, stream)| (account, stream.first_seq))
                .collect();
            self.live_end.store(self.file_bytes, Ordering::Release);
            self.compaction = Some(Compaction::start(
                &self.path,
                self.file_bytes,
                Arc::clone(&self.live_end),
                self.header(),
                keep_from,
                self.sync,
            ));
        }
        Ok(())
    }

    fn header(&self) -> Vec<u8> {
        let mut header = Vec::with_capacity(HEADER);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&self.session_id.to_le_bytes());
        header
    }

    /// Compacts now and waits for it (tests).
    #[cfg(test)]
    fn compact_now(&mut self) -> Result<(), OutboundError> {
        self.live_end.store(self.file_bytes, Ordering::Release);
        self.compaction = Some(Compaction::start(
            &self.path,
            self.file_bytes,
            Arc::clone(&self.live_end),
            self.header(),
            self.streams
                .iter()
                .map(|(&account, stream)| (account, stream.first_seq))
                .collect(),
            self.sync,
        ));
        while self.compaction.as_ref().is_some_and(|c| !c.is_finished()) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        self.compact_in_background()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("tonnex-outbound-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn text(n: u64) -> VenueMessage {
        VenueMessage::SessionError {
            text: format!("message {n}"),
        }
    }

    #[test]
    fn sequences_and_replay_windows_survive_a_reopen_and_a_torn_tail() {
        let dir = scratch("reopen");
        let mut log = Outbound::open(&dir, 3, false, 77).unwrap();
        assert_eq!(log.session_id(), 77);
        for n in 1..=5 {
            log.push(1, text(n));
        }
        log.push(2, text(1));
        log.write_pending().unwrap();
        // Half a record at the end, as a crash mid-write leaves it.
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.join("outbound.log"))
            .unwrap();
        file.write_all(&[200, 0, 0, 0, 1, 0]).unwrap();
        drop(log);

        let mut log = Outbound::open(&dir, 3, false, 99).unwrap();
        assert_eq!(log.session_id(), 77, "the session goes on");
        assert_eq!(log.next_seq(1), 6);
        assert_eq!(log.next_seq(2), 2);
        assert_eq!(log.next_seq(3), 1);
        let stream = log.stream(1).unwrap();
        assert_eq!((stream.first_seq, stream.len()), (3, 3));
        // Replay from message 4: two frames, the first of them message 4.
        let mut replay = Vec::new();
        stream.replay_into(4, &mut replay);
        let (payload, used) = frame::split(&replay, 4096).unwrap().unwrap();
        assert_eq!(frame::decode::<Sequenced>(payload).unwrap().seq, 4);
        let (payload, _) = frame::split(&replay[used..], 4096).unwrap().unwrap();
        assert_eq!(frame::decode::<Sequenced>(payload).unwrap().seq, 5);
        let framed = log.push(1, text(6)).to_vec();
        let (payload, _) = frame::split(&framed, 4096).unwrap().unwrap();
        let sequenced: Sequenced = frame::decode(payload).unwrap();
        assert_eq!(sequenced.seq, 6);
        log.write_pending().unwrap();
        drop(log);
        let log = Outbound::open(&dir, 3, false, 99).unwrap();
        assert_eq!(log.next_seq(1), 7);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn compaction_keeps_the_windows_and_the_session() {
        let dir = scratch("compact");
        let mut log = Outbound::open(&dir, 2, false, 5).unwrap();
        for n in 1..=10 {
            log.push(9, text(n));
        }
        log.write_pending().unwrap();
        let before = std::fs::metadata(dir.join("outbound.log")).unwrap().len();
        log.compact_now().unwrap();
        // Written while nothing was compacting, and kept.
        log.push(9, text(11));
        log.write_pending().unwrap();
        drop(log);
        let after = std::fs::metadata(dir.join("outbound.log")).unwrap().len();
        assert!(after < before, "{after} < {before}");
        let log = Outbound::open(&dir, 2, false, 6).unwrap();
        assert_eq!(log.session_id(), 5);
        assert_eq!(log.next_seq(9), 12);
        assert_eq!(log.stream(9).unwrap().first_seq, 10);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn compaction_rewrites_the_spare_over_what_it_held_and_swaps_it_in() {
        let dir = scratch("spare");
        let (log_path, spare) = (dir.join("outbound.log"), dir.join("outbound.log.next"));
        // A spare longer than the compacted log, of bytes that would parse
        // as records if they were left after it.
        let mut stale = Vec::new();
        while stale.len() < 8192 {
            let mut frame = vec![0u8; frame::HEADER_BYTES];
            frame.extend_from_slice(&999u64.to_le_bytes());
            stale.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            stale.extend_from_slice(&9u64.to_le_bytes());
            stale.extend_from_slice(&frame);
        }
        std::fs::write(&spare, &stale).unwrap();
        let mut log = Outbound::open(&dir, 2, false, 5).unwrap();
        for n in 1..=10 {
            log.push(9, text(n));
        }
        log.write_pending().unwrap();
        let first = std::fs::read(&log_path).unwrap();
        log.compact_now().unwrap();
        // The old log is the spare now.
        assert_eq!(std::fs::read(&spare).unwrap(), first);
        let compacted = std::fs::read(&log_path).unwrap();
        assert_eq!(compacted.len(), stale.len(), "written over, not cut");
        let end = log.file_bytes as usize;
        assert!(
            compacted[end..].iter().all(|&b| b == 0),
            "zeros after the records"
        );
        // Appended where the records end, over the zeros; then a second
        // compaction writes over the first log.
        for n in 11..=20 {
            log.push(9, text(n));
        }
        log.write_pending().unwrap();
        log.compact_now().unwrap();
        log.push(9, text(21));
        log.write_pending().unwrap();
        assert_eq!(
            std::fs::metadata(&log_path).unwrap().len(),
            first.len() as u64
        );
        drop(log);
        let log = Outbound::open(&dir, 2, false, 6).unwrap();
        assert_eq!(log.session_id(), 5);
        assert_eq!(log.next_seq(9), 22);
        let stream = log.stream(9).unwrap();
        assert_eq!((stream.first_seq, stream.len()), (20, 2));
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn a_foreign_file_is_an_error_naming_it() {
        let dir = scratch("foreign");
        std::fs::write(dir.join("outbound.log"), b"something else entirely").unwrap();
        let error = Outbound::open(&dir, 2, false, 1).err().unwrap();
        assert!(error
            .to_string()
            .contains("outbound.log: not a tonnex outbound log"));
        std::fs::remove_dir_all(dir).ok();
    }
}
