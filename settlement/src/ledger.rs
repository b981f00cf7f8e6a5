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

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use tonnex_protocol::wire::{BuyDecision, LotInfo, StreamEvent, StreamRecord};

use crate::escrow::{self, Leg, Legs, Signal, State};
use crate::registry::{Kind, RegistryEvent, Request};

/// Deposits come from, and withdrawals go to, outside the venue.
pub const EXTERNAL: i64 = 0;
/// Legs of trades not yet settled or unwound.
pub const ESCROW: i64 = -1;
/// Credits retired at the registry.
pub const RETIRED: i64 = -2;
/// The cash asset (micro-dollars); credits use their instrument number.
pub const CASH: i64 = -1;

/// The ledger schema this build writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 5;

const MIGRATIONS: [&str; 5] = ["
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE instruments (id INTEGER PRIMARY KEY, symbol TEXT NOT NULL, sub_ledger TEXT NOT NULL, tick_micros INTEGER NOT NULL);
CREATE TABLE movements (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, trade_id INTEGER, stream_seq INTEGER);
CREATE TABLE postings (movement_id INTEGER NOT NULL, account INTEGER NOT NULL, asset INTEGER NOT NULL, amount INTEGER NOT NULL);
CREATE INDEX postings_by_account ON postings (account, asset);
CREATE TABLE serial_blocks (id INTEGER PRIMARY KEY, account INTEGER NOT NULL, instrument INTEGER NOT NULL,
    registry TEXT NOT NULL, project_id TEXT NOT NULL, prefix TEXT NOT NULL, width INTEGER NOT NULL,
    first INTEGER NOT NULL, last INTEGER NOT NULL, next INTEGER NOT NULL, vintage INTEGER NOT NULL, ccp INTEGER NOT NULL);
CREATE INDEX blocks_by_owner ON serial_blocks (account, instrument, id);
CREATE TABLE buy_orders (order_id INTEGER PRIMARY KEY, account INTEGER NOT NULL, instrument INTEGER NOT NULL,
    qty INTEGER NOT NULL, price_ticks INTEGER NOT NULL, decision TEXT NOT NULL,
    filled INTEGER NOT NULL DEFAULT 0, closed INTEGER NOT NULL DEFAULT 0, certificate TEXT);
CREATE TABLE trades (trade_id INTEGER PRIMARY KEY, journal_seq INTEGER NOT NULL, instrument INTEGER NOT NULL,
    buy_order_id INTEGER NOT NULL, sell_order_id INTEGER NOT NULL, buyer INTEGER NOT NULL, seller INTEGER NOT NULL,
    price_ticks INTEGER NOT NULL, qty INTEGER NOT NULL, amount_micros INTEGER NOT NULL, supplementary_ticks INTEGER NOT NULL,
    state TEXT NOT NULL, payment INTEGER NOT NULL DEFAULT 0, transfer INTEGER NOT NULL DEFAULT 0,
    retire INTEGER NOT NULL, submitted_ms INTEGER NOT NULL, settled_ms INTEGER, retirement_ref TEXT, retired_ms INTEGER);
CREATE INDEX trades_by_state ON trades (state);
CREATE INDEX trades_by_buy_order ON trades (buy_order_id);
CREATE TABLE trade_serials (trade_id INTEGER NOT NULL, block_id INTEGER NOT NULL, first INTEGER NOT NULL,
    last INTEGER NOT NULL, returned INTEGER NOT NULL DEFAULT 0);
CREATE INDEX serials_by_trade ON trade_serials (trade_id);
CREATE TABLE registry_events (event_id TEXT PRIMARY KEY, trade_id INTEGER NOT NULL, kind TEXT NOT NULL,
    confirmed INTEGER NOT NULL, reference TEXT NOT NULL, applied TEXT NOT NULL);
CREATE TABLE supplementary (trade_id INTEGER PRIMARY KEY, buyer INTEGER NOT NULL, ticks_per_t INTEGER NOT NULL,
    qty INTEGER NOT NULL, amount_micros INTEGER NOT NULL);
CREATE TABLE certificates (certificate_id TEXT PRIMARY KEY, order_id INTEGER NOT NULL, sha256 TEXT NOT NULL, json TEXT NOT NULL);
", "
CREATE INDEX movements_by_trade ON movements (trade_id, kind);
", "
-- Pending work is 'awaiting_confirmations', or 'settled' with a retirement
-- owed: by (state, retire), so the poll does not walk every settled trade.
DROP INDEX trades_by_state;
CREATE INDEX trades_by_state ON trades (state, retire, trade_id);
", "
-- Settlement speed: every posting and movement paid for an index entry that
-- only the off-line audit and report read (they scan and group instead), and
-- registry events kept their text key twice (rowid table + its index).
DROP INDEX postings_by_account;
DROP INDEX movements_by_trade;
CREATE TABLE registry_events_by_id (event_id TEXT PRIMARY KEY, trade_id INTEGER NOT NULL, kind TEXT NOT NULL,
    confirmed INTEGER NOT NULL, reference TEXT NOT NULL, applied TEXT NOT NULL) WITHOUT ROWID;
INSERT INTO registry_events_by_id SELECT event_id, trade_id, kind, confirmed, reference, applied FROM registry_events;
DROP TABLE registry_events;
ALTER TABLE registry_events_by_id RENAME TO registry_events;
", "
-- The buyer dashboard (tonnex-web) reads one buyer's orders and fills
-- below the floor: by account, so a page costs the same whatever the
-- ledger's size. A buy order and a supplementary row are rare beside
-- trades and postings: the writes barely notice.
CREATE INDEX buy_orders_by_account ON buy_orders (account, order_id);
CREATE INDEX supplementary_by_buyer ON supplementary (buyer, trade_id);
"];

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

/// A trade's row, as transitions need it.
struct TradeRow {
    state: State,
    legs: Legs,
    retire: bool,
    buy_order_id: u64,
    buyer: i64,
    seller: i64,
    instrument: i64,
    qty: i64,
    amount: i64,
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
        let tx = self.conn.transaction().map_err(&error)?;
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
        let tx = self.conn.transaction().map_err(&error)?;
        let mut outbox = Outbox::default();
        let late: Vec<i64> = {
            let mut stmt = tx
                .prepare_cached("SELECT trade_id FROM trades WHERE state = 'awaiting_confirmations' AND submitted_ms < ?1")
                .map_err(&error)?;
            let rows = stmt
                .query_map([now_ms.saturating_sub(timeout_ms) as i64], |r| r.get(0))
                .map_err(&error)?;
            rows.collect::<Result<_, _>>().map_err(&error)?
        };
        for trade_id in late {
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
                "SELECT trade_id, state, payment, transfer FROM trades WHERE state = 'awaiting_confirmations'
                 UNION ALL SELECT trade_id, state, payment, transfer FROM trades WHERE state = 'settled' AND retire = 1",
            )
            .map_err(&error)?;
        let mut requests = Vec::new();
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, bool>(3)?,
                ))
            })
            .map_err(&error)?;
        for row in rows {
            let (trade_id, state, payment, transfer) = row.map_err(&error)?;
            let trade_id = trade_id as u64;
            if state == "settled" {
                requests.push(Request {
                    trade_id,
                    kind: Kind::Retirement,
                });
                continue;
            }
            if !payment {
                requests.push(Request {
                    trade_id,
                    kind: Kind::Payment,
                });
            }
            if !transfer {
                requests.push(Request {
                    trade_id,
                    kind: Kind::Transfer,
                });
            }
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
                "SELECT trade_id FROM trades WHERE state = 'awaiting_confirmations' AND retire IN (0, 1) AND submitted_ms < ?2
                 UNION ALL SELECT trade_id FROM trades WHERE state = 'settled' AND retire = 1 AND settled_ms < ?2 LIMIT ?1",
            )
            .map_err(&error)?;
        let rows = stmt
            .query_map(params![limit as i64, before_ms as i64], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(&error)?;
        rows.map(|r| r.map(|v| v as u64))
            .collect::<Result<_, _>>()
            .map_err(&error)
    }
}

