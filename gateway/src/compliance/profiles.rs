//! Buyer profiles (COMPLIANCE.md, "Buyer profile"): a JSON array, one
//! object per buyer account, imported from the buyer's GHG accounting export.

use std::collections::HashMap;
use std::path::Path;

use rust_decimal::Decimal;
use tonnex_protocol::Pathway;

use crate::values::{json_decimal, json_type, Ctx, JsonRecord, LoadError};

/// An attestation of supplementary internal carbon pricing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attestation {
    /// Its identifier.
    pub id: String,
    /// The internal price it attests, USD per tonne.
    pub internal_price_usd: Decimal,
    /// The reporting year it covers.
    pub reporting_year: i64,
}

/// A buyer's emissions inventory, tCO2e.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inventory {
    /// Scope 1.
    pub scope1: Decimal,
    /// Scope 2.
    pub scope2: Decimal,
    /// Scope 3 by GHG Protocol category; index 1-15 (0 unused). A category
    /// missing from the export has 0.
    pub scope3: [Decimal; 16],
}

impl Inventory {
    /// Every scope's tonnes together.
    #[must_use]
    pub fn total(&self) -> Decimal {
        self.scope1 + self.scope2 + self.scope3.iter().sum::<Decimal>()
    }

    /// Adds `tonnes` to scope `scope` (1-3; for scope 3, category
    /// `category` 1-15, and 0 for scopes 1 and 2); what is wrong otherwise.
    pub fn add(&mut self, scope: u8, category: u8, tonnes: Decimal) -> Result<(), String> {
        match (scope, category) {
            (1, 0) => self.scope1 += tonnes,
            (2, 0) => self.scope2 += tonnes,
            (3, c @ 1..=15) => self.scope3[usize::from(c)] += tonnes,
            (1 | 2, c) => return Err(format!("scope {scope} has no categories, found {c}")),
            (3, c) => return Err(format!("scope 3 needs a category 1-15, found {c}")),
            (s, _) => return Err(format!("scope must be 1, 2 or 3, found {s}")),
        }
        Ok(())
    }
}

/// One buyer profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuyerProfile {
    /// The buyer's account.
    pub account: u64,
    /// Company name.
    pub company: String,
    /// SBTi company category (`A` or `B`).
    pub category: String,
    /// The OER pathway it follows.
    pub pathway: Pathway,
    /// Declared internal carbon price, USD per tonne.
    pub internal_carbon_price_usd: Decimal,
    /// The reporting year of the inventory.
    pub reporting_year: i64,
    /// Scope 1/2/3 inventory.
    pub inventory: Inventory,
    /// Ongoing Scope 1-3 emissions, tCO2e (coverage is claimed ÷ this).
    pub ongoing_emissions_tonnes: Decimal,
    /// Attestations, in file order.
    pub attestations: Vec<Attestation>,
}

/// Parses a pathway name.
pub fn parse_pathway(text: &str) -> Option<Pathway> {
    match text {
        "engaged" => Some(Pathway::Engaged),
        "recognised" => Some(Pathway::Recognised),
        "leadership" => Some(Pathway::Leadership),
        _ => None,
    }
}

