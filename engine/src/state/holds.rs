//! Account holds: what an order locks when it is admitted, what it gives
//! back when it leaves or trades for less, and how a fill moves locked
//! amounts to pending settlement.

use super::*;

impl State {
    /// What a new order must lock, or why it cannot.
    pub(super) fn hold_for(&self, book: &Book, order: &NewOrder) -> Result<i64, RejectReason> {
        let account = self.accounts.get(order.account);
        match order.side {
            Side::Buy => {
                let need = if order.kind == OrderKind::Market {
                    if order.cash_budget.0 <= 0 {
                        return Err(RejectReason::MissingCashBudget);
                    }
                    order.cash_budget.0
                } else {
                    checked_resting_value(
                        Side::Buy,
                        order.price.ticks(),
                        order.qty.tonnes(),
                        book.spec.tick_micros,
                    )
                    .ok_or(RejectReason::InsufficientFunds)?
                };
                let free = account.map_or(0, |a| a.cash.free);
                if free < need {
                    return Err(RejectReason::InsufficientFunds);
                }
                Ok(need)
            }
            Side::Sell => {
                let need = order.qty.tonnes() as i64;
                let free = account.map_or(0, |a| a.credits(order.instrument).free);
                if free < need {
                    return Err(RejectReason::InsufficientCredits);
                }
                Ok(need)
            }
        }
    }

    pub(super) fn lock(&mut self, account: u64, instrument: u32, side: Side, amount: i64) {
        let i = self.accounts.find_or_create(account);
        let account = self.accounts.at_mut(i);
        let balance = match side {
            Side::Buy => &mut account.cash,
            Side::Sell => account.credits_mut(instrument),
        };
        assert!(balance.lock(amount), "lock after a passed hold check");
    }

    pub(super) fn release(&mut self, account: u64, instrument: u32, side: Side, amount: i64) {
        let i = self
            .accounts
            .find(account)
            .expect("release for an account with holds");
        let account = self.accounts.at_mut(i);
        match side {
            Side::Buy => account.cash.release(amount),
            Side::Sell => account.credits_mut(instrument).release(amount),
        }
    }

    /// After matching: release what the taker locked beyond what its resting
    /// remainder (if any) still needs.
    pub(super) fn settle_taker_hold(&mut self, taker: &Taker, rests: bool) {
        let keep = if rests && taker.open > 0 {
            let tick_micros = self.books[taker.instrument as usize].spec.tick_micros;
            resting_value(
                taker.side,
                taker.limit.unwrap_or(0),
                taker.open,
                tick_micros,
            )
        } else {
            0
        };
        let extra = taker.hold - keep;
        debug_assert!(
            extra >= 0,
            "taker hold {} below what it keeps {keep}",
            taker.hold
        );
        if extra > 0 {
            self.release(taker.account, taker.instrument, taker.side, extra);
        }
    }
}

/// What a resting order of `qty` at `price` holds: cash for a bid, tonnes for an ask.
#[inline]
pub(super) fn resting_value(side: Side, price: i64, qty: u64, tick_micros: i64) -> i64 {
    checked_resting_value(side, price, qty, tick_micros).expect("hold of a resting order overflows")
}

#[inline]
pub(super) fn checked_resting_value(
    side: Side,
    price: i64,
    qty: u64,
    tick_micros: i64,
) -> Option<i64> {
    match side {
        Side::Buy => Cash::of(Price(price), Qty(qty), tick_micros).map(|c| c.0),
        Side::Sell => Some(qty as i64),
    }
}

/// Releases everything a resting order held.
pub(super) fn release_resting(accounts: &mut Accounts, slot: &Slot, tick_micros: i64) {
    let side = slot.side();
    let amount = resting_value(side, slot.price, slot.qty, tick_micros);
    let i = accounts
        .find(slot.account)
        .expect("resting order's account");
    let account = accounts.at_mut(i);
    match side {
        Side::Buy => account.cash.release(amount),
        Side::Sell => account
            .credits_mut(u32::from(slot.instrument))
            .release(amount),
    }
}

/// A fill's effect on holds: the buyer's cash and the seller's credits go
/// from locked to pending settlement; each side is due the other leg; the
/// trade waits for settlement's outcome.
pub(super) fn book_trade(accounts: &mut Accounts, trades: &mut PendingTrades, trade: PendingTrade) {
    let PendingTrade {
        buyer,
        seller,
        instrument,
        cash,
        tonnes,
        ..
    } = trade;
    trades.book(trade);
    let b = accounts.find(buyer).expect("buyer has a hold");
    let buyer = accounts.at_mut(b);
    buyer.cash.trade_out(cash);
    buyer.credits_mut(instrument).pending_in += tonnes;
    let s = accounts.find(seller).expect("seller has a hold");
    let seller = accounts.at_mut(s);
    seller.credits_mut(instrument).trade_out(tonnes);
    seller.cash.pending_in += cash;
}
