//! The admin port's verbs carried out: each checked request (see
//! [`super::admin`]) becomes the journaled commands it stands for, and the
//! last of them carries the answer.

use mio::Token;
use tonnex_engine::{AdminCommand, Asset, Command, VenueCommand};
use tonnex_protocol::admin::{self, AdminVerb};
use tonnex_protocol::{Cash, Pathway, RejectReason};

use super::admin::{kyc_status, ReplyTo};
use super::server::{Gateway, Inflight};
use crate::config::AccountStatus;

impl Gateway {
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

    pub(super) fn carry_out(
        &mut self,
        token: Token,
        verb: AdminVerb,
        nonce: u64,
        operator: &str,
        reason: &str,
    ) -> Result<(), (RejectReason, String)> {
        let mut commands = Vec::new();
        let text = match verb {
            verb @ (AdminVerb::ClusterStatus
            | AdminVerb::ClusterTransfer { .. }
            | AdminVerb::ClusterAdd { .. }
            | AdminVerb::ClusterRemove { .. }) => {
                let reply = self.cluster_verb(nonce, verb)?;
                self.net.queue_framed(token, &reply);
                self.metrics.admin(true);
                return Ok(());
            }
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
                    sub_ledger: "",
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
