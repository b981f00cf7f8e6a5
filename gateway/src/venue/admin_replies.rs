//! The admin port's answers: `Status` at once, and a journaled action's
//! `Done` or `Refused` once all of its outputs have come back from the
//! engine (halts and resumes also update the halt flags `status` shows).

use mio::Token;
use tonnex_engine::Command;
use tonnex_protocol::admin::{AccountStatusLine, AdminReply, InstrumentStatus};
use tonnex_protocol::RejectReason;

use super::admin::{kyc_code, OutcomeTally, Pending};
use super::server::Gateway;

impl Gateway {
    pub(super) fn status(&self, nonce: u64) -> AdminReply {
        AdminReply::Status {
            nonce,
            instruments: self
                .market
                .instruments
                .iter()
                .zip(&self.admin.halted)
                .zip(&self.market.last_trade)
                .map(|((i, &halted), &last)| InstrumentStatus {
                    symbol: i.symbol.to_string(),
                    halted,
                    tick_micros: i.tick_micros,
                    last_trade_ticks: last,
                })
                .collect(),
            accounts: self
                .desk
                .router
                .statuses()
                .into_iter()
                .map(|(account, status)| AccountStatusLine {
                    account,
                    kyc: kyc_code(status),
                    connected: self
                        .accounts
                        .get(&account)
                        .is_some_and(|a| a.conn.is_some()),
                })
                .collect(),
            sessions: self.accounts.values().filter(|a| a.conn.is_some()).count() as u32,
            journal_seq: self.link.last_seq,
            in_flight: self.link.inflight.len() as u32,
            durable_lag: {
                use std::sync::atomic::Ordering::Relaxed;
                let metrics = &self.metrics;
                metrics
                    .journal_seq
                    .load(Relaxed)
                    .saturating_sub(metrics.durable_seq.load(Relaxed))
            },
        }
    }

    /// Answers a refused request.
    pub(super) fn admin_refuse(
        &mut self,
        token: Token,
        nonce: u64,
        reason: RejectReason,
        text: String,
    ) {
        self.net.queue_framed(
            token,
            &AdminReply::Refused {
                nonce,
                reason: reason.code(),
                text,
            },
        );
    }

    /// A command's `Begin`: the previous admin action is complete (answer
    /// it); this one, if it is an admin action with a reply, starts.
    pub(super) fn admin_begin(&mut self, seq: u64, command: &Command) {
        self.admin_finish();
        if let Command::Admin(admin) = command {
            match admin.command {
                Command::Halt { instrument, .. } => {
                    if let Some(h) = self.admin.halted.get_mut(instrument as usize) {
                        *h = true;
                    }
                }
                Command::Resume { instrument } => {
                    if let Some(h) = self.admin.halted.get_mut(instrument as usize) {
                        *h = false;
                    }
                }
                _ => {}
            }
        }
        if let Some(to) = self.link.current.as_mut().and_then(|c| c.reply.take()) {
            let outcomes = match command.acting() {
                Command::Settlement(batch) => Some(OutcomeTally {
                    through_id: batch.first_id + batch.outcomes.len() as u64 - 1,
                    applied: 0,
                    refused: Vec::new(),
                }),
                _ => None,
            };
            self.admin.pending = Some(Pending {
                to: *to,
                seq,
                rejected: None,
                outcomes,
            });
        }
    }

    /// The engine refused the admin action whose outputs are arriving (or,
    /// in a batch of settlement outcomes, the one with outbox id `id`).
    pub(super) fn admin_rejected(&mut self, id: u64, reason: RejectReason) -> bool {
        match &mut self.admin.pending {
            Some(Pending {
                outcomes: Some(tally),
                ..
            }) => {
                tally.refused.push(tonnex_protocol::admin::OutcomeRefusal {
                    id,
                    reason: reason.code(),
                });
                true
            }
            Some(pending) => {
                pending.rejected = Some(reason);
                true
            }
            None => false,
        }
    }

    /// The engine applied one outcome of the batch whose outputs are arriving.
    pub(super) fn admin_applied(&mut self) {
        if let Some(Pending {
            outcomes: Some(tally),
            ..
        }) = &mut self.admin.pending
        {
            tally.applied += 1;
        }
    }

    /// Answers the admin action whose outputs have all arrived.
    pub(super) fn admin_finish(&mut self) {
        let Some(pending) = self.admin.pending.take() else {
            return;
        };
        self.metrics.admin(pending.rejected.is_none());
        if let Some(tally) = pending.outcomes {
            let reply = AdminReply::Settlement {
                nonce: pending.to.nonce,
                seq: pending.seq,
                through_id: tally.through_id,
                applied: tally.applied,
                refused: tally.refused,
            };
            self.net.queue_framed(pending.to.token, &reply);
            return;
        }
        let reply = match pending.rejected {
            None => AdminReply::Done {
                nonce: pending.to.nonce,
                seq: pending.seq,
                text: pending.to.text,
            },
            Some(reason) => AdminReply::Refused {
                nonce: pending.to.nonce,
                reason: reason.code(),
                text: format!("the engine refused it: {}", reason.as_str()),
            },
        };
        self.net.queue_framed(pending.to.token, &reply);
    }
}
