//! The admin port: each verb through `tonnex-admin`, its effect seen by a
//! trading session, and its survival across `kill -9`; and every way a
//! request is refused (unsigned, wrong key, stale, replayed, outside the
//! role, malformed), each answered with its reason and the venue unharmed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tonnex_protocol::admin::{self, AdminReply, AdminRequest, AdminVerb, Signed};
use tonnex_protocol::frame;
use tonnex_protocol::wire::*;

use crate::harness::{line, scratch, Venue, QUICK};

const NBR: u32 = 0;

/// Runs `tonnex-admin` as `operator` with `key`; returns its exit code and
/// everything it printed on standard output.
fn admin_output(venue: &Venue, operator: &str, key: &str, args: &[&str]) -> (i32, String) {
    let output = venue.admin_cli(operator, key, args);
    (
        output.status.code().unwrap(),
        String::from_utf8(output.stdout).unwrap(),
    )
}

/// [`admin_output`] with only the last line.
fn admin_as(venue: &Venue, operator: &str, key: &str, args: &[&str]) -> (i32, String) {
    let (code, stdout) = admin_output(venue, operator, key, args);
    (code, stdout.lines().last().unwrap_or_default().to_string())
}

fn ops(venue: &Venue, args: &[&str]) -> (i32, String) {
    admin_as(venue, "ops", "demo-ops-key", args)
}

/// The venue's first answer to a login of demo account `account`.
fn login_answer(venue: &Venue, account: u64) -> Option<VenueMessage> {
    let mut client = venue.connect();
    client.send(&ClientMessage::Login {
        account,
        secret: format!("demo-{account}"),
        last_seen_seq: 0,
        cancel_on_disconnect: false,
    });
    client.recv()
}

#[test]
fn halt_and_resume_reach_trading_sessions_and_survive_kill_9() {
    let dir = scratch("admin-halt", QUICK);
    let mut venue = Venue::start(&dir);
    let (code, last) = ops(&venue, &["halt", "NBR-2024.CCP", "--reason", "drill"]);
    assert_eq!(code, 0, "{last}");
    assert!(last.starts_with("ok=true seq="), "{last}");
    let mut maker = venue.login(3001);
    maker.limit(NBR, SIDE_SELL, 2500, 1);
    assert_eq!(maker.rejected().2, "INSTRUMENT_HALTED");
    drop(maker);
    venue.kill9();

    let venue = Venue::start(&dir);
    let (_, status) = ops(&venue, &["status"]);
    assert!(status.starts_with("ok=true"), "{status}");
    let mut maker = venue.login(3001);
    maker.next_client_order_id = 2;
    maker.limit(NBR, SIDE_SELL, 2500, 1);
    assert_eq!(maker.rejected().2, "INSTRUMENT_HALTED");
    assert_eq!(ops(&venue, &["resume", "--all"]).0, 0);
    let id = maker.limit(NBR, SIDE_SELL, 2500, 1);
    maker.accepted(id);
    // Usage errors exit 2.
    assert_eq!(ops(&venue, &["halt"]).0, 2);
}

