//! The project's own workload generator (`tonnex-replay generate`): FORMAT.md
//! order flow, deterministic for a seed, written without Python or anything
//! outside the repository. The engine itself (holds off) is the generator's
//! book: every cancel and replace it writes names an order that is live at
//! that point, because it asks the book.
//!
//! Profiles: `steady` trades continuously around a slowly drifting fair
//! price (passive limits at a geometric distance from the touch, cancels,
//! replaces, aggressive orders of every kind; a few thousand resting
//! orders); `deep` first builds a book of `depth` resting orders over about
//! two thousand price levels, then cancels, refills and sweeps through it.
//! Mix `basic` writes only `L`, `M` and `C` and gives aggressive orders
//! accounts that never rest an order, so no self-trade prevention happens;
//! `full` writes every kind.

use std::io::{self, Write};

use crate::command::{Command, Compliance, NewOrder};
use crate::event::Event;
use crate::state::{EngineConfig, State};
use tonnex_protocol::{Cash, OrderKind, Price, Qty, Side};

/// Which order flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// Continuous trading around a drifting fair price.
    Steady,
    /// A deep book, then cancels, refills and sweeps.
    Deep,
}

/// Which command kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mix {
    /// `L`, `M` and `C` only, never a self-trade.
    Basic,
    /// Every kind.
    Full,
}

/// What to generate.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Order flow.
    pub profile: Profile,
    /// Command kinds.
    pub mix: Mix,
    /// Commands to write.
    pub ops: usize,
    /// Seed: the same options give the same bytes.
    pub seed: u64,
    /// `deep`: resting orders built first (default: min(1 M, 70 % of ops)).
    pub depth: Option<usize>,
}

/// Accounts that rest orders (1..=50, a few very active); aggressive orders
/// of the basic mix come from accounts above them, which never rest.
const RESTING_ACCOUNTS: u64 = 50;

/// xorshift64*: small, fast, the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// Geometric on 0, 1, 2, ... with success probability `p`.
    fn geometric(&mut self, p: f64) -> i64 {
        ((1.0 - self.unit()).ln() / (1.0 - p).ln()) as i64
    }
}

struct Generator<'a, W: Write> {
    options: Options,
    rng: Rng,
    state: State,
    seq: u64,
    next_id: u64,
    /// Ids that were resting when written; some have traded or left since
    /// (checked against the book when drawn, and dropped).
    live: Vec<u64>,
    fair: f64,
    events: Vec<Event>,
    out: &'a mut W,
    written: usize,
}

