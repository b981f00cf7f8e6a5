//! Reason codes: why an order was rejected or why a resting order left the
//! book without trading. Rejections are data, not errors: every code has a
//! precise name, a stable `u8` value on the wire and a stable text name.

use bincode::{Decode, Encode};
use std::fmt;

/// Why a command was rejected. Nothing of a rejected command takes effect.
///
/// Values 1..=31 come from the engine, 64.. from the gateway's compliance
/// pre-router (`COMPLIANCE.md`). The numbers are part of the wire protocol:
/// never renumber, only append.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub enum RejectReason {
    /// The instrument id is not known to the engine.
    UnknownInstrument = 1,
    /// The instrument is halted: no new orders or replaces.
    InstrumentHalted = 2,
    /// An order with this id is already live, or was seen before.
    DuplicateOrderId = 3,
    /// Quantity zero.
    InvalidQuantity = 4,
    /// A limit price outside the instrument's band (both ends allowed).
    PriceOutsideBand = 5,
    /// Cancel or replace of an order that is not live.
    UnknownOrderId = 6,
    /// Cancel or replace by an account that does not own the order.
    NotOrderOwner = 7,
    /// A post-only order (or its replace) would cross the opposite side.
    PostOnlyWouldCross = 8,
    /// The buyer's free cash does not cover the order's hold.
    InsufficientFunds = 9,
    /// The seller's free credits of this instrument do not cover the order.
    InsufficientCredits = 10,
    /// An unattested buy with a floor would trade (or rest) below its floor.
    FloorNotMet = 11,
    /// A market buy with account holds on and no cash budget.
    MissingCashBudget = 12,
    /// An instrument with this id already exists, or its definition is invalid.
    InvalidInstrument = 13,
    /// A deposit or withdrawal of zero, or one that would overflow a balance.
    InvalidAmount = 14,
    /// A market order with a limit price, or a limit order with none.
    InvalidPrice = 15,
    /// A settlement outcome for a trade the engine does not hold pending in
    /// the stage the outcome needs (unknown, already finished, or a
    /// retirement for a trade not settled for retirement).
    TradeNotPending = 16,
    /// The account is not known to the pre-router.
    UnknownAccount = 64,
    /// The account is not `active`.
    AccountNotActive = 65,
    /// Malformed order (quantity, price, ticks, band, type).
    InvalidOrder = 66,
    /// A buyer account without a profile.
    NoProfile = 67,
    /// The instrument's sub-ledger is not open to the buyer's OER pathway.
    SubledgerNotEligible = 68,
    /// The declared internal carbon price is below the pathway floor.
    InternalPriceBelowFloor = 69,
    /// Scope allocation missing or inconsistent with the order.
    ScopeMissing = 70,
    /// The allocation exceeds the buyer's inventory for a scope or category.
    ScopeExceedsInventory = 71,
    /// Below the pathway floor with no attestation and `floor_policy = "reject"`.
    PriceBelowFloor = 72,
    /// Held: an attestation of internal carbon pricing is required.
    AttestationRequired = 73,
    /// A registry lot does not satisfy the instrument's eligibility predicate.
    LotNotEligible = 74,
    /// A submitted attestation was refused: empty or over-long id, an id the
    /// buyer already used, a price that is not a positive whole cent, or a
    /// year other than the profile's reporting year.
    AttestationInvalid = 75,
    /// A registry lot's serials are not one block of exactly `quantity`
    /// serials (a common prefix, a trailing number, end at or after start).
    LotSerialsInvalid = 76,
    /// A registry lot's serial block overlaps a block deposited before.
    LotSerialsOverlap = 77,
    /// A rules-file predicate about the credits (category, nature,
    /// durability, ex-post issuance, vintage, corresponding adjustment,
    /// CORSIA, a current CCP label) is not met by the instrument's class of
    /// credits; the decision names the predicate.
    CreditNotEligible = 78,
    /// A rules-file predicate combining others (`any`, `all`, `not`) over
    /// the buyer and the credits is not met; the decision names it.
    RuleNotMet = 79,
    /// The session sent more messages this second than its throttle allows.
    Throttled = 96,
    /// A client order id not greater than the session's last one: a resent
    /// duplicate, answered and never executed twice.
    DuplicateClientOrderId = 97,
    /// Quantity above the account's `max_order_qty`.
    RiskMaxQty = 98,
    /// Price x quantity above the account's `max_notional_usd`.
    RiskMaxNotional = 99,
    /// Limit price outside the account's collar around the last trade price.
    RiskPriceCollar = 100,
    /// The venue is shutting down and accepts no new orders.
    VenueClosing = 101,
    /// Admin port: no operator of that name.
    UnknownOperator = 110,
    /// Admin port: the request's MAC does not verify under the operator's key
    /// (unsigned, wrong key, or altered).
    BadSignature = 111,
    /// Admin port: the request's timestamp is outside the venue's window.
    StaleRequest = 112,
    /// Admin port: a nonce the operator already used inside the window.
    ReplayedRequest = 113,
    /// Admin port: the operator's role may not use this verb.
    NotPermitted = 114,
    /// Admin port: the request's arguments are not valid (an unknown status,
    /// a non-positive amount).
    InvalidRequest = 115,
    /// Admin port of a cluster follower: only the leader carries out
    /// requests (a follower answers `ClusterStatus` alone).
    NotLeader = 116,
}