fn movement(
    tx: &Transaction,
    kind: &str,
    trade_id: Option<u64>,
    postings: &[(i64, i64, i64)],
) -> rusqlite::Result<()> {
    debug_assert!(
        postings
            .iter()
            .map(|p| (p.1, p.2))
            .fold(
                std::collections::BTreeMap::new(),
                |mut m, (asset, amount)| {
                    *m.entry(asset).or_insert(0i64) += amount;
                    m
                }
            )
            .values()
            .all(|&sum| sum == 0),
        "unbalanced movement {kind}"
    );
    tx.prepare_cached("INSERT INTO movements (kind, trade_id) VALUES (?1, ?2)")?
        .execute(params![kind, trade_id.map(|t| t as i64)])?;
    let id = tx.last_insert_rowid();
    // One statement for a movement's postings (two or four of them).
    match postings {
        [a, b] => {
            tx.prepare_cached("INSERT OR FAIL INTO postings (movement_id, account, asset, amount) VALUES (?1, ?2, ?3, ?4), (?1, ?5, ?6, ?7)")?
                .execute(params![id, a.0, a.1, a.2, b.0, b.1, b.2])?;
        }
        [a, b, c, d] => {
            tx.prepare_cached(
                "INSERT OR FAIL INTO postings (movement_id, account, asset, amount)
                 VALUES (?1, ?2, ?3, ?4), (?1, ?5, ?6, ?7), (?1, ?8, ?9, ?10), (?1, ?11, ?12, ?13)",
            )?
            .execute(params![
                id, a.0, a.1, a.2, b.0, b.1, b.2, c.0, c.1, c.2, d.0, d.1, d.2
            ])?;
        }
        _ => {
            let mut insert = tx.prepare_cached("INSERT INTO postings (movement_id, account, asset, amount) VALUES (?1, ?2, ?3, ?4)")?;
            for &(account, asset, amount) in postings {
                insert.execute(params![id, account, asset, amount])?;
            }
        }
    }
    Ok(())
}

