//! The compliance floor at match time (COMPLIANCE.md, "Engine floor
//! check", and docs/compliance.md, "Floor modes"): an unattested buy is
//! refused whole when it would take an ask below its floor, or, under
//! `below_floor_asks = "skip"`, skips those asks; an attested one trades
//! below it with supplementary ticks. Every apply also runs the invariant
//! checker.

mod common;

use common::{cancels, fills, order, rejected, Engine};
use tonnex_engine::{Compliance, Event};
use tonnex_protocol::{CancelReason, Pathway, Price, RejectReason};

fn floor_buy(
    id: u64,
    kind: char,
    price: i64,
    qty: u64,
    attestation_id: u64,
) -> tonnex_engine::NewOrder {
    let mut o = order(id, 1, 'B', kind, price, qty);
    o.compliance = Compliance {
        pathway: Pathway::Recognised,
        floor_ticks: 2000, // 20.00 USD
        attestation_id,
        skip_below_floor: false,
    };
    o
}

/// An unattested buy under `below_floor_asks = "skip"`.
fn skipping_buy(id: u64, kind: char, price: i64, qty: u64) -> tonnex_engine::NewOrder {
    let mut o = floor_buy(id, kind, price, qty, 0);
    o.compliance.skip_below_floor = true;
    o
}

#[test]
fn floor_check_rejects_an_unattested_buy_that_would_take_below_its_floor() {
    let mut e = Engine::new(false);
    e.n(1, 2, 'S', 'L', 1800, 5); // 18.00 < floor 20.00
    e.n(2, 2, 'S', 'L', 2100, 5);
    // Would take the 18.00 ask: rejected whole, nothing else happens.
    assert_eq!(
        rejected(&e.new_order(floor_buy(3, 'L', 2200, 10, 0))),
        Some(RejectReason::FloorNotMet)
    );
    assert_eq!(
        rejected(&e.new_order(floor_buy(3, 'M', 0, 10, 0))),
        Some(RejectReason::FloorNotMet)
    );
    assert_eq!(
        rejected(&e.new_order(floor_buy(3, 'I', 1800, 1, 0))),
        Some(RejectReason::FloorNotMet)
    );
    // A limit below the floor is never allowed to rest unattested either.
    assert_eq!(
        rejected(&e.new_order(floor_buy(3, 'L', 1700, 1, 0))),
        Some(RejectReason::FloorNotMet)
    );
    assert_eq!(e.book(), "O 1 S 1800 5\nO 2 S 2100 5\n");
    // Nothing below the floor on offer: it trades normally.
    e.c(1);
    let events = e.new_order(floor_buy(3, 'L', 2200, 5, 0));
    assert_eq!(fills(&events), ["F 3 2 2100 5"]);
    assert!(events.iter().all(
        |ev| !matches!(ev, Event::Fill { supplementary_ticks, .. } if *supplementary_ticks != 0)
    ));
}

#[test]
fn floor_attested_buy_trades_below_floor_with_supplementary_ticks() {
    let mut e = Engine::new(false);
    e.n(1, 2, 'S', 'L', 1800, 5);
    e.n(2, 2, 'S', 'L', 2100, 5);
    let events = e.new_order(floor_buy(3, 'L', 2200, 10, 42));
    let supplementary: Vec<i64> = events
        .iter()
        .filter_map(|ev| match ev {
            Event::Fill {
                supplementary_ticks,
                ..
            } => Some(*supplementary_ticks),
            _ => None,
        })
        .collect();
    assert_eq!(supplementary, [200, 0]); // 20.00 - 18.00; none at 21.00
                                         // An attested bid resting below the floor carries it as a maker too.
    e.new_order(floor_buy(4, 'L', 1500, 5, 42));
    let events = e.n(5, 2, 'S', 'L', 1500, 5);
    assert!(matches!(
        events[1],
        Event::Fill {
            price: Price(1500),
            supplementary_ticks: 500,
            ..
        }
    ));
}

