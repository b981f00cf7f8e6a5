//! Proves "no heap allocation per order in the steady state": a counting
//! global allocator sees zero allocations while the engine applies a second
//! round of order flow (adds, replaces, cancels, sweeps, self-trades, a mass
//! cancel, with account holds on, and settlement finishing the trades every
//! few hundred commands) once a first round has sized its buffers.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use tonnex_engine::settlement::{Outcome, SettlementBatch};
use tonnex_engine::{
    workload, Asset, Command, Compliance, EngineConfig, Event, NewOrder, State, OPERATOR,
};
use tonnex_protocol::{Cash, OrderKind, Price, Qty, Side};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn order(id: u64, account: u64, side: Side, kind: OrderKind, price: i64, qty: u64) -> Command {
    Command::New(NewOrder {
        client_order_id: 0,
        id,
        account,
        instrument: 0,
        side,
        kind,
        price: Price(price),
        qty: Qty(qty),
        cash_budget: Cash(1_000_000_000_000),
        compliance: Compliance::NONE,
        ts_ns: 0,
    })
}

/// One round of flow that leaves the book empty, so every round has the
/// same shape; `base` offsets the ids.
fn round(base: u64) -> Vec<Command> {
    let mut commands = Vec::new();
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for cycle in 0..50u64 {
        let first = base + cycle * 1_000;
        for k in 0..200u64 {
            let side = if k % 2 == 0 { Side::Buy } else { Side::Sell };
            let offset = 1 + (next() % 30) as i64;
            let price = if side == Side::Buy {
                2500 - offset
            } else {
                2500 + offset
            };
            let kind = if k % 10 == 0 {
                OrderKind::PostOnly
            } else {
                OrderKind::Limit
            };
            commands.push(order(
                first + k,
                1 + next() % 5,
                side,
                kind,
                price,
                1 + next() % 20,
            ));
        }
        for k in (0..200u64).step_by(7) {
            commands.push(Command::Replace {
                order_id: first + k,
                account: OPERATOR,
                price: Price(if k % 2 == 0 { 2480 } else { 2520 }),
                qty: Qty(5),
            });
        }
        for k in (1..200u64).step_by(5) {
            commands.push(Command::Cancel {
                order_id: first + k,
                account: OPERATOR,
            });
        }
        commands.push(order(first + 500, 3, Side::Buy, OrderKind::Market, 0, 300));
        commands.push(order(first + 501, 4, Side::Sell, OrderKind::Ioc, 2490, 300));
        commands.push(order(first + 502, 2, Side::Buy, OrderKind::Fok, 2530, 10));
        for account in 1..=5 {
            commands.push(Command::MassCancel {
                account,
                instrument: None,
            });
        }
    }
    commands
}

/// Settlement's outcome for every pending trade (settled, or unwound for
/// every third), as one batch from outbox id `*next` on.
fn settle_all(state: &State, next: &mut u64) -> Command {
    let outcomes: Vec<Outcome> = state
        .pending_trades()
        .iter()
        .map(|t| match t.trade_id % 3 {
            0 => Outcome::Unwound {
                trade_id: t.trade_id,
            },
            _ => Outcome::Settled {
                trade_id: t.trade_id,
                retire: false,
            },
        })
        .collect();
    let batch = SettlementBatch {
        first_id: *next,
        outcomes,
    };
    *next += batch.outcomes.len() as u64;
    Command::Settlement(Box::new(batch))
}

/// Commands between two settlement batches.
const SETTLE_EVERY: usize = 400;

#[test]
fn a_second_round_of_flow_allocates_nothing() {
    let mut state = State::new(EngineConfig {
        holds: true,
        order_capacity: 64,
        ..EngineConfig::default()
    });
    let mut events = Vec::new();
    let mut seq = 0;
    let mut apply = |state: &mut State, command: &Command, events: &mut Vec<Event>| {
        seq += 1;
        events.clear();
        state.apply(seq, command, events);
    };
    apply(
        &mut state,
        &Command::AddInstrument {
            instrument: 0,
            spec: workload::instrument(),
        },
        &mut events,
    );
    for account in 1..=5 {
        let cash = Command::Deposit {
            account,
            asset: Asset::Cash(Cash(1 << 60)),
        };
        let credits = Command::Deposit {
            account,
            asset: Asset::Credits {
                instrument: 0,
                qty: Qty(1 << 40),
            },
        };
        apply(&mut state, &cash, &mut events);
        apply(&mut state, &credits, &mut events);
    }
    let (warm, steady) = (round(1_000_000), round(9_000_000));
    let warm_start = ALLOCATIONS.load(Ordering::Relaxed);
    let mut fills = 0;
    let mut outbox = 1;
    // Allocations made building settlement batches, not by the engine.
    let mut building = 0;
    for chunk in warm.chunks(SETTLE_EVERY) {
        for command in chunk {
            apply(&mut state, command, &mut events);
            fills += events
                .iter()
                .filter(|e| matches!(e, Event::Fill { .. }))
                .count();
        }
        let batch = settle_all(&state, &mut outbox);
        apply(&mut state, &batch, &mut events);
    }
    assert_eq!(state.pending_trades().len(), 0, "every trade settled");
    assert!(fills > 100, "the flow trades ({fills} fills)");
    assert_eq!(
        state.resting_orders(),
        0,
        "each round ends with an empty book"
    );
    // The counter is live: the first round had to grow the pool and index.
    assert!(ALLOCATIONS.load(Ordering::Relaxed) > warm_start);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for chunk in steady.chunks(SETTLE_EVERY) {
        for command in chunk {
            apply(&mut state, command, &mut events);
        }
        let start = ALLOCATIONS.load(Ordering::Relaxed);
        let batch = settle_all(&state, &mut outbox);
        building += ALLOCATIONS.load(Ordering::Relaxed) - start;
        apply(&mut state, &batch, &mut events);
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before - building;
    assert_eq!(
        allocations,
        0,
        "allocations during {} steady-state commands",
        steady.len()
    );
    state.check_invariants();
}
