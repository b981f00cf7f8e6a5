//! The registry side: what settlement asks for (payment, transfer,
//! retirement), the confirmations that come back, the adapter trait a real
//! registry implements, webhook signatures, and a simulated registry.
//!
//! Confirmations reach settlement two ways, because most registries offer no
//! webhooks: pushed as signed HTTP callbacks, or pulled by polling
//! [`Registry::status`] for pending trades. Both become the same
//! [`RegistryEvent`] and take the same code path.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What settlement asks of the outside world for a trade.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Move the trade's cash from escrow to the seller (payment rail).
    Payment,
    /// Move the trade's serials from the seller's registry account to the buyer's.
    Transfer,
    /// Retire the buyer's credits on the buyer's behalf.
    Retirement,
}

impl Kind {
    /// Name on the wire and in the ledger.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Payment => "payment",
            Kind::Transfer => "transfer",
            Kind::Retirement => "retirement",
        }
    }

    /// The kind named `text`.
    #[must_use]
    pub fn parse(text: &str) -> Option<Kind> {
        [Kind::Payment, Kind::Transfer, Kind::Retirement]
            .into_iter()
            .find(|k| k.as_str() == text)
    }
}

/// One request to the registry or payment rail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Venue trade id.
    pub trade_id: u64,
    /// What is asked.
    pub kind: Kind,
}

/// A confirmation or refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryEvent {
    /// Unique per event: a replayed callback repeats it.
    pub event_id: String,
    /// Venue trade id.
    pub trade_id: u64,
    /// What it answers.
    pub kind: Kind,
    /// Confirmed (true) or refused.
    pub confirmed: bool,
    /// The registry's reference (transfer or retirement number).
    pub reference: String,
}

impl RegistryEvent {
    /// JSON object.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "event_id": self.event_id,
            "trade_id": self.trade_id,
            "kind": self.kind.as_str(),
            "status": if self.confirmed { "confirmed" } else { "refused" },
            "reference": self.reference,
        })
    }

    /// From a JSON object, or what is wrong with it.
    pub fn from_json(value: &serde_json::Value) -> Result<RegistryEvent, String> {
        let field = |name: &str| {
            value
                .get(name)
                .ok_or_else(|| format!("event without '{name}'"))
        };
        let text = |name: &str| {
            field(name)?
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("'{name}' is not a string"))
        };
        Ok(RegistryEvent {
            event_id: text("event_id")?,
            trade_id: field("trade_id")?
                .as_u64()
                .ok_or("'trade_id' is not an unsigned integer")?,
            kind: Kind::parse(&text("kind")?).ok_or("unknown 'kind'")?,
            confirmed: match text("status")?.as_str() {
                "confirmed" => true,
                "refused" => false,
                other => return Err(format!("unknown status '{other}'")),
            },
            reference: text("reference")?,
        })
    }
}

/// What a registry adapter offers. A real adapter (Verra, Gold Standard,
/// Puro...) implements it over the registry's API.
pub trait Registry: Send {
    /// Sends requests; sending one twice must be harmless (idempotent by
    /// trade and kind).
    fn submit(&mut self, requests: &[Request]) -> Result<(), String>;
    /// The final outcomes known so far for these trades (the poll path).
    fn status(&mut self, trade_ids: &[u64]) -> Result<Vec<RegistryEvent>, String>;
}

type HmacSha256 = Hmac<Sha256>;

/// Header carrying the sender's clock, milliseconds since the Unix epoch.
pub const TIMESTAMP_HEADER: &str = "X-Tonnex-Timestamp";
/// Header carrying hex(HMAC-SHA256(secret, timestamp "." body)).
pub const SIGNATURE_HEADER: &str = "X-Tonnex-Signature";

/// Milliseconds since the Unix epoch.
#[must_use]
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The signature of a callback.
#[must_use]
pub fn sign(secret: &[u8], timestamp_ms: u64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp_ms.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex(&mac.finalize().into_bytes())
}

/// Whether `signature` is right for this timestamp and body (constant time).
#[must_use]
pub fn verify(secret: &[u8], timestamp_ms: u64, body: &[u8], signature: &str) -> bool {
    let Some(bytes) = unhex(signature) else {
        return false;
    };
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp_ms.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&bytes).is_ok()
}

