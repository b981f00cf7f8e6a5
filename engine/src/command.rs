//! What the engine is asked to do. Every command is complete: it carries what
//! the gateway decided (account, instrument, compliance decision, timestamp),
//! so replaying the journal never consults anything outside it.

use crate::settlement::SettlementBatch;
use bincode::{Decode, Encode};
use tonnex_protocol::wire::{self, BuyDecision};
use tonnex_protocol::{Cash, OrderKind, Pathway, Price, Qty, Side, Symbol};

/// Account 0 in a cancel or replace means "the operator": ownership is not checked.
pub const OPERATOR: u64 = 0;

/// The compliance pre-router's decision, carried by a buy order into the
/// engine (and so into the journal). Sells and non-buyer accounts carry
/// [`Compliance::NONE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compliance {
    /// The OER pathway the order was routed to.
    pub pathway: Pathway,
    /// The pathway's internal carbon price floor in this instrument's ticks (0: none).
    pub floor_ticks: u32,
    /// The attestation backing a purchase below the floor (0: none).
    pub attestation_id: u64,
    /// An unattested buy whose limit meets its floor skips asks below the
    /// floor instead of being refused whole (`below_floor_asks = "skip"`).
    pub skip_below_floor: bool,
}

impl Compliance {
    /// Not a compliance-routed order.
    pub const NONE: Compliance = Compliance {
        pathway: Pathway::None,
        floor_ticks: 0,
        attestation_id: 0,
        skip_below_floor: false,
    };

    /// Whether an attestation lets the order trade below its floor.
    #[inline]
    #[must_use]
    pub fn attested(&self) -> bool {
        self.attestation_id != 0
    }
}

/// A new order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewOrder {
    /// Venue order id, unique among live orders.
    pub id: u64,
    /// Owning account.
    pub account: u64,
    /// The client's id for the order (0: none, as in workload replays);
    /// journaled so that reports after a restart still carry it and a
    /// used id is refused for ever.
    pub client_order_id: u64,
    /// Instrument index.
    pub instrument: u32,
    /// Buy or sell.
    pub side: Side,
    /// Execution kind.
    pub kind: OrderKind,
    /// Limit price in ticks; ignored for market orders.
    pub price: Price,
    /// Quantity in tonnes.
    pub qty: Qty,
    /// For a market buy with account holds on: the most cash it may spend.
    pub cash_budget: Cash,
    /// The pre-router's decision.
    pub compliance: Compliance,
    /// Gateway receive time, nanoseconds since the Unix epoch (informational:
    /// the engine never reads a clock and never branches on this).
    pub ts_ns: u64,
}

/// Cash or credits of one instrument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Asset {
    /// Money, in micro-dollars.
    Cash(Cash),
    /// Tonnes of an instrument's credits.
    Credits {
        /// Instrument index.
        instrument: u32,
        /// Tonnes.
        qty: Qty,
    },
}

/// The static definition of an instrument (one book, one sub-ledger).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub struct InstrumentSpec {
    /// Ticker.
    pub symbol: Symbol,
    /// Value of one tick per tonne, in micro-dollars (0.01 USD: 10 000).
    pub tick_micros: i64,
    /// Lowest acceptable limit price in ticks (inclusive).
    pub min_price: Price,
    /// Highest acceptable limit price in ticks (inclusive).
    pub max_price: Price,
}

/// A buyer's buy with the whole compliance decision it was accepted under:
/// the journal holds the decision, so the router's claims, the fill
/// stream's decision record and the certificate all derive from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopedOrder {
    /// The order as the engine matches it.
    pub order: NewOrder,
    /// The pre-router's decision (pathway, floor, attestation, scope lines,
    /// coverage, rules version).
    pub decision: BuyDecision,
    /// The order was held for an attestation and is released by this command.
    pub released_from_hold: bool,
}

