//! Order id → pool slot index: an open-addressing table with linear
//! probing whose buckets are single `u32`s: the slot index in the low 24
//! bits and the entry's distance from its home bucket in the high 8. The
//! key is read from the slot itself.
//!
//! Four bytes a bucket (≤ 16 bytes per live order at the 25-50 % load the
//! table keeps) is what holds the engine to ≤ 64 bytes per resting order. A
//! lookup costs a probe of the table plus the slot read the caller needs
//! anyway. Deletion shifts the rest of the cluster back (no tombstones, so
//! the table never degrades), and thanks to the stored distances it does so
//! without reading a single slot. Hashing is Fibonacci (multiplicative) by
//! blocks of 16 ids, which spreads sequential ids (the venue's, every
//! workload's) evenly and keeps neighbours in one cache line ([`home`]).

use crate::pool::{Pool, NIL};

/// Smallest table, in buckets.
const MIN_BUCKETS: usize = 64;

/// Bits of a bucket that hold the slot index.
const SLOT_BITS: u32 = 24;

/// Mask of the slot index in a bucket.
const SLOT_MASK: u32 = (1 << SLOT_BITS) - 1;

/// Longest probe distance a bucket can record.
const MAX_DISTANCE: usize = (u32::MAX >> SLOT_BITS) as usize;

/// The most slots the table can address: 16 777 214 resting orders (the
/// all-ones bucket is `EMPTY`).
pub const MAX_SLOTS: u32 = SLOT_MASK;

/// An empty bucket.
const EMPTY: u32 = NIL;

/// The id → slot table. It does not own the slots: every call is given the pool.
#[derive(Clone, Debug)]
pub struct IdMap {
    buckets: Vec<u32>,
    mask: usize,
    shift: u32,
    len: usize,
}

/// Consecutive ids that share a home block: `BLOCK` buckets, one cache line.
const BLOCK_BITS: u32 = 4;

/// The bucket where `id`'s probe starts. Ids are hashed a block at a time:
/// the block number (`id >> BLOCK_BITS`) by Fibonacci hashing, which
/// spreads sequential and strided blocks evenly over the table, and the
/// low bits kept as the place inside the block. The venue numbers orders
/// by journal sequence, so the orders of one moment share a few cache
/// lines: a new order's bucket is the line the previous one brought in,
/// and cancelling a recent order finds its bucket still cached (pure
/// Fibonacci hashing made each of those a miss to memory once the table
/// outgrew the cache).
#[inline]
fn home(id: u64, shift: u32) -> usize {
    let block = (id >> BLOCK_BITS).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (shift + BLOCK_BITS);
    ((block << BLOCK_BITS) | (id & ((1 << BLOCK_BITS) - 1))) as usize
}

#[inline]
fn slot_of(bucket: u32) -> u32 {
    bucket & SLOT_MASK
}

#[inline]
fn distance_of(bucket: u32) -> usize {
    (bucket >> SLOT_BITS) as usize
}

impl IdMap {
    /// A table sized for `orders` live orders without growing.
    #[must_use]
    pub fn with_capacity(orders: usize) -> IdMap {
        let buckets = (orders.saturating_mul(2))
            .next_power_of_two()
            .max(MIN_BUCKETS);
        IdMap {
            buckets: vec![EMPTY; buckets],
            mask: buckets - 1,
            shift: 64 - buckets.trailing_zeros(),
            len: 0,
        }
    }

    /// Live entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes the table reserves.
    #[must_use]
    pub fn reserved_bytes(&self) -> usize {
        self.buckets.len() * std::mem::size_of::<u32>()
    }

    /// The slot of order `id`, if it is live.
    #[inline]
    #[must_use]
    pub fn get(&self, id: u64, pool: &Pool) -> Option<u32> {
        self.find(id, pool).map(|(_, slot)| slot)
    }

