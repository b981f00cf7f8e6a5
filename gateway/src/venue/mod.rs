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
pub mod admin_instruments;
mod admin_lots;
mod admin_replies;
mod admin_rules;
mod admin_verbs;
mod buyer;
pub mod core;
pub mod depth;
pub mod fills;
mod inline;
mod intake;
mod md_feed;
pub mod metrics;
mod net;
pub mod outbound;
mod reports;
pub mod server;
pub mod session;
mod startup;

use std::io::Write;
use std::net::SocketAddr;
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
use self::server::{EngineEnds, Gateway, InstrumentRef, Listeners, Seed, SeedOrder};
use self::startup::{genesis, record_rules, rules_in_force, rules_sha256_of, rules_version_of};
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

/// Starts the venue and serves until SIGTERM/SIGINT (or `stop` is set).
pub fn run(options: &RunOptions, stop: Arc<AtomicBool>) -> Result<(), VenueError> {
    let (mut config, mut router) = crate::compliance::load_router(&options.config)?;
    if let Some(listen) = &options.listen {
        config.order_entry.clone_from(listen);
    }
    if let Some(fills) = &options.fills_listen {
        config.fill_stream.clone_from(fills);
    }
    if let Some(dir) = &options.journal_dir {
        config.journal_dir.clone_from(dir);
    }
    if let Some(admin) = &options.admin_listen {
        config.admin.listen = Some(admin.clone());
        if config.admin.operators.is_empty() {
            return Err(start_error(format!(
                "{}: --admin-listen needs at least one [[operator]] with a key",
                config.path.display()
            )));
        }
    }
    if let Some(inline) = options.engine_inline {
        config.session.engine_inline = inline;
    }
    if let Some(listen) = &options.market_data_listen {
        match &mut config.market_data {
            Some(md) => md.listen.clone_from(listen),
            None => {
                return Err(start_error(format!(
                    "--market-data-listen: {} has no [market_data] table",
                    config.path.display()
                )))
            }
        }
    }
    if let Some(metrics) = &options.metrics_listen {
        config.metrics_listen = Some(metrics.clone());
    }
    if let Some(durability) = options.durability {
        config.durability = durability;
    }
    // Fail closed: every account logs in with its own secret; none is
    // ever defaulted (an empty one would let anyone in).
    if let Some((i, account)) = config
        .accounts
        .iter()
        .enumerate()
        .find(|(_, a)| a.secret.is_empty())
    {
        return Err(start_error(format!(
            "{}: account[{}].secret: account {} has no login secret; every account needs its own",
            config.path.display(),
            i + 1,
            account.id
        )));
    }
    let mut specs = config
        .instruments
        .iter()
        .map(instrument_spec)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| start_error(format!("{}: {e}", config.path.display())))?;

    // Recover.
    let started = Instant::now();
    let dir = config.journal_dir.clone();
    let engine_config = EngineConfig {
        holds: true,
        order_capacity: config.session.order_capacity,
        ..EngineConfig::default()
    };
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
    // Accounts added at runtime: the pre-router and the admin desk's file
    // know them (the gateway takes their credential from the journal).
    for listing in recovered.state.venue().accounts_added() {
        let role = admin_accounts::listed_role(&listing.role).map_err(start_error)?;
        if config.accounts.iter().all(|a| a.id != listing.account) {
            router.add_account(
                listing.account,
                role,
                crate::config::AccountStatus::PendingKyc,
            );
            config
                .accounts
                .push(admin_accounts::listed_account(listing, role));
        }
    }
    // Instruments listed at runtime are in the journal, not the file.
    for listing in recovered.state.venue().listings() {
        let index = listing.instrument as usize;
        if index < config.instruments.len() {
            continue; // the file lists it too (genesis checks it is the same)
        }
        let instrument = admin_instruments::listed_instrument(listing).map_err(start_error)?;
        specs.push(instrument_spec(&instrument).map_err(start_error)?);
        router.add_instrument(index, &instrument);
        config.instruments.push(instrument);
    }
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
    let fresh = recovered.last_seq == 0;
    let fill_shared = fill_log.shared();
    let fill_path = fill_log.path().to_path_buf();
    let mut core = Core::new(
        recovered.state,
        journal,
        fill_log,
        dir.clone(),
        SNAPSHOT_EVERY,
    );
    genesis(&mut core, &config, &specs, fresh)?;
    let rules = rules_in_force(&config, router.rules())?;
    record_rules(&mut core, &rules)?;
    let seed = Seed {
        venue: core.state().venue().image(),
        orders: core
            .state()
            .venue()
            .orders()
            .iter()
            .filter_map(|t| {
                core.state().order(t.order_id).map(|slot| SeedOrder {
                    order_id: t.order_id,
                    instrument: u32::from(slot.instrument),
                    side: tonnex_protocol::wire::side_code(slot.side()),
                    price_ticks: slot.price,
                })
            })
            .collect(),
        rules_version: rules_version_of(&rules),
        rules_sha256: rules_sha256_of(&rules),
        rule_versions: crate::compliance::load_rules(&config)?.0,
        halted: core.state().books().iter().map(|b| b.halted).collect(),
        last_seq: core.state().last_seq(),
    };
    tracing::info!(
        records,
        ms = started.elapsed().as_millis() as u64,
        "recovered"
    );

    // Listen.
    let entry_addr: SocketAddr = config
        .order_entry
        .parse()
        .map_err(|e| start_error(format!("order_entry '{}': {e}", config.order_entry)))?;
    let listener = mio::net::TcpListener::bind(entry_addr)
        .map_err(|e| start_error(format!("cannot listen on {entry_addr}: {e}")))?;
    let fills_listener = std::net::TcpListener::bind(&config.fill_stream)
        .map_err(|e| start_error(format!("cannot listen on {}: {e}", config.fill_stream)))?;
    let admin_listener = match &config.admin.listen {
        Some(addr) => {
            let addr: SocketAddr = addr
                .parse()
                .map_err(|e| start_error(format!("[admin] listen '{addr}': {e}")))?;
            Some(
                mio::net::TcpListener::bind(addr)
                    .map_err(|e| start_error(format!("cannot listen on {addr}: {e}")))?,
            )
        }
        None => None,
    };
    let admin_ready = match &admin_listener {
        Some(listener) => format!(" admin={}", listener.local_addr().map_err(start_error)?),
        None => String::new(),
    };
    let md_listener = match &config.market_data {
        Some(md) => {
            let addr: SocketAddr = md
                .listen
                .parse()
                .map_err(|e| start_error(format!("[market_data] listen '{}': {e}", md.listen)))?;
            Some(
                mio::net::TcpListener::bind(addr)
                    .map_err(|e| start_error(format!("cannot listen on {addr}: {e}")))?,
            )
        }
        None => None,
    };
    let md_ready = match &md_listener {
        Some(listener) => format!(
            " market_data={}",
            listener.local_addr().map_err(start_error)?
        ),
        None => String::new(),
    };
    let metrics_listener = match &config.metrics_listen {
        Some(addr) => Some(
            std::net::TcpListener::bind(addr)
                .map_err(|e| start_error(format!("[metrics] listen '{addr}': {e}")))?,
        ),
        None => None,
    };
    let metrics_ready = match &metrics_listener {
        Some(listener) => format!(" metrics={}", listener.local_addr().map_err(start_error)?),
        None => String::new(),
    };
    let entry_local = listener.local_addr().map_err(start_error)?;
    let fills_local = fills_listener.local_addr().map_err(start_error)?;

    let poll = mio::Poll::new().map_err(start_error)?;
    let waker = Arc::new(mio::Waker::new(poll.registry(), net::WAKER).map_err(start_error)?);
    let to_engine = Arc::new(ArrayQueue::new(RING_CAPACITY));
    let from_engine = Arc::new(ArrayQueue::new(RING_CAPACITY));

    let stop_fills = Arc::new(AtomicBool::new(false));
    if config.fill_subscribers.is_empty() {
        tracing::warn!("no [[fill_subscriber]]: the fill stream refuses every subscriber");
    }
    let fill_server = {
        let stop_fills = Arc::clone(&stop_fills);
        let subscribers = Arc::new(config.fill_subscribers.clone());
        std::thread::Builder::new()
            .name("fill-stream".into())
            .spawn(move || {
                fills::serve(
                    fills_listener,
                    fill_path,
                    fill_shared,
                    stop_fills,
                    subscribers,
                )
            })
            .map_err(start_error)?
    };
    let metrics = Arc::new(metrics::Metrics::default());
    core.set_metrics(Arc::clone(&metrics));
    let metrics_server = match metrics_listener {
        Some(listener) => {
            let (metrics, ring, stop) = (
                Arc::clone(&metrics),
                Arc::clone(&to_engine),
                Arc::clone(&stop_fills),
            );
            Some(
                std::thread::Builder::new()
                    .name("metrics".into())
                    .spawn(move || metrics::serve(listener, metrics, ring, stop))
                    .map_err(start_error)?,
            )
        }
        None => None,
    };
    let spin = Duration::from_micros(config.session.engine_spin_us);
    let gateway_sleeping = Arc::new(AtomicBool::new(false));
    let (engine, inline) = if config.session.engine_inline {
        (None, Some(Box::new(core)))
    } else {
        let (input, output, waker, sleeping) = (
            Arc::clone(&to_engine),
            Arc::clone(&from_engine),
            Arc::clone(&waker),
            Arc::clone(&gateway_sleeping),
        );
        let thread = std::thread::Builder::new()
            .name("engine".into())
            .spawn(move || engine_loop(core, &input, &output, &waker, &sleeping, spin))
            .map_err(start_error)?;
        (Some(thread), None)
    };
    let instruments = config
        .instruments
        .iter()
        .zip(&specs)
        .map(|(c, s)| InstrumentRef {
            symbol: c.symbol.clone(),
            sub_ledger: Arc::from(c.sub_ledger.as_str()),
            tick_usd: c.tick_usd,
            tick_micros: s.tick_micros,
            min_price: s.min_price.ticks(),
            max_price: s.max_price.ticks(),
        })
        .collect();
    let gateway = Gateway::new(
        poll,
        Listeners {
            order_entry: listener,
            admin: admin_listener,
            market_data: md_listener,
        },
        &config,
        router,
        instruments,
        EngineEnds {
            to_engine,
            from_engine,
            engine: engine
                .as_ref()
                .map_or_else(std::thread::current, |e| e.thread().clone()),
            inline,
            sleeping: gateway_sleeping,
            metrics: Arc::clone(&metrics),
        },
        seed,
    )
    .map_err(start_error)?;

    println!(
        "ready order_entry={entry_local} fill_stream={fills_local} recovered_records={records}{admin_ready}{metrics_ready}{md_ready}"
    );
    let _ = std::io::stdout().flush();

    let served = gateway.run(&stop);
    let engine_result = engine.map_or(Ok(()), std::thread::JoinHandle::join);
    stop_fills.store(true, Ordering::Release);
    let _ = fill_server.join();
    if let Some(server) = metrics_server {
        let _ = server.join();
    }
    served.map_err(start_error)?;
    engine_result.map_err(|_| start_error("the engine thread panicked"))?;
    Ok(())
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
