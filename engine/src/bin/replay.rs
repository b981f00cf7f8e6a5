//! `tonnex-replay`: replays an order-flow workload (FORMAT.md) through the
//! real engine, in-process and single-threaded, with account holds off.
//!
//! ```text
//! tonnex-replay WORKLOAD [--fills FILE] [--book FILE] [--latency] [--repeat N]
//! ```
//! The whole file is parsed first; only the applying of commands is timed.
//! Last line: `ops=N trades=N volume=N resting=N elapsed_ns=N ops_per_sec=N`,
//! with `p50_ns=N p99_ns=N p999_ns=N max_ns=N` appended under `--latency`.

// This tool times the engine from outside it; the engine itself never reads a clock.
#![allow(clippy::disallowed_methods)]

use std::fs::File;
use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::time::Instant;

use tonnex_engine::{dump, workload, Command, EngineConfig, Event, PrefetchStage, State};

const USAGE: &str =
    "usage: tonnex-replay WORKLOAD [--fills FILE] [--book FILE] [--latency] [--repeat N]";

struct Options {
    workload: String,
    fills: Option<String>,
    book: Option<String>,
    latency: bool,
    repeat: usize,
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        workload: String::new(),
        fills: None,
        book: None,
        latency: false,
        repeat: 1,
    };
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
            "--repeat" => {
                let text = value()?;
                options.repeat = text
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or(format!("--repeat needs a positive integer, found '{text}'"))?;
            }
            "-h" | "--help" => return Err(String::new()),
            flag if flag.starts_with("--") => return Err(format!("unknown option '{flag}'")),
            path if options.workload.is_empty() => options.workload = path.to_string(),
            extra => return Err(format!("unexpected argument '{extra}'")),
        }
        i += 1;
    }
    if options.workload.is_empty() {
        return Err("missing WORKLOAD".to_string());
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
}

fn fresh_state() -> State {
    let mut state = State::new(EngineConfig {
        holds: false,
        order_capacity: 1 << 12,
        ..EngineConfig::default()
    });
    let mut events = Vec::new();
    state.apply(
        1,
        &Command::AddInstrument {
            instrument: 0,
            spec: workload::instrument(),
        },
        &mut events,
    );
    assert_eq!(events, [Event::Applied], "workload instrument");
    state
}

fn run(commands: &[Command], latency: bool) -> Run {
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
        events.clear();
        state.apply(i as u64 + 2, command, &mut events);
        if latency {
            latencies.push(timer::now().wrapping_sub(t0));
        }
        tally(&events, &mut trades, &mut volume);
    }
    let elapsed_ns = started.elapsed().as_nanos() as u64;
    Run {
        elapsed_ns,
        trades,
        volume,
        resting: state.resting_orders(),
        bytes_per_order: state.bytes_per_resting_order(),
        peak_resting: state.peak_resting_orders(),
        latencies,
    }
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
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse_args(&args) {
        Ok(options) => options,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("tonnex-replay: {message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let text = match std::fs::read_to_string(&options.workload) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("{}: cannot read: {error}", options.workload);
            return ExitCode::from(2);
        }
    };
    let commands = match workload::parse(&text) {
        Ok(commands) => commands,
        Err(error) => {
            eprintln!("{}:{error}", options.workload);
            return ExitCode::from(2);
        }
    };
    drop(text);
    if options.fills.is_some() || options.book.is_some() {
        if let Err(error) = write_dumps(&commands, &options) {
            eprintln!("tonnex-replay: writing dumps: {error}");
            return ExitCode::from(1);
        }
    }
    let mut runs: Vec<Run> = (0..options.repeat)
        .map(|_| run(&commands, options.latency))
        .collect();
    runs.sort_by_key(|r| r.elapsed_ns);
    let median = &mut runs[(options.repeat - 1) / 2];
    let ops = commands.len() as u64;
    let ops_per_sec =
        (u128::from(ops) * 1_000_000_000 / u128::from(median.elapsed_ns.max(1))) as u64;
    println!(
        "memory peak_resting={} bytes_per_resting_order={}",
        median.peak_resting, median.bytes_per_order
    );
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
