//! Segment files: names, the 64-byte segment header, record framing.

use crate::state::EngineConfig;

/// Bytes of the segment header; records start here.
pub const HEADER_BYTES: usize = 64;

/// Bytes of a record header (length, sequence, checksum).
pub const RECORD_HEADER_BYTES: usize = 16;

/// Largest payload a record may carry. Commands encode to about 100 bytes;
/// anything longer in a length field is damage.
pub const MAX_PAYLOAD: usize = 4096;

/// The segment magic, `TONNEXJ1`.
const MAGIC: [u8; 8] = *b"TONNEXJ1";

/// Format version of segments and records.
const VERSION: u32 = 1;

/// `journal-<first_seq zero-padded to 20 digits>.seg`.
#[must_use]
pub fn segment_name(first_seq: u64) -> String {
    format!("journal-{first_seq:020}.seg")
}

/// The first sequence number in a segment file name, if it is one.
#[must_use]
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("journal-")?.strip_suffix(".seg")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())?
}

/// What a segment's header records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Sequence number of the segment's first record.
    pub first_seq: u64,
    /// The engine configuration the journal was written under.
    pub config: EngineConfig,
}

impl SegmentHeader {
    /// The 64 header bytes.
    #[must_use]
    pub fn encode(&self) -> [u8; HEADER_BYTES] {
        let mut out = [0u8; HEADER_BYTES];
        out[0..8].copy_from_slice(&MAGIC);
        out[8..12].copy_from_slice(&VERSION.to_le_bytes());
        out[12..20].copy_from_slice(&self.first_seq.to_le_bytes());
        out[20] = u8::from(self.config.holds);
        out[24..32].copy_from_slice(&self.config.window_ticks.to_le_bytes());
        out[32..40].copy_from_slice(&(self.config.order_capacity as u64).to_le_bytes());
        let crc = super::crc::crc32c(&out[..60]);
        out[60..64].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes a header, or says what is wrong with it.
    pub fn decode(bytes: &[u8]) -> Result<SegmentHeader, String> {
        if bytes.len() < HEADER_BYTES {
            return Err(format!(
                "segment shorter than its {HEADER_BYTES}-byte header"
            ));
        }
        if bytes[0..8] != MAGIC {
            return Err("not a tonnex journal segment (bad magic)".to_string());
        }
        let crc = u32::from_le_bytes(bytes[60..64].try_into().expect("4 bytes"));
        if crc != super::crc::crc32c(&bytes[..60]) {
            return Err("segment header checksum mismatch".to_string());
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version != VERSION {
            return Err(format!(
                "segment format version {version}, this build reads {VERSION}"
            ));
        }
        Ok(SegmentHeader {
            first_seq: u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes")),
            config: EngineConfig {
                holds: bytes[20] != 0,
                window_ticks: i64::from_le_bytes(bytes[24..32].try_into().expect("8 bytes")),
                order_capacity: u64::from_le_bytes(bytes[32..40].try_into().expect("8 bytes"))
                    as usize,
            },
        })
    }
}

/// A record's size in the segment: header, payload, padding to 8.
#[inline]
#[must_use]
pub fn record_bytes(payload: usize) -> usize {
    (RECORD_HEADER_BYTES + payload + 7) & !7
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_by_sequence_and_parse_back() {
        assert_eq!(segment_name(42), "journal-00000000000000000042.seg");
        assert_eq!(parse_segment_name(&segment_name(u64::MAX)), Some(u64::MAX));
        assert!(segment_name(9) < segment_name(10));
        assert_eq!(parse_segment_name("journal-42.seg"), None);
        assert_eq!(
            parse_segment_name("snapshot-00000000000000000042.snap"),
            None
        );
    }

    #[test]
    fn header_round_trips_and_detects_damage() {
        let header = SegmentHeader {
            first_seq: 77,
            config: EngineConfig {
                holds: true,
                order_capacity: 1000,
                window_ticks: 4096,
            },
        };
        let mut bytes = header.encode();
        assert_eq!(SegmentHeader::decode(&bytes), Ok(header));
        bytes[13] ^= 1;
        assert!(SegmentHeader::decode(&bytes)
            .unwrap_err()
            .contains("checksum"));
    }
}
