//! The closed loop as a property: the venue's engine (`tonnex_engine::State`,
//! with holds) trades random orders; its fills become fill-stream records
//! the ledger applies; random registry outcomes (confirmations, refusals,
//! retirements and their refusals, some repeated) settle, unwind and retire trades; the
//! outcomes the ledger queues go back to the engine in random batches, some
//! sent twice. After every step the engine's balances equal the ledger's
//! for every account and asset (`reconcile::compare`, which also accounts
//! for outcomes not yet sent), and the custody chain verifies.

use proptest::prelude::*;
use tonnex_engine::settlement::{trade_id, SettlementBatch};
use tonnex_engine::{
    Asset, Command, Compliance, EngineConfig, Event, InstrumentSpec, NewOrder, State,
};
use tonnex_protocol::wire::{BuyDecision, ScopeLine, StreamEvent, StreamRecord};
use tonnex_protocol::{Cash, OrderKind, Price, Qty, Side, Symbol};
use tonnex_settlement::ledger::{custody, feedback, Ledger};
use tonnex_settlement::reconcile;
use tonnex_settlement::registry::{Kind, RegistryEvent};

/// Account 1 buys for retirement (its buys carry a buyer decision).
const BUYER: u64 = 1;

struct Loop {
    state: State,
    seq: u64,
    stream: Vec<StreamRecord>,
    ledger: Ledger,
    sent: u64,
    events: u64,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn decision() -> BuyDecision {
    BuyDecision {
        company: "Acme".into(),
        reporting_year: 2026,
        pathway: 2,
        sub_ledger: "ccp".into(),
        floor_micros: 0,
        floor_ticks: 0,
        internal_price_micros: 20_000_000,
        attestation: None,
        scope: vec![ScopeLine {
            scope: 1,
            category: 0,
            qty: 1,
        }],
        coverage_bp: 100,
        tier_threshold_met: true,
        ongoing_emissions_milli_t: 1_000_000,
        threshold_bp: 100,
        rules_version: "test".into(),
        rules_sha256: "0".repeat(64),
        attestation_approver: None,
    }
}

impl Loop {
    fn new(case: u64) -> Loop {
        let dir = std::env::temp_dir().join(format!(
            "tonnex-loop-{}-{case}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let mut l = Loop {
            state: State::new(EngineConfig {
                holds: true,
                order_capacity: 64,
                ..EngineConfig::default()
            }),
            seq: 0,
            stream: Vec::new(),
            ledger: Ledger::open(&dir).unwrap(),
            sent: 0,
            events: 0,
            _dir: TempDir(dir),
        };
        l.engine(Command::AddInstrument {
            instrument: 0,
            spec: InstrumentSpec {
                symbol: Symbol::new("NBR-2024.CCP").unwrap(),
                tick_micros: 10_000,
                min_price: Price(1),
                max_price: Price(100_000),
            },
        });
        for account in 1..=4 {
            l.engine(Command::Deposit {
                account,
                asset: Asset::Cash(Cash(10_000_000_000)),
            });
            l.engine(Command::Deposit {
                account,
                asset: Asset::Credits {
                    instrument: 0,
                    qty: Qty(500),
                },
            });
        }
        l
    }

    fn push(&mut self, event: StreamEvent) {
        self.stream.push(StreamRecord {
            seq: self.stream.len() as u64 + 1,
            journal_seq: self.seq,
            event,
        });
    }

    /// Applies `command` and streams what settlement needs of it, as the
    /// venue's engine thread does.
    fn engine(&mut self, command: Command) -> Vec<Event> {
        self.seq += 1;
        let mut events = Vec::new();
        self.state.apply(self.seq, &command, &mut events);
        self.state.check_invariants();
        let mut fill = 0;
        for event in &events {
            match (*event, &command) {
                (Event::Applied, Command::AddInstrument { instrument, spec }) => {
                    self.push(StreamEvent::Instrument {
                        instrument: *instrument,
                        symbol: spec.symbol.as_str().into(),
                        sub_ledger: "ccp".into(),
                        tick_micros: spec.tick_micros,
                    })
                }
                (Event::Applied, Command::Deposit { account, asset }) => match asset {
                    Asset::Cash(cash) => self.push(StreamEvent::CashDeposit {
                        account: *account,
                        amount_micros: cash.0,
                    }),
                    Asset::Credits { instrument, qty } => self.push(StreamEvent::CreditDeposit {
                        account: *account,
                        instrument: *instrument,
                        qty: qty.tonnes(),
                        lot: None,
                    }),
                },
                (
                    Event::Accepted {
                        order_id, account, ..
                    },
                    Command::New(order),
                ) if account == BUYER && order.side == Side::Buy => {
                    self.push(StreamEvent::BuyAccepted {
                        order_id,
                        account,
                        instrument: 0,
                        price_ticks: order.price.ticks(),
                        qty: order.qty.tonnes(),
                        decision: decision(),
                    })
                }
                (
                    Event::Fill {
                        taker_id,
                        maker_id,
                        taker_account,
                        maker_account,
                        taker_side,
                        price,
                        qty,
                        ..
                    },
                    _,
                ) => {
                    let (buy, sell, buyer, seller) = match taker_side {
                        Side::Buy => (taker_id, maker_id, taker_account, maker_account),
                        Side::Sell => (maker_id, taker_id, maker_account, taker_account),
                    };
                    self.push(StreamEvent::Trade {
                        trade_id: trade_id(self.seq, fill),
                        instrument: 0,
                        buy_order_id: buy,
                        sell_order_id: sell,
                        buyer,
                        seller,
                        price_ticks: price.ticks(),
                        qty: qty.tonnes(),
                        supplementary_ticks: 0,
                    });
                    fill += 1;
                }
                (
                    Event::Cancelled {
                        order_id,
                        account,
                        instrument,
                        open_qty,
                        reason,
                        ..
                    },
                    _,
                ) => self.push(StreamEvent::Cancelled {
                    order_id,
                    account,
                    instrument,
                    open_qty: open_qty.tonnes(),
                    reason: reason.code(),
                }),
                _ => {}
            }
        }
        events
    }

    fn applied(&self) -> u64 {
        self.ledger.last_seq().unwrap()
    }

    /// Settlement reads `n` more records.
    fn settle_records(&mut self, n: usize) {
        let from = self.applied() as usize;
        let to = (from + n).min(self.stream.len());
        let records = self.stream[from..to].to_vec();
        self.ledger.apply(&records, &[], 1_000).unwrap();
    }

    /// A registry answer for the `pick`-th trade awaiting one.
    fn registry(&mut self, pick: usize, kind: u8, repeat: bool) {
        let conn = self.ledger.connection();
        let trades: Vec<(i64, String)> = conn
            .prepare("SELECT trade_id, state FROM trades WHERE state IN ('awaiting_confirmations', 'settled') AND (state = 'awaiting_confirmations' OR retire = 1) ORDER BY trade_id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let Some((trade, state)) = trades.get(pick % trades.len().max(1)).cloned() else {
            return;
        };
        let (kind, confirmed) = match (state.as_str(), kind) {
            ("settled", 6..) => (Kind::Retirement, false),
            ("settled", _) => (Kind::Retirement, true),
            (_, 0..=2) => (Kind::Payment, true),
            (_, 3..=5) => (Kind::Transfer, true),
            (_, 6) => (Kind::Payment, false),
            _ => (Kind::Transfer, false),
        };
        if !repeat {
            self.events += 1;
        }
        let event = RegistryEvent {
            event_id: format!("e{}", self.events),
            trade_id: trade as u64,
            kind,
            confirmed,
            reference: format!("R{}", self.events),
        };
        self.ledger.apply(&[], &[event], 2_000).unwrap();
    }

    /// Up to `n` queued outcomes go to the engine (from an earlier id when
    /// `resend`: an answer lost in a crash).
    fn feed(&mut self, n: usize, resend: bool) {
        let from = if resend {
            self.sent.saturating_sub(n as u64)
        } else {
            self.sent
        };
        let Some((first_id, outcomes)) =
            feedback::unsent(self.ledger.connection(), from, n.max(1)).unwrap()
        else {
            return;
        };
        let through = first_id + outcomes.len() as u64 - 1;
        let events = self.engine(Command::Settlement(Box::new(SettlementBatch {
            first_id,
            outcomes,
        })));
        assert!(
            events.iter().all(|e| *e == Event::Applied),
            "the engine refused an outcome: {events:?}"
        );
        self.sent = self.sent.max(through);
        feedback::acknowledge(self.ledger.connection(), self.sent, &[]).unwrap();
    }

    fn check(&self) -> Result<(), TestCaseError> {
        let conn = self.ledger.connection();
        let unapplied = &self.stream[self.applied() as usize..];
        let r = reconcile::compare(&self.state, conn, unapplied).unwrap();
        prop_assert!(r.ok, "{}", r.json);
        let chain = custody::verify(conn).unwrap();
        prop_assert!(chain.broken.is_none(), "{:?}", chain.broken);
        Ok(())
    }
}

#[derive(Clone, Debug)]
enum Step {
    Order {
        account: u64,
        buy: bool,
        price: i64,
        qty: u64,
    },
    Records(usize),
    Registry {
        pick: usize,
        kind: u8,
        repeat: bool,
    },
    Feed {
        n: usize,
        resend: bool,
    },
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        prop_oneof![
            4 => (1u64..=4, any::<bool>(), 98i64..103, 1u64..15)
                .prop_map(|(account, buy, price, qty)| Step::Order { account, buy, price, qty }),
            2 => (1usize..10).prop_map(Step::Records),
            4 => (0usize..16, 0u8..8, prop::bool::weighted(0.1))
                .prop_map(|(pick, kind, repeat)| Step::Registry { pick, kind, repeat }),
            2 => (1usize..6, prop::bool::weighted(0.2)).prop_map(|(n, resend)| Step::Feed { n, resend }),
        ],
        1..80,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn engine_and_ledger_agree_after_every_step(steps in steps()) {
        static CASE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let mut l = Loop::new(CASE.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let mut next_order = 1u64;
        l.check()?;
        for step in steps {
            match step {
                Step::Order { account, buy, price, qty } => {
                    l.engine(Command::New(NewOrder {
                        id: next_order,
                        account,
                        client_order_id: 0,
                        instrument: 0,
                        side: if buy { Side::Buy } else { Side::Sell },
                        kind: OrderKind::Limit,
                        price: Price(price),
                        qty: Qty(qty),
                        cash_budget: Cash::ZERO,
                        compliance: Compliance::NONE,
                        ts_ns: 0,
                    }));
                    next_order += 1;
                }
                Step::Records(n) => l.settle_records(n),
                Step::Registry { pick, kind, repeat } => l.registry(pick, kind, repeat),
                Step::Feed { n, resend } => l.feed(n, resend),
            }
            l.check()?;
        }
        // Everything delivered: the loop closes with nothing owed.
        l.settle_records(usize::MAX / 2);
        l.feed(1 << 20, false);
        l.check()?;
    }
}
