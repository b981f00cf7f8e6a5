//! The admin port's attestation decisions (`[compliance] attestations =
//! "approved"`): a compliance officer approves a buyer's submitted
//! attestation, which then counts and re-checks the buyer's held orders
//! (the certificate names the officer), or revokes one in force, after
//! which orders below the floor are held again. Each decision is journaled
//! with the officer and the evidence's SHA-256; the buyer hears of it.

use mio::Token;
use tonnex_engine::{AdminCommand, Command, VenueCommand};
use tonnex_protocol::{Pathway, RejectReason};

use super::admin::ReplyTo;
use super::server::{Gateway, Inflight};

/// What the decision is.
pub(super) struct AttestationDecision {
    pub account: u64,
    pub id: String,
    pub approve: bool,
    pub evidence_sha256: String,
}

impl Gateway {
    /// Carries out `decision` for `operator`; refused when there is nothing
    /// to approve or revoke.
    pub(super) fn decide_attestation(
        &mut self,
        token: Token,
        nonce: u64,
        operator: &str,
        reason: &str,
        decision: AttestationDecision,
    ) -> Result<(), (RejectReason, String)> {
        let AttestationDecision {
            account,
            id,
            approve,
            evidence_sha256,
        } = decision;
        let desk = &mut self.desk;
        let (rechecked, text) = if approve {
            if evidence_sha256.len() != 64
                || !evidence_sha256.bytes().all(|b| b.is_ascii_hexdigit())
            {
                return Err((
                    RejectReason::InvalidRequest,
                    "an approval needs the evidence's SHA-256 (64 hex digits)".into(),
                ));
            }
            let Some(at) = desk
                .pending_attestations
                .iter()
                .position(|(a, att)| *a == account && att.id == id)
            else {
                return Err((
                    RejectReason::InvalidRequest,
                    format!("account {account} has no attestation '{id}' waiting for approval"),
                ));
            };
            let (_, attestation) = desk.pending_attestations.remove(at);
            desk.approvers
                .insert((account, id.clone()), operator.to_string());
            desk.wire_attestations.push((account, attestation.clone()));
            let decided = desk.held.attest(&mut desk.router, account, attestation);
            (
                decided,
                format!("attestation '{id}' of account {account} approved"),
            )
        } else {
            if !desk.router.remove_attestation(account, &id) {
                return Err((
                    RejectReason::InvalidRequest,
                    format!("account {account} has no attestation '{id}' in force"),
                ));
            }
            desk.wire_attestations
                .retain(|(a, att)| !(*a == account && att.id == id));
            desk.approvers.remove(&(account, id.clone()));
            desk.revoked.insert((account, id.clone()));
            (
                Vec::new(),
                format!("attestation '{id}' of account {account} revoked"),
            )
        };
        // Journaled first (answered to the officer and the buyer once it
        // is), then the orders it released.
        self.submit_tracked(
            Inflight {
                corr: 0,
                account,
                client_order_id: 0,
                rechecked: rechecked.len() as u32,
                pathway: Pathway::None,
                sub_ledger: "",
                floor_ticks: 0,
                attestation: None,
                allocation: None,
                reply: Some(Box::new(ReplyTo { token, nonce, text })),
                received_ns: 0,
            },
            Command::Admin(Box::new(AdminCommand {
                operator: operator.to_string(),
                reason: reason.to_string(),
                command: Command::Venue(Box::new(VenueCommand::AttestationDecided {
                    account,
                    id,
                    approved: approve,
                    approver: operator.to_string(),
                    evidence_sha256,
                })),
            })),
        );
        self.submit_rechecked(account, rechecked);
        Ok(())
    }
}
