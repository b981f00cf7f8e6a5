//! Account holds: the pre-trade half of escrow.
//!
//! Every account has a cash balance (micro-dollars) and a credit balance per
//! instrument (tonnes), each split into `free`, `locked` (held by open
//! orders), `pending_out` (traded away, owed to settlement) and `pending_in`
//! (traded for, due from settlement). A buy locks cash for price × quantity, a
//! sell locks credits; a fill moves both sides' locked value to pending
//! settlement; a cancel releases it. So a trade that could not settle cannot
//! happen. Accounts are kept in first-seen order; the id index is only looked
//! up, never iterated, so nothing depends on hash order.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// One balance, in micro-dollars (cash) or tonnes (credits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct Balance {
    /// Available to new orders and withdrawals.
    pub free: i64,
    /// Held by open orders.
    pub locked: i64,
    /// Traded away, awaiting settlement.
    pub pending_out: i64,
    /// Traded for, awaiting settlement.
    pub pending_in: i64,
}

impl Balance {
    /// Moves `amount` from free to locked; false (and no change) if free is short.
    #[inline]
    #[must_use]
    pub fn lock(&mut self, amount: i64) -> bool {
        if amount < 0 || self.free < amount {
            return false;
        }
        self.free -= amount;
        self.locked += amount;
        true
    }

    /// Moves `amount` from locked back to free.
    #[inline]
    pub fn release(&mut self, amount: i64) {
        debug_assert!(
            amount >= 0 && self.locked >= amount,
            "release {amount} of {self:?}"
        );
        self.locked -= amount;
        self.free += amount;
    }

    /// Moves `amount` from locked to pending settlement (a fill's outgoing leg).
    #[inline]
    pub fn trade_out(&mut self, amount: i64) {
        debug_assert!(
            amount >= 0 && self.locked >= amount,
            "trade_out {amount} of {self:?}"
        );
        self.locked -= amount;
        self.pending_out += amount;
    }
}

/// Everything one account holds.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct Account {
    /// Account id.
    pub id: u64,
    /// Cash in micro-dollars.
    pub cash: Balance,
    /// Credits in tonnes, indexed by instrument.
    pub credits: Vec<Balance>,
}

impl Account {
    /// The credit balance of `instrument`, created on first use.
    #[inline]
    pub fn credits_mut(&mut self, instrument: u32) -> &mut Balance {
        let i = instrument as usize;
        if self.credits.len() <= i {
            self.credits.resize(i + 1, Balance::default());
        }
        &mut self.credits[i]
    }

    /// The credit balance of `instrument` (zero if never used).
    #[must_use]
    pub fn credits(&self, instrument: u32) -> Balance {
        self.credits
            .get(instrument as usize)
            .copied()
            .unwrap_or_default()
    }
}

/// A small multiplicative hasher for integer keys: fast, and the same on
/// every run (though nothing here iterates the map).
#[derive(Clone, Copy, Default)]
pub struct IntHasher(u64);

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// All accounts, in first-seen order.
#[derive(Clone, Debug, Default)]
pub struct Accounts {
    index: HashMap<u64, u32, BuildHasherDefault<IntHasher>>,
    list: Vec<Account>,
}

impl Accounts {
    /// The position of account `id`, if it has ever held anything.
    #[inline]
    #[must_use]
    pub fn find(&self, id: u64) -> Option<u32> {
        self.index.get(&id).copied()
    }

    /// The position of account `id`, created empty if new.
    pub fn find_or_create(&mut self, id: u64) -> u32 {
        if let Some(&i) = self.index.get(&id) {
            return i;
        }
        let i = u32::try_from(self.list.len()).expect("more than u32::MAX accounts");
        self.list.push(Account {
            id,
            cash: Balance::default(),
            credits: Vec::new(),
        });
        self.index.insert(id, i);
        i
    }

    /// The account at position `i`.
    #[inline]
    pub fn at_mut(&mut self, i: u32) -> &mut Account {
        &mut self.list[i as usize]
    }

    /// Account `id`, if known.
    #[must_use]
    pub fn get(&self, id: u64) -> Option<&Account> {
        self.find(id).map(|i| &self.list[i as usize])
    }

    /// Every account, in first-seen order.
    #[must_use]
    pub fn all(&self) -> &[Account] {
        &self.list
    }

    /// Accounts restored from a snapshot, in their first-seen order.
    #[must_use]
    pub fn from_list(list: Vec<Account>) -> Accounts {
        let index = list
            .iter()
            .enumerate()
            .map(|(i, a)| (a.id, u32::try_from(i).expect("more than u32::MAX accounts")))
            .collect();
        Accounts { index, list }
    }
}
