//! The venue feedback outbox: how each trade ended, in the order the ledger
//! decided it, waiting to be sent to the venue's engine (which applies each
//! id once: see `tonnex_engine::settlement`).

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use tonnex_protocol::admin::{OutcomeRefusal, SettlementOutcome};

/// The stored name of an outcome.
#[must_use]
pub fn outcome_name(outcome: &SettlementOutcome) -> &'static str {
    match outcome {
        SettlementOutcome::Settled { retire: false, .. } => "settled",
        SettlementOutcome::Settled { retire: true, .. } => "settled_retire",
        SettlementOutcome::Unwound { .. } => "unwound",
        SettlementOutcome::Retired { .. } => "retired",
        SettlementOutcome::RetirementRefused { .. } => "retirement_refused",
        SettlementOutcome::WithdrawalReturned { .. } => "withdrawal_returned",
    }
}

/// A stored outcome name this build does not know.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("trade {trade_id}: unknown venue outcome '{name}'")]
pub struct UnknownOutcome {
    /// The trade.
    pub trade_id: u64,
    /// The name stored.
    pub name: String,
}

/// The outcome stored as `name` for `trade_id` (a returned withdrawal's
/// account, instrument and tonnes from its row); an unknown name, or a
/// withdrawal without its row, is an error.
pub fn parse_outcome(
    conn: &Connection,
    name: &str,
    trade_id: u64,
) -> Result<SettlementOutcome, UnknownOutcome> {
    Ok(match name {
        "withdrawal_returned" => {
            let row = super::withdrawals::load(conn, trade_id).ok().flatten();
            let Some((account, instrument, qty, _)) = row else {
                return Err(UnknownOutcome {
                    trade_id,
                    name: format!("{name} (no such withdrawal)"),
                });
            };
            SettlementOutcome::WithdrawalReturned {
                withdrawal_id: trade_id,
                account,
                instrument,
                qty,
            }
        }
        "settled" => SettlementOutcome::Settled {
            trade_id,
            retire: false,
        },
        "settled_retire" => SettlementOutcome::Settled {
            trade_id,
            retire: true,
        },
        "unwound" => SettlementOutcome::Unwound { trade_id },
        "retired" => SettlementOutcome::Retired { trade_id },
        "retirement_refused" => SettlementOutcome::RetirementRefused { trade_id },
        other => {
            return Err(UnknownOutcome {
                trade_id,
                name: other.to_string(),
            })
        }
    })
}

/// Queues `outcome` for the venue, in the transition's transaction.
pub(super) fn queue(tx: &Transaction, outcome: &SettlementOutcome) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT INTO venue_feedback (trade_id, outcome) VALUES (?1, ?2)")?
        .execute(params![outcome.trade_id() as i64, outcome_name(outcome)])?;
    Ok(())
}

/// The highest outbox id the venue acknowledged (0: none).
pub fn acked(conn: &Connection) -> rusqlite::Result<u64> {
    let value: Option<i64> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'feedback_acked'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    Ok(value.unwrap_or(0) as u64)
}

/// Why the outbox could not be read.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// SQLite refused.
    #[error("venue feedback outbox: {0}")]
    Sql(#[from] rusqlite::Error),
    /// Ids are not consecutive (rows are never deleted).
    #[error("venue feedback id {id} follows {previous}: the outbox has a gap")]
    Gap {
        /// The id read.
        id: u64,
        /// The one before it.
        previous: u64,
    },
    /// A stored outcome this build does not know.
    #[error(transparent)]
    Unknown(#[from] UnknownOutcome),
}

/// Up to `limit` outcomes after id `after`, in id order, as `(first id,
/// outcomes)`; the ids are consecutive (rows are never deleted).
pub fn unsent(
    conn: &Connection,
    after: u64,
    limit: usize,
) -> Result<Option<(u64, Vec<SettlementOutcome>)>, OutboxError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, trade_id, outcome FROM venue_feedback WHERE id > ?1 ORDER BY id LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![after as i64, limit as i64], |r| {
        Ok((
            r.get::<_, i64>(0)? as u64,
            r.get::<_, i64>(1)? as u64,
            r.get::<_, String>(2)?,
        ))
    })?;
    let mut first = None;
    let mut outcomes = Vec::new();
    for row in rows {
        let (id, trade_id, name) = row?;
        let expected = first.unwrap_or(id) + outcomes.len() as u64;
        if id != expected {
            return Err(OutboxError::Gap {
                id,
                previous: expected - 1,
            });
        }
        first.get_or_insert(id);
        outcomes.push(parse_outcome(conn, &name, trade_id)?);
    }
    Ok(first.map(|first| (first, outcomes)))
}

/// Records the venue's acknowledgement of every id through `through` and the
/// reasons of those it refused.
pub fn acknowledge(
    conn: &Connection,
    through: u64,
    refused: &[OutcomeRefusal],
) -> rusqlite::Result<()> {
    // Immediate: the writer lock first, so the settlement loop's commits
    // queue behind it (busy timeout) rather than fail a stale snapshot.
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    for r in refused {
        tx.prepare_cached("UPDATE venue_feedback SET refused = ?2 WHERE id = ?1")?
            .execute(params![r.id as i64, i64::from(r.reason)])?;
    }
    tx.prepare_cached(
        "INSERT INTO meta (key, value) VALUES ('feedback_acked', ?1)
         ON CONFLICT (key) DO UPDATE SET value = MAX(value, excluded.value)",
    )?
    .execute([through as i64])?;
    tx.commit()
}
