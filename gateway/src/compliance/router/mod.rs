//! The compliance pre-router: buyer profile + instrument + order → accept
//! (with the routing decision), reject (with a reason code) or hold for an
//! attestation. The eleven checks of COMPLIANCE.md, in order; the first
//! failure decides. Pure: no I/O, no clock.

use std::collections::HashMap;
use std::sync::Arc;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use tonnex_protocol::{OrderKind, Pathway, RejectReason, Side};

use self::instrument::{route, to_ticks, Check, RoutedInstrument};
use super::profiles::BuyerProfile;
use super::rules::predicate::{self, Subject};
use super::rules::{CcpLabels, Date, FloorMode, FloorPolicy, Route, Rules};
use crate::config::{AccountStatus, InstrumentConfig, Role, VenueConfig};

/// One line of a scope allocation as the client sent it; checked in step 8.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawScopeLine {
    /// `scope`, if an integer was given.
    pub scope: Option<i64>,
    /// `category`, if an integer was given.
    pub category: Option<i64>,
    /// Whether a `category` field was present at all (not null).
    pub category_given: bool,
    /// `qty`, if an integer was given.
    pub qty: Option<i64>,
    /// Some field had the wrong type.
    pub malformed: bool,
}

/// A checked scope allocation line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScopeLine {
    /// 1, 2 or 3.
    pub scope: u8,
    /// Scope 3 category 1-15; 0 for scopes 1 and 2.
    pub category: u8,
    /// Tonnes allocated.
    pub qty: u64,
}

/// A checked scope allocation: tonnes per scope slot (0 scope 1, 1 scope 2,
/// 2-16 scope 3 categories 1-15); lines of the same scope and category are
/// summed. The engine's type, so that the router's claims and the journal's
/// bookkeeping take filled and freed tonnes off the same way.
pub use tonnex_engine::venue::Allocation;

/// An order as the pre-router sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderRequest {
    /// Client's order id.
    pub id: u64,
    /// Account.
    pub account: u64,
    /// Buy or sell.
    pub side: Side,
    /// Instrument symbol.
    pub instrument: String,
    /// Order type.
    pub kind: OrderKind,
    /// Limit price in USD per tonne; `None` for a market order.
    pub price_usd: Option<Decimal>,
    /// Tonnes.
    pub qty: i64,
    /// The scope allocation (buyers' buys), as sent.
    pub scope: Option<Vec<RawScopeLine>>,
}

/// What the pre-router decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Send to the engine.
    Accept,
    /// Refuse, with a reason.
    Reject,
    /// Keep until the buyer submits an attestation (`ATTESTATION_REQUIRED`).
    Hold,
}

/// The decision and everything it carries into the engine and the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Accept, reject or hold.
    pub outcome: Outcome,
    /// Why not accepted.
    pub reason: Option<RejectReason>,
    /// The OER pathway (`None` for orders that stop at step 4), once known.
    pub pathway: Option<Pathway>,
    /// The instrument's sub-ledger, once known.
    pub sub_ledger: Option<Arc<str>>,
    /// The pathway's floor in USD, once known ("0" for pathway none and
    /// for a buyer on the credit route, where no price applies).
    pub floor_usd: Option<Decimal>,
    /// How the buyer reaches its pathway here (`Pricing` or `Credit`), once known.
    pub route: Option<Route>,
    /// The rules predicate a refusal failed (its name in the rules file).
    pub predicate: Option<Arc<str>>,
    /// The floor in the instrument's ticks, rounded up (0: none).
    pub floor_ticks: u32,
    /// The engine skips asks below the floor for this buy (rather than
    /// refusing it whole when it would take one).
    pub skip_below_floor: bool,
    /// The attestation backing a purchase below the floor.
    pub attestation: Option<String>,
    /// Claimed tonnes ÷ ongoing emissions, %, truncated to 2 decimals (accepted buyer buys).
    pub coverage_pct: Option<Decimal>,
    /// coverage_pct ≥ the pathway's threshold (accepted buyer buys).
    pub tier_threshold_met: Option<bool>,
    /// The instrument's index in the venue file.
    pub instrument: Option<usize>,
    /// The limit price in ticks (None for market orders or before step 4).
    pub price_ticks: Option<i64>,
    /// The checked scope allocation (accepted and held buyer buys).
    pub allocation: Allocation,
}

