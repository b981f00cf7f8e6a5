//! Order-entry and fill-stream messages, as they travel inside frames
//! ([`crate::frame`]). `docs/protocol.md` draws every one byte by byte.
//!
//! Layout rules (bincode 2, fixed-width little-endian integers): a message
//! enum's variant is a `u32` tag; integers are their full width; `bool` is one
//! byte (0/1); `Option<T>` is a `u8` (0 none, 1 some) then `T`; `String` and
//! `Vec<T>` are a `u64` count then the bytes or elements. Small enumerations
//! (side, order type, reason codes) travel as plain `u8` codes so that a client
//! in another language needs nothing but integers and strings.

use bincode::{Decode, Encode};

use crate::{CancelReason, Name, OrderKind, Pathway, RejectReason, Side};

pub use crate::stream::{BuyDecision, LotInfo, StreamEvent, StreamRecord, StreamSubscribe};

/// `side` code: buy.
pub const SIDE_BUY: u8 = 0;
/// `side` code: sell.
pub const SIDE_SELL: u8 = 1;
/// `order_type` code: limit.
pub const TYPE_LIMIT: u8 = 0;
/// `order_type` code: market (needs `time_in_force` IOC).
pub const TYPE_MARKET: u8 = 1;
/// `time_in_force` code: good till cancelled (rests).
pub const TIF_GTC: u8 = 0;
/// `time_in_force` code: immediate or cancel.
pub const TIF_IOC: u8 = 1;
/// `time_in_force` code: fill or kill.
pub const TIF_FOK: u8 = 2;
/// `time_in_force` code: post only (rests; rejected if it would cross).
pub const TIF_POST_ONLY: u8 = 3;

/// One line of a buyer's scope allocation (COMPLIANCE.md step 8).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct ScopeLine {
    /// GHG Protocol scope: 1, 2 or 3.
    pub scope: u8,
    /// Scope 3 category 1-15; 0 for scopes 1 and 2.
    pub category: u8,
    /// Tonnes of the order attributed to this line.
    pub qty: u64,
}

/// A new order.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct NewOrder {
    /// The client's id: strictly increasing per account.
    pub client_order_id: u64,
    /// Instrument number from `ReferenceData`.
    pub instrument: u32,
    /// `SIDE_BUY` or `SIDE_SELL`.
    pub side: u8,
    /// `TYPE_LIMIT` or `TYPE_MARKET`.
    pub order_type: u8,
    /// `TIF_GTC`, `TIF_IOC`, `TIF_FOK` or `TIF_POST_ONLY`.
    pub time_in_force: u8,
    /// Limit price in ticks; 0 for a market order.
    pub price_ticks: i64,
    /// Tonnes.
    pub qty: u64,
    /// Market buys only: most cash the order may spend, in micro-dollars.
    pub cash_budget_micros: i64,
    /// Buyer buys: the scope allocation (empty otherwise).
    pub scope: Vec<ScopeLine>,
    /// An attestation id from the buyer's profile, if the buyer names one.
    pub attestation: Option<String>,
}

impl NewOrder {
    /// The engine's order kind for this type and time in force, or `None`
    /// for combinations the venue does not offer (a market order that is not
    /// IOC, unknown codes).
    #[must_use]
    pub fn kind(&self) -> Option<OrderKind> {
        match (self.order_type, self.time_in_force) {
            (TYPE_LIMIT, TIF_GTC) => Some(OrderKind::Limit),
            (TYPE_LIMIT, TIF_IOC) => Some(OrderKind::Ioc),
            (TYPE_LIMIT, TIF_FOK) => Some(OrderKind::Fok),
            (TYPE_LIMIT, TIF_POST_ONLY) => Some(OrderKind::PostOnly),
            (TYPE_MARKET, TIF_IOC) => Some(OrderKind::Market),
            _ => None,
        }
    }

    /// The side, if the code is valid.
    #[must_use]
    pub fn side(&self) -> Option<Side> {
        side_from_code(self.side)
    }
}

/// The side with wire code `code`.
#[must_use]
pub fn side_from_code(code: u8) -> Option<Side> {
    match code {
        SIDE_BUY => Some(Side::Buy),
        SIDE_SELL => Some(Side::Sell),
        _ => None,
    }
}

/// The wire code of a side.
#[must_use]
pub const fn side_code(side: Side) -> u8 {
    match side {
        Side::Buy => SIDE_BUY,
        Side::Sell => SIDE_SELL,
    }
}

/// The wire code of a pathway (0 none, 1 engaged, 2 recognised, 3 leadership).
#[must_use]
pub const fn pathway_code(pathway: Pathway) -> u8 {
    pathway as u8
}

/// The pathway with wire code `code`.
#[must_use]
pub fn pathway_from_code(code: u8) -> Option<Pathway> {
    [
        Pathway::None,
        Pathway::Engaged,
        Pathway::Recognised,
        Pathway::Leadership,
    ]
    .into_iter()
    .find(|p| *p as u8 == code)
}