/// The venue's own decisions that do not touch a book, journaled so that
/// recovery rebuilds them (see [`crate::venue::VenueState`]).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum VenueCommand {
    /// The rules and buyer profiles in force from this command on.
    Rules {
        /// `version` of the rules file.
        version: String,
        /// SHA-256 of the rules file, lowercase hex.
        rules_sha256: String,
        /// SHA-256 of the buyer profiles (and inventory export), lowercase hex.
        profiles_sha256: String,
    },
    /// A buyer's attestation, accepted.
    Attest {
        /// The buyer.
        account: u64,
        /// Attestation id (1-64 bytes, unique per buyer).
        id: String,
        /// Attested internal carbon price, micro-dollars per tonne.
        internal_price_micros: i64,
        /// Reporting year it covers.
        reporting_year: u16,
    },
    /// A buyer's order held for an attestation until `expires_at_ns`.
    Hold {
        /// The buyer.
        account: u64,
        /// When the hold ends without an attestation (gateway clock,
        /// nanoseconds since the Unix epoch).
        expires_at_ns: u64,
        /// The order as the buyer sent it.
        order: wire::NewOrder,
    },
    /// A held order's final answer without trading: it expired, or was
    /// refused when an attestation re-checked it.
    Unhold {
        /// The buyer.
        account: u64,
        /// The held order.
        client_order_id: u64,
        /// Reason code sent to the buyer.
        reason: u8,
    },
    /// A credit lot's registry serial block, journaled right before the lot's
    /// deposit: no later lot may overlap it.
    Serials {
        /// The block.
        block: crate::venue::SerialBlock,
        /// Where it came from (file and line).
        source: String,
    },
    /// A buyer's attestation submitted where approval is required: it does
    /// not count until a compliance officer approves it.
    AttestationSubmitted {
        /// The buyer.
        account: u64,
        /// Attestation id.
        id: String,
        /// Attested internal carbon price, micro-dollars per tonne.
        internal_price_micros: i64,
        /// Reporting year it covers.
        reporting_year: u16,
    },
    /// A compliance officer approved a submitted attestation (it counts
    /// from here on) or revoked one in force.
    AttestationDecided {
        /// The buyer.
        account: u64,
        /// Attestation id.
        id: String,
        /// Approved (`true`) or revoked.
        approved: bool,
        /// The officer (operator name).
        approver: String,
        /// SHA-256 of the evidence reviewed, hex.
        evidence_sha256: String,
    },
    /// A member account added at runtime (its credential as an argon2 hash).
    AccountAdded(AccountListing),
    /// An instrument listed at runtime: what the venue (not the engine)
    /// needs of it, so that a restart lists it again.
    InstrumentListed(InstrumentListing),
    /// An account's KYC status changed (`tonnex_protocol::admin::KYC_*`);
    /// only `active` may trade.
    Kyc {
        /// The account.
        account: u64,
        /// The new status code.
        status: u8,
    },
    /// An order the gateway refused before it reached a book; journaled so
    /// that its client order id stays used across restarts.
    Refused {
        /// The account.
        account: u64,
        /// The refused order's client id.
        client_order_id: u64,
        /// Reason code sent to the client.
        reason: u8,
    },
    /// A buyer's emissions inventory replaced through the admin port (the
    /// carbon-accounting integration): in force from this record on.
    Inventory(InventoryRecord),
    /// A buyer's order the pre-router refused because a rules predicate
    /// failed: as `Refused`, naming the predicate (the rules file's name
    /// for it) so the journal shows which rule refused it.
    RuleRefused {
        /// The account.
        account: u64,
        /// The refused order's client id.
        client_order_id: u64,
        /// Reason code sent to the client.
        reason: u8,
        /// The predicate that failed.
        predicate: String,
    },
    /// What the fill stream says about the next command beyond what the
    /// engine holds (a deposit's registry lot, a listing's sub-ledger):
    /// journaled just before it, so the journal alone rebuilds the fill
    /// log (a cluster's followers write theirs from the log). The engine
    /// applies it as nothing.
    Annotate(Box<tonnex_protocol::wire::StreamEvent>),
    /// A cluster leader's sequenced messages to clients (execution reports
    /// and answers), journaled with the commands that made them so every
    /// node holds each account's stream and a new leader goes on with it:
    /// clients resume from `last_seen_seq` across a failover. `records` are
    /// outbound-log records (length u32 LE, account u64 LE, the frame as
    /// sent, its sequence number the first 8 bytes after the frame header).
    /// The engine folds only each account's next sequence number.
    Reports {
        /// The sequence space the messages belong to (`LoginAccepted.session_id`).
        session_id: u64,
        /// The records, whole.
        records: Vec<u8>,
    },
}

/// A buyer's inventory as journaled (tonnes as the decimal text given).
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct InventoryRecord {
    /// The buyer.
    pub account: u64,
    /// The reporting year.
    pub reporting_year: i64,
    /// (scope, category, tonnes): one per scope, or per Scope 3 category;
    /// category 0 for scopes 1 and 2.
    pub lines: Vec<(u8, u8, String)>,
}