impl Default for Decision {
    /// A rejection without a reason yet, nothing decided.
    fn default() -> Decision {
        Decision {
            outcome: Outcome::Reject,
            reason: None,
            pathway: None,
            sub_ledger: None,
            floor_usd: None,
            route: None,
            predicate: None,
            floor_ticks: 0,
            skip_below_floor: false,
            attestation: None,
            coverage_pct: None,
            tier_threshold_met: None,
            instrument: None,
            price_ticks: None,
            allocation: Allocation::default(),
        }
    }
}

impl Decision {
    fn reject(&mut self, reason: RejectReason) {
        self.outcome = Outcome::Reject;
        self.reason = Some(reason);
    }
}

/// The pre-router and its state: the tonnes each buyer has claimed.
#[derive(Clone, Debug)]
pub struct Router {
    rules: Rules,
    /// The CCP label register the `ccp_label` predicate reads.
    labels: CcpLabels,
    /// The day decisions are made on (predicates' `from`/`until`, labels).
    date: Date,
    /// Each predicate's name, shared into decisions.
    predicate_names: Vec<Arc<str>>,
    /// Account → what steps 1-4 need and where its buyer record is: one
    /// small entry, so 10,000s of accounts stay in cache and a buyer costs
    /// one hash probe.
    accounts: IdMap<AccountEntry>,
    /// Each pathway's coverage threshold (copied out of the rules for the hot path).
    thresholds: [Decimal; 3],
    /// The same thresholds in hundredths of a percent, rounded up: a coverage
    /// of `h` hundredths meets a threshold exactly when `h` is at least this.
    threshold_hundredths: [i64; 3],
    /// Whether each pathway has a floor above zero (step 10 applies).
    floor_positive: [bool; 3],
    /// Symbol → the instrument as the router needs it.
    instruments: HashMap<
        String,
        RoutedInstrument,
        std::hash::BuildHasherDefault<tonnex_engine::accounts::IntHasher>,
    >,
    /// Buyers' hot records, indexed by [`AccountEntry::buyer`].
    buyers: Vec<Buyer>,
    /// Full profiles (attestations, names), read only below the floor; same index.
    profiles: Vec<BuyerProfile>,
}

/// An account as the router keeps it.
#[derive(Clone, Copy, Debug)]
struct AccountEntry {
    role: Role,
    status: AccountStatus,
    /// Index of its buyer record and profile; [`NO_PROFILE`] if it has none.
    buyer: u32,
}

const NO_PROFILE: u32 = u32::MAX;

/// A `HashMap` keyed by account id with a fast, fixed hasher (lookups only).
type IdMap<V> = HashMap<u64, V, std::hash::BuildHasherDefault<tonnex_engine::accounts::IntHasher>>;

/// What every buyer decision reads: the pathway, whether the declared
/// internal price meets it, ongoing emissions, tonnes claimed in all, and
/// per scope slot the inventory in whole tonnes (claims are whole tonnes,
/// so `claims + order <= inventory` exactly when it is `<=` the
/// inventory's floor) beside what is claimed of it: a decision touches the
/// first cache line and the lines of the slots its order allocates, never
/// the other slots. The full profile sits apart in `Router::profiles`.
/// Laid out in this order and cache-line aligned: the header and scopes 1
/// and 2 share the first line.
#[derive(Clone, Debug)]
#[repr(C, align(64))]
struct Buyer {
    pathway: Pathway,
    /// The declared internal price meets what the pathway's route needs.
    internal_price_ok: bool,
    /// The buyer reaches its pathway by pricing (the floor applies).
    pricing: bool,
    ongoing_emissions_tonnes: Decimal,
    claimed_total: u64,
    slots: [Slot; 17],
}

