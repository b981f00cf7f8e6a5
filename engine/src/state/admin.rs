//! Commands about the venue rather than one order: mass cancel, halt,
//! list an instrument, deposit and withdraw.

use super::*;

impl State {
    /// Collects the resting orders of the given instruments: every order,
    /// best-first per side (bids, then asks), each level in time priority;
    /// or only `account`'s, oldest (lowest order id) first, from its own
    /// list when the pool keeps one (else by a walk of the books).
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
        match (account, pool.owners()) {
            (Some(account), Some(owners)) => owners.for_each(account, |index| {
                if instruments.contains(&usize::from(pool.get(index).instrument)) {
                    scratch_slots.push(index);
                }
            }),
            _ => {
                for book in &books[instruments] {
                    book.walk(pool, scratch_prices, |index, slot| {
                        if account.is_none_or(|a| a == slot.account) {
                            scratch_slots.push(index);
                        }
                    });
                }
            }
        }
        if account.is_some() {
            scratch_slots.sort_unstable_by_key(|&index| pool.get(index).id);
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