/// Client to venue, on the order-entry port.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum ClientMessage {
    /// Tag 0. Must be the first message, within the login deadline.
    Login {
        /// The account this session acts for.
        account: u64,
        /// The account's `secret` from the venue configuration.
        secret: String,
        /// Highest session sequence number already received (0: none); the
        /// venue replays every later message it still holds.
        last_seen_seq: u64,
        /// Cancel the account's resting orders when this connection drops.
        cancel_on_disconnect: bool,
    },
    /// Tag 1. Ends the session cleanly (cancel-on-disconnect still applies).
    Logout,
    /// Tag 2. Keeps an otherwise idle session alive.
    Heartbeat,
    /// Tag 3.
    NewOrder(NewOrder),
    /// Tag 4. Cancel a resting order by its venue order id.
    Cancel {
        /// Venue order id.
        order_id: u64,
    },
    /// Tag 5. Change price and open quantity (FORMAT.md rule 9).
    Replace {
        /// Venue order id.
        order_id: u64,
        /// New limit price in ticks.
        price_ticks: i64,
        /// New open quantity in tonnes.
        qty: u64,
    },
    /// Tag 6. Cancel every resting order of the account.
    MassCancel {
        /// Only in this instrument, or in all.
        instrument: Option<u32>,
    },
    /// Tag 7. An attestation of supplementary internal carbon pricing; held
    /// orders are re-checked against it.
    SubmitAttestation {
        /// Attestation id.
        id: String,
        /// Attested internal carbon price, micro-dollars per tonne.
        internal_price_micros: i64,
        /// Reporting year it covers.
        reporting_year: u16,
    },
    /// Tag 8. Market data for an instrument: a book snapshot, then updates.
    Subscribe {
        /// Instrument number.
        instrument: u32,
    },
    /// Tag 9. The account's live and held orders, to resynchronise after a
    /// reconnect or a venue restart: one `OrderStatus` each, then
    /// `OrderStatusEnd`.
    OrderStatus {
        /// Only the order with this client id (0: every one).
        client_order_id: u64,
    },
}

/// `OrderStatus.state`: resting on a book (or about to).
pub const STATE_LIVE: u8 = 0;
/// `OrderStatus.state`: held for an attestation.
pub const STATE_HELD: u8 = 1;

/// One price level of a book snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Level {
    /// Price in ticks.
    pub price_ticks: i64,
    /// Tonnes resting at that price.
    pub qty: u64,
}

/// An instrument as `ReferenceData` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct InstrumentInfo {
    /// Instrument number used in every other message.
    pub instrument: u32,
    /// Ticker.
    pub symbol: String,
    /// CCP sub-ledger name.
    pub sub_ledger: String,
    /// Value of one tick per tonne in micro-dollars.
    pub tick_micros: i64,
    /// Lowest valid price in ticks.
    pub min_price_ticks: i64,
    /// Highest valid price in ticks.
    pub max_price_ticks: i64,
}

