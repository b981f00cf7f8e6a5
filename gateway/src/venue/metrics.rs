//! The venue's metrics: counters and gauges the gateway and engine threads
//! write with relaxed atomic stores (no lock, no allocation, no locked
//! instruction on the hot path), and `GET /metrics` answering them in the
//! Prometheus text format (version 0.0.4) from a small HTTP thread of its
//! own.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use tonnex_protocol::{OrderKind, RejectReason};

use super::core::Input;

/// Order types, as labelled.
const TYPES: [&str; 5] = ["limit", "market", "ioc", "fok", "post_only"];
/// Outcomes of a new order, as labelled.
const OUTCOMES: [&str; 3] = ["accepted", "rejected", "held"];
/// Ack latency bucket bounds, seconds.
const BUCKETS: [f64; 14] = [
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 1.0,
];

/// [`BUCKETS`] in nanoseconds.
const BUCKET_NS: [u64; BUCKETS.len()] = {
    let mut ns = [0; BUCKETS.len()];
    let mut i = 0;
    while i < BUCKETS.len() {
        ns[i] = (BUCKETS[i] * 1e9 + 0.5) as u64;
        i += 1;
    }
    ns
};

/// Adds `n` to a counter that one thread alone writes (the event loop's
/// counters: orders, rejects, ack latency, admin requests): a plain load
/// and store. A `fetch_add` is a locked instruction, which waits for the
/// core's store buffer to drain, once or more for every order; readers
/// (`GET /metrics`) still see each value whole.
#[inline]
fn bump(counter: &AtomicU64, n: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(n),
        Ordering::Relaxed,
    );
}

/// A new order's outcome.
#[derive(Clone, Copy, Debug)]
pub enum Outcome {
    /// Accepted onto a book.
    Accepted = 0,
    /// Refused (by the gateway, the pre-router or the engine).
    Rejected = 1,
    /// Held for an attestation.
    Held = 2,
}

fn type_index(kind: OrderKind) -> usize {
    match kind {
        OrderKind::Limit => 0,
        OrderKind::Market => 1,
        OrderKind::Ioc => 2,
        OrderKind::Fok => 3,
        OrderKind::PostOnly => 4,
    }
}

/// Everything counted. The event loop alone calls the counting methods
/// ([`Metrics::order`], [`Metrics::reject`], [`Metrics::ack_latency`],
/// [`Metrics::admin`]); the engine thread writes the journal position.
pub struct Metrics {
    orders: [[AtomicU64; 3]; 5],
    rejects: [AtomicU64; 256],
    latency: [AtomicU64; BUCKETS.len() + 1],
    latency_sum_ns: AtomicU64,
    /// Written by the engine thread.
    pub journal_seq: AtomicU64,
    /// Written by the engine thread.
    pub durable_seq: AtomicU64,
    /// Written by the gateway thread (its timers).
    pub sessions: AtomicU64,
    /// Written by the gateway thread (its timers).
    pub held_orders: AtomicU64,
    /// Written by the gateway thread (its timers): tonnes buyers have claimed.
    pub claimed_tonnes: AtomicU64,
    /// Written by the gateway thread (its timers): market-data feed subscribers.
    pub md_subscribers: AtomicU64,
    /// Full-depth snapshots the feed asked of the engine.
    pub md_snapshots: AtomicU64,
    /// Feed subscribers cut off as slow consumers.
    pub md_cut: AtomicU64,
    admin: [AtomicU64; 2],
    /// A cluster node's view, written by its event loop every 100 ms.
    pub cluster: ClusterGauges,
}

