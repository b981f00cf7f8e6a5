//! The registry side: what settlement asks for (payment, transfer,
//! retirement), the confirmations that come back, the adapter trait a real
//! registry implements, webhook signatures, and a simulated registry.
//!
//! Confirmations reach settlement two ways, because most registries offer no
//! webhooks: pushed as signed HTTP callbacks, or pulled by polling
//! [`Registry::status`] for pending trades. Both become the same
//! [`RegistryEvent`] and take the same code path.
//!
//! Rooms: [`request`] (what is asked, as the adapter contract carries it),
//! [`remote`] (the HTTP adapter of `docs/registry-openapi.yaml`), [`sim`]
//! (the simulated registry, embedded or its own process).

mod custody_in;
mod remote;
mod request;
mod sim;

pub use custody_in::{lot_columns, IncomingTransfer};

/// A message that breaks the adapter contract (`docs/registry-openapi.yaml`),
/// in words that name the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ContractError(pub String);

impl From<String> for ContractError {
    fn from(text: String) -> Self {
        ContractError(text)
    }
}

impl From<&str> for ContractError {
    fn from(text: &str) -> Self {
        ContractError(text.to_string())
    }
}

/// Why a call to a registry failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Not reachable, or the connection broke.
    #[error("registry {addr}: {why}")]
    Unreachable {
        /// Its address.
        addr: String,
        /// What the system said.
        why: String,
    },
    /// It answered with an error status.
    #[error("registry {addr}: {endpoint} answered {status}: {body}")]
    Answered {
        /// Its address.
        addr: String,
        /// The endpoint called.
        endpoint: &'static str,
        /// The HTTP status.
        status: u16,
        /// What it said.
        body: String,
    },
    /// What was sent or received breaks the contract.
    #[error(transparent)]
    Contract(#[from] ContractError),
}
pub use remote::{parse_requests, post, Remote};
pub use request::{parse_request, RegistryAccounts, Request, Retirement, SerialRange};
pub use sim::{serve_sim, Embedded, Sim, SimConfig};

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What settlement asks of the outside world for a trade.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Move the trade's cash from escrow to the seller (payment rail).
    Payment,
    /// Move the trade's serials from the seller's registry account to the buyer's.
    Transfer,
    /// Retire the buyer's credits on the buyer's behalf.
    Retirement,
    /// Move withdrawn serials from the venue's custody account to the
    /// owner's registry account (the venue has already debited them).
    Withdrawal,
}

impl Kind {
    /// Name on the wire and in the ledger.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Payment => "payment",
            Kind::Transfer => "transfer",
            Kind::Retirement => "retirement",
            Kind::Withdrawal => "withdrawal",
        }
    }

    /// The kind named `text`.
    #[must_use]
    pub fn parse(text: &str) -> Option<Kind> {
        [
            Kind::Payment,
            Kind::Transfer,
            Kind::Retirement,
            Kind::Withdrawal,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
    }
}

/// A confirmation or refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryEvent {
    /// Unique per event: a replayed callback repeats it.
    pub event_id: String,
    /// Venue trade id.
    pub trade_id: u64,
    /// What it answers.
    pub kind: Kind,
    /// Confirmed (true) or refused.
    pub confirmed: bool,
    /// The registry's reference (transfer or retirement number).
    pub reference: String,
}

impl RegistryEvent {
    /// JSON object.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "event_id": self.event_id,
            "trade_id": self.trade_id,
            "kind": self.kind.as_str(),
            "status": if self.confirmed { "confirmed" } else { "refused" },
            "reference": self.reference,
        })
    }

    /// From a JSON object, or what is wrong with it.
    pub fn from_json(value: &serde_json::Value) -> Result<RegistryEvent, ContractError> {
        let field = |name: &str| {
            value
                .get(name)
                .ok_or_else(|| format!("event without '{name}'"))
        };
        let text = |name: &str| {
            field(name)?
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("'{name}' is not a string"))
        };
        Ok(RegistryEvent {
            event_id: text("event_id")?,
            trade_id: field("trade_id")?
                .as_u64()
                .ok_or("'trade_id' is not an unsigned integer")?,
            kind: Kind::parse(&text("kind")?).ok_or("unknown 'kind'")?,
            confirmed: match text("status")?.as_str() {
                "confirmed" => true,
                "refused" => false,
                other => return Err(format!("unknown status '{other}'").into()),
            },
            reference: text("reference")?,
        })
    }
}

/// What a registry adapter offers. A real adapter (Verra, Gold Standard,
/// Puro...) implements it over the registry's API.
pub trait Registry: Send {
    /// Sends requests; sending one twice must be harmless (idempotent by
    /// trade and kind).
    fn submit(&mut self, requests: &[Request]) -> Result<(), RegistryError>;
    /// The final outcomes known so far for these trades (the poll path).
    fn status(&mut self, trade_ids: &[u64]) -> Result<Vec<RegistryEvent>, RegistryError>;
    /// Transfers into the venue's custody account listed after `after`
    /// (the polling adapter; a registry without custody-in lists none).
    fn incoming(&mut self, after: u64) -> Result<Vec<IncomingTransfer>, RegistryError> {
        let _ = after;
        Ok(Vec::new())
    }
}

type HmacSha256 = Hmac<Sha256>;

/// Header carrying the sender's clock, milliseconds since the Unix epoch.
pub const TIMESTAMP_HEADER: &str = "X-Tonnex-Timestamp";
/// Header carrying hex(HMAC-SHA256(secret, timestamp "." body)).
pub const SIGNATURE_HEADER: &str = "X-Tonnex-Signature";

/// Milliseconds since the Unix epoch.
#[must_use]
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The signature of a callback.
#[must_use]
pub fn sign(secret: &[u8], timestamp_ms: u64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp_ms.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex(&mac.finalize().into_bytes())
}

/// Whether `signature` is right for this timestamp and body (constant time).
#[must_use]
pub fn verify(secret: &[u8], timestamp_ms: u64, body: &[u8], signature: &str) -> bool {
    let Some(bytes) = unhex(signature) else {
        return false;
    };
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp_ms.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&bytes).is_ok()
}

/// Lower-case hex.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_with_the_same_secret_timestamp_and_body() {
        let signature = sign(b"secret", 1_700_000_000_000, b"[1]");
        assert!(verify(b"secret", 1_700_000_000_000, b"[1]", &signature));
        assert!(!verify(b"other", 1_700_000_000_000, b"[1]", &signature));
        assert!(!verify(b"secret", 1_700_000_000_001, b"[1]", &signature));
        assert!(!verify(b"secret", 1_700_000_000_000, b"[2]", &signature));
        assert!(!verify(b"secret", 1_700_000_000_000, b"[1]", "zz"));
    }

    #[test]
    fn events_round_trip_through_json() {
        let event = RegistryEvent {
            event_id: "e-1".into(),
            trade_id: 42,
            kind: Kind::Transfer,
            confirmed: false,
            reference: "R".into(),
        };
        assert_eq!(RegistryEvent::from_json(&event.to_json()), Ok(event));
        assert!(RegistryEvent::from_json(&serde_json::json!({"event_id": "x"})).is_err());
    }
}
