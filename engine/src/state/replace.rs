//! A resting order changed by its owner: cancel and replace (a replace
//! that keeps price and does not grow keeps its priority; any other
//! leaves the book and re-enters as a new arrival).

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
                account: slot.account,
                client_order_id: slot.client_order_id,
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
            account: slot.account,
            client_order_id: slot.client_order_id,
            price,
            qty,
            priority_kept: false,
        });
        let mut taker = Taker {
            id: order_id,
            account: slot.account,
            client_order_id: slot.client_order_id,
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
}
