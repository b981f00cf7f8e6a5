//! The fill log and the fill-stream server.
//!
//! `fills.log` in the journal folder holds every settlement-relevant event
//! the engine produced, each a bincode [`StreamRecord`]. The engine thread appends (see
//! [`super::core`] for the ordering that makes the log a superset of the
//! journal); subscribers are served by one thread each, reading the file from
//! the sequence number they ask for and then following it live, so a slow or
//! restarting subscriber never holds up the engine and loses nothing.
//!
//! Record layout: `u32 CRC32C of the payload | u32 length | payload`; the last
//! two fields are exactly the frame a subscriber receives.
//!
//! While the venue runs, the file goes on in zeros past its last record
//! (pages prepared off the event loop, [`ahead`]); a length of 0 ends the
//! records, and the zeros are cut at a clean stop and at the next start.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tonnex_engine::fill_log;
use tonnex_engine::journal::crc::crc32c;
use tonnex_engine::{Asset, Command};
use tonnex_protocol::frame;
use tonnex_protocol::wire::{StreamEvent, StreamRecord, StreamSubscribe};

use crate::config::FillSubscriber;

#[path = "fills_ahead.rs"]
mod ahead;

/// The fill log's file name inside the journal folder.
pub use tonnex_engine::fill_log::FILE_NAME;

/// A sparse index entry every this many records.
const INDEX_EVERY: u64 = 4096;

/// What the writer publishes to the stream threads.
#[derive(Default)]
pub struct Shared {
    /// Bytes of whole records in the file.
    committed: AtomicU64,
    /// `(seq, offset)` of every `INDEX_EVERY`-th record, for subscribers
    /// starting mid-stream.
    index: Mutex<Vec<(u64, u64)>>,
}

/// The appending side, owned by the engine thread.
pub struct FillLog {
    path: PathBuf,
    file: File,
    buffer: Vec<u8>,
    next_seq: u64,
    bytes: u64,
    shared: Arc<Shared>,
    /// A cluster leader's log: records are published only once their
    /// commands are committed ([`FillLog::publish_through`]).
    hold: bool,
    /// Held: `(last journal sequence, file end)` of each flush.
    marks: std::collections::VecDeque<(u64, u64)>,
    last_journal_seq: u64,
    /// The helper keeping the next pages in zeros ([`ahead`]).
    ahead: ahead::Ahead,
}

/// Why the fill log could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum FillLogError {
    /// I/O.
    #[error("fill log {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The journal has records but the fill log is gone.
    #[error("fill log {path} is missing but the journal holds {records} commands: restore it from a backup (settlement would miss their events)")]
    Missing {
        /// The expected file.
        path: PathBuf,
        /// Journal records.
        records: u64,
    },
}

/// One record read back.
struct Scanned {
    record: StreamRecord,
    offset: u64,
    end: u64,
}

/// The record at `offset` of `reader` (see [`tonnex_engine::fill_log`]).
fn read_record(reader: &mut impl Read, offset: u64) -> Option<Scanned> {
    let (record, bytes) = fill_log::read_record(reader)?;
    Some(Scanned {
        record,
        offset,
        end: offset + bytes,
    })
}

