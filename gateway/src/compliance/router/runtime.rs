//! What changes a router once it is built: claimed tonnes as orders are
//! accepted, filled, cancelled and replaced; accounts and their statuses;
//! attestations; instruments and accounts added at runtime.

use super::*;
use crate::compliance::profiles::Inventory;

impl Router {
    /// Appends an attestation to the buyer's profile (attestations are
    /// considered in the order they arrived). False if the account has no profile.
    pub fn add_attestation(
        &mut self,
        account: u64,
        attestation: crate::compliance::profiles::Attestation,
    ) -> bool {
        match self.buyer_index(account) {
            Some(index) => {
                self.profiles[index].attestations.push(attestation);
                true
            }
            None => false,
        }
    }

    /// Takes attestation `id` of `account` out of force (a revocation);
    /// `false` if it had none of that id.
    pub fn remove_attestation(&mut self, account: u64, id: &str) -> bool {
        let Some(index) = self.buyer_index(account) else {
            return false;
        };
        let attestations = &mut self.profiles[index].attestations;
        let before = attestations.len();
        attestations.retain(|a| a.id != id);
        attestations.len() != before
    }

    /// Replaces a buyer's inventory (an upload through the admin port, or
    /// one recovered from the journal): the profile and every slot's limit.
    /// Refused, naming the line, when the year is not the profile's, when
    /// a figure falls below the tonnes already claimed on it, or when the
    /// inventory's total falls below the ongoing emissions it must contain.
    pub fn set_inventory(
        &mut self,
        account: u64,
        reporting_year: i64,
        inventory: &Inventory,
    ) -> Result<(), String> {
        let Some(index) = self.buyer_index(account) else {
            return Err(format!("account {account} has no buyer profile"));
        };
        let profile = &self.profiles[index];
        if profile.reporting_year != reporting_year {
            return Err(format!(
                "account {account} reports for {}, not {reporting_year}",
                profile.reporting_year
            ));
        }
        let total = inventory.total();
        if total < profile.ongoing_emissions_tonnes {
            return Err(format!(
                "the inventory's total ({total} t) is below the ongoing emissions it must contain ({} t)",
                profile.ongoing_emissions_tonnes
            ));
        }
        let limits = slot_limits(inventory);
        let buyer = &mut self.buyers[index];
        for (slot, &limit) in limits.iter().enumerate() {
            let claimed = buyer.slots[slot].claimed;
            if claimed > limit {
                let line = match slot {
                    0 => "scope 1".to_string(),
                    1 => "scope 2".to_string(),
                    n => format!("scope 3 category {}", n - 1),
                };
                return Err(format!(
                    "{line}: {claimed} t are already claimed (open and filled orders), the inventory gives {limit} t"
                ));
            }
        }
        for (slot, limit) in limits.into_iter().enumerate() {
            buyer.slots[slot].limit = limit;
        }
        self.profiles[index].inventory = inventory.clone();
        Ok(())
    }

    /// Knows one more account, added at runtime (no buyer profile).
    pub fn add_account(&mut self, account: u64, role: Role, status: AccountStatus) {
        self.accounts.insert(
            account,
            AccountEntry {
                role,
                status,
                buyer: NO_PROFILE,
            },
        );
    }

    /// Routes orders to one more instrument, listed at runtime.
    pub fn add_instrument(&mut self, index: usize, instrument: &InstrumentConfig) {
        let routed = route(&self.rules, index, instrument, self.date, &self.labels);
        self.instruments.insert(instrument.symbol.clone(), routed);
    }

    /// Decides from now on under `rules` (a new version in force, or a
    /// reload), keeping every claim, status and attestation.
    pub fn set_rules(&mut self, rules: Rules) {
        self.thresholds = [0, 1, 2].map(|p| rules.pathways[p].coverage_threshold_pct);
        self.threshold_hundredths = self.thresholds.map(|t| {
            (t * Decimal::ONE_HUNDRED)
                .ceil()
                .to_i64()
                .unwrap_or(i64::MAX)
        });
        self.floor_positive = [0, 1, 2].map(|p| rules.pathways[p].floor_usd > Decimal::ZERO);
        for (buyer, profile) in self.buyers.iter_mut().zip(&self.profiles) {
            (buyer.internal_price_ok, buyer.pricing) = price_route(&rules, profile);
        }
        self.predicate_names = names_of(&rules);
        self.rules = rules;
        self.reroute();
    }

    /// Reads `labels` for the `ccp_label` predicate from now on.
    pub fn set_labels(&mut self, labels: CcpLabels) {
        self.labels = labels;
        self.reroute();
    }

    /// Decides from now on as of `date` (a no-op on the same day).
    pub fn set_date(&mut self, date: Date) {
        if date != self.date {
            self.date = date;
            self.reroute();
        }
    }

