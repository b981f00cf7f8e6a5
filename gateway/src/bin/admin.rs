//! `tonnex-admin`: the operators' command line over the venue's admin port.
//!
//! ```text
//! tonnex-admin --admin ADDR --operator NAME --key KEY [--json] VERB [ARGS] [--reason TEXT]
//!              [--log-format text|json]
//! ```
//! Every request is signed with the operator's key (HMAC-SHA256 over the
//! request, with a timestamp and a fresh nonce). The last line is always
//! `ok=true ...` (exit 0) or `ok=false reason=CODE ...` (exit 1); bad usage
//! exits 2. Diagnostics go to standard error as bare lines or, with
//! `--log-format json`, JSON objects.

#[path = "admin/cluster.rs"]
mod cluster;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use tonnex_gateway::admin_client;
use tonnex_logs::LogFormat;
use tonnex_protocol::admin::{self, AdminReply, AdminVerb};
use tracing::{error, warn};

#[derive(Parser)]
#[command(
    name = "tonnex-admin",
    about = "The venue's control plane, signed requests over its admin port"
)]
struct Cli {
    /// The venue's admin address (its ready line's `admin=`).
    #[arg(long)]
    admin: String,
    /// Operator name, as in the venue file's [[operator]].
    #[arg(long)]
    operator: String,
    /// The operator's key.
    #[arg(long)]
    key: String,
    /// Print the reply as one JSON object before the last line.
    #[arg(long, global = true)]
    json: bool,
    /// Why: journaled with the action.
    #[arg(long, global = true, default_value = "")]
    reason: String,
    /// Diagnostics on standard error: `text` lines or `json` objects.
    #[arg(long, global = true, default_value = "text", value_parser = LogFormat::parse)]
    log_format: LogFormat,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Subcommand)]
enum Verb {
    /// Instruments, accounts by KYC status, sessions, journal position.
    Status,
    /// Refuse new orders on SYMBOL (or --all); resting orders stay.
    Halt {
        symbol: Option<String>,
        #[arg(long, conflicts_with = "symbol")]
        all: bool,
    },
    /// Undo a halt on SYMBOL (or --all).
    Resume {
        symbol: Option<String>,
        #[arg(long, conflicts_with = "symbol")]
        all: bool,
    },
    /// Set ACCOUNT's KYC status: pending_kyc, active or suspended (suspended
    /// cancels its open orders and closes its session).
    Kyc { account: u64, status: String },
    /// Cancel resting orders of an account (optionally in one instrument),
    /// or everyone's in one instrument.
    MassCancel {
        #[arg(long)]
        account: Option<u64>,
        #[arg(long)]
        instrument: Option<String>,
    },
    /// Credit USD to ACCOUNT's free cash.
    DepositCash { account: u64, usd: String },
    /// Debit USD from ACCOUNT's free cash (never held funds).
    WithdrawCash { account: u64, usd: String },
    /// Debit TONNES of SYMBOL from ACCOUNT's free credits (never held ones).
    WithdrawCredits {
        account: u64,
        symbol: String,
        tonnes: u64,
    },
    /// Read the rules and profiles files again (a new version in force).
    ReloadRules,
    /// Replace a buyer's emissions inventory from an export (the CSV of
    /// `[compliance] inventory`: one account, its reporting year).
    Inventory { file: std::path::PathBuf },
    /// A buyer's inventory and claims, held orders and pending attestations.
    Buyer { account: u64 },
    /// Add a member account (seller or market_maker), pending_kyc until
    /// `kyc ACCOUNT active`; the venue keeps only a hash of its secret.
    AddAccount {
        account: u64,
        #[arg(long)]
        name: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        secret: String,
    },
    /// List a new instrument: one more book on one sub-ledger, with the
    /// eligibility rule its lot deposits must pass.
    AddInstrument {
        symbol: String,
        #[arg(long)]
        sub_ledger: String,
        #[arg(long)]
        tick_usd: String,
        #[arg(long)]
        min_price_usd: String,
        #[arg(long)]
        max_price_usd: String,
        /// Lots must carry the CCP label (true) or must not (false).
        #[arg(long)]
        ccp: Option<bool>,
        /// An allowed lot category (repeat for more); none: any.
        #[arg(long)]
        category: Vec<String>,
        /// An allowed lot nature (repeat for more); none: any.
        #[arg(long)]
        nature: Vec<String>,
        #[arg(long)]
        min_vintage: Option<i64>,
    },
    /// Approve a buyer's submitted attestation (with the SHA-256 of the
    /// evidence reviewed), or revoke one in force (role compliance).
    Attestation {
        /// approve or revoke.
        action: String,
        account: u64,
        id: String,
        /// SHA-256 of the evidence reviewed, hex (approve).
        #[arg(long, default_value = "")]
        evidence: String,
    },
    /// Deposit a registry export's lots into an instrument (checked as
    /// `tonnex-venue lots` checks them; refused lots are listed).
    DepositLots {
        file: std::path::PathBuf,
        #[arg(long)]
        instrument: String,
    },
    /// A venue cluster: status, leadership transfer, adding and removing
    /// voters.
    Cluster {
        #[command(subcommand)]
        action: cluster::ClusterAction,
    },
}