/// An instrument listed through the admin port, as journaled (decimals as
/// their text, exactly as given).
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct InstrumentListing {
    /// Its index (the engine's `AddInstrument` that follows uses it).
    pub instrument: u32,
    /// Ticker.
    pub symbol: String,
    /// CCP sub-ledger.
    pub sub_ledger: String,
    /// Tick in USD.
    pub tick_usd: String,
    /// Lowest price in USD.
    pub min_price_usd: String,
    /// Highest price in USD.
    pub max_price_usd: String,
    /// Eligibility: CCP label required (or refused).
    pub ccp: Option<bool>,
    /// Eligibility: allowed categories.
    pub categories: Option<Vec<String>>,
    /// Eligibility: allowed natures.
    pub nature: Option<Vec<String>>,
    /// Eligibility: oldest vintage.
    pub min_vintage: Option<i64>,
}

/// A member account added through the admin port, as journaled.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct AccountListing {
    /// Its id.
    pub account: u64,
    /// Its name.
    pub name: String,
    /// `seller` or `market_maker`.
    pub role: String,
    /// Its login secret's argon2 hash (PHC string), never the secret.
    pub secret_hash: String,
}

/// An operator's action, as journaled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminCommand {
    /// The operator's configured name.
    pub operator: String,
    /// The reason the operator gave.
    pub reason: String,
    /// What it does: a halt, resume, mass cancel, deposit, withdrawal or
    /// venue bookkeeping command (never another `Admin`).
    pub command: Command,
}

/// Every input the engine applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// A new order.
    New(NewOrder),
    /// A buyer's buy, with its compliance decision.
    Scoped(Box<ScopedOrder>),
    /// Venue bookkeeping (rules in force, attestations, holds, refusals).
    Venue(Box<VenueCommand>),
    /// An operator's action through the admin port: the command it applies,
    /// with who asked and why (the journal is the audit trail).
    Admin(Box<AdminCommand>),
    /// Cancel a live order.
    Cancel {
        /// The order.
        order_id: u64,
        /// The requesting account ([`OPERATOR`]: any).
        account: u64,
    },
    /// Cancel/replace (FORMAT.md rule 9): `qty` is the new open quantity.
    Replace {
        /// The order.
        order_id: u64,
        /// The requesting account ([`OPERATOR`]: any).
        account: u64,
        /// New limit price.
        price: Price,
        /// New open quantity.
        qty: Qty,
    },
    /// Cancel every resting order of an account, in one instrument or all.
    MassCancel {
        /// Whose orders.
        account: u64,
        /// Only this instrument, or all.
        instrument: Option<u32>,
    },
    /// Define instrument number `instrument` (the next free index).
    AddInstrument {
        /// Index the instrument gets; must equal the number of instruments so far.
        instrument: u32,
        /// Its definition.
        spec: InstrumentSpec,
    },
    /// Stop accepting orders and replaces in an instrument.
    Halt {
        /// Instrument index.
        instrument: u32,
        /// Also cancel every resting order.
        cancel_resting: bool,
    },
    /// Accept orders again.
    Resume {
        /// Instrument index.
        instrument: u32,
    },
    /// Credit an account's free balance.
    Deposit {
        /// Account.
        account: u64,
        /// What and how much.
        asset: Asset,
    },
    /// Debit an account's free balance.
    Withdraw {
        /// Account.
        account: u64,
        /// What and how much.
        asset: Asset,
    },
    /// How trades ended, from settlement's outbox (sent on its admin
    /// session, so always inside an `Admin`).
    Settlement(Box<SettlementBatch>),
}

impl Command {
    /// The fill-stream annotation this command journals, if it is one
    /// ([`VenueCommand::Annotate`]).
    #[must_use]
    pub fn annotation(&self) -> Option<&tonnex_protocol::wire::StreamEvent> {
        match self {
            Command::Venue(venue) => match &**venue {
                VenueCommand::Annotate(event) => Some(event),
                _ => None,
            },
            _ => None,
        }
    }

    /// Whether this command is an annotation of the next.
    #[must_use]
    pub fn is_annotation(&self) -> bool {
        self.annotation().is_some()
    }

    /// Whether this command only records what the venue sent
    /// ([`VenueCommand::Reports`]).
    #[must_use]
    pub fn is_reports(&self) -> bool {
        matches!(self, Command::Venue(venue) if matches!(**venue, VenueCommand::Reports { .. }))
    }

    /// The command that acts: an admin action's inner command, else itself.
    #[inline]
    #[must_use]
    pub fn acting(&self) -> &Command {
        match self {
            Command::Admin(admin) => &admin.command,
            other => other,
        }
    }

    /// The new order this command enters, plain or scoped.
    #[inline]
    #[must_use]
    pub fn new_order(&self) -> Option<&NewOrder> {
        match self {
            Command::New(order) => Some(order),
            Command::Scoped(scoped) => Some(&scoped.order),
            _ => None,
        }
    }
}
