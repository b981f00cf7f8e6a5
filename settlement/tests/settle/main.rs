//! The settlement process against a scripted fill stream: a real
//! `tonnex-settlement run` process, a loopback server speaking the venue's
//! fill-stream protocol, the embedded registry simulator (or the separate
//! `registry-sim` process) calling back over HTTP. This file holds the
//! harness and the core path; `failures` the registry's refusals, outages
//! and withdrawals, `callbacks` the callbacks and the simulator as its own
//! process, `operations` secrets, metrics, logs and tampering.

mod callbacks;
mod failures;
mod operations;
#[path = "../../../testkit/scratch.rs"]
mod scratch_dir;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tonnex_protocol::frame;
use tonnex_protocol::wire::*;
use tonnex_settlement::ledger::Ledger;
use tonnex_settlement::registry::{self, Kind, RegistryEvent};

use scratch_dir::Scratch;

const BUYER: u64 = 1001;
const SELLER: u64 = 2001;
const MM_A: u64 = 3001;
const MM_B: u64 = 3002;

/// A test's scratch folder, removed when the test ends.
fn scratch(name: &str) -> Scratch {
    Scratch::fresh(
        std::env::temp_dir().join(format!("tonnex-settle-{name}-{}", std::process::id())),
    )
}

/// Tonnes of the buyer's IOC order that never trade.
const IOC_REMAINDER: u64 = 60;

/// A fill stream: instruments, deposits, one buyer order of `buyer_qty` t
/// filled by two trades, then `mm_trades` market-maker trades.
fn stream(buyer_qty: u64, mm_trades: u64) -> Vec<StreamRecord> {
    let mut events = vec![
        StreamEvent::Instrument {
            instrument: 0,
            symbol: "NBR-2024.CCP".into(),
            sub_ledger: "ccp".into(),
            tick_micros: 10_000,
        },
        StreamEvent::CashDeposit {
            account: BUYER,
            amount_micros: 5_000_000_000_000,
        },
        StreamEvent::CreditDeposit {
            account: SELLER,
            instrument: 0,
            qty: 500,
            lot: Some(LotInfo {
                registry: "Verra".into(),
                project_id: "VCS-2451".into(),
                serial_start: "VCS-2451-2023-000001".into(),
                serial_end: "VCS-2451-2023-000500".into(),
                vintage: 2023,
                ccp: true,
            }),
        },
    ];
    for mm in [MM_A, MM_B] {
        events.push(StreamEvent::CashDeposit {
            account: mm,
            amount_micros: 1_000_000_000_000_000,
        });
        events.push(StreamEvent::CreditDeposit {
            account: mm,
            instrument: 0,
            qty: 100_000_000,
            lot: Some(LotInfo {
                registry: "Verra".into(),
                project_id: format!("VCS-{mm}"),
                serial_start: format!("VCS-{mm}-000000001"),
                serial_end: format!("VCS-{mm}-100000000"),
                vintage: 2024,
                ccp: true,
            }),
        });
    }
    events.push(StreamEvent::BuyAccepted {
        order_id: 100,
        account: BUYER,
        instrument: 0,
        price_ticks: 1600,
        qty: buyer_qty + IOC_REMAINDER,
        decision: BuyDecision {
            company: "Acme Manufacturing".into(),
            reporting_year: 2026,
            pathway: 2,
            sub_ledger: "ccp".into(),
            floor_micros: 20_000_000,
            floor_ticks: 2000,
            internal_price_micros: 45_000_000,
            attestation: Some("ATT-7".into()),
            scope: vec![ScopeLine {
                scope: 3,
                category: 1,
                qty: buyer_qty + IOC_REMAINDER,
            }],
            coverage_bp: 12,
            tier_threshold_met: false,
            ongoing_emissions_milli_t: 10_000_000,
            threshold_bp: 100,
            rules_version: "2.0".into(),
            rules_sha256: "ab".repeat(32),
            attestation_approver: Some("compliance".into()),
        },
    });
    let half = buyer_qty / 2;
    for (n, qty) in [half, buyer_qty - half].into_iter().enumerate() {
        events.push(StreamEvent::Trade {
            trade_id: (200 << 20) | n as u64,
            instrument: 0,
            buy_order_id: 100,
            sell_order_id: 99,
            buyer: BUYER,
            seller: SELLER,
            price_ticks: 1500,
            qty,
            supplementary_ticks: 500,
        });
    }
    // The buyer's order was an IOC: its remainder never trades.
    events.push(StreamEvent::Cancelled {
        order_id: 100,
        account: BUYER,
        instrument: 0,
        open_qty: IOC_REMAINDER,
        reason: 2,
    });
    for i in 0..mm_trades {
        let (buyer, seller) = if i % 2 == 0 {
            (MM_A, MM_B)
        } else {
            (MM_B, MM_A)
        };
        events.push(StreamEvent::Trade {
            trade_id: ((1000 + i) << 20) | 1,
            instrument: 0,
            buy_order_id: 10_000 + i,
            sell_order_id: 20_000 + i,
            buyer,
            seller,
            price_ticks: 2500,
            qty: 1 + i % 7,
            supplementary_ticks: 0,
        });
    }
    events
        .into_iter()
        .enumerate()
        .map(|(i, event)| StreamRecord {
            seq: i as u64 + 1,
            journal_seq: i as u64 + 1,
            event,
        })
        .collect()
}

