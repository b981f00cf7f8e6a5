//! The carbon-accounting integration: a buyer uploads its emissions
//! inventory for its reporting year, as the CSV of `[compliance]
//! inventory` (a page with a form) or as JSON (an API for accounting
//! tools). Rows are checked here first, with errors naming the row; an
//! accepted upload goes to the venue's admin port, which checks it against
//! the buyer's claims and ongoing emissions and journals it: the
//! pre-router routes the buyer's next order against it.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::{Form, Json};
use serde::Deserialize;
use serde_json::json;
use tonnex_gateway::compliance::inventory::{self, InventoryRow};
use tonnex_protocol::admin::InventoryLine;

use crate::app::{blocking, App};
use crate::auth::{self, Who};
use crate::page::{self, escape, page};

/// The columns the upload takes (those of `[compliance] inventory`).
const COLUMNS: &str = "account,reporting_year,scope,category,tonnes";

fn own(app: &App, headers: &HeaderMap, account: u64) -> Option<auth::Session> {
    app.auth
        .session(headers)
        .map(|(_, s)| s)
        .filter(|s| s.who == Some(Who::Buyer(account)))
}

/// Checks parsed rows belong to `account` and its reporting year; the
/// lines to send, or an error per offending row.
fn lines_for(
    app: &App,
    account: u64,
    rows: &[InventoryRow],
) -> Result<(i64, Vec<InventoryLine>), Vec<String>> {
    let Some(profile) = app.profiles.get(&account) else {
        return Err(vec![format!("account {account} has no buyer profile")]);
    };
    let year = profile.reporting_year;
    let mut errors = Vec::new();
    for row in rows {
        if row.account != account {
            errors.push(format!(
                "line {}: account: {} is not your account ({account})",
                row.line, row.account
            ));
        }
        if row.reporting_year != year {
            errors.push(format!(
                "line {}: reporting_year: {} is not your reporting year ({year})",
                row.line, row.reporting_year
            ));
        }
    }
    if rows.is_empty() {
        errors.push(format!("no rows: the first line is the header {COLUMNS}, then one row per scope or Scope 3 category"));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let lines = rows
        .iter()
        .map(|r| InventoryLine {
            scope: r.scope,
            category: r.category,
            tonnes: r.tonnes.to_string(),
        })
        .collect();
    Ok((year, lines))
}

async fn send(
    app: &Arc<App>,
    account: u64,
    year: i64,
    lines: Vec<InventoryLine>,
    how: &str,
) -> Result<String, String> {
    let app = Arc::clone(app);
    let reason = format!("inventory upload by account {account} ({how}, tonnex-web)");
    blocking(move || app.venue.upload(account, year, lines, &reason)).await
}

fn form_body(account: u64, csrf: &str, year: i64, text: &str, outcome: &str) -> String {
    format!(
        "<h1>Upload an emissions inventory</h1>{outcome}\
         <p>Reporting year {year}. The CSV of your GHG inventory export, with the header <code>{COLUMNS}</code>: \
         one row per scope, or per Scope 3 category (1-15); rows for the same scope and category add up. \
         Tonnes are tCO2e and never negative; the total must be at least your ongoing emissions. \
         Accounting tools can send the same as JSON to <code>POST /api/buyer/{account}/inventory</code>.</p>\
         <form method=\"post\" action=\"/buyer/{account}/inventory\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <p><input type=\"file\" id=\"file\" accept=\".csv,text/csv\"></p>\
         <textarea name=\"csv\" id=\"csv\">{}</textarea><p><button id=\"upload\">Upload</button></p></form>\
         <p><a href=\"/buyer/{account}\">Back to the dashboard</a></p>\
         <script>document.getElementById('file').addEventListener('change',function(e){{var f=e.target.files[0];if(!f)return;\
         var r=new FileReader();r.onload=function(){{document.getElementById('csv').value=r.result;}};r.readAsText(f);}});</script>",
        escape(csrf),
        escape(text)
    )
}

fn year_of(app: &App, account: u64) -> i64 {
    app.profiles.get(&account).map_or(0, |p| p.reporting_year)
}

/// `GET /buyer/ACCOUNT/inventory`.
pub async fn form(
    State(app): State<Arc<App>>,
    UrlPath(account): UrlPath<u64>,
    headers: HeaderMap,
) -> Response {
    let Some(session) = own(&app, &headers, account) else {
        return refuse(&app, &headers);
    };
    let template = format!("{COLUMNS}\n{account},{},1,,\n", year_of(&app, account));
    let body = form_body(
        account,
        &session.csrf,
        year_of(&app, account),
        &template,
        "",
    );
    page::html(
        StatusCode::OK,
        page(
            "Inventory",
            Some((&format!("account {account}"), &session.csrf)),
            &body,
        ),
    )
}

fn refuse(app: &App, headers: &HeaderMap) -> Response {
    page::refuse(app.auth.session(headers).and_then(|(_, s)| s.who).is_some())
}

/// The upload form's fields.
#[derive(Deserialize)]
pub struct UploadForm {
    csrf: String,
    csv: String,
}

/// `POST /buyer/ACCOUNT/inventory`.
pub async fn upload(
    State(app): State<Arc<App>>,
    UrlPath(account): UrlPath<u64>,
    headers: HeaderMap,
    Form(form): Form<UploadForm>,
) -> Response {
    let Some(session) = own(&app, &headers, account) else {
        return refuse(&app, &headers);
    };
    if !auth::csrf_ok(&session, &form.csrf) {
        return page::csrf_refused();
    }
    let checked = inventory::parse_rows(&form.csv, Path::new("upload"))
        .map_err(|e| vec![e.to_string()])
        .and_then(|rows| lines_for(&app, account, &rows));
    let (status, outcome) = match checked {
        Err(errors) => (StatusCode::UNPROCESSABLE_ENTITY, errors),
        Ok((year, lines)) => match send(&app, account, year, lines, "CSV").await {
            Ok(text) => (StatusCode::OK, vec![text]),
            Err(text) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                vec![format!("refused by the venue: {text}")],
            ),
        },
    };
    let mut message = format!(
        "<div class=\"flash\" id=\"outcome\"><b>{}</b><ul>",
        if status == StatusCode::OK {
            "Accepted: in force for your next order."
        } else {
            "Not accepted; nothing changed."
        }
    );
    for line in &outcome {
        let _ = write!(message, "<li>{}</li>", escape(line));
    }
    message += "</ul></div>";
    let body = form_body(
        account,
        &session.csrf,
        year_of(&app, account),
        &form.csv,
        &message,
    );
    page::html(
        status,
        page(
            "Inventory",
            Some((&format!("account {account}"), &session.csrf)),
            &body,
        ),
    )
}

