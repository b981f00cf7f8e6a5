//! The admin port: operators' requests, each signed with the operator's
//! key, and the venue's replies. Framed like order entry (a `u32` length,
//! then bincode 2 with fixed-width little-endian integers); drawn byte by
//! byte in `docs/admin.md`.
//!
//! A request is [`Signed`]: the [`AdminRequest`] (operator name, a
//! timestamp, a nonce, the verb and a free-text reason) and an HMAC-SHA256
//! over the request's encoding with the operator's key. The venue refuses a
//! request whose MAC does not verify, whose timestamp is outside its window
//! of its clock, or whose `(operator, nonce)` it has seen inside that window.

use bincode::{Decode, Encode};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// `Kyc.status`: onboarding, may not trade.
pub const KYC_PENDING: u8 = 0;
/// `Kyc.status`: may trade.
pub const KYC_ACTIVE: u8 = 1;
/// `Kyc.status`: suspended: its open orders are cancelled and its session
/// is closed (the kill switch); it may not log in or trade.
pub const KYC_SUSPENDED: u8 = 2;

/// The name of a `Kyc.status` code.
#[must_use]
pub fn kyc_name(status: u8) -> Option<&'static str> {
    match status {
        KYC_PENDING => Some("pending_kyc"),
        KYC_ACTIVE => Some("active"),
        KYC_SUSPENDED => Some("suspended"),
        _ => None,
    }
}

/// The code of a KYC status name.
#[must_use]
pub fn kyc_code(name: &str) -> Option<u8> {
    match name {
        "pending_kyc" => Some(KYC_PENDING),
        "active" => Some(KYC_ACTIVE),
        "suspended" => Some(KYC_SUSPENDED),
        _ => None,
    }
}

