//! `GET /metrics` during a load test, parsed by the reference Prometheus
//! text parser (`scripts/metrics.py`, the prometheus_client package), with
//! counters that agree with the load test's own report.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use tonnex_loadtest::run::run;

use crate::harness::{scratch, Venue, QUICK};

/// One HTTP GET; returns the status line and the body.
fn get(addr: &str, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

/// Every sample of a scrape, as the reference parser reads it.
fn parse(text: &str) -> Vec<serde_json::Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/metrics.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the Prometheus parser refused the scrape (is prometheus_client installed? scripts/test.sh installs it): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn sum(samples: &[serde_json::Value], name: &str, label: Option<(&str, &str)>) -> f64 {
    samples
        .iter()
        .filter(|s| s["name"] == name)
        .filter(|s| label.is_none_or(|(k, v)| s["labels"][k] == v))
        .map(|s| s["value"].as_f64().unwrap())
        .sum()
}

#[test]
fn metrics_scraped_during_a_load_test_parse_and_agree_with_its_report() {
    let dir = scratch("metrics", QUICK);
    let venue = Venue::start(&dir);
    let options = crate::harness::load_options(&venue, 4000, 2.0, 11);
    let load = std::thread::spawn(move || run(&options));
    std::thread::sleep(Duration::from_millis(1200));
    let (status, during) = get(&venue.metrics, "/metrics");
    assert!(status.contains("200"), "{status}");
    let during = parse(&during);
    assert!(sum(&during, "tonnex_journal_seq", None) > 0.0);
    assert!(
        sum(
            &during,
            "tonnex_orders_total",
            Some(("outcome", "accepted"))
        ) > 0.0
    );
    let report = load.join().unwrap().unwrap();
    assert_eq!(report.errors, 0, "{:?}", report.error_notes);
    std::thread::sleep(Duration::from_millis(1100));
    let (_, after) = get(&venue.metrics, "/metrics");
    let after = parse(&after);
    assert_eq!(
        sum(&after, "tonnex_orders_total", Some(("outcome", "accepted"))) as u64,
        report.acked
    );
    assert_eq!(
        sum(&after, "tonnex_orders_total", Some(("outcome", "rejected"))) as u64,
        report.rejected
    );
    let rejects: f64 = report.rejects_by_reason.values().map(|&n| n as f64).sum();
    assert_eq!(sum(&after, "tonnex_rejects_total", None), rejects);
    assert!(sum(&after, "tonnex_ack_latency_seconds_count", None) as u64 >= report.acked);
    assert_eq!(sum(&after, "tonnex_sessions", None), 0.0);
    assert_eq!(
        sum(&after, "tonnex_engine_queue_depth", None),
        0.0,
        "nothing waits once the load is over"
    );
    // Anything but GET /metrics is a 404.
    assert!(get(&venue.metrics, "/").0.contains("404"));
}