/// A cluster node's Raft view (all zero on a single venue, and then not
/// rendered).
#[derive(Default)]
pub struct ClusterGauges {
    /// The node's id (0: not a cluster node).
    pub node: AtomicU64,
    /// 1 while it leads.
    pub leader: AtomicU64,
    /// Its term.
    pub term: AtomicU64,
    /// Its commit index.
    pub commit: AtomicU64,
    /// Its applied index.
    pub applied: AtomicU64,
    /// On the leader: the most entries any voter is behind.
    pub max_lag: AtomicU64,
    /// Commands read back from the journal for followers behind the
    /// entries kept in memory, since the node's log was opened.
    pub read_back: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            orders: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            rejects: std::array::from_fn(|_| AtomicU64::new(0)),
            latency: std::array::from_fn(|_| AtomicU64::new(0)),
            latency_sum_ns: AtomicU64::new(0),
            cluster: ClusterGauges::default(),
            journal_seq: AtomicU64::new(0),
            durable_seq: AtomicU64::new(0),
            sessions: AtomicU64::new(0),
            held_orders: AtomicU64::new(0),
            claimed_tonnes: AtomicU64::new(0),
            md_subscribers: AtomicU64::new(0),
            md_snapshots: AtomicU64::new(0),
            md_cut: AtomicU64::new(0),
            admin: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl Metrics {
    /// A new order of `kind` ended as `outcome`.
    #[inline]
    pub fn order(&self, kind: OrderKind, outcome: Outcome) {
        bump(&self.orders[type_index(kind)][outcome as usize], 1);
    }

    /// An `OrderRejected` went out with reason code `reason`.
    #[inline]
    pub fn reject(&self, reason: u8) {
        bump(&self.rejects[usize::from(reason)], 1);
    }

    /// A new order's first answer took `ns` from its intake.
    #[inline]
    pub fn ack_latency(&self, ns: u64) {
        let bucket = BUCKET_NS
            .iter()
            .position(|&bound| ns <= bound)
            .unwrap_or(BUCKETS.len());
        bump(&self.latency[bucket], 1);
        bump(&self.latency_sum_ns, ns);
    }

    /// An admin request was carried out (`true`) or refused.
    pub fn admin(&self, done: bool) {
        bump(&self.admin[usize::from(!done)], 1);
    }

    /// The text exposition; `queue_depth` is the engine input ring's length.
    #[must_use]
    pub fn render(&self, queue_depth: usize) -> String {
        use std::fmt::Write as _;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut out = String::with_capacity(8192);
        let family = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
        };
        let gauges = |out: &mut String, gauges: &[(&str, &str, u64)]| {
            for &(name, help, value) in gauges {
                family(out, name, "gauge", help);
                let _ = writeln!(out, "{name} {value}");
            }
        };
        family(
            &mut out,
            "tonnex_orders",
            "counter",
            "New orders by type and outcome (accepted, rejected, held).",
        );
        for (t, name) in TYPES.iter().enumerate() {
            for (o, outcome) in OUTCOMES.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "tonnex_orders_total{{type=\"{name}\",outcome=\"{outcome}\"}} {}",
                    get(&self.orders[t][o])
                );
            }
        }
        family(
            &mut out,
            "tonnex_rejects",
            "counter",
            "OrderRejected messages sent, by reason code.",
        );
        for code in 0..=u8::MAX {
            let Some(reason) = RejectReason::from_code(code) else {
                continue;
            };
            let _ = writeln!(
                out,
                "tonnex_rejects_total{{reason=\"{}\"}} {}",
                reason.as_str(),
                get(&self.rejects[usize::from(code)])
            );
        }
        family(
            &mut out,
            "tonnex_ack_latency_seconds",
            "histogram",
            "From a new order's intake to its first answer (accepted, rejected or held) after the engine.",
        );
        let mut cumulative = 0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += get(&self.latency[i]);
            let _ = writeln!(
                out,
                "tonnex_ack_latency_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        cumulative += get(&self.latency[BUCKETS.len()]);
        let _ = writeln!(
            out,
            "tonnex_ack_latency_seconds_bucket{{le=\"+Inf\"}} {cumulative}"
        );
        let _ = writeln!(
            out,
            "tonnex_ack_latency_seconds_sum {}",
            get(&self.latency_sum_ns) as f64 / 1e9
        );
        let _ = writeln!(out, "tonnex_ack_latency_seconds_count {cumulative}");
        let journal = get(&self.journal_seq);
        let durable = get(&self.durable_seq);
        gauges(
            &mut out,
            &[
                (
                    "tonnex_engine_queue_depth",
                    "Commands waiting on the engine's input ring.",
                    queue_depth as u64,
                ),
                (
                    "tonnex_journal_seq",
                    "Last journal sequence appended.",
                    journal,
                ),
                (
                    "tonnex_journal_durable_lag",
                    "Journal records appended but not yet durable under the policy.",
                    journal.saturating_sub(durable),
                ),
                (
                    "tonnex_sessions",
                    "Order-entry sessions logged in.",
                    get(&self.sessions),
                ),
                (
                    "tonnex_held_orders",
                    "Buyers' orders held for an attestation.",
                    get(&self.held_orders),
                ),
                (
                    "tonnex_claimed_tonnes",
                    "Tonnes of inventory buyers have claimed (filled + open).",
                    get(&self.claimed_tonnes),
                ),
                (
                    "tonnex_md_subscribers",
                    "Market-data feed subscribers connected.",
                    get(&self.md_subscribers),
                ),
            ],
        );
        for (name, help, value) in [
            (
                "tonnex_md_snapshots",
                "Full-depth snapshots the market-data feed asked of the engine.",
                get(&self.md_snapshots),
            ),
            (
                "tonnex_md_cut",
                "Market-data feed subscribers cut off as slow consumers.",
                get(&self.md_cut),
            ),
        ] {
            family(&mut out, name, "counter", help);
            let _ = writeln!(out, "{name}_total {value}");
        }
        if get(&self.cluster.node) != 0 {
            let c = &self.cluster;
            gauges(
                &mut out,
                &[
                    ("tonnex_cluster_node", "This node's id.", get(&c.node)),
                    (
                        "tonnex_cluster_leader",
                        "1 while this node leads.",
                        get(&c.leader),
                    ),
                    ("tonnex_cluster_term", "Raft term.", get(&c.term)),
                    (
                        "tonnex_cluster_commit_index",
                        "Raft commit index.",
                        get(&c.commit),
                    ),
                    (
                        "tonnex_cluster_applied_index",
                        "Raft applied index.",
                        get(&c.applied),
                    ),
                    (
                        "tonnex_cluster_max_peer_lag",
                        "On the leader: the most entries any voter is behind (0 elsewhere).",
                        get(&c.max_lag),
                    ),
                    (
                        "tonnex_cluster_commands_read_back",
                        "Commands read back from the journal for followers behind the entries kept in memory, since the log was opened.",
                        get(&c.read_back),
                    ),
                ],
            );
        }
        family(
            &mut out,
            "tonnex_admin_requests",
            "counter",
            "Admin port requests, carried out or refused.",
        );
        for (i, outcome) in ["done", "refused"].iter().enumerate() {
            let _ = writeln!(
                out,
                "tonnex_admin_requests_total{{outcome=\"{outcome}\"}} {}",
                get(&self.admin[i])
            );
        }
        out
    }
}

