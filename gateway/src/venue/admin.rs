//! The admin port's requests: verified (operator, signature, timestamp
//! window, nonce never seen inside the window, the role's verbs), then
//! carried out as journaled `Admin` commands that name the operator and the
//! reason, and answered once the journal holds them.

use std::collections::HashMap;
use std::sync::Arc;

use mio::Token;
use tonnex_engine::{AdminCommand, Asset, Command, VenueCommand};
use tonnex_protocol::admin::{self, AdminVerb, Signed, KYC_ACTIVE, KYC_PENDING, KYC_SUSPENDED};
use tonnex_protocol::{Cash, Pathway, RejectReason};

use super::intake::wall_ns;
use super::server::{Gateway, Inflight};
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

impl Gateway {
    /// A signed request from the admin port.
    pub(super) fn on_admin(&mut self, token: Token, signed: Signed) {
        let request = &signed.request;
        let nonce = request.nonce;
        let verdict = self.check_admin(&signed);
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

    /// Operator, signature, window, nonce and role, in that order.
    fn check_admin(&mut self, signed: &Signed) -> Result<OperatorRole, (RejectReason, String)> {
        let request = &signed.request;
        let Some(operator) = self.admin.operators.get(&request.operator) else {
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
        let window = self.admin.window_ns;
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
        self.admin
            .seen
            .retain(|_, &mut ts| now.abs_diff(ts) <= window);
        let key = (request.operator.clone(), request.nonce);
        if self.admin.seen.contains_key(&key) {
            return Err((
                RejectReason::ReplayedRequest,
                format!("nonce {} was already used", request.nonce),
            ));
        }
        self.admin.seen.insert(key, request.ts_ns);
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

    fn instrument_index(&self, symbol: &str) -> Result<u32, (RejectReason, String)> {
        self.market
            .instruments
            .iter()
            .position(|i| i.symbol == symbol)
            .map(|i| i as u32)
            .ok_or_else(|| {
                (
                    RejectReason::UnknownInstrument,
                    format!("no instrument '{symbol}'"),
                )
            })
    }

    fn instruments_of(&self, symbol: Option<&str>) -> Result<Vec<u32>, (RejectReason, String)> {
        match symbol {
            Some(symbol) => Ok(vec![self.instrument_index(symbol)?]),
            None => Ok((0..self.market.instruments.len() as u32).collect()),
        }
    }

    fn known_account(&self, account: u64) -> Result<(), (RejectReason, String)> {
        if self.accounts.contains_key(&account) {
            Ok(())
        } else {
            Err((
                RejectReason::UnknownAccount,
                format!("no account {account}"),
            ))
        }
    }

    fn carry_out(
        &mut self,
        token: Token,
        verb: AdminVerb,
        nonce: u64,
        operator: &str,
        reason: &str,
    ) -> Result<(), (RejectReason, String)> {
        let mut commands = Vec::new();
        let text = match verb {
            AdminVerb::Status => {
                let reply = self.status(nonce);
                self.net.queue_framed(token, &reply);
                self.metrics.admin(true);
                return Ok(());
            }
            AdminVerb::Buyer { account } => {
                let reply = self.buyer_reply(nonce, account)?;
                self.net.queue_framed(token, &reply);
                self.metrics.admin(true);
                return Ok(());
            }
            AdminVerb::Inventory {
                account,
                reporting_year,
                lines,
            } => {
                self.known_account(account)?;
                let (planned, text) = self.upload_inventory(account, reporting_year, lines)?;
                commands.extend(planned);
                text
            }
            AdminVerb::Halt { symbol } | AdminVerb::Resume { symbol } if self.closing => {
                let _ = symbol;
                return Err((RejectReason::VenueClosing, "the venue is closing".into()));
            }
            AdminVerb::Halt { symbol } => {
                for instrument in self.instruments_of(symbol.as_deref())? {
                    commands.push((
                        Command::Halt {
                            instrument,
                            cancel_resting: false,
                        },
                        None,
                    ));
                }
                format!("halted {}", symbol.as_deref().unwrap_or("every instrument"))
            }
            AdminVerb::Resume { symbol } => {
                for instrument in self.instruments_of(symbol.as_deref())? {
                    commands.push((Command::Resume { instrument }, None));
                }
                format!(
                    "resumed {}",
                    symbol.as_deref().unwrap_or("every instrument")
                )
            }
            AdminVerb::Kyc { account, status } => {
                self.known_account(account)?;
                let Some(new) = kyc_status(status) else {
                    return Err((
                        RejectReason::InvalidRequest,
                        format!("KYC status {status} is not 0, 1 or 2"),
                    ));
                };
                self.desk.router.set_status(account, new);
                commands.push((
                    Command::Venue(Box::new(VenueCommand::Kyc { account, status })),
                    None,
                ));
                if new == AccountStatus::Suspended {
                    // The kill switch: every open order goes, the session
                    // closes, and no order of it reaches a book again (the
                    // pre-router refuses ACCOUNT_NOT_ACTIVE from now on;
                    // orders already on the ring are ahead of the cancel).
                    commands.push((
                        Command::MassCancel {
                            account,
                            instrument: None,
                        },
                        None,
                    ));
                    if let Some(session) = self.accounts.get(&account).and_then(|a| a.conn) {
                        self.end_session(session, "the account is suspended".into());
                    }
                }
                format!(
                    "account {account} is {}",
                    admin::kyc_name(status).unwrap_or("?")
                )
            }
            AdminVerb::MassCancel { account, symbol } => {
                let instrument = symbol
                    .as_deref()
                    .map(|s| self.instrument_index(s))
                    .transpose()?;
                match (account, instrument) {
                    (Some(account), instrument) => {
                        self.known_account(account)?;
                        commands.push((
                            Command::MassCancel {
                                account,
                                instrument,
                            },
                            None,
                        ));
                    }
                    (None, Some(instrument)) => {
                        // Everyone's orders in one book: a halt that cancels
                        // the book, then (unless it was halted) a resume.
                        commands.push((
                            Command::Halt {
                                instrument,
                                cancel_resting: true,
                            },
                            None,
                        ));
                        if !self.admin.halted[instrument as usize] {
                            commands.push((Command::Resume { instrument }, None));
                        }
                    }
                    (None, None) => {
                        return Err((
                            RejectReason::InvalidRequest,
                            "mass cancel needs an account or an instrument".into(),
                        ))
                    }
                }
                "mass cancel done".to_string()
            }
            AdminVerb::DepositCash {
                account,
                amount_micros,
            }
            | AdminVerb::WithdrawCash {
                account,
                amount_micros,
            } if amount_micros <= 0 => {
                let _ = account;
                return Err((
                    RejectReason::InvalidRequest,
                    "the amount must be positive".into(),
                ));
            }
            AdminVerb::DepositCash {
                account,
                amount_micros,
            } => {
                self.known_account(account)?;
                commands.push((
                    Command::Deposit {
                        account,
                        asset: Asset::Cash(Cash(amount_micros)),
                    },
                    None,
                ));
                format!("deposited {amount_micros} micro-USD to account {account}")
            }
            AdminVerb::WithdrawCash {
                account,
                amount_micros,
            } => {
                self.known_account(account)?;
                commands.push((
                    Command::Withdraw {
                        account,
                        asset: Asset::Cash(Cash(amount_micros)),
                    },
                    None,
                ));
                format!("withdrew {amount_micros} micro-USD from account {account}")
            }
            AdminVerb::DepositLots { symbol, name, csv } => {
                let (lots, text) = self.lot_deposits(&symbol, &name, &csv)?;
                commands.extend(lots);
                text
            }
            AdminVerb::Attestation {
                account,
                id,
                approve,
                evidence_sha256,
            } => {
                self.known_account(account)?;
                self.decide_attestation(
                    token,
                    nonce,
                    operator,
                    reason,
                    super::admin_attest::AttestationDecision {
                        account,
                        id,
                        approve,
                        evidence_sha256,
                    },
                )?;
                return Ok(());
            }
            AdminVerb::AddInstrument {
                symbol,
                sub_ledger,
                tick_usd,
                min_price_usd,
                max_price_usd,
                ccp,
                categories,
                nature,
                min_vintage,
            } => {
                let listing = tonnex_engine::InstrumentListing {
                    instrument: 0,
                    symbol,
                    sub_ledger,
                    tick_usd,
                    min_price_usd,
                    max_price_usd,
                    ccp,
                    categories: (!categories.is_empty()).then_some(categories),
                    nature: (!nature.is_empty()).then_some(nature),
                    min_vintage,
                };
                let (planned, text) = self.list_instrument(listing)?;
                commands.extend(planned);
                text
            }
            AdminVerb::WithdrawCredits {
                account,
                symbol,
                qty,
            } => {
                self.known_account(account)?;
                let instrument = self.instrument_index(&symbol)?;
                if qty == 0 {
                    return Err((
                        RejectReason::InvalidRequest,
                        "the quantity must be positive".into(),
                    ));
                }
                commands.push((
                    Command::Withdraw {
                        account,
                        asset: Asset::Credits {
                            instrument,
                            qty: tonnex_protocol::Qty(qty),
                        },
                    },
                    None,
                ));
                format!("withdrew {qty} t of {symbol} from account {account}")
            }
            AdminVerb::AddAccount {
                account,
                name,
                role,
                secret,
            } => {
                let (planned, text) = self.add_account(account, name, &role, &secret)?;
                commands.extend(planned);
                text
            }
            AdminVerb::ReloadRules => {
                let (rules, text) = self.reload_rules()?;
                commands.extend(rules);
                text
            }
            AdminVerb::Settlement { first_id, outcomes } => {
                if first_id == 0 || outcomes.is_empty() || outcomes.len() > admin::MAX_OUTCOMES {
                    return Err((
                        RejectReason::InvalidRequest,
                        format!(
                            "outcomes need a first id of 1 or more and 1 to {} outcomes",
                            admin::MAX_OUTCOMES
                        ),
                    ));
                }
                let count = outcomes.len();
                commands.push((
                    Command::Settlement(Box::new(tonnex_engine::settlement::SettlementBatch {
                        first_id,
                        outcomes,
                    })),
                    None,
                ));
                format!("{count} settlement outcomes from id {first_id}")
            }
        };
        if commands.is_empty() {
            // Nothing to journal (a deposit made before): answered now.
            self.net.queue_framed(
                token,
                &admin::AdminReply::Done {
                    nonce,
                    seq: 0,
                    text,
                },
            );
            self.metrics.admin(true);
            return Ok(());
        }
        let last = commands.len() - 1;
        for (i, (command, annotation)) in commands.into_iter().enumerate() {
            let admin = Command::Admin(Box::new(AdminCommand {
                operator: operator.to_string(),
                reason: reason.to_string(),
                command,
            }));
            let reply = (i == last).then(|| {
                Box::new(ReplyTo {
                    token,
                    nonce,
                    text: text.clone(),
                })
            });
            self.submit_annotated(
                Inflight {
                    corr: 0,
                    account: 0,
                    client_order_id: 0,
                    rechecked: 0,
                    pathway: Pathway::None,
                    sub_ledger: Arc::from(""),
                    floor_ticks: 0,
                    attestation: None,
                    allocation: None,
                    reply,
                    received_ns: 0,
                },
                admin,
                annotation,
            );
        }
        Ok(())
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
