//! Postings: every movement of money or credits as a group of postings
//! that sums to zero per asset.

use rusqlite::{params, Transaction};

/// One line of a movement: `amount` of `asset` to `account` (negative:
/// from it). Accounts are venue accounts or the pseudo-accounts
/// [`super::EXTERNAL`], [`super::ESCROW`], [`super::RETIRED`]; assets are
/// [`super::CASH`] or an instrument number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Posting {
    /// Who.
    pub account: i64,
    /// What.
    pub asset: i64,
    /// How much: micro-dollars or tonnes, signed.
    pub amount: i64,
}

impl Posting {
    /// A posting.
    #[must_use]
    pub const fn new(account: i64, asset: i64, amount: i64) -> Posting {
        Posting {
            account,
            asset,
            amount,
        }
    }
}

pub(super) fn movement(
    tx: &Transaction,
    kind: &str,
    trade_id: Option<u64>,
    postings: &[Posting],
) -> rusqlite::Result<()> {
    debug_assert!(
        postings
            .iter()
            .map(|p| (p.asset, p.amount))
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
    super::custody::append(tx, id, kind, trade_id.map(|t| t as i64), postings)?;
    // One statement for a movement's postings (two or four of them).
    match postings {
        [a, b] => {
            tx.prepare_cached("INSERT OR FAIL INTO postings (movement_id, account, asset, amount) VALUES (?1, ?2, ?3, ?4), (?1, ?5, ?6, ?7)")?
                .execute(params![id, a.account, a.asset, a.amount, b.account, b.asset, b.amount])?;
        }
        [a, b, c, d] => {
            tx.prepare_cached(
                "INSERT OR FAIL INTO postings (movement_id, account, asset, amount)
                 VALUES (?1, ?2, ?3, ?4), (?1, ?5, ?6, ?7), (?1, ?8, ?9, ?10), (?1, ?11, ?12, ?13)",
            )?
            .execute(params![
                id, a.account, a.asset, a.amount, b.account, b.asset, b.amount, c.account, c.asset,
                c.amount, d.account, d.asset, d.amount
            ])?;
        }
        _ => {
            let mut insert = tx.prepare_cached("INSERT INTO postings (movement_id, account, asset, amount) VALUES (?1, ?2, ?3, ?4)")?;
            for p in postings {
                insert.execute(params![id, p.account, p.asset, p.amount])?;
            }
        }
    }
    Ok(())
}
