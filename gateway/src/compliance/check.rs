//! `tonnex-venue check`: the pre-router alone over a file of orders, one
//! JSON object per line in, one decision per line out (COMPLIANCE.md,
//! "`tonnex-venue check` input and output").

use std::fmt::Write as _;

use rust_decimal::Decimal;
use tonnex_protocol::{Name, OrderKind, Side};

use super::router::{Decision, LimitPrice, OrderRequest, Outcome, RawScopeLine, Router};
use super::rules::{Date, RuleVersions, Rules};
use crate::values::{json_decimal, json_type};

/// Parses one order line; `Err` says what is malformed.
pub fn parse_order(line: &str) -> Result<OrderRequest, String> {
    parse_dated_order(line).map(|(order, _)| order)
}

/// [`parse_order`], with the line's optional `date` (`YYYY-MM-DD`): the
/// day the order is decided on, for rules in force and predicates by date.
pub fn parse_dated_order(line: &str) -> Result<(OrderRequest, Option<Date>), String> {
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let serde_json::Value::Object(o) = value else {
        return Err(format!(
            "expected a JSON object, found {}",
            json_type(&value)
        ));
    };
    let field = |key: &str| o.get(key).filter(|v| !v.is_null());
    let integer = |key: &str| -> Result<i64, String> {
        match field(key) {
            Some(serde_json::Value::Number(n)) => n
                .as_i64()
                .ok_or_else(|| format!("{key} must be an integer, found {n}")),
            Some(other) => Err(format!(
                "{key} must be an integer, found {}",
                json_type(other)
            )),
            None => Err(format!("{key} is missing")),
        }
    };
    let text = |key: &str| -> Result<&str, String> {
        match field(key) {
            Some(serde_json::Value::String(s)) => Ok(s.as_str()),
            Some(other) => Err(format!(
                "{key} must be a string, found {}",
                json_type(other)
            )),
            None => Err(format!("{key} is missing")),
        }
    };
    let id = u64::try_from(integer("id")?).map_err(|_| "id must not be negative".to_string())?;
    let account = u64::try_from(integer("account")?)
        .map_err(|_| "account must not be negative".to_string())?;
    let side = match text("side")? {
        "buy" => Side::Buy,
        "sell" => Side::Sell,
        other => return Err(format!("side must be buy or sell, found '{other}'")),
    };
    let kind = match text("type")? {
        "limit" => OrderKind::Limit,
        "market" => OrderKind::Market,
        "ioc" => OrderKind::Ioc,
        "fok" => OrderKind::Fok,
        "post_only" => OrderKind::PostOnly,
        other => {
            return Err(format!(
                "type must be limit, market, ioc, fok or post_only, found '{other}'"
            ))
        }
    };
    let price_usd = match field("price_usd") {
        None => None,
        Some(v) => Some(json_decimal(v).map_err(|m| format!("price_usd: {m}"))?),
    };
    let scope = match field("scope") {
        None => None,
        Some(serde_json::Value::Array(lines)) => Some(lines.iter().map(parse_scope_line).collect()),
        // Present but not a list: a broken allocation, which step 8 rejects.
        Some(_) => Some(vec![RawScopeLine {
            malformed: true,
            ..RawScopeLine::default()
        }]),
    };
    let date = match field("date") {
        None => None,
        Some(serde_json::Value::String(text)) => {
            Some(Date::parse(text).map_err(|m| format!("date: {m}"))?)
        }
        Some(other) => return Err(format!("date must be a string, found {}", json_type(other))),
    };
    let order = OrderRequest {
        id,
        account,
        side,
        instrument: Name::from(text("instrument")?.to_string()),
        kind,
        price: price_usd.map(LimitPrice::Usd),
        qty: integer("qty")?,
        scope,
    };
    Ok((order, date))
}

