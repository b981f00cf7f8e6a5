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
pub use router::{
    Allocation, Decision, LimitPrice, OrderRequest, Outcome, RawScopeLine, Router, ScopeLine,
};
pub use rules::{CcpLabels, Date, FloorMode, FloorPolicy, PathwayRule, Route, RuleVersions, Rules};

use crate::config::VenueConfig;
use crate::values::LoadError;

/// Loads the venue file and the rules and profiles it names, and builds a
/// router deciding on today's date (UTC) under the rules in force today.
pub fn load_router(venue_file: &std::path::Path) -> Result<(VenueConfig, Router), LoadError> {
    load_router_on(venue_file, Date::today())
}

/// The venue file's rules versions and CCP label register, checked
/// together: a `ccp_label` predicate needs a register.
pub fn load_rules(venue: &VenueConfig) -> Result<(RuleVersions, CcpLabels), LoadError> {
    let versions = RuleVersions::load(&venue.rules)?;
    let labels = match &venue.ccp_labels {
        Some(file) => CcpLabels::load(file)?,
        None => CcpLabels::default(),
    };
    for (rules, file) in versions.all().iter().zip(&venue.rules) {
        if rules::predicate::needs_labels(&rules.predicates) && !labels.configured() {
            return Err(LoadError {
                file: file.clone(),
                location: "predicate".into(),
                message: format!(
                    "a ccp_label predicate needs a CCP label register: `ccp_labels = \"FILE\"` in {} [compliance]",
                    venue.path.display()
                ),
            });
        }
    }
    Ok((versions, labels))
}

/// [`load_router`] deciding as of `date`, under the rules in force then.
pub fn load_router_on(
    venue_file: &std::path::Path,
    date: Date,
) -> Result<(VenueConfig, Router), LoadError> {
    let venue = VenueConfig::load(venue_file)?;
    let (versions, labels) = load_rules(&venue)?;
    let rules = versions.in_force_or_error(date)?.clone();
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
    let mut router = Router::new(&venue, rules, profiles);
    router.set_labels(labels);
    router.set_date(date);
    Ok((venue, router))
}
