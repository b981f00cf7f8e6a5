//! The two small files beside the journal: the entry index and the Raft
//! state (layouts in the module above).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use raft::prelude::{ConfState, HardState};
use tonnex_engine::journal::crc::crc32c;

use super::{io, Kind, LogError, Meta, SnapMeta};

/// Bytes of one index record.
pub(super) const RECORD: usize = 40;
const STATE_MAGIC: &[u8; 8] = b"TNXRAFT3";
/// The format before the log's base was its own: the log started at the
/// snapshot.
const STATE_MAGIC_V2: &[u8; 8] = b"TNXRAFT2";
/// Magic, term, vote, commit, snapshot index, term and sequence, base
/// index, term and sequence, voter count.
const STATE_HEAD: usize = 8 + 9 * 8 + 4;
const STATE_HEAD_V2: usize = 8 + 6 * 8 + 4;

/// The Raft state a log keeps: hard state, voters, the snapshot, and the
/// entry the log starts after (the snapshot's or an earlier one: a log
/// keeps some entries behind its snapshot, so a follower a little behind
/// catches up from entries instead of a snapshot).
pub(super) struct Stored {
    pub hard_state: HardState,
    pub conf_state: ConfState,
    pub snap: SnapMeta,
    pub base: SnapMeta,
}

/// One index record.
pub(super) fn index_record(index: u64, meta: &Meta) -> [u8; RECORD] {
    let mut record = [0u8; RECORD];
    record[0..8].copy_from_slice(&index.to_le_bytes());
    record[8..16].copy_from_slice(&meta.term.to_le_bytes());
    record[16..24].copy_from_slice(&meta.first_seq.to_le_bytes());
    record[24..28].copy_from_slice(&meta.count.to_le_bytes());
    record[28..32].copy_from_slice(&u32::from(meta.kind.code()).to_le_bytes());
    let crc = crc32c(&record[..32]);
    record[32..36].copy_from_slice(&crc.to_le_bytes());
    record
}

/// The entries after `snap` (the log's base), from the index file
/// (records sit at `(index - 1) × 40`). A torn last record is dropped (and
/// cut from the file); any other damage is an error.
pub(super) fn read_index(
    file: &mut File,
    path: &Path,
    snap: SnapMeta,
) -> Result<Vec<Meta>, LogError> {
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(io(path))?;
    let start = (snap.index as usize * RECORD).min(bytes.len());
    let tail = &bytes[start..];
    let whole = tail.len() / RECORD;
    let mut meta = Vec::with_capacity(whole);
    let mut next_seq = snap.seq + 1;
    for (i, record) in tail.chunks_exact(RECORD).enumerate() {
        let field = |at: usize| u64::from_le_bytes(record[at..at + 8].try_into().expect("8"));
        let word = |at: usize| u32::from_le_bytes(record[at..at + 4].try_into().expect("4"));
        let (index, term, first_seq) = (field(0), field(8), field(16));
        let (count, kind, crc) = (word(24), Kind::from_code(word(28)), word(32));
        let expected = snap.index + i as u64 + 1;
        let good = crc == crc32c(&record[..32])
            && index == expected
            && first_seq == next_seq
            && kind.is_some()
            && word(36) == 0;
        if !good {
            if i + 1 == whole {
                break; // a torn last record: the entry was never persisted
            }
            return Err(LogError::Corrupt {
                path: path.to_path_buf(),
                what: format!(
                    "record {expected} (offset {}) is damaged",
                    start + i * RECORD
                ),
            });
        }
        next_seq = first_seq + u64::from(count);
        meta.push(Meta {
            term,
            first_seq,
            count,
            kind: kind.expect("checked"),
        });
    }
    let end = start + meta.len() * RECORD;
    if end != bytes.len() {
        file.set_len(end as u64).map_err(io(path))?;
    }
    Ok(meta)
}

