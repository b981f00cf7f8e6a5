//! The compliance pre-router (COMPLIANCE.md): rules, buyer profiles, the
//! decision function and the `check` tool. Decisions do no I/O.

pub mod check;
pub mod held;
pub mod inventory;
pub mod lots;
pub mod profiles;
pub mod router;
pub mod rules;

pub use held::HeldOrders;
pub use profiles::{Attestation, BuyerProfile, Inventory};
pub use router::{Allocation, Decision, OrderRequest, Outcome, RawScopeLine, Router, ScopeLine};
pub use rules::{FloorPolicy, PathwayRule, Rules};

use crate::config::VenueConfig;
use crate::values::LoadError;

/// Loads the venue file and the rules and profiles it names, and builds a router.
pub fn load_router(venue_file: &std::path::Path) -> Result<(VenueConfig, Router), LoadError> {
    let venue = VenueConfig::load(venue_file)?;
    let rules = Rules::load(&venue.rules)?;
    let mut profiles = profiles::load(&venue.profiles)?;
    if let Some(export) = &venue.inventory {
        inventory::apply(export, &mut profiles)?;
    }
    let accounts: std::collections::HashSet<u64> = venue.accounts.iter().map(|a| a.id).collect();
    for profile in profiles.values() {
        if !accounts.contains(&profile.account) {
            return Err(LoadError {
                file: venue.profiles.clone(),
                location: format!("account {}", profile.account),
                message: format!(
                    "a profile for account {}, which {} does not define",
                    profile.account,
                    venue.path.display()
                ),
            });
        }
    }
    let router = Router::new(&venue, rules, profiles);
    Ok((venue, router))
}
