//! Criterion bench of the copy a snapshot takes of the engine's state on
//! the event loop (`snapshot::write_in_background` copies what the image is
//! made of, `State::snapshot_copy`, then builds and encodes the image on a
//! thread of its own): the copy is the event loop's whole pause. Beside
//! it, a whole `State::clone` (which the snapshot took until 2026-12-01,
//! the id index included). Measured with the venue's order capacity, a few thousand
//! resting orders, and 250,000 or 1,000,000 trades waiting for settlement,
//! which is what a load test without a settlement process leaves behind.
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use tonnex_benches::orders;
use tonnex_engine::{Asset, Command, EngineConfig, Event, InstrumentSpec, State};
use tonnex_protocol::{Cash, Price, Qty, Side, Symbol};

/// The demo venue's `[session] order_capacity`.
const ORDER_CAPACITY: usize = 1 << 21;

/// Orders left resting on each side.
const RESTING: u64 = 2_000;

struct Builder {
    state: State,
    seq: u64,
    events: Vec<Event>,
}

impl Builder {
    fn apply(&mut self, command: Command) {
        self.seq += 1;
        self.events.clear();
        self.state.apply(self.seq, &command, &mut self.events);
    }

    fn order(&mut self, account: u64, side: Side, price: i64, qty: u64) {
        let id = self.seq + 1;
        self.apply(Command::New(orders::limit(id, account, side, price, qty)));
    }
}

/// A state with `trades` pending trades and `RESTING` orders a side.
fn state_with(trades: u64) -> State {
    let mut b = Builder {
        state: State::new(EngineConfig {
            holds: true,
            order_capacity: ORDER_CAPACITY,
            ..EngineConfig::default()
        }),
        seq: 0,
        events: Vec::new(),
    };
    b.apply(Command::AddInstrument {
        instrument: 0,
        spec: InstrumentSpec {
            symbol: Symbol::new("NBR-2024.CCP").unwrap(),
            tick_micros: 10_000,
            min_price: Price(1),
            max_price: Price(100_000),
        },
    });
    for account in 1..=4 {
        b.apply(Command::Deposit {
            account,
            asset: Asset::Cash(Cash(1_000_000_000_000_000)),
        });
        b.apply(Command::Deposit {
            account,
            asset: Asset::Credits {
                instrument: 0,
                qty: Qty(1_000_000_000),
            },
        });
    }
    for n in 0..RESTING {
        b.order(1, Side::Buy, 2_000 - (n % 400) as i64, 1 + n % 50);
        b.order(2, Side::Sell, 3_000 + (n % 400) as i64, 1 + n % 50);
    }
    // Each pair is one trade at 2,500.
    for n in 0..trades {
        b.order(3 + n % 2, Side::Sell, 2_500, 1 + n % 10);
        b.order(4 - n % 2, Side::Buy, 2_500, 1 + n % 10);
    }
    assert_eq!(b.state.pending_trades().len() as u64, trades);
    b.state
}

fn clone(c: &mut Criterion) {
    let mut group = c.benchmark_group("snapshot_clone");
    group.sample_size(20);
    for trades in [250_000u64, 1_000_000] {
        let state = state_with(trades);
        group.bench_with_input(
            BenchmarkId::new("state_clone", trades),
            &state,
            |bench, state| bench.iter(|| black_box(state.clone())),
        );
        group.bench_with_input(
            BenchmarkId::new("snapshot_copy", trades),
            &state,
            |bench, state| bench.iter(|| black_box(state.snapshot_copy())),
        );
    }
    group.finish();
}

criterion_group!(benches, clone);
criterion_main!(benches);