/// Serves `records` as the venue's fill stream to every subscriber, from
/// the sequence each asks for; returns the address.
fn fake_venue(records: Vec<StreamRecord>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let frames: Arc<Vec<Vec<u8>>> = Arc::new(records.iter().map(frame::encode).collect());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let frames = Arc::clone(&frames);
            std::thread::spawn(move || {
                let mut header = [0u8; 4];
                if stream.read_exact(&mut header).is_err() {
                    return;
                }
                let mut payload = vec![0u8; u32::from_le_bytes(header) as usize];
                if stream.read_exact(&mut payload).is_err() {
                    return;
                }
                let from = frame::decode::<StreamSubscribe>(&payload)
                    .unwrap()
                    .from_seq
                    .max(1);
                for bytes in frames.iter().skip(from as usize - 1) {
                    if stream.write_all(bytes).is_err() {
                        return;
                    }
                }
                // Stay subscribed, as the venue does, until the peer leaves.
                let mut sink = [0u8; 64];
                let _ = stream.read(&mut sink);
            });
        }
    });
    addr
}

struct Settlement {
    child: Child,
    webhook: String,
    metrics: Option<String>,
}

/// Starts `tonnex-settlement` with `command`'s arguments and returns the
/// process once it has printed its `ready ...` line, with that line.
fn start_ready(command: &mut Command) -> (Child, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("ready "), "{line:?}");
    (child, line)
}

