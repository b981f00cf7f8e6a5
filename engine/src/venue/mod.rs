//! The venue's bookkeeping beside the books: everything a later decision of
//! the gateway depends on, folded from the journaled commands and the
//! events they produced, so that the one recovery path rebuilds it and the
//! state digest covers it.
//!
//! - each account's client-order-id high-water mark (every live order's
//!   client id is in its pool slot, so reports after a restart still carry
//!   it), and each live buyer's buy's allocation over its scope lines;
//! - each buyer's claimed tonnes per inventory slot: claimed = filled +
//!   open (COMPLIANCE.md step 11), so an IOC remainder, a cancel, an
//!   expiry or a replace down frees tonnes at once, last line first;
//! - attestations submitted over the wire, held orders with their
//!   deadlines, and the rules and profiles in force;
//! - every registry serial block deposited (no lot may overlap one).
//!
//! Pure and deterministic: no clock (deadlines travel inside commands),
//! ordered maps wherever iteration order reaches the image.

pub mod allocation;
pub mod attestations;
mod image;
pub mod serials;
pub mod sessions;

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasherDefault;

use bincode::{Decode, Encode};
use tonnex_protocol::wire;

pub use self::allocation::{Allocation, OrderLines, SLOTS};
pub use self::attestations::AttestationRecord;
pub use self::image::VenueImage;
pub use self::serials::{SerialBlock, SerialBlocks, SerialRecord};
pub use self::sessions::{Sessions, SessionsImage};
use crate::accounts::IntHasher;
use crate::command::{Command, VenueCommand};
use crate::event::Event;

/// A live buyer's buy as the venue remembers it: its allocation over the
/// buyer's scope lines (every order's client id and open tonnes are in its
/// pool slot too).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct OrderTag {
    /// Venue order id.
    pub order_id: u64,
    /// Owner.
    pub account: u64,
    /// The client's id.
    pub client_order_id: u64,
    /// Open tonnes.
    pub open: u64,
    /// A buyer's buy: the open tonnes per scope line, in line order.
    pub allocation: Option<Box<OrderLines>>,
}

/// An order waiting for an attestation.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct HeldRecord {
    /// Journal sequence that held it.
    pub seq: u64,
    /// The buyer.
    pub account: u64,
    /// When it expires (gateway clock, ns since the Unix epoch).
    pub expires_at_ns: u64,
    /// The order as sent.
    pub order: wire::NewOrder,
}

/// The rules and profiles in force.
#[derive(Clone, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct RulesRecord {
    /// Journal sequence from which they apply.
    pub seq: u64,
    /// Rules file `version`.
    pub version: String,
    /// Rules file SHA-256, hex.
    pub rules_sha256: String,
    /// Profiles SHA-256, hex.
    pub profiles_sha256: String,
}

/// The bookkeeping itself (see the module documentation).
#[derive(Clone, Debug, Default)]
pub struct VenueState {
    /// Set by the first venue command: workload replays never pay for this.
    active: bool,
    orders: HashMap<u64, OrderTag, BuildHasherDefault<IntHasher>>,
    client_order_ids: BTreeMap<u64, u64>,
    claims: BTreeMap<u64, Allocation>,
    attestations: Vec<AttestationRecord>,
    held: Vec<HeldRecord>,
    rules: Option<RulesRecord>,
    serials: SerialBlocks,
    kyc: BTreeMap<u64, u8>,
    pending_attestations: Vec<AttestationRecord>,
    listings: Vec<crate::command::InstrumentListing>,
    accounts_added: Vec<crate::command::AccountListing>,
    inventories: BTreeMap<u64, crate::command::InventoryRecord>,
    sessions: Sessions,
}

impl VenueState {
    /// Whether `command` (or the state) needs the bookkeeping at all: a
    /// workload replay's orders carry no client id and never do.
    #[inline]
    #[must_use]
    pub fn wants(&self, command: &Command) -> bool {
        self.active
            || match command {
                Command::New(order) => order.client_order_id != 0,
                Command::Scoped(_) | Command::Venue(_) => true,
                _ => false,
            }
    }

    /// Folds command `seq` and the events it produced.
    pub fn apply(&mut self, seq: u64, command: &Command, events: &[Event]) {
        self.active = true;
        match command {
            Command::New(order) => self.use_client_id(order.account, order.client_order_id),
            Command::Scoped(scoped) => {
                let order = &scoped.order;
                self.use_client_id(order.account, order.client_order_id);
                if scoped.released_from_hold {
                    self.unhold(order.account, order.client_order_id);
                }
            }
            Command::Venue(venue) => self.venue(seq, venue),
            _ => {}
        }
        for event in events {
            self.event(command, event);
        }
    }

