//! Prefetching the cache lines a command will touch, in stages a few
//! commands ahead (replay and the engine thread call it); reads only.

use super::*;

/// The stages of [`State::prefetch`], each reading only what the stage
/// before it brought into cache. Suggested distances ahead of the command
/// being applied: `Index` 6, `Order` 3, `Links` 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrefetchStage {
    /// The id index bucket of the command's order.
    Index,
    /// The order's slot (cancel, replace), or the order a new one would
    /// queue behind.
    Order,
    /// A cancelled or replaced order's neighbours in its price level.
    Links,
}

/// Hints the CPU to load `slot`'s cache line.
#[inline(always)]
fn prefetch_slot(slot: &Slot) {
    crate::idmap::prefetch_line(std::ptr::from_ref(slot).cast());
}

impl State {
    /// Hints the CPU to start loading what `command` will touch, one stage
    /// of a three-stage pipeline (see [`PrefetchStage`]). A caller holding a
    /// queue of commands (the replay tool; the venue's engine thread and its
    /// input ring) overlaps the coming commands' cache misses with the
    /// current one's work. Changes nothing.
    #[inline]
    pub fn prefetch(&self, command: &Command, stage: PrefetchStage) {
        // The books fit in cache: the hints would only cost time.
        if self.pool.live() >= PREFETCH_MIN_ORDERS {
            self.prefetch_stage(command, stage);
        }
    }

    #[inline(never)]
    fn prefetch_stage(&self, command: &Command, stage: PrefetchStage) {
        let (order_id, new) = match *command {
            Command::New(ref order) => (order.id, Some(order)),
            Command::Cancel { order_id, .. } | Command::Replace { order_id, .. } => {
                (order_id, None)
            }
            _ => return,
        };
        match stage {
            PrefetchStage::Index => self.ids.prefetch_bucket(order_id),
            PrefetchStage::Order => match new {
                None => self.ids.prefetch_slot(order_id, &self.pool),
                Some(order) => {
                    // The order a new one would queue behind.
                    if let Some(book) = self.books.get(order.instrument as usize) {
                        let tail = book.side(order.side).level(order.price.ticks()).tail;
                        if tail != NIL {
                            prefetch_slot(self.pool.get(tail));
                        }
                    }
                }
            },
            PrefetchStage::Links => {
                if new.is_none() {
                    if let Some(index) = self.ids.get(order_id, &self.pool) {
                        let slot = self.pool.get(index);
                        for neighbour in [slot.prev, slot.next] {
                            if neighbour != NIL {
                                prefetch_slot(self.pool.get(neighbour));
                            }
                        }
                    }
                }
            }
        }
    }
}
