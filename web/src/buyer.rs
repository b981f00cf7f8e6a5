//! The buyer's pages: the dashboard, each order's decision, certificates,
//! and the summary API. A buyer sees only its own account: any other
//! account's page is "not found", exactly as a page that does not exist.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{json, Value};
use tonnex_settlement::certificate::{self, usd};

use crate::app::{blocking, App};
use crate::auth::Who;
use crate::ledger::{self, LedgerError, OrderRow};
use crate::page::{self, escape, page};
use crate::summary::{summarise, Summary};
use crate::svg;
use crate::venue::BuyerState;

/// How a page refuses: HTML pages send a visitor without a session to the
/// login page, the API answers 401; another account is 404 for both.
#[derive(Clone, Copy)]
enum Kind {
    Page,
    Api,
}

/// Why a buyer page is not shown.
enum Refused {
    /// Another account's (or no such) page.
    NotFound(Kind),
    /// Nobody is logged in.
    NoSession(Kind),
    /// The ledger cannot be read.
    Unavailable(LedgerError),
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::NotFound(Kind::Page) => page::not_found(),
            Refused::NotFound(Kind::Api) => {
                page::json(StatusCode::NOT_FOUND, &json!({"error": "not found"}))
            }
            Refused::NoSession(Kind::Page) => Redirect::to("/login").into_response(),
            Refused::NoSession(Kind::Api) => {
                page::json(StatusCode::UNAUTHORIZED, &json!({"error": "log in first"}))
            }
            Refused::Unavailable(error) => unavailable(&error),
        }
    }
}

/// The logged-in buyer's CSRF token when it is `account`.
fn own(app: &App, headers: &HeaderMap, account: u64, kind: Kind) -> Result<String, Refused> {
    match app.auth.session(headers) {
        Some((_, session)) if session.who == Some(Who::Buyer(account)) => Ok(session.csrf),
        Some((_, session)) if session.who.is_some() => Err(Refused::NotFound(kind)),
        _ => Err(Refused::NoSession(kind)),
    }
}

fn unavailable(error: &LedgerError) -> Response {
    page::html(
        StatusCode::SERVICE_UNAVAILABLE,
        page(
            "Unavailable",
            None,
            &format!(
                "<h1>The ledger cannot be read</h1><p>{}</p>",
                escape(&error.to_string())
            ),
        ),
    )
}

/// Everything the dashboard shows, read in one go.
struct Dashboard {
    summary: Summary,
    orders: Vec<OrderRow>,
    supplementary: Vec<ledger::SupplementaryRow>,
    budget: Option<tonnex_settlement::budget::Budget>,
    /// The venue's view (inventory in force, held orders, attestations
    /// awaiting approval), or why it could not be had.
    venue: Result<BuyerState, String>,
}

fn read(app: &App, account: u64) -> Result<Option<Dashboard>, LedgerError> {
    let Some(profile) = app.profiles.get(&account) else {
        return Ok(None);
    };
    let (pathway, threshold) = app.threshold(profile);
    // The venue's journal is the truth about the inventory in force (an
    // upload replaces the profiles file's figures).
    let venue = app.venue.buyer(account);
    let mut profile = profile.clone();
    if let Ok(state) = &venue {
        profile.inventory = state.inventory.clone();
    }
    let (orders, retirements, supplementary, budget) = match app.ledger.with(|conn| {
        Ok((
            ledger::orders(conn, account)?,
            ledger::retirements(conn, account, profile.reporting_year)?,
            ledger::supplementary(conn, account)?,
            tonnex_settlement::ledger::budget_query::budget(conn, account)?,
        ))
    }) {
        Ok(read) => read,
        // Before settlement has written anything, the buyer has nothing yet.
        Err(LedgerError::Missing(_)) => (Vec::new(), Vec::new(), Vec::new(), None),
        Err(e) => return Err(e),
    };
    let summary = summarise(&profile, &pathway, threshold, &orders, &retirements);
    Ok(Some(Dashboard {
        summary,
        orders,
        supplementary,
        budget,
        venue,
    }))
}

/// `GET /api/buyer/ACCOUNT/summary`.
pub async fn api_summary(
    State(app): State<Arc<App>>,
    Path(account): Path<u64>,
    headers: HeaderMap,
) -> Response {
    if let Err(refusal) = own(&app, &headers, account, Kind::Api) {
        return refusal.into_response();
    }
    let app2 = Arc::clone(&app);
    match blocking(move || read(&app2, account)).await {
        Ok(Some(d)) => page::json(StatusCode::OK, &d.summary.json()),
        Ok(None) => page::json(StatusCode::NOT_FOUND, &json!({"error": "not found"})),
        Err(e) => page::json(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"error": e.to_string()}),
        ),
    }
}

