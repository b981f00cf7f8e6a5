//! `tonnex-venue run`: recover the engine from the journal, list the
//! configured instruments (and, on an empty journal, deposit the configured
//! cash and credit lots), then serve order entry and the fill stream until
//! SIGTERM/SIGINT.
//!
//! Threads: the gateway (mio event loop, this thread), the engine (state,
//! journal, fill log), the fill-stream acceptor and one per subscriber.

mod admin;
pub mod admin_accounts;
mod admin_attest;
pub mod admin_buyer;
mod admin_cluster;
pub mod admin_instruments;
mod admin_lots;
mod admin_replies;
mod admin_rules;
mod admin_verbs;
mod buyer;
pub mod cluster;
pub mod core;
pub mod depth;
pub mod fills;
mod inline;
mod intake;
mod launch;
mod market_data;
mod md_feed;
pub mod metrics;
mod net;
pub mod outbound;
mod reports;
pub mod server;
pub mod session;
mod startup;
mod status;
mod submit;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use tonnex_engine::journal::{recover, Journal, JournalConfig, RecoverOptions};
use tonnex_engine::{EngineConfig, InstrumentSpec};
use tonnex_protocol::{Price, Symbol};

use self::core::{Core, Input, Output};
use crate::config::InstrumentConfig;

/// Capacity of each ring between the gateway and engine threads.
pub const RING_CAPACITY: usize = 1 << 16;

/// Commands between automatic snapshots.
pub const SNAPSHOT_EVERY: u64 = 1_000_000;

/// `run`'s options beyond the config file.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// The venue file.
    pub config: PathBuf,
    /// Overrides `[venue] order_entry`.
    pub listen: Option<String>,
    /// Overrides `[venue] fill_stream`.
    pub fills_listen: Option<String>,
    /// Overrides `[venue] journal_dir`.
    pub journal_dir: Option<PathBuf>,
    /// Overrides `[admin] listen`.
    pub admin_listen: Option<String>,
    /// Overrides `[metrics] listen`.
    pub metrics_listen: Option<String>,
    /// Overrides `[market_data] listen` (the venue file must have the table).
    pub market_data_listen: Option<String>,
    /// Overrides `[session] engine` (true: inline).
    pub engine_inline: Option<bool>,
    /// Overrides `[journal] durability`.
    pub durability: Option<crate::config::VenueDurability>,
    /// A cluster node (`--node`, `--peers`).
    pub cluster: Option<cluster::ClusterOptions>,
}

/// Why the venue could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum VenueError {
    /// Configuration.
    #[error(transparent)]
    Config(#[from] crate::values::LoadError),
    /// Anything else, already worded.
    #[error("{0}")]
    Start(String),
    /// A cluster node elected leader could not get its start-up commands
    /// committed (no quorum, or leadership lost meanwhile): it follows
    /// again.
    #[error("start-up commands not committed: {0}")]
    NoQuorum(String),
}

pub(super) fn start_error(what: impl std::fmt::Display) -> VenueError {
    VenueError::Start(what.to_string())
}

/// An instrument's engine definition from its configuration.
pub fn instrument_spec(config: &InstrumentConfig) -> Result<InstrumentSpec, String> {
    let symbol = Symbol::new(&config.symbol).ok_or_else(|| {
        format!(
            "{}: not a valid symbol (1-23 printable ASCII)",
            config.symbol
        )
    })?;
    let tick_micros = (config.tick_usd * Decimal::from(1_000_000))
        .to_i64()
        .filter(|t| *t > 0 && Decimal::from(*t) == config.tick_usd * Decimal::from(1_000_000))
        .ok_or_else(|| {
            format!(
                "{}: tick_usd {} is not a positive whole number of micro-dollars",
                config.symbol, config.tick_usd
            )
        })?;
    let ticks = |usd: Decimal, what: &str| {
        let t = usd / config.tick_usd;
        (t.fract().is_zero())
            .then(|| t.to_i64())
            .flatten()
            .ok_or_else(|| {
                format!(
                    "{}: {what} {usd} is not a whole number of ticks",
                    config.symbol
                )
            })
    };
    Ok(InstrumentSpec {
        symbol,
        tick_micros,
        min_price: Price(ticks(config.min_price_usd, "min_price_usd")?),
        max_price: Price(ticks(config.max_price_usd, "max_price_usd")?),
    })
}

