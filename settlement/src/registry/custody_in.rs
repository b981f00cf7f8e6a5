//! Credits a seller moves into the venue's custody account at the
//! registry: the registry lists them (`POST /custody/incoming`, polled),
//! settlement records each once and has the venue deposit it as a lot,
//! through the same eligibility and overlap checks as any lot file.

use serde_json::{json, Value};

use super::ContractError;

/// A transfer into the venue's custody account, as the registry lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncomingTransfer {
    /// The registry's position of it in its list (increasing).
    pub seq: u64,
    /// The registry's transfer id (unique).
    pub transfer_id: String,
    /// The seller's account at the registry.
    pub from_account: String,
    /// The instrument the seller named in the transfer's memo.
    pub instrument: String,
    /// The block, in the columns of a lot file (registry, project_id,
    /// serial_start, serial_end, quantity, vintage, methodology, category,
    /// nature, ccp, corresponding_adjustment, corsia).
    pub lot: Vec<(String, String)>,
}

/// The lot-file columns a transfer carries, in order: every column of a
/// lot file but the last, `owner_account`, which settlement fills in.
#[must_use]
pub fn lot_columns() -> &'static [&'static str] {
    let all = &tonnex_protocol::stream::LOT_COLUMNS;
    &all[..all.len() - 1]
}

fn cell(value: &Value, name: &str) -> Result<String, String> {
    match value.get(name) {
        Some(Value::String(s)) if !s.is_empty() && !s.contains([',', '\n', '"']) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(Value::Bool(b)) => Ok(b.to_string()),
        _ => Err(format!("'{name}' is missing, empty or not a plain value")),
    }
}

impl IncomingTransfer {
    /// Reads one entry of the list, naming the field that is wrong.
    pub fn from_json(value: &Value) -> Result<IncomingTransfer, ContractError> {
        let lot = lot_columns()
            .iter()
            .map(|&c| Ok((c.to_string(), cell(value, c)?)))
            .collect::<Result<_, String>>()?;
        Ok(IncomingTransfer {
            seq: value
                .get("seq")
                .and_then(Value::as_u64)
                .ok_or("'seq' is not an unsigned integer")?,
            transfer_id: cell(value, "transfer_id")?,
            from_account: cell(value, "from_account")?,
            instrument: cell(value, "instrument")?,
            lot,
        })
    }

    /// As the registry lists it.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let mut object = json!({
            "seq": self.seq,
            "transfer_id": self.transfer_id,
            "from_account": self.from_account,
            "instrument": self.instrument,
        });
        for (k, v) in &self.lot {
            object[k] = Value::String(v.clone());
        }
        object
    }

    /// The one-lot export the venue deposits, owned by venue account `owner`.
    #[must_use]
    pub fn lot_csv(&self, owner: u64) -> String {
        let values: Vec<&str> = self.lot.iter().map(|(_, v)| v.as_str()).collect();
        format!(
            "{}\n{},{owner}\n",
            tonnex_protocol::stream::LOT_COLUMNS.join(","),
            values.join(",")
        )
    }
}
