//! Attestations in the venue's bookkeeping: those in force (accepted at
//! once, or approved by a compliance officer where approval is required,
//! or revoked since), and those submitted and waiting for approval.

use bincode::{Decode, Encode};

use super::VenueState;

/// An attestation accepted over the wire.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct AttestationRecord {
    /// Journal sequence that accepted it.
    pub seq: u64,
    /// The buyer.
    pub account: u64,
    /// Its id.
    pub id: String,
    /// Attested price, micro-dollars per tonne.
    pub internal_price_micros: i64,
    /// Reporting year.
    pub reporting_year: u16,
    /// Who approved it (where approval is required).
    pub approver: Option<String>,
    /// SHA-256 of the evidence the approver reviewed.
    pub evidence_sha256: Option<String>,
    /// Revoked by a compliance officer: no longer counts (its id stays used).
    pub revoked: bool,
}

impl AttestationRecord {
    /// An attestation as journaled at `seq`: not approved, not revoked.
    #[must_use]
    pub fn new(
        seq: u64,
        account: u64,
        id: &str,
        internal_price_micros: i64,
        reporting_year: u16,
    ) -> AttestationRecord {
        AttestationRecord {
            seq,
            account,
            id: id.to_string(),
            internal_price_micros,
            reporting_year,
            approver: None,
            evidence_sha256: None,
            revoked: false,
        }
    }
}

impl VenueState {
    /// An approval moves a pending attestation into force; a revocation
    /// marks one in force revoked.
    pub(super) fn decide_attestation(
        &mut self,
        account: u64,
        id: &str,
        approved: bool,
        approver: &str,
        evidence_sha256: &str,
    ) {
        if approved {
            if let Some(at) = self
                .pending_attestations
                .iter()
                .position(|a| a.account == account && a.id == id)
            {
                let mut record = self.pending_attestations.remove(at);
                record.approver = Some(approver.to_string());
                record.evidence_sha256 = Some(evidence_sha256.to_string());
                self.attestations.push(record);
            }
        } else if let Some(record) = self
            .attestations
            .iter_mut()
            .find(|a| a.account == account && a.id == id && !a.revoked)
        {
            record.revoked = true;
        }
    }
}
