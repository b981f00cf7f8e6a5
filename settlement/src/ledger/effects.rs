//! What an escrow transition does to the ledger: legs confirmed, trades
//! settled, unwound (cash and serials back) or retired, registry events
//! applied once, and certificates issued when an order is done.

use rusqlite::{params, OptionalExtension, Transaction};

use super::feedback;
use super::postings::{movement, Posting};
use super::{Outbox, CASH, ESCROW, RETIRED};
use crate::escrow::{self, Leg, Legs, Signal, State};
use crate::registry::{Kind, RegistryEvent};
use tonnex_protocol::admin::SettlementOutcome;

/// A trade's row, as transitions need it.
pub(super) struct TradeRow {
    state: State,
    legs: Legs,
    retire: bool,
    buy_order_id: u64,
    buyer: i64,
    seller: i64,
    instrument: i64,
    qty: i64,
    amount: i64,
}

pub(super) fn load_trade(tx: &Transaction, trade_id: u64) -> rusqlite::Result<Option<TradeRow>> {
    tx.prepare_cached(
        "SELECT state, payment, transfer, retire, buy_order_id, buyer, seller, instrument, qty, amount_micros FROM trades WHERE trade_id = ?1",
    )?
    .query_row([trade_id as i64], |r| {
        let state: String = r.get(0)?;
        Ok(TradeRow {
            // An unknown stored state is an error, never a default.
            state: State::parse(&state).ok_or_else(|| {
                rusqlite::Error::FromSqlConversionFailure(
                    0,
                    rusqlite::types::Type::Text,
                    format!("trade {trade_id}: unknown escrow state '{state}'").into(),
                )
            })?,
            legs: Legs {
                payment: r.get(1)?,
                transfer: r.get(2)?,
            },
            retire: r.get(3)?,
            buy_order_id: r.get::<_, i64>(4)? as u64,
            buyer: r.get(5)?,
            seller: r.get(6)?,
            instrument: r.get(7)?,
            qty: r.get(8)?,
            amount: r.get(9)?,
        })
    })
    .optional()
}

/// Applies `signal` to a trade with its ledger effects; an illegal
/// transition changes nothing and is noted.
pub(super) fn transition(
    tx: &Transaction,
    trade_id: u64,
    signal: Signal,
    now_ms: u64,
    outbox: &mut Outbox,
) -> rusqlite::Result<bool> {
    let Some(trade) = load_trade(tx, trade_id)? else {
        outbox
            .notes
            .push(format!("trade {trade_id}: unknown: {signal:?} ignored"));
        return Ok(false);
    };
    let (state, legs) = match escrow::next(trade.state, trade.legs, signal) {
        Ok(next) => next,
        Err(illegal) => {
            outbox
                .notes
                .push(format!("trade {trade_id}: {illegal}: ignored"));
            return Ok(false);
        }
    };
    tx.prepare_cached(
        "UPDATE trades SET state = ?2, payment = ?3, transfer = ?4,
            settled_ms = CASE WHEN ?2 = ?6 THEN ?5 ELSE settled_ms END WHERE trade_id = ?1",
    )?
    .execute(params![
        trade_id as i64,
        state.as_str(),
        legs.payment,
        legs.transfer,
        now_ms as i64,
        State::Settled.as_str()
    ])?;
    let asset = trade.instrument;
    match state {
        State::Settled => {
            // The atomic swap: both legs leave escrow in this one transaction.
            movement(
                tx,
                "settle",
                Some(trade_id),
                &[
                    Posting::new(ESCROW, CASH, -trade.amount),
                    Posting::new(trade.seller, CASH, trade.amount),
                    Posting::new(ESCROW, asset, -trade.qty),
                    Posting::new(trade.buyer, asset, trade.qty),
                ],
            )?;
            feedback::queue(
                tx,
                &SettlementOutcome::Settled {
                    trade_id,
                    retire: trade.retire,
                },
            )?;
            if trade.retire {
                outbox
                    .requests
                    .extend(super::requests::describe(tx, trade_id, Kind::Retirement)?);
            }
        }
        State::Failed => {
            // Refused or timed out: unwind at once, returning both legs.
            movement(
                tx,
                "unwind",
                Some(trade_id),
                &[
                    Posting::new(ESCROW, CASH, -trade.amount),
                    Posting::new(trade.buyer, CASH, trade.amount),
                    Posting::new(ESCROW, asset, -trade.qty),
                    Posting::new(trade.seller, asset, trade.qty),
                ],
            )?;
            return_serials(tx, trade_id, trade.seller)?;
            feedback::queue(tx, &SettlementOutcome::Unwound { trade_id })?;
            let (unwound, _) = escrow::next(State::Failed, legs, Signal::Unwind)
                .expect("failed -> unwound is drawn");
            tx.prepare_cached("UPDATE trades SET state = ?2 WHERE trade_id = ?1")?
                .execute(params![trade_id as i64, unwound.as_str()])?;
            if trade.retire {
                tx.prepare_cached("UPDATE buy_orders SET filled = filled - ?2, closed = closed + ?2 WHERE order_id = ?1")?
                    .execute(params![trade.buy_order_id as i64, trade.qty])?;
                maybe_certify(tx, trade.buy_order_id, now_ms, outbox)?;
            }
        }
        State::RetirementRefused => {
            // The credits stay the buyer's (delivered); the venue frees them.
            feedback::queue(tx, &SettlementOutcome::RetirementRefused { trade_id })?;
            maybe_certify(tx, trade.buy_order_id, now_ms, outbox)?;
        }
        State::Retired => {
            movement(
                tx,
                "retire",
                Some(trade_id),
                &[
                    Posting::new(trade.buyer, asset, -trade.qty),
                    Posting::new(RETIRED, asset, trade.qty),
                ],
            )?;
            feedback::queue(tx, &SettlementOutcome::Retired { trade_id })?;
            maybe_certify(tx, trade.buy_order_id, now_ms, outbox)?;
        }
        _ => {}
    }
    Ok(true)
}