fn figure(id: &str, label: &str, value: &str) -> String {
    format!(
        "<div class=\"figure\" id=\"{id}\">{label}<b>{}</b></div>",
        escape(value)
    )
}

fn order_link(account: u64, order: &OrderRow) -> String {
    format!(
        "<a href=\"/buyer/{account}/orders/{}\">{}</a>",
        order.order_id, order.order_id
    )
}

/// `GET /buyer/ACCOUNT`.
pub async fn dashboard(
    State(app): State<Arc<App>>,
    Path(account): Path<u64>,
    headers: HeaderMap,
) -> Response {
    let csrf = match own(&app, &headers, account, Kind::Page) {
        Ok(csrf) => csrf,
        Err(refusal) => return refusal.into_response(),
    };
    let app2 = Arc::clone(&app);
    let d = match blocking(move || read(&app2, account)).await {
        Ok(Some(d)) => d,
        Ok(None) => return page::not_found(),
        Err(e) => return unavailable(&e),
    };
    let s = &d.summary;
    let mut body = format!(
        "<h1>{} · account {account}</h1><p>Reporting year <b id=\"year\">{}</b>, pathway <b id=\"pathway\">{}</b>, \
         ongoing emissions {} tCO2e.</p>",
        escape(&s.company),
        s.reporting_year,
        escape(&s.pathway),
        s.ongoing_tonnes
    );
    body += &figure(
        "coverage",
        "Coverage (retired)",
        &format!("{}%", s.coverage_pct),
    );
    body += &figure(
        "retired-of-ongoing",
        "Retired of ongoing",
        &format!("{} of {} t", s.retired_tonnes, s.ongoing_tonnes),
    );
    body += &figure(
        "threshold",
        "Pathway threshold",
        &format!("{}%", s.threshold_pct),
    );
    body += &figure(
        "threshold-met",
        "Threshold met",
        if s.threshold_met() { "yes" } else { "not yet" },
    );
    body += &figure("retired", "Retired", &format!("{} t", s.retired_tonnes));
    body += &figure("filled", "Filled", &format!("{} t", s.filled_tonnes));
    body += &figure(
        "claimed",
        "Claimed (open)",
        &format!("{} t", s.claimed_tonnes),
    );
    let threshold = s.threshold_pct.to_string().parse().unwrap_or(0.0);
    let _ = write!(
        body,
        "<h2>Coverage of ongoing emissions over the year</h2>{}\
         <h2>By scope and Scope 3 category</h2>{}<table id=\"scopes\"><tr><th>scope</th><th class=\"num\">inventory t</th>\
         <th class=\"num\">claimed t</th><th class=\"num\">filled t</th><th class=\"num\">retired t</th></tr>",
        svg::coverage_line(&s.timeline, threshold, s.reporting_year),
        svg::scope_bars(
            &s.rows
                .iter()
                .map(|r| {
                    let inventory = r.inventory.to_string().parse().unwrap_or(0.0);
                    (r.label.clone(), [inventory, r.claimed as f64, r.filled as f64, r.retired as f64])
                })
                .collect::<Vec<_>>()
        )
    );
    for r in &s.rows {
        let _ = write!(
            body,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            escape(&r.label), r.inventory, r.claimed, r.filled, r.retired
        );
    }
    body += "</table>";
    match &d.venue {
        Ok(state) => {
            let _ = write!(
                body,
                "<p>Inventory as the venue holds it. <a id=\"upload-inventory\" href=\"/buyer/{account}/inventory\">Upload an inventory</a> from your carbon accounting.</p>"
            );
            held_section(&mut body, state, &s.pathway);
        }
        Err(e) => {
            let _ = write!(
                body,
                "<p class=\"bad\" id=\"venue-unreachable\">The venue cannot be asked ({}): the inventory shown is the profiles file's, held orders are not shown.</p>",
                escape(e)
            );
        }
    }
    let (open, past): (Vec<&OrderRow>, Vec<&OrderRow>) =
        d.orders.iter().partition(|o| o.open() > 0);
    let _ = write!(body, "<h2>Open orders</h2>");
    orders_table(&mut body, account, &open, "open-orders");
    let _ = write!(body, "<h2>Past orders</h2>");
    orders_table(
        &mut body,
        account,
        &past[..past.len().min(200)],
        "past-orders",
    );
    body += "<h2>Certificates</h2><table id=\"certificates\"><tr><th>certificate</th><th>order</th><th>retired t</th><th></th></tr>";
    for order in d
        .orders
        .iter()
        .filter(|o| o.certificate.is_some())
        .take(200)
    {
        let id = order.certificate.as_deref().unwrap_or_default();
        let _ = write!(
            body,
            "<tr><td>{id}</td><td>{}</td><td class=\"num\">{}</td><td><a class=\"cert-html\" href=\"/buyer/{account}/certificates/{id}\">HTML</a> \
             <a href=\"/buyer/{account}/certificates/{id}/json\">JSON</a></td></tr>",
            order_link(account, order),
            order.retired,
            id = escape(id)
        );
    }
    body += "</table><h2>Supplementary carbon pricing ledger</h2>\
             <p>Fills below the pathway floor, priced up to it by the internal carbon price the attestation declares.</p>\
             <table id=\"supplementary\"><tr><th>trade</th><th>order</th><th class=\"num\">t</th><th class=\"num\">USD/t</th>\
             <th class=\"num\">amount USD</th><th>attestation</th></tr>";
    for row in d.supplementary.iter().take(200) {
        let _ = write!(
            body,
            "<tr><td>{}</td><td><a href=\"/buyer/{account}/orders/{o}\">{o}</a></td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td>{}</td></tr>",
            row.trade_id,
            row.qty,
            usd(row.per_t_micros),
            usd(row.amount_micros),
            escape(row.attestation.as_deref().unwrap_or("none")),
            o = row.order_id
        );
    }
    body += "</table>";
    if let Some(budget) = &d.budget {
        crate::budget_view::section(&mut body, budget);
    }
    let who = format!("account {account}");
    page::html(StatusCode::OK, page(&s.company, Some((&who, &csrf)), &body))
}

