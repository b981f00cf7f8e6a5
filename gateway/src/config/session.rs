//! The venue file's `[session]` table: limits of the order-entry session layer.

use std::path::Path;

use crate::values::{Ctx, LoadError, TomlRecord};

/// The `[session]` table: limits of the order-entry session layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionSettings {
    /// The venue sends a heartbeat after this long without traffic and closes
    /// a session silent for three times as long.
    pub heartbeat_ms: u32,
    /// A connection that has not logged in after this long is closed.
    pub login_timeout_ms: u32,
    /// Messages a session may send per second; over it requests are rejected
    /// `THROTTLED`, over 1.5 times it the session is disconnected.
    pub throttle_per_s: u32,
    /// `OrderStatus` and `MassCancel` requests a session may send per
    /// second (each reads every resting order of the account); over it
    /// they are rejected `THROTTLED`.
    pub sweeps_per_s: u32,
    /// Largest inbound frame payload.
    pub max_frame_bytes: usize,
    /// Most simultaneous order-entry connections.
    pub max_connections: usize,
    /// Outbound messages kept per account for replay after a reconnect.
    pub replay_capacity: usize,
    /// How long an order held for an attestation waits.
    pub hold_expiry_ms: u64,
    /// Order pool capacity of the engine.
    pub order_capacity: usize,
    /// Microseconds the engine thread spins on an empty ring before it
    /// sleeps (waking a sleeping thread costs tens of microseconds).
    pub engine_spin_us: u64,
    /// Where the engine's state machine runs: on a thread of its own
    /// behind the rings, or inline on the event-loop thread (`engine =
    /// "thread"` or `"inline"`).
    pub engine_inline: bool,
}

impl Default for SessionSettings {
    fn default() -> SessionSettings {
        SessionSettings {
            heartbeat_ms: 1000,
            login_timeout_ms: 2000,
            throttle_per_s: 200_000,
            sweeps_per_s: 5,
            max_frame_bytes: tonnex_protocol::frame::DEFAULT_MAX_FRAME_BYTES,
            max_connections: 1024,
            replay_capacity: 100_000,
            hold_expiry_ms: 300_000,
            order_capacity: 1 << 20,
            engine_spin_us: 50,
            engine_inline: false,
        }
    }
}

pub(super) fn read_session(table: &toml::Table, path: &Path) -> Result<SessionSettings, LoadError> {
    let mut settings = SessionSettings::default();
    let Some(value) = table.get("session") else {
        return Ok(settings);
    };
    let ctx = Ctx {
        file: path,
        record: "session".to_string(),
    };
    let toml::Value::Table(session) = value else {
        return Err(ctx.error("session", "expected a [session] table"));
    };
    let record = TomlRecord {
        table: session,
        ctx: &ctx,
    };
    let positive = |key: &str| -> Result<Option<u64>, LoadError> {
        match session.get(key) {
            None => Ok(None),
            Some(_) => u64::try_from(record.integer(key)?)
                .ok()
                .filter(|v| *v > 0 && *v <= u64::from(u32::MAX))
                .map(Some)
                .ok_or_else(|| ctx.error(key, "must be a positive integer below 2^32")),
        }
    };
    if let Some(v) = positive("heartbeat_ms")? {
        settings.heartbeat_ms = v as u32;
    }
    if let Some(v) = positive("login_timeout_ms")? {
        settings.login_timeout_ms = v as u32;
    }
    if let Some(v) = positive("throttle_per_s")? {
        settings.throttle_per_s = v as u32;
    }
    if let Some(v) = positive("sweeps_per_s")? {
        settings.sweeps_per_s = v as u32;
    }
    if let Some(v) = positive("max_frame_bytes")? {
        settings.max_frame_bytes = v as usize;
    }
    if let Some(v) = positive("max_connections")? {
        settings.max_connections = v as usize;
    }
    if let Some(v) = positive("replay_capacity")? {
        settings.replay_capacity = v as usize;
    }
    if let Some(v) = positive("hold_expiry_ms")? {
        settings.hold_expiry_ms = v;
    }
    if let Some(v) = positive("order_capacity")? {
        settings.order_capacity = v as usize;
    }
    if let Some(mode) = record.opt_string("engine")? {
        settings.engine_inline = match mode.as_str() {
            "thread" => false,
            "inline" => true,
            other => {
                return Err(ctx.error("engine", format!("'{other}' is not thread or inline")));
            }
        };
    }
    if session.contains_key("engine_spin_us") {
        settings.engine_spin_us = u64::try_from(record.integer("engine_spin_us")?)
            .map_err(|_| ctx.error("engine_spin_us", "must not be negative"))?;
    }
    Ok(settings)
}