#[test]
fn suspension_is_a_kill_switch_that_survives_kill_9_until_reactivated() {
    let dir = scratch("admin-kyc", QUICK);
    let mut venue = Venue::start(&dir);
    let mut maker = venue.login(3001);
    let resting: Vec<u64> = (0..3)
        .map(|n| maker.rest(NBR, SIDE_SELL, 2600 + n, 2))
        .collect();
    let (code, last) = ops(
        &venue,
        &["kyc", "3001", "suspended", "--reason", "kill switch"],
    );
    assert_eq!(code, 0, "{last}");
    // Its session is closed ...
    assert!(maker.closed_within(Duration::from_secs(3)));
    // ... it cannot log in, and its orders are gone from the book.
    assert!(matches!(
        login_answer(&venue, 3001),
        Some(VenueMessage::LoginRejected { text }) if text.contains("suspended")
    ));
    let mut taker = venue.login(3002);
    taker.send(&ClientMessage::NewOrder(NewOrder {
        client_order_id: 1,
        instrument: NBR,
        side: SIDE_BUY,
        order_type: TYPE_LIMIT,
        time_in_force: TIF_IOC,
        price_ticks: 2700,
        qty: 6,
        cash_budget_micros: 0,
        scope: vec![],
        attestation: None,
    }));
    taker.accepted(1);
    let unfilled = taker.expect("the IOC cancelled unfilled", |m| match m {
        VenueMessage::Cancelled { open_qty, .. } => Some(*open_qty),
        VenueMessage::Fill { .. } => panic!("a suspended account's order traded"),
        _ => None,
    });
    assert_eq!(unfilled, 6);
    drop(taker);
    venue.kill9();

    let venue = Venue::start(&dir);
    assert!(matches!(
        login_answer(&venue, 3001),
        Some(VenueMessage::LoginRejected { .. })
    ));
    assert_eq!(ops(&venue, &["kyc", "3001", "active"]).0, 0);
    // Back: its replay shows its orders cancelled by the mass cancel.
    let mut maker = venue.connect();
    let replayed = maker.login(3001, "demo-3001", 3, false);
    let cancelled: Vec<u64> = replayed
        .iter()
        .filter_map(|m| match m {
            VenueMessage::Cancelled {
                order_id, reason, ..
            } if *reason == 5 => Some(*order_id),
            _ => None,
        })
        .collect();
    assert_eq!(cancelled, resting);
    maker.next_client_order_id = 4;
    let id = maker.limit(NBR, SIDE_SELL, 2600, 1);
    maker.accepted(id);
    // A compliance officer may change KYC, not halt.
    let (code, last) = admin_as(
        &venue,
        "compliance",
        "demo-compliance-key",
        &["kyc", "1003", "pending_kyc"],
    );
    assert_eq!(code, 0, "{last}");
    let mut buyer = venue.login(1003);
    buyer.limit(NBR, SIDE_SELL, 2600, 1);
    assert_eq!(buyer.rejected().2, "ACCOUNT_NOT_ACTIVE");
}

#[test]
fn cash_movements_and_mass_cancels_are_journaled_and_refused_when_they_must_be() {
    let dir = scratch("admin-cash", QUICK);
    let mut venue = Venue::start(&dir);
    // Buyer 1001 has 5,000,000 USD: it cannot withdraw more ...
    let (code, last) = ops(&venue, &["withdraw-cash", "1001", "5000000.01"]);
    assert_eq!(
        (code, last.as_str()),
        (1, "ok=false reason=INSUFFICIENT_FUNDS")
    );
    // ... and after withdrawing all of it, its buy finds no cash.
    assert_eq!(ops(&venue, &["withdraw-cash", "1001", "5000000"]).0, 0);
    let mut buyer = venue.login(1001);
    let buy = |buyer: &mut crate::harness::Client| {
        buyer.buy_scoped(NBR, TIF_GTC, 2500, 10, vec![line(3, 1, 10)])
    };
    let first = buy(&mut buyer);
    assert_eq!(buyer.rejected(), (first, 0, "INSUFFICIENT_FUNDS"));
    drop(buyer);
    venue.kill9();

    let venue = Venue::start(&dir);
    let mut buyer = venue.login(1001);
    buyer.next_client_order_id = 2;
    let second = buy(&mut buyer);
    assert_eq!(buyer.rejected(), (second, 0, "INSUFFICIENT_FUNDS"));
    assert_eq!(ops(&venue, &["deposit-cash", "1001", "1000.00"]).0, 0);
    let third = buy(&mut buyer);
    let order_id = buyer.accepted(third);
    // A mass cancel of the account's orders, through the admin port.
    let (code, last) = ops(&venue, &["mass-cancel", "--account", "1001"]);
    assert_eq!(code, 0, "{last}");
    let cancelled = buyer.expect("cancelled", |m| match m {
        VenueMessage::Cancelled {
            order_id: id,
            reason,
            ..
        } => Some((*id, *reason)),
        _ => None,
    });
    assert_eq!(cancelled, (order_id, 5));
    assert_eq!(
        ops(&venue, &["deposit-cash", "1001", "0"]).1,
        "ok=false reason=INVALID_REQUEST"
    );
    assert_eq!(
        ops(&venue, &["deposit-cash", "9999", "5"]).1,
        "ok=false reason=UNKNOWN_ACCOUNT"
    );
}

