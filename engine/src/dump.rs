//! The dump formats of FORMAT.md, for checking an engine against another:
//!
//! * fills, in execution order: `F <taker_id> <maker_id> <price_ticks> <qty>`
//! * a book: bids best to worst, each level in time priority, then asks:
//!   `O <order_id> <side> <price_ticks> <open_qty>`

use std::io::{self, Write};

use crate::event::Event;
use crate::state::State;

/// Writes the fill line of `event` if it is a fill.
pub fn write_fill(out: &mut impl Write, event: &Event) -> io::Result<()> {
    if let Event::Fill {
        taker_id,
        maker_id,
        price,
        qty,
        ..
    } = event
    {
        writeln!(out, "F {taker_id} {maker_id} {price} {qty}")?;
    }
    Ok(())
}

/// Writes instrument `instrument`'s book.
pub fn write_book(out: &mut impl Write, state: &State, instrument: usize) -> io::Result<()> {
    let mut result = Ok(());
    state.walk_book(instrument, |_, slot| {
        if result.is_ok() {
            result = writeln!(
                out,
                "O {} {} {} {}",
                slot.id,
                slot.side().letter(),
                slot.price,
                slot.qty
            );
        }
    });
    result
}
