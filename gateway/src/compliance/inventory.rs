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

/// One checked row of an export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InventoryRow {
    /// Line number in the export.
    pub line: usize,
    /// The buyer.
    pub account: u64,
    /// The reporting year.
    pub reporting_year: i64,
    /// 1, 2 or 3.
    pub scope: u8,
    /// Scope 3 category 1-15; 0 for scopes 1 and 2.
    pub category: u8,
    /// tCO2e, non-negative, as given.
    pub tonnes: Decimal,
}

/// Checks an export's text (`source` names it in errors): the header,
/// whole numbers, scopes 1-3, Scope 3 categories 1-15 (none for scopes 1
/// and 2), non-negative tonnes; every error names the line and the field.
pub fn parse_rows(text: &str, source: &Path) -> Result<Vec<InventoryRow>, LoadError> {
    let error =
        |line: usize, field: &str, message: String| crate::csv::error(source, line, field, message);
    let rows =
        crate::csv::parse(text, &COLUMNS).map_err(|(line, message)| error(line, "", message))?;
    let mut checked = Vec::with_capacity(rows.len());
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
        let reporting_year = int(1)?;
        let scope = int(2)?;
        let tonnes = parse_decimal(row.field(4)).map_err(|m| error(row.line, "tonnes", m))?;
        if tonnes < Decimal::ZERO {
            return Err(error(row.line, "tonnes", "must not be negative".into()));
        }
        let category = match (scope, row.field(3)) {
            (1 | 2, "") => 0,
            (1 | 2, other) => {
                return Err(error(
                    row.line,
                    "category",
                    format!("scope {scope} has no categories, found '{other}'"),
                ))
            }
            (3, text) => text
                .parse()
                .ok()
                .filter(|c| (1..=15).contains(c))
                .ok_or_else(|| {
                    error(
                        row.line,
                        "category",
                        format!("scope 3 needs a category 1-15, found '{text}'"),
                    )
                })?,
            _ => {
                return Err(error(
                    row.line,
                    "scope",
                    format!("scope must be 1, 2 or 3, found {scope}"),
                ))
            }
        };
        checked.push(InventoryRow {
            line: row.line,
            account,
            reporting_year,
            scope: scope as u8,
            category,
            tonnes,
        });
    }
    Ok(checked)
}

/// Sums rows into inventories: (account, reporting year) → inventory
/// (rows for the same scope and category add up, as exports list
/// facilities separately).
#[must_use]
pub fn sum_rows(rows: &[InventoryRow]) -> HashMap<(u64, i64), Inventory> {
    let mut inventories: HashMap<(u64, i64), Inventory> = HashMap::new();
    for row in rows {
        let inventory = inventories
            .entry((row.account, row.reporting_year))
            .or_default();
        // parse_rows checked every scope and category: nothing is refused.
        let _ = inventory.add(row.scope, row.category, row.tonnes);
    }
    inventories
}

/// Reads an export: (account, reporting year) → inventory.
pub fn load(path: &Path) -> Result<HashMap<(u64, i64), Inventory>, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| LoadError {
        file: path.to_path_buf(),
        location: String::new(),
        message: format!("cannot read: {e}"),
    })?;
    Ok(sum_rows(&parse_rows(&text, path)?))
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
