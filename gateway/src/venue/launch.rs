//! Start-up pieces shared by a single venue and a cluster node: the venue
//! file with the command line's overrides, what the journal adds to it,
//! the listeners, the fill-stream and metrics threads, and the gateway
//! built on a recovered core.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_queue::ArrayQueue;
use tonnex_engine::{InstrumentSpec, State};

use super::core::{Core, Input, Output};
use super::fills::{self, FillLog};
use super::inline::Engine;
use super::metrics::Metrics;
use super::server::{Ended, EngineEnds, Gateway, InstrumentRef, Listeners, Seed, SeedOrder};
use super::startup::{rules_in_force, rules_sha256_of, rules_version_of, StartupEngine};
use super::{admin_accounts, admin_instruments, instrument_spec, start_error, RunOptions};
use super::{VenueError, RING_CAPACITY};
use crate::compliance::Router;
use crate::config::VenueConfig;

/// The venue file with the command line's overrides, checked.
pub(super) struct Prepared {
    pub config: VenueConfig,
    pub router: Router,
    pub specs: Vec<InstrumentSpec>,
}

/// Reads the venue file and applies `options` to it.
pub(super) fn prepare(options: &RunOptions) -> Result<Prepared, VenueError> {
    let (mut config, router) = crate::compliance::load_router(&options.config)?;
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
    let specs = config
        .instruments
        .iter()
        .map(instrument_spec)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| start_error(format!("{}: {e}", config.path.display())))?;
    Ok(Prepared {
        config,
        router,
        specs,
    })
}

impl Prepared {
    /// Takes in what the journal added to the venue file: accounts added
    /// and instruments listed at runtime.
    pub fn adopt(&mut self, state: &State) -> Result<(), VenueError> {
        // Accounts added at runtime: the pre-router and the admin desk's file
        // know them (the gateway takes their credential from the journal).
        for listing in state.venue().accounts_added() {
            let role = admin_accounts::listed_role(&listing.role).map_err(start_error)?;
            if self.config.accounts.iter().all(|a| a.id != listing.account) {
                self.router.add_account(
                    listing.account,
                    role,
                    crate::config::AccountStatus::PendingKyc,
                );
                self.config
                    .accounts
                    .push(admin_accounts::listed_account(listing, role));
            }
        }
        // Instruments listed at runtime are in the journal, not the file.
        for listing in state.venue().listings() {
            let index = listing.instrument as usize;
            if index < self.config.instruments.len() {
                continue; // the file lists it too (genesis checks it is the same)
            }
            let instrument = admin_instruments::listed_instrument(listing).map_err(start_error)?;
            self.specs
                .push(instrument_spec(&instrument).map_err(start_error)?);
            self.router.add_instrument(index, &instrument);
            self.config.instruments.push(instrument);
        }
        Ok(())
    }

    /// Start-up commands (instruments, genesis deposits on an empty
    /// journal, the rules in force), then what the gateway rebuilds from
    /// the state.
    pub fn start(&self, engine: &mut dyn StartupEngine) -> Result<Seed, VenueError> {
        let fresh = engine.core().state().last_seq() == 0;
        super::startup::genesis(engine, &self.config, &self.specs, fresh)?;
        let rules = rules_in_force(&self.config, self.router.rules())?;
        super::startup::record_rules(engine, &rules)?;
        let state = engine.core().state();
        Ok(Seed {
            venue: state.venue().image(),
            orders: seed_orders(state),
            rules_version: rules_version_of(&rules),
            rules_sha256: rules_sha256_of(&rules),
            rule_versions: crate::compliance::load_rules(&self.config)?.0,
            halted: state.books().iter().map(|b| b.halted).collect(),
            last_seq: state.last_seq(),
        })
    }