impl Settlement {
    fn start(venue: &str, dir: &Path, extra: &[&str]) -> Settlement {
        let (child, line) = start_ready(
            Command::new(env!("CARGO_BIN_EXE_tonnex-settlement"))
                .args(["run", "--venue", venue, "--data-dir"])
                .arg(dir)
                .args(["--secret", "test-secret", "--poll-ms", "300"])
                .args(["--fill-key", "test-fill-key"])
                .args(extra),
        );
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(key))
                .map(str::to_string)
        };
        Settlement {
            child,
            webhook: field("webhook=").unwrap(),
            metrics: field("metrics="),
        }
    }

    fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Settlement {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn last_seq(dir: &Path) -> u64 {
    Ledger::open(dir).and_then(|l| l.last_seq()).unwrap_or(0)
}

/// Waits until `done` holds (or panics after `seconds`).
fn wait_for(seconds: u64, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn audit(dir: &Path) -> (bool, serde_json::Value, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_tonnex-settlement"))
        .args(["audit", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    let mut lines = text.lines();
    let json: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    let last = lines.last().unwrap().to_string();
    (output.status.success(), json, last)
}

fn state_count(json: &serde_json::Value, state: &str) -> u64 {
    json["trades_by_state"][state].as_u64().unwrap_or(0)
}

/// Trades in `states`, read straight from the ledger (cheaper than an audit).
/// Whether every certificate the ledger holds has its file: settlement
/// writes the files just after the commit that issues them, so a test
/// that audits a running settlement waits for them too.
fn certificate_files_written(dir: &Path) -> bool {
    let Ok(conn) = rusqlite::Connection::open_with_flags(
        dir.join("ledger.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    ) else {
        return false;
    };
    let Ok(mut query) = conn.prepare("SELECT certificate_id FROM certificates") else {
        return false;
    };
    let Ok(ids) = query
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
    else {
        return false;
    };
    ids.iter()
        .all(|id| dir.join("certificates").join(format!("{id}.json")).exists())
}

fn trades_in(dir: &Path, states: &[&str]) -> u64 {
    let Ok(conn) = rusqlite::Connection::open_with_flags(
        dir.join("ledger.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    ) else {
        return 0;
    };
    let list = states
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(",");
    conn.query_row(
        &format!("SELECT COUNT(*) FROM trades WHERE state IN ({list})"),
        [],
        |r| r.get::<_, i64>(0),
    )
    .map_or(0, |n| n as u64)
}

#[test]
fn a_buyer_order_settles_delivery_versus_payment_retires_and_gets_a_certificate() {
    let dir = scratch("certificate");
    let records = stream(40, 10);
    let total = records.len() as u64;
    let venue = fake_venue(records);
    let _settlement = Settlement::start(&venue, &dir, &[]);
    let certificate = dir.join("certificates/TNX-100.json");
    wait_for(20, "the certificate", || certificate.exists());
    wait_for(10, "every trade settled", || {
        trades_in(&dir, &["settled", "retired"]) == 12
    });
    assert_eq!(last_seq(&dir), total);
    let (ok, json, last) = audit(&dir);
    assert!(ok, "{json:#}");
    assert_eq!(last, "audit ok=true trades=12 settled=12 certificates=1");

    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&certificate).unwrap()).unwrap();
    for field in tonnex_settlement::CERTIFICATE_FIELDS {
        assert!(value.get(field).is_some(), "certificate lacks {field}");
    }
    assert_eq!(value["pathway"], "recognised");
    assert_eq!(value["attestation"], "ATT-7");
    assert_eq!(value["attestation_approved_by"], "compliance");
    // What was bought and retired (40 t of a 100 t IOC), never what was
    // ordered: 40 t of 10,000 t ongoing emissions is 0.40 %.
    assert_eq!(
        value["scope_allocation"],
        serde_json::json!([{"scope": 3, "category": 1, "tonnes": 40}])
    );
    assert_eq!(value["coverage_pct"], "0.40");
    assert_eq!(value["order_coverage_pct"], "0.40");
    assert_eq!(value["tier_threshold_met"], false);
    assert_eq!(value["rules_version"], "2.0");
    let html = std::fs::read_to_string(dir.join("certificates/TNX-100.html")).unwrap();
    assert!(html.contains("do not reduce the buyer's reported emissions inventory"));
    assert_eq!(value["floor_usd"], "20.00");
    assert_eq!(value["trades"].as_array().unwrap().len(), 2);
    assert_eq!(value["trades"][0]["price_usd"], "15.00");
    assert_eq!(value["trades"][0]["supplementary_usd_per_t"], "5.00");
    // 40 t x 5.00 USD below the floor.
    assert_eq!(value["supplementary_pricing_total_usd"], "200.00");
    // The 40 serials, first in first out, in two cuts.
    assert_eq!(value["credits"][0]["serial_start"], "VCS-2451-2023-000001");
    assert_eq!(value["credits"][1]["serial_end"], "VCS-2451-2023-000040");
    assert_eq!(value["retirement"]["status"], "retired");
    assert!(value["retirement"]["registry_reference"]
        .as_str()
        .unwrap()
        .contains("SIM-RETIREMENT"));
    assert_eq!(
        value["sha256"].as_str().unwrap(),
        tonnex_settlement::certificate::digest(&value)
    );
    assert!(dir.join("certificates/TNX-100.html").exists());

    // Tampering with a certificate is caught by the audit.
    let tampered = std::fs::read_to_string(&certificate)
        .unwrap()
        .replace("\"15.00\"", "\"14.00\"");
    std::fs::write(&certificate, tampered).unwrap();
    let (ok, json, _) = audit(&dir);
    assert!(
        !ok && json["checks"]["certificates_match_ledger"] == false,
        "{json:#}"
    );
}

#[test]
fn kill_9_mid_stream_loses_nothing_and_applies_nothing_twice() {
    let dir = scratch("kill9");
    let records = stream(20, 20_000);
    let total = records.len() as u64;
    let venue = fake_venue(records);
    let mut settlement = Settlement::start(&venue, &dir, &[]);
    wait_for(30, "some progress", || last_seq(&dir) > 5_000);
    settlement.kill9();
    let at_kill = last_seq(&dir);
    assert!(at_kill < total, "the kill came after the end ({at_kill})");
    let _settlement = Settlement::start(&venue, &dir, &[]);
    wait_for(60, "the rest of the stream", || last_seq(&dir) == total);
    wait_for(30, "every trade settled", || {
        trades_in(&dir, &["settled", "retired"]) == 20_002
    });
    let (ok, json, _) = audit(&dir);
    assert!(ok, "{json:#}");
    assert_eq!(json["trades"], 20_002);
}

fn post_events(webhook: &str, events: &[RegistryEvent], secret: &[u8]) -> u16 {
    let body =
        serde_json::Value::Array(events.iter().map(RegistryEvent::to_json).collect()).to_string();
    registry::post(
        webhook.parse().unwrap(),
        "/registry/events",
        body.as_bytes(),
        Some(secret),
    )
    .unwrap()
    .0
}

/// A free loopback port (nothing listens on it once this returns).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Each venue account's accounts at the registry and the payment rail (the
/// simulator refuses a request without them), as a file in `dir`.
fn registry_accounts(dir: &Path) -> String {
    let path = dir.join("registry-accounts.csv");
    let mut csv = String::from("account,registry_account,payment_account\n");
    for account in [BUYER, SELLER, MM_A, MM_B] {
        csv += &format!("{account},VERRA-{account},IBAN-{account}\n");
    }
    std::fs::write(&path, csv).unwrap();
    path.to_str().unwrap().to_string()
}
