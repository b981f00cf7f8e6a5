//! `tonnex-replay`: replays an order-flow workload (FORMAT.md) through the
//! real engine, in-process and single-threaded, with account holds off.
//!
//! ```text
//! tonnex-replay WORKLOAD [--fills FILE] [--book FILE] [--latency] [--repeat N]
//!               [--journal-out DIR [--durability POLICY] [--segment-mb N] [--snapshot-every N]]
//! tonnex-replay --journal DIR [--book FILE] [--orders FILE] [--dump] [--digest]
//! ```
//! The whole file is parsed first; only the engine loop is timed (with
//! `--journal-out`, journal appends included: each command is journaled
//! before it is applied, as in the venue).
//! Last line: `ops=N trades=N volume=N resting=N elapsed_ns=N ops_per_sec=N`,
//! with `p50_ns=N p99_ns=N p999_ns=N max_ns=N` appended under `--latency`.
//! `--journal` mode: see `journal_mode.rs`.
//! `--log-format text|json` (anywhere): diagnostics on standard error as
//! bare lines (`WORKLOAD:LINE: ...`, the default) or JSON objects.

// This tool times the engine from outside it; the engine itself never reads a clock.
#![allow(clippy::disallowed_methods)]

use std::fs::File;
use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::time::Instant;

mod generate_mode;
mod journal_mode;

use std::path::PathBuf;
use std::time::Duration;

use journal_mode::JournalOptions;
use tonnex_engine::journal::{Durability, Journal, JournalConfig, RecoverOptions};
use tonnex_engine::{dump, snapshot, workload, Command, EngineConfig, Event, PrefetchStage, State};
use tonnex_logs::LogFormat;
use tracing::error;

const USAGE: &str =
    "usage: tonnex-replay WORKLOAD [--fills FILE] [--book FILE] [--latency] [--repeat N]
                     [--journal-out DIR [--durability process|sync|batch:RECORDS:MICROS]
                      [--segment-mb N] [--snapshot-every N]]
       tonnex-replay --journal DIR [--book FILE] [--orders FILE] [--dump] [--digest]
       tonnex-replay generate --profile steady|deep --mix basic|full --ops N --seed S [--depth N]
       (any form) [--log-format text|json]";

/// Journaling while replaying a workload.
struct JournalOut {
    dir: PathBuf,
    durability: Durability,
    segment_bytes: u64,
    snapshot_every: Option<u64>,
}

struct Options {
    workload: String,
    fills: Option<String>,
    book: Option<String>,
    latency: bool,
    repeat: usize,
    journal: Option<String>,
    orders: Option<String>,
    dump: bool,
    digest: bool,
    journal_out: Option<JournalOut>,
}

fn positive(text: &str, flag: &str) -> Result<u64, String> {
    text.parse()
        .ok()
        .filter(|&n| n > 0)
        .ok_or(format!("{flag} needs a positive integer, found '{text}'"))
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        workload: String::new(),
        fills: None,
        book: None,
        latency: false,
        repeat: 1,
        journal: None,
        orders: None,
        dump: false,
        digest: false,
        journal_out: None,
    };
    let (mut durability, mut segment_mb, mut snapshot_every, mut journal_out) =
        (None, None, None, None);
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        let mut value = || {
            i += 1;
            args.get(i).cloned().ok_or(format!("{arg} needs a value"))
        };
        match arg {
            "--fills" => options.fills = Some(value()?),
            "--book" => options.book = Some(value()?),
            "--latency" => options.latency = true,
            "--repeat" => options.repeat = positive(&value()?, "--repeat")? as usize,
            "--journal" => options.journal = Some(value()?),
            "--orders" => options.orders = Some(value()?),
            "--dump" => options.dump = true,
            "--digest" => options.digest = true,
            "--journal-out" => journal_out = Some(PathBuf::from(value()?)),
            "--durability" => durability = Some(Durability::parse(&value()?)?),
            "--segment-mb" => segment_mb = Some(positive(&value()?, "--segment-mb")?),
            "--snapshot-every" => snapshot_every = Some(positive(&value()?, "--snapshot-every")?),
            "-h" | "--help" => return Err(String::new()),
            flag if flag.starts_with("--") => return Err(format!("unknown option '{flag}'")),
            path if options.workload.is_empty() => options.workload = path.to_string(),
            extra => return Err(format!("unexpected argument '{extra}'")),
        }
        i += 1;
    }
    if options.journal.is_some() {
        if !options.workload.is_empty()
            || options.fills.is_some()
            || options.latency
            || journal_out.is_some()
        {
            return Err(
                "--journal DIR takes only --book, --orders, --dump and --digest".to_string(),
            );
        }
        return Ok(options);
    }
    if options.orders.is_some() || options.dump || options.digest {
        return Err("--orders, --dump and --digest go with --journal DIR".to_string());
    }
    if options.workload.is_empty() {
        return Err("missing WORKLOAD".to_string());
    }
    match journal_out {
        Some(dir) => {
            options.journal_out = Some(JournalOut {
                dir,
                durability: durability.unwrap_or(Durability::Process),
                segment_bytes: segment_mb
                    .map_or(tonnex_engine::journal::DEFAULT_SEGMENT_BYTES, |mb| mb << 20),
                snapshot_every,
            });
        }
        None if durability.is_some() || segment_mb.is_some() || snapshot_every.is_some() => {
            return Err(
                "--durability, --segment-mb and --snapshot-every go with --journal-out DIR"
                    .to_string(),
            );
        }
        None => {}
    }
    Ok(options)
}