/// One scope slot of a buyer: inventory and claimed tonnes.
#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    limit: u64,
    claimed: u64,
}

fn pathway_index(pathway: Pathway) -> usize {
    match pathway {
        Pathway::Engaged => 0,
        Pathway::Recognised => 1,
        Pathway::Leadership | Pathway::None => 2,
    }
}

fn whole_tonnes(tonnes: Decimal) -> u64 {
    tonnes.floor().to_u64().unwrap_or(u64::MAX)
}

/// Each slot's inventory in whole tonnes: scope 1, scope 2, then Scope 3
/// categories 1-15.
fn slot_limits(inventory: &super::profiles::Inventory) -> [u64; 17] {
    let mut limits = [0u64; 17];
    limits[0] = whole_tonnes(inventory.scope1);
    limits[1] = whole_tonnes(inventory.scope2);
    for category in 1..=15 {
        limits[1 + category] = whole_tonnes(inventory.scope3[category]);
    }
    limits
}

impl Router {
    /// A router over the venue's accounts and instruments, the rules and the profiles.
    #[must_use]
    pub fn new(venue: &VenueConfig, rules: Rules, profiles: HashMap<u64, BuyerProfile>) -> Router {
        let labels = CcpLabels::default();
        let date = rules.effective_from.unwrap_or(Date::MIN);
        let instruments = venue
            .instruments
            .iter()
            .enumerate()
            .map(|(index, inst)| {
                (
                    inst.symbol.clone(),
                    route(&rules, index, inst, date, &labels),
                )
            })
            .collect();
        let mut accounts_with_profiles: Vec<(u64, BuyerProfile)> = profiles.into_iter().collect();
        accounts_with_profiles.sort_by_key(|(account, _)| *account);
        let mut accounts: IdMap<AccountEntry> = venue
            .accounts
            .iter()
            .map(|a| {
                let entry = AccountEntry {
                    role: a.role,
                    status: a.status,
                    buyer: NO_PROFILE,
                };
                (a.id, entry)
            })
            .collect();
        let mut buyers = Vec::with_capacity(accounts_with_profiles.len());
        let mut profile_list = Vec::with_capacity(accounts_with_profiles.len());
        for (account, profile) in accounts_with_profiles {
            // A profile of an account the venue does not list can never be
            // reached (step 1 rejects first); the loaders refuse one anyway.
            let Some(entry) = accounts.get_mut(&account) else {
                continue;
            };
            let slots = slot_limits(&profile.inventory).map(|limit| Slot { limit, claimed: 0 });
            entry.buyer = u32::try_from(buyers.len()).expect("fewer than 4 billion buyers");
            let (internal_price_ok, pricing) = price_route(&rules, &profile);
            buyers.push(Buyer {
                pathway: profile.pathway,
                internal_price_ok,
                pricing,
                ongoing_emissions_tonnes: profile.ongoing_emissions_tonnes,
                claimed_total: 0,
                slots,
            });
            profile_list.push(profile);
        }
        let thresholds = [0, 1, 2].map(|p| rules.pathways[p].coverage_threshold_pct);
        Router {
            labels,
            date,
            predicate_names: names_of(&rules),
            thresholds,
            threshold_hundredths: thresholds.map(|t| {
                (t * Decimal::ONE_HUNDRED)
                    .ceil()
                    .to_i64()
                    .unwrap_or(i64::MAX)
            }),
            floor_positive: [0, 1, 2].map(|p| rules.pathways[p].floor_usd > Decimal::ZERO),
            rules,
            accounts,
            instruments,
            buyers,
            profiles: profile_list,
        }
    }

