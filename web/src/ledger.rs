//! The settlement ledger, read-only: settlement owns and writes it (WAL
//! lets a reader in beside the writer); the web only asks. Every query is
//! by account through an index, so a page costs the same with a million
//! trades in the ledger as with ten.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde_json::Value;
use tonnex_settlement::escrow::{sql_list, State};

/// The ledger file in settlement's data folder, opened on first use (the
/// web may start before settlement has created it).
pub struct LedgerReader {
    path: PathBuf,
    conn: Mutex<Option<Connection>>,
}

/// Why a ledger question has no answer.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// Settlement has not written a ledger there (yet).
    #[error("no settlement ledger at {0} yet")]
    Missing(String),
    /// A ledger written by a newer settlement than this build reads.
    #[error(
        "ledger {path}: schema version {version} is newer than this build reads ({})",
        tonnex_settlement::ledger::SCHEMA_VERSION
    )]
    Newer {
        /// The ledger file.
        path: String,
        /// Its `user_version`.
        version: i64,
    },
    /// SQLite refused.
    #[error("ledger {path}: {source}")]
    Sql {
        /// The ledger file.
        path: String,
        /// What SQLite said.
        source: rusqlite::Error,
    },
}

/// One buy order of a buyer, as the ledger knows it (every buy order the
/// pre-router accepted; held orders live on the venue until released).
#[derive(Clone, Debug)]
pub struct OrderRow {
    /// Venue order id.
    pub order_id: u64,
    /// Instrument symbol.
    pub symbol: String,
    /// Tonnes ordered.
    pub qty: i64,
    /// Limit price, micro-dollars per tonne.
    pub price_micros: i64,
    /// The pre-router's decision as settlement stored it.
    pub decision: Value,
    /// Tonnes filled (net of unwinds).
    pub filled: i64,
    /// Tonnes that will never trade (cancelled, expired, unwound).
    pub closed: i64,
    /// Tonnes retired at the registry.
    pub retired: i64,
    /// Its certificate id, once issued.
    pub certificate: Option<String>,
}

impl OrderRow {
    /// Tonnes still open on the book.
    #[must_use]
    pub fn open(&self) -> i64 {
        (self.qty - self.filled - self.closed).max(0)
    }

    /// The decision's reporting year.
    #[must_use]
    pub fn reporting_year(&self) -> i64 {
        self.decision["reporting_year"].as_i64().unwrap_or(0)
    }
}

/// A fill below the pathway floor, covered by supplementary pricing.
#[derive(Clone, Debug)]
pub struct SupplementaryRow {
    /// The trade.
    pub trade_id: u64,
    /// The buy order it filled.
    pub order_id: u64,
    /// Supplementary price, micro-dollars per tonne.
    pub per_t_micros: i64,
    /// Tonnes.
    pub qty: i64,
    /// Amount, micro-dollars.
    pub amount_micros: i64,
    /// The attestation the decision named.
    pub attestation: Option<String>,
}

impl LedgerReader {
    /// The ledger of settlement data folder `dir`.
    #[must_use]
    pub fn new(dir: &Path) -> LedgerReader {
        LedgerReader {
            path: dir.join("ledger.sqlite"),
            conn: Mutex::new(None),
        }
    }

    /// Runs `f` on the (lazily opened, read-only) connection.
    pub fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, LedgerError> {
        let sql = |source| LedgerError::Sql {
            path: self.path.display().to_string(),
            source,
        };
        let mut slot = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            if !self.path.exists() {
                return Err(LedgerError::Missing(self.path.display().to_string()));
            }
            let conn = Connection::open_with_flags(
                &self.path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(sql)?;
            conn.busy_timeout(std::time::Duration::from_secs(2))
                .map_err(sql)?;
            let version: i64 = conn
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .map_err(sql)?;
            if version > tonnex_settlement::ledger::SCHEMA_VERSION {
                return Err(LedgerError::Newer {
                    path: self.path.display().to_string(),
                    version,
                });
            }
            *slot = Some(conn);
        }
        f(slot.as_ref().expect("opened above")).map_err(sql)
    }
}

/// A buy order with its instrument and retired tonnes, then `rest` (the
/// `WHERE` and the order).
fn order_rows(rest: &str) -> String {
    format!(
        "SELECT b.order_id, i.symbol, b.qty, b.price_ticks * i.tick_micros, b.decision, b.filled, b.closed,
            b.certificate,
            (SELECT COALESCE(SUM(t.qty), 0) FROM trades t
              WHERE t.buy_order_id = b.order_id AND t.state IN ({}))
     FROM buy_orders b JOIN instruments i ON i.id = b.instrument {rest}",
        sql_list(&[State::Retired])
    )
}

