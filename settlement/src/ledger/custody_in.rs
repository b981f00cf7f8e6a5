//! Custody in: each transfer a registry lists into the venue's custody
//! account is recorded once (by its transfer id), with the venue account
//! it belongs to, and waits to be deposited at the venue as a lot.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::registry::{IncomingTransfer, RegistryAccounts};

/// Recorded, waiting for the venue.
pub const RECEIVED: &str = "received";
/// Deposited at the venue (or found deposited before).
pub const DEPOSITED: &str = "deposited";
/// Not deposited: why is in `detail`.
pub const REFUSED: &str = "refused";

/// One transfer waiting to be deposited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingDeposit {
    /// The registry's transfer id.
    pub transfer_id: String,
    /// The instrument it goes into.
    pub instrument: String,
    /// The one-lot export the venue checks and deposits.
    pub csv: String,
}

/// The registry list position read so far.
pub fn after(conn: &Connection) -> rusqlite::Result<u64> {
    let seq: Option<i64> = conn
        .query_row("SELECT MAX(seq) FROM custody_in", [], |r| r.get(0))
        .optional()?
        .flatten();
    Ok(seq.unwrap_or(0) as u64)
}

/// Records `transfers` (each once); a transfer from a registry account no
/// venue account has is refused at once. Returns how many were new.
pub fn record(
    conn: &Connection,
    transfers: &[IncomingTransfer],
    accounts: &RegistryAccounts,
) -> rusqlite::Result<usize> {
    let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let mut new = 0;
    for t in transfers {
        let owner = accounts.venue_account_of(&t.from_account);
        let (state, detail, csv) = match owner {
            Some(owner) => (RECEIVED, String::new(), t.lot_csv(owner)),
            None => (
                REFUSED,
                format!(
                    "no venue account has registry account {}: the credits stay in custody",
                    t.from_account
                ),
                t.lot_csv(0),
            ),
        };
        new += tx
            .prepare_cached(
                "INSERT OR IGNORE INTO custody_in (transfer_id, seq, from_account, venue_account, instrument, csv, state, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                t.transfer_id,
                t.seq as i64,
                t.from_account,
                owner.map(|o| o as i64),
                t.instrument,
                csv,
                state,
                detail
            ])?;
    }
    tx.commit()?;
    Ok(new)
}

/// Transfers waiting for the venue, oldest first.
pub fn pending(conn: &Connection) -> rusqlite::Result<Vec<PendingDeposit>> {
    let mut stmt = conn.prepare_cached(
        "SELECT transfer_id, instrument, csv FROM custody_in WHERE state = ?1 ORDER BY seq",
    )?;
    let rows = stmt.query_map([RECEIVED], |r| {
        Ok(PendingDeposit {
            transfer_id: r.get(0)?,
            instrument: r.get(1)?,
            csv: r.get(2)?,
        })
    })?;
    rows.collect()
}

/// The venue's answer for `transfer_id`.
pub fn settle(
    conn: &Connection,
    transfer_id: &str,
    deposited: bool,
    detail: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE custody_in SET state = ?2, detail = ?3 WHERE transfer_id = ?1")?
        .execute(params![
            transfer_id,
            if deposited { DEPOSITED } else { REFUSED },
            detail
        ])?;
    Ok(())
}
