//! The engine state and `apply`, the whole deterministic core: a command in,
//! events out into a caller-owned buffer. No clock, randomness, I/O or
//! hash-order iteration; no allocation in the steady state.

use crate::accounts::Accounts;
use crate::book::{unlink_from, Book};
use crate::command::{Asset, Command, InstrumentSpec, NewOrder, OPERATOR};
use crate::event::Event;
use crate::idmap::IdMap;
use crate::pool::{Pool, Slot, NIL};
use crate::settlement::{trade_id, PendingTrade, PendingTrades, Stage};
use crate::venue::VenueState;
use tonnex_protocol::{CancelReason, Cash, OrderKind, Price, Qty, RejectReason, Side};

mod image;
mod invariants;
mod matching;
mod operations;

pub use image::{InstrumentImage, OrderImage, StateImage};

/// Largest order quantity the engine accepts, in tonnes (2^48, about 2.8e14 t:
/// far above any real lot, and low enough that no balance sum can overflow).
pub const MAX_QTY: u64 = 1 << 48;

/// Most instruments one engine holds (the slot stores the index in 16 bits).
pub const MAX_INSTRUMENTS: u32 = 1 << 16;

/// Below this many resting orders the books fit in the CPU's caches and
/// [`State::prefetch`] does nothing (32 768 slots are 1.5 MiB).
pub const PREFETCH_MIN_ORDERS: usize = 1 << 15;

/// The stages of [`State::prefetch`], each reading only what the stage
/// before it brought into cache. Suggested distances ahead of the command
/// being applied: `Index` 6, `Order` 3, `Links` 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrefetchStage {
    /// The id index bucket of the command's order.
    Index,
    /// The order's slot (cancel, replace), or the order a new one would
    /// queue behind.
    Order,
    /// A cancelled or replaced order's neighbours in its price level.
    Links,
}

/// Hints the CPU to load `slot`'s cache line.
#[inline(always)]
fn prefetch_slot(slot: &Slot) {
    crate::idmap::prefetch_line(std::ptr::from_ref(slot).cast());
}

/// How a `State` is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct EngineConfig {
    /// Enforce account holds (cash and credits). The replay tool runs without.
    pub holds: bool,
    /// Resting orders to preallocate room for.
    pub order_capacity: usize,
    /// Prices per book side kept in the dense, array-indexed window; prices
    /// outside it use a slower ordered map. Instruments whose band is no
    /// wider never leave the window.
    pub window_ticks: i64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            holds: true,
            order_capacity: 1 << 16,
            window_ticks: crate::ladder::DEFAULT_WINDOW_TICKS,
        }
    }
}

/// The whole engine: books, the order pool and id index, account holds.
#[derive(Clone, Debug)]
pub struct State {
    config: EngineConfig,
    books: Vec<Book>,
    pool: Pool,
    ids: IdMap,
    accounts: Accounts,
    last_seq: u64,
    /// The venue's bookkeeping (client ids, claims, holds, attestations).
    venue: VenueState,
    /// Trades booked (with holds) and not yet finished by settlement.
    trades: PendingTrades,
    /// Fills of the command being applied so far (its trades' ids).
    fills_in_command: u64,
    /// Highest order id ever accepted: a new id above it cannot be a
    /// duplicate, so the common case (venue ids only grow) skips a probe.
    max_order_id: u64,
    /// Reused buffers for the rare walks over many orders (mass cancel, halt).
    scratch_slots: Vec<u32>,
    scratch_prices: Vec<i64>,
}

/// The incoming side of a match: a new order, or a replace re-entering.
struct Taker {
    id: u64,
    account: u64,
    instrument: u32,
    side: Side,
    /// Worst acceptable price; `None` for a market order.
    limit: Option<i64>,
    open: u64,
    floor_ticks: u32,
    /// A buy that skips asks below its floor: the lowest ask it may take.
    from: Option<i64>,
    /// With holds: cash (buy) or tonnes (sell) still locked for this order.
    hold: i64,
    /// Market buy with holds: spend only what `hold` can pay for.
    budgeted: bool,
}

impl State {
    /// An empty engine.
    #[must_use]
    pub fn new(config: EngineConfig) -> State {
        State {
            config,
            books: Vec::new(),
            pool: Pool::with_capacity(config.order_capacity),
            ids: IdMap::with_capacity(config.order_capacity),
            accounts: Accounts::default(),
            last_seq: 0,
            venue: VenueState::default(),
            trades: PendingTrades::default(),
            fills_in_command: 0,
            max_order_id: 0,
            scratch_slots: Vec::new(),
            scratch_prices: Vec::new(),
        }
    }

    /// The sequence number of the last command applied (0: none yet).
    #[must_use]
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The engine's configuration.
    #[must_use]
    pub fn config(&self) -> EngineConfig {
        self.config
    }

    /// Instruments, by index.
    #[must_use]
    pub fn books(&self) -> &[Book] {
        &self.books
    }

