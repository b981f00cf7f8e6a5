//! `tonnex-settlement run`: follow the venue's fill stream from the last
//! applied sequence number (reconnecting with back-off), apply records and
//! registry confirmations in batched transactions, send the requests they
//! produce, expire trades that wait too long, poll the registry for what
//! its callbacks may have missed, and write certificates.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tonnex_protocol::frame;
use tonnex_protocol::wire::{StreamEvent, StreamRecord, StreamSubscribe};

use crate::metrics::{Call, Metrics};

use crate::certificate;

mod calls;
use crate::ledger::{Ledger, Outbox};
use crate::registry::{now_ms, Embedded, Registry, Remote, Sim, SimConfig};
use calls::{finish, retry_outage, write_certificates, Outage};

/// How to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// The venue's fill-stream address.
    pub venue: String,
    /// Ledger and certificates folder.
    pub data_dir: PathBuf,
    /// Where registry callbacks are received.
    pub webhook_listen: String,
    /// A registry process (`registry-sim`); `None`: the embedded simulator.
    pub registry: Option<SocketAddr>,
    /// Webhook secret shared with the registry.
    pub secret: Vec<u8>,
    /// This subscriber's name on the venue's fill stream.
    pub fill_name: String,
    /// Its key there.
    pub fill_key: String,
    /// Embedded simulator: confirmation delay.
    pub confirm_delay: Duration,
    /// Embedded simulator: share of transfers refused, percent.
    pub fail_pct: u64,
    /// Embedded simulator: share of retirements refused, percent.
    pub retire_fail_pct: u64,
    /// A trade unconfirmed for this long is failed and unwound.
    pub timeout: Duration,
    /// How often pending trades are polled at the registry.
    pub poll_every: Duration,
    /// Most stream records per transaction.
    pub batch: usize,
    /// Where `GET /metrics` answers (none: nowhere).
    pub metrics_listen: Option<String>,
    /// Each venue account's accounts at the registry and payment rail.
    pub registry_accounts: crate::registry::RegistryAccounts,
    /// Where outcomes go back to the venue (none: they wait in the ledger).
    pub feed: Option<crate::venue_feed::FeedOptions>,
}

fn note(outbox: &Outbox) {
    for line in outbox.notes.iter().take(5) {
        tracing::info!(note = %line, "settlement note");
    }
    if outbox.notes.len() > 5 {
        tracing::info!(more = outbox.notes.len() - 5, "more settlement notes");
    }
}

