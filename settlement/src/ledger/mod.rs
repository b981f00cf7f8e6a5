//! The settlement ledger: SQLite, WAL mode, schema migrations in code.
//!
//! Every money or credit movement is a group of postings that sums to zero
//! per asset (double entry). Pseudo-accounts: [`EXTERNAL`] (the world
//! outside the venue: deposits and withdrawals), [`ESCROW`] (legs of trades
//! in flight), [`RETIRED`] (credits retired at the registry). Assets:
//! [`CASH`] in micro-dollars, or an instrument number for its credits in
//! tonnes. The fill stream's sequence number is stored in the same
//! transaction as the effects of its records, so no record is applied twice
//! or lost across a crash.

pub mod budget_query;
pub mod certificate_query;
pub mod custody;
pub mod custody_in;
mod effects;
pub mod feedback;
mod postings;
mod records;
mod requests;
mod schema;
mod serials;
pub mod withdrawals;

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use tonnex_protocol::wire::StreamRecord;

use crate::escrow::{Signal, State};
use crate::registry::{Kind, RegistryEvent, Request};
use effects::{apply_event, transition};
pub use postings::Posting;
use records::apply_record;
use schema::MIGRATIONS;
pub use schema::SCHEMA_VERSION;
pub use serials::{serial, split_serial};

/// Deposits come from, and withdrawals go to, outside the venue.
pub const EXTERNAL: i64 = 0;
/// Legs of trades not yet settled or unwound.
pub const ESCROW: i64 = -1;
/// Credits retired at the registry.
pub const RETIRED: i64 = -2;
/// The cash asset (micro-dollars); credits use their instrument number.
pub const CASH: i64 = -1;

/// Why the ledger failed.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// SQLite refused.
    #[error("ledger {path}: {source}")]
    Sql {
        /// The database file.
        path: PathBuf,
        /// The failure.
        source: rusqlite::Error,
    },
    /// The stream skipped or repeated a record.
    #[error("fill stream record {got} arrived after {last}: records must follow one another")]
    OutOfOrder {
        /// Last applied.
        last: u64,
        /// Received.
        got: u64,
    },
}

/// What to do once a transaction has committed.
#[derive(Debug, Default)]
pub struct Outbox {
    /// Requests to the registry and payment rail.
    pub requests: Vec<Request>,
    /// Buyer orders whose certificate was issued (ids).
    pub certificates: Vec<String>,
    /// Things worth a log line (ignored duplicates, late confirmations).
    pub notes: Vec<String>,
}

/// The ledger.
pub struct Ledger {
    conn: Connection,
    path: PathBuf,
}

fn sql(path: &Path) -> impl Fn(rusqlite::Error) -> LedgerError + '_ {
    move |source| LedgerError::Sql {
        path: path.to_path_buf(),
        source,
    }
}

impl Ledger {
    /// Opens (creating and migrating) `DIR/ledger.sqlite`.
    pub fn open(dir: &Path) -> Result<Ledger, LedgerError> {
        let path = dir.join("ledger.sqlite");
        let error = sql(&path);
        std::fs::create_dir_all(dir).map_err(|e| LedgerError::Sql {
            path: path.clone(),
            source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
        })?;
        let conn = Connection::open(&path).map_err(&error)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(&error)?;
        // Durable at each commit against process crashes; WAL + NORMAL may
        // lose the last commits on power loss only, which replay from the
        // venue's fill stream restores (the sequence number commits with them).
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(&error)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(&error)?;
        conn.pragma_update(None, "cache_size", -65_536)
            .map_err(&error)?;
        conn.pragma_update(None, "temp_store", "MEMORY")
            .map_err(&error)?;
        // Every statement of the hot path stays prepared (rusqlite keeps 16
        // by default; a trade and its confirmations use more than that).
        conn.set_prepared_statement_cache_capacity(64);
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(&error)?;
        for (i, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.unchecked_transaction().map_err(&error)?;
            tx.execute_batch(migration).map_err(&error)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(&error)?;
            tx.commit().map_err(&error)?;
        }
        debug_assert_eq!(MIGRATIONS.len() as i64, SCHEMA_VERSION);
        // A ledger from before the custody log gets its entries now.
        custody::backfill(&conn).map_err(&error)?;
        drop(error);
        Ok(Ledger { conn, path })
    }

