//! The operator console: instruments and halts, accounts by KYC status
//! with the onboarding queue, settlement's lag and unwinds, and a live
//! panel from the venue's metrics. Every action is a signed request on the
//! venue's admin port, signed with the logged-in operator's own key, so
//! the journal records who did it and why.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use serde_json::json;
use tonnex_gateway::admin_client;
use tonnex_protocol::admin::{self, AdminReply, AdminVerb};
use tonnex_settlement::certificate::usd;

use crate::app::{blocking, App};
use crate::auth::{self, Session, Who};
use crate::ledger;
use crate::metrics;
use crate::page::{self, escape, page};

fn operator_session(app: &App, headers: &HeaderMap) -> Option<(Session, String, String)> {
    let (_, session) = app.auth.session(headers)?;
    match session.who.clone() {
        Some(Who::Operator { name, key, .. }) => Some((session, name, key)),
        _ => None,
    }
}

fn refuse(app: &App, headers: &HeaderMap) -> Response {
    page::refuse(app.auth.session(headers).and_then(|(_, s)| s.who).is_some())
}

/// The console's flash message.
#[derive(Deserialize)]
pub struct Flash {
    msg: Option<String>,
}

/// One admin request signed with the logged-in operator's key.
async fn admin_call(
    app: &App,
    name: &str,
    key: &str,
    reason: &str,
    verb: AdminVerb,
) -> Result<AdminReply, String> {
    let Some(addr) = app.venue_admin.clone() else {
        return Err("no venue admin address (give --venue-admin or [admin] listen)".into());
    };
    let (name, key, reason) = (name.to_string(), key.to_string(), reason.to_string());
    blocking(move || {
        admin_client::call(&addr, &name, &key, &reason, verb).map_err(|e| e.to_string())
    })
    .await
}

/// `GET /operator`.
pub async fn console(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(flash): Query<Flash>,
) -> Response {
    let Some((session, name, key)) = operator_session(&app, &headers) else {
        return refuse(&app, &headers);
    };
    let csrf = escape(&session.csrf);
    let mut body = String::from("<h1>Operator console</h1>");
    if let Some(msg) = &flash.msg {
        let _ = write!(
            body,
            "<p class=\"flash\" id=\"message\">{}</p>",
            escape(msg)
        );
    }
    body += "<h2>Live</h2><div id=\"live\"><div class=\"figure\">orders/s<b id=\"orders-per-s\">…</b></div>\
             <div class=\"figure\">ack p50<b id=\"ack-p50\">…</b></div><div class=\"figure\">ack p99<b id=\"ack-p99\">…</b></div>\
             <div class=\"figure\">sessions<b id=\"sessions\">…</b></div><div class=\"figure\">held orders<b id=\"held\">…</b></div>\
             <div class=\"figure\">journal durable lag<b id=\"lag\">…</b></div></div>";
    match admin_call(&app, &name, &key, "console", AdminVerb::Status).await {
        Ok(AdminReply::Status {
            instruments,
            accounts,
            sessions,
            journal_seq,
            ..
        }) => {
            let _ = write!(
                body,
                "<p>Journal at sequence {journal_seq}; {sessions} sessions connected.</p>"
            );
            body +=
                "<h2>Instruments</h2><table id=\"instruments\"><tr><th>symbol</th><th>state</th>\
                     <th class=\"num\">last trade USD</th><th></th></tr>";
            for i in &instruments {
                let (state, verb, label) = if i.halted {
                    ("halted", "resume", "Resume")
                } else {
                    ("trading", "halt", "Halt")
                };
                let last = i.last_trade_ticks.map_or_else(
                    || "none since start".to_string(),
                    |ticks| usd(ticks * i.tick_micros),
                );
                let _ = write!(
                    body,
                    "<tr><td>{s}</td><td class=\"state\">{state}</td><td class=\"num\">{last}</td><td>{}</td></tr>",
                    action_form(
                        &csrf,
                        verb,
                        &i.symbol,
                        label,
                        &format!("{verb}-{}", i.symbol)
                    ),
                    s = escape(&i.symbol)
                );
            }
            body += "</table><h2>Accounts</h2><table id=\"accounts\"><tr><th>account</th><th>KYC</th><th>connected</th><th></th></tr>";
            let mut sorted = accounts.clone();
            // The onboarding queue first.
            sorted.sort_by_key(|a| (a.kyc != admin::KYC_PENDING, a.account));
            for a in &sorted {
                let kyc = admin::kyc_name(a.kyc).unwrap_or("unknown");
                let buttons = match kyc {
                    "pending_kyc" => action_form(
                        &csrf,
                        "activate",
                        &a.account.to_string(),
                        "Approve",
                        &format!("activate-{}", a.account),
                    ),
                    "active" => action_form(
                        &csrf,
                        "suspend",
                        &a.account.to_string(),
                        "Suspend",
                        &format!("suspend-{}", a.account),
                    ),
                    _ => action_form(
                        &csrf,
                        "activate",
                        &a.account.to_string(),
                        "Reactivate",
                        &format!("activate-{}", a.account),
                    ),
                };
                let _ = write!(
                    body,
                    "<tr><td>{}</td><td>{kyc}</td><td>{}</td><td>{buttons}</td></tr>",
                    a.account,
                    if a.connected { "yes" } else { "" }
                );
            }
            body += "</table>";
        }
        Ok(AdminReply::Refused { text, .. }) => {
            let _ = write!(
                body,
                "<p class=\"bad\">The venue refused: {}</p>",
                escape(&text)
            );
        }
        Ok(
            AdminReply::Done { .. }
            | AdminReply::Buyer { .. }
            | AdminReply::Settlement { .. }
            | AdminReply::Cluster { .. },
        ) => {}
        Err(e) => {
            let _ = write!(
                body,
                "<p class=\"bad\">The venue cannot be reached: {}</p>",
                escape(&e)
            );
        }
    }
    let app2 = Arc::clone(&app);
    let csrf2 = csrf.clone();
    body += &blocking(move || compliance_section(&app2, &csrf2)).await;
    let app2 = Arc::clone(&app);
    match blocking(move || app2.ledger.with(ledger::settlement_counts)).await {
        Ok((in_flight, unwound, retired, last_seq)) => {
            let _ = write!(
                body,
                "<h2>Settlement</h2><table id=\"settlement\"><tr><th>in flight</th><td>{in_flight}</td></tr>\
                 <tr><th>unwound</th><td>{unwound}</td></tr><tr><th>retired</th><td>{retired}</td></tr>\
                 <tr><th>last fill-stream record</th><td>{last_seq}</td></tr></table>"
            );
        }
        Err(e) => {
            let _ = write!(body, "<h2>Settlement</h2><p>{}</p>", escape(&e.to_string()));
        }
    }
    body += LIVE_SCRIPT;
    let who = format!("operator {name}");
    page::html(
        StatusCode::OK,
        page("Operator console", Some((&who, &session.csrf)), &body),
    )
}

