//! Scope allocations. [`Allocation`]: tonnes per inventory slot, what a
//! buyer has claimed. [`OrderLines`]: one order's open tonnes as its scope
//! lines in the order the buyer sent them, and the two ways tonnes leave
//! them: filled tonnes are taken first line first (the certificate spreads
//! them that way), unfilled tonnes are freed last line first (COMPLIANCE.md
//! step 11).

use bincode::{Decode, Encode};

/// Inventory slots: scope 1, scope 2, then scope 3 categories 1-15.
pub const SLOTS: usize = 17;

/// Tonnes per slot (0 scope 1, 1 scope 2, 2-16 scope 3 categories 1-15).
/// Fixed-size, so deciding and releasing allocate nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Encode, Decode)]
pub struct Allocation(pub [u64; SLOTS]);

impl Allocation {
    /// The slot of scope `scope` (1-3) and scope 3 category `category`
    /// (1-15; 0 for scopes 1 and 2), if that pair is valid.
    #[must_use]
    pub fn slot(scope: u8, category: u8) -> Option<usize> {
        match (scope, category) {
            (1, 0) => Some(0),
            (2, 0) => Some(1),
            (3, 1..=15) => Some(usize::from(category) + 1),
            _ => None,
        }
    }

    /// The `(scope, category)` of a slot.
    #[must_use]
    pub fn scope_of(slot: usize) -> (u8, u8) {
        match slot {
            0 => (1, 0),
            1 => (2, 0),
            other => (3, (other - 1) as u8),
        }
    }

    /// Tonnes over every slot.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Adds `other` slot by slot.
    pub fn add(&mut self, other: &Allocation) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }

    /// Subtracts `other` slot by slot; a slot never goes below zero (an
    /// assertion in debug builds: claims are released only once).
    pub fn subtract(&mut self, other: &Allocation) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            debug_assert!(*a >= b, "released more tonnes than were claimed");
            *a = a.saturating_sub(b);
        }
    }
}

/// One order's open tonnes per scope line, in the buyer's line order:
/// `(slot, tonnes)`. Lines emptied by fills or freeing are dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Encode, Decode)]
pub struct OrderLines(pub Vec<(u8, u64)>);

impl OrderLines {
    /// The lines of a buyer's decision (invalid scope pairs, which the
    /// pre-router never accepts, are left out).
    #[must_use]
    pub fn from_scope(lines: &[tonnex_protocol::wire::ScopeLine]) -> OrderLines {
        OrderLines(
            lines
                .iter()
                .filter(|l| l.qty > 0)
                .filter_map(|l| Some((Allocation::slot(l.scope, l.category)? as u8, l.qty)))
                .collect(),
        )
    }

    /// Open tonnes.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.0.iter().map(|&(_, q)| q).sum()
    }

    /// Open tonnes per slot.
    #[must_use]
    pub fn per_slot(&self) -> Allocation {
        let mut per_slot = Allocation::default();
        for &(slot, qty) in &self.0 {
            per_slot.0[usize::from(slot)] += qty;
        }
        per_slot
    }

    /// Takes `qty` tonnes off, first line first (tonnes that traded), and
    /// returns them per slot.
    pub fn take_first(&mut self, qty: u64) -> Allocation {
        let mut taken = Allocation::default();
        let mut left = qty;
        for (slot, tonnes) in &mut self.0 {
            let step = left.min(*tonnes);
            *tonnes -= step;
            taken.0[usize::from(*slot)] += step;
            left -= step;
        }
        self.0.retain(|&(_, q)| q > 0);
        taken
    }

    /// Takes `qty` tonnes off, last line first (tonnes that will never
    /// trade), and returns them per slot.
    pub fn take_last(&mut self, qty: u64) -> Allocation {
        let mut taken = Allocation::default();
        let mut left = qty;
        for (slot, tonnes) in self.0.iter_mut().rev() {
            let step = left.min(*tonnes);
            *tonnes -= step;
            taken.0[usize::from(*slot)] += step;
            left -= step;
        }
        self.0.retain(|&(_, q)| q > 0);
        taken
    }

    /// The slot added tonnes go to on a replace up: the last line's.
    #[must_use]
    pub fn last_slot(&self) -> Option<usize> {
        self.0.last().map(|&(slot, _)| usize::from(slot))
    }

    /// A replace changed the open tonnes from `old_open` to `new_open`:
    /// down frees tonnes last line first, up adds them to the last line.
    /// Returns `(freed, added)` per slot; at most one is non-empty. The
    /// venue's bookkeeping and the router's claims both follow it.
    pub fn resize(&mut self, old_open: u64, new_open: u64) -> (Allocation, Allocation) {
        let mut added = Allocation::default();
        if new_open < old_open {
            return (self.take_last(old_open - new_open), added);
        }
        if let Some(last) = self.0.last_mut() {
            last.1 += new_open - old_open;
            added.0[usize::from(last.0)] = new_open - old_open;
        }
        (Allocation::default(), added)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filled_tonnes_leave_first_lines_and_freed_tonnes_last_lines_in_the_buyers_order() {
        // Scope 3 category 4 first, then scope 1: line order, not slot order.
        let mut lines = OrderLines(vec![(5, 4), (0, 3)]);
        let filled = lines.take_first(5);
        assert_eq!((filled.0[5], filled.0[0]), (4, 1));
        assert_eq!(lines, OrderLines(vec![(0, 2)]));
        let mut lines = OrderLines(vec![(5, 4), (0, 3)]);
        let freed = lines.take_last(4);
        assert_eq!((freed.0[0], freed.0[5]), (3, 1));
        assert_eq!(lines.last_slot(), Some(5));
        let (freed, added) = lines.resize(3, 10);
        assert_eq!((freed.total(), added.0[5]), (0, 7));
        assert_eq!(lines.per_slot().0[5], 10);
    }

    #[test]
    fn slots_and_scopes_map_both_ways() {
        for slot in 0..SLOTS {
            let (scope, category) = Allocation::scope_of(slot);
            assert_eq!(Allocation::slot(scope, category), Some(slot));
        }
        assert_eq!(Allocation::slot(3, 0), None);
        assert_eq!(Allocation::slot(1, 2), None);
        assert_eq!(Allocation::slot(3, 16), None);
    }
}
