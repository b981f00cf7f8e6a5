//! What the web asks the venue, as the `[web] operator` of the venue file:
//! a buyer's compliance state (inventory in force, claims, held orders,
//! attestations awaiting approval), and a buyer's inventory upload, which
//! the venue checks and journals.

use rust_decimal::Decimal;
use tonnex_gateway::admin_client;
use tonnex_gateway::compliance::Inventory;
use tonnex_protocol::admin::{AdminReply, AdminVerb, HeldLine, InventoryLine, PendingLine};

/// The venue's admin port and the operator the web signs as.
#[derive(Clone, Debug, Default)]
pub struct VenueLink {
    /// The admin address.
    pub admin: Option<String>,
    /// (operator name, key).
    pub operator: Option<(String, String)>,
}

/// A buyer's state as the venue holds it.
#[derive(Clone, Debug)]
pub struct BuyerState {
    /// The inventory in force.
    pub inventory: Inventory,
    /// Held orders.
    pub held: Vec<HeldLine>,
    /// Attestations awaiting approval.
    pub pending: Vec<PendingLine>,
    /// An attestation covers the reporting year.
    pub attestation_in_force: bool,
}

impl VenueLink {
    fn call(&self, reason: &str, verb: AdminVerb) -> Result<AdminReply, String> {
        let (Some(addr), Some((name, key))) = (&self.admin, &self.operator) else {
            return Err("the venue's admin port or [web] operator is not configured".into());
        };
        admin_client::call(addr, name, key, reason, verb).map_err(|e| e.to_string())
    }

    /// Buyer `account`'s state.
    pub fn buyer(&self, account: u64) -> Result<BuyerState, String> {
        match self.call("", AdminVerb::Buyer { account })? {
            AdminReply::Buyer {
                inventory,
                held,
                pending,
                attestation_in_force,
                ..
            } => Ok(BuyerState {
                inventory: inventory_of(&inventory)?,
                held,
                pending,
                attestation_in_force,
            }),
            AdminReply::Refused { text, .. } => Err(text),
            _ => Err("the venue answered something else".into()),
        }
    }

    /// Sends an upload; the venue's words either way (`Err`: refused or
    /// unreachable).
    pub fn upload(
        &self,
        account: u64,
        reporting_year: i64,
        lines: Vec<InventoryLine>,
        reason: &str,
    ) -> Result<String, String> {
        let verb = AdminVerb::Inventory {
            account,
            reporting_year,
            lines,
        };
        match self.call(reason, verb)? {
            AdminReply::Done { seq, text, .. } => Ok(format!("{text} (journal record {seq})")),
            AdminReply::Refused { text, .. } => Err(text),
            _ => Err("the venue answered something else".into()),
        }
    }
}

fn inventory_of(lines: &[InventoryLine]) -> Result<Inventory, String> {
    let mut inventory = Inventory::default();
    for line in lines {
        let tonnes: Decimal = line
            .tonnes
            .parse()
            .map_err(|_| format!("the venue sent '{}' as tonnes", line.tonnes))?;
        inventory
            .add(line.scope, line.category, tonnes)
            .map_err(|e| format!("the venue sent a line it should not: {e}"))?;
    }
    Ok(inventory)
}
