//! The fill log's record (`fills.log` in a venue's journal folder, written
//! by the gateway): `u32 CRC32C of the payload | u32 length | payload`, the
//! payload a bincode `StreamRecord`; the last two fields are exactly the
//! frame a fill-stream subscriber receives. Read here so that the venue
//! (cutting the log back to its journal) and settlement's reconciliation
//! (reading what the ledger has not applied) read it one way.

use std::io::Read;

use tonnex_protocol::frame;
use tonnex_protocol::wire::StreamRecord;

use crate::journal::crc::crc32c;

/// File name of the fill log inside the journal folder.
pub const FILE_NAME: &str = "fills.log";

/// Largest record payload accepted when reading the log back.
pub const MAX_RECORD: usize = 1 << 20;

/// The next whole record of `reader` and the bytes it took, or `None` at
/// the end, at a torn record or at a corrupt one (bad length or CRC, or a
/// payload that does not decode).
pub fn read_record(reader: &mut impl Read) -> Option<(StreamRecord, u64)> {
    let mut header = [0u8; 8];
    reader.read_exact(&mut header).ok()?;
    let crc = u32::from_le_bytes(header[..4].try_into().ok()?);
    let length = u32::from_le_bytes(header[4..].try_into().ok()?) as usize;
    if length == 0 || length > MAX_RECORD {
        return None;
    }
    let mut payload = vec![0u8; length];
    reader.read_exact(&mut payload).ok()?;
    if crc32c(&payload) != crc {
        return None;
    }
    let record = frame::decode::<StreamRecord>(&payload).ok()?;
    Some((record, 8 + length as u64))
}
