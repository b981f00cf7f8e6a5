//! Importing a GHG inventory export: CSV with the columns
//! `account,reporting_year,scope,category,tonnes` (one row per scope, or per
//! scope 3 category; rows for the same account, year, scope and category are
//! summed, as exports list facilities separately).

use std::collections::HashMap;
use std::path::Path;

use rust_decimal::Decimal;

use super::profiles::{BuyerProfile, Inventory};
use crate::values::{parse_decimal, LoadError};

/// The columns of an inventory export.
pub const COLUMNS: [&str; 5] = ["account", "reporting_year", "scope", "category", "tonnes"];

/// Reads an export: (account, reporting year) → inventory.
pub fn load(path: &Path) -> Result<HashMap<(u64, i64), Inventory>, LoadError> {
    let error =
        |line: usize, field: &str, message: String| crate::csv::error(path, line, field, message);
    let rows = crate::csv::read(path, &COLUMNS)?;
    let mut inventories: HashMap<(u64, i64), Inventory> = HashMap::new();
    for row in rows {
        let int = |i: usize| -> Result<i64, LoadError> {
            row.field(i).parse().map_err(|_| {
                error(
                    row.line,
                    COLUMNS[i],
                    format!("'{}' is not an integer", row.field(i)),
                )
            })
        };
        let account = u64::try_from(int(0)?)
            .map_err(|_| error(row.line, "account", "must not be negative".into()))?;
        let year = int(1)?;
        let scope = int(2)?;
        let tonnes = parse_decimal(row.field(4)).map_err(|m| error(row.line, "tonnes", m))?;
        if tonnes < Decimal::ZERO {
            return Err(error(row.line, "tonnes", "must not be negative".into()));
        }
        let inventory = inventories.entry((account, year)).or_default();
        match (scope, row.field(3)) {
            (1, "") => inventory.scope1 += tonnes,
            (2, "") => inventory.scope2 += tonnes,
            (1 | 2, other) => {
                return Err(error(
                    row.line,
                    "category",
                    format!("scope {scope} has no categories, found '{other}'"),
                ))
            }
            (3, text) => {
                let category: usize = text
                    .parse()
                    .ok()
                    .filter(|c| (1..=15).contains(c))
                    .ok_or_else(|| {
                        error(
                            row.line,
                            "category",
                            format!("scope 3 needs a category 1-15, found '{text}'"),
                        )
                    })?;
                inventory.scope3[category] += tonnes;
            }
            _ => {
                return Err(error(
                    row.line,
                    "scope",
                    format!("scope must be 1, 2 or 3, found {scope}"),
                ))
            }
        }
    }
    Ok(inventories)
}

/// Replaces each profile's inventory with the export's figures for the
/// profile's reporting year. Rows for other years are history and are not
/// used; rows for an account without a profile are an error.
pub fn apply(path: &Path, profiles: &mut HashMap<u64, BuyerProfile>) -> Result<(), LoadError> {
    let inventories = load(path)?;
    let mut keys: Vec<&(u64, i64)> = inventories.keys().collect();
    keys.sort();
    for &(account, year) in keys {
        let Some(profile) = profiles.get_mut(&account) else {
            return Err(LoadError {
                file: path.to_path_buf(),
                location: format!("account {account}"),
                message: "no buyer profile for this account".to_string(),
            });
        };
        if profile.reporting_year == year {
            profile.inventory = inventories[&(account, year)].clone();
        }
    }
    Ok(())
}
