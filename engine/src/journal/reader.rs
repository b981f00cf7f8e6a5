//! Reading segments back: record framing, checksums, sequence continuity,
//! and telling a torn tail from corruption.

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::segment::{
    parse_segment_name, record_bytes, SegmentHeader, HEADER_BYTES, MAX_PAYLOAD, RECORD_HEADER_BYTES,
};
use super::RecoverError;
use crate::command::{Asset, Command};

/// A segment file mapped for reading.
pub(crate) struct SegmentFile {
    pub path: PathBuf,
    /// First sequence number, from the file name.
    pub first_seq: u64,
    pub map: Mmap,
}

impl SegmentFile {
    pub fn open(path: &Path, first_seq: u64) -> Result<SegmentFile, RecoverError> {
        let io = |source| RecoverError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        // SAFETY: recovery runs before the journal is opened for writing, and
        // nothing else writes a venue's journal folder.
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        Ok(SegmentFile {
            path: path.to_path_buf(),
            first_seq,
            map,
        })
    }

    fn corrupt(&self, offset: usize, what: impl Into<String>) -> RecoverError {
        RecoverError::Corrupt {
            path: self.path.clone(),
            offset: offset as u64,
            what: what.into(),
        }
    }

    /// The segment's header, checked against its file name.
    pub fn header(&self) -> Result<SegmentHeader, RecoverError> {
        let header = SegmentHeader::decode(&self.map).map_err(|what| self.corrupt(0, what))?;
        if header.first_seq != self.first_seq {
            return Err(self.corrupt(
                0,
                format!(
                    "header says first sequence {}, the name {}",
                    header.first_seq, self.first_seq
                ),
            ));
        }
        Ok(header)
    }

    /// Walks the records, calling `visit(seq, payload, offset)` for each, and
    /// returns where the log ends. `newest` allows a torn final record.
    pub fn scan(
        &self,
        newest: bool,
        mut visit: impl FnMut(u64, &[u8], usize) -> Result<(), RecoverError>,
    ) -> Result<ScanEnd, RecoverError> {
        self.header()?;
        let mut pos = HEADER_BYTES;
        let mut expected = self.first_seq;
        loop {
            let (seq, payload, size) = match self.parse_at(pos) {
                // The end of the log, unless something follows it.
                Parsed::End => return self.end_at(pos, pos, newest, expected),
                Parsed::Bad { what, window_end } => {
                    return self.bad_record(pos, window_end, newest, expected, what)
                }
                Parsed::Record { seq, payload, size } => (seq, payload, size),
            };
            if seq != expected {
                return Err(self.corrupt(
                    pos,
                    format!("record has sequence {seq} where {expected} belongs"),
                ));
            }
            visit(seq, payload, pos)?;
            expected += 1;
            pos += size;
        }
    }

