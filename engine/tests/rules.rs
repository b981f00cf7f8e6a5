//! One test per matching rule of FORMAT.md, then holds, mass cancel and
//! halt (the compliance floor: floor.rs). Every apply also runs the full invariant checker.

mod common;

use common::{cancels, fills, order, rejected, Engine};
use tonnex_engine::{Asset, Command, EngineConfig, Event, State};
use tonnex_protocol::{CancelReason, Cash, Price, Qty, RejectReason};

#[test]
fn rule_1_price_time_priority_and_maker_price() {
    let mut e = Engine::new(false);
    e.n(1, 1, 'S', 'L', 101, 5);
    e.n(2, 2, 'S', 'L', 100, 5);
    e.n(3, 3, 'S', 'L', 100, 5);
    e.n(4, 4, 'B', 'L', 99, 5);
    e.n(5, 5, 'B', 'L', 99, 5);
    // Best ask first (100 before 101), earlier arrival first, at the maker's price.
    let events = e.n(6, 6, 'B', 'L', 105, 12);
    assert_eq!(
        fills(&events),
        ["F 6 2 100 5", "F 6 3 100 5", "F 6 1 101 2"]
    );
    let events = e.n(7, 7, 'S', 'L', 90, 7);
    assert_eq!(fills(&events), ["F 7 4 99 5", "F 7 5 99 2"]);
    assert_eq!(e.book(), "O 5 B 99 3\nO 1 S 101 3\n");
}

#[test]
fn rule_2_limit_matches_while_price_acceptable_and_rests_the_rest() {
    let mut e = Engine::new(false);
    e.n(1, 1, 'S', 'L', 100, 5);
    e.n(2, 1, 'S', 'L', 102, 5);
    let events = e.n(3, 2, 'B', 'L', 101, 8);
    assert_eq!(fills(&events), ["F 3 1 100 5"]);
    assert!(cancels(&events).is_empty());
    assert_eq!(e.book(), "O 3 B 101 3\nO 2 S 102 5\n");
}

#[test]
fn rule_3_market_takes_any_price_and_never_rests() {
    let mut e = Engine::new(false);
    e.n(1, 1, 'S', 'L', 100, 5);
    e.n(2, 1, 'S', 'L', 5000, 5);
    let events = e.n(3, 2, 'B', 'M', 0, 12);
    assert_eq!(fills(&events), ["F 3 1 100 5", "F 3 2 5000 5"]);
    assert_eq!(cancels(&events), [(3, 2, CancelReason::IocRemainder)]);
    assert_eq!(e.book(), "");
    // Against an empty side: accepted, then its whole quantity cancelled.
    let events = e.n(4, 2, 'S', 'M', 0, 3);
    assert_eq!(cancels(&events), [(4, 3, CancelReason::IocRemainder)]);
}

#[test]
fn rule_4_ioc_cancels_its_remainder() {
    let mut e = Engine::new(false);
    e.n(1, 1, 'B', 'L', 100, 5);
    e.n(2, 1, 'B', 'L', 98, 5);
    let events = e.n(3, 2, 'S', 'I', 99, 8);
    assert_eq!(fills(&events), ["F 3 1 100 5"]);
    assert_eq!(cancels(&events), [(3, 3, CancelReason::IocRemainder)]);
    assert_eq!(e.book(), "O 2 B 98 5\n");
}

#[test]
fn rule_5_fok_counts_only_other_accounts_and_is_all_or_nothing() {
    let mut e = Engine::new(false);
    e.n(1, 1, 'S', 'L', 100, 5);
    e.n(2, 9, 'S', 'L', 100, 5); // the FOK's own account: not counted
    e.n(3, 2, 'S', 'L', 101, 5);
    // Needs 11 at <= 101: others offer 5 + 5 = 10. Cancelled whole; no
    // trade and no self-trade cancel.
    let events = e.n(4, 9, 'B', 'F', 101, 11);
    assert!(fills(&events).is_empty());
    assert_eq!(cancels(&events), [(4, 11, CancelReason::FokUnfilled)]);
    assert_eq!(e.book(), "O 1 S 100 5\nO 2 S 100 5\nO 3 S 101 5\n");
    // 10 is enough: executes like IOC, and self-trade prevention applies.
    let events = e.n(5, 9, 'B', 'F', 101, 10);
    assert_eq!(fills(&events), ["F 5 1 100 5", "F 5 3 101 5"]);
    assert_eq!(cancels(&events), [(2, 5, CancelReason::SelfTrade)]);
    assert_eq!(e.book(), "");
}