/// One timed pass over the workload on fresh state.
struct Run {
    elapsed_ns: u64,
    trades: u64,
    volume: u64,
    resting: usize,
    bytes_per_order: usize,
    peak_resting: usize,
    /// Per-command latencies in timer ticks (only with `--latency`).
    latencies: Vec<u64>,
    /// How long each snapshot held up the engine loop.
    snapshot_pauses: Vec<Duration>,
}

/// The replay engine's configuration: no holds (workloads carry no balances).
fn replay_config() -> EngineConfig {
    EngineConfig {
        holds: false,
        order_capacity: 1 << 12,
        ..EngineConfig::default()
    }
}

/// The command (sequence 1) that defines the workload's instrument.
fn instrument_command() -> Command {
    Command::AddInstrument {
        instrument: 0,
        spec: workload::instrument(),
    }
}

fn fresh_state() -> State {
    // Workloads never ask for one account's orders: no lists to keep.
    let mut state = State::new(replay_config()).without_owner_lists();
    let mut events = Vec::new();
    state.apply(1, &instrument_command(), &mut events);
    assert_eq!(events, [Event::Applied], "workload instrument");
    state
}

/// An empty journal in `out.dir` (earlier segments and snapshots removed),
/// holding sequence 1, the instrument.
fn fresh_journal(out: &JournalOut) -> Result<Journal, String> {
    std::fs::create_dir_all(&out.dir).map_err(|e| format!("{}: {e}", out.dir.display()))?;
    for entry in std::fs::read_dir(&out.dir)
        .map_err(|e| format!("{}: {e}", out.dir.display()))?
        .flatten()
    {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if (name.starts_with("journal-") && name.ends_with(".seg")) || name.starts_with("snapshot-")
        {
            std::fs::remove_file(entry.path())
                .map_err(|e| format!("{}: {e}", entry.path().display()))?;
        }
    }
    let empty = tonnex_engine::journal::recover(
        &out.dir,
        RecoverOptions {
            use_snapshot: false,
            track_orders: false,
            config: replay_config(),
        },
    )
    .map_err(|e| e.to_string())?;
    let config = JournalConfig {
        dir: out.dir.clone(),
        segment_bytes: out.segment_bytes,
        durability: out.durability,
    };
    let mut journal = Journal::open(config, replay_config(), &empty).map_err(|e| e.to_string())?;
    journal
        .append(1, &instrument_command())
        .map_err(|e| e.to_string())?;
    Ok(journal)
}

