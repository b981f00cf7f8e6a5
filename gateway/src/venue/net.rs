//! The event loop and the connections: accept, read and split frames,
//! write (outbound log first), close, and the session timers.
//!
//! Inbound frames are split and decoded per connection; a malformed one
//! ends that session only, nothing of it reaches the engine.

use std::io::{ErrorKind, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use tonnex_engine::{Command, VenueCommand};
use tonnex_protocol::admin::Signed;
use tonnex_protocol::frame::{self, DecodeError};
use tonnex_protocol::md::MdRequest;
use tonnex_protocol::wire::{ClientMessage, Sequenced, VenueMessage};
use tonnex_protocol::RejectReason;

use super::core::Input;
use super::server::Gateway;
use super::session::{self, Due, Liveness, Throttle};

/// The listener's token; the waker's; the admin listener's; the
/// market-data feed's; connections count up from `FIRST`.
const LISTENER: Token = Token(0);
/// The engine thread wakes the loop through this token.
pub const WAKER: Token = Token(1);
const ADMIN_LISTENER: Token = Token(2);
const MD_LISTENER: Token = Token(3);
const FIRST: usize = 4;

/// What a connection is for, by the port it came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Port {
    /// Order entry: a trading session.
    OrderEntry,
    /// The admin port: signed requests.
    Admin,
    /// The market-data feed: a subscriber.
    MarketData,
}

/// Largest admin request (a lot deposit carries its CSV).
const ADMIN_MAX_FRAME_BYTES: usize = 4 << 20;

/// Outbound bytes a connection may have queued before it is dropped as a
/// slow consumer (it can reconnect and replay).
const MAX_QUEUED_BYTES: usize = 32 << 20;

/// One TCP connection.
pub(super) struct Conn {
    stream: TcpStream,
    read: Vec<u8>,
    pub write: Vec<u8>,
    written: usize,
    pub account: Option<u64>,
    pub live: Liveness,
    pub throttle: Throttle,
    pub cancel_on_disconnect: bool,
    pub subscriptions: Vec<u32>,
    /// Close once the queued bytes are out.
    pub closing: bool,
    /// An admin connection: signed requests, not a trading session.
    pub admin: bool,
    /// A market-data feed subscriber (no session, no account).
    pub md: bool,
    /// When a feed subscriber was told to go (it is closed a second later
    /// if it will not read its `Disconnect`).
    pub cut_at: u64,
}

impl Conn {
    /// Bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        self.write.len() - self.written
    }

    /// Forgets every queued byte (a subscriber being cut off).
    pub fn drop_queued(&mut self) {
        self.write.clear();
        self.written = 0;
    }
}

/// The sockets.
pub(super) struct Net {
    poll: Poll,
    listener: Option<TcpListener>,
    admin_listener: Option<TcpListener>,
    md_listener: Option<TcpListener>,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    open: usize,
    /// Connections with bytes to write.
    pub dirty: Vec<Token>,
    /// One read buffer for every connection, allocated once.
    chunk: Vec<u8>,
    started: Instant,
    /// The wall clock (ns since the Unix epoch) at `started`.
    wall_at_start: u64,
    /// `now()` as of this event-loop round: what sends are stamped with
    /// (heartbeats need milliseconds, not a clock read per message).
    round: u64,
}

impl Net {
    /// Serves `listener` (and `admin`, the admin port, and `md`, the
    /// market-data feed) through `poll`.
    pub fn new(
        poll: Poll,
        mut listener: TcpListener,
        mut admin: Option<TcpListener>,
        mut md: Option<TcpListener>,
    ) -> std::io::Result<Net> {
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        if let Some(admin) = &mut admin {
            poll.registry()
                .register(admin, ADMIN_LISTENER, Interest::READABLE)?;
        }
        if let Some(md) = &mut md {
            poll.registry()
                .register(md, MD_LISTENER, Interest::READABLE)?;
        }
        Ok(Net {
            poll,
            listener: Some(listener),
            admin_listener: admin,
            md_listener: md,
            conns: Vec::new(),
            free: Vec::new(),
            open: 0,
            dirty: Vec::new(),
            chunk: vec![0; 1 << 16],
            started: Instant::now(),
            wall_at_start: super::intake::wall_ns(),
            round: 0,
        })
    }

