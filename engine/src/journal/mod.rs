//! The journal: every command the engine applies, appended first.
//!
//! A journal is a folder of preallocated segment files,
//! `journal-<first_seq>.seg` (sequence zero-padded to 20 digits, so name
//! order is sequence order), written through a shared memory map. Each
//! segment opens with a 64-byte header (magic, version, first sequence
//! number, the engine configuration) and holds records back to back:
//!
//! ```text
//! offset  size  field
//!      0     4  payload length in bytes, u32 LE (0: end of the log)
//!      4     8  sequence number, u64 LE
//!     12     4  CRC32C of bytes 0..12 and the payload, u32 LE
//!     16     n  payload: the `Command`, in the fixed layout of `codec.rs`
//!   16+n     p  zero padding to a multiple of 8
//! ```
//!
//! Appending writes the sequence, checksum and payload first and the length
//! last (a release store), so a record is either whole or, to a reader,
//! absent; zero-filled preallocated space is the end of the log. Recovery
//! ([`recover`]) tells a torn final record (garbage followed only by zeros,
//! in the newest segment: it was never acknowledged) from corruption (a bad
//! record with data after it: an error naming the file and offset).
//!
//! Durability ([`Durability`]): what an acknowledged command survives.
//! * `Process` (default): no system call per record. The record is in the
//!   kernel's page cache the moment it is written, so it survives the venue
//!   process dying in any way (`kill -9`, a panic, an abort), but not the
//!   machine losing power or the kernel crashing.
//! * `Batch`: `msync` every N records or T microseconds (group commit); the
//!   venue acknowledges only commands at or below [`Journal::durable_seq`].
//!   Survives power loss for everything acknowledged.
//! * `Sync`: `msync` after every record: power-loss safe, one system call
//!   (and a device flush) per command.

mod admin_codec;
pub mod codec;
pub mod crc;
mod read_back;
mod reader;
mod recover;
mod segment;
mod truncate;
mod writer;

pub use read_back::{read_commands, read_commands_at, read_framed_at, ReadBack, ReadPosition};
pub use reader::{dump, DumpLine};
pub use recover::{
    locate_end, recover, JournalEnd, OrderStatus, RecoverOptions, Recovered, TornTail,
};
pub use segment::{segment_name, SegmentHeader, HEADER_BYTES, RECORD_HEADER_BYTES};
pub use writer::{Journal, JournalConfig, DEFAULT_SEGMENT_BYTES};

use std::path::PathBuf;

/// When appended records are forced to stable storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Never explicitly: the page cache holds them (survives a process crash).
    Process,
    /// `msync` once `records` are pending or `micros` have passed.
    Batch {
        /// Records per group commit.
        records: u32,
        /// Longest a record waits for its group commit, in microseconds.
        micros: u64,
    },
    /// `msync` after every record.
    Sync,
}

impl Durability {
    /// Parses `process`, `sync` or `batch:RECORDS:MICROS`.
    pub fn parse(text: &str) -> Result<Durability, String> {
        match text {
            "process" => Ok(Durability::Process),
            "sync" => Ok(Durability::Sync),
            other => {
                let parts: Vec<&str> = other.split(':').collect();
                match parts.as_slice() {
                    ["batch", records, micros] => {
                        let records = records.parse().ok().filter(|&n| n > 0);
                        let micros = micros.parse().ok();
                        match (records, micros) {
                            (Some(records), Some(micros)) => {
                                Ok(Durability::Batch { records, micros })
                            }
                            _ => Err(format!(
                                "bad batch policy '{other}': want batch:RECORDS:MICROS"
                            )),
                        }
                    }
                    _ => Err(format!(
                        "unknown durability '{other}': process, sync or batch:RECORDS:MICROS"
                    )),
                }
            }
        }
    }
}

/// Why an append failed. After any of these but `Gap` the journal is
/// poisoned: it refuses every later append, and the venue must stop
/// acknowledging and exit rather than carry on over a failed write.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The command's sequence number does not follow the last one.
    #[error("journal refuses sequence {got}: expected {expected}")]
    Gap {
        /// The sequence number that would have been contiguous.
        expected: u64,
        /// The one offered.
        got: u64,
    },
    /// Creating, sizing, mapping or syncing a segment failed.
    #[error("journal segment {path}: {source}")]
    Io {
        /// The segment.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A variable-length record would exceed the largest payload a record
    /// may have (the gateway bounds what it sends, so this is a bug).
    #[error("journal refuses sequence {seq}: {bytes} bytes exceed the largest record")]
    TooLarge {
        /// The command's sequence number.
        seq: u64,
        /// Its encoded size.
        bytes: usize,
    },
    /// An earlier write or sync failed; nothing more is accepted.
    #[error("journal is poisoned by an earlier failed write")]
    Poisoned,
}

/// Why recovery could not rebuild the state.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    /// A file could not be listed, opened, mapped or read.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A bad record, header or sequence with data after it: never skipped.
    #[error("{path}: corrupt at offset {offset}: {what}")]
    Corrupt {
        /// The segment.
        path: PathBuf,
        /// Byte offset of the bad record (or header) in it.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// The journal does not reach back to sequence 1 and no snapshot covers the gap.
    #[error("{path}: journal starts at sequence {first} and no snapshot covers 1..{first}")]
    MissingStart {
        /// The oldest segment.
        path: PathBuf,
        /// Its first sequence number.
        first: u64,
    },
}
