//! Settlement certificates: for each settled buyer order, the trace from
//! order to scope, OER pathway, price floor and attestation, sub-ledger,
//! fills, registry serials and retirement (COMPLIANCE.md). JSON with the
//! SHA-256 of its canonical form, and an HTML page beside it.
//!
//! Canonical JSON: object keys in byte order, no whitespace, numbers as
//! integers, money as decimal strings (what `serde_json` writes for a
//! `Value`, whose maps are ordered by key).

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::registry::hex;

/// A certificate as stored.
pub struct Certificate {
    /// `TNX-<order id>`.
    pub id: String,
    /// SHA-256 of the canonical JSON of every other field.
    pub sha256: String,
    /// The canonical JSON including `sha256`.
    pub json: String,
}

/// Micro-dollars as a decimal string with at least two decimals.
#[must_use]
pub fn usd(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let m = micros.unsigned_abs();
    let mut fraction = format!("{:06}", m % 1_000_000);
    while fraction.len() > 2 && fraction.ends_with('0') {
        fraction.pop();
    }
    format!("{sign}{}.{fraction}", m / 1_000_000)
}

/// 100 × `tonnes` ÷ ongoing emissions (thousandths of a tonne) in
/// hundredths of a percent, truncated; 0 when ongoing emissions are 0.
fn coverage_bp(tonnes: i64, ongoing_milli_t: i64) -> i64 {
    if ongoing_milli_t <= 0 {
        return 0;
    }
    let bp = i128::from(tonnes) * 10_000_000 / i128::from(ongoing_milli_t);
    i64::try_from(bp).unwrap_or(i64::MAX)
}

/// `tonnes` spread over the decision's scope lines in line order, first
/// line first; lines left with nothing are omitted.
fn spread(decision: &Value, tonnes: i64) -> Value {
    let mut left = tonnes;
    let mut lines = Vec::new();
    for line in decision["scope"].as_array().into_iter().flatten() {
        let take = left.min(line["tonnes"].as_i64().unwrap_or(0));
        if take <= 0 {
            break;
        }
        left -= take;
        lines.push(json!({"scope": line["scope"], "category": line["category"], "tonnes": take}));
    }
    Value::Array(lines)
}

