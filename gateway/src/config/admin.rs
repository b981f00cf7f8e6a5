//! The venue file's admin port: `[admin] listen` (and `window_ms`, how far a
//! request's timestamp may be from the venue's clock) and its operators,
//! `[[operator]] name, role, key`. No operator, no key: an admin port with
//! none refuses to start, and a key is never defaulted.

use std::collections::HashSet;
use std::path::Path;

use super::array_of_tables;
use crate::values::{Ctx, LoadError, TomlRecord};

/// What an operator may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OperatorRole {
    /// Everything: halts, KYC, mass cancels, cash movements.
    Operator,
    /// Halts, KYC (the kill switch), mass cancels.
    Risk,
    /// KYC (onboarding).
    Compliance,
    /// `status` only.
    ReadOnly,
    /// The settlement process: reports how trades ended (`Settlement`),
    /// and `status`.
    Settlement,
}

impl OperatorRole {
    /// The configured name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            OperatorRole::Operator => "operator",
            OperatorRole::Risk => "risk",
            OperatorRole::Compliance => "compliance",
            OperatorRole::ReadOnly => "read_only",
            OperatorRole::Settlement => "settlement",
        }
    }
}

/// One `[[operator]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorConfig {
    /// Its name (what requests carry).
    pub name: String,
    /// Its role.
    pub role: OperatorRole,
    /// The key its requests are signed with.
    pub key: String,
}

/// The admin port, if the venue has one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdminConfig {
    /// `[admin] listen`: none, no admin port.
    pub listen: Option<String>,
    /// How far a request's timestamp may be from the venue's clock.
    pub window_ms: u64,
    /// The operators.
    pub operators: Vec<OperatorConfig>,
}

/// A record's `name` (non-empty, not in `names` yet, added to it) and
/// `key` (at least 8 bytes): operators and fill subscribers alike.
pub(super) fn name_and_key(
    record: &TomlRecord,
    ctx: &Ctx,
    names: &mut HashSet<String>,
) -> Result<(String, String), LoadError> {
    let name = record.string("name")?;
    if name.is_empty() || !names.insert(name.clone()) {
        return Err(ctx.error("name", format!("'{name}' is empty or defined twice")));
    }
    let key = record.string("key")?;
    if key.len() < 8 {
        return Err(ctx.error("key", "must be at least 8 bytes"));
    }
    Ok((name, key))
}

/// Reads `[admin]` and `[[operator]]`.
pub(super) fn read_admin(table: &toml::Table, path: &Path) -> Result<AdminConfig, LoadError> {
    let ctx = Ctx {
        file: path,
        record: "admin".to_string(),
    };
    let mut admin = AdminConfig {
        listen: None,
        window_ms: 5_000,
        operators: Vec::new(),
    };
    if let Some(value) = table.get("admin") {
        let toml::Value::Table(section) = value else {
            return Err(ctx.error("admin", "expected an [admin] table"));
        };
        let record = TomlRecord {
            table: section,
            ctx: &ctx,
        };
        admin.listen = record.opt_string("listen")?;
        if section.contains_key("window_ms") {
            admin.window_ms = u64::try_from(record.integer("window_ms")?)
                .ok()
                .filter(|w| (1..=600_000).contains(w))
                .ok_or_else(|| ctx.error("window_ms", "must be 1..=600000"))?;
        }
    }
    let mut names = HashSet::new();
    for (i, item) in array_of_tables(table, "operator", path)?
        .into_iter()
        .enumerate()
    {
        let ctx = Ctx {
            file: path,
            record: format!("operator[{}]", i + 1),
        };
        let record = TomlRecord {
            table: item,
            ctx: &ctx,
        };
        let (name, key) = name_and_key(&record, &ctx, &mut names)?;
        let role = match record.string("role")?.as_str() {
            "operator" => OperatorRole::Operator,
            "risk" => OperatorRole::Risk,
            "compliance" => OperatorRole::Compliance,
            "read_only" => OperatorRole::ReadOnly,
            "settlement" => OperatorRole::Settlement,
            other => {
                return Err(ctx.error(
                    "role",
                    format!("'{other}' is not operator, risk, compliance, read_only or settlement"),
                ))
            }
        };
        admin.operators.push(OperatorConfig { name, role, key });
    }
    if admin.listen.is_some() && admin.operators.is_empty() {
        return Err(ctx.error(
            "listen",
            "an admin port needs at least one [[operator]] with a key",
        ));
    }
    Ok(admin)
}
