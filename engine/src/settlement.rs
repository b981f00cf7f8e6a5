//! What settlement decided, applied to the accounts the engine trades from.
//!
//! A fill leaves both sides' legs pending (see [`crate::accounts`]): the
//! buyer's cash and the seller's credits in `pending_out`, the legs each is
//! due in `pending_in`. The engine remembers every such trade
//! ([`PendingTrades`]) until settlement says how it ended, through journaled
//! [`SettlementBatch`] commands sent on settlement's authenticated admin
//! session:
//!
//! - `Settled`: cash reaches the seller's free balance, credits the buyer's;
//!   with `retire`, the buyer's credits are instead owed to the registry's
//!   retirement (`pending_out`) until `Retired` (or `RetirementRefused`,
//!   which gives them back to the buyer's free balance).
//! - `Unwound`: the buyer's cash and the seller's credits return to their
//!   free balances; nothing is due to either.
//! - `WithdrawalReturned`: the registry refused a withdrawal the venue had
//!   debited; the credits come back to the account's free holding.
//!
//! Each outcome carries settlement's outbox id; ids only grow, and the
//! engine keeps the highest applied ([`PendingTrades::watermark`]), so an
//! outcome sent again after a restart of either process is recognised and
//! changes nothing (exactly once). An outcome for a trade that is not
//! pending in the stage it needs is refused (`TRADE_NOT_PENDING`) and
//! changes nothing either.

use bincode::{Decode, Encode};
use tonnex_protocol::RejectReason;

use crate::accounts::Accounts;
use crate::chunked::Chunked;
use crate::event::Event;

/// Fills of one command get trade ids `seq << TRADE_SHIFT | n`.
pub const TRADE_SHIFT: u32 = 20;

/// The trade id of the `n`-th fill (from 0) of journal command `seq`: the
/// engine's pending trades, the fill stream and the execution reports all
/// derive it, so they agree.
#[inline]
#[must_use]
pub const fn trade_id(seq: u64, n: u64) -> u64 {
    (seq << TRADE_SHIFT) | n
}

/// Where a pending trade is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Stage {
    /// Filled; both legs pending settlement.
    Booked,
    /// Settled; the buyer's credits are owed to their retirement.
    Retiring,
    /// Finished (kept only until the trades before it finish too).
    Done,
}

/// A trade the engine booked and settlement has not finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub struct PendingTrade {
    /// The venue trade id (journal sequence << 20 | fill number).
    pub trade_id: u64,
    /// Buyer account.
    pub buyer: u64,
    /// Seller account.
    pub seller: u64,
    /// Instrument index.
    pub instrument: u32,
    /// The buyer's cash leg, micro-dollars.
    pub cash: i64,
    /// The seller's credit leg, tonnes.
    pub tonnes: i64,
    /// Where it is.
    pub stage: Stage,
}

/// How one trade ended, as settlement reports it (the admin port's type).
pub use tonnex_protocol::admin::SettlementOutcome as Outcome;

/// Consecutive outcomes from settlement's outbox: item `i` has outbox id
/// `first_id + i`.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct SettlementBatch {
    /// The outbox id of the first outcome (1 or more).
    pub first_id: u64,
    /// The outcomes.
    pub outcomes: Vec<Outcome>,
}

/// Every trade booked and not yet finished, in trade id order, and the
/// highest settlement outbox id applied. Kept in shared chunks
/// ([`Chunked`]): a snapshot's clone of the state copies none of the
/// trades, which grow without bound while settlement lags.
#[derive(Clone, Debug, Default)]
pub struct PendingTrades {
    trades: Chunked<PendingTrade>,
    /// Finished trades still in `trades` (behind an unfinished one).
    done: usize,
    watermark: u64,
}

impl PendingTrades {
    /// Records a fill's trade (ids arrive in increasing order).
    #[inline]
    pub fn book(&mut self, trade: PendingTrade) {
        debug_assert!(self
            .trades
            .back()
            .is_none_or(|t| t.trade_id < trade.trade_id));
        self.trades.push_back(trade);
    }

    /// The highest settlement outbox id applied (0: none).
    #[must_use]
    pub fn watermark(&self) -> u64 {
        self.watermark
    }

    /// Unfinished trades, in trade id order.
    pub fn iter(&self) -> impl Iterator<Item = &PendingTrade> {
        self.trades.iter().filter(|t| t.stage != Stage::Done)
    }

    /// How many trades are unfinished.
    #[must_use]
    pub fn len(&self) -> usize {
        self.trades.len() - self.done
    }

    /// Whether every trade is finished.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The unfinished trades and the watermark, as a snapshot stores them.
    #[must_use]
    pub fn image(&self) -> (Vec<PendingTrade>, u64) {
        (self.iter().copied().collect(), self.watermark)
    }

    /// Rebuilt from [`PendingTrades::image`]; fails on trades out of order
    /// or already finished.
    pub fn from_image(trades: &[PendingTrade], watermark: u64) -> Result<PendingTrades, String> {
        for pair in trades.windows(2) {
            if pair[0].trade_id >= pair[1].trade_id {
                return Err(format!(
                    "pending trade {} listed after {}",
                    pair[1].trade_id, pair[0].trade_id
                ));
            }
        }
        if let Some(t) = trades.iter().find(|t| t.stage == Stage::Done) {
            return Err(format!("pending trade {} is already done", t.trade_id));
        }
        Ok(PendingTrades {
            trades: trades.iter().copied().collect(),
            done: 0,
            watermark,
        })
    }

