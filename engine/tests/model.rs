//! Differential test: random command streams through the engine and through
//! a small, obviously correct reference book written here (BTreeMap of
//! VecDeque, the FORMAT.md rules read literally). Every command must produce
//! the same fills, the same accept/reject outcome and the same book; the
//! engine's invariant checker runs after every command.
//!
//! The engine runs with a 64-tick dense window, so prices spread over a few
//! hundred ticks (and a few far outliers) exercise window moves and the
//! far-price fallback; half the cases run with account holds on (ample
//! balances, so they never refuse), which checks that locked balances always
//! equal the open orders' value. Some buys carry a compliance floor, either
//! refused whole when they would take an ask below it or skipping such
//! asks (COMPLIANCE.md "Engine floor check", docs/compliance.md "Floor modes").

mod common;

use std::collections::{BTreeMap, VecDeque};

use common::{order, Engine};
use proptest::prelude::*;
use tonnex_engine::{Asset, Command, Compliance, EngineConfig, Event, State, OPERATOR};
use tonnex_protocol::{Cash, Pathway, Price, Qty};

#[derive(Clone, Debug)]
enum Op {
    New {
        id: u64,
        account: u64,
        buy: bool,
        kind: char,
        price: i64,
        qty: u64,
        /// An unattested buy's floor, and whether it skips asks below it.
        floor: Option<(i64, bool)>,
    },
    Cancel {
        id: u64,
    },
    Replace {
        id: u64,
        price: i64,
        qty: u64,
    },
}

#[derive(Clone, Debug)]
struct RefOrder {
    id: u64,
    account: u64,
    qty: u64,
    post_only: bool,
    /// An unattested bid's floor (checked again on a replace).
    floor: Option<i64>,
}

/// The reference book: side → price → FIFO.
#[derive(Default)]
struct Model {
    bids: BTreeMap<i64, VecDeque<RefOrder>>,
    asks: BTreeMap<i64, VecDeque<RefOrder>>,
}

/// What one command did: fills as dump lines, and whether it was rejected.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    fills: Vec<String>,
    rejected: bool,
}

impl Model {
    fn find(&self, id: u64) -> Option<(bool, i64, usize)> {
        for (buy, side) in [(true, &self.bids), (false, &self.asks)] {
            for (&price, queue) in side {
                if let Some(pos) = queue.iter().position(|o| o.id == id) {
                    return Some((buy, price, pos));
                }
            }
        }
        None
    }

    fn take(&mut self, buy: bool, price: i64, pos: usize) -> RefOrder {
        let side = if buy { &mut self.bids } else { &mut self.asks };
        let queue = side.get_mut(&price).unwrap();
        let order = queue.remove(pos).unwrap();
        if queue.is_empty() {
            side.remove(&price);
        }
        order
    }

    /// Opposite-side price levels an incoming order may reach, best first
    /// (a buy that skips asks below its floor: from the floor up).
    fn reachable_from(&self, buy: bool, limit: Option<i64>, from: Option<i64>) -> Vec<i64> {
        self.reachable(buy, limit)
            .into_iter()
            .filter(|&p| from.is_none_or(|f| p >= f))
            .collect()
    }

    /// Opposite-side price levels an incoming order may reach, best first.
    fn reachable(&self, buy: bool, limit: Option<i64>) -> Vec<i64> {
        let prices: Vec<i64> = if buy {
            self.asks.keys().copied().collect()
        } else {
            self.bids.keys().rev().copied().collect()
        };
        prices
            .into_iter()
            .filter(|&p| limit.is_none_or(|l| if buy { p <= l } else { p >= l }))
            .collect()
    }

    fn crosses(&self, buy: bool, price: i64) -> bool {
        if buy {
            self.asks.keys().next().is_some_and(|&a| price >= a)
        } else {
            self.bids.keys().next_back().is_some_and(|&b| price <= b)
        }
    }

    /// Whether an unattested buy with `floor` would take an ask below it.
    fn breaks_floor(&self, limit: i64, floor: i64) -> bool {
        limit < floor
            || self
                .asks
                .keys()
                .next()
                .is_some_and(|&a| a < floor && limit >= a)
    }

