//! A new gateway's state rebuilt from the recovered engine state's
//! bookkeeping ([`Seed`]): what the journal knows, so a restart (or a
//! cluster node's promotion) answers as the venue did.

use std::collections::HashMap;

use rust_decimal::Decimal;
use tonnex_engine::venue::OrderLines;

use super::{Gateway, OrderInfo, Seed};
use crate::compliance::profiles::Attestation;

impl Gateway {
    /// Rebuilds what the gateway keeps from the journal's bookkeeping: the
    /// client id high-water marks, live orders with their client ids and
    /// open allocations, the router's claims, attestations and held orders.
    pub(super) fn rebuild(&mut self, seed: &Seed) {
        let venue = &seed.venue;
        for &(account, last) in &venue.client_order_ids {
            if let Some(state) = self.accounts.get_mut(&account) {
                state.last_client_order_id = last;
            }
        }
        // Live orders from the book: a buyer's buy with its allocation, and
        // every other one only if the gateway records every order.
        let every = self.records_every_order();
        let allocations: HashMap<u64, &OrderLines> = venue
            .orders
            .iter()
            .filter_map(|t| t.allocation.as_deref().map(|a| (t.order_id, a)))
            .collect();
        for order in &seed.orders {
            let allocation = allocations.get(&order.order_id);
            if allocation.is_none() && !every {
                continue;
            }
            self.orders.insert(
                order.order_id,
                OrderInfo {
                    account: order.account,
                    instrument: order.instrument,
                    open: order.open,
                    allocation: allocation.map(|&a| Box::new(a.clone())),
                },
            );
        }
        // Accounts added at runtime (their hashed credential), then KYC
        // changes made through the admin port, which override the file.
        for listing in &venue.accounts_added {
            if let Ok(role) = crate::venue::admin_accounts::listed_role(&listing.role) {
                self.admit_account(listing, role);
            }
        }
        for &(account, code) in &venue.kyc {
            if let Some(status) = crate::venue::admin::kyc_status(code) {
                self.desk.router.set_status(account, status);
            }
        }
        // Uploaded inventories before the claims they bound.
        for record in &venue.inventories {
            self.apply_inventory(record);
        }
        for (account, claims) in &venue.claims {
            self.desk.router.claim_slots(*account, claims);
        }
        let attestation_of = |record: &tonnex_engine::venue::AttestationRecord| Attestation {
            id: record.id.clone(),
            internal_price_usd: Decimal::new(record.internal_price_micros, 6),
            reporting_year: i64::from(record.reporting_year),
        };
        for record in &venue.attestations {
            if record.revoked {
                self.desk
                    .revoked
                    .insert((record.account, record.id.clone()));
                continue;
            }
            if let Some(approver) = &record.approver {
                self.desk
                    .approvers
                    .insert((record.account, record.id.clone()), approver.clone());
            }
            let attestation = attestation_of(record);
            self.desk
                .wire_attestations
                .push((record.account, attestation.clone()));
            self.desk
                .router
                .add_attestation(record.account, attestation);
        }
        for record in &venue.pending_attestations {
            self.desk
                .pending_attestations
                .push((record.account, attestation_of(record)));
        }
        for held in &venue.held {
            let order = &held.order;
            let (Some(kind), Some(side), Some(reference)) = (
                order.kind(),
                order.side(),
                self.market.instruments.get(order.instrument as usize),
            ) else {
                continue;
            };
            let request = crate::venue::buyer::order_request(
                held.account,
                order,
                reference,
                kind,
                side,
                i64::try_from(order.qty).unwrap_or(0),
            );
            self.desk
                .held_orders
                .insert((held.account, order.client_order_id), order.clone());
            self.desk.held.hold(request, held.expires_at_ns);
        }
    }
}