impl RejectReason {
    /// The stable text name used in files, logs and JSON (`FLOOR_NOT_MET`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            RejectReason::UnknownInstrument => "UNKNOWN_INSTRUMENT",
            RejectReason::InstrumentHalted => "INSTRUMENT_HALTED",
            RejectReason::DuplicateOrderId => "DUPLICATE_ORDER_ID",
            RejectReason::InvalidQuantity => "INVALID_QUANTITY",
            RejectReason::PriceOutsideBand => "PRICE_OUTSIDE_BAND",
            RejectReason::UnknownOrderId => "UNKNOWN_ORDER_ID",
            RejectReason::NotOrderOwner => "NOT_ORDER_OWNER",
            RejectReason::PostOnlyWouldCross => "POST_ONLY_WOULD_CROSS",
            RejectReason::InsufficientFunds => "INSUFFICIENT_FUNDS",
            RejectReason::InsufficientCredits => "INSUFFICIENT_CREDITS",
            RejectReason::FloorNotMet => "FLOOR_NOT_MET",
            RejectReason::MissingCashBudget => "MISSING_CASH_BUDGET",
            RejectReason::InvalidInstrument => "INVALID_INSTRUMENT",
            RejectReason::InvalidAmount => "INVALID_AMOUNT",
            RejectReason::InvalidPrice => "INVALID_PRICE",
            RejectReason::TradeNotPending => "TRADE_NOT_PENDING",
            RejectReason::UnknownAccount => "UNKNOWN_ACCOUNT",
            RejectReason::AccountNotActive => "ACCOUNT_NOT_ACTIVE",
            RejectReason::InvalidOrder => "INVALID_ORDER",
            RejectReason::NoProfile => "NO_PROFILE",
            RejectReason::SubledgerNotEligible => "SUBLEDGER_NOT_ELIGIBLE",
            RejectReason::InternalPriceBelowFloor => "INTERNAL_PRICE_BELOW_FLOOR",
            RejectReason::ScopeMissing => "SCOPE_MISSING",
            RejectReason::ScopeExceedsInventory => "SCOPE_EXCEEDS_INVENTORY",
            RejectReason::PriceBelowFloor => "PRICE_BELOW_FLOOR",
            RejectReason::AttestationRequired => "ATTESTATION_REQUIRED",
            RejectReason::LotNotEligible => "LOT_NOT_ELIGIBLE",
            RejectReason::AttestationInvalid => "ATTESTATION_INVALID",
            RejectReason::LotSerialsInvalid => "LOT_SERIALS_INVALID",
            RejectReason::LotSerialsOverlap => "LOT_SERIALS_OVERLAP",
            RejectReason::CreditNotEligible => "CREDIT_NOT_ELIGIBLE",
            RejectReason::RuleNotMet => "RULE_NOT_MET",
            RejectReason::Throttled => "THROTTLED",
            RejectReason::DuplicateClientOrderId => "DUPLICATE_CLIENT_ORDER_ID",
            RejectReason::RiskMaxQty => "RISK_MAX_QTY",
            RejectReason::RiskMaxNotional => "RISK_MAX_NOTIONAL",
            RejectReason::RiskPriceCollar => "RISK_PRICE_COLLAR",
            RejectReason::VenueClosing => "VENUE_CLOSING",
            RejectReason::UnknownOperator => "UNKNOWN_OPERATOR",
            RejectReason::BadSignature => "BAD_SIGNATURE",
            RejectReason::StaleRequest => "STALE_REQUEST",
            RejectReason::ReplayedRequest => "REPLAYED_REQUEST",
            RejectReason::NotPermitted => "NOT_PERMITTED",
            RejectReason::InvalidRequest => "INVALID_REQUEST",
            RejectReason::NotLeader => "NOT_LEADER",
        }
    }

    /// Every reason, in code order.
    pub const ALL: [RejectReason; 45] = [
        RejectReason::UnknownInstrument,
        RejectReason::InstrumentHalted,
        RejectReason::DuplicateOrderId,
        RejectReason::InvalidQuantity,
        RejectReason::PriceOutsideBand,
        RejectReason::UnknownOrderId,
        RejectReason::NotOrderOwner,
        RejectReason::PostOnlyWouldCross,
        RejectReason::InsufficientFunds,
        RejectReason::InsufficientCredits,
        RejectReason::FloorNotMet,
        RejectReason::MissingCashBudget,
        RejectReason::InvalidInstrument,
        RejectReason::InvalidAmount,
        RejectReason::InvalidPrice,
        RejectReason::TradeNotPending,
        RejectReason::UnknownAccount,
        RejectReason::AccountNotActive,
        RejectReason::InvalidOrder,
        RejectReason::NoProfile,
        RejectReason::SubledgerNotEligible,
        RejectReason::InternalPriceBelowFloor,
        RejectReason::ScopeMissing,
        RejectReason::ScopeExceedsInventory,
        RejectReason::PriceBelowFloor,
        RejectReason::AttestationRequired,
        RejectReason::LotNotEligible,
        RejectReason::AttestationInvalid,
        RejectReason::LotSerialsInvalid,
        RejectReason::LotSerialsOverlap,
        RejectReason::CreditNotEligible,
        RejectReason::RuleNotMet,
        RejectReason::Throttled,
        RejectReason::DuplicateClientOrderId,
        RejectReason::RiskMaxQty,
        RejectReason::RiskMaxNotional,
        RejectReason::RiskPriceCollar,
        RejectReason::VenueClosing,
        RejectReason::UnknownOperator,
        RejectReason::BadSignature,
        RejectReason::StaleRequest,
        RejectReason::ReplayedRequest,
        RejectReason::NotPermitted,
        RejectReason::InvalidRequest,
        RejectReason::NotLeader,
    ];

    /// The wire code.
    #[must_use]
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The reason with wire code `code`, if any.
    #[must_use]
    pub fn from_code(code: u8) -> Option<RejectReason> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }
}

