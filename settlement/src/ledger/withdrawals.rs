//! Withdrawals the registry confirms: the venue debits the credits at once
//! (so they can never be sold twice); the ledger cuts the serials from the
//! owner's blocks, first in first out, and asks the registry to move them
//! from the venue's custody account to the owner's. A refusal returns them:
//! the credits to the owner's ledger balance, the serials as a new block,
//! and the engine's account through a `WithdrawalReturned` outcome.

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use tonnex_protocol::admin::SettlementOutcome;

use super::postings::{movement, Posting};
use super::records::allocate_serials;
use super::{effects, feedback, Outbox, EXTERNAL};
use crate::registry::{Kind, RegistryEvent, Request, SerialRange};

/// Withdrawal ids live apart from trade ids (`seq << 20 | n`).
pub const ID_BASE: u64 = 1 << 62;

/// Asked of the registry, no answer yet.
pub const REQUESTED: &str = "requested";
/// The registry moved the serials out.
pub const CONFIRMED: &str = "confirmed";
/// The registry refused: the credits came back.
pub const RETURNED: &str = "returned";

/// Records a withdrawal of stream record `seq` and queues its request.
pub(super) fn record(
    tx: &Transaction,
    seq: u64,
    account: u64,
    instrument: u32,
    qty: u64,
    now_ms: u64,
    outbox: &mut Outbox,
) -> rusqlite::Result<()> {
    let id = ID_BASE | seq;
    tx.prepare_cached(
        "INSERT INTO withdrawals (id, account, instrument, qty, state, submitted_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![id as i64, account as i64, instrument, qty as i64, REQUESTED, now_ms as i64])?;
    let serials = allocate_serials(tx, id, account, instrument, qty as i64, outbox)?;
    outbox.requests.push(request_of(id, account, qty, serials));
    Ok(())
}

/// The registry request of withdrawal `id`: its serials from the venue's
/// custody account to `account`'s.
fn request_of(id: u64, account: u64, qty: u64, serials: Vec<SerialRange>) -> Request {
    Request {
        trade_id: id,
        kind: Kind::Withdrawal,
        buyer: account,
        seller: 0,
        quantity: qty,
        amount_micros: 0,
        serials,
        retirement: None,
    }
}

/// A withdrawal's row: account, instrument, tonnes, state.
pub(crate) fn load(
    conn: &Connection,
    id: u64,
) -> rusqlite::Result<Option<(u64, u32, u64, String)>> {
    conn.prepare_cached("SELECT account, instrument, qty, state FROM withdrawals WHERE id = ?1")?
        .query_row([id as i64], |r| {
            Ok((
                r.get::<_, i64>(0)? as u64,
                r.get::<_, u32>(1)?,
                r.get::<_, i64>(2)? as u64,
                r.get(3)?,
            ))
        })
        .optional()
}

/// The registry's answer for a withdrawal; one for a withdrawal not
/// awaiting it changes nothing (`false`).
pub(super) fn answer(tx: &Transaction, event: &RegistryEvent) -> rusqlite::Result<bool> {
    let Some((account, instrument, qty, state)) = load(tx, event.trade_id)? else {
        return Ok(false);
    };
    if state != REQUESTED {
        return Ok(false);
    }
    if event.confirmed {
        tx.prepare_cached("UPDATE withdrawals SET state = ?2, reference = ?3 WHERE id = ?1")?
            .execute(params![event.trade_id as i64, CONFIRMED, event.reference])?;
        return Ok(true);
    }
    tx.prepare_cached("UPDATE withdrawals SET state = ?2, failure = ?3 WHERE id = ?1")?
        .execute(params![
            event.trade_id as i64,
            RETURNED,
            format!("withdrawal_refused:{}", event.reference)
        ])?;
    let asset = i64::from(instrument);
    movement(
        tx,
        "withdrawal_returned",
        None,
        &[
            Posting::new(EXTERNAL, asset, -(qty as i64)),
            Posting::new(account as i64, asset, qty as i64),
        ],
    )?;
    effects::return_serials(tx, event.trade_id, account as i64)?;
    feedback::queue(
        tx,
        &SettlementOutcome::WithdrawalReturned {
            withdrawal_id: event.trade_id,
            account,
            instrument,
            qty,
        },
    )?;
    Ok(true)
}

/// The request of withdrawal `id` (sent again while unanswered).
pub(super) fn request(conn: &Connection, id: u64) -> rusqlite::Result<Option<Request>> {
    let Some((account, _, qty, _)) = load(conn, id)? else {
        return Ok(None);
    };
    let serials = super::requests::serials_of(conn, id)?;
    Ok(Some(request_of(id, account, qty, serials)))
}

/// Withdrawals still owed an answer, requested before `before_ms`.
pub(super) fn pending(conn: &Connection, before_ms: u64) -> rusqlite::Result<Vec<u64>> {
    conn.prepare_cached(
        "SELECT id FROM withdrawals WHERE state = ?1 AND submitted_ms < ?2 ORDER BY id",
    )?
    .query_map(params![REQUESTED, before_ms as i64], |r| {
        Ok(r.get::<_, i64>(0)? as u64)
    })?
    .collect()
}
