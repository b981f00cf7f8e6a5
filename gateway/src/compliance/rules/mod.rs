//! The versioned compliance rules file (COMPLIANCE.md, "Rules file"): every
//! number the pre-router uses comes from here, never from code. A rules
//! file may also date itself (`effective_from`), choose how the floor is
//! applied (`floor_mode`, `below_floor_asks`), say how each pathway is
//! reached (`route`) and require named predicates (`[predicate.NAME]`,
//! see [`predicate`]). A file without those keys means exactly what it
//! meant before them.

pub mod date;
pub mod labels;
pub mod predicate;
mod versions;

use std::path::Path;

use rust_decimal::Decimal;
use tonnex_protocol::Pathway;

pub use self::date::Date;
pub use self::labels::CcpLabels;
pub use self::predicate::{Predicate, Test};
pub use self::versions::RuleVersions;
use crate::values::{Ctx, LoadError, TomlRecord};

/// What happens to a buy below its pathway's floor with no valid attestation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloorPolicy {
    /// Hold it until the buyer submits an attestation (or it expires).
    Attest,
    /// Reject it (`PRICE_BELOW_FLOOR`).
    Reject,
}

/// How the pathway's price applies to purchases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloorMode {
    /// Every purchase at or above the floor, or attested (today's rule).
    PerTrade,
    /// The floor × tonnes bought is a budget over the reporting year; each
    /// purchase spends it at its real price; an attestation of
    /// supplementary pricing covers the gap, not each trade.
    Budget,
}

impl FloorMode {
    /// The name in rules files and decisions.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            FloorMode::PerTrade => "per_trade",
            FloorMode::Budget => "budget",
        }
    }
}

/// How a buyer reaches its pathway (SBTi CNZS V2: Recognised by retiring
/// credits of at least the threshold, or by applying an internal carbon
/// price of at least the pathway's price).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// By pricing: the declared internal price must meet `internal_price_usd`
    /// (`INTERNAL_PRICE_BELOW_FLOOR` otherwise) and the floor applies.
    Pricing,
    /// By credits: no internal price is required and no floor applies.
    Credit,
    /// Pricing when the declared price meets `internal_price_usd`, else credits.
    Either,
}

impl Route {
    /// The name in rules files and decisions.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Pricing => "pricing",
            Route::Credit => "credit",
            Route::Either => "either",
        }
    }
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
    /// How the pathway is reached (default `pricing`).
    pub route: Route,
    /// The declared internal price the pricing route needs (default `floor_usd`).
    pub internal_price_usd: Decimal,
    /// Predicates every purchase must meet, in the order they are checked
    /// (indexes into [`Rules::predicates`]).
    pub require: Vec<usize>,
}

