//! Settlement's outcomes applied to the accounts: each leg lands where the
//! outcome says, once; random fills and outcomes (repeated, out of stage,
//! unknown) keep every invariant, conserve cash and credits, and survive a
//! snapshot round trip.

mod common;

use common::Engine;
use proptest::prelude::*;
use tonnex_engine::accounts::Balance;
use tonnex_engine::settlement::{trade_id, Outcome, SettlementBatch};
use tonnex_engine::{Command, Event, State};
use tonnex_protocol::RejectReason;

const USD: i64 = 1_000_000;

fn batch(first_id: u64, outcomes: Vec<Outcome>) -> Command {
    Command::Settlement(Box::new(SettlementBatch { first_id, outcomes }))
}

fn cash(engine: &Engine, account: u64) -> Balance {
    engine.state.accounts().get(account).unwrap().cash
}

fn credits(engine: &Engine, account: u64) -> Balance {
    engine.state.accounts().get(account).unwrap().credits(0)
}

fn bal(free: i64, locked: i64, pending_out: i64, pending_in: i64) -> Balance {
    Balance {
        free,
        locked,
        pending_out,
        pending_in,
    }
}

/// Buyer 1 ($1,000), seller 2 (100 t); one trade of 10 t at $5.00
/// (command 4, the buy): its id is `trade_id(4, 0)`.
fn one_trade() -> (Engine, u64) {
    let mut e = Engine::new(true);
    e.deposit_cash(1, 1_000);
    e.deposit_credits(2, 100);
    e.n(1, 2, 'S', 'L', 500, 10);
    let events = e.n(2, 1, 'B', 'L', 500, 10);
    assert_eq!(common::fills(&events).len(), 1);
    (e, trade_id(5, 0))
}

#[test]
fn a_settled_trade_frees_both_legs_once() {
    let (mut e, trade) = one_trade();
    assert_eq!(cash(&e, 1), bal(950 * USD, 0, 50 * USD, 0));
    assert_eq!(credits(&e, 1), bal(0, 0, 0, 10));
    let settled = Outcome::Settled {
        trade_id: trade,
        retire: false,
    };
    assert_eq!(e.apply(batch(1, vec![settled])), [Event::Applied]);
    assert_eq!(cash(&e, 1), bal(950 * USD, 0, 0, 0));
    assert_eq!(credits(&e, 1), bal(10, 0, 0, 0));
    assert_eq!(cash(&e, 2), bal(50 * USD, 0, 0, 0));
    assert_eq!(credits(&e, 2), bal(90, 0, 0, 0));
    assert!(e.state.pending_trades().is_empty());
    // Sent again (settlement restarted before it saw the answer): nothing.
    assert_eq!(e.apply(batch(1, vec![settled])), []);
    assert_eq!(credits(&e, 1), bal(10, 0, 0, 0));
    // Under a new id, the trade is no longer pending: refused, unchanged.
    assert_eq!(
        e.apply(batch(2, vec![settled])),
        [Event::Rejected {
            order_id: 2,
            reason: RejectReason::TradeNotPending
        }]
    );
    assert_eq!(e.state.pending_trades().watermark(), 2);
}

#[test]
fn an_unwound_trade_returns_cash_to_the_buyer_and_credits_to_the_seller() {
    let (mut e, trade) = one_trade();
    let unwound = Outcome::Unwound { trade_id: trade };
    assert_eq!(e.apply(batch(1, vec![unwound])), [Event::Applied]);
    assert_eq!(cash(&e, 1), bal(1_000 * USD, 0, 0, 0));
    assert_eq!(credits(&e, 1), bal(0, 0, 0, 0));
    assert_eq!(cash(&e, 2), bal(0, 0, 0, 0));
    assert_eq!(credits(&e, 2), bal(100, 0, 0, 0));
}

#[test]
fn credits_settled_for_retirement_leave_on_retirement_or_come_back_if_refused() {
    let (mut e, trade) = one_trade();
    // Retired before settled: out of stage.
    assert_eq!(
        e.apply(batch(1, vec![Outcome::Retired { trade_id: trade }])),
        [Event::Rejected {
            order_id: 1,
            reason: RejectReason::TradeNotPending
        }]
    );
    let settled = Outcome::Settled {
        trade_id: trade,
        retire: true,
    };
    assert_eq!(e.apply(batch(2, vec![settled])), [Event::Applied]);
    // Not free to sell: owed to the retirement.
    assert_eq!(credits(&e, 1), bal(0, 0, 10, 0));
    assert_eq!(
        e.n(3, 1, 'S', 'L', 600, 1),
        [Event::Rejected {
            order_id: 3,
            reason: RejectReason::InsufficientCredits
        }]
    );
    let mut refused = e.clone_state();
    assert_eq!(
        e.apply(batch(3, vec![Outcome::Retired { trade_id: trade }])),
        [Event::Applied]
    );
    assert_eq!(credits(&e, 1), bal(0, 0, 0, 0));
    assert_eq!(
        refused.apply(batch(
            3,
            vec![Outcome::RetirementRefused { trade_id: trade }]
        )),
        [Event::Applied]
    );
    assert_eq!(credits(&refused, 1), bal(10, 0, 0, 0));
}

