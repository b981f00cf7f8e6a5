//! Book depth for market data: the best levels of an instrument.

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
    /// Bids, best first.
    pub bids: Vec<Level>,
    /// Asks, best first.
    pub asks: Vec<Level>,
}

/// The best [`BOOK_DEPTH`] levels of each side of `instrument`, for
/// `account` (0: every subscriber).
#[must_use]
pub fn snapshot(state: &State, instrument: u32, account: u64) -> BookSnapshot {
    let mut snapshot = BookSnapshot {
        instrument,
        account,
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
                if levels.len() == BOOK_DEPTH {
                    break;
                }
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
