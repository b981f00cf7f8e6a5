//! The admin port's rules reload: the rules and buyer profiles files the
//! venue file names are read again and a new pre-router built from them,
//! keeping what the venue has decided since it started (claims, KYC
//! statuses, attestations accepted over the wire). The new version and the
//! files' SHA-256 are journaled; every decision after that record names
//! them.

use tonnex_engine::Command;
use tonnex_protocol::RejectReason;

use super::admin_lots::Planned;
use super::server::Gateway;
use super::startup::{rules_in_force, rules_sha256_of, rules_version_of};

impl Gateway {
    /// Plans the reload: the `Rules` record to journal, and a summary.
    pub(super) fn reload_rules(&mut self) -> Result<(Planned, String), (RejectReason, String)> {
        let invalid = |e: &dyn std::fmt::Display| (RejectReason::InvalidRequest, e.to_string());
        let path = self.admin.config.path.clone();
        let (venue, mut router) = crate::compliance::load_router(&path).map_err(|e| invalid(&e))?;
        let rules = rules_in_force(&venue, router.rules()).map_err(|e| invalid(&e))?;
        // Instruments listed at runtime are not in the file.
        for (index, instrument) in self.admin.config.instruments.iter().enumerate() {
            if index >= venue.instruments.len() {
                router.add_instrument(index, instrument);
            }
        }
        let inventories: Vec<_> = self.desk.inventories.values().cloned().collect();
        for (account, status) in self.desk.router.statuses() {
            router.set_status(account, status);
            if let Some(claims) = self.desk.router.claims(account) {
                router.claim_slots(account, &claims);
            }
        }
        for (account, attestation) in &self.desk.wire_attestations {
            router.add_attestation(*account, attestation.clone());
        }
        let (version, sha256) = (rules_version_of(&rules), rules_sha256_of(&rules));
        tracing::info!(version, sha256, "rules reloaded");
        self.desk.router = router;
        // Uploaded inventories stay in force over the files' (their claims
        // were carried over above, so each is checked against them again).
        for record in &inventories {
            self.apply_inventory(record);
        }
        self.desk.rules_version.clone_from(&version);
        self.desk.rules_sha256.clone_from(&sha256);
        Ok((
            vec![(Command::Venue(Box::new(rules)), None)],
            format!("rules version {version} (sha256 {sha256}) in force"),
        ))
    }
}