    fn buyer_index(&self, account: u64) -> Option<usize> {
        self.accounts
            .get(&account)
            .filter(|a| a.buyer != NO_PROFILE)
            .map(|a| a.buyer as usize)
    }

    /// The buyer profile of `account`, if it has one.
    #[must_use]
    pub fn profile(&self, account: u64) -> Option<&super::profiles::BuyerProfile> {
        self.buyer_index(account).map(|i| &self.profiles[i])
    }

    /// Runs the eleven checks. An accepted buyer buy's allocation counts as
    /// claimed from now on (until [`Router::release`]).
    pub fn decide(&mut self, order: &OrderRequest) -> Decision {
        let mut decision = Decision::default();
        self.decide_into(order, &mut decision);
        decision
    }

    /// [`Router::decide`] writing into `decision` (whatever it held is
    /// replaced): every early exit is a write in place, so the 256-byte
    /// decision is never copied on the way out.
    #[inline]
    pub fn decide_into(&mut self, order: &OrderRequest, decision: &mut Decision) {
        *decision = Decision::default();
        // 1-3: who and what.
        let Some(&AccountEntry {
            role,
            status,
            buyer: buyer_index,
        }) = self.accounts.get(&order.account)
        else {
            decision.reject(RejectReason::UnknownAccount);
            return;
        };
        if status != AccountStatus::Active {
            decision.reject(RejectReason::AccountNotActive);
            return;
        }
        let Some(routed) = self.instruments.get(&order.instrument) else {
            decision.reject(RejectReason::UnknownInstrument);
            return;
        };
        let instrument = &routed.config;
        decision.instrument = Some(routed.index);
        decision.sub_ledger = Some(Arc::clone(&routed.sub_ledger));
        // 4: a well-formed order.
        let market = order.kind == OrderKind::Market;
        if order.qty <= 0 {
            decision.reject(RejectReason::InvalidOrder);
            return;
        }
        match (market, order.price_usd) {
            (true, Some(_)) | (false, None) => {
                decision.reject(RejectReason::InvalidOrder);
                return;
            }
            (true, None) => {}
            (false, Some(price)) => match to_ticks(price, instrument.tick_usd) {
                Some(ticks) if ticks >= routed.band_ticks.0 && ticks <= routed.band_ticks.1 => {
                    decision.price_ticks = Some(ticks);
                }
                _ => {
                    decision.reject(RejectReason::InvalidOrder);
                    return;
                }
            },
        }
        if order.side == Side::Sell || role != Role::Buyer {
            decision.outcome = Outcome::Accept;
            decision.pathway = Some(Pathway::None);
            decision.floor_usd = Some(Decimal::ZERO);
            return;
        }
        // 5-7: the buyer's pathway admits this purchase.
        if buyer_index == NO_PROFILE {
            decision.reject(RejectReason::NoProfile);
            return;
        }
        let buyer = &mut self.buyers[buyer_index as usize];
        let rule = self.rules.pathway(buyer.pathway);
        let pathway = pathway_index(buyer.pathway);
        let pricing = buyer.pricing || !buyer.internal_price_ok;
        decision.pathway = Some(buyer.pathway);
        decision.route = Some(if pricing {
            Route::Pricing
        } else {
            Route::Credit
        });
        decision.floor_usd = Some(if pricing {
            rule.floor_usd
        } else {
            Decimal::ZERO
        });
        // The engine enforces a floor per trade only (budget mode spends
        // a budget instead; the credit route has no price).
        let per_trade = pricing && self.rules.floor_mode == FloorMode::PerTrade;
        decision.floor_ticks = if per_trade {
            routed.floor_ticks[pathway]
        } else {
            0
        };
        decision.skip_below_floor = per_trade && self.rules.skip_below_floor;
        if !routed.eligible[pathway] {
            decision.reject(RejectReason::SubledgerNotEligible);
            return;
        }
        if !buyer.internal_price_ok {
            decision.reject(RejectReason::InternalPriceBelowFloor);
            return;
        }
        // 7b: the pathway's required predicates, in the rules file's order.
        if let Some(failed) = first_failing(
            &routed.checks[pathway],
            &self.rules,
            &self.profiles[buyer_index as usize],
            &routed.config,
            self.date,
            &self.labels,
        ) {
            decision.predicate = Some(Arc::clone(&self.predicate_names[failed]));
            decision.reject(predicate::reason(&self.rules.predicates, failed));
            return;
        }
        // 8: a scope allocation that accounts for the order exactly.
        // (Checked in place: the decision is returned by value, and one
        // copy of its 136-byte allocation less is measurable here.)
        let Some(used) = check_allocation(order, &mut decision.allocation) else {
            decision.allocation = Allocation::default();
            decision.reject(RejectReason::ScopeMissing);
            return;
        };
        // 9: within the inventory, counting what is already claimed: only
        // the slots the order allocates (`used`, one bit each) are read.
        let wanted = &decision.allocation.0;
        let mut exceeds = false;
        for slot in slots_of(used) {
            let Slot { limit, claimed } = buyer.slots[slot];
            exceeds |= claimed.saturating_add(wanted[slot]) > limit;
        }
        if exceeds {
            decision.allocation = Allocation::default();
            decision.reject(RejectReason::ScopeExceedsInventory);
            return;
        }
        // 10: the price floor, where the pathway has one.
        // Prices are whole ticks, so "below the floor" is "below its ticks, rounded up".
        let below_floor = market
            || decision
                .price_ticks
                .is_some_and(|t| t < i64::from(decision.floor_ticks));
        // Budget mode: nothing is refused or held on price; an attestation
        // valid for the year is named, covering the year's gap between
        // budget and spend (docs/compliance.md, "Floor modes").
        let budget = pricing && !per_trade;
        if (per_trade && below_floor || budget) && self.floor_positive[pathway] {
            let profile = &self.profiles[buyer_index as usize];
            let valid = profile.attestations.iter().find(|a| {
                a.internal_price_usd >= rule.floor_usd && a.reporting_year == profile.reporting_year
            });
            match (valid, self.rules.floor_policy) {
                (None, _) if budget => {}
                (Some(attestation), _) => decision.attestation = Some(attestation.id.clone()),
                (None, FloorPolicy::Reject) => {
                    decision.reject(RejectReason::PriceBelowFloor);
                    return;
                }
                (None, FloorPolicy::Attest) => {
                    decision.outcome = Outcome::Hold;
                    decision.reason = Some(RejectReason::AttestationRequired);
                    return;
                }
            }
        }
        // 11: accept; the allocation is now claimed.
        for slot in slots_of(used) {
            buyer.slots[slot].claimed += decision.allocation.0[slot];
        }
        buyer.claimed_total += order.qty as u64;
        let (coverage, met) =
            match coverage_hundredths(buyer.claimed_total, buyer.ongoing_emissions_tonnes) {
                Some(h) => (Decimal::new(h, 2), h >= self.threshold_hundredths[pathway]),
                None => {
                    let pct =
                        coverage_pct_decimal(buyer.claimed_total, buyer.ongoing_emissions_tonnes);
                    (pct, pct >= self.thresholds[pathway])
                }
            };
        decision.coverage_pct = Some(coverage);
        decision.tier_threshold_met = Some(met);
        decision.outcome = Outcome::Accept;
    }

