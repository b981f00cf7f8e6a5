//! A hasher for keys numbered in sequence (the venue's order ids are
//! journal sequence numbers), for `std` hash maps on a hot path.
//!
//! A multiplicative hash sends consecutive ids to distant buckets, so once
//! a map outgrows the cache every lookup of a recent id is a miss to
//! memory. [`SeqHasher`] keeps runs of eight consecutive ids in
//! consecutive buckets (the low three bits place an id inside its run) and
//! spreads the runs by Fibonacci hashing of the run number, taken from the
//! product's well-mixed high bits so strided runs spread too. The top seven
//! bits, which hashbrown compares as a tag before any key, come from a
//! Fibonacci hash of the whole id, so neighbours in a run rarely share one.

use std::hash::Hasher;

const FIB: u64 = 0x9E37_79B9_7F4A_7C15;

/// Ids that share a run of buckets.
const RUN_BITS: u32 = 3;

/// The tag bits hashbrown reads (the top seven).
const TAG_MASK: u64 = 0xFE00_0000_0000_0000;

/// The hash of sequence-numbered key `id`.
#[inline]
#[must_use]
pub fn seq_hash(id: u64) -> u64 {
    let run = (id >> RUN_BITS).wrapping_mul(FIB) >> 7;
    let low = (1u64 << RUN_BITS) - 1;
    (id.wrapping_mul(FIB) & TAG_MASK) | (run & !TAG_MASK & !low) | (id & low)
}

/// A `Hasher` for one `u64` key numbered in sequence ([`seq_hash`]).
#[derive(Clone, Copy, Default)]
pub struct SeqHasher(u64);

impl Hasher for SeqHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not the intended use (one u64 key); still a sound hash.
        for &b in bytes {
            self.0 = seq_hash(self.0.rotate_left(8) ^ u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = seq_hash(self.0 ^ n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_of_eight_ids_takes_consecutive_positions() {
        for base in [0u64, 8, 1 << 20, 123_456 << 3] {
            let mask = (1u64 << 16) - 1;
            let first = seq_hash(base) & mask;
            for k in 1..8 {
                assert_eq!(seq_hash(base + k) & mask, first + k);
            }
        }
    }

    #[test]
    fn runs_and_strided_ids_spread_over_the_table() {
        // 4,096 runs into 4,096 positions of runs: most land apart,
        // consecutive or strided by 64 runs alike.
        for stride in [1u64, 64] {
            let mut used = std::collections::BTreeSet::new();
            for run in 0..4096u64 {
                used.insert((seq_hash(run * stride * 8) >> 3) & 4095);
            }
            assert!(
                used.len() > 2500,
                "stride {stride}: {} positions",
                used.len()
            );
        }
    }

    #[test]
    fn neighbours_in_a_run_mostly_carry_different_tags() {
        let tags: std::collections::BTreeSet<u64> =
            (0..8u64).map(|k| seq_hash(800 + k) >> 57).collect();
        assert!(tags.len() >= 6, "{tags:?}");
    }
}