/// `VCS-2451-2023-000000001` → (`VCS-2451-2023-`, 1, 9).
#[must_use]
pub fn split_serial(serial: &str) -> Option<(String, i64, usize)> {
    let digits = serial.bytes().rev().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 18 {
        return None;
    }
    let (prefix, number) = serial.split_at(serial.len() - digits);
    Some((prefix.to_string(), number.parse().ok()?, digits))
}

/// A serial number from a block's prefix, number and width.
#[must_use]
pub fn serial(prefix: &str, number: i64, width: usize) -> String {
    format!("{prefix}{number:0width$}")
}

fn insert_block(
    tx: &Transaction,
    account: u64,
    instrument: u32,
    qty: u64,
    lot: Option<&LotInfo>,
) -> rusqlite::Result<()> {
    // A lot whose serials are `prefix + number` with first..=last spanning
    // its quantity is cut serial by serial; anything else is numbered
    // `<serial_start>#1..#qty` so every tonne still has one identity.
    let (registry, project, prefix, width, first, vintage, ccp) = match lot {
        Some(lot) => {
            let parsed = split_serial(&lot.serial_start).zip(split_serial(&lot.serial_end));
            let (prefix, width, first) = match parsed {
                Some(((p1, a, w), (p2, b, _))) if p1 == p2 && b - a + 1 == qty as i64 => (p1, w, a),
                _ => (format!("{}#", lot.serial_start), 0, 1),
            };
            (
                lot.registry.clone(),
                lot.project_id.clone(),
                prefix,
                width,
                first,
                i64::from(lot.vintage),
                lot.ccp,
            )
        }
        None => (
            "venue".to_string(),
            String::new(),
            format!("UNSERIALISED-{account}-{instrument}#"),
            0,
            1,
            0,
            false,
        ),
    };
    tx.prepare_cached(
        "INSERT INTO serial_blocks (account, instrument, registry, project_id, prefix, width, first, last, next, vintage, ccp)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?7, ?9, ?10)",
    )?
    .execute(params![account as i64, instrument, registry, project, prefix, width as i64, first, first + qty as i64 - 1, vintage, ccp])?;
    Ok(())
}

