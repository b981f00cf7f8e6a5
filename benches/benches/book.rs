//! Criterion benches of the engine's book operations, each beside the same
//! operation on the plain BTreeMap baseline book: add a passive order,
//! cancel one, an aggressive order that sweeps several levels, and replace.
//!
//! `cargo bench -p tonnex-benches`. Books hold 10 000 resting orders over
//! 200 price levels, so every operation works against a realistic depth.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use tonnex_benches::{orders, BaselineBook};
use tonnex_engine::{workload, Command, EngineConfig, Event, NewOrder, State, OPERATOR};
use tonnex_protocol::{OrderKind, Price, Qty, Side};

const DEPTH: u64 = 10_000;
const LEVELS: u64 = 200;
const MID: i64 = 10_000;
const BASE_ID: u64 = 1_000_000;
/// Price levels just below MID that no resting bid takes: the sweep bench
/// places its sellers there, above every bid, so they rest instead of
/// crossing the book.
const FREE_LEVELS: i64 = 5;

fn limit(id: u64, side: Side, price: i64, qty: u64) -> NewOrder {
    orders::limit(id, 1 + id % 50, side, price, qty)
}

/// A passive (non-crossing) price for the i-th order: bids below MID and
/// the free levels, asks above MID.
fn passive(i: u64) -> (Side, i64) {
    let offset = 1 + (i.wrapping_mul(7919) % LEVELS) as i64;
    if i.is_multiple_of(2) {
        (Side::Buy, MID - FREE_LEVELS - offset)
    } else {
        (Side::Sell, MID + offset)
    }
}

struct Engine {
    state: State,
    seq: u64,
    events: Vec<Event>,
}

impl Engine {
    fn new() -> Engine {
        let mut engine = Engine {
            state: State::new(EngineConfig {
                holds: false,
                order_capacity: 1 << 16,
                ..EngineConfig::default()
            }),
            seq: 0,
            events: Vec::with_capacity(1024),
        };
        engine.apply(&Command::AddInstrument {
            instrument: 0,
            spec: workload::instrument(),
        });
        for i in 0..DEPTH {
            let (side, price) = passive(i);
            engine.apply(&Command::New(limit(i + 1, side, price, 10)));
        }
        engine
    }

    #[inline]
    fn apply(&mut self, command: &Command) {
        self.seq += 1;
        self.events.clear();
        self.state.apply(self.seq, command, &mut self.events);
    }
}

fn baseline() -> BaselineBook {
    let mut book = BaselineBook::new();
    for i in 0..DEPTH {
        let (side, price) = passive(i);
        book.add(i + 1, side, price, 10);
    }
    book
}