    /// The record at `pos`, `None` where the records end (zeros, or the
    /// end of the file); one that does not check is an error.
    pub fn record_at(&self, pos: usize) -> Result<Option<Record<'_>>, RecoverError> {
        match self.parse_at(pos) {
            Parsed::End => Ok(None),
            Parsed::Bad { what, .. } => Err(self.corrupt(pos, what)),
            Parsed::Record { seq, payload, size } => Ok(Some(Record { seq, payload, size })),
        }
    }

    fn parse_at(&self, pos: usize) -> Parsed<'_> {
        let bytes: &[u8] = &self.map;
        if pos + RECORD_HEADER_BYTES > bytes.len() {
            return Parsed::End;
        }
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        if len == 0 {
            return Parsed::End;
        }
        let size = record_bytes(len.min(MAX_PAYLOAD));
        let window_end = (pos + size).min(bytes.len());
        if len > MAX_PAYLOAD || pos + size > bytes.len() {
            return Parsed::Bad {
                what: format!("record length {len} is impossible"),
                window_end,
            };
        }
        let seq = u64::from_le_bytes(bytes[pos + 4..pos + 12].try_into().expect("8 bytes"));
        let crc = u32::from_le_bytes(bytes[pos + 12..pos + 16].try_into().expect("4 bytes"));
        let payload = &bytes[pos + RECORD_HEADER_BYTES..pos + RECORD_HEADER_BYTES + len];
        if crc != super::crc::record(len as u32, seq, payload) {
            return Parsed::Bad {
                what: "record checksum mismatch".to_string(),
                window_end,
            };
        }
        Parsed::Record { seq, payload, size }
    }

    /// The log ends at `pos`: the bytes from `from` on must be zero, or
    /// (newest segment) garbage confined to one record's window.
    fn end_at(
        &self,
        pos: usize,
        from: usize,
        newest: bool,
        next_seq: u64,
    ) -> Result<ScanEnd, RecoverError> {
        let bytes: &[u8] = &self.map;
        match last_nonzero(&bytes[from..]) {
            None => Ok(ScanEnd {
                pos,
                next_seq,
                torn_end: None,
            }),
            Some(last) => {
                let garbage_end = from + last + 1;
                if newest && garbage_end <= pos + record_bytes(MAX_PAYLOAD) {
                    Ok(ScanEnd {
                        pos,
                        next_seq,
                        torn_end: Some(garbage_end as u64),
                    })
                } else {
                    Err(self.corrupt(pos, "data after the end of the log"))
                }
            }
        }
    }

    fn bad_record(
        &self,
        pos: usize,
        window_end: usize,
        newest: bool,
        next_seq: u64,
        what: String,
    ) -> Result<ScanEnd, RecoverError> {
        let bytes: &[u8] = &self.map;
        if newest && last_nonzero(&bytes[window_end..]).is_none() {
            Ok(ScanEnd {
                pos,
                next_seq,
                torn_end: Some(window_end as u64),
            })
        } else {
            Err(self.corrupt(pos, what))
        }
    }
}

/// A checked record of a segment.
pub(crate) struct Record<'a> {
    /// Its sequence number.
    pub seq: u64,
    /// Its payload (one command in the journal codec).
    pub payload: &'a [u8],
    /// Its size in the file, header and padding included.
    pub size: usize,
}

/// What lies at an offset of a segment.
enum Parsed<'a> {
    /// No record: zeros, or the end of the file.
    End,
    /// Bytes that are not a whole, checked record (they may run to
    /// `window_end`).
    Bad { what: String, window_end: usize },
    /// A checked record and its size in the file.
    Record {
        seq: u64,
        payload: &'a [u8],
        size: usize,
    },
}

/// Where a segment's log ended.
pub(crate) struct ScanEnd {
    /// Offset just after the last good record.
    pub pos: usize,
    /// The sequence number the next record would have.
    pub next_seq: u64,
    /// A torn final record occupies `pos..torn_end`.
    pub torn_end: Option<u64>,
}

/// Index of the last non-zero byte.
fn last_nonzero(bytes: &[u8]) -> Option<usize> {
    const CHUNK: usize = 4096;
    let mut end = bytes.len();
    while end > 0 {
        let start = end.saturating_sub(CHUNK);
        let chunk = &bytes[start..end];
        if chunk.iter().fold(0u8, |acc, &b| acc | b) != 0 {
            return chunk.iter().rposition(|&b| b != 0).map(|i| start + i);
        }
        end = start;
    }
    None
}

