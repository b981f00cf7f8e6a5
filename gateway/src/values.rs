//! Reading typed fields out of parsed TOML and JSON, with errors that name
//! the file, the record and the field.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rust_decimal::Decimal;

/// A configuration or input file that cannot be used, and exactly where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// The file.
    pub file: PathBuf,
    /// Where in it: `line 4`, `account[2].role`, `record 3 (account 1001).pathway`.
    pub location: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.location.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}: {}: {}",
                self.file.display(),
                self.location,
                self.message
            )
        }
    }
}

impl std::error::Error for LoadError {}

/// Where errors for one record of one file point.
#[derive(Clone, Debug)]
pub struct Ctx<'a> {
    /// The file.
    pub file: &'a Path,
    /// The record (`account[2]`), empty at top level.
    pub record: String,
}

impl Ctx<'_> {
    /// The table this context names (`[market_data]`) in `table`, if
    /// present; anything but a table there, or a field not in `fields`, is
    /// an error.
    pub fn optional_section<'t>(
        &self,
        table: &'t toml::Table,
        fields: &[&str],
    ) -> Result<Option<&'t toml::Table>, LoadError> {
        let section = match table.get(&self.record) {
            None => return Ok(None),
            Some(toml::Value::Table(section)) => section,
            Some(other) => {
                return Err(self.error("", format!("expected a table, found {}", other.type_str())))
            }
        };
        for key in section.keys() {
            if !fields.contains(&key.as_str()) {
                return Err(self.error(
                    key,
                    format!("not a {} field ({})", self.record, fields.join(", ")),
                ));
            }
        }
        Ok(Some(section))
    }

    /// An error about `field` of this record.
    #[must_use]
    pub fn error(&self, field: &str, message: impl Into<String>) -> LoadError {
        let location = match (self.record.is_empty(), field.is_empty()) {
            (true, _) => field.to_string(),
            (false, true) => self.record.clone(),
            (false, false) => format!("{}.{field}", self.record),
        };
        LoadError {
            file: self.file.to_path_buf(),
            location,
            message: message.into(),
        }
    }
}

/// Reads and parses a TOML file; syntax errors name the line.
pub fn read_toml(path: &Path) -> Result<toml::Table, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| LoadError {
        file: path.to_path_buf(),
        location: String::new(),
        message: format!("cannot read: {e}"),
    })?;
    text.parse().map_err(|e: toml::de::Error| LoadError {
        file: path.to_path_buf(),
        location: e
            .span()
            .map(|s| format!("line {}", text[..s.start].lines().count().max(1)))
            .unwrap_or_default(),
        message: e.message().to_string(),
    })
}

/// A decimal from text, refusing exponents and anything but plain digits.
pub fn parse_decimal(text: &str) -> Result<Decimal, String> {
    let plain = text.strip_prefix('-').unwrap_or(text);
    let valid = !plain.is_empty()
        && plain.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && plain.bytes().filter(|&b| b == b'.').count() <= 1
        && !plain.starts_with('.')
        && !plain.ends_with('.');
    if !valid {
        return Err(format!("'{text}' is not a decimal number"));
    }
    Decimal::from_str(text).map_err(|e| format!("'{text}': {e}"))
}

/// A decimal from a TOML string (preferred: exact) or integer or float.
pub fn toml_decimal(value: &toml::Value) -> Result<Decimal, String> {
    match value {
        toml::Value::String(s) => parse_decimal(s),
        toml::Value::Integer(i) => Ok(Decimal::from(*i)),
        toml::Value::Float(f) => parse_decimal(&f.to_string()),
        other => Err(format!("expected a decimal, found {}", other.type_str())),
    }
}

/// A decimal from a JSON string or number, exactly as written.
pub fn json_decimal(value: &serde_json::Value) -> Result<Decimal, String> {
    match value {
        serde_json::Value::String(s) => parse_decimal(s),
        serde_json::Value::Number(n) => parse_decimal(&n.to_string()),
        other => Err(format!("expected a decimal, found {}", json_type(other))),
    }
}