/// Reads a profiles file: account → profile.
pub fn load(path: &Path) -> Result<HashMap<u64, BuyerProfile>, LoadError> {
    let top = Ctx {
        file: path,
        record: String::new(),
    };
    let text =
        std::fs::read_to_string(path).map_err(|e| top.error("", format!("cannot read: {e}")))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| LoadError {
        file: path.to_path_buf(),
        location: format!("line {} column {}", e.line(), e.column()),
        message: e.to_string(),
    })?;
    let serde_json::Value::Array(items) = value else {
        return Err(top.error(
            "",
            format!(
                "expected a JSON array of profiles, found {}",
                json_type(&value)
            ),
        ));
    };
    let mut profiles = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let mut ctx = Ctx {
            file: path,
            record: format!("record {}", i + 1),
        };
        let serde_json::Value::Object(object) = item else {
            return Err(ctx.error("", format!("expected an object, found {}", json_type(item))));
        };
        let account = JsonRecord { object, ctx: &ctx }.integer("account")?;
        let account =
            u64::try_from(account).map_err(|_| ctx.error("account", "must not be negative"))?;
        ctx.record = format!("record {} (account {account})", i + 1);
        let record = JsonRecord { object, ctx: &ctx };
        let pathway_name = record.string("pathway")?;
        let pathway = parse_pathway(&pathway_name).ok_or_else(|| {
            ctx.error(
                "pathway",
                format!("'{pathway_name}' is not engaged, recognised or leadership"),
            )
        })?;
        let ongoing = record.decimal("ongoing_emissions_tonnes")?;
        if ongoing <= Decimal::ZERO {
            return Err(ctx.error(
                "ongoing_emissions_tonnes",
                "must be positive: coverage is measured against it",
            ));
        }
        let inventory = match object.get("inventory") {
            None => Inventory::default(),
            Some(serde_json::Value::Object(inv)) => read_inventory(inv, &ctx)?,
            Some(other) => {
                return Err(ctx.error(
                    "inventory",
                    format!("expected an object, found {}", json_type(other)),
                ))
            }
        };
        let attestations = match object.get("attestations") {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(serde_json::Value::Array(list)) => {
                list.iter()
                    .enumerate()
                    .map(|(j, a)| {
                        let actx = Ctx {
                            file: path,
                            record: format!("{}.attestations[{}]", ctx.record, j + 1),
                        };
                        let serde_json::Value::Object(a) = a else {
                            return Err(actx
                                .error("", format!("expected an object, found {}", json_type(a))));
                        };
                        let a = JsonRecord {
                            object: a,
                            ctx: &actx,
                        };
                        Ok(Attestation {
                            id: match a.get("id")? {
                                serde_json::Value::String(s) => s.clone(),
                                serde_json::Value::Number(n) => n.to_string(),
                                other => {
                                    return Err(actx.error(
                                        "id",
                                        format!("expected a string, found {}", json_type(other)),
                                    ))
                                }
                            },
                            internal_price_usd: a.decimal("internal_price_usd")?,
                            reporting_year: a.integer("reporting_year")?,
                        })
                    })
                    .collect::<Result<_, _>>()?
            }
            Some(other) => {
                return Err(ctx.error(
                    "attestations",
                    format!("expected an array, found {}", json_type(other)),
                ))
            }
        };
        let profile = BuyerProfile {
            account,
            company: record.string("company").unwrap_or_default(),
            category: record.string("category").unwrap_or_default(),
            pathway,
            internal_carbon_price_usd: record.decimal("internal_carbon_price_usd")?,
            reporting_year: record.integer("reporting_year")?,
            inventory,
            ongoing_emissions_tonnes: ongoing,
            attestations,
        };
        if profiles.insert(account, profile).is_some() {
            return Err(ctx.error("account", format!("a second profile for account {account}")));
        }
    }
    Ok(profiles)
}

fn read_inventory(
    inv: &serde_json::Map<String, serde_json::Value>,
    ctx: &Ctx<'_>,
) -> Result<Inventory, LoadError> {
    let tonnes = |field: &str, value: &serde_json::Value| -> Result<Decimal, LoadError> {
        let v = json_decimal(value).map_err(|m| ctx.error(field, m))?;
        if v < Decimal::ZERO {
            return Err(ctx.error(field, "must not be negative"));
        }
        Ok(v)
    };
    let mut inventory = Inventory::default();
    if let Some(v) = inv.get("scope1") {
        inventory.scope1 = tonnes("inventory.scope1", v)?;
    }
    if let Some(v) = inv.get("scope2") {
        inventory.scope2 = tonnes("inventory.scope2", v)?;
    }
    match inv.get("scope3") {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::Object(categories)) => {
            for (key, value) in categories {
                let field = format!("inventory.scope3.\"{key}\"");
                let category: usize = key
                    .parse()
                    .ok()
                    .filter(|c| (1..=15).contains(c))
                    .ok_or_else(|| ctx.error(&field, "scope 3 categories are \"1\" to \"15\""))?;
                inventory.scope3[category] = tonnes(&field, value)?;
            }
        }
        Some(other) => {
            return Err(ctx.error(
                "inventory.scope3",
                format!(
                    "expected an object keyed by category, found {}",
                    json_type(other)
                ),
            ))
        }
    }
    Ok(inventory)
}