/// Column `index`'s stored JSON; an unreadable one is an error naming the
/// column, never a default.
pub fn json_column(index: usize, text: &str) -> rusqlite::Result<Value> {
    serde_json::from_str(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn order_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OrderRow> {
    let decision: String = r.get(4)?;
    Ok(OrderRow {
        order_id: r.get::<_, i64>(0)? as u64,
        symbol: r.get(1)?,
        qty: r.get(2)?,
        price_micros: r.get(3)?,
        decision: json_column(4, &decision)?,
        filled: r.get(5)?,
        closed: r.get(6)?,
        certificate: r.get(7)?,
        retired: r.get(8)?,
    })
}

/// Every buy order of `account`, newest first, with its retired tonnes.
pub fn orders(conn: &Connection, account: u64) -> rusqlite::Result<Vec<OrderRow>> {
    let sql = order_rows("WHERE b.account = ?1 ORDER BY b.order_id DESC");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([account as i64], order_row)?;
    rows.collect()
}

/// One buy order of `account` (none if it is another account's).
pub fn order(conn: &Connection, account: u64, order_id: u64) -> rusqlite::Result<Option<OrderRow>> {
    let sql = order_rows("WHERE b.order_id = ?2 AND b.account = ?1");
    conn.prepare_cached(&sql)?
        .query_row([account as i64, order_id as i64], order_row)
        .optional()
}

/// The retirements of `account` for `year`: (retired at, ms; tonnes), in
/// time order.
pub fn retirements(
    conn: &Connection,
    account: u64,
    year: i64,
) -> rusqlite::Result<Vec<(i64, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT COALESCE(t.retired_ms, 0), t.qty FROM buy_orders b
         JOIN trades t ON t.buy_order_id = b.order_id
         WHERE b.account = ?1 AND t.state = ?3
           AND json_extract(b.decision, '$.reporting_year') = ?2
         ORDER BY t.retired_ms, t.trade_id",
    )?;
    let rows = stmt.query_map(
        rusqlite::params![account as i64, year, State::Retired.as_str()],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    rows.collect()
}

/// The fills of `account` below the pathway floor, newest first.
pub fn supplementary(conn: &Connection, account: u64) -> rusqlite::Result<Vec<SupplementaryRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.trade_id, t.buy_order_id, s.ticks_per_t * i.tick_micros, s.qty, s.amount_micros,
                json_extract(b.decision, '$.attestation')
         FROM supplementary s JOIN trades t ON t.trade_id = s.trade_id
         JOIN instruments i ON i.id = t.instrument JOIN buy_orders b ON b.order_id = t.buy_order_id
         WHERE s.buyer = ?1 ORDER BY s.trade_id DESC",
    )?;
    let rows = stmt.query_map([account as i64], |r| {
        Ok(SupplementaryRow {
            trade_id: r.get::<_, i64>(0)? as u64,
            order_id: r.get::<_, i64>(1)? as u64,
            per_t_micros: r.get(2)?,
            qty: r.get(3)?,
            amount_micros: r.get(4)?,
            attestation: r.get(5)?,
        })
    })?;
    rows.collect()
}

/// A stored certificate: (order id, account, its JSON).
pub fn certificate(conn: &Connection, id: &str) -> rusqlite::Result<Option<(u64, u64, Value)>> {
    conn.prepare_cached(
        "SELECT c.order_id, b.account, c.json FROM certificates c
         JOIN buy_orders b ON b.order_id = c.order_id WHERE c.certificate_id = ?1",
    )?
    .query_row([id], |r| {
        let json: String = r.get(2)?;
        Ok((
            r.get::<_, i64>(0)? as u64,
            r.get::<_, i64>(1)? as u64,
            json_column(2, &json)?,
        ))
    })
    .optional()
}

/// A trade of a buy order as the ledger holds it.
#[derive(Clone, Debug)]
pub struct TradeRow {
    /// The trade.
    pub trade_id: u64,
    /// Its settlement state.
    pub state: String,
    /// Tonnes.
    pub qty: i64,
    /// The registry's retirement reference.
    pub reference: Option<String>,
}

/// Trades of buy order `order_id`.
pub fn order_trades(conn: &Connection, order_id: u64) -> rusqlite::Result<Vec<TradeRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT trade_id, state, qty, retirement_ref FROM trades WHERE buy_order_id = ?1 ORDER BY trade_id",
    )?;
    let rows = stmt.query_map([order_id as i64], |r| {
        Ok(TradeRow {
            trade_id: r.get::<_, i64>(0)? as u64,
            state: r.get(1)?,
            qty: r.get(2)?,
            reference: r.get(3)?,
        })
    })?;
    rows.collect()
}

/// Settlement's counters for the operator: trades in flight, unwound,
/// retired, and the last fill-stream record applied.
pub fn settlement_counts(conn: &Connection) -> rusqlite::Result<(i64, i64, i64, i64)> {
    conn.query_row(
        &format!(
            "SELECT (SELECT COUNT(*) FROM trades WHERE state IN ({})),
                (SELECT COUNT(*) FROM trades WHERE state = ?1),
                (SELECT COUNT(*) FROM trades WHERE state = ?2),
                COALESCE((SELECT value FROM meta WHERE key = 'last_stream_seq'), 0)",
            sql_list(&State::IN_FLIGHT)
        ),
        [State::Unwound.as_str(), State::Retired.as_str()],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
}