/// The JSON type name of a value, for messages.
#[must_use]
pub fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Typed access to a TOML table's fields.
pub struct TomlRecord<'a, 'c> {
    /// The table.
    pub table: &'a toml::Table,
    /// Where errors point.
    pub ctx: &'c Ctx<'c>,
}

impl TomlRecord<'_, '_> {
    fn get(&self, key: &str) -> Result<&toml::Value, LoadError> {
        self.table
            .get(key)
            .ok_or_else(|| self.ctx.error(key, "missing"))
    }

    /// A required string.
    pub fn string(&self, key: &str) -> Result<String, LoadError> {
        match self.get(key)? {
            toml::Value::String(s) => Ok(s.clone()),
            other => Err(self.ctx.error(
                key,
                format!("expected a string, found {}", other.type_str()),
            )),
        }
    }

    /// An optional string.
    pub fn opt_string(&self, key: &str) -> Result<Option<String>, LoadError> {
        if self.table.contains_key(key) {
            self.string(key).map(Some)
        } else {
            Ok(None)
        }
    }

    /// A required integer.
    pub fn integer(&self, key: &str) -> Result<i64, LoadError> {
        match self.get(key)? {
            toml::Value::Integer(i) => Ok(*i),
            other => Err(self.ctx.error(
                key,
                format!("expected an integer, found {}", other.type_str()),
            )),
        }
    }

    /// A required decimal.
    pub fn decimal(&self, key: &str) -> Result<Decimal, LoadError> {
        toml_decimal(self.get(key)?).map_err(|m| self.ctx.error(key, m))
    }

    /// A required array of strings.
    pub fn strings(&self, key: &str) -> Result<Vec<String>, LoadError> {
        match self.get(key)? {
            toml::Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    toml::Value::String(s) => Ok(s.clone()),
                    other => Err(self.ctx.error(
                        &format!("{key}[{}]", i + 1),
                        format!("expected a string, found {}", other.type_str()),
                    )),
                })
                .collect(),
            other => Err(self.ctx.error(
                key,
                format!("expected an array of strings, found {}", other.type_str()),
            )),
        }
    }

    /// A required table.
    pub fn table(&self, key: &str) -> Result<&toml::Table, LoadError> {
        match self.get(key)? {
            toml::Value::Table(t) => Ok(t),
            other => Err(self
                .ctx
                .error(key, format!("expected a table, found {}", other.type_str()))),
        }
    }
}

/// Typed access to a JSON object's fields.
pub struct JsonRecord<'a, 'c> {
    /// The object.
    pub object: &'a serde_json::Map<String, serde_json::Value>,
    /// Where errors point.
    pub ctx: &'c Ctx<'c>,
}

impl<'a> JsonRecord<'a, '_> {
    /// A required field.
    pub fn get(&self, key: &str) -> Result<&'a serde_json::Value, LoadError> {
        self.object
            .get(key)
            .ok_or_else(|| self.ctx.error(key, "missing"))
    }

    /// A required string.
    pub fn string(&self, key: &str) -> Result<String, LoadError> {
        match self.get(key)? {
            serde_json::Value::String(s) => Ok(s.clone()),
            other => Err(self.ctx.error(
                key,
                format!("expected a string, found {}", json_type(other)),
            )),
        }
    }

    /// A required integer.
    pub fn integer(&self, key: &str) -> Result<i64, LoadError> {
        match self.get(key)? {
            serde_json::Value::Number(n) => n.as_i64().ok_or_else(|| {
                self.ctx
                    .error(key, format!("expected an integer, found {n}"))
            }),
            other => Err(self.ctx.error(
                key,
                format!("expected an integer, found {}", json_type(other)),
            )),
        }
    }

    /// A required decimal (string or number).
    pub fn decimal(&self, key: &str) -> Result<Decimal, LoadError> {
        json_decimal(self.get(key)?).map_err(|m| self.ctx.error(key, m))
    }
}