/// Lower-case hex.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// POSTs `body` to `http://addr/path`, signed when `secret` is given;
/// returns the status code.
pub fn post(
    addr: SocketAddr,
    path: &str,
    body: &[u8],
    secret: Option<&[u8]>,
) -> Result<(u16, Vec<u8>), String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("{addr}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(secret) = secret {
        let timestamp = now_ms();
        head.push_str(&format!(
            "{TIMESTAMP_HEADER}: {timestamp}\r\n{SIGNATURE_HEADER}: {}\r\n",
            sign(secret, timestamp, body)
        ));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body))
        .map_err(|e| format!("{addr}: {e}"))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| format!("{addr}: {e}"))?;
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{addr}: no HTTP status in the answer"))?;
    let body_at = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(response.len(), |p| p + 4);
    Ok((status, response[body_at..].to_vec()))
}

/// How the simulated registry behaves.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Confirmation delay.
    pub delay: Duration,
    /// Percentage of transfers refused (deterministic per trade id).
    pub fail_pct: u64,
    /// Where callbacks go (`None`: poll only).
    pub callback: Option<SocketAddr>,
    /// Shared webhook secret.
    pub secret: Vec<u8>,
}

/// A simulated registry and payment rail: confirms asynchronously after a
/// delay, refuses a configurable share of transfers, and delivers outcomes
/// as signed webhook callbacks (batched) while keeping them for polling.
pub struct Sim {
    config: SimConfig,
    queue: Mutex<VecDeque<(u64, Request)>>,
    seen: Mutex<HashSet<(u64, Kind)>>,
    outcomes: Mutex<HashMap<u64, Vec<RegistryEvent>>>,
    next_event: Mutex<u64>,
    stop: AtomicBool,
}

impl Sim {
    /// A simulator; call [`Sim::spawn`] to start delivering.
    #[must_use]
    pub fn new(config: SimConfig) -> Arc<Sim> {
        Arc::new(Sim {
            config,
            queue: Mutex::new(VecDeque::new()),
            seen: Mutex::new(HashSet::new()),
            outcomes: Mutex::new(HashMap::new()),
            next_event: Mutex::new(1),
            stop: AtomicBool::new(false),
        })
    }

    /// Starts the confirming thread.
    pub fn spawn(self: &Arc<Sim>) -> std::thread::JoinHandle<()> {
        let sim = Arc::clone(self);
        std::thread::Builder::new()
            .name("registry-sim".into())
            .spawn(move || sim.deliver_loop())
            .expect("spawn the registry simulator")
    }

    /// Stops the confirming thread.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// Accepts requests (a repeated one is ignored).
    pub fn accept(&self, requests: &[Request]) {
        let due = now_ms() + self.config.delay.as_millis() as u64;
        let mut seen = self.seen.lock().expect("sim lock");
        let mut queue = self.queue.lock().expect("sim lock");
        for request in requests {
            if seen.insert((request.trade_id, request.kind)) {
                queue.push_back((due, request.clone()));
            }
        }
    }

    /// Outcomes known for these trades.
    #[must_use]
    pub fn outcomes(&self, trade_ids: &[u64]) -> Vec<RegistryEvent> {
        let outcomes = self.outcomes.lock().expect("sim lock");
        trade_ids
            .iter()
            .filter_map(|id| outcomes.get(id))
            .flatten()
            .cloned()
            .collect()
    }

