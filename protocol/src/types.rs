//! Small enums and fixed-size values shared by the engine and the wire.

use bincode::{Decode, Encode};
use std::fmt;

/// Buy or sell.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub enum Side {
    /// Bid: pays cash, receives credits.
    Buy = 0,
    /// Ask: delivers credits, receives cash.
    Sell = 1,
}

impl Side {
    /// The other side.
    #[inline]
    #[must_use]
    pub const fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }

    /// `B` or `S`, as in the workload and dump formats.
    #[must_use]
    pub const fn letter(self) -> char {
        match self {
            Side::Buy => 'B',
            Side::Sell => 'S',
        }
    }
}

/// How an order executes (FORMAT.md rules 2-6).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub enum OrderKind {
    /// Matches up to its limit; the remainder rests.
    Limit = 0,
    /// Matches at any price; the remainder is cancelled.
    Market = 1,
    /// Immediate-or-cancel limit: the remainder is cancelled.
    Ioc = 2,
    /// Fill-or-kill limit: executes whole against other accounts or not at all.
    Fok = 3,
    /// Rests only; rejected if it would cross.
    PostOnly = 4,
}

impl OrderKind {
    /// `L`, `M`, `I`, `F` or `P`, as in the workload format.
    #[must_use]
    pub const fn letter(self) -> char {
        match self {
            OrderKind::Limit => 'L',
            OrderKind::Market => 'M',
            OrderKind::Ioc => 'I',
            OrderKind::Fok => 'F',
            OrderKind::PostOnly => 'P',
        }
    }
}

/// The buyer's Ongoing Emissions Responsibility pathway the pre-router chose.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub enum Pathway {
    /// Not a compliance-routed purchase (sells, market makers, sellers).
    None = 0,
    /// Engaged pathway: no price floor.
    Engaged = 1,
    /// Recognised pathway (default floor 20 USD/t).
    Recognised = 2,
    /// Leadership pathway (default floor 80 USD/t).
    Leadership = 3,
}

impl Pathway {
    /// The lower-case name used in configuration and JSON.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Pathway::None => "none",
            Pathway::Engaged => "engaged",
            Pathway::Recognised => "recognised",
            Pathway::Leadership => "leadership",
        }
    }
}

/// An instrument symbol, at most [`Symbol::CAPACITY`] bytes of ASCII, stored
/// inline so commands stay fixed-size and copyable.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Encode, Decode)]
pub struct Symbol {
    len: u8,
    bytes: [u8; Symbol::CAPACITY],
}

impl Symbol {
    /// Longest symbol in bytes.
    pub const CAPACITY: usize = 23;

    /// A symbol from text; `None` when it is empty, too long or not printable ASCII.
    #[must_use]
    pub fn new(text: &str) -> Option<Symbol> {
        let raw = text.as_bytes();
        if raw.is_empty() || raw.len() > Self::CAPACITY || !raw.iter().all(|b| b.is_ascii_graphic())
        {
            return None;
        }
        let mut bytes = [0u8; Self::CAPACITY];
        bytes[..raw.len()].copy_from_slice(raw);
        Some(Symbol {
            len: raw.len() as u8,
            bytes,
        })
    }

    /// The symbol's text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored (checked in `new`; decoding re-checks in the codec layer).
        std::str::from_utf8(&self.bytes[..usize::from(self.len).min(Self::CAPACITY)]).unwrap_or("?")
    }
}

impl Ord for Symbol {
    /// Byte-wise text order, as `str` compares: "AAA" < "AB".
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for Symbol {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Symbol({})", self.as_str())
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbol_accepts_ascii_and_refuses_empty_long_or_spaces() {
        assert_eq!(
            Symbol::new("NBR-2024.CCP").unwrap().as_str(),
            "NBR-2024.CCP"
        );
        assert!(Symbol::new("").is_none());
        assert!(Symbol::new("A B").is_none());
        assert!(Symbol::new(&"X".repeat(24)).is_none());
    }

    #[test]
    fn symbols_order_by_text() {
        assert!(Symbol::new("AAA").unwrap() < Symbol::new("AAB").unwrap());
        assert!(Symbol::new("AAA").unwrap() < Symbol::new("AB").unwrap());
    }
}
