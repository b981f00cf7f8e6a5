//! Registry requests built from the ledger: the trade's accounts and legs,
//! the serials it delivers (or the buyer retires) with their registry,
//! project and vintage, and for a retirement the beneficiary, reason, use
//! and reporting year from the buyer's decision.

use rusqlite::{Connection, OptionalExtension};

use super::serial;
use crate::registry::{Kind, Request, Retirement, SerialRange};

/// What registries print as the reason of a retirement the venue makes.
pub const RETIREMENT_REASON: &str =
    "Retired on behalf of the beneficiary for its ongoing emissions responsibility (SBTi Corporate Net-Zero Standard V2.0)";

/// A serial range from a block's row and the numbers of the run.
#[allow(clippy::too_many_arguments)]
pub(super) fn range(
    registry: String,
    project_id: String,
    prefix: &str,
    width: i64,
    first: i64,
    last: i64,
    vintage: i64,
) -> SerialRange {
    let width = width as usize;
    SerialRange {
        registry,
        project_id,
        serial_start: serial(prefix, first, width),
        serial_end: serial(prefix, last, width),
        vintage,
        quantity: (last - first + 1) as u64,
    }
}

/// The serials trade `trade_id` holds (not returned), in serial order.
pub(crate) fn serials_of(conn: &Connection, trade_id: u64) -> rusqlite::Result<Vec<SerialRange>> {
    let mut stmt = conn.prepare_cached(
        "SELECT b.registry, b.project_id, b.prefix, b.width, s.first, s.last, b.vintage
         FROM trade_serials s JOIN serial_blocks b ON b.id = s.block_id
         WHERE s.trade_id = ?1 AND s.returned = 0 ORDER BY s.block_id, s.first",
    )?;
    let rows = stmt.query_map([trade_id as i64], |r| {
        Ok(range(
            r.get(0)?,
            r.get(1)?,
            &r.get::<_, String>(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
        ))
    })?;
    rows.collect()
}

/// The request of `kind` for trade `trade_id`, if the ledger holds it.
pub(super) fn describe(
    conn: &Connection,
    trade_id: u64,
    kind: Kind,
) -> rusqlite::Result<Option<Request>> {
    let Some((buyer, seller, qty, amount, buy_order)): Option<(i64, i64, i64, i64, i64)> = conn
        .prepare_cached(
            "SELECT buyer, seller, qty, amount_micros, buy_order_id FROM trades WHERE trade_id = ?1",
        )?
        .query_row([trade_id as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()?
    else {
        return Ok(None);
    };
    let serials = match kind {
        Kind::Payment => Vec::new(),
        Kind::Transfer | Kind::Retirement | Kind::Withdrawal => serials_of(conn, trade_id)?,
    };
    let retirement = match kind {
        Kind::Retirement => retirement_of(conn, buy_order as u64)?,
        _ => None,
    };
    Ok(Some(Request {
        trade_id,
        kind,
        buyer: buyer as u64,
        seller: seller as u64,
        quantity: qty as u64,
        amount_micros: amount,
        serials,
        retirement,
    }))
}

/// The retirement details of buyer order `order_id`'s decision.
fn retirement_of(conn: &Connection, order_id: u64) -> rusqlite::Result<Option<Retirement>> {
    let decision: Option<String> = conn
        .prepare_cached("SELECT decision FROM buy_orders WHERE order_id = ?1")?
        .query_row([order_id as i64], |r| r.get(0))
        .optional()?;
    let Some(decision) = decision else {
        return Ok(None);
    };
    let value: serde_json::Value = serde_json::from_str(&decision).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })?;
    // A decision without them is an error, never a default.
    let missing = |what: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("buy order {order_id}: its decision has no {what}").into(),
        )
    };
    let year = value["reporting_year"]
        .as_i64()
        .ok_or_else(|| missing("reporting_year"))?;
    let pathway = value["pathway"]
        .as_str()
        .ok_or_else(|| missing("pathway"))?;
    let company = value["company"]
        .as_str()
        .ok_or_else(|| missing("company"))?;
    Ok(Some(Retirement {
        beneficiary: company.to_string(),
        reason: RETIREMENT_REASON.to_string(),
        claim_use: format!(
            "SBTi ongoing emissions responsibility, {pathway} pathway, reporting year {year}"
        ),
        reporting_year: year,
    }))
}
