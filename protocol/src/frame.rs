//! Framing: a `u32` little-endian payload length, then the bincode payload.
//!
//! Decoding never trusts the peer: a length above the receiver's maximum is
//! an error before any byte of the payload is awaited, a payload must decode
//! to exactly one message with no bytes left over, and bincode is given an
//! allocation limit so an absurd string or vector count inside a small frame
//! cannot reserve memory.

use bincode::{Decode, Encode};

/// Bytes of the length prefix.
pub const HEADER_BYTES: usize = 4;

/// Default largest payload an order-entry peer may send (a new order with a
/// dozen scope lines is about 200 bytes).
pub const DEFAULT_MAX_FRAME_BYTES: usize = 4096;

/// Why a frame or its payload was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The length prefix announces more than the receiver accepts.
    #[error("frame length {length} exceeds the maximum of {max} bytes")]
    TooLong {
        /// Announced payload length.
        length: usize,
        /// The receiver's maximum.
        max: usize,
    },
    /// A zero-length frame: no message is empty.
    #[error("empty frame")]
    Empty,
    /// The payload is not a valid message.
    #[error("malformed payload: {0}")]
    Malformed(String),
    /// The payload decoded but bytes were left over.
    #[error("{extra} bytes after the end of the message")]
    TrailingBytes {
        /// Bytes left.
        extra: usize,
    },
}

/// Appends `message` as one frame to `out`.
pub fn encode_into<T: Encode>(message: &T, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_BYTES]);
    bincode::encode_into_std_write(message, out, crate::codec_config())
        .expect("encoding into a Vec cannot fail");
    let length = u32::try_from(out.len() - start - HEADER_BYTES).expect("frame under 4 GiB");
    out[start..start + HEADER_BYTES].copy_from_slice(&length.to_le_bytes());
}

/// `message` as one frame.
#[must_use]
pub fn encode<T: Encode>(message: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    encode_into(message, &mut out);
    out
}

/// The first complete frame at the start of `buffer`: `Ok(Some((payload,
/// consumed)))`, `Ok(None)` when more bytes are needed, or an error as soon
/// as the length prefix is unacceptable.
pub fn split(buffer: &[u8], max_payload: usize) -> Result<Option<(&[u8], usize)>, DecodeError> {
    let Some(header) = buffer.get(..HEADER_BYTES) else {
        return Ok(None);
    };
    let length = u32::from_le_bytes(header.try_into().expect("4 bytes")) as usize;
    if length == 0 {
        return Err(DecodeError::Empty);
    }
    if length > max_payload {
        return Err(DecodeError::TooLong {
            length,
            max: max_payload,
        });
    }
    Ok(buffer
        .get(HEADER_BYTES..HEADER_BYTES + length)
        .map(|payload| (payload, HEADER_BYTES + length)))
}

/// Decodes one whole payload as a `T`.
pub fn decode<T: Decode<()>>(payload: &[u8]) -> Result<T, DecodeError> {
    // The limit caps what bincode may reserve for strings and vectors: no
    // honest message claims more than its own frame holds.
    let config = bincode::config::standard()
        .with_fixed_int_encoding()
        .with_little_endian()
        .with_limit::<{ 1 << 20 }>();
    let (message, used) = bincode::decode_from_slice(payload, config)
        .map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if used != payload.len() {
        return Err(DecodeError::TrailingBytes {
            extra: payload.len() - used,
        });
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ClientMessage;

    #[test]
    fn a_frame_is_its_length_then_its_payload() {
        let bytes = encode(&ClientMessage::Heartbeat);
        assert_eq!(bytes, [4, 0, 0, 0, 2, 0, 0, 0]);
        let (payload, used) = split(&bytes, 64).unwrap().unwrap();
        assert_eq!(used, 8);
        assert_eq!(
            decode::<ClientMessage>(payload),
            Ok(ClientMessage::Heartbeat)
        );
    }

    #[test]
    fn split_waits_for_whole_frames_and_refuses_absurd_lengths_at_once() {
        let bytes = encode(&ClientMessage::Heartbeat);
        for cut in 0..bytes.len() {
            assert_eq!(split(&bytes[..cut], 64), Ok(None));
        }
        assert_eq!(
            split(&[0xff, 0xff, 0xff, 0x7f], 4096),
            Err(DecodeError::TooLong {
                length: 0x7fff_ffff,
                max: 4096
            })
        );
        assert_eq!(split(&[0, 0, 0, 0], 4096), Err(DecodeError::Empty));
    }

    #[test]
    fn a_huge_string_count_inside_a_small_frame_is_malformed_not_an_allocation() {
        // Login tag, account, then a string count of 2^62.
        let mut payload = vec![0, 0, 0, 0];
        payload.extend_from_slice(&1001u64.to_le_bytes());
        payload.extend_from_slice(&(1u64 << 62).to_le_bytes());
        assert!(matches!(
            decode::<ClientMessage>(&payload),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn trailing_bytes_are_refused() {
        assert_eq!(
            decode::<ClientMessage>(&[2, 0, 0, 0, 9]),
            Err(DecodeError::TrailingBytes { extra: 1 })
        );
    }
}
