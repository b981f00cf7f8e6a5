//! The pages' frame: one stylesheet, a header naming who is logged in, and
//! text escaped wherever it is written into HTML.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// `text` safe inside HTML text and attribute values.
#[must_use]
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#1d2a22;background:#f6f8f5}
header{background:#1f4d36;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1rem;align-items:center}
header a{color:#fff}header button{color:#fff;background:transparent;border:1px solid #fff;border-radius:3px;cursor:pointer}header .who{margin-left:auto}
main{padding:1rem 1.2rem;max-width:72rem}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.6rem}
table{border-collapse:collapse;margin:.4rem 0;background:#fff}
td,th{border:1px solid #cfd8d2;padding:.25rem .55rem;text-align:left;font-size:.9rem}
th{background:#e6eee8}.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#1d7a3e;font-weight:600}.bad{color:#b3261e;font-weight:600}
.figure{display:inline-block;background:#fff;border:1px solid #cfd8d2;padding:.5rem 1rem;margin:.3rem .6rem .3rem 0}
.figure b{display:block;font-size:1.5rem}.flash{background:#fff4d6;padding:.5rem;border:1px solid #e6c35c}
form.inline{display:inline}textarea{width:100%;height:12rem;font-family:monospace}";

/// A whole page: `title`, the header's `who` line (with a logout form when
/// someone is logged in), and `body`.
#[must_use]
pub fn page(title: &str, who: Option<(&str, &str)>, body: &str) -> String {
    let header = match who {
        Some((name, csrf)) => format!(
            "<span class=\"who\">{}</span><form class=\"inline\" method=\"post\" action=\"/logout\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\"><button id=\"logout\">Log out</button></form>",
            escape(name),
            escape(csrf)
        ),
        None => "<a class=\"who\" href=\"/login\">Log in</a>".to_string(),
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} · tonnex</title>\
         <style>{STYLE}</style></head><body><header><b>tonnex</b><a href=\"/verify\">Verify a certificate</a>{header}</header>\
         <main>{body}</main></body></html>",
        escape(title)
    )
}

/// An HTML response.
pub fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// The one "not found" every refused or missing page gives, so a buyer
/// learns nothing about another's pages.
pub fn not_found() -> Response {
    html(
        StatusCode::NOT_FOUND,
        page("Not found", None, "<h1>Not found</h1>"),
    )
}

/// A form posted without this session's CSRF token: refused, nothing done.
pub fn csrf_refused() -> Response {
    html(
        StatusCode::FORBIDDEN,
        page(
            "Refused",
            None,
            "<h1>Refused: the form's token is not this session's</h1>",
        ),
    )
}

/// A page someone may not see: logged in as anyone else, "not found";
/// not logged in, the login page.
pub fn refuse(logged_in: bool) -> Response {
    if logged_in {
        not_found()
    } else {
        axum::response::Redirect::to("/login").into_response()
    }
}

/// A JSON response.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        value.to_string(),
    )
        .into_response()
}
