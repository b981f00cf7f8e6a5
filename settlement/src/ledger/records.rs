//! Applying fill-stream records: instruments, deposits and withdrawals with
//! their serial blocks, buyers' decisions, trades (locked in escrow with
//! their serials cut), cancels.

use rusqlite::{params, OptionalExtension, Transaction};
use tonnex_protocol::wire::{BuyDecision, LotInfo, StreamEvent, StreamRecord};

use super::effects::maybe_certify;
use super::postings::{movement, Posting};
use super::serials::split_serial;
use super::{Outbox, CASH, ESCROW, EXTERNAL};
use crate::escrow::{self, Legs, Signal, State};
use crate::registry::{Kind, Request, SerialRange};

pub(super) fn insert_block(
    tx: &Transaction,
    account: u64,
    instrument: u32,
    qty: u64,
    lot: Option<&LotInfo>,
) -> rusqlite::Result<()> {
    // A lot whose serials are `prefix + number` with first..=last spanning
    // its quantity is cut serial by serial; anything else is numbered
    // `<serial_start>#1..#qty` so every tonne still has one identity.
    let (registry, project, prefix, width, first, vintage, ccp) = match lot {
        Some(lot) => {
            let parsed = split_serial(&lot.serial_start).zip(split_serial(&lot.serial_end));
            let (prefix, width, first) = match parsed {
                Some(((p1, a, w), (p2, b, _))) if p1 == p2 && b - a + 1 == qty as i64 => (p1, w, a),
                _ => (format!("{}#", lot.serial_start), 0, 1),
            };
            (
                lot.registry.clone(),
                lot.project_id.clone(),
                prefix,
                width,
                first,
                i64::from(lot.vintage),
                lot.ccp,
            )
        }
        None => (
            "venue".to_string(),
            String::new(),
            format!("UNSERIALISED-{account}-{instrument}#"),
            0,
            1,
            0,
            false,
        ),
    };
    tx.prepare_cached(
        "INSERT INTO serial_blocks (account, instrument, registry, project_id, prefix, width, first, last, next, vintage, ccp)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?7, ?9, ?10)",
    )?
    .execute(params![account as i64, instrument, registry, project, prefix, width as i64, first, first + qty as i64 - 1, vintage, ccp])?;
    Ok(())
}

pub(super) fn decision_json(decision: &BuyDecision) -> String {
    let pathway = ["none", "engaged", "recognised", "leadership"]
        .get(decision.pathway as usize)
        .copied()
        .unwrap_or("none");
    serde_json::json!({
        "company": decision.company,
        "reporting_year": decision.reporting_year,
        "pathway": pathway,
        "sub_ledger": decision.sub_ledger,
        "floor_micros": decision.floor_micros,
        "floor_ticks": decision.floor_ticks,
        "internal_price_micros": decision.internal_price_micros,
        "attestation": decision.attestation,
        "scope": decision.scope.iter().map(|l| serde_json::json!({"scope": l.scope, "category": l.category, "tonnes": l.qty})).collect::<Vec<_>>(),
        "coverage_bp": decision.coverage_bp,
        "tier_threshold_met": decision.tier_threshold_met,
        "ongoing_emissions_milli_t": decision.ongoing_emissions_milli_t,
        "threshold_bp": decision.threshold_bp,
        "rules_version": decision.rules_version,
        "rules_sha256": decision.rules_sha256,
        "attestation_approver": decision.attestation_approver,
    })
    .to_string()
}