    fn decide(&self, request: &Request) -> RegistryEvent {
        let mut next = self.next_event.lock().expect("sim lock");
        let event_id = format!("sim-{}-{}", now_ms(), *next);
        *next += 1;
        // Deterministic per trade: the same trade always fails or succeeds.
        let roll = (request.trade_id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % 100;
        let refused = request.kind == Kind::Transfer && roll % 100 < self.config.fail_pct;
        RegistryEvent {
            event_id,
            trade_id: request.trade_id,
            kind: request.kind,
            confirmed: !refused,
            reference: format!(
                "SIM-{}-{}",
                request.kind.as_str().to_uppercase(),
                request.trade_id
            ),
        }
    }

    fn deliver_loop(&self) {
        let mut undelivered: Vec<RegistryEvent> = Vec::new();
        while !self.stop.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(5));
            let now = now_ms();
            let due: Vec<Request> = {
                let mut queue = self.queue.lock().expect("sim lock");
                let mut due = Vec::new();
                while queue.front().is_some_and(|(at, _)| *at <= now) {
                    due.push(queue.pop_front().expect("checked").1);
                }
                due
            };
            if !due.is_empty() {
                let mut outcomes = self.outcomes.lock().expect("sim lock");
                for request in &due {
                    let event = self.decide(request);
                    outcomes
                        .entry(request.trade_id)
                        .or_default()
                        .push(event.clone());
                    undelivered.push(event);
                }
            }
            let Some(callback) = self.config.callback else {
                undelivered.clear();
                continue;
            };
            // Batches of up to 2,000 events per callback; a failed delivery
            // is retried next round (settlement's poll path covers the rest).
            while !undelivered.is_empty() {
                let take = undelivered.len().min(2000);
                let body = serde_json::Value::Array(
                    undelivered[..take]
                        .iter()
                        .map(RegistryEvent::to_json)
                        .collect(),
                )
                .to_string();
                match post(
                    callback,
                    "/registry/events",
                    body.as_bytes(),
                    Some(&self.config.secret),
                ) {
                    Ok((status, _)) if status < 500 => {
                        undelivered.drain(..take);
                    }
                    _ => break,
                }
            }
            if undelivered.len() > 1_000_000 {
                undelivered.clear();
            }
        }
    }
}

/// The simulator inside the settlement process.
pub struct Embedded(pub Arc<Sim>);

impl Registry for Embedded {
    fn submit(&mut self, requests: &[Request]) -> Result<(), String> {
        self.0.accept(requests);
        Ok(())
    }

    fn status(&mut self, trade_ids: &[u64]) -> Result<Vec<RegistryEvent>, String> {
        Ok(self.0.outcomes(trade_ids))
    }
}

/// A registry reached over HTTP (`tonnex-settlement registry-sim`, or an
/// adapter service of a real registry with the same two endpoints).
pub struct Remote {
    /// Its address.
    pub addr: SocketAddr,
}

fn requests_json(requests: &[Request]) -> String {
    serde_json::Value::Array(
        requests
            .iter()
            .map(|r| serde_json::json!({"trade_id": r.trade_id, "kind": r.kind.as_str()}))
            .collect(),
    )
    .to_string()
}

/// Parses a `[{"trade_id", "kind"}]` body.
pub fn parse_requests(body: &[u8]) -> Result<Vec<Request>, String> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    value
        .as_array()
        .ok_or("expected an array")?
        .iter()
        .map(|r| {
            Ok(Request {
                trade_id: r
                    .get("trade_id")
                    .and_then(serde_json::Value::as_u64)
                    .ok_or("request without trade_id")?,
                kind: r
                    .get("kind")
                    .and_then(serde_json::Value::as_str)
                    .and_then(Kind::parse)
                    .ok_or("request without a known kind")?,
            })
        })
        .collect()
}

impl Registry for Remote {
    fn submit(&mut self, requests: &[Request]) -> Result<(), String> {
        for chunk in requests.chunks(5000) {
            let (status, _) = post(self.addr, "/submit", requests_json(chunk).as_bytes(), None)?;
            if status != 200 {
                return Err(format!("registry {}: /submit answered {status}", self.addr));
            }
        }
        Ok(())
    }

    fn status(&mut self, trade_ids: &[u64]) -> Result<Vec<RegistryEvent>, String> {
        let body =
            serde_json::Value::Array(trade_ids.iter().map(|&t| t.into()).collect()).to_string();
        let (status, answer) = post(self.addr, "/status", body.as_bytes(), None)?;
        if status != 200 {
            return Err(format!("registry {}: /status answered {status}", self.addr));
        }
        let value: serde_json::Value =
            serde_json::from_slice(&answer).map_err(|e| e.to_string())?;
        value
            .as_array()
            .ok_or("status: expected an array")?
            .iter()
            .map(RegistryEvent::from_json)
            .collect()
    }
}

