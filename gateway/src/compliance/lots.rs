//! Ingesting credit lots from a registry export (CSV, one lot a row).
//! A lot is refused, and the others go on:
//! - `LOT_SERIALS_INVALID` when its serials do not form one block of exactly
//!   `quantity` serials (`prefix` + trailing number, end at or after start);
//! - `LOT_SERIALS_OVERLAP` when its block overlaps any block deposited
//!   before: earlier in the same file, in another file, or in an earlier
//!   run (the journal records every deposited block), naming that block;
//! - `LOT_NOT_ELIGIBLE` with the first attribute its instrument's
//!   eligibility predicate refuses.
//!
//! Accepted lots become credit deposits of their owner, their block
//! journaled first, so settlement can name the credits.

use std::path::Path;

use rust_decimal::Decimal;
use tonnex_engine::venue::{SerialBlock, SerialBlocks, SerialRecord};
use tonnex_protocol::RejectReason;

use crate::config::{InstrumentConfig, VenueConfig};
use crate::values::{parse_decimal, LoadError};

/// The columns of a registry export (`tonnex_protocol::stream::LOT_COLUMNS`).
pub use tonnex_protocol::stream::LOT_COLUMNS as COLUMNS;

/// Columns an export may add after [`COLUMNS`]: attributes not every
/// registry states. A lot without one fails any eligibility that constrains it.
pub const OPTIONAL_COLUMNS: [&str; 2] = ["issuance", "durability"];

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
    /// `ex-post` or `ex-ante`, when the export declares it (optional column).
    pub issuance: Option<String>,
    /// Durability class, when the export declares it (optional column).
    pub durability: Option<String>,
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
    /// Its serial block, when the serials form one.
    pub block: Option<SerialBlock>,
    /// Where it comes from: `FILE line N`.
    pub source: String,
    /// `None`: deposited; else why it is refused.
    pub refusal: Option<LotRefusal>,
}

/// Why a lot is not deposited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LotRefusal {
    /// The serials are not one block of `quantity` serials.
    Serials(String),
    /// The block overlaps one deposited before.
    Overlap(String),
    /// This attribute fails the instrument's eligibility predicate.
    NotEligible(&'static str),
}

impl LotRefusal {
    /// The reason code.
    #[must_use]
    pub fn reason(&self) -> RejectReason {
        match self {
            LotRefusal::Serials(_) => RejectReason::LotSerialsInvalid,
            LotRefusal::Overlap(_) => RejectReason::LotSerialsOverlap,
            LotRefusal::NotEligible(_) => RejectReason::LotNotEligible,
        }
    }

    /// The failing attribute, for `LOT_NOT_ELIGIBLE`.
    #[must_use]
    pub fn attribute(&self) -> Option<&'static str> {
        match self {
            LotRefusal::NotEligible(attribute) => Some(attribute),
            _ => None,
        }
    }

    /// What is wrong, in words.
    #[must_use]
    pub fn text(&self) -> String {
        match self {
            LotRefusal::Serials(text) | LotRefusal::Overlap(text) => text.clone(),
            LotRefusal::NotEligible(attribute) => {
                format!("{attribute} fails the instrument's eligibility predicate")
            }
        }
    }
}

/// Splits a serial into its prefix and trailing number.
fn split_serial(serial: &str) -> Option<(&str, u64)> {
    let digits = serial.len() - serial.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 {
        return None;
    }
    let (prefix, number) = serial.split_at(serial.len() - digits);
    Some((prefix, number.parse().ok()?))
}

