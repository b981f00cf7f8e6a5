//! `audit --journal DIR`: the ledger against the venue's engine, account by
//! account and asset by asset.
//!
//! The engine's side is rebuilt from the venue's journal by the venue's own
//! recovery (read-only). For every account and asset it holds a position,
//! `free + locked + pending_out` (what the account owns until settlement
//! decides), and `pending_in` (what it is due). The ledger's side is each
//! account's postings plus the out-legs of its trades still in escrow, and
//! the in-legs of those trades. Two honest lags are accounted for exactly,
//! so the comparison holds at any stop, not only a clean one:
//! - fill-stream records the ledger has not applied yet (read from the
//!   venue's `fills.log`): their deposits, withdrawals and trades' in-legs;
//! - outcomes the ledger decided that the venue has not applied (outbox ids
//!   above the engine's watermark): their effect on the engine, taken back.

use std::collections::BTreeMap;
use std::io::BufReader;
use std::path::Path;

use rusqlite::{params, Connection};
use serde_json::{json, Value};
use tonnex_engine::journal::{recover, RecoverOptions};
use tonnex_engine::settlement::Outcome;
use tonnex_engine::{EngineConfig, State};
use tonnex_protocol::wire::{StreamEvent, StreamRecord};

use crate::ledger::feedback::parse_outcome;
use crate::ledger::{CASH, ESCROW};

/// One account's holding of one asset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Holding {
    /// Owned until settlement decides (engine: free + locked + pending out).
    position: i64,
    /// Due from trades in flight.
    pending_in: i64,
}

/// (account, asset: [`CASH`] or an instrument number) → holding.
type Holdings = BTreeMap<(i64, i64), Holding>;

/// What the reconciliation found.
pub struct Reconciliation {
    /// Ledger and engine agree on every account and asset.
    pub ok: bool,
    /// The JSON section of the audit.
    pub json: Value,
}

/// Why the venue's side could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The journal does not recover.
    #[error("venue journal {dir}: {what}")]
    Journal {
        /// The folder.
        dir: String,
        /// Why.
        what: String,
    },
    /// The ledger could not be read.
    #[error("ledger: {0}")]
    Sql(#[from] rusqlite::Error),
    /// A stored value is not one this build knows.
    #[error("ledger: {0}")]
    Stored(String),
    /// A stored outcome is not one this build knows.
    #[error("ledger: {0}")]
    Outcome(#[from] crate::ledger::feedback::UnknownOutcome),
}

fn add(map: &mut Holdings, account: i64, asset: i64, position: i64, pending_in: i64) {
    let h = map.entry((account, asset)).or_default();
    h.position += position;
    h.pending_in += pending_in;
}

/// The engine's holdings.
fn engine_holdings(state: &State) -> Holdings {
    let mut map = Holdings::new();
    for account in state.accounts().all() {
        let id = account.id as i64;
        let balances =
            std::iter::once((CASH, account.cash)).chain((0..).zip(account.credits.iter().copied()));
        for (asset, b) in balances {
            add(
                &mut map,
                id,
                asset,
                b.free + b.locked + b.pending_out,
                b.pending_in,
            );
        }
    }
    map
}

/// A trade's legs as the ledger holds them.
struct Legs {
    buyer: i64,
    seller: i64,
    instrument: i64,
    qty: i64,
    amount: i64,
}

/// The columns [`Legs::from_row`] reads, in its order.
const LEGS: &str = "buyer, seller, instrument, qty, amount_micros";

impl Legs {
    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Legs> {
        Ok(Legs {
            buyer: r.get(0)?,
            seller: r.get(1)?,
            instrument: r.get(2)?,
            qty: r.get(3)?,
            amount: r.get(4)?,
        })
    }
}

fn legs(conn: &Connection, trade_id: u64) -> rusqlite::Result<Option<Legs>> {
    use rusqlite::OptionalExtension;
    conn.query_row(
        &format!("SELECT {LEGS} FROM trades WHERE trade_id = ?1"),
        [trade_id as i64],
        Legs::from_row,
    )
    .optional()
}

/// The ledger's holdings, as the engine should see them.
fn ledger_holdings(conn: &Connection) -> rusqlite::Result<Holdings> {
    let mut map = Holdings::new();
    let mut stmt = conn.prepare(
        "SELECT account, asset, SUM(amount) FROM postings WHERE account > 0 GROUP BY account, asset",
    )?;
    for row in stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))? {
        let (account, asset, amount): (i64, i64, i64) = row?;
        add(&mut map, account, asset, amount, 0);
    }
    // Trades in escrow: each side still owns its out-leg and is due the other.
    let mut stmt = conn.prepare(&format!(
        "SELECT {LEGS} FROM trades WHERE state IN ({})",
        crate::escrow::sql_list(&crate::escrow::State::IN_FLIGHT)
    ))?;
    for row in stmt.query_map([], Legs::from_row)? {
        let t = row?;
        add(&mut map, t.buyer, CASH, t.amount, 0);
        add(&mut map, t.buyer, t.instrument, 0, t.qty);
        add(&mut map, t.seller, t.instrument, t.qty, 0);
        add(&mut map, t.seller, CASH, 0, t.amount);
    }
    Ok(map)
}