    /// The gateway's monotonic clock, nanoseconds since start.
    pub fn now(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    /// A connection by token.
    pub fn conn(&mut self, token: Token) -> Option<&mut Conn> {
        self.conns.get_mut(token.0.checked_sub(FIRST)?)?.as_mut()
    }

    /// Starts an event-loop round: reads the clock once for its sends.
    pub fn start_round(&mut self) -> u64 {
        self.round = self.now();
        self.round
    }

    /// The time this round started.
    pub fn round(&self) -> u64 {
        self.round
    }

    /// The wall clock (ns since the Unix epoch) as of this round: what a
    /// command taken in during it is stamped with, without a clock read
    /// per order.
    pub fn round_wall_ns(&self) -> u64 {
        self.wall_at_start + self.round
    }

    /// Queues an encoded frame on a connection.
    pub fn queue(&mut self, token: Token, bytes: &[u8]) {
        let now = self.round;
        if let Some(conn) = self.conn(token) {
            conn.write.extend_from_slice(bytes);
            conn.live.sent = now;
            self.dirty.push(token);
        }
    }

    /// Queues any framed message (admin replies).
    pub fn queue_framed<T: bincode::Encode>(&mut self, token: Token, message: &T) {
        let now = self.round;
        if let Some(conn) = self.conn(token) {
            frame::encode_into(message, &mut conn.write);
            conn.live.sent = now;
            self.dirty.push(token);
        }
    }

    /// Queues a message outside any sequence (`seq` 0).
    pub fn queue_unsequenced(&mut self, token: Token, message: VenueMessage) {
        let now = self.round;
        if let Some(conn) = self.conn(token) {
            frame::encode_into(&Sequenced { seq: 0, message }, &mut conn.write);
            conn.live.sent = now;
            self.dirty.push(token);
        }
    }
}

/// Bytes of kernel send buffer a market-data subscriber gets.
const MD_SEND_BUFFER: libc::c_int = 256 * 1024;

/// Fixes the socket's send buffer at [`MD_SEND_BUFFER`] (no autotuning up
/// to megabytes): what a subscriber has not read then queues in the venue,
/// where `max_queued_kb` sees it.
fn fixed_send_buffer(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let size = MD_SEND_BUFFER;
    // SAFETY: setsockopt on an open socket with a pointer to a c_int and its size.
    let done = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            std::ptr::addr_of!(size).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if done != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "SO_SNDBUF not set");
    }
}

