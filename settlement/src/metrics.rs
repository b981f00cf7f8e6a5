//! Settlement's metrics: `GET /metrics` in the Prometheus text format on
//! `--metrics-listen`. How far it is along the fill stream (applied, and
//! read but not yet applied), registry calls by kind and outcome (counters
//! the follower bumps), and the ledger's trades by state, counted at each
//! scrape on a read-only connection of its own (escrows in flight are the
//! `locked`, `awaiting_confirmations` and `failed` ones; `unwound` counts
//! every unwind).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::escrow::State;

/// A registry call's kind.
#[derive(Clone, Copy, Debug)]
pub enum Call {
    /// Transfer and retirement requests.
    Submit = 0,
    /// Status polls.
    Status = 1,
}

/// The follower's counters.
#[derive(Default)]
pub struct Metrics {
    /// Last fill-stream record applied to the ledger.
    pub applied_seq: AtomicU64,
    /// Last fill-stream record read from the venue.
    pub received_seq: AtomicU64,
    /// How far the venue has acknowledged trade outcomes.
    pub feed: Arc<crate::venue_feed::FeedProgress>,
    registry: [[AtomicU64; 2]; 2],
}

impl Metrics {
    /// A registry call of `kind` succeeded (`ok`) or failed.
    pub fn registry_call(&self, kind: Call, ok: bool) {
        self.registry[kind as usize][usize::from(!ok)].fetch_add(1, Ordering::Relaxed);
    }

    /// The text exposition; `states` are the ledger's trade counts by state.
    #[must_use]
    pub fn render(&self, states: &[(String, u64)]) -> String {
        let mut out = String::with_capacity(2048);
        let applied = self.applied_seq.load(Ordering::Relaxed);
        let received = self.received_seq.load(Ordering::Relaxed);
        let gauges = [
            (
                "tonnex_settlement_stream_seq",
                "Last fill-stream record applied to the ledger.",
                applied,
            ),
            (
                "tonnex_settlement_stream_lag",
                "Fill-stream records read from the venue and not yet applied.",
                received.saturating_sub(applied),
            ),
            (
                "tonnex_settlement_feedback_acked",
                "Highest trade-outcome id the venue acknowledged.",
                self.feed.acked.load(Ordering::Relaxed),
            ),
            (
                "tonnex_settlement_feedback_refused",
                "Trade outcomes the venue refused since the start.",
                self.feed.refused.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP tonnex_settlement_trades Trades in the ledger by state.\n# TYPE tonnex_settlement_trades gauge"
        );
        for (state, count) in states {
            let _ = writeln!(out, "tonnex_settlement_trades{{state=\"{state}\"}} {count}");
        }
        let in_flight: u64 = states
            .iter()
            .filter(|(s, _)| State::parse(s).is_some_and(|s| State::IN_FLIGHT.contains(&s)))
            .map(|(_, n)| n)
            .sum();
        let unwound: u64 = states
            .iter()
            .filter(|(s, _)| s == State::Unwound.as_str())
            .map(|(_, n)| n)
            .sum();
        let _ = writeln!(
            out,
            "# HELP tonnex_settlement_escrows_in_flight Trades locked in escrow and not yet settled or unwound.\n# TYPE tonnex_settlement_escrows_in_flight gauge\ntonnex_settlement_escrows_in_flight {in_flight}"
        );
        let _ = writeln!(
            out,
            "# HELP tonnex_settlement_unwinds Trades unwound (refused or timed out at the registry).\n# TYPE tonnex_settlement_unwinds counter\ntonnex_settlement_unwinds_total {unwound}"
        );
        let _ = writeln!(
            out,
            "# HELP tonnex_settlement_registry_calls Registry calls by kind and outcome.\n# TYPE tonnex_settlement_registry_calls counter"
        );
        for (k, kind) in ["submit", "status"].iter().enumerate() {
            for (o, outcome) in ["ok", "error"].iter().enumerate() {
                let _ = writeln!(
                    out,
                    "tonnex_settlement_registry_calls_total{{kind=\"{kind}\",outcome=\"{outcome}\"}} {}",
                    self.registry[k][o].load(Ordering::Relaxed)
                );
            }
        }
        out
    }
}

/// Trades by state, from a read-only connection to the ledger.
fn states(conn: &Connection) -> rusqlite::Result<Vec<(String, u64)>> {
    let mut stmt =
        conn.prepare_cached("SELECT state, COUNT(*) FROM trades GROUP BY state ORDER BY state")?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
    })?;
    rows.collect()
}

/// Serves `GET /metrics` on `server` until `stop` is set.
pub fn serve(
    server: tiny_http::Server,
    metrics: Arc<Metrics>,
    ledger: PathBuf,
    stop: Arc<AtomicBool>,
) {
    let mut conn: Option<Connection> = None;
    while !stop.load(Ordering::Acquire) {
        let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(100)) else {
            continue;
        };
        let response = if request.method() == &tiny_http::Method::Get && request.url() == "/metrics"
        {
            if conn.is_none() {
                conn = open(&ledger).ok();
            }
            let by_state = conn.as_ref().map(states).transpose();
            match by_state {
                Ok(by_state) => {
                    tiny_http::Response::from_string(metrics.render(&by_state.unwrap_or_default()))
                        .with_header(
                            "Content-Type: text/plain; version=0.0.4; charset=utf-8"
                                .parse::<tiny_http::Header>()
                                .expect("a valid header"),
                        )
                }
                Err(e) => {
                    conn = None;
                    tiny_http::Response::from_string(format!("ledger: {e}\n")).with_status_code(500)
                }
            }
        } else {
            tiny_http::Response::from_string("only GET /metrics\n").with_status_code(404)
        };
        let _ = request.respond(response);
    }
}

fn open(ledger: &Path) -> rusqlite::Result<Connection> {
    Connection::open_with_flags(
        ledger,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}