/// Sends raw bytes to the admin port and reads one reply.
fn raw(venue: &Venue, bytes: &[u8]) -> AdminReply {
    let mut stream = TcpStream::connect(&venue.admin).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(bytes).unwrap();
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Ok(Some((payload, _))) = frame::split(&buffer, 1 << 20) {
            return frame::decode(payload).unwrap();
        }
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "closed without a reply");
        buffer.extend_from_slice(&chunk[..n]);
    }
}

fn refusal(reply: &AdminReply) -> &'static str {
    match reply {
        AdminReply::Refused { reason, .. } => reject_name(*reason),
        other => panic!("not refused: {other:?}"),
    }
}

fn request(ts_ns: u64, nonce: u64, verb: AdminVerb) -> AdminRequest {
    AdminRequest {
        operator: "ops".into(),
        ts_ns,
        nonce,
        reason: "test".into(),
        verb,
    }
}

#[test]
fn bad_requests_are_refused_with_their_reason_and_the_venue_carries_on() {
    let dir = scratch("admin-refusals", QUICK);
    let venue = Venue::start(&dir);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let halt = || AdminVerb::Halt { symbol: None };
    let key = b"demo-ops-key";
    // Unsigned.
    let unsigned = Signed {
        request: request(now, 1, halt()),
        mac: [0; 32],
    };
    assert_eq!(
        refusal(&raw(&venue, &frame::encode(&unsigned))),
        "BAD_SIGNATURE"
    );
    // Signed with another key.
    let forged = admin::sign(request(now, 2, halt()), b"not-the-ops-key");
    assert_eq!(
        refusal(&raw(&venue, &frame::encode(&forged))),
        "BAD_SIGNATURE"
    );
    // Unknown operator.
    let mut stranger = request(now, 3, halt());
    stranger.operator = "mallory".into();
    let stranger = admin::sign(stranger, key);
    assert_eq!(
        refusal(&raw(&venue, &frame::encode(&stranger))),
        "UNKNOWN_OPERATOR"
    );
    // Stale: a minute old.
    let stale = admin::sign(request(now - 60_000_000_000, 4, halt()), key);
    assert_eq!(
        refusal(&raw(&venue, &frame::encode(&stale))),
        "STALE_REQUEST"
    );
    // Replayed: the second sending of a good request.
    let status = admin::sign(request(now, 5, AdminVerb::Status), key);
    assert!(matches!(
        raw(&venue, &frame::encode(&status)),
        AdminReply::Status { .. }
    ));
    assert_eq!(
        refusal(&raw(&venue, &frame::encode(&status))),
        "REPLAYED_REQUEST"
    );
    // Outside the role: read-only verbs are all a compliance officer has
    // besides KYC.
    let mut officer = request(
        now,
        6,
        AdminVerb::DepositCash {
            account: 1001,
            amount_micros: 1,
        },
    );
    officer.operator = "compliance".into();
    let officer = admin::sign(officer, b"demo-compliance-key");
    assert_eq!(
        refusal(&raw(&venue, &frame::encode(&officer))),
        "NOT_PERMITTED"
    );
    // Malformed: random bytes in a frame.
    let mut garbage = vec![8, 0, 0, 0];
    garbage.extend_from_slice(&[0xff; 8]);
    assert_eq!(refusal(&raw(&venue, &garbage)), "INVALID_REQUEST");
    // The venue is unharmed: nothing was halted, trading goes on.
    let mut maker = venue.login(3001);
    let id = maker.limit(NBR, SIDE_SELL, 2500, 1);
    maker.accepted(id);
    let (code, last) = ops(&venue, &["status"]);
    assert_eq!(code, 0, "{last}");
}