    /// The database file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection, for queries (audit, report).
    #[must_use]
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Sequence number of the last applied fill-stream record (0: none).
    pub fn last_seq(&self) -> Result<u64, LedgerError> {
        let seq: Option<i64> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'last_stream_seq'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql(&self.path))?;
        Ok(seq.unwrap_or(0) as u64)
    }

    /// Whether registry event `event_id` was already applied.
    pub fn event_seen(&self, event_id: &str) -> Result<bool, LedgerError> {
        self.conn
            .query_row(
                "SELECT 1 FROM registry_events WHERE event_id = ?1",
                [event_id],
                |_| Ok(()),
            )
            .optional()
            .map(|r| r.is_some())
            .map_err(sql(&self.path))
    }

    /// Applies stream records and registry events in one transaction.
    pub fn apply(
        &mut self,
        records: &[StreamRecord],
        events: &[RegistryEvent],
        now_ms: u64,
    ) -> Result<Outbox, LedgerError> {
        let path = self.path.clone();
        let error = sql(&path);
        let last = self.last_seq()?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&error)?;
        let mut outbox = Outbox::default();
        let mut seq = last;
        for record in records {
            if record.seq != seq + 1 {
                return Err(LedgerError::OutOfOrder {
                    last: seq,
                    got: record.seq,
                });
            }
            seq = record.seq;
            apply_record(&tx, record, now_ms, &mut outbox).map_err(&error)?;
        }
        if seq != last {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('last_stream_seq', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [seq as i64],
            )
            .map_err(&error)?;
        }
        for event in events {
            apply_event(&tx, event, now_ms, &mut outbox).map_err(&error)?;
        }
        tx.commit().map_err(&error)?;
        Ok(outbox)
    }

    /// Fails and unwinds every trade awaiting confirmations since before
    /// `now_ms - timeout_ms`.
    pub fn expire(&mut self, now_ms: u64, timeout_ms: u64) -> Result<Outbox, LedgerError> {
        let path = self.path.clone();
        let error = sql(&path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&error)?;
        let mut outbox = Outbox::default();
        let late: Vec<i64> = {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT trade_id FROM trades WHERE state = ?2 AND submitted_ms < ?1",
                )
                .map_err(&error)?;
            let rows = stmt
                .query_map(
                    params![
                        now_ms.saturating_sub(timeout_ms) as i64,
                        State::AwaitingConfirmations.as_str()
                    ],
                    |r| r.get(0),
                )
                .map_err(&error)?;
            rows.collect::<Result<_, _>>().map_err(&error)?
        };
        for trade_id in late {
            tx.prepare_cached(
                "UPDATE trades SET failure = 'timeout' WHERE trade_id = ?1 AND failure IS NULL",
            )
            .and_then(|mut s| s.execute([trade_id]))
            .map_err(&error)?;
            transition(&tx, trade_id as u64, Signal::TimedOut, now_ms, &mut outbox)
                .map_err(&error)?;
            outbox.notes.push(format!(
                "trade {trade_id}: no confirmation in time: unwound"
            ));
        }
        tx.commit().map_err(&error)?;
        Ok(outbox)
    }

    /// Requests still owed an answer: payment and transfer of trades
    /// awaiting confirmations, retirement of settled trades that want it.
    /// Sent again at start (the registry ignores repeats).
    pub fn pending_requests(&self) -> Result<Vec<Request>, LedgerError> {
        let error = sql(&self.path);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT trade_id, state, payment, transfer FROM trades WHERE state = ?1
                 UNION ALL SELECT trade_id, state, payment, transfer FROM trades WHERE state = ?2 AND retire = 1",
            )
            .map_err(&error)?;
        let rows: Vec<(i64, String, bool, bool)> = stmt
            .query_map(
                params![
                    State::AwaitingConfirmations.as_str(),
                    State::Settled.as_str()
                ],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, bool>(2)?,
                        r.get::<_, bool>(3)?,
                    ))
                },
            )
            .map_err(&error)?
            .collect::<Result<_, _>>()
            .map_err(&error)?;
        let mut requests = Vec::new();
        for (trade_id, state, payment, transfer) in rows {
            let trade_id = trade_id as u64;
            let kinds: &[Kind] = match (state == State::Settled.as_str(), payment, transfer) {
                (true, _, _) => &[Kind::Retirement],
                (false, false, false) => &[Kind::Payment, Kind::Transfer],
                (false, false, true) => &[Kind::Payment],
                (false, true, false) => &[Kind::Transfer],
                (false, true, true) => &[],
            };
            for &kind in kinds {
                if let Some(request) =
                    requests::describe(&self.conn, trade_id, kind).map_err(&error)?
                {
                    requests.push(request);
                }
            }
        }
        for id in withdrawals::pending(&self.conn, u64::MAX >> 1).map_err(&error)? {
            requests.extend(withdrawals::request(&self.conn, id).map_err(&error)?);
        }
        Ok(requests)
    }

    /// Trades whose answers have been awaited since before `before_ms`
    /// (for polling; younger ones are still expected by webhook), oldest first.
    pub fn pending_trades(&self, limit: usize, before_ms: u64) -> Result<Vec<u64>, LedgerError> {
        let error = sql(&self.path);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT trade_id FROM trades WHERE state = ?3 AND retire IN (0, 1) AND submitted_ms < ?2
                 UNION ALL SELECT trade_id FROM trades WHERE state = ?4 AND retire = 1 AND settled_ms < ?2 LIMIT ?1",
            )
            .map_err(&error)?;
        let rows = stmt
            .query_map(
                params![
                    limit as i64,
                    before_ms as i64,
                    State::AwaitingConfirmations.as_str(),
                    State::Settled.as_str()
                ],
                |r| r.get::<_, i64>(0),
            )
            .map_err(&error)?;
        let mut ids: Vec<u64> = rows
            .map(|r| r.map(|v| v as u64))
            .collect::<Result<_, _>>()
            .map_err(&error)?;
        // Withdrawals awaiting the registry are polled alike.
        ids.extend(withdrawals::pending(&self.conn, before_ms).map_err(&error)?);
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_split_into_prefix_number_and_width() {
        assert_eq!(
            split_serial("VCS-2451-2023-000000001"),
            Some(("VCS-2451-2023-".into(), 1, 9))
        );
        assert_eq!(serial("VCS-2451-2023-", 42, 9), "VCS-2451-2023-000000042");
        assert_eq!(split_serial("ABC"), None);
    }

    #[test]
    fn a_version_3_ledger_is_migrated_keeping_its_registry_events() {
        let dir =
            std::env::temp_dir().join(format!("tonnex-ledger-migrate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        {
            // A ledger as the previous release left it.
            let conn = Connection::open(dir.join("ledger.sqlite")).unwrap();
            for migration in &MIGRATIONS[..3] {
                conn.execute_batch(migration).unwrap();
            }
            conn.pragma_update(None, "user_version", 3).unwrap();
            conn.execute(
                "INSERT INTO registry_events VALUES ('sim-1-1', 7, 'payment', 1, 'PAY-7', 'yes')",
                [],
            )
            .unwrap();
            // Movements written before the custody log existed.
            conn.execute_batch(
                "INSERT INTO movements (id, kind, trade_id) VALUES (1, 'deposit', NULL), (2, 'lock', 7);
                 INSERT INTO postings VALUES (1, 0, -1, -500), (1, 1001, -1, 500),
                                             (2, 1001, -1, -100), (2, -1, -1, 100);",
            )
            .unwrap();
        }
        let ledger = Ledger::open(&dir).unwrap();
        let version: i64 = ledger
            .connection()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        assert!(ledger.event_seen("sim-1-1").unwrap());
        assert!(!ledger.event_seen("sim-1-2").unwrap());
        let indexes: i64 = ledger
            .connection()
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name IN ('postings_by_account', 'movements_by_trade')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(indexes, 0);
        // The old movements got their custody entries, and they verify.
        let chain = custody::verify(ledger.connection()).unwrap();
        assert_eq!((chain.verified, chain.broken), (2, None));
        drop(ledger);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
