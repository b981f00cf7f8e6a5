//! The market-data feed (`[market_data] listen`): a port of its own, no
//! order-entry account needed (an optional key). Per instrument a
//! full-depth book by price level, as a snapshot then incremental level
//! updates and trades, each numbered in the instrument's own market-data
//! sequence (`md_seq`, +1 per update or trade). A subscriber that sees a
//! gap asks for a snapshot and rebuilds from it. Frames as on the
//! order-entry port (u32 length, then the message, bincode fixed-int
//! little-endian); docs/protocol.md draws every message.

use bincode::{Decode, Encode};

use crate::wire::{InstrumentInfo, Level};

/// Subscriber to venue.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum MdRequest {
    /// Tag 0. The first message: the feed's key (empty when the venue
    /// needs none) and the instruments wanted (empty: all).
    Subscribe {
        /// The key `[market_data] key`.
        key: String,
        /// Instrument numbers.
        instruments: Vec<u32>,
    },
    /// Tag 1. A fresh snapshot of one subscribed instrument (after a gap).
    Snapshot {
        /// Instrument number.
        instrument: u32,
    },
}

/// Venue to subscriber.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum MdMessage {
    /// Tag 0. The answer to `Subscribe`: every instrument of the venue.
    Instruments {
        /// Instruments.
        instruments: Vec<InstrumentInfo>,
    },
    /// Tag 1. The whole book of one instrument, every level, as of `md_seq`
    /// (the updates that follow start at `md_seq + 1`).
    Snapshot {
        /// Instrument number.
        instrument: u32,
        /// The instrument's market-data sequence this snapshot is current at.
        md_seq: u64,
        /// Bids, best (highest) first.
        bids: Vec<Level>,
        /// Asks, best (lowest) first.
        asks: Vec<Level>,
    },
    /// Tag 2. A level's new total (0: the level is gone).
    Level {
        /// Instrument number.
        instrument: u32,
        /// Market-data sequence.
        md_seq: u64,
        /// Side code (0 bid, 1 ask).
        side: u8,
        /// Price in ticks.
        price_ticks: i64,
        /// Tonnes now resting at that price.
        qty: u64,
    },
    /// Tag 3. A trade, anonymous.
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
    /// Tag 4. The venue closes the connection after it, saying why (a bad
    /// key or request, or a consumer too slow to keep up).
    Disconnect {
        /// Why, for people.
        reason: String,
    },
}