/// Held orders, each with what would release it.
fn held_section(body: &mut String, state: &BuyerState, pathway: &str) {
    body.push_str("<h2>Held orders</h2>");
    if state.held.is_empty() {
        body.push_str("<p id=\"held-none\">None.</p>");
        return;
    }
    let release = if let Some(p) = state.pending.first() {
        format!(
            "attestation {} ({} USD/t, {}) is submitted: a compliance officer's approval releases it",
            escape(&p.id),
            usd(p.internal_price_micros),
            p.reporting_year
        )
    } else if state.attestation_in_force {
        "an attestation is in force: the order is re-checked at once".to_string()
    } else {
        format!(
            "an attestation of supplementary internal carbon pricing (at least the {} floor) for the reporting year releases it",
            escape(pathway)
        )
    };
    body.push_str(
        "<table id=\"held\"><tr><th>client order</th><th>instrument</th><th class=\"num\">t</th><th class=\"num\">limit ticks</th>\
         <th>expires (UTC)</th><th>what releases it</th></tr>",
    );
    for h in &state.held {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td>{release}</td></tr>",
            h.client_order_id,
            h.instrument,
            h.qty,
            h.price_ticks,
            certificate::rfc3339(h.expires_at_ns / 1_000_000)
        );
    }
    body.push_str("</table>");
}

fn orders_table(body: &mut String, account: u64, orders: &[&OrderRow], id: &str) {
    let _ = write!(
        body,
        "<table id=\"{id}\"><tr><th>order</th><th>instrument</th><th class=\"num\">t</th><th class=\"num\">limit USD</th>\
         <th class=\"num\">filled</th><th class=\"num\">open</th><th class=\"num\">retired</th><th>pathway</th><th>sub-ledger</th></tr>"
    );
    for o in orders {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
            order_link(account, o),
            escape(&o.symbol),
            o.qty,
            usd(o.price_micros),
            o.filled,
            o.open(),
            o.retired,
            escape(o.decision["pathway"].as_str().unwrap_or("none")),
            escape(o.decision["sub_ledger"].as_str().unwrap_or(""))
        );
    }
    body.push_str("</table>");
}

