//! What the router derives from an instrument under the rules in force on
//! a day: each pathway's floor in the instrument's ticks, whether the
//! pathway may buy from its sub-ledger, its band, and the rules'
//! predicates judged against its class of credits (those that do not read
//! the buyer are judged here once, not per order).

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use super::super::rules::predicate::{self, Verdict};
use super::super::rules::{CcpLabels, Date, Rules};
use super::LimitPrice;
use crate::config::InstrumentConfig;

/// One required predicate still to judge at decision time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Check {
    /// Fails for every buyer (the last check of its list).
    Fail(usize),
    /// Reads the buyer: judge it with the buyer's profile.
    Buyer(usize),
}

/// An instrument, with what the router derives from it.
#[derive(Clone, Debug)]
pub(super) struct RoutedInstrument {
    pub(super) index: usize,
    pub(super) config: InstrumentConfig,
    pub(super) sub_ledger: &'static str,
    /// Each pathway's floor in this instrument's ticks, rounded up.
    pub(super) floor_ticks: [u32; 3],
    /// Whether each pathway may buy from this instrument's sub-ledger.
    pub(super) eligible: [bool; 3],
    /// Each pathway's required predicates that do not simply pass here,
    /// in `require` order, up to the first that fails for everyone.
    pub(super) checks: [Box<[Check]>; 3],
    /// The band in whole ticks: a whole-tick price is inside the USD band
    /// exactly when it is inside this (min rounded up, max rounded down).
    pub(super) band_ticks: (i64, i64),
}

/// What the router derives from an instrument under `rules` on `date`.
pub(super) fn route(
    rules: &Rules,
    index: usize,
    inst: &InstrumentConfig,
    date: Date,
    labels: &CcpLabels,
) -> RoutedInstrument {
    RoutedInstrument {
        index,
        config: inst.clone(),
        sub_ledger: crate::interned::intern(&inst.sub_ledger),
        floor_ticks: [0, 1, 2].map(|p| floor_ticks(rules.pathways[p].floor_usd, inst.tick_usd)),
        eligible: [0, 1, 2].map(|p| rules.pathways[p].sub_ledgers.contains(&inst.sub_ledger)),
        checks: [0, 1, 2].map(|p| compile(rules, p, inst, date, labels)),
        band_ticks: (
            (inst.min_price_usd / inst.tick_usd)
                .ceil()
                .to_i64()
                .unwrap_or(i64::MAX),
            (inst.max_price_usd / inst.tick_usd)
                .floor()
                .to_i64()
                .unwrap_or(i64::MIN),
        ),
    }
}

/// Pathway `p`'s required predicates judged for `inst` on `date`: those
/// that pass for everyone are dropped, one that fails for everyone ends
/// the list.
fn compile(
    rules: &Rules,
    p: usize,
    inst: &InstrumentConfig,
    date: Date,
    labels: &CcpLabels,
) -> Box<[Check]> {
    let mut checks = Vec::new();
    for &index in &rules.pathways[p].require {
        match predicate::verdict(&rules.predicates, index, inst, date, labels) {
            Verdict::Pass => {}
            Verdict::Buyer => checks.push(Check::Buyer(index)),
            Verdict::Fail => {
                checks.push(Check::Fail(index));
                break;
            }
        }
    }
    checks.into_boxed_slice()
}

/// The floor in ticks, rounded up: a price in whole ticks is at or above the
/// floor exactly when it is at or above this.
fn floor_ticks(floor_usd: Decimal, tick_usd: Decimal) -> u32 {
    (floor_usd / tick_usd).ceil().to_u32().unwrap_or(u32::MAX)
}

impl LimitPrice {
    /// The price in whole ticks of `tick`, or `None` for a USD price that
    /// is not a whole number of them.
    pub fn ticks(self, tick: Decimal) -> Option<i64> {
        match self {
            LimitPrice::Usd(usd) => to_ticks(usd, tick),
            LimitPrice::Ticks(ticks) => Some(ticks),
        }
    }
}

/// `price` in whole ticks of `tick`, or `None` if it is not a whole number
/// of them; exact integer arithmetic on the decimals' mantissas (cheaper
/// than a decimal division).
fn to_ticks(price: Decimal, tick: Decimal) -> Option<i64> {
    let scale = price.scale().max(tick.scale());
    let p = price
        .mantissa()
        .checked_mul(10i128.checked_pow(scale - price.scale())?)?;
    let t = tick
        .mantissa()
        .checked_mul(10i128.checked_pow(scale - tick.scale())?)?;
    let (p, t) = (i64::try_from(p).ok()?, i64::try_from(t).ok()?);
    if t <= 0 || p % t != 0 {
        return None;
    }
    Some(p / t)
}
