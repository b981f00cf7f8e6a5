//! The sockets: listeners and their tokens, connections and their
//! buffers, and queuing bytes to a connection.

use std::time::Instant;

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Poll, Token};
use tonnex_protocol::frame;
use tonnex_protocol::wire::{Sequenced, VenueMessage};

use super::super::session::{Liveness, Throttle};

/// The listener's token; the waker's; the admin listener's; the
/// market-data feed's; connections count up from `FIRST`.
pub(super) const LISTENER: Token = Token(0);
/// The engine thread wakes the loop through this token.
pub const WAKER: Token = Token(1);
pub(super) const ADMIN_LISTENER: Token = Token(2);
pub(super) const MD_LISTENER: Token = Token(3);
pub(in crate::venue) const FIRST: usize = 4;

/// What a connection is for, by the port it came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::venue) enum Port {
    /// Order entry: a trading session.
    OrderEntry,
    /// The admin port: signed requests.
    Admin,
    /// The market-data feed: a subscriber.
    MarketData,
}

/// Largest admin request (a lot deposit carries its CSV).
pub(super) const ADMIN_MAX_FRAME_BYTES: usize = 4 << 20;

/// Outbound bytes a connection may have queued before it is dropped as a
/// slow consumer (it can reconnect and replay).
pub(super) const MAX_QUEUED_BYTES: usize = 32 << 20;

/// One TCP connection.
pub(in crate::venue) struct Conn {
    pub(in crate::venue) stream: TcpStream,
    pub(in crate::venue) read: Vec<u8>,
    pub write: Vec<u8>,
    pub(in crate::venue) written: usize,
    pub account: Option<u64>,
    pub live: Liveness,
    pub throttle: Throttle,
    /// Its rate of `OrderStatus` and `MassCancel` requests (each reads all
    /// of the account's resting orders).
    pub sweeps: Throttle,
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
    /// What waits for a cluster's commit ([`super::hold`]).
    pub(in crate::venue) held: super::hold::Held,
}

impl Conn {
    /// A new connection on `stream` (`admin` or `md` by the port it came
    /// in on), seen at `now`.
    pub(in crate::venue) fn new(stream: TcpStream, admin: bool, md: bool, now: u64) -> Conn {
        Conn {
            stream,
            read: Vec::with_capacity(4096),
            write: Vec::with_capacity(4096),
            written: 0,
            account: None,
            live: Liveness::new(now),
            throttle: Throttle::default(),
            sweeps: Throttle::default(),
            cancel_on_disconnect: false,
            subscriptions: Vec::new(),
            closing: false,
            admin,
            md,
            cut_at: 0,
            held: super::hold::Held::default(),
        }
    }

    /// Bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        self.write.len() - self.written
    }

    /// Forgets every queued byte (a subscriber being cut off).
    pub fn drop_queued(&mut self) {
        self.held = super::hold::Held::default();
        self.write.clear();
        self.written = 0;
    }
}

/// The sockets.
pub(in crate::venue) struct Net {
    pub(in crate::venue) poll: Poll,
    pub(in crate::venue) listener: Option<TcpListener>,
    pub(in crate::venue) admin_listener: Option<TcpListener>,
    pub(in crate::venue) md_listener: Option<TcpListener>,
    pub(in crate::venue) conns: Vec<Option<Conn>>,
    pub(in crate::venue) free: Vec<usize>,
    pub(in crate::venue) open: usize,
    /// Connections with bytes to write.
    pub dirty: Vec<Token>,
    /// One read buffer for every connection, allocated once.
    pub(in crate::venue) chunk: Vec<u8>,
    pub(in crate::venue) started: Instant,
    /// The wall clock (ns since the Unix epoch) at `started`.
    pub(in crate::venue) wall_at_start: u64,
    /// `now()` as of this event-loop round: what sends are stamped with
    /// (heartbeats need milliseconds, not a clock read per message).
    pub(in crate::venue) round: u64,
    /// A cluster's leader: bytes wait for the log's commit ([`super::hold`]).
    pub(in crate::venue) hold: bool,
    /// The last journal sequence the log has committed (with `hold`).
    pub(in crate::venue) committed: u64,
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
            wall_at_start: crate::venue::intake::wall_ns(),
            round: 0,
            hold: false,
            committed: 0,
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
pub(super) const MD_SEND_BUFFER: libc::c_int = 256 * 1024;

/// Fixes the socket's send buffer at [`MD_SEND_BUFFER`] (no autotuning up
/// to megabytes): what a subscriber has not read then queues in the venue,
/// where `max_queued_kb` sees it.
pub(super) fn fixed_send_buffer(stream: &TcpStream) {
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
