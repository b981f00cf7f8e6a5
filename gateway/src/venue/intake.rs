//! Intake: a decoded client message becomes an engine command, or an answer.
//! In order: login and the session layer (throttle, client order ids),
//! risk limits, the compliance pre-router ([`super::buyer`]), then the
//! command onto the engine ([`super::submit`]).

use std::time::{SystemTime, UNIX_EPOCH};

use mio::Token;
use tonnex_engine::{Command, VenueCommand};
use tonnex_protocol::frame;
use tonnex_protocol::wire::{side_code, ClientMessage, NewOrder, Sequenced, VenueMessage};
use tonnex_protocol::{OrderKind, Price, Qty, RejectReason};

use super::core::Input;
use super::metrics::Outcome;
use super::server::Gateway;
use super::session::{self, Admit};
use crate::config::AccountStatus;

/// Most scope lines one order may carry (a journal record has a bounded size).
const MAX_SCOPE_LINES: usize = 64;

/// Wall-clock time, nanoseconds since the Unix epoch: what hold deadlines
/// and order timestamps carry into the journal.
pub(super) fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl Gateway {
    pub(super) fn on_message(&mut self, token: Token, message: ClientMessage) {
        let now = self.net.round();
        let limit = self.settings.throttle_per_s;
        let sweeps_limit = self.settings.sweeps_per_s;
        let Some(conn) = self.net.conn(token) else {
            return;
        };
        let Some(account) = conn.account else {
            match message {
                ClientMessage::Login {
                    account,
                    secret,
                    last_seen_seq,
                    cancel_on_disconnect,
                } => self.login(token, account, &secret, last_seen_seq, cancel_on_disconnect),
                _ => self.end_session(token, "the first message must be Login".into()),
            }
            return;
        };
        let throttled = match conn.throttle.admit(now, limit) {
            Admit::Yes => false,
            Admit::Throttled => true,
            Admit::Disconnect => {
                tracing::warn!(account, "throttle exceeded 1.5x: disconnecting");
                self.end_session(
                    token,
                    format!("more than 1.5 x {limit} messages in one second"),
                );
                return;
            }
        };
        // A request that reads every resting order of the account has a
        // limit of its own: one session asking in a loop must not stall
        // every other (the answer costs O(the account's resting orders)).
        let sweeping = matches!(
            message,
            ClientMessage::OrderStatus { .. } | ClientMessage::MassCancel { .. }
        );
        let throttled =
            throttled || (sweeping && conn.sweeps.admit(now, sweeps_limit) != Admit::Yes);
        match message {
            ClientMessage::Heartbeat => {}
            ClientMessage::Logout => self.close_after_flush(token),
            ClientMessage::Login { .. } => self.end_session(token, "already logged in".into()),
            ClientMessage::NewOrder(order) => {
                if throttled {
                    if let Some(kind) = order.kind() {
                        self.metrics.order(kind, Outcome::Rejected);
                    }
                    self.reject(account, order.client_order_id, 0, RejectReason::Throttled);
                } else {
                    self.new_order(account, order);
                }
            }
            ClientMessage::Cancel { order_id } => {
                if !self.refuse(account, order_id, throttled) {
                    self.submit_command(Command::Cancel { order_id, account }, account, 0);
                }
            }
            ClientMessage::Replace {
                order_id,
                price_ticks,
                qty,
            } => {
                if !self.refuse(account, order_id, throttled) {
                    self.replace(account, order_id, price_ticks, qty);
                }
            }
            ClientMessage::MassCancel { instrument } => {
                if !self.refuse(account, 0, throttled) {
                    self.submit_command(
                        Command::MassCancel {
                            account,
                            instrument,
                        },
                        account,
                        0,
                    );
                }
            }
            ClientMessage::SubmitAttestation {
                id,
                internal_price_micros,
                reporting_year,
            } => self.attest(account, id, internal_price_micros, reporting_year),
            ClientMessage::Subscribe { instrument } => self.subscribe(token, account, instrument),
            ClientMessage::OrderStatus { client_order_id } => {
                if throttled {
                    // In the place of the answer: unsequenced, as it is.
                    self.net.queue_unsequenced(
                        token,
                        VenueMessage::OrderRejected {
                            client_order_id,
                            order_id: 0,
                            reason: RejectReason::Throttled.code(),
                        },
                    );
                } else {
                    self.order_status(token, account, client_order_id);
                }
            }
        }
    }

    fn login(
        &mut self,
        token: Token,
        account: u64,
        secret: &str,
        last_seen_seq: u64,
        cancel_on_disconnect: bool,
    ) {
        let state = self.accounts.get(&account);
        let verdict = session::check_login(
            state.map(|s| s.credential.verify(secret)),
            state.is_some_and(|s| s.conn.is_some()),
        )
        .and_then(|()| {
            // The kill switch holds: a suspended account cannot log in.
            if self.desk.router.status(account) == Some(AccountStatus::Suspended) {
                Err(session::LoginRefusal::Suspended)
            } else {
                Ok(())
            }
        });
        if let Err(refusal) = verdict {
            tracing::warn!(account, text = refusal.text(), "login rejected");
            self.net.queue_unsequenced(
                token,
                VenueMessage::LoginRejected {
                    text: refusal.text().into(),
                },
            );
            self.close_after_flush(token);
            return;
        }
        tracing::info!(account, last_seen_seq, "login");
        self.accounts.get_mut(&account).expect("checked").conn = Some(token);
        let next_seq = self.outbound.next_seq(account);
        let accepted = VenueMessage::LoginAccepted {
            account,
            next_seq,
            heartbeat_ms: self.settings.heartbeat_ms,
            session_id: self.outbound.session_id(),
            incarnation: self.incarnation,
        };
        let reference = self.market.reference.clone();
        let stream = self.outbound.stream(account);
        let Some(conn) = self.net.conn(token) else {
            return;
        };
        conn.account = Some(account);
        conn.cancel_on_disconnect = cancel_on_disconnect;
        let unsequenced = |message, out: &mut Vec<u8>| {
            frame::encode_into(&Sequenced { seq: 0, message }, out);
        };
        unsequenced(accepted, &mut conn.write);
        if let Some(stream) = stream {
            let from = last_seen_seq.saturating_add(1);
            let first_held = stream.first_seq;
            if from < first_held && from < next_seq {
                unsequenced(
                    VenueMessage::SessionError {
                        text: format!(
                            "messages {from}..{} are no longer held; replay starts at {first_held}",
                            first_held - 1
                        ),
                    },
                    &mut conn.write,
                );
            }
            stream.replay_into(from, &mut conn.write);
        }
        unsequenced(reference, &mut conn.write);
        self.net.dirty.push(token);
    }

    fn subscribe(&mut self, token: Token, account: u64, instrument: u32) {
        if (instrument as usize) >= self.market.instruments.len() {
            self.reject(account, 0, 0, RejectReason::UnknownInstrument);
            return;
        }
        let conn = self.net.conn(token).expect("conn");
        if !conn.subscriptions.contains(&instrument) {
            conn.subscriptions.push(instrument);
            self.market.subscribers[instrument as usize].push(account);
        }
        self.submit(Input::Book {
            instrument,
            account,
            feed: None,
        });
    }

    /// Rejects a cancel, replace or mass cancel when throttled or closing.
    fn refuse(&mut self, account: u64, order_id: u64, throttled: bool) -> bool {
        let reason = if throttled {
            RejectReason::Throttled
        } else if self.closing {
            RejectReason::VenueClosing
        } else {
            return false;
        };
        self.reject(account, 0, order_id, reason);
        true
    }

    pub(super) fn reject(
        &mut self,
        account: u64,
        client_order_id: u64,
        order_id: u64,
        reason: RejectReason,
    ) {
        self.send(
            account,
            VenueMessage::OrderRejected {
                client_order_id,
                order_id,
                reason: reason.code(),
            },
        );
    }

    /// A replace: risk-checked; a buyer's replace up goes through step 9
    /// again for the added tonnes, on the order's last scope line.
    fn replace(&mut self, account: u64, order_id: u64, price_ticks: i64, qty: u64) {
        if let Some(info) = self.orders.get(&order_id) {
            let over_inventory = info.allocation.as_ref().is_some_and(|a| {
                qty > info.open
                    && !self.desk.router.fits(
                        info.account,
                        a.last_slot().unwrap_or(0),
                        qty - info.open,
                    )
            });
            if over_inventory {
                self.reject(account, 0, order_id, RejectReason::ScopeExceedsInventory);
                return;
            }
        }
        // (An order the engine does not hold is refused there.)
        if let Some(instrument) = self.order_instrument(order_id) {
            if let Some(reason) =
                self.risk(account, instrument, OrderKind::Limit, price_ticks, qty, 0)
            {
                self.reject(account, 0, order_id, reason);
                return;
            }
        }
        self.submit_command(
            Command::Replace {
                order_id,
                account,
                price: Price(price_ticks),
                qty: Qty(qty),
            },
            account,
            0,
        );
    }

    /// The instrument of live order `order_id`: from the gateway's record
    /// of it, else from the inline engine's book.
    fn order_instrument(&self, order_id: u64) -> Option<u32> {
        if let Some(info) = self.orders.get(&order_id) {
            return Some(info.instrument);
        }
        let inline = self.link.inline.as_ref()?;
        let slot = inline.engine.core().state().order(order_id)?;
        Some(u32::from(slot.instrument))
    }

    fn risk(
        &self,
        account: u64,
        instrument: u32,
        kind: OrderKind,
        price_ticks: i64,
        qty: u64,
        cash_budget_micros: i64,
    ) -> Option<RejectReason> {
        let risk = self.accounts.get(&account)?.risk;
        let reference = self.market.instruments.get(instrument as usize)?;
        if risk.max_qty.is_some_and(|max| qty > max) {
            return Some(RejectReason::RiskMaxQty);
        }
        if let Some(max) = risk.max_notional_micros {
            let notional = if kind == OrderKind::Market {
                i128::from(cash_budget_micros)
            } else {
                i128::from(price_ticks) * i128::from(qty) * i128::from(reference.tick_micros)
            };
            if notional > max {
                return Some(RejectReason::RiskMaxNotional);
            }
        }
        if let (Some(collar), Some(last)) = (
            risk.collar_bp,
            self.market
                .last_trade
                .get(instrument as usize)
                .copied()
                .flatten(),
        ) {
            if kind != OrderKind::Market
                && i128::from((price_ticks - last).abs()) * 10_000 > collar * i128::from(last)
            {
                return Some(RejectReason::RiskPriceCollar);
            }
        }
        None
    }

    fn new_order(&mut self, account: u64, order: NewOrder) {
        let client_order_id = order.client_order_id;
        let state = self.accounts.get_mut(&account).expect("logged in");
        if client_order_id <= state.last_client_order_id {
            if let Some(kind) = order.kind() {
                self.metrics.order(kind, Outcome::Rejected);
            }
            self.reject(
                account,
                client_order_id,
                0,
                RejectReason::DuplicateClientOrderId,
            );
            return;
        }
        state.last_client_order_id = client_order_id;
        match self.order_checks(account, &order) {
            Ok((kind, side, qty)) => {
                debug_assert_eq!(side_code(side), order.side);
                self.route(account, order, kind, side, qty);
            }
            Err(reason) => self.refuse_order(account, client_order_id, order.kind(), reason),
        }
    }

    /// The session's and risk's checks of a new order, first failure
    /// decides: closing, too many scope lines, a bad type or side, an
    /// unknown instrument, a quantity out of range, the account's limits.
    fn order_checks(
        &self,
        account: u64,
        order: &NewOrder,
    ) -> Result<(OrderKind, tonnex_protocol::Side, i64), RejectReason> {
        if self.closing {
            return Err(RejectReason::VenueClosing);
        }
        if order.scope.len() > MAX_SCOPE_LINES {
            return Err(RejectReason::ScopeMissing);
        }
        let (Some(kind), Some(side)) = (order.kind(), order.side()) else {
            return Err(RejectReason::InvalidOrder);
        };
        if (order.instrument as usize) >= self.market.instruments.len() {
            return Err(RejectReason::UnknownInstrument);
        }
        let qty = i64::try_from(order.qty).map_err(|_| RejectReason::InvalidOrder)?;
        if let Some(reason) = self.risk(
            account,
            order.instrument,
            kind,
            order.price_ticks,
            order.qty,
            order.cash_budget_micros,
        ) {
            return Err(reason);
        }
        Ok((kind, side, qty))
    }

    /// Refuses a new order before it reaches a book. The refusal is
    /// journaled (its client order id stays used across restarts) and
    /// answered once it is.
    pub(super) fn refuse_order(
        &mut self,
        account: u64,
        client_order_id: u64,
        kind: Option<OrderKind>,
        reason: RejectReason,
    ) {
        if let Some(kind) = kind {
            self.metrics.order(kind, Outcome::Rejected);
        }
        self.submit_venue(
            VenueCommand::Refused {
                account,
                client_order_id,
                reason: reason.code(),
            },
            account,
            client_order_id,
            0,
        );
    }
}
