//! What the registry refuses, times out, answers for nothing, or is down
//! for, and withdrawals: each ends in a defined state, shown by `report`.

use super::*;

#[test]
fn refused_transfers_and_timeouts_unwind_both_legs() {
    let dir = scratch("unwind");
    let venue = fake_venue(stream(20, 400));
    let _settlement = Settlement::start(&venue, &dir, &["--fail-pct", "25"]);
    wait_for(20, "every trade final", || {
        trades_in(&dir, &["settled", "retired", "unwound"]) == 402
            && certificate_files_written(&dir)
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
        trades_in(&dir, &["settled", "retired"]) == 22 && certificate_files_written(&dir)
    });
    let _ = sim.kill();
    let _ = sim.wait();
    let (ok, json, _) = audit(&dir);
    assert!(ok, "{json:#}");
    assert_eq!(state_count(&json, "unwound"), 0);
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
