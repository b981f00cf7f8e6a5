//! The custody log: every custody change (a movement: deposit, lock in
//! escrow, delivery, unwind, retirement, withdrawal) appended, in the same
//! SQLite transaction as its postings, as an entry whose SHA-256 chains
//! in the entry before it. An entry's hash covers the previous hash, the
//! movement's id, kind and trade and every posting of it, so changing,
//! adding or removing any posting or log row breaks the chain from there on;
//! `audit` walks it and names the first broken link, and `report` prints the
//! head, which an operator can publish daily.

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use sha2::{Digest, Sha256};

use super::Posting;
use crate::registry::hex;

/// The "previous hash" of the first entry.
pub const GENESIS: [u8; 32] = [0; 32];

/// An entry's hash: SHA-256 over the previous entry's 32 bytes, then
/// `|id|kind|trade|account:asset:amount;...` (`-` for no trade). Stored as
/// 32 bytes: every movement on the settlement hot path writes one entry.
#[must_use]
pub fn entry_hash(
    prev: &[u8; 32],
    id: i64,
    kind: &str,
    trade_id: Option<i64>,
    postings: &[Posting],
) -> [u8; 32] {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(160);
    let _ = write!(text, "|{id}|{kind}|");
    match trade_id {
        Some(trade) => {
            let _ = write!(text, "{trade}");
        }
        None => text.push('-'),
    }
    text.push('|');
    for p in postings {
        let _ = write!(text, "{}:{}:{};", p.account, p.asset, p.amount);
    }
    let mut hasher = Sha256::new();
    hasher.update(prev);
    hasher.update(text.as_bytes());
    hasher.finalize().into()
}

fn last(conn: &Connection) -> rusqlite::Result<Option<(i64, [u8; 32])>> {
    conn.prepare_cached(
        "SELECT movement_id, sha256 FROM custody_log ORDER BY movement_id DESC LIMIT 1",
    )?
    .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
    .optional()
}

/// The last entry: (movement id, hash in hex).
pub fn head(conn: &Connection) -> rusqlite::Result<Option<(i64, String)>> {
    Ok(last(conn)?.map(|(id, hash)| (id, hex(&hash))))
}

/// Appends movement `id`'s entry (inside the movement's transaction).
pub(super) fn append(
    tx: &Transaction,
    id: i64,
    kind: &str,
    trade_id: Option<i64>,
    postings: &[Posting],
) -> rusqlite::Result<()> {
    let prev = last(tx)?.map_or(GENESIS, |(_, hash)| hash);
    let hash = entry_hash(&prev, id, kind, trade_id, postings);
    tx.prepare_cached("INSERT INTO custody_log (movement_id, sha256) VALUES (?1, ?2)")?
        .execute(params![id, &hash[..]])?;
    Ok(())
}

/// Every movement with its postings, in id order, handed to `each`
/// (movement id, kind, trade, postings). Postings are read in the order
/// they were written, which is movement order.
fn walk(
    conn: &Connection,
    mut each: impl FnMut(i64, &str, Option<i64>, &[Posting]) -> rusqlite::Result<bool>,
) -> rusqlite::Result<()> {
    let mut movements = conn.prepare("SELECT id, kind, trade_id FROM movements ORDER BY id")?;
    let mut postings =
        conn.prepare("SELECT movement_id, account, asset, amount FROM postings ORDER BY rowid")?;
    let mut posting_rows = postings.query([])?;
    let mut pending: Option<(i64, Posting)> = None;
    let mut rows = movements.query([])?;
    let mut group = Vec::with_capacity(4);
    while let Some(row) = rows.next()? {
        let (id, kind, trade): (i64, String, Option<i64>) = (row.get(0)?, row.get(1)?, row.get(2)?);
        group.clear();
        loop {
            let next = match pending.take() {
                Some(p) => Some(p),
                None => match posting_rows.next()? {
                    Some(r) => Some((r.get(0)?, Posting::new(r.get(1)?, r.get(2)?, r.get(3)?))),
                    None => None,
                },
            };
            match next {
                Some((movement, posting)) if movement == id => group.push(posting),
                Some(other) => {
                    pending = Some(other);
                    break;
                }
                None => break,
            }
        }
        if !each(id, &kind, trade, &group)? {
            return Ok(());
        }
    }
    Ok(())
}

/// Writes the entries of a ledger that had movements before the custody
/// log existed (a migration to schema 6); nothing when it has them all.
pub(super) fn backfill(conn: &Connection) -> rusqlite::Result<u64> {
    let logged: bool = conn.query_row("SELECT EXISTS (SELECT 1 FROM custody_log)", [], |r| {
        r.get(0)
    })?;
    if logged {
        return Ok(0);
    }
    let tx = conn.unchecked_transaction()?;
    let mut prev = GENESIS;
    let mut written = 0;
    {
        let mut insert =
            tx.prepare("INSERT INTO custody_log (movement_id, sha256) VALUES (?1, ?2)")?;
        walk(&tx, |id, kind, trade, postings| {
            let hash = entry_hash(&prev, id, kind, trade, postings);
            insert.execute(params![id, &hash[..]])?;
            prev = hash;
            written += 1;
            Ok(true)
        })?;
    }
    tx.commit()?;
    Ok(written)
}

/// What walking the chain found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainCheck {
    /// Entries that verified.
    pub verified: u64,
    /// The head: (movement id, hash).
    pub head: Option<(i64, String)>,
    /// The first broken link, in words (none: the chain holds).
    pub broken: Option<String>,
}

/// Recomputes every entry from the movements and postings as they are now
/// (each chaining in the one before) and compares it with the stored hash.
pub fn verify(conn: &Connection) -> rusqlite::Result<ChainCheck> {
    let mut entries =
        conn.prepare("SELECT movement_id, sha256 FROM custody_log ORDER BY movement_id")?;
    let mut entry_rows = entries.query([])?;
    let mut prev = GENESIS;
    let mut verified = 0u64;
    let mut broken = None;
    walk(conn, |id, kind, trade, postings| {
        let Some(entry) = entry_rows.next()? else {
            broken = Some(format!("movement {id} ({kind}) has no custody log entry"));
            return Ok(false);
        };
        let logged_id: i64 = entry.get(0)?;
        // Whatever a forger stored there (text, a short blob) is a mismatch,
        // not a failure of the audit.
        let logged_hash = match entry.get_ref(1)? {
            rusqlite::types::ValueRef::Blob(bytes) => bytes.to_vec(),
            _ => Vec::new(),
        };
        if logged_id != id {
            broken = Some(format!(
                "custody log entry {logged_id} where movement {id} ({kind}) was expected: a row was added or removed"
            ));
            return Ok(false);
        }
        let hash = entry_hash(&prev, id, kind, trade, postings);
        if hash[..] != logged_hash[..] {
            broken = Some(format!(
                "custody log entry {id} (movement {id}, {kind}{}): its hash does not match the movement and its postings as they are now: a posting or the entry was altered",
                trade.map(|t| format!(", trade {t}")).unwrap_or_default()
            ));
            return Ok(false);
        }
        prev = hash;
        verified += 1;
        Ok(true)
    })?;
    if broken.is_none() {
        if let Some(extra) = entry_rows.next()? {
            let id: i64 = extra.get(0)?;
            broken = Some(format!(
                "custody log entry {id} has no movement: a row was added or a movement removed"
            ));
        }
    }
    Ok(ChainCheck {
        verified,
        head: head(conn)?,
        broken,
    })
}
