//! Settlement's half of the closed loop: a thread that sends the venue
//! feedback outbox (`ledger::feedback`) to the venue's admin port as the
//! `settlement` operator, in id order, batch by batch, and records what the
//! venue acknowledged. The venue applies each id once, so a batch sent
//! again after a crash of either process (its answer lost) changes nothing:
//! exactly once, end to end.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tonnex_protocol::admin::{AdminReply, AdminVerb, MAX_OUTCOMES};
use tonnex_protocol::admin_client;

use crate::ledger::feedback;

/// Where and as whom outcomes are sent.
#[derive(Clone, Debug)]
pub struct FeedOptions {
    /// The venue's admin port.
    pub admin: String,
    /// The `[[operator]]` name with role `settlement`.
    pub operator: String,
    /// Its key.
    pub key: String,
}

/// How far the feed is, for metrics.
#[derive(Debug, Default)]
pub struct FeedProgress {
    /// Highest outbox id the venue acknowledged.
    pub acked: AtomicU64,
    /// Outcomes the venue refused since the start.
    pub refused: AtomicU64,
}

/// After settlement stops, how long the feed keeps trying to hand the
/// venue what is left (the rest goes at the next start).
const DRAIN: Duration = Duration::from_secs(5);

/// How often the feed records the venue's acknowledgements in the ledger.
const RECORD_EVERY: Duration = Duration::from_millis(250);

/// Starts the feed over the ledger at `path`; it runs until `finish` is set
/// and then sends what is left (for up to [`DRAIN`]).
pub fn spawn(
    path: PathBuf,
    options: FeedOptions,
    finish: Arc<AtomicBool>,
    progress: Arc<FeedProgress>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("venue-feed".into())
        .spawn(move || {
            if let Err(e) = feed(&path, &options, &finish, &progress) {
                tracing::error!(error = %e, "the venue feed stopped");
            }
        })
}

fn feed(
    path: &std::path::Path,
    options: &FeedOptions,
    finish: &AtomicBool,
    progress: &FeedProgress,
) -> Result<(), String> {
    let conn = Connection::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    let mut backoff = Duration::from_millis(100);
    let mut deadline: Option<Instant> = None;
    let mut session: Option<admin_client::Connection> = None;
    // What the venue acknowledged, and what of it the ledger records (only
    // every so often: the ledger's writer lock is the settlement loop's, and
    // an acknowledgement lost in a crash only means a batch sent again,
    // which the venue recognises).
    let mut acked = feedback::acked(&conn).map_err(|e| e.to_string())?;
    let mut recorded = (acked, Instant::now());
    let mut refusals = Vec::new();
    let record = |conn: &Connection,
                  acked: u64,
                  refusals: &mut Vec<_>,
                  recorded: &mut (u64, Instant)|
     -> Result<(), String> {
        if acked != recorded.0 || !refusals.is_empty() {
            feedback::acknowledge(conn, acked, refusals).map_err(|e| e.to_string())?;
            refusals.clear();
        }
        *recorded = (acked, Instant::now());
        Ok(())
    };
    loop {
        if deadline.is_none() && finish.load(Ordering::Acquire) {
            deadline = Some(Instant::now() + DRAIN);
        }
        progress.acked.store(acked, Ordering::Relaxed);
        if recorded.1.elapsed() >= RECORD_EVERY {
            record(&conn, acked, &mut refusals, &mut recorded)?;
        }
        let Some((first_id, outcomes)) =
            feedback::unsent(&conn, acked, MAX_OUTCOMES).map_err(|e| e.to_string())?
        else {
            record(&conn, acked, &mut refusals, &mut recorded)?;
            if deadline.is_some() {
                return Ok(());
            }
            deposit_custody_in(&conn, options, &mut session)?;
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        if deadline.is_some_and(|d| Instant::now() >= d) {
            record(&conn, acked, &mut refusals, &mut recorded)?;
            tracing::warn!(
                from_id = first_id,
                "settlement outcomes not yet acknowledged by the venue: sent at the next start"
            );
            return Ok(());
        }
        let count = outcomes.len();
        let verb = AdminVerb::Settlement { first_id, outcomes };
        match call(&mut session, options, "settlement", verb) {
            Ok(AdminReply::Settlement {
                through_id,
                refused,
                ..
            }) => {
                for r in &refused {
                    tracing::warn!(
                        id = r.id,
                        reason = tonnex_protocol::wire::reject_name(r.reason),
                        "the venue refused a settlement outcome"
                    );
                }
                progress
                    .refused
                    .fetch_add(refused.len() as u64, Ordering::Relaxed);
                refusals.extend(refused);
                acked = acked.max(through_id);
                backoff = Duration::from_millis(100);
                if count < MAX_OUTCOMES {
                    // Let the next batch gather rather than send one a round.
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            Ok(AdminReply::Refused { reason, text, .. }) => {
                tracing::warn!(
                    reason = tonnex_protocol::wire::reject_name(reason),
                    text,
                    retry_ms = backoff.as_millis() as u64,
                    "the venue refused settlement's session"
                );
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            Ok(other) => return Err(format!("the venue answered outcomes with {other:?}")),
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    retry_ms = backoff.as_millis() as u64,
                    "venue admin port unreachable"
                );
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// One request on the kept-open admin connection `session` (opened when
/// there is none; dropped when a call fails, to be opened again).
fn call(
    session: &mut Option<admin_client::Connection>,
    options: &FeedOptions,
    reason: &str,
    verb: AdminVerb,
) -> Result<AdminReply, admin_client::CallError> {
    let mut connection = match session.take() {
        Some(c) => c,
        None => admin_client::Connection::open(&options.admin)?,
    };
    let reply = connection.call(&options.operator, &options.key, reason, verb)?;
    *session = Some(connection);
    Ok(reply)
}

/// Has the venue deposit every custody-in transfer waiting for it, each as
/// a one-lot export named after the transfer (so one sent again is
/// recognised as deposited before), and records the answer.
fn deposit_custody_in(
    conn: &Connection,
    options: &FeedOptions,
    session: &mut Option<admin_client::Connection>,
) -> Result<(), String> {
    use crate::ledger::custody_in;
    for deposit in custody_in::pending(conn).map_err(|e| e.to_string())? {
        let verb = AdminVerb::DepositLots {
            symbol: deposit.instrument.clone(),
            name: format!("custody-in-{}", deposit.transfer_id),
            csv: deposit.csv.clone(),
        };
        let (deposited, detail) = match call(session, options, "custody in", verb) {
            Ok(AdminReply::Done { text, .. }) => (true, text),
            Ok(AdminReply::Refused { reason, text, .. }) => (
                false,
                format!("{}: {text}", tonnex_protocol::wire::reject_name(reason)),
            ),
            Ok(other) => return Err(format!("the venue answered a deposit with {other:?}")),
            Err(e) => {
                // Tried again next round.
                tracing::warn!(error = %e, "venue admin port unreachable for a custody-in deposit");
                return Ok(());
            }
        };
        if !deposited {
            tracing::warn!(transfer = %deposit.transfer_id, detail, "the venue refused a custody-in deposit");
        }
        custody_in::settle(conn, &deposit.transfer_id, deposited, &detail)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}
