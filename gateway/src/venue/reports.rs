//! Reports: engine outputs become execution reports, numbered in each
//! account's stream ([`super::outbound`]), and market data
//! ([`super::market_data`]).

use std::collections::hash_map::Entry;

use tonnex_engine::{Command, Event, VenueCommand};
use tonnex_protocol::wire::{pathway_code, side_code, VenueMessage};
use tonnex_protocol::{Name, Pathway, RejectReason, Side};

use super::core::Output;
use super::server::{Gateway, OrderInfo};

impl Gateway {
    /// A sequenced message to an account: numbered, logged, sent if
    /// connected.
    pub(super) fn send(&mut self, account: u64, message: VenueMessage) {
        let Some(state) = self.accounts.get(&account) else {
            return;
        };
        if let VenueMessage::OrderRejected { reason, .. } = &message {
            self.metrics.reject(*reason);
        }
        let framed = self.outbound.push(account, message);
        if let Some(token) = state.conn {
            self.net.queue(token, framed);
        }
    }

    pub(super) fn drain_engine(&mut self) {
        if self.link.inline.is_some() {
            self.run_inline();
        }
        while let Some(output) = self.link.from_engine.pop() {
            self.on_output(output);
        }
        // Every output of the last command arrived with its Begin's batch.
        self.admin_finish();
    }

    pub(super) fn on_output(&mut self, output: Output) {
        match output {
            Output::Begin { seq, command, .. }
                if command.is_annotation() || command.is_reports() =>
            {
                // Journaled ahead of the command it annotates, which the
                // gateway sent, or a record of what it sent: no command of
                // the gateway's of its own.
                self.link.last_seq = seq;
            }
            Output::Begin { corr, seq, command } => {
                let current = self.link.inflight.pop_front();
                let expected = current.as_ref().map(|c| c.corr);
                assert_eq!(
                    expected,
                    Some(corr),
                    "engine output out of step with the gateway's commands"
                );
                self.link.current = current;
                self.link.last_seq = seq;
                self.admin_begin(seq, &command);
                if let Command::Venue(venue) = command.acting() {
                    self.on_venue_command(venue);
                }
                self.link.current_command = Some(command);
            }
            Output::Event(event) => self.on_event(event, 0),
            Output::Fill { trade_id, event } => self.on_event(event, trade_id),
            Output::Level {
                instrument,
                side,
                price,
                qty,
            } => self.publish(instrument, |md_seq| VenueMessage::LevelUpdate {
                instrument,
                md_seq,
                side: side_code(side),
                price_ticks: price,
                qty,
            }),
            Output::Book(snapshot) => self.on_book(*snapshot),
            Output::Status(answer) => self.on_status(*answer),
            Output::Stopped => self.engine_stopped = true,
        }
    }

    /// A journaled venue command: its answer to the client, now that it is
    /// in the journal.
    fn on_venue_command(&mut self, command: &VenueCommand) {
        match command {
            VenueCommand::Refused { .. }
            | VenueCommand::RuleRefused { .. }
            | VenueCommand::Hold { .. } => {
                self.observe_ack();
                self.answer_venue_command(command);
            }
            _ => self.answer_venue_command(command),
        }
    }

    /// The current command's first answer is going out: its ack latency
    /// (on a cluster's leader, once its entry commits: [`Gateway::seal_round`]).
    fn observe_ack(&mut self) {
        if let Some(current) = &self.link.current {
            if self.net.hold {
                self.held_acks
                    .push_back((self.link.last_seq, current.received_ns));
            } else {
                self.metrics
                    .ack_latency(self.net.round().saturating_sub(current.received_ns));
            }
        }
    }

