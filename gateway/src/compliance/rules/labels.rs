//! The CCP label register (`[compliance] ccp_labels`, CSV): for each
//! methodology, the days its credits carry the ICVCM Core Carbon
//! Principles label. The label is conditional and can be revoked, so a
//! `ccp_label = "current"` predicate reads this register on the day of
//! each decision, never a flag fixed when a lot was ingested.
//!
//! ```text
//! methodology,labelled_from,revoked_from
//! VM0047,2024-06-01,
//! AR-ACM0003,2024-06-01,2026-06-15
//! ```
//! A methodology may have several rows (labelled again after a
//! revocation); one the register does not list has no label.

use std::collections::BTreeMap;
use std::path::Path;

use super::date::Date;
use crate::values::LoadError;

/// The header a register starts with.
pub const HEADER: &str = "methodology,labelled_from,revoked_from";

/// Methodology → the periods its label is in force (`[from, until)`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CcpLabels {
    periods: BTreeMap<String, Vec<(Date, Option<Date>)>>,
    /// Whether a register was configured at all.
    configured: bool,
}

impl CcpLabels {
    /// Whether credits of `methodology` carry the label on `date`.
    #[must_use]
    pub fn current(&self, methodology: &str, date: Date) -> bool {
        self.periods.get(methodology).is_some_and(|periods| {
            periods
                .iter()
                .any(|&(from, until)| from <= date && until.is_none_or(|u| date < u))
        })
    }

    /// Whether the venue names a register.
    #[must_use]
    pub fn configured(&self) -> bool {
        self.configured
    }

    /// Reads a register, naming the line and field of anything wrong.
    pub fn load(path: &Path) -> Result<CcpLabels, LoadError> {
        let error = |location: String, message: String| LoadError {
            file: path.to_path_buf(),
            location,
            message,
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| error(String::new(), e.to_string()))?;
        let mut lines = text.lines().enumerate();
        match lines.next() {
            Some((_, header)) if header.trim() == HEADER => {}
            _ => {
                return Err(error(
                    "line 1".into(),
                    format!("the header must be `{HEADER}`"),
                ))
            }
        }
        let mut labels = CcpLabels {
            periods: BTreeMap::new(),
            configured: true,
        };
        for (n, line) in lines {
            if line.trim().is_empty() {
                continue;
            }
            let at = |field: &str| format!("line {}.{field}", n + 1);
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let [methodology, from, until] = fields[..] else {
                return Err(error(
                    format!("line {}", n + 1),
                    format!("expected 3 fields, found {}", fields.len()),
                ));
            };
            if methodology.is_empty() {
                return Err(error(at("methodology"), "empty".into()));
            }
            let from = Date::parse(from).map_err(|m| error(at("labelled_from"), m))?;
            let until = if until.is_empty() {
                None
            } else {
                let until = Date::parse(until).map_err(|m| error(at("revoked_from"), m))?;
                if until <= from {
                    return Err(error(
                        at("revoked_from"),
                        format!("{until} is not after labelled_from ({from})"),
                    ));
                }
                Some(until)
            };
            labels
                .periods
                .entry(methodology.to_string())
                .or_default()
                .push((from, until));
        }
        Ok(labels)
    }
}