/// What an operator asks for.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum AdminVerb {
    /// Tag 0. Instruments, accounts by KYC status, sessions, journal position.
    Status,
    /// Tag 1. Refuse new orders and replaces (`INSTRUMENT_HALTED`); resting
    /// orders stay. `None`: every instrument.
    Halt {
        /// Instrument symbol, or all.
        symbol: Option<String>,
    },
    /// Tag 2. Undo a halt. `None`: every instrument.
    Resume {
        /// Instrument symbol, or all.
        symbol: Option<String>,
    },
    /// Tag 3. Set an account's KYC status (`KYC_*`).
    Kyc {
        /// The account.
        account: u64,
        /// New status code.
        status: u8,
    },
    /// Tag 4. Cancel resting orders: one account's (in one instrument or
    /// all), or everyone's in one instrument.
    MassCancel {
        /// Only this account's.
        account: Option<u64>,
        /// Only in this instrument.
        symbol: Option<String>,
    },
    /// Tag 5. Credit cash to an account's free balance.
    DepositCash {
        /// The account.
        account: u64,
        /// Micro-dollars, positive.
        amount_micros: i64,
    },
    /// Tag 6. Debit cash from an account's free balance (never held funds).
    WithdrawCash {
        /// The account.
        account: u64,
        /// Micro-dollars, positive.
        amount_micros: i64,
    },
    /// Tag 7. Deposit a registry export's credit lots into an instrument,
    /// checked as `tonnex-venue lots` checks them (serial blocks, overlaps
    /// with every block ever deposited, eligibility).
    DepositLots {
        /// Instrument symbol.
        symbol: String,
        /// The export's file name (names its lots' sources).
        name: String,
        /// The export's content (CSV, `tonnex-venue lots` columns).
        csv: String,
    },
    /// Tag 8. Read the rules and buyer profiles files named in the venue
    /// file again; the new version is in force from its journal record on.
    ReloadRules,
    /// Tag 9. Approve a buyer's submitted attestation (it then counts and
    /// re-checks the buyer's held orders) or revoke an attestation in force
    /// (later orders below the floor are held again).
    Attestation {
        /// The buyer.
        account: u64,
        /// The attestation id.
        id: String,
        /// Approve (`true`) or revoke.
        approve: bool,
        /// SHA-256 of the evidence reviewed, hex (approvals).
        evidence_sha256: String,
    },
    /// Tag 10. List a new instrument (one more order book, one sub-ledger)
    /// at runtime, with the eligibility rule its lot deposits must pass.
    AddInstrument {
        /// Ticker (1-23 printable ASCII).
        symbol: String,
        /// Its CCP sub-ledger (`ccp`, `ccp_removal`, `general`, ...).
        sub_ledger: String,
        /// Tick in USD per tonne, a decimal string.
        tick_usd: String,
        /// Lowest price in USD, a decimal string.
        min_price_usd: String,
        /// Highest price in USD, a decimal string.
        max_price_usd: String,
        /// Lots must carry (or not) the CCP label; none: either.
        ccp: Option<bool>,
        /// Allowed lot categories; empty: any.
        categories: Vec<String>,
        /// Allowed lot natures; empty: any.
        nature: Vec<String>,
        /// Oldest allowed vintage.
        min_vintage: Option<i64>,
    },
    /// Tag 11. Add a member account at runtime, `pending_kyc` until a
    /// `kyc ACCOUNT active`; the venue keeps only a hash of its secret.
    AddAccount {
        /// Its id (not yet used, not 0).
        account: u64,
        /// Its name.
        name: String,
        /// `seller` or `market_maker` (buyers need a profile in the files).
        role: String,
        /// Its login secret (at least 8 bytes); journaled only as a hash.
        secret: String,
    },
    /// Tag 12. Debit credits of an instrument from an account's free
    /// holding (never credits held by a resting sell).
    WithdrawCredits {
        /// The account.
        account: u64,
        /// Instrument symbol.
        symbol: String,
        /// Tonnes, positive.
        qty: u64,
    },
    /// Tag 13. Replace a buyer's emissions inventory for its reporting
    /// year (the carbon-accounting integration): the pre-router checks
    /// every later order against it.
    Inventory {
        /// The buyer.
        account: u64,
        /// The reporting year the figures are for (the profile's).
        reporting_year: i64,
        /// The figures: one line per scope, or per Scope 3 category.
        lines: Vec<InventoryLine>,
    },
    /// Tag 14. A buyer's compliance state as the venue holds it: its
    /// inventory in force, held orders and attestations awaiting approval
    /// (read-only; not journaled).
    Buyer {
        /// The buyer.
        account: u64,
    },
    /// Tag 15. How trades ended at settlement (role `settlement` only):
    /// consecutive entries of settlement's outbox, entry `i` with id
    /// `first_id + i`. The venue applies each id once; ids at or below the
    /// highest it applied are acknowledged and change nothing.
    Settlement {
        /// The outbox id of the first outcome (1 or more).
        first_id: u64,
        /// The outcomes (1 to [`MAX_OUTCOMES`]).
        outcomes: Vec<SettlementOutcome>,
    },
    /// Tag 16. A cluster node's view: role, term, commit and applied
    /// index, voters, and (on the leader) each peer's progress. Every
    /// node answers it; read-only.
    ClusterStatus,
    /// Tag 17. The leader hands leadership to voter `to` (a planned
    /// failover: sessions move as at any failover).
    ClusterTransfer {
        /// The node to lead.
        to: u64,
    },
    /// Tag 18. The leader proposes adding node `node` as a voter; it
    /// listens for Raft at `address` (every node learns it from the log).
    /// The new node runs with `--join` and catches up from the leader.
    ClusterAdd {
        /// The new node's id.
        node: u64,
        /// Its Raft transport address.
        address: String,
    },
    /// Tag 19. The leader proposes removing voter `node` (not itself:
    /// transfer leadership first).
    ClusterRemove {
        /// The node to remove.
        node: u64,
    },
}

/// One peer's replication progress, as the leader sees it.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct ClusterPeer {
    /// The peer's node id.
    pub node: u64,
    /// The highest index known to be in its log.
    pub matched: u64,
    /// Entries it is behind the leader's last.
    pub lag: u64,
}

/// Most outcomes in one `Settlement` request: with the longest reason
/// ([`MAX_REASON_BYTES`]) and the largest outcomes (32 bytes) it is still
/// one journal record (4 KiB).
pub const MAX_OUTCOMES: usize = 80;

/// The longest reason a request may give (it is journaled with the action).
pub const MAX_REASON_BYTES: usize = 1024;

