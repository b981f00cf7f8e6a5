//! The webhook listener: registry callbacks arrive as HTTP POSTs to
//! `/registry/events` on loopback, signed with HMAC-SHA256 over the
//! timestamp and the body. A forged, stale or replayed callback, or one for
//! a trade the ledger does not know, is refused and logged; good events go
//! to the settlement loop, which applies them exactly like polled ones.

use std::collections::HashSet;
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::registry::{now_ms, verify, RegistryEvent, SIGNATURE_HEADER, TIMESTAMP_HEADER};

/// Callbacks older or newer than this are refused as stale.
pub const MAX_SKEW_MS: u64 = 60_000;

/// The answer to one callback: HTTP status and a short text.
#[derive(Debug, PartialEq, Eq)]
pub struct Verdict {
    /// HTTP status.
    pub status: u16,
    /// Why, for the log and the caller.
    pub text: String,
    /// Events to apply.
    pub accepted: Vec<RegistryEvent>,
}

/// Checks one callback. `seen` holds event ids already accepted by this
/// process; `known` says whether the ledger has a trade and whether an
/// event id was already applied.
pub fn judge(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_ms: u64,
    seen: &mut HashSet<String>,
    known: &mut dyn FnMut(&RegistryEvent) -> (bool, bool),
) -> Verdict {
    let refuse = |status, text: String| Verdict {
        status,
        text,
        accepted: Vec::new(),
    };
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return refuse(401, "unsigned callback".into());
    };
    let Ok(timestamp_ms) = timestamp.trim().parse::<u64>() else {
        return refuse(401, format!("bad timestamp '{timestamp}'"));
    };
    if !verify(secret, timestamp_ms, body, signature.trim()) {
        return refuse(401, "forged callback: signature does not match".into());
    }
    if timestamp_ms.abs_diff(now_ms) > MAX_SKEW_MS {
        return refuse(
            401,
            format!("stale callback: signed at {timestamp_ms}, now {now_ms}"),
        );
    }
    let events = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Array(items)) => items
            .iter()
            .map(|e| RegistryEvent::from_json(e).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>(),
        Ok(_) => Err("expected an array of events".to_string()),
        Err(e) => Err(e.to_string()),
    };
    let events = match events {
        Ok(events) => events,
        Err(e) => return refuse(400, format!("malformed callback: {e}")),
    };
    let (mut replayed, mut unknown) = (0, 0);
    let mut accepted = Vec::new();
    for event in events {
        let (trade_known, applied_before) = known(&event);
        if applied_before || seen.contains(&event.event_id) {
            replayed += 1;
        } else if !trade_known {
            unknown += 1;
        } else {
            seen.insert(event.event_id.clone());
            accepted.push(event);
        }
    }
    let status = match (accepted.is_empty(), replayed, unknown) {
        (false, _, _) | (true, 0, 0) => 200,
        (true, r, _) if r > 0 => 409,
        _ => 404,
    };
    Verdict {
        status,
        text: format!(
            "accepted {} replayed {replayed} unknown trade {unknown}",
            accepted.len()
        ),
        accepted,
    }
}

