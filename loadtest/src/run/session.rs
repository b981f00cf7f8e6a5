//! One order-entry session of the load test: its socket buffers, the orders
//! it awaits answers for, and what each venue message means for the tally.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, ErrorKind, Read, Write};
use std::time::Instant;

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use tonnex_protocol::frame;
use tonnex_protocol::wire::*;

use crate::report::Report;

/// A live order of a session.
#[derive(Clone, Copy)]
pub(super) struct LiveOrder {
    pub(super) order_id: u64,
    pub(super) instrument: u32,
    pub(super) side: u8,
}

pub(super) struct Session {
    pub(super) account: u64,
    pub(super) secret: String,
    pub(super) stream: TcpStream,
    pub(super) input: Vec<u8>,
    pub(super) output: Vec<u8>,
    pub(super) written: usize,
    pub(super) next_client_id: u64,
    /// client order id -> (scheduled ns, taker, first fill seen)
    pub(super) pending: HashMap<u64, (u64, bool)>,
    /// Taker orders accepted and awaiting their first fill.
    pub(super) awaiting_fill: HashMap<u64, u64>,
    pub(super) live: Vec<LiveOrder>,
    pub(super) live_index: HashMap<u64, usize>,
    pub(super) logged_in: bool,
    /// Replayed messages of earlier runs arrive before ReferenceData: ignored.
    pub(super) replaying: bool,
    pub(super) closed: bool,
    pub(super) last_send: Instant,
    /// A corporate buyer's session (`--buyers`): its plan.
    pub(super) buyer: Option<Box<crate::buyers::BuyerPlan>>,
    /// The sequence space of its stream (`LoginAccepted.session_id`), once
    /// logged in, and the last sequenced message seen.
    pub(super) session_id: Option<u64>,
    pub(super) last_seq: u64,
    /// Logging in again after a failover, from `last_seq`.
    pub(super) resuming: bool,
}

impl Session {
    pub(super) fn remove_live(&mut self, order_id: u64) {
        if let Some(index) = self.live_index.remove(&order_id) {
            self.live.swap_remove(index);
            if let Some(moved) = self.live.get(index) {
                self.live_index.insert(moved.order_id, index);
            }
        }
    }

    pub(super) fn queue(&mut self, message: &ClientMessage) {
        frame::encode_into(message, &mut self.output);
    }

    /// Queues the login: at the start no replay of earlier runs' messages;
    /// after a failover, from the last message seen.
    pub(super) fn login(&mut self) {
        let login = ClientMessage::Login {
            account: self.account,
            secret: self.secret.clone(),
            last_seen_seq: if self.resuming {
                self.last_seq
            } else {
                u64::MAX
            },
            cancel_on_disconnect: true,
        };
        self.queue(&login);
    }

    /// Starts the session again on `stream` (a new leader) from the last
    /// message seen: the replay answers what was in flight and was taken.
    pub(super) fn reconnect(&mut self, stream: TcpStream) {
        self.stream = stream;
        self.input.clear();
        self.output.clear();
        self.written = 0;
        self.logged_in = false;
        self.replaying = true;
        self.closed = false;
        self.resuming = self.session_id.is_some();
        self.login();
    }

    /// A sequenced message numbered `seq` arrived: it must follow the last.
    fn follows(&mut self, seq: u64, tally: &mut Tally) {
        if seq != self.last_seq + 1 {
            tally.error(format!(
                "account {}: message {seq} follows message {} (a gap or a repeat)",
                self.account, self.last_seq
            ));
        }
        self.last_seq = seq;
        if self.resuming {
            tally.replayed += 1;
        }
    }

    /// `LoginAccepted`: the stream's space and where it stands.
    fn logged_in(&mut self, session_id: u64, next_seq: u64, tally: &mut Tally) {
        self.logged_in = true;
        if !self.resuming {
            self.session_id = Some(session_id);
            self.last_seq = next_seq - 1;
            return;
        }
        if self.session_id != Some(session_id) {
            // A new sequence space: nothing to resume.
            tally.new_spaces += 1;
            self.session_id = Some(session_id);
            self.last_seq = next_seq - 1;
            self.resuming = false;
        } else if next_seq - 1 < self.last_seq {
            tally.error(format!(
                "account {}: the new leader's stream ends at message {}, before message {} this session saw",
                self.account,
                next_seq - 1,
                self.last_seq
            ));
        }
    }
}

