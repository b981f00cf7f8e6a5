//! Snapshots: the whole engine state at one sequence number, so recovery
//! replays only the journal's tail.
//!
//! `snapshot-<seq>.snap` (sequence zero-padded to 20 digits):
//!
//! ```text
//! offset  size  field
//!      0     8  magic "TONNEXS1"
//!      8     4  format version, u32 LE
//!     12     4  CRC32C of the payload, u32 LE
//!     16     8  sequence number of the last command included, u64 LE
//!     24     8  payload length, u64 LE
//!     32     n  payload: the `StateImage`, bincode 2, fixed-width little-endian
//! ```
//!
//! A snapshot is written to `…snap.tmp`, synced, then renamed, so a crash
//! leaves either the old set of snapshots or the new one, never half a file.
//! Taking one costs the engine thread only a copy of its `State` (a few
//! memcpy's of the pool, index and levels); encoding and writing happen on
//! another thread.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use crate::journal::crc;
use crate::state::{State, StateImage};

const MAGIC: [u8; 8] = *b"TONNEXS1";
/// 8: resting orders carry their client order id (`OrderImage`), and the venue
/// tags only buyers' buys.
const VERSION: u32 = 8;
const HEADER_BYTES: usize = 32;

/// `snapshot-<seq zero-padded to 20 digits>.snap`.
#[must_use]
pub fn snapshot_name(seq: u64) -> String {
    format!("snapshot-{seq:020}.snap")
}

/// The sequence number in a snapshot file name, if it is one.
#[must_use]
pub fn parse_snapshot_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("snapshot-")?.strip_suffix(".snap")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())?
}

/// Why a snapshot could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The file system refused.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file is not a whole, valid snapshot.
    #[error("{path}: {what}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
}

/// Writes `image` as the snapshot for its `last_seq` in `dir`; returns the path.
pub fn write(dir: &Path, image: &StateImage) -> Result<PathBuf, SnapshotError> {
    let path = dir.join(snapshot_name(image.last_seq));
    let tmp = dir.join(format!("{}.tmp", snapshot_name(image.last_seq)));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SnapshotError::Io { path, source }
    };
    let payload = bincode::encode_to_vec(image, tonnex_protocol::codec_config()).map_err(|e| {
        SnapshotError::Invalid {
            path: path.clone(),
            what: format!("encoding failed: {e}"),
        }
    })?;
    let mut header = [0u8; HEADER_BYTES];
    header[0..8].copy_from_slice(&MAGIC);
    header[8..12].copy_from_slice(&VERSION.to_le_bytes());
    header[12..16].copy_from_slice(&crc::crc32c(&payload).to_le_bytes());
    header[16..24].copy_from_slice(&image.last_seq.to_le_bytes());
    header[24..32].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    let mut file = File::create(&tmp).map_err(io(&tmp))?;
    file.write_all(&header).map_err(io(&tmp))?;
    file.write_all(&payload).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    drop(file);
    fs::rename(&tmp, &path).map_err(io(&path))?;
    if let Ok(folder) = File::open(dir) {
        folder.sync_all().map_err(io(dir))?;
    }
    Ok(path)
}

/// Reads and checks a snapshot file.
pub fn read(path: &Path) -> Result<StateImage, SnapshotError> {
    let invalid = |what: String| SnapshotError::Invalid {
        path: path.to_path_buf(),
        what,
    };
    let bytes = fs::read(path).map_err(|source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if bytes.len() < HEADER_BYTES || bytes[0..8] != MAGIC {
        return Err(invalid("not a tonnex snapshot".to_string()));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(invalid(format!(
            "snapshot format version {version}, this build reads {VERSION}"
        )));
    }
    let crc = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes"));
    let seq = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes"));
    let len = u64::from_le_bytes(bytes[24..32].try_into().expect("8 bytes"));
    let payload = &bytes[HEADER_BYTES..];
    if payload.len() as u64 != len {
        return Err(invalid(format!(
            "payload is {} bytes, header says {len}",
            payload.len()
        )));
    }
    if crc::crc32c(payload) != crc {
        return Err(invalid("checksum mismatch".to_string()));
    }
    let (image, _): (StateImage, usize) =
        bincode::decode_from_slice(payload, tonnex_protocol::codec_config())
            .map_err(|e| invalid(format!("payload does not decode: {e}")))?;
    if image.last_seq != seq {
        return Err(invalid(format!(
            "header says sequence {seq}, the state {}",
            image.last_seq
        )));
    }
    Ok(image)
}

/// Snapshot files in `dir`, newest first.
pub fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, SnapshotError> {
    let mut snapshots = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(snapshots),
        Err(source) => {
            return Err(SnapshotError::Io {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    for entry in entries.flatten() {
        if let Some(seq) = entry.file_name().to_str().and_then(parse_snapshot_name) {
            snapshots.push((seq, entry.path()));
        }
    }
    snapshots.sort_by(|a, b| b.cmp(a));
    Ok(snapshots)
}

/// Takes a snapshot without holding up the engine: copies what the
/// state's image is made of here ([`State::snapshot_copy`], the only part
/// the engine thread waits for) and builds, encodes and writes the image on
/// a new thread, whose result the caller collects when it likes.
pub fn write_in_background(
    state: &State,
    dir: &Path,
) -> JoinHandle<Result<PathBuf, SnapshotError>> {
    let copy = state.snapshot_copy();
    let dir = dir.to_path_buf();
    std::thread::spawn(move || write(&dir, &copy.image()))
}
