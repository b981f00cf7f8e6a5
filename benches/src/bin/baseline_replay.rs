//! `tonnex-baseline-replay WORKLOAD [--repeat N]`: replays a `--mix basic`
//! workload through the plain BTreeMap baseline book, timed exactly as
//! `tonnex-replay` times the engine, with the same last line, so the two
//! can be compared in one run. `--log-format json` (anywhere) writes its
//! diagnostics as JSON objects, as every tonnex binary can.

use std::process::ExitCode;
use std::time::Instant;

use tonnex_benches::BaselineBook;
use tonnex_engine::workload;
use tracing::error;

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = tonnex_logs::init_tool_from(&mut args) {
        eprintln!("tonnex-baseline-replay: {e}");
        return ExitCode::from(2);
    }
    let (path, repeat) = match args.as_slice() {
        [path] => (path.clone(), 1usize),
        [path, flag, n] if flag == "--repeat" => match n.parse() {
            Ok(n) if n > 0 => (path.clone(), n),
            _ => {
                error!("--repeat needs a positive integer, found '{n}'");
                return ExitCode::from(2);
            }
        },
        _ => {
            error!("usage: tonnex-baseline-replay WORKLOAD [--repeat N] [--log-format text|json]");
            return ExitCode::from(2);
        }
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) => {
            error!("{path}: cannot read: {error}");
            return ExitCode::from(2);
        }
    };
    let commands = match workload::parse(&text) {
        Ok(commands) => commands,
        Err(error) => {
            error!("{path}:{error}");
            return ExitCode::from(2);
        }
    };
    let mut runs = Vec::new();
    for _ in 0..repeat {
        let mut book = BaselineBook::new();
        let mut trades = Vec::with_capacity(1024);
        let (mut count, mut volume) = (0u64, 0u64);
        let started = Instant::now();
        for command in &commands {
            trades.clear();
            if !book.apply(command, &mut trades) {
                error!("{path}: the baseline supports only L, M, I, C and R (use --mix basic)");
                return ExitCode::from(2);
            }
            count += trades.len() as u64;
            volume += trades.iter().map(|t| t.3).sum::<u64>();
        }
        let elapsed_ns = started.elapsed().as_nanos() as u64;
        runs.push((elapsed_ns, count, volume, book.resting()));
    }
    runs.sort_by_key(|r| r.0);
    let (elapsed_ns, trades, volume, resting) = runs[(repeat - 1) / 2];
    let ops = commands.len() as u64;
    let ops_per_sec = (u128::from(ops) * 1_000_000_000 / u128::from(elapsed_ns.max(1))) as u64;
    println!("ops={ops} trades={trades} volume={volume} resting={resting} elapsed_ns={elapsed_ns} ops_per_sec={ops_per_sec}");
    ExitCode::SUCCESS
}
