//! Ingesting credit lots from a registry export (CSV, one lot a row):
//! each lot is checked against its instrument's eligibility predicate;
//! eligible lots become credit deposits of their owner (with their serial
//! range kept, so settlement can name the credits), the others are refused
//! with `LOT_NOT_ELIGIBLE` and the first attribute that fails.

use std::path::Path;

use rust_decimal::Decimal;

use crate::config::{InstrumentConfig, VenueConfig};
use crate::values::{parse_decimal, LoadError};

/// The columns of a registry export.
pub const COLUMNS: [&str; 13] = [
    "registry",
    "project_id",
    "serial_start",
    "serial_end",
    "quantity",
    "vintage",
    "methodology",
    "category",
    "nature",
    "ccp",
    "corresponding_adjustment",
    "corsia",
    "owner_account",
];

/// One credit lot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreditLot {
    /// Registry name.
    pub registry: String,
    /// Project id at the registry.
    pub project_id: String,
    /// First serial number of the block.
    pub serial_start: String,
    /// Last serial number of the block.
    pub serial_end: String,
    /// Tonnes.
    pub quantity: u64,
    /// Vintage year.
    pub vintage: i64,
    /// Methodology.
    pub methodology: String,
    /// `removal` or `avoidance`.
    pub category: String,
    /// `nature-based` or `technological`.
    pub nature: String,
    /// Carries the ICVCM CCP label.
    pub ccp: bool,
    /// Host-country corresponding adjustment applied.
    pub corresponding_adjustment: bool,
    /// CORSIA eligible.
    pub corsia: bool,
    /// The account it is deposited to.
    pub owner_account: u64,
}

/// What happened to one lot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LotDecision {
    /// Line in the export.
    pub line: usize,
    /// The lot.
    pub lot: CreditLot,
    /// The instrument it was offered to.
    pub instrument: String,
    /// `None`: deposited; `Some(attribute)`: refused, this attribute fails the predicate.
    pub failing: Option<&'static str>,
}

/// The first attribute of `lot` that `instrument`'s predicate refuses.
#[must_use]
pub fn failing_attribute(lot: &CreditLot, instrument: &InstrumentConfig) -> Option<&'static str> {
    let e = &instrument.eligibility;
    if e.ccp.is_some_and(|ccp| ccp != lot.ccp) {
        return Some("ccp");
    }
    if e.categories
        .as_ref()
        .is_some_and(|c| !c.contains(&lot.category))
    {
        return Some("category");
    }
    if e.nature.as_ref().is_some_and(|n| !n.contains(&lot.nature)) {
        return Some("nature");
    }
    if e.min_vintage.is_some_and(|v| lot.vintage < v) {
        return Some("vintage");
    }
    None
}

fn boolean(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Some(true),
        "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

/// Reads one export and decides every lot for `instrument`.
pub fn ingest(
    path: &Path,
    instrument: &InstrumentConfig,
    venue: &VenueConfig,
) -> Result<Vec<LotDecision>, LoadError> {
    let error =
        |line: usize, field: &str, message: String| crate::csv::error(path, line, field, message);
    let rows = crate::csv::read(path, &COLUMNS)?;
    let accounts: std::collections::HashSet<u64> = venue.accounts.iter().map(|a| a.id).collect();
    let mut decisions = Vec::with_capacity(rows.len());
    for row in rows {
        let field = |i: usize| row.field(i).to_string();
        let flag = |i: usize| {
            boolean(row.field(i)).ok_or_else(|| {
                error(
                    row.line,
                    COLUMNS[i],
                    format!("'{}' is not true or false", row.field(i)),
                )
            })
        };
        let quantity = parse_decimal(row.field(4))
            .ok()
            .filter(|q| *q > Decimal::ZERO && q.fract().is_zero())
            .and_then(|q| u64::try_from(q.mantissa() / 10i128.pow(q.scale())).ok())
            .ok_or_else(|| {
                error(
                    row.line,
                    "quantity",
                    format!(
                        "'{}' is not a positive whole number of tonnes",
                        row.field(4)
                    ),
                )
            })?;
        let vintage = row.field(5).parse().map_err(|_| {
            error(
                row.line,
                "vintage",
                format!("'{}' is not a year", row.field(5)),
            )
        })?;
        let owner_account: u64 = row.field(12).parse().map_err(|_| {
            error(
                row.line,
                "owner_account",
                format!("'{}' is not an account id", row.field(12)),
            )
        })?;
        if !accounts.contains(&owner_account) {
            return Err(error(
                row.line,
                "owner_account",
                format!(
                    "account {owner_account} is not defined in {}",
                    venue.path.display()
                ),
            ));
        }
        let lot = CreditLot {
            registry: field(0),
            project_id: field(1),
            serial_start: field(2),
            serial_end: field(3),
            quantity,
            vintage,
            methodology: field(6),
            category: field(7),
            nature: field(8),
            ccp: flag(9)?,
            corresponding_adjustment: flag(10)?,
            corsia: flag(11)?,
            owner_account,
        };
        decisions.push(LotDecision {
            line: row.line,
            failing: failing_attribute(&lot, instrument),
            lot,
            instrument: instrument.symbol.clone(),
        });
    }
    Ok(decisions)
}

/// Every `[[lots]]` export of the venue, in file order.
pub fn ingest_all(venue: &VenueConfig) -> Result<Vec<LotDecision>, LoadError> {
    let mut all = Vec::new();
    for lots in &venue.lots {
        let instrument = venue
            .instruments
            .iter()
            .find(|i| i.symbol == lots.instrument)
            .expect("config checks lots instruments");
        all.extend(ingest(&lots.file, instrument, venue)?);
    }
    Ok(all)
}