/// Why a live (or just-arrived) order left the book without trading.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub enum CancelReason {
    /// The owner asked for it.
    User = 1,
    /// The unfilled remainder of a market or IOC order (or of an FOK that filled).
    IocRemainder = 2,
    /// A fill-or-kill order that could not be filled whole: nothing traded.
    FokUnfilled = 3,
    /// Self-trade prevention: an incoming order of the same account reached it.
    SelfTrade = 4,
    /// A mass cancel (by account, or account and instrument; or disconnect).
    MassCancel = 5,
    /// The instrument was halted with its resting orders cancelled.
    Halt = 6,
    /// A market buy stopped because its cash budget could not pay the next tonne.
    BudgetExhausted = 7,
    /// The unfilled remainder of a buy that skipped asks below its floor:
    /// it cannot rest across them (rules `below_floor_asks = "skip"`).
    BelowFloorSkipped = 8,
}

impl CancelReason {
    /// The stable text name used in files, logs and JSON.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            CancelReason::User => "USER",
            CancelReason::IocRemainder => "IOC_REMAINDER",
            CancelReason::FokUnfilled => "FOK_UNFILLED",
            CancelReason::SelfTrade => "SELF_TRADE",
            CancelReason::MassCancel => "MASS_CANCEL",
            CancelReason::Halt => "HALT",
            CancelReason::BudgetExhausted => "BUDGET_EXHAUSTED",
            CancelReason::BelowFloorSkipped => "BELOW_FLOOR_SKIPPED",
        }
    }

    /// The wire code.
    #[must_use]
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The reason with wire code `code`, if any.
    #[must_use]
    pub fn from_code(code: u8) -> Option<CancelReason> {
        [
            CancelReason::User,
            CancelReason::IocRemainder,
            CancelReason::FokUnfilled,
            CancelReason::SelfTrade,
            CancelReason::MassCancel,
            CancelReason::Halt,
            CancelReason::BudgetExhausted,
            CancelReason::BelowFloorSkipped,
        ]
        .into_iter()
        .find(|r| r.code() == code)
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for CancelReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
