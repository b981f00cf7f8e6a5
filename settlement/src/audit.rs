//! `tonnex-settlement audit`: the ledger's invariants.

use std::path::Path;

use rusqlite::Connection;
use serde_json::{json, Value};

use crate::certificate::digest;
use crate::escrow::{sql_list, State};
use crate::ledger::{CASH, ESCROW, RETIRED};

/// What the audit found.
pub struct Audit {
    /// Every check passed.
    pub ok: bool,
    /// Trades in the ledger.
    pub trades: u64,
    /// Trades settled or retired.
    pub settled: u64,
    /// Certificates issued.
    pub certificates: u64,
    /// The JSON report.
    pub json: Value,
}

fn count(conn: &Connection, query: &str) -> rusqlite::Result<i64> {
    conn.query_row(query, [], |r| {
        r.get::<_, Option<i64>>(0).map(Option::unwrap_or_default)
    })
}

fn problems_of(
    conn: &Connection,
    query: &str,
    what: &str,
    problems: &mut Vec<String>,
) -> rusqlite::Result<u64> {
    let mut stmt = conn.prepare(query)?;
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get::<_, i64>(0).map(|v| v.to_string()))?
        .collect::<Result<_, _>>()?;
    for row in rows.iter().take(10) {
        problems.push(format!("{what}: {row}"));
    }
    Ok(rows.len() as u64)
}

