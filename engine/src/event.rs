//! What applying a command produced, written into a caller-owned buffer.

use tonnex_protocol::{CancelReason, Price, Qty, RejectReason, Side};

/// One outcome of a command. A command yields its events in the order they
/// happened: `Accepted`, then fills and self-trade cancels as matching walks
/// the book, then the order's own cancel if its remainder does not rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A new order passed every check.
    Accepted {
        /// Order id.
        order_id: u64,
        /// Owning account.
        account: u64,
        /// Instrument index.
        instrument: u32,
    },
    /// The command was refused; nothing of it took effect. `order_id` is 0
    /// for commands that are not about one order.
    Rejected {
        /// The order the command was about, or 0.
        order_id: u64,
        /// Why.
        reason: RejectReason,
    },
    /// A trade, at the maker's price.
    Fill {
        /// Instrument index.
        instrument: u32,
        /// The incoming order.
        taker_id: u64,
        /// The resting order.
        maker_id: u64,
        /// The incoming order's account.
        taker_account: u64,
        /// The resting order's account.
        maker_account: u64,
        /// The incoming order's client order id (0: none).
        taker_client_order_id: u64,
        /// The resting order's client order id (0: none).
        maker_client_order_id: u64,
        /// The incoming order's side.
        taker_side: Side,
        /// Trade price (the maker's).
        price: Price,
        /// Traded tonnes.
        qty: Qty,
        /// The taker's open quantity after this fill.
        taker_open: Qty,
        /// The maker's open quantity after this fill.
        maker_open: Qty,
        /// For an attested buy filled below its floor: floor minus price, in
        /// ticks per tonne, for the supplementary carbon pricing ledger; else 0.
        supplementary_ticks: i64,
    },
    /// An order left (or never joined) the book without trading its `open_qty`.
    Cancelled {
        /// Order id.
        order_id: u64,
        /// Owning account.
        account: u64,
        /// The owner's client order id (0: none).
        client_order_id: u64,
        /// Instrument index.
        instrument: u32,
        /// Tonnes that will now never trade.
        open_qty: Qty,
        /// Why.
        reason: CancelReason,
        /// The order's side.
        side: Side,
        /// The price it rested at, or its limit if it never rested (0 for
        /// a market order): market data republishes that level's total.
        price: i64,
    },
    /// A replace took effect (before any fills it causes).
    Replaced {
        /// Order id.
        order_id: u64,
        /// Owning account (an operator may replace any order).
        account: u64,
        /// The owner's client order id (0: none).
        client_order_id: u64,
        /// New limit price.
        price: Price,
        /// New open quantity.
        qty: Qty,
        /// Whether the order kept its place in the queue.
        priority_kept: bool,
    },
    /// An administrative command (instrument, halt, resume, deposit,
    /// withdrawal) took effect.
    Applied,
}
