//! Integer fixed-point numbers with their units in the type.
//!
//! * [`Price`]: a price in ticks of the instrument (1 tick = `tick_usd` per tonne).
//! * [`Qty`]: whole tonnes of CO2e.
//! * [`Cash`]: micro-US-dollars (1e-6 USD), the one currency unit every
//!   instrument converts to, whatever its tick size.
//!
//! Only meaningful products exist: `Price × Qty` is a notional in tick·tonnes,
//! which becomes [`Cash`] only through an instrument's tick value.

use bincode::{Decode, Encode};
use std::fmt;

/// A price in integer ticks of an instrument. Signed so that differences
/// (floor minus price) need no special casing; valid prices are positive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode)]
pub struct Price(pub i64);

/// A quantity in whole tonnes of CO2e.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode)]
pub struct Qty(pub u64);

/// An amount of money in micro-US-dollars.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode)]
pub struct Cash(pub i64);

/// Micro-dollars per dollar.
pub const MICROS_PER_USD: i64 = 1_000_000;

impl Price {
    /// The price in ticks.
    #[inline]
    #[must_use]
    pub const fn ticks(self) -> i64 {
        self.0
    }
}

impl Qty {
    /// Zero tonnes.
    pub const ZERO: Qty = Qty(0);

    /// The quantity in tonnes.
    #[inline]
    #[must_use]
    pub const fn tonnes(self) -> u64 {
        self.0
    }

    /// The smaller of two quantities.
    #[inline]
    #[must_use]
    pub fn min(self, other: Qty) -> Qty {
        Qty(self.0.min(other.0))
    }
}

impl Cash {
    /// No money.
    pub const ZERO: Cash = Cash(0);

    /// The value of `qty` tonnes at `price`, for an instrument whose tick is
    /// worth `tick_micros` micro-dollars per tonne. `None` on overflow, which
    /// callers turn into a rejection: no order may be valued by wrapping.
    #[inline]
    #[must_use]
    pub fn of(price: Price, qty: Qty, tick_micros: i64) -> Option<Cash> {
        let per_tonne = price.0.checked_mul(tick_micros)?;
        let total = i128::from(per_tonne) * i128::from(qty.0);
        i64::try_from(total).ok().map(Cash)
    }

    /// `self + other`, `None` on overflow.
    #[inline]
    #[must_use]
    pub fn checked_add(self, other: Cash) -> Option<Cash> {
        self.0.checked_add(other.0).map(Cash)
    }

    /// `self - other`, `None` on overflow.
    #[inline]
    #[must_use]
    pub fn checked_sub(self, other: Cash) -> Option<Cash> {
        self.0.checked_sub(other.0).map(Cash)
    }
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for Qty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for Cash {
    /// Dollars with six decimals, exact: `12.340000`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let per = MICROS_PER_USD.unsigned_abs();
        write!(f, "{sign}{}.{:06}", abs / per, abs % per)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cash_of_price_and_qty_uses_the_tick_value() {
        // 24.50 USD at a 0.01 tick is 2450 ticks; 10 t of it is 245 USD.
        let cash = Cash::of(Price(2450), Qty(10), 10_000).unwrap();
        assert_eq!(cash, Cash(245 * MICROS_PER_USD));
        assert_eq!(cash.to_string(), "245.000000");
    }

    #[test]
    fn cash_of_overflow_is_none_not_wrapped() {
        assert_eq!(Cash::of(Price(i64::MAX), Qty(2), 1), None);
        assert_eq!(Cash::of(Price(1), Qty(u64::MAX), 10_000), None);
    }

    #[test]
    fn negative_cash_displays_with_sign() {
        assert_eq!(Cash(-1_500_000).to_string(), "-1.500000");
    }
}