/// `GET /buyer/ACCOUNT/orders/ORDER`: the pre-router's decision.
pub async fn order_page(
    State(app): State<Arc<App>>,
    Path((account, order_id)): Path<(u64, u64)>,
    headers: HeaderMap,
) -> Response {
    let csrf = match own(&app, &headers, account, Kind::Page) {
        Ok(csrf) => csrf,
        Err(refusal) => return refusal.into_response(),
    };
    let app2 = Arc::clone(&app);
    let order =
        match blocking(move || app2.ledger.with(|c| ledger::order(c, account, order_id))).await {
            Ok(Some(order)) => order,
            Ok(None) | Err(LedgerError::Missing(_)) => return page::not_found(),
            Err(e) => return unavailable(&e),
        };
    let d = &order.decision;
    let text = |v: &Value| match v {
        Value::String(s) => escape(s),
        Value::Null => "none".into(),
        other => escape(&other.to_string()),
    };
    let micros = |key: &str| usd(d[key].as_i64().unwrap_or(0));
    let mut body = format!(
        "<h1>Order {order_id}</h1><table id=\"decision\">\
         <tr><th>instrument</th><td>{}</td></tr><tr><th>tonnes</th><td>{} (filled {}, open {}, retired {})</td></tr>\
         <tr><th>limit</th><td>{} USD/t</td></tr><tr><th>pathway</th><td>{}</td></tr><tr><th>sub-ledger</th><td>{}</td></tr>\
         <tr><th>floor</th><td>{} USD/t</td></tr><tr><th>internal carbon price</th><td>{} USD/t</td></tr>\
         <tr><th>attestation</th><td>{}</td></tr><tr><th>attestation approved by</th><td>{}</td></tr>\
         <tr><th>rules version</th><td>{} (sha256 {})</td></tr><tr><th>reporting year</th><td>{}</td></tr></table>\
         <h2>Scope lines</h2><table id=\"scope-lines\"><tr><th>scope</th><th>category</th><th class=\"num\">t</th></tr>",
        escape(&order.symbol),
        order.qty,
        order.filled,
        order.open(),
        order.retired,
        usd(order.price_micros),
        text(&d["pathway"]),
        text(&d["sub_ledger"]),
        micros("floor_micros"),
        micros("internal_price_micros"),
        text(&d["attestation"]),
        text(&d["attestation_approver"]),
        text(&d["rules_version"]),
        text(&d["rules_sha256"]),
        text(&d["reporting_year"]),
    );
    for line in d["scope"].as_array().into_iter().flatten() {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
            line["scope"],
            if line["scope"] == 3 {
                line["category"].to_string()
            } else {
                "-".into()
            },
            line["tonnes"]
        );
    }
    body += "</table>";
    if let Some(id) = &order.certificate {
        let _ = write!(
            body,
            "<p>Certificate <a href=\"/buyer/{account}/certificates/{id}\">{id}</a></p>",
            id = escape(id)
        );
    }
    let _ = write!(
        body,
        "<p><a href=\"/buyer/{account}\">Back to the dashboard</a></p>"
    );
    let who = format!("account {account}");
    page::html(
        StatusCode::OK,
        page(&format!("Order {order_id}"), Some((&who, &csrf)), &body),
    )
}

async fn own_certificate(
    app: &Arc<App>,
    headers: &HeaderMap,
    account: u64,
    id: String,
) -> Result<Value, Refused> {
    own(app, headers, account, Kind::Page)?;
    let app2 = Arc::clone(app);
    match blocking(move || app2.ledger.with(|c| ledger::certificate(c, &id))).await {
        Ok(Some((_, owner, json))) if owner == account => Ok(json),
        Ok(_) | Err(LedgerError::Missing(_)) => Err(Refused::NotFound(Kind::Page)),
        Err(e) => Err(Refused::Unavailable(e)),
    }
}

/// `GET /buyer/ACCOUNT/certificates/ID`: the printable certificate.
pub async fn certificate_html(
    State(app): State<Arc<App>>,
    Path((account, id)): Path<(u64, String)>,
    headers: HeaderMap,
) -> Response {
    match own_certificate(&app, &headers, account, id).await {
        Ok(c) => page::html(StatusCode::OK, certificate::html(&c)),
        Err(refusal) => refusal.into_response(),
    }
}

/// `GET /buyer/ACCOUNT/certificates/ID/json`: the certificate as issued.
pub async fn certificate_json(
    State(app): State<Arc<App>>,
    Path((account, id)): Path<(u64, String)>,
    headers: HeaderMap,
) -> Response {
    match own_certificate(&app, &headers, account, id.clone()).await {
        Ok(c) => (
            [(
                header::CONTENT_DISPOSITION,
                format!(
                    "inline; filename=\"{}.json\"",
                    id.replace(['"', '\\', '/'], "")
                ),
            )],
            page::json(StatusCode::OK, &c),
        )
            .into_response(),
        Err(refusal) => refusal.into_response(),
    }
}