#[test]
fn a_member_suspended_under_load_loses_every_open_order_and_reaches_no_book_again() {
    use tonnex_engine::journal::{dump, recover, RecoverOptions};
    use tonnex_loadtest::run::run;

    let dir = scratch("admin-suspend-load", QUICK);
    let mut venue = Venue::start(&dir);
    let options = crate::harness::load_options(&venue, 4000, 3.0, 5);
    let load = std::thread::spawn(move || run(&options));
    std::thread::sleep(Duration::from_millis(1200));
    let (code, last) = ops(
        &venue,
        &[
            "kyc",
            "3001",
            "suspended",
            "--reason",
            "kill switch under load",
        ],
    );
    assert_eq!(code, 0, "{last}");
    let report = load.join().unwrap().unwrap();
    // The load test saw 3001's session end; the other three traded on.
    assert!(
        report.error_notes.iter().any(|n| n.contains("3001")),
        "{:?}",
        report.error_notes
    );
    assert!(report.acked > 1000);
    assert!(venue.sigterm().success());

    let journal = dir.join("journal");
    let mut records = Vec::new();
    dump(&journal, |line| records.push((line.seq, line.text))).unwrap();
    let suspended_at = records
        .iter()
        .find(|(_, text)| {
            text.starts_with("ADMIN") && text.contains("Kyc { account: 3001, status: 2 }")
        })
        .map(|&(seq, _)| seq)
        .expect("the suspension is journaled");
    let cancel = records
        .iter()
        .find(|(seq, text)| *seq > suspended_at && text.contains("MASS_CANCEL account=3001"))
        .expect("its open orders are cancelled in the same breath");
    assert_eq!(cancel.0, suspended_at + 1);
    // No order of 3001 was journaled for a book after its suspension.
    let later: Vec<&(u64, String)> = records
        .iter()
        .filter(|(seq, text)| {
            *seq > suspended_at && text.starts_with("NEW") && text.contains(" account=3001 ")
        })
        .collect();
    assert!(later.is_empty(), "{later:?}");
    // And none rests.
    let state = recover(
        &journal,
        RecoverOptions {
            use_snapshot: true,
            track_orders: false,
            config: tonnex_engine::EngineConfig::default(),
        },
    )
    .unwrap()
    .state;
    assert!(state.image().orders.iter().all(|o| o.account != 3001));
}

#[test]
fn lots_deposited_at_runtime_are_checked_like_lots_and_journaled_with_their_serials() {
    let dir = scratch("admin-lots", QUICK);
    let mut venue = Venue::start(&dir);
    let header = std::fs::read_to_string(dir.join("lots-nbr.csv")).unwrap();
    let header = header.lines().next().unwrap();
    let export = dir.join("fresh-lots.csv");
    std::fs::write(
        &export,
        format!(
            "{header}\n\
             Verra,VCS-7,VCS-7-2024-0001,VCS-7-2024-0100,100,2024,VM0047,removal,nature-based,true,false,false,2001\n\
             Verra,VCS-2451,VCS-2451-2023-000049999,VCS-2451-2023-000050001,3,2023,VM0047,removal,nature-based,true,false,false,2001\n"
        ),
    )
    .unwrap();
    // Seller 2001 holds the 50,000 t of its demo lot on NBR: no more.
    let mut seller = venue.login(2001);
    seller.limit(NBR, SIDE_SELL, 3000, 50_100);
    assert_eq!(seller.rejected().2, "INSUFFICIENT_CREDITS");
    let lots = export.to_str().unwrap();
    let deposit = ["deposit-lots", lots, "--instrument", "NBR-2024.CCP"];
    let (code, stdout) = admin_output(&venue, "ops", "demo-ops-key", &deposit);
    assert_eq!(code, 0, "{stdout}");
    // One lot in, the overlapping one refused, naming its line and block.
    assert!(
        stdout.contains("deposited 1 lots (100 t)")
            && stdout.contains("line 3: LOT_SERIALS_OVERLAP")
            && stdout.contains("lots-nbr.csv line 2"),
        "{stdout}"
    );
    let id = seller.limit(NBR, SIDE_SELL, 3000, 50_100);
    seller.accepted(id);
    // The fill stream names the lot for settlement: after the 25 start-up
    // records (3 instruments, 7 cash deposits, 15 lots), record 26.
    let records = crate::harness::read_stream(&venue.fill_stream, 26, 1);
    assert!(
        matches!(
            &records[0].event,
            StreamEvent::CreditDeposit { account: 2001, qty: 100, lot: Some(lot), .. }
                if lot.project_id == "VCS-7" && lot.serial_end == "VCS-7-2024-0100"
        ),
        "{records:?}"
    );
    drop(seller);
    venue.kill9();

    // Across a restart the same export is refused whole: its block is in
    // the journal.
    let venue = Venue::start(&dir);
    let (code, stdout) = admin_output(&venue, "ops", "demo-ops-key", &deposit);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.lines().last().unwrap() == "ok=false reason=LOT_SERIALS_OVERLAP",
        "{stdout}"
    );
    // And a compliance officer may not deposit at all.
    let (code, last) = admin_as(
        &venue,
        "compliance",
        "demo-compliance-key",
        &[
            "deposit-lots",
            export.to_str().unwrap(),
            "--instrument",
            "NBR-2024.CCP",
        ],
    );
    assert_eq!((code, last.as_str()), (1, "ok=false reason=NOT_PERMITTED"));
}

