//! The admin port's client side: one signed request, one reply. Used by
//! `tonnex-admin` and by the operator console of `tonnex-web`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tonnex_protocol::admin::{self, AdminReply, AdminRequest, AdminVerb};
use tonnex_protocol::frame;

/// Requests sent by this process: two in the same nanosecond still get
/// different nonces.
static SENT: AtomicU64 = AtomicU64::new(0);

/// Signs `verb` as `operator` with `key` (timestamp now, a fresh nonce),
/// sends it to the admin port at `addr` and returns the venue's reply.
pub fn call(
    addr: &str,
    operator: &str,
    key: &str,
    reason: &str,
    verb: AdminVerb,
) -> Result<AdminReply, String> {
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
    exchange(addr, &frame::encode(&admin::sign(request, key.as_bytes())))
}

/// Sends one encoded request and reads its reply.
pub fn exchange(addr: &str, request: &[u8]) -> Result<AdminReply, String> {
    let mut stream =
        TcpStream::connect(addr).map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    stream.write_all(request).map_err(|e| e.to_string())?;
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        if let Some((payload, _)) =
            frame::split(&buffer, 1 << 24).map_err(|e| format!("bad reply: {e}"))?
        {
            return frame::decode::<AdminReply>(payload).map_err(|e| format!("bad reply: {e}"));
        }
        let n = stream
            .read(&mut chunk)
            .map_err(|e| format!("no reply: {e}"))?;
        if n == 0 {
            return Err("the venue closed the connection without a reply".into());
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}