/// The block `lot`'s serials form, or why they form none.
pub fn serial_block(lot: &CreditLot) -> Result<SerialBlock, String> {
    fn parse<'a>(serial: &'a str, what: &str) -> Result<(&'a str, u64), String> {
        split_serial(serial).ok_or_else(|| {
            format!("{what} '{serial}' does not end in a serial number (at most 19 digits)")
        })
    }
    let (prefix, first) = parse(&lot.serial_start, "serial_start")?;
    let (end_prefix, last) = parse(&lot.serial_end, "serial_end")?;
    if prefix != end_prefix {
        return Err(format!(
            "serial_start '{}' and serial_end '{}' are not in one series ('{prefix}' vs '{end_prefix}')",
            lot.serial_start, lot.serial_end
        ));
    }
    if last < first {
        return Err(format!(
            "serial_end '{}' comes before serial_start '{}'",
            lot.serial_end, lot.serial_start
        ));
    }
    let block = SerialBlock {
        registry: lot.registry.clone(),
        prefix: prefix.to_string(),
        first,
        last,
        width: u8::try_from(lot.serial_end.len() - end_prefix.len()).unwrap_or(u8::MAX),
    };
    if block.count() != lot.quantity {
        return Err(format!(
            "quantity {} but {}..{} holds {} serials",
            lot.quantity,
            lot.serial_start,
            lot.serial_end,
            block.count()
        ));
    }
    Ok(block)
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
    if e.methodologies
        .as_ref()
        .is_some_and(|m| !m.contains(&lot.methodology))
    {
        return Some("methodology");
    }
    if e.corresponding_adjustment
        .is_some_and(|want| want != lot.corresponding_adjustment)
    {
        return Some("corresponding_adjustment");
    }
    if e.corsia.is_some_and(|want| want != lot.corsia) {
        return Some("corsia");
    }
    // A lot that does not declare a constrained attribute fails it.
    let declared = |allowed: &Option<Vec<String>>, value: &Option<String>| {
        allowed
            .as_ref()
            .is_none_or(|a| value.as_ref().is_some_and(|v| a.contains(v)))
    };
    if !declared(&e.issuance, &lot.issuance) {
        return Some("issuance");
    }
    if !declared(&e.durability, &lot.durability) {
        return Some("durability");
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

/// Reads one export and decides every lot for `instrument`; `deposited`
/// holds every block deposited before (the journal's and this run's
/// earlier lots) and gains each lot accepted here.
pub fn ingest(
    path: &Path,
    instrument: &InstrumentConfig,
    venue: &VenueConfig,
    deposited: &mut SerialBlocks,
) -> Result<Vec<LotDecision>, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| LoadError {
        file: path.to_path_buf(),
        location: String::new(),
        message: format!("cannot read: {e}"),
    })?;
    // Sources are named relative to the venue file's folder: the journal
    // records them, and the same venue started from elsewhere is the same.
    let folder = venue.path.parent().unwrap_or(Path::new(""));
    let name = path.strip_prefix(folder).unwrap_or(path);
    ingest_text(name, &text, instrument, venue, deposited)
}

/// [`ingest`] of an export's text, `name` naming it in errors and sources
/// (an admin deposit sends the file's content, not its path).
pub fn ingest_text(
    name: &Path,
    text: &str,
    instrument: &InstrumentConfig,
    venue: &VenueConfig,
    deposited: &mut SerialBlocks,
) -> Result<Vec<LotDecision>, LoadError> {
    let path = name;
    let error =
        |line: usize, field: &str, message: String| crate::csv::error(path, line, field, message);
    let (rows, optional) = crate::csv::parse_with_optional(text, &COLUMNS, &OPTIONAL_COLUMNS)
        .map_err(|(line, message)| crate::csv::error(path, line, "", message))?;
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
            issuance: optional[0]
                .map(|i| row.field(i).to_string())
                .filter(|v| !v.is_empty()),
            durability: optional[1]
                .map(|i| row.field(i).to_string())
                .filter(|v| !v.is_empty()),
            owner_account,
        };
        if let Some(issuance) = &lot.issuance {
            if issuance != "ex-post" && issuance != "ex-ante" {
                return Err(error(
                    row.line,
                    "issuance",
                    format!("'{issuance}' is not ex-post or ex-ante"),
                ));
            }
        }
        decisions.push(decide(lot, row.line, name, instrument, deposited));
    }
    Ok(decisions)
}

/// One lot's decision; an accepted lot's block joins `deposited`.
fn decide(
    lot: CreditLot,
    line: usize,
    path: &Path,
    instrument: &InstrumentConfig,
    deposited: &mut SerialBlocks,
) -> LotDecision {
    let source = format!("{} line {line}", path.display());
    let block = serial_block(&lot);
    let refusal = match &block {
        Err(text) => Some(LotRefusal::Serials(text.clone())),
        Ok(block) => match deposited.overlapping(block) {
            Some(hit) => Some(LotRefusal::Overlap(format!(
                "serials {block} overlap {} deposited from {}{}",
                hit.block,
                hit.source,
                if hit.seq > 0 {
                    format!(" (journal sequence {})", hit.seq)
                } else {
                    String::new()
                }
            ))),
            None => failing_attribute(&lot, instrument).map(LotRefusal::NotEligible),
        },
    };
    let block = block.ok();
    if let (None, Some(block)) = (&refusal, &block) {
        deposited
            .insert(SerialRecord {
                seq: 0,
                block: block.clone(),
                source: source.clone(),
            })
            .expect("checked for overlaps above");
    }
    LotDecision {
        line,
        lot,
        instrument: instrument.symbol.clone(),
        block,
        source,
        refusal,
    }
}

/// Every `[[lots]]` export of the venue, in file order, against the blocks
/// `journaled` already holds (an earlier run's deposits).
pub fn ingest_all(
    venue: &VenueConfig,
    journaled: &SerialBlocks,
) -> Result<Vec<LotDecision>, LoadError> {
    let mut deposited = journaled.clone();
    let mut all = Vec::new();
    for lots in &venue.lots {
        let instrument = venue
            .instruments
            .iter()
            .find(|i| i.symbol == lots.instrument)
            .expect("config checks lots instruments");
        all.extend(ingest(&lots.file, instrument, venue, &mut deposited)?);
    }
    Ok(all)
}
