//! A Raft entry's data: a batch of engine commands, each in the journal's
//! own encoding (`tonnex_engine::journal::codec`), so a replicated command
//! is byte for byte what a single node journals.
//!
//! ```text
//! count    u32 LE
//! command  length u32 LE, then the journal codec's bytes   (count times)
//! ```

use tonnex_engine::journal::codec::{self, MAX_ENCODED};
use tonnex_engine::Command;

/// Why an entry's data is not a batch.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BatchError {
    /// The data ends inside a field.
    #[error("batch cut short at byte {at}")]
    Short {
        /// Where the missing field starts.
        at: usize,
    },
    /// A command did not decode.
    #[error("batch command {index}: {what}")]
    Command {
        /// Its position in the batch.
        index: usize,
        /// What the journal codec said.
        what: String,
    },
    /// Bytes follow the last command.
    #[error("{extra} bytes after the batch's last command")]
    Trailing {
        /// How many.
        extra: usize,
    },
}

/// Encodes `commands` as one entry's data.
#[must_use]
pub fn encode(commands: &[Command]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + commands.len() * 48);
    out.extend_from_slice(&(commands.len() as u32).to_le_bytes());
    let mut small = [0u8; MAX_ENCODED];
    let mut large = Vec::new();
    for command in commands {
        let bytes = if codec::is_large(command) {
            codec::encode_large(command, &mut large);
            &large[..]
        } else {
            let len = codec::encode(command, &mut small);
            &small[..len]
        };
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(bytes);
    }
    out
}

/// Where `count` command fields (length, then bytes) starting at byte
/// `at` of `fields` end.
pub fn fields_end(fields: &[u8], mut at: usize, count: usize) -> Result<usize, BatchError> {
    for _ in 0..count {
        let len = fields
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
            .ok_or(BatchError::Short { at })?;
        at += 4;
        if fields.len() < at + len {
            return Err(BatchError::Short { at });
        }
        at += len;
    }
    Ok(at)
}

/// The number of commands in one entry's data (its first field).
pub fn count(data: &[u8]) -> Result<usize, BatchError> {
    let head: [u8; 4] = data
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or(BatchError::Short { at: 0 })?;
    Ok(u32::from_le_bytes(head) as usize)
}

/// Decodes one entry's data.
pub fn decode(data: &[u8]) -> Result<Vec<Command>, BatchError> {
    let u32_at = |at: usize| -> Result<usize, BatchError> {
        data.get(at..at + 4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
            .ok_or(BatchError::Short { at })
    };
    let count = u32_at(0)?;
    let mut at = 4;
    let mut commands = Vec::with_capacity(count.min(data.len() / 4));
    for index in 0..count {
        let len = u32_at(at)?;
        let payload = data
            .get(at + 4..at + 4 + len)
            .ok_or(BatchError::Short { at: at + 4 })?;
        commands.push(codec::decode(payload).map_err(|what| BatchError::Command { index, what })?);
        at += 4 + len;
    }
    if at != data.len() {
        return Err(BatchError::Trailing {
            extra: data.len() - at,
        });
    }
    Ok(commands)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonnex_engine::workload;

    #[test]
    fn a_batch_round_trips_and_damage_is_named() {
        let commands =
            workload::parse("N 1 7 B L 100 5\nN 2 8 S M 0 3\nC 1\nR 2 101 4\n").expect("workload");
        let data = encode(&commands);
        assert_eq!(decode(&data).expect("decodes"), commands);
        assert_eq!(decode(&encode(&[])).expect("empty"), Vec::<Command>::new());
        assert!(matches!(
            decode(&data[..data.len() - 1]),
            Err(BatchError::Short { .. })
        ));
        let mut longer = data.clone();
        longer.push(0);
        assert_eq!(decode(&longer), Err(BatchError::Trailing { extra: 1 }));
        let mut bad = data;
        bad[8] = 0xEE; // the first command's tag
        assert!(matches!(
            decode(&bad),
            Err(BatchError::Command { index: 0, .. })
        ));
    }
}