#[test]
fn rule_6_post_only_rejected_when_crossing_else_rests() {
    let mut e = Engine::new(false);
    e.n(1, 1, 'S', 'L', 100, 5);
    e.n(2, 1, 'B', 'L', 98, 5);
    assert_eq!(
        rejected(&e.n(3, 2, 'B', 'P', 100, 1)),
        Some(RejectReason::PostOnlyWouldCross)
    );
    assert_eq!(
        rejected(&e.n(4, 2, 'S', 'P', 98, 1)),
        Some(RejectReason::PostOnlyWouldCross)
    );
    let events = e.n(5, 2, 'B', 'P', 99, 1);
    assert!(matches!(events[..], [Event::Accepted { order_id: 5, .. }]));
    assert_eq!(e.book(), "O 5 B 99 1\nO 2 B 98 5\nO 1 S 100 5\n");
}

#[test]
fn rule_7_self_trade_cancels_the_resting_order_and_matching_continues() {
    let mut e = Engine::new(false);
    e.n(1, 1, 'S', 'L', 100, 5);
    e.n(2, 7, 'S', 'L', 100, 5);
    e.n(3, 1, 'S', 'L', 101, 5);
    let events = e.n(4, 1, 'B', 'L', 101, 6);
    assert_eq!(
        cancels(&events),
        [
            (1, 5, CancelReason::SelfTrade),
            (3, 5, CancelReason::SelfTrade)
        ]
    );
    assert_eq!(fills(&events), ["F 4 2 100 5"]);
    // The events come in the order they happened: cancel, fill, cancel.
    assert!(matches!(events[1], Event::Cancelled { order_id: 1, .. }));
    assert!(matches!(events[2], Event::Fill { maker_id: 2, .. }));
    assert_eq!(e.book(), "O 4 B 101 1\n");
}

#[test]
fn rule_8_cancel_removes_live_orders_and_rejects_others() {
    let mut e = Engine::new(false);
    e.n(1, 1, 'B', 'L', 100, 5);
    e.n(2, 2, 'S', 'L', 100, 5); // fills 1 completely: 1 is no longer live
    assert_eq!(rejected(&e.c(1)), Some(RejectReason::UnknownOrderId));
    assert_eq!(rejected(&e.c(99)), Some(RejectReason::UnknownOrderId));
    e.n(3, 1, 'B', 'L', 100, 5);
    assert_eq!(cancels(&e.c(3)), [(3, 5, CancelReason::User)]);
    assert_eq!(rejected(&e.c(3)), Some(RejectReason::UnknownOrderId));
    assert_eq!(e.book(), "");
    // An account may cancel only its own orders; the operator (0) any.
    e.n(4, 1, 'B', 'L', 100, 5);
    let by_other = e.apply(Command::Cancel {
        order_id: 4,
        account: 2,
    });
    assert_eq!(rejected(&by_other), Some(RejectReason::NotOrderOwner));
    let by_owner = e.apply(Command::Cancel {
        order_id: 4,
        account: 1,
    });
    assert_eq!(cancels(&by_owner), [(4, 5, CancelReason::User)]);
}