impl FillLog {
    /// Opens (or creates) the log in `dir` and cuts it back to the journal:
    /// a torn tail, and records of commands after `journal_last_seq` (never
    /// acknowledged), are removed.
    pub fn open(
        dir: &Path,
        journal_last_seq: u64,
        journal_records: u64,
    ) -> Result<FillLog, FillLogError> {
        let path = dir.join(FILE_NAME);
        let io = |source| FillLogError::Io {
            path: path.clone(),
            source,
        };
        if !path.exists() && journal_records > 0 {
            return Err(FillLogError::Missing {
                path,
                records: journal_records,
            });
        }
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        let shared = Arc::new(Shared::default());
        let mut keep = 0u64;
        let mut next_seq = 1u64;
        {
            let mut reader = BufReader::with_capacity(1 << 20, &mut file);
            let mut index = shared.index.lock().expect("fresh lock");
            while let Some(scanned) = read_record(&mut reader, keep) {
                if scanned.record.journal_seq > journal_last_seq || scanned.record.seq != next_seq {
                    break;
                }
                if (scanned.record.seq - 1).is_multiple_of(INDEX_EVERY) {
                    index.push((scanned.record.seq, scanned.offset));
                }
                next_seq += 1;
                keep = scanned.end;
            }
        }
        let length = file.metadata().map_err(io)?.len();
        if length != keep {
            if zeros_from(&file, keep).map_err(io)? {
                // The pages prepared ahead, left by a stop without a close.
                tracing::debug!(path = %path.display(), zeros = length - keep, "fill log: zeros after the records cut");
            } else {
                tracing::warn!(
                    path = %path.display(),
                    kept = keep,
                    cut = length - keep,
                    "fill log cut back to the journal"
                );
            }
            file.set_len(keep).map_err(io)?;
        }
        shared.committed.store(keep, Ordering::Release);
        let ahead = ahead::Ahead::start(&file, keep).map_err(io)?;
        Ok(FillLog {
            path,
            file,
            buffer: Vec::with_capacity(1 << 16),
            next_seq,
            bytes: keep,
            shared,
            hold: false,
            marks: std::collections::VecDeque::new(),
            last_journal_seq: 0,
            ahead,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the stream threads need.
    pub fn shared(&self) -> Arc<Shared> {
        Arc::clone(&self.shared)
    }

    /// Buffers one record for command `journal_seq`.
    pub fn push(&mut self, journal_seq: u64, event: StreamEvent) {
        self.last_journal_seq = journal_seq;
        let record = StreamRecord {
            seq: self.next_seq,
            journal_seq,
            event,
        };
        // CRC first, then the frame exactly as subscribers receive it.
        let start = self.buffer.len();
        self.buffer.extend_from_slice(&[0; 4]);
        frame::encode_into(&record, &mut self.buffer);
        let crc = crc32c(&self.buffer[start + 8..]);
        self.buffer[start..start + 4].copy_from_slice(&crc.to_le_bytes());
        if (self.next_seq - 1).is_multiple_of(INDEX_EVERY) {
            let offset = self.bytes + start as u64;
            self.shared
                .index
                .lock()
                .expect("index lock")
                .push((self.next_seq, offset));
        }
        self.next_seq += 1;
    }

    /// Writes buffered records to the file (the page cache: they survive a
    /// crash of the process) and publishes them to subscribers.
    pub fn flush(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.ahead.write(&self.file, &self.buffer, self.bytes)?;
        self.bytes += self.buffer.len() as u64;
        self.buffer.clear();
        if self.hold {
            self.marks.push_back((self.last_journal_seq, self.bytes));
        } else {
            self.shared.committed.store(self.bytes, Ordering::Release);
        }
        Ok(())
    }

    /// From now on, records written are published to subscribers only by
    /// [`FillLog::publish_through`] (a cluster leader's records wait for
    /// their commands to commit: a new leader may overwrite them).
    pub fn hold_until_committed(&mut self) {
        self.hold = true;
    }

    /// Publishes the records of commands up to `journal_seq`.
    pub fn publish_through(&mut self, journal_seq: u64) {
        let mut end = None;
        while let Some(&(seq, bytes)) = self.marks.front() {
            if seq > journal_seq {
                break;
            }
            end = Some(bytes);
            self.marks.pop_front();
        }
        if let Some(bytes) = end {
            self.shared.committed.store(bytes, Ordering::Release);
        }
    }
}

impl Drop for FillLog {
    /// Stops the helper and cuts its zeros: a log closed cleanly ends at
    /// its last record.
    fn drop(&mut self) {
        self.ahead.stop();
        if let Err(e) = self.file.set_len(self.bytes) {
            tracing::warn!(path = %self.path.display(), error = %e, "fill log: zeros after the records not cut");
        }
    }
}

/// Whether `file` holds only zeros from `from` to its end.
fn zeros_from(file: &File, from: u64) -> std::io::Result<bool> {
    let mut chunk = vec![0u8; 1 << 20];
    let end = file.metadata()?.len();
    let mut at = from;
    while at < end {
        let n = (end - at).min(chunk.len() as u64) as usize;
        file.read_exact_at(&mut chunk[..n], at)?;
        if chunk[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
        at += n as u64;
    }
    Ok(true)
}

/// Serves the fill stream on `listener` until `stop` is set, to the
/// configured `subscribers` only: one thread per subscriber.
pub fn serve(
    listener: TcpListener,
    path: PathBuf,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    subscribers: Arc<Vec<FillSubscriber>>,
) {
    listener
        .set_nonblocking(true)
        .expect("listener to non-blocking");
    while !stop.load(Ordering::Acquire) {
        match listener.accept() {
            Ok((stream, peer)) => {
                let (path, shared, stop) = (path.clone(), Arc::clone(&shared), Arc::clone(&stop));
                let subscribers = Arc::clone(&subscribers);
                std::thread::spawn(move || {
                    if let Err(e) = follow(stream, &path, &shared, &stop, &subscribers) {
                        tracing::info!(%peer, error = %e, "fill-stream subscriber gone");
                    }
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                tracing::warn!(error = %e, "fill-stream accept failed");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// One subscriber: reads its `StreamSubscribe`, checks its name and key
/// (refused: one `Refused` record with `seq` 0, then the connection
/// closes), then sends every record from that sequence on (those about its
/// accounts, if it is limited to some), following the file as it grows.
fn follow(
    mut stream: TcpStream,
    path: &Path,
    shared: &Shared,
    stop: &AtomicBool,
    subscribers: &[FillSubscriber],
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut header = [0u8; 4];
    stream.read_exact(&mut header)?;
    let length = u32::from_le_bytes(header) as usize;
    if length == 0 || length > 1024 {
        return Err(std::io::Error::other(format!(
            "subscription frame of {length} bytes"
        )));
    }
    let mut payload = vec![0u8; length];
    stream.read_exact(&mut payload)?;
    let subscription = frame::decode::<StreamSubscribe>(&payload)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let Some(subscriber) = subscribers.iter().find(|s| {
        s.name == subscription.name
            && super::session::constant_time_eq(s.key.as_bytes(), subscription.key.as_bytes())
    }) else {
        tracing::warn!(
            name = %subscription.name,
            "fill-stream subscription refused: unknown name or wrong key"
        );
        let refusal = StreamRecord {
            seq: 0,
            journal_seq: 0,
            event: StreamEvent::Refused {
                text: "unknown subscriber or wrong key".into(),
            },
        };
        stream.write_all(&frame::encode(&refusal))?;
        return Ok(());
    };
    tracing::info!(name = %subscriber.name, from_seq = subscription.from_seq, "fill-stream subscriber");
    let only = subscriber.accounts.as_deref();
    let from_seq = subscription.from_seq.max(1);

    // Start at the last indexed record at or before the one wanted.
    let start_offset = {
        let index = shared.index.lock().expect("index lock");
        let at = index.partition_point(|&(seq, _)| seq <= from_seq);
        at.checked_sub(1).map_or(0, |i| index[i].1)
    };
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(start_offset))?;
    let mut offset = start_offset;
    let mut out = Vec::with_capacity(1 << 16);
    let mut pending = Vec::new();
    while !stop.load(Ordering::Acquire) {
        let committed = shared.committed.load(Ordering::Acquire);
        if offset >= committed {
            if !out.is_empty() {
                stream.write_all(&out)?;
                out.clear();
            }
            std::thread::sleep(Duration::from_micros(500));
            continue;
        }
        // Read only whole, committed records.
        let want = (committed - offset).min(1 << 20) as usize;
        pending.resize(want, 0);
        file.read_exact(&mut pending)?;
        let mut at = 0usize;
        while at + 8 <= pending.len() {
            let length =
                u32::from_le_bytes(pending[at + 4..at + 8].try_into().expect("4")) as usize;
            if at + 8 + length > pending.len() {
                break;
            }
            let payload = &pending[at + 8..at + 8 + length];
            // seq is the first field of the payload.
            let seq = u64::from_le_bytes(payload[..8].try_into().expect("8"));
            let wanted = seq >= from_seq
                && only.is_none_or(|accounts| {
                    frame::decode::<StreamRecord>(payload)
                        .is_ok_and(|record| record.event.concerns(accounts))
                });
            if wanted {
                out.extend_from_slice(&(length as u32).to_le_bytes());
                out.extend_from_slice(payload);
            }
            at += 8 + length;
        }
        offset += at as u64;
        file.seek(SeekFrom::Start(offset))?;
        if out.len() >= 1 << 15 {
            stream.write_all(&out)?;
            out.clear();
        }
    }
    Ok(())
}

/// The fill-stream event of an admin command with no annotation.
pub(super) fn admin_event(command: &Command) -> Option<StreamEvent> {
    match *command {
        Command::Deposit { account, asset } => Some(match asset {
            Asset::Cash(cash) => StreamEvent::CashDeposit {
                account,
                amount_micros: cash.0,
            },
            Asset::Credits { instrument, qty } => StreamEvent::CreditDeposit {
                account,
                instrument,
                qty: qty.tonnes(),
                lot: None,
            },
        }),
        Command::Withdraw { account, asset } => Some(match asset {
            Asset::Cash(cash) => StreamEvent::CashWithdrawal {
                account,
                amount_micros: cash.0,
            },
            Asset::Credits { instrument, qty } => StreamEvent::CreditWithdrawal {
                account,
                instrument,
                qty: qty.tonnes(),
            },
        }),
        Command::AddInstrument { instrument, spec } => Some(StreamEvent::Instrument {
            instrument,
            symbol: spec.symbol.as_str().to_string(),
            sub_ledger: String::new(),
            tick_micros: spec.tick_micros,
        }),
        _ => None,
    }
}
