//! `tonnex-web --config FILE --ledger DIR [--listen ADDR] [--venue-admin ADDR]
//! [--venue-metrics ADDR] [--log-format text|json]` (CONTRACTS.md).
//!
//! Prints `ready web=ADDR` once serving. Buyers log in with their account
//! id and password (the account's `secret` in the venue file), operators
//! with their name and key (`[[operator]]`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tonnex_gateway::compliance::{inventory, profiles};
use tonnex_gateway::config::{Role, VenueConfig};
use tonnex_logs::LogFormat;
use tonnex_web::app::{router, App};
use tonnex_web::auth::Auth;
use tonnex_web::ledger::LedgerReader;

#[derive(Parser)]
#[command(
    name = "tonnex-web",
    about = "The buyer compliance dashboard, certificate verification and the operator console"
)]
struct Cli {
    /// The venue file (accounts, operators, rules and profiles).
    #[arg(long)]
    config: PathBuf,
    /// Settlement's data folder (its ledger.sqlite is read, never written).
    #[arg(long)]
    ledger: PathBuf,
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:7080")]
    listen: String,
    /// The venue's admin port (default: the venue file's `[admin] listen`).
    #[arg(long)]
    venue_admin: Option<String>,
    /// The venue's metrics address (default: the venue file's `[metrics] listen`).
    #[arg(long)]
    venue_metrics: Option<String>,
    /// Logs on standard error: `text` or `json`.
    #[arg(long, default_value = "text", value_parser = LogFormat::parse)]
    log_format: LogFormat,
}

fn load(cli: &Cli) -> Result<App, String> {
    let venue = VenueConfig::load(&cli.config).map_err(|e| e.to_string())?;
    let (versions, _) =
        tonnex_gateway::compliance::load_rules(&venue).map_err(|e| e.to_string())?;
    let rules = versions
        .in_force_or_error(tonnex_gateway::compliance::Date::today())
        .map_err(|e| e.to_string())?
        .clone();
    let mut profiles = profiles::load(&venue.profiles).map_err(|e| e.to_string())?;
    if let Some(export) = &venue.inventory {
        inventory::apply(export, &mut profiles).map_err(|e| e.to_string())?;
    }
    let buyers = venue
        .accounts
        .iter()
        .filter(|a| a.role == Role::Buyer && profiles.contains_key(&a.id) && !a.secret.is_empty())
        .map(|a| (a.id, a.secret.clone()))
        .collect();
    let operators = venue
        .admin
        .operators
        .iter()
        .map(|o| (o.name.clone(), o.role, o.key.clone()))
        .collect();
    let web_operator = venue.web_operator.as_ref().and_then(|name| {
        venue
            .admin
            .operators
            .iter()
            .find(|o| &o.name == name)
            .map(|o| (o.name.clone(), o.key.clone()))
    });
    let venue_admin = cli.venue_admin.clone().or(venue.admin.listen.clone());
    Ok(App {
        venue: tonnex_web::venue::VenueLink {
            admin: venue_admin.clone(),
            operator: web_operator,
        },
        auth: Auth::new(buyers, operators),
        ledger: LedgerReader::new(&cli.ledger),
        profiles,
        rules,
        venue_admin,
        venue_metrics: cli.venue_metrics.clone().or(venue.metrics_listen.clone()),
        live: Default::default(),
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tonnex_logs::init_service(cli.log_format);
    let app = match load(&cli) {
        Ok(app) => Arc::new(app),
        Err(e) => {
            eprintln!("tonnex-web: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_io()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tonnex-web: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(&cli.listen).await {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("tonnex-web: --listen {}: {e}", cli.listen);
                return ExitCode::from(1);
            }
        };
        let addr = listener
            .local_addr()
            .map_or(cli.listen.clone(), |a| a.to_string());
        println!("ready web={addr}");
        tracing::info!(addr, "serving");
        let service = router(app).into_make_service_with_connect_info::<SocketAddr>();
        match axum::serve(listener, service).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("tonnex-web: {e}");
                ExitCode::from(1)
            }
        }
    })
}
