//! Order status: a client's live orders as the engine's book holds them
//! (every resting order's pool slot keeps its client order id), then its
//! held orders as the gateway holds them, then the end with the last
//! sequence the answer reflects.
//!
//! The question travels to the engine in line with the commands
//! ([`Input::Status`]), so its answer reflects exactly the commands
//! before it and leaves with their reports (after a group commit; on a
//! cluster's leader, after the round's commit), whichever thread the
//! engine runs on.

use mio::Token;
use tonnex_engine::State;
use tonnex_protocol::wire::{side_code, VenueMessage, STATE_HELD, STATE_LIVE};

use super::core::Input;
use super::server::Gateway;

/// A client's live orders, from the engine's book.
pub struct StatusAnswer {
    /// The account that asked.
    pub account: u64,
    /// The connection that asked (its token).
    pub token: usize,
    /// Only this client order id (0: every order).
    pub client_order_id: u64,
    /// `OrderStatus` messages of its live orders, by venue order id.
    pub live: Vec<VenueMessage>,
}

/// `account`'s resting orders in `state` (only `client_order_id`'s, unless
/// 0), by venue order id, from the account's own list of its orders.
#[must_use]
pub fn live_orders(
    state: &State,
    account: u64,
    client_order_id: u64,
    token: usize,
) -> StatusAnswer {
    let mut found = Vec::new();
    state.for_each_resting_of(account, |slot| {
        if client_order_id == 0 || slot.client_order_id == client_order_id {
            found.push(*slot);
        }
    });
    found.sort_unstable_by_key(|slot| slot.id);
    StatusAnswer {
        account,
        token,
        client_order_id,
        live: found
            .iter()
            .map(|slot| VenueMessage::OrderStatus {
                client_order_id: slot.client_order_id,
                order_id: slot.id,
                instrument: u32::from(slot.instrument),
                side: side_code(slot.side()),
                price_ticks: slot.price,
                open_qty: slot.qty,
                state: STATE_LIVE,
            })
            .collect(),
    }
}

impl Gateway {
    /// Asks the engine for the account's live orders (or the one with
    /// `client_order_id`); [`Gateway::on_status`] answers.
    pub(super) fn order_status(&mut self, token: Token, account: u64, client_order_id: u64) {
        self.submit(Input::Status {
            account,
            client_order_id,
            token: token.0,
        });
    }

    /// The engine's answer: its live orders, the held ones, then the end,
    /// to the connection that asked if it still holds the account.
    pub(super) fn on_status(&mut self, answer: StatusAnswer) {
        let token = Token(answer.token);
        let account = answer.account;
        if self.net.conn(token).and_then(|c| c.account) != Some(account) {
            return; // the session that asked has gone
        }
        let wanted = |id: u64| answer.client_order_id == 0 || id == answer.client_order_id;
        let mut answers = answer.live;
        for (&(_, id), order) in self
            .desk
            .held_orders
            .range((account, 0)..=(account, u64::MAX))
        {
            if wanted(id) {
                answers.push(VenueMessage::OrderStatus {
                    client_order_id: id,
                    order_id: 0,
                    instrument: order.instrument,
                    side: order.side,
                    price_ticks: order.price_ticks,
                    open_qty: order.qty,
                    state: STATE_HELD,
                });
            }
        }
        let count = answers.len() as u32;
        let last_seq = self.outbound.next_seq(account) - 1;
        for answer in answers {
            self.net.queue_unsequenced(token, answer);
        }
        self.net
            .queue_unsequenced(token, VenueMessage::OrderStatusEnd { count, last_seq });
    }
}