/// Held orders and attestations awaiting approval, buyer by buyer, as the
/// venue holds them; a compliance officer approves an attestation here.
fn compliance_section(app: &App, csrf: &str) -> String {
    let mut body = String::from(
        "<h2>Held orders and pending attestations</h2><table id=\"compliance\"><tr><th>buyer</th>\
         <th>held orders (client id: t at ticks)</th><th>attestations awaiting approval</th></tr>",
    );
    let mut buyers: Vec<u64> = app.profiles.keys().copied().collect();
    buyers.sort_unstable();
    for account in buyers {
        match app.venue.buyer(account) {
            Ok(state) => {
                let held: Vec<String> = state
                    .held
                    .iter()
                    .map(|h| format!("{}: {} t at {}", h.client_order_id, h.qty, h.price_ticks))
                    .collect();
                let pending: String = state
                    .pending
                    .iter()
                    .map(|p| {
                        format!(
                            "{} ({} USD/t, {}) {}",
                            escape(&p.id),
                            usd(p.internal_price_micros),
                            p.reporting_year,
                            approve_form(csrf, account, &p.id)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("<br>");
                let _ = write!(
                    body,
                    "<tr><td>{account}</td><td>{}</td><td>{}</td></tr>",
                    if held.is_empty() {
                        "none".to_string()
                    } else {
                        escape(&held.join("; "))
                    },
                    if pending.is_empty() {
                        "none".to_string()
                    } else {
                        pending
                    }
                );
            }
            Err(e) => {
                let _ = write!(
                    body,
                    "<tr><td>{account}</td><td colspan=\"2\">the venue cannot be asked: {}</td></tr>",
                    escape(&e)
                );
            }
        }
    }
    body.push_str("</table>");
    body
}

fn approve_form(csrf: &str, account: u64, id: &str) -> String {
    format!(
        "<form class=\"inline\" method=\"post\" action=\"/operator/action\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"verb\" value=\"approve-attestation\"><input type=\"hidden\" name=\"target\" value=\"{account}/{}\">\
         <input name=\"evidence\" placeholder=\"evidence sha256\" required pattern=\"[0-9a-f]{{64}}\"> \
         <input name=\"reason\" placeholder=\"reason\" required> <button>Approve</button></form>",
        escape(id)
    )
}

const LIVE_SCRIPT: &str = "<script>(function(){function put(id,v){document.getElementById(id).textContent=v;}\
function tick(){fetch('/api/operator/live',{credentials:'same-origin'}).then(function(r){return r.json();}).then(function(d){\
if(d.error){put('orders-per-s','n/a');return;}put('orders-per-s',d.orders_per_s.toFixed(0));\
put('ack-p50',d.ack_p50_us===null?'-':d.ack_p50_us.toFixed(0)+' µs');put('ack-p99',d.ack_p99_us===null?'-':d.ack_p99_us.toFixed(0)+' µs');\
put('sessions',d.sessions);put('held',d.held_orders);put('lag',d.durable_lag);}).catch(function(){});}\
tick();setInterval(tick,2000);})();</script>";

fn action_form(csrf: &str, verb: &str, target: &str, label: &str, id: &str) -> String {
    format!(
        "<form class=\"inline\" method=\"post\" action=\"/operator/action\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"verb\" value=\"{verb}\"><input type=\"hidden\" name=\"target\" value=\"{}\">\
         <input name=\"reason\" placeholder=\"reason\" required> <button id=\"{}\">{label}</button></form>",
        escape(target),
        escape(id)
    )
}

/// A console action's fields.
#[derive(Deserialize)]
pub struct ActionForm {
    csrf: String,
    verb: String,
    target: String,
    reason: String,
    #[serde(default)]
    evidence: String,
}

/// `POST /operator/action`: one admin request, signed with this operator's key.
pub async fn action(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Response {
    let Some((session, name, key)) = operator_session(&app, &headers) else {
        return refuse(&app, &headers);
    };
    if !auth::csrf_ok(&session, &form.csrf) {
        return page::csrf_refused();
    }
    let account = || {
        form.target
            .parse::<u64>()
            .map_err(|_| format!("'{}' is not an account", form.target))
    };
    let verb = match form.verb.as_str() {
        "halt" => Ok(AdminVerb::Halt {
            symbol: Some(form.target.clone()),
        }),
        "resume" => Ok(AdminVerb::Resume {
            symbol: Some(form.target.clone()),
        }),
        "activate" => account().map(|account| AdminVerb::Kyc {
            account,
            status: admin::KYC_ACTIVE,
        }),
        "approve-attestation" => match form.target.split_once('/') {
            Some((account, id)) => account
                .parse()
                .map(|account| AdminVerb::Attestation {
                    account,
                    id: id.to_string(),
                    approve: true,
                    evidence_sha256: form.evidence.clone(),
                })
                .map_err(|_| format!("'{account}' is not an account")),
            None => Err(format!("'{}' is not ACCOUNT/ID", form.target)),
        },
        "suspend" => account().map(|account| AdminVerb::Kyc {
            account,
            status: admin::KYC_SUSPENDED,
        }),
        other => Err(format!("unknown action '{other}'")),
    };
    let message = match verb {
        Err(e) => e,
        Ok(verb) => match admin_call(&app, &name, &key, &form.reason, verb).await {
            Ok(AdminReply::Done { seq, text, .. }) => format!("done (journal {seq}): {text}"),
            Ok(AdminReply::Refused { reason, text, .. }) => format!(
                "refused ({}): {text}",
                tonnex_protocol::wire::reject_name(reason)
            ),
            Ok(
                AdminReply::Status { .. }
                | AdminReply::Buyer { .. }
                | AdminReply::Settlement { .. }
                | AdminReply::Cluster { .. },
            ) => "done".to_string(),
            Err(e) => format!("the venue cannot be reached: {e}"),
        },
    };
    let query: String = form_urlencode(&message);
    Redirect::to(&format!("/operator?msg={query}")).into_response()
}

fn form_urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET /api/operator/live`: orders/s and ack latency since the last look.
pub async fn live(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if operator_session(&app, &headers).is_none() {
        return page::json(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "operators only"}),
        );
    }
    let Some(addr) = app.venue_metrics.clone() else {
        return page::json(
            StatusCode::OK,
            &json!({"error": "no venue metrics address"}),
        );
    };
    let app2 = Arc::clone(&app);
    match blocking(move || metrics::live(&app2.live, &addr)).await {
        Ok(value) => page::json(StatusCode::OK, &value),
        Err(e) => page::json(StatusCode::OK, &json!({"error": e})),
    }
}
