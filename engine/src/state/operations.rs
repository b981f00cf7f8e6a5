//! Everything else a command can do to the books and accounts: cancel,
//! replace, mass cancel, halt, list an instrument, deposit and withdraw.

use super::*;

impl State {
    /// The id bucket and slot of live order `order_id` that `account` may
    /// act on, or why not.
    pub(super) fn owned_order(
        &self,
        order_id: u64,
        account: u64,
    ) -> Result<(usize, u32), RejectReason> {
        let (bucket, index) = self
            .ids
            .find(order_id, &self.pool)
            .ok_or(RejectReason::UnknownOrderId)?;
        if account != OPERATOR && self.pool.get(index).account != account {
            return Err(RejectReason::NotOrderOwner);
        }
        Ok((bucket, index))
    }

    pub(super) fn cancel(&mut self, order_id: u64, account: u64, out: &mut Vec<Event>) {
        match self.owned_order(order_id, account) {
            Ok((bucket, index)) => {
                self.remove_resting(index, Some(bucket), CancelReason::User, out)
            }
            Err(reason) => reject(out, order_id, reason),
        }
    }

    #[inline(never)]
    pub(super) fn replace(
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
            from: None,
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
    pub(super) fn collect_resting(
        &mut self,
        instruments: std::ops::Range<usize>,
        account: Option<u64>,
    ) {
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

    pub(super) fn cancel_collected(&mut self, reason: CancelReason, out: &mut Vec<Event>) {
        let slots = std::mem::take(&mut self.scratch_slots);
        for &index in &slots {
            self.remove_resting(index, None, reason, out);
        }
        self.scratch_slots = slots;
    }

    #[inline(never)]
    pub(super) fn mass_cancel(
        &mut self,
        account: u64,
        instrument: Option<u32>,
        out: &mut Vec<Event>,
    ) {
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
    pub(super) fn halt(&mut self, instrument: u32, cancel_resting: bool, out: &mut Vec<Event>) {
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
    pub(super) fn add_instrument(
        &mut self,
        instrument: u32,
        spec: InstrumentSpec,
        out: &mut Vec<Event>,
    ) {
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

    pub(super) fn checked_asset(&self, asset: Asset) -> Result<(Option<u32>, i64), RejectReason> {
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
    pub(super) fn deposit(&mut self, account: u64, asset: Asset, out: &mut Vec<Event>) {
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
    pub(super) fn withdraw(&mut self, account: u64, asset: Asset, out: &mut Vec<Event>) {
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
