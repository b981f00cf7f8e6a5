//! Order id → pool slot index: an open-addressing table of bare `u32` slot
//! indices with linear probing, the key read from the slot itself.
//!
//! Storing only the index keeps the table at 4 bytes a bucket (≤ 16 bytes per
//! live order at the 25-50 % load it keeps), which is what holds the whole
//! engine to ≤ 64 bytes per resting order. A lookup costs one probe of the
//! table plus the slot read the caller needs anyway; deletion shifts the
//! following cluster back (no tombstones), so the table never degrades.

use crate::pool::{Pool, NIL};

/// Smallest table, in buckets.
const MIN_BUCKETS: usize = 64;

/// The id → slot table. It does not own the slots: every call is given the pool.
#[derive(Clone, Debug)]
pub struct IdMap {
    buckets: Vec<u32>,
    mask: usize,
    shift: u32,
    len: usize,
}

/// The bucket where `id`'s probe starts. Ids are hashed in runs of eight:
/// the run number (`id >> 3`) is Fibonacci-hashed to a 16-bucket block (one
/// 64-byte cache line) and the run's eight ids take its even buckets. So
/// consecutive ids (the venue's, and every generated workload's) share a
/// cache line instead of touching eight, yet leave gaps between them, which
/// keeps clusters short for the backward shift of a deletion; strided or
/// clustered ids are still scattered over the table by the multiply.
#[inline]
fn home(id: u64, shift: u32) -> usize {
    let block = ((id >> 3).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> shift) as usize;
    (block << 4) | ((id & 7) << 1) as usize
}

/// `home`'s shift for a table of `buckets` (a power of two, at least 32).
fn shift_for(buckets: usize) -> u32 {
    64 - (buckets.trailing_zeros() - 4)
}

impl IdMap {
    /// A table sized for `orders` live orders without growing.
    #[must_use]
    pub fn with_capacity(orders: usize) -> IdMap {
        let buckets = (orders.saturating_mul(2))
            .next_power_of_two()
            .max(MIN_BUCKETS);
        IdMap {
            buckets: vec![NIL; buckets],
            mask: buckets - 1,
            shift: shift_for(buckets),
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
            let slot = self.buckets[i];
            if slot == NIL {
                return None;
            }
            if pool.get(slot).id == id {
                return Some((i, slot));
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Hints the CPU to fetch the cache line where `id`'s probe starts, and,
    /// if that bucket is already in cache and occupied, the slot it names.
    /// Purely a performance hint: it changes nothing.
    #[inline]
    pub fn prefetch(&self, id: u64, pool: &Pool) {
        let bucket = &self.buckets[home(id, self.shift)];
        prefetch_line(std::ptr::from_ref(bucket).cast());
        let slot = *bucket;
        if slot != NIL {
            prefetch_line(std::ptr::from_ref(pool.get(slot)).cast());
        }
    }

    /// Hints the CPU to fetch the cache line where a new `id` will be inserted.
    #[inline]
    pub fn prefetch_bucket(&self, id: u64) {
        prefetch_line(std::ptr::from_ref(&self.buckets[home(id, self.shift)]).cast());
    }

    /// Records that order `id` (not present) lives in `slot`.
    #[inline]
    pub fn insert(&mut self, id: u64, slot: u32, pool: &Pool) {
        if (self.len + 1) * 2 > self.buckets.len() {
            self.grow(pool);
        }
        let mut i = home(id, self.shift);
        while self.buckets[i] != NIL {
            debug_assert!(pool.get(self.buckets[i]).id != id, "duplicate id {id}");
            i = (i + 1) & self.mask;
        }
        self.buckets[i] = slot;
        self.len += 1;
    }

    /// Forgets order `id`; returns its slot if it was present.
    #[inline]
    pub fn remove(&mut self, id: u64, pool: &Pool) -> Option<u32> {
        let (bucket, slot) = self.find(id, pool)?;
        self.remove_at(bucket, pool);
        Some(slot)
    }

    /// Empties `bucket` (from [`IdMap::find`], with no change since).
    #[inline]
    pub fn remove_at(&mut self, bucket: usize, pool: &Pool) {
        let i = bucket;
        debug_assert!(self.buckets[i] != NIL, "remove_at an empty bucket");
        self.len -= 1;
        // Backward-shift deletion: pull later members of the cluster into the
        // hole unless their home lies cyclically in (hole, position].
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & self.mask;
            let slot = self.buckets[j];
            if slot == NIL {
                break;
            }
            let k = home(pool.get(slot).id, self.shift);
            let stays = if hole <= j {
                hole < k && k <= j
            } else {
                hole < k || k <= j
            };
            if !stays {
                self.buckets[hole] = slot;
                hole = j;
            }
        }
        self.buckets[hole] = NIL;
    }

    fn grow(&mut self, pool: &Pool) {
        let old = std::mem::take(&mut self.buckets);
        let size = old.len() * 2;
        self.buckets = vec![NIL; size];
        self.mask = size - 1;
        self.shift = shift_for(size);
        for slot in old.into_iter().filter(|&s| s != NIL) {
            let mut i = home(pool.get(slot).id, self.shift);
            while self.buckets[i] != NIL {
                i = (i + 1) & self.mask;
            }
            self.buckets[i] = slot;
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