pub(super) fn apply_record(
    tx: &Transaction,
    record: &StreamRecord,
    now_ms: u64,
    outbox: &mut Outbox,
) -> rusqlite::Result<()> {
    match &record.event {
        StreamEvent::Instrument {
            instrument,
            symbol,
            sub_ledger,
            tick_micros,
        } => {
            tx.execute(
                "INSERT OR REPLACE INTO instruments (id, symbol, sub_ledger, tick_micros) VALUES (?1, ?2, ?3, ?4)",
                params![instrument, symbol, sub_ledger, tick_micros],
            )?;
        }
        StreamEvent::CashDeposit {
            account,
            amount_micros,
        } => {
            movement(
                tx,
                "deposit",
                None,
                &[
                    Posting::new(EXTERNAL, CASH, -amount_micros),
                    Posting::new(*account as i64, CASH, *amount_micros),
                ],
            )?;
        }
        StreamEvent::CashWithdrawal {
            account,
            amount_micros,
        } => {
            movement(
                tx,
                "withdrawal",
                None,
                &[
                    Posting::new(*account as i64, CASH, -amount_micros),
                    Posting::new(EXTERNAL, CASH, *amount_micros),
                ],
            )?;
        }
        StreamEvent::CreditDeposit {
            account,
            instrument,
            qty,
            lot,
        } => {
            let q = *qty as i64;
            let asset = i64::from(*instrument);
            movement(
                tx,
                "deposit",
                None,
                &[
                    Posting::new(EXTERNAL, asset, -q),
                    Posting::new(*account as i64, asset, q),
                ],
            )?;
            insert_block(tx, *account, *instrument, *qty, lot.as_ref())?;
        }
        StreamEvent::CreditWithdrawal {
            account,
            instrument,
            qty,
        } => {
            let q = *qty as i64;
            let asset = i64::from(*instrument);
            super::withdrawals::record(
                tx,
                record.seq,
                *account,
                *instrument,
                *qty,
                now_ms,
                outbox,
            )?;
            movement(
                tx,
                "withdrawal",
                None,
                &[
                    Posting::new(*account as i64, asset, -q),
                    Posting::new(EXTERNAL, asset, q),
                ],
            )?;
        }
        StreamEvent::BuyAccepted {
            order_id,
            account,
            instrument,
            price_ticks,
            qty,
            decision,
        } => {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO buy_orders (order_id, account, instrument, qty, price_ticks, decision) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![*order_id as i64, *account as i64, instrument, *qty as i64, price_ticks, decision_json(decision)])?;
        }
        StreamEvent::Trade {
            trade_id,
            instrument,
            buy_order_id,
            sell_order_id,
            buyer,
            seller,
            price_ticks,
            qty,
            supplementary_ticks,
        } => {
            let tick: i64 = tx
                .prepare_cached("SELECT tick_micros FROM instruments WHERE id = ?1")?
                .query_row([instrument], |r| r.get(0))?;
            let q = *qty as i64;
            let amount = price_ticks * q * tick;
            let retire: bool = tx
                .prepare_cached("SELECT 1 FROM buy_orders WHERE order_id = ?1")?
                .query_row([*buy_order_id as i64], |_| Ok(()))
                .optional()?
                .is_some();
            let (state, _) = escrow::next(State::Locked, Legs::default(), Signal::Submitted)
                .expect("locked -> awaiting is drawn");
            tx.prepare_cached(
                "INSERT INTO trades (trade_id, journal_seq, instrument, buy_order_id, sell_order_id, buyer, seller, price_ticks, qty,
                    amount_micros, supplementary_ticks, state, retire, submitted_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )?
            .execute(params![
                *trade_id as i64,
                record.journal_seq as i64,
                instrument,
                *buy_order_id as i64,
                *sell_order_id as i64,
                *buyer as i64,
                *seller as i64,
                price_ticks,
                q,
                amount,
                supplementary_ticks,
                state.as_str(),
                retire,
                now_ms as i64
            ])?;
            let asset = i64::from(*instrument);
            movement(
                tx,
                "lock",
                Some(*trade_id),
                &[
                    Posting::new(*buyer as i64, CASH, -amount),
                    Posting::new(ESCROW, CASH, amount),
                    Posting::new(*seller as i64, asset, -q),
                    Posting::new(ESCROW, asset, q),
                ],
            )?;
            let serials = allocate_serials(tx, *trade_id, *seller, *instrument, q, outbox)?;
            if *supplementary_ticks > 0 {
                tx.prepare_cached("INSERT INTO supplementary (trade_id, buyer, ticks_per_t, qty, amount_micros) VALUES (?1, ?2, ?3, ?4, ?5)")?
                    .execute(params![*trade_id as i64, *buyer as i64, supplementary_ticks, q, supplementary_ticks * q * tick])?;
            }
            if retire {
                tx.prepare_cached(
                    "UPDATE buy_orders SET filled = filled + ?2 WHERE order_id = ?1",
                )?
                .execute(params![*buy_order_id as i64, q])?;
            }
            let payment = Request {
                trade_id: *trade_id,
                kind: Kind::Payment,
                buyer: *buyer,
                seller: *seller,
                quantity: *qty,
                amount_micros: amount,
                serials: Vec::new(),
                retirement: None,
            };
            let transfer = Request {
                kind: Kind::Transfer,
                serials,
                ..payment.clone()
            };
            outbox.requests.extend([payment, transfer]);
        }
        StreamEvent::Cancelled {
            order_id, open_qty, ..
        } => {
            let changed = tx
                .prepare_cached("UPDATE buy_orders SET closed = closed + ?2 WHERE order_id = ?1")?
                .execute(params![*order_id as i64, *open_qty as i64])?;
            if changed > 0 {
                maybe_certify(tx, *order_id, now_ms, outbox)?;
            }
        }
        // A refusal ends the subscription before any record (the follower
        // stops on it); it is never a record to apply.
        StreamEvent::Refused { .. } => {}
    }
    Ok(())
}

