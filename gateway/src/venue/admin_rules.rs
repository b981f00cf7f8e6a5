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
    /// On a new day (UTC): decides as of it from now on and, when another
    /// rules version takes effect, switches to it (keeping every claim,
    /// status and attestation) and journals it, so every later decision
    /// names it. Called from the timers.
    pub(super) fn follow_rules_calendar(&mut self) {
        let today = crate::compliance::Date::today();
        if today == self.desk.router.date() {
            return;
        }
        self.desk.router.set_date(today);
        self.switch_rules_version(today);
        self.cancel_buys_no_longer_admitted(today);
    }

    /// Switches to the rules version taking effect `today`, if another.
    fn switch_rules_version(&mut self, today: crate::compliance::Date) {
        let Some(rules) = self.desk.rule_versions.in_force(today) else {
            return;
        };
        if rules.sha256 == self.desk.router.rules().sha256 {
            return;
        }
        let rules = rules.clone();
        let record = match rules_in_force(&self.admin.config, &rules) {
            Ok(record) => record,
            Err(error) => {
                // The profiles file is unreadable: keep deciding under the
                // version the journal names rather than one it cannot.
                tracing::error!(%error, version = rules.version, "rules version not switched");
                return;
            }
        };
        tracing::info!(version = rules.version, sha256 = rules.sha256, %today, "rules version in force");
        self.desk.rules_version.clone_from(&rules.version);
        self.desk.rules_sha256.clone_from(&rules.sha256);
        self.desk.router.set_rules(rules);
        self.submit_venue(record, 0, 0, 0);
    }

    /// Resting buys that a rule no longer admits on the new day (a CCP
    /// label revoked, a predicate now in force, a new rules version) may
    /// not trade on: each such buyer's orders on that book are cancelled
    /// by a journaled mass cancel naming the predicate (operator `rules`).
    fn cancel_buys_no_longer_admitted(&mut self, today: crate::compliance::Date) {
        let mut affected: std::collections::BTreeMap<(u64, u32), std::sync::Arc<str>> =
            std::collections::BTreeMap::new();
        for info in self.orders.values() {
            if info.allocation.is_none() || affected.contains_key(&(info.account, info.instrument))
            {
                continue;
            }
            let symbol = &self.market.instruments[info.instrument as usize].symbol;
            if let Some(predicate) = self.desk.router.failing_predicate(info.account, symbol) {
                affected.insert((info.account, info.instrument), predicate);
            }
        }
        for ((account, instrument), predicate) in affected {
            tracing::info!(account, instrument, predicate = &*predicate, %today, "resting buys no longer admitted: cancelled");
            self.submit_command(
                Command::Admin(Box::new(tonnex_engine::AdminCommand {
                    operator: "rules".into(),
                    reason: format!("{predicate} no longer met on {today}"),
                    command: Command::MassCancel {
                        account,
                        instrument: Some(instrument),
                    },
                })),
                account,
                0,
            );
        }
    }

    /// Plans the reload: the `Rules` record to journal, and a summary.
    pub(super) fn reload_rules(&mut self) -> Result<(Planned, String), (RejectReason, String)> {
        let invalid = |e: &dyn std::fmt::Display| (RejectReason::InvalidRequest, e.to_string());
        let path = self.admin.config.path.clone();
        let (mut venue, mut router) =
            crate::compliance::load_router(&path).map_err(|e| invalid(&e))?;
        // The journal stays where the venue runs it (a --journal-dir override).
        venue.journal_dir.clone_from(&self.admin.config.journal_dir);
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
        self.desk.rule_versions = crate::compliance::load_rules(&venue)
            .map_err(|e| invalid(&e))?
            .0;
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
