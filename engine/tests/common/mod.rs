//! Test harness: a `State` with an automatic sequence number and helpers
//! that speak in ticks, tonnes and workload letters.
#![allow(dead_code, missing_docs)]

use tonnex_engine::{
    dump, Asset, Command, Compliance, EngineConfig, Event, InstrumentSpec, NewOrder, State,
    OPERATOR,
};
use tonnex_protocol::{Cash, OrderKind, Price, Qty, Side, Symbol};

pub struct Engine {
    pub state: State,
    seq: u64,
}

pub fn kind(letter: char) -> OrderKind {
    match letter {
        'L' => OrderKind::Limit,
        'M' => OrderKind::Market,
        'I' => OrderKind::Ioc,
        'F' => OrderKind::Fok,
        'P' => OrderKind::PostOnly,
        _ => panic!("kind {letter}"),
    }
}

pub fn side(letter: char) -> Side {
    match letter {
        'B' => Side::Buy,
        'S' => Side::Sell,
        _ => panic!("side {letter}"),
    }
}

/// 0.01 USD ticks, band 1..=100_000 ticks.
pub fn spec(symbol: &str) -> InstrumentSpec {
    InstrumentSpec {
        symbol: Symbol::new(symbol).unwrap(),
        tick_micros: 10_000,
        min_price: Price(1),
        max_price: Price(100_000),
    }
}

pub fn order(
    id: u64,
    account: u64,
    side_letter: char,
    kind_letter: char,
    price: i64,
    qty: u64,
) -> NewOrder {
    NewOrder {
        client_order_id: 0,
        id,
        account,
        instrument: 0,
        side: side(side_letter),
        kind: kind(kind_letter),
        price: Price(price),
        qty: Qty(qty),
        cash_budget: Cash::ZERO,
        compliance: Compliance::NONE,
        ts_ns: 0,
    }
}

impl Engine {
    /// One instrument (index 0), holds as given.
    pub fn new(holds: bool) -> Engine {
        Engine::with_state(State::new(EngineConfig {
            holds,
            order_capacity: 16,
            ..EngineConfig::default()
        }))
    }

    /// An engine over `state`, with instrument 0 added.
    pub fn with_state(state: State) -> Engine {
        let mut engine = Engine { state, seq: 0 };
        engine.ok(Command::AddInstrument {
            instrument: 0,
            spec: spec("NBR-2024.CCP"),
        });
        engine
    }

    /// Continues numbering commands after `seq` (for an engine whose state
    /// was copied from another).
    pub fn set_seq(&mut self, seq: u64) {
        self.seq = seq;
    }

    /// Applies a command, checks every invariant, returns its events.
    pub fn apply(&mut self, command: Command) -> Vec<Event> {
        self.seq += 1;
        let mut out = Vec::new();
        self.state.apply(self.seq, &command, &mut out);
        self.state.check_invariants();
        out
    }

    /// Applies an admin command that must succeed.
    pub fn ok(&mut self, command: Command) {
        assert_eq!(self.apply(command.clone()), [Event::Applied], "{command:?}");
    }

    pub fn new_order(&mut self, order: NewOrder) -> Vec<Event> {
        self.apply(Command::New(order))
    }

    /// `N id account side kind price qty` as in a workload line.
    pub fn n(
        &mut self,
        id: u64,
        account: u64,
        s: char,
        k: char,
        price: i64,
        qty: u64,
    ) -> Vec<Event> {
        self.new_order(order(id, account, s, k, price, qty))
    }

    pub fn c(&mut self, id: u64) -> Vec<Event> {
        self.apply(Command::Cancel {
            order_id: id,
            account: OPERATOR,
        })
    }

    pub fn r(&mut self, id: u64, price: i64, qty: u64) -> Vec<Event> {
        self.apply(Command::Replace {
            order_id: id,
            account: OPERATOR,
            price: Price(price),
            qty: Qty(qty),
        })
    }

    pub fn deposit_cash(&mut self, account: u64, usd: i64) {
        self.ok(Command::Deposit {
            account,
            asset: Asset::Cash(Cash(usd * 1_000_000)),
        });
    }

    pub fn deposit_credits(&mut self, account: u64, tonnes: u64) {
        self.ok(Command::Deposit {
            account,
            asset: Asset::Credits {
                instrument: 0,
                qty: Qty(tonnes),
            },
        });
    }

    /// The book in the FORMAT.md dump format.
    pub fn book(&self) -> String {
        let mut out = Vec::new();
        dump::write_book(&mut out, &self.state, 0).unwrap();
        String::from_utf8(out).unwrap()
    }
}

/// The fills among `events` as dump lines.
pub fn fills(events: &[Event]) -> Vec<String> {
    let mut out = Vec::new();
    for event in events {
        dump::write_fill(&mut out, event).unwrap();
    }
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A deterministic workload with every command kind (xorshift; not gen.py,
/// so this test needs nothing outside the repository).
pub fn synthetic_workload(ops: usize, seed: u64) -> String {
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut out = String::new();
    let mut id = 0u64;
    for _ in 0..ops {
        let r = next() % 100;
        if r < 60 || id == 0 {
            id += 1;
            let side = if next() % 2 == 0 { 'B' } else { 'S' };
            let kind = ['L', 'L', 'L', 'M', 'I', 'F', 'P'][(next() % 7) as usize];
            let price = if kind == 'M' { 0 } else { 2480 + next() % 40 };
            out.push_str(&format!(
                "N {id} {} {side} {kind} {price} {}\n",
                1 + next() % 9,
                1 + next() % 50
            ));
        } else if r < 85 {
            out.push_str(&format!("C {}\n", 1 + next() % id));
        } else {
            out.push_str(&format!(
                "R {} {} {}\n",
                1 + next() % id,
                2480 + next() % 40,
                1 + next() % 50
            ));
        }
    }
    out
}

/// The reason of a command that was rejected outright (its only event).
pub fn rejected(events: &[Event]) -> Option<tonnex_protocol::RejectReason> {
    match events {
        [Event::Rejected { reason, .. }] => Some(*reason),
        _ => None,
    }
}

/// Every cancel among `events`: (order id, open tonnes, reason).
pub fn cancels(events: &[Event]) -> Vec<(u64, u64, tonnex_protocol::CancelReason)> {
    events
        .iter()
        .filter_map(|e| match *e {
            Event::Cancelled {
                order_id,
                open_qty,
                reason,
                ..
            } => Some((order_id, open_qty.tonnes(), reason)),
            _ => None,
        })
        .collect()
}
