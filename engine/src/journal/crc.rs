//! CRC32C (Castagnoli), the checksum of journal records and snapshots.
//!
//! Records are small (40-120 bytes), where a general-purpose CRC library
//! spends most of its time choosing a strategy: here it is the SSE4.2
//! `crc32` instruction eight bytes at a time (one feature check, cached by
//! the standard library), with a table-driven fallback for other CPUs.

/// The reflected Castagnoli polynomial.
const POLY: u32 = 0x82F6_3B78;

const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// CRC32C of `data`.
#[inline]
#[must_use]
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c_append(0, data)
}

/// Continues the CRC32C `crc` (of earlier bytes) over `data`.
#[inline]
#[must_use]
pub fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("sse4.2") {
        // SAFETY: the CPU supports SSE4.2, checked just above.
        return unsafe { hardware(crc, data) };
    }
    software(crc, data)
}

/// CRC32C of a journal record's checked bytes: its length (u32 LE), its
/// sequence number (u64 LE), then its payload, in one pass and one
/// feature check.
#[inline]
#[must_use]
pub fn record(len: u32, seq: u64, payload: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("sse4.2") {
        // SAFETY: the CPU supports SSE4.2, checked just above.
        return unsafe { hardware_record(len, seq, payload) };
    }
    let mut header = [0u8; 12];
    header[..4].copy_from_slice(&len.to_le_bytes());
    header[4..].copy_from_slice(&seq.to_le_bytes());
    software(software(0, &header), payload)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2")]
unsafe fn hardware_record(len: u32, seq: u64, payload: &[u8]) -> u32 {
    use core::arch::x86_64::{_mm_crc32_u16, _mm_crc32_u32, _mm_crc32_u64, _mm_crc32_u8};
    let state = u64::from(_mm_crc32_u32(!0, len));
    let mut state = _mm_crc32_u64(state, seq);
    let words = payload.chunks_exact(8);
    let tail = words.remainder();
    for word in words {
        state = _mm_crc32_u64(state, u64::from_le_bytes(word.try_into().expect("8 bytes")));
    }
    // The 0-7 bytes left, straight-line: at most three steps.
    let mut state = state as u32;
    let mut at = 0;
    if tail.len() & 4 != 0 {
        state = _mm_crc32_u32(
            state,
            u32::from_le_bytes(tail[..4].try_into().expect("4 bytes")),
        );
        at = 4;
    }
    if tail.len() & 2 != 0 {
        state = _mm_crc32_u16(
            state,
            u16::from_le_bytes(tail[at..at + 2].try_into().expect("2 bytes")),
        );
        at += 2;
    }
    if tail.len() & 1 != 0 {
        state = _mm_crc32_u8(state, tail[at]);
    }
    !state
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2")]
#[inline]
unsafe fn hardware(crc: u32, data: &[u8]) -> u32 {
    use core::arch::x86_64::{_mm_crc32_u32, _mm_crc32_u64, _mm_crc32_u8};
    let mut state = u64::from(!crc);
    let mut rest = data;
    while rest.len() >= 8 {
        let (word, tail) = rest.split_at(8);
        state = _mm_crc32_u64(state, u64::from_le_bytes(word.try_into().expect("8 bytes")));
        rest = tail;
    }
    let mut state = state as u32;
    if rest.len() >= 4 {
        let (word, tail) = rest.split_at(4);
        state = _mm_crc32_u32(state, u32::from_le_bytes(word.try_into().expect("4 bytes")));
        rest = tail;
    }
    for &byte in rest {
        state = _mm_crc32_u8(state, byte);
    }
    !state
}

fn software(crc: u32, data: &[u8]) -> u32 {
    let mut state = !crc;
    for &byte in data {
        state = TABLE[((state ^ u32::from(byte)) & 0xFF) as usize] ^ (state >> 8);
    }
    !state
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_standard_check_value() {
        // The CRC-32C check value from the catalogue of parametrised CRCs.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(software(0, b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn appending_equals_one_pass_and_hardware_equals_software() {
        let data: Vec<u8> = (0..1000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        for split in [0, 1, 7, 8, 9, 100, 999, 1000] {
            let (a, b) = data.split_at(split);
            assert_eq!(crc32c_append(crc32c(a), b), crc32c(&data), "split {split}");
        }
        for len in 0..64 {
            assert_eq!(crc32c(&data[..len]), software(0, &data[..len]), "len {len}");
        }
        for payload in 0..80 {
            let len = payload as u32;
            let seq = 0x0123_4567_89AB_CDEF_u64.wrapping_mul(payload as u64 + 1);
            let mut bytes = len.to_le_bytes().to_vec();
            bytes.extend_from_slice(&seq.to_le_bytes());
            bytes.extend_from_slice(&data[..payload]);
            assert_eq!(
                record(len, seq, &data[..payload]),
                software(0, &bytes),
                "payload {payload}"
            );
        }
    }
}