    fn answer_venue_command(&mut self, command: &VenueCommand) {
        match command {
            VenueCommand::Refused {
                account,
                client_order_id,
                reason,
            }
            | VenueCommand::RuleRefused {
                account,
                client_order_id,
                reason,
                ..
            }
            | VenueCommand::Unhold {
                account,
                client_order_id,
                reason,
            } => self.send(
                *account,
                VenueMessage::OrderRejected {
                    client_order_id: *client_order_id,
                    order_id: 0,
                    reason: *reason,
                },
            ),
            VenueCommand::Hold { account, order, .. } => self.send(
                *account,
                VenueMessage::OrderHeld {
                    client_order_id: order.client_order_id,
                    reason: RejectReason::AttestationRequired.code(),
                },
            ),
            VenueCommand::Attest { account, id, .. }
            | VenueCommand::AttestationSubmitted { account, id, .. }
            | VenueCommand::AttestationDecided {
                account,
                id,
                approved: true,
                ..
            } => {
                let rechecked = self.link.current.as_ref().map_or(0, |c| c.rechecked);
                self.send(
                    *account,
                    VenueMessage::AttestationAccepted {
                        id: id.clone(),
                        rechecked,
                    },
                );
            }
            VenueCommand::AttestationDecided {
                account,
                id,
                approved: false,
                ..
            } => self.send(
                *account,
                VenueMessage::AttestationRefused {
                    id: id.clone(),
                    reason: RejectReason::AttestationInvalid.code(),
                    text: "revoked by a compliance officer".into(),
                },
            ),
            VenueCommand::Rules { .. }
            | VenueCommand::Annotate(_)
            | VenueCommand::Reports { .. }
            | VenueCommand::Serials { .. }
            | VenueCommand::Kyc { .. }
            | VenueCommand::InstrumentListed(_)
            | VenueCommand::AccountAdded(_)
            | VenueCommand::Inventory(_) => {}
        }
    }

    fn on_event(&mut self, event: Event, trade_id: u64) {
        let (account, client_order_id) = self
            .link
            .current
            .as_ref()
            .map_or((0, 0), |c| (c.account, c.client_order_id));
        match event {
            Event::Accepted {
                order_id,
                account,
                instrument,
            } => self.accepted(order_id, account, client_order_id, instrument),
            Event::Rejected { order_id, reason } if self.admin_rejected(order_id, reason) => {}
            Event::Rejected { order_id, reason } => {
                let is_new = self
                    .link
                    .current_command
                    .as_ref()
                    .and_then(Command::new_order)
                    .is_some();
                let (client_order_id, order_id) = if is_new {
                    if let Some(order) = self
                        .link
                        .current_command
                        .as_ref()
                        .and_then(Command::new_order)
                    {
                        self.metrics
                            .order(order.kind, super::metrics::Outcome::Rejected);
                    }
                    self.observe_ack();
                    if let Some(allocation) =
                        self.link.current.as_mut().and_then(|c| c.allocation.take())
                    {
                        self.desk
                            .router
                            .release_slots(account, &allocation.per_slot());
                    }
                    (client_order_id, 0)
                } else {
                    (0, order_id)
                };
                if account != 0 {
                    self.reject(account, client_order_id, order_id, reason);
                }
            }
            Event::Fill { .. } => self.filled(event, trade_id),
            Event::Cancelled {
                order_id,
                account,
                client_order_id,
                instrument,
                open_qty,
                reason,
                ..
            } => {
                let info = self.orders.remove(&order_id);
                if let Some(mut allocation) = info.and_then(|o| o.allocation) {
                    let freed = allocation.take_last(open_qty.tonnes());
                    self.desk.router.release_slots(account, &freed);
                }
                self.send(
                    account,
                    VenueMessage::Cancelled {
                        client_order_id,
                        order_id,
                        instrument,
                        open_qty: open_qty.tonnes(),
                        reason: reason.code(),
                    },
                );
            }
            Event::Replaced {
                order_id,
                account: owner,
                client_order_id,
                price,
                qty,
                priority_kept,
            } => {
                self.replaced(order_id, qty.tonnes());
                self.send(
                    owner,
                    VenueMessage::Replaced {
                        client_order_id,
                        order_id,
                        price_ticks: price.ticks(),
                        qty: qty.tonnes(),
                        priority_kept,
                    },
                );
            }
            Event::Applied => self.admin_applied(),
        }
    }

