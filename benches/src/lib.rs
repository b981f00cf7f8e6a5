//! The baseline the benches compare tonnex against: the order book most Rust
//! programmers write first. A `BTreeMap` of price levels per side, each a
//! `VecDeque` of orders, and a `HashMap` from id to (side, price). Cancel
//! searches its level linearly. It follows FORMAT.md for the `--mix basic`
//! subset (`L`, `M`, `C`) plus `I` and replace (as cancel and re-add), and
//! has no self-trade prevention, so it is compared only on basic workloads.

use std::collections::{BTreeMap, HashMap, VecDeque};

pub mod orders;

use tonnex_engine::Command;
use tonnex_protocol::{OrderKind, Side};

/// One resting order.
#[derive(Clone, Copy, Debug)]
struct Resting {
    id: u64,
    qty: u64,
}

/// The plain book.
#[derive(Default, Debug)]
pub struct BaselineBook {
    bids: BTreeMap<i64, VecDeque<Resting>>,
    asks: BTreeMap<i64, VecDeque<Resting>>,
    index: HashMap<u64, (Side, i64)>,
}

/// A trade: taker, maker, price, quantity.
pub type Trade = (u64, u64, i64, u64);

impl BaselineBook {
    /// An empty book.
    #[must_use]
    pub fn new() -> BaselineBook {
        BaselineBook::default()
    }

    /// Resting orders.
    #[must_use]
    pub fn resting(&self) -> usize {
        self.index.len()
    }

    /// Applies a workload command, appending its trades. Returns false for
    /// what the baseline does not support (`F`, `P`).
    pub fn apply(&mut self, command: &Command, trades: &mut Vec<Trade>) -> bool {
        match *command {
            Command::New(order) => {
                let limit = match order.kind {
                    OrderKind::Market => None,
                    OrderKind::Limit | OrderKind::Ioc => Some(order.price.ticks()),
                    OrderKind::Fok | OrderKind::PostOnly => return false,
                };
                let left = self.take(order.id, order.side, limit, order.qty.tonnes(), trades);
                if left > 0 && order.kind == OrderKind::Limit {
                    self.add(order.id, order.side, order.price.ticks(), left);
                }
            }
            Command::Cancel { order_id, .. } => {
                self.cancel(order_id);
            }
            Command::Replace {
                order_id,
                price,
                qty,
                ..
            } => {
                if let Some((side, _)) = self.cancel(order_id) {
                    let left = self.take(order_id, side, Some(price.ticks()), qty.tonnes(), trades);
                    if left > 0 {
                        self.add(order_id, side, price.ticks(), left);
                    }
                }
            }
            _ => return false,
        }
        true
    }

    /// Rests an order.
    pub fn add(&mut self, id: u64, side: Side, price: i64, qty: u64) {
        let levels = match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        levels
            .entry(price)
            .or_default()
            .push_back(Resting { id, qty });
        self.index.insert(id, (side, price));
    }

    /// Removes a resting order; returns its side and price if it was live.
    pub fn cancel(&mut self, id: u64) -> Option<(Side, i64)> {
        let (side, price) = self.index.remove(&id)?;
        let levels = match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        let queue = levels.get_mut(&price)?;
        if let Some(pos) = queue.iter().position(|o| o.id == id) {
            queue.remove(pos);
        }
        if queue.is_empty() {
            levels.remove(&price);
        }
        Some((side, price))
    }

    /// Matches an incoming order; returns the unfilled quantity.
    pub fn take(
        &mut self,
        id: u64,
        side: Side,
        limit: Option<i64>,
        mut qty: u64,
        trades: &mut Vec<Trade>,
    ) -> u64 {
        while qty > 0 {
            let best = match side {
                Side::Buy => self.asks.first_entry(),
                Side::Sell => self.bids.last_entry(),
            };
            let Some(mut level) = best else { break };
            let price = *level.key();
            if limit.is_some_and(|l| {
                if side == Side::Buy {
                    price > l
                } else {
                    price < l
                }
            }) {
                break;
            }
            let queue = level.get_mut();
            while qty > 0 {
                let Some(front) = queue.front_mut() else {
                    break;
                };
                let traded = qty.min(front.qty);
                trades.push((id, front.id, price, traded));
                qty -= traded;
                front.qty -= traded;
                if front.qty == 0 {
                    let done = queue.pop_front().expect("front exists");
                    self.index.remove(&done.id);
                }
            }
            if queue.is_empty() {
                level.remove();
            }
        }
        qty
    }
}
