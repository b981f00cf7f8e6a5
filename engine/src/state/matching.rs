//! Matching: an admitted order (validation.rs) swept against the book in
//! price-time order and rested or cancelled; a resting order removed.

use super::*;

impl State {
    #[inline(always)]
    pub(super) fn new_order(&mut self, order: &NewOrder, out: &mut Vec<Event>) {
        let Admitted {
            qty,
            price,
            limit,
            hold,
            skips,
            floor,
        } = match self.admit(order) {
            Ok(admitted) => admitted,
            Err(reason) => return reject(out, order.id, reason),
        };
        let market = limit.is_none();
        let compliance = order.compliance;
        let book = &self.books[order.instrument as usize];
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
                client_order_id: order.client_order_id,
                instrument: order.instrument,
                open_qty: order.qty,
                reason: CancelReason::FokUnfilled,
                side: order.side,
                price,
            });
            return;
        }
        if self.config.holds {
            self.lock(order.account, order.instrument, order.side, hold);
        }
        let mut taker = Taker {
            id: order.id,
            account: order.account,
            client_order_id: order.client_order_id,
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
            )
            .with_client_order_id(order.client_order_id);
            self.rest(slot);
        } else if taker.open > 0 {
            out.push(Event::Cancelled {
                order_id: order.id,
                account: order.account,
                client_order_id: order.client_order_id,
                instrument: order.instrument,
                open_qty: Qty(taker.open),
                reason: if exhausted {
                    CancelReason::BudgetExhausted
                } else if across_skipped {
                    CancelReason::BelowFloorSkipped
                } else {
                    CancelReason::IocRemainder
                },
                side: order.side,
                price,
            });
        }
        if self.config.holds {
            self.settle_taker_hold(&taker, rests);
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
                        client_order_id: maker.client_order_id,
                        instrument: taker.instrument,
                        open_qty: Qty(maker.qty),
                        reason: CancelReason::SelfTrade,
                        side: maker.side(),
                        price: best,
                    });
                    cursor = next;
                    continue;
                }
                let mut qty = taker.open.min(maker.qty);
                let mut value = 0;
                if holds {
                    // Cannot overflow: `best` is inside the band, and a
                    // band's top price x tick fits an i64 (checked when
                    // the instrument was listed); it is at least one tick.
                    let per_tonne = best * tick_micros;
                    if taker.budgeted {
                        qty = qty.min((taker.hold / per_tonne) as u64);
                        if qty == 0 {
                            return true;
                        }
                    }
                    // Cannot overflow, and never exceeds what the taker
                    // (buy) locked: a limit buy passed `checked_resting_value`
                    // of limit x quantity at admission and best <= limit; a
                    // market buy takes at most hold / per_tonne tonnes.
                    value = per_tonne * qty as i64;
                }
                // qty <= both sides' open tonnes (the min above).
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
                    taker_client_order_id: taker.client_order_id,
                    maker_client_order_id: maker.client_order_id,
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
            client_order_id: slot.client_order_id,
            instrument: u32::from(slot.instrument),
            open_qty: Qty(slot.qty),
            reason,
            side: slot.side(),
            price: slot.price,
        });
    }
}

/// The best price of `ladder` a taker may take: the best, or for a buy
/// that skips asks below its floor (`from`), the lowest ask at or above it.
#[inline]
pub(super) fn first_reachable(ladder: &crate::ladder::Ladder, from: Option<i64>) -> Option<i64> {
    let best = ladder.best();
    match from {
        Some(floor) if best.is_some_and(|b| b < floor) => ladder.next_worse(floor - 1),
        _ => best,
    }
}

/// Tonnes of other accounts' orders a fill-or-kill could take, counted up to `need`.
pub(super) fn available(
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