/// Serials of an unwound trade go back to the seller as a new block each
/// (at the end of its FIFO order).
pub(super) fn return_serials(tx: &Transaction, trade_id: u64, seller: i64) -> rusqlite::Result<()> {
    let ranges: Vec<(i64, i64, i64)> = {
        let mut stmt = tx.prepare_cached(
            "SELECT block_id, first, last FROM trade_serials WHERE trade_id = ?1 AND returned = 0",
        )?;
        let rows = stmt.query_map([trade_id as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    for (block_id, first, last) in ranges {
        tx.prepare_cached(
            "INSERT INTO serial_blocks (account, instrument, registry, project_id, prefix, width, first, last, next, vintage, ccp)
             SELECT ?2, instrument, registry, project_id, prefix, width, ?3, ?4, ?3, vintage, ccp FROM serial_blocks WHERE id = ?1",
        )?
        .execute(params![block_id, seller, first, last])?;
    }
    tx.prepare_cached("UPDATE trade_serials SET returned = 1 WHERE trade_id = ?1")?
        .execute([trade_id as i64])?;
    Ok(())
}

pub(super) fn apply_event(
    tx: &Transaction,
    event: &RegistryEvent,
    now_ms: u64,
    outbox: &mut Outbox,
) -> rusqlite::Result<()> {
    let inserted = tx
        .prepare_cached("INSERT OR IGNORE INTO registry_events (event_id, trade_id, kind, confirmed, reference, applied) VALUES (?1, ?2, ?3, ?4, ?5, 'yes')")?
        .execute(params![event.event_id, event.trade_id as i64, event.kind.as_str(), event.confirmed, event.reference])?;
    if inserted == 0 {
        outbox.notes.push(format!(
            "registry event {} seen before: ignored",
            event.event_id
        ));
        return Ok(());
    }
    if event.kind == Kind::Withdrawal {
        if !super::withdrawals::answer(tx, event)? {
            tx.prepare_cached(
                "UPDATE registry_events SET applied = 'ignored' WHERE event_id = ?1",
            )?
            .execute([&event.event_id])?;
        }
        return Ok(());
    }
    // An answer to a request never sent (a retirement of a trade that is
    // not retired for a buyer) changes nothing, and the report counts it.
    if event.kind == Kind::Retirement && !load_trade(tx, event.trade_id)?.is_some_and(|t| t.retire)
    {
        tx.prepare_cached("UPDATE registry_events SET applied = 'ignored' WHERE event_id = ?1")?
            .execute([&event.event_id])?;
        outbox.notes.push(format!(
            "trade {}: a retirement answer, but none was asked: ignored",
            event.trade_id
        ));
        return Ok(());
    }
    let signal = match (event.kind, event.confirmed) {
        (Kind::Payment, true) => Signal::Confirmed(Leg::Payment),
        (Kind::Transfer, true) => Signal::Confirmed(Leg::Transfer),
        (Kind::Payment, false) => Signal::Refused(Leg::Payment),
        (Kind::Transfer, false) => Signal::Refused(Leg::Transfer),
        (Kind::Retirement, true) => Signal::RetirementConfirmed,
        (Kind::Retirement, false) => Signal::RetirementRefused,
        (Kind::Withdrawal, _) => unreachable!("answered above"),
    };
    if !event.confirmed {
        // The first refusal is the reason (a later one changes nothing).
        tx.prepare_cached("UPDATE trades SET failure = ?2 WHERE trade_id = ?1 AND failure IS NULL AND state IN (?3, ?4)")?
            .execute(params![
                event.trade_id as i64,
                format!("{}_refused:{}", event.kind.as_str(), event.reference),
                State::AwaitingConfirmations.as_str(),
                State::Settled.as_str(),
            ])?;
        outbox.notes.push(format!(
            "trade {}: the registry refused the {}: {}",
            event.trade_id,
            event.kind.as_str(),
            event.reference
        ));
    }
    if event.kind == Kind::Retirement {
        // Recorded before the transition, whose certificate quotes them.
        tx.prepare_cached("UPDATE trades SET retirement_ref = ?2, retired_ms = ?3 WHERE trade_id = ?1 AND state = ?4")?
            .execute(params![event.trade_id as i64, event.reference, now_ms as i64, State::Settled.as_str()])?;
    }
    let applied = transition(tx, event.trade_id, signal, now_ms, outbox)?;
    if !applied {
        tx.prepare_cached("UPDATE registry_events SET applied = 'ignored' WHERE event_id = ?1")?
            .execute([&event.event_id])?;
    }
    Ok(())
}

/// Issues the certificate of a buyer order once nothing of it can change:
/// every tonne filled or closed, every trade retired or unwound, and at
/// least one retired.
pub(super) fn maybe_certify(
    tx: &Transaction,
    order_id: u64,
    now_ms: u64,
    outbox: &mut Outbox,
) -> rusqlite::Result<()> {
    let Some((qty, filled, closed, done)): Option<(i64, i64, i64, Option<String>)> = tx
        .prepare_cached(
            "SELECT qty, filled, closed, certificate FROM buy_orders WHERE order_id = ?1",
        )?
        .query_row([order_id as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?
    else {
        return Ok(());
    };
    if done.is_some() || filled + closed < qty {
        return Ok(());
    }
    let (open, retired): (i64, i64) = tx
        .prepare_cached(
            "SELECT SUM(state NOT IN (?2, ?3, ?4)), SUM(state = ?2) FROM trades WHERE buy_order_id = ?1",
        )?
        .query_row(
            params![
                order_id as i64,
                State::Retired.as_str(),
                State::Unwound.as_str(),
                State::RetirementRefused.as_str()
            ],
            |r| Ok((r.get::<_, Option<i64>>(0)?.unwrap_or(0), r.get::<_, Option<i64>>(1)?.unwrap_or(0))),
        )?;
    if open > 0 || retired == 0 {
        return Ok(());
    }
    let data = super::certificate_query::certificate_data(tx, order_id)?;
    let certificate = crate::certificate::build(&data, now_ms);
    tx.prepare_cached(
        "INSERT INTO certificates (certificate_id, order_id, sha256, json) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        certificate.id,
        order_id as i64,
        certificate.sha256,
        certificate.json
    ])?;
    tx.prepare_cached("UPDATE buy_orders SET certificate = ?2 WHERE order_id = ?1")?
        .execute(params![order_id as i64, certificate.id])?;
    outbox.certificates.push(certificate.id);
    Ok(())
}
