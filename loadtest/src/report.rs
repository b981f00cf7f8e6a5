//! The load test's results: the CONTRACTS.md last line, a JSON report and
//! an SVG chart (latency by percentile, throughput over time).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;

/// Percentiles reported for each latency histogram.
const PERCENTILES: [f64; 6] = [50.0, 90.0, 99.0, 99.9, 99.99, 100.0];

/// Latency summary in microseconds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// 99.99th percentile.
    pub p9999_us: f64,
    /// Largest.
    pub max_us: f64,
    /// Mean.
    pub mean_us: f64,
    /// (percentile, µs) points for the chart.
    pub curve: Vec<(f64, f64)>,
}

impl Latency {
    /// Summarises a histogram of nanoseconds.
    #[must_use]
    pub fn of(histogram: &Histogram<u64>) -> Latency {
        let us = |ns: u64| ns as f64 / 1000.0;
        let at = |p: f64| us(histogram.value_at_percentile(p));
        let mut curve = Vec::new();
        if !histogram.is_empty() {
            // 0, 50, 75, 87.5 ... halving the distance to 100 each step.
            let mut p = 0.0;
            for _ in 0..18 {
                curve.push((p, at(p)));
                p = 100.0 - (100.0 - p) / 2.0;
            }
            curve.push((100.0, us(histogram.max())));
        }
        let [p50, p90, p99, p999, p9999, _] = PERCENTILES.map(at);
        Latency {
            count: histogram.len(),
            p50_us: p50,
            p90_us: p90,
            p99_us: p99,
            p999_us: p999,
            p9999_us: p9999,
            max_us: us(histogram.max()),
            mean_us: if histogram.is_empty() {
                0.0
            } else {
                histogram.mean() / 1000.0
            },
            curve,
        }
    }

    fn json(&self) -> String {
        format!(
            "{{\"count\": {}, \"p50_us\": {:.1}, \"p90_us\": {:.1}, \"p99_us\": {:.1}, \"p999_us\": {:.1}, \"p9999_us\": {:.1}, \"max_us\": {:.1}, \"mean_us\": {:.1}}}",
            self.count,
            self.p50_us,
            self.p90_us,
            self.p99_us,
            self.p999_us,
            self.p9999_us,
            self.max_us,
            self.mean_us
        )
    }
}

