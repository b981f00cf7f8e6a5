//! The fill stream's messages: the subscription a settlement process (or a
//! member's drop copy) sends, and the records the venue sends back, each a
//! settlement-relevant event of one journaled command. Re-exported by
//! [`crate::wire`]; `docs/protocol.md`, "Fill stream", draws them.

use bincode::{Decode, Encode};

use crate::wire::ScopeLine;

/// Fill-stream subscription: the one message a subscriber sends.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct StreamSubscribe {
    /// First stream sequence number wanted (1: everything).
    pub from_seq: u64,
    /// The subscriber's name (`[[fill_subscriber]] name`).
    pub name: String,
    /// Its key (`[[fill_subscriber]] key`).
    pub key: String,
}

/// The columns of a registry export (a lot file), in order: the lot's
/// registry identity and attributes, then the venue account that owns it.
/// The venue's lot ingestion reads them; settlement writes them for a
/// custody-in deposit.
pub const LOT_COLUMNS: [&str; 13] = [
    "registry",
    "project_id",
    "serial_start",
    "serial_end",
    "quantity",
    "vintage",
    "methodology",
    "category",
    "nature",
    "ccp",
    "corresponding_adjustment",
    "corsia",
    "owner_account",
];

/// A credit lot's registry identity, as deposited.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct LotInfo {
    /// Registry name.
    pub registry: String,
    /// Project id at the registry.
    pub project_id: String,
    /// First serial of the block.
    pub serial_start: String,
    /// Last serial of the block.
    pub serial_end: String,
    /// Vintage year.
    pub vintage: u16,
    /// Carries the CCP label.
    pub ccp: bool,
}

/// The compliance decision of an accepted buyer's buy order.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct BuyDecision {
    /// Company name from the buyer profile.
    pub company: String,
    /// Reporting year of the profile.
    pub reporting_year: u16,
    /// Pathway code.
    pub pathway: u8,
    /// Sub-ledger name.
    pub sub_ledger: String,
    /// Pathway floor, micro-dollars per tonne.
    pub floor_micros: i64,
    /// Floor in the instrument's ticks.
    pub floor_ticks: u32,
    /// Declared internal carbon price, micro-dollars per tonne.
    pub internal_price_micros: i64,
    /// Attestation attached, if any.
    pub attestation: Option<String>,
    /// Scope allocation.
    pub scope: Vec<ScopeLine>,
    /// Coverage of ongoing emissions after this order, hundredths of a percent.
    pub coverage_bp: u32,
    /// Whether the coverage meets the pathway threshold.
    pub tier_threshold_met: bool,
    /// The buyer's ongoing emissions, thousandths of a tonne (truncated):
    /// what certificates state coverage against.
    pub ongoing_emissions_milli_t: u64,
    /// The pathway's coverage threshold, hundredths of a percent.
    pub threshold_bp: u32,
    /// `version` of the rules the decision was made under.
    pub rules_version: String,
    /// SHA-256 of that rules file, lowercase hex.
    pub rules_sha256: String,
    /// The compliance officer who approved the attestation, when the venue
    /// requires approval (`[compliance] attestations = "approved"`).
    pub attestation_approver: Option<String>,
}

/// What a settlement process needs, in the order the engine applied it.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum StreamEvent {
    /// Tag 0. An instrument was listed.
    Instrument {
        /// Instrument number.
        instrument: u32,
        /// Ticker.
        symbol: String,
        /// Sub-ledger name.
        sub_ledger: String,
        /// Value of one tick per tonne, micro-dollars.
        tick_micros: i64,
    },
    /// Tag 1. Cash credited to an account.
    CashDeposit {
        /// Account.
        account: u64,
        /// Micro-dollars.
        amount_micros: i64,
    },
    /// Tag 2. Credits deposited to an account.
    CreditDeposit {
        /// Account.
        account: u64,
        /// Instrument number.
        instrument: u32,
        /// Tonnes.
        qty: u64,
        /// The registry block they came from, when ingested from a lot file.
        lot: Option<LotInfo>,
    },
    /// Tag 3. Cash withdrawn.
    CashWithdrawal {
        /// Account.
        account: u64,
        /// Micro-dollars.
        amount_micros: i64,
    },
    /// Tag 4. Credits withdrawn.
    CreditWithdrawal {
        /// Account.
        account: u64,
        /// Instrument number.
        instrument: u32,
        /// Tonnes.
        qty: u64,
    },
    /// Tag 5. A buyer's buy order was accepted with this decision.
    BuyAccepted {
        /// Venue order id.
        order_id: u64,
        /// Buyer account.
        account: u64,
        /// Instrument number.
        instrument: u32,
        /// Limit price in ticks (0: market).
        price_ticks: i64,
        /// Tonnes.
        qty: u64,
        /// The pre-router's decision.
        decision: BuyDecision,
    },
    /// Tag 6. A trade.
    Trade {
        /// Venue trade id.
        trade_id: u64,
        /// Instrument number.
        instrument: u32,
        /// Buy order id.
        buy_order_id: u64,
        /// Sell order id.
        sell_order_id: u64,
        /// Buyer account.
        buyer: u64,
        /// Seller account.
        seller: u64,
        /// Price in ticks.
        price_ticks: i64,
        /// Tonnes.
        qty: u64,
        /// Supplementary pricing, ticks per tonne (0: none).
        supplementary_ticks: i64,
    },
    /// Tag 7. An order's open quantity will never trade.
    Cancelled {
        /// Venue order id.
        order_id: u64,
        /// Owner.
        account: u64,
        /// Instrument number.
        instrument: u32,
        /// Tonnes released.
        open_qty: u64,
        /// `CancelReason` code.
        reason: u8,
    },
    /// Tag 8. The subscription was refused (unknown name or wrong key),
    /// in a record with `seq` 0; the venue then closes the connection.
    Refused {
        /// Why, for people.
        text: String,
    },
}

impl StreamEvent {
    /// Whether a subscriber limited to `accounts` sees this event: the
    /// accounts it concerns include one of them (reference data concerns
    /// everyone).
    #[must_use]
    pub fn concerns(&self, accounts: &[u64]) -> bool {
        match self {
            StreamEvent::Instrument { .. } | StreamEvent::Refused { .. } => true,
            StreamEvent::CashDeposit { account, .. }
            | StreamEvent::CreditDeposit { account, .. }
            | StreamEvent::CashWithdrawal { account, .. }
            | StreamEvent::CreditWithdrawal { account, .. }
            | StreamEvent::BuyAccepted { account, .. }
            | StreamEvent::Cancelled { account, .. } => accounts.contains(account),
            StreamEvent::Trade { buyer, seller, .. } => {
                accounts.contains(buyer) || accounts.contains(seller)
            }
        }
    }
}

/// One fill-stream message: the stream's own gapless sequence number, the
/// journal sequence of the command that produced it, and the event.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct StreamRecord {
    /// Fill-stream sequence, 1, 2, 3... without gaps.
    pub seq: u64,
    /// Journal sequence number of the engine command.
    pub journal_seq: u64,
    /// What happened.
    pub event: StreamEvent,
}
