//! Who may see what: buyers log in with their account id and password,
//! operators with their name and key. Only argon2 hashes are kept; a
//! session is a random token in an `HttpOnly; SameSite=Strict` cookie with
//! its own CSRF token for every form; failed logins are rate-limited per
//! client address and per name.

use std::collections::HashMap;
use std::io::Read;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::http::HeaderMap;
use tonnex_gateway::config::OperatorRole;

/// The session cookie's name.
pub const COOKIE: &str = "tonnex_session";
/// Failed logins allowed per address (and per name) in [`WINDOW`].
pub const MAX_FAILURES: u32 = 5;
/// The rate-limit window.
pub const WINDOW: Duration = Duration::from_secs(60);
/// A session left unused this long is forgotten.
const IDLE: Duration = Duration::from_secs(8 * 3600);

/// Who a session belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Who {
    /// A buyer account.
    Buyer(u64),
    /// An operator; the key signs its console actions on the admin port.
    Operator {
        /// Operator name.
        name: String,
        /// Its role.
        role: OperatorRole,
        /// Its key, as typed at login (kept in memory only).
        key: String,
    },
}

/// A session: who (none before login) and its CSRF token.
#[derive(Clone, Debug)]
pub struct Session {
    /// Logged in as.
    pub who: Option<Who>,
    /// Every form carries this; a post without it is refused.
    pub csrf: String,
    last_used: Instant,
}

/// Why a login failed.
#[derive(Debug, PartialEq, Eq)]
pub enum LoginError {
    /// Unknown name or wrong password (never said which).
    Refused,
    /// Too many failures: try again later.
    RateLimited,
}

/// Credentials and sessions.
pub struct Auth {
    buyers: HashMap<u64, String>,
    operators: HashMap<String, (String, OperatorRole)>,
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<String, (Instant, u32)>>,
}

/// 32 bytes from the kernel's generator, hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("the kernel's random generator");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hash(secret: &str) -> String {
    let salt = SaltString::encode_b64(&random_token().as_bytes()[..16]).expect("16-byte salt");
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .expect("argon2 hashes any input")
        .to_string()
}

fn verify(secret: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(secret.as_bytes(), &parsed)
            .is_ok()
    })
}

impl Auth {
    /// Hashes every buyer's password and operator's key; the plain texts
    /// are dropped with the arguments.
    #[must_use]
    pub fn new(buyers: Vec<(u64, String)>, operators: Vec<(String, OperatorRole, String)>) -> Auth {
        Auth {
            buyers: buyers
                .into_iter()
                .map(|(id, secret)| (id, hash(&secret)))
                .collect(),
            operators: operators
                .into_iter()
                .map(|(name, role, key)| (name, (hash(&key), role)))
                .collect(),
            sessions: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// The session whose token the request's cookie carries.
    pub fn session(&self, headers: &HeaderMap) -> Option<(String, Session)> {
        let token = cookie(headers)?;
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let session = sessions.get_mut(&token)?;
        if session.last_used.elapsed() > IDLE {
            sessions.remove(&token);
            return None;
        }
        session.last_used = Instant::now();
        Some((token, session.clone()))
    }

    /// A new session (before login: it carries the login form's CSRF token).
    pub fn start(&self, who: Option<Who>) -> (String, Session) {
        let session = Session {
            who,
            csrf: random_token(),
            last_used: Instant::now(),
        };
        let token = random_token();
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.retain(|_, s| s.last_used.elapsed() <= IDLE);
        sessions.insert(token.clone(), session.clone());
        (token, session)
    }

    /// Forgets a session.
    pub fn end(&self, token: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(token);
    }

    /// Checks a login; counts failures per address and per name.
    pub fn login(&self, from: IpAddr, name: &Name, password: &str) -> Result<Who, LoginError> {
        let keys = [format!("ip {from}"), format!("name {name}")];
        {
            let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
            failures.retain(|_, (since, _)| since.elapsed() < WINDOW);
            if keys
                .iter()
                .any(|k| failures.get(k).is_some_and(|(_, n)| *n >= MAX_FAILURES))
            {
                return Err(LoginError::RateLimited);
            }
        }
        let who = match name {
            Name::Buyer(account) => self
                .buyers
                .get(account)
                .filter(|phc| verify(password, phc))
                .map(|_| Who::Buyer(*account)),
            Name::Operator(operator) => self
                .operators
                .get(operator)
                .filter(|(phc, _)| verify(password, phc))
                .map(|(_, role)| Who::Operator {
                    name: operator.clone(),
                    role: *role,
                    key: password.to_string(),
                }),
        };
        who.ok_or_else(|| {
            let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
            for key in keys {
                failures.entry(key).or_insert((Instant::now(), 0)).1 += 1;
            }
            LoginError::Refused
        })
    }
}

/// The name a login gives.
#[derive(Clone, Debug)]
pub enum Name {
    /// A buyer's account id.
    Buyer(u64),
    /// An operator's name.
    Operator(String),
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Name::Buyer(id) => write!(f, "account {id}"),
            Name::Operator(name) => write!(f, "operator {name}"),
        }
    }
}

/// The session token in the request's `Cookie` header.
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            pair.trim()
                .strip_prefix(&format!("{COOKIE}="))
                .map(str::to_string)
        })
}

/// The `Set-Cookie` value for `token`.
#[must_use]
pub fn set_cookie(token: &str) -> String {
    format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict")
}

/// The `Set-Cookie` value that removes the session cookie.
#[must_use]
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// Constant-time comparison of a form's CSRF token with the session's.
#[must_use]
pub fn csrf_ok(session: &Session, given: &str) -> bool {
    let (a, b) = (session.csrf.as_bytes(), given.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Auth {
        Auth::new(
            vec![(1001, "pw-1001".into())],
            vec![("ops".into(), OperatorRole::Operator, "key".into())],
        )
    }

    #[test]
    fn only_the_right_password_logs_in_and_nothing_plain_is_kept() {
        let auth = auth();
        let here: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(
            auth.login(here, &Name::Buyer(1001), "pw-1001"),
            Ok(Who::Buyer(1001))
        );
        assert_eq!(
            auth.login(here, &Name::Buyer(1001), "pw-1002"),
            Err(LoginError::Refused)
        );
        assert_eq!(
            auth.login(here, &Name::Buyer(9), "pw-1001"),
            Err(LoginError::Refused)
        );
        assert!(auth.buyers[&1001].starts_with("$argon2"));
        assert!(!auth.buyers[&1001].contains("pw-1001"));
        assert!(matches!(
            auth.login(here, &Name::Operator("ops".into()), "key"),
            Ok(Who::Operator { .. })
        ));
    }

    #[test]
    fn repeated_failures_are_rate_limited_even_with_the_right_password() {
        let auth = auth();
        let here: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            assert_eq!(
                auth.login(here, &Name::Buyer(1001), "guess"),
                Err(LoginError::Refused)
            );
        }
        assert_eq!(
            auth.login(here, &Name::Buyer(1001), "pw-1001"),
            Err(LoginError::RateLimited)
        );
        // Another address guessing the same account is limited too.
        let there: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(
            auth.login(there, &Name::Buyer(1001), "pw-1001"),
            Err(LoginError::RateLimited)
        );
    }
}