    /// Matches an incoming order (taking nothing below `from`); returns its
    /// unfilled quantity.
    #[allow(clippy::too_many_arguments)]
    fn sweep(
        &mut self,
        id: u64,
        account: u64,
        buy: bool,
        limit: Option<i64>,
        from: Option<i64>,
        mut qty: u64,
        fills: &mut Vec<String>,
    ) -> u64 {
        for price in self.reachable_from(buy, limit, from) {
            let side = if buy { &mut self.asks } else { &mut self.bids };
            let queue = side.get_mut(&price).unwrap();
            while qty > 0 {
                let Some(front) = queue.front_mut() else {
                    break;
                };
                if front.account == account {
                    queue.pop_front(); // self-trade prevention
                    continue;
                }
                let traded = qty.min(front.qty);
                fills.push(format!("F {id} {} {price} {traded}", front.id));
                qty -= traded;
                front.qty -= traded;
                if front.qty == 0 {
                    queue.pop_front();
                }
            }
            if queue.is_empty() {
                side.remove(&price);
            }
            if qty == 0 {
                break;
            }
        }
        qty
    }

    fn rest(&mut self, buy: bool, price: i64, order: RefOrder) {
        let side = if buy { &mut self.bids } else { &mut self.asks };
        side.entry(price).or_default().push_back(order);
    }

    fn apply(&mut self, op: &Op) -> Outcome {
        let mut fills = Vec::new();
        let mut rejected = false;
        match *op {
            Op::New {
                id,
                account,
                buy,
                kind,
                price,
                qty,
                floor,
            } => {
                let skips = floor.is_some_and(|(f, skip)| skip && price >= f);
                let from = floor.filter(|_| skips).map(|(f, _)| f);
                if self.find(id).is_some() {
                    rejected = true; // duplicate of a live id
                } else if floor.is_some_and(|(f, _)| !skips && self.breaks_floor(price, f)) {
                    rejected = true; // FLOOR_NOT_MET
                } else {
                    match kind {
                        'P' if self.crosses(buy, price) => rejected = true,
                        'P' => self.rest(
                            buy,
                            price,
                            RefOrder {
                                id,
                                account,
                                qty,
                                post_only: true,
                                floor: None,
                            },
                        ),
                        'F' => {
                            let mut available = 0;
                            for p in self.reachable_from(buy, Some(price), from) {
                                let side = if buy { &self.asks } else { &self.bids };
                                available += side[&p]
                                    .iter()
                                    .filter(|o| o.account != account)
                                    .map(|o| o.qty)
                                    .sum::<u64>();
                            }
                            if available >= qty {
                                self.sweep(id, account, buy, Some(price), from, qty, &mut fills);
                            }
                        }
                        'M' => {
                            self.sweep(id, account, buy, None, None, qty, &mut fills);
                        }
                        'I' => {
                            self.sweep(id, account, buy, Some(price), from, qty, &mut fills);
                        }
                        _ => {
                            let left =
                                self.sweep(id, account, buy, Some(price), from, qty, &mut fills);
                            // A skipping buy cannot rest across the asks it skipped.
                            if left > 0 && !(skips && self.crosses(buy, price)) {
                                self.rest(
                                    buy,
                                    price,
                                    RefOrder {
                                        id,
                                        account,
                                        qty: left,
                                        post_only: false,
                                        floor: floor.map(|(f, _)| f),
                                    },
                                );
                            }
                        }
                    }
                }
            }
            Op::Cancel { id } => match self.find(id) {
                Some((buy, price, pos)) => {
                    self.take(buy, price, pos);
                }
                None => rejected = true,
            },
            Op::Replace { id, price, qty } => match self.find(id) {
                None => rejected = true,
                Some(_) if qty == 0 => rejected = true,
                Some((buy, old_price, pos)) => {
                    let side = if buy { &mut self.bids } else { &mut self.asks };
                    let current = &mut side.get_mut(&old_price).unwrap()[pos];
                    let floor = current.floor;
                    if price == old_price && qty <= current.qty {
                        current.qty = qty; // reduced in place (or unchanged)
                    } else if current.post_only && self.crosses(buy, price) {
                        rejected = true;
                    } else if floor.is_some_and(|f| self.breaks_floor(price, f)) {
                        rejected = true; // FLOOR_NOT_MET: a replace never skips
                    } else {
                        let mut order = self.take(buy, old_price, pos);
                        let left = if order.post_only {
                            qty
                        } else {
                            self.sweep(id, order.account, buy, Some(price), None, qty, &mut fills)
                        };
                        if left > 0 {
                            order.qty = left;
                            self.rest(buy, price, order);
                        }
                    }
                }
            },
        }
        Outcome { fills, rejected }
    }

    fn dump(&self) -> String {
        let mut out = String::new();
        for (&price, queue) in self.bids.iter().rev() {
            for o in queue {
                out.push_str(&format!("O {} B {price} {}\n", o.id, o.qty));
            }
        }
        for (&price, queue) in &self.asks {
            for o in queue {
                out.push_str(&format!("O {} S {price} {}\n", o.id, o.qty));
            }
        }
        out
    }
}