    /// Account balances.
    #[must_use]
    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// Resting orders across all books.
    #[must_use]
    pub fn resting_orders(&self) -> usize {
        self.pool.live()
    }

    /// The resting order `id`, if live.
    #[must_use]
    pub fn order(&self, id: u64) -> Option<&Slot> {
        self.ids.get(id, &self.pool).map(|s| self.pool.get(s))
    }

    /// The pool slot at `index` (for walking a level's FIFO from `Level::head`).
    #[must_use]
    pub fn slot(&self, index: u32) -> &Slot {
        self.pool.get(index)
    }

    /// Visits instrument `instrument`'s resting orders in book order (see [`Book::walk`]).
    pub fn walk_book(&self, instrument: usize, visit: impl FnMut(u32, &Slot)) {
        self.books[instrument].walk(&self.pool, &mut Vec::new(), visit);
    }

    /// Memory per resting order at the pool's high-water mark: one 48-byte
    /// slot per order plus the id index's buckets, divided by the orders
    /// resting at that mark. (Price levels scale with prices, not orders.)
    #[must_use]
    pub fn bytes_per_resting_order(&self) -> usize {
        let peak = self.pool.high_water().max(1);
        (peak * std::mem::size_of::<Slot>() + self.ids.reserved_bytes()) / peak
    }

    /// Most orders that have rested at once.
    #[must_use]
    pub fn peak_resting_orders(&self) -> usize {
        self.pool.high_water()
    }

    /// Hints the CPU to start loading what `command` will touch, one stage
    /// of a three-stage pipeline (see [`PrefetchStage`]). A caller holding a
    /// queue of commands (the replay tool; the venue's engine thread and its
    /// input ring) overlaps the coming commands' cache misses with the
    /// current one's work. Changes nothing.
    #[inline]
    pub fn prefetch(&self, command: &Command, stage: PrefetchStage) {
        // The books fit in cache: the hints would only cost time.
        if self.pool.live() >= PREFETCH_MIN_ORDERS {
            self.prefetch_stage(command, stage);
        }
    }

    #[inline(never)]
    fn prefetch_stage(&self, command: &Command, stage: PrefetchStage) {
        let (order_id, new) = match *command {
            Command::New(ref order) => (order.id, Some(order)),
            Command::Cancel { order_id, .. } | Command::Replace { order_id, .. } => {
                (order_id, None)
            }
            _ => return,
        };
        match stage {
            PrefetchStage::Index => self.ids.prefetch_bucket(order_id),
            PrefetchStage::Order => match new {
                None => self.ids.prefetch_slot(order_id, &self.pool),
                Some(order) => {
                    // The order a new one would queue behind.
                    if let Some(book) = self.books.get(order.instrument as usize) {
                        let tail = book.side(order.side).level(order.price.ticks()).tail;
                        if tail != NIL {
                            prefetch_slot(self.pool.get(tail));
                        }
                    }
                }
            },
            PrefetchStage::Links => {
                if new.is_none() {
                    if let Some(index) = self.ids.get(order_id, &self.pool) {
                        let slot = self.pool.get(index);
                        for neighbour in [slot.prev, slot.next] {
                            if neighbour != NIL {
                                prefetch_slot(self.pool.get(neighbour));
                            }
                        }
                    }
                }
            }
        }
    }

    /// Applies command `seq` (which must follow the last one) and appends its
    /// events to `out`.
    pub fn apply(&mut self, seq: u64, command: &Command, out: &mut Vec<Event>) {
        assert_eq!(seq, self.last_seq + 1, "command sequence gap");
        self.last_seq = seq;
        self.fills_in_command = 0;
        let first_event = out.len();
        // An admin action is its inner command, journaled with who and why.
        let command = command.acting();
        self.apply_to_books(command, out);
        if self.venue.wants(command) {
            self.venue.apply(seq, command, &out[first_event..]);
        }
    }

    /// The venue's bookkeeping beside the books.
    #[must_use]
    pub fn venue(&self) -> &VenueState {
        &self.venue
    }

    /// Trades booked and not yet finished by settlement.
    #[must_use]
    pub fn pending_trades(&self) -> &PendingTrades {
        &self.trades
    }

    #[inline]
    fn apply_to_books(&mut self, command: &Command, out: &mut Vec<Event>) {
        match *command {
            Command::New(ref order) => self.new_order(order, out),
            Command::Scoped(ref scoped) => self.new_order(&scoped.order, out),
            Command::Venue(_) => out.push(Event::Applied),
            // `apply` unwraps admin actions; a nested one does nothing.
            Command::Admin(_) => reject(out, 0, RejectReason::InvalidRequest),
            Command::Cancel { order_id, account } => self.cancel(order_id, account, out),
            Command::Replace {
                order_id,
                account,
                price,
                qty,
            } => self.replace(order_id, account, price, qty, out),
            Command::MassCancel {
                account,
                instrument,
            } => self.mass_cancel(account, instrument, out),
            Command::AddInstrument { instrument, spec } => {
                self.add_instrument(instrument, spec, out)
            }
            Command::Halt {
                instrument,
                cancel_resting,
            } => self.halt(instrument, cancel_resting, out),
            Command::Resume { instrument } => match self.books.get_mut(instrument as usize) {
                Some(book) => {
                    book.halted = false;
                    out.push(Event::Applied);
                }
                None => reject(out, 0, RejectReason::UnknownInstrument),
            },
            Command::Deposit { account, asset } => self.deposit(account, asset, out),
            Command::Withdraw { account, asset } => self.withdraw(account, asset, out),
            Command::Settlement(ref batch) => {
                let instruments = self.books.len() as u32;
                self.trades
                    .apply(batch, &mut self.accounts, instruments, out);
            }
        }
    }
}

