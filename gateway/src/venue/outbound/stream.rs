//! One account's stream: its numbers and the frames its replay window
//! holds.

use std::collections::VecDeque;

use super::RECORD_HEAD;

/// One account's stream.
#[derive(Debug)]
pub struct Stream {
    /// Sequence number the next message gets.
    pub next_seq: u64,
    /// Sequence number of the oldest message held.
    pub first_seq: u64,
    /// The encoded frames of the last `capacity` messages, oldest first,
    /// back to back (one ring of bytes: no allocation per message).
    bytes: VecDeque<u8>,
    /// Each held frame's length, oldest first.
    lengths: VecDeque<u32>,
}

impl Stream {
    pub(super) fn starting_at(seq: u64) -> Stream {
        Stream {
            next_seq: seq,
            first_seq: seq,
            bytes: VecDeque::new(),
            lengths: VecDeque::new(),
        }
    }

    /// Messages held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lengths.len()
    }

    /// Whether nothing is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.lengths.is_empty()
    }

    /// Appends the frames held from message `from_seq` on to `out`.
    pub fn replay_into(&self, from_seq: u64, out: &mut Vec<u8>) {
        let skip = from_seq.saturating_sub(self.first_seq) as usize;
        let start: usize = self.lengths.iter().take(skip).map(|&l| l as usize).sum();
        out.extend(self.bytes.range(start..));
    }

    /// Keeps `framed` as the stream's next message, dropping the oldest past
    /// `capacity`; returns the change in bytes held (may wrap below zero).
    pub(super) fn keep(&mut self, framed: &[u8], capacity: usize) -> u64 {
        let mut held = (RECORD_HEAD + framed.len()) as u64;
        self.bytes.extend(framed);
        self.lengths.push_back(framed.len() as u32);
        self.next_seq += 1;
        if self.lengths.len() > capacity {
            if let Some(old) = self.lengths.pop_front() {
                self.bytes.drain(..old as usize);
                held = held.wrapping_sub((RECORD_HEAD + old as usize) as u64);
            }
            self.first_seq += 1;
        }
        held
    }
}

impl Default for Stream {
    fn default() -> Stream {
        Stream::starting_at(1)
    }
}
