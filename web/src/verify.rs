//! Certificate verification, for anyone holding a certificate: does its
//! SHA-256 match its content, and does the ledger hold the same trades,
//! serials and retirement? The answer shows the chain order → scope →
//! pathway → floor → sub-ledger → fills → serials → retirement.

use rusqlite::Connection;
use serde_json::{json, Value};
use tonnex_settlement::certificate;

use crate::ledger;

/// The fields a certificate must agree with the ledger's copy on.
const HELD_BY_LEDGER: [&str; 9] = [
    "account",
    "order_id",
    "pathway",
    "floor_usd",
    "scope_allocation",
    "trades",
    "credits",
    "retirement",
    "coverage_pct",
];

/// Checks `submitted` against its own digest and the ledger.
pub fn verify(conn: &Connection, submitted: &Value) -> rusqlite::Result<Value> {
    let mut problems = Vec::new();
    let claimed = submitted["sha256"].as_str().unwrap_or_default();
    let hash_ok = !claimed.is_empty() && certificate::digest(submitted) == claimed;
    if !hash_ok {
        problems.push("the sha256 does not match the certificate's content".to_string());
    }
    let id = submitted["certificate_id"].as_str().unwrap_or_default();
    let stored = ledger::certificate(conn, id)?;
    let mut ledger_ok = false;
    match &stored {
        None => problems.push(format!("the ledger holds no certificate '{id}'")),
        Some((order_id, _, json)) => {
            let stored = json;
            let differing: Vec<&str> = HELD_BY_LEDGER
                .iter()
                .copied()
                .filter(|k| submitted.get(*k) != stored.get(*k))
                .collect();
            for field in &differing {
                problems.push(format!("'{field}' differs from the ledger's certificate"));
            }
            let trades = ledger::order_trades(conn, *order_id)?;
            let mut trades_ok = true;
            for trade in submitted["trades"].as_array().into_iter().flatten() {
                let id = trade["trade_id"].as_u64().unwrap_or(0);
                match trades.iter().find(|t| t.trade_id == id) {
                    Some(t)
                        if t.state == tonnex_settlement::escrow::State::Retired.as_str()
                            && Some(t.qty) == trade["qty"].as_i64() => {}
                    Some(ledger::TradeRow { state, qty, .. }) => {
                        trades_ok = false;
                        problems.push(format!("trade {id}: the ledger has {qty} t, {state}"));
                    }
                    None => {
                        trades_ok = false;
                        problems.push(format!("trade {id}: not in the ledger for this order"));
                    }
                }
            }
            let references: Vec<&str> = trades
                .iter()
                .filter_map(|t| t.reference.as_deref())
                .collect();
            let reference_ok = submitted["retirement"]["registry_reference"]
                .as_str()
                .unwrap_or_default()
                .split(',')
                .filter(|r| !r.is_empty())
                .all(|r| references.contains(&r));
            if !reference_ok {
                problems.push("the retirement's registry reference is not the ledger's".into());
            }
            ledger_ok = differing.is_empty() && trades_ok && reference_ok;
        }
    }
    Ok(json!({
        "certificate_id": id,
        "hash_ok": hash_ok,
        "ledger_ok": ledger_ok,
        "valid": hash_ok && ledger_ok,
        "problems": problems,
        "chain": chain(submitted),
    }))
}

/// The certificate's story, link by link, as it states it.
#[must_use]
pub fn chain(c: &Value) -> Value {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "none".to_string(),
        other => other.to_string(),
    };
    let scope = c["scope_allocation"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            let category = l.get("category").filter(|c| !c.is_null());
            match category {
                Some(category) => format!(
                    "scope {} category {}: {} t",
                    l["scope"], category, l["tonnes"]
                ),
                None => format!("scope {}: {} t", l["scope"], l["tonnes"]),
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    let sub_ledgers: Vec<String> = c["trades"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| text(&t["sub_ledger"]))
        .collect();
    let fills = c["trades"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            format!(
                "trade {}: {} t at {} USD",
                t["trade_id"],
                t["qty"],
                text(&t["price_usd"])
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let serials = c["credits"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            format!(
                "{} {}..{} (vintage {})",
                text(&s["registry"]),
                text(&s["serial_start"]),
                text(&s["serial_end"]),
                s["vintage"]
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    json!([
        {"link": "order", "value": format!("{} of account {} ({})", text(&c["order_id"]), text(&c["account"]), text(&c["company"]))},
        {"link": "scope", "value": scope},
        {"link": "pathway", "value": format!("{}, reporting year {}", text(&c["pathway"]), text(&c["reporting_year"]))},
        {"link": "floor", "value": format!("{} USD/t; internal price {} USD/t; attestation {}", text(&c["floor_usd"]), text(&c["internal_carbon_price_usd"]), text(&c["attestation"]))},
        {"link": "sub-ledger", "value": sub_ledgers.join(", ")},
        {"link": "fills", "value": fills},
        {"link": "serials", "value": serials},
        {"link": "retirement", "value": format!("{} {} at {} for {}", text(&c["retirement"]["status"]), text(&c["retirement"]["registry_reference"]), text(&c["retirement"]["retired_at"]), text(&c["retirement"]["beneficiary"]))},
    ])
}