#[test]
fn rule_9_replace_keeps_priority_only_on_a_same_price_reduction() {
    let mut e = Engine::new(false);
    e.n(1, 1, 'B', 'L', 100, 10);
    e.n(2, 2, 'B', 'L', 100, 10);
    // Reduce in place: keeps its place ahead of 2.
    assert!(matches!(
        e.r(1, 100, 4)[..],
        [Event::Replaced {
            priority_kept: true,
            ..
        }]
    ));
    assert_eq!(e.book(), "O 1 B 100 4\nO 2 B 100 10\n");
    // Same price, same quantity: no change.
    assert!(matches!(
        e.r(1, 100, 4)[..],
        [Event::Replaced {
            priority_kept: true,
            ..
        }]
    ));
    assert_eq!(e.book(), "O 1 B 100 4\nO 2 B 100 10\n");
    // Increase at the same price: to the back of the level.
    assert!(matches!(
        e.r(1, 100, 6)[..],
        [Event::Replaced {
            priority_kept: false,
            ..
        }]
    ));
    assert_eq!(e.book(), "O 2 B 100 10\nO 1 B 100 6\n");
    // Reprice: leaves and re-enters; a re-entering limit may match.
    e.n(3, 3, 'S', 'L', 102, 4);
    let events = e.r(2, 102, 10);
    assert!(matches!(
        events[0],
        Event::Replaced {
            order_id: 2,
            priority_kept: false,
            ..
        }
    ));
    assert_eq!(fills(&events[1..]), ["F 2 3 102 4"]);
    assert_eq!(e.book(), "O 2 B 102 6\nO 1 B 100 6\n");
    // Not live, or a zero quantity: rejected, nothing happens.
    assert_eq!(
        rejected(&e.r(3, 101, 1)),
        Some(RejectReason::UnknownOrderId)
    );
    assert_eq!(
        rejected(&e.r(1, 101, 0)),
        Some(RejectReason::InvalidQuantity)
    );
    // A re-entering post-only that would cross: rejected, the original stays.
    e.n(4, 4, 'S', 'P', 105, 3);
    assert_eq!(
        rejected(&e.r(4, 102, 3)),
        Some(RejectReason::PostOnlyWouldCross)
    );
    assert_eq!(e.book(), "O 2 B 102 6\nO 1 B 100 6\nO 4 S 105 3\n");
    // A re-entering post-only that does not cross just moves.
    assert!(matches!(
        e.r(4, 103, 3)[..],
        [Event::Replaced {
            priority_kept: false,
            ..
        }]
    ));
    assert_eq!(e.book(), "O 2 B 102 6\nO 1 B 100 6\nO 4 S 103 3\n");
}

#[test]
fn rule_9_replace_that_fills_completely_leaves_no_order() {
    let mut e = Engine::new(false);
    e.n(1, 1, 'S', 'L', 100, 5);
    e.n(2, 2, 'B', 'L', 99, 5);
    let events = e.r(2, 100, 5);
    assert_eq!(fills(&events), ["F 2 1 100 5"]);
    assert_eq!(e.book(), "");
    assert_eq!(rejected(&e.c(2)), Some(RejectReason::UnknownOrderId));
}

#[test]
fn rule_10_engine_validation_band_quantity_duplicates() {
    let mut e = Engine::new(false);
    assert_eq!(
        rejected(&e.n(1, 1, 'B', 'L', 0, 5)),
        Some(RejectReason::PriceOutsideBand)
    );
    assert_eq!(
        rejected(&e.n(1, 1, 'B', 'L', 100_001, 5)),
        Some(RejectReason::PriceOutsideBand)
    );
    assert_eq!(
        rejected(&e.n(1, 1, 'B', 'L', 100, 0)),
        Some(RejectReason::InvalidQuantity)
    );
    // Both ends of the band are allowed.
    assert!(matches!(
        e.n(1, 1, 'B', 'L', 1, 5)[..],
        [Event::Accepted { .. }]
    ));
    assert!(matches!(
        e.n(2, 1, 'S', 'L', 100_000, 5)[..],
        [Event::Accepted { .. }]
    ));
    assert_eq!(
        rejected(&e.n(2, 1, 'S', 'L', 500, 5)),
        Some(RejectReason::DuplicateOrderId)
    );
    assert_eq!(
        rejected(&e.r(2, 100_001, 5)),
        Some(RejectReason::PriceOutsideBand)
    );
    let mut wrong_instrument = order(3, 1, 'B', 'L', 100, 1);
    wrong_instrument.instrument = 7;
    assert_eq!(
        rejected(&e.new_order(wrong_instrument)),
        Some(RejectReason::UnknownInstrument)
    );
}

#[test]
fn far_prices_outside_the_dense_window_keep_priority_and_order() {
    // Band 1..=100_000 is wider than the 65 536-tick window: prices at both
    // ends land in the fallback map and must still match best-first.
    let mut e = Engine::new(false);
    e.n(1, 1, 'S', 'L', 50_000, 1);
    e.n(2, 1, 'S', 'L', 99_999, 1);
    e.n(3, 1, 'S', 'L', 2, 1);
    e.n(4, 1, 'S', 'L', 50_001, 1);
    assert_eq!(
        e.book(),
        "O 3 S 2 1\nO 1 S 50000 1\nO 4 S 50001 1\nO 2 S 99999 1\n"
    );
    let events = e.n(5, 2, 'B', 'L', 100_000, 4);
    assert_eq!(
        fills(&events),
        [
            "F 5 3 2 1",
            "F 5 1 50000 1",
            "F 5 4 50001 1",
            "F 5 2 99999 1"
        ]
    );
}