    /// A pathway's coverage threshold in hundredths of a percent (rounded up).
    #[must_use]
    pub fn threshold_hundredths(&self, pathway: Pathway) -> i64 {
        self.threshold_hundredths[pathway_index(pathway)]
    }
}

/// 100 × `claimed` ÷ `ongoing` in hundredths of a percent, truncated,
/// computed exactly in integers: with `ongoing` = m × 10^-s, it is
/// ⌊10⁴ · claimed · 10^s ÷ m⌋. `None` when out of integer range.
fn coverage_hundredths(claimed: u64, ongoing: Decimal) -> Option<i64> {
    let (m, s) = (ongoing.mantissa(), ongoing.scale());
    10i64
        .checked_pow(s)
        .and_then(|p| {
            i64::try_from(claimed)
                .ok()?
                .checked_mul(10_000)?
                .checked_mul(p)
        })
        .zip(i64::try_from(m).ok().filter(|&m| m > 0))
        .map(|(n, m)| n / m)
}

/// The coverage in percent, truncated to 2 decimals, by decimal division
/// (where [`coverage_hundredths`] is out of range: the same digits).
fn coverage_pct_decimal(claimed: u64, ongoing: Decimal) -> Decimal {
    let mut pct = (Decimal::ONE_HUNDRED * Decimal::from(claimed) / ongoing)
        .round_dp_with_strategy(2, RoundingStrategy::ToZero);
    pct.rescale(2);
    pct
}