/// The state file's bytes.
pub(super) fn encode_state(stored: &Stored) -> Vec<u8> {
    let mut out = Vec::with_capacity(STATE_HEAD + 8 * stored.conf_state.voters.len() + 4);
    out.extend_from_slice(STATE_MAGIC);
    for value in [
        stored.hard_state.term,
        stored.hard_state.vote,
        stored.hard_state.commit,
        stored.snap.index,
        stored.snap.term,
        stored.snap.seq,
        stored.base.index,
        stored.base.term,
        stored.base.seq,
    ] {
        out.extend_from_slice(&value.to_le_bytes());
    }
    out.extend_from_slice(&(stored.conf_state.voters.len() as u32).to_le_bytes());
    for voter in &stored.conf_state.voters {
        out.extend_from_slice(&voter.to_le_bytes());
    }
    let crc = crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Reads the state file: a new (absent or empty) one is a fresh node of
/// `voters`.
pub(super) fn read_state(path: &Path, voters: &[u64]) -> Result<Stored, LogError> {
    let fresh = || Stored {
        hard_state: HardState::default(),
        conf_state: ConfState::from((voters.to_vec(), vec![])),
        snap: SnapMeta::default(),
        base: SnapMeta::default(),
    };
    let bytes = match std::fs::read(path) {
        // Created empty by an open that crashed before its first write.
        Ok(bytes) if bytes.is_empty() => return Ok(fresh()),
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(fresh()),
        Err(source) => {
            return Err(LogError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let corrupt = |what: &str| LogError::Corrupt {
        path: path.to_path_buf(),
        what: what.to_string(),
    };
    let head = match bytes.get(..8) {
        Some(magic) if magic == STATE_MAGIC => STATE_HEAD,
        Some(magic) if magic == STATE_MAGIC_V2 => STATE_HEAD_V2,
        _ => 0,
    };
    if head == 0 || bytes.len() < head + 4 {
        return Err(corrupt(
            "not a tonnex Raft state file (bad magic or length)",
        ));
    }
    let count = u32::from_le_bytes(bytes[head - 4..head].try_into().expect("4")) as usize;
    let end = head + count * 8;
    if bytes.len() != end + 4 {
        return Err(corrupt("length does not match its voter count"));
    }
    if crc32c(&bytes[..end]) != u32::from_le_bytes(bytes[end..end + 4].try_into().expect("4")) {
        return Err(corrupt("checksum mismatch"));
    }
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8"));
    let hard_state = HardState {
        term: u64_at(8),
        vote: u64_at(16),
        commit: u64_at(24),
        ..HardState::default()
    };
    let snap = SnapMeta {
        index: u64_at(32),
        term: u64_at(40),
        seq: u64_at(48),
    };
    let base = if head == STATE_HEAD {
        SnapMeta {
            index: u64_at(56),
            term: u64_at(64),
            seq: u64_at(72),
        }
    } else {
        snap
    };
    if base.index > snap.index {
        return Err(corrupt("the log starts after its snapshot"));
    }
    let voters: Vec<u64> = (0..count).map(|i| u64_at(head + i * 8)).collect();
    Ok(Stored {
        hard_state,
        conf_state: ConfState::from((voters, vec![])),
        snap,
        base,
    })
}

/// The membership changes' file: each change's index (u64 LE), length (u32
/// LE), CRC32C of its bytes (u32 LE) and the bytes (raft-rs's encoding).
pub(super) fn encode_changes(changes: &BTreeMap<u64, Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    for (index, data) in changes {
        out.extend_from_slice(&index.to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32c(data).to_le_bytes());
        out.extend_from_slice(data);
    }
    out
}

/// Reads the membership changes' file (absent: none).
pub(super) fn read_changes(path: &Path) -> Result<BTreeMap<u64, Vec<u8>>, LogError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(source) => {
            return Err(LogError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let mut changes = BTreeMap::new();
    let mut at = 0;
    while at < bytes.len() {
        let corrupt = || LogError::Corrupt {
            path: path.to_path_buf(),
            what: format!("damaged at offset {at}"),
        };
        let head = bytes.get(at..at + 16).ok_or_else(corrupt)?;
        let index = u64::from_le_bytes(head[..8].try_into().expect("8"));
        let len = u32::from_le_bytes(head[8..12].try_into().expect("4")) as usize;
        let crc = u32::from_le_bytes(head[12..16].try_into().expect("4"));
        let data = bytes.get(at + 16..at + 16 + len).ok_or_else(corrupt)?;
        if crc32c(data) != crc {
            return Err(corrupt());
        }
        changes.insert(index, data.to_vec());
        at += 16 + len;
    }
    Ok(changes)
}