fn run(
    commands: &[Command],
    latency: bool,
    journal_out: Option<&JournalOut>,
) -> Result<Run, String> {
    let mut journal = journal_out.map(fresh_journal).transpose()?;
    let mut snapshots = Vec::new();
    let mut snapshot_pauses = Vec::new();
    let mut state = fresh_state();
    let mut events = Vec::with_capacity(1024);
    let (mut trades, mut volume) = (0u64, 0u64);
    let mut latencies = Vec::new();
    let started = Instant::now();
    if latency {
        latencies.reserve_exact(commands.len());
    }
    for (i, command) in commands.iter().enumerate() {
        let t0 = if latency { timer::now() } else { 0 };
        // The engine thread sees its queue: start fetching what the coming
        // commands will touch while this one runs.
        prefetch_ahead(&state, commands, i);
        let seq = i as u64 + 2;
        if let Some(journal) = journal.as_mut() {
            journal.append(seq, command).map_err(|e| e.to_string())?;
            if let Some(every) = journal_out.and_then(|o| o.snapshot_every) {
                if (seq - 1).is_multiple_of(every) {
                    // The snapshot waits for this command's effects: apply first.
                    events.clear();
                    state.apply(seq, command, &mut events);
                    let paused = Instant::now();
                    snapshots.push(snapshot::write_in_background(
                        &state,
                        &journal_out.expect("journaling").dir,
                    ));
                    snapshot_pauses.push(paused.elapsed());
                    if latency {
                        latencies.push(timer::now().wrapping_sub(t0));
                    }
                    tally(&events, &mut trades, &mut volume);
                    continue;
                }
            }
        }
        events.clear();
        state.apply(seq, command, &mut events);
        if latency {
            latencies.push(timer::now().wrapping_sub(t0));
        }
        tally(&events, &mut trades, &mut volume);
    }
    let elapsed_ns = started.elapsed().as_nanos() as u64;
    // Outside the timing: with `process` durability the records are safe
    // already; this only leaves the folder fully on disk for later runs.
    if let Some(journal) = journal.as_mut() {
        journal.sync().map_err(|e| e.to_string())?;
    }
    for handle in snapshots {
        handle
            .join()
            .map_err(|_| "snapshot thread panicked".to_string())?
            .map_err(|e| e.to_string())?;
    }
    Ok(Run {
        elapsed_ns,
        trades,
        volume,
        resting: state.resting_orders(),
        bytes_per_order: state.bytes_per_resting_order(),
        peak_resting: state.peak_resting_orders(),
        latencies,
        snapshot_pauses,
    })
}

/// The three prefetch stages, each a few commands ahead of the next.
#[inline]
fn prefetch_ahead(state: &State, commands: &[Command], i: usize) {
    if let Some(command) = commands.get(i + 6) {
        state.prefetch(command, PrefetchStage::Index);
    }
    if let Some(command) = commands.get(i + 3) {
        state.prefetch(command, PrefetchStage::Order);
    }
    if let Some(command) = commands.get(i + 1) {
        state.prefetch(command, PrefetchStage::Links);
    }
}

#[inline]
fn tally(events: &[Event], trades: &mut u64, volume: &mut u64) {
    for event in events {
        if let Event::Fill { qty, .. } = event {
            *trades += 1;
            *volume += qty.tonnes();
        }
    }
}