    /// The instruments as the gateway needs them.
    pub fn instruments(&self) -> Vec<InstrumentRef> {
        self.config
            .instruments
            .iter()
            .zip(&self.specs)
            .map(|(c, s)| InstrumentRef {
                symbol: crate::interned::intern(&c.symbol),
                sub_ledger: crate::interned::intern(&c.sub_ledger),
                tick_usd: c.tick_usd,
                tick_micros: s.tick_micros,
                min_price: s.min_price.ticks(),
                max_price: s.max_price.ticks(),
            })
            .collect()
    }
}

/// Every port the venue serves, bound.
pub(super) struct Listening {
    pub order_entry: mio::net::TcpListener,
    pub fills: Option<std::net::TcpListener>,
    pub admin: Option<mio::net::TcpListener>,
    pub market_data: Option<mio::net::TcpListener>,
    pub metrics: Option<std::net::TcpListener>,
    /// The ready line's addresses: order entry and fill stream, then the
    /// optional ports (after `recovered_records`).
    pub head: String,
    pub tail: String,
}

/// The recovered state's live client orders: every resting order with a
/// client order id (the pool slot keeps it) and every buyer's buy the venue
/// tags (a buyer may send none).
fn seed_orders(state: &tonnex_engine::State) -> Vec<SeedOrder> {
    let mut orders = Vec::new();
    state.for_each_resting(|slot| {
        if slot.client_order_id != 0 || state.venue().order(slot.id).is_some() {
            orders.push(SeedOrder {
                order_id: slot.id,
                account: slot.account,
                instrument: u32::from(slot.instrument),
                open: slot.qty,
            });
        }
    });
    orders
}

fn bind_mio(addr: &str, what: &str) -> Result<mio::net::TcpListener, VenueError> {
    let parsed: SocketAddr = addr
        .parse()
        .map_err(|e| start_error(format!("{what} '{addr}': {e}")))?;
    mio::net::TcpListener::bind(parsed)
        .map_err(|e| start_error(format!("cannot listen on {parsed}: {e}")))
}

/// Binds every port of `config`.
pub(super) fn listen(config: &VenueConfig) -> Result<Listening, VenueError> {
    let order_entry = bind_mio(&config.order_entry, "order_entry")?;
    let fills = std::net::TcpListener::bind(&config.fill_stream)
        .map_err(|e| start_error(format!("cannot listen on {}: {e}", config.fill_stream)))?;
    let admin = match &config.admin.listen {
        Some(addr) => Some(bind_mio(addr, "[admin] listen")?),
        None => None,
    };
    let market_data = match &config.market_data {
        Some(md) => Some(bind_mio(&md.listen, "[market_data] listen")?),
        None => None,
    };
    let metrics = match &config.metrics_listen {
        Some(addr) => Some(
            std::net::TcpListener::bind(addr)
                .map_err(|e| start_error(format!("[metrics] listen '{addr}': {e}")))?,
        ),
        None => None,
    };
    let head = format!(
        "order_entry={} fill_stream={}",
        order_entry.local_addr().map_err(start_error)?,
        fills.local_addr().map_err(start_error)?
    );
    let extra = [
        (
            "admin",
            admin.as_ref().map(mio::net::TcpListener::local_addr),
        ),
        (
            "metrics",
            metrics.as_ref().map(std::net::TcpListener::local_addr),
        ),
        (
            "market_data",
            market_data.as_ref().map(mio::net::TcpListener::local_addr),
        ),
    ];
    let mut tail = String::new();
    for (name, addr) in extra {
        if let Some(addr) = addr {
            tail.push_str(&format!(" {name}={}", addr.map_err(start_error)?));
        }
    }
    Ok(Listening {
        order_entry,
        fills: Some(fills),
        admin,
        market_data,
        metrics,
        head,
        tail,
    })
}

/// The fill-stream and metrics threads.
pub(super) struct Background {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    pub metrics: Arc<Metrics>,
    pub to_engine: Arc<ArrayQueue<Input>>,
}

