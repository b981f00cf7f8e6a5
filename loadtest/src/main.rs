//! `tonnex-loadtest`: see CONTRACTS.md.
//!
//! ```text
//! tonnex-loadtest --venue ADDR --sessions N --rate R --duration SECONDS
//!                 [--out REPORT.json] [--svg CHART.svg] [--acked-log FILE]
//!                 [--seed N] [--accounts ID:SECRET,...] [--instruments 0,1]
//!                 [--mid TICKS] [--mix quote=55,cancel=20,replace=10,take=15]
//!                 [--window N] [--hostile N] [--quiet] [--log-format text|json]
//!                 [--buyers N [--config VENUE.toml] [--buyer-rate R]]
//!                 [--md ADDR [--md-key KEY] [--md-subscribers N]]
//! ```
//!
//! `--md ADDR` runs N market-data feed subscribers (default 1) on the
//! traded instruments while the load lasts, each rebuilding the books from
//! snapshots and updates; the line `md subscribers=.. messages=..
//! per_subscriber_per_s=.. gaps=.. cut=..` comes before the last line.
//!
//! `--buyers N` adds N corporate buyers of the venue file (default
//! `config/demo/venue.toml`), each sending compliance-routed orders with
//! scope lines at `--buyer-rate` messages a second (default 50); the report
//! splits latency and rejects per flow (lines `flow market_maker ...` and
//! `flow buyer ...` before the last line).
//!
//! Diagnostics (and, with `--log-format json`, progress each second) go to
//! standard error through `tonnex-logs`; the report's lines to standard
//! output.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use tonnex_loadtest::run::{run, Options, Progress};
use tonnex_loadtest::sim::Mix;
use tonnex_logs::LogFormat;
use tracing::error;