    fn venue(&mut self, seq: u64, command: &VenueCommand) {
        match command {
            VenueCommand::Rules {
                version,
                rules_sha256,
                profiles_sha256,
            } => {
                self.rules = Some(RulesRecord {
                    seq,
                    version: version.clone(),
                    rules_sha256: rules_sha256.clone(),
                    profiles_sha256: profiles_sha256.clone(),
                });
            }
            VenueCommand::Attest {
                account,
                id,
                internal_price_micros,
                reporting_year,
            } => self.attestations.push(AttestationRecord::new(
                seq,
                *account,
                id,
                *internal_price_micros,
                *reporting_year,
            )),
            VenueCommand::AttestationSubmitted {
                account,
                id,
                internal_price_micros,
                reporting_year,
            } => self.pending_attestations.push(AttestationRecord::new(
                seq,
                *account,
                id,
                *internal_price_micros,
                *reporting_year,
            )),
            VenueCommand::AttestationDecided {
                account,
                id,
                approved,
                approver,
                evidence_sha256,
            } => self.decide_attestation(*account, id, *approved, approver, evidence_sha256),
            VenueCommand::Hold {
                account,
                expires_at_ns,
                order,
            } => {
                self.use_client_id(*account, order.client_order_id);
                self.held.push(HeldRecord {
                    seq,
                    account: *account,
                    expires_at_ns: *expires_at_ns,
                    order: order.clone(),
                });
            }
            VenueCommand::Unhold {
                account,
                client_order_id,
                ..
            } => self.unhold(*account, *client_order_id),
            VenueCommand::Refused {
                account,
                client_order_id,
                ..
            }
            | VenueCommand::RuleRefused {
                account,
                client_order_id,
                ..
            } => self.use_client_id(*account, *client_order_id),
            VenueCommand::InstrumentListed(listing) => self.listings.push(listing.clone()),
            VenueCommand::AccountAdded(listing) => self.accounts_added.push(listing.clone()),
            VenueCommand::Inventory(record) => {
                self.inventories.insert(record.account, record.clone());
            }
            VenueCommand::Kyc { account, status } => {
                self.kyc.insert(*account, *status);
            }
            VenueCommand::Annotate(_) => {}
            VenueCommand::Reports {
                session_id,
                records,
            } => self.sessions.fold(*session_id, records),
            VenueCommand::Serials { block, source } => {
                // Ingestion refused overlaps before journaling; a replayed
                // overlap (a journal written by a buggy build) stays out.
                let _ = self.serials.insert(SerialRecord {
                    seq,
                    block: block.clone(),
                    source: source.clone(),
                });
            }
        }
    }

    fn event(&mut self, command: &Command, event: &Event) {
        match *event {
            Event::Accepted { order_id, .. } => {
                let Some(order) = command.new_order() else {
                    return;
                };
                let allocation = match command {
                    Command::Scoped(scoped) => {
                        let lines = OrderLines::from_scope(&scoped.decision.scope);
                        self.claims
                            .entry(order.account)
                            .or_default()
                            .add(&lines.per_slot());
                        Some(Box::new(lines))
                    }
                    _ => None,
                };
                // A buyer's buy only: every other order's client id is in
                // its pool slot ([`crate::pool::Slot`]), the one record
                // the venue rebuilds from.
                if allocation.is_some() {
                    self.orders.insert(
                        order_id,
                        OrderTag {
                            order_id,
                            account: order.account,
                            client_order_id: order.client_order_id,
                            open: order.qty.tonnes(),
                            allocation,
                        },
                    );
                }
            }
            Event::Fill {
                taker_id,
                maker_id,
                qty,
                taker_open,
                maker_open,
                ..
            } => {
                for (id, open) in [(taker_id, taker_open), (maker_id, maker_open)] {
                    // One probe: a filled order is removed through its entry.
                    if let Entry::Occupied(mut tag) = self.orders.entry(id) {
                        if open.tonnes() == 0 {
                            tag.remove();
                            continue;
                        }
                        let tag = tag.get_mut();
                        tag.open = open.tonnes();
                        if let Some(allocation) = &mut tag.allocation {
                            // Filled tonnes stay claimed: they leave the
                            // open part, first line first.
                            allocation.take_first(qty.tonnes());
                        }
                    }
                }
            }
            Event::Cancelled {
                order_id, open_qty, ..
            } => {
                if let Some(mut tag) = self.orders.remove(&order_id) {
                    if let Some(allocation) = &mut tag.allocation {
                        let freed = allocation.take_last(open_qty.tonnes());
                        self.release(tag.account, &freed);
                    }
                }
            }
            Event::Replaced { order_id, qty, .. } => {
                let Some(tag) = self.orders.get_mut(&order_id) else {
                    return;
                };
                let new_open = qty.tonnes();
                let old_open = tag.open;
                tag.open = new_open;
                let account = tag.account;
                let Some(allocation) = &mut tag.allocation else {
                    return;
                };
                let (freed, added) = allocation.resize(old_open, new_open);
                self.release(account, &freed);
                self.claims.entry(account).or_default().add(&added);
            }
            Event::Rejected { .. } | Event::Applied => {}
        }
    }

