//! The compliance pre-router: buyer profile + instrument + order → accept
//! (with the routing decision), reject (with a reason code) or hold for an
//! attestation. The eleven checks of COMPLIANCE.md, in order; the first
//! failure decides. Pure: no I/O, no clock.

use std::collections::HashMap;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use tonnex_protocol::{OrderKind, Pathway, RejectReason, Side};

use super::profiles::BuyerProfile;
use super::rules::{FloorPolicy, Rules};
use crate::config::{AccountConfig, AccountStatus, InstrumentConfig, Role, VenueConfig};

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

impl ScopeLine {
    /// Index into a per-scope tally: 0 scope 1, 1 scope 2, 2-16 scope 3 categories 1-15.
    fn slot(self) -> usize {
        match self.scope {
            1 => 0,
            2 => 1,
            _ => 1 + usize::from(self.category),
        }
    }
}

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
    pub sub_ledger: Option<String>,
    /// The pathway's floor in USD, once known ("0" for pathway none).
    pub floor_usd: Option<Decimal>,
    /// The floor in the instrument's ticks, rounded up (0: none).
    pub floor_ticks: u32,
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
    pub allocation: Vec<ScopeLine>,
}

impl Decision {
    fn new() -> Decision {
        Decision {
            outcome: Outcome::Reject,
            reason: None,
            pathway: None,
            sub_ledger: None,
            floor_usd: None,
            floor_ticks: 0,
            attestation: None,
            coverage_pct: None,
            tier_threshold_met: None,
            instrument: None,
            price_ticks: None,
            allocation: Vec::new(),
        }
    }

    fn reject(mut self, reason: RejectReason) -> Decision {
        self.outcome = Outcome::Reject;
        self.reason = Some(reason);
        self
    }
}

/// Tonnes a buyer has claimed, per scope slot (see `ScopeLine::slot`).
#[derive(Clone, Copy, Debug, Default)]
struct Claims {
    by_slot: [u64; 17],
    total: u64,
}

/// The pre-router and its state: the tonnes each buyer has claimed.
#[derive(Clone, Debug)]
pub struct Router {
    rules: Rules,
    accounts: HashMap<u64, AccountConfig>,
    instruments: HashMap<String, (usize, InstrumentConfig)>,
    profiles: HashMap<u64, BuyerProfile>,
    claims: HashMap<u64, Claims>,
}

impl Router {
    /// A router over the venue's accounts and instruments, the rules and the profiles.
    #[must_use]
    pub fn new(venue: &VenueConfig, rules: Rules, profiles: HashMap<u64, BuyerProfile>) -> Router {
        Router {
            rules,
            accounts: venue.accounts.iter().map(|a| (a.id, a.clone())).collect(),
            instruments: venue
                .instruments
                .iter()
                .enumerate()
                .map(|(i, inst)| (inst.symbol.clone(), (i, inst.clone())))
                .collect(),
            profiles,
            claims: HashMap::new(),
        }
    }

    /// Appends an attestation to the buyer's profile (attestations are
    /// considered in the order they arrived). False if the account has no profile.
    pub fn add_attestation(
        &mut self,
        account: u64,
        attestation: super::profiles::Attestation,
    ) -> bool {
        match self.profiles.get_mut(&account) {
            Some(profile) => {
                profile.attestations.push(attestation);
                true
            }
            None => false,
        }
    }

    /// Tonnes `account` has claimed against its inventory, all scopes.
    #[must_use]
    pub fn claimed_tonnes(&self, account: u64) -> u64 {
        self.claims.get(&account).map_or(0, |c| c.total)
    }