/// "line N: field: message" of the synthesised CSV as "lines[N-2].field: message".
fn json_location(error: &tonnex_gateway::values::LoadError) -> String {
    json_line(&format!("{}: {}", error.location, error.message))
}

fn json_line(text: &str) -> String {
    let Some(rest) = text.strip_prefix("line ") else {
        return text.to_string();
    };
    let (number, rest) = rest.split_once(':').unwrap_or((rest, ""));
    match number.trim().parse::<usize>() {
        Ok(n) if n >= 2 => {
            let rest = rest.trim_start();
            match rest.split_once(": ") {
                Some((field, message)) if !field.contains(' ') => {
                    format!("lines[{}].{field}: {message}", n - 2)
                }
                _ => format!("lines[{}]: {rest}", n - 2),
            }
        }
        _ => text.to_string(),
    }
}

/// One line of the JSON upload.
#[derive(Deserialize)]
pub struct JsonLine {
    scope: u8,
    #[serde(default)]
    category: Option<u8>,
    tonnes: String,
}

/// The JSON upload.
#[derive(Deserialize)]
pub struct JsonUpload {
    reporting_year: i64,
    lines: Vec<JsonLine>,
}

/// `POST /api/buyer/ACCOUNT/inventory`: the same check and upload, for
/// accounting tools (session cookie plus the `X-CSRF-Token` header that
/// `/api/login` returned).
pub async fn api(
    State(app): State<Arc<App>>,
    UrlPath(account): UrlPath<u64>,
    headers: HeaderMap,
    Json(upload): Json<JsonUpload>,
) -> Response {
    let Some(session) = own(&app, &headers, account) else {
        let status = if app
            .auth
            .session(&headers)
            .and_then(|(_, s)| s.who)
            .is_some()
        {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::UNAUTHORIZED
        };
        return page::json(status, &json!({"ok": false, "errors": ["not found"]}));
    };
    let token = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !auth::csrf_ok(&session, token) {
        return page::json(
            StatusCode::FORBIDDEN,
            &json!({"ok": false, "errors": ["the X-CSRF-Token header is not this session's"]}),
        );
    }
    // The same rows a CSV would give: one checker for both.
    let mut csv = format!("{COLUMNS}\n");
    for line in &upload.lines {
        let category = line.category.map(|c| c.to_string()).unwrap_or_default();
        let _ = writeln!(
            csv,
            "{account},{},{},{category},{}",
            upload.reporting_year,
            line.scope,
            line.tonnes.replace([',', '\n', '"'], " ")
        );
    }
    let checked = inventory::parse_rows(&csv, Path::new("lines"))
        .map_err(|e| vec![json_location(&e)])
        .and_then(|rows| lines_for(&app, account, &rows))
        .map_err(|errors| errors.iter().map(|e| json_line(e)).collect::<Vec<_>>());
    match checked {
        Err(errors) => page::json(
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!({"ok": false, "errors": errors}),
        ),
        Ok((year, lines)) => match send(&app, account, year, lines, "JSON").await {
            Ok(text) => page::json(StatusCode::OK, &json!({"ok": true, "text": text})),
            Err(text) => page::json(
                StatusCode::UNPROCESSABLE_ENTITY,
                &json!({"ok": false, "errors": [format!("refused by the venue: {text}")]}),
            ),
        },
    }
}
