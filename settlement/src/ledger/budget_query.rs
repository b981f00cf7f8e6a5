//! Budget mode's figures from the ledger (crate::budget): per buyer, over
//! its budget-mode orders' trades that stand (not unwound, not refused
//! retirement), the pathway price x tonnes, the spend, and the attestation
//! its latest budget-mode order named. The buyer dashboard and the
//! settlement report read them here.

use rusqlite::Connection;

use crate::budget::Budget;

/// Orders decided in budget mode: a price and no per-trade floor.
const BUDGET_MODE: &str =
    "json_extract(b.decision, '$.floor_ticks') = 0 AND json_extract(b.decision, '$.floor_micros') > 0";

/// The buyer's budget-mode figures over its trades that were not unwound
/// (or refused retirement): price x tonnes, spend, and the attestation
/// its latest budget-mode order named. `None` if no order of the buyer
/// was decided in budget mode.
pub fn budget(conn: &Connection, account: u64) -> rusqlite::Result<Option<Budget>> {
    let gone = crate::escrow::sql_list(&[
        crate::escrow::State::Unwound,
        crate::escrow::State::RetirementRefused,
    ]);
    let budget_mode = BUDGET_MODE;
    let (orders, price, budget, spent): (i64, Option<i64>, i64, i64) = conn
        .prepare_cached(&format!(
            "SELECT COUNT(DISTINCT b.order_id), MAX(json_extract(b.decision, '$.floor_micros')),
                    COALESCE(SUM(json_extract(b.decision, '$.floor_micros') * t.qty), 0),
                    COALESCE(SUM(t.amount_micros), 0)
             FROM buy_orders b LEFT JOIN trades t ON t.buy_order_id = b.order_id AND t.state NOT IN ({gone})
             WHERE b.account = ?1 AND {budget_mode}"
        ))?
        .query_row([account as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    if orders == 0 {
        return Ok(None);
    }
    let attestation: Option<String> = conn
        .prepare_cached(&format!(
            "SELECT json_extract(b.decision, '$.attestation') FROM buy_orders b
             WHERE b.account = ?1 AND {budget_mode} ORDER BY b.order_id DESC LIMIT 1"
        ))?
        .query_row([account as i64], |r| r.get(0))?;
    Ok(Some(Budget {
        price_micros: price.unwrap_or(0),
        budget_micros: budget,
        spent_micros: spent,
        attestation,
    }))
}

/// Every account with an order decided in budget mode, by id.
pub fn budget_accounts(conn: &Connection) -> rusqlite::Result<Vec<u64>> {
    conn.prepare(&format!(
        "SELECT DISTINCT b.account FROM buy_orders b WHERE {BUDGET_MODE} ORDER BY b.account"
    ))?
    .query_map([], |r| Ok(r.get::<_, i64>(0)? as u64))?
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_counts_budget_mode_orders_and_trades_that_stand() {
        let dir =
            std::env::temp_dir().join(format!("tonnex-settlement-budget-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        drop(crate::ledger::Ledger::open(&dir).unwrap());
        let conn = Connection::open(dir.join("ledger.sqlite")).unwrap();
        assert_eq!(budget(&conn, 1001).unwrap(), None);
        let order = |id: i64, decision: &str| {
            conn.execute(
                "INSERT INTO buy_orders (order_id, account, instrument, qty, price_ticks, decision) VALUES (?1, 1001, 0, 100, 2100, ?2)",
                rusqlite::params![id, decision],
            )
            .unwrap();
        };
        let trade = |id: i64, order: i64, qty: i64, amount: i64, state: &str| {
            conn.execute(
                "INSERT INTO trades (trade_id, journal_seq, instrument, buy_order_id, sell_order_id, buyer, seller, price_ticks, qty,
                    amount_micros, supplementary_ticks, state, retire, submitted_ms)
                 VALUES (?1, 1, 0, ?2, 9, 1001, 2001, 0, ?3, ?4, 0, ?5, 1, 0)",
                rusqlite::params![id, order, qty, amount, state],
            )
            .unwrap();
        };
        // A per-trade order does not count; two budget-mode orders at $20/t.
        order(
            1,
            r#"{"floor_micros": 20000000, "floor_ticks": 2000, "attestation": null}"#,
        );
        trade(10, 1, 5, 75_000_000, "retired");
        order(
            2,
            r#"{"floor_micros": 20000000, "floor_ticks": 0, "attestation": null}"#,
        );
        trade(20, 2, 10, 150_000_000, "retired");
        trade(21, 2, 4, 60_000_000, "unwound");
        order(
            3,
            r#"{"floor_micros": 20000000, "floor_ticks": 0, "attestation": "ICP-2026"}"#,
        );
        trade(30, 3, 5, 105_000_000, "settled");
        let b = budget(&conn, 1001).unwrap().unwrap();
        // 15 t standing: budget 300, spent 255, gap 45, attested by the latest order's attestation.
        assert_eq!(
            (b.price_micros, b.budget_micros, b.spent_micros),
            (20_000_000, 300_000_000, 255_000_000)
        );
        assert_eq!(b.gap_micros(), 45_000_000);
        assert_eq!(b.attestation.as_deref(), Some("ICP-2026"));
        assert_eq!(budget_accounts(&conn).unwrap(), [1001]);
        std::fs::remove_dir_all(dir).ok();
    }
}