/// Serves `GET /metrics` on `listener` until `stop` is set.
pub fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    ring: Arc<ArrayQueue<Input>>,
    stop: Arc<AtomicBool>,
) {
    listener
        .set_nonblocking(true)
        .expect("listener to non-blocking");
    while !stop.load(Ordering::Acquire) {
        match listener.accept() {
            Ok((stream, _)) => {
                if let Err(e) = answer(stream, &metrics, &ring) {
                    tracing::debug!(error = %e, "metrics request failed");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics accept failed");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// One HTTP/1.1 request, then the connection closes.
fn answer(
    mut stream: TcpStream,
    metrics: &Metrics,
    ring: &ArrayQueue<Input>,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut request = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 8192 {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&chunk[..n]);
    }
    let line = request.split(|&b| b == b'\r').next().unwrap_or_default();
    let (status, content_type, body) = if line.starts_with(b"GET /metrics ") {
        (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render(ring.len()),
        )
    } else {
        (
            "404 Not Found",
            "text/plain",
            "only GET /metrics\n".to_string(),
        )
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_histogram_is_cumulative_and_counts_every_observation() {
        let metrics = Metrics::default();
        for ns in [10_000, 60_000, 60_000, 2_000_000_000] {
            metrics.ack_latency(ns);
        }
        metrics.order(OrderKind::Ioc, Outcome::Accepted);
        metrics.reject(RejectReason::InsufficientFunds.code());
        let text = metrics.render(3);
        assert!(text.contains("tonnex_ack_latency_seconds_bucket{le=\"0.000025\"} 1\n"));
        assert!(text.contains("tonnex_ack_latency_seconds_bucket{le=\"0.0001\"} 3\n"));
        assert!(text.contains("tonnex_ack_latency_seconds_bucket{le=\"+Inf\"} 4\n"));
        assert!(text.contains("tonnex_ack_latency_seconds_count 4\n"));
        assert!(text.contains("tonnex_orders_total{type=\"ioc\",outcome=\"accepted\"} 1\n"));
        assert!(text.contains("tonnex_rejects_total{reason=\"INSUFFICIENT_FUNDS\"} 1\n"));
        assert!(text.contains("tonnex_engine_queue_depth 3\n"));
    }

    #[test]
    fn an_observation_on_a_bound_counts_in_that_bucket() {
        assert_eq!(BUCKET_NS[0], 25_000);
        assert_eq!(BUCKET_NS[BUCKETS.len() - 1], 1_000_000_000);
        let metrics = Metrics::default();
        for ns in [25_000, 25_001, 1_000_000_000, 1_000_000_001] {
            metrics.ack_latency(ns);
        }
        let text = metrics.render(0);
        assert!(text.contains("tonnex_ack_latency_seconds_bucket{le=\"0.000025\"} 1\n"));
        assert!(text.contains("tonnex_ack_latency_seconds_bucket{le=\"0.00005\"} 2\n"));
        assert!(text.contains("tonnex_ack_latency_seconds_bucket{le=\"1\"} 3\n"));
        assert!(text.contains("tonnex_ack_latency_seconds_bucket{le=\"+Inf\"} 4\n"));
        assert!(text.contains("tonnex_ack_latency_seconds_sum 2.000050002\n"));
    }
}
