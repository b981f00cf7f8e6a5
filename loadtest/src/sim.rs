//! What the simulated traders send: market makers quoting two-sided around
//! a drifting mid, cancelling and replacing, and takers crossing the spread.
//! Seeded, so a run's order flow is reproducible.

/// A small, fast, seeded generator (xorshift64*); not for cryptography.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value; 0 is remapped).
    #[must_use]
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `low..=high`.
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next_u64() % (high - low + 1)
    }

    /// True with probability `percent` / 100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }
}

/// Shares of each action in the order flow, in percent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mix {
    /// New resting limit orders on the passive side of the mid.
    pub quote: u64,
    /// Cancels of one of the session's resting orders.
    pub cancel: u64,
    /// Replaces (new price and quantity) of a resting order.
    pub replace: u64,
    /// Immediate-or-cancel orders crossing the spread.
    pub take: u64,
}

impl Default for Mix {
    fn default() -> Mix {
        Mix {
            quote: 55,
            cancel: 20,
            replace: 10,
            take: 15,
        }
    }
}

impl Mix {
    /// Parses `quote=55,cancel=20,replace=10,take=15` (any order; shares
    /// must add up to 100).
    pub fn parse(text: &str) -> Result<Mix, String> {
        let mut mix = Mix {
            quote: 0,
            cancel: 0,
            replace: 0,
            take: 0,
        };
        for part in text.split(',') {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("--mix: '{part}' is not name=percent"))?;
            let value: u64 = value
                .trim()
                .parse()
                .map_err(|_| format!("--mix: '{value}' is not a whole percentage"))?;
            match key.trim() {
                "quote" => mix.quote = value,
                "cancel" => mix.cancel = value,
                "replace" => mix.replace = value,
                "take" => mix.take = value,
                other => {
                    return Err(format!(
                        "--mix: unknown action '{other}' (quote, cancel, replace, take)"
                    ))
                }
            }
        }
        let total = mix.quote + mix.cancel + mix.replace + mix.take;
        if total != 100 {
            return Err(format!("--mix: shares add up to {total}, not 100"));
        }
        Ok(mix)
    }
}

/// One action the generator chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// A resting limit order.
    Quote {
        /// Instrument.
        instrument: u32,
        /// 0 buy, 1 sell.
        side: u8,
        /// Ticks.
        price: i64,
        /// Tonnes.
        qty: u64,
    },
    /// Cancel the resting order at this index of the session's live list.
    Cancel(usize),
    /// Replace the resting order at this index with a new price and quantity.
    Replace(usize, i64, u64),
    /// An IOC order through the mid.
    Take {
        /// Instrument.
        instrument: u32,
        /// 0 buy, 1 sell.
        side: u8,
        /// Ticks (aggressive).
        price: i64,
        /// Tonnes.
        qty: u64,
    },
}

/// The drifting mid prices and the action mix, shared by all sessions.
pub struct Market {
    rng: Rng,
    mix: Mix,
    instruments: Vec<u32>,
    mids: Vec<i64>,
    low: i64,
    high: i64,
    /// A session keeps at most this many resting orders; beyond, it cancels.
    pub max_live: usize,
}

impl Market {
    /// Mids start at `mid` ticks and stay within `low..=high`.
    #[must_use]
    pub fn new(
        seed: u64,
        mix: Mix,
        instruments: Vec<u32>,
        mid: i64,
        low: i64,
        high: i64,
    ) -> Market {
        let count = instruments.len();
        Market {
            rng: Rng::new(seed),
            mix,
            instruments,
            mids: vec![mid; count],
            low,
            high,
            max_live: 500,
        }
    }

    /// The current mid of `instrument` (the first instrument's if it is not traded).
    #[must_use]
    pub fn mid(&self, instrument: u32) -> i64 {
        let at = self
            .instruments
            .iter()
            .position(|i| *i == instrument)
            .unwrap_or(0);
        self.mids[at]
    }

