//! The web app: its state, its routes, and logging in and out.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::json;
use tonnex_gateway::compliance::{BuyerProfile, Rules};

use crate::auth::{self, Auth, LoginError, Name, Session, Who};
use crate::ledger::LedgerReader;
use crate::page::{self, escape, page};
use crate::{buyer, inventory_page, operator, verify_page};

/// What every request reads.
pub struct App {
    /// Credentials and sessions.
    pub auth: Auth,
    /// The settlement ledger (read-only).
    pub ledger: LedgerReader,
    /// Buyer profiles by account.
    pub profiles: HashMap<u64, BuyerProfile>,
    /// The rules in force at start.
    pub rules: Rules,
    /// The venue's admin port.
    pub venue_admin: Option<String>,
    /// The venue as the `[web] operator` sees it.
    pub venue: crate::venue::VenueLink,
    /// The venue's metrics address.
    pub venue_metrics: Option<String>,
    /// The live panel's previous metrics scrape.
    pub live: crate::metrics::LiveState,
}

impl App {
    /// A buyer's pathway name and coverage threshold (percent).
    #[must_use]
    pub fn threshold(&self, profile: &BuyerProfile) -> (String, Decimal) {
        let rule = self.rules.pathway(profile.pathway);
        (
            format!("{:?}", profile.pathway).to_lowercase(),
            rule.coverage_threshold_pct,
        )
    }
}

/// Every route.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login_form))
        .route("/logout", post(logout))
        .route("/api/login", post(api_login))
        .route("/buyer/{account}", get(buyer::dashboard))
        .route("/buyer/{account}/orders/{order}", get(buyer::order_page))
        .route(
            "/buyer/{account}/certificates/{id}",
            get(buyer::certificate_html),
        )
        .route(
            "/buyer/{account}/certificates/{id}/json",
            get(buyer::certificate_json),
        )
        .route("/api/buyer/{account}/summary", get(buyer::api_summary))
        .route(
            "/buyer/{account}/inventory",
            get(inventory_page::form).post(inventory_page::upload),
        )
        .route("/api/buyer/{account}/inventory", post(inventory_page::api))
        .route("/verify", get(verify_page::form).post(verify_page::submit))
        .route("/api/verify", post(verify_page::api))
        .route("/operator", get(operator::console))
        .route("/operator/action", post(operator::action))
        .route("/api/operator/live", get(operator::live))
        .fallback(|| async { page::not_found() })
        .with_state(app)
}

/// Runs blocking work (SQLite, argon2, the admin port) off the async
/// workers.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("a page never panics")
}

/// Checks a login (argon2 is slow on purpose: off the async workers).
async fn check_login(
    app: &Arc<App>,
    from: std::net::IpAddr,
    name: Name,
    password: String,
) -> Result<Who, LoginError> {
    let app = Arc::clone(app);
    blocking(move || app.auth.login(from, &name, &password)).await
}

/// The session of a request, or a new anonymous one (whose cookie the
/// response must set: the second value).
pub fn session_or_new(app: &App, headers: &HeaderMap) -> (Session, Option<String>) {
    match app.auth.session(headers) {
        Some((_, session)) => (session, None),
        None => {
            let (token, session) = app.auth.start(None);
            (session, Some(token))
        }
    }
}

/// `response` with the session cookie set when a session was just started.
pub fn with_cookie(response: Response, new_token: Option<String>) -> Response {
    match new_token {
        Some(token) => ([(header::SET_COOKIE, auth::set_cookie(&token))], response).into_response(),
        None => response,
    }
}

async fn home(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    match app.auth.session(&headers).and_then(|(_, s)| s.who) {
        Some(Who::Buyer(account)) => Redirect::to(&format!("/buyer/{account}")).into_response(),
        Some(Who::Operator { .. }) => Redirect::to("/operator").into_response(),
        None => Redirect::to("/login").into_response(),
    }
}

fn login_body(csrf: &str, message: &str) -> String {
    let flash = if message.is_empty() {
        String::new()
    } else {
        format!("<p class=\"flash\" id=\"message\">{}</p>", escape(message))
    };
    format!(
        "<h1>Log in</h1>{flash}<form method=\"post\" action=\"/login\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <p><label><input type=\"radio\" name=\"kind\" value=\"buyer\" checked> Buyer (account id)</label> \
         <label><input type=\"radio\" name=\"kind\" id=\"as-operator\" value=\"operator\"> Operator (name)</label></p>\
         <p><input name=\"name\" id=\"name\" placeholder=\"1001 or ops\" required></p>\
         <p><input name=\"password\" id=\"password\" type=\"password\" placeholder=\"password or key\" required></p>\
         <p><button id=\"login\">Log in</button></p></form>\
         <p>Auditors: <a href=\"/verify\">verify a certificate</a> without logging in.</p>",
        escape(csrf)
    )
}

