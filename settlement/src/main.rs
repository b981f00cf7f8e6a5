//! `tonnex-settlement`: see CONTRACTS.md.
//!
//! ```text
//! tonnex-settlement run --venue ADDR --data-dir DIR --fill-key KEY [--fill-name NAME]
//!                       [--webhook-listen ADDR] [--registry ADDR]
//!                       [--secret S] [--confirm-delay-ms N] [--fail-pct P] [--retire-fail-pct P] [--timeout-ms N] [--poll-ms N]
//!                       [--log-format text|json] [--metrics-listen ADDR]
//!                       [--venue-admin ADDR [--admin-name NAME] --admin-key KEY]
//!                       [--registry-accounts FILE]
//! tonnex-settlement audit --data-dir DIR [--journal DIR]
//! tonnex-settlement report --data-dir DIR
//! tonnex-settlement registry-sim --listen ADDR --callback ADDR [--secret S] [--confirm-delay-ms N] [--fail-pct P] [--retire-fail-pct P]
//! ```
//! Secrets are never defaulted: the webhook secret comes from `--secret` or
//! `TONNEX_WEBHOOK_SECRET`, the fill-stream key from `--fill-key` or
//! `TONNEX_FILL_KEY`; without one, the command stops naming it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use tonnex_logs::LogFormat;
use tonnex_settlement::{audit, follow, ledger::Ledger, reconcile, registry, report};

const USAGE: &str = "usage: tonnex-settlement run --venue ADDR --data-dir DIR --fill-key KEY [--fill-name NAME]
                             [--webhook-listen ADDR] [--registry ADDR]
                             [--secret S] [--confirm-delay-ms N] [--fail-pct P] [--retire-fail-pct P] [--timeout-ms N] [--poll-ms N]
                             [--log-format text|json] [--metrics-listen ADDR]
                             [--venue-admin ADDR [--admin-name NAME] --admin-key KEY]
                             [--registry-accounts FILE]
       tonnex-settlement audit --data-dir DIR [--journal DIR]
       tonnex-settlement report --data-dir DIR
       tonnex-settlement registry-sim --listen ADDR --callback ADDR [--secret S] [--confirm-delay-ms N] [--fail-pct P] [--retire-fail-pct P]";

fn flags(args: &[String], allowed: &[&str]) -> Result<HashMap<String, String>, String> {
    let mut map = HashMap::new();
    let mut i = 0;
    while i < args.len() {
        let flag = args[i].as_str();
        if !allowed.contains(&flag) {
            return Err(format!("unexpected argument '{flag}'"));
        }
        let value = args
            .get(i + 1)
            .ok_or_else(|| format!("{flag} needs a value"))?;
        map.insert(flag.trim_start_matches("--").to_string(), value.clone());
        i += 2;
    }
    Ok(map)
}

fn number(map: &HashMap<String, String>, key: &str, default: u64) -> Result<u64, String> {
    map.get(key).map_or(Ok(default), |v| {
        v.parse()
            .map_err(|_| format!("--{key}: '{v}' is not a whole number"))
    })
}

/// A secret from `--FLAG` or the environment variable `env`; none is an
/// error naming both (nothing falls back to a built-in secret).
fn required_secret(map: &HashMap<String, String>, flag: &str, env: &str) -> Result<String, String> {
    map.get(flag)
        .cloned()
        .or_else(|| std::env::var(env).ok())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("no {flag} given: pass --{flag} or set {env}"))
}

fn secret(map: &HashMap<String, String>) -> Result<Vec<u8>, String> {
    required_secret(map, "secret", "TONNEX_WEBHOOK_SECRET").map(String::into_bytes)
}

/// The webhook secret of `run`: given, or, with the embedded registry
/// simulator (no `--registry`: the secret never leaves this process), 32
/// fresh random bytes. An external registry must share one: none given is
/// an error naming it.
fn run_secret(map: &HashMap<String, String>) -> Result<Vec<u8>, String> {
    if map.contains_key("secret") || std::env::var_os("TONNEX_WEBHOOK_SECRET").is_some() {
        return secret(map);
    }
    if map.contains_key("registry") {
        return secret(map);
    }
    use std::io::Read;
    let mut bytes = vec![0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut bytes))
        .map_err(|e| format!("no webhook secret given and none can be drawn: {e}"))?;
    Ok(bytes)
}

/// Logs on standard error: `--log-format text` (the default) or `json`
/// (one JSON object a line, for log shippers).
fn init_logs(map: &HashMap<String, String>) -> Result<(), String> {
    let format = match map.get("log-format") {
        Some(value) => LogFormat::parse(value)?,
        None => LogFormat::Text,
    };
    tonnex_logs::init_service(format);
    Ok(())
}