/// Cuts `qty` serials from the seller's blocks of `instrument`, oldest first.
pub(crate) fn allocate_serials(
    tx: &Transaction,
    trade_id: u64,
    seller: u64,
    instrument: u32,
    qty: i64,
    outbox: &mut Outbox,
) -> rusqlite::Result<Vec<SerialRange>> {
    let mut left = qty;
    let mut ranges = Vec::new();
    let blocks: Vec<Block> = {
        let mut stmt = tx.prepare_cached(
            "SELECT id, next, last, registry, project_id, prefix, width, vintage FROM serial_blocks
             WHERE account = ?1 AND instrument = ?2 AND next <= last ORDER BY id",
        )?;
        let rows = stmt.query_map(params![seller as i64, instrument], |r| {
            Ok(Block {
                id: r.get(0)?,
                next: r.get(1)?,
                last: r.get(2)?,
                registry: r.get(3)?,
                project_id: r.get(4)?,
                prefix: r.get(5)?,
                width: r.get(6)?,
                vintage: r.get(7)?,
            })
        })?;
        let mut out = Vec::new();
        let mut available = 0;
        for row in rows {
            let block: Block = row?;
            available += block.last - block.next + 1;
            out.push(block);
            if available >= left {
                break;
            }
        }
        out
    };
    for block in blocks {
        if left == 0 {
            break;
        }
        let (block_id, next, last) = (block.id, block.next, block.last);
        let take = left.min(last - next + 1);
        ranges.push(super::requests::range(
            block.registry,
            block.project_id,
            &block.prefix,
            block.width,
            next,
            next + take - 1,
            block.vintage,
        ));
        tx.prepare_cached(
            "INSERT INTO trade_serials (trade_id, block_id, first, last) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![trade_id as i64, block_id, next, next + take - 1])?;
        tx.prepare_cached("UPDATE serial_blocks SET next = ?2 WHERE id = ?1")?
            .execute(params![block_id, next + take])?;
        left -= take;
    }
    if left > 0 {
        outbox.notes.push(format!(
            "trade {trade_id}: seller {seller} has {left} t without registry serials"
        ));
    }
    Ok(ranges)
}

/// A seller's serial block with serials left, as allocation reads it.
struct Block {
    id: i64,
    next: i64,
    last: i64,
    registry: String,
    project_id: String,
    prefix: String,
    width: i64,
    vintage: i64,
}