#[test]
fn floor_check_applies_to_replace_of_an_unattested_bid() {
    let mut e = Engine::new(false);
    e.new_order(floor_buy(1, 'L', 2000, 5, 0));
    // Below the floor: rejected, the original stays where it was.
    assert_eq!(rejected(&e.r(1, 1900, 5)), Some(RejectReason::FloorNotMet));
    assert_eq!(e.book(), "O 1 B 2000 5\n");
    // At or above the floor it moves.
    assert!(matches!(e.r(1, 2100, 5)[..], [Event::Replaced { .. }]));
    assert_eq!(e.book(), "O 1 B 2100 5\n");
}

#[test]
fn a_21_bid_behind_a_15_ask_is_refused_whole_or_skips_it() {
    // The book: 15.00 at the top, 20.50 and 21.00 behind it, 22.00 above.
    let book = |e: &mut Engine| {
        e.n(1, 2, 'S', 'L', 1500, 5);
        e.n(2, 2, 'S', 'L', 2050, 3);
        e.n(3, 2, 'S', 'L', 2100, 3);
        e.n(4, 2, 'S', 'L', 2200, 3);
    };
    // Refuse (today's rule): the 21.00 bid would take 15.00: refused whole.
    let mut e = Engine::new(false);
    book(&mut e);
    assert_eq!(
        rejected(&e.new_order(floor_buy(9, 'L', 2100, 10, 0))),
        Some(RejectReason::FloorNotMet)
    );
    assert_eq!(
        e.book(),
        "O 1 S 1500 5\nO 2 S 2050 3\nO 3 S 2100 3\nO 4 S 2200 3\n"
    );
    // Skip: it takes 20.50 and 21.00 in price order, never 15.00; its
    // remainder cannot rest across the 15.00 ask, so it is cancelled.
    let mut e = Engine::new(false);
    book(&mut e);
    let events = e.new_order(skipping_buy(9, 'L', 2100, 10));
    assert_eq!(fills(&events), ["F 9 2 2050 3", "F 9 3 2100 3"]);
    assert_eq!(cancels(&events), [(9, 4, CancelReason::BelowFloorSkipped)]);
    assert_eq!(e.book(), "O 1 S 1500 5\nO 4 S 2200 3\n");
    // Nothing at or above the floor within its limit: accepted, no fill,
    // cancelled (it still cannot rest across 15.00).
    let events = e.new_order(skipping_buy(10, 'L', 2000, 2));
    assert!(fills(&events).is_empty());
    assert_eq!(cancels(&events), [(10, 2, CancelReason::BelowFloorSkipped)]);
    // Once no ask below the floor is left, the remainder rests as usual.
    e.c(1);
    let events = e.new_order(skipping_buy(11, 'L', 2100, 2));
    assert!(fills(&events).is_empty() && cancels(&events).is_empty());
    assert_eq!(e.book(), "O 11 B 2100 2\nO 4 S 2200 3\n");
}

#[test]
fn a_skipping_buy_still_obeys_its_limit_ioc_and_fill_or_kill() {
    let mut e = Engine::new(false);
    e.n(1, 2, 'S', 'L', 1500, 5);
    e.n(2, 2, 'S', 'L', 2050, 3);
    // A limit below the floor is refused: skipping is for limits that meet it.
    assert_eq!(
        rejected(&e.new_order(skipping_buy(9, 'L', 1900, 1))),
        Some(RejectReason::FloorNotMet)
    );
    // Fill-or-kill counts only what it may take: 3 t at 20.50, not the 5 at 15.00.
    let events = e.new_order(skipping_buy(10, 'F', 2100, 4));
    assert!(fills(&events).is_empty());
    assert_eq!(cancels(&events), [(10, 4, CancelReason::FokUnfilled)]);
    let events = e.new_order(skipping_buy(11, 'F', 2100, 3));
    assert_eq!(fills(&events), ["F 11 2 2050 3"]);
    // IOC: takes nothing below the floor, the rest is an IOC remainder.
    e.n(3, 2, 'S', 'L', 2060, 1);
    let events = e.new_order(skipping_buy(12, 'I', 2100, 4));
    assert_eq!(fills(&events), ["F 12 3 2060 1"]);
    assert_eq!(cancels(&events), [(12, 3, CancelReason::IocRemainder)]);
    assert_eq!(e.book(), "O 1 S 1500 5\n");
}