/// The slot indexes whose bits are set in `used`, lowest first.
fn slots_of(mut used: u32) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (used != 0).then(|| {
            let slot = used.trailing_zeros() as usize;
            used &= used - 1;
            slot
        })
    })
}

/// Whether a buyer's declared internal price meets what its pathway's
/// route needs, and whether it reaches the pathway by pricing.
fn price_route(rules: &Rules, profile: &BuyerProfile) -> (bool, bool) {
    let rule = rules.pathway(profile.pathway);
    let meets = profile.internal_carbon_price_usd >= rule.internal_price_usd;
    match rule.route {
        Route::Pricing => (meets, true),
        Route::Credit => (true, false),
        Route::Either => (true, meets),
    }
}

/// Each predicate's name, to share into decisions.
fn names_of(rules: &Rules) -> Vec<Arc<str>> {
    rules
        .predicates
        .iter()
        .map(|p| Arc::from(p.name.as_str()))
        .collect()
}

/// The first of an instrument's remaining checks that fails for this buyer.
fn first_failing(
    checks: &[Check],
    rules: &Rules,
    profile: &BuyerProfile,
    instrument: &InstrumentConfig,
    date: Date,
    labels: &CcpLabels,
) -> Option<usize> {
    checks.iter().find_map(|&check| match check {
        Check::Fail(index) => Some(index),
        Check::Buyer(index) => {
            let subject = Subject {
                instrument,
                declared_price_usd: profile.internal_carbon_price_usd,
                reporting_year: profile.reporting_year,
                company_category: &profile.category,
                date,
                labels,
            };
            (!predicate::holds(&rules.predicates, index, &subject)).then_some(index)
        }
    })
}

/// Step 8: fills `allocation` (empty on entry) and returns the slots it uses
/// (bit `i` for slot `i`), or `None` if the allocation is missing or
/// inconsistent (`allocation` then holds a part of it).
fn check_allocation(order: &OrderRequest, allocation: &mut Allocation) -> Option<u32> {
    let raw = order.scope.as_ref()?;
    if raw.is_empty() {
        return None;
    }
    let mut used = 0u32;
    let mut sum: i64 = 0;
    for line in raw {
        if line.malformed {
            return None;
        }
        let qty = line.qty?;
        if qty <= 0 {
            return None;
        }
        let slot = match (line.scope?, line.category_given, line.category) {
            (1, false, _) => 0,
            (2, false, _) => 1,
            (3, true, Some(c)) if (1..=15).contains(&c) => 1 + c as usize,
            _ => return None,
        };
        allocation.0[slot] += qty as u64;
        used |= 1 << slot;
        sum = sum.checked_add(qty)?;
    }
    (sum == order.qty).then_some(used)
}

mod instrument;
mod runtime;

#[cfg(test)]
mod tests;