    fn accepted(&mut self, order_id: u64, account: u64, client_order_id: u64, instrument: u32) {
        let Some(order) = self
            .link
            .current_command
            .as_ref()
            .and_then(Command::new_order)
        else {
            return;
        };
        let order = *order;
        self.metrics
            .order(order.kind, super::metrics::Outcome::Accepted);
        self.observe_ack();
        let (pathway, sub_ledger, floor_ticks, attestation, allocation) =
            match self.link.current.as_mut() {
                Some(c) => (
                    c.pathway,
                    Name::from(c.sub_ledger),
                    c.floor_ticks,
                    c.attestation.clone(),
                    c.allocation.take(),
                ),
                None => (Pathway::None, Name::default(), 0, None, None),
            };
        if allocation.is_some() || self.records_every_order() {
            self.orders.insert(
                order_id,
                OrderInfo {
                    account,
                    instrument,
                    open: order.qty.tonnes(),
                    allocation,
                },
            );
        }
        self.send(
            account,
            VenueMessage::OrderAccepted {
                client_order_id,
                order_id,
                instrument,
                side: side_code(order.side),
                price_ticks: order.price.ticks(),
                qty: order.qty.tonnes(),
                pathway: pathway_code(pathway),
                sub_ledger,
                floor_ticks,
                attestation,
            },
        );
    }

    fn filled(&mut self, event: Event, trade_id: u64) {
        let Event::Fill {
            instrument,
            taker_id,
            maker_id,
            taker_account,
            maker_account,
            taker_client_order_id,
            maker_client_order_id,
            taker_side,
            price,
            qty,
            taker_open,
            maker_open,
            supplementary_ticks,
        } = event
        else {
            return;
        };
        if let Some(last) = self.market.last_trade.get_mut(instrument as usize) {
            *last = Some(price.ticks());
        }
        for (order_id, owner, client_order_id, side, open, aggressor) in [
            (
                taker_id,
                taker_account,
                taker_client_order_id,
                taker_side,
                taker_open,
                true,
            ),
            (
                maker_id,
                maker_account,
                maker_client_order_id,
                taker_side.opposite(),
                maker_open,
                false,
            ),
        ] {
            // One probe: a filled order is removed through its entry.
            if let Entry::Occupied(mut info) = self.orders.entry(order_id) {
                if open.tonnes() == 0 {
                    info.remove();
                } else {
                    let info = info.get_mut();
                    info.open = open.tonnes();
                    if let Some(allocation) = &mut info.allocation {
                        // Filled tonnes stay claimed, first line first.
                        allocation.take_first(qty.tonnes());
                    }
                }
            }
            self.send(
                owner,
                VenueMessage::Fill {
                    client_order_id,
                    order_id,
                    trade_id,
                    instrument,
                    side: side_code(side),
                    price_ticks: price.ticks(),
                    qty: qty.tonnes(),
                    leaves_qty: open.tonnes(),
                    aggressor,
                    supplementary_ticks: if side == Side::Buy {
                        supplementary_ticks
                    } else {
                        0
                    },
                },
            );
        }
        self.publish(instrument, |md_seq| VenueMessage::Trade {
            instrument,
            md_seq,
            trade_id,
            price_ticks: price.ticks(),
            qty: qty.tonnes(),
            aggressor_side: side_code(taker_side),
        });
    }

    /// A replace changed an order's open tonnes: a buyer's claims
    /// follow (down: freed last line first; up: added to the last line,
    /// which intake checked against the inventory before sending it).
    fn replaced(&mut self, order_id: u64, new_open: u64) {
        let Some(info) = self.orders.get_mut(&order_id) else {
            return;
        };
        let old_open = info.open;
        info.open = new_open;
        let account = info.account;
        let Some(allocation) = &mut info.allocation else {
            return;
        };
        let (freed, added) = allocation.resize(old_open, new_open);
        self.desk.router.release_slots(account, &freed);
        self.desk.router.claim_slots(account, &added);
    }
}