    /// Runs the eleven checks. An accepted buyer buy's allocation counts as
    /// claimed from now on (until [`Router::release`]).
    pub fn decide(&mut self, order: &OrderRequest) -> Decision {
        let decision = Decision::new();
        // 1-3: who and what.
        let Some(account) = self.accounts.get(&order.account) else {
            return decision.reject(RejectReason::UnknownAccount);
        };
        if account.status != AccountStatus::Active {
            return decision.reject(RejectReason::AccountNotActive);
        }
        let Some((index, instrument)) = self.instruments.get(&order.instrument) else {
            return decision.reject(RejectReason::UnknownInstrument);
        };
        let mut decision = decision;
        decision.instrument = Some(*index);
        decision.sub_ledger = Some(instrument.sub_ledger.clone());
        // 4: a well-formed order.
        let market = order.kind == OrderKind::Market;
        if order.qty <= 0 {
            return decision.reject(RejectReason::InvalidOrder);
        }
        match (market, order.price_usd) {
            (true, Some(_)) | (false, None) => return decision.reject(RejectReason::InvalidOrder),
            (true, None) => {}
            (false, Some(price)) => {
                let whole_ticks = (price % instrument.tick_usd).is_zero();
                if !whole_ticks
                    || price < instrument.min_price_usd
                    || price > instrument.max_price_usd
                {
                    return decision.reject(RejectReason::InvalidOrder);
                }
                match (price / instrument.tick_usd).to_i64() {
                    Some(ticks) => decision.price_ticks = Some(ticks),
                    None => return decision.reject(RejectReason::InvalidOrder),
                }
            }
        }
        if order.side == Side::Sell || account.role != Role::Buyer {
            decision.outcome = Outcome::Accept;
            decision.pathway = Some(Pathway::None);
            decision.floor_usd = Some(Decimal::ZERO);
            return decision;
        }
        // 5-7: the buyer's pathway admits this purchase.
        let Some(profile) = self.profiles.get(&order.account) else {
            return decision.reject(RejectReason::NoProfile);
        };
        let rule = self.rules.pathway(profile.pathway);
        decision.pathway = Some(profile.pathway);
        decision.floor_usd = Some(rule.floor_usd);
        decision.floor_ticks = floor_ticks(rule.floor_usd, instrument.tick_usd);
        if !rule.sub_ledgers.contains(&instrument.sub_ledger) {
            return decision.reject(RejectReason::SubledgerNotEligible);
        }
        if profile.internal_carbon_price_usd < rule.floor_usd {
            return decision.reject(RejectReason::InternalPriceBelowFloor);
        }
        // 8: a scope allocation that accounts for the order exactly.
        let Some(allocation) = check_allocation(order) else {
            return decision.reject(RejectReason::ScopeMissing);
        };
        // 9: within the inventory, counting what is already claimed.
        let claims = self.claims.get(&order.account).copied().unwrap_or_default();
        let mut wanted = [0u64; 17];
        for line in &allocation {
            wanted[line.slot()] += line.qty;
        }
        for (slot, &tonnes) in wanted.iter().enumerate() {
            if tonnes == 0 {
                continue;
            }
            let inventory = match slot {
                0 => profile.inventory.scope1,
                1 => profile.inventory.scope2,
                category => profile.inventory.scope3[category - 1],
            };
            if Decimal::from(claims.by_slot[slot]) + Decimal::from(tonnes) > inventory {
                return decision.reject(RejectReason::ScopeExceedsInventory);
            }
        }
        decision.allocation = allocation;
        // 10: the price floor, where the pathway has one.
        let below_floor = market || order.price_usd.is_some_and(|p| p < rule.floor_usd);
        if rule.floor_usd > Decimal::ZERO && below_floor {
            let valid = profile.attestations.iter().find(|a| {
                a.internal_price_usd >= rule.floor_usd && a.reporting_year == profile.reporting_year
            });
            match (valid, self.rules.floor_policy) {
                (Some(attestation), _) => decision.attestation = Some(attestation.id.clone()),
                (None, FloorPolicy::Reject) => {
                    return decision.reject(RejectReason::PriceBelowFloor)
                }
                (None, FloorPolicy::Attest) => {
                    decision.outcome = Outcome::Hold;
                    decision.reason = Some(RejectReason::AttestationRequired);
                    return decision;
                }
            }
        }
        // 11: accept; the allocation is now claimed.
        let claims = self.claims.entry(order.account).or_default();
        for (slot, &tonnes) in wanted.iter().enumerate() {
            claims.by_slot[slot] += tonnes;
        }
        claims.total += order.qty as u64;
        let mut coverage = (Decimal::ONE_HUNDRED * Decimal::from(claims.total)
            / profile.ongoing_emissions_tonnes)
            .round_dp_with_strategy(2, RoundingStrategy::ToZero);
        coverage.rescale(2);
        decision.coverage_pct = Some(coverage);
        decision.tier_threshold_met = Some(coverage >= rule.coverage_threshold_pct);
        decision.outcome = Outcome::Accept;
        decision
    }

    /// Stops counting `unfilled` tonnes of an accepted order's allocation as
    /// claimed (it was cancelled or expired unfilled). Fills consume an
    /// allocation's lines in order, so the unfilled part is released from
    /// the last lines first.
    pub fn release(&mut self, account: u64, allocation: &[ScopeLine], unfilled: u64) {
        let Some(claims) = self.claims.get_mut(&account) else {
            return;
        };
        let mut left = unfilled;
        for line in allocation.iter().rev() {
            let take = left.min(line.qty);
            let slot = &mut claims.by_slot[line.slot()];
            *slot = slot.saturating_sub(take);
            claims.total = claims.total.saturating_sub(take);
            left -= take;
            if left == 0 {
                break;
            }
        }
    }
}

/// The floor in ticks, rounded up: a price in whole ticks is at or above the
/// floor exactly when it is at or above this.
fn floor_ticks(floor_usd: Decimal, tick_usd: Decimal) -> u32 {
    (floor_usd / tick_usd).ceil().to_u32().unwrap_or(u32::MAX)
}

/// Step 8: the allocation's lines, or `None` if it is missing or inconsistent.
fn check_allocation(order: &OrderRequest) -> Option<Vec<ScopeLine>> {
    let raw = order.scope.as_ref()?;
    if raw.is_empty() {
        return None;
    }
    let mut lines = Vec::with_capacity(raw.len());
    let mut sum: i64 = 0;
    for line in raw {
        if line.malformed {
            return None;
        }
        let qty = line.qty?;
        if qty <= 0 {
            return None;
        }
        let category = match (line.scope?, line.category_given, line.category) {
            (1 | 2, false, _) => 0,
            (3, true, Some(c)) if (1..=15).contains(&c) => c as u8,
            _ => return None,
        };
        lines.push(ScopeLine {
            scope: line.scope? as u8,
            category,
            qty: qty as u64,
        });
        sum = sum.checked_add(qty)?;
    }
    (sum == order.qty).then_some(lines)
}
