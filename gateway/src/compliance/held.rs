//! Orders held for an attestation (step 10, `floor_policy = "attest"`): they
//! wait in the gateway, not sent to the engine and not claimed, until the
//! buyer submits an attestation that makes them valid (then they are checked
//! again from step 1, since anything may have changed) or until they expire.

use super::profiles::Attestation;
use super::router::{Decision, OrderRequest, Outcome, Router};

/// A held order and when it stops waiting.
#[derive(Clone, Debug)]
struct Held {
    order: OrderRequest,
    expires_at_ns: u64,
}

/// The orders waiting for attestations, oldest first.
#[derive(Clone, Debug, Default)]
pub struct HeldOrders {
    waiting: Vec<Held>,
}

impl HeldOrders {
    /// Orders waiting.
    #[must_use]
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Whether nothing waits.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// When order `id` of `account` stops waiting, if it waits.
    #[must_use]
    pub fn expiry(&self, account: u64, id: u64) -> Option<u64> {
        self.waiting
            .iter()
            .find(|h| h.order.account == account && h.order.id == id)
            .map(|h| h.expires_at_ns)
    }

    /// Holds `order` (which the router just held) until `expires_at_ns`.
    pub fn hold(&mut self, order: OrderRequest, expires_at_ns: u64) {
        self.waiting.push(Held {
            order,
            expires_at_ns,
        });
    }

    /// The buyer `account` submitted `attestation`: it is added to the
    /// buyer's profile, and every order of that buyer still waiting is
    /// decided again, oldest first. Returns each re-decided order with its
    /// new decision (accepted ones are claimed by then); orders held again
    /// keep waiting.
    pub fn attest(
        &mut self,
        router: &mut Router,
        account: u64,
        attestation: Attestation,
    ) -> Vec<(OrderRequest, Decision)> {
        if !router.add_attestation(account, attestation) {
            return Vec::new();
        }
        let mut decided = Vec::new();
        let mut still = Vec::with_capacity(self.waiting.len());
        for held in self.waiting.drain(..) {
            if held.order.account != account {
                still.push(held);
                continue;
            }
            let decision = router.decide(&held.order);
            if decision.outcome == Outcome::Hold {
                still.push(held);
            } else {
                decided.push((held.order, decision));
            }
        }
        self.waiting = still;
        decided
    }

    /// Removes and returns every order whose time is up at `now_ns`.
    pub fn expire(&mut self, now_ns: u64) -> Vec<OrderRequest> {
        let (expired, still): (Vec<Held>, Vec<Held>) = self
            .waiting
            .drain(..)
            .partition(|h| h.expires_at_ns <= now_ns);
        self.waiting = still;
        expired.into_iter().map(|h| h.order).collect()
    }
}
