//! One instrument's order book: its definition, halt flag and two ladders,
//! plus the level-list surgery (link at the tail, unlink anywhere) that
//! every order movement goes through.

use crate::command::InstrumentSpec;
use crate::ladder::{Ladder, Level};
use crate::pool::{Pool, Slot, NIL};
use tonnex_protocol::Side;

/// An instrument's book.
#[derive(Clone, Debug)]
pub struct Book {
    /// The instrument's definition.
    pub spec: InstrumentSpec,
    /// Halted books take no new orders or replaces.
    pub halted: bool,
    /// Buy side, best (highest) first.
    pub bids: Ladder,
    /// Sell side, best (lowest) first.
    pub asks: Ladder,
}

impl Book {
    /// An empty, trading book whose ladders keep at most `window_ticks`
    /// prices in their dense windows.
    #[must_use]
    pub fn new(spec: InstrumentSpec, window_ticks: i64) -> Book {
        let (low, high) = (spec.min_price.ticks(), spec.max_price.ticks());
        Book {
            spec,
            halted: false,
            bids: Ladder::new(Side::Buy, low, high, window_ticks),
            asks: Ladder::new(Side::Sell, low, high, window_ticks),
        }
    }

    /// The ladder of `side`.
    #[inline]
    pub fn side_mut(&mut self, side: Side) -> &mut Ladder {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// The ladder of `side`.
    #[inline]
    #[must_use]
    pub fn side(&self, side: Side) -> &Ladder {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    /// Whether `price` lies in the instrument's band (both ends allowed).
    #[inline]
    #[must_use]
    pub fn in_band(&self, price: i64) -> bool {
        price >= self.spec.min_price.ticks() && price <= self.spec.max_price.ticks()
    }

    /// Puts the order in slot `index` (whose contents are `slot`) at the
    /// back of its price level.
    #[inline]
    pub fn link(&mut self, pool: &mut Pool, index: u32, slot: &Slot) {
        let (side, price, qty) = (slot.side(), slot.price, slot.qty);
        let level = self.side_mut(side).level_for_insert(price);
        let tail = level.tail;
        level.tail = index;
        level.qty += qty;
        if tail == NIL {
            level.head = index;
        }
        let slot = pool.get_mut(index);
        slot.prev = tail;
        slot.next = NIL;
        if tail != NIL {
            pool.get_mut(tail).next = index;
        }
    }

    /// Takes the order `slot` (a copy of its pool slot's current contents)
    /// out of its level; the pool slot stays allocated.
    #[inline]
    pub fn unlink(&mut self, pool: &mut Pool, slot: &Slot) {
        let ladder = self.side_mut(slot.side());
        let level = ladder.level_mut(slot.price);
        unlink_from(level, pool, slot);
        if level.is_empty() {
            ladder.level_emptied(slot.price);
        }
    }
}

impl Book {
    /// Visits every resting order in book order: bids best price first,
    /// then asks best price first, each level in time priority. `prices` is
    /// scratch space the caller may reuse across calls. Not for the hot path
    /// (mass cancels, halts, dumps, snapshots).
    pub fn walk(&self, pool: &Pool, prices: &mut Vec<i64>, mut visit: impl FnMut(u32, &Slot)) {
        for ladder in [&self.bids, &self.asks] {
            prices.clear();
            ladder.prices_best_first(prices);
            for &price in prices.iter() {
                let mut cursor = ladder.level(price).head;
                while cursor != NIL {
                    let slot = pool.get(cursor);
                    visit(cursor, slot);
                    cursor = slot.next;
                }
            }
        }
    }
}

/// Unlinks `slot` (a copy of the slot's current contents) from `level`.
#[inline]
pub fn unlink_from(level: &mut Level, pool: &mut Pool, slot: &Slot) {
    if slot.prev != NIL {
        pool.get_mut(slot.prev).next = slot.next;
    } else {
        level.head = slot.next;
    }
    if slot.next != NIL {
        pool.get_mut(slot.next).prev = slot.prev;
    } else {
        level.tail = slot.prev;
    }
    level.qty -= slot.qty;
}
