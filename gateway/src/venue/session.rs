//! The session layer's decisions, pure: each takes the time (`now`, in
//! nanoseconds on the gateway's monotonic clock) as an argument, so tests
//! drive it without sockets or sleeps. The event loop ([`super::net`])
//! carries the verdicts out.

use crate::config::SessionSettings;

const SECOND_NS: u64 = 1_000_000_000;

/// A session's message rate over a sliding one-second window, estimated
/// from this second's count and the previous second's, weighted by overlap.
#[derive(Clone, Copy, Debug, Default)]
pub struct Throttle {
    second: u64,
    count: u64,
    previous: u64,
}

/// What to do with a message given the session's rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// Within the limit.
    Yes,
    /// Over the limit: requests are answered `THROTTLED`.
    Throttled,
    /// Over 1.5 times the limit: the session is disconnected.
    Disconnect,
}

impl Throttle {
    /// Counts one message at `now` against `limit` messages per second.
    pub fn admit(&mut self, now: u64, limit: u32) -> Admit {
        let second = now / SECOND_NS;
        if self.second != second {
            self.previous = if self.second + 1 == second {
                self.count
            } else {
                0
            };
            self.second = second;
            self.count = 0;
        }
        self.count += 1;
        let overlap = SECOND_NS - now % SECOND_NS;
        let rate = self.count + self.previous * overlap / SECOND_NS;
        let limit = u64::from(limit);
        if rate * 2 > limit * 3 {
            Admit::Disconnect
        } else if rate > limit {
            Admit::Throttled
        } else {
            Admit::Yes
        }
    }
}

/// A connection's clock: when it opened, last received and last sent.
#[derive(Clone, Copy, Debug)]
pub struct Liveness {
    /// When the connection was accepted.
    pub opened: u64,
    /// Last message received.
    pub received: u64,
    /// Last message sent.
    pub sent: u64,
}

impl Liveness {
    /// A connection accepted at `now`.
    #[must_use]
    pub fn new(now: u64) -> Liveness {
        Liveness {
            opened: now,
            received: now,
            sent: now,
        }
    }
}

/// What a connection's timers call for at a moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// Nothing.
    Nothing,
    /// No login before the deadline: close.
    LoginTimeout,
    /// Silent for three heartbeat intervals: close.
    IdleTimeout,
    /// Nothing sent for a heartbeat interval: send a heartbeat.
    Heartbeat,
}

/// The timer verdict for a connection at `now`.
#[must_use]
pub fn due(live: &Liveness, logged_in: bool, now: u64, settings: &SessionSettings) -> Due {
    let heartbeat = u64::from(settings.heartbeat_ms) * 1_000_000;
    let login = u64::from(settings.login_timeout_ms) * 1_000_000;
    if !logged_in {
        if now.saturating_sub(live.opened) > login {
            Due::LoginTimeout
        } else {
            Due::Nothing
        }
    } else if now.saturating_sub(live.received) > 3 * heartbeat {
        Due::IdleTimeout
    } else if now.saturating_sub(live.sent) >= heartbeat {
        Due::Heartbeat
    } else {
        Due::Nothing
    }
}

/// Why a login is refused, for the `LoginRejected` text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginRefusal {
    /// No such account, or the wrong secret (never said which).
    Credentials,
    /// Another connection holds the account's session.
    AlreadyConnected,
    /// The account is suspended (the kill switch).
    Suspended,
}

impl LoginRefusal {
    /// The text sent to the client.
    #[must_use]
    pub fn text(self) -> &'static str {
        match self {
            LoginRefusal::Credentials => "unknown account or wrong secret",
            LoginRefusal::AlreadyConnected => "the account already has a session",
            LoginRefusal::Suspended => "the account is suspended",
        }
    }
}

/// An account's login credential.
#[derive(Clone, Debug)]
pub enum Credential {
    /// The secret from the venue file, compared in constant time.
    Secret(String),
    /// An argon2 hash (PHC string) of the secret of an account added at
    /// runtime: the venue never keeps that secret.
    Hash(String),
}

