//! The venue file's fill-stream subscribers: `[[fill_subscriber]] name, key,
//! accounts`. The stream serves only them (none configured: no one), and a
//! subscriber with `accounts` sees only records that concern those accounts
//! (a member's drop copy).

use std::collections::HashSet;
use std::path::Path;

use super::{array_of_tables, AccountConfig};
use crate::values::{Ctx, LoadError, TomlRecord};

/// One `[[fill_subscriber]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FillSubscriber {
    /// Its name, sent in the subscription.
    pub name: String,
    /// Its key, sent in the subscription.
    pub key: String,
    /// Only records about these accounts; `None`: every record.
    pub accounts: Option<Vec<u64>>,
}

/// Reads every `[[fill_subscriber]]`.
pub(super) fn read_fill_subscribers(
    table: &toml::Table,
    path: &Path,
    accounts: &[AccountConfig],
) -> Result<Vec<FillSubscriber>, LoadError> {
    let known: HashSet<u64> = accounts.iter().map(|a| a.id).collect();
    let mut names = HashSet::new();
    let mut subscribers = Vec::new();
    for (i, item) in array_of_tables(table, "fill_subscriber", path)?
        .into_iter()
        .enumerate()
    {
        let ctx = Ctx {
            file: path,
            record: format!("fill_subscriber[{}]", i + 1),
        };
        let record = TomlRecord {
            table: item,
            ctx: &ctx,
        };
        let (name, key) = super::admin::name_and_key(&record, &ctx, &mut names)?;
        let accounts = match item.get("accounts") {
            None => None,
            Some(toml::Value::Array(values)) => {
                let mut ids = Vec::with_capacity(values.len());
                for value in values {
                    let id = value
                        .as_integer()
                        .and_then(|v| u64::try_from(v).ok())
                        .filter(|id| known.contains(id))
                        .ok_or_else(|| {
                            ctx.error(
                                "accounts",
                                format!("{value:?} is not an account of this venue"),
                            )
                        })?;
                    ids.push(id);
                }
                Some(ids)
            }
            Some(other) => {
                return Err(ctx.error(
                    "accounts",
                    format!("expected a list of account ids, found {}", other.type_str()),
                ))
            }
        };
        subscribers.push(FillSubscriber {
            name,
            key,
            accounts,
        });
    }
    Ok(subscribers)
}