impl Gateway {
    /// Runs until `stop` is set and the engine has drained.
    pub fn run(mut self, stop: &AtomicBool) -> std::io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut last_timers = 0u64;
        let mut shutdown_started = false;
        loop {
            // The engine wakes this loop only while it sleeps (`sleeping`):
            // a busy gateway drains the ring without an eventfd per batch.
            self.link.sleeping.store(true, Ordering::SeqCst);
            let timeout = if self.link.from_engine.is_empty() && !self.inline_awaiting() {
                Duration::from_millis(5)
            } else {
                Duration::ZERO
            };
            let polled = self.net.poll.poll(&mut events, Some(timeout));
            self.link.sleeping.store(false, Ordering::SeqCst);
            let now = self.net.start_round();
            match polled {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            for event in &events {
                match event.token() {
                    LISTENER => self.accept(Port::OrderEntry),
                    ADMIN_LISTENER => self.accept(Port::Admin),
                    MD_LISTENER => self.accept(Port::MarketData),
                    WAKER => {}
                    token => {
                        if event.is_readable() || event.is_read_closed() {
                            let to_the_end = event.is_read_closed() || event.is_error();
                            self.on_readable(token, to_the_end);
                        }
                        if event.is_writable() {
                            self.net.dirty.push(token);
                        }
                    }
                }
            }
            self.drain_engine();
            self.flush_dirty();
            if now - last_timers >= 10_000_000 {
                last_timers = now;
                self.timers(now);
                self.flush_dirty();
            }
            if stop.load(Ordering::Acquire) && !shutdown_started {
                tracing::info!("shutting down: no new connections or orders; draining");
                shutdown_started = true;
                self.closing = true;
                for mut listener in [
                    self.net.listener.take(),
                    self.net.admin_listener.take(),
                    self.net.md_listener.take(),
                ]
                .into_iter()
                .flatten()
                {
                    let _ = self.net.poll.registry().deregister(&mut listener);
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
        self.net
            .conns
            .iter()
            .flatten()
            .any(|c| c.written < c.write.len())
    }

    fn flush_all(&mut self) {
        for i in 0..self.net.conns.len() {
            if self.net.conns[i].is_some() {
                self.net.dirty.push(Token(i + FIRST));
            }
        }
        self.flush_dirty();
    }

    fn accept(&mut self, port: Port) {
        loop {
            let listener = match port {
                Port::OrderEntry => &self.net.listener,
                Port::Admin => &self.net.admin_listener,
                Port::MarketData => &self.net.md_listener,
            };
            let Some(listener) = listener else {
                return;
            };
            match listener.accept() {
                Ok((mut stream, peer)) => {
                    if self.net.open >= self.settings.max_connections {
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
                    if port == Port::MarketData {
                        fixed_send_buffer(&stream);
                    }
                    let net = &mut self.net;
                    let index = net.free.pop().unwrap_or_else(|| {
                        net.conns.push(None);
                        net.conns.len() - 1
                    });
                    let token = Token(index + FIRST);
                    if let Err(e) = net.poll.registry().register(
                        &mut stream,
                        token,
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        tracing::warn!(%peer, error = %e, "register failed");
                        net.free.push(index);
                        continue;
                    }
                    let now = net.now();
                    net.conns[index] = Some(Conn {
                        stream,
                        read: Vec::with_capacity(4096),
                        write: Vec::with_capacity(4096),
                        written: 0,
                        account: None,
                        live: Liveness::new(now),
                        throttle: Throttle::default(),
                        cancel_on_disconnect: false,
                        subscriptions: Vec::new(),
                        closing: false,
                        admin: port == Port::Admin,
                        md: port == Port::MarketData,
                        cut_at: 0,
                    });
                    net.open += 1;
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
        let mut chunk = std::mem::take(&mut self.net.chunk);
        self.read_into(token, to_the_end, &mut chunk);
        self.net.chunk = chunk;
    }

    fn read_into(&mut self, token: Token, to_the_end: bool, chunk: &mut [u8]) {
        // An admin request may carry a registry export.
        let max = if self.net.conn(token).is_some_and(|c| c.admin) {
            ADMIN_MAX_FRAME_BYTES
        } else {
            self.settings.max_frame_bytes
        };
        loop {
            let Some(conn) = self.net.conn(token) else {
                return;
            };
            if conn.closing {
                return;
            }
            match conn.stream.read(chunk) {
                Ok(0) => {
                    self.close(token, "peer closed the connection");
                    return;
                }
                Ok(n) => {
                    let now = self.net.round();
                    let conn = self.net.conn(token).expect("conn");
                    conn.read.extend_from_slice(&chunk[..n]);
                    conn.live.received = now;
                    let admin = conn.admin;
                    let md = conn.md;
                    let mut buffer = std::mem::take(&mut conn.read);
                    let mut at = 0;
                    let mut failed = None;
                    loop {
                        match frame::split(&buffer[at..], max) {
                            Ok(Some((payload, used))) => {
                                let handled = if admin {
                                    frame::decode::<Signed>(payload)
                                        .map(|request| self.on_admin(token, request))
                                } else if md {
                                    frame::decode::<MdRequest>(payload)
                                        .map(|request| self.on_md_request(token, request))
                                } else {
                                    frame::decode::<ClientMessage>(payload)
                                        .map(|message| self.on_message(token, message))
                                };
                                if let Err(e) = handled {
                                    failed = Some(e);
                                    break;
                                }
                                at += used;
                                if self.net.conn(token).is_none_or(|c| c.closing) {
                                    return;
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
                    if let Some(conn) = self.net.conn(token) {
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
        if self.net.conn(token).is_some_and(|c| c.md) {
            self.md_disconnect(token, format!("malformed request: {error}"));
            return;
        }
        if self.net.conn(token).is_some_and(|c| c.admin) {
            self.admin_refuse(
                token,
                0,
                RejectReason::InvalidRequest,
                format!("malformed frame: {error}"),
            );
            self.close_after_flush(token);
            return;
        }
        self.end_session(token, format!("malformed frame: {error}"));
    }

    /// Sends `SessionError` and closes once it is out.
    pub(super) fn end_session(&mut self, token: Token, text: String) {
        self.net
            .queue_unsequenced(token, VenueMessage::SessionError { text });
        self.close_after_flush(token);
    }

    pub(super) fn close_after_flush(&mut self, token: Token) {
        if let Some(conn) = self.net.conn(token) {
            conn.closing = true;
        }
        self.net.dirty.push(token);
    }

    /// Drops a connection; its account's cancel-on-disconnect applies.
    fn close(&mut self, token: Token, why: &str) {
        let Some(index) = token.0.checked_sub(FIRST) else {
            return;
        };
        let Some(mut conn) = self.net.conns.get_mut(index).and_then(Option::take) else {
            return;
        };
        let _ = self.net.poll.registry().deregister(&mut conn.stream);
        self.net.free.push(index);
        self.net.open -= 1;
        if conn.md {
            self.md_forget(token);
            return;
        }
        let Some(account) = conn.account else {
            return;
        };
        tracing::info!(account, why, "session closed");
        for instrument in conn.subscriptions {
            if let Some(list) = self.market.subscribers.get_mut(instrument as usize) {
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

    /// Writes every dirty connection's queued bytes, after the outbound log
    /// has what they carry.
    pub(super) fn flush_dirty(&mut self) {
        if self.outbound.has_pending() {
            if let Err(e) = self.outbound.write_pending() {
                // A report the log cannot keep must not reach a client.
                super::fatal(&e);
            }
        }
        let mut dirty = std::mem::take(&mut self.net.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        for &token in &dirty {
            let Some(conn) = self.net.conn(token) else {
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
        if self.net.dirty.is_empty() {
            self.net.dirty = dirty;
        }
    }

    /// Once a second: the gauges `GET /metrics` shows.
    fn publish_gauges(&mut self, now: u64) {
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
    fn timers(&mut self, now: u64) {
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
        let wall = super::intake::wall_ns();
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
