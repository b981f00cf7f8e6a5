//! Restart anywhere: one scripted session (market makers, a seller, buyers
//! on every pathway; partial fills, an IOC remainder, replaces up and down,
//! holds, an expiry, wire attestations, cancels, a mass cancel, an unfilled
//! FOK) run straight, and again with the venue killed (`kill -9`) and
//! restarted after every k-th step, for several k. Every run must end with
//! the same reports per account (sequence numbers included: replay fills
//! what a kill cut off), the same fill stream (what certificates are made
//! of), and the same state digest (books, balances, claims, client ids,
//! held orders, attestations).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use tonnex_engine::journal::{recover, RecoverOptions};
use tonnex_engine::EngineConfig;
use tonnex_protocol::frame;
use tonnex_protocol::wire::*;
use tonnex_protocol::RejectReason;

use crate::harness::{limit_order as order, scratch, Client, Venue};

const NBR: u32 = 0;
const DAC: u32 = 1;
const GEN: u32 = 2;
const ACCOUNTS: [u64; 6] = [3001, 3002, 2001, 1001, 1002, 1003];

/// Quick heartbeats, and holds that expire within the script.
const SESSION: &str =
    "heartbeat_ms = 1000\nlogin_timeout_ms = 2000\nthrottle_per_s = 100000\nhold_expiry_ms = 1500";

/// What ends a step: a message to the acting account.
type Until = fn(&VenueMessage, u64) -> bool;

struct Step {
    account: u64,
    /// `None`: only wait (for an expiry).
    send: Option<fn(u64) -> ClientMessage>,
    until: Until,
}

fn line(scope: u8, category: u8, qty: u64) -> Vec<ScopeLine> {
    vec![ScopeLine {
        scope,
        category,
        qty,
    }]
}

/// The order's first answer: accepted, refused or held.
fn answered(message: &VenueMessage, id: u64) -> bool {
    match message {
        VenueMessage::OrderAccepted {
            client_order_id, ..
        }
        | VenueMessage::OrderRejected {
            client_order_id, ..
        }
        | VenueMessage::OrderHeld {
            client_order_id, ..
        } => *client_order_id == id,
        _ => false,
    }
}

fn replaced(message: &VenueMessage, _: u64) -> bool {
    matches!(message, VenueMessage::Replaced { .. })
}

fn cancelled(message: &VenueMessage, _: u64) -> bool {
    matches!(message, VenueMessage::Cancelled { .. })
}

fn attestation_answered(message: &VenueMessage, _: u64) -> bool {
    matches!(
        message,
        VenueMessage::AttestationAccepted { .. } | VenueMessage::AttestationRefused { .. }
    )
}

fn expired(message: &VenueMessage, _: u64) -> bool {
    matches!(
        message,
        VenueMessage::OrderRejected { reason, .. }
            if *reason == RejectReason::AttestationRequired.code()
    )
}

