//! Matching: a new order checked, held for, swept against the book and
//! rested; the holds a fill moves from locked to pending settlement.

use super::*;

impl State {
    #[inline(always)]
    pub(super) fn new_order(&mut self, order: &NewOrder, out: &mut Vec<Event>) {
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
        let floor = i64::from(compliance.floor_ticks);
        let floored = order.side == Side::Buy
            && floor > 0
            && !compliance.attested()
            && order.kind != OrderKind::PostOnly;
        // A limit at or above its floor may skip asks below it (the rules'
        // `below_floor_asks = "skip"`); otherwise taking one refuses it whole.
        let skips = floored && compliance.skip_below_floor && limit.is_some_and(|l| l >= floor);
        if floored && !skips && breaks_floor(book, limit, floor) {
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
            && available(
                book,
                &self.pool,
                order.side,
                price,
                skips.then_some(floor),
                order.account,
                qty,
            ) < qty
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
            from: skips.then_some(floor),
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
        let mut rests = matches!(order.kind, OrderKind::Limit | OrderKind::PostOnly);
        let exhausted = reaches && self.sweep(&mut taker, out);
        // A buy that skipped asks below its floor cannot rest across them.
        let across_skipped = skips
            && rests
            && taker.open > 0
            && crosses(&self.books[order.instrument as usize], Side::Buy, price);
        rests &= !across_skipped;
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
                } else if across_skipped {
                    CancelReason::BelowFloorSkipped
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
    pub(super) fn hold_for(&self, book: &Book, order: &NewOrder) -> Result<i64, RejectReason> {
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

    pub(super) fn lock(&mut self, account: u64, instrument: u32, side: Side, amount: i64) {
        let i = self.accounts.find_or_create(account);
        let account = self.accounts.at_mut(i);
        let balance = match side {
            Side::Buy => &mut account.cash,
            Side::Sell => account.credits_mut(instrument),
        };
        assert!(balance.lock(amount), "lock after a passed hold check");
    }

    pub(super) fn release(&mut self, account: u64, instrument: u32, side: Side, amount: i64) {
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
    pub(super) fn settle_taker_hold(&mut self, taker: &Taker, rests: bool) {
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
    pub(super) fn sweep(&mut self, taker: &mut Taker, out: &mut Vec<Event>) -> bool {
        let holds = self.config.holds;
        let seq = self.last_seq;
        let State {
            books,
            pool,
            ids,
            accounts,
            trades,
            fills_in_command,
            ..
        } = self;
        let book = &mut books[taker.instrument as usize];
        let tick_micros = book.spec.tick_micros;
        let opposite = book.side_mut(taker.side.opposite());
        while taker.open > 0 {
            let Some(best) = first_reachable(opposite, taker.from) else {
                break;
            };
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
                let this_trade = trade_id(seq, *fills_in_command);
                *fills_in_command += 1;
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
                    book_trade(
                        accounts,
                        trades,
                        PendingTrade {
                            trade_id: this_trade,
                            buyer,
                            seller,
                            instrument: taker.instrument,
                            cash: value,
                            tonnes,
                            stage: Stage::Booked,
                        },
                    );
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
    pub(super) fn rest(&mut self, slot: Slot) {
        let index = self.pool.alloc(slot);
        self.ids.insert(slot.id, index, &self.pool);
        self.books[slot.instrument as usize].link(&mut self.pool, index, &slot);
    }

    /// Removes resting order `index` (in id bucket `bucket`, if known) from
    /// the book, releasing its hold.
    pub(super) fn remove_resting(
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
}
