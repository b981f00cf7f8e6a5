//! The event loop and the connections: accept, read and split frames,
//! write (outbound log first) and close; the sockets in `sockets`, the
//! timers in `timers`.
//!
//! Inbound frames are split and decoded per connection; a malformed one
//! ends that session only, nothing of it reaches the engine.

use std::io::{ErrorKind, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Token};
use tonnex_engine::Command;
use tonnex_protocol::admin::Signed;
use tonnex_protocol::frame::{self, DecodeError};
use tonnex_protocol::md::MdRequest;
use tonnex_protocol::wire::{ClientMessage, Sequenced, VenueMessage};
use tonnex_protocol::RejectReason;

use super::cluster::Node;
use super::core::Input;
use super::inline::Engine;
use super::server::{Ended, Gateway};

mod hold;
mod sockets;
mod timers;

use self::sockets::{
    fixed_send_buffer, ADMIN_LISTENER, ADMIN_MAX_FRAME_BYTES, FIRST, LISTENER, MAX_QUEUED_BYTES,
    MD_LISTENER,
};
pub(in crate::venue) use self::sockets::{Conn, Net, Port, WAKER};

impl Gateway {
    /// Runs until `stop` is set and the engine has drained (or, on a
    /// cluster, until this node no longer leads).
    pub fn run(mut self, stop: &AtomicBool) -> std::io::Result<Ended> {
        let mut events = Events::with_capacity(1024);
        let mut last_timers = 0u64;
        let mut shutdown_started = false;
        loop {
            // The engine wakes this loop only while it sleeps (`sleeping`):
            // a busy gateway drains the ring without an eventfd per batch.
            self.link.sleeping.store(true, Ordering::SeqCst);
            let timeout = if self.link.from_engine.is_empty() && !self.inline_awaiting() {
                self.link
                    .inline
                    .as_ref()
                    .map_or(Duration::from_millis(5), |i| {
                        i.engine.patience(Duration::from_millis(5))
                    })
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
                    token if Node::owns(token) => {
                        if let Some(Engine::Cluster(node)) =
                            self.link.inline.as_mut().map(|i| &mut i.engine)
                        {
                            node.on_event(token);
                        }
                    }
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
                return Ok(if self.demoted {
                    Ended::Demoted
                } else {
                    Ended::Stopped
                });
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
                    net.conns[index] = Some(Conn::new(
                        stream,
                        port == Port::Admin,
                        port == Port::MarketData,
                        now,
                    ));
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
    /// has what they carry (on a cluster's leader: once the log has
    /// committed what they reflect).
    pub(super) fn flush_dirty(&mut self) {
        self.seal_round();
        if self.outbound.has_pending() {
            if let Err(e) = self.outbound.write_pending() {
                // A report the log cannot keep must not reach a client.
                super::fatal(&e);
            }
        }
        let mut dirty = std::mem::take(&mut self.net.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        let hold = self.net.hold;
        for &token in &dirty {
            let Some(conn) = self.net.conn(token) else {
                continue;
            };
            let mut failed = None;
            let sendable = conn.sendable(hold);
            while conn.written < sendable {
                match conn.stream.write(&conn.write[conn.written..sendable]) {
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
                conn.forget_front(conn.written);
                conn.write.clear();
                conn.written = 0;
            } else if conn.write.len() - conn.written > MAX_QUEUED_BYTES {
                failed = Some("slow consumer: too much output queued".to_string());
            } else if conn.written > 1 << 20 {
                conn.write.drain(..conn.written);
                conn.forget_front(conn.written);
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
}
