//! The order-flow workload format v1 (`shared/workloads/FORMAT.md`): parsing
//! a whole file into engine commands for one instrument.
//!
//! ```text
//! N <order_id> <account> <side> <type> <price_ticks> <qty>   new order
//! C <order_id>                                               cancel
//! R <order_id> <new_price_ticks> <new_qty>                   cancel/replace
//! ```
//! Only the syntax is checked here; what the numbers mean (zero quantities,
//! prices outside the band, unknown ids) is the engine's business and comes
//! back as rejections.

use std::fmt;

use crate::command::{Command, Compliance, InstrumentSpec, NewOrder, OPERATOR};
use tonnex_protocol::{Cash, OrderKind, Price, Qty, Side, Symbol};

/// The instrument every workload command trades: index 0, 0.01 USD ticks,
/// any positive price.
#[must_use]
pub fn instrument() -> InstrumentSpec {
    InstrumentSpec {
        symbol: Symbol::new("WORKLOAD").expect("valid symbol"),
        tick_micros: 10_000,
        min_price: Price(1),
        max_price: Price(i64::MAX),
    }
}

/// A line that is not a valid workload command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Parses a whole workload. Comment (`#`) and blank lines are skipped.
pub fn parse(text: &str) -> Result<Vec<Command>, ParseError> {
    let mut commands = Vec::with_capacity(text.len() / 24);
    for (number, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let command = parse_line(line).map_err(|message| ParseError {
            line: number + 1,
            message,
        })?;
        commands.push(command);
    }
    Ok(commands)
}

fn parse_line(line: &str) -> Result<Command, String> {
    let mut fields = line.split(' ');
    let kind = fields.next().unwrap_or("");
    let mut values = [""; 6];
    let mut count = 0;
    for field in fields {
        if count == values.len() {
            return Err(format!("too many fields for '{kind}'"));
        }
        values[count] = field;
        count += 1;
    }
    let want = match kind {
        "N" => 6,
        "C" => 1,
        "R" => 3,
        other => return Err(format!("unknown command '{other}' (expected N, C or R)")),
    };
    if count != want {
        return Err(format!("'{kind}' takes {want} fields, found {count}"));
    }
    let order_id = number(values[0], "order_id")?;
    if order_id == 0 {
        return Err("order_id must be positive".to_string());
    }
    match kind {
        "N" => {
            let account = number(values[1], "account")?;
            if account == 0 {
                return Err("account must be positive".to_string());
            }
            let side = match values[2] {
                "B" => Side::Buy,
                "S" => Side::Sell,
                other => return Err(format!("side must be B or S, found '{other}'")),
            };
            let kind = match values[3] {
                "L" => OrderKind::Limit,
                "M" => OrderKind::Market,
                "I" => OrderKind::Ioc,
                "F" => OrderKind::Fok,
                "P" => OrderKind::PostOnly,
                other => return Err(format!("type must be one of L M I F P, found '{other}'")),
            };
            Ok(Command::New(NewOrder {
                id: order_id,
                account,
                client_order_id: 0,
                instrument: 0,
                side,
                kind,
                price: Price(price(values[4], "price_ticks")?),
                qty: Qty(number(values[5], "qty")?),
                cash_budget: Cash::ZERO,
                compliance: Compliance::NONE,
                ts_ns: 0,
            }))
        }
        "C" => Ok(Command::Cancel {
            order_id,
            account: OPERATOR,
        }),
        _ => Ok(Command::Replace {
            order_id,
            account: OPERATOR,
            price: Price(price(values[1], "new_price_ticks")?),
            qty: Qty(number(values[2], "new_qty")?),
        }),
    }
}

fn number(text: &str, field: &str) -> Result<u64, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{field} must be a non-negative integer, found '{text}'"
        ));
    }
    text.parse::<u64>()
        .map_err(|_| format!("{field} '{text}' does not fit in 64 bits"))
}

fn price(text: &str, field: &str) -> Result<i64, String> {
    let value = number(text, field)?;
    i64::try_from(value).map_err(|_| format!("{field} '{text}' is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_command_and_skips_comments_and_blanks() {
        let text = "# header\n\nN 1 7 B L 2500 10\nN 2 8 S M 0 5\nC 1\nR 3 2501 4\n";
        let commands = parse(text).unwrap();
        assert_eq!(commands.len(), 4);
        match commands[1] {
            Command::New(order) => {
                assert_eq!(
                    (order.id, order.account, order.side, order.kind),
                    (2, 8, Side::Sell, OrderKind::Market)
                );
            }
            ref other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            commands[2],
            Command::Cancel {
                order_id: 1,
                account: OPERATOR
            }
        );
        assert_eq!(
            commands[3],
            Command::Replace {
                order_id: 3,
                account: OPERATOR,
                price: Price(2501),
                qty: Qty(4)
            }
        );
    }

    #[test]
    fn errors_name_the_line_and_the_field() {
        let cases = [
            ("N 1 7 B L 2500\n", "'N' takes 6 fields, found 5"),
            ("N 1 7 X L 2500 10\n", "side must be B or S, found 'X'"),
            (
                "N 1 7 B Q 2500 10\n",
                "type must be one of L M I F P, found 'Q'",
            ),
            (
                "N 1 7 B L -3 10\n",
                "price_ticks must be a non-negative integer, found '-3'",
            ),
            ("N 0 7 B L 3 10\n", "order_id must be positive"),
            ("X 1\n", "unknown command 'X' (expected N, C or R)"),
            ("C 1 2\n", "'C' takes 1 fields, found 2"),
            (
                "R 1 2 x\n",
                "new_qty must be a non-negative integer, found 'x'",
            ),
            ("N  1 7 B L 3 10\n", "too many fields for 'N'"),
        ];
        for (text, message) in cases {
            let full = format!("# ok\nC 5\n{text}");
            let error = parse(&full).unwrap_err();
            assert_eq!(error.line, 3, "{text}");
            assert_eq!(error.message, message, "{text}");
        }
    }
}
