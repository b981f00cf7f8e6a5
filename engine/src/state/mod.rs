//! The engine state and `apply`, the whole deterministic core: a command in,
//! events out into a caller-owned buffer. No clock, randomness, I/O or
//! hash-order iteration; no allocation in the steady state.
//!
//! Rooms: `validation` (a new order's admission, one precedence list),
//! `matching` (the sweep, resting, removal), `holds` (locks, releases, a
//! fill's move to pending settlement), `replace` (cancel and replace),
//! `admin` (mass cancel, halt, listing, deposits, withdrawals), `prefetch`,
//! `image` (snapshots) and `invariants`.

use crate::accounts::Accounts;
use crate::book::{unlink_from, Book};
use crate::command::{Asset, Command, InstrumentSpec, NewOrder, OPERATOR};
use crate::event::Event;
use crate::idmap::IdMap;
use crate::pool::{Pool, Slot, NIL};
use crate::settlement::{trade_id, PendingTrade, PendingTrades, Stage};
use crate::venue::VenueState;
use tonnex_protocol::{CancelReason, Cash, OrderKind, Price, Qty, RejectReason, Side};

mod admin;
mod holds;
mod image;
mod invariants;
mod matching;
mod prefetch;
mod replace;
mod validation;

use self::holds::{book_trade, checked_resting_value, release_resting, resting_value};
pub use self::prefetch::PrefetchStage;
use self::validation::{breaks_floor, crosses, Admitted};

pub use image::{InstrumentImage, OrderImage, SnapshotCopy, StateImage};

/// Largest order quantity the engine accepts, in tonnes (2^48, about 2.8e14 t:
/// far above any real lot, and low enough that no balance sum can overflow).
pub const MAX_QTY: u64 = 1 << 48;

/// Most instruments one engine holds (the slot stores the index in 16 bits).
pub const MAX_INSTRUMENTS: u32 = 1 << 16;

/// Below this many resting orders the books fit in the CPU's caches and
/// [`State::prefetch`] does nothing (32 768 slots are 1.5 MiB).
pub const PREFETCH_MIN_ORDERS: usize = 1 << 15;

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
    client_order_id: u64,
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

    /// Every resting order, per instrument bids best first then asks, each
    /// level in time priority (the order [`State::image`] lists them in).
    pub fn for_each_resting(&self, mut visit: impl FnMut(&Slot)) {
        let mut prices = Vec::new();
        for book in &self.books {
            book.walk(&self.pool, &mut prices, |_, slot| visit(slot));
        }
    }

    /// `account`'s resting orders, in no particular order: from its own
    /// list (the cost is its orders', whatever the books hold), or by a walk
    /// of every book in a state that keeps no lists.
    pub fn for_each_resting_of(&self, account: u64, mut visit: impl FnMut(&Slot)) {
        match self.pool.owners() {
            Some(owners) => owners.for_each(account, |index| visit(self.pool.get(index))),
            None => self.for_each_resting(|slot| {
                if slot.account == account {
                    visit(slot);
                }
            }),
        }
    }

    /// This state without each account's list of its resting orders (a
    /// fresh state: the replay tool's). Answers stay the same; a mass cancel
    /// or [`State::for_each_resting_of`] then walks every book.
    #[must_use]
    pub fn without_owner_lists(mut self) -> State {
        self.pool.drop_owner_lists();
        self
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