impl Credential {
    /// Whether `offered` is the secret.
    #[must_use]
    pub fn verify(&self, offered: &str) -> bool {
        match self {
            Credential::Secret(secret) => {
                !secret.is_empty() && constant_time_eq(secret.as_bytes(), offered.as_bytes())
            }
            Credential::Hash(hash) => {
                use argon2::password_hash::{PasswordHash, PasswordVerifier};
                PasswordHash::new(hash).is_ok_and(|parsed| {
                    argon2::Argon2::default()
                        .verify_password(offered.as_bytes(), &parsed)
                        .is_ok()
                })
            }
        }
    }
}

/// Checks a login: `verified` says whether the offered secret is the
/// account's (`None`: no such account).
pub fn check_login(verified: Option<bool>, connected: bool) -> Result<(), LoginRefusal> {
    match verified {
        Some(true) if connected => Err(LoginRefusal::AlreadyConnected),
        Some(true) => Ok(()),
        _ => Err(LoginRefusal::Credentials),
    }
}

/// Compares secrets without stopping at the first differing byte.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_throttle_slides_over_the_second_boundary() {
        let mut throttle = Throttle::default();
        // 10 a second allowed: the 11th in one second is throttled, the
        // 16th disconnects.
        let verdicts: Vec<Admit> = (0..16).map(|i| throttle.admit(i * 1000, 10)).collect();
        assert!(verdicts[..10].iter().all(|v| *v == Admit::Yes));
        assert!(verdicts[10..15].iter().all(|v| *v == Admit::Throttled));
        assert_eq!(verdicts[15], Admit::Disconnect);
        // Early in the next second the previous one still weighs in ...
        let mut throttle = Throttle::default();
        for i in 0..10 {
            assert_eq!(throttle.admit(900_000_000 + i, 10), Admit::Yes);
        }
        // (10 x 0.999... = 9 of them, plus this second's 2.)
        assert_eq!(throttle.admit(SECOND_NS + 1, 10), Admit::Yes);
        assert_eq!(throttle.admit(SECOND_NS + 2, 10), Admit::Throttled);
        // ... and a second later it no longer does.
        assert_eq!(throttle.admit(3 * SECOND_NS, 10), Admit::Yes);
    }

    #[test]
    fn timers_close_silent_sessions_and_send_heartbeats() {
        let settings = SessionSettings {
            heartbeat_ms: 100,
            login_timeout_ms: 50,
            ..SessionSettings::default()
        };
        let ms = 1_000_000;
        let live = Liveness::new(0);
        assert_eq!(due(&live, false, 50 * ms, &settings), Due::Nothing);
        assert_eq!(due(&live, false, 51 * ms, &settings), Due::LoginTimeout);
        assert_eq!(due(&live, true, 99 * ms, &settings), Due::Nothing);
        assert_eq!(due(&live, true, 100 * ms, &settings), Due::Heartbeat);
        let live = Liveness {
            opened: 0,
            received: 0,
            sent: 300 * ms,
        };
        assert_eq!(due(&live, true, 301 * ms, &settings), Due::IdleTimeout);
    }

    #[test]
    fn logins_need_the_secret_and_a_free_session() {
        let secret = Credential::Secret("s3cret-123".into());
        assert_eq!(
            check_login(Some(secret.verify("s3cret-123")), false),
            Ok(())
        );
        assert_eq!(
            check_login(Some(secret.verify("s3cret-124")), false),
            Err(LoginRefusal::Credentials)
        );
        assert_eq!(check_login(None, false), Err(LoginRefusal::Credentials));
        assert_eq!(
            check_login(Some(secret.verify("s3cret-123")), true),
            Err(LoginRefusal::AlreadyConnected)
        );
        assert!(!Credential::Secret(String::new()).verify(""));
        let hashed = Credential::Hash(super::super::admin_accounts::hash_secret("s3cret-123"));
        assert!(hashed.verify("s3cret-123") && !hashed.verify("s3cret-12"));
    }
}