/// Venue to client, on the order-entry port.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum VenueMessage {
    /// Tag 0.
    LoginAccepted {
        /// The account the session acts for.
        account: u64,
        /// Sequence number of the next new message (replayed ones come first).
        next_seq: u64,
        /// The venue sends a heartbeat after this long without traffic, and
        /// closes a session silent for three times as long.
        heartbeat_ms: u32,
        /// The sequence space the numbers belong to: the same across venue
        /// restarts for as long as the venue's outbound log lives. A client
        /// seeing a new one starts again from `last_seen_seq = 0`.
        session_id: u64,
        /// This run of the venue process (changes at every restart).
        incarnation: u64,
    },
    /// Tag 1. The connection is closed after it.
    LoginRejected {
        /// Why, for people.
        text: String,
    },
    /// Tag 2.
    Heartbeat,
    /// Tag 3. The order passed every check and is live (it may trade at once).
    OrderAccepted {
        /// The client's id.
        client_order_id: u64,
        /// The venue's order id (cancel and replace use it).
        order_id: u64,
        /// Instrument number.
        instrument: u32,
        /// Side code.
        side: u8,
        /// Limit price in ticks (0 for market).
        price_ticks: i64,
        /// Tonnes.
        qty: u64,
        /// OER pathway code (0 none, 1 engaged, 2 recognised, 3 leadership).
        pathway: u8,
        /// Sub-ledger the order routes to (a [`Name`]: the venue sends its
        /// own without allocating).
        sub_ledger: Name,
        /// Pathway floor in ticks (0: none).
        floor_ticks: u32,
        /// Attestation attached by the pre-router.
        attestation: Option<String>,
    },
    /// Tag 4. Nothing of the request took effect.
    OrderRejected {
        /// The client's id (0 for cancel, replace and mass cancel).
        client_order_id: u64,
        /// The venue order id concerned, or 0.
        order_id: u64,
        /// Reason code (`RejectReason`).
        reason: u8,
    },
    /// Tag 5. Held by the pre-router until an attestation arrives or it expires.
    OrderHeld {
        /// The client's id.
        client_order_id: u64,
        /// Reason code (always `ATTESTATION_REQUIRED` today).
        reason: u8,
    },
    /// Tag 6. A trade of one of the session's orders.
    Fill {
        /// The client's id of the order.
        client_order_id: u64,
        /// The venue's order id.
        order_id: u64,
        /// Venue trade id (the same on both sides' fills).
        trade_id: u64,
        /// Instrument number.
        instrument: u32,
        /// The order's side code.
        side: u8,
        /// Trade price in ticks.
        price_ticks: i64,
        /// Tonnes traded.
        qty: u64,
        /// The order's open tonnes after this fill.
        leaves_qty: u64,
        /// True when this order was the incoming one.
        aggressor: bool,
        /// Attested buys below their floor: floor minus price, ticks per tonne.
        supplementary_ticks: i64,
    },
    /// Tag 7. An order left the book (or never rested) without trading `open_qty`.
    Cancelled {
        /// The client's id of the order.
        client_order_id: u64,
        /// The venue's order id.
        order_id: u64,
        /// Instrument number.
        instrument: u32,
        /// Tonnes that will never trade.
        open_qty: u64,
        /// Reason code (`CancelReason`).
        reason: u8,
    },
    /// Tag 8.
    Replaced {
        /// The client's id of the order.
        client_order_id: u64,
        /// The venue's order id.
        order_id: u64,
        /// New price in ticks.
        price_ticks: i64,
        /// New open quantity.
        qty: u64,
        /// Whether the order kept its time priority.
        priority_kept: bool,
    },
    /// Tag 9. Sent after `LoginAccepted`.
    ReferenceData {
        /// Every instrument.
        instruments: Vec<InstrumentInfo>,
    },
    /// Tag 10. The book by price level, best first, at most 10 levels a side.
    BookSnapshot {
        /// Instrument number.
        instrument: u32,
        /// Market-data sequence of the instrument this snapshot is current at.
        md_seq: u64,
        /// Bids, best (highest) first.
        bids: Vec<Level>,
        /// Asks, best (lowest) first.
        asks: Vec<Level>,
    },
    /// Tag 11. A level's new total (0: the level is gone).
    LevelUpdate {
        /// Instrument number.
        instrument: u32,
        /// Market-data sequence (per instrument, +1 per update or trade).
        md_seq: u64,
        /// Side code.
        side: u8,
        /// Price in ticks.
        price_ticks: i64,
        /// Tonnes now resting at that price.
        qty: u64,
    },
    /// Tag 12. A trade, anonymous.
    Trade {
        /// Instrument number.
        instrument: u32,
        /// Market-data sequence.
        md_seq: u64,
        /// Venue trade id.
        trade_id: u64,
        /// Price in ticks.
        price_ticks: i64,
        /// Tonnes.
        qty: u64,
        /// Side code of the incoming order.
        aggressor_side: u8,
    },
    /// Tag 13. The attestation was recorded; held orders were re-checked.
    AttestationAccepted {
        /// Attestation id.
        id: String,
        /// Held orders re-checked (each answered by its own message).
        rechecked: u32,
    },
    /// Tag 14. A request that cannot be served; after a protocol error the
    /// connection is closed.
    SessionError {
        /// Why, for people.
        text: String,
    },
    /// Tag 15. The attestation was refused; nothing was recorded and no held
    /// order was re-checked.
    AttestationRefused {
        /// Attestation id as submitted.
        id: String,
        /// `ATTESTATION_INVALID` (75) or `NO_PROFILE` (67).
        reason: u8,
        /// Which rule it broke, for people.
        text: String,
    },
    /// Tag 16. One order in answer to `OrderStatus` (not sequenced).
    OrderStatus {
        /// The client's id.
        client_order_id: u64,
        /// The venue's order id (0 while held).
        order_id: u64,
        /// Instrument number.
        instrument: u32,
        /// Side code.
        side: u8,
        /// Limit price in ticks.
        price_ticks: i64,
        /// Tonnes still open.
        open_qty: u64,
        /// `STATE_LIVE` or `STATE_HELD`.
        state: u8,
    },
    /// Tag 17. The end of an `OrderStatus` answer (not sequenced).
    OrderStatusEnd {
        /// Orders listed.
        count: u32,
        /// The answer reflects every sequenced report up to this one.
        last_seq: u64,
    },
    /// Tag 18. This venue node is a cluster follower: log in to the leader
    /// (the connection is closed after it).
    NotLeader {
        /// The leader's node id (0: not known right now, e.g. during an
        /// election: try again shortly).
        leader: u64,
        /// The leader's order-entry address ("" when not known).
        order_entry: String,
    },
}

/// A venue message with its session sequence number.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Sequenced {
    /// Session sequence number (1, 2, 3... per account; 0 for messages sent
    /// before login and for heartbeats, which are never replayed).
    pub seq: u64,
    /// The message.
    pub message: VenueMessage,
}

/// Reason names for codes, for people.
#[must_use]
pub fn reject_name(code: u8) -> &'static str {
    RejectReason::from_code(code).map_or("UNKNOWN", RejectReason::as_str)
}

/// Cancel reason names for codes, for people.
#[must_use]
pub fn cancel_name(code: u8) -> &'static str {
    CancelReason::from_code(code).map_or("UNKNOWN", CancelReason::as_str)
}
