//! The settlement process against a scripted fill stream: a real
//! `tonnex-settlement run` process, a loopback server speaking the venue's
//! fill-stream protocol, the embedded registry simulator (or the separate
//! `registry-sim` process) calling back over HTTP.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tonnex_protocol::frame;
use tonnex_protocol::wire::*;
use tonnex_settlement::ledger::Ledger;
use tonnex_settlement::registry::{self, Kind, RegistryEvent};

const BUYER: u64 = 1001;
const SELLER: u64 = 2001;
const MM_A: u64 = 3001;
const MM_B: u64 = 3002;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tonnex-settle-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
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

#[test]
fn refused_transfers_and_timeouts_unwind_both_legs() {
    let dir = scratch("unwind");
    let venue = fake_venue(stream(20, 400));
    let _settlement = Settlement::start(&venue, &dir, &["--fail-pct", "25"]);
    wait_for(20, "every trade final", || {
        trades_in(&dir, &["settled", "retired", "unwound"]) == 402
    });
    let (ok, json, _) = audit(&dir);
    assert!(ok, "{json:#}");
    let unwound = state_count(&json, "unwound");
    assert!((40..=160).contains(&unwound), "{unwound} of 402 unwound");
    // The report says why: each refusal with the registry's reason.
    let failures = &report(&dir)["failures"]["unwound_by_reason"];
    let by_reason = failures.as_object().unwrap();
    assert!(
        by_reason.keys().all(|k| [
            "transfer_refused:insufficient_units",
            "transfer_refused:account_closed",
            "transfer_refused:serials_already_retired"
        ]
        .contains(&k.as_str())),
        "{failures}"
    );
    assert_eq!(
        by_reason.values().map(|n| n.as_u64().unwrap()).sum::<u64>(),
        unwound
    );

    // A registry that never answers: every trade times out and unwinds.
    let silent = scratch("timeout");
    let venue = fake_venue(stream(20, 5));
    let _settlement = Settlement::start(
        &venue,
        &silent,
        &["--confirm-delay-ms", "600000", "--timeout-ms", "300"],
    );
    wait_for(20, "timeouts", || trades_in(&silent, &["unwound"]) == 7);
    let (ok, json, _) = audit(&silent);
    assert!(ok, "{json:#}");
    assert_eq!(
        report(&silent)["failures"]["unwound_by_reason"],
        serde_json::json!({"timeout": 7})
    );
}

fn report(dir: &Path) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_tonnex-settlement"))
        .args(["report", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(output.status.success());
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn a_retirement_refused_for_good_leaves_the_credits_with_the_buyer_and_a_stray_answer_changes_nothing(
) {
    let dir = scratch("retire-refused");
    let venue = fake_venue(stream(20, 3));
    let settlement = Settlement::start(&venue, &dir, &["--retire-fail-pct", "100"]);
    wait_for(20, "every trade final", || {
        trades_in(&dir, &["retirement_refused"]) == 2 && trades_in(&dir, &["settled"]) == 3
    });
    // A retirement answer for a market maker's trade, never asked for.
    let stray = RegistryEvent {
        event_id: "stray-1".into(),
        trade_id: (1000 << 20) | 1,
        kind: Kind::Retirement,
        confirmed: true,
        reference: "R-STRAY".into(),
    };
    assert_eq!(
        post_events(&settlement.webhook, &[stray], b"test-secret"),
        200
    );
    wait_for(10, "the stray answer recorded", || {
        report(&dir)["failures"]["registry_answers_that_changed_nothing"]["retirement_confirmed"]
            == 1
    });
    assert_eq!(
        trades_in(&dir, &["settled"]),
        3,
        "the stray answer retired nothing"
    );
    let failures = &report(&dir)["failures"]["retirements_refused_by_reason"];
    let refused: u64 = failures
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, n)| {
            assert!(k.starts_with("retirement_refused:"), "{failures}");
            n.as_u64().unwrap()
        })
        .sum();
    assert_eq!(refused, 2);
    // The venue is told: the credits are the buyer's again, free.
    let conn = rusqlite::Connection::open(dir.join("ledger.sqlite")).unwrap();
    let told: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM venue_feedback WHERE outcome = 'retirement_refused'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(told, 2);
    let (ok, json, _) = audit(&dir);
    assert!(ok, "{json:#}");
    // No certificate: nothing of the order was retired.
    assert!(!dir.join("certificates/TNX-100.json").exists());
}

