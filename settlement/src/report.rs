//! `tonnex-settlement report`: balances per account and instrument, what
//! failed and why, and the custody log's head.

use rusqlite::Connection;
use serde_json::{json, Value};

use crate::escrow::State;
use crate::ledger::CASH;

/// The reconciliation report: per account, cash and credits free, in
/// escrow (pending), settled and retired; per instrument, volume and open
/// settlements.
pub fn report(conn: &Connection) -> rusqlite::Result<Value> {
    let mut accounts = serde_json::Map::new();
    {
        let mut stmt = conn.prepare(
            "SELECT account, asset, SUM(amount) FROM postings WHERE account > 0 GROUP BY account, asset ORDER BY account, asset",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        for row in rows {
            let (account, asset, amount) = row?;
            let entry = accounts
                .entry(account.to_string())
                .or_insert_with(|| json!({"cash_micros": 0, "credits": {}, "pending_buy_micros": 0, "pending_sell_tonnes": 0, "settled_trades": 0, "retired_tonnes": 0}));
            if asset == CASH {
                entry["cash_micros"] = amount.into();
            } else {
                entry["credits"][asset.to_string()] = amount.into();
            }
        }
        let mut stmt =
            conn.prepare("SELECT buyer, seller, amount_micros, qty, state FROM trades")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        for row in rows {
            let (buyer, seller, amount, qty, state) = row?;
            // An unknown stored state is an error, never a default.
            let state = State::parse(&state).ok_or_else(|| {
                rusqlite::Error::FromSqlConversionFailure(
                    4,
                    rusqlite::types::Type::Text,
                    format!("unknown escrow state '{state}'").into(),
                )
            })?;
            let pending = State::IN_FLIGHT.contains(&state);
            for (account, is_buyer) in [(buyer, true), (seller, false)] {
                let Some(entry) = accounts.get_mut(&account.to_string()) else {
                    continue;
                };
                if pending && is_buyer {
                    entry["pending_buy_micros"] =
                        (entry["pending_buy_micros"].as_i64().unwrap_or(0) + amount).into();
                } else if pending {
                    entry["pending_sell_tonnes"] =
                        (entry["pending_sell_tonnes"].as_i64().unwrap_or(0) + qty).into();
                } else if matches!(state, State::Settled | State::Retired) {
                    entry["settled_trades"] =
                        (entry["settled_trades"].as_i64().unwrap_or(0) + 1).into();
                }
                if is_buyer && state == State::Retired {
                    entry["retired_tonnes"] =
                        (entry["retired_tonnes"].as_i64().unwrap_or(0) + qty).into();
                }
            }
        }
    }
    let mut instruments = Vec::new();
    {
        let in_flight = crate::escrow::sql_list(&State::IN_FLIGHT);
        let mut stmt = conn.prepare(&format!(
            "SELECT i.id, i.symbol, i.sub_ledger, COALESCE(SUM(t.qty), 0), COUNT(t.trade_id),
                    COALESCE(SUM(t.state IN ({in_flight})), 0)
             FROM instruments i LEFT JOIN trades t ON t.instrument = i.id GROUP BY i.id ORDER BY i.id"
        ))?;
        let rows = stmt.query_map([], |r| {
            Ok(json!({"instrument": r.get::<_, i64>(0)?, "symbol": r.get::<_, String>(1)?, "sub_ledger": r.get::<_, String>(2)?,
                      "volume_tonnes": r.get::<_, i64>(3)?, "trades": r.get::<_, i64>(4)?, "open_settlements": r.get::<_, i64>(5)?}))
        })?;
        for row in rows {
            instruments.push(row?);
        }
    }
    // The custody log's head: publishing it (daily, say) lets anyone later
    // check that no entry before it was altered.
    let head = crate::ledger::custody::head(conn)?;
    Ok(json!({
        "accounts": accounts,
        "instruments": instruments,
        "failures": failures(conn)?,
        "custody_in": custody_in(conn)?,
        "withdrawals": withdrawals(conn)?,
        "budgets": budgets(conn)?,
        "custody_head": head.map(|(movement, sha256)| json!({"movement": movement, "sha256": sha256})),
    }))
}

/// What did not go through, and what the registry sent that changed
/// nothing: trades unwound by reason (a leg refused with the registry's
/// reason, or no answer in time), retirements refused, callbacks repeated,
/// and answers that came for nothing pending (a late confirmation of an
/// unwound trade is one to take up with the registry).
/// Budget mode, per buyer: the year's budget beside spend and the gap.
fn budgets(conn: &Connection) -> rusqlite::Result<Value> {
    let mut out = Vec::new();
    for account in crate::ledger::budget_query::budget_accounts(conn)? {
        if let Some(b) = crate::ledger::budget_query::budget(conn, account)? {
            let mut figures = b.to_json(crate::certificate::usd);
            figures["account"] = json!(account);
            out.push(figures);
        }
    }
    Ok(Value::Array(out))
}

fn failures(conn: &Connection) -> rusqlite::Result<Value> {
    let grouped = |query: &str| -> rusqlite::Result<serde_json::Map<String, Value>> {
        let mut stmt = conn.prepare(query)?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        rows.map(|row| row.map(|(k, n)| (k, Value::from(n))))
            .collect()
    };
    Ok(json!({
        "unwound_by_reason": grouped(&format!(
            "SELECT COALESCE(failure, 'unknown'), COUNT(*) FROM trades WHERE state IN ({}) GROUP BY 1 ORDER BY 1",
            crate::escrow::sql_list(&[State::Unwound])
        ))?,
        "retirements_refused_by_reason": grouped(&format!(
            "SELECT COALESCE(failure, 'unknown'), COUNT(*) FROM trades WHERE state IN ({}) GROUP BY 1 ORDER BY 1",
            crate::escrow::sql_list(&[State::RetirementRefused])
        ))?,
        "registry_answers_that_changed_nothing": grouped(
            "SELECT kind || CASE confirmed WHEN 1 THEN '_confirmed' ELSE '_refused' END, COUNT(*) FROM registry_events WHERE applied = 'ignored' GROUP BY 1 ORDER BY 1",
        )?,
    }))
}

/// Transfers into the venue's custody account: how many by state, and why
/// any was refused.
fn custody_in(conn: &Connection) -> rusqlite::Result<Value> {
    let mut by_state = serde_json::Map::new();
    let mut stmt =
        conn.prepare("SELECT state, COUNT(*) FROM custody_in GROUP BY state ORDER BY state")?;
    for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        let (state, n) = row?;
        by_state.insert(state, n.into());
    }
    let mut stmt = conn.prepare(
        "SELECT transfer_id, detail FROM custody_in WHERE state = 'refused' ORDER BY seq LIMIT 20",
    )?;
    let refused: Vec<Value> = stmt
        .query_map([], |r| {
            Ok(json!({"transfer_id": r.get::<_, String>(0)?, "why": r.get::<_, String>(1)?}))
        })?
        .collect::<Result<_, _>>()?;
    Ok(json!({"by_state": by_state, "refused": refused}))
}

/// Withdrawals by state, and why any came back.
fn withdrawals(conn: &Connection) -> rusqlite::Result<Value> {
    let mut by_state = serde_json::Map::new();
    let mut stmt = conn.prepare(
        "SELECT state, COUNT(*), SUM(qty) FROM withdrawals GROUP BY state ORDER BY state",
    )?;
    for row in stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })? {
        let (state, n, tonnes) = row?;
        by_state.insert(state, json!({"count": n, "tonnes": tonnes}));
    }
    let mut stmt = conn.prepare(
        "SELECT failure, COUNT(*) FROM withdrawals WHERE failure IS NOT NULL GROUP BY failure ORDER BY failure",
    )?;
    let returned: serde_json::Map<String, Value> = stmt
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, Value::from(r.get::<_, i64>(1)?)))
        })?
        .collect::<Result<_, _>>()?;
    Ok(json!({"by_state": by_state, "returned_by_reason": returned}))
}