/// Counters and histograms shared by the loop.
pub(super) struct Tally {
    pub(super) report: Report,
    pub(super) ack: Histogram<u64>,
    /// Ack latency per flow: market makers, buyers.
    pub(super) flow_ack: [Histogram<u64>; 2],
    pub(super) fill: Histogram<u64>,
    pub(super) timeline: Vec<u64>,
    pub(super) acked_log: Option<BufWriter<File>>,
    /// Several venue nodes: a lost session is a failover to follow, not an
    /// error.
    pub(super) follow_failover: bool,
    /// The last failover's start, until the new leader's first
    /// acknowledgement (then recorded in its report).
    pub(super) lost_at: Option<Instant>,
    /// Messages replayed to resuming sessions, and sessions that found a
    /// new sequence space instead, since the last failover.
    pub(super) replayed: u64,
    pub(super) new_spaces: u64,
}

impl Tally {
    pub(super) fn error(&mut self, note: String) {
        self.report.errors += 1;
        if self.report.error_notes.len() < 20 {
            self.report.error_notes.push(note);
        }
    }
}

pub(super) fn flush(sessions: &mut [Session], tally: &mut Tally, _start: Instant) {
    for session in sessions.iter_mut() {
        if session.closed || session.written == session.output.len() {
            continue;
        }
        while session.written < session.output.len() {
            match session.stream.write(&session.output[session.written..]) {
                Ok(0) => break,
                Ok(n) => session.written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    session.closed = true;
                    if !tally.follow_failover {
                        tally.error(format!("account {}: write failed: {e}", session.account));
                    }
                    break;
                }
            }
        }
        session.last_send = Instant::now();
        if session.written == session.output.len() {
            session.output.clear();
            session.written = 0;
        } else if session.written > 1 << 20 {
            session.output.drain(..session.written);
            session.written = 0;
        }
    }
}

/// Reads and handles everything available on one session.
pub(super) fn read(
    session: &mut Session,
    tally: &mut Tally,
    start: Instant,
    clock: Instant,
    logging_in: bool,
) -> Result<(), String> {
    if session.closed {
        return Ok(());
    }
    let now_ns = clock.saturating_duration_since(start).as_nanos() as u64;
    let mut chunk = [0u8; 1 << 16];
    loop {
        match session.stream.read(&mut chunk) {
            Ok(0) => {
                session.closed = true;
                if !tally.follow_failover {
                    tally.error(format!(
                        "account {}: the venue closed the session",
                        session.account
                    ));
                }
                return Ok(());
            }
            Ok(n) => session.input.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                session.closed = true;
                if !tally.follow_failover {
                    tally.error(format!("account {}: read failed: {e}", session.account));
                }
                return Ok(());
            }
        }
    }
    let mut at = 0;
    loop {
        match frame::split(&session.input[at..], 1 << 24) {
            Ok(Some((payload, used))) => {
                let message = frame::decode::<Sequenced>(payload).map_err(|e| {
                    format!(
                        "account {}: undecodable venue message: {e}",
                        session.account
                    )
                })?;
                at += used;
                if message.seq != 0 {
                    session.follows(message.seq, tally);
                }
                handle(session, message.message, tally, now_ns, logging_in);
            }
            Ok(None) => break,
            Err(e) => {
                return Err(format!(
                    "account {}: bad frame from the venue: {e}",
                    session.account
                ))
            }
        }
    }
    session.input.drain(..at);
    Ok(())
}

pub(super) fn record(histogram: &mut Histogram<u64>, ns: u64) {
    let _ = histogram.record(ns.max(1));
}