/// The script. Client order ids are per account and count up from 1 in
/// the order each account sends; `send` gets the id to use.
fn script() -> Vec<Step> {
    let step = |account, send, until| Step {
        account,
        send: Some(send),
        until,
    };
    vec![
        // Liquidity on NBR and a resting bid.
        step(
            3001,
            |id| order(id, NBR, SIDE_SELL, TIF_GTC, 2500, 100, vec![]),
            answered,
        ),
        step(
            2001,
            |id| order(id, NBR, SIDE_SELL, TIF_GTC, 2600, 200, vec![]),
            answered,
        ),
        step(
            3002,
            |id| order(id, NBR, SIDE_BUY, TIF_GTC, 2400, 50, vec![]),
            answered,
        ),
        // Recognised buyer: IOC for 150, fills 100, the remainder is freed.
        step(
            1001,
            |id| order(id, NBR, SIDE_BUY, TIF_IOC, 2550, 150, line(3, 1, 150)),
            answered,
        ),
        // Engaged buyer rests on GEN, replaces up then down, partly filled.
        step(
            1003,
            |id| order(id, GEN, SIDE_BUY, TIF_GTC, 100, 300, line(1, 0, 300)),
            answered,
        ),
        step(1003, |_| replace_own(1003, 100, 500), replaced),
        step(1003, |_| replace_own(1003, 100, 200), replaced),
        step(
            3001,
            |id| order(id, GEN, SIDE_SELL, TIF_GTC, 100, 50, vec![]),
            answered,
        ),
        // A hold that expires ...
        step(
            1001,
            |id| order(id, NBR, SIDE_BUY, TIF_GTC, 1500, 10, line(3, 4, 10)),
            answered,
        ),
        Step {
            account: 1001,
            send: None,
            until: expired,
        },
        // ... and one an attestation releases; a bad attestation is refused.
        step(
            1001,
            |id| order(id, NBR, SIDE_BUY, TIF_GTC, 1600, 40, line(3, 1, 40)),
            answered,
        ),
        // (Waiting for the released order's answer: a refusal from the
        // gateway would overtake it, which makes the straight run's order
        // of reports depend on timing.)
        step(
            1001,
            |_| attestation("ACME-ICP-1"),
            |m, _| {
                matches!(
                    m,
                    VenueMessage::OrderAccepted {
                        attestation: Some(_),
                        ..
                    }
                )
            },
        ),
        step(1001, |_| attestation(""), attestation_answered),
        // Leadership buyer on DAC, partly filled, then cancelled.
        step(
            1002,
            |id| order(id, DAC, SIDE_BUY, TIF_GTC, 9000, 100, line(1, 0, 100)),
            answered,
        ),
        step(
            3002,
            |id| order(id, DAC, SIDE_SELL, TIF_GTC, 8900, 60, vec![]),
            answered,
        ),
        step(1002, |_| cancel_own(1002), cancelled),
        // A mass cancel and a cancel clear NBR; an FOK then finds nothing.
        step(
            3002,
            |_| ClientMessage::MassCancel { instrument: None },
            cancelled,
        ),
        step(2001, |_| cancel_own(2001), cancelled),
        step(
            1003,
            |id| order(id, NBR, SIDE_BUY, TIF_FOK, 2700, 400, line(1, 0, 400)),
            answered,
        ),
        // A replace up past the inventory is refused (800 t of scope 1:
        // 50 filled + 200 open on GEN).
        step(
            1003,
            |_| replace_own(1003, 100, 800),
            |m, _| matches!(m, VenueMessage::OrderRejected { .. }),
        ),
        step(
            1003,
            |id| order(id, GEN, SIDE_BUY, TIF_GTC, 120, 550, line(1, 0, 550)),
            answered,
        ),
    ]
}

fn attestation(id: &str) -> ClientMessage {
    ClientMessage::SubmitAttestation {
        id: id.into(),
        internal_price_micros: 25_000_000,
        reporting_year: 2026,
    }
}

/// A cancel or replace needs the venue order id, which the script learns
/// from the account's reports: placeholders, filled in by `resolve`.
const OWN_ORDER: u64 = u64::MAX;

fn cancel_own(_: u64) -> ClientMessage {
    ClientMessage::Cancel {
        order_id: OWN_ORDER,
    }
}

fn replace_own(_: u64, price_ticks: i64, qty: u64) -> ClientMessage {
    ClientMessage::Replace {
        order_id: OWN_ORDER,
        price_ticks,
        qty,
    }
}

/// One account's view: its client, its last resting order and every
/// sequenced message it received, by sequence number.
struct Account {
    id: u64,
    client: Client,
    reports: BTreeMap<u64, VenueMessage>,
    last_order: u64,
}

impl Account {
    fn record(&mut self, seq: u64, message: &VenueMessage) {
        if seq == 0 {
            return;
        }
        if let VenueMessage::OrderAccepted { order_id, .. } = message {
            self.last_order = *order_id;
        }
        let previous = self.reports.insert(seq, message.clone());
        assert!(
            previous.is_none_or(|p| p == *message),
            "account {}: message {seq} differs between its first sending and its replay",
            self.id
        );
    }

    /// Reads until `until` matches (collecting everything); panics after 10 s.
    fn wait(&mut self, until: Until, id: u64) {
        loop {
            let (seq, message) = self
                .client
                .recv_sequenced(Duration::from_secs(10))
                .unwrap_or_else(|| panic!("account {}: no answer", self.id));
            self.record(seq, &message);
            if until(&message, id) {
                return;
            }
        }
    }

    /// Collects whatever arrives within `quiet`.
    fn drain(&mut self, quiet: Duration) {
        while let Some((seq, message)) = self.client.recv_sequenced(quiet) {
            self.record(seq, &message);
        }
    }
}

fn login(venue: &Venue, id: u64, last_seen_seq: u64) -> Client {
    let mut client = venue.connect();
    client.login(id, &format!("demo-{id}"), last_seen_seq, false);
    client
}