fn stop_flag() -> Result<Arc<AtomicBool>, String> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(|e| format!("signal {signal}: {e}"))?;
    }
    Ok(stop)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => run(&args[1..]),
        Some("audit") => audit_command(&args[1..]),
        Some("report") => report(&args[1..]),
        Some("registry-sim") => registry_sim(&args[1..]),
        _ => Err(String::new()),
    };
    match result {
        Ok(code) => code,
        Err(e) if e.is_empty() => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("tonnex-settlement: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<ExitCode, String> {
    let map = flags(
        args,
        &[
            "--venue",
            "--data-dir",
            "--webhook-listen",
            "--registry",
            "--secret",
            "--fill-key",
            "--fill-name",
            "--confirm-delay-ms",
            "--fail-pct",
            "--retire-fail-pct",
            "--timeout-ms",
            "--poll-ms",
            "--log-format",
            "--metrics-listen",
            "--venue-admin",
            "--admin-name",
            "--admin-key",
            "--registry-accounts",
        ],
    )?;
    init_logs(&map)?;
    let (Some(venue), Some(dir)) = (map.get("venue"), map.get("data-dir")) else {
        return Err(format!("run: --venue and --data-dir are required\n{USAGE}"));
    };
    let options = follow::Options {
        venue: venue.clone(),
        data_dir: PathBuf::from(dir),
        webhook_listen: map
            .get("webhook-listen")
            .cloned()
            .unwrap_or_else(|| "127.0.0.1:0".into()),
        registry: match map.get("registry") {
            Some(addr) => Some(
                addr.parse()
                    .map_err(|e| format!("--registry '{addr}': {e}"))?,
            ),
            None => None,
        },
        secret: run_secret(&map)?,
        fill_name: map
            .get("fill-name")
            .cloned()
            .unwrap_or_else(|| "settlement".into()),
        fill_key: required_secret(&map, "fill-key", "TONNEX_FILL_KEY")?,
        confirm_delay: Duration::from_millis(number(&map, "confirm-delay-ms", 20)?),
        fail_pct: number(&map, "fail-pct", 0)?.min(100),
        retire_fail_pct: number(&map, "retire-fail-pct", 0)?.min(100),
        timeout: Duration::from_millis(number(&map, "timeout-ms", 30_000)?),
        poll_every: Duration::from_millis(number(&map, "poll-ms", 2_000)?.max(10)),
        batch: 20_000,
        metrics_listen: map.get("metrics-listen").cloned(),
        registry_accounts: match (map.get("registry-accounts"), map.contains_key("registry")) {
            (Some(path), _) => registry::RegistryAccounts::load(std::path::Path::new(path))
                .map_err(|e| e.to_string())?,
            (None, false) => registry::RegistryAccounts::simulated(),
            (None, true) => {
                return Err(
                    "--registry needs --registry-accounts FILE: each venue account's accounts at the registry and payment rail".into(),
                )
            }
        },
        feed: match map.get("venue-admin") {
            Some(admin) => Some(tonnex_settlement::venue_feed::FeedOptions {
                admin: admin.clone(),
                operator: map
                    .get("admin-name")
                    .cloned()
                    .unwrap_or_else(|| "settlement".into()),
                key: required_secret(&map, "admin-key", "TONNEX_SETTLEMENT_ADMIN_KEY")?,
            }),
            None => None,
        },
    };
    follow::run(&options, &stop_flag()?).map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
}

fn open(
    args: &[String],
    allowed: &[&str],
) -> Result<(Ledger, PathBuf, HashMap<String, String>), String> {
    let map = flags(args, allowed)?;
    let dir = PathBuf::from(map.get("data-dir").ok_or("--data-dir is required")?);
    if !dir.join("ledger.sqlite").exists() {
        return Err(format!("{}: no ledger.sqlite here", dir.display()));
    }
    let ledger = Ledger::open(&dir).map_err(|e| e.to_string())?;
    Ok((ledger, dir, map))
}

fn audit_command(args: &[String]) -> Result<ExitCode, String> {
    let (ledger, dir, map) = open(args, &["--data-dir", "--journal"])?;
    // One read transaction for every check and the reconciliation: they
    // all see the same ledger, even while settlement goes on writing (on
    // their own, each query would see the ledger as of its own moment, and
    // a retirement landing between two of them would look like a fault).
    let snapshot = ledger
        .connection()
        .unchecked_transaction()
        .map_err(|e| e.to_string())?;
    let mut audit = audit::audit(&snapshot, &dir).map_err(|e| e.to_string())?;
    let mut tail = String::new();
    if let Some(journal) = map.get("journal") {
        let reconciliation = reconcile::reconcile(&snapshot, std::path::Path::new(journal))
            .map_err(|e| e.to_string())?;
        let chain = audit.json["checks"]["custody_chain_verifies"]
            .as_bool()
            .unwrap_or(false);
        tail = format!(
            " reconciled={} custody_chain={}",
            reconciliation.ok,
            if chain { "ok" } else { "broken" }
        );
        audit.ok &= reconciliation.ok;
        audit.json["ok"] = serde_json::Value::Bool(audit.ok);
        audit.json["reconciliation"] = reconciliation.json;
    }
    snapshot.commit().map_err(|e| e.to_string())?;
    println!("{}", audit.json);
    println!(
        "audit ok={} trades={} settled={} certificates={}{tail}",
        audit.ok, audit.trades, audit.settled, audit.certificates
    );
    Ok(if audit.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn report(args: &[String]) -> Result<ExitCode, String> {
    let (ledger, _, _) = open(args, &["--data-dir"])?;
    let report = report::report(ledger.connection()).map_err(|e| e.to_string())?;
    println!(
        "{}",
        serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
    );
    Ok(ExitCode::SUCCESS)
}

fn registry_sim(args: &[String]) -> Result<ExitCode, String> {
    let map = flags(
        args,
        &[
            "--listen",
            "--callback",
            "--secret",
            "--confirm-delay-ms",
            "--fail-pct",
            "--retire-fail-pct",
            "--log-format",
        ],
    )?;
    init_logs(&map)?;
    let listen = map
        .get("listen")
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let callback = match map.get("callback") {
        Some(addr) => Some(
            addr.parse()
                .map_err(|e| format!("--callback '{addr}': {e}"))?,
        ),
        None => None,
    };
    let config = registry::SimConfig {
        delay: Duration::from_millis(number(&map, "confirm-delay-ms", 20)?),
        fail_pct: number(&map, "fail-pct", 0)?.min(100),
        retire_fail_pct: number(&map, "retire-fail-pct", 0)?.min(100),
        callback,
        secret: secret(&map)?,
    };
    let stop = stop_flag()?;
    registry::serve_sim(&listen, config, &stop).map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
}
