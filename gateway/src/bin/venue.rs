//! `tonnex-venue`: the venue binary.
//!
//! ```text
//! tonnex-venue check --config FILE --orders ORDERS.jsonl [--as-of YYYY-MM-DD]
//! tonnex-venue lots --config FILE [--journal-dir DIR]
//! tonnex-venue run --config FILE [--listen ADDR] [--fills-listen ADDR] [--journal-dir DIR]
//!                  [--admin-listen ADDR] [--metrics-listen ADDR] [--market-data-listen ADDR] [--engine thread|inline] [--log-format text|json] [--durability process|batch|batch:RECORDS:MICROS|sync]
//!                  [--node N --peers 1@ADDR,2@ADDR,3@ADDR [--peer-order-entry 1@ADDR,2@ADDR,3@ADDR] [--join]]
//! ```
//! `check` runs the compliance pre-router alone (no engine, no network) and
//! prints one JSON decision per order line, each on the order's own `date`
//! or `--as-of` (default: today, UTC) under the rules version in force then. `lots` checks the registry
//! exports named by the venue file's `[[lots]]` (serial blocks, overlaps
//! with each other and with every block the venue's journal holds, and
//! their instruments' eligibility) and prints one JSON line per lot. `run` recovers the journal
//! and serves order entry and the fill stream until SIGTERM or SIGINT, then
//! drains, syncs the journal and exits 0.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use tonnex_engine::journal::{recover, RecoverOptions};
use tonnex_engine::venue::SerialBlocks;
use tonnex_engine::EngineConfig;
use tonnex_gateway::compliance::{self, check};
use tonnex_gateway::config::VenueDurability;
use tonnex_gateway::venue;
use tonnex_logs::LogFormat;

