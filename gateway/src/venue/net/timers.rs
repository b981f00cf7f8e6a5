//! The event loop's once-in-a-while work: session timers (login deadline,
//! idle timeout, heartbeats), feed subscribers told to go, held orders'
//! expiry, the rules calendar, and the gauges `GET /metrics` shows.

use std::sync::atomic::Ordering;

use mio::Token;
use tonnex_engine::VenueCommand;
use tonnex_protocol::wire::VenueMessage;
use tonnex_protocol::RejectReason;

use super::super::server::Gateway;
use super::super::session::{self, Due};
use super::FIRST;

impl Gateway {
    /// Once a second: the gauges `GET /metrics` shows.
    pub(super) fn publish_gauges(&mut self, now: u64) {
        if now.saturating_sub(self.gauges_at) < 1_000_000_000 && self.gauges_at != 0 {
            return;
        }
        self.gauges_at = now.max(1);
        let sessions = self.accounts.values().filter(|a| a.conn.is_some()).count();
        let metrics = &self.metrics;
        metrics.sessions.store(sessions as u64, Ordering::Relaxed);
        metrics
            .held_orders
            .store(self.desk.held_orders.len() as u64, Ordering::Relaxed);
        metrics
            .claimed_tonnes
            .store(self.desk.router.total_claimed(), Ordering::Relaxed);
        let subscribers: std::collections::BTreeSet<Token> =
            self.feed.subscribers.iter().flatten().copied().collect();
        metrics
            .md_subscribers
            .store(subscribers.len() as u64, Ordering::Relaxed);
    }

    /// Session timers (login deadline, idle timeout, heartbeats) and held
    /// orders' expiry.
    pub(super) fn timers(&mut self, now: u64) {
        for index in 0..self.net.conns.len() {
            let token = Token(index + FIRST);
            let Some(conn) = self.net.conns[index].as_ref() else {
                continue;
            };
            if conn.md {
                // A feed subscriber: no heartbeats or idle timeout; one
                // told to go that will not read its Disconnect goes after 1 s.
                let (closing, cut_at) = (conn.closing, conn.cut_at);
                if closing && cut_at == 0 {
                    if let Some(conn) = self.net.conn(token) {
                        conn.cut_at = now;
                    }
                } else if closing && now.saturating_sub(cut_at) > 1_000_000_000 {
                    self.close(token, "did not read its Disconnect");
                }
                continue;
            }
            if conn.closing {
                continue;
            }
            if conn.admin {
                // No heartbeats on the admin port: an idle connection closes.
                if session::due(&conn.live, true, now, &self.settings) == Due::IdleTimeout {
                    self.close_after_flush(token);
                }
                continue;
            }
            match session::due(&conn.live, conn.account.is_some(), now, &self.settings) {
                Due::Nothing => {}
                Due::LoginTimeout => self.end_session(token, "no login before the deadline".into()),
                Due::IdleTimeout => self.end_session(
                    token,
                    "idle timeout: no message for three heartbeat intervals".into(),
                ),
                Due::Heartbeat => self.net.queue_unsequenced(token, VenueMessage::Heartbeat),
            }
        }
        self.publish_gauges(now);
        self.follow_rules_calendar();
        let wall = crate::venue::intake::wall_ns();
        for order in self.desk.held.expire(wall) {
            self.desk.held_orders.remove(&(order.account, order.id));
            // Answered (OrderRejected ATTESTATION_REQUIRED) once journaled.
            self.submit_venue(
                VenueCommand::Unhold {
                    account: order.account,
                    client_order_id: order.id,
                    reason: RejectReason::AttestationRequired.code(),
                },
                order.account,
                order.id,
                0,
            );
        }
    }
}
