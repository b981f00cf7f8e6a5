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