/// Starts the venue and serves until SIGTERM/SIGINT (or `stop` is set): a
/// single venue, or a cluster node when `options.cluster` is set.
pub fn run(options: &RunOptions, stop: Arc<AtomicBool>) -> Result<(), VenueError> {
    if let Some(cluster) = &options.cluster {
        return cluster::run(options, cluster, &stop);
    }
    let mut prepared = launch::prepare(options)?;
    let config = &prepared.config;

    // Recover.
    let started = Instant::now();
    let dir = config.journal_dir.clone();
    let engine_config = engine_config(config);
    let recovered = recover(
        &dir,
        RecoverOptions {
            use_snapshot: true,
            track_orders: false,
            config: engine_config,
        },
    )
    .map_err(start_error)?;
    for warning in &recovered.warnings {
        eprintln!("tonnex-venue: {warning}");
    }
    prepared.adopt(&recovered.state)?;
    let config = &prepared.config;
    let fill_log =
        fills::FillLog::open(&dir, recovered.last_seq, recovered.last_seq).map_err(start_error)?;
    let journal = Journal::open(
        JournalConfig {
            durability: config.durability.journal(),
            ..JournalConfig::new(&dir)
        },
        engine_config,
        &recovered,
    )
    .map_err(start_error)?;
    let records = recovered.records;
    let mut listening = launch::listen(config)?;
    let background = launch::background(config, &mut listening, &fill_log)?;
    let mut core = Core::new(
        recovered.state,
        journal,
        fill_log,
        dir.clone(),
        SNAPSHOT_EVERY,
    );
    core.set_metrics(Arc::clone(&background.metrics));
    let seed = prepared.start(&mut core)?;
    tracing::info!(
        records,
        ms = started.elapsed().as_millis() as u64,
        "recovered"
    );
    let poll = mio::Poll::new().map_err(start_error)?;
    let waker = Arc::new(mio::Waker::new(poll.registry(), net::WAKER).map_err(start_error)?);
    let engine = if prepared.config.session.engine_inline {
        Ok(inline::Engine::Local(Box::new(core)))
    } else {
        Err(core)
    };
    let ready = format!(
        "{} recovered_records={records}{}",
        listening.head, listening.tail
    );
    let served = launch::serve(
        prepared,
        listening,
        &background,
        poll,
        Some(waker),
        engine,
        seed,
        &ready,
        &stop,
    );
    background.stop();
    served.map(|_| ())
}

/// The engine configuration of a venue.
fn engine_config(config: &crate::config::VenueConfig) -> EngineConfig {
    EngineConfig {
        holds: true,
        order_capacity: config.session.order_capacity,
        ..EngineConfig::default()
    }
}

/// The engine thread: batches from the input ring, process, outputs to the
/// gateway. A journal or fill-log failure ends the process: nothing more may
/// be acknowledged (the journal is poisoned).
fn engine_loop(
    mut core: Core,
    input: &ArrayQueue<Input>,
    output: &ArrayQueue<Output>,
    waker: &mio::Waker,
    gateway_sleeping: &AtomicBool,
    spin: Duration,
) {
    let mut batch = Vec::with_capacity(256);
    let mut idle_since: Option<Instant> = None;
    let mut idle_rounds = 0u32;
    loop {
        while batch.len() < 256 {
            match input.pop() {
                Some(item) => batch.push(item),
                None => break,
            }
        }
        let mut emit = |item: Output| {
            let mut item = item;
            while let Err(back) = output.push(item) {
                item = back;
                let _ = waker.wake();
                std::thread::yield_now();
            }
        };
        if batch.is_empty() {
            let awaiting = core.awaiting();
            if let Err(e) = core.idle(&mut emit) {
                fatal(&e);
            }
            if awaiting && !core.awaiting() && gateway_sleeping.load(Ordering::SeqCst) {
                let _ = waker.wake();
            }
            // Spin briefly (a waking thread costs tens of microseconds),
            // then sleep until the gateway unparks us. The clock is read
            // every 64 rounds only: reading it was most of the spin's cost.
            let since = *idle_since.get_or_insert_with(Instant::now);
            idle_rounds += 1;
            // Outputs awaiting a group commit keep the thread spinning.
            if !idle_rounds.is_multiple_of(64) || since.elapsed() < spin || core.awaiting() {
                std::hint::spin_loop();
            } else {
                std::thread::park_timeout(Duration::from_millis(1));
            }
            continue;
        }
        idle_since = None;
        idle_rounds = 0;
        match core.process(&mut batch, &mut emit) {
            Ok(false) => {
                if gateway_sleeping.load(Ordering::SeqCst) {
                    let _ = waker.wake();
                }
            }
            Ok(true) => {
                emit(Output::Stopped);
                let _ = waker.wake();
                return;
            }
            Err(e) => fatal(&e),
        }
    }
}

pub(super) fn fatal(error: &dyn std::fmt::Display) -> ! {
    eprintln!("tonnex-venue: fatal: {error}; stopping without acknowledging more");
    std::process::exit(70);
}