/// `"NAME": count, ...` of a rejects-by-reason map.
fn reasons_json(reasons: &BTreeMap<String, u64>) -> String {
    reasons
        .iter()
        .map(|(k, v)| format!("\"{k}\": {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One flow's share of a run (market makers, or corporate buyers).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Flow {
    /// New orders sent.
    pub sent: u64,
    /// Accepted.
    pub acked: u64,
    /// Held by the pre-router (an attestation needed).
    pub held: u64,
    /// Rejected (new orders).
    pub rejected: u64,
    /// Rejections by reason name (new orders, cancels and replaces).
    pub rejects_by_reason: BTreeMap<String, u64>,
    /// Order to its answer, from the scheduled send time.
    pub ack: Latency,
}

impl Flow {
    fn json(&self) -> String {
        let reasons = reasons_json(&self.rejects_by_reason);
        format!(
            "{{\"sent\": {}, \"acked\": {}, \"held\": {}, \"rejected\": {}, \"rejects_by_reason\": {{{reasons}}}, \"ack_latency\": {}}}",
            self.sent,
            self.acked,
            self.held,
            self.rejected,
            self.ack.json()
        )
    }

    /// The summary line of a flow: `NAME sent=.. acked=.. rejected=.. p50_us=.. p99_us=..`.
    #[must_use]
    pub fn line(&self, name: &str) -> String {
        format!(
            "flow {name} sent={} acked={} held={} rejected={} p50_us={:.1} p99_us={:.1} p999_us={:.1}",
            self.sent, self.acked, self.held, self.rejected, self.ack.p50_us, self.ack.p99_us, self.ack.p999_us
        )
    }
}

/// Everything a run measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// Venue address.
    pub venue: String,
    /// Sessions.
    pub sessions: usize,
    /// Target new-order rate per second (0: closed loop).
    pub rate: u64,
    /// Seconds of sending.
    pub duration_s: f64,
    /// Seed of the order flow.
    pub seed: u64,
    /// New orders sent.
    pub sent: u64,
    /// New orders accepted.
    pub acked: u64,
    /// New orders rejected.
    pub rejected: u64,
    /// Rejections by reason name (new orders, cancels and replaces).
    pub rejects_by_reason: BTreeMap<String, u64>,
    /// Fill messages received.
    pub fills: u64,
    /// Protocol errors, disconnects and orders left unanswered.
    pub errors: u64,
    /// What the errors were.
    pub error_notes: Vec<String>,
    /// Every message sent (orders, cancels, replaces, heartbeats).
    pub messages_sent: u64,
    /// Cancel and replace requests sent.
    pub cancels_and_replaces: u64,
    /// Answered new orders per second of sending.
    pub throughput_per_s: u64,
    /// Order to acknowledgement (accept or reject), from the scheduled send time.
    pub ack: Latency,
    /// Taker order to its first fill, from the scheduled send time.
    pub fill: Latency,
    /// Answered new orders in each second of the run.
    pub timeline: Vec<u64>,
    /// Resident memory of the load test at start and end, KiB.
    pub rss_kb: (u64, u64),
    /// Hostile connections opened during the run.
    pub hostile_connections: u64,
    /// Corporate buyer sessions (`--buyers`).
    pub buyers: usize,
    /// Per flow: market makers, then buyers.
    pub flows: [Flow; 2],
    /// Market-data feed subscribers (`--md`).
    pub md: Option<crate::md_client::FeedReport>,
    /// Failovers followed (`--venue A,B,C`).
    pub failovers: Vec<crate::run::Failover>,
}

impl Report {
    /// The CONTRACTS.md last line.
    #[must_use]
    pub fn last_line(&self) -> String {
        format!(
            "sent={} acked={} rejected={} fills={} errors={} throughput_per_s={} p50_us={:.1} p99_us={:.1} p999_us={:.1} max_us={:.1}",
            self.sent,
            self.acked,
            self.rejected,
            self.fills,
            self.errors,
            self.throughput_per_s,
            self.ack.p50_us,
            self.ack.p99_us,
            self.ack.p999_us,
            self.ack.max_us
        )
    }

    /// One line per failover followed: `failover at_s=X outage_ms=N
    /// first_ack_ms=N unanswered=N replayed=N resumed=yes|no leader=ADDR`.
    #[must_use]
    pub fn failover_lines(&self) -> Vec<String> {
        self.failovers
            .iter()
            .map(|f| {
                format!(
                    "failover at_s={:.3} outage_ms={} first_ack_ms={} unanswered={} replayed={} resumed={} leader={}",
                    f.at_s,
                    f.outage_ms,
                    f.first_ack_ms,
                    f.unanswered,
                    f.replayed,
                    if f.resumed { "yes" } else { "no" },
                    f.leader
                )
            })
            .collect()
    }

    /// The feed subscribers' line: `md subscribers=N messages=M ...`.
    #[must_use]
    pub fn md_line(&self) -> Option<String> {
        self.md.as_ref().map(|md| {
            format!(
                "md subscribers={} messages={} bytes={} per_subscriber_per_s={} gaps={} cut={}",
                md.subscribers, md.messages, md.bytes, md.per_subscriber_per_s, md.gaps, md.cut
            )
        })
    }

    /// The JSON report.
    #[must_use]
    pub fn json(&self) -> String {
        let reasons = reasons_json(&self.rejects_by_reason);
        let notes = self
            .error_notes
            .iter()
            .map(|n| format!("\"{}\"", n.replace('\\', "\\\\").replace('"', "\\\"")))
            .collect::<Vec<_>>()
            .join(", ");
        let timeline = self
            .timeline
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let failovers = self
            .failovers
            .iter()
            .map(|f| {
                format!(
                    "{{\"at_s\": {:.3}, \"outage_ms\": {}, \"first_ack_ms\": {}, \"unanswered\": {}, \"replayed\": {}, \"resumed\": {}, \"leader\": \"{}\"}}",
                    f.at_s, f.outage_ms, f.first_ack_ms, f.unanswered, f.replayed, f.resumed, f.leader
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "{{\n  \"venue\": \"{}\",\n  \"sessions\": {},\n  \"rate\": {},\n  \"duration_s\": {:.3},\n  \"seed\": {},\n  \"sent\": {},\n  \"acked\": {},\n  \"rejected\": {},\n  \"rejects_by_reason\": {{{reasons}}},\n  \"fills\": {},\n  \"errors\": {},\n  \"error_notes\": [{notes}],\n  \"messages_sent\": {},\n  \"cancels_and_replaces\": {},\n  \"throughput_per_s\": {},\n  \"ack_latency\": {},\n  \"fill_latency\": {},\n  \"answered_per_second\": [{timeline}],\n  \"rss_kb_start\": {},\n  \"rss_kb_end\": {},\n  \"hostile_connections\": {},\n  \"buyers\": {},\n  \"flows\": {{\"market_maker\": {}, \"buyer\": {}}},\n  \"md\": {},\n  \"failovers\": [{failovers}]\n}}\n",
            self.venue,
            self.sessions,
            self.rate,
            self.duration_s,
            self.seed,
            self.sent,
            self.acked,
            self.rejected,
            self.fills,
            self.errors,
            self.messages_sent,
            self.cancels_and_replaces,
            self.throughput_per_s,
            self.ack.json(),
            self.fill.json(),
            self.rss_kb.0,
            self.rss_kb.1,
            self.hostile_connections,
            self.buyers,
            self.flows[0].json(),
            self.flows[1].json(),
            self.md.as_ref().map_or_else(
                || "null".to_string(),
                |md| format!(
                    "{{\"subscribers\": {}, \"messages\": {}, \"bytes\": {}, \"per_subscriber_per_s\": {}, \"gaps\": {}, \"cut\": {}}}",
                    md.subscribers, md.messages, md.bytes, md.per_subscriber_per_s, md.gaps, md.cut
                )
            ),
        )
    }

    /// An SVG chart: ack and fill latency against percentile (log-scaled
    /// towards 100), and answered orders per second.
    #[must_use]
    pub fn svg(&self) -> String {
        let (w, h) = (960.0, 360.0);
        let mut s = String::new();
        let _ = write!(
            s,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        );
        let _ = writeln!(
            s,
            "<text x=\"20\" y=\"22\" font-size=\"15\">tonnex-loadtest: {} sessions, rate {}/s, {:.0} s: {} answered/s, ack p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us, errors {}</text>",
            self.sessions,
            if self.rate == 0 { "max".to_string() } else { self.rate.to_string() },
            self.duration_s,
            self.throughput_per_s,
            self.ack.p50_us,
            self.ack.p99_us,
            self.ack.p999_us,
            self.errors
        );
        // Left panel: latency by percentile.
        let (x0, y0, pw, ph) = (60.0, 50.0, 400.0, 260.0);
        let max_us = self
            .ack
            .curve
            .iter()
            .chain(&self.fill.curve)
            .chain(&self.flows[1].ack.curve)
            .map(|p| p.1)
            .fold(1.0f64, f64::max);
        let top = max_us.log10().ceil().max(1.0);
        let x_of = |p: f64| {
            let nines = (-(1.0 - p / 100.0).max(1e-5).log10()).min(5.0);
            x0 + pw * nines / 5.0
        };
        let y_of = |us: f64| y0 + ph - ph * (us.max(1.0).log10() / top);
        let _ = writeln!(s, "<rect x=\"{x0}\" y=\"{y0}\" width=\"{pw}\" height=\"{ph}\" fill=\"none\" stroke=\"#999\"/>");
        for (label, p) in [
            ("0", 0.0),
            ("90", 90.0),
            ("99", 99.0),
            ("99.9", 99.9),
            ("99.99", 99.99),
            ("99.999", 99.999),
        ] {
            let x = x_of(p);
            let _ = writeln!(s, "<line x1=\"{x}\" y1=\"{y0}\" x2=\"{x}\" y2=\"{}\" stroke=\"#eee\"/><text x=\"{x}\" y=\"{}\" text-anchor=\"middle\">{label}</text>", y0 + ph, y0 + ph + 16.0);
        }
        for decade in 0..=(top as i32) {
            let us = 10f64.powi(decade);
            let y = y_of(us);
            let _ = writeln!(s, "<line x1=\"{x0}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#eee\"/><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{us} us</text>", x0 + pw, x0 - 4.0, y + 4.0);
        }
        for (curve, colour, name, dy) in [
            (&self.ack.curve, "#1f77b4", "order to ack", 0.0),
            (
                &self.fill.curve,
                "#d62728",
                "taker order to first fill",
                16.0,
            ),
            (
                &self.flows[1].ack.curve,
                "#9467bd",
                "buyer order to ack (compliance-routed)",
                32.0,
            ),
        ] {
            if curve.is_empty() {
                continue;
            }
            let points = curve
                .iter()
                .map(|&(p, us)| format!("{:.1},{:.1}", x_of(p), y_of(us)))
                .collect::<Vec<_>>()
                .join(" ");
            let _ = writeln!(s, "<polyline points=\"{points}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"/><text x=\"{}\" y=\"{}\" fill=\"{colour}\">{name}</text>", x0 + 8.0, y0 + 16.0 + dy);
        }
        let _ = writeln!(s, "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">latency by percentile (log scales)</text>", x0 + pw / 2.0, y0 + ph + 34.0);
        // Right panel: answered orders per second.
        let (x1, pw1) = (540.0, 380.0);
        let peak = self.timeline.iter().copied().max().unwrap_or(0).max(1) as f64;
        let _ = writeln!(s, "<rect x=\"{x1}\" y=\"{y0}\" width=\"{pw1}\" height=\"{ph}\" fill=\"none\" stroke=\"#999\"/>");
        let n = self.timeline.len().max(1) as f64;
        for (i, &count) in self.timeline.iter().enumerate() {
            let bw = pw1 / n;
            let bh = ph * count as f64 / peak;
            let _ = writeln!(
                s,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#2ca02c\"/>",
                x1 + bw * i as f64 + 1.0,
                y0 + ph - bh,
                (bw - 2.0).max(1.0),
                bh
            );
        }
        let _ = writeln!(s, "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{peak:.0}/s</text><text x=\"{}\" y=\"{}\" text-anchor=\"middle\">answered orders per second over the run ({} s)</text>", x1 - 4.0, y0 + 4.0, x1 + pw1 / 2.0, y0 + ph + 34.0, self.timeline.len());
        s.push_str("</svg>\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_line_has_every_contract_key_in_order() {
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        for ns in [10_000, 20_000, 30_000, 1_000_000] {
            histogram.record(ns).unwrap();
        }
        let report = Report {
            sent: 4,
            acked: 3,
            rejected: 1,
            fills: 2,
            throughput_per_s: 4,
            ack: Latency::of(&histogram),
            ..Report::default()
        };
        let line = report.last_line();
        let keys: Vec<&str> = line
            .split(' ')
            .map(|kv| kv.split_once('=').unwrap().0)
            .collect();
        assert_eq!(
            keys,
            [
                "sent",
                "acked",
                "rejected",
                "fills",
                "errors",
                "throughput_per_s",
                "p50_us",
                "p99_us",
                "p999_us",
                "max_us"
            ]
        );
        assert!(
            line.starts_with(
                "sent=4 acked=3 rejected=1 fills=2 errors=0 throughput_per_s=4 p50_us=20.0"
            ),
            "{line}"
        );
        assert!(report.svg().starts_with("<svg") && report.json().contains("\"p99_us\""));
    }
}