    /// The predicate a buy of `account` on `symbol` fails today, before
    /// any order detail (its pathway's required predicates: the ones that
    /// depend on the day, the instrument's class and the buyer); `None`
    /// when they all hold, or the account has no profile.
    #[must_use]
    pub fn failing_predicate(&self, account: u64, symbol: &str) -> Option<Arc<str>> {
        let index = self.buyer_index(account)?;
        let routed = self.instruments.get(symbol)?;
        let pathway = pathway_index(self.buyers[index].pathway);
        first_failing(
            &routed.checks[pathway],
            &self.rules,
            &self.profiles[index],
            &routed.config,
            self.date,
            &self.labels,
        )
        .map(|failed| Arc::clone(&self.predicate_names[failed]))
    }

    /// The day decisions are made on.
    #[must_use]
    pub fn date(&self) -> Date {
        self.date
    }

    /// The rules in force.
    #[must_use]
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Derives every instrument again (rules, labels or day changed).
    fn reroute(&mut self) {
        for routed in self.instruments.values_mut() {
            *routed = route(
                &self.rules,
                routed.index,
                &routed.config,
                self.date,
                &self.labels,
            );
        }
    }

    /// Tonnes every buyer has claimed, summed.
    #[must_use]
    pub fn total_claimed(&self) -> u64 {
        self.buyers.iter().map(|b| b.claimed_total).sum()
    }

    /// Tonnes `account` has claimed (filled + open), over every slot.
    #[must_use]
    pub fn claimed_tonnes(&self, account: u64) -> u64 {
        self.buyer_index(account)
            .map_or(0, |i| self.buyers[i].claimed_total)
    }

    /// An account's status (its KYC state), if the venue knows it.
    #[must_use]
    pub fn status(&self, account: u64) -> Option<AccountStatus> {
        self.accounts.get(&account).map(|a| a.status)
    }

    /// Sets an account's status; `false` if the venue does not know it.
    pub fn set_status(&mut self, account: u64, status: AccountStatus) -> bool {
        match self.accounts.get_mut(&account) {
            Some(entry) => {
                entry.status = status;
                true
            }
            None => false,
        }
    }

    /// Every account the venue knows, with its status, by id.
    #[must_use]
    pub fn statuses(&self) -> Vec<(u64, AccountStatus)> {
        let mut all: Vec<(u64, AccountStatus)> = self
            .accounts
            .iter()
            .map(|(&id, a)| (id, a.status))
            .collect();
        all.sort_unstable_by_key(|&(id, _)| id);
        all
    }

    /// Counts `allocation` as claimed on top of what is (a replace up, or
    /// the claims recovered from the journal at start).
    pub fn claim_slots(&mut self, account: u64, allocation: &Allocation) {
        let Some(index) = self.buyer_index(account) else {
            return;
        };
        let buyer = &mut self.buyers[index];
        for (slot, &qty) in allocation.0.iter().enumerate() {
            buyer.slots[slot].claimed += qty;
            buyer.claimed_total += qty;
        }
    }

    /// Stops counting exactly `freed` (per slot) as claimed.
    pub fn release_slots(&mut self, account: u64, freed: &Allocation) {
        let Some(index) = self.buyer_index(account) else {
            return;
        };
        let buyer = &mut self.buyers[index];
        for (slot, &qty) in freed.0.iter().enumerate() {
            let claimed = &mut buyer.slots[slot].claimed;
            *claimed = claimed.saturating_sub(qty);
            buyer.claimed_total = buyer.claimed_total.saturating_sub(qty);
        }
    }

    /// Whether `added` more tonnes in `slot` stay within the buyer's
    /// inventory, counting what is claimed (a replace up, step 9 again).
    #[must_use]
    pub fn fits(&self, account: u64, slot: usize, added: u64) -> bool {
        self.buyer_index(account).is_some_and(|index| {
            let s = self.buyers[index].slots[slot];
            s.claimed.saturating_add(added) <= s.limit
        })
    }

    /// A buyer's claimed tonnes per slot.
    #[must_use]
    pub fn claims(&self, account: u64) -> Option<Allocation> {
        self.buyer_index(account).map(|index| {
            let mut allocation = Allocation::default();
            for (slot, s) in self.buyers[index].slots.iter().enumerate() {
                allocation.0[slot] = s.claimed;
            }
            allocation
        })
    }

    /// Stops counting `unfilled` tonnes of an accepted order's allocation as
    /// claimed (it was cancelled or expired unfilled). Fills consume an
    /// allocation in slot order (scope 1, scope 2, scope 3 by category), so
    /// the unfilled part is released from the last slots first.
    pub fn release(&mut self, account: u64, allocation: &Allocation, unfilled: u64) {
        let Some(index) = self.buyer_index(account) else {
            return;
        };
        let buyer = &mut self.buyers[index];
        let mut left = unfilled;
        for (index, &qty) in allocation.0.iter().enumerate().rev() {
            let take = left.min(qty);
            let slot = &mut buyer.slots[index].claimed;
            *slot = slot.saturating_sub(take);
            buyer.claimed_total = buyer.claimed_total.saturating_sub(take);
            left -= take;
            if left == 0 {
                break;
            }
        }
    }
}