/// Starts serving the fill stream from `fill_log` and, if configured, the
/// metrics.
pub(super) fn background(
    config: &VenueConfig,
    listening: &mut Listening,
    fill_log: &FillLog,
) -> Result<Background, VenueError> {
    let stop = Arc::new(AtomicBool::new(false));
    let metrics = Arc::new(Metrics::default());
    let to_engine = Arc::new(ArrayQueue::new(RING_CAPACITY));
    let mut threads = Vec::new();
    if config.fill_subscribers.is_empty() {
        tracing::warn!("no [[fill_subscriber]]: the fill stream refuses every subscriber");
    }
    if let Some(listener) = listening.fills.take() {
        let (stop, subscribers) = (Arc::clone(&stop), Arc::new(config.fill_subscribers.clone()));
        let (path, shared) = (fill_log.path().to_path_buf(), fill_log.shared());
        threads.push(
            std::thread::Builder::new()
                .name("fill-stream".into())
                .spawn(move || fills::serve(listener, path, shared, stop, subscribers))
                .map_err(start_error)?,
        );
    }
    if let Some(listener) = listening.metrics.take() {
        let (metrics, ring, stop) = (
            Arc::clone(&metrics),
            Arc::clone(&to_engine),
            Arc::clone(&stop),
        );
        threads.push(
            std::thread::Builder::new()
                .name("metrics".into())
                .spawn(move || super::metrics::serve(listener, metrics, ring, stop))
                .map_err(start_error)?,
        );
    }
    Ok(Background {
        stop,
        threads,
        metrics,
        to_engine,
    })
}

impl Background {
    /// Stops the threads and waits for them.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Release);
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// The gateway on `poll` over `engine` (inline) or `engine_thread`'s rings,
/// printing the ready line with `role` appended, run until it ends.
#[allow(clippy::too_many_arguments)]
pub(super) fn serve(
    prepared: Prepared,
    listening: Listening,
    background: &Background,
    poll: mio::Poll,
    waker: Option<Arc<mio::Waker>>,
    engine: Result<Engine, Core>,
    seed: Seed,
    ready: &str,
    stop: &AtomicBool,
) -> Result<Ended, VenueError> {
    let instruments = prepared.instruments();
    let from_engine = Arc::new(ArrayQueue::<Output>::new(RING_CAPACITY));
    let gateway_sleeping = Arc::new(AtomicBool::new(false));
    let spin = std::time::Duration::from_micros(prepared.config.session.engine_spin_us);
    let (thread, inline) = match engine {
        Ok(engine) => (None, Some(engine)),
        Err(core) => {
            let waker = waker.ok_or_else(|| start_error("the engine thread needs a waker"))?;
            let (input, output, sleeping) = (
                Arc::clone(&background.to_engine),
                Arc::clone(&from_engine),
                Arc::clone(&gateway_sleeping),
            );
            let thread = std::thread::Builder::new()
                .name("engine".into())
                .spawn(move || super::engine_loop(core, &input, &output, &waker, &sleeping, spin))
                .map_err(start_error)?;
            (Some(thread), None)
        }
    };
    let gateway = Gateway::new(
        poll,
        Listeners {
            order_entry: listening.order_entry,
            admin: listening.admin,
            market_data: listening.market_data,
        },
        &prepared.config,
        prepared.router,
        instruments,
        EngineEnds {
            to_engine: Arc::clone(&background.to_engine),
            from_engine,
            engine: thread
                .as_ref()
                .map_or_else(std::thread::current, |e| e.thread().clone()),
            inline,
            sleeping: gateway_sleeping,
            metrics: Arc::clone(&background.metrics),
        },
        seed,
    )
    .map_err(start_error)?;
    println!("ready {ready}");
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let served = gateway.run(stop);
    let engine_result = thread.map_or(Ok(()), JoinHandle::join);
    let ended = served.map_err(start_error)?;
    engine_result.map_err(|_| start_error("the engine thread panicked"))?;
    Ok(ended)
}