/// How one trade ended, as settlement reports it to the venue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub enum SettlementOutcome {
    /// Tag 0. Delivery versus payment done: the seller's cash and the
    /// buyer's credits become free; with `retire`, the buyer's credits are
    /// owed to their retirement instead.
    Settled {
        /// The venue trade id.
        trade_id: u64,
        /// Retired for the buyer next.
        retire: bool,
    },
    /// Tag 1. Both legs returned from escrow: the buyer's cash and the
    /// seller's credits are free again.
    Unwound {
        /// The venue trade id.
        trade_id: u64,
    },
    /// Tag 2. The registry retired the buyer's credits: they leave its account.
    Retired {
        /// The venue trade id.
        trade_id: u64,
    },
    /// Tag 3. The registry refused the retirement for good: the credits
    /// stay the buyer's, free.
    RetirementRefused {
        /// The venue trade id.
        trade_id: u64,
    },
    /// Tag 4. The registry refused a withdrawal the venue had already
    /// debited: the credits come back to the account's free holding.
    WithdrawalReturned {
        /// Settlement's id of the withdrawal.
        withdrawal_id: u64,
        /// The account.
        account: u64,
        /// Instrument number.
        instrument: u32,
        /// Tonnes.
        qty: u64,
    },
}

impl SettlementOutcome {
    /// The trade it is about (a withdrawal: its id).
    #[must_use]
    pub fn trade_id(&self) -> u64 {
        match *self {
            SettlementOutcome::Settled { trade_id, .. }
            | SettlementOutcome::Unwound { trade_id }
            | SettlementOutcome::Retired { trade_id }
            | SettlementOutcome::RetirementRefused { trade_id } => trade_id,
            SettlementOutcome::WithdrawalReturned { withdrawal_id, .. } => withdrawal_id,
        }
    }
}

/// An outcome the engine refused, in a `Settlement` reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub struct OutcomeRefusal {
    /// Its outbox id.
    pub id: u64,
    /// Reason code (`TRADE_NOT_PENDING`).
    pub reason: u8,
}

/// One inventory figure.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct InventoryLine {
    /// 1, 2 or 3.
    pub scope: u8,
    /// Scope 3 category 1-15; 0 for scopes 1 and 2.
    pub category: u8,
    /// tCO2e, a non-negative decimal string.
    pub tonnes: String,
}

/// A held order in a buyer reply.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct HeldLine {
    /// The client's order id.
    pub client_order_id: u64,
    /// Instrument number.
    pub instrument: u32,
    /// Limit price in ticks.
    pub price_ticks: i64,
    /// Tonnes.
    pub qty: u64,
    /// When the hold ends without an attestation (ns since the Unix epoch).
    pub expires_at_ns: u64,
}

/// An attestation awaiting a compliance officer, in a buyer reply.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct PendingLine {
    /// Attestation id.
    pub id: String,
    /// Attested internal carbon price, micro-dollars per tonne.
    pub internal_price_micros: i64,
    /// Reporting year.
    pub reporting_year: u16,
}

/// A request before signing.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct AdminRequest {
    /// The operator's name, as configured.
    pub operator: String,
    /// The sender's clock, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// Unique per operator within the venue's window.
    pub nonce: u64,
    /// Why, in words: journaled with the action.
    pub reason: String,
    /// What to do.
    pub verb: AdminVerb,
}

/// A request on the wire: the request and its HMAC-SHA256.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Signed {
    /// The request.
    pub request: AdminRequest,
    /// HMAC-SHA256 of the request's encoding, keyed with the operator's key.
    pub mac: [u8; 32],
}

/// One instrument in a status reply.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct InstrumentStatus {
    /// Symbol.
    pub symbol: String,
    /// Halted.
    pub halted: bool,
    /// Value of one tick per tonne in micro-dollars.
    pub tick_micros: i64,
    /// Price of the last trade since the venue started, in ticks.
    pub last_trade_ticks: Option<i64>,
}

/// One account in a status reply.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct AccountStatusLine {
    /// The account.
    pub account: u64,
    /// KYC status code.
    pub kyc: u8,
    /// A session is connected.
    pub connected: bool,
}