impl<W: Write> Generator<'_, W> {
    fn basic(&self) -> bool {
        self.options.mix == Mix::Basic
    }

    /// Account of a passive order: 1..=50, the first ones far more often.
    fn account(&mut self) -> u64 {
        let u = self.rng.unit();
        1 + ((u * u * u) * RESTING_ACCOUNTS as f64) as u64
    }

    /// 1..=5000 t, heavy tailed (median about 20), often round lots.
    fn qty(&mut self) -> u64 {
        let pareto = 8.0 / (1.0 - self.rng.unit()).powf(1.0 / 1.1);
        let mut q = pareto as u64;
        if q > 5000 {
            q = 5000 - self.rng.below(1000);
        }
        if q >= 100 && self.rng.unit() < 0.6 {
            q = q / 50 * 50;
        }
        q.max(1)
    }

    fn best(&self, side: Side) -> Option<i64> {
        let book = &self.state.books()[0];
        book.side(side).best()
    }

    /// Applies `command` to the book and writes `line`.
    fn emit(&mut self, line: std::fmt::Arguments<'_>, command: &Command) -> io::Result<()> {
        self.seq += 1;
        self.events.clear();
        self.state.apply(self.seq, command, &mut self.events);
        writeln!(self.out, "{line}")?;
        self.written += 1;
        Ok(())
    }

    fn new_order(
        &mut self,
        account: u64,
        side: Side,
        kind: OrderKind,
        price: i64,
        qty: u64,
    ) -> io::Result<u64> {
        let id = self.next_id;
        self.next_id += 1;
        let (s, k) = (side.letter(), kind.letter());
        let order = NewOrder {
            id,
            account,
            client_order_id: 0,
            instrument: 0,
            side,
            kind,
            price: Price(price),
            qty: Qty(qty),
            cash_budget: Cash::ZERO,
            compliance: Compliance::NONE,
            ts_ns: 0,
        };
        self.emit(
            format_args!("N {id} {account} {s} {k} {price} {qty}"),
            &Command::New(order),
        )?;
        if self.state.order(id).is_some() {
            self.live.push(id);
        }
        Ok(id)
    }

    /// A limit that does not cross: a geometric distance from the touch.
    fn passive_price(&mut self, side: Side) -> i64 {
        let fair = self.fair.round() as i64;
        let own = self.best(side);
        let opposite = self.best(side.opposite());
        let reference = match own {
            Some(p) if self.rng.unit() >= 0.3 => p,
            _ => match side {
                Side::Buy => fair - 1,
                Side::Sell => fair + 1,
            },
        };
        let distance = if self.rng.unit() < 0.08 {
            20 + self.rng.below(400) as i64
        } else {
            self.rng.geometric(0.2)
        };
        let mut price = match side {
            Side::Buy => reference - distance,
            Side::Sell => reference + distance,
        };
        if let Some(o) = opposite {
            price = match side {
                Side::Buy => price.min(o - 1),
                Side::Sell => price.max(o + 1),
            };
        }
        price.max(1)
    }

    fn side(&mut self) -> Side {
        if self.rng.unit() < 0.5 {
            Side::Buy
        } else {
            Side::Sell
        }
    }

    fn passive(&mut self) -> io::Result<()> {
        let side = self.side();
        let price = self.passive_price(side);
        let kind = if !self.basic() && self.rng.unit() < 0.1 {
            OrderKind::PostOnly
        } else {
            OrderKind::Limit
        };
        let (account, qty) = (self.account(), self.qty());
        self.new_order(account, side, kind, price, qty).map(|_| ())
    }

    /// A live resting order, drawn uniformly (stale ids dropped on the way).
    fn draw_live(&mut self) -> Option<u64> {
        while !self.live.is_empty() {
            let i = self.rng.below(self.live.len() as u64) as usize;
            let id = self.live[i];
            if self.state.order(id).is_some() {
                return Some(id);
            }
            self.live.swap_remove(i);
        }
        None
    }

    fn cancel(&mut self) -> io::Result<bool> {
        let Some(id) = self.draw_live() else {
            return Ok(false);
        };
        let command = Command::Cancel {
            order_id: id,
            account: crate::command::OPERATOR,
        };
        self.emit(format_args!("C {id}"), &command)?;
        Ok(true)
    }

    fn replace(&mut self) -> io::Result<bool> {
        let Some(id) = self.draw_live() else {
            return Ok(false);
        };
        let slot = *self.state.order(id).expect("drawn live");
        let (price, qty) = if self.rng.unit() < 0.5 {
            (slot.price, (slot.qty / 2).max(1))
        } else {
            (self.passive_price(slot.side()), self.qty())
        };
        let command = Command::Replace {
            order_id: id,
            account: crate::command::OPERATOR,
            price: Price(price),
            qty: Qty(qty),
        };
        self.emit(format_args!("R {id} {price} {qty}"), &command)?;
        Ok(true)
    }

    /// An order that takes liquidity: `M`, or in the full mix `I`, `F` or a
    /// crossing `L`, reaching up to `levels` price levels.
    fn aggressive(&mut self, qty: u64) -> io::Result<()> {
        let side = self.side();
        let Some(touch) = self.best(side.opposite()) else {
            return self.passive();
        };
        let account = if self.basic() {
            RESTING_ACCOUNTS + 1 + self.rng.below(10)
        } else {
            self.account()
        };
        let reach = 1 + self.rng.geometric(0.3);
        let limit = match side {
            Side::Buy => touch + reach,
            Side::Sell => (touch - reach).max(1),
        };
        let kind = if self.basic() {
            OrderKind::Market
        } else {
            [
                OrderKind::Market,
                OrderKind::Ioc,
                OrderKind::Fok,
                OrderKind::Limit,
            ][self.rng.below(4) as usize]
        };
        let price = if kind == OrderKind::Market { 0 } else { limit };
        self.new_order(account, side, kind, price, qty).map(|_| ())
    }

    fn drift(&mut self) {
        self.fair = (self.fair + (self.rng.unit() - 0.5) * 0.5).clamp(500.0, 10_000.0);
    }

    fn steady(&mut self) -> io::Result<()> {
        while self.written < self.options.ops {
            self.drift();
            let resting = self.state.resting_orders();
            let roll = self.rng.unit();
            // Hold the book near a few thousand orders.
            let cancel_bias = if resting > 4000 { 0.15 } else { 0.0 };
            if roll < 0.55 - cancel_bias {
                self.passive()?;
            } else if roll < 0.85 {
                if !self.cancel()? {
                    self.passive()?;
                }
            } else if roll < 0.90 {
                let done = if self.basic() {
                    self.cancel()?
                } else {
                    self.replace()?
                };
                if !done {
                    self.passive()?;
                }
            } else {
                let qty = self.qty();
                self.aggressive(qty)?;
            }
        }
        Ok(())
    }

    fn deep(&mut self) -> io::Result<()> {
        let depth = self
            .options
            .depth
            .unwrap_or((self.options.ops * 7 / 10).min(1_000_000))
            .min(self.options.ops);
        while self.written < depth {
            // About two thousand levels each side of the fair price.
            let side = self.side();
            let distance = 1 + self.rng.below(1000) as i64;
            let fair = self.fair as i64;
            let price = match side {
                Side::Buy => fair - distance,
                Side::Sell => fair + distance,
            };
            let (account, qty) = (self.account(), self.qty());
            self.new_order(account, side, OrderKind::Limit, price.max(1), qty)?;
        }
        while self.written < self.options.ops {
            let roll = self.rng.unit();
            if roll < 0.48 {
                if !self.cancel()? {
                    self.passive()?;
                }
            } else if roll < 0.97 {
                self.passive()?;
            } else {
                // A sweep through several levels.
                let qty = self.qty() * (3 + self.rng.below(28));
                self.aggressive(qty)?;
            }
        }
        Ok(())
    }
}

/// Writes the workload of `options` to `out`; returns the commands written.
pub fn generate(options: Options, out: &mut impl Write) -> io::Result<usize> {
    let mut state = State::new(EngineConfig {
        holds: false,
        order_capacity: 1 << 16,
        ..EngineConfig::default()
    });
    let mut events = Vec::new();
    state.apply(
        1,
        &Command::AddInstrument {
            instrument: 0,
            spec: crate::workload::instrument(),
        },
        &mut events,
    );
    let mut generator = Generator {
        options,
        rng: Rng(options.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
        state,
        seq: 1,
        next_id: 1,
        live: Vec::new(),
        fair: 2500.0,
        events,
        out,
        written: 0,
    };
    match options.profile {
        Profile::Steady => generator.steady()?,
        Profile::Deep => generator.deep()?,
    }
    Ok(generator.written)
}
