//! `/verify` and `/api/verify`: public certificate verification.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::app::{blocking, session_or_new, with_cookie, App};
use crate::auth;
use crate::page::{self, escape, page};
use crate::verify::verify;

const READ_FILE: &str =
    "<script>document.getElementById('file').addEventListener('change',function(e){\
var f=e.target.files[0];if(!f)return;var r=new FileReader();r.onload=function(){\
document.getElementById('certificate').value=r.result;};r.readAsText(f);});</script>";

fn form_body(csrf: &str, text: &str) -> String {
    format!(
        "<h1>Verify a certificate</h1><p>Paste a tonnex certificate (JSON) or choose its file. \
         The check recomputes its SHA-256 and compares it with the settlement ledger.</p>\
         <form method=\"post\" action=\"/verify\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <p><input type=\"file\" id=\"file\" accept=\".json,application/json\"></p>\
         <textarea name=\"certificate\" id=\"certificate\">{}</textarea>\
         <p><button id=\"verify\">Verify</button></p></form>{READ_FILE}",
        escape(csrf),
        escape(text)
    )
}

/// `GET /verify`.
pub async fn form(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let (session, token) = session_or_new(&app, &headers);
    with_cookie(
        page::html(
            StatusCode::OK,
            page("Verify", None, &form_body(&session.csrf, "")),
        ),
        token,
    )
}

async fn check(app: &Arc<App>, text: &str) -> (StatusCode, Value) {
    let submitted: Value = match serde_json::from_str(text) {
        Ok(value @ Value::Object(_)) => value,
        Ok(_) => {
            return (
                StatusCode::BAD_REQUEST,
                json!({"hash_ok": false, "ledger_ok": false, "valid": false, "problems": ["a certificate is a JSON object"]}),
            )
        }
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                json!({"hash_ok": false, "ledger_ok": false, "valid": false, "problems": [format!("not JSON: {e}")]}),
            )
        }
    };
    let app = Arc::clone(app);
    let result = blocking(move || app.ledger.with(|c| verify(c, &submitted))).await;
    match result {
        Ok(answer) => (StatusCode::OK, answer),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"hash_ok": false, "ledger_ok": false, "valid": false, "problems": [e.to_string()]}),
        ),
    }
}

/// The verify form's fields.
#[derive(Deserialize)]
pub struct VerifyForm {
    csrf: String,
    certificate: String,
}

/// `POST /verify`: the answer as a page.
pub async fn submit(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(form): Form<VerifyForm>,
) -> Response {
    let Some((_, session)) = app.auth.session(&headers) else {
        return page::html(
            StatusCode::FORBIDDEN,
            page(
                "Verify",
                None,
                "<h1>Your session expired</h1><p><a href=\"/verify\">Start again</a></p>",
            ),
        );
    };
    if !auth::csrf_ok(&session, &form.csrf) {
        return page::csrf_refused();
    }
    let (status, answer) = check(&app, &form.certificate).await;
    let verdict = |ok: bool, yes: &str, no: &str| {
        if ok {
            format!("<span class=\"ok\">{yes}</span>")
        } else {
            format!("<span class=\"bad\">{no}</span>")
        }
    };
    let mut body = format!(
        "<h1>Verification</h1><p id=\"verdict\">{}</p><ul><li id=\"hash\">{}</li><li id=\"ledger\">{}</li></ul>",
        verdict(answer["valid"] == true, "VALID: this certificate is what the ledger holds.", "NOT VALID"),
        verdict(answer["hash_ok"] == true, "The sha256 matches the content.", "The sha256 does not match the content."),
        verdict(answer["ledger_ok"] == true, "The ledger holds the same trades, serials and retirement.", "The ledger does not hold what this certificate says."),
    );
    let problems = answer["problems"].as_array().cloned().unwrap_or_default();
    if !problems.is_empty() {
        body += "<h2>Problems</h2><ul id=\"problems\">";
        for p in &problems {
            let _ = write!(body, "<li>{}</li>", escape(p.as_str().unwrap_or_default()));
        }
        body += "</ul>";
    }
    if let Some(chain) = answer["chain"].as_array() {
        body += "<h2>The chain</h2><table id=\"chain\">";
        for link in chain {
            let _ = write!(
                body,
                "<tr><th>{}</th><td>{}</td></tr>",
                escape(link["link"].as_str().unwrap_or_default()),
                escape(link["value"].as_str().unwrap_or_default())
            );
        }
        body += "</table>";
    }
    body += &form_body(&session.csrf, &form.certificate);
    page::html(status, page("Verification", None, &body))
}

/// `POST /api/verify`: the answer as JSON (no login).
pub async fn api(State(app): State<Arc<App>>, body: String) -> Response {
    let (status, answer) = check(&app, &body).await;
    page::json(status, &answer)
}