const ACCOUNTS: u64 = 4;

fn engine(holds: bool) -> Engine {
    let mut engine = Engine::with_state(State::new(EngineConfig {
        holds,
        order_capacity: 4,
        window_ticks: 64,
    }));
    if holds {
        for account in 1..=ACCOUNTS {
            engine.ok(Command::Deposit {
                account,
                asset: Asset::Cash(Cash(1_000_000_000_000_000)),
            });
            engine.ok(Command::Deposit {
                account,
                asset: Asset::Credits {
                    instrument: 0,
                    qty: Qty(1_000_000_000_000),
                },
            });
        }
    }
    engine
}

fn to_command(op: &Op) -> Command {
    match *op {
        Op::New {
            id,
            account,
            buy,
            kind,
            price,
            qty,
            floor,
        } => {
            let mut o = order(id, account, if buy { 'B' } else { 'S' }, kind, price, qty);
            if let Some((floor, skip)) = floor {
                o.compliance = Compliance {
                    pathway: Pathway::Recognised,
                    floor_ticks: floor as u32,
                    attestation_id: 0,
                    skip_below_floor: skip,
                };
            }
            if kind == 'M' {
                o.price = Price(0);
                o.cash_budget = Cash(100_000_000_000); // more than any fill here can cost
            }
            Command::New(o)
        }
        Op::Cancel { id } => Command::Cancel {
            order_id: id,
            account: OPERATOR,
        },
        Op::Replace { id, price, qty } => Command::Replace {
            order_id: id,
            account: OPERATOR,
            price: Price(price),
            qty: Qty(qty),
        },
    }
}

/// Prices: mostly a narrow range (lots of crossing and queueing), some
/// spread over a few hundred ticks, a few far away.
fn price() -> impl Strategy<Value = i64> {
    prop_oneof![
        8 => 95i64..=105,
        2 => 1i64..=400,
        1 => prop_oneof![Just(20_000i64), Just(60_000), Just(99_999)],
    ]
}

/// Choice, id pick, account, buy, kind, price, quantity.
type RawOp = (u8, u64, u64, bool, char, i64, u64);

/// Raw op choices; ids are resolved against the ids issued so far. The
/// last field: 0-5 no floor, 6 a floor of 100 refused whole, 7 skipping.
fn raw_op() -> impl Strategy<Value = (RawOp, u8)> {
    (
        (
            0u8..100,
            any::<u64>(),
            1..=ACCOUNTS,
            any::<bool>(),
            prop_oneof![4 => Just('L'), 1 => Just('M'), 1 => Just('I'), 1 => Just('F'), 1 => Just('P')],
            price(),
            prop_oneof![8 => 1u64..=10, 1 => 0u64..=0],
        ),
        0u8..8,
    )
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(raw_op(), 1..160).prop_map(|raw| {
        let mut next_id = 1;
        raw.into_iter()
            .map(|((choice, pick, account, buy, kind, price, qty), floor)| {
                // Cancels and replaces name any id issued so far (live or dead)
                // or one never issued; new orders mostly take a fresh id.
                let old_id = if next_id > 1 {
                    pick % (next_id + 1) + 1
                } else {
                    1
                };
                match choice {
                    0..=59 => {
                        let id = if choice < 57 {
                            next_id += 1;
                            next_id - 1
                        } else {
                            old_id
                        };
                        // Floors go on buys the router would send with one:
                        // limit, IOC and FOK (a market or post-only buy never
                        // carries an unattested floor to the engine).
                        let floored = buy && matches!(kind, 'L' | 'I' | 'F') && floor >= 6;
                        Op::New {
                            id,
                            account,
                            buy,
                            kind,
                            price,
                            qty: qty.max(1),
                            floor: floored.then_some((100, floor == 7)),
                        }
                    }
                    60..=84 => Op::Cancel { id: old_id },
                    _ => Op::Replace {
                        id: old_id,
                        price,
                        qty,
                    },
                }
            })
            .collect()
    })
}

fn outcome(events: &[Event]) -> Outcome {
    Outcome {
        fills: common::fills(events),
        rejected: events.iter().any(|e| matches!(e, Event::Rejected { .. })),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn engine_matches_the_reference_book(ops in ops(), holds in any::<bool>()) {
        let mut engine = engine(holds);
        let mut model = Model::default();
        for (step, op) in ops.iter().enumerate() {
            let got = outcome(&engine.apply(to_command(op)));
            let want = model.apply(op);
            prop_assert_eq!(&got, &want, "step {} {:?}", step, op);
            prop_assert_eq!(engine.book(), model.dump(), "book after step {} {:?}", step, op);
        }
    }
}
