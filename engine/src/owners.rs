//! Each account's resting orders, as a doubly-linked list through a table
//! beside the pool's slots: a mass cancel, a cancel-on-disconnect or an
//! order status touches the account's own orders, not every order of every
//! book (a walk of a 600,000-order book takes tens of milliseconds, which
//! every session would wait for). The pool keeps it ([`crate::pool::Pool`]):
//! every slot taken is linked, every slot freed unlinked.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use crate::accounts::IntHasher;
use crate::pool::NIL;

/// The lists (see the module documentation).
#[derive(Clone, Debug, Default)]
pub struct Owners {
    /// Account → the slot of its newest resting order (`NIL`: none now).
    /// Looked up by key only, never iterated.
    newest: HashMap<u64, u32, BuildHasherDefault<IntHasher>>,
    /// Per slot: the slots of the same account's next older and next newer
    /// resting orders (`NIL` at either end).
    links: Vec<[u32; 2]>,
    /// Slots on some list (the pool's live count, when all is well).
    listed: usize,
}

const OLDER: usize = 0;
const NEWER: usize = 1;

impl Owners {
    /// Room for `capacity` slots before the table grows.
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Owners {
        Owners {
            newest: HashMap::default(),
            links: Vec::with_capacity(capacity),
            listed: 0,
        }
    }

    /// Slot `index`, just taken by an order of `account`, becomes the
    /// account's newest.
    #[inline]
    pub fn link(&mut self, index: u32, account: u64) {
        let at = index as usize;
        if at >= self.links.len() {
            self.links.resize(at + 1, [NIL, NIL]);
        }
        let newest = self.newest.entry(account).or_insert(NIL);
        self.links[at] = [*newest, NIL];
        if *newest != NIL {
            self.links[*newest as usize][NEWER] = index;
        }
        *newest = index;
        self.listed += 1;
    }

    /// Slot `index`, an order of `account`, is being freed.
    #[inline]
    pub fn unlink(&mut self, index: u32, account: u64) {
        let [older, newer] = self.links[index as usize];
        if older != NIL {
            self.links[older as usize][NEWER] = newer;
        }
        if newer != NIL {
            self.links[newer as usize][OLDER] = older;
        } else if let Some(newest) = self.newest.get_mut(&account) {
            *newest = older;
        }
        self.listed -= 1;
    }

    /// Slots on the lists, all accounts together.
    #[must_use]
    pub fn listed(&self) -> usize {
        self.listed
    }

    /// Visits the slots of `account`'s resting orders, newest first.
    pub fn for_each(&self, account: u64, mut visit: impl FnMut(u32)) {
        let mut at = self.newest.get(&account).copied().unwrap_or(NIL);
        while at != NIL {
            visit(at);
            at = self.links[at as usize][OLDER];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(owners: &Owners, account: u64) -> Vec<u32> {
        let mut seen = Vec::new();
        owners.for_each(account, |i| seen.push(i));
        seen
    }

    #[test]
    fn lists_keep_each_accounts_slots_newest_first_through_any_unlink() {
        let mut owners = Owners::with_capacity(2);
        for (index, account) in [(0, 7), (1, 8), (2, 7), (5, 7), (3, 8)] {
            owners.link(index, account);
        }
        assert_eq!(slots(&owners, 7), [5, 2, 0]);
        assert_eq!(slots(&owners, 8), [3, 1]);
        assert_eq!(slots(&owners, 9), [] as [u32; 0]);
        owners.unlink(2, 7); // the middle
        assert_eq!(slots(&owners, 7), [5, 0]);
        owners.unlink(5, 7); // the newest
        assert_eq!(slots(&owners, 7), [0]);
        owners.link(2, 7); // a freed slot taken again
        assert_eq!(slots(&owners, 7), [2, 0]);
        owners.unlink(0, 7); // the oldest
        owners.unlink(2, 7);
        assert_eq!(slots(&owners, 7), [] as [u32; 0]);
        assert_eq!(slots(&owners, 8), [3, 1]);
        owners.link(4, 7);
        assert_eq!(slots(&owners, 7), [4]);
    }
}
