//! A queue of `Copy` items kept in fixed-size chunks behind `Arc`s, so a
//! clone costs one reference count per chunk instead of a copy of every
//! item. A chunk is copied only when it is written while a clone still
//! shares it (copy on write): after a snapshot's clone, the event loop
//! copies the one chunk it appends to, not the millions of items behind it.
//!
//! Every chunk but the last holds exactly [`CHUNK`] items, so item `i` sits
//! at `head + i` counted over full chunks: indexing is a division, not a
//! walk. A chunk emptied from the front is kept as the next one to fill
//! when nothing else holds it, so a queue that stays about the same length
//! allocates nothing once it has grown (the engine's no-allocation steady
//! state, `engine/tests/no_alloc.rs`).

use std::collections::VecDeque;
use std::sync::Arc;

/// Items per chunk.
pub const CHUNK: usize = 4096;

/// The queue (see the module documentation).
#[derive(Debug)]
pub struct Chunked<T> {
    chunks: VecDeque<Arc<Vec<T>>>,
    /// Items already taken off the front chunk.
    head: usize,
    len: usize,
    /// An emptied chunk no clone shares, for the next push that needs one.
    spare: Option<Arc<Vec<T>>>,
}

impl<T> Default for Chunked<T> {
    fn default() -> Chunked<T> {
        Chunked {
            chunks: VecDeque::new(),
            head: 0,
            len: 0,
            spare: None,
        }
    }
}

impl<T> Clone for Chunked<T> {
    /// Shares every chunk (one reference count each); the spare stays here.
    fn clone(&self) -> Chunked<T> {
        Chunked {
            chunks: self.chunks.clone(),
            head: self.head,
            len: self.len,
            spare: None,
        }
    }
}

/// The chunk itself, to write; copied first if a clone shares it.
fn own<T: Copy>(chunk: &mut Arc<Vec<T>>) -> &mut Vec<T> {
    // A plain load first: `get_mut` is a locked compare-exchange, and this
    // runs for every unsettled trade pushed. (Holding `&mut` to the only
    // `Arc`, the count can only fall meanwhile: a stale 2 costs a copy, a
    // 1 is confirmed by `get_mut` below. No `Weak` is ever made.)
    if Arc::strong_count(chunk) != 1 {
        let mut copy = Vec::with_capacity(CHUNK);
        copy.extend_from_slice(chunk);
        *chunk = Arc::new(copy);
    }
    Arc::get_mut(chunk).expect("a chunk just made unshared")
}

impl<T: Copy> Chunked<T> {
    /// How many items it holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `item`.
    #[inline]
    pub fn push_back(&mut self, item: T) {
        if self.chunks.back().is_none_or(|c| c.len() == CHUNK) {
            let chunk = self
                .spare
                .take()
                .unwrap_or_else(|| Arc::new(Vec::with_capacity(CHUNK)));
            self.chunks.push_back(chunk);
        }
        let back = self.chunks.back_mut().expect("a chunk with room");
        own(back).push(item);
        self.len += 1;
    }

    /// The first item.
    #[must_use]
    pub fn front(&self) -> Option<&T> {
        self.get(0)
    }

    /// The last item.
    #[must_use]
    pub fn back(&self) -> Option<&T> {
        self.len.checked_sub(1).and_then(|last| self.get(last))
    }

    /// Takes the first item off.
    pub fn pop_front(&mut self) -> Option<T> {
        let item = *self.front()?;
        self.head += 1;
        self.len -= 1;
        if self.chunks.front().is_some_and(|c| self.head == c.len()) {
            // Every item of the front chunk is taken; a later push starts a
            // new chunk if this was the last one, the spare if it has one.
            let mut emptied = self.chunks.pop_front().expect("the front chunk");
            self.head = 0;
            if let Some(items) = Arc::get_mut(&mut emptied) {
                items.clear();
                self.spare = Some(emptied);
            }
        }
        Some(item)
    }

    /// Where item `i` is: chunk and place in it.
    #[inline]
    fn place(&self, i: usize) -> (usize, usize) {
        let at = self.head + i;
        (at / CHUNK, at % CHUNK)
    }

    /// Item `i` (from the front, 0 first).
    #[inline]
    #[must_use]
    pub fn get(&self, i: usize) -> Option<&T> {
        if i >= self.len {
            return None;
        }
        let (chunk, at) = self.place(i);
        self.chunks[chunk].get(at)
    }

    /// Item `i`, to change (its chunk is copied first if a clone shares it).
    pub fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        if i >= self.len {
            return None;
        }
        let (chunk, at) = self.place(i);
        own(&mut self.chunks[chunk]).get_mut(at)
    }

    /// Binary search of items sorted by `key`: `Ok` with the index of an
    /// item whose key is `wanted`, or `Err` with where it would go.
    pub fn binary_search_by_key<K: Ord>(
        &self,
        wanted: &K,
        mut key: impl FnMut(&T) -> K,
    ) -> Result<usize, usize> {
        let (mut low, mut high) = (0, self.len);
        while low < high {
            let mid = low + (high - low) / 2;
            let item = self.get(mid).expect("an index below len");
            match key(item).cmp(wanted) {
                std::cmp::Ordering::Less => low = mid + 1,
                std::cmp::Ordering::Greater => high = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(low)
    }

    /// Every item, front first.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        let head = self.head;
        self.chunks
            .iter()
            .enumerate()
            .flat_map(move |(n, chunk)| &chunk[if n == 0 { head } else { 0 }..])
    }
}