#[inline]
fn reject(out: &mut Vec<Event>, order_id: u64, reason: RejectReason) {
    out.push(Event::Rejected { order_id, reason });
}

/// Whether a `side` order at `price` would cross the opposite best.
#[inline]
fn crosses(book: &Book, side: Side, price: i64) -> bool {
    match side {
        Side::Buy => book.asks.best().is_some_and(|ask| price >= ask),
        Side::Sell => book.bids.best().is_some_and(|bid| price <= bid),
    }
}

/// The best price of `ladder` a taker may take: the best, or for a buy
/// that skips asks below its floor (`from`), the lowest ask at or above it.
#[inline]
fn first_reachable(ladder: &crate::ladder::Ladder, from: Option<i64>) -> Option<i64> {
    let best = ladder.best();
    match from {
        Some(floor) if best.is_some_and(|b| b < floor) => ladder.next_worse(floor - 1),
        _ => best,
    }
}

/// Engine floor check for an unattested buy: a limit below the floor, or a
/// best ask below the floor that the order would take.
#[inline]
fn breaks_floor(book: &Book, limit: Option<i64>, floor: i64) -> bool {
    if limit.is_some_and(|l| l < floor) {
        return true;
    }
    book.asks
        .best()
        .is_some_and(|ask| ask < floor && limit.is_none_or(|l| l >= ask))
}

/// Tonnes of other accounts' orders a fill-or-kill could take, counted up to `need`.
fn available(
    book: &Book,
    pool: &Pool,
    side: Side,
    limit: i64,
    from: Option<i64>,
    account: u64,
    need: u64,
) -> u64 {
    let ladder = book.side(side.opposite());
    let mut got = 0;
    let mut price = first_reachable(ladder, from);
    while let Some(p) = price {
        let acceptable = match side {
            Side::Buy => p <= limit,
            Side::Sell => p >= limit,
        };
        if !acceptable {
            break;
        }
        let mut cursor = ladder.level(p).head;
        while cursor != NIL {
            let slot = pool.get(cursor);
            if slot.account != account {
                got += slot.qty;
                if got >= need {
                    return got;
                }
            }
            cursor = slot.next;
        }
        price = ladder.next_worse(p);
    }
    got
}

/// What a resting order of `qty` at `price` holds: cash for a bid, tonnes for an ask.
#[inline]
fn resting_value(side: Side, price: i64, qty: u64, tick_micros: i64) -> i64 {
    checked_resting_value(side, price, qty, tick_micros).expect("hold of a resting order overflows")
}

#[inline]
fn checked_resting_value(side: Side, price: i64, qty: u64, tick_micros: i64) -> Option<i64> {
    match side {
        Side::Buy => Cash::of(Price(price), Qty(qty), tick_micros).map(|c| c.0),
        Side::Sell => Some(qty as i64),
    }
}

/// Releases everything a resting order held.
fn release_resting(accounts: &mut Accounts, slot: &Slot, tick_micros: i64) {
    let side = slot.side();
    let amount = resting_value(side, slot.price, slot.qty, tick_micros);
    let i = accounts
        .find(slot.account)
        .expect("resting order's account");
    let account = accounts.at_mut(i);
    match side {
        Side::Buy => account.cash.release(amount),
        Side::Sell => account
            .credits_mut(u32::from(slot.instrument))
            .release(amount),
    }
}

/// A fill's effect on holds: the buyer's cash and the seller's credits go
/// from locked to pending settlement; each side is due the other leg; the
/// trade waits for settlement's outcome.
fn book_trade(accounts: &mut Accounts, trades: &mut PendingTrades, trade: PendingTrade) {
    let PendingTrade {
        buyer,
        seller,
        instrument,
        cash,
        tonnes,
        ..
    } = trade;
    trades.book(trade);
    let b = accounts.find(buyer).expect("buyer has a hold");
    let buyer = accounts.at_mut(b);
    buyer.cash.trade_out(cash);
    buyer.credits_mut(instrument).pending_in += tonnes;
    let s = accounts.find(seller).expect("seller has a hold");
    let seller = accounts.at_mut(s);
    seller.credits_mut(instrument).trade_out(tonnes);
    seller.cash.pending_in += cash;
}