/// Fill-stream records after `after` (up to journal command `last_seq`),
/// from the venue's `fills.log`.
fn fill_log_after(dir: &Path, after: u64, last_seq: u64) -> Result<Vec<StreamRecord>, String> {
    let path = dir.join(tonnex_engine::fill_log::FILE_NAME);
    let file = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut records = Vec::new();
    while let Some((record, _)) = tonnex_engine::fill_log::read_record(&mut reader) {
        if record.seq > after && record.journal_seq <= last_seq {
            records.push(record);
        }
    }
    Ok(records)
}

/// Compares the ledger on `conn` with the venue journal in `journal`.
pub fn reconcile(conn: &Connection, journal: &Path) -> Result<Reconciliation, ReconcileError> {
    let dir = journal.display().to_string();
    let recovered = recover(
        journal,
        RecoverOptions {
            use_snapshot: true,
            track_orders: false,
            config: EngineConfig::default(),
        },
    )
    .map_err(|e| ReconcileError::Journal {
        dir: dir.clone(),
        what: e.to_string(),
    })?;
    let state = recovered.state;
    let applied: i64 = conn.query_row(
        "SELECT COALESCE((SELECT value FROM meta WHERE key = 'last_stream_seq'), 0)",
        [],
        |r| r.get(0),
    )?;
    let unapplied = fill_log_after(journal, applied as u64, state.last_seq())
        .map_err(|what| ReconcileError::Journal { dir, what })?;
    compare(&state, conn, &unapplied)
}

