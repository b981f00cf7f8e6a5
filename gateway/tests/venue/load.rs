//! The load test against a real venue, and what a crash under load must not lose.

use std::collections::BTreeMap;
use std::time::Duration;

use tonnex_engine::journal::{recover, OrderStatus, RecoverOptions};
use tonnex_engine::EngineConfig;
use tonnex_loadtest::run::{run, Options};

use crate::harness::{scratch, Venue, QUICK};

fn options(venue: &Venue, rate: u64, seconds: f64) -> Options {
    crate::harness::load_options(venue, rate, seconds, 7)
}

#[test]
fn the_load_test_trades_against_the_venue_and_reports_what_it_saw() {
    let dir = scratch("load", QUICK);
    let venue = Venue::start(&dir);
    let mut opts = options(&venue, 4000, 2.0);
    opts.hostile = 40;
    opts.acked_log = Some(dir.join("acked.log"));
    let report = run(&opts).unwrap();
    assert_eq!(report.errors, 0, "{:?}", report.error_notes);
    assert!(report.sent > 4000, "{}", report.sent);
    assert_eq!(report.sent, report.acked + report.rejected);
    assert!(report.fills > 0 && report.ack.count == report.sent);
    assert!(report.ack.p50_us > 0.0 && report.ack.p99_us >= report.ack.p50_us);
    assert!(report.hostile_connections >= 40);
    let logged = std::fs::read_to_string(dir.join("acked.log")).unwrap();
    assert_eq!(logged.lines().count() as u64, report.acked);
    let line = report.last_line();
    assert!(line.starts_with(&format!("sent={} acked={}", report.sent, report.acked)));
    assert!(report.json().contains("\"ack_latency\"") && report.svg().contains("<polyline"));
}

#[test]
fn every_acknowledged_order_is_in_the_journal_after_kill_9_under_load() {
    let dir = scratch("crash", QUICK);
    let mut venue = Venue::start(&dir);
    let mut opts = options(&venue, 0, 3.0);
    opts.acked_log = Some(dir.join("acked.log"));
    let load = std::thread::spawn(move || run(&opts));
    std::thread::sleep(Duration::from_millis(1200));
    venue.kill9();
    let report = load.join().unwrap().unwrap();
    assert!(report.errors > 0, "the venue died under the load test");

    let acked: Vec<u64> = std::fs::read_to_string(dir.join("acked.log"))
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert!(
        acked.len() > 1000,
        "only {} acks before the kill",
        acked.len()
    );
    let recovered = recover(
        &dir.join("journal"),
        RecoverOptions {
            use_snapshot: false,
            track_orders: true,
            config: EngineConfig::default(),
        },
    )
    .unwrap();
    let missing: Vec<u64> = acked
        .iter()
        .filter(|id| {
            !matches!(
                recovered.orders.get(id),
                Some(OrderStatus::Open | OrderStatus::Filled | OrderStatus::Cancelled)
            )
        })
        .copied()
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not recovered: {:?}",
        &missing[..missing.len().min(10)]
    );
    let statuses: BTreeMap<&str, usize> =
        recovered.orders.values().fold(BTreeMap::new(), |mut m, s| {
            *m.entry(s.as_str()).or_default() += 1;
            m
        });
    assert!(
        statuses.get("filled").copied().unwrap_or(0) > 0,
        "{statuses:?}"
    );

    // A restarted venue recovers the same records and keeps trading.
    let venue = Venue::start(&dir);
    assert_eq!(venue.recovered_records, recovered.records);
    let report = run(&options(&venue, 2000, 1.0)).unwrap();
    assert_eq!(report.errors, 0, "{:?}", report.error_notes);
}

#[test]
fn buyers_trade_beside_the_market_makers_and_each_flow_is_reported() {
    let dir = scratch("load-buyers", QUICK);
    let venue = Venue::start(&dir);
    let mut opts = options(&venue, 3000, 2.0);
    // The demo buyers that may buy on instruments 0 and 1 where the makers
    // quote (mid 25.00): Acme (Recognised, floor 20.00: NBR and DAC) and
    // Gamma (Engaged, no floor); Beta (Leadership) would need 80.00 and
    // is left out. Planned from the venue file with its rules.
    let venue_file = dir.join("venue.toml");
    opts.buyers = tonnex_loadtest::buyers::plan(&venue_file, &[0, 1], 2500, 2).unwrap();
    assert_eq!(
        opts.buyers.iter().map(|b| b.account).collect::<Vec<_>>(),
        [1001, 1003]
    );
    assert_eq!(opts.buyers[0].books.len(), 2);
    assert_eq!(opts.buyers[0].books[0].floor_ticks, 2000);
    let error = tonnex_loadtest::buyers::plan(&venue_file, &[0, 1], 2500, 3).unwrap_err();
    assert!(error.contains("has 2 buyers that may buy"), "{error}");
    let beta = tonnex_loadtest::buyers::plan(&venue_file, &[1], 9000, 3).unwrap();
    assert_eq!(beta[1].account, 1002);
    assert_eq!(beta[1].books[0].floor_ticks, 8000);
    opts.buyer_rate = 200;
    let report = run(&opts).unwrap();
    assert_eq!(report.errors, 0, "{:?}", report.error_notes);
    let [makers, buyers] = &report.flows;
    assert!(buyers.sent > 300, "{}", buyers.sent);
    // Every buyer order is answered; none is held or refused by the
    // pre-router (each is on an admitted book, at or above the floor,
    // within the inventory).
    assert_eq!(buyers.sent, buyers.acked + buyers.held + buyers.rejected);
    assert_eq!(buyers.held, 0);
    for reason in buyers.rejects_by_reason.keys() {
        assert!(
            ![
                "SCOPE_MISSING",
                "SCOPE_EXCEEDS_INVENTORY",
                "SUBLEDGER_NOT_ELIGIBLE",
                "ATTESTATION_REQUIRED",
                "FLOOR_NOT_MET"
            ]
            .contains(&reason.as_str()),
            "{:?}",
            buyers.rejects_by_reason
        );
    }
    assert_eq!(buyers.ack.count, buyers.sent);
    assert_eq!(makers.sent + buyers.sent, report.sent);
    assert!(makers.ack.count > 0 && buyers.ack.p50_us > 0.0);
    assert!(report.json().contains("\"buyer\": {\"sent\""));
    assert!(report.svg().contains("buyer order to ack"));
}