/// Serves `/registry/events` until `stop`; accepted events go to `events`.
pub fn serve(
    server: tiny_http::Server,
    ledger: PathBuf,
    secret: Vec<u8>,
    events: Sender<RegistryEvent>,
    stop: Arc<AtomicBool>,
) {
    let mut seen = HashSet::new();
    let mut reader: Option<Connection> = None;
    while !stop.load(Ordering::Acquire) {
        let Ok(Some(mut request)) = server.recv_timeout(Duration::from_millis(100)) else {
            continue;
        };
        if request.url() != "/registry/events" || *request.method() != tiny_http::Method::Post {
            let _ = request
                .respond(tiny_http::Response::from_string("not found").with_status_code(404));
            continue;
        }
        let header = |name: &'static str| {
            request
                .headers()
                .iter()
                .find(|h| h.field.equiv(name))
                .map(|h| h.value.as_str().to_string())
        };
        let (timestamp, signature) = (header(TIMESTAMP_HEADER), header(SIGNATURE_HEADER));
        let mut body = Vec::new();
        if request
            .as_reader()
            .take(64 << 20)
            .read_to_end(&mut body)
            .is_err()
        {
            let _ = request
                .respond(tiny_http::Response::from_string("unreadable body").with_status_code(400));
            continue;
        }
        if reader.is_none() {
            reader = Connection::open_with_flags(&ledger, OpenFlags::SQLITE_OPEN_READ_ONLY).ok();
        }
        let mut known = |event: &RegistryEvent| match &reader {
            Some(conn) => {
                let trade = conn
                    .query_row(
                        "SELECT 1 FROM trades WHERE trade_id = ?1 UNION ALL SELECT 1 FROM withdrawals WHERE id = ?1 LIMIT 1",
                        [event.trade_id as i64],
                        |_| Ok(()),
                    )
                    .optional()
                    .ok()
                    .flatten()
                    .is_some();
                // Replays within this process are caught by `seen`; an event
                // applied before a restart is recognised by the ledger, which
                // ignores it (its id is the primary key of registry_events).
                (trade, false)
            }
            None => (false, false),
        };
        let verdict = judge(
            &secret,
            timestamp.as_deref(),
            signature.as_deref(),
            &body,
            now_ms(),
            &mut seen,
            &mut known,
        );
        if verdict.status != 200 {
            tracing::warn!(
                status = verdict.status,
                text = %verdict.text,
                "webhook refused"
            );
        }
        for event in verdict.accepted {
            let _ = events.send(event);
        }
        let _ = request.respond(
            tiny_http::Response::from_string(verdict.text).with_status_code(verdict.status),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{sign, Kind};

    fn body(event_id: &str, trade_id: u64) -> Vec<u8> {
        serde_json::Value::Array(vec![RegistryEvent {
            event_id: event_id.into(),
            trade_id,
            kind: Kind::Payment,
            confirmed: true,
            reference: "R".into(),
        }
        .to_json()])
        .to_string()
        .into_bytes()
    }

    #[test]
    fn forged_stale_replayed_and_unknown_callbacks_are_refused() {
        let secret = b"s3cret";
        let now = 1_800_000_000_000;
        let mut seen = HashSet::new();
        let mut known = |e: &RegistryEvent| (e.trade_id == 7, false);
        let good = body("e-1", 7);
        let signature = sign(secret, now, &good);
        let ts = now.to_string();

        let forged = judge(
            b"wrong",
            Some(&ts),
            Some(&signature),
            &good,
            now,
            &mut seen,
            &mut known,
        );
        assert_eq!(forged.status, 401);
        let tampered = judge(
            secret,
            Some(&ts),
            Some(&signature),
            &body("e-1", 8),
            now,
            &mut seen,
            &mut known,
        );
        assert_eq!(tampered.status, 401);
        let unsigned = judge(secret, None, None, &good, now, &mut seen, &mut known);
        assert_eq!(unsigned.status, 401);
        let stale = judge(
            secret,
            Some(&ts),
            Some(&signature),
            &good,
            now + MAX_SKEW_MS + 1,
            &mut seen,
            &mut known,
        );
        assert_eq!(stale.status, 401);
        assert!(stale.text.contains("stale"));

        let accepted = judge(
            secret,
            Some(&ts),
            Some(&signature),
            &good,
            now,
            &mut seen,
            &mut known,
        );
        assert_eq!((accepted.status, accepted.accepted.len()), (200, 1));
        let replayed = judge(
            secret,
            Some(&ts),
            Some(&signature),
            &good,
            now,
            &mut seen,
            &mut known,
        );
        assert_eq!((replayed.status, replayed.accepted.len()), (409, 0));

        let stranger = body("e-2", 99);
        let unknown = judge(
            secret,
            Some(&ts),
            Some(&sign(secret, now, &stranger)),
            &stranger,
            now,
            &mut seen,
            &mut known,
        );
        assert_eq!((unknown.status, unknown.accepted.len()), (404, 0));

        let garbage = b"{not json";
        let malformed = judge(
            secret,
            Some(&ts),
            Some(&sign(secret, now, garbage)),
            garbage,
            now,
            &mut seen,
            &mut known,
        );
        assert_eq!(malformed.status, 400);
    }
}
