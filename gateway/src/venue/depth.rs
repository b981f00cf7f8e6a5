//! Book depth for market data: every level of an instrument (the
//! market-data feed shows them all; order-entry subscriptions the best
//! [`BOOK_DEPTH`]).

use tonnex_engine::State;
use tonnex_protocol::wire::Level;
use tonnex_protocol::Side;

/// Levels a book snapshot shows per side.
pub const BOOK_DEPTH: usize = 10;

/// Best levels of an instrument.
pub struct BookSnapshot {
    /// Instrument index.
    pub instrument: u32,
    /// Who asked (0: every subscriber, after a mass change).
    pub account: u64,
    /// A market-data feed connection that asked (its token), if one did.
    pub feed: Option<usize>,
    /// Bids, best first.
    pub bids: Vec<Level>,
    /// Asks, best first.
    pub asks: Vec<Level>,
}

/// Every level of each side of `instrument`, best first, for `account`
/// (0: every subscriber) or the feed connection `feed`.
#[must_use]
pub fn snapshot(state: &State, instrument: u32, account: u64, feed: Option<usize>) -> BookSnapshot {
    let mut snapshot = BookSnapshot {
        instrument,
        account,
        feed,
        bids: Vec::new(),
        asks: Vec::new(),
    };
    if let Some(book) = state.books().get(instrument as usize) {
        for (side, levels) in [
            (Side::Buy, &mut snapshot.bids),
            (Side::Sell, &mut snapshot.asks),
        ] {
            let ladder = book.side(side);
            let mut price = ladder.best();
            while let Some(p) = price {
                levels.push(Level {
                    price_ticks: p,
                    qty: ladder.level(p).qty,
                });
                price = ladder.next_worse(p);
            }
        }
    }
    snapshot
}
