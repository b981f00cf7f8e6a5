//! What certificates state, read from the ledger: a buyer order's decision,
//! its retired trades and their serials, and the buyer's earlier retired
//! tonnes of the year; and the certificates stored. `certificate` renders
//! from these and never reads the ledger itself.

use rusqlite::{params, Connection};
use serde_json::Value;

use super::serial;
use crate::certificate::{CertificateData, CreditRun, RetiredTrade};
use crate::escrow::State;

/// The certificate data of buyer order `order_id`.
pub fn certificate_data(conn: &Connection, order_id: u64) -> rusqlite::Result<CertificateData> {
    let (account, decision): (i64, String) = conn
        .prepare_cached("SELECT account, decision FROM buy_orders WHERE order_id = ?1")?
        .query_row([order_id as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
    // A decision that does not read is an error, never a default.
    let decision: Value = serde_json::from_str(&decision).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, Box::new(e))
    })?;
    let retired = State::Retired.as_str();
    let trades = conn
        .prepare_cached(
            "SELECT t.trade_id, t.journal_seq, i.symbol, i.sub_ledger, t.price_ticks, i.tick_micros, t.qty, t.seller,
                    t.supplementary_ticks, t.retirement_ref, t.retired_ms
             FROM trades t JOIN instruments i ON i.id = t.instrument
             WHERE t.buy_order_id = ?1 AND t.state = ?2 ORDER BY t.trade_id",
        )?
        .query_map(params![order_id as i64, retired], |r| {
            Ok(RetiredTrade {
                trade_id: r.get(0)?,
                journal_seq: r.get(1)?,
                symbol: r.get(2)?,
                sub_ledger: r.get(3)?,
                price_ticks: r.get(4)?,
                tick_micros: r.get(5)?,
                qty: r.get(6)?,
                seller: r.get(7)?,
                supplementary_ticks: r.get(8)?,
                retirement_ref: r.get(9)?,
                retired_ms: r.get(10)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let credits = conn
        .prepare_cached(
            "SELECT b.registry, b.project_id, b.prefix, b.width, s.first, s.last, b.vintage, b.ccp
             FROM trade_serials s JOIN serial_blocks b ON b.id = s.block_id JOIN trades t ON t.trade_id = s.trade_id
             WHERE t.buy_order_id = ?1 AND t.state = ?2 AND s.returned = 0 ORDER BY s.trade_id, s.first",
        )?
        .query_map(params![order_id as i64, retired], |r| {
            let prefix: String = r.get(2)?;
            let width = r.get::<_, i64>(3)? as usize;
            Ok(CreditRun {
                registry: r.get(0)?,
                project_id: r.get(1)?,
                serial_start: serial(&prefix, r.get(4)?, width),
                serial_end: serial(&prefix, r.get(5)?, width),
                vintage: r.get(6)?,
                ccp: r.get(7)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let year = decision
        .get("reporting_year")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    // Earlier certificates of the year: tonnes retired, and of orders
    // decided in budget mode (a price, no per-trade floor) the budget
    // (price x tonnes) and what was spent.
    let (earlier_retired, earlier_budget_micros, earlier_spent_micros): (i64, i64, i64) = conn
        .prepare_cached(
            "SELECT COALESCE(SUM(t.qty), 0),
                    COALESCE(SUM(CASE WHEN json_extract(b.decision, '$.floor_ticks') = 0
                        THEN json_extract(b.decision, '$.floor_micros') * t.qty ELSE 0 END), 0),
                    COALESCE(SUM(CASE WHEN json_extract(b.decision, '$.floor_ticks') = 0
                        AND json_extract(b.decision, '$.floor_micros') > 0 THEN t.amount_micros ELSE 0 END), 0)
             FROM trades t JOIN buy_orders b ON b.order_id = t.buy_order_id
             WHERE b.account = ?1 AND b.certificate IS NOT NULL AND b.order_id <> ?2
               AND json_extract(b.decision, '$.reporting_year') = ?3 AND t.state = ?4",
        )?
        .query_row(params![account, order_id as i64, year, retired], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    Ok(CertificateData {
        order_id,
        account,
        decision,
        trades,
        credits,
        earlier_retired,
        earlier_budget_micros,
        earlier_spent_micros,
    })
}

/// Every certificate stored, as `(id, canonical JSON)`.
pub fn stored(conn: &Connection) -> rusqlite::Result<Vec<(String, String)>> {
    conn.prepare("SELECT certificate_id, json FROM certificates")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}
