//! The gateway thread: one mio event loop for every order-entry session.
//!
//! Inbound: frames are split and decoded per connection (a malformed one
//! ends that session only, nothing of it reaches the engine), checked by the
//! session layer (login, throttle, client order ids), risk limits and the
//! compliance pre-router, then pushed onto the engine ring. Outbound: engine
//! outputs become execution reports and market data, each numbered in its
//! account's session sequence and kept for replay after a reconnect.

use std::collections::{HashMap, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_queue::ArrayQueue;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use tonnex_engine::{
    Command, Compliance, Event, NewOrder as EngineOrder, ScopedOrder, VenueCommand,
};
use tonnex_protocol::frame::{self, DecodeError};
use tonnex_protocol::wire::{
    self, pathway_code, side_code, BuyDecision, ClientMessage, InstrumentInfo, NewOrder, Sequenced,
    VenueMessage,
};
use tonnex_protocol::{Cash, OrderKind, Pathway, Price, Qty, RejectReason, Side};

use super::core::{trade_id, BookSnapshot, Input, Output};
use crate::compliance::profiles::Attestation;
use crate::compliance::router::{Allocation, Decision, OrderRequest, Outcome, RawScopeLine};
use crate::compliance::{HeldOrders, Router};
use crate::config::{Role, SessionSettings, VenueConfig};
use tonnex_engine::venue::VenueImage;

/// The listener's token; the waker's; connections count up from `FIRST`.
const LISTENER: Token = Token(0);
/// The engine thread wakes the loop through this token.
pub const WAKER: Token = Token(1);
const FIRST: usize = 2;

/// Outbound bytes a connection may have queued before it is dropped as a
/// slow consumer (it can reconnect and replay).
const MAX_QUEUED_BYTES: usize = 32 << 20;

/// An account's risk limits, in engine units.
#[derive(Clone, Copy, Debug, Default)]
struct Risk {
    max_qty: Option<u64>,
    max_notional_micros: Option<i128>,
    /// Collar in hundredths of a percent.
    collar_bp: Option<i128>,
}

/// What the venue keeps per account across connections.
struct AccountState {
    secret: String,
    role: Role,
    risk: Risk,
    conn: Option<Token>,
    /// Encoded frames of sequenced messages, oldest first.
    log: VecDeque<Vec<u8>>,
    /// Sequence number of `log[0]`.
    log_first_seq: u64,
    next_seq: u64,
    last_client_order_id: u64,
}

/// One TCP connection.
struct Conn {
    stream: TcpStream,
    read: Vec<u8>,
    write: Vec<u8>,
    written: usize,
    account: Option<u64>,
    opened_ns: u64,
    last_recv_ns: u64,
    last_send_ns: u64,
    window_s: u64,
    window_count: u64,
    window_previous: u64,
    cancel_on_disconnect: bool,
    subscriptions: Vec<u32>,
    /// Close once the queued bytes are out.
    closing: bool,
}

/// A live order's owner, as the gateway knows it.
struct OrderInfo {
    account: u64,
    client_order_id: u64,
    instrument: u32,
    /// Open tonnes.
    open: u64,
    /// A buyer's buy: its open tonnes per inventory slot (the router's
    /// claims mirror the engine's bookkeeping through it).
    allocation: Option<Box<Allocation>>,
}

/// Most scope lines one order may carry (a journal record has a bounded size).
const MAX_SCOPE_LINES: usize = 64;
/// Longest attestation id, in bytes (COMPLIANCE.md, "Attestations").
const MAX_ATTESTATION_ID: usize = 64;

/// A command on its way through the engine, in submission order.
struct Inflight {
    account: u64,
    client_order_id: u64,
    /// An accepted attestation: how many held orders it re-checked.
    rechecked: u32,
    pathway: Pathway,
    sub_ledger: Arc<str>,
    floor_ticks: u32,
    attestation: Option<String>,
    allocation: Option<Box<Allocation>>,
}

/// An instrument as the gateway needs it.
pub struct InstrumentRef {
    /// Ticker.
    pub symbol: String,
    /// Sub-ledger.
    pub sub_ledger: Arc<str>,
    /// Tick in USD.
    pub tick_usd: Decimal,
    /// Tick in micro-dollars.
    pub tick_micros: i64,
    /// Band in ticks.
    pub min_price: i64,
    /// Band in ticks.
    pub max_price: i64,
}

/// The gateway thread's whole state.
pub struct Gateway {
    poll: Poll,
    listener: Option<TcpListener>,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    open_conns: usize,
    accounts: HashMap<u64, AccountState>,
    instruments: Vec<InstrumentRef>,
    reference: VenueMessage,
    router: Router,
    held: HeldOrders,
    held_budgets: HashMap<(u64, u64), i64>,
    attestation_ids: HashMap<String, u64>,
    attestation_names: Vec<String>,
    orders: HashMap<u64, OrderInfo>,
    inflight: VecDeque<Inflight>,
    current: Option<Inflight>,
    current_seq: u64,
    current_command: Option<Command>,
    fill_index: u64,
    md_seq: Vec<u64>,
    subscribers: Vec<Vec<u64>>,
    last_trade: Vec<Option<i64>>,
    to_engine: Arc<ArrayQueue<Input>>,
    from_engine: Arc<ArrayQueue<Output>>,
    engine: std::thread::Thread,
    sleeping: Arc<AtomicBool>,
    chunk: Vec<u8>,
    settings: SessionSettings,
    dirty: Vec<Token>,
    started: Instant,
    closing: bool,
    engine_stopped: bool,
    /// The rules in force, named by every buyer decision.
    rules_version: String,
    rules_sha256: String,
}

/// What the gateway rebuilds from the recovered engine state at start: the
/// journal's bookkeeping, and each live tagged order's instrument.
pub struct Seed {
    /// Client ids, live orders, claims, attestations, held orders, rules.
    pub venue: VenueImage,
    /// `(order id, instrument)` of every live tagged order.
    pub instruments: Vec<(u64, u32)>,
    /// The rules in force (`version`).
    pub rules_version: String,
    /// SHA-256 of the rules file, hex.
    pub rules_sha256: String,
}

impl Gateway {
    /// A gateway for `config`, serving `listener`, feeding the engine thread.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        poll: Poll,
        mut listener: TcpListener,
        config: &VenueConfig,
        router: Router,
        instruments: Vec<InstrumentRef>,
        to_engine: Arc<ArrayQueue<Input>>,
        from_engine: Arc<ArrayQueue<Output>>,
        engine: std::thread::Thread,
        sleeping: Arc<AtomicBool>,
        seed: Seed,
    ) -> std::io::Result<Gateway> {
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let accounts = config
            .accounts
            .iter()
            .map(|a| {
                let risk = Risk {
                    max_qty: a.max_order_qty,
                    max_notional_micros: a
                        .max_notional_usd
                        .and_then(|d| (d * Decimal::from(1_000_000)).trunc().to_i128()),
                    collar_bp: a
                        .price_collar_pct
                        .and_then(|d| (d * Decimal::from(100)).trunc().to_i128()),
                };
                (
                    a.id,
                    AccountState {
                        secret: a.secret.clone(),
                        role: a.role,
                        risk,
                        conn: None,
                        log: VecDeque::new(),
                        log_first_seq: 1,
                        next_seq: 1,
                        last_client_order_id: 0,
                    },
                )
            })
            .collect();
        let reference = VenueMessage::ReferenceData {
            instruments: instruments
                .iter()
                .enumerate()
                .map(|(i, r)| InstrumentInfo {
                    instrument: i as u32,
                    symbol: r.symbol.clone(),
                    sub_ledger: r.sub_ledger.to_string(),
                    tick_micros: r.tick_micros,
                    min_price_ticks: r.min_price,
                    max_price_ticks: r.max_price,
                })
                .collect(),
        };
        let count = instruments.len();
        let mut gateway = Gateway {
            poll,
            listener: Some(listener),
            conns: Vec::new(),
            free: Vec::new(),
            open_conns: 0,
            accounts,
            instruments,
            reference,
            router,
            held: HeldOrders::default(),
            held_budgets: HashMap::new(),
            attestation_ids: HashMap::new(),
            attestation_names: Vec::new(),
            orders: HashMap::new(),
            inflight: VecDeque::new(),
            current: None,
            current_seq: 0,
            current_command: None,
            fill_index: 0,
            md_seq: vec![0; count],
            subscribers: vec![Vec::new(); count],
            last_trade: vec![None; count],
            to_engine,
            from_engine,
            engine,
            sleeping,
            chunk: vec![0; 1 << 16],
            settings: config.session.clone(),
            dirty: Vec::new(),
            started: Instant::now(),
            closing: false,
            engine_stopped: false,
            rules_version: seed.rules_version.clone(),
            rules_sha256: seed.rules_sha256.clone(),
        };
        gateway.rebuild(&seed);
        Ok(gateway)
    }

    /// Rebuilds what the gateway keeps from the journal's bookkeeping: the
    /// client id high-water marks, live orders with their client ids and
    /// open allocations, the router's claims, attestations and held orders.
    fn rebuild(&mut self, seed: &Seed) {
        let venue = &seed.venue;
        for &(account, last) in &venue.client_order_ids {
            if let Some(state) = self.accounts.get_mut(&account) {
                state.last_client_order_id = last;
            }
        }
        let instruments: HashMap<u64, u32> = seed.instruments.iter().copied().collect();
        for tag in &venue.orders {
            self.orders.insert(
                tag.order_id,
                OrderInfo {
                    account: tag.account,
                    client_order_id: tag.client_order_id,
                    instrument: instruments.get(&tag.order_id).copied().unwrap_or(0),
                    open: tag.open,
                    allocation: tag.allocation.clone(),
                },
            );
        }
        for (account, claims) in &venue.claims {
            self.router.claim_slots(*account, claims);
        }
        for record in &venue.attestations {
            self.router.add_attestation(
                record.account,
                Attestation {
                    id: record.id.clone(),
                    internal_price_usd: Decimal::new(record.internal_price_micros, 6),
                    reporting_year: i64::from(record.reporting_year),
                },
            );
        }
        for held in &venue.held {
            let order = &held.order;
            let (Some(kind), Some(side), Some(reference)) = (
                order.kind(),
                order.side(),
                self.instruments.get(order.instrument as usize),
            ) else {
                continue;
            };
            let request = order_request(
                held.account,
                order,
                reference,
                kind,
                side,
                i64::try_from(order.qty).unwrap_or(0),
            );
            self.held_budgets.insert(
                (held.account, order.client_order_id),
                order.cash_budget_micros,
            );
            self.held.hold(request, held.expires_at_ns);
        }
    }

    fn now_ns(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    /// Runs until `stop` is set and the engine has drained.
    pub fn run(mut self, stop: &AtomicBool) -> std::io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut last_timers = 0u64;
        let mut shutdown_started: Option<Instant> = None;
        loop {
            // The engine wakes this loop only while it sleeps (`sleeping`):
            // a busy gateway drains the ring without an eventfd per batch.
            self.sleeping.store(true, Ordering::SeqCst);
            let timeout = if self.from_engine.is_empty() {
                Duration::from_millis(5)
            } else {
                Duration::ZERO
            };
            let polled = self.poll.poll(&mut events, Some(timeout));
            self.sleeping.store(false, Ordering::SeqCst);
            match polled {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            for event in &events {
                match event.token() {
                    LISTENER => self.accept(),
                    WAKER => {}
                    token => {
                        if event.is_readable() || event.is_read_closed() {
                            let to_the_end = event.is_read_closed() || event.is_error();
                            self.on_readable(token, to_the_end);
                        }
                        if event.is_writable() {
                            self.dirty.push(token);
                        }
                    }
                }
            }
            self.drain_engine();
            self.flush_dirty();
            let now = self.now_ns();
            if now - last_timers >= 10_000_000 {
                last_timers = now;
                self.timers(now);
                self.flush_dirty();
            }
            if stop.load(Ordering::Acquire) && shutdown_started.is_none() {
                tracing::info!("shutting down: no new connections or orders; draining");
                shutdown_started = Some(Instant::now());
                self.closing = true;
                if let Some(mut listener) = self.listener.take() {
                    let _ = self.poll.registry().deregister(&mut listener);
                }
                self.submit(Input::Shutdown);
            }
            if self.engine_stopped {
                // Give clients a moment to receive their last reports.
                let deadline = Instant::now() + Duration::from_secs(1);
                while Instant::now() < deadline && self.pending_writes() {
                    self.flush_all();
                    std::thread::sleep(Duration::from_millis(5));
                }
                return Ok(());
            }
        }
    }

    fn pending_writes(&self) -> bool {
        self.conns
            .iter()
            .flatten()
            .any(|c| c.written < c.write.len())
    }

    fn flush_all(&mut self) {
        for i in 0..self.conns.len() {
            if self.conns[i].is_some() {
                self.dirty.push(Token(i + FIRST));
            }
        }
        self.flush_dirty();
    }

    fn conn(&mut self, token: Token) -> Option<&mut Conn> {
        self.conns.get_mut(token.0.checked_sub(FIRST)?)?.as_mut()
    }

    fn accept(&mut self) {
        loop {
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok((mut stream, peer)) => {
                    if self.open_conns >= self.settings.max_connections {
                        tracing::warn!(%peer, "connection refused: at max_connections");
                        let mut bytes = Vec::new();
                        frame::encode_into(
                            &Sequenced {
                                seq: 0,
                                message: VenueMessage::SessionError {
                                    text: "too many connections".into(),
                                },
                            },
                            &mut bytes,
                        );
                        let _ = stream.write(&bytes);
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    let index = self.free.pop().unwrap_or_else(|| {
                        self.conns.push(None);
                        self.conns.len() - 1
                    });
                    let token = Token(index + FIRST);
                    if let Err(e) = self.poll.registry().register(
                        &mut stream,
                        token,
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        tracing::warn!(%peer, error = %e, "register failed");
                        self.free.push(index);
                        continue;
                    }
                    let now = self.now_ns();
                    self.conns[index] = Some(Conn {
                        stream,
                        read: Vec::with_capacity(4096),
                        write: Vec::with_capacity(4096),
                        written: 0,
                        account: None,
                        opened_ns: now,
                        last_recv_ns: now,
                        last_send_ns: now,
                        window_s: 0,
                        window_count: 0,
                        window_previous: 0,
                        cancel_on_disconnect: false,
                        subscriptions: Vec::new(),
                        closing: false,
                    });
                    self.open_conns += 1;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    return;
                }
            }
        }
    }

    /// Reads and handles what `token` sent. A read shorter than the buffer
    /// emptied the socket (a later arrival raises a new edge), so the loop
    /// stops there instead of paying a second `read` for `WouldBlock`;
    /// `to_the_end` (the peer half-closed) reads on to the end of stream.
    fn on_readable(&mut self, token: Token, to_the_end: bool) {
        let max = self.settings.max_frame_bytes;
        // One read buffer for every connection, allocated once.
        let mut chunk = std::mem::take(&mut self.chunk);
        self.read_into(token, to_the_end, max, &mut chunk);
        self.chunk = chunk;
    }

    fn read_into(&mut self, token: Token, to_the_end: bool, max: usize, chunk: &mut [u8]) {
        loop {
            let Some(conn) = self.conn(token) else {
                return;
            };
            if conn.closing {
                return;
            }
            let read = conn.stream.read(chunk);
            match read {
                Ok(0) => {
                    self.close(token, "peer closed the connection");
                    return;
                }
                Ok(n) => {
                    let now = self.now_ns();
                    let conn = self.conn(token).expect("conn");
                    conn.read.extend_from_slice(&chunk[..n]);
                    conn.last_recv_ns = now;
                    let mut buffer = std::mem::take(&mut conn.read);
                    let mut at = 0;
                    let mut failed = None;
                    loop {
                        match frame::split(&buffer[at..], max) {
                            Ok(Some((payload, used))) => {
                                match frame::decode::<ClientMessage>(payload) {
                                    Ok(message) => {
                                        at += used;
                                        self.on_message(token, message);
                                        if self.conn(token).is_none_or(|c| c.closing) {
                                            return;
                                        }
                                    }
                                    Err(e) => {
                                        failed = Some(e);
                                        break;
                                    }
                                }
                            }
                            Ok(None) => break,
                            Err(e) => {
                                failed = Some(e);
                                break;
                            }
                        }
                    }
                    if let Some(e) = failed {
                        self.protocol_error(token, &e);
                        return;
                    }
                    buffer.drain(..at);
                    if let Some(conn) = self.conn(token) {
                        conn.read = buffer;
                    }
                    if n < chunk.len() && !to_the_end {
                        return;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    self.close(token, &format!("read failed: {e}"));
                    return;
                }
            }
        }
    }

    fn protocol_error(&mut self, token: Token, error: &DecodeError) {
        tracing::warn!(token = token.0, %error, "malformed frame: closing the session");
        self.send_conn(
            token,
            VenueMessage::SessionError {
                text: format!("malformed frame: {error}"),
            },
        );
        self.close_after_flush(token);
    }

    fn close_after_flush(&mut self, token: Token) {
        if let Some(conn) = self.conn(token) {
            conn.closing = true;
        }
        self.dirty.push(token);
    }

    /// Drops a connection; its account's cancel-on-disconnect applies.
    fn close(&mut self, token: Token, why: &str) {
        let Some(index) = token.0.checked_sub(FIRST) else {
            return;
        };
        let Some(mut conn) = self.conns.get_mut(index).and_then(Option::take) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut conn.stream);
        self.free.push(index);
        self.open_conns -= 1;
        let Some(account) = conn.account else {
            return;
        };
        tracing::info!(account, why, "session closed");
        for instrument in conn.subscriptions {
            if let Some(list) = self.subscribers.get_mut(instrument as usize) {
                list.retain(|a| *a != account);
            }
        }
        if let Some(state) = self.accounts.get_mut(&account) {
            if state.conn == Some(token) {
                state.conn = None;
            }
        }
        if conn.cancel_on_disconnect && !self.engine_stopped {
            self.submit_command(
                Command::MassCancel {
                    account,
                    instrument: None,
                },
                account,
                0,
            );
        }
    }

    /// A message outside the session sequence (before login, heartbeats).
    fn send_conn(&mut self, token: Token, message: VenueMessage) {
        let now = self.now_ns();
        if let Some(conn) = self.conn(token) {
            frame::encode_into(&Sequenced { seq: 0, message }, &mut conn.write);
            conn.last_send_ns = now;
            self.dirty.push(token);
        }
    }

    /// A sequenced message to an account: kept for replay, sent if connected.
    fn send(&mut self, account: u64, message: VenueMessage) {
        let Some(state) = self.accounts.get_mut(&account) else {
            return;
        };
        let seq = state.next_seq;
        state.next_seq += 1;
        let bytes = frame::encode(&Sequenced { seq, message });
        if let Some(token) = state.conn {
            if let Some(conn) = self.conns.get_mut(token.0 - FIRST).and_then(Option::as_mut) {
                conn.write.extend_from_slice(&bytes);
                conn.last_send_ns = self.started.elapsed().as_nanos() as u64;
                self.dirty.push(token);
            }
        }
        state.log.push_back(bytes);
        if state.log.len() > self.settings.replay_capacity {
            state.log.pop_front();
            state.log_first_seq += 1;
        }
    }

    fn flush_dirty(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        for &token in &dirty {
            let Some(conn) = self.conn(token) else {
                continue;
            };
            let mut failed = None;
            while conn.written < conn.write.len() {
                match conn.stream.write(&conn.write[conn.written..]) {
                    Ok(0) => {
                        failed = Some("peer stopped reading".to_string());
                        break;
                    }
                    Ok(n) => conn.written += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => {
                        failed = Some(format!("write failed: {e}"));
                        break;
                    }
                }
            }
            if conn.written == conn.write.len() {
                conn.write.clear();
                conn.written = 0;
            } else if conn.write.len() - conn.written > MAX_QUEUED_BYTES {
                failed = Some("slow consumer: too much output queued".to_string());
            } else if conn.written > 1 << 20 {
                conn.write.drain(..conn.written);
                conn.written = 0;
            }
            let done_closing = conn.closing && conn.write.is_empty();
            if let Some(why) = failed {
                self.close(token, &why);
            } else if done_closing {
                self.close(token, "closed by the venue");
            }
        }
        dirty.clear();
        if self.dirty.is_empty() {
            self.dirty = dirty;
        }
    }

    fn timers(&mut self, now: u64) {
        let heartbeat = u64::from(self.settings.heartbeat_ms) * 1_000_000;
        let login = u64::from(self.settings.login_timeout_ms) * 1_000_000;
        for index in 0..self.conns.len() {
            let token = Token(index + FIRST);
            let Some(conn) = self.conns[index].as_ref() else {
                continue;
            };
            if conn.closing {
                continue;
            }
            if conn.account.is_none() {
                if now.saturating_sub(conn.opened_ns) > login {
                    self.send_conn(
                        token,
                        VenueMessage::SessionError {
                            text: "no login before the deadline".into(),
                        },
                    );
                    self.close_after_flush(token);
                }
            } else if now.saturating_sub(conn.last_recv_ns) > 3 * heartbeat {
                self.send_conn(
                    token,
                    VenueMessage::SessionError {
                        text: "idle timeout: no message for three heartbeat intervals".into(),
                    },
                );
                self.close_after_flush(token);
            } else if now.saturating_sub(conn.last_send_ns) >= heartbeat {
                self.send_conn(token, VenueMessage::Heartbeat);
            }
        }
        let wall = self.wall_ns();
        for order in self.held.expire(wall) {
            self.held_budgets.remove(&(order.account, order.id));
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

    fn on_message(&mut self, token: Token, message: ClientMessage) {
        let Some(conn) = self.conn(token) else {
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
                _ => {
                    self.send_conn(
                        token,
                        VenueMessage::SessionError {
                            text: "the first message must be Login".into(),
                        },
                    );
                    self.close_after_flush(token);
                }
            }
            return;
        };
        // Throttle: a sliding one-second window, estimated from this
        // second's count and the previous second's, weighted by overlap.
        let now = self.now_ns();
        let second = now / 1_000_000_000;
        let limit = u64::from(self.settings.throttle_per_s);
        let conn = self.conn(token).expect("conn");
        if conn.window_s != second {
            conn.window_previous = if conn.window_s + 1 == second {
                conn.window_count
            } else {
                0
            };
            conn.window_s = second;
            conn.window_count = 0;
        }
        conn.window_count += 1;
        let overlap_ns = 1_000_000_000 - now % 1_000_000_000;
        let count = conn.window_count + conn.window_previous * overlap_ns / 1_000_000_000;
        if count * 2 > limit * 3 {
            tracing::warn!(account, "throttle exceeded 1.5x: disconnecting");
            self.send_conn(
                token,
                VenueMessage::SessionError {
                    text: format!("more than 1.5 x {limit} messages in one second"),
                },
            );
            self.close_after_flush(token);
            return;
        }
        let throttled = count > limit;
        match message {
            ClientMessage::Heartbeat => {}
            ClientMessage::Logout => {
                self.close_after_flush(token);
            }
            ClientMessage::Login { .. } => {
                self.send_conn(
                    token,
                    VenueMessage::SessionError {
                        text: "already logged in".into(),
                    },
                );
                self.close_after_flush(token);
            }
            ClientMessage::NewOrder(order) => {
                if throttled {
                    self.send(
                        account,
                        VenueMessage::OrderRejected {
                            client_order_id: order.client_order_id,
                            order_id: 0,
                            reason: RejectReason::Throttled.code(),
                        },
                    );
                } else {
                    self.new_order(account, order);
                }
            }
            ClientMessage::Cancel { order_id } => {
                if self.refuse(account, order_id, throttled) {
                    return;
                }
                self.submit_command(Command::Cancel { order_id, account }, account, 0);
            }
            ClientMessage::Replace {
                order_id,
                price_ticks,
                qty,
            } => {
                if self.refuse(account, order_id, throttled) {
                    return;
                }
                if let Some(info) = self.orders.get(&order_id) {
                    let instrument = info.instrument;
                    // A replace up of a buyer's buy: the added tonnes go
                    // through step 9 again, on the order's last scope line.
                    let over_inventory = info.allocation.as_ref().is_some_and(|a| {
                        qty > info.open
                            && !self.router.fits(
                                info.account,
                                a.last_slot().unwrap_or(0),
                                qty - info.open,
                            )
                    });
                    if over_inventory {
                        self.reject(account, 0, order_id, RejectReason::ScopeExceedsInventory);
                        return;
                    }
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
            ClientMessage::MassCancel { instrument } => {
                if self.refuse(account, 0, throttled) {
                    return;
                }
                self.submit_command(
                    Command::MassCancel {
                        account,
                        instrument,
                    },
                    account,
                    0,
                );
            }
            ClientMessage::SubmitAttestation {
                id,
                internal_price_micros,
                reporting_year,
            } => self.attest(account, id, internal_price_micros, reporting_year),
            ClientMessage::Subscribe { instrument } => {
                if (instrument as usize) >= self.instruments.len() {
                    self.reject(account, 0, 0, RejectReason::UnknownInstrument);
                    return;
                }
                let conn = self.conn(token).expect("conn");
                if !conn.subscriptions.contains(&instrument) {
                    conn.subscriptions.push(instrument);
                    self.subscribers[instrument as usize].push(account);
                }
                self.submit(Input::Book {
                    instrument,
                    account,
                });
            }
        }
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

    fn reject(&mut self, account: u64, client_order_id: u64, order_id: u64, reason: RejectReason) {
        self.send(
            account,
            VenueMessage::OrderRejected {
                client_order_id,
                order_id,
                reason: reason.code(),
            },
        );
    }

    fn login(
        &mut self,
        token: Token,
        account: u64,
        secret: &str,
        last_seen_seq: u64,
        cancel_on_disconnect: bool,
    ) {
        let verdict = match self.accounts.get(&account) {
            Some(state) if constant_time_eq(state.secret.as_bytes(), secret.as_bytes()) => {
                if state.conn.is_some() {
                    Err("the account already has a session")
                } else {
                    Ok(())
                }
            }
            _ => Err("unknown account or wrong secret"),
        };
        if let Err(text) = verdict {
            tracing::warn!(account, text, "login rejected");
            self.send_conn(token, VenueMessage::LoginRejected { text: text.into() });
            self.close_after_flush(token);
            return;
        }
        tracing::info!(account, last_seen_seq, "login");
        let heartbeat_ms = self.settings.heartbeat_ms;
        let state = self.accounts.get_mut(&account).expect("checked");
        state.conn = Some(token);
        let next_seq = state.next_seq;
        let first_held = state.log_first_seq;
        let conn = self.conns[token.0 - FIRST].as_mut().expect("conn");
        conn.account = Some(account);
        conn.cancel_on_disconnect = cancel_on_disconnect;
        frame::encode_into(
            &Sequenced {
                seq: 0,
                message: VenueMessage::LoginAccepted {
                    account,
                    next_seq,
                    heartbeat_ms,
                },
            },
            &mut conn.write,
        );
        let from = last_seen_seq.saturating_add(1);
        if from < first_held && from < next_seq {
            frame::encode_into(
                &Sequenced {
                    seq: 0,
                    message: VenueMessage::SessionError {
                        text: format!(
                            "messages {from}..{} are no longer held; replay starts at {first_held}",
                            first_held - 1
                        ),
                    },
                },
                &mut conn.write,
            );
        }
        let skip = from.saturating_sub(first_held) as usize;
        for bytes in state.log.iter().skip(skip) {
            conn.write.extend_from_slice(bytes);
        }
        frame::encode_into(
            &Sequenced {
                seq: 0,
                message: self.reference.clone(),
            },
            &mut conn.write,
        );
        self.dirty.push(token);
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
        let reference = self.instruments.get(instrument as usize)?;
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
            self.last_trade.get(instrument as usize).copied().flatten(),
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
            self.reject(
                account,
                client_order_id,
                0,
                RejectReason::DuplicateClientOrderId,
            );
            return;
        }
        state.last_client_order_id = client_order_id;
        if self.closing {
            self.refuse_order(account, client_order_id, RejectReason::VenueClosing);
            return;
        }
        if order.scope.len() > MAX_SCOPE_LINES {
            self.refuse_order(account, client_order_id, RejectReason::ScopeMissing);
            return;
        }
        let (Some(kind), Some(side)) = (order.kind(), order.side()) else {
            self.refuse_order(account, client_order_id, RejectReason::InvalidOrder);
            return;
        };
        let Some(reference) = self.instruments.get(order.instrument as usize) else {
            self.refuse_order(account, client_order_id, RejectReason::UnknownInstrument);
            return;
        };
        let Ok(qty) = i64::try_from(order.qty) else {
            self.refuse_order(account, client_order_id, RejectReason::InvalidOrder);
            return;
        };
        if let Some(reason) = self.risk(
            account,
            order.instrument,
            kind,
            order.price_ticks,
            order.qty,
            order.cash_budget_micros,
        ) {
            self.refuse_order(account, client_order_id, reason);
            return;
        }
        let request = order_request(account, &order, reference, kind, side, qty);
        let mut decision = Decision::default();
        self.router.decide_into(&request, &mut decision);
        match decision.outcome {
            Outcome::Reject => {
                let reason = decision.reason.unwrap_or(RejectReason::InvalidOrder);
                self.refuse_order(account, client_order_id, reason);
            }
            Outcome::Hold => {
                let expires_at_ns = self.wall_ns() + self.settings.hold_expiry_ms * 1_000_000;
                self.held_budgets
                    .insert((account, client_order_id), order.cash_budget_micros);
                self.held.hold(request, expires_at_ns);
                // Answered (OrderHeld) once the hold is journaled.
                self.submit_venue(
                    VenueCommand::Hold {
                        account,
                        expires_at_ns,
                        order,
                    },
                    account,
                    client_order_id,
                    0,
                );
            }
            Outcome::Accept => self.submit_order(
                account,
                &request,
                &decision,
                order.instrument,
                order.price_ticks,
                order.cash_budget_micros,
                false,
            ),
        }
    }

    /// Refuses a new order before it reaches a book. The refusal is
    /// journaled (its client order id stays used across restarts) and
    /// answered once it is.
    fn refuse_order(&mut self, account: u64, client_order_id: u64, reason: RejectReason) {
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

    /// A venue bookkeeping command on behalf of `account`.
    fn submit_venue(
        &mut self,
        command: VenueCommand,
        account: u64,
        client_order_id: u64,
        rechecked: u32,
    ) {
        self.submit_uncompliant(
            Command::Venue(Box::new(command)),
            account,
            client_order_id,
            rechecked,
        );
    }

    /// Wall-clock time, nanoseconds since the Unix epoch: what hold
    /// deadlines and order timestamps carry into the journal.
    fn wall_ns(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    }

    #[allow(clippy::too_many_arguments)]
    fn submit_order(
        &mut self,
        account: u64,
        request: &OrderRequest,
        decision: &Decision,
        instrument: u32,
        price_ticks: i64,
        cash_budget_micros: i64,
        released_from_hold: bool,
    ) {
        let pathway = decision.pathway.unwrap_or(Pathway::None);
        let attestation_id = match &decision.attestation {
            Some(name) => match self.attestation_ids.get(name) {
                Some(&id) => id,
                None => {
                    self.attestation_names.push(name.clone());
                    let id = self.attestation_names.len() as u64;
                    self.attestation_ids.insert(name.clone(), id);
                    id
                }
            },
            None => 0,
        };
        let buyer_buy = request.side == Side::Buy
            && pathway != Pathway::None
            && self
                .accounts
                .get(&account)
                .is_some_and(|a| a.role == Role::Buyer);
        let buy_decision = if buyer_buy {
            self.router.profile(account).map(|profile| BuyDecision {
                company: profile.company.clone(),
                reporting_year: u16::try_from(profile.reporting_year).unwrap_or(0),
                pathway: pathway_code(pathway),
                sub_ledger: decision
                    .sub_ledger
                    .as_deref()
                    .unwrap_or_default()
                    .to_string(),
                floor_micros: micros(decision.floor_usd.unwrap_or_default()),
                floor_ticks: decision.floor_ticks,
                internal_price_micros: micros(profile.internal_carbon_price_usd),
                attestation: decision.attestation.clone(),
                scope: crate::compliance::router::lines(&decision.allocation)
                    .map(|l| wire::ScopeLine {
                        scope: l.scope,
                        category: l.category,
                        qty: l.qty,
                    })
                    .collect(),
                coverage_bp: decision
                    .coverage_pct
                    .and_then(|c| (c * Decimal::from(100)).trunc().to_u32())
                    .unwrap_or(0),
                tier_threshold_met: decision.tier_threshold_met.unwrap_or(false),
                ongoing_emissions_milli_t: (profile.ongoing_emissions_tonnes * Decimal::from(1000))
                    .trunc()
                    .to_u64()
                    .unwrap_or(0),
                threshold_bp: u32::try_from(self.router.threshold_hundredths(pathway)).unwrap_or(0),
                rules_version: self.rules_version.clone(),
                rules_sha256: self.rules_sha256.clone(),
            })
        } else {
            None
        };
        let price = if request.kind == OrderKind::Market {
            0
        } else {
            decision.price_ticks.unwrap_or(price_ticks)
        };
        let order = EngineOrder {
            id: 0,
            account,
            client_order_id: request.id,
            instrument,
            side: request.side,
            kind: request.kind,
            price: Price(price),
            qty: Qty(request.qty as u64),
            cash_budget: Cash(cash_budget_micros),
            compliance: Compliance {
                pathway,
                floor_ticks: decision.floor_ticks,
                attestation_id,
            },
            ts_ns: self.wall_ns(),
        };
        let command = match buy_decision {
            Some(decision) => Command::Scoped(Box::new(ScopedOrder {
                order,
                decision,
                released_from_hold,
            })),
            None => Command::New(order),
        };
        self.inflight.push_back(Inflight {
            account,
            client_order_id: request.id,
            rechecked: 0,
            pathway,
            sub_ledger: decision.sub_ledger.clone().unwrap_or_else(|| Arc::from("")),
            floor_ticks: decision.floor_ticks,
            attestation: decision.attestation.clone(),
            allocation: buyer_buy.then(|| Box::new(decision.allocation)),
        });
        self.submit(Input::Command {
            command,
            annotation: None,
        });
    }

    /// A wire attestation: refused with `AttestationRefused` when it breaks
    /// a rule of COMPLIANCE.md "Attestations"; else journaled, and the
    /// buyer's held orders re-checked oldest first (each answered on its own).
    fn attest(&mut self, account: u64, id: String, internal_price_micros: i64, year: u16) {
        let verdict = match self.router.profile(account) {
            None => Err((
                RejectReason::NoProfile,
                "the account has no buyer profile".to_string(),
            )),
            Some(profile) => attestation_problem(profile, &id, internal_price_micros, year)
                .map_or(Ok(()), |text| Err((RejectReason::AttestationInvalid, text))),
        };
        if let Err((reason, text)) = verdict {
            tracing::info!(account, id, text, "attestation refused");
            self.send(
                account,
                VenueMessage::AttestationRefused {
                    id,
                    reason: reason.code(),
                    text,
                },
            );
            return;
        }
        let attestation = Attestation {
            id: id.clone(),
            internal_price_usd: Decimal::new(internal_price_micros, 6),
            reporting_year: i64::from(year),
        };
        let decided = self.held.attest(&mut self.router, account, attestation);
        // Answered (AttestationAccepted) once it is journaled; the re-checked
        // orders follow it into the journal.
        self.submit_venue(
            VenueCommand::Attest {
                account,
                id,
                internal_price_micros,
                reporting_year: year,
            },
            account,
            0,
            decided.len() as u32,
        );
        for (request, decision) in decided {
            let budget = self
                .held_budgets
                .remove(&(account, request.id))
                .unwrap_or(0);
            match decision.outcome {
                Outcome::Accept => {
                    let instrument = decision.instrument.unwrap_or(0) as u32;
                    let price = decision.price_ticks.unwrap_or(0);
                    self.submit_order(
                        account, &request, &decision, instrument, price, budget, true,
                    );
                }
                _ => {
                    let reason = decision.reason.unwrap_or(RejectReason::InvalidOrder);
                    self.submit_venue(
                        VenueCommand::Unhold {
                            account,
                            client_order_id: request.id,
                            reason: reason.code(),
                        },
                        account,
                        request.id,
                        0,
                    );
                }
            }
        }
    }

    /// A non-order command on behalf of `account`.
    fn submit_command(&mut self, command: Command, account: u64, client_order_id: u64) {
        self.submit_uncompliant(command, account, client_order_id, 0);
    }

    /// Any command but a routed order: no pathway, floor or allocation.
    fn submit_uncompliant(
        &mut self,
        command: Command,
        account: u64,
        client_order_id: u64,
        rechecked: u32,
    ) {
        self.inflight.push_back(Inflight {
            account,
            client_order_id,
            rechecked,
            pathway: Pathway::None,
            sub_ledger: Arc::from(""),
            floor_ticks: 0,
            attestation: None,
            allocation: None,
        });
        self.submit(Input::Command {
            command,
            annotation: None,
        });
    }

    /// Pushes onto the engine ring; when it is full, drains the engine's
    /// outputs while waiting (back-pressure, never an unbounded queue).
    fn submit(&mut self, input: Input) {
        let mut item = input;
        loop {
            match self.to_engine.push(item) {
                Ok(()) => break,
                Err(back) => {
                    item = back;
                    self.engine.unpark();
                    self.drain_engine();
                    std::thread::yield_now();
                }
            }
        }
        self.engine.unpark();
    }

    fn drain_engine(&mut self) {
        while let Some(output) = self.from_engine.pop() {
            self.on_output(output);
        }
    }

    fn on_output(&mut self, output: Output) {
        match output {
            Output::Begin { seq, command } => {
                self.current = self.inflight.pop_front();
                self.current_seq = seq;
                if let Command::Venue(venue) = &command {
                    self.on_venue_command(venue);
                }
                self.current_command = Some(command);
                self.fill_index = 0;
            }
            Output::Event(event) => self.on_event(event),
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
            Output::Stopped => self.engine_stopped = true,
        }
    }

    /// A journaled venue command: its answer to the client, now that it is
    /// in the journal.
    fn on_venue_command(&mut self, command: &VenueCommand) {
        match command {
            VenueCommand::Refused {
                account,
                client_order_id,
                reason,
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
            VenueCommand::Attest { account, id, .. } => {
                let rechecked = self.current.as_ref().map_or(0, |c| c.rechecked);
                self.send(
                    *account,
                    VenueMessage::AttestationAccepted {
                        id: id.clone(),
                        rechecked,
                    },
                );
            }
            VenueCommand::Rules { .. } | VenueCommand::Serials { .. } => {}
        }
    }

    /// Numbers a market-data message in its instrument's sequence (every
    /// update counts, subscribed or not) and sends it to each subscriber.
    fn publish(&mut self, instrument: u32, message: impl Fn(u64) -> VenueMessage) {
        let i = instrument as usize;
        let Some(seq) = self.md_seq.get_mut(i) else {
            return;
        };
        *seq += 1;
        let md_seq = *seq;
        for account in self.subscribers[i].clone() {
            self.send(account, message(md_seq));
        }
    }

    fn on_book(&mut self, snapshot: BookSnapshot) {
        let i = snapshot.instrument as usize;
        let Some(&md_seq) = self.md_seq.get(i) else {
            return;
        };
        let targets = if snapshot.account == 0 {
            self.subscribers[i].clone()
        } else {
            vec![snapshot.account]
        };
        for account in targets {
            self.send(
                account,
                VenueMessage::BookSnapshot {
                    instrument: snapshot.instrument,
                    md_seq,
                    bids: snapshot.bids.clone(),
                    asks: snapshot.asks.clone(),
                },
            );
        }
    }

    fn on_event(&mut self, event: Event) {
        let (account, client_order_id) = self
            .current
            .as_ref()
            .map_or((0, 0), |c| (c.account, c.client_order_id));
        match event {
            Event::Accepted {
                order_id,
                account,
                instrument,
            } => {
                let Some(order) = self.current_command.as_ref().and_then(Command::new_order) else {
                    return;
                };
                let order = *order;
                let current = self.current.as_mut();
                let (pathway, sub_ledger, floor_ticks, attestation, allocation) = match current {
                    Some(c) => (
                        c.pathway,
                        c.sub_ledger.to_string(),
                        c.floor_ticks,
                        c.attestation.clone(),
                        c.allocation.take(),
                    ),
                    None => (Pathway::None, String::new(), 0, None, None),
                };
                self.orders.insert(
                    order_id,
                    OrderInfo {
                        account,
                        client_order_id,
                        instrument,
                        open: order.qty.tonnes(),
                        allocation,
                    },
                );
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
            Event::Rejected { order_id, reason } => {
                let is_new = self
                    .current_command
                    .as_ref()
                    .and_then(Command::new_order)
                    .is_some();
                let (client_order_id, order_id) = if is_new {
                    if let Some(allocation) =
                        self.current.as_mut().and_then(|c| c.allocation.take())
                    {
                        self.router.release_slots(account, &allocation);
                    }
                    (client_order_id, 0)
                } else {
                    (0, order_id)
                };
                if account != 0 {
                    self.send(
                        account,
                        VenueMessage::OrderRejected {
                            client_order_id,
                            order_id,
                            reason: reason.code(),
                        },
                    );
                }
            }
            Event::Fill {
                instrument,
                taker_id,
                maker_id,
                taker_account,
                maker_account,
                taker_side,
                price,
                qty,
                taker_open,
                maker_open,
                supplementary_ticks,
            } => {
                let trade_id = trade_id(self.current_seq, self.fill_index);
                self.fill_index += 1;
                if let Some(last) = self.last_trade.get_mut(instrument as usize) {
                    *last = Some(price.ticks());
                }
                for (order_id, owner, side, open, aggressor) in [
                    (taker_id, taker_account, taker_side, taker_open, true),
                    (
                        maker_id,
                        maker_account,
                        taker_side.opposite(),
                        maker_open,
                        false,
                    ),
                ] {
                    let mut client_order_id = 0;
                    if let Some(info) = self.orders.get_mut(&order_id) {
                        client_order_id = info.client_order_id;
                        info.open = open.tonnes();
                        if let Some(allocation) = &mut info.allocation {
                            // Filled tonnes stay claimed, first line first.
                            allocation.take_first(qty.tonnes());
                        }
                    }
                    if open.tonnes() == 0 {
                        self.orders.remove(&order_id);
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
            Event::Cancelled {
                order_id,
                account,
                instrument,
                open_qty,
                reason,
            } => {
                let info = self.orders.remove(&order_id);
                let client_order_id = info.as_ref().map_or(0, |o| o.client_order_id);
                if let Some(mut allocation) = info.and_then(|o| o.allocation) {
                    let freed = allocation.take_last(open_qty.tonnes());
                    self.router.release_slots(account, &freed);
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
                price,
                qty,
                priority_kept,
            } => {
                let (owner, client_order_id) = self
                    .orders
                    .get(&order_id)
                    .map_or((account, 0), |o| (o.account, o.client_order_id));
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
            Event::Applied => {}
        }
    }
}

impl Gateway {
    /// A replace changed an order's open tonnes: a buyer's claims follow
    /// (down: freed last line first; up: added to the last line, which the
    /// gateway checked against the inventory before sending the replace).
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
        self.router.release_slots(account, &freed);
        self.router.claim_slots(account, &added);
    }
}

/// USD to micro-dollars, truncated.
fn micros(usd: Decimal) -> i64 {
    (usd * Decimal::from(1_000_000))
        .trunc()
        .to_i64()
        .unwrap_or(0)
}

/// Compares secrets without stopping at the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The pre-router's view of a wire order (also how held orders come back
/// from the journal at start).
fn order_request(
    account: u64,
    order: &NewOrder,
    reference: &InstrumentRef,
    kind: OrderKind,
    side: Side,
    qty: i64,
) -> OrderRequest {
    let price_usd = match kind {
        OrderKind::Market if order.price_ticks == 0 => None,
        _ => Some(Decimal::from(order.price_ticks) * reference.tick_usd),
    };
    OrderRequest {
        id: order.client_order_id,
        account,
        side,
        instrument: reference.symbol.clone(),
        kind,
        price_usd,
        qty,
        scope: (!order.scope.is_empty()).then(|| {
            order
                .scope
                .iter()
                .map(|line| RawScopeLine {
                    scope: Some(i64::from(line.scope)),
                    category: (line.category != 0).then_some(i64::from(line.category)),
                    category_given: line.category != 0,
                    qty: i64::try_from(line.qty).ok(),
                    malformed: i64::try_from(line.qty).is_err(),
                })
                .collect()
        }),
    }
}

/// Why a submitted attestation must be refused (COMPLIANCE.md,
/// "Attestations"), or `None` when it is acceptable.
fn attestation_problem(
    profile: &crate::compliance::BuyerProfile,
    id: &str,
    internal_price_micros: i64,
    year: u16,
) -> Option<String> {
    if id.is_empty() {
        return Some("the attestation id is empty".into());
    }
    if id.len() > MAX_ATTESTATION_ID {
        return Some(format!(
            "the attestation id has {} bytes, more than {MAX_ATTESTATION_ID}",
            id.len()
        ));
    }
    if profile.attestations.iter().any(|a| a.id == id) {
        return Some(format!(
            "attestation id '{id}' is already used by this buyer"
        ));
    }
    if internal_price_micros <= 0 {
        return Some("the internal price is not positive".into());
    }
    if internal_price_micros % 10_000 != 0 {
        return Some("the internal price is not a whole number of cents".into());
    }
    if i64::from(year) != profile.reporting_year {
        return Some(format!(
            "reporting year {year} is not the profile's reporting year {}",
            profile.reporting_year
        ));
    }
    None
}