    fn release(&mut self, account: u64, freed: &Allocation) {
        if let Some(claims) = self.claims.get_mut(&account) {
            claims.subtract(freed);
        }
    }

    fn use_client_id(&mut self, account: u64, client_order_id: u64) {
        if client_order_id == 0 {
            return;
        }
        let high = self.client_order_ids.entry(account).or_insert(0);
        *high = (*high).max(client_order_id);
    }

    fn unhold(&mut self, account: u64, client_order_id: u64) {
        self.held
            .retain(|h| !(h.account == account && h.order.client_order_id == client_order_id));
    }

    /// The highest client order id `account` has used (0: none).
    #[must_use]
    pub fn last_client_order_id(&self, account: u64) -> u64 {
        self.client_order_ids.get(&account).copied().unwrap_or(0)
    }

    /// Every account's highest client order id, by account.
    pub fn client_order_ids(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.client_order_ids.iter().map(|(&a, &c)| (a, c))
    }

    /// A live buyer's buy's tag.
    #[must_use]
    pub fn order(&self, order_id: u64) -> Option<&OrderTag> {
        self.orders.get(&order_id)
    }

    /// Every live buyer's buy's tag, by order id.
    #[must_use]
    pub fn orders(&self) -> Vec<&OrderTag> {
        let mut orders: Vec<&OrderTag> = self.orders.values().collect();
        orders.sort_unstable_by_key(|t| t.order_id);
        orders
    }

    /// A buyer's claimed tonnes per slot (filled + open).
    #[must_use]
    pub fn claims(&self, account: u64) -> Allocation {
        self.claims.get(&account).copied().unwrap_or_default()
    }

    /// Every buyer's claims, by account.
    pub fn all_claims(&self) -> impl Iterator<Item = (u64, &Allocation)> + '_ {
        self.claims.iter().map(|(&a, c)| (a, c))
    }

    /// Attestations accepted over the wire, in journal order.
    #[must_use]
    pub fn attestations(&self) -> &[AttestationRecord] {
        &self.attestations
    }

    /// Orders held for an attestation, oldest first.
    #[must_use]
    pub fn held(&self) -> &[HeldRecord] {
        &self.held
    }

    /// The rules and profiles in force, once recorded.
    #[must_use]
    pub fn rules(&self) -> Option<&RulesRecord> {
        self.rules.as_ref()
    }

    /// Accounts added at runtime, in journal order.
    #[must_use]
    pub fn accounts_added(&self) -> &[crate::command::AccountListing] {
        &self.accounts_added
    }

    /// Inventories uploaded through the admin port, the latest per buyer.
    pub fn inventories(&self) -> impl Iterator<Item = &crate::command::InventoryRecord> {
        self.inventories.values()
    }

    /// Instruments listed at runtime, in journal order.
    #[must_use]
    pub fn listings(&self) -> &[crate::command::InstrumentListing] {
        &self.listings
    }

    /// KYC statuses set through the admin port (accounts never changed
    /// there keep their configured status).
    pub fn kyc(&self) -> impl Iterator<Item = (u64, u8)> + '_ {
        self.kyc.iter().map(|(&a, &s)| (a, s))
    }

    /// A cluster's report streams (see [`Sessions`]).
    #[must_use]
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// Registry serial blocks deposited so far.
    #[must_use]
    pub fn serials(&self) -> &SerialBlocks {
        &self.serials
    }

    /// Checks that every buyer's claims equal the filled tonnes plus its
    /// open orders' allocations: `filled` gives each buyer's filled tonnes
    /// per slot as counted from the outside. Returns what differs.
    pub fn check_claims(&self, filled: &BTreeMap<u64, Allocation>) -> Result<(), String> {
        let mut expected: BTreeMap<u64, Allocation> = filled.clone();
        for tag in self.orders.values() {
            if let Some(allocation) = &tag.allocation {
                expected
                    .entry(tag.account)
                    .or_default()
                    .add(&allocation.per_slot());
                if allocation.total() != tag.open {
                    return Err(format!(
                        "order {}: open {} t but {} t allocated",
                        tag.order_id,
                        tag.open,
                        allocation.total()
                    ));
                }
            }
        }
        for (account, claims) in &self.claims {
            let want = expected.remove(account).unwrap_or_default();
            if *claims != want {
                return Err(format!(
                    "buyer {account}: claims {:?} but filled + open is {:?}",
                    claims.0, want.0
                ));
            }
        }
        if let Some((account, want)) = expected.into_iter().find(|(_, a)| a.total() > 0) {
            return Err(format!(
                "buyer {account}: no claims but filled + open is {:?}",
                want.0
            ));
        }
        Ok(())
    }
}