    /// The bucket and slot of order `id`, if it is live. The bucket is valid
    /// for [`IdMap::remove_at`] until the table next changes.
    #[inline]
    #[must_use]
    pub fn find(&self, id: u64, pool: &Pool) -> Option<(usize, u32)> {
        let mut i = home(id, self.shift);
        loop {
            let bucket = self.buckets[i];
            if bucket == EMPTY {
                return None;
            }
            let slot = slot_of(bucket);
            if pool.get(slot).id == id {
                return Some((i, slot));
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Hints the CPU to fetch the cache line where `id`'s probe starts.
    /// Purely a performance hint: it changes nothing.
    #[inline]
    pub fn prefetch_bucket(&self, id: u64) {
        prefetch_line(std::ptr::from_ref(&self.buckets[home(id, self.shift)]).cast());
    }

    /// Hints the CPU to fetch the slot named by `id`'s first bucket (read
    /// now, so best called once [`IdMap::prefetch_bucket`] has brought it in).
    #[inline]
    pub fn prefetch_slot(&self, id: u64, pool: &Pool) {
        let bucket = self.buckets[home(id, self.shift)];
        if bucket != EMPTY {
            prefetch_line(std::ptr::from_ref(pool.get(slot_of(bucket))).cast());
        }
    }

    /// Records that order `id` (not present) lives in `slot`.
    #[inline]
    pub fn insert(&mut self, id: u64, slot: u32, pool: &Pool) {
        assert!(slot < MAX_SLOTS, "more than {MAX_SLOTS} resting orders");
        if (self.len + 1) * 2 > self.buckets.len() {
            self.grow(pool);
        }
        loop {
            let mut i = home(id, self.shift);
            let mut distance = 0;
            while self.buckets[i] != EMPTY {
                debug_assert!(
                    pool.get(slot_of(self.buckets[i])).id != id,
                    "duplicate id {id}"
                );
                i = (i + 1) & self.mask;
                distance += 1;
            }
            if distance <= MAX_DISTANCE {
                self.buckets[i] = ((distance as u32) << SLOT_BITS) | slot;
                self.len += 1;
                return;
            }
            // A cluster this long is (astronomically) unlikely from the hash;
            // a bigger table breaks it up.
            self.grow(pool);
        }
    }

    /// Forgets order `id`; returns its slot if it was present.
    #[inline]
    pub fn remove(&mut self, id: u64, pool: &Pool) -> Option<u32> {
        let (bucket, slot) = self.find(id, pool)?;
        self.remove_at(bucket);
        Some(slot)
    }

    /// Empties `bucket` (from [`IdMap::find`], with no change since).
    #[inline]
    pub fn remove_at(&mut self, bucket: usize) {
        debug_assert!(self.buckets[bucket] != EMPTY, "remove_at an empty bucket");
        self.len -= 1;
        // Backward-shift deletion: pull each later member of the cluster into
        // the hole when its home is at or before the hole, i.e. when its
        // distance from home is at least its distance from the hole.
        let mut hole = bucket;
        let mut j = bucket;
        loop {
            j = (j + 1) & self.mask;
            let entry = self.buckets[j];
            if entry == EMPTY {
                break;
            }
            let gap = j.wrapping_sub(hole) & self.mask;
            let distance = distance_of(entry);
            if distance >= gap {
                self.buckets[hole] = entry - ((gap as u32) << SLOT_BITS);
                hole = j;
            }
        }
        self.buckets[hole] = EMPTY;
    }

    /// Checks that every entry records its true distance from home and sits
    /// where a probe from home reaches it. Panics with a message otherwise.
    pub fn check(&self, pool: &Pool) {
        let mut live = 0;
        for (i, &bucket) in self.buckets.iter().enumerate() {
            if bucket == EMPTY {
                continue;
            }
            live += 1;
            let id = pool.get(slot_of(bucket)).id;
            let distance = i.wrapping_sub(home(id, self.shift)) & self.mask;
            assert_eq!(
                distance_of(bucket),
                distance,
                "id {id}: recorded probe distance"
            );
            for back in 1..=distance {
                assert!(
                    self.buckets[i.wrapping_sub(back) & self.mask] != EMPTY,
                    "id {id}: gap in its probe"
                );
            }
        }
        assert_eq!(live, self.len, "id index entry count");
    }

    fn grow(&mut self, pool: &Pool) {
        let old = std::mem::take(&mut self.buckets);
        let mut size = old.len() * 2;
        'rebuild: loop {
            self.buckets = vec![EMPTY; size];
            self.mask = size - 1;
            self.shift = 64 - size.trailing_zeros();
            for slot in old.iter().filter(|&&b| b != EMPTY).map(|&b| slot_of(b)) {
                let mut i = home(pool.get(slot).id, self.shift);
                let mut distance = 0;
                while self.buckets[i] != EMPTY {
                    i = (i + 1) & self.mask;
                    distance += 1;
                }
                if distance > MAX_DISTANCE {
                    size *= 2;
                    continue 'rebuild;
                }
                self.buckets[i] = ((distance as u32) << SLOT_BITS) | slot;
            }
            return;
        }
    }
}

/// Asks the CPU to start loading the cache line at `address`.
#[inline(always)]
pub(crate) fn prefetch_line(address: *const i8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it never faults, even on a bad address,
    // and `address` points into a live allocation anyway.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(address);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = address;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::Slot;
    use tonnex_protocol::Side;

    fn slot(id: u64) -> Slot {
        Slot::new(id, 1, 0, Side::Buy, 100, 1, 0, false, false)
    }

    #[test]
    fn insert_get_remove_agree_with_a_reference_map_through_growth_and_churn() {
        let mut pool = Pool::with_capacity(0);
        let mut map = IdMap::with_capacity(0);
        let mut reference = std::collections::BTreeMap::new();
        // A deterministic mix of sequential and scattered ids, with removals
        // that exercise backward shifts across the table's wrap-around.
        let mut x: u64 = 0x1234_5678;
        for step in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = if step % 3 == 0 {
                x % 5_000 + 1
            } else {
                step + 10_000
            };
            if let Some(&s) = reference.get(&id) {
                assert_eq!(map.remove(id, &pool), Some(s));
                pool.release(s);
                reference.remove(&id);
            } else {
                let s = pool.alloc(slot(id));
                map.insert(id, s, &pool);
                reference.insert(id, s);
            }
            if step % 997 == 0 {
                map.check(&pool);
                for (&id, &s) in &reference {
                    assert_eq!(map.get(id, &pool), Some(s), "id {id}");
                }
            }
        }
        assert_eq!(map.len(), reference.len());
        for (&id, &s) in &reference {
            assert_eq!(map.get(id, &pool), Some(s));
        }
        assert_eq!(map.get(u64::MAX, &pool), None);
    }
}