/// Hundredths of a percent as a decimal string ("12.34").
fn percent(basis_points: i64) -> String {
    format!("{}.{:02}", basis_points / 100, basis_points % 100)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for milliseconds since the Unix epoch.
#[must_use]
pub fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = tonnex_protocol::calendar::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// SHA-256 (hex) of the canonical JSON of `certificate` without its `sha256`.
#[must_use]
pub fn digest(certificate: &Value) -> String {
    let mut body = certificate.clone();
    if let Some(map) = body.as_object_mut() {
        map.remove("sha256");
    }
    hex(&Sha256::digest(body.to_string().as_bytes()))
}

/// One retired trade of the order, as the ledger holds it.
#[derive(Clone, Debug)]
pub struct RetiredTrade {
    /// Venue trade id.
    pub trade_id: i64,
    /// Journal sequence of the fill.
    pub journal_seq: i64,
    /// Instrument symbol.
    pub symbol: String,
    /// Its sub-ledger.
    pub sub_ledger: String,
    /// Price in ticks.
    pub price_ticks: i64,
    /// Micro-dollars per tick.
    pub tick_micros: i64,
    /// Tonnes.
    pub qty: i64,
    /// Seller account.
    pub seller: i64,
    /// Supplementary pricing, ticks per tonne.
    pub supplementary_ticks: i64,
    /// The registry's retirement reference.
    pub retirement_ref: Option<String>,
    /// When it was retired (ms since the epoch).
    pub retired_ms: Option<i64>,
}

/// One run of serials the order's retired trades delivered.
#[derive(Clone, Debug)]
pub struct CreditRun {
    /// Registry name.
    pub registry: String,
    /// Project id.
    pub project_id: String,
    /// First serial.
    pub serial_start: String,
    /// Last serial.
    pub serial_end: String,
    /// Vintage.
    pub vintage: i64,
    /// CCP label.
    pub ccp: bool,
}

/// Everything a certificate states, read from the ledger by
/// `ledger::certificate_query` (this module never reads the ledger).
#[derive(Clone, Debug)]
pub struct CertificateData {
    /// The buyer order.
    pub order_id: u64,
    /// The buyer account.
    pub account: i64,
    /// The pre-router's decision (as stored).
    pub decision: Value,
    /// The order's retired trades, by trade id.
    pub trades: Vec<RetiredTrade>,
    /// Their serials, by trade then serial.
    pub credits: Vec<CreditRun>,
    /// Tonnes retired by the buyer's earlier certificates of the same
    /// reporting year.
    pub earlier_retired: i64,
    /// Of those certificates' orders decided in budget mode: the budget
    /// (pathway price x tonnes), micro-USD.
    pub earlier_budget_micros: i64,
    /// And what their trades spent, micro-USD.
    pub earlier_spent_micros: i64,
}

/// Renders the certificate of `data`, issued at `now_ms`.
#[must_use]
pub fn build(data: &CertificateData, now_ms: u64) -> Certificate {
    let decision = &data.decision;
    let order_id = data.order_id;
    let int = |key: &str| decision.get(key).and_then(Value::as_i64).unwrap_or(0);
    let mut trades = Vec::new();
    let mut supplementary_total = 0i64;
    let mut references = Vec::new();
    let mut last_retired = 0;
    for t in &data.trades {
        supplementary_total += t.supplementary_ticks * t.tick_micros * t.qty;
        trades.push(json!({
            "trade_id": t.trade_id,
            "journal_seq": t.journal_seq,
            "instrument": t.symbol,
            "sub_ledger": t.sub_ledger,
            "price_usd": usd(t.price_ticks * t.tick_micros),
            "qty": t.qty,
            "seller_account": t.seller,
            "supplementary_usd_per_t": usd(t.supplementary_ticks * t.tick_micros),
        }));
        references.extend(t.retirement_ref.clone());
        last_retired = last_retired.max(t.retired_ms.unwrap_or(0));
    }
    let retirement = json!({
        "status": "retired",
        "beneficiary": decision.get("company").cloned().unwrap_or(Value::Null),
        "reason": format!(
            "Ongoing emissions responsibility, reporting year {}, SBTi Corporate Net-Zero Standard V2.0",
            int("reporting_year")
        ),
        "registry_reference": references.join(","),
        "retired_at": rfc3339(last_retired as u64),
    });
    let credits: Vec<Value> = data
        .credits
        .iter()
        .map(|c| {
            json!({
                "registry": c.registry,
                "project_id": c.project_id,
                "serial_start": c.serial_start,
                "serial_end": c.serial_end,
                "vintage": c.vintage,
                "ccp": c.ccp,
            })
        })
        .collect();
    // What was bought and retired, never what was ordered (COMPLIANCE.md,
    // "Settlement certificate"): this order's retired tonnes over its scope
    // lines, first line first; coverage on retired tonnes, cumulative over
    // the buyer's certificates for the reporting year up to this one.
    let retired: i64 = data.trades.iter().map(|t| t.qty).sum();
    let scope_allocation = spread(decision, retired);
    let ongoing_milli = int("ongoing_emissions_milli_t");
    let coverage = coverage_bp(data.earlier_retired + retired, ongoing_milli);
    let order_coverage = coverage_bp(retired, ongoing_milli);
    let threshold = int("threshold_bp");
    let id = format!("TNX-{order_id}");
    let mut certificate = json!({
        "certificate_id": id,
        "issued_at": rfc3339(now_ms),
        "account": data.account,
        "company": decision.get("company").cloned().unwrap_or(Value::Null),
        "reporting_year": int("reporting_year"),
        "pathway": decision.get("pathway").cloned().unwrap_or(Value::Null),
        "floor_usd": usd(int("floor_micros")),
        "internal_carbon_price_usd": usd(int("internal_price_micros")),
        "attestation": decision.get("attestation").cloned().unwrap_or(Value::Null),
        "attestation_approved_by": decision
            .get("attestation_approver")
            .cloned()
            .unwrap_or(Value::Null),
        "scope_allocation": scope_allocation,
        "trades": trades,
        "supplementary_pricing_total_usd": usd(supplementary_total),
        "credits": credits,
        "retirement": retirement,
        "coverage_pct": percent(coverage),
        "order_coverage_pct": percent(order_coverage),
        "tier_threshold_met": coverage >= threshold,
        "rules_version": decision.get("rules_version").cloned().unwrap_or(Value::Null),
        "rules_sha256": decision.get("rules_sha256").cloned().unwrap_or(Value::Null),
        "order_id": order_id,
    });
    if let Some(budget) =
        crate::budget::of_certificate(data, int("floor_micros"), int("floor_ticks"))
    {
        certificate["budget"] = budget.to_json(usd);
    }
    let sha256 = digest(&certificate);
    certificate["sha256"] = Value::String(sha256.clone());
    Certificate {
        id,
        sha256,
        json: certificate.to_string(),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The printable page of a certificate.
#[must_use]
pub fn html(certificate: &Value) -> String {
    let field = |key: &str| match certificate.get(key) {
        Some(Value::String(s)) => escape(s),
        Some(Value::Null) | None => "none".to_string(),
        Some(other) => escape(&other.to_string()),
    };
    let mut page = String::new();
    let _ = write!(
        page,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Certificate {id}</title>\
         <style>body{{font-family:sans-serif;max-width:960px;margin:2em auto}}table{{border-collapse:collapse;width:100%}}\
         td,th{{border:1px solid #bbb;padding:4px 8px;text-align:left}}th{{background:#eef}}code{{font-size:11px}}</style></head><body>\
         <h1>Carbon credit retirement certificate</h1><p>Certificate <b>{id}</b>, issued {issued}</p>\
         <h2>Buyer</h2><table><tr><th>Company</th><td>{company}</td></tr><tr><th>Account</th><td>{account}</td></tr>\
         <tr><th>Reporting year</th><td>{year}</td></tr><tr><th>OER pathway</th><td>{pathway}</td></tr>\
         <tr><th>Pathway price floor (USD/t)</th><td>{floor}</td></tr><tr><th>Declared internal carbon price (USD/t)</th><td>{icp}</td></tr>\
         <tr><th>Attestation</th><td>{attestation} (approved by: {approver})</td></tr><tr><th>Coverage of ongoing emissions (retired, cumulative)</th><td>{coverage} % (tier threshold met: {tier})</td></tr>\
         <tr><th>This certificate's coverage</th><td>{order_coverage} %</td></tr>\
         <tr><th>Rules</th><td>version {rules_version}, sha256 <code>{rules_sha256}</code></td></tr></table>\
         <p class=\"disclaimer\"><em>Credits retired do not reduce the buyer's reported emissions inventory; \
         recognition under the standard is the standard body's decision, not the venue's.</em></p>",
        id = field("certificate_id"),
        issued = field("issued_at"),
        company = field("company"),
        account = field("account"),
        year = field("reporting_year"),
        pathway = field("pathway"),
        floor = field("floor_usd"),
        icp = field("internal_carbon_price_usd"),
        attestation = field("attestation"),
        approver = field("attestation_approved_by"),
        coverage = field("coverage_pct"),
        tier = field("tier_threshold_met"),
        order_coverage = field("order_coverage_pct"),
        rules_version = field("rules_version"),
        rules_sha256 = field("rules_sha256"),
    );
    page.push_str(
        "<h2>Scope allocation</h2><table><tr><th>Scope</th><th>Category</th><th>Tonnes</th></tr>",
    );
    for line in certificate["scope_allocation"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            line["scope"], line["category"], line["tonnes"]
        );
    }
    page.push_str("</table><h2>Trades</h2><table><tr><th>Trade</th><th>Journal seq</th><th>Instrument</th><th>Sub-ledger</th><th>Price (USD/t)</th><th>Tonnes</th><th>Seller</th><th>Supplementary (USD/t)</th></tr>");
    for t in certificate["trades"].as_array().into_iter().flatten() {
        let s = |k: &str| {
            escape(
                t[k].as_str()
                    .map_or_else(|| t[k].to_string(), str::to_string)
                    .as_str(),
            )
        };
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            s("trade_id"), s("journal_seq"), s("instrument"), s("sub_ledger"), s("price_usd"), s("qty"), s("seller_account"), s("supplementary_usd_per_t")
        );
    }
    let _ = write!(
        page,
        "</table><p>Supplementary carbon pricing total: USD {}</p>",
        field("supplementary_pricing_total_usd")
    );
    page.push_str("<h2>Credits retired</h2><table><tr><th>Registry</th><th>Project</th><th>Serial start</th><th>Serial end</th><th>Vintage</th><th>CCP</th></tr>");
    for c in certificate["credits"].as_array().into_iter().flatten() {
        let s = |k: &str| {
            escape(
                c[k].as_str()
                    .map_or_else(|| c[k].to_string(), str::to_string)
                    .as_str(),
            )
        };
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            s("registry"),
            s("project_id"),
            s("serial_start"),
            s("serial_end"),
            s("vintage"),
            s("ccp")
        );
    }
    let r = &certificate["retirement"];
    let s = |k: &str| escape(r[k].as_str().unwrap_or(""));
    let _ = write!(
        page,
        "</table><h2>Retirement</h2><table><tr><th>Status</th><td>{}</td></tr><tr><th>Beneficiary</th><td>{}</td></tr>\
         <tr><th>Reason</th><td>{}</td></tr><tr><th>Registry reference</th><td>{}</td></tr><tr><th>Retired at</th><td>{}</td></tr></table>\
         <p>SHA-256 of the canonical JSON: <code>{}</code></p></body></html>",
        s("status"), s("beneficiary"), s("reason"), s("registry_reference"), s("retired_at"), field("sha256")
    );
    page.push('\n');
    page
}

/// Writes `DIR/certificates/<id>.json` and `.html` for every stored
/// certificate (`(id, canonical JSON)`, from `ledger::certificate_query`)
/// that has no file yet (after a commit, and at start in case the process
/// died between the commit and the write).
pub fn write_missing(
    stored: &[(String, String)],
    dir: &Path,
) -> Result<usize, CertificateFileError> {
    let folder = dir.join("certificates");
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CertificateFileError::Io { path, source }
    };
    std::fs::create_dir_all(&folder).map_err(io(&folder))?;
    let mut written = 0;
    for (id, text) in stored {
        let path = folder.join(format!("{id}.json"));
        if path.exists() {
            continue;
        }
        let value: Value =
            serde_json::from_str(text).map_err(|source| CertificateFileError::Stored {
                id: id.clone(),
                source,
            })?;
        let pretty = serde_json::to_string_pretty(&value).expect("a JSON value always prints");
        let page = folder.join(format!("{id}.html"));
        std::fs::write(&page, html(&value)).map_err(io(&page))?;
        let tmp = folder.join(format!("{id}.json.tmp"));
        std::fs::write(&tmp, pretty + "\n").map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        written += 1;
    }
    Ok(written)
}

/// Why a certificate's files could not be written.
#[derive(Debug, thiserror::Error)]
pub enum CertificateFileError {
    /// The file system refused.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: std::path::PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The stored certificate is not JSON.
    #[error("certificate {id} as stored is not JSON: {source}")]
    Stored {
        /// Its id.
        id: String,
        /// The parse error.
        source: serde_json::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_and_dates_format_for_people() {
        assert_eq!(usd(24_500_000), "24.50");
        assert_eq!(usd(1_234_567), "1.234567");
        assert_eq!(usd(-5_000_000), "-5.00");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_924_549_888), "2026-11-29T03:55:49.888Z");
    }

    #[test]
    fn the_digest_ignores_its_own_field_and_key_order() {
        let a = json!({"b": 1, "a": [1, 2], "sha256": "x"});
        let b: Value = serde_json::from_str(r#"{"a":[1,2],"b":1}"#).unwrap();
        assert_eq!(digest(&a), digest(&b));
        assert_ne!(digest(&a), digest(&json!({"a": [2, 1], "b": 1})));
    }
}