#[test]
fn a_rules_reload_takes_effect_from_its_journal_record_and_keeps_the_claims() {
    let dir = scratch("admin-rules", QUICK);
    let mut venue = Venue::start(&dir);
    let bid = |client: &mut crate::harness::Client, price_ticks: i64, qty: u64, line: ScopeLine| {
        client.buy_scoped(NBR, TIF_GTC, price_ticks, qty, vec![line])
    };
    // Buyer 1003 claims its whole 800 t of scope 1; buyer 1001 bids 25.00
    // on the recognised pathway (floor 20.00): accepted.
    let mut engaged = venue.login(1003);
    let id = bid(&mut engaged, 100, 800, line(1, 0, 800));
    engaged.accepted(id);
    let mut recognised = venue.login(1001);
    let id = bid(&mut recognised, 2500, 10, line(3, 1, 10));
    recognised.accepted(id);
    // The venue raises the recognised floor to 30.00 in version 2.1.
    let rules = std::fs::read_to_string(dir.join("rules.toml"))
        .unwrap()
        .replace("version = \"venue-strict-2026.1\"", "version = \"2.1\"")
        .replace("floor_usd = \"20.00\"", "floor_usd = \"30.00\"");
    std::fs::write(dir.join("rules.toml"), rules).unwrap();
    let (code, last) = ops(&venue, &["reload-rules", "--reason", "floor raised"]);
    assert_eq!(code, 0, "{last}");
    // The same bid is now below the floor: held for an attestation.
    let id = bid(&mut recognised, 2500, 10, line(3, 1, 10));
    recognised.expect("held", |m| match m {
        VenueMessage::OrderHeld {
            client_order_id, ..
        } => (*client_order_id == id).then_some(()),
        _ => None,
    });
    // The claims were kept: 1003 still has no scope 1 left.
    let refused = bid(&mut engaged, 100, 1, line(1, 0, 1));
    assert_eq!(engaged.rejected(), (refused, 0, "SCOPE_EXCEEDS_INVENTORY"));
    drop((engaged, recognised));
    venue.kill9();

    // After a restart, decisions still name 2.1 (the journal's record) and
    // a bid at 31.00 is accepted under it.
    let venue = Venue::start(&dir);
    let mut recognised = venue.login(1001);
    recognised.next_client_order_id = 10;
    let id = bid(&mut recognised, 3100, 5, line(3, 1, 5));
    let order_id = recognised.accepted(id);
    let records = crate::harness::read_stream(&venue.fill_stream, 1, 28);
    let decision =
        crate::harness::buy_decision(&records, order_id).expect("the buy's decision on the stream");
    assert_eq!(decision.rules_version, "2.1");
    assert_eq!(decision.floor_ticks, 3000);
    // Both versions it decided under are kept beside the journal.
    let kept: Vec<String> = std::fs::read_dir(dir.join("journal/rules"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(kept.len(), 2);
    assert!(kept.iter().any(|text| text.contains("version = \"2.1\"")));
    assert!(kept
        .iter()
        .any(|text| text.contains("version = \"venue-strict-2026.1\"")));
}

#[test]
fn an_account_without_a_secret_stops_the_venue_naming_the_key() {
    let dir = scratch("no-secret", QUICK);
    let config = std::fs::read_to_string(dir.join("venue.toml"))
        .unwrap()
        .replace("secret = \"demo-1002\"\n", "");
    std::fs::write(dir.join("venue.toml"), config).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_tonnex-venue"))
        .args(["run", "--config"])
        .arg(dir.join("venue.toml"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("account[2].secret") && stderr.contains("account 1002 has no login secret"),
        "{stderr}"
    );
}

#[test]
fn under_approval_an_attestation_counts_once_a_compliance_officer_approves_it() {
    let dir = scratch("admin-approve", QUICK);
    let config = std::fs::read_to_string(dir.join("venue.toml"))
        .unwrap()
        .replace(
            "profiles = \"profiles.json\"\n",
            "profiles = \"profiles.json\"\nattestations = \"approved\"\n",
        );
    std::fs::write(dir.join("venue.toml"), config).unwrap();
    let mut venue = Venue::start(&dir);
    let mut buyer = venue.login(1001);
    let bid = |buyer: &mut crate::harness::Client, price_ticks: i64| {
        buyer.buy_scoped(NBR, TIF_GTC, price_ticks, 10, vec![line(3, 1, 10)])
    };
    // Below the 20.00 floor: held; the attestation is taken but does not
    // count yet.
    let held = bid(&mut buyer, 1600);
    buyer.expect("held", |m| {
        matches!(m, VenueMessage::OrderHeld { client_order_id, .. } if *client_order_id == held)
            .then_some(())
    });
    buyer.send(&ClientMessage::SubmitAttestation {
        id: "ACME-ICP-9".into(),
        internal_price_micros: 25_000_000,
        reporting_year: 2026,
    });
    let rechecked = buyer.expect("accepted for review", |m| match m {
        VenueMessage::AttestationAccepted { rechecked, .. } => Some(*rechecked),
        _ => None,
    });
    assert_eq!(rechecked, 0);
    // A pending id stays used.
    buyer.send(&ClientMessage::SubmitAttestation {
        id: "ACME-ICP-9".into(),
        internal_price_micros: 25_000_000,
        reporting_year: 2026,
    });
    assert!(matches!(
        buyer.recv(),
        Some(VenueMessage::AttestationRefused { .. })
    ));
    drop(buyer);
    venue.kill9();

    // Across a restart it is still pending; an operator may not approve,
    // an approval needs the evidence, and the compliance officer approves.
    let venue = Venue::start(&dir);
    let mut buyer = venue.login(1001);
    buyer.next_client_order_id = 10;
    let evidence = "ab".repeat(32);
    let approve = [
        "attestation",
        "approve",
        "1001",
        "ACME-ICP-9",
        "--evidence",
        &evidence,
    ];
    assert_eq!(ops(&venue, &approve).1, "ok=false reason=NOT_PERMITTED");
    let officer = |args: &[&str]| admin_as(&venue, "compliance", "demo-compliance-key", args);
    assert_eq!(
        officer(&[
            "attestation",
            "approve",
            "1001",
            "ACME-ICP-9",
            "--evidence",
            "short"
        ])
        .1,
        "ok=false reason=INVALID_REQUEST"
    );
    let (code, last) = officer(&approve);
    assert_eq!(code, 0, "{last}");
    // The held order is released under it, and its decision names the
    // officer (the certificate will).
    let order_id = buyer.accepted(held);
    let records = crate::harness::read_stream(&venue.fill_stream, 1, 26);
    let decision = crate::harness::buy_decision(&records, order_id).expect("the decision");
    assert_eq!(decision.attestation.as_deref(), Some("ACME-ICP-9"));
    assert_eq!(decision.attestation_approver.as_deref(), Some("compliance"));
    // Revoked: the next bid below the floor is held again.
    let (code, last) = officer(&["attestation", "revoke", "1001", "ACME-ICP-9"]);
    assert_eq!(code, 0, "{last}");
    assert!(buyer.expect("told of the revocation", |m| match m {
        VenueMessage::AttestationRefused { id, .. } => Some(id == "ACME-ICP-9"),
        _ => None,
    }));
    let again = bid(&mut buyer, 1600);
    buyer.expect("held again", |m| {
        matches!(m, VenueMessage::OrderHeld { client_order_id, .. } if *client_order_id == again)
            .then_some(())
    });
    assert_eq!(
        officer(&["attestation", "revoke", "1001", "ACME-ICP-9"]).1,
        "ok=false reason=INVALID_REQUEST"
    );
}

#[test]
fn an_instrument_listed_at_runtime_trades_takes_its_lots_and_is_listed_again_after_kill_9() {
    let dir = scratch("admin-list", QUICK);
    let mut venue = Venue::start(&dir);
    let list = [
        "add-instrument",
        "BIOCHAR-2025.REM",
        "--sub-ledger",
        "ccp_removal",
        "--tick-usd",
        "0.05",
        "--min-price-usd",
        "1.00",
        "--max-price-usd",
        "800",
        "--ccp",
        "true",
        "--category",
        "removal",
        "--min-vintage",
        "2024",
    ];
    let (code, last) = ops(&venue, &list);
    assert_eq!(code, 0, "{last}");
    assert_eq!(ops(&venue, &list).1, "ok=false reason=INVALID_INSTRUMENT");
    // Lots go in under its rule: a 2023 vintage fails it, a 2025 one passes.
    let header = std::fs::read_to_string(dir.join("lots-nbr.csv")).unwrap();
    let header = header.lines().next().unwrap();
    let export = dir.join("biochar.csv");
    std::fs::write(
        &export,
        format!(
            "{header}\n\
             Puro.earth,PURO-BC-1,PURO-BC-2025-001,PURO-BC-2025-500,500,2025,Puro-Biochar,removal,technological,true,false,false,2001\n\
             Puro.earth,PURO-BC-2,PURO-BC-2023-001,PURO-BC-2023-100,100,2023,Puro-Biochar,removal,technological,true,false,false,2001\n"
        ),
    )
    .unwrap();
    let (code, out) = admin_output(
        &venue,
        "ops",
        "demo-ops-key",
        &[
            "deposit-lots",
            export.to_str().unwrap(),
            "--instrument",
            "BIOCHAR-2025.REM",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("deposited 1 lots (500 t)") && out.contains("LOT_NOT_ELIGIBLE"),
        "{out}"
    );
    // A new session's reference data lists it as instrument 3, and it trades.
    let mut seller = venue.connect();
    seller.login(2001, "demo-2001", 0, false);
    let id = seller.limit(3, SIDE_SELL, 1000, 500);
    seller.accepted(id);
    let mut maker = venue.login(3001);
    let bid = maker.limit(3, SIDE_BUY, 1000, 200);
    maker.accepted(bid);
    maker.expect("a fill on the new book", |m| {
        matches!(
            m,
            VenueMessage::Fill {
                instrument: 3,
                qty: 200,
                ..
            }
        )
        .then_some(())
    });
    drop((seller, maker));
    venue.kill9();

    let venue = Venue::start(&dir);
    let mut maker = venue.connect();
    maker.login(3001, "demo-3001", 0, false);
    maker.next_client_order_id = 10;
    // Its book came back: the seller's 300 t rest there.
    let id = maker.limit(3, SIDE_BUY, 1000, 300);
    maker.accepted(id);
    maker.expect("the rest fills", |m| {
        matches!(
            m,
            VenueMessage::Fill {
                instrument: 3,
                qty: 300,
                ..
            }
        )
        .then_some(())
    });
    let (_, status) = admin_output(&venue, "ops", "demo-ops-key", &["--json", "status"]);
    assert!(status.contains("BIOCHAR-2025.REM"), "{status}");
}

#[test]
fn a_member_added_at_runtime_is_onboarded_by_kyc_and_logs_in_after_kill_9() {
    let dir = scratch("admin-account", QUICK);
    let mut venue = Venue::start(&dir);
    let add = [
        "add-account",
        "4001",
        "--name",
        "Delta Trading",
        "--role",
        "market_maker",
        "--secret",
        "delta-secret-4001",
    ];
    let (code, last) = ops(&venue, &add);
    assert_eq!(code, 0, "{last}");
    assert_eq!(ops(&venue, &add).1, "ok=false reason=INVALID_REQUEST");
    // It logs in with its secret, but trades only once active.
    let mut member = venue.connect();
    member.login(4001, "delta-secret-4001", 0, false);
    member.limit(NBR, SIDE_SELL, 2500, 1);
    assert_eq!(member.rejected().2, "ACCOUNT_NOT_ACTIVE");
    assert_eq!(ops(&venue, &["kyc", "4001", "active"]).0, 0);
    assert_eq!(ops(&venue, &["deposit-cash", "4001", "10000"]).0, 0);
    let id = member.limit(NBR, SIDE_BUY, 2400, 2);
    member.accepted(id);
    drop(member);
    venue.kill9();

    // After a restart: its secret still works, a wrong one does not, and
    // the journal holds only its hash.
    let venue = Venue::start(&dir);
    assert!(matches!(
        {
            let mut client = venue.connect();
            client.send(&ClientMessage::Login {
                account: 4001,
                secret: "delta-secret-4002".into(),
                last_seen_seq: 0,
                cancel_on_disconnect: false,
            });
            client.recv()
        },
        Some(VenueMessage::LoginRejected { .. })
    ));
    let mut member = venue.connect();
    member.login(4001, "delta-secret-4001", 2, false);
    member.next_client_order_id = 3;
    let id = member.limit(NBR, SIDE_BUY, 2400, 1);
    member.accepted(id);
    let dumped = crate::harness::journal_text(&dir);
    assert!(
        dumped.contains("AccountAdded") && dumped.contains("$argon2"),
        "{dumped}"
    );
    assert!(!dumped.contains("delta-secret-4001"));
}

#[test]
fn credits_are_withdrawn_only_from_the_free_holding_and_stay_withdrawn_after_kill_9() {
    let dir = scratch("admin-credits", QUICK);
    let mut venue = Venue::start(&dir);
    // Seller 2001 holds 50,000 t of NBR; 1,000 t rest in a sell.
    let mut seller = venue.login(2001);
    seller.rest(NBR, SIDE_SELL, 3000, 1_000);
    let withdraw = |venue: &Venue, tonnes: &str| {
        ops(venue, &["withdraw-credits", "2001", "NBR-2024.CCP", tonnes])
    };
    // The resting 1,000 t are held: 49,001 is more than the free 49,000.
    assert_eq!(
        withdraw(&venue, "49001").1,
        "ok=false reason=INSUFFICIENT_CREDITS"
    );
    assert_eq!(withdraw(&venue, "48990").0, 0);
    drop(seller);
    venue.kill9();

    let venue = Venue::start(&dir);
    let mut seller = venue.login(2001);
    seller.next_client_order_id = 2;
    seller.limit(NBR, SIDE_SELL, 3000, 11);
    assert_eq!(seller.rejected().2, "INSUFFICIENT_CREDITS");
    let id = seller.limit(NBR, SIDE_SELL, 3000, 10);
    seller.accepted(id);
    assert_eq!(withdraw(&venue, "0").1, "ok=false reason=INVALID_REQUEST");
    // The fill stream tells settlement (records 26 and on: the demo's 25
    // start-up records, then this withdrawal).
    let records = crate::harness::read_stream(&venue.fill_stream, 26, 1);
    assert!(
        matches!(
            records[0].event,
            StreamEvent::CreditWithdrawal {
                account: 2001,
                qty: 48_990,
                ..
            }
        ),
        "{records:?}"
    );
}