#[test]
fn holds_lock_cash_and_credits_move_to_pending_and_release_on_cancel() {
    let mut e = Engine::new(true);
    e.deposit_cash(1, 1_000); // buyer: 1000 USD
    e.deposit_credits(2, 50); // seller: 50 t
                              // 10 t at 25.00 USD (2500 ticks) locks 250 USD.
    assert!(matches!(
        e.n(1, 1, 'B', 'L', 2500, 10)[..],
        [Event::Accepted { .. }]
    ));
    let buyer = e.state.accounts().get(1).unwrap().cash;
    assert_eq!((buyer.free, buyer.locked), (750_000_000, 250_000_000));
    // More than the free cash: rejected.
    assert_eq!(
        rejected(&e.n(2, 1, 'B', 'L', 2500, 31)),
        Some(RejectReason::InsufficientFunds)
    );
    // A sell of more credits than deposited: rejected; unknown account too.
    assert_eq!(
        rejected(&e.n(3, 2, 'S', 'L', 2400, 51)),
        Some(RejectReason::InsufficientCredits)
    );
    assert_eq!(
        rejected(&e.n(3, 9, 'S', 'L', 2400, 1)),
        Some(RejectReason::InsufficientCredits)
    );
    assert_eq!(
        rejected(&e.n(3, 9, 'B', 'L', 2400, 1)),
        Some(RejectReason::InsufficientFunds)
    );
    // The seller takes 4 t at the bid's 25.00: both sides move to pending.
    let events = e.n(4, 2, 'S', 'L', 2400, 4);
    assert_eq!(fills(&events), ["F 4 1 2500 4"]);
    let buyer = e.state.accounts().get(1).unwrap();
    assert_eq!(buyer.cash.locked, 150_000_000);
    assert_eq!(buyer.cash.pending_out, 100_000_000);
    assert_eq!(buyer.credits(0).pending_in, 4);
    let seller = e.state.accounts().get(2).unwrap();
    assert_eq!(seller.credits(0).free, 46);
    assert_eq!(seller.credits(0).pending_out, 4);
    assert_eq!(seller.cash.pending_in, 100_000_000);
    // Cancel releases the rest of the buyer's hold.
    e.c(1);
    let buyer = e.state.accounts().get(1).unwrap().cash;
    assert_eq!((buyer.free, buyer.locked), (900_000_000, 0));
}

#[test]
fn holds_taker_buy_filled_below_its_limit_gets_the_difference_back() {
    let mut e = Engine::new(true);
    e.deposit_cash(1, 1_000);
    e.deposit_credits(2, 10);
    e.n(1, 2, 'S', 'L', 2000, 4);
    // Limit 25.00 for 10 t locks 250; 4 t fill at 20.00 (80 USD), 6 t rest at 25.00 (150).
    let events = e.n(2, 1, 'B', 'L', 2500, 10);
    assert_eq!(fills(&events), ["F 2 1 2000 4"]);
    let cash = e.state.accounts().get(1).unwrap().cash;
    assert_eq!(
        (cash.free, cash.locked, cash.pending_out),
        (770_000_000, 150_000_000, 80_000_000)
    );
    // An IOC keeps nothing locked afterwards.
    let events = e.n(3, 1, 'B', 'I', 2500, 1);
    assert_eq!(cancels(&events), [(3, 1, CancelReason::IocRemainder)]);
    assert_eq!(e.state.accounts().get(1).unwrap().cash.locked, 150_000_000);
}