fn usage(text: &str) -> ExitCode {
    error!("tonnex-admin: {text}");
    ExitCode::from(2)
}

/// An inventory export as the `Inventory` verb: every row checked, and all
/// of one account and one reporting year.
fn inventory_verb(file: &std::path::Path) -> Result<AdminVerb, String> {
    use tonnex_gateway::compliance::inventory;
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let rows = inventory::parse_rows(&text, file).map_err(|e| e.to_string())?;
    let Some(first) = rows.first() else {
        return Err(format!("{}: no rows", file.display()));
    };
    if let Some(other) = rows
        .iter()
        .find(|r| (r.account, r.reporting_year) != (first.account, first.reporting_year))
    {
        return Err(format!(
            "{}: line {}: one account and one reporting year per upload ({} {} first, then {} {})",
            file.display(),
            other.line,
            first.account,
            first.reporting_year,
            other.account,
            other.reporting_year
        ));
    }
    Ok(AdminVerb::Inventory {
        account: first.account,
        reporting_year: first.reporting_year,
        lines: rows
            .iter()
            .map(|r| admin::InventoryLine {
                scope: r.scope,
                category: r.category,
                tonnes: r.tonnes.to_string(),
            })
            .collect(),
    })
}

/// USD to micro-dollars, exactly.
fn micros(usd: &str) -> Option<i64> {
    let amount: Decimal = usd.parse().ok()?;
    let micros = amount * Decimal::from(1_000_000);
    micros.fract().is_zero().then(|| micros.to_i64()).flatten()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tonnex_logs::init_tool(cli.log_format);
    let verb = match cli.verb {
        Verb::Status => AdminVerb::Status,
        Verb::Halt { symbol, all } | Verb::Resume { symbol, all } if symbol.is_none() && !all => {
            return usage("name a SYMBOL or --all");
        }
        Verb::Halt { symbol, .. } => AdminVerb::Halt { symbol },
        Verb::Resume { symbol, .. } => AdminVerb::Resume { symbol },
        Verb::Kyc { account, status } => match admin::kyc_code(&status) {
            Some(status) => AdminVerb::Kyc { account, status },
            None => {
                return usage(&format!(
                    "'{status}' is not pending_kyc, active or suspended"
                ))
            }
        },
        Verb::MassCancel {
            account,
            instrument,
        } => {
            if account.is_none() && instrument.is_none() {
                return usage("mass-cancel needs --account ID or --instrument SYMBOL");
            }
            AdminVerb::MassCancel {
                account,
                symbol: instrument,
            }
        }
        Verb::DepositCash { account, usd } | Verb::WithdrawCash { account, usd }
            if micros(&usd).is_none() =>
        {
            let _ = account;
            return usage(&format!("'{usd}' is not a USD amount (at most 6 decimals)"));
        }
        Verb::DepositCash { account, usd } => AdminVerb::DepositCash {
            account,
            amount_micros: micros(&usd).expect("checked"),
        },
        Verb::WithdrawCash { account, usd } => AdminVerb::WithdrawCash {
            account,
            amount_micros: micros(&usd).expect("checked"),
        },
        Verb::ReloadRules => AdminVerb::ReloadRules,
        Verb::Cluster { action } => action.verb(),
        Verb::Buyer { account } => AdminVerb::Buyer { account },
        Verb::Inventory { file } => match inventory_verb(&file) {
            Ok(verb) => verb,
            Err(e) => return usage(&e),
        },
        Verb::WithdrawCredits {
            account,
            symbol,
            tonnes,
        } => AdminVerb::WithdrawCredits {
            account,
            symbol,
            qty: tonnes,
        },
        Verb::AddAccount {
            account,
            name,
            role,
            secret,
        } => AdminVerb::AddAccount {
            account,
            name,
            role,
            secret,
        },
        Verb::AddInstrument {
            symbol,
            sub_ledger,
            tick_usd,
            min_price_usd,
            max_price_usd,
            ccp,
            category,
            nature,
            min_vintage,
        } => AdminVerb::AddInstrument {
            symbol,
            sub_ledger,
            tick_usd,
            min_price_usd,
            max_price_usd,
            ccp,
            categories: category,
            nature,
            min_vintage,
        },
        Verb::Attestation {
            action,
            account,
            id,
            evidence,
        } => match action.as_str() {
            "approve" if evidence.is_empty() => {
                return usage("attestation approve needs --evidence SHA256")
            }
            "approve" | "revoke" => AdminVerb::Attestation {
                account,
                id,
                approve: action == "approve",
                evidence_sha256: evidence,
            },
            other => return usage(&format!("'{other}' is not approve or revoke")),
        },
        Verb::DepositLots { file, instrument } => match std::fs::read_to_string(&file) {
            Ok(csv) => AdminVerb::DepositLots {
                symbol: instrument,
                name: file.file_name().map_or_else(
                    || file.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                ),
                csv,
            },
            Err(e) => return usage(&format!("{}: {e}", file.display())),
        },
    };
    match admin_client::call(&cli.admin, &cli.operator, &cli.key, &cli.reason, verb) {
        Ok(reply) => report(&reply, cli.json),
        Err(e) => {
            error!("tonnex-admin: {e}");
            println!("ok=false reason=UNREACHABLE text={e:?}");
            ExitCode::from(1)
        }
    }
}

