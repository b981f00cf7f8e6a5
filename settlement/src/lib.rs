//! The tonnex settlement process: follows the venue's fill stream and moves
//! each trade through escrow, delivery-versus-payment, registry transfer and
//! retirement, in a SQLite ledger, and issues a certificate per settled
//! buyer order. It links only the protocol crate, never the engine: it
//! speaks to the venue as any other client would.

pub mod audit;
pub mod budget;
pub mod certificate;
pub mod escrow;
pub mod follow;
pub mod ledger;
pub mod metrics;
pub mod reconcile;
pub mod registry;
pub mod report;
pub mod venue_feed;
pub mod webhook;

pub use tonnex_protocol as protocol;

/// The fields every certificate carries (COMPLIANCE.md).
pub const CERTIFICATE_FIELDS: [&str; 22] = [
    "certificate_id",
    "issued_at",
    "account",
    "company",
    "reporting_year",
    "pathway",
    "floor_usd",
    "internal_carbon_price_usd",
    "attestation",
    "attestation_approved_by",
    "scope_allocation",
    "trades",
    "supplementary_pricing_total_usd",
    "credits",
    "retirement",
    "coverage_pct",
    "order_coverage_pct",
    "tier_threshold_met",
    "rules_version",
    "rules_sha256",
    "sha256",
    "order_id",
];