const USAGE: &str =
    "usage: tonnex-loadtest --venue ADDR[,ADDR...] --sessions N --rate R --duration SECONDS
                       [--out REPORT.json] [--svg CHART.svg] [--acked-log FILE] [--seed N]
                       [--accounts ID:SECRET,...] [--instruments 0,1] [--mid TICKS]
                       [--mix quote=55,cancel=20,replace=10,take=15] [--window N]
                       [--hostile N] [--quiet] [--log-format text|json]
                       [--buyers N [--config VENUE.toml] [--buyer-rate R]]
                       [--md ADDR [--md-key KEY] [--md-subscribers N]]";

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let format = match tonnex_logs::init_tool_from(&mut args) {
        Ok(format) => format,
        Err(e) => {
            eprintln!("tonnex-loadtest: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match parse(args, format) {
        Ok((options, out, svg)) => match run(&options) {
            Ok(report) => {
                if let Some(path) = &out {
                    if let Err(e) = std::fs::write(path, report.json()) {
                        error!("tonnex-loadtest: {}: {e}", path.display());
                        return ExitCode::from(1);
                    }
                }
                let svg = svg.or_else(|| out.as_ref().map(|p| p.with_extension("svg")));
                if let Some(path) = &svg {
                    if let Err(e) = std::fs::write(path, report.svg()) {
                        error!("tonnex-loadtest: {}: {e}", path.display());
                        return ExitCode::from(1);
                    }
                }
                if !report.rejects_by_reason.is_empty() {
                    let reasons: Vec<String> = report
                        .rejects_by_reason
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect();
                    println!("rejects {}", reasons.join(" "));
                }
                for note in &report.error_notes {
                    println!("error {note}");
                }
                for line in report.failover_lines() {
                    println!("{line}");
                }
                if let Some(line) = report.md_line() {
                    println!("{line}");
                }
                if report.buyers > 0 {
                    for (flow, name) in report.flows.iter().zip(["market_maker", "buyer"]) {
                        println!("{}", flow.line(name));
                        if !flow.rejects_by_reason.is_empty() {
                            let reasons: Vec<String> = flow
                                .rejects_by_reason
                                .iter()
                                .map(|(k, v)| format!("{k}={v}"))
                                .collect();
                            println!("rejects {name} {}", reasons.join(" "));
                        }
                    }
                }
                println!(
                    "fill_latency p50_us={:.1} p99_us={:.1} count={}",
                    report.fill.p50_us, report.fill.p99_us, report.fill.count
                );
                println!("{}", report.last_line());
                ExitCode::SUCCESS
            }
            Err(e) => {
                error!("tonnex-loadtest: {e}");
                ExitCode::from(1)
            }
        },
        Err(e) => {
            error!("tonnex-loadtest: {e}");
            if format == LogFormat::Text {
                eprintln!("{USAGE}");
            }
            ExitCode::from(2)
        }
    }
}

type Parsed = (Options, Option<PathBuf>, Option<PathBuf>);

fn parse(args: Vec<String>, format: LogFormat) -> Result<Parsed, String> {
    let mut options = Options {
        venue: "127.0.0.1:7001".into(),
        sessions: 4,
        rate: 50_000,
        duration: Duration::from_secs(10),
        // The demo market makers of config/demo/venue.toml.
        accounts: (3001..=3004).map(|a| (a, format!("demo-{a}"))).collect(),
        instruments: vec![0],
        mid: 2500,
        mix: Mix::default(),
        seed: 1,
        window: 64,
        acked_log: None,
        hostile: 0,
        progress: match format {
            LogFormat::Json => Progress::Events,
            LogFormat::Text if std::io::stderr().is_terminal() => Progress::Terminal,
            LogFormat::Text => Progress::Off,
        },
        buyers: Vec::new(),
        buyer_rate: 50,
        md: None,
    };
    let (mut md_addr, mut md_key, mut md_count) = (None, String::new(), 1usize);
    let mut buyers = 0usize;
    let mut config = PathBuf::from("config/demo/venue.toml");
    let (mut out, mut svg) = (None, None);
    let mut i = 0;
    let number = |flag: &str, v: &str| -> Result<u64, String> {
        v.parse()
            .map_err(|_| format!("{flag}: '{v}' is not a whole number"))
    };
    while i < args.len() {
        let flag = args[i].as_str();
        if flag == "--quiet" {
            options.progress = Progress::Off;
            i += 1;
            continue;
        }
        let value = args
            .get(i + 1)
            .ok_or_else(|| format!("{flag} needs a value"))?;
        match flag {
            "--venue" => options.venue.clone_from(value),
            "--sessions" => options.sessions = number(flag, value)? as usize,
            "--rate" => options.rate = number(flag, value)?,
            "--duration" => {
                let seconds: f64 = value
                    .parse()
                    .map_err(|_| format!("--duration: '{value}' is not a number of seconds"))?;
                if !(seconds > 0.0 && seconds.is_finite()) {
                    return Err("--duration must be positive".into());
                }
                options.duration = Duration::from_secs_f64(seconds);
            }
            "--out" => out = Some(PathBuf::from(value)),
            "--svg" => svg = Some(PathBuf::from(value)),
            "--acked-log" => options.acked_log = Some(PathBuf::from(value)),
            "--seed" => options.seed = number(flag, value)?,
            "--mid" => options.mid = number(flag, value)? as i64,
            "--window" => options.window = number(flag, value)?.max(1) as usize,
            "--hostile" => options.hostile = number(flag, value)? as usize,
            "--buyers" => buyers = number(flag, value)? as usize,
            "--buyer-rate" => options.buyer_rate = number(flag, value)?.max(1),
            "--config" => config = PathBuf::from(value),
            "--md" => md_addr = Some(value.clone()),
            "--md-key" => md_key.clone_from(value),
            "--md-subscribers" => md_count = number(flag, value)?.max(1) as usize,
            "--mix" => options.mix = Mix::parse(value)?,
            "--instruments" => {
                options.instruments = value
                    .split(',')
                    .map(|v| number(flag, v).map(|n| n as u32))
                    .collect::<Result<_, _>>()?;
            }
            "--accounts" => {
                options.accounts = value
                    .split(',')
                    .map(|pair| {
                        let (id, secret) = pair
                            .split_once(':')
                            .ok_or_else(|| format!("--accounts: '{pair}' is not ID:SECRET"))?;
                        Ok((number(flag, id)?, secret.to_string()))
                    })
                    .collect::<Result<_, String>>()?;
            }
            other => return Err(format!("unknown flag '{other}'")),
        }
        i += 2;
    }
    if options.sessions == 0 {
        return Err("--sessions must be at least 1".into());
    }
    options.md = md_addr.map(|addr| (addr, md_key, md_count));
    if buyers > 0 {
        options.buyers =
            tonnex_loadtest::buyers::plan(&config, &options.instruments, options.mid, buyers)?;
    }
    Ok((options, out, svg))
}
