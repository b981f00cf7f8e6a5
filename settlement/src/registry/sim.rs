//! The simulated registry: confirms after a delay, refuses a share of
//! transfers, calls back with signed, batched events; embedded in
//! `tonnex-settlement run` by default or its own process (`registry-sim`),
//! where it reads requests as the adapter contract defines them.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{
    now_ms, parse_requests, post, IncomingTransfer, Kind, Registry, RegistryError, RegistryEvent,
    Request,
};

/// How the simulated registry behaves.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Confirmation delay.
    pub delay: Duration,
    /// Percentage of transfers refused (deterministic per trade id).
    pub fail_pct: u64,
    /// Percentage of retirements refused (deterministic per trade id).
    pub retire_fail_pct: u64,
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
        // Deterministic per trade: the same trade always fails or succeeds,
        // for one of the reasons registries give.
        let roll = (request.trade_id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % 100;
        let refused = match request.kind {
            Kind::Transfer | Kind::Withdrawal => roll < self.config.fail_pct,
            Kind::Retirement => roll < self.config.retire_fail_pct,
            Kind::Payment => false,
        };
        let reference = if refused {
            let reasons: &[&str] = match request.kind {
                Kind::Retirement => &["serials_already_retired", "account_closed"],
                _ => &[
                    "insufficient_units",
                    "account_closed",
                    "serials_already_retired",
                ],
            };
            reasons[(request.trade_id % reasons.len() as u64) as usize].to_string()
        } else {
            format!(
                "SIM-{}-{}",
                request.kind.as_str().to_uppercase(),
                request.trade_id
            )
        };
        RegistryEvent {
            event_id,
            trade_id: request.trade_id,
            kind: request.kind,
            confirmed: !refused,
            reference,
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
    fn submit(&mut self, requests: &[Request]) -> Result<(), RegistryError> {
        self.0.accept(requests);
        Ok(())
    }

    fn status(&mut self, trade_ids: &[u64]) -> Result<Vec<RegistryEvent>, RegistryError> {
        Ok(self.0.outcomes(trade_ids))
    }
}

/// `tonnex-settlement registry-sim`: the simulator as its own process,
/// answering `/submit` and `/status` and calling back `callback`.
pub fn serve_sim(listen: &str, config: SimConfig, stop: &AtomicBool) -> Result<(), RegistryError> {
    let server = tiny_http::Server::http(listen).map_err(|e| RegistryError::Unreachable {
        addr: listen.to_string(),
        why: format!("cannot listen: {e}"),
    })?;
    println!(
        "ready registry={}",
        server
            .server_addr()
            .to_ip()
            .map_or_else(String::new, |a| a.to_string())
    );
    let sim = Sim::new(config);
    let worker = sim.spawn();
    // Transfers sellers made into the venue's custody account, in order.
    let mut custody: Vec<IncomingTransfer> = Vec::new();
    while !stop.load(Ordering::Acquire) {
        let Ok(Some(mut request)) = server.recv_timeout(Duration::from_millis(100)) else {
            continue;
        };
        let mut body = Vec::new();
        let _ = request.as_reader().read_to_end(&mut body);
        let answer = match request.url() {
            "/submit" => parse_requests(&body)
                .map_err(|e| e.to_string())
                .map(|requests| {
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
            // What a seller does at the registry: move a block into the
            // venue's custody account (the simulator's only write).
            "/custody/transfer-in" => serde_json::from_slice::<serde_json::Value>(&body)
                .map_err(|e| e.to_string())
                .and_then(|mut v| {
                    v["seq"] = (custody.len() as u64 + 1).into();
                    let transfer = IncomingTransfer::from_json(&v).map_err(|e| e.to_string())?;
                    let seq = transfer.seq;
                    custody.push(transfer);
                    Ok(serde_json::json!({ "seq": seq }).to_string())
                }),
            "/custody/incoming" => serde_json::from_slice::<serde_json::Value>(&body)
                .map_err(|e| e.to_string())
                .and_then(|v| {
                    v["after"]
                        .as_u64()
                        .ok_or_else(|| "'after' is not an unsigned integer".to_string())
                })
                .map(|after| {
                    serde_json::Value::Array(
                        custody
                            .iter()
                            .filter(|t| t.seq > after)
                            .map(IncomingTransfer::to_json)
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
    use crate::registry::Kind;

    #[test]
    fn the_simulator_confirms_after_its_delay_and_fails_a_share_of_transfers() {
        let sim = Sim::new(SimConfig {
            delay: Duration::from_millis(10),
            fail_pct: 50,
            retire_fail_pct: 0,
            callback: None,
            secret: b"s".to_vec(),
        });
        let worker = sim.spawn();
        let requests: Vec<Request> = (1..=200)
            .flat_map(|t| {
                let payment = Request {
                    trade_id: t,
                    kind: Kind::Payment,
                    buyer: 1,
                    seller: 2,
                    quantity: 1,
                    amount_micros: 1,
                    serials: Vec::new(),
                    retirement: None,
                };
                let transfer = Request {
                    kind: Kind::Transfer,
                    ..payment.clone()
                };
                [payment, transfer]
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
