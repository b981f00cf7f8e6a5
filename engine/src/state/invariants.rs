//! The invariant checker: a full walk of the state after every command in
//! tests and the property test.

use super::{resting_value, State};
use crate::pool::NIL;
use tonnex_protocol::Side;

impl State {
    /// Walks the whole state and panics, naming what is wrong, if any
    /// invariant is broken: a crossed book, a level whose total is not the
    /// sum of its orders, a broken FIFO link, an order in the wrong level, an
    /// id index that does not match the resting orders, an account's list of
    /// its orders that is not exactly its resting orders, or (with holds) a
    /// locked balance that is not exactly the value of the account's open
    /// orders, or a pending balance that is not exactly the legs of the
    /// account's unfinished trades.
    pub fn check_invariants(&self) {
        let mut resting = 0;
        let mut locked_cash: std::collections::BTreeMap<u64, i64> = Default::default();
        let mut locked_credits: std::collections::BTreeMap<(u64, u32), i64> = Default::default();
        let mut prices = Vec::new();
        let mut owned: std::collections::BTreeMap<u64, Vec<u32>> = Default::default();
        for (instrument, book) in self.books.iter().enumerate() {
            if let (Some(bid), Some(ask)) = (book.bids.best(), book.asks.best()) {
                assert!(
                    bid < ask,
                    "instrument {instrument} crossed: bid {bid} ask {ask}"
                );
            }
            for (side, ladder) in [(Side::Buy, &book.bids), (Side::Sell, &book.asks)] {
                ladder.check();
                prices.clear();
                ladder.prices_best_first(&mut prices);
                for &price in &prices {
                    let level = ladder.level(price);
                    let (mut sum, mut prev, mut cursor) = (0, NIL, level.head);
                    while cursor != NIL {
                        let slot = self.pool.get(cursor);
                        assert_eq!(slot.prev, prev, "order {} prev link", slot.id);
                        assert_eq!(slot.price, price, "order {} in level {price}", slot.id);
                        assert_eq!(slot.side(), side, "order {} on the wrong side", slot.id);
                        assert_eq!(
                            slot.instrument as usize, instrument,
                            "order {} instrument",
                            slot.id
                        );
                        assert!(slot.qty > 0, "order {} rests with nothing open", slot.id);
                        assert_eq!(
                            self.ids.get(slot.id, &self.pool),
                            Some(cursor),
                            "id index of {}",
                            slot.id
                        );
                        sum += slot.qty;
                        resting += 1;
                        owned.entry(slot.account).or_default().push(cursor);
                        let value = resting_value(side, price, slot.qty, book.spec.tick_micros);
                        match side {
                            Side::Buy => *locked_cash.entry(slot.account).or_default() += value,
                            Side::Sell => {
                                *locked_credits
                                    .entry((slot.account, instrument as u32))
                                    .or_default() += value
                            }
                        }
                        prev = cursor;
                        cursor = slot.next;
                    }
                    assert_eq!(level.tail, prev, "level {price} tail");
                    assert_eq!(level.qty, sum, "level {price} total");
                }
            }
        }
        assert_eq!(resting, self.pool.live(), "pool live count");
        if let Some(owners) = self.pool.owners() {
            assert_eq!(resting, owners.listed(), "slots on the accounts' lists");
            for (account, mut want) in owned {
                let mut listed = Vec::new();
                owners.for_each(account, |index| {
                    assert!(listed.len() < resting, "account {account}'s list loops");
                    listed.push(index);
                });
                listed.sort_unstable();
                want.sort_unstable();
                assert_eq!(listed, want, "account {account}'s list of its orders");
            }
        }
        assert_eq!(resting, self.ids.len(), "id index size");
        self.ids.check(&self.pool);
        if self.config.holds {
            self.check_pending();
            for account in self.accounts.all() {
                let want = locked_cash.get(&account.id).copied().unwrap_or(0);
                assert_eq!(
                    account.cash.locked, want,
                    "account {} locked cash",
                    account.id
                );
                assert!(
                    account.cash.free >= 0,
                    "account {} free cash negative",
                    account.id
                );
                for (instrument, balance) in account.credits.iter().enumerate() {
                    let want = locked_credits
                        .get(&(account.id, instrument as u32))
                        .copied()
                        .unwrap_or(0);
                    assert_eq!(
                        balance.locked, want,
                        "account {} locked credits of {instrument}",
                        account.id
                    );
                    assert!(
                        balance.free >= 0,
                        "account {} free credits negative",
                        account.id
                    );
                }
            }
        }
    }

    /// Each account's pending balances are the sum of its unfinished
    /// trades' legs: out, the buyer's cash and the seller's credits of a
    /// booked trade and the buyer's credits of one being retired; in, the
    /// other legs of a booked trade.
    fn check_pending(&self) {
        use crate::settlement::Stage;
        use std::collections::BTreeMap;
        // (account, asset: -1 cash, else the instrument) -> (out, in)
        let mut want: BTreeMap<(u64, i64), (i64, i64)> = BTreeMap::new();
        for t in self.trades.iter() {
            let credits = i64::from(t.instrument);
            match t.stage {
                Stage::Booked => {
                    want.entry((t.buyer, -1)).or_default().0 += t.cash;
                    want.entry((t.buyer, credits)).or_default().1 += t.tonnes;
                    want.entry((t.seller, credits)).or_default().0 += t.tonnes;
                    want.entry((t.seller, -1)).or_default().1 += t.cash;
                }
                Stage::Retiring => want.entry((t.buyer, credits)).or_default().0 += t.tonnes,
                Stage::Done => unreachable!("iter lists unfinished trades"),
            }
        }
        for account in self.accounts.all() {
            let balances = std::iter::once((-1, account.cash))
                .chain((0..).zip(account.credits.iter().copied()));
            for (asset, balance) in balances {
                let (out, due) = want.remove(&(account.id, asset)).unwrap_or_default();
                assert_eq!(
                    (balance.pending_out, balance.pending_in),
                    (out, due),
                    "account {} asset {asset}: pending (out, in) against its unfinished trades",
                    account.id
                );
            }
        }
        assert!(
            want.values().all(|&v| v == (0, 0)),
            "unfinished trades of unknown accounts: {want:?}"
        );
    }
}