pub(super) fn handle(
    session: &mut Session,
    message: VenueMessage,
    tally: &mut Tally,
    now_ns: u64,
    logging_in: bool,
) {
    let answered = |tally: &mut Tally| {
        let second = (now_ns / 1_000_000_000) as usize;
        if tally.timeline.len() <= second {
            tally.timeline.resize(second + 1, 0);
        }
        tally.timeline[second] += 1;
    };
    if session.replaying {
        match message {
            VenueMessage::ReferenceData { .. } => {
                session.replaying = false;
                session.resuming = false;
                return;
            }
            VenueMessage::LoginAccepted {
                session_id,
                next_seq,
                ..
            } => {
                session.logged_in(session_id, next_seq, tally);
                return;
            }
            VenueMessage::LoginRejected { text } | VenueMessage::SessionError { text } => {
                session.closed = true;
                tally.error(format!("account {}: {text}", session.account));
                return;
            }
            // A resumed session's replay answers what was in flight.
            _ if session.resuming => {}
            _ => return,
        }
    }
    match message {
        VenueMessage::LoginRejected { text } | VenueMessage::SessionError { text } => {
            session.closed = !logging_in || !session.logged_in;
            tally.error(format!("account {}: {text}", session.account));
        }
        VenueMessage::OrderAccepted {
            client_order_id,
            order_id,
            instrument,
            side,
            ..
        } => {
            if let Some((due, taker)) = session.pending.remove(&client_order_id) {
                record(&mut tally.ack, now_ns.saturating_sub(due));
                let flow = usize::from(session.buyer.is_some());
                record(&mut tally.flow_ack[flow], now_ns.saturating_sub(due));
                tally.report.flows[flow].acked += 1;
                if taker {
                    session.awaiting_fill.insert(order_id, due);
                } else {
                    session.live_index.insert(order_id, session.live.len());
                    session.live.push(LiveOrder {
                        order_id,
                        instrument,
                        side,
                    });
                }
                answered(tally);
                tally.report.acked += 1;
            }
            if let Some(log) = &mut tally.acked_log {
                let _ = writeln!(log, "{order_id}");
            }
            if let Some(lost_at) = tally.lost_at.take() {
                if let Some(failover) = tally.report.failovers.last_mut() {
                    failover.first_ack_ms = lost_at.elapsed().as_millis() as u64;
                }
            }
        }
        VenueMessage::OrderRejected {
            client_order_id,
            reason,
            ..
        } => {
            *tally
                .report
                .rejects_by_reason
                .entry(reject_name(reason).to_string())
                .or_default() += 1;
            let flow = usize::from(session.buyer.is_some());
            *tally.report.flows[flow]
                .rejects_by_reason
                .entry(reject_name(reason).to_string())
                .or_default() += 1;
            if client_order_id != 0 {
                if let Some((due, _)) = session.pending.remove(&client_order_id) {
                    record(&mut tally.ack, now_ns.saturating_sub(due));
                    record(&mut tally.flow_ack[flow], now_ns.saturating_sub(due));
                    answered(tally);
                }
                tally.report.flows[flow].rejected += 1;
                tally.report.rejected += 1;
            }
        }
        VenueMessage::OrderHeld {
            client_order_id, ..
        } => {
            if let Some((due, _)) = session.pending.remove(&client_order_id) {
                record(&mut tally.ack, now_ns.saturating_sub(due));
                let flow = usize::from(session.buyer.is_some());
                record(&mut tally.flow_ack[flow], now_ns.saturating_sub(due));
                tally.report.flows[flow].held += 1;
                answered(tally);
                tally.report.acked += 1;
            }
        }
        VenueMessage::Fill {
            order_id,
            leaves_qty,
            aggressor,
            ..
        } => {
            tally.report.fills += 1;
            if aggressor {
                if let Some(due) = session.awaiting_fill.remove(&order_id) {
                    record(&mut tally.fill, now_ns.saturating_sub(due));
                }
            }
            if leaves_qty == 0 {
                session.remove_live(order_id);
                session.awaiting_fill.remove(&order_id);
            }
        }
        VenueMessage::Cancelled { order_id, .. } => {
            session.remove_live(order_id);
            session.awaiting_fill.remove(&order_id);
        }
        _ => {}
    }
}
