//! Reading commands back by sequence number: what a replicated node's
//! leader sends a follower behind it. A [`ReadPosition`] says where a
//! record starts, so a read that goes on from where the last one stopped
//! (a follower catching up, message after message) neither walks its
//! segment from the start again nor reads past what it was asked for.

use std::path::Path;

use super::reader::{list_segments, Record, SegmentFile};
use super::segment::HEADER_BYTES;
use super::RecoverError;
use crate::command::Command;

/// Where the record with sequence `seq` starts: byte `offset` of the
/// segment whose first sequence is `segment`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadPosition {
    /// The segment's first sequence (its name).
    pub segment: u64,
    /// The record's offset in it.
    pub offset: usize,
    /// The record's sequence.
    pub seq: u64,
}

/// The commands with sequence numbers `from..=to` in the journal in
/// `dir`, in order. The journal must hold them all (an error names the
/// first missing).
pub fn read_commands(dir: &Path, from: u64, to: u64) -> Result<Vec<Command>, RecoverError> {
    read_commands_at(dir, from, to, None).map(|read| read.commands)
}

/// Commands read back, and where they lie.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReadBack {
    /// The commands `from..=to`.
    pub commands: Vec<Command>,
    /// Where record `from` starts and where the record after `to` would
    /// (`None` when nothing was asked for): hints for the next read.
    pub span: Option<(ReadPosition, ReadPosition)>,
}

/// [`read_commands`], starting at `hint` when it is a position in the
/// segment holding `from` at or before it (one an earlier read returned;
/// the records between are checked, not decoded). A hint that no longer
/// fits (the journal was cut back and written again since) is dropped and
/// the segment read from its start.
pub fn read_commands_at(
    dir: &Path,
    from: u64,
    to: u64,
    hint: Option<ReadPosition>,
) -> Result<ReadBack, RecoverError> {
    let mut commands = Vec::with_capacity((to + 1).saturating_sub(from).min(1 << 16) as usize);
    let span = walk_hinted(
        dir,
        from,
        to,
        hint,
        &mut commands,
        |out, path, offset, payload| {
            out.push(
                super::codec::decode(payload).map_err(|what| RecoverError::Corrupt {
                    path: path.to_path_buf(),
                    offset: offset as u64,
                    what,
                })?,
            );
            Ok(())
        },
    )?;
    Ok(ReadBack { commands, span })
}

/// The records `from..=to` as they lie in the journal, appended to `out`
/// each as its length (u32 LE) and its payload (the journal codec's bytes
/// of one command): a replicated entry's command fields, with nothing
/// decoded. Hints and the span returned as [`read_commands_at`].
pub fn read_framed_at(
    dir: &Path,
    from: u64,
    to: u64,
    hint: Option<ReadPosition>,
    out: &mut Vec<u8>,
) -> Result<Option<(ReadPosition, ReadPosition)>, RecoverError> {
    walk_hinted(dir, from, to, hint, out, |out, _, _, payload| {
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(payload);
        Ok(())
    })
}

/// [`walk`] from `hint`, and again from the segment's start (with `out` as
/// it was) when the hint no longer fits.
fn walk_hinted<T: Truncate>(
    dir: &Path,
    from: u64,
    to: u64,
    hint: Option<ReadPosition>,
    out: &mut T,
    mut visit: impl FnMut(&mut T, &Path, usize, &[u8]) -> Result<(), RecoverError>,
) -> Result<Option<(ReadPosition, ReadPosition)>, RecoverError> {
    if to < from {
        return Ok(None);
    }
    let mark = out.mark();
    match walk(dir, from, to, hint, |p, o, b| visit(out, p, o, b)) {
        Err(_) if hint.is_some() => {
            out.back_to(mark);
            walk(dir, from, to, None, |p, o, b| visit(out, p, o, b))
        }
        done => done,
    }
    .map(Some)
}

/// What a read appends to, cut back when a hint fails part way.
trait Truncate {
    fn mark(&self) -> usize;
    fn back_to(&mut self, mark: usize);
}

impl<T> Truncate for Vec<T> {
    fn mark(&self) -> usize {
        self.len()
    }
    fn back_to(&mut self, mark: usize) {
        self.truncate(mark);
    }
}

/// Visits records `from..=to` (`visit(segment path, offset, payload)`),
/// returning where `from` and the record after `to` start.
fn walk(
    dir: &Path,
    from: u64,
    to: u64,
    hint: Option<ReadPosition>,
    mut visit: impl FnMut(&Path, usize, &[u8]) -> Result<(), RecoverError>,
) -> Result<(ReadPosition, ReadPosition), RecoverError> {
    let segments = list_segments(dir)?;
    let start = segments
        .iter()
        .rposition(|(first, _)| *first <= from)
        .ok_or_else(|| RecoverError::MissingStart {
            path: dir.to_path_buf(),
            first: segments.first().map_or(0, |s| s.0),
        })?;
    let mut next = from;
    let mut start_at = None;
    for (first, path) in &segments[start..] {
        if *first > next {
            break;
        }
        let segment = SegmentFile::open(path, *first)?;
        segment.header()?;
        let (mut pos, mut seq) = match hint {
            Some(h) if h.segment == *first && h.seq <= next => (h.offset, h.seq),
            _ => (HEADER_BYTES, *first),
        };
        loop {
            let here = ReadPosition {
                segment: *first,
                offset: pos,
                seq,
            };
            if seq > to {
                return Ok((start_at.unwrap_or(here), here));
            }
            if seq == from {
                start_at = Some(here);
            }
            let Some(Record {
                seq: record_seq,
                payload,
                size,
            }) = segment.record_at(pos)?
            else {
                break;
            };
            if record_seq != seq {
                return Err(RecoverError::Corrupt {
                    path: path.clone(),
                    offset: pos as u64,
                    what: format!("record has sequence {record_seq} where {seq} belongs"),
                });
            }
            if seq >= from {
                visit(path, pos, payload)?;
            }
            pos += size;
            seq += 1;
        }
        next = seq;
    }
    Err(RecoverError::Corrupt {
        path: dir.to_path_buf(),
        offset: 0,
        what: format!("sequence {next} is not in the journal (wanted {from}..={to})"),
    })
}