fn decision_json(decision: &BuyDecision) -> String {
    let pathway = ["none", "engaged", "recognised", "leadership"]
        .get(decision.pathway as usize)
        .copied()
        .unwrap_or("none");
    serde_json::json!({
        "company": decision.company,
        "reporting_year": decision.reporting_year,
        "pathway": pathway,
        "sub_ledger": decision.sub_ledger,
        "floor_micros": decision.floor_micros,
        "floor_ticks": decision.floor_ticks,
        "internal_price_micros": decision.internal_price_micros,
        "attestation": decision.attestation,
        "scope": decision.scope.iter().map(|l| serde_json::json!({"scope": l.scope, "category": l.category, "tonnes": l.qty})).collect::<Vec<_>>(),
        "coverage_bp": decision.coverage_bp,
        "tier_threshold_met": decision.tier_threshold_met,
        "ongoing_emissions_milli_t": decision.ongoing_emissions_milli_t,
        "threshold_bp": decision.threshold_bp,
        "rules_version": decision.rules_version,
        "rules_sha256": decision.rules_sha256,
        "attestation_approver": decision.attestation_approver,
    })
    .to_string()
}

fn apply_record(
    tx: &Transaction,
    record: &StreamRecord,
    now_ms: u64,
    outbox: &mut Outbox,
) -> rusqlite::Result<()> {
    match &record.event {
        StreamEvent::Instrument {
            instrument,
            symbol,
            sub_ledger,
            tick_micros,
        } => {
            tx.execute(
                "INSERT OR REPLACE INTO instruments (id, symbol, sub_ledger, tick_micros) VALUES (?1, ?2, ?3, ?4)",
                params![instrument, symbol, sub_ledger, tick_micros],
            )?;
        }
        StreamEvent::CashDeposit {
            account,
            amount_micros,
        } => {
            movement(
                tx,
                "deposit",
                None,
                &[
                    (EXTERNAL, CASH, -amount_micros),
                    (*account as i64, CASH, *amount_micros),
                ],
            )?;
        }
        StreamEvent::CashWithdrawal {
            account,
            amount_micros,
        } => {
            movement(
                tx,
                "withdrawal",
                None,
                &[
                    (*account as i64, CASH, -amount_micros),
                    (EXTERNAL, CASH, *amount_micros),
                ],
            )?;
        }
        StreamEvent::CreditDeposit {
            account,
            instrument,
            qty,
            lot,
        } => {
            let q = *qty as i64;
            let asset = i64::from(*instrument);
            movement(
                tx,
                "deposit",
                None,
                &[(EXTERNAL, asset, -q), (*account as i64, asset, q)],
            )?;
            insert_block(tx, *account, *instrument, *qty, lot.as_ref())?;
        }
        StreamEvent::CreditWithdrawal {
            account,
            instrument,
            qty,
        } => {
            let q = *qty as i64;
            let asset = i64::from(*instrument);
            movement(
                tx,
                "withdrawal",
                None,
                &[(*account as i64, asset, -q), (EXTERNAL, asset, q)],
            )?;
        }
        StreamEvent::BuyAccepted {
            order_id,
            account,
            instrument,
            price_ticks,
            qty,
            decision,
        } => {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO buy_orders (order_id, account, instrument, qty, price_ticks, decision) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![*order_id as i64, *account as i64, instrument, *qty as i64, price_ticks, decision_json(decision)])?;
        }
        StreamEvent::Trade {
            trade_id,
            instrument,
            buy_order_id,
            sell_order_id,
            buyer,
            seller,
            price_ticks,
            qty,
            supplementary_ticks,
        } => {
            let tick: i64 = tx
                .prepare_cached("SELECT tick_micros FROM instruments WHERE id = ?1")?
                .query_row([instrument], |r| r.get(0))?;
            let q = *qty as i64;
            let amount = price_ticks * q * tick;
            let retire: bool = tx
                .prepare_cached("SELECT 1 FROM buy_orders WHERE order_id = ?1")?
                .query_row([*buy_order_id as i64], |_| Ok(()))
                .optional()?
                .is_some();
            let (state, _) = escrow::next(State::Locked, Legs::default(), Signal::Submitted)
                .expect("locked -> awaiting is drawn");
            tx.prepare_cached(
                "INSERT INTO trades (trade_id, journal_seq, instrument, buy_order_id, sell_order_id, buyer, seller, price_ticks, qty,
                    amount_micros, supplementary_ticks, state, retire, submitted_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )?
            .execute(params![
                *trade_id as i64,
                record.journal_seq as i64,
                instrument,
                *buy_order_id as i64,
                *sell_order_id as i64,
                *buyer as i64,
                *seller as i64,
                price_ticks,
                q,
                amount,
                supplementary_ticks,
                state.as_str(),
                retire,
                now_ms as i64
            ])?;
            let asset = i64::from(*instrument);
            movement(
                tx,
                "lock",
                Some(*trade_id),
                &[
                    (*buyer as i64, CASH, -amount),
                    (ESCROW, CASH, amount),
                    (*seller as i64, asset, -q),
                    (ESCROW, asset, q),
                ],
            )?;
            allocate_serials(tx, *trade_id, *seller, *instrument, q, outbox)?;
            if *supplementary_ticks > 0 {
                tx.prepare_cached("INSERT INTO supplementary (trade_id, buyer, ticks_per_t, qty, amount_micros) VALUES (?1, ?2, ?3, ?4, ?5)")?
                    .execute(params![*trade_id as i64, *buyer as i64, supplementary_ticks, q, supplementary_ticks * q * tick])?;
            }
            if retire {
                tx.prepare_cached(
                    "UPDATE buy_orders SET filled = filled + ?2 WHERE order_id = ?1",
                )?
                .execute(params![*buy_order_id as i64, q])?;
            }
            for kind in [Kind::Payment, Kind::Transfer] {
                outbox.requests.push(Request {
                    trade_id: *trade_id,
                    kind,
                });
            }
        }
        StreamEvent::Cancelled {
            order_id, open_qty, ..
        } => {
            let changed = tx
                .prepare_cached("UPDATE buy_orders SET closed = closed + ?2 WHERE order_id = ?1")?
                .execute(params![*order_id as i64, *open_qty as i64])?;
            if changed > 0 {
                maybe_certify(tx, *order_id, now_ms, outbox)?;
            }
        }
        // A refusal ends the subscription before any record (the follower
        // stops on it); it is never a record to apply.
        StreamEvent::Refused { .. } => {}
    }
    Ok(())
}