#[test]
fn a_registry_down_for_a_while_gets_every_pending_request_again_once_it_is_back() {
    let dir = scratch("registry-down");
    let registry = format!("127.0.0.1:{}", free_port());
    let webhook = format!("127.0.0.1:{}", free_port());
    let venue = fake_venue(stream(30, 20));
    let accounts = registry_accounts(&dir);
    let _settlement = Settlement::start(
        &venue,
        &dir,
        &[
            "--registry",
            &registry,
            "--registry-accounts",
            &accounts,
            "--webhook-listen",
            &webhook,
            "--timeout-ms",
            "120000",
        ],
    );
    wait_for(10, "the trades, with the registry down", || {
        trades_in(&dir, &["awaiting_confirmations"]) == 22
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(trades_in(&dir, &["awaiting_confirmations"]), 22);
    // The registry comes up on its address: everything settles.
    let (mut sim, _) = start_ready(Command::new(env!("CARGO_BIN_EXE_tonnex-settlement")).args([
        "registry-sim",
        "--listen",
        &registry,
        "--callback",
        &webhook,
        "--secret",
        "test-secret",
    ]));
    wait_for(60, "every trade settled once the registry is back", || {
        trades_in(&dir, &["settled", "retired"]) == 22
    });
    let _ = sim.kill();
    let _ = sim.wait();
    let (ok, json, _) = audit(&dir);
    assert!(ok, "{json:#}");
    assert_eq!(state_count(&json, "unwound"), 0);
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

#[test]
fn forged_replayed_and_unknown_callbacks_are_refused_over_http() {
    let dir = scratch("webhook");
    let venue = fake_venue(stream(20, 0));
    // The simulator waits ten minutes: only this test's callbacks arrive.
    let settlement = Settlement::start(&venue, &dir, &["--confirm-delay-ms", "600000"]);
    let trade = 200 << 20;
    wait_for(10, "the trades", || {
        trades_in(&dir, &["awaiting_confirmations"]) == 2
    });
    let event = |id: &str, trade_id: u64, kind: Kind| RegistryEvent {
        event_id: id.into(),
        trade_id,
        kind,
        confirmed: true,
        reference: "TEST".into(),
    };
    assert_eq!(
        post_events(
            &settlement.webhook,
            &[event("f-1", trade, Kind::Payment)],
            b"not-the-secret"
        ),
        401
    );
    let mut raw = TcpStream::connect(&settlement.webhook).unwrap();
    let body = "[]";
    write!(raw, "POST /registry/events HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut answer = String::new();
    raw.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 401"), "unsigned: {answer}");
    assert_eq!(
        post_events(
            &settlement.webhook,
            &[event("u-1", 999, Kind::Payment)],
            b"test-secret"
        ),
        404
    );

    let payment = event("ok-1", trade, Kind::Payment);
    assert_eq!(
        post_events(
            &settlement.webhook,
            std::slice::from_ref(&payment),
            b"test-secret"
        ),
        200
    );
    assert_eq!(
        post_events(&settlement.webhook, &[payment], b"test-secret"),
        409
    );
    assert_eq!(
        post_events(
            &settlement.webhook,
            &[event("ok-2", trade, Kind::Transfer)],
            b"test-secret"
        ),
        200
    );
    wait_for(10, "the trade settled by the callbacks", || {
        trades_in(&dir, &["settled"]) == 1
    });
    let (ok, json, _) = audit(&dir);
    assert!(ok, "{json:#}");
    assert_eq!(state_count(&json, "awaiting_confirmations"), 1);
}

/// A free loopback port (nothing listens on it once this returns).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `tonnex-settlement registry-sim` sending its callbacks to `callback`;
/// returns the process and its address.
fn registry_sim(callback: &str) -> (Child, String) {
    let (sim, line) = start_ready(Command::new(env!("CARGO_BIN_EXE_tonnex-settlement")).args([
        "registry-sim",
        "--listen",
        "127.0.0.1:0",
        "--callback",
        callback,
        "--secret",
        "test-secret",
    ]));
    let addr = line
        .trim()
        .strip_prefix("ready registry=")
        .unwrap()
        .to_string();
    (sim, addr)
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

/// Runs `stream(30, 100)` through a settlement that uses the registry
/// simulator process `sim` at `registry_addr` (plus `extra` flags), waits
/// for the buyer's certificate and every trade settled, and returns the
/// audit (the simulator is stopped either way).
fn settle_with_remote_registry(
    dir: &Path,
    (mut sim, registry_addr): (Child, String),
    extra: &[&str],
) -> (bool, serde_json::Value) {
    let venue = fake_venue(stream(30, 100));
    let accounts = registry_accounts(dir);
    let mut args = vec![
        "--registry",
        registry_addr.as_str(),
        "--registry-accounts",
        accounts.as_str(),
    ];
    args.extend_from_slice(extra);
    let _settlement = Settlement::start(&venue, dir, &args);
    wait_for(30, "the certificate", || {
        dir.join("certificates/TNX-100.json").exists()
    });
    wait_for(20, "every trade settled", || {
        trades_in(dir, &["settled", "retired"]) == 102
    });
    let (ok, json, _) = audit(dir);
    let _ = sim.kill();
    let _ = sim.wait();
    (ok, json)
}

#[test]
fn the_registry_simulator_as_its_own_process_confirms_over_real_sockets() {
    let dir = scratch("remote");
    // The settlement's webhook port must be known to the simulator first.
    let webhook = format!("127.0.0.1:{}", free_port());
    let sim = registry_sim(&webhook);
    let (ok, json) = settle_with_remote_registry(&dir, sim, &["--webhook-listen", &webhook]);
    assert!(ok, "{json:#}");
}

#[test]
fn polling_alone_settles_when_no_callback_ever_arrives() {
    let dir = scratch("poll-only");
    // The simulator's callbacks go to a port nobody listens on: every
    // confirmation and retirement has to come in through the poll path.
    let nowhere = format!("127.0.0.1:{}", free_port());
    let (ok, json) = settle_with_remote_registry(&dir, registry_sim(&nowhere), &[]);
    assert!(ok, "{json:#}");
    assert_eq!(state_count(&json, "retired"), 2, "{json:#}");
}

#[test]
fn no_secret_is_defaulted_a_missing_one_stops_the_command_naming_it() {
    let run = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_tonnex-settlement"))
            .args(args)
            .env_remove("TONNEX_WEBHOOK_SECRET")
            .env_remove("TONNEX_FILL_KEY")
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8(output.stderr).unwrap(),
        )
    };
    let dir = std::env::temp_dir().join(format!("tonnex-no-secret-{}", std::process::id()));
    let dir = dir.to_str().unwrap();
    let base = ["run", "--venue", "127.0.0.1:9", "--data-dir", dir];
    // An external registry shares the webhook secret: it must be given.
    let external = ["--registry", "127.0.0.1:9", "--fill-key", "k-12345678"];
    let (code, stderr) = run(&[&base[..], &external[..]].concat());
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("--secret") && stderr.contains("TONNEX_WEBHOOK_SECRET"),
        "{stderr}"
    );
    let (code, stderr) = run(&[&base[..], &["--secret", "s"]].concat());
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("--fill-key") && stderr.contains("TONNEX_FILL_KEY"),
        "{stderr}"
    );
    let (code, stderr) = run(&[
        "registry-sim",
        "--listen",
        "127.0.0.1:0",
        "--callback",
        "127.0.0.1:9",
    ]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--secret"), "{stderr}");
}

/// Every sample of a settlement scrape, through the reference Prometheus
/// parser (`scripts/metrics.py`), as `name{labels} -> value`.
fn scrape(addr: &str) -> std::collections::BTreeMap<String, f64> {
    use std::io::Read as _;
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .write_all(
            format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let body = response.split_once("\r\n\r\n").unwrap().1.to_string();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/metrics.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the Prometheus parser refused: {body}"
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let labels: Vec<String> = v["labels"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, x)| format!("{k}={}", x.as_str().unwrap()))
                .collect();
            (
                format!("{}{{{}}}", v["name"].as_str().unwrap(), labels.join(",")),
                v["value"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn settlement_metrics_show_the_stream_the_escrows_and_the_registry_calls() {
    let dir = scratch("metrics");
    let records = stream(40, 10);
    let total = records.len() as u64;
    let venue = fake_venue(records);
    let settlement = Settlement::start(&venue, &dir, &["--metrics-listen", "127.0.0.1:0"]);
    wait_for(20, "every trade settled", || {
        trades_in(&dir, &["settled", "retired"]) == 12
    });
    let addr = settlement
        .metrics
        .clone()
        .expect("a metrics address on the ready line");
    wait_for(10, "the stream applied", || {
        scrape(&addr)["tonnex_settlement_stream_seq{}"] as u64 == total
    });
    let samples = scrape(&addr);
    assert_eq!(samples["tonnex_settlement_stream_lag{}"], 0.0);
    let settled = samples
        .get("tonnex_settlement_trades{state=settled}")
        .unwrap_or(&0.0)
        + samples
            .get("tonnex_settlement_trades{state=retired}")
            .unwrap_or(&0.0);
    assert_eq!(settled, 12.0);
    assert_eq!(samples["tonnex_settlement_escrows_in_flight{}"], 0.0);
    assert_eq!(samples["tonnex_settlement_unwinds_total{}"], 0.0);
    assert!(samples["tonnex_settlement_registry_calls_total{kind=submit,outcome=ok}"] >= 1.0);
    assert_eq!(
        samples["tonnex_settlement_registry_calls_total{kind=submit,outcome=error}"],
        0.0
    );
}

/// `--log-format json`: every line settlement writes on standard error is a
/// JSON object; here the venue is unreachable, so it warns (with the error
/// and the retry) until it is stopped.
#[test]
fn logs_are_json_objects_with_log_format_json() {
    let dir = scratch("json-logs");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tonnex-settlement"))
        .args(["run", "--venue", "127.0.0.1:1", "--fill-key", "k"])
        .args(["--log-format", "json", "--data-dir"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut warning = None;
    let mut line = String::new();
    while warning.is_none() && stderr.read_line(&mut line).unwrap() > 0 {
        let event: serde_json::Value = serde_json::from_str(line.trim_end())
            .unwrap_or_else(|e| panic!("not JSON: {line}: {e}"));
        assert!(
            event["timestamp"].is_string() && event["level"].is_string(),
            "{event}"
        );
        if event["fields"]["message"] == "fill stream unreachable" {
            warning = Some(event);
        }
        line.clear();
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let warning = warning.expect("a warning that the venue is unreachable");
    assert_eq!(warning["level"], "WARN");
    assert!(warning["fields"]["retry_ms"].is_u64(), "{warning}");
    std::fs::remove_dir_all(dir).ok();
}

/// The custody log: every movement's entry links to the one before; the
/// audit recomputes each from the postings as they are, so altering one
/// posting (even keeping the movement balanced), one log row, or removing
/// one, is named; the report prints the head an operator publishes.
#[test]
fn tampering_with_a_posting_or_the_custody_log_is_named_by_the_audit() {
    let dir = scratch("custody");
    let records = stream(40, 30);
    let venue = fake_venue(records);
    let mut settlement = Settlement::start(&venue, &dir, &[]);
    wait_for(20, "every trade settled", || {
        trades_in(&dir, &["settled", "retired"]) == 32
    });
    settlement.kill9();
    let (ok, json, _) = audit(&dir);
    assert!(ok, "{json:#}");
    let verified = json["custody_log"]["verified_entries"].as_u64().unwrap();
    let head = json["custody_log"]["head_sha256"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(verified > 60, "{json:#}");
    let report = Command::new(env!("CARGO_BIN_EXE_tonnex-settlement"))
        .args(["report", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(report["custody_head"]["sha256"], head.as_str());

    let db = || rusqlite::Connection::open(dir.join("ledger.sqlite")).unwrap();
    let broken = |json: &serde_json::Value| {
        json["custody_log"]["first_broken_link"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    // 1. A settle movement's cash paid to someone else: still balanced, so
    //    only the chain can tell.
    let (movement, rowid): (i64, i64) = db()
        .query_row(
            "SELECT p.movement_id, p.rowid FROM postings p JOIN movements m ON m.id = p.movement_id
             WHERE m.kind = 'settle' AND p.account > 0 AND p.asset = -1 ORDER BY p.rowid LIMIT 1 OFFSET 3",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    db().execute(
        "UPDATE postings SET account = 999 WHERE rowid = ?1",
        [rowid],
    )
    .unwrap();
    let (ok, json, _) = audit(&dir);
    assert!(
        !ok && json["checks"]["custody_chain_verifies"] == false,
        "{json:#}"
    );
    assert!(
        broken(&json).starts_with(&format!(
            "custody log entry {movement} (movement {movement}, settle"
        )),
        "{}",
        broken(&json)
    );
    assert_eq!(
        json["custody_log"]["verified_entries"].as_i64().unwrap(),
        movement - 1
    );
    db().execute("UPDATE postings SET account = (SELECT seller FROM trades t JOIN movements m ON m.trade_id = t.trade_id WHERE m.id = ?1) WHERE rowid = ?2", [movement, rowid])
        .unwrap();
    let (ok, json, _) = audit(&dir);
    assert!(ok, "restoring the posting restores the chain: {json:#}");
    // 2. A log row rewritten (its hash recomputed by a forger who does not
    //    also rewrite every later entry) cuts the chain at the next one.
    db().execute(
        "UPDATE custody_log SET sha256 = ?1 WHERE movement_id = 10",
        [&"ab".repeat(32)],
    )
    .unwrap();
    let (ok, json, _) = audit(&dir);
    assert!(!ok, "{json:#}");
    assert!(
        broken(&json).starts_with("custody log entry 10 "),
        "{}",
        broken(&json)
    );
    // 3. A log row removed.
    db().execute("DELETE FROM custody_log WHERE movement_id = 10", [])
        .unwrap();
    let (ok, json, _) = audit(&dir);
    assert!(!ok, "{json:#}");
    assert!(
        broken(&json).contains("custody log entry 11 where movement 10"),
        "{}",
        broken(&json)
    );
}

/// `stream(20, 0)` and then a withdrawal of 10 t by market maker A.
fn stream_with_withdrawal() -> Vec<StreamRecord> {
    let mut records = stream(20, 0);
    let seq = records.len() as u64 + 1;
    records.push(StreamRecord {
        seq,
        journal_seq: seq,
        event: StreamEvent::CreditWithdrawal {
            account: MM_A,
            instrument: 0,
            qty: 10,
        },
    });
    records
}

fn withdrawal_state(dir: &Path) -> Option<(String, Option<String>)> {
    let conn = rusqlite::Connection::open_with_flags(
        dir.join("ledger.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .ok()?;
    conn.query_row("SELECT state, failure FROM withdrawals", [], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
    .ok()
}

#[test]
fn a_withdrawal_is_confirmed_by_the_registry_or_comes_back_with_its_serials() {
    // Confirmed: the serials leave custody for the owner's registry account.
    let dir = scratch("withdraw-ok");
    let venue = fake_venue(stream_with_withdrawal());
    let settlement = Settlement::start(&venue, &dir, &[]);
    wait_for(20, "the withdrawal confirmed", || {
        withdrawal_state(&dir).is_some_and(|(s, _)| s == "confirmed")
    });
    drop(settlement);
    let (ok, json, _) = audit(&dir);
    assert!(ok, "{json:#}");

    // Refused: the credits and serials come back, and the venue is told.
    let dir = scratch("withdraw-refused");
    let venue = fake_venue(stream_with_withdrawal());
    let _settlement = Settlement::start(&venue, &dir, &["--fail-pct", "100"]);
    wait_for(20, "the withdrawal returned", || {
        withdrawal_state(&dir).is_some_and(|(s, _)| s == "returned")
    });
    let (_, failure) = withdrawal_state(&dir).unwrap();
    assert!(
        failure
            .as_deref()
            .is_some_and(|f| f.starts_with("withdrawal_refused:")),
        "{failure:?}"
    );
    let conn = rusqlite::Connection::open(dir.join("ledger.sqlite")).unwrap();
    let (told, blocks): (i64, i64) = conn
        .query_row(
            &format!(
                "SELECT (SELECT COUNT(*) FROM venue_feedback WHERE outcome = 'withdrawal_returned'),
                        (SELECT COUNT(*) FROM serial_blocks WHERE account = {MM_A})"
            ),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (told, blocks),
        (1, 2),
        "one outcome for the venue; the serials as a new block"
    );
    let balance: i64 = conn
        .query_row(
            &format!("SELECT SUM(amount) FROM postings WHERE account = {MM_A} AND asset = 0"),
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(balance, 100_000_000, "the credits are back");
    assert_eq!(
        report(&dir)["withdrawals"]["by_state"]["returned"]["tonnes"],
        10
    );
    let (ok, json, _) = audit(&dir);
    assert!(ok, "{json:#}");
}