    /// The next action for a session holding `live` resting orders, each
    /// `(instrument, side)` known through `side_of`.
    pub fn next(&mut self, live: usize, side_of: impl Fn(usize) -> (u32, u8)) -> Action {
        let which = self.rng.range(0, self.instruments.len() as u64 - 1) as usize;
        let instrument = self.instruments[which];
        if self.rng.next_u64().is_multiple_of(32) {
            let step = if self.rng.percent(50) { 1 } else { -1 };
            self.mids[which] = (self.mids[which] + step).clamp(self.low + 20, self.high - 20);
        }
        let mid = self.mids[which];
        let roll = self.rng.range(0, 99);
        let mix = self.mix;
        let must_cancel = live >= self.max_live;
        if live > 0 && (must_cancel || (roll >= mix.quote && roll < mix.quote + mix.cancel)) {
            return Action::Cancel(self.rng.range(0, live as u64 - 1) as usize);
        }
        if live > 0 && roll >= mix.quote + mix.cancel && roll < mix.quote + mix.cancel + mix.replace
        {
            let index = self.rng.range(0, live as u64 - 1) as usize;
            let (instrument, side) = side_of(index);
            let mid = self.mids[self
                .instruments
                .iter()
                .position(|i| *i == instrument)
                .unwrap_or(0)];
            let offset = self.rng.range(1, 8) as i64;
            let price = if side == 0 {
                mid - offset
            } else {
                mid + offset
            };
            return Action::Replace(index, price, self.rng.range(1, 10));
        }
        let side = (self.rng.next_u64() % 2) as u8;
        if roll >= 100 - mix.take {
            let price = if side == 0 { mid + 5 } else { mid - 5 };
            return Action::Take {
                instrument,
                side,
                price,
                qty: self.rng.range(1, 5),
            };
        }
        let offset = self.rng.range(1, 8) as i64;
        Action::Quote {
            instrument,
            side,
            price: if side == 0 {
                mid - offset
            } else {
                mid + offset
            },
            qty: self.rng.range(1, 10),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_parses_and_must_add_up() {
        assert_eq!(
            Mix::parse("take=15,quote=55,cancel=20,replace=10").unwrap(),
            Mix::default()
        );
        assert!(Mix::parse("quote=50").unwrap_err().contains("add up to 50"));
        assert!(Mix::parse("quote=x").is_err());
        assert!(Mix::parse("sell=100")
            .unwrap_err()
            .contains("unknown action"));
    }

    #[test]
    fn the_flow_follows_the_mix_and_quotes_stay_on_the_passive_side() {
        let mut market = Market::new(7, Mix::default(), vec![0], 2500, 1, 100_000);
        let (mut quotes, mut cancels, mut replaces, mut takes) = (0, 0, 0, 0);
        for _ in 0..100_000 {
            match market.next(10, |_| (0, 1)) {
                Action::Quote {
                    side, price, qty, ..
                } => {
                    quotes += 1;
                    let mid = market.mids[0];
                    assert!((1..=10).contains(&qty));
                    // The mid may have moved one tick since the quote was priced.
                    if side == 0 {
                        assert!(price <= mid + 1);
                    } else {
                        assert!(price >= mid - 1);
                    }
                }
                Action::Cancel(i) => {
                    assert!(i < 10);
                    cancels += 1;
                }
                Action::Replace(i, _, _) => {
                    assert!(i < 10);
                    replaces += 1;
                }
                Action::Take { .. } => takes += 1,
            }
        }
        for (count, share) in [(quotes, 55), (cancels, 20), (replaces, 10), (takes, 15)] {
            let expected = share * 1000;
            assert!(
                (count as i64 - expected).abs() < 1500,
                "{count} vs {expected}"
            );
        }
    }

    #[test]
    fn a_full_session_cancels_instead_of_quoting() {
        let mut market = Market::new(1, Mix::default(), vec![0], 2500, 1, 100_000);
        for _ in 0..1000 {
            assert!(matches!(market.next(500, |_| (0, 0)), Action::Cancel(_)));
        }
    }
}
