//! The admin port's requests: verified (operator, signature, timestamp
//! window, nonce never seen inside the window, the role's verbs), then
//! carried out (`admin_verbs`) as journaled `Admin` commands that name the
//! operator and the reason, and answered once the journal holds them.

use std::collections::HashMap;
use std::sync::Arc;

use mio::Token;
use tonnex_protocol::admin::{self, AdminVerb, Signed, KYC_ACTIVE, KYC_PENDING, KYC_SUSPENDED};
use tonnex_protocol::RejectReason;

use super::intake::wall_ns;
use super::server::Gateway;
use crate::config::{AccountStatus, OperatorConfig, OperatorRole, VenueConfig};
use tonnex_engine::venue::SerialBlocks;

/// Where a journaled admin action's answer goes.
pub(super) struct ReplyTo {
    pub token: Token,
    pub nonce: u64,
    pub text: String,
}

/// An admin action whose outputs are arriving.
pub(super) struct Pending {
    pub to: ReplyTo,
    pub seq: u64,
    pub rejected: Option<RejectReason>,
    /// For settlement outcomes: the last id, and the engine's answers.
    pub outcomes: Option<OutcomeTally>,
}

/// The engine's answers to one batch of settlement outcomes.
pub(super) struct OutcomeTally {
    pub through_id: u64,
    pub applied: u32,
    pub refused: Vec<admin::OutcomeRefusal>,
}

/// The admin port's state.
pub(super) struct AdminDesk {
    operators: HashMap<String, OperatorConfig>,
    window_ns: u64,
    /// `(operator, nonce)` → the request's timestamp, inside the window.
    seen: HashMap<(String, u64), u64>,
    /// Per instrument: halted.
    pub halted: Vec<bool>,
    pub pending: Option<Pending>,
    /// The venue file (instruments' eligibility, accounts) lot deposits
    /// are checked against.
    pub config: Arc<VenueConfig>,
    /// Every serial block deposited (the journal's, and this run's).
    pub serials: SerialBlocks,
}

impl AdminDesk {
    /// The desk for the venue file `venue`, with the instruments' halt
    /// states and the serial blocks the journal holds.
    pub fn new(venue: &VenueConfig, halted: Vec<bool>, serials: SerialBlocks) -> AdminDesk {
        let config = &venue.admin;
        AdminDesk {
            config: Arc::new(venue.clone()),
            serials,
            operators: config
                .operators
                .iter()
                .map(|o| (o.name.clone(), o.clone()))
                .collect(),
            window_ns: config.window_ms * 1_000_000,
            seen: HashMap::new(),
            halted,
            pending: None,
        }
    }
}

/// A verb as the log shows it: never an account's secret, and a lot
/// export by name, not content.
fn loggable(verb: &AdminVerb) -> String {
    match verb {
        AdminVerb::AddAccount {
            account, name, role, ..
        } => format!("AddAccount {{ account: {account}, name: {name:?}, role: {role:?}, secret: <redacted> }}"),
        AdminVerb::DepositLots { symbol, name, csv } => format!(
            "DepositLots {{ symbol: {symbol:?}, name: {name:?}, bytes: {} }}",
            csv.len()
        ),
        other => format!("{other:?}"),
    }
}

/// Whether `role` may use `verb`.
fn permitted(role: OperatorRole, verb: &AdminVerb) -> bool {
    match verb {
        AdminVerb::Status => true,
        AdminVerb::Halt { .. } | AdminVerb::Resume { .. } | AdminVerb::MassCancel { .. } => {
            matches!(role, OperatorRole::Operator | OperatorRole::Risk)
        }
        AdminVerb::Kyc { .. } => matches!(
            role,
            OperatorRole::Operator | OperatorRole::Risk | OperatorRole::Compliance
        ),
        AdminVerb::DepositCash { .. }
        | AdminVerb::WithdrawCash { .. }
        | AdminVerb::WithdrawCredits { .. } => role == OperatorRole::Operator,
        // Settlement deposits what sellers move into the venue's custody
        // account at the registry, through the same checks.
        AdminVerb::DepositLots { .. } => {
            matches!(role, OperatorRole::Operator | OperatorRole::Settlement)
        }
        AdminVerb::Attestation { .. } => role == OperatorRole::Compliance,
        AdminVerb::AddInstrument { .. } | AdminVerb::AddAccount { .. } => {
            role == OperatorRole::Operator
        }
        AdminVerb::ReloadRules | AdminVerb::Inventory { .. } => {
            matches!(role, OperatorRole::Operator | OperatorRole::Compliance)
        }
        AdminVerb::Buyer { .. } => role != OperatorRole::Settlement,
        AdminVerb::Settlement { .. } => role == OperatorRole::Settlement,
        AdminVerb::ClusterStatus => true,
        AdminVerb::ClusterTransfer { .. }
        | AdminVerb::ClusterAdd { .. }
        | AdminVerb::ClusterRemove { .. } => role == OperatorRole::Operator,
    }
}