/// Cuts `qty` serials from the seller's blocks of `instrument`, oldest first.
fn allocate_serials(
    tx: &Transaction,
    trade_id: u64,
    seller: u64,
    instrument: u32,
    qty: i64,
    outbox: &mut Outbox,
) -> rusqlite::Result<()> {
    let mut left = qty;
    let blocks: Vec<(i64, i64, i64)> = {
        let mut stmt = tx.prepare_cached(
            "SELECT id, next, last FROM serial_blocks WHERE account = ?1 AND instrument = ?2 AND next <= last ORDER BY id",
        )?;
        let rows = stmt.query_map(params![seller as i64, instrument], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
        let mut out = Vec::new();
        let mut available = 0;
        for row in rows {
            let block: (i64, i64, i64) = row?;
            available += block.2 - block.1 + 1;
            out.push(block);
            if available >= left {
                break;
            }
        }
        out
    };
    for (block_id, next, last) in blocks {
        if left == 0 {
            break;
        }
        let take = left.min(last - next + 1);
        tx.prepare_cached(
            "INSERT INTO trade_serials (trade_id, block_id, first, last) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![trade_id as i64, block_id, next, next + take - 1])?;
        tx.prepare_cached("UPDATE serial_blocks SET next = ?2 WHERE id = ?1")?
            .execute(params![block_id, next + take])?;
        left -= take;
    }
    if left > 0 {
        outbox.notes.push(format!(
            "trade {trade_id}: seller {seller} has {left} t without registry serials"
        ));
    }
    Ok(())
}

fn load_trade(tx: &Transaction, trade_id: u64) -> rusqlite::Result<Option<TradeRow>> {
    tx.prepare_cached(
        "SELECT state, payment, transfer, retire, buy_order_id, buyer, seller, instrument, qty, amount_micros FROM trades WHERE trade_id = ?1",
    )?
    .query_row([trade_id as i64], |r| {
        let state: String = r.get(0)?;
        Ok(TradeRow {
            state: State::parse(&state).unwrap_or(State::Locked),
            legs: Legs {
                payment: r.get(1)?,
                transfer: r.get(2)?,
            },
            retire: r.get(3)?,
            buy_order_id: r.get::<_, i64>(4)? as u64,
            buyer: r.get(5)?,
            seller: r.get(6)?,
            instrument: r.get(7)?,
            qty: r.get(8)?,
            amount: r.get(9)?,
        })
    })
    .optional()
}

/// Applies `signal` to a trade with its ledger effects; an illegal
/// transition changes nothing and is noted.
fn transition(
    tx: &Transaction,
    trade_id: u64,
    signal: Signal,
    now_ms: u64,
    outbox: &mut Outbox,
) -> rusqlite::Result<bool> {
    let Some(trade) = load_trade(tx, trade_id)? else {
        outbox
            .notes
            .push(format!("trade {trade_id}: unknown: {signal:?} ignored"));
        return Ok(false);
    };
    let (state, legs) = match escrow::next(trade.state, trade.legs, signal) {
        Ok(next) => next,
        Err(illegal) => {
            outbox
                .notes
                .push(format!("trade {trade_id}: {illegal}: ignored"));
            return Ok(false);
        }
    };
    tx.prepare_cached(
        "UPDATE trades SET state = ?2, payment = ?3, transfer = ?4,
            settled_ms = CASE WHEN ?2 = 'settled' THEN ?5 ELSE settled_ms END WHERE trade_id = ?1",
    )?
    .execute(params![
        trade_id as i64,
        state.as_str(),
        legs.payment,
        legs.transfer,
        now_ms as i64
    ])?;
    let asset = trade.instrument;
    match state {
        State::Settled => {
            // The atomic swap: both legs leave escrow in this one transaction.
            movement(
                tx,
                "settle",
                Some(trade_id),
                &[
                    (ESCROW, CASH, -trade.amount),
                    (trade.seller, CASH, trade.amount),
                    (ESCROW, asset, -trade.qty),
                    (trade.buyer, asset, trade.qty),
                ],
            )?;
            if trade.retire {
                outbox.requests.push(Request {
                    trade_id,
                    kind: Kind::Retirement,
                });
            }
        }
        State::Failed => {
            // Refused or timed out: unwind at once, returning both legs.
            movement(
                tx,
                "unwind",
                Some(trade_id),
                &[
                    (ESCROW, CASH, -trade.amount),
                    (trade.buyer, CASH, trade.amount),
                    (ESCROW, asset, -trade.qty),
                    (trade.seller, asset, trade.qty),
                ],
            )?;
            return_serials(tx, trade_id, trade.seller)?;
            let (unwound, _) = escrow::next(State::Failed, legs, Signal::Unwind)
                .expect("failed -> unwound is drawn");
            tx.prepare_cached("UPDATE trades SET state = ?2 WHERE trade_id = ?1")?
                .execute(params![trade_id as i64, unwound.as_str()])?;
            if trade.retire {
                tx.prepare_cached("UPDATE buy_orders SET filled = filled - ?2, closed = closed + ?2 WHERE order_id = ?1")?
                    .execute(params![trade.buy_order_id as i64, trade.qty])?;
                maybe_certify(tx, trade.buy_order_id, now_ms, outbox)?;
            }
        }
        State::Retired => {
            movement(
                tx,
                "retire",
                Some(trade_id),
                &[
                    (trade.buyer, asset, -trade.qty),
                    (RETIRED, asset, trade.qty),
                ],
            )?;
            maybe_certify(tx, trade.buy_order_id, now_ms, outbox)?;
        }
        _ => {}
    }
    Ok(true)
}

/// Serials of an unwound trade go back to the seller as a new block each
/// (at the end of its FIFO order).
fn return_serials(tx: &Transaction, trade_id: u64, seller: i64) -> rusqlite::Result<()> {
    let ranges: Vec<(i64, i64, i64)> = {
        let mut stmt = tx.prepare_cached(
            "SELECT block_id, first, last FROM trade_serials WHERE trade_id = ?1 AND returned = 0",
        )?;
        let rows = stmt.query_map([trade_id as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    for (block_id, first, last) in ranges {
        tx.prepare_cached(
            "INSERT INTO serial_blocks (account, instrument, registry, project_id, prefix, width, first, last, next, vintage, ccp)
             SELECT ?2, instrument, registry, project_id, prefix, width, ?3, ?4, ?3, vintage, ccp FROM serial_blocks WHERE id = ?1",
        )?
        .execute(params![block_id, seller, first, last])?;
    }
    tx.prepare_cached("UPDATE trade_serials SET returned = 1 WHERE trade_id = ?1")?
        .execute([trade_id as i64])?;
    Ok(())
}

fn apply_event(
    tx: &Transaction,
    event: &RegistryEvent,
    now_ms: u64,
    outbox: &mut Outbox,
) -> rusqlite::Result<()> {
    let inserted = tx
        .prepare_cached("INSERT OR IGNORE INTO registry_events (event_id, trade_id, kind, confirmed, reference, applied) VALUES (?1, ?2, ?3, ?4, ?5, 'yes')")?
        .execute(params![event.event_id, event.trade_id as i64, event.kind.as_str(), event.confirmed, event.reference])?;
    if inserted == 0 {
        outbox.notes.push(format!(
            "registry event {} seen before: ignored",
            event.event_id
        ));
        return Ok(());
    }
    let signal = match (event.kind, event.confirmed) {
        (Kind::Payment, true) => Signal::Confirmed(Leg::Payment),
        (Kind::Transfer, true) => Signal::Confirmed(Leg::Transfer),
        (Kind::Payment, false) => Signal::Refused(Leg::Payment),
        (Kind::Transfer, false) => Signal::Refused(Leg::Transfer),
        (Kind::Retirement, true) => Signal::RetirementConfirmed,
        (Kind::Retirement, false) => {
            outbox.notes.push(format!(
                "trade {}: the registry refused the retirement",
                event.trade_id
            ));
            return Ok(());
        }
    };
    if event.kind == Kind::Retirement {
        // Recorded before the transition, whose certificate quotes them.
        tx.prepare_cached("UPDATE trades SET retirement_ref = ?2, retired_ms = ?3 WHERE trade_id = ?1 AND state = 'settled'")?
            .execute(params![event.trade_id as i64, event.reference, now_ms as i64])?;
    }
    let applied = transition(tx, event.trade_id, signal, now_ms, outbox)?;
    if !applied {
        tx.prepare_cached("UPDATE registry_events SET applied = 'ignored' WHERE event_id = ?1")?
            .execute([&event.event_id])?;
    }
    Ok(())
}

/// Issues the certificate of a buyer order once nothing of it can change:
/// every tonne filled or closed, every trade retired or unwound, and at
/// least one retired.
fn maybe_certify(
    tx: &Transaction,
    order_id: u64,
    now_ms: u64,
    outbox: &mut Outbox,
) -> rusqlite::Result<()> {
    let Some((qty, filled, closed, done)): Option<(i64, i64, i64, Option<String>)> = tx
        .prepare_cached(
            "SELECT qty, filled, closed, certificate FROM buy_orders WHERE order_id = ?1",
        )?
        .query_row([order_id as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?
    else {
        return Ok(());
    };
    if done.is_some() || filled + closed < qty {
        return Ok(());
    }
    let (open, retired): (i64, i64) = tx
        .prepare_cached(
            "SELECT SUM(state NOT IN ('retired', 'unwound')), SUM(state = 'retired') FROM trades WHERE buy_order_id = ?1",
        )?
        .query_row([order_id as i64], |r| Ok((r.get::<_, Option<i64>>(0)?.unwrap_or(0), r.get::<_, Option<i64>>(1)?.unwrap_or(0))))?;
    if open > 0 || retired == 0 {
        return Ok(());
    }
    let certificate = crate::certificate::build(tx, order_id, now_ms)?;
    tx.prepare_cached(
        "INSERT INTO certificates (certificate_id, order_id, sha256, json) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        certificate.id,
        order_id as i64,
        certificate.sha256,
        certificate.json
    ])?;
    tx.prepare_cached("UPDATE buy_orders SET certificate = ?2 WHERE order_id = ?1")?
        .execute(params![order_id as i64, certificate.id])?;
    outbox.certificates.push(certificate.id);
    Ok(())
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
        drop(ledger);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