/// Checks the ledger in `dir`.
pub fn audit(conn: &Connection, dir: &Path) -> rusqlite::Result<Audit> {
    let mut problems = Vec::new();

    // 1. Conservation: every movement, and so every asset, sums to zero.
    let unbalanced = problems_of(
        conn,
        "SELECT movement_id FROM postings GROUP BY movement_id, asset HAVING SUM(amount) != 0",
        "unbalanced movement",
        &mut problems,
    )?;
    let assets_off = problems_of(
        conn,
        "SELECT asset FROM postings GROUP BY asset HAVING SUM(amount) != 0",
        "asset not conserved",
        &mut problems,
    )?;
    let negative = problems_of(
        conn,
        &format!("SELECT account FROM postings WHERE account > 0 OR account = {ESCROW} GROUP BY account, asset HAVING SUM(amount) < 0"),
        "negative balance, account",
        &mut problems,
    )?;
    // Escrow holds exactly the legs of trades in flight.
    let escrow_cash = count(
        conn,
        &format!("SELECT SUM(amount) FROM postings WHERE account = {ESCROW} AND asset = {CASH}"),
    )?;
    let in_flight = sql_list(&State::IN_FLIGHT);
    let (settled_or_retired, retired, unwound) = (
        sql_list(&[State::Settled, State::Retired]),
        sql_list(&[State::Retired]),
        sql_list(&[State::Unwound]),
    );
    let in_flight_cash = count(
        conn,
        &format!("SELECT SUM(amount_micros) FROM trades WHERE state IN ({in_flight})"),
    )?;
    if escrow_cash != in_flight_cash {
        problems.push(format!(
            "escrow holds {escrow_cash} micro-USD, trades in flight {in_flight_cash}"
        ));
    }
    let escrow_credits = count(
        conn,
        &format!("SELECT SUM(amount) FROM postings WHERE account = {ESCROW} AND asset >= 0"),
    )?;
    let in_flight_credits = count(
        conn,
        &format!("SELECT SUM(qty) FROM trades WHERE state IN ({in_flight})"),
    )?;
    if escrow_credits != in_flight_credits {
        problems.push(format!(
            "escrow holds {escrow_credits} t, trades in flight {in_flight_credits}"
        ));
    }

    // 2. Every settled trade has both legs confirmed and its swap posted;
    //    every retired one its retirement.
    let one_legged = problems_of(
        conn,
        &format!("SELECT t.trade_id FROM trades t LEFT JOIN
           (SELECT trade_id, COUNT(*) AS n FROM movements WHERE kind = 'settle' GROUP BY trade_id) m ON m.trade_id = t.trade_id
         WHERE t.state IN ({settled_or_retired}) AND (t.payment = 0 OR t.transfer = 0 OR COALESCE(m.n, 0) != 1)"),
        "settled trade without both legs",
        &mut problems,
    )?;
    let unretired = problems_of(
        conn,
        &format!("SELECT t.trade_id FROM trades t LEFT JOIN
           (SELECT trade_id, COUNT(*) AS n FROM movements WHERE kind = 'retire' GROUP BY trade_id) m ON m.trade_id = t.trade_id
         WHERE t.state IN ({retired}) AND COALESCE(m.n, 0) != 1"),
        "retired trade without its retirement posting",
        &mut problems,
    )?;
    let retired_credits = count(
        conn,
        &format!("SELECT SUM(amount) FROM postings WHERE account = {RETIRED}"),
    )?;
    let retired_trades = count(
        conn,
        &format!("SELECT SUM(qty) FROM trades WHERE state IN ({retired})"),
    )?;
    if retired_credits != retired_trades {
        problems.push(format!(
            "{retired_credits} t retired in postings, {retired_trades} t in retired trades"
        ));
    }

    // 3. Serials: each delivered tonne is delivered once; each trade got its quantity.
    let mut overlaps = 0u64;
    {
        let mut stmt = conn.prepare(&format!(
            "SELECT b.prefix, s.first, s.last, s.trade_id FROM trade_serials s JOIN serial_blocks b ON b.id = s.block_id
             JOIN trades t ON t.trade_id = s.trade_id WHERE s.returned = 0 AND t.state NOT IN ({unwound}) ORDER BY b.prefix, s.first"
        ))?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        let mut previous: Option<(String, i64, i64)> = None;
        for row in rows {
            let (prefix, first, last, trade) = row?;
            if let Some((p, _, end)) = &previous {
                if *p == prefix && first <= *end {
                    overlaps += 1;
                    if overlaps <= 10 {
                        problems.push(format!(
                            "serial {prefix}{first} delivered twice (trade {trade})"
                        ));
                    }
                }
            }
            if previous
                .as_ref()
                .is_none_or(|(p, _, end)| *p != prefix || last > *end)
            {
                previous = Some((prefix, first, last));
            }
        }
    }
    let short = problems_of(
        conn,
        &format!("SELECT t.trade_id FROM trades t LEFT JOIN
           (SELECT trade_id, SUM(last - first + 1) AS n FROM trade_serials WHERE returned = 0 GROUP BY trade_id) s ON s.trade_id = t.trade_id
         WHERE t.state NOT IN ({unwound}) AND t.qty != COALESCE(s.n, 0)"),
        "trade without serials for its whole quantity",
        &mut problems,
    )?;

    // 4. Certificates: file present, hash right, trades those of the ledger.
    let mut bad_certificates = 0u64;
    {
        let mut stmt = conn.prepare("SELECT certificate_id, order_id, sha256 FROM certificates")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        for row in rows {
            let (id, order_id, stored) = row?;
            let path = dir.join("certificates").join(format!("{id}.json"));
            let problem = match std::fs::read_to_string(&path)
                .map(|t| serde_json::from_str::<Value>(&t))
            {
                Err(e) => Some(format!("{}: {e}", path.display())),
                Ok(Err(e)) => Some(format!("{}: not JSON: {e}", path.display())),
                Ok(Ok(value)) => {
                    let hash = digest(&value);
                    if value["sha256"].as_str() != Some(hash.as_str()) || hash != stored {
                        Some(format!(
                            "certificate {id}: sha256 does not match its content"
                        ))
                    } else {
                        let listed: Vec<(i64, i64)> = value["trades"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|t| {
                                (
                                    t["trade_id"].as_i64().unwrap_or(-1),
                                    t["qty"].as_i64().unwrap_or(-1),
                                )
                            })
                            .collect();
                        let mut stmt = conn.prepare_cached(
                            &format!("SELECT trade_id, qty FROM trades WHERE buy_order_id = ?1 AND state IN ({retired}) ORDER BY trade_id"),
                        )?;
                        let ledger: Vec<(i64, i64)> = stmt
                            .query_map([order_id], |r| Ok((r.get(0)?, r.get(1)?)))?
                            .collect::<Result<_, _>>()?;
                        let missing_fields: Vec<&str> = crate::CERTIFICATE_FIELDS
                            .iter()
                            .copied()
                            .filter(|f| value.get(*f).is_none())
                            .collect();
                        if listed != ledger {
                            Some(format!(
                                "certificate {id}: trades {listed:?} but the ledger has {ledger:?}"
                            ))
                        } else if !missing_fields.is_empty() {
                            Some(format!("certificate {id}: missing {missing_fields:?}"))
                        } else {
                            None
                        }
                    }
                }
            };
            if let Some(problem) = problem {
                bad_certificates += 1;
                if bad_certificates <= 10 {
                    problems.push(problem);
                }
            }
        }
    }

    // The custody log: every entry recomputed from the movement and its
    // postings as they are now, each linked to the one before.
    let chain = crate::ledger::custody::verify(conn)?;
    if let Some(broken) = &chain.broken {
        problems.push(format!("custody log broken: {broken}"));
    }

    let trades = count(conn, "SELECT COUNT(*) FROM trades")? as u64;
    let settled = count(
        conn,
        &format!("SELECT COUNT(*) FROM trades WHERE state IN ({settled_or_retired})"),
    )? as u64;
    let certificates = count(conn, "SELECT COUNT(*) FROM certificates")? as u64;
    let by_state: Value = {
        let mut stmt =
            conn.prepare("SELECT state, COUNT(*) FROM trades GROUP BY state ORDER BY state")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        let mut map = serde_json::Map::new();
        for row in rows {
            let (state, n) = row?;
            map.insert(state, n.into());
        }
        Value::Object(map)
    };
    let ok = problems.is_empty();
    let json = json!({
        "ok": ok,
        "trades": trades,
        "settled": settled,
        "certificates": certificates,
        "trades_by_state": by_state,
        "checks": {
            "movements_balanced": unbalanced == 0,
            "assets_conserved": assets_off == 0,
            "no_negative_balances": negative == 0,
            "escrow_matches_trades_in_flight": escrow_cash == in_flight_cash && escrow_credits == in_flight_credits,
            "settled_trades_have_both_legs": one_legged == 0,
            "retirements_posted": unretired == 0 && retired_credits == retired_trades,
            "no_serial_delivered_twice": overlaps == 0,
            "serials_cover_every_trade": short == 0,
            "certificates_match_ledger": bad_certificates == 0,
            "custody_chain_verifies": chain.broken.is_none(),
        },
        "custody_log": {
            "verified_entries": chain.verified,
            "head_movement": chain.head.as_ref().map(|h| h.0),
            "head_sha256": chain.head.as_ref().map(|h| h.1.clone()),
            "first_broken_link": chain.broken,
        },
        "problems": problems,
        "last_stream_seq": count(conn, "SELECT value FROM meta WHERE key = 'last_stream_seq'")?,
    });
    Ok(Audit {
        ok,
        trades,
        settled,
        certificates,
        json,
    })
}