impl<T: Copy> FromIterator<T> for Chunked<T> {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Chunked<T> {
        let mut queue = Chunked::default();
        for item in items {
            queue.push_back(item);
        }
        queue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same operations on a `VecDeque`, the model.
    fn check(queue: &Chunked<u64>, model: &VecDeque<u64>) {
        assert_eq!(queue.len(), model.len());
        assert!(queue.iter().eq(model.iter()));
        for i in [
            0,
            1,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            model.len().saturating_sub(1),
        ] {
            assert_eq!(queue.get(i), model.get(i), "item {i}");
        }
        assert_eq!(queue.get(model.len()), None);
        assert_eq!(queue.front(), model.front());
        assert_eq!(queue.back(), model.back());
    }

    #[test]
    fn pushes_pops_and_indexing_follow_a_vecdeque_across_chunk_edges() {
        let mut queue = Chunked::default();
        let mut model = VecDeque::new();
        let mut next = 0u64;
        // Grow past three chunks, shrink into the second, grow again, empty.
        for (push, pop) in [
            (3 * CHUNK + 7, 0),
            (0, CHUNK + 5),
            (2 * CHUNK, 1),
            (0, usize::MAX),
        ] {
            for _ in 0..push {
                queue.push_back(next);
                model.push_back(next);
                next += 1;
            }
            for _ in 0..pop.min(model.len()) {
                assert_eq!(queue.pop_front(), model.pop_front());
            }
            check(&queue, &model);
        }
        assert!(queue.is_empty());
        assert_eq!(queue.pop_front(), None);
        // Empty, it starts again from a fresh chunk.
        queue.push_back(7);
        model.push_back(7);
        check(&queue, &model);
    }

    #[test]
    fn binary_search_finds_every_key_and_the_place_of_a_missing_one() {
        // Even keys from 10, the front chunk partly taken.
        let mut queue: Chunked<u64> = (0..(2 * CHUNK as u64 + 100)).map(|k| 10 + 2 * k).collect();
        for _ in 0..300 {
            queue.pop_front();
        }
        let model: Vec<u64> = queue.iter().copied().collect();
        for probe in [
            0,
            10,
            609,
            610,
            611,
            10 + 2 * 5000,
            10 + 2 * 5000 + 1,
            u64::MAX,
        ] {
            assert_eq!(
                queue.binary_search_by_key(&probe, |&k| k),
                model.binary_search(&probe),
                "key {probe}"
            );
        }
    }

    #[test]
    fn a_queue_that_keeps_its_length_reuses_its_emptied_chunks() {
        let mut queue: Chunked<u64> = (0..CHUNK as u64).collect();
        let first = Arc::as_ptr(&queue.chunks[0]);
        // Emptied from the front, the chunk is the spare ...
        for n in 0..CHUNK as u64 {
            queue.pop_front();
            queue.push_back(n);
        }
        assert_eq!(queue.chunks.len(), 1);
        assert_eq!(queue.spare.as_ref().map(Arc::as_ptr), Some(first));
        // ... and the next chunk filled.
        queue.push_back(CHUNK as u64);
        assert!(queue.spare.is_none());
        assert_eq!(Arc::as_ptr(&queue.chunks[1]), first);
        assert!(queue.iter().copied().eq(0..=CHUNK as u64));
        // A chunk a clone still holds is left to the clone, not reused.
        let copy = queue.clone();
        while queue.pop_front().is_some() {}
        assert!(queue.spare.is_none());
        assert_eq!(copy.len(), CHUNK + 1);
    }

    #[test]
    fn a_clone_shares_chunks_and_writes_on_either_side_stay_apart() {
        let mut queue: Chunked<u64> = (0..(2 * CHUNK as u64 + 10)).collect();
        let copy = queue.clone();
        // The clone shares every chunk: no item was copied.
        for (a, b) in queue.chunks.iter().zip(&copy.chunks) {
            assert!(Arc::ptr_eq(a, b));
        }
        *queue.get_mut(5).unwrap() = 1_000_000;
        queue.push_back(99);
        queue.pop_front();
        // Only the written chunks were copied; the untouched middle one is
        // still shared.
        assert!(Arc::ptr_eq(&queue.chunks[1], &copy.chunks[1]));
        assert!(!Arc::ptr_eq(&queue.chunks[0], &copy.chunks[0]));
        assert_eq!(copy.get(5), Some(&5));
        assert_eq!(copy.len(), 2 * CHUNK + 10);
        assert_eq!(copy.back(), Some(&(2 * CHUNK as u64 + 9)));
        assert_eq!(queue.get(4), Some(&1_000_000));
        assert_eq!(queue.back(), Some(&99));
        // A copied chunk keeps its full capacity: the next pushes fill it.
        assert_eq!(queue.chunks.back().unwrap().capacity(), CHUNK);
    }
}