/// `tonnex-settlement registry-sim`: the simulator as its own process,
/// answering `/submit` and `/status` and calling back `callback`.
pub fn serve_sim(listen: &str, config: SimConfig, stop: &AtomicBool) -> Result<(), String> {
    let server = tiny_http::Server::http(listen).map_err(|e| format!("{listen}: {e}"))?;
    println!(
        "ready registry={}",
        server
            .server_addr()
            .to_ip()
            .map_or_else(String::new, |a| a.to_string())
    );
    let sim = Sim::new(config);
    let worker = sim.spawn();
    while !stop.load(Ordering::Acquire) {
        let Ok(Some(mut request)) = server.recv_timeout(Duration::from_millis(100)) else {
            continue;
        };
        let mut body = Vec::new();
        let _ = request.as_reader().read_to_end(&mut body);
        let answer = match request.url() {
            "/submit" => parse_requests(&body).map(|requests| {
                sim.accept(&requests);
                "{}".to_string()
            }),
            "/status" => serde_json::from_slice::<Vec<u64>>(&body)
                .map_err(|e| e.to_string())
                .map(|ids| {
                    serde_json::Value::Array(
                        sim.outcomes(&ids)
                            .iter()
                            .map(RegistryEvent::to_json)
                            .collect(),
                    )
                    .to_string()
                }),
            other => Err(format!("no such endpoint {other}")),
        };
        let response = match answer {
            Ok(text) => tiny_http::Response::from_string(text),
            Err(e) => tiny_http::Response::from_string(e).with_status_code(400),
        };
        let _ = request.respond(response);
    }
    sim.stop();
    let _ = worker.join();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_with_the_same_secret_timestamp_and_body() {
        let signature = sign(b"secret", 1_700_000_000_000, b"[1]");
        assert!(verify(b"secret", 1_700_000_000_000, b"[1]", &signature));
        assert!(!verify(b"other", 1_700_000_000_000, b"[1]", &signature));
        assert!(!verify(b"secret", 1_700_000_000_001, b"[1]", &signature));
        assert!(!verify(b"secret", 1_700_000_000_000, b"[2]", &signature));
        assert!(!verify(b"secret", 1_700_000_000_000, b"[1]", "zz"));
    }

    #[test]
    fn events_round_trip_through_json() {
        let event = RegistryEvent {
            event_id: "e-1".into(),
            trade_id: 42,
            kind: Kind::Transfer,
            confirmed: false,
            reference: "R".into(),
        };
        assert_eq!(RegistryEvent::from_json(&event.to_json()), Ok(event));
        assert!(RegistryEvent::from_json(&serde_json::json!({"event_id": "x"})).is_err());
    }

    #[test]
    fn the_simulator_confirms_after_its_delay_and_fails_a_share_of_transfers() {
        let sim = Sim::new(SimConfig {
            delay: Duration::from_millis(10),
            fail_pct: 50,
            callback: None,
            secret: b"s".to_vec(),
        });
        let worker = sim.spawn();
        let requests: Vec<Request> = (1..=200)
            .flat_map(|t| {
                [
                    Request {
                        trade_id: t,
                        kind: Kind::Payment,
                    },
                    Request {
                        trade_id: t,
                        kind: Kind::Transfer,
                    },
                ]
            })
            .collect();
        sim.accept(&requests);
        sim.accept(&requests); // repeated: ignored
        assert!(sim.outcomes(&[1]).is_empty());
        std::thread::sleep(Duration::from_millis(80));
        let ids: Vec<u64> = (1..=200).collect();
        let outcomes = sim.outcomes(&ids);
        sim.stop();
        worker.join().unwrap();
        assert_eq!(outcomes.len(), 400);
        let refused = outcomes.iter().filter(|e| !e.confirmed).count();
        assert!(outcomes
            .iter()
            .filter(|e| e.kind == Kind::Payment)
            .all(|e| e.confirmed));
        assert!(
            (60..=140).contains(&refused),
            "{refused} of 200 transfers refused"
        );
    }
}