#[test]
fn holds_replace_relocks_and_rejects_what_the_account_cannot_cover() {
    let mut e = Engine::new(true);
    e.deposit_cash(1, 100);
    e.n(1, 1, 'B', 'L', 1000, 5); // 50 USD locked
    assert_eq!(
        rejected(&e.r(1, 1000, 11)),
        Some(RejectReason::InsufficientFunds)
    );
    assert_eq!(e.state.accounts().get(1).unwrap().cash.locked, 50_000_000);
    e.r(1, 2000, 5); // 100 USD: exactly the balance
    let cash = e.state.accounts().get(1).unwrap().cash;
    assert_eq!((cash.free, cash.locked), (0, 100_000_000));
    e.r(1, 2000, 2); // reduction in place releases 60
    assert_eq!(e.state.accounts().get(1).unwrap().cash.free, 60_000_000);
}

#[test]
fn holds_market_buy_needs_a_budget_and_stops_when_it_is_spent() {
    let mut e = Engine::new(true);
    e.deposit_cash(1, 1_000);
    e.deposit_credits(2, 100);
    e.n(1, 2, 'S', 'L', 1000, 5); // 10 USD/t
    e.n(2, 2, 'S', 'L', 3000, 50); // 30 USD/t
    assert_eq!(
        rejected(&e.n(3, 1, 'B', 'M', 0, 10)),
        Some(RejectReason::MissingCashBudget)
    );
    let mut market = order(3, 1, 'B', 'M', 0, 10);
    market.cash_budget = Cash(2_000 * 1_000_000);
    assert_eq!(
        rejected(&e.new_order(market)),
        Some(RejectReason::InsufficientFunds)
    );
    // 140 USD buys 5 t at 10 (50) and 3 t at 30 (90), then the budget is spent.
    market.cash_budget = Cash(140 * 1_000_000);
    let events = e.new_order(market);
    assert_eq!(fills(&events), ["F 3 1 1000 5", "F 3 2 3000 3"]);
    assert_eq!(cancels(&events), [(3, 2, CancelReason::BudgetExhausted)]);
    let cash = e.state.accounts().get(1).unwrap().cash;
    assert_eq!(
        (cash.free, cash.locked, cash.pending_out),
        (860_000_000, 0, 140_000_000)
    );
}

#[test]
fn holds_deposit_and_withdraw_are_commands_and_checked() {
    let mut e = Engine::new(true);
    e.deposit_cash(1, 10);
    let too_much = e.apply(Command::Withdraw {
        account: 1,
        asset: Asset::Cash(Cash(11_000_000)),
    });
    assert_eq!(rejected(&too_much), Some(RejectReason::InsufficientFunds));
    e.ok(Command::Withdraw {
        account: 1,
        asset: Asset::Cash(Cash(4_000_000)),
    });
    assert_eq!(e.state.accounts().get(1).unwrap().cash.free, 6_000_000);
    let zero = e.apply(Command::Deposit {
        account: 1,
        asset: Asset::Cash(Cash(0)),
    });
    assert_eq!(rejected(&zero), Some(RejectReason::InvalidAmount));
    let unknown = e.apply(Command::Deposit {
        account: 1,
        asset: Asset::Credits {
            instrument: 3,
            qty: Qty(1),
        },
    });
    assert_eq!(rejected(&unknown), Some(RejectReason::UnknownInstrument));
    // Locked cash cannot be withdrawn.
    e.n(1, 1, 'B', 'L', 500, 1); // 5 USD locked, 1 free
    let locked = e.apply(Command::Withdraw {
        account: 1,
        asset: Asset::Cash(Cash(2_000_000)),
    });
    assert_eq!(rejected(&locked), Some(RejectReason::InsufficientFunds));
}

#[test]
fn mass_cancel_by_account_and_by_account_and_instrument() {
    mass_cancel_by_account(Engine::new(false));
}

/// A state that keeps no lists of each account's orders (the replay
/// tool's) walks the books instead, and cancels the same orders in the
/// same order.
#[test]
fn mass_cancel_without_owner_lists_gives_the_same_events() {
    mass_cancel_by_account(Engine::with_state(
        State::new(EngineConfig {
            holds: false,
            order_capacity: 16,
            ..EngineConfig::default()
        })
        .without_owner_lists(),
    ));
}

