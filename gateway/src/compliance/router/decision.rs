//! What the pre-router takes in (an order as the client sent it) and what
//! it gives out (the decision it carries into the engine and the journal).

use std::sync::Arc;

use rust_decimal::Decimal;
use tonnex_protocol::{Name, OrderKind, Pathway, RejectReason, Side};

use super::super::rules::Route;

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

/// A limit order's price, as its source gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitPrice {
    /// USD per tonne (an order read from a file): the router finds its
    /// whole ticks, and refuses a price between two ticks.
    Usd(Decimal),
    /// Whole ticks of the instrument (an order off the wire, priced in
    /// ticks already: no decimal round trip on the venue's hot path).
    Ticks(i64),
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
    /// Instrument symbol (the venue's own, interned; or one read from a
    /// file).
    pub instrument: Name,
    /// Order type.
    pub kind: OrderKind,
    /// Limit price; `None` for a market order.
    pub price: Option<LimitPrice>,
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
    pub sub_ledger: Option<&'static str>,
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
    pub(super) fn reject(&mut self, reason: RejectReason) {
        self.outcome = Outcome::Reject;
        self.reason = Some(reason);
    }
}
