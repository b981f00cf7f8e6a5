//! The versioned compliance rules file (COMPLIANCE.md, "Rules file"): every
//! number the pre-router uses comes from here, never from code.

use std::path::Path;

use rust_decimal::Decimal;
use tonnex_protocol::Pathway;

use crate::values::{Ctx, LoadError, TomlRecord};

/// What happens to a buy below its pathway's floor with no valid attestation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloorPolicy {
    /// Hold it until the buyer submits an attestation (or it expires).
    Attest,
    /// Reject it (`PRICE_BELOW_FLOOR`).
    Reject,
}

/// One OER pathway's rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathwayRule {
    /// Internal carbon price floor, USD per tonne.
    pub floor_usd: Decimal,
    /// CCP sub-ledgers a buyer on this pathway may buy from.
    pub sub_ledgers: Vec<String>,
    /// Coverage (claimed ÷ ongoing emissions, %) at which the tier counts as met.
    pub coverage_threshold_pct: Decimal,
}

/// The rules file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    /// The standard the rules implement.
    pub standard: String,
    /// Its version.
    pub version: String,
    /// Below-floor handling.
    pub floor_policy: FloorPolicy,
    /// Engaged, Recognised, Leadership, in that order.
    pub pathways: [PathwayRule; 3],
}

impl Rules {
    /// The rule of a compliance pathway (not `Pathway::None`).
    #[must_use]
    pub fn pathway(&self, pathway: Pathway) -> &PathwayRule {
        match pathway {
            Pathway::Engaged => &self.pathways[0],
            Pathway::Recognised => &self.pathways[1],
            Pathway::Leadership => &self.pathways[2],
            Pathway::None => panic!("no rule for pathway none"),
        }
    }

    /// Reads and checks a rules file.
    pub fn load(path: &Path) -> Result<Rules, LoadError> {
        let top = Ctx {
            file: path,
            record: String::new(),
        };
        let table = crate::values::read_toml(path)?;
        let root = TomlRecord {
            table: &table,
            ctx: &top,
        };
        let floor_policy = match root
            .opt_string("floor_policy")?
            .as_deref()
            .unwrap_or("attest")
        {
            "attest" => FloorPolicy::Attest,
            "reject" => FloorPolicy::Reject,
            other => {
                return Err(top.error("floor_policy", format!("'{other}' is not attest or reject")))
            }
        };
        let pathway_table = root.table("pathway")?;
        let pathway = |name: &str| -> Result<PathwayRule, LoadError> {
            let ctx = Ctx {
                file: path,
                record: format!("pathway.{name}"),
            };
            let table = match pathway_table.get(name) {
                Some(toml::Value::Table(t)) => t,
                Some(other) => {
                    return Err(
                        ctx.error("", format!("expected a table, found {}", other.type_str()))
                    )
                }
                None => return Err(ctx.error("", "missing: every pathway needs its rule")),
            };
            let record = TomlRecord { table, ctx: &ctx };
            let rule = PathwayRule {
                floor_usd: record.decimal("floor_usd")?,
                sub_ledgers: record.strings("sub_ledgers")?,
                coverage_threshold_pct: record.decimal("coverage_threshold_pct")?,
            };
            if rule.floor_usd < Decimal::ZERO {
                return Err(ctx.error("floor_usd", "must not be negative"));
            }
            if rule.coverage_threshold_pct < Decimal::ZERO
                || rule.coverage_threshold_pct > Decimal::ONE_HUNDRED
            {
                return Err(ctx.error("coverage_threshold_pct", "must be between 0 and 100"));
            }
            Ok(rule)
        };
        Ok(Rules {
            standard: root.opt_string("standard")?.unwrap_or_default(),
            version: root.opt_string("version")?.unwrap_or_default(),
            floor_policy,
            pathways: [
                pathway("engaged")?,
                pathway("recognised")?,
                pathway("leadership")?,
            ],
        })
    }
}