const USAGE: &str = "usage: tonnex-venue check --config FILE --orders ORDERS.jsonl [--as-of YYYY-MM-DD]
       tonnex-venue lots --config FILE [--journal-dir DIR]
       tonnex-venue run --config FILE [--listen ADDR] [--fills-listen ADDR] [--journal-dir DIR]
                        [--admin-listen ADDR] [--metrics-listen ADDR] [--market-data-listen ADDR] [--engine thread|inline] [--log-format text|json] [--durability process|batch|batch:RECORDS:MICROS|sync]
                        [--node N --peers 1@ADDR,2@ADDR,3@ADDR [--peer-order-entry 1@ADDR,2@ADDR,3@ADDR] [--join]]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("check") => run_check(&args[1..]),
        Some("lots") => run_lots(&args[1..]),
        Some("run") => run_venue(&args[1..]),
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run_check(args: &[String]) -> ExitCode {
    let (mut config, mut orders) = (None, None);
    let mut as_of = compliance::Date::today();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned();
        match (args[i].as_str(), value) {
            ("--config", Some(v)) => config = Some(PathBuf::from(v)),
            ("--orders", Some(v)) => orders = Some(PathBuf::from(v)),
            ("--as-of", Some(v)) => match compliance::Date::parse(&v) {
                Ok(date) => as_of = date,
                Err(e) => {
                    eprintln!("tonnex-venue check: --as-of: {e}");
                    return ExitCode::from(2);
                }
            },
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
    let loaded = compliance::load_router_on(&config, as_of).and_then(|(venue, router)| {
        compliance::load_rules(&venue).map(|(versions, _)| (router, versions))
    });
    let (mut router, versions) = match loaded {
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
    for line in check::run(&mut router, &versions, as_of, &text) {
        out.push_str(&line);
        out.push('\n');
    }
    use std::io::Write;
    let _ = std::io::stdout().write_all(out.as_bytes());
    ExitCode::SUCCESS
}

fn run_venue(args: &[String]) -> ExitCode {
    let mut options = venue::RunOptions::default();
    let mut log_format = LogFormat::Text;
    let mut config = None;
    let (mut node, mut peers, mut peer_order_entry) = (None, None, None);
    let mut join = false;
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned();
        match (args[i].as_str(), value) {
            ("--config", Some(v)) => config = Some(PathBuf::from(v)),
            ("--listen", Some(v)) => options.listen = Some(v),
            ("--fills-listen", Some(v)) => options.fills_listen = Some(v),
            ("--journal-dir", Some(v)) => options.journal_dir = Some(PathBuf::from(v)),
            ("--admin-listen", Some(v)) => options.admin_listen = Some(v),
            ("--metrics-listen", Some(v)) => options.metrics_listen = Some(v),
            ("--market-data-listen", Some(v)) => options.market_data_listen = Some(v),
            ("--node", Some(v)) => match v.parse::<u64>() {
                Ok(id) if id != 0 => node = Some(id),
                _ => {
                    eprintln!("tonnex-venue run: --node: '{v}' is not a node id (1, 2, ...)");
                    return ExitCode::from(2);
                }
            },
            ("--peers", Some(v)) => peers = Some(v),
            ("--peer-order-entry", Some(v)) => peer_order_entry = Some(v),
            ("--join", _) => {
                join = true;
                i += 1;
                continue;
            }
            ("--engine", Some(v)) => match v.as_str() {
                "thread" => options.engine_inline = Some(false),
                "inline" => options.engine_inline = Some(true),
                other => {
                    eprintln!("tonnex-venue run: --engine: '{other}' is not thread or inline");
                    return ExitCode::from(2);
                }
            },
            ("--log-format", Some(v)) => match LogFormat::parse(&v) {
                Ok(format) => log_format = format,
                Err(e) => {
                    eprintln!("tonnex-venue run: {e}");
                    return ExitCode::from(2);
                }
            },
            ("--durability", Some(v)) => match VenueDurability::parse(&v) {
                Ok(durability) => options.durability = Some(durability),
                Err(e) => {
                    eprintln!("tonnex-venue run: --durability: {e}");
                    return ExitCode::from(2);
                }
            },
            (flag, _) => {
                eprintln!("tonnex-venue run: unexpected argument '{flag}'\n{USAGE}");
                return ExitCode::from(2);
            }
        }
        i += 2;
    }
    let Some(config) = config else {
        eprintln!("tonnex-venue run: --config is required\n{USAGE}");
        return ExitCode::from(2);
    };
    options.config = config;
    match (node, peers) {
        (None, None) if peer_order_entry.is_none() && !join => {}
        (Some(node), Some(peers)) => {
            match venue::cluster::ClusterOptions::new(node, &peers, peer_order_entry.as_deref()) {
                Ok(cluster) => {
                    options.cluster = Some(venue::cluster::ClusterOptions { join, ..cluster });
                }
                Err(e) => {
                    eprintln!("tonnex-venue run: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        _ => {
            eprintln!("tonnex-venue run: a cluster node needs both --node and --peers\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    tonnex_logs::init_service(log_format);
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(signal, Arc::clone(&stop)) {
            eprintln!("tonnex-venue run: cannot handle signal {signal}: {e}");
            return ExitCode::from(1);
        }
    }
    match venue::run(&options, stop) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tonnex-venue run: {error}");
            ExitCode::from(1)
        }
    }
}

fn run_lots(args: &[String]) -> ExitCode {
    let (config, journal_dir) = match args {
        [flag, path] if flag == "--config" => (PathBuf::from(path), None),
        [flag, path, dir_flag, dir] if flag == "--config" && dir_flag == "--journal-dir" => {
            (PathBuf::from(path), Some(PathBuf::from(dir)))
        }
        _ => {
            eprintln!("tonnex-venue lots: --config FILE is required\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let decisions = tonnex_gateway::config::VenueConfig::load(&config)
        .map_err(|e| e.to_string())
        .and_then(|venue| {
            let dir = journal_dir.unwrap_or_else(|| venue.journal_dir.clone());
            let journaled = journaled_serials(&dir)?;
            compliance::lots::ingest_all(&venue, &journaled).map_err(|e| e.to_string())
        });
    let decisions = match decisions {
        Ok(decisions) => decisions,
        Err(error) => {
            eprintln!("tonnex-venue lots: {error}");
            return ExitCode::from(2);
        }
    };
    let mut out = String::new();
    for d in &decisions {
        let json = |s: &str| serde_json::to_string(s).expect("a string serialises");
        let (decision, reason, attribute, text) = match &d.refusal {
            None => ("deposit", "null".into(), "null".into(), "null".into()),
            Some(refusal) => (
                "reject",
                json(refusal.reason().as_str()),
                refusal.attribute().map_or("null".into(), json),
                json(&refusal.text()),
            ),
        };
        out.push_str(&format!(
            "{{\"line\": {}, \"source\": {}, \"instrument\": {}, \"decision\": \"{decision}\", \"reason\": {reason}, \"attribute\": {attribute}, \"text\": {text}, \"owner_account\": {}, \"quantity\": {}, \"registry\": {}, \"serial_start\": {}, \"serial_end\": {}}}\n",
            d.line,
            json(&d.source),
            json(&d.instrument),
            d.lot.owner_account,
            d.lot.quantity,
            json(&d.lot.registry),
            json(&d.lot.serial_start),
            json(&d.lot.serial_end),
        ));
    }
    use std::io::Write;
    let _ = std::io::stdout().write_all(out.as_bytes());
    ExitCode::SUCCESS
}

/// The serial blocks a venue's journal holds (none for a folder that has
/// no journal yet): the lots of earlier runs.
fn journaled_serials(dir: &std::path::Path) -> Result<SerialBlocks, String> {
    if !dir.exists() {
        return Ok(SerialBlocks::default());
    }
    let recovered = recover(
        dir,
        RecoverOptions {
            use_snapshot: true,
            track_orders: false,
            config: EngineConfig::default(),
        },
    )
    .map_err(|e| format!("journal {}: {e}", dir.display()))?;
    Ok(recovered.state.venue().serials().clone())
}