fn report(reply: &AdminReply, json: bool) -> ExitCode {
    let quote = |s: &str| serde_json::to_string(s).expect("a string serialises");
    match reply {
        AdminReply::Cluster {
            node,
            role,
            term,
            leader,
            commit,
            applied,
            voters,
            peers,
            ..
        } => cluster::report(
            &cluster::View {
                node: *node,
                role,
                term: *term,
                leader: *leader,
                commit: *commit,
                applied: *applied,
                voters,
                peers,
            },
            json,
        ),
        // Answers settlement's own verb, which this tool does not send.
        AdminReply::Settlement {
            seq,
            through_id,
            applied,
            refused,
            ..
        } => {
            println!(
                "ok=true seq={seq} through_id={through_id} applied={applied} refused={}",
                refused.len()
            );
            ExitCode::SUCCESS
        }
        AdminReply::Done { seq, text, .. } => {
            if json {
                println!(
                    "{{\"ok\": true, \"seq\": {seq}, \"text\": {}}}",
                    quote(text)
                );
            } else {
                println!("{text}");
            }
            println!("ok=true seq={seq}");
            ExitCode::SUCCESS
        }
        AdminReply::Refused { reason, text, .. } => {
            let code = tonnex_protocol::wire::reject_name(*reason);
            if json {
                println!(
                    "{{\"ok\": false, \"reason\": {}, \"text\": {}}}",
                    quote(code),
                    quote(text)
                );
            } else {
                warn!("tonnex-admin: refused: {text}");
            }
            println!("ok=false reason={code}");
            ExitCode::from(1)
        }
        AdminReply::Status {
            instruments,
            accounts,
            sessions,
            journal_seq,
            in_flight,
            durable_lag,
            ..
        } => {
            let kyc = |code: u8| admin::kyc_name(code).unwrap_or("?");
            if json {
                let instruments: Vec<String> = instruments
                    .iter()
                    .map(|i| {
                        format!(
                            "{{\"symbol\": {}, \"halted\": {}}}",
                            quote(&i.symbol),
                            i.halted
                        )
                    })
                    .collect();
                let accounts: Vec<String> = accounts
                    .iter()
                    .map(|a| {
                        format!(
                            "{{\"account\": {}, \"kyc\": {}, \"connected\": {}}}",
                            a.account,
                            quote(kyc(a.kyc)),
                            a.connected
                        )
                    })
                    .collect();
                println!(
                    "{{\"ok\": true, \"instruments\": [{}], \"accounts\": [{}], \"sessions\": {sessions}, \"journal_seq\": {journal_seq}, \"in_flight\": {in_flight}, \"durable_lag\": {durable_lag}}}",
                    instruments.join(", "),
                    accounts.join(", ")
                );
            } else {
                for i in instruments {
                    println!(
                        "instrument {} {}",
                        i.symbol,
                        if i.halted { "halted" } else { "trading" }
                    );
                }
                for a in accounts {
                    println!(
                        "account {} {}{}",
                        a.account,
                        kyc(a.kyc),
                        if a.connected { " connected" } else { "" }
                    );
                }
            }
            println!(
                "ok=true sessions={sessions} journal_seq={journal_seq} in_flight={in_flight} durable_lag={durable_lag}"
            );
            ExitCode::SUCCESS
        }
        AdminReply::Buyer {
            reporting_year,
            ongoing_emissions_tonnes,
            inventory,
            claimed,
            held,
            pending,
            attestation_in_force,
            ..
        } => {
            for (line, claimed) in inventory.iter().zip(claimed) {
                println!(
                    "inventory scope={} category={} tonnes={} claimed={claimed}",
                    line.scope, line.category, line.tonnes
                );
            }
            for h in held {
                println!(
                    "held client_order_id={} instrument={} price_ticks={} qty={} expires_at_ns={}",
                    h.client_order_id, h.instrument, h.price_ticks, h.qty, h.expires_at_ns
                );
            }
            for p in pending {
                println!(
                    "pending attestation={} internal_price_micros={} reporting_year={}",
                    p.id, p.internal_price_micros, p.reporting_year
                );
            }
            println!(
                "ok=true reporting_year={reporting_year} ongoing_emissions_tonnes={ongoing_emissions_tonnes} held={} pending={} attestation_in_force={attestation_in_force}",
                held.len(),
                pending.len()
            );
            ExitCode::SUCCESS
        }
    }
}