/// Logs every account in again after a restart; replayed messages are
/// recorded under the numbers they follow on from.
fn relogin(venue: &Venue, accounts: &mut [Account]) {
    for account in accounts.iter_mut() {
        let last_seen = account.client.last_seq;
        let next_id = account.client.next_client_order_id;
        let mut client = venue.connect();
        let replayed = client.login(
            account.id,
            &format!("demo-{}", account.id),
            last_seen,
            false,
        );
        client.next_client_order_id = next_id;
        for (i, message) in replayed.iter().enumerate() {
            account.record(last_seen + 1 + i as u64, message);
        }
        account.client = client;
    }
}

struct Outcome {
    reports: BTreeMap<u64, BTreeMap<u64, VenueMessage>>,
    stream: Vec<StreamRecord>,
    digest: String,
}

/// Runs the script, killing and restarting the venue after every
/// `kill_every`-th step (0: never).
fn run(name: &str, kill_every: usize) -> Outcome {
    let dir = scratch(name, SESSION);
    let mut venue = Venue::start(&dir);
    let mut accounts: Vec<Account> = ACCOUNTS
        .iter()
        .map(|&id| Account {
            id,
            client: login(&venue, id, 0),
            reports: BTreeMap::new(),
            last_order: 0,
        })
        .collect();
    for (n, step) in script().into_iter().enumerate() {
        let account = accounts
            .iter_mut()
            .find(|a| a.id == step.account)
            .expect("a scripted account");
        let mut id = 0;
        if let Some(send) = step.send {
            let mut message = send(account.client.next_client_order_id);
            match &mut message {
                ClientMessage::NewOrder(order) => {
                    id = account.client.next_id();
                    order.client_order_id = id;
                }
                ClientMessage::Cancel { order_id } | ClientMessage::Replace { order_id, .. } => {
                    *order_id = account.last_order;
                }
                _ => {}
            }
            account.client.send(&message);
        }
        account.wait(step.until, id);
        if kill_every > 0 && (n + 1) % kill_every == 0 {
            // Let the other accounts' reports of this step out, then kill.
            std::thread::sleep(Duration::from_millis(50));
            venue.kill9();
            venue = Venue::start(&dir);
            relogin(&venue, &mut accounts);
        }
    }
    for account in &mut accounts {
        account.drain(Duration::from_millis(300));
    }
    let stream = whole_stream(&venue.fill_stream);
    assert!(venue.sigterm().success());
    Outcome {
        reports: accounts.into_iter().map(|a| (a.id, a.reports)).collect(),
        stream,
        digest: digest(&dir.join("journal")),
    }
}

/// The whole fill stream: every record until it goes quiet.
fn whole_stream(addr: &str) -> Vec<StreamRecord> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .write_all(&frame::encode(&crate::harness::subscription(1)))
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let (mut buffer, mut records) = (Vec::new(), Vec::new());
    let mut chunk = [0u8; 65536];
    while let Ok(n) = stream.read(&mut chunk) {
        if n == 0 {
            break;
        }
        buffer.extend_from_slice(&chunk[..n]);
        while let Ok(Some((payload, used))) = frame::split(&buffer, 1 << 20) {
            records.push(frame::decode::<StreamRecord>(payload).unwrap());
            buffer.drain(..used);
        }
    }
    records
}

fn digest(journal: &Path) -> String {
    recover(
        journal,
        RecoverOptions {
            use_snapshot: true,
            track_orders: false,
            config: EngineConfig::default(),
        },
    )
    .unwrap()
    .state
    .digest()
}

#[test]
fn killed_and_restarted_after_every_kth_step_the_venue_ends_the_same() {
    let straight = run("anywhere-straight", 0);
    // The script did what it says: every account heard something, the
    // buyers' fills are in the stream, and the attestation released its
    // held order.
    assert!(straight.reports.values().all(|r| !r.is_empty()));
    assert!(straight.stream.len() > 20, "{}", straight.stream.len());
    assert!(straight.reports[&1001]
        .values()
        .any(|m| matches!(m, VenueMessage::AttestationAccepted { rechecked: 1, .. })));
    for k in [2, 3, 5] {
        let killed = run(&format!("anywhere-k{k}"), k);
        for (account, reports) in &straight.reports {
            assert_eq!(
                &killed.reports[account], reports,
                "account {account}'s reports differ when killed every {k} steps"
            );
        }
        assert_eq!(killed.stream, straight.stream, "fill stream, k = {k}");
        assert_eq!(killed.digest, straight.digest, "state digest, k = {k}");
    }
}