/// Times `timed` over `iters` fresh ids, running `untimed` afterwards to put
/// the book back, so every measured call sees the same depth.
fn add_then_cancel(c: &mut Criterion) {
    let mut group = c.benchmark_group("add");
    group.bench_function("tonnex", |b| {
        let mut engine = Engine::new();
        let mut next = BASE_ID;
        b.iter_custom(|iters| {
            let ids: Vec<u64> = (next..next + iters).collect();
            next += iters;
            let commands: Vec<Command> = ids
                .iter()
                .map(|&id| {
                    let (side, price) = passive(id);
                    Command::New(limit(id, side, price, 5))
                })
                .collect();
            let started = Instant::now();
            for command in &commands {
                engine.apply(black_box(command));
            }
            let elapsed = started.elapsed();
            for &id in &ids {
                engine.apply(&Command::Cancel {
                    order_id: id,
                    account: OPERATOR,
                });
            }
            elapsed
        })
    });
    group.bench_function("baseline_btreemap", |b| {
        let mut book = baseline();
        let mut next = BASE_ID;
        b.iter_custom(|iters| {
            let ids: Vec<u64> = (next..next + iters).collect();
            next += iters;
            let started = Instant::now();
            for &id in &ids {
                let (side, price) = passive(id);
                book.add(black_box(id), side, price, 5);
            }
            let elapsed = started.elapsed();
            for &id in &ids {
                book.cancel(id);
            }
            elapsed
        })
    });
    group.finish();

    let mut group = c.benchmark_group("cancel");
    group.bench_function("tonnex", |b| {
        let mut engine = Engine::new();
        let mut next = BASE_ID;
        b.iter_custom(|iters| {
            let ids: Vec<u64> = (next..next + iters).collect();
            next += iters;
            for &id in &ids {
                let (side, price) = passive(id);
                engine.apply(&Command::New(limit(id, side, price, 5)));
            }
            // Cancel in a scattered order, not the order of arrival.
            let mut order = ids.clone();
            order.sort_by_key(|id| id.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let commands: Vec<Command> = order
                .iter()
                .map(|&id| Command::Cancel {
                    order_id: id,
                    account: OPERATOR,
                })
                .collect();
            let started = Instant::now();
            for command in &commands {
                engine.apply(black_box(command));
            }
            started.elapsed()
        })
    });
    group.bench_function("baseline_btreemap", |b| {
        let mut book = baseline();
        let mut next = BASE_ID;
        b.iter_custom(|iters| {
            let ids: Vec<u64> = (next..next + iters).collect();
            next += iters;
            for &id in &ids {
                let (side, price) = passive(id);
                book.add(id, side, price, 5);
            }
            let mut order = ids.clone();
            order.sort_by_key(|id| id.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let started = Instant::now();
            for &id in &order {
                book.cancel(black_box(id));
            }
            started.elapsed()
        })
    });
    group.finish();
}

/// A market buy that takes five price levels of ten orders each (50 fills),
/// then the levels are refilled (untimed).
fn sweep_levels(c: &mut Criterion) {
    const SWEEP_LEVELS: i64 = FREE_LEVELS;
    const PER_LEVEL: u64 = 10;
    let mut group = c.benchmark_group("sweep_5_levels_50_fills");
    group.bench_function("tonnex", |b| {
        let mut engine = Engine::new();
        let mut next = BASE_ID;
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                // Sellers at MID-5..MID-1: in the free levels, above every
                // bid (so they rest) and ahead of the book's asks.
                for level in 0..SWEEP_LEVELS {
                    for _ in 0..PER_LEVEL {
                        next += 1;
                        let mut order = limit(next, Side::Sell, MID - SWEEP_LEVELS + level, 2);
                        order.account = 900; // never the taker's account
                        engine.apply(&Command::New(order));
                    }
                }
                next += 1;
                let mut taker = limit(next, Side::Buy, 0, 2 * PER_LEVEL * SWEEP_LEVELS as u64);
                taker.kind = OrderKind::Market;
                taker.account = 901;
                let command = Command::New(taker);
                let started = Instant::now();
                engine.apply(black_box(&command));
                elapsed += started.elapsed();
                debug_assert_eq!(engine.events.len(), 51);
            }
            elapsed
        })
    });
    group.bench_function("baseline_btreemap", |b| {
        let mut book = baseline();
        let mut trades = Vec::with_capacity(1024);
        let mut next = BASE_ID;
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                for level in 0..SWEEP_LEVELS {
                    for _ in 0..PER_LEVEL {
                        next += 1;
                        book.add(next, Side::Sell, MID - SWEEP_LEVELS + level, 2);
                    }
                }
                next += 1;
                trades.clear();
                let started = Instant::now();
                book.take(
                    black_box(next),
                    Side::Buy,
                    None,
                    2 * PER_LEVEL * SWEEP_LEVELS as u64,
                    &mut trades,
                );
                elapsed += started.elapsed();
                debug_assert_eq!(trades.len(), 50);
            }
            elapsed
        })
    });
    group.finish();
}

/// Another passive price on the same side for book order `id` (book order
/// `id` was built from `passive(id - 1)`).
fn moved_price(id: u64, i: u64) -> i64 {
    match passive(id - 1).0 {
        Side::Buy => MID - FREE_LEVELS - 1 - (i % 100) as i64,
        Side::Sell => MID + 1 + (i % 100) as i64,
    }
}

/// Replace of a resting order: alternately a same-price size reduction
/// (keeps priority) and a move to another price (loses it).
fn replace(c: &mut Criterion) {
    let mut group = c.benchmark_group("replace");
    group.bench_function("tonnex", |b| {
        let mut engine = Engine::new();
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            let id = 1 + (i.wrapping_mul(7919) % DEPTH);
            let order = *engine.state.order(id).expect("book orders stay live");
            let (price, qty) = if i.is_multiple_of(2) {
                (order.price, order.qty.max(2) - 1)
            } else {
                (moved_price(id, i), 10)
            };
            engine.apply(black_box(&Command::Replace {
                order_id: id,
                account: OPERATOR,
                price: Price(price),
                qty: Qty(qty),
            }));
        })
    });
    group.bench_function("baseline_btreemap", |b| {
        let mut book = baseline();
        let mut trades = Vec::new();
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            let id = 1 + (i.wrapping_mul(7919) % DEPTH);
            let command = Command::Replace {
                order_id: id,
                account: OPERATOR,
                price: Price(moved_price(id, i)),
                qty: Qty(10),
            };
            book.apply(black_box(&command), &mut trades);
        })
    });
    group.finish();
}

criterion_group!(benches, add_then_cancel, sweep_levels, replace);
criterion_main!(benches);