async fn login_page(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let (session, token) = session_or_new(&app, &headers);
    let body = page("Log in", None, &login_body(&session.csrf, ""));
    with_cookie(page::html(StatusCode::OK, body), token)
}

/// The login form's fields.
#[derive(Deserialize)]
pub struct LoginForm {
    kind: String,
    name: String,
    password: String,
    csrf: String,
}

fn name_of(kind: &str, name: &str) -> Option<Name> {
    match kind {
        "buyer" => name.trim().parse().ok().map(Name::Buyer),
        "operator" => Some(Name::Operator(name.trim().to_string())),
        _ => None,
    }
}

/// Starts the logged-in session (a new token: the anonymous one is
/// dropped, so a token planted before login is worth nothing after it).
/// Returns the new session's token, its CSRF token and the redirect to
/// the logged-in home page.
fn logged_in(app: &App, old: Option<String>, who: Who) -> (String, String, Response) {
    if let Some(old) = old {
        app.auth.end(&old);
    }
    let target = match &who {
        Who::Buyer(account) => format!("/buyer/{account}"),
        Who::Operator { .. } => "/operator".to_string(),
    };
    let (token, session) = app.auth.start(Some(who));
    let response = (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, auth::set_cookie(&token)),
            (header::LOCATION, target),
        ],
    )
        .into_response();
    (token, session.csrf, response)
}

async fn login_form(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let Some((old, session)) = app.auth.session(&headers) else {
        return page::html(
            StatusCode::FORBIDDEN,
            page(
                "Log in",
                None,
                "<h1>Your session expired</h1><p><a href=\"/login\">Log in again</a></p>",
            ),
        );
    };
    if !auth::csrf_ok(&session, &form.csrf) {
        return page::csrf_refused();
    }
    let refused = |status, message: &str| {
        page::html(
            status,
            page("Log in", None, &login_body(&session.csrf, message)),
        )
    };
    let Some(name) = name_of(&form.kind, &form.name) else {
        return refused(StatusCode::UNAUTHORIZED, "An account id is a number.");
    };
    match check_login(&app, peer.ip(), name, form.password).await {
        Ok(who) => logged_in(&app, Some(old), who).2,
        Err(LoginError::Refused) => {
            refused(StatusCode::UNAUTHORIZED, "Unknown name or wrong password.")
        }
        Err(LoginError::RateLimited) => refused(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed logins: wait a minute and try again.",
        ),
    }
}

/// `POST /api/login`'s body.
#[derive(Deserialize)]
pub struct ApiLogin {
    account: Option<u64>,
    operator: Option<String>,
    password: String,
}

async fn api_login(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Json(body): Json<ApiLogin>,
) -> Response {
    let name = match (body.account, body.operator) {
        (Some(account), None) => Name::Buyer(account),
        (None, Some(operator)) => Name::Operator(operator),
        _ => {
            return page::json(
                StatusCode::BAD_REQUEST,
                &json!({"ok": false, "error": "give either \"account\" or \"operator\""}),
            )
        }
    };
    match check_login(&app, peer.ip(), name, body.password).await {
        Ok(who) => {
            let (token, csrf, _) = logged_in(&app, None, who.clone());
            let whom = match who {
                Who::Buyer(account) => json!({"account": account}),
                Who::Operator { name, .. } => json!({"operator": name}),
            };
            let body = json!({"ok": true, "who": whom, "csrf": csrf});
            (
                [(header::SET_COOKIE, auth::set_cookie(&token))],
                page::json(StatusCode::OK, &body),
            )
                .into_response()
        }
        Err(LoginError::Refused) => page::json(
            StatusCode::UNAUTHORIZED,
            &json!({"ok": false, "error": "unknown name or wrong password"}),
        ),
        Err(LoginError::RateLimited) => page::json(
            StatusCode::TOO_MANY_REQUESTS,
            &json!({"ok": false, "error": "too many failed logins; wait a minute"}),
        ),
    }
}

/// A form with only its CSRF token.
#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

async fn logout(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some((token, session)) = app.auth.session(&headers) {
        if !auth::csrf_ok(&session, &form.csrf) {
            return page::csrf_refused();
        }
        app.auth.end(&token);
    }
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, auth::clear_cookie()),
            (header::LOCATION, "/login".to_string()),
        ],
    )
        .into_response()
}