#[test]
fn an_unknown_trade_is_refused_and_the_rest_of_the_batch_applies() {
    let (mut e, trade) = one_trade();
    let events = e.apply(batch(
        7,
        vec![
            Outcome::Unwound { trade_id: 12345 },
            Outcome::Settled {
                trade_id: trade,
                retire: false,
            },
        ],
    ));
    assert_eq!(
        events,
        [
            Event::Rejected {
                order_id: 7,
                reason: RejectReason::TradeNotPending
            },
            Event::Applied
        ]
    );
    assert_eq!(e.state.pending_trades().watermark(), 8);
}

trait CloneState {
    fn clone_state(&self) -> Engine;
}

impl CloneState for Engine {
    fn clone_state(&self) -> Engine {
        let mut copy = Engine::with_state(State::new(self.state.config()));
        copy.state = self.state.clone();
        copy.set_seq(self.state.last_seq());
        copy
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
    /// An outcome for the `pick`-th pending trade (or a made-up id).
    Outcome { pick: usize, kind: u8, fresh: bool },
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        3 => (1u64..5, any::<bool>(), 95i64..106, 1u64..20).prop_map(|(account, buy, price, qty)| Step::Order { account, buy, price, qty }),
        2 => (0usize..8, 0u8..5, prop::bool::weighted(0.9)).prop_map(|(pick, kind, fresh)| Step::Outcome { pick, kind, fresh }),
    ];
    prop::collection::vec(step, 1..120)
}

/// Cash (`None`) or credits held by every account, pending out included:
/// what the accounts own until settlement decides.
fn owned(state: &State, credits: bool) -> i64 {
    state
        .accounts()
        .all()
        .iter()
        .map(|a| {
            let b = if credits { a.credits(0) } else { a.cash };
            b.free + b.locked + b.pending_out
        })
        .sum()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn outcomes_keep_balances_whole(steps in steps()) {
        let mut e = Engine::new(true);
        for account in 1..5 {
            e.deposit_cash(account, 100_000);
            e.deposit_credits(account, 1_000);
        }
        let (mut next_order, mut next_outbox, mut retired) = (1u64, 1u64, 0i64);
        for step in steps {
            match step {
                Step::Order { account, buy, price, qty } => {
                    let side = if buy { 'B' } else { 'S' };
                    e.n(next_order, account, side, 'L', price, qty);
                    next_order += 1;
                }
                Step::Outcome { pick, kind, fresh } => {
                    let pending: Vec<_> = e.state.pending_trades().iter().copied().collect();
                    let trade = pending.get(pick).map_or(999, |t| t.trade_id);
                    let outcome = match kind {
                        0 => Outcome::Settled { trade_id: trade, retire: false },
                        1 => Outcome::Settled { trade_id: trade, retire: true },
                        2 => Outcome::Unwound { trade_id: trade },
                        3 => Outcome::Retired { trade_id: trade },
                        _ => Outcome::RetirementRefused { trade_id: trade },
                    };
                    let id = if fresh { next_outbox } else { next_outbox.saturating_sub(1).max(1) };
                    let events = e.apply(batch(id, vec![outcome]));
                    if id < next_outbox {
                        prop_assert!(events.is_empty(), "a repeated id changed something: {events:?}");
                    } else {
                        next_outbox += 1;
                        if events == [Event::Applied] {
                            if let Outcome::Retired { .. } = outcome {
                                retired += pending[pick].tonnes;
                            }
                        }
                    }
                }
            }
            // `apply` checked every invariant, pending balances included.
            prop_assert_eq!(owned(&e.state, false), 4 * 100_000 * USD);
            prop_assert_eq!(owned(&e.state, true), 4 * 1_000 - retired);
        }
        // A snapshot keeps the pending trades and the watermark (the pool's
        // capacity, also in the image, may grow on the way back).
        let image = e.state.image();
        let again = State::from_image(&image).unwrap().image();
        prop_assert_eq!(&again.pending_trades, &image.pending_trades);
        prop_assert_eq!(again.settlement_watermark, image.settlement_watermark);
        prop_assert_eq!(&again.accounts, &image.accounts);
    }
}

#[test]
fn a_withdrawal_the_registry_refused_comes_back_to_the_free_holding_once() {
    let (mut e, _) = one_trade();
    e.ok(Command::Withdraw {
        account: 2,
        asset: tonnex_engine::Asset::Credits {
            instrument: 0,
            qty: tonnex_protocol::Qty(40),
        },
    });
    assert_eq!(credits(&e, 2), bal(50, 0, 10, 0));
    let returned = Outcome::WithdrawalReturned {
        withdrawal_id: 1 << 62,
        account: 2,
        instrument: 0,
        qty: 40,
    };
    assert_eq!(e.apply(batch(1, vec![returned])), [Event::Applied]);
    assert_eq!(e.apply(batch(1, vec![returned])), []);
    assert_eq!(credits(&e, 2), bal(90, 0, 10, 0));
    assert_eq!(
        e.apply(batch(
            2,
            vec![Outcome::WithdrawalReturned {
                withdrawal_id: 1 << 62,
                account: 2,
                instrument: 9,
                qty: 40,
            }]
        )),
        [Event::Rejected {
            order_id: 2,
            reason: RejectReason::UnknownInstrument
        }]
    );
}
