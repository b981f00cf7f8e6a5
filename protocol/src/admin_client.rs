//! The admin port's client side: one signed request, one reply. Used by
//! `tonnex-admin`, the operator console of `tonnex-web` and settlement's
//! outcome feed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::admin::{self, AdminReply, AdminRequest, AdminVerb};
use crate::frame;

/// Why a request got no reply.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No connection.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The admin address.
        addr: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// The connection failed while sending or waiting.
    #[error("no reply: {0}")]
    Io(#[from] std::io::Error),
    /// The venue closed the connection before replying.
    #[error("the venue closed the connection without a reply")]
    Closed,
    /// The reply does not decode.
    #[error("bad reply: {0}")]
    BadReply(String),
}

/// Requests sent by this process: two in the same nanosecond still get
/// different nonces.
static SENT: AtomicU64 = AtomicU64::new(0);

/// Signs `verb` as `operator` with `key` (timestamp now, a fresh nonce).
#[must_use]
pub fn signed(operator: &str, key: &str, reason: &str, verb: AdminVerb) -> Vec<u8> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let request = AdminRequest {
        operator: operator.to_string(),
        ts_ns: now,
        // Unique per operator inside the venue's window: the clock, the
        // process id, and this process's count of requests.
        nonce: now
            ^ (u64::from(std::process::id()) << 40)
            ^ (SENT.fetch_add(1, Ordering::Relaxed) << 20),
        reason: reason.to_string(),
        verb,
    };
    frame::encode(&admin::sign(request, key.as_bytes()))
}

/// Signs `verb` as `operator` with `key`, sends it to the admin port at
/// `addr` and returns the venue's reply.
pub fn call(
    addr: &str,
    operator: &str,
    key: &str,
    reason: &str,
    verb: AdminVerb,
) -> Result<AdminReply, CallError> {
    exchange(addr, &signed(operator, key, reason, verb))
}

/// One admin connection kept open for many requests, one at a time (a
/// process that calls often, as settlement's outcome feed does).
pub struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Connection {
    /// Connects to the admin port at `addr`.
    pub fn open(addr: &str) -> Result<Connection, CallError> {
        let stream = TcpStream::connect(addr).map_err(|source| CallError::Connect {
            addr: addr.to_string(),
            source,
        })?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream,
            buffer: Vec::new(),
        })
    }

    /// Sends one signed request and waits for its reply.
    pub fn call(
        &mut self,
        operator: &str,
        key: &str,
        reason: &str,
        verb: AdminVerb,
    ) -> Result<AdminReply, CallError> {
        self.stream
            .write_all(&signed(operator, key, reason, verb))?;
        read_reply(&mut self.stream, &mut self.buffer)
    }
}

fn read_reply(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Result<AdminReply, CallError> {
    let mut chunk = [0u8; 65536];
    loop {
        if let Some((payload, used)) =
            frame::split(buffer, 1 << 24).map_err(|e| CallError::BadReply(e.to_string()))?
        {
            let reply = frame::decode::<AdminReply>(payload)
                .map_err(|e| CallError::BadReply(e.to_string()));
            buffer.drain(..used);
            return reply;
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(CallError::Closed);
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}

/// Sends one encoded request and reads its reply.
pub fn exchange(addr: &str, request: &[u8]) -> Result<AdminReply, CallError> {
    let mut stream = TcpStream::connect(addr).map_err(|source| CallError::Connect {
        addr: addr.to_string(),
        source,
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(request)?;
    read_reply(&mut stream, &mut Vec::new())
}
