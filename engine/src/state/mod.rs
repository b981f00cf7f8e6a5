//! The engine state and `apply`, the whole deterministic core: a command in,
//! events out into a caller-owned buffer. No clock, randomness, I/O or
//! hash-order iteration; no allocation in the steady state.

use crate::accounts::Accounts;
use crate::book::{unlink_from, Book};
use crate::command::{Asset, Command, InstrumentSpec, NewOrder, OPERATOR};
use crate::event::Event;
use crate::idmap::IdMap;
use crate::pool::{Pool, Slot, NIL};
use crate::venue::VenueState;
use tonnex_protocol::{CancelReason, Cash, OrderKind, Price, Qty, RejectReason, Side};

mod image;
mod invariants;

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
        }
    }

    #[inline(always)]
    fn new_order(&mut self, order: &NewOrder, out: &mut Vec<Event>) {
        let Some(book) = self.books.get(order.instrument as usize) else {
            return reject(out, order.id, RejectReason::UnknownInstrument);
        };
        if book.halted {
            return reject(out, order.id, RejectReason::InstrumentHalted);
        }
        let qty = order.qty.tonnes();
        if qty == 0 || qty > MAX_QTY {
            return reject(out, order.id, RejectReason::InvalidQuantity);
        }
        let market = order.kind == OrderKind::Market;
        let price = order.price.ticks();
        if !market && !book.in_band(price) {
            return reject(out, order.id, RejectReason::PriceOutsideBand);
        }
        if order.id <= self.max_order_id && self.ids.get(order.id, &self.pool).is_some() {
            return reject(out, order.id, RejectReason::DuplicateOrderId);
        }
        let limit = if market { None } else { Some(price) };
        let compliance = order.compliance;
        if order.side == Side::Buy
            && compliance.floor_ticks > 0
            && !compliance.attested()
            && order.kind != OrderKind::PostOnly
            && breaks_floor(book, limit, i64::from(compliance.floor_ticks))
        {
            return reject(out, order.id, RejectReason::FloorNotMet);
        }
        if order.kind == OrderKind::PostOnly && crosses(book, order.side, price) {
            return reject(out, order.id, RejectReason::PostOnlyWouldCross);
        }
        let mut hold = 0;
        if self.config.holds {
            match self.hold_for(book, order) {
                Ok(amount) => hold = amount,
                Err(reason) => return reject(out, order.id, reason),
            }
        }
        self.max_order_id = self.max_order_id.max(order.id);
        out.push(Event::Accepted {
            order_id: order.id,
            account: order.account,
            instrument: order.instrument,
        });
        if order.kind == OrderKind::Fok
            && available(book, &self.pool, order.side, price, order.account, qty) < qty
        {
            out.push(Event::Cancelled {
                order_id: order.id,
                account: order.account,
                instrument: order.instrument,
                open_qty: order.qty,
                reason: CancelReason::FokUnfilled,
            });
            return;
        }
        if self.config.holds {
            self.lock(order.account, order.instrument, order.side, hold);
        }
        let mut taker = Taker {
            id: order.id,
            account: order.account,
            instrument: order.instrument,
            side: order.side,
            limit,
            open: qty,
            floor_ticks: compliance.floor_ticks,
            hold,
            budgeted: market && order.side == Side::Buy,
        };
        // Only an order that reaches the opposite side needs the matching loop.
        let reaches = match limit {
            None => true,
            Some(price) => {
                order.kind != OrderKind::PostOnly
                    && crosses(&self.books[order.instrument as usize], order.side, price)
            }
        };
        let rests = matches!(order.kind, OrderKind::Limit | OrderKind::PostOnly);
        let exhausted = reaches && self.sweep(&mut taker, out);
        if taker.open > 0 && rests {
            let slot = Slot::new(
                order.id,
                order.account,
                order.instrument as u16,
                order.side,
                price,
                taker.open,
                compliance.floor_ticks,
                order.kind == OrderKind::PostOnly,
                compliance.attested(),
            );
            self.rest(slot);
        } else if taker.open > 0 {
            out.push(Event::Cancelled {
                order_id: order.id,
                account: order.account,
                instrument: order.instrument,
                open_qty: Qty(taker.open),
                reason: if exhausted {
                    CancelReason::BudgetExhausted
                } else {
                    CancelReason::IocRemainder
                },
            });
        }
        if self.config.holds {
            self.settle_taker_hold(&taker, rests);
        }
    }

    /// What a new order must lock, or why it cannot.
    fn hold_for(&self, book: &Book, order: &NewOrder) -> Result<i64, RejectReason> {
        let account = self.accounts.get(order.account);
        match order.side {
            Side::Buy => {
                let need = if order.kind == OrderKind::Market {
                    if order.cash_budget.0 <= 0 {
                        return Err(RejectReason::MissingCashBudget);
                    }
                    order.cash_budget.0
                } else {
                    checked_resting_value(
                        Side::Buy,
                        order.price.ticks(),
                        order.qty.tonnes(),
                        book.spec.tick_micros,
                    )
                    .ok_or(RejectReason::InsufficientFunds)?
                };
                let free = account.map_or(0, |a| a.cash.free);
                if free < need {
                    return Err(RejectReason::InsufficientFunds);
                }
                Ok(need)
            }
            Side::Sell => {
                let need = order.qty.tonnes() as i64;
                let free = account.map_or(0, |a| a.credits(order.instrument).free);
                if free < need {
                    return Err(RejectReason::InsufficientCredits);
                }
                Ok(need)
            }
        }
    }

    fn lock(&mut self, account: u64, instrument: u32, side: Side, amount: i64) {
        let i = self.accounts.find_or_create(account);
        let account = self.accounts.at_mut(i);
        let balance = match side {
            Side::Buy => &mut account.cash,
            Side::Sell => account.credits_mut(instrument),
        };
        assert!(balance.lock(amount), "lock after a passed hold check");
    }

    fn release(&mut self, account: u64, instrument: u32, side: Side, amount: i64) {
        let i = self
            .accounts
            .find(account)
            .expect("release for an account with holds");
        let account = self.accounts.at_mut(i);
        match side {
            Side::Buy => account.cash.release(amount),
            Side::Sell => account.credits_mut(instrument).release(amount),
        }
    }

    /// After matching: release what the taker locked beyond what its resting
    /// remainder (if any) still needs.
    fn settle_taker_hold(&mut self, taker: &Taker, rests: bool) {
        let keep = if rests && taker.open > 0 {
            let tick_micros = self.books[taker.instrument as usize].spec.tick_micros;
            resting_value(
                taker.side,
                taker.limit.unwrap_or(0),
                taker.open,
                tick_micros,
            )
        } else {
            0
        };
        let extra = taker.hold - keep;
        debug_assert!(
            extra >= 0,
            "taker hold {} below what it keeps {keep}",
            taker.hold
        );
        if extra > 0 {
            self.release(taker.account, taker.instrument, taker.side, extra);
        }
    }

    /// Matches `taker` against the opposite side. Returns whether a market
    /// buy stopped because its budget ran out.
    fn sweep(&mut self, taker: &mut Taker, out: &mut Vec<Event>) -> bool {
        let holds = self.config.holds;
        let State {
            books,
            pool,
            ids,
            accounts,
            ..
        } = self;
        let book = &mut books[taker.instrument as usize];
        let tick_micros = book.spec.tick_micros;
        let opposite = book.side_mut(taker.side.opposite());
        while taker.open > 0 {
            let Some(best) = opposite.best() else { break };
            if let Some(limit) = taker.limit {
                let acceptable = match taker.side {
                    Side::Buy => best <= limit,
                    Side::Sell => best >= limit,
                };
                if !acceptable {
                    break;
                }
            }
            let level = opposite.level_mut(best);
            let mut cursor = level.head;
            while cursor != NIL && taker.open > 0 {
                let maker = *pool.get(cursor);
                let next = maker.next;
                if maker.account == taker.account {
                    // Self-trade prevention: the resting order is cancelled.
                    unlink_from(level, pool, &maker);
                    ids.remove(maker.id, pool);
                    pool.release(cursor);
                    if holds {
                        release_resting(accounts, &maker, tick_micros);
                    }
                    out.push(Event::Cancelled {
                        order_id: maker.id,
                        account: maker.account,
                        instrument: taker.instrument,
                        open_qty: Qty(maker.qty),
                        reason: CancelReason::SelfTrade,
                    });
                    cursor = next;
                    continue;
                }
                let mut qty = taker.open.min(maker.qty);
                let mut value = 0;
                if holds {
                    let per_tonne = best * tick_micros;
                    if taker.budgeted {
                        qty = qty.min((taker.hold / per_tonne) as u64);
                        if qty == 0 {
                            return true;
                        }
                    }
                    value = per_tonne * qty as i64;
                }
                taker.open -= qty;
                level.qty -= qty;
                let maker_open = maker.qty - qty;
                pool.get_mut(cursor).qty = maker_open;
                let buyer_floor = match taker.side {
                    Side::Buy => taker.floor_ticks,
                    Side::Sell => maker.floor_ticks,
                };
                let supplementary_ticks =
                    (i64::from(buyer_floor) - best).max(0) * i64::from(buyer_floor > 0);
                out.push(Event::Fill {
                    instrument: taker.instrument,
                    taker_id: taker.id,
                    maker_id: maker.id,
                    taker_account: taker.account,
                    maker_account: maker.account,
                    taker_side: taker.side,
                    price: Price(best),
                    qty: Qty(qty),
                    taker_open: Qty(taker.open),
                    maker_open: Qty(maker_open),
                    supplementary_ticks,
                });
                if holds {
                    let tonnes = qty as i64;
                    taker.hold -= match taker.side {
                        Side::Buy => value,
                        Side::Sell => tonnes,
                    };
                    let (buyer, seller) = match taker.side {
                        Side::Buy => (taker.account, maker.account),
                        Side::Sell => (maker.account, taker.account),
                    };
                    book_trade(accounts, buyer, seller, taker.instrument, value, tonnes);
                }
                if maker_open == 0 {
                    let maker = *pool.get(cursor);
                    unlink_from(level, pool, &maker);
                    ids.remove(maker.id, pool);
                    pool.release(cursor);
                }
                cursor = next;
            }
            if level.is_empty() {
                opposite.level_emptied(best);
            }
        }
        false
    }

    /// Stores a resting order and links it into its book.
    #[inline]
    fn rest(&mut self, slot: Slot) {
        let index = self.pool.alloc(slot);
        self.ids.insert(slot.id, index, &self.pool);
        self.books[slot.instrument as usize].link(&mut self.pool, index, &slot);
    }

    /// Removes resting order `index` (in id bucket `bucket`, if known) from
    /// the book, releasing its hold.
    fn remove_resting(
        &mut self,
        index: u32,
        bucket: Option<usize>,
        reason: CancelReason,
        out: &mut Vec<Event>,
    ) {
        let slot = *self.pool.get(index);
        let book = &mut self.books[slot.instrument as usize];
        book.unlink(&mut self.pool, &slot);
        match bucket {
            Some(bucket) => self.ids.remove_at(bucket),
            None => {
                self.ids.remove(slot.id, &self.pool);
            }
        }
        self.pool.release(index);
        if self.config.holds {
            release_resting(&mut self.accounts, &slot, book.spec.tick_micros);
        }
        out.push(Event::Cancelled {
            order_id: slot.id,
            account: slot.account,
            instrument: u32::from(slot.instrument),
            open_qty: Qty(slot.qty),
            reason,
        });
    }

    /// The id bucket and slot of live order `order_id` that `account` may
    /// act on, or why not.
    fn owned_order(&self, order_id: u64, account: u64) -> Result<(usize, u32), RejectReason> {
        let (bucket, index) = self
            .ids
            .find(order_id, &self.pool)
            .ok_or(RejectReason::UnknownOrderId)?;
        if account != OPERATOR && self.pool.get(index).account != account {
            return Err(RejectReason::NotOrderOwner);
        }
        Ok((bucket, index))
    }

    fn cancel(&mut self, order_id: u64, account: u64, out: &mut Vec<Event>) {
        match self.owned_order(order_id, account) {
            Ok((bucket, index)) => {
                self.remove_resting(index, Some(bucket), CancelReason::User, out)
            }
            Err(reason) => reject(out, order_id, reason),
        }
    }

    #[inline(never)]
    fn replace(
        &mut self,
        order_id: u64,
        account: u64,
        price: Price,
        qty: Qty,
        out: &mut Vec<Event>,
    ) {
        let index = match self.owned_order(order_id, account) {
            Ok((_, index)) => index,
            Err(reason) => return reject(out, order_id, reason),
        };
        let slot = *self.pool.get(index);
        let book = &self.books[slot.instrument as usize];
        let (new_price, new_qty) = (price.ticks(), qty.tonnes());
        if new_qty == 0 || new_qty > MAX_QTY {
            return reject(out, order_id, RejectReason::InvalidQuantity);
        }
        if book.halted {
            return reject(out, order_id, RejectReason::InstrumentHalted);
        }
        if !book.in_band(new_price) {
            return reject(out, order_id, RejectReason::PriceOutsideBand);
        }
        let side = slot.side();
        if new_price == slot.price && new_qty <= slot.qty {
            // Same price, not larger: reduced in place (or unchanged), priority kept.
            let reduction = slot.qty - new_qty;
            if reduction > 0 {
                let book = &mut self.books[slot.instrument as usize];
                let tick_micros = book.spec.tick_micros;
                book.side_mut(side).level_mut(new_price).qty -= reduction;
                self.pool.get_mut(index).qty = new_qty;
                if self.config.holds {
                    let amount = resting_value(side, new_price, reduction, tick_micros);
                    self.release(slot.account, u32::from(slot.instrument), side, amount);
                }
            }
            out.push(Event::Replaced {
                order_id,
                price,
                qty,
                priority_kept: true,
            });
            return;
        }
        if slot.post_only() && crosses(book, side, new_price) {
            return reject(out, order_id, RejectReason::PostOnlyWouldCross);
        }
        if side == Side::Buy
            && slot.floor_ticks > 0
            && !slot.attested()
            && breaks_floor(book, Some(new_price), i64::from(slot.floor_ticks))
        {
            return reject(out, order_id, RejectReason::FloorNotMet);
        }
        let instrument = u32::from(slot.instrument);
        let mut new_hold = 0;
        if self.config.holds {
            let tick_micros = book.spec.tick_micros;
            let old_hold = resting_value(side, slot.price, slot.qty, tick_micros);
            let Some(need) = checked_resting_value(side, new_price, new_qty, tick_micros) else {
                return reject(out, order_id, RejectReason::InsufficientFunds);
            };
            let account = self
                .accounts
                .get(slot.account)
                .expect("resting order's account");
            let free = match side {
                Side::Buy => account.cash.free,
                Side::Sell => account.credits(instrument).free,
            };
            if need > free + old_hold {
                return reject(
                    out,
                    order_id,
                    match side {
                        Side::Buy => RejectReason::InsufficientFunds,
                        Side::Sell => RejectReason::InsufficientCredits,
                    },
                );
            }
            self.release(slot.account, instrument, side, old_hold);
            self.lock(slot.account, instrument, side, need);
            new_hold = need;
        }
        // Leaves the book and re-enters as a new arrival, keeping id, account and side.
        self.books[instrument as usize].unlink(&mut self.pool, &slot);
        out.push(Event::Replaced {
            order_id,
            price,
            qty,
            priority_kept: false,
        });
        let mut taker = Taker {
            id: order_id,
            account: slot.account,
            instrument,
            side,
            limit: Some(new_price),
            open: new_qty,
            floor_ticks: slot.floor_ticks,
            hold: new_hold,
            budgeted: false,
        };
        if !slot.post_only() {
            self.sweep(&mut taker, out);
        }
        if taker.open > 0 {
            let cell = self.pool.get_mut(index);
            cell.price = new_price;
            cell.qty = taker.open;
            let moved = *cell;
            self.books[instrument as usize].link(&mut self.pool, index, &moved);
        } else {
            // Filled whole on re-entry. (Its id bucket may have moved while
            // other filled orders left the table, so it is looked up again.)
            self.ids.remove(order_id, &self.pool);
            self.pool.release(index);
        }
        if self.config.holds {
            self.settle_taker_hold(&taker, true);
        }
    }

    /// Collects resting orders best-first per side (bids, then asks), each
    /// level in time priority, of the given instruments, filtered by account.
    fn collect_resting(&mut self, instruments: std::ops::Range<usize>, account: Option<u64>) {
        let State {
            books,
            pool,
            scratch_slots,
            scratch_prices,
            ..
        } = self;
        scratch_slots.clear();
        for book in &books[instruments] {
            book.walk(pool, scratch_prices, |index, slot| {
                if account.is_none_or(|a| a == slot.account) {
                    scratch_slots.push(index);
                }
            });
        }
    }

    fn cancel_collected(&mut self, reason: CancelReason, out: &mut Vec<Event>) {
        let slots = std::mem::take(&mut self.scratch_slots);
        for &index in &slots {
            self.remove_resting(index, None, reason, out);
        }
        self.scratch_slots = slots;
    }

    #[inline(never)]
    fn mass_cancel(&mut self, account: u64, instrument: Option<u32>, out: &mut Vec<Event>) {
        let range = match instrument {
            None => 0..self.books.len(),
            Some(i) if (i as usize) < self.books.len() => i as usize..i as usize + 1,
            Some(_) => return reject(out, 0, RejectReason::UnknownInstrument),
        };
        self.collect_resting(range, Some(account));
        self.cancel_collected(CancelReason::MassCancel, out);
        out.push(Event::Applied);
    }

    #[inline(never)]
    fn halt(&mut self, instrument: u32, cancel_resting: bool, out: &mut Vec<Event>) {
        let i = instrument as usize;
        let Some(book) = self.books.get_mut(i) else {
            return reject(out, 0, RejectReason::UnknownInstrument);
        };
        book.halted = true;
        if cancel_resting {
            self.collect_resting(i..i + 1, None);
            self.cancel_collected(CancelReason::Halt, out);
        }
        out.push(Event::Applied);
    }

    #[inline(never)]
    fn add_instrument(&mut self, instrument: u32, spec: InstrumentSpec, out: &mut Vec<Event>) {
        let valid = instrument as usize == self.books.len()
            && instrument < MAX_INSTRUMENTS
            && spec.tick_micros > 0
            && spec.min_price.ticks() > 0
            && spec.min_price <= spec.max_price
            && self.config.window_ticks >= 64;
        if !valid {
            return reject(out, 0, RejectReason::InvalidInstrument);
        }
        self.books.push(Book::new(spec, self.config.window_ticks));
        out.push(Event::Applied);
    }

    fn checked_asset(&self, asset: Asset) -> Result<(Option<u32>, i64), RejectReason> {
        match asset {
            Asset::Cash(cash) if cash.0 > 0 => Ok((None, cash.0)),
            Asset::Credits { instrument, qty } if qty.0 > 0 && qty.0 <= MAX_QTY => {
                if (instrument as usize) < self.books.len() {
                    Ok((Some(instrument), qty.0 as i64))
                } else {
                    Err(RejectReason::UnknownInstrument)
                }
            }
            _ => Err(RejectReason::InvalidAmount),
        }
    }

    #[inline(never)]
    fn deposit(&mut self, account: u64, asset: Asset, out: &mut Vec<Event>) {
        let (instrument, amount) = match self.checked_asset(asset) {
            Ok(x) => x,
            Err(reason) => return reject(out, 0, reason),
        };
        let i = self.accounts.find_or_create(account);
        let account = self.accounts.at_mut(i);
        let balance = match instrument {
            None => &mut account.cash,
            Some(instrument) => account.credits_mut(instrument),
        };
        match balance.free.checked_add(amount) {
            Some(free) => {
                balance.free = free;
                out.push(Event::Applied);
            }
            None => reject(out, 0, RejectReason::InvalidAmount),
        }
    }

    #[inline(never)]
    fn withdraw(&mut self, account: u64, asset: Asset, out: &mut Vec<Event>) {
        let (instrument, amount) = match self.checked_asset(asset) {
            Ok(x) => x,
            Err(reason) => return reject(out, 0, reason),
        };
        let short = match instrument {
            None => RejectReason::InsufficientFunds,
            Some(_) => RejectReason::InsufficientCredits,
        };
        let Some(i) = self.accounts.find(account) else {
            return reject(out, 0, short);
        };
        let account = self.accounts.at_mut(i);
        let balance = match instrument {
            None => &mut account.cash,
            Some(instrument) => account.credits_mut(instrument),
        };
        if balance.free < amount {
            return reject(out, 0, short);
        }
        balance.free -= amount;
        out.push(Event::Applied);
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
fn available(book: &Book, pool: &Pool, side: Side, limit: i64, account: u64, need: u64) -> u64 {
    let ladder = book.side(side.opposite());
    let mut got = 0;
    let mut price = ladder.best();
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
/// from locked to pending settlement; each side is due the other leg.
fn book_trade(
    accounts: &mut Accounts,
    buyer: u64,
    seller: u64,
    instrument: u32,
    cash: i64,
    tonnes: i64,
) {
    let b = accounts.find(buyer).expect("buyer has a hold");
    let buyer = accounts.at_mut(b);
    buyer.cash.trade_out(cash);
    buyer.credits_mut(instrument).pending_in += tonnes;
    let s = accounts.find(seller).expect("seller has a hold");
    let seller = accounts.at_mut(s);
    seller.credits_mut(instrument).trade_out(tonnes);
    seller.cash.pending_in += cash;
}