/// Segment files in `dir`, ascending by first sequence number.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, RecoverError> {
    let mut segments = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(segments),
        Err(source) => {
            return Err(RecoverError::Io {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    for entry in entries {
        let entry = entry.map_err(|source| RecoverError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        if let Some(first) = entry.file_name().to_str().and_then(parse_segment_name) {
            segments.push((first, entry.path()));
        }
    }
    segments.sort();
    Ok(segments)
}

/// One record, as `--dump` prints it.
pub struct DumpLine {
    /// The segment.
    pub path: PathBuf,
    /// Byte offset in it.
    pub offset: u64,
    /// Sequence number.
    pub seq: u64,
    /// The command, described for a person.
    pub text: String,
}

/// Every record of the journal in `dir`, in order, described for operators.
/// Stops with the same errors recovery would.
pub fn dump(dir: &Path, mut out: impl FnMut(DumpLine)) -> Result<(), RecoverError> {
    let segments = list_segments(dir)?;
    let count = segments.len();
    for (i, (first, path)) in segments.into_iter().enumerate() {
        let segment = SegmentFile::open(&path, first)?;
        segment.scan(i + 1 == count, |seq, payload, offset| {
            let command = decode(&segment, payload, offset)?;
            out(DumpLine {
                path: path.clone(),
                offset: offset as u64,
                seq,
                text: describe(&command),
            });
            Ok(())
        })?;
    }
    Ok(())
}

/// Decodes a record's payload.
pub(crate) fn decode(
    segment: &SegmentFile,
    payload: &[u8],
    offset: usize,
) -> Result<Command, RecoverError> {
    super::codec::decode(payload)
        .map_err(|what| segment.corrupt(offset, format!("payload does not decode: {what}")))
}

/// A one-line, human-readable description of a command.
#[must_use]
pub fn describe(command: &Command) -> String {
    match *command {
        Command::Scoped(ref scoped) => format!(
            "{} scope={} rules={} released_from_hold={}",
            describe(&Command::New(scoped.order)).replacen("NEW", "NEW_SCOPED", 1),
            scoped
                .decision
                .scope
                .iter()
                .map(|l| format!("{}:{}:{}", l.scope, l.category, l.qty))
                .collect::<Vec<_>>()
                .join(","),
            scoped.decision.rules_version,
            scoped.released_from_hold
        ),
        Command::Venue(ref venue) => format!("VENUE {venue:?}"),
        Command::Admin(ref admin) => format!(
            "ADMIN operator={:?} reason={:?} {}",
            admin.operator,
            admin.reason,
            describe(&admin.command)
        ),
        Command::New(o) => format!(
            "NEW id={} account={} client_order_id={} instrument={} side={} kind={} price={} qty={} budget={} pathway={} floor={} attestation={} ts_ns={}",
            o.id,
            o.account,
            o.client_order_id,
            o.instrument,
            o.side.letter(),
            o.kind.letter(),
            o.price,
            o.qty,
            o.cash_budget,
            o.compliance.pathway.as_str(),
            o.compliance.floor_ticks,
            o.compliance.attestation_id,
            o.ts_ns
        ),
        Command::Cancel { order_id, account } => format!("CANCEL id={order_id} account={account}"),
        Command::Replace {
            order_id,
            account,
            price,
            qty,
        } => format!("REPLACE id={order_id} account={account} price={price} qty={qty}"),
        Command::MassCancel { account, instrument } => match instrument {
            Some(i) => format!("MASS_CANCEL account={account} instrument={i}"),
            None => format!("MASS_CANCEL account={account} instrument=all"),
        },
        Command::AddInstrument { instrument, spec } => format!(
            "ADD_INSTRUMENT instrument={instrument} symbol={} tick_micros={} band={}..={}",
            spec.symbol, spec.tick_micros, spec.min_price, spec.max_price
        ),
        Command::Halt {
            instrument,
            cancel_resting,
        } => format!("HALT instrument={instrument} cancel_resting={cancel_resting}"),
        Command::Resume { instrument } => format!("RESUME instrument={instrument}"),
        Command::Deposit { account, asset } => format!("DEPOSIT account={account} {}", describe_asset(asset)),
        Command::Withdraw { account, asset } => format!("WITHDRAW account={account} {}", describe_asset(asset)),
        Command::Settlement(ref batch) => format!(
            "SETTLEMENT first_id={} outcomes={:?}",
            batch.first_id, batch.outcomes
        ),
    }
}

fn describe_asset(asset: Asset) -> String {
    match asset {
        Asset::Cash(cash) => format!("cash_usd={cash}"),
        Asset::Credits { instrument, qty } => format!("credits instrument={instrument} qty={qty}"),
    }
}