    /// Applies a batch: one event per outcome not seen before (`Applied`, or
    /// `Rejected` with the outcome's outbox id as its `order_id`), none for
    /// an outcome at or below the watermark.
    pub fn apply(
        &mut self,
        batch: &SettlementBatch,
        accounts: &mut Accounts,
        instruments: u32,
        out: &mut Vec<Event>,
    ) {
        for (i, outcome) in batch.outcomes.iter().enumerate() {
            let id = batch.first_id.saturating_add(i as u64);
            if id <= self.watermark {
                continue;
            }
            self.watermark = id;
            let result = match *outcome {
                Outcome::WithdrawalReturned {
                    account,
                    instrument,
                    qty,
                    ..
                } => return_withdrawal(accounts, account, instrument, qty, instruments),
                _ => self.finish(outcome, accounts),
            };
            match result {
                Ok(()) => out.push(Event::Applied),
                Err(reason) => out.push(Event::Rejected {
                    order_id: id,
                    reason,
                }),
            }
        }
        while self.trades.front().is_some_and(|t| t.stage == Stage::Done) {
            self.trades.pop_front();
            self.done -= 1;
        }
    }

    fn finish(&mut self, outcome: &Outcome, accounts: &mut Accounts) -> Result<(), RejectReason> {
        let trade_id = outcome.trade_id();
        let at = self
            .trades
            .binary_search_by_key(&trade_id, |t| t.trade_id)
            .map_err(|_| RejectReason::TradeNotPending)?;
        let trade = *self.trades.get(at).expect("a trade just found");
        let needs = match outcome {
            Outcome::Settled { .. } | Outcome::Unwound { .. } => Stage::Booked,
            Outcome::Retired { .. } | Outcome::RetirementRefused { .. } => Stage::Retiring,
            Outcome::WithdrawalReturned { .. } => unreachable!("not a trade's outcome"),
        };
        if trade.stage != needs {
            return Err(RejectReason::TradeNotPending);
        }
        let (Some(b), Some(s)) = (accounts.find(trade.buyer), accounts.find(trade.seller)) else {
            return Err(RejectReason::TradeNotPending);
        };
        let (cash, tonnes, instrument) = (trade.cash, trade.tonnes, trade.instrument);
        let next = match *outcome {
            Outcome::Settled { retire, .. } => {
                let buyer = accounts.at_mut(b);
                buyer.cash.pending_out -= cash;
                let credits = buyer.credits_mut(instrument);
                credits.pending_in -= tonnes;
                if retire {
                    credits.pending_out += tonnes;
                } else {
                    credits.free += tonnes;
                }
                let seller = accounts.at_mut(s);
                seller.credits_mut(instrument).pending_out -= tonnes;
                seller.cash.pending_in -= cash;
                seller.cash.free += cash;
                if retire {
                    Stage::Retiring
                } else {
                    Stage::Done
                }
            }
            Outcome::Unwound { .. } => {
                let buyer = accounts.at_mut(b);
                buyer.cash.pending_out -= cash;
                buyer.cash.free += cash;
                buyer.credits_mut(instrument).pending_in -= tonnes;
                let seller = accounts.at_mut(s);
                let credits = seller.credits_mut(instrument);
                credits.pending_out -= tonnes;
                credits.free += tonnes;
                seller.cash.pending_in -= cash;
                Stage::Done
            }
            Outcome::Retired { .. } => {
                accounts.at_mut(b).credits_mut(instrument).pending_out -= tonnes;
                Stage::Done
            }
            Outcome::RetirementRefused { .. } => {
                let credits = accounts.at_mut(b).credits_mut(instrument);
                credits.pending_out -= tonnes;
                credits.free += tonnes;
                Stage::Done
            }
            Outcome::WithdrawalReturned { .. } => unreachable!("not a trade's outcome"),
        };
        self.trades.get_mut(at).expect("a trade just found").stage = next;
        if next == Stage::Done {
            self.done += 1;
        }
        Ok(())
    }
}

/// A withdrawal the registry refused: its credits back to the account's
/// free holding (refused, changing nothing, for an unknown instrument or
/// an amount no balance can hold).
fn return_withdrawal(
    accounts: &mut Accounts,
    account: u64,
    instrument: u32,
    qty: u64,
    instruments: u32,
) -> Result<(), RejectReason> {
    if instrument >= instruments {
        return Err(RejectReason::UnknownInstrument);
    }
    let tonnes = i64::try_from(qty)
        .ok()
        .filter(|&t| t > 0 && t as u64 <= crate::state::MAX_QTY)
        .ok_or(RejectReason::InvalidAmount)?;
    let i = accounts.find_or_create(account);
    let credits = accounts.at_mut(i).credits_mut(instrument);
    credits.free = credits
        .free
        .checked_add(tonnes)
        .ok_or(RejectReason::InvalidAmount)?;
    Ok(())
}
