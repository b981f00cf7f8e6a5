//! An instrument's `eligibility`: the predicate over credit-lot attributes
//! every lot deposited into it meets, and so the class of credits its
//! book trades (what the rules' credit predicates are judged against).

use crate::values::{Ctx, LoadError, TomlRecord};

/// An instrument's eligibility predicate over credit-lot attributes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Eligibility {
    /// Required CCP label value, if constrained.
    pub ccp: Option<bool>,
    /// Allowed categories (`removal`, `avoidance`), if constrained.
    pub categories: Option<Vec<String>>,
    /// Allowed natures (`nature-based`, `technological`), if constrained.
    pub nature: Option<Vec<String>>,
    /// Oldest allowed vintage, if constrained.
    pub min_vintage: Option<i64>,
    /// Required corresponding adjustment value, if constrained.
    pub corresponding_adjustment: Option<bool>,
    /// Required CORSIA eligibility, if constrained.
    pub corsia: Option<bool>,
    /// Allowed issuance (`ex-post`, `ex-ante`), if constrained; a lot must
    /// then declare it (the optional `issuance` column).
    pub issuance: Option<Vec<String>>,
    /// Allowed durability classes, if constrained; a lot must then
    /// declare one (the optional `durability` column).
    pub durability: Option<Vec<String>>,
    /// Allowed methodologies, if constrained (what a `ccp_label` predicate
    /// looks up in the label register).
    pub methodologies: Option<Vec<String>>,
}

/// The keys of an instrument's `eligibility`.
const ELIGIBILITY_KEYS: [&str; 9] = [
    "ccp",
    "categories",
    "nature",
    "min_vintage",
    "corresponding_adjustment",
    "corsia",
    "issuance",
    "durability",
    "methodologies",
];

/// Reads an `eligibility` table (absent: no constraint).
pub(super) fn parse(value: Option<&toml::Value>, ctx: &Ctx<'_>) -> Result<Eligibility, LoadError> {
    let table = match value {
        None => return Ok(Eligibility::default()),
        Some(toml::Value::Table(table)) => table,
        Some(other) => {
            return Err(ctx.error("", format!("expected a table, found {}", other.type_str())))
        }
    };
    let e = TomlRecord { table, ctx };
    for key in table.keys() {
        if !ELIGIBILITY_KEYS.contains(&key.as_str()) {
            return Err(ctx.error(
                key,
                format!("not an eligibility field ({})", ELIGIBILITY_KEYS.join(", ")),
            ));
        }
    }
    let boolean = |key: &str| match table.get(key) {
        None => Ok(None),
        Some(toml::Value::Boolean(b)) => Ok(Some(*b)),
        Some(other) => Err(ctx.error(
            key,
            format!("expected a boolean, found {}", other.type_str()),
        )),
    };
    let list = |key: &str| table.contains_key(key).then(|| e.strings(key)).transpose();
    Ok(Eligibility {
        ccp: boolean("ccp")?,
        categories: list("categories")?,
        nature: list("nature")?,
        min_vintage: table
            .contains_key("min_vintage")
            .then(|| e.integer("min_vintage"))
            .transpose()?,
        corresponding_adjustment: boolean("corresponding_adjustment")?,
        corsia: boolean("corsia")?,
        issuance: list("issuance")?,
        durability: list("durability")?,
        methodologies: list("methodologies")?,
    })
}