/// Why `run` stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    /// A direct ledger read or write failed.
    #[error("ledger: {0}")]
    Sql(#[from] rusqlite::Error),
    /// A listener or thread could not start.
    #[error("{what}: {why}")]
    Start {
        /// What.
        what: String,
        /// Why.
        why: String,
    },
    /// The venue refused the fill-stream subscription.
    #[error("the venue refused the fill-stream subscription of '{name}': {text}")]
    Refused {
        /// The subscriber name.
        name: String,
        /// The venue's words.
        text: String,
    },
    /// The fill stream sent something that does not decode.
    #[error("fill stream: {0}")]
    Stream(#[from] tonnex_protocol::frame::DecodeError),
    /// Certificate files could not be written.
    #[error(transparent)]
    Certificates(#[from] certificate::CertificateFileError),
}

fn start_error(what: impl Into<String>) -> impl FnOnce(String) -> RunError {
    let what = what.into();
    move |why| RunError::Start { what, why }
}

/// Runs until `stop` is set.
pub fn run(options: &Options, stop: &Arc<AtomicBool>) -> Result<(), RunError> {
    let mut ledger = Ledger::open(&options.data_dir)?;
    write_certificates(&ledger, &options.data_dir)?;

    let (sender, events) = mpsc::channel();
    let server = tiny_http::Server::http(&options.webhook_listen).map_err(|e| RunError::Start {
        what: format!("webhook listener {}", options.webhook_listen),
        why: e.to_string(),
    })?;
    let webhook = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| RunError::Start {
            what: "the webhook listener".into(),
            why: "it has no IP address".into(),
        })?;
    let listener = {
        let (path, secret, stop) = (
            ledger.path().to_path_buf(),
            options.secret.clone(),
            Arc::clone(stop),
        );
        std::thread::Builder::new()
            .name("webhook".into())
            .spawn(move || crate::webhook::serve(server, path, secret, sender, stop))
            .map_err(|e| e.to_string())
            .map_err(start_error("a thread"))?
    };
    let mut sim = None;
    let mut registry: Box<dyn Registry> = match options.registry {
        Some(addr) => Box::new(Remote {
            addr,
            accounts: options.registry_accounts.clone(),
        }),
        None => {
            let embedded = Sim::new(SimConfig {
                delay: options.confirm_delay,
                fail_pct: options.fail_pct,
                retire_fail_pct: options.retire_fail_pct,
                callback: Some(webhook),
                secret: options.secret.clone(),
            });
            let worker = embedded.spawn();
            sim = Some((Arc::clone(&embedded), worker));
            Box::new(Embedded(embedded))
        }
    };
    // Anything requested before a crash and still unanswered is asked again
    // (the registry ignores repeats).
    let pending = ledger.pending_requests()?;
    let mut start_outage = None;
    if !pending.is_empty() {
        if let Err(e) = registry.submit(&pending) {
            tracing::warn!(error = %e, "registry unreachable at start: its pending requests are sent again until it answers");
            start_outage = Some(Outage {
                since: Instant::now(),
                next_try: Instant::now() + Duration::from_millis(500),
                backoff: Duration::from_millis(500),
            });
        }
    }
    let mut last_seq = ledger.last_seq()?;
    let metrics = Arc::new(Metrics::default());
    metrics.applied_seq.store(last_seq, Ordering::Relaxed);
    metrics.received_seq.store(last_seq, Ordering::Relaxed);
    let mut metrics_ready = String::new();
    let metrics_server = match &options.metrics_listen {
        Some(addr) => {
            let server = tiny_http::Server::http(addr).map_err(|e| RunError::Start {
                what: format!("metrics listener {addr}"),
                why: e.to_string(),
            })?;
            if let Some(local) = server.server_addr().to_ip() {
                metrics_ready = format!(" metrics={local}");
            }
            let (metrics, path, stop) = (
                Arc::clone(&metrics),
                ledger.path().to_path_buf(),
                Arc::clone(stop),
            );
            Some(
                std::thread::Builder::new()
                    .name("metrics".into())
                    .spawn(move || crate::metrics::serve(server, metrics, path, stop))
                    .map_err(|e| e.to_string())
                    .map_err(start_error("a thread"))?,
            )
        }
        None => None,
    };
    let feed_finish = Arc::new(AtomicBool::new(false));
    let feed = match &options.feed {
        Some(feed) => Some(
            crate::venue_feed::spawn(
                ledger.path().to_path_buf(),
                feed.clone(),
                Arc::clone(&feed_finish),
                Arc::clone(&metrics.feed),
            )
            .map_err(|e| e.to_string())
            .map_err(start_error("a thread"))?,
        ),
        None => {
            tracing::warn!(
                "no --venue-admin: trade outcomes wait in the ledger and the venue's pending balances are not cleared"
            );
            None
        }
    };
    println!(
        "ready venue={} webhook={webhook} last_seq={last_seq}{metrics_ready}",
        options.venue
    );
    let _ = std::io::stdout().flush();

    let mut stream: Option<TcpStream> = None;
    let mut backoff = Duration::from_millis(100);
    let mut next_connect = Instant::now();
    let mut buffer = Vec::with_capacity(1 << 20);
    let mut chunk = vec![0u8; 1 << 20];
    let mut last_maintenance = Instant::now();
    // Expiry walks every trade in flight: a tenth of the timeout is fine
    // grained enough, and a second at most keeps the walk off the hot path.
    let maintenance_every =
        (options.timeout / 10).clamp(Duration::from_millis(20), Duration::from_secs(1));
    let mut last_poll = Instant::now();
    let mut last_stats = (Instant::now(), 0u64);
    let mut applied_trades = 0u64;
    let mut outage: Option<Outage> = start_outage;
    while !stop.load(Ordering::Acquire) {
        if stream.is_none() && Instant::now() >= next_connect {
            match subscribe(options, last_seq + 1) {
                Ok(s) => {
                    tracing::info!(
                        venue = %options.venue,
                        from_record = last_seq + 1,
                        "following the fill stream"
                    );
                    stream = Some(s);
                    buffer.clear();
                    backoff = Duration::from_millis(100);
                }
                Err(e) => {
                    tracing::warn!(
                        error = %e,
                        retry_ms = backoff.as_millis() as u64,
                        "fill stream unreachable"
                    );
                    next_connect = Instant::now() + backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
        // Read what the venue has sent (up to a batch).
        let mut records: Vec<StreamRecord> = Vec::new();
        if let Some(s) = &mut stream {
            match s.read(&mut chunk) {
                Ok(0) => {
                    tracing::warn!("the venue closed the fill stream");
                    stream = None;
                }
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "fill stream read failed");
                    stream = None;
                }
            }
            let mut at = 0;
            while records.len() < options.batch {
                match frame::split(&buffer[at..], 1 << 20) {
                    Ok(Some((payload, used))) => {
                        let record = frame::decode::<StreamRecord>(payload)?;
                        if let StreamEvent::Refused { text } = &record.event {
                            return Err(RunError::Refused {
                                name: options.fill_name.clone(),
                                text: text.clone(),
                            });
                        }
                        at += used;
                        records.push(record);
                    }
                    Ok(None) => break,
                    Err(e) => return Err(RunError::Stream(e)),
                }
            }
            buffer.drain(..at);
        } else {
            std::thread::sleep(Duration::from_millis(10));
        }
        let confirmations: Vec<_> = events.try_iter().take(50_000).collect();
        if let Some(last) = records.last() {
            metrics.received_seq.store(last.seq, Ordering::Relaxed);
        }
        if !records.is_empty() || !confirmations.is_empty() {
            applied_trades += records
                .iter()
                .filter(|r| matches!(r.event, tonnex_protocol::wire::StreamEvent::Trade { .. }))
                .count() as u64;
            let outbox = ledger.apply(&records, &confirmations, now_ms())?;
            last_seq += records.len() as u64;
            metrics.applied_seq.store(last_seq, Ordering::Relaxed);
            finish(
                &outbox,
                registry.as_mut(),
                &ledger,
                options,
                &metrics,
                &mut outage,
            )?;
        }
        if last_maintenance.elapsed() >= maintenance_every {
            last_maintenance = Instant::now();
            retry_outage(&mut outage, registry.as_mut(), &ledger, &metrics)?;
            let outbox = ledger.expire(now_ms(), options.timeout.as_millis() as u64)?;
            finish(
                &outbox,
                registry.as_mut(),
                &ledger,
                options,
                &metrics,
                &mut outage,
            )?;
        }
        if last_poll.elapsed() >= options.poll_every {
            last_poll = Instant::now();
            // Custody in: what sellers moved into the venue's custody account.
            let after = crate::ledger::custody_in::after(ledger.connection())?;
            match registry.incoming(after) {
                Ok(transfers) if !transfers.is_empty() => {
                    let new = crate::ledger::custody_in::record(
                        ledger.connection(),
                        &transfers,
                        &options.registry_accounts,
                    )?;
                    tracing::info!(new, "transfers into the venue's custody account");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "registry custody list failed"),
            }
            // Only what has waited a whole poll interval: a callback for
            // anything younger is most likely on its way.
            let before = now_ms().saturating_sub(options.poll_every.as_millis() as u64);
            let trades = ledger.pending_trades(20_000, before)?;
            if !trades.is_empty() {
                let polled = registry.status(&trades);
                metrics.registry_call(Call::Status, polled.is_ok());
                match polled {
                    Ok(found) => {
                        let fresh: Vec<_> = found
                            .into_iter()
                            .filter(|e| !ledger.event_seen(&e.event_id).unwrap_or(true))
                            .collect();
                        if !fresh.is_empty() {
                            let outbox = ledger.apply(&[], &fresh, now_ms())?;
                            finish(
                                &outbox,
                                registry.as_mut(),
                                &ledger,
                                options,
                                &metrics,
                                &mut outage,
                            )?;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "registry status failed"),
                }
            }
        }
        if last_stats.0.elapsed() >= Duration::from_secs(5) && applied_trades != last_stats.1 {
            let seconds = last_stats.0.elapsed().as_secs_f64();
            tracing::info!(
                record = last_seq,
                trades_per_s = ((applied_trades - last_stats.1) as f64 / seconds) as u64,
                "applied"
            );
            last_stats = (Instant::now(), applied_trades);
        }
    }
    // The last outcomes go to the venue before the process ends.
    feed_finish.store(true, Ordering::Release);
    if let Some(feed) = feed {
        let _ = feed.join();
    }
    if let Some((sim, worker)) = sim {
        sim.stop();
        let _ = worker.join();
    }
    let _ = listener.join();
    if let Some(server) = metrics_server {
        let _ = server.join();
    }
    Ok(())
}

fn subscribe(options: &Options, from_seq: u64) -> Result<TcpStream, String> {
    let venue = &options.venue;
    let addr: SocketAddr = venue
        .parse()
        .map_err(|e| format!("--venue '{venue}': {e}"))?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))
        .map_err(|e| format!("fill stream {addr}: {e}"))?;
    stream
        .write_all(&frame::encode(&StreamSubscribe {
            from_seq,
            name: options.fill_name.clone(),
            key: options.fill_key.clone(),
        }))
        .map_err(|e| format!("fill stream {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_millis(5)))
        .map_err(|e| e.to_string())?;
    Ok(stream)
}