fn parse_scope_line(value: &serde_json::Value) -> RawScopeLine {
    let serde_json::Value::Object(o) = value else {
        return RawScopeLine {
            malformed: true,
            ..RawScopeLine::default()
        };
    };
    let mut malformed = false;
    let mut integer = |key: &str| match o.get(key) {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Number(n)) if n.as_i64().is_some() => n.as_i64(),
        Some(_) => {
            malformed = true;
            None
        }
    };
    let scope = integer("scope");
    let category = integer("category");
    let qty = integer("qty");
    RawScopeLine {
        scope,
        category,
        category_given: o.get("category").is_some_and(|v| !v.is_null()),
        qty,
        malformed,
    }
}

fn json_str(text: &str) -> String {
    serde_json::to_string(text).expect("a string serialises")
}

fn json_opt_str(text: Option<&str>) -> String {
    text.map_or_else(|| "null".to_string(), json_str)
}

fn json_opt_decimal(value: Option<Decimal>) -> String {
    value.map_or_else(|| "null".to_string(), |d| json_str(&d.to_string()))
}

/// The output line for an order's decision. Under a dated rules file
/// (`rules`), the line goes on to name the route, the failed predicate,
/// the floor mode and the rules version and SHA-256; under an undated one
/// it has exactly COMPLIANCE.md's fields.
#[must_use]
pub fn decision_line(id: u64, decision: &Decision, rules: &Rules) -> String {
    let mut out = String::with_capacity(200);
    let outcome = match decision.outcome {
        Outcome::Accept => "accept",
        Outcome::Reject => "reject",
        Outcome::Hold => "hold",
    };
    let _ = write!(
        out,
        "{{\"id\": {id}, \"decision\": \"{outcome}\", \"reason\": {}, \"pathway\": {}, \"sub_ledger\": {}, \"floor_usd\": {}, \"attestation\": {}, \"coverage_pct\": {}, \"tier_threshold_met\": {}}}",
        json_opt_str(decision.reason.map(|r| r.as_str())),
        json_opt_str(decision.pathway.map(|p| p.as_str())),
        json_opt_str(decision.sub_ledger),
        json_opt_decimal(decision.floor_usd),
        json_opt_str(decision.attestation.as_deref()),
        json_opt_decimal(decision.coverage_pct),
        decision.tier_threshold_met.map_or("null", |b| if b { "true" } else { "false" }),
    );
    if rules.dated() {
        out.pop();
        let _ = write!(
            out,
            ", \"route\": {}, \"predicate\": {}, \"floor_mode\": \"{}\", \"rules_version\": {}, \"rules_sha256\": \"{}\"}}",
            json_opt_str(decision.route.map(|r| r.as_str())),
            json_opt_str(decision.predicate.as_deref()),
            rules.floor_mode.as_str(),
            json_str(&rules.version),
            rules.sha256,
        );
    }
    out
}

/// The output line for a malformed input line.
#[must_use]
pub fn malformed_line(line: usize, error: &str) -> String {
    format!(
        "{{\"line\": {line}, \"decision\": \"reject\", \"reason\": \"INVALID_ORDER\", \"error\": {}}}",
        json_str(error)
    )
}

/// Runs every line of `orders` through `router`, in order, and returns the
/// output lines. Blank lines are skipped; line numbers count every line.
/// Each order is decided on its own `date` if it has one, else on
/// `as_of`, under the version of `versions` in force that day (claims
/// carry over from one version to the next, as in the venue).
pub fn run(router: &mut Router, versions: &RuleVersions, as_of: Date, orders: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (number, line) in orders.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_dated_order(line) {
            Ok((order, date)) => {
                let date = date.unwrap_or(as_of);
                let Some(rules) = versions.in_force(date) else {
                    out.push(malformed_line(
                        number + 1,
                        &format!("no rules version is in force on {date}"),
                    ));
                    continue;
                };
                if rules.sha256 != router.rules().sha256 {
                    router.set_rules(rules.clone());
                }
                router.set_date(date);
                let decision = router.decide(&order);
                out.push(decision_line(order.id, &decision, router.rules()));
            }
            Err(error) => out.push(malformed_line(number + 1, &error)),
        }
    }
    out
}
