//! The admin port's buyer verbs: an emissions inventory uploaded for a
//! buyer's reporting year (the carbon-accounting integration of
//! `tonnex-web`), journaled and in force for every later decision; and a
//! buyer's compliance state as the venue holds it (inventory and claims,
//! held orders, attestations awaiting approval).

use rust_decimal::Decimal;
use tonnex_engine::{Command, InventoryRecord, VenueCommand};
use tonnex_protocol::admin::{AdminReply, HeldLine, InventoryLine, PendingLine};
use tonnex_protocol::RejectReason;

use super::admin_lots::Planned;
use super::server::Gateway;
use crate::compliance::Inventory;
use crate::values::parse_decimal;

/// The inventory `lines` describe, or what is wrong with which line.
pub fn inventory_of(lines: &[(u8, u8, String)]) -> Result<Inventory, String> {
    let mut inventory = Inventory::default();
    for (i, (scope, category, tonnes)) in lines.iter().enumerate() {
        let at = format!("line {}", i + 1);
        let tonnes = parse_decimal(tonnes).map_err(|e| format!("{at}: tonnes: {e}"))?;
        if tonnes < Decimal::ZERO {
            return Err(format!("{at}: tonnes must not be negative"));
        }
        inventory
            .add(*scope, *category, tonnes)
            .map_err(|e| format!("{at}: {e}"))?;
    }
    Ok(inventory)
}

/// An inventory as the lines of a reply: scopes 1 and 2, then every
/// Scope 3 category above zero.
fn lines_of(inventory: &Inventory) -> Vec<InventoryLine> {
    let mut lines = vec![
        InventoryLine {
            scope: 1,
            category: 0,
            tonnes: inventory.scope1.to_string(),
        },
        InventoryLine {
            scope: 2,
            category: 0,
            tonnes: inventory.scope2.to_string(),
        },
    ];
    for (category, tonnes) in inventory.scope3.iter().enumerate().skip(1) {
        if !tonnes.is_zero() {
            lines.push(InventoryLine {
                scope: 3,
                category: category as u8,
                tonnes: tonnes.to_string(),
            });
        }
    }
    lines
}

impl Gateway {
    /// Plans an inventory upload: checked by the pre-router (year, claims,
    /// total against ongoing emissions), in force at once, journaled.
    pub(super) fn upload_inventory(
        &mut self,
        account: u64,
        reporting_year: i64,
        lines: Vec<InventoryLine>,
    ) -> Result<(Planned, String), (RejectReason, String)> {
        let invalid = |text: String| (RejectReason::InvalidRequest, text);
        let record = InventoryRecord {
            account,
            reporting_year,
            lines: lines
                .into_iter()
                .map(|l| (l.scope, l.category, l.tonnes))
                .collect(),
        };
        let inventory = inventory_of(&record.lines).map_err(invalid)?;
        if self.desk.router.profile(account).is_none() {
            return Err((
                RejectReason::NoProfile,
                format!("account {account} has no buyer profile"),
            ));
        }
        self.desk
            .router
            .set_inventory(account, reporting_year, &inventory)
            .map_err(invalid)?;
        self.desk.inventories.insert(account, record.clone());
        let total = inventory.total();
        tracing::info!(account, reporting_year, %total, "inventory replaced");
        Ok((
            vec![(
                Command::Venue(Box::new(VenueCommand::Inventory(record))),
                None,
            )],
            format!(
                "inventory of account {account} for {reporting_year} in force: {total} t in all"
            ),
        ))
    }

    /// Puts a journaled inventory in force again (at start, and after a
    /// rules reload rebuilt the pre-router from the files). One the files
    /// no longer admit (another reporting year) stays out, with a warning.
    pub(super) fn apply_inventory(&mut self, record: &InventoryRecord) {
        let applied = inventory_of(&record.lines).and_then(|inventory| {
            self.desk
                .router
                .set_inventory(record.account, record.reporting_year, &inventory)
        });
        match applied {
            Ok(()) => {
                self.desk.inventories.insert(record.account, record.clone());
            }
            Err(e) => tracing::warn!(
                account = record.account,
                reporting_year = record.reporting_year,
                error = %e,
                "a journaled inventory is not in force"
            ),
        }
    }

    /// A buyer's compliance state.
    pub(super) fn buyer_reply(
        &self,
        nonce: u64,
        account: u64,
    ) -> Result<AdminReply, (RejectReason, String)> {
        let router = &self.desk.router;
        let Some(profile) = router.profile(account) else {
            return Err((
                RejectReason::NoProfile,
                format!("account {account} has no buyer profile"),
            ));
        };
        let inventory = lines_of(&profile.inventory);
        let claims = router.claims(account).unwrap_or_default();
        let claimed = inventory
            .iter()
            .map(|l| {
                tonnex_engine::venue::Allocation::slot(l.scope, l.category)
                    .map_or(0, |slot| claims.0[slot])
            })
            .collect();
        let held = self
            .desk
            .held_orders
            .range((account, 0)..=(account, u64::MAX))
            .map(|(&(_, id), order)| HeldLine {
                client_order_id: id,
                instrument: order.instrument,
                price_ticks: order.price_ticks,
                qty: order.qty,
                expires_at_ns: self.desk.held.expiry(account, id).unwrap_or(0),
            })
            .collect();
        let pending = self
            .desk
            .pending_attestations
            .iter()
            .filter(|(a, _)| *a == account)
            .map(|(_, att)| PendingLine {
                id: att.id.clone(),
                internal_price_micros: (att.internal_price_usd * Decimal::from(1_000_000))
                    .trunc()
                    .try_into()
                    .unwrap_or(0),
                reporting_year: u16::try_from(att.reporting_year).unwrap_or(0),
            })
            .collect();
        let attestation_in_force = profile
            .attestations
            .iter()
            .any(|a| a.reporting_year == profile.reporting_year);
        Ok(AdminReply::Buyer {
            nonce,
            reporting_year: profile.reporting_year,
            ongoing_emissions_tonnes: profile.ongoing_emissions_tonnes.to_string(),
            inventory,
            claimed,
            held,
            pending,
            attestation_in_force,
        })
    }
}
