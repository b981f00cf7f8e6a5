//! The compliance pre-router: buyer profile + instrument + order → accept
//! (with the routing decision), reject (with a reason code) or hold for an
//! attestation. The eleven checks of COMPLIANCE.md, in order; the first
//! failure decides. Pure: no I/O, no clock.

use std::collections::HashMap;
use std::sync::Arc;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use tonnex_protocol::{OrderKind, Pathway, RejectReason, Side};

use self::allocation::{
    check_allocation, coverage_hundredths, coverage_pct_decimal, slot_limits, slots_of,
};
pub use self::decision::{
    Allocation, Decision, LimitPrice, OrderRequest, Outcome, RawScopeLine, ScopeLine,
};
use self::instrument::{route, Check, RoutedInstrument};
use super::profiles::BuyerProfile;
use super::rules::predicate::{self, Subject};
use super::rules::{CcpLabels, Date, FloorMode, FloorPolicy, Route, Rules};
use crate::config::{AccountStatus, InstrumentConfig, Role, VenueConfig};

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
        let Some(routed) = self.instruments.get(&*order.instrument) else {
            decision.reject(RejectReason::UnknownInstrument);
            return;
        };
        let instrument = &routed.config;
        decision.instrument = Some(routed.index);
        decision.sub_ledger = Some(routed.sub_ledger);
        // 4: a well-formed order.
        let market = order.kind == OrderKind::Market;
        if order.qty <= 0 {
            decision.reject(RejectReason::InvalidOrder);
            return;
        }
        match (market, order.price) {
            (true, Some(_)) | (false, None) => {
                decision.reject(RejectReason::InvalidOrder);
                return;
            }
            (true, None) => {}
            (false, Some(price)) => match price.ticks(instrument.tick_usd) {
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

mod allocation;
mod decision;
mod instrument;
mod runtime;

#[cfg(test)]
mod tests;