/// The venue's answer.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum AdminReply {
    /// Tag 0. Done, and journaled at `seq` (0 for `Status`).
    Done {
        /// The nonce of the request answered.
        nonce: u64,
        /// Journal sequence of the (last) record it wrote.
        seq: u64,
        /// What was done, in words.
        text: String,
    },
    /// Tag 1. Refused; nothing was done.
    Refused {
        /// The nonce of the request answered (0 if it could not be read).
        nonce: u64,
        /// Reason code (`RejectReason`).
        reason: u8,
        /// Why, in words.
        text: String,
    },
    /// Tag 2. The venue's state.
    Status {
        /// The nonce of the request answered.
        nonce: u64,
        /// Instruments, in index order.
        instruments: Vec<InstrumentStatus>,
        /// Accounts, by id.
        accounts: Vec<AccountStatusLine>,
        /// Sessions connected.
        sessions: u32,
        /// Last journal sequence the gateway has seen applied.
        journal_seq: u64,
        /// Commands sent to the engine and not yet answered.
        in_flight: u32,
        /// Journal records appended but not yet durable under the venue's
        /// policy (always 0 under `process`).
        durable_lag: u64,
    },
    /// Tag 3. A buyer's compliance state (answers `Buyer`).
    Buyer {
        /// The nonce of the request answered.
        nonce: u64,
        /// The reporting year the inventory is for.
        reporting_year: i64,
        /// Ongoing emissions, tCO2e (decimal string).
        ongoing_emissions_tonnes: String,
        /// The inventory in force (every scope, and each Scope 3 category
        /// above zero).
        inventory: Vec<InventoryLine>,
        /// Tonnes claimed per line of `inventory` (open + filled orders).
        claimed: Vec<u64>,
        /// Orders held for an attestation.
        held: Vec<HeldLine>,
        /// Attestations submitted and awaiting approval.
        pending: Vec<PendingLine>,
        /// Whether an attestation is required below the floor and none in
        /// force covers the reporting year (what releases held orders).
        attestation_in_force: bool,
    },
    /// Tag 4. Settlement outcomes journaled (answers `Settlement`).
    Settlement {
        /// The nonce of the request answered.
        nonce: u64,
        /// Journal sequence of the record.
        seq: u64,
        /// Every id up to this one is applied (or was before).
        through_id: u64,
        /// Outcomes applied now.
        applied: u32,
        /// Outcomes refused now (they change nothing and are not retried).
        refused: Vec<OutcomeRefusal>,
    },
    /// Tag 5. A cluster node's view (answers `ClusterStatus`).
    Cluster {
        /// The nonce of the request answered.
        nonce: u64,
        /// The answering node's id.
        node: u64,
        /// `leader`, `follower`, `candidate` or `pre-candidate`.
        role: String,
        /// Its current term.
        term: u64,
        /// The leader it knows (0: none).
        leader: u64,
        /// Its commit index.
        commit: u64,
        /// Its applied index.
        applied: u64,
        /// The voters, as it last applied them.
        voters: Vec<u64>,
        /// Each other voter's progress (the leader's view; empty on a
        /// follower).
        peers: Vec<ClusterPeer>,
    },
}

type HmacSha256 = Hmac<Sha256>;

/// The MAC of `request` under `key`.
#[must_use]
pub fn mac(request: &AdminRequest, key: &[u8]) -> [u8; 32] {
    let bytes = bincode::encode_to_vec(request, crate::codec_config())
        .expect("an admin request always encodes");
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(&bytes);
    mac.finalize().into_bytes().into()
}

/// Signs `request` with `key`.
#[must_use]
pub fn sign(request: AdminRequest, key: &[u8]) -> Signed {
    let mac = mac(&request, key);
    Signed { request, mac }
}

/// Whether `signed` carries the MAC of its request under `key` (compared in
/// constant time).
#[must_use]
pub fn verify(signed: &Signed, key: &[u8]) -> bool {
    let bytes = bincode::encode_to_vec(&signed.request, crate::codec_config())
        .expect("an admin request always encodes");
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(&bytes);
    mac.verify_slice(&signed.mac).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> AdminRequest {
        AdminRequest {
            operator: "ops".into(),
            ts_ns: 1_764_000_000_000_000_000,
            nonce: 7,
            reason: "test".into(),
            verb: AdminVerb::Halt {
                symbol: Some("NBR-2024.CCP".into()),
            },
        }
    }

    #[test]
    fn a_signature_verifies_only_with_its_key_and_its_request() {
        let signed = sign(request(), b"demo-ops-key");
        assert!(verify(&signed, b"demo-ops-key"));
        assert!(!verify(&signed, b"demo-ops-kez"));
        let mut tampered = signed.clone();
        tampered.request.nonce = 8;
        assert!(!verify(&tampered, b"demo-ops-key"));
        let unsigned = Signed {
            request: request(),
            mac: [0; 32],
        };
        assert!(!verify(&unsigned, b"demo-ops-key"));
    }
}
