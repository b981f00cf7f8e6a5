//! `tonnex-venue`: the venue binary.
//!
//! ```text
//! tonnex-venue check --config FILE --orders ORDERS.jsonl
//! tonnex-venue run --config FILE [--listen ADDR] [--fills-listen ADDR] [--journal-dir DIR]
//! ```
//! `check` runs the compliance pre-router alone (no engine, no network) and
//! prints one JSON decision per order line. `run` (the TCP venue) comes with
//! the gateway issue.

use std::path::PathBuf;
use std::process::ExitCode;

use tonnex_gateway::compliance::{self, check};

const USAGE: &str = "usage: tonnex-venue check --config FILE --orders ORDERS.jsonl
       tonnex-venue run --config FILE [--listen ADDR] [--fills-listen ADDR] [--journal-dir DIR]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("check") => run_check(&args[1..]),
        Some("run") => {
            eprintln!(
                "tonnex-venue run: the TCP venue is not built yet (gateway issue); `check` works"
            );
            ExitCode::from(2)
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run_check(args: &[String]) -> ExitCode {
    let (mut config, mut orders) = (None, None);
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned();
        match (args[i].as_str(), value) {
            ("--config", Some(v)) => config = Some(PathBuf::from(v)),
            ("--orders", Some(v)) => orders = Some(PathBuf::from(v)),
            (flag, _) => {
                eprintln!("tonnex-venue check: unexpected argument '{flag}'\n{USAGE}");
                return ExitCode::from(2);
            }
        }
        i += 2;
    }
    let (Some(config), Some(orders)) = (config, orders) else {
        eprintln!("tonnex-venue check: --config and --orders are required\n{USAGE}");
        return ExitCode::from(2);
    };
    let (_, mut router) = match compliance::load_router(&config) {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("tonnex-venue check: {error}");
            return ExitCode::from(2);
        }
    };
    let text = match std::fs::read_to_string(&orders) {
        Ok(text) => text,
        Err(error) => {
            eprintln!(
                "tonnex-venue check: {}: cannot read: {error}",
                orders.display()
            );
            return ExitCode::from(2);
        }
    };
    let mut out = String::new();
    for line in check::run(&mut router, &text) {
        out.push_str(&line);
        out.push('\n');
    }
    use std::io::Write;
    let _ = std::io::stdout().write_all(out.as_bytes());
    ExitCode::SUCCESS
}
