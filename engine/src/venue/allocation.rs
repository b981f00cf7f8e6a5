//! A buyer order's scope allocation as tonnes per inventory slot, and the
//! two ways tonnes leave it: filled tonnes are taken first line first (the
//! certificate spreads them that way), unfilled tonnes are freed last line
//! first (COMPLIANCE.md step 11).

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

    /// Takes `qty` tonnes off, first slot first (tonnes that traded), and
    /// returns what was taken.
    pub fn take_first(&mut self, qty: u64) -> Allocation {
        let mut taken = Allocation::default();
        let mut left = qty;
        for (slot, tonnes) in self.0.iter_mut().enumerate() {
            let step = left.min(*tonnes);
            *tonnes -= step;
            taken.0[slot] = step;
            left -= step;
        }
        taken
    }

    /// Takes `qty` tonnes off, last slot first (tonnes that will never
    /// trade), and returns what was taken.
    pub fn take_last(&mut self, qty: u64) -> Allocation {
        let mut taken = Allocation::default();
        let mut left = qty;
        for (slot, tonnes) in self.0.iter_mut().enumerate().rev() {
            let step = left.min(*tonnes);
            *tonnes -= step;
            taken.0[slot] = step;
            left -= step;
        }
        taken
    }

    /// The slot added tonnes go to on a replace up: the last one in use.
    #[must_use]
    pub fn last_slot(&self) -> Option<usize> {
        self.0.iter().rposition(|&t| t > 0)
    }

    /// A replace changed the open tonnes from `old_open` to `new_open`:
    /// down frees tonnes last slot first, up adds them to the last slot in
    /// use. Returns `(freed, added)`; at most one is non-empty. The venue's
    /// bookkeeping and the router's claims both follow it.
    pub fn resize(&mut self, old_open: u64, new_open: u64) -> (Allocation, Allocation) {
        let mut added = Allocation::default();
        if new_open < old_open {
            return (self.take_last(old_open - new_open), added);
        }
        added.0[self.last_slot().unwrap_or(0)] = new_open - old_open;
        self.add(&added);
        (Allocation::default(), added)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filled_tonnes_leave_first_slots_and_freed_tonnes_last_slots() {
        let mut a = Allocation::default();
        a.0[0] = 3;
        a.0[5] = 4;
        let filled = a.take_first(4);
        assert_eq!((filled.0[0], filled.0[5]), (3, 1));
        let freed = a.take_last(2);
        assert_eq!(freed.0[5], 2);
        assert_eq!(a.total(), 1);
        assert_eq!(a.last_slot(), Some(5));
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
