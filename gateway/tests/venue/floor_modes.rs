//! The $21 bid behind a $15 ask, end to end on a real venue under each
//! floor rule the rules file can state: refused whole (venue-strict's
//! `below_floor_asks = "refuse"`), skipping the asks below the floor
//! (`"skip"`), and budget mode (no per-trade floor: the budget is spent at
//! the real prices). Buyer 1001 is on Recognised (floor $20.00, declares
//! $45/t, no attestation).

use tonnex_protocol::wire::*;

use crate::harness::{line, scratch, Venue, QUICK};

const NBR: u32 = 0;

/// The buy's fills (price, tonnes), its cancel reason, and its floor ticks.
type Outcome = (Vec<(i64, u64)>, Option<&'static str>, u32);

/// Fills and the final cancel (if any) of buyer 1001's 10 t bid at $21.00
/// with asks at $15.00 (5 t), $20.50 (3 t), $21.00 (3 t) and $22.00 (3 t),
/// under the demo rules edited by `edit`; or the reject reason.
fn bid_behind_a_cheap_ask(
    name: &str,
    edit: &dyn Fn(String) -> String,
) -> Result<Outcome, &'static str> {
    let dir = scratch(name, QUICK);
    let rules = std::fs::read_to_string(dir.join("rules.toml")).unwrap();
    std::fs::write(dir.join("rules.toml"), edit(rules)).unwrap();
    let venue = Venue::start(&dir);
    let mut maker = venue.login(3001);
    for (price, qty) in [(1500, 5), (2050, 3), (2100, 3), (2200, 3)] {
        maker.rest(NBR, SIDE_SELL, price, qty);
    }
    let mut buyer = venue.login(1001);
    let id = buyer.buy_scoped(NBR, TIF_GTC, 2100, 10, vec![line(1, 0, 10)]);
    let (order_id, floor_ticks) = buyer.expect("accepted or rejected", |m| match m {
        VenueMessage::OrderAccepted {
            client_order_id,
            order_id,
            floor_ticks,
            ..
        } if *client_order_id == id => Some(Ok((*order_id, *floor_ticks))),
        VenueMessage::OrderRejected {
            client_order_id,
            reason,
            ..
        } if *client_order_id == id => Some(Err(reject_name(*reason))),
        _ => None,
    })?;
    let mut fills = Vec::new();
    let mut left = 10;
    let mut cancelled = None;
    while left > 0 && cancelled.is_none() {
        buyer.expect("fill or cancel", |m| match m {
            VenueMessage::Fill {
                order_id: o,
                price_ticks,
                qty,
                ..
            } if *o == order_id => {
                fills.push((*price_ticks, *qty));
                left -= qty;
                Some(())
            }
            VenueMessage::Cancelled {
                order_id: o,
                reason,
                ..
            } if *o == order_id => {
                cancelled = Some(cancel_name(*reason));
                Some(())
            }
            _ => None,
        });
    }
    Ok((fills, cancelled, floor_ticks))
}

#[test]
fn a_21_bid_behind_a_15_ask_is_refused_skips_or_spends_its_budget_as_the_rules_say() {
    // venue-strict as shipped: refused whole by the engine.
    assert_eq!(
        bid_behind_a_cheap_ask("floor-refuse", &|rules| rules),
        Err("FLOOR_NOT_MET")
    );
    // Skip: 20.50 and 21.00 only; the rest cannot rest across 15.00.
    let skip = |rules: String| {
        rules.replace(
            "below_floor_asks = \"refuse\"",
            "below_floor_asks = \"skip\"",
        )
    };
    assert_eq!(
        bid_behind_a_cheap_ask("floor-skip", &skip),
        Ok((
            vec![(2050, 3), (2100, 3)],
            Some("BELOW_FLOOR_SKIPPED"),
            2000
        ))
    );
    // Budget: no per-trade floor, so it buys the cheapest first.
    let budget =
        |rules: String| rules.replace("floor_mode = \"per_trade\"", "floor_mode = \"budget\"");
    assert_eq!(
        bid_behind_a_cheap_ask("floor-budget", &budget),
        Ok((vec![(1500, 5), (2050, 3), (2100, 2)], None, 0))
    );
}

#[test]
fn a_predicate_refusal_names_the_rule_in_the_journal_and_uses_the_client_id() {
    let dir = scratch("predicate-refusal", QUICK);
    // The demo rules, dated, with Recognised requiring credits no older
    // than three years before the buyer's reporting year (2026): the
    // NBR book admits vintages from 2021, so it fails.
    let rules = std::fs::read_to_string(dir.join("rules.toml"))
        .unwrap()
        .replace(
            "coverage_threshold_pct = \"1\"",
            "coverage_threshold_pct = \"1\"\nrequire = [\"vintage_3y\"]",
        );
    std::fs::write(
        dir.join("rules.toml"),
        format!("{rules}\n[predicate.vintage_3y]\nmax_vintage_age_years = 3\n"),
    )
    .unwrap();
    let mut venue = Venue::start(&dir);
    let mut buyer = venue.login(1001);
    let id = buyer.buy_scoped(NBR, TIF_GTC, 2500, 10, vec![line(1, 0, 10)]);
    assert_eq!(buyer.rejected(), (id, 0, "CREDIT_NOT_ELIGIBLE"));
    drop(buyer);
    venue.kill9();
    let dumped = crate::harness::journal_text(&dir);
    assert!(
        dumped.contains("RuleRefused") && dumped.contains("vintage_3y"),
        "{dumped}"
    );
    // After the restart the client id is still used.
    let venue = Venue::start(&dir);
    let mut buyer = venue.login(1001);
    buyer.next_client_order_id = id;
    let again = buyer.buy_scoped(NBR, TIF_GTC, 2500, 10, vec![line(1, 0, 10)]);
    assert_eq!(buyer.rejected(), (again, 0, "DUPLICATE_CLIENT_ORDER_ID"));
}
