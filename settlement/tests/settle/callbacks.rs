//! Registry callbacks over HTTP (signed, replayed, forged, unknown) and the
//! simulated registry as its own process, with and without callbacks.

use super::*;

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
        trades_in(&dir, &["settled"]) == 1 && certificate_files_written(&dir)
    });
    let (ok, json, _) = audit(&dir);
    assert!(ok, "{json:#}");
    assert_eq!(state_count(&json, "awaiting_confirmations"), 1);
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