fn mass_cancel_by_account(mut e: Engine) {
    e.ok(Command::AddInstrument {
        instrument: 1,
        spec: common::spec("SECOND"),
    });
    e.n(1, 1, 'B', 'L', 100, 1);
    e.n(2, 2, 'B', 'L', 101, 1);
    e.n(3, 1, 'S', 'L', 200, 1);
    e.n(4, 1, 'B', 'L', 102, 1);
    let mut other = order(5, 1, 'B', 'L', 100, 1);
    other.instrument = 1;
    e.new_order(other);
    let events = e.apply(Command::MassCancel {
        account: 1,
        instrument: Some(0),
    });
    // Oldest first, from the account's own list (the other account's bid
    // between them is never visited); the other instrument untouched.
    assert_eq!(
        cancels(&events),
        [
            (1, 1, CancelReason::MassCancel),
            (3, 1, CancelReason::MassCancel),
            (4, 1, CancelReason::MassCancel)
        ]
    );
    assert_eq!(e.book(), "O 2 B 101 1\n");
    assert!(e.state.order(5).is_some());
    let events = e.apply(Command::MassCancel {
        account: 1,
        instrument: None,
    });
    assert_eq!(cancels(&events), [(5, 1, CancelReason::MassCancel)]);
    assert_eq!(e.state.resting_orders(), 1);
    let unknown = e.apply(Command::MassCancel {
        account: 1,
        instrument: Some(9),
    });
    assert_eq!(rejected(&unknown), Some(RejectReason::UnknownInstrument));
}

#[test]
fn halt_rejects_new_orders_and_replaces_allows_cancels_and_resume_reopens() {
    let mut e = Engine::new(true);
    e.deposit_cash(1, 100);
    e.n(1, 1, 'B', 'L', 100, 1);
    e.n(2, 1, 'B', 'L', 99, 1);
    e.ok(Command::Halt {
        instrument: 0,
        cancel_resting: false,
    });
    assert_eq!(
        rejected(&e.n(3, 1, 'B', 'L', 100, 1)),
        Some(RejectReason::InstrumentHalted)
    );
    assert_eq!(
        rejected(&e.r(1, 100, 2)),
        Some(RejectReason::InstrumentHalted)
    );
    assert_eq!(cancels(&e.c(1)), [(1, 1, CancelReason::User)]);
    e.ok(Command::Resume { instrument: 0 });
    assert!(matches!(
        e.n(3, 1, 'B', 'L', 100, 1)[..],
        [Event::Accepted { .. }]
    ));
    // A halt that cancels: every resting order goes, holds released.
    let events = e.apply(Command::Halt {
        instrument: 0,
        cancel_resting: true,
    });
    assert_eq!(
        cancels(&events),
        [(3, 1, CancelReason::Halt), (2, 1, CancelReason::Halt)]
    );
    assert_eq!(e.state.accounts().get(1).unwrap().cash.locked, 0);
    let unknown = e.apply(Command::Halt {
        instrument: 4,
        cancel_resting: false,
    });
    assert_eq!(rejected(&unknown), Some(RejectReason::UnknownInstrument));
}

#[test]
fn add_instrument_requires_the_next_index_and_a_sane_band() {
    let mut e = Engine::new(false);
    let mut spec = common::spec("X");
    assert_eq!(
        rejected(&e.apply(Command::AddInstrument {
            instrument: 5,
            spec
        })),
        Some(RejectReason::InvalidInstrument)
    );
    spec.min_price = Price(10);
    spec.max_price = Price(9);
    assert_eq!(
        rejected(&e.apply(Command::AddInstrument {
            instrument: 1,
            spec
        })),
        Some(RejectReason::InvalidInstrument)
    );
}

#[test]
fn events_name_the_owner_and_its_client_order_id() {
    let mut e = Engine::new(false);
    let mut maker = order(1, 5, 'S', 'L', 100, 10);
    maker.client_order_id = 71;
    e.new_order(maker);
    // An operator's replace (account 0) still names the owner.
    assert!(matches!(
        e.r(1, 100, 8)[..],
        [Event::Replaced {
            account: 5,
            client_order_id: 71,
            ..
        }]
    ));
    let mut taker = order(2, 6, 'B', 'L', 100, 3);
    taker.client_order_id = 72;
    assert!(matches!(
        e.new_order(taker)[..],
        [
            Event::Accepted { .. },
            Event::Fill {
                taker_client_order_id: 72,
                maker_client_order_id: 71,
                ..
            }
        ]
    ));
    assert!(matches!(
        e.c(1)[..],
        [Event::Cancelled {
            account: 5,
            client_order_id: 71,
            ..
        }]
    ));
}
