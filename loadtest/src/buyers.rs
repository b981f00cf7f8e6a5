//! The corporate buyer flow (`--buyers N`): buyers of the venue file, each
//! sending compliance-routed orders with scope lines within its inventory,
//! on the instruments its pathway admits, at or above its pathway's floor
//! (so the pre-router accepts them rather than holding them). The venue
//! file is read with the venue's own loader and pre-router, so what the
//! load test plans is what the venue will decide.

use std::path::Path;

use rust_decimal::Decimal;
use tonnex_gateway::compliance::{self, LimitPrice, OrderRequest, Outcome, RawScopeLine};
use tonnex_gateway::config::{AccountStatus, Role};
use tonnex_protocol::wire::{NewOrder, ScopeLine, SIDE_BUY, TIF_GTC, TIF_IOC, TYPE_LIMIT};
use tonnex_protocol::{OrderKind, Side};

use crate::sim::Rng;

/// An instrument a buyer may buy on, and its floor there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuyerBook {
    /// Instrument index.
    pub instrument: u32,
    /// The pathway's floor in the instrument's ticks (0: none).
    pub floor_ticks: i64,
}

/// One buyer of the flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuyerPlan {
    /// Account.
    pub account: u64,
    /// Its secret (from the venue file).
    pub secret: String,
    /// Books it may buy on.
    pub books: Vec<BuyerBook>,
    /// Inventory lines with tonnes: (scope, category).
    pub lines: Vec<(u8, u8)>,
}

/// The first `count` buyers of `venue_file` that can buy on one of
/// `instruments`: active, with a profile and a plain secret, on a book
/// whose pathway floor is at or under `mid` ticks (where the market makers
/// quote: above it every buy would need an attestation).
pub fn plan(
    venue_file: &Path,
    instruments: &[u32],
    mid: i64,
    count: usize,
) -> Result<Vec<BuyerPlan>, String> {
    let (venue, router) = compliance::load_router(venue_file).map_err(|e| e.to_string())?;
    let mut plans = Vec::new();
    for account in &venue.accounts {
        if plans.len() == count {
            break;
        }
        if account.role != Role::Buyer
            || account.status != AccountStatus::Active
            || account.secret.is_empty()
            || account.secret.starts_with("$argon2")
        {
            continue;
        }
        let Some(profile) = router.profile(account.id) else {
            continue;
        };
        let inventory = &profile.inventory;
        let mut lines = Vec::new();
        if inventory.scope1 >= Decimal::ONE {
            lines.push((1, 0));
        }
        if inventory.scope2 >= Decimal::ONE {
            lines.push((2, 0));
        }
        for category in 1..=15u8 {
            if inventory.scope3[usize::from(category)] >= Decimal::ONE {
                lines.push((3, category));
            }
        }
        let Some(&(scope, category)) = lines.first() else {
            continue;
        };
        let mut books = Vec::new();
        for &index in instruments {
            let Some(config) = venue.instruments.get(index as usize) else {
                return Err(format!(
                    "--instruments: {index} is not an instrument of {}",
                    venue_file.display()
                ));
            };
            // Probe with a one-tonne buy at the band's top on a copy of
            // the pre-router: accepted means this buyer may trade here.
            let probe = OrderRequest {
                id: 0,
                account: account.id,
                side: Side::Buy,
                instrument: config.symbol.clone().into(),
                kind: OrderKind::Limit,
                price: Some(LimitPrice::Usd(config.max_price_usd)),
                qty: 1,
                scope: Some(vec![RawScopeLine {
                    scope: Some(i64::from(scope)),
                    category: (scope == 3).then_some(i64::from(category)),
                    category_given: scope == 3,
                    qty: Some(1),
                    malformed: false,
                }]),
            };
            let decision = router.clone().decide(&probe);
            if decision.outcome == Outcome::Accept && i64::from(decision.floor_ticks) <= mid {
                books.push(BuyerBook {
                    instrument: index,
                    floor_ticks: i64::from(decision.floor_ticks),
                });
            }
        }
        if books.is_empty() {
            continue;
        }
        plans.push(BuyerPlan {
            account: account.id,
            secret: account.secret.clone(),
            books,
            lines,
        });
    }
    if plans.len() < count {
        return Err(format!(
            "--buyers {count}: {} has {} buyers that may buy on instrument(s) {instruments:?} at a floor at or under the mid {mid} (active, with a profile and a secret)",
            venue_file.display(),
            plans.len()
        ));
    }
    Ok(plans)
}

/// What a buyer does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuyerAction {
    /// A new order (a resting bid or an IOC take).
    New(NewOrder),
    /// Cancel the live order at this index.
    Cancel(usize),
}

/// A buyer's order flow: mostly resting bids a few ticks under the mid
/// (never under its floor), which it later cancels (freeing their claims),
/// and some small IOC takes through the mid; one to three tonnes each, on
/// one inventory line, so an inventory lasts a long run.
pub fn next(
    plan: &BuyerPlan,
    rng: &mut Rng,
    live: usize,
    mid_of: impl Fn(u32) -> i64,
    client_order_id: u64,
) -> BuyerAction {
    let roll = rng.range(0, 99);
    if live > 0 && (roll < 30 || live >= 50) {
        return BuyerAction::Cancel(rng.range(0, live as u64 - 1) as usize);
    }
    let book = &plan.books[rng.range(0, plan.books.len() as u64 - 1) as usize];
    let (scope, category) = plan.lines[rng.range(0, plan.lines.len() as u64 - 1) as usize];
    let mid = mid_of(book.instrument);
    let take = roll >= 85;
    let price = if take {
        mid + 5
    } else {
        mid - rng.range(1, 12) as i64
    }
    .max(book.floor_ticks);
    let qty = rng.range(1, 3);
    BuyerAction::New(NewOrder {
        client_order_id,
        instrument: book.instrument,
        side: SIDE_BUY,
        order_type: TYPE_LIMIT,
        time_in_force: if take { TIF_IOC } else { TIF_GTC },
        price_ticks: price,
        qty,
        cash_budget_micros: 0,
        scope: vec![ScopeLine {
            scope,
            category,
            qty,
        }],
        attestation: None,
    })
}
