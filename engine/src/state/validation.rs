//! A new order's admission: every check that can refuse it, in one
//! documented order (the first that fails is the reason), before anything
//! changes. What `matching` does next relies on each of them:
//!
//! 1. `UNKNOWN_INSTRUMENT`: the book exists (so it may be indexed).
//! 2. `INSTRUMENT_HALTED`.
//! 3. `INVALID_QUANTITY`: 1..=`MAX_QTY` tonnes (so tonnes fit an i64 and
//!    every balance sum stays far from overflow).
//! 4. `PRICE_OUTSIDE_BAND`: a non-market price inside the band (so price x
//!    tick in micro-USD fits an i64: the band is checked at listing).
//! 5. `DUPLICATE_ORDER_ID`: no live order has the id.
//! 6. `FLOOR_NOT_MET`: an unattested buy with a floor, not post-only,
//!    would take an ask below the floor (or its limit is below it); under
//!    `skip_below_floor` a limit at or above the floor skips such asks.
//! 7. `POST_ONLY_WOULD_CROSS`.
//! 8. With holds: `MISSING_CASH_BUDGET` (a market buy), `INSUFFICIENT_FUNDS`
//!    (a limit buy's price x quantity, checked for overflow) or
//!    `INSUFFICIENT_CREDITS`: what the order locks is free.

use super::*;

/// What admission found, for matching to act on.
#[derive(Clone, Copy, Debug)]
pub(super) struct Admitted {
    /// Tonnes (1..=`MAX_QTY`).
    pub qty: u64,
    /// The price in ticks (0 for a market order).
    pub price: i64,
    /// Worst acceptable price; `None` for a market order.
    pub limit: Option<i64>,
    /// What the order locks (0 without holds).
    pub hold: i64,
    /// A buy that skips asks below its floor.
    pub skips: bool,
    /// Its floor in ticks (0: none).
    pub floor: i64,
}

impl State {
    /// Checks 1-8 above; the first that fails is the reason.
    #[inline(always)]
    pub(super) fn admit(&self, order: &NewOrder) -> Result<Admitted, RejectReason> {
        let Some(book) = self.books.get(order.instrument as usize) else {
            return Err(RejectReason::UnknownInstrument);
        };
        if book.halted {
            return Err(RejectReason::InstrumentHalted);
        }
        let qty = order.qty.tonnes();
        if qty == 0 || qty > MAX_QTY {
            return Err(RejectReason::InvalidQuantity);
        }
        let market = order.kind == OrderKind::Market;
        let price = order.price.ticks();
        if !market && !book.in_band(price) {
            return Err(RejectReason::PriceOutsideBand);
        }
        if order.id <= self.max_order_id && self.ids.get(order.id, &self.pool).is_some() {
            return Err(RejectReason::DuplicateOrderId);
        }
        let limit = if market { None } else { Some(price) };
        let compliance = order.compliance;
        let floor = i64::from(compliance.floor_ticks);
        let floored = order.side == Side::Buy
            && floor > 0
            && !compliance.attested()
            && order.kind != OrderKind::PostOnly;
        // A limit at or above its floor may skip asks below it (the rules'
        // `below_floor_asks = "skip"`); otherwise taking one refuses it whole.
        let skips = floored && compliance.skip_below_floor && limit.is_some_and(|l| l >= floor);
        if floored && !skips && breaks_floor(book, limit, floor) {
            return Err(RejectReason::FloorNotMet);
        }
        if order.kind == OrderKind::PostOnly && crosses(book, order.side, price) {
            return Err(RejectReason::PostOnlyWouldCross);
        }
        let hold = if self.config.holds {
            self.hold_for(book, order)?
        } else {
            0
        };
        Ok(Admitted {
            qty,
            price,
            limit,
            hold,
            skips,
            floor,
        })
    }
}

/// Whether a `side` order at `price` would cross the opposite best.
#[inline]
pub(super) fn crosses(book: &Book, side: Side, price: i64) -> bool {
    match side {
        Side::Buy => book.asks.best().is_some_and(|ask| price >= ask),
        Side::Sell => book.bids.best().is_some_and(|bid| price <= bid),
    }
}

/// Engine floor check for an unattested buy: a limit below the floor, or a
/// best ask below the floor that the order would take.
#[inline]
pub(super) fn breaks_floor(book: &Book, limit: Option<i64>, floor: i64) -> bool {
    if limit.is_some_and(|l| l < floor) {
        return true;
    }
    book.asks
        .best()
        .is_some_and(|ask| ask < floor && limit.is_none_or(|l| l >= ask))
}