/// Compares the ledger on `conn` with the engine `state`, given the fill
/// stream's records after the ledger's last applied one (`unapplied`).
pub fn compare(
    state: &State,
    conn: &Connection,
    unapplied: &[StreamRecord],
) -> Result<Reconciliation, ReconcileError> {
    let engine = engine_holdings(state);
    let mut ledger = ledger_holdings(conn)?;

    // Records the ledger has not applied yet.
    for record in unapplied {
        match record.event {
            StreamEvent::CashDeposit {
                account,
                amount_micros,
            } => add(&mut ledger, account as i64, CASH, amount_micros, 0),
            StreamEvent::CashWithdrawal {
                account,
                amount_micros,
            } => add(&mut ledger, account as i64, CASH, -amount_micros, 0),
            StreamEvent::CreditDeposit {
                account,
                instrument,
                qty,
                ..
            } => add(
                &mut ledger,
                account as i64,
                i64::from(instrument),
                qty as i64,
                0,
            ),
            StreamEvent::CreditWithdrawal {
                account,
                instrument,
                qty,
            } => add(
                &mut ledger,
                account as i64,
                i64::from(instrument),
                -(qty as i64),
                0,
            ),
            StreamEvent::Trade {
                instrument,
                buyer,
                seller,
                price_ticks,
                qty,
                ..
            } => {
                // The out-legs are still in the ledger's balances; the
                // engine already books the in-legs as due.
                let tick = state
                    .books()
                    .get(instrument as usize)
                    .map_or(0, |b| b.spec.tick_micros);
                add(
                    &mut ledger,
                    buyer as i64,
                    i64::from(instrument),
                    0,
                    qty as i64,
                );
                add(
                    &mut ledger,
                    seller as i64,
                    CASH,
                    0,
                    price_ticks * tick * qty as i64,
                );
            }
            _ => {}
        }
    }

    // Outcomes the venue has not applied: taken back, latest first.
    let watermark = state.pending_trades().watermark();
    let mut unacked = Vec::new();
    {
        let mut stmt = conn.prepare(
            "SELECT id, trade_id, outcome FROM venue_feedback WHERE id > ?1 ORDER BY id DESC",
        )?;
        let rows = stmt.query_map(params![watermark as i64], |r| {
            Ok((r.get::<_, i64>(1)? as u64, r.get::<_, String>(2)?))
        })?;
        for row in rows {
            let (trade_id, name) = row?;
            unacked.push(parse_outcome(conn, &name, trade_id)?);
        }
    }
    for outcome in &unacked {
        if let Outcome::WithdrawalReturned {
            account,
            instrument,
            qty,
            ..
        } = *outcome
        {
            // The ledger has the credits back; the engine not yet.
            add(
                &mut ledger,
                account as i64,
                i64::from(instrument),
                -(qty as i64),
                0,
            );
            continue;
        }
        let Some(t) = legs(conn, outcome.trade_id())? else {
            return Err(ReconcileError::Stored(format!(
                "venue outcome for trade {} which the ledger does not hold",
                outcome.trade_id()
            )));
        };
        // Minus what applying the outcome would do to the engine.
        match outcome {
            Outcome::Settled { .. } => {
                add(&mut ledger, t.buyer, CASH, t.amount, 0);
                add(&mut ledger, t.buyer, t.instrument, -t.qty, t.qty);
                add(&mut ledger, t.seller, t.instrument, t.qty, 0);
                add(&mut ledger, t.seller, CASH, -t.amount, t.amount);
            }
            Outcome::Unwound { .. } => {
                add(&mut ledger, t.buyer, t.instrument, 0, t.qty);
                add(&mut ledger, t.seller, CASH, 0, t.amount);
            }
            Outcome::Retired { .. } => add(&mut ledger, t.buyer, t.instrument, t.qty, 0),
            Outcome::RetirementRefused { .. } | Outcome::WithdrawalReturned { .. } => {}
        }
    }

    let mut differences = Vec::new();
    let mut compared = 0u64;
    let keys: std::collections::BTreeSet<_> = engine.keys().chain(ledger.keys()).collect();
    for key in keys {
        let e = engine.get(key).copied().unwrap_or_default();
        let l = ledger.get(key).copied().unwrap_or_default();
        if e == Holding::default() && l == Holding::default() {
            continue;
        }
        compared += 1;
        if e != l {
            let (account, asset) = *key;
            let asset = if asset == CASH {
                "cash (micro-USD)".to_string()
            } else {
                format!("instrument {asset} (t)")
            };
            differences.push(format!(
                "account {account} {asset}: engine holds {} and is due {}, the ledger says {} and {}",
                e.position, e.pending_in, l.position, l.pending_in
            ));
        }
    }
    // Escrow and the engine's unfinished trades hold the same legs.
    let ok = differences.is_empty();
    let json = json!({
        "ok": ok,
        "journal_last_seq": state.last_seq(),
        "balances_compared": compared,
        "differences": differences.iter().take(20).collect::<Vec<_>>(),
        "difference_count": differences.len(),
        "engine_unfinished_trades": state.pending_trades().len(),
        "venue_outcome_watermark": watermark,
        "outcomes_not_yet_applied_by_the_venue": unacked.len(),
        "fill_records_not_yet_applied_by_the_ledger": unapplied.len(),
        "escrow_account": ESCROW,
    });
    Ok(Reconciliation { ok, json })
}