/// An untimed pass that writes the requested dumps.
fn write_dumps(commands: &[Command], options: &Options) -> std::io::Result<()> {
    let mut state = fresh_state();
    let mut events = Vec::new();
    let mut fills = match &options.fills {
        Some(path) => Some(BufWriter::new(File::create(path)?)),
        None => None,
    };
    for (seq, command) in (2..).zip(commands) {
        events.clear();
        state.apply(seq, command, &mut events);
        if let Some(out) = fills.as_mut() {
            for event in &events {
                dump::write_fill(out, event)?;
            }
        }
    }
    if let Some(mut out) = fills {
        out.flush()?;
    }
    if let Some(path) = &options.book {
        let mut out = BufWriter::new(File::create(path)?);
        dump::write_book(&mut out, &state, 0)?;
        out.flush()?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let format = match tonnex_logs::init_tool_from(&mut args) {
        Ok(format) => format,
        Err(e) => {
            eprintln!("tonnex-replay: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if args.first().map(String::as_str) == Some("generate") {
        return generate_mode::run(&args[1..]);
    }
    let options = match parse_args(&args) {
        Ok(options) => options,
        Err(message) => {
            if !message.is_empty() {
                error!("tonnex-replay: {message}");
            }
            if format == LogFormat::Text {
                eprintln!("{USAGE}");
            }
            return ExitCode::from(2);
        }
    };
    if let Some(dir) = &options.journal {
        return journal_mode::run(&JournalOptions {
            dir: dir.clone(),
            book: options.book.clone(),
            orders: options.orders.clone(),
            dump: options.dump,
            digest: options.digest,
        });
    }
    let text = match std::fs::read_to_string(&options.workload) {
        Ok(text) => text,
        Err(error) => {
            error!("{}: cannot read: {error}", options.workload);
            return ExitCode::from(2);
        }
    };
    let commands = match workload::parse(&text) {
        Ok(commands) => commands,
        Err(error) => {
            error!("{}:{error}", options.workload);
            return ExitCode::from(2);
        }
    };
    drop(text);
    if options.fills.is_some() || options.book.is_some() {
        if let Err(error) = write_dumps(&commands, &options) {
            error!("tonnex-replay: writing dumps: {error}");
            return ExitCode::from(1);
        }
    }
    let mut runs = Vec::with_capacity(options.repeat);
    for _ in 0..options.repeat {
        match run(&commands, options.latency, options.journal_out.as_ref()) {
            Ok(result) => runs.push(result),
            Err(message) => {
                error!("tonnex-replay: journal: {message}");
                return ExitCode::from(1);
            }
        }
    }
    runs.sort_by_key(|r| r.elapsed_ns);
    let median = &mut runs[(options.repeat - 1) / 2];
    let ops = commands.len() as u64;
    let ops_per_sec =
        (u128::from(ops) * 1_000_000_000 / u128::from(median.elapsed_ns.max(1))) as u64;
    println!(
        "memory peak_resting={} bytes_per_resting_order={}",
        median.peak_resting, median.bytes_per_order
    );
    if let Some(out) = &options.journal_out {
        let pauses = &median.snapshot_pauses;
        let max_pause_us = pauses.iter().max().map_or(0, Duration::as_micros);
        println!(
            "journal dir={} durability={:?} snapshots={} snapshot_pause_max_us={max_pause_us}",
            out.dir.display(),
            out.durability,
            pauses.len()
        );
    }
    let mut line = format!(
        "ops={ops} trades={} volume={} resting={} elapsed_ns={} ops_per_sec={ops_per_sec}",
        median.trades, median.volume, median.resting, median.elapsed_ns
    );
    if options.latency && !median.latencies.is_empty() {
        let ns_per_tick = timer::ns_per_tick();
        let latencies = &mut median.latencies;
        latencies.sort_unstable();
        let at = |q: f64| {
            let i = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
            (latencies[i] as f64 * ns_per_tick).round() as u64
        };
        line.push_str(&format!(
            " p50_ns={} p99_ns={} p999_ns={} max_ns={}",
            at(0.50),
            at(0.99),
            at(0.999),
            at(1.0)
        ));
    }
    println!("{line}");
    ExitCode::SUCCESS
}

/// A cheap per-command timer: the time-stamp counter on x86-64 (a few ns to
/// read, calibrated against the monotonic clock), the monotonic clock elsewhere.
mod timer {
    use std::time::{Duration, Instant};

    #[cfg(target_arch = "x86_64")]
    #[inline]
    pub fn now() -> u64 {
        // SAFETY: `rdtsc` has no preconditions on x86-64.
        unsafe { core::arch::x86_64::_rdtsc() }
    }

    #[cfg(target_arch = "x86_64")]
    pub fn ns_per_tick() -> f64 {
        let (c0, t0) = (now(), Instant::now());
        std::thread::sleep(Duration::from_millis(50));
        let (c1, t1) = (now(), Instant::now());
        t1.duration_since(t0).as_nanos() as f64 / (c1.wrapping_sub(c0)).max(1) as f64
    }

    #[cfg(not(target_arch = "x86_64"))]
    pub fn now() -> u64 {
        use std::sync::OnceLock;
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }

    #[cfg(not(target_arch = "x86_64"))]
    pub fn ns_per_tick() -> f64 {
        1.0
    }
}
