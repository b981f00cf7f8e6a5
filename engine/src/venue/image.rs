//! The venue's bookkeeping in its canonical form, in the state image (and
//! so in snapshots and the digest), and back.

use bincode::{Decode, Encode};

use super::{
    Allocation, AttestationRecord, HeldRecord, OrderTag, RulesRecord, SerialBlocks, SerialRecord,
    Sessions, SessionsImage, VenueState,
};

/// The canonical form of a [`VenueState`], in the state image.
#[derive(Clone, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct VenueImage {
    /// Live buyers' buys' tags, by order id.
    pub orders: Vec<OrderTag>,
    /// `(account, highest client order id used)`, by account.
    pub client_order_ids: Vec<(u64, u64)>,
    /// `(buyer, claimed tonnes per slot)`, by account.
    pub claims: Vec<(u64, Allocation)>,
    /// Attestations, in journal order.
    pub attestations: Vec<AttestationRecord>,
    /// Held orders, oldest first.
    pub held: Vec<HeldRecord>,
    /// Rules in force.
    pub rules: Option<RulesRecord>,
    /// Registry serial blocks deposited, in journal order.
    pub serials: Vec<SerialRecord>,
    /// `(account, KYC status code)` set through the admin port, by account.
    pub kyc: Vec<(u64, u8)>,
    /// Attestations submitted and waiting for approval, in journal order.
    pub pending_attestations: Vec<AttestationRecord>,
    /// Instruments listed at runtime, in journal order.
    pub listings: Vec<crate::command::InstrumentListing>,
    /// Accounts added at runtime, in journal order.
    pub accounts_added: Vec<crate::command::AccountListing>,
    /// Inventories uploaded through the admin port, the latest per buyer,
    /// by account.
    pub inventories: Vec<crate::command::InventoryRecord>,
    /// A cluster's report streams: the sequence space and each account's
    /// next number.
    pub sessions: SessionsImage,
}

impl VenueState {
    /// The canonical image.
    #[must_use]
    pub fn image(&self) -> VenueImage {
        VenueImage {
            orders: self.orders().into_iter().cloned().collect(),
            client_order_ids: self.client_order_ids().collect(),
            claims: self.claims.iter().map(|(&a, &c)| (a, c)).collect(),
            attestations: self.attestations.clone(),
            held: self.held.clone(),
            rules: self.rules.clone(),
            serials: self.serials.records().to_vec(),
            kyc: self.kyc.iter().map(|(&a, &s)| (a, s)).collect(),
            pending_attestations: self.pending_attestations.clone(),
            listings: self.listings.clone(),
            accounts_added: self.accounts_added.clone(),
            inventories: self.inventories.values().cloned().collect(),
            sessions: self.sessions.image(),
        }
    }

    /// Rebuilds the bookkeeping from its image.
    #[must_use]
    pub fn from_image(image: &VenueImage) -> VenueState {
        VenueState {
            active: *image != VenueImage::default(),
            orders: image
                .orders
                .iter()
                .map(|t| (t.order_id, t.clone()))
                .collect(),
            client_order_ids: image.client_order_ids.iter().copied().collect(),
            claims: image.claims.iter().copied().collect(),
            attestations: image.attestations.clone(),
            held: image.held.clone(),
            rules: image.rules.clone(),
            serials: SerialBlocks::from_records(&image.serials),
            kyc: image.kyc.iter().copied().collect(),
            pending_attestations: image.pending_attestations.clone(),
            listings: image.listings.clone(),
            accounts_added: image.accounts_added.clone(),
            inventories: image
                .inventories
                .iter()
                .map(|r| (r.account, r.clone()))
                .collect(),
            sessions: Sessions::from_image(&image.sessions),
        }
    }
}