/// The rules file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    /// The standard the rules implement.
    pub standard: String,
    /// Its version.
    pub version: String,
    /// The first day it is in force; `None` for an undated file (in force
    /// whenever it is the venue's only rules file).
    pub effective_from: Option<Date>,
    /// SHA-256 of the file's bytes, lowercase hex.
    pub sha256: String,
    /// Below-floor handling.
    pub floor_policy: FloorPolicy,
    /// Per trade or budget.
    pub floor_mode: FloorMode,
    /// Per-trade mode: whether an unattested buy whose limit meets the
    /// floor skips asks below the floor (`true`) or is refused whole when
    /// it would take one (`false`, `FLOOR_NOT_MET`, today's rule).
    pub skip_below_floor: bool,
    /// Engaged, Recognised, Leadership, in that order.
    pub pathways: [PathwayRule; 3],
    /// Every `[predicate.NAME]`, in name order.
    pub predicates: Vec<Predicate>,
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

    /// Whether the file dates itself: its decisions then name the route,
    /// the predicate, the floor mode and the rules version and SHA-256 (an
    /// undated file's decisions keep COMPLIANCE.md's fields exactly).
    #[must_use]
    pub fn dated(&self) -> bool {
        self.effective_from.is_some()
    }

    /// Reads and checks a rules file.
    pub fn load(path: &Path) -> Result<Rules, LoadError> {
        use sha2::{Digest, Sha256};
        let top = Ctx {
            file: path,
            record: String::new(),
        };
        let bytes = std::fs::read(path).map_err(|e| top.error("", e.to_string()))?;
        let sha256 = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let table = crate::values::read_toml(path)?;
        let root = TomlRecord {
            table: &table,
            ctx: &top,
        };
        for key in table.keys() {
            if !TOP_KEYS.contains(&key.as_str()) {
                return Err(top.error(key, format!("not a rules field ({})", TOP_KEYS.join(", "))));
            }
        }
        let predicates =
            predicate::load(table.get("predicate").and_then(toml::Value::as_table), &top)?;
        if table.get("predicate").is_some_and(|v| !v.is_table()) {
            return Err(top.error("predicate", "expected tables [predicate.NAME]"));
        }
        let floor_mode = match root.opt_string("floor_mode")?.as_deref() {
            None | Some("per_trade") => FloorMode::PerTrade,
            Some("budget") => FloorMode::Budget,
            Some(other) => {
                return Err(top.error(
                    "floor_mode",
                    format!("'{other}' is not per_trade or budget"),
                ))
            }
        };
        let skip_below_floor = match root.opt_string("below_floor_asks")?.as_deref() {
            None | Some("refuse") => false,
            Some("skip") => true,
            Some(other) => {
                return Err(top.error(
                    "below_floor_asks",
                    format!("'{other}' is not refuse or skip"),
                ))
            }
        };
        let effective_from = root
            .opt_string("effective_from")?
            .map(|text| Date::parse(&text).map_err(|m| top.error("effective_from", m)))
            .transpose()?;
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
            for key in table.keys() {
                if !PATHWAY_KEYS.contains(&key.as_str()) {
                    return Err(ctx.error(
                        key,
                        format!("not a pathway field ({})", PATHWAY_KEYS.join(", ")),
                    ));
                }
            }
            let floor_usd = record.decimal("floor_usd")?;
            let route = match record.opt_string("route")?.as_deref() {
                None | Some("pricing") => Route::Pricing,
                Some("credit") => Route::Credit,
                Some("either") => Route::Either,
                Some(other) => {
                    return Err(ctx.error(
                        "route",
                        format!("'{other}' is not credit, pricing or either"),
                    ))
                }
            };
            let require = if table.contains_key("require") {
                record
                    .strings("require")?
                    .iter()
                    .map(|name| {
                        predicates
                            .iter()
                            .position(|p| p.name == *name)
                            .ok_or_else(|| {
                                ctx.error("require", format!("no predicate named '{name}'"))
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?
            } else {
                Vec::new()
            };
            let rule = PathwayRule {
                floor_usd,
                sub_ledgers: record.strings("sub_ledgers")?,
                coverage_threshold_pct: record.decimal("coverage_threshold_pct")?,
                route,
                internal_price_usd: if table.contains_key("internal_price_usd") {
                    record.decimal("internal_price_usd")?
                } else {
                    floor_usd
                },
                require,
            };
            if rule.internal_price_usd < Decimal::ZERO {
                return Err(ctx.error("internal_price_usd", "must not be negative"));
            }
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
        let pathways = [
            pathway("engaged")?,
            pathway("recognised")?,
            pathway("leadership")?,
        ];
        for name in pathway_table.keys() {
            if !["engaged", "recognised", "leadership"].contains(&name.as_str()) {
                return Err(top.error(
                    &format!("pathway.{name}"),
                    "not a pathway (engaged, recognised, leadership)",
                ));
            }
        }
        let rules = Rules {
            standard: root.opt_string("standard")?.unwrap_or_default(),
            version: root.opt_string("version")?.unwrap_or_default(),
            effective_from,
            sha256,
            floor_policy,
            floor_mode,
            skip_below_floor,
            pathways,
            predicates,
        };
        let uses_new_keys = rules.floor_mode != FloorMode::PerTrade
            || rules.skip_below_floor
            || !rules.predicates.is_empty()
            || rules
                .pathways
                .iter()
                .any(|p| p.route != Route::Pricing || !p.require.is_empty());
        if uses_new_keys && rules.effective_from.is_none() {
            return Err(top.error(
                "effective_from",
                "missing: a file using routes, predicates or floor modes must say from which day it is in force",
            ));
        }
        Ok(rules)
    }
}

/// The keys a rules file may have at its top level.
const TOP_KEYS: [&str; 8] = [
    "standard",
    "version",
    "effective_from",
    "floor_policy",
    "floor_mode",
    "below_floor_asks",
    "pathway",
    "predicate",
];

/// The keys of a `[pathway.NAME]` table.
const PATHWAY_KEYS: [&str; 6] = [
    "floor_usd",
    "sub_ledgers",
    "coverage_threshold_pct",
    "route",
    "internal_price_usd",
    "require",
];
