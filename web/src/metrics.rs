//! The console's live panel: the venue's `GET /metrics` read twice, and
//! what happened in between (orders per second, ack latency percentiles
//! from the histogram's bucket counts).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// One scrape: when, orders so far, and the ack histogram's cumulative
/// buckets (upper bound in seconds, count).
#[derive(Clone, Debug, Default)]
pub struct Sample {
    at: Option<Instant>,
    orders: f64,
    buckets: Vec<(f64, f64)>,
}

/// The previous scrape, for the rates.
pub type LiveState = Mutex<Sample>;

fn scrape(addr: &str) -> Result<String, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("metrics {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| format!("metrics {addr}: {e}"))?;
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .ok_or_else(|| format!("metrics {addr}: no body"))
}

/// Samples of `text` (Prometheus text format): (name, labels, value).
fn samples(text: &str) -> impl Iterator<Item = (&str, &str, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let value: f64 = value.parse().ok()?;
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            Some((name, labels, value))
        })
}

fn sum(text: &str, name: &str) -> f64 {
    samples(text).filter(|s| s.0 == name).map(|s| s.2).sum()
}

/// The value below which `q` of the observations in `buckets` (cumulative
/// counts by upper bound) fall: the bucket's upper bound.
fn quantile(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    buckets.iter().find(|b| b.1 >= total * q).map(|b| b.0)
}

/// Scrapes `addr` and answers with what changed since the last scrape.
pub fn live(state: &LiveState, addr: &str) -> Result<Value, String> {
    let text = scrape(addr)?;
    let mut buckets: Vec<(f64, f64)> = samples(&text)
        .filter(|s| s.0 == "tonnex_ack_latency_seconds_bucket")
        .filter_map(|(_, labels, count)| {
            let le = labels
                .split(',')
                .find_map(|l| l.strip_prefix("le=\""))?
                .trim_end_matches('"');
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((bound, count))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let now = Sample {
        at: Some(Instant::now()),
        orders: sum(&text, "tonnex_orders_total"),
        buckets,
    };
    let mut previous = state.lock().unwrap_or_else(|p| p.into_inner());
    let seconds = previous.at.map_or(0.0, |at| at.elapsed().as_secs_f64());
    let delta: Vec<(f64, f64)> = now
        .buckets
        .iter()
        .map(|&(bound, count)| {
            let before = previous
                .buckets
                .iter()
                .find(|b| b.0 == bound)
                .map_or(0.0, |b| b.1);
            (bound, count - before)
        })
        .collect();
    let micros = |q| {
        quantile(&delta, q)
            .filter(|v: &f64| v.is_finite())
            .map(|v| v * 1e6)
    };
    let answer = json!({
        "orders_per_s": if seconds > 0.0 { (now.orders - previous.orders).max(0.0) / seconds } else { 0.0 },
        "orders_total": now.orders,
        "ack_p50_us": micros(0.5),
        "ack_p99_us": micros(0.99),
        "sessions": sum(&text, "tonnex_sessions"),
        "held_orders": sum(&text, "tonnex_held_orders"),
        "durable_lag": sum(&text, "tonnex_journal_durable_lag"),
        "queue_depth": sum(&text, "tonnex_engine_queue_depth"),
    });
    *previous = now;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_cumulative_buckets() {
        let buckets = [
            (0.0001, 50.0),
            (0.001, 99.0),
            (0.01, 100.0),
            (f64::INFINITY, 100.0),
        ];
        assert_eq!(quantile(&buckets, 0.5), Some(0.0001));
        assert_eq!(quantile(&buckets, 0.99), Some(0.001));
        assert_eq!(quantile(&[(1.0, 0.0)], 0.5), None);
    }

    #[test]
    fn samples_are_read_with_their_labels() {
        let text = "# HELP x\ntonnex_orders_total{type=\"limit\",outcome=\"accepted\"} 7\ntonnex_sessions 2\n";
        assert_eq!(sum(text, "tonnex_orders_total"), 7.0);
        assert_eq!(sum(text, "tonnex_sessions"), 2.0);
    }
}