/// The account status a KYC code stands for.
pub(super) fn kyc_status(code: u8) -> Option<AccountStatus> {
    match code {
        KYC_PENDING => Some(AccountStatus::PendingKyc),
        KYC_ACTIVE => Some(AccountStatus::Active),
        KYC_SUSPENDED => Some(AccountStatus::Suspended),
        _ => None,
    }
}

pub(super) fn kyc_code(status: AccountStatus) -> u8 {
    match status {
        AccountStatus::PendingKyc => KYC_PENDING,
        AccountStatus::Active => KYC_ACTIVE,
        AccountStatus::Suspended => KYC_SUSPENDED,
    }
}

impl AdminDesk {
    /// Operator, signature, window, nonce and role, in that order.
    pub(super) fn check(
        &mut self,
        signed: &Signed,
    ) -> Result<OperatorRole, (RejectReason, String)> {
        let request = &signed.request;
        let Some(operator) = self.operators.get(&request.operator) else {
            return Err((
                RejectReason::UnknownOperator,
                format!("no operator '{}'", request.operator),
            ));
        };
        if !admin::verify(signed, operator.key.as_bytes()) {
            return Err((
                RejectReason::BadSignature,
                "the signature does not verify with the operator's key".into(),
            ));
        }
        let now = wall_ns();
        let window = self.window_ns;
        if now.abs_diff(request.ts_ns) > window {
            return Err((
                RejectReason::StaleRequest,
                format!(
                    "timestamp {} is more than {} ms from the venue's clock",
                    request.ts_ns,
                    window / 1_000_000
                ),
            ));
        }
        self.seen.retain(|_, &mut ts| now.abs_diff(ts) <= window);
        let key = (request.operator.clone(), request.nonce);
        if self.seen.contains_key(&key) {
            return Err((
                RejectReason::ReplayedRequest,
                format!("nonce {} was already used", request.nonce),
            ));
        }
        self.seen.insert(key, request.ts_ns);
        if request.reason.len() > admin::MAX_REASON_BYTES {
            return Err((
                RejectReason::InvalidRequest,
                format!(
                    "the reason is {} bytes; at most {} are journaled",
                    request.reason.len(),
                    admin::MAX_REASON_BYTES
                ),
            ));
        }
        if !permitted(operator.role, &request.verb) {
            return Err((
                RejectReason::NotPermitted,
                format!("role {} may not do that", operator.role.name()),
            ));
        }
        Ok(operator.role)
    }
}

impl Gateway {
    /// A signed request from the admin port.
    pub(super) fn on_admin(&mut self, token: Token, signed: Signed) {
        let request = &signed.request;
        let nonce = request.nonce;
        let verdict = self.admin.check(&signed);
        let role = match verdict {
            Ok(role) => role,
            Err((reason, text)) => {
                tracing::warn!(
                    operator = %request.operator,
                    reason = reason.as_str(),
                    text,
                    "admin request refused"
                );
                self.metrics.admin(false);
                self.admin_refuse(token, nonce, reason, text);
                return;
            }
        };
        tracing::info!(
            operator = %request.operator,
            role = role.name(),
            verb = %loggable(&request.verb),
            reason = %request.reason,
            "admin request"
        );
        let operator = request.operator.clone();
        let reason = request.reason.clone();
        if let Err((reason, text)) =
            self.carry_out(token, signed.request.verb, nonce, &operator, &reason)
        {
            self.metrics.admin(false);
            self.admin_refuse(token, nonce, reason, text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_never_shows_a_secret_or_a_whole_export() {
        let add = AdminVerb::AddAccount {
            account: 4001,
            name: "Delta".into(),
            role: "market_maker".into(),
            secret: "delta-secret-4001".into(),
        };
        let line = loggable(&add);
        assert!(
            line.contains("4001") && !line.contains("delta-secret"),
            "{line}"
        );
        let lots = AdminVerb::DepositLots {
            symbol: "NBR".into(),
            name: "lots.csv".into(),
            csv: "registry,project_id\nVerra,VCS-1\n".into(),
        };
        assert!(!loggable(&lots).contains("VCS-1"));
    }
}
