//! The orders the benches send the engine: plain limit orders, without a
//! client id, cash budget or compliance fields.

use tonnex_engine::{Compliance, NewOrder};
use tonnex_protocol::{Cash, OrderKind, Price, Qty, Side};

/// A good-till-cancelled limit order `id` of `account` on instrument 0.
#[must_use]
pub fn limit(id: u64, account: u64, side: Side, price: i64, qty: u64) -> NewOrder {
    NewOrder {
        client_order_id: 0,
        id,
        account,
        instrument: 0,
        side,
        kind: OrderKind::Limit,
        price: Price(price),
        qty: Qty(qty),
        cash_budget: Cash::ZERO,
        compliance: Compliance::NONE,
        ts_ns: 0,
    }
}
