//! Calendar dates for effective-dated rules: a rules version's
//! `effective_from`, a predicate's `from`/`until`, a CCP label's approval
//! and revocation. A day, never a time: rules change at midnight UTC.

use std::fmt;

/// A day of the proleptic Gregorian calendar, ordered by time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    /// Year, month and day packed as `yyyymmdd` (so comparison is ordering).
    ymd: u32,
}

impl Date {
    /// The earliest day (before any rule takes effect).
    pub const MIN: Date = Date { ymd: 1_01_01 };

    /// The date `year-month-day`, if it exists.
    #[must_use]
    pub fn new(year: u32, month: u32, day: u32) -> Option<Date> {
        let leap =
            (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
        let days = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return None,
        };
        ((1..=9999).contains(&year) && (1..=days).contains(&day)).then_some(Date {
            ymd: year * 10_000 + month * 100 + day,
        })
    }

    /// Parses `YYYY-MM-DD`; what is wrong otherwise.
    pub fn parse(text: &str) -> Result<Date, String> {
        let bad = || format!("'{text}' is not a date (YYYY-MM-DD)");
        let bytes = text.as_bytes();
        if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
            return Err(bad());
        }
        let number = |range: std::ops::Range<usize>| -> Result<u32, String> {
            let part = &text[range];
            if part.bytes().all(|b| b.is_ascii_digit()) {
                part.parse().map_err(|_| bad())
            } else {
                Err(bad())
            }
        };
        Date::new(number(0..4)?, number(5..7)?, number(8..10)?).ok_or_else(bad)
    }

    /// The UTC date `days` days after 1970-01-01.
    #[must_use]
    pub fn from_unix_days(days: i64) -> Date {
        let (year, month, day) = tonnex_protocol::calendar::civil_from_days(days);
        Date {
            ymd: u32::try_from(year * 10_000 + i64::from(month) * 100 + i64::from(day))
                .unwrap_or(0),
        }
    }

    /// Today's UTC date by the system clock: for the edges (the gateway
    /// choosing the rules in force, `check` without `--as-of`), never for
    /// the engine.
    #[must_use]
    pub fn today() -> Date {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Date::from_unix_days(i64::try_from(secs / 86_400).unwrap_or(0))
    }

    /// The year.
    #[must_use]
    pub fn year(self) -> u32 {
        self.ymd / 10_000
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}",
            self.ymd / 10_000,
            self.ymd / 100 % 100,
            self.ymd % 100
        )
    }
}

#[cfg(test)]
mod tests {
    use super::Date;

    #[test]
    fn parses_real_days_only_and_orders_by_time() {
        assert_eq!(Date::parse("2027-02-01").unwrap().to_string(), "2027-02-01");
        assert!(Date::parse("2028-02-29").is_ok());
        for bad in [
            "2027-02-29",
            "2100-02-29",
            "2027-13-01",
            "2027-1-01",
            "27-02-01",
            "2027-02-0x",
            "2027-00-10",
        ] {
            assert!(Date::parse(bad).is_err(), "{bad}");
        }
        assert!(Date::parse("2026-12-31").unwrap() < Date::parse("2027-01-01").unwrap());
    }

    #[test]
    fn unix_days_map_to_their_civil_dates() {
        assert_eq!(Date::from_unix_days(0).to_string(), "1970-01-01");
        assert_eq!(Date::from_unix_days(11_016).to_string(), "2000-02-29");
        assert_eq!(Date::from_unix_days(20_787).to_string(), "2026-11-30");
        assert_eq!(Date::from_unix_days(-1).to_string(), "1969-12-31");
    }
}
