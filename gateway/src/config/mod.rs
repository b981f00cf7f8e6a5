//! The venue configuration file (CONTRACTS.md, "Venue configuration"):
//! addresses, the journal folder, the compliance files, accounts and
//! instruments. Paths inside it are relative to its folder.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rust_decimal::Decimal;

use crate::values::{Ctx, LoadError, TomlRecord};

mod admin;
mod cluster;
mod eligibility;
mod fill;
mod journal;
mod market_data;
mod session;

use self::admin::read_admin;
pub use self::admin::{AdminConfig, OperatorConfig, OperatorRole};
use self::cluster::read_cluster_key;
pub use self::eligibility::Eligibility;
use self::fill::read_fill_subscribers;
pub use self::fill::FillSubscriber;
use self::journal::read_durability;
pub use self::journal::VenueDurability;
use self::market_data::read_market_data;
pub use self::market_data::MarketDataConfig;
use self::session::read_session;
pub use self::session::SessionSettings;

/// What an account does on the venue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A corporate buyer: every buy goes through the full pre-router.
    Buyer,
    /// Sells credits it deposited.
    Seller,
    /// Quotes both sides.
    MarketMaker,
}

/// Whether an account may trade.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountStatus {
    /// Trades.
    Active,
    /// Waiting for know-your-customer checks.
    PendingKyc,
    /// Suspended.
    Suspended,
}

/// One `[[account]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountConfig {
    /// Account id.
    pub id: u64,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Status.
    pub status: AccountStatus,
    /// Login credential for the binary protocol.
    pub secret: String,
    /// Cash deposited when the venue starts on an empty journal (USD).
    pub cash_usd: Decimal,
    /// Risk: largest quantity of one order, tonnes.
    pub max_order_qty: Option<u64>,
    /// Risk: largest price x quantity of one order (USD; market orders use
    /// their cash budget).
    pub max_notional_usd: Option<Decimal>,
    /// Risk: a limit price may differ from the instrument's last trade price
    /// by at most this percentage.
    pub price_collar_pct: Option<Decimal>,
}

/// One `[[instrument]]`: one order book, one sub-ledger of one product.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstrumentConfig {
    /// Ticker.
    pub symbol: String,
    /// The CCP sub-ledger it belongs to (`ccp`, `ccp_removal`, `general`, ...).
    pub sub_ledger: String,
    /// Tick size in USD per tonne.
    pub tick_usd: Decimal,
    /// Lowest price in USD (inclusive).
    pub min_price_usd: Decimal,
    /// Highest price in USD (inclusive).
    pub max_price_usd: Decimal,
    /// Which credit lots may be deposited into it.
    pub eligibility: Eligibility,
}

/// One `[[lots]]`: a registry export (CSV) whose lots go into one instrument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LotFile {
    /// The CSV file (resolved).
    pub file: PathBuf,
    /// The instrument's symbol.
    pub instrument: String,
}

/// The whole venue file.
#[derive(Clone, Debug)]
pub struct VenueConfig {
    /// The file it came from.
    pub path: PathBuf,
    /// Order entry listen address.
    pub order_entry: String,
    /// Fill stream listen address.
    pub fill_stream: String,
    /// Journal folder (resolved against the file's folder).
    pub journal_dir: PathBuf,
    /// Compliance rules files (resolved): one, or every dated version
    /// (`rules = ["a.toml", "b.toml"]`), the one in force chosen by day.
    pub rules: Vec<PathBuf>,
    /// The CCP label register (CSV, resolved), if the venue keeps one.
    pub ccp_labels: Option<PathBuf>,
    /// Buyer profiles file (resolved).
    pub profiles: PathBuf,
    /// Optional GHG inventory export (CSV) replacing the profiles' inventories.
    pub inventory: Option<PathBuf>,
    /// `[compliance] attestations = "approved"`: a submitted attestation
    /// counts only once a compliance officer approves it (default `"self"`:
    /// at once).
    pub attestations_approved: bool,
    /// Registry lot exports to ingest, each into one instrument.
    pub lots: Vec<LotFile>,
    /// Accounts in file order.
    pub accounts: Vec<AccountConfig>,
    /// The `[session]` limits (defaults where absent).
    pub session: SessionSettings,
    /// `[journal] durability`: what an acknowledgement survives.
    pub durability: VenueDurability,
    /// `[admin]` and `[[operator]]`: the control plane.
    pub admin: AdminConfig,
    /// `[[fill_subscriber]]`: who may read the fill stream.
    pub fill_subscribers: Vec<FillSubscriber>,
    /// `[market_data]`: the market-data feed, if the venue serves one.
    pub market_data: Option<MarketDataConfig>,
    /// `[cluster] key`: what each node of a cluster proves to its peers
    /// (none: the venue cannot run as a cluster node).
    pub cluster_key: Option<String>,
    /// `[metrics] listen`: where `GET /metrics` answers (none: nowhere).
    pub metrics_listen: Option<String>,
    /// `[web] operator`: the `[[operator]]` whose key `tonnex-web` signs
    /// buyers' inventory uploads and compliance queries with (none: the
    /// dashboard shows the files' profiles and takes no uploads).
    pub web_operator: Option<String>,
    /// Instruments in file order.
    pub instruments: Vec<InstrumentConfig>,
}

impl VenueConfig {
    /// Reads and checks a venue file.
    pub fn load(path: &Path) -> Result<VenueConfig, LoadError> {
        let top = Ctx {
            file: path,
            record: String::new(),
        };
        let table = crate::values::read_toml(path)?;
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let root = TomlRecord {
            table: &table,
            ctx: &top,
        };

        let venue_ctx = Ctx {
            file: path,
            record: "venue".to_string(),
        };
        let empty = toml::Table::new();
        let venue = match table.get("venue") {
            Some(_) => root.table("venue")?,
            None => &empty,
        };
        let venue = TomlRecord {
            table: venue,
            ctx: &venue_ctx,
        };
        let order_entry = venue
            .opt_string("order_entry")?
            .unwrap_or_else(|| "127.0.0.1:7001".to_string());
        let fill_stream = venue
            .opt_string("fill_stream")?
            .unwrap_or_else(|| "127.0.0.1:7002".to_string());
        let journal_dir = dir.join(
            venue
                .opt_string("journal_dir")?
                .unwrap_or_else(|| "journal".to_string()),
        );

        let compliance_ctx = Ctx {
            file: path,
            record: "compliance".to_string(),
        };
        let compliance = TomlRecord {
            table: root.table("compliance")?,
            ctx: &compliance_ctx,
        };
        let rules = match compliance.table.get("rules") {
            Some(toml::Value::Array(_)) => {
                let files = compliance.strings("rules")?;
                if files.is_empty() {
                    return Err(compliance_ctx.error("rules", "names no rules file"));
                }
                files.iter().map(|f| dir.join(f)).collect()
            }
            _ => vec![dir.join(compliance.string("rules")?)],
        };
        let ccp_labels = compliance.opt_string("ccp_labels")?.map(|f| dir.join(f));
        let profiles = dir.join(compliance.string("profiles")?);
        let inventory = compliance.opt_string("inventory")?.map(|f| dir.join(f));
        let attestations_approved = match compliance.opt_string("attestations")?.as_deref() {
            None | Some("self") => false,
            Some("approved") => true,
            Some(other) => {
                return Err(compliance_ctx
                    .error("attestations", format!("'{other}' is not self or approved")))
            }
        };

        let mut accounts = Vec::new();
        let mut ids = HashSet::new();
        for (i, item) in array_of_tables(&table, "account", path)?
            .into_iter()
            .enumerate()
        {
            let ctx = Ctx {
                file: path,
                record: format!("account[{}]", i + 1),
            };
            let record = TomlRecord {
                table: item,
                ctx: &ctx,
            };
            let id = u64::try_from(record.integer("id")?)
                .map_err(|_| ctx.error("id", "must not be negative"))?;
            if id == 0 {
                return Err(ctx.error("id", "must be positive (0 is the operator)"));
            }
            if !ids.insert(id) {
                return Err(ctx.error("id", format!("account {id} is defined twice")));
            }
            let role = match record.string("role")?.as_str() {
                "buyer" => Role::Buyer,
                "seller" => Role::Seller,
                "market_maker" => Role::MarketMaker,
                other => {
                    return Err(ctx.error(
                        "role",
                        format!("'{other}' is not buyer, seller or market_maker"),
                    ))
                }
            };
            let status = match record.string("status")?.as_str() {
                "active" => AccountStatus::Active,
                "pending_kyc" => AccountStatus::PendingKyc,
                "suspended" => AccountStatus::Suspended,
                other => {
                    return Err(ctx.error(
                        "status",
                        format!("'{other}' is not active, pending_kyc or suspended"),
                    ))
                }
            };
            accounts.push(AccountConfig {
                id,
                name: record.opt_string("name")?.unwrap_or_default(),
                role,
                status,
                secret: record.opt_string("secret")?.unwrap_or_default(),
                cash_usd: match item.get("cash_usd") {
                    Some(_) => {
                        let cash = record.decimal("cash_usd")?;
                        if cash.is_sign_negative() {
                            return Err(ctx.error("cash_usd", "must not be negative"));
                        }
                        cash
                    }
                    None => Decimal::ZERO,
                },
                max_order_qty: match item.get("max_order_qty") {
                    Some(_) => Some(
                        u64::try_from(record.integer("max_order_qty")?)
                            .ok()
                            .filter(|q| *q > 0)
                            .ok_or_else(|| ctx.error("max_order_qty", "must be positive"))?,
                    ),
                    None => None,
                },
                max_notional_usd: match item.get("max_notional_usd") {
                    Some(_) => Some(record.decimal("max_notional_usd")?),
                    None => None,
                },
                price_collar_pct: match item.get("price_collar_pct") {
                    Some(_) => Some(record.decimal("price_collar_pct")?),
                    None => None,
                },
            });
        }

        let mut instruments = Vec::new();
        let mut symbols = HashSet::new();
        for (i, item) in array_of_tables(&table, "instrument", path)?
            .into_iter()
            .enumerate()
        {
            let ctx = Ctx {
                file: path,
                record: format!("instrument[{}]", i + 1),
            };
            let record = TomlRecord {
                table: item,
                ctx: &ctx,
            };
            let symbol = record.string("symbol")?;
            if tonnex_protocol::Symbol::new(&symbol).is_none() {
                return Err(ctx.error(
                    "symbol",
                    format!("'{symbol}' must be 1-23 printable ASCII characters"),
                ));
            }
            if !symbols.insert(symbol.clone()) {
                return Err(ctx.error("symbol", format!("{symbol} is defined twice")));
            }
            let tick_usd = record.decimal("tick_usd")?;
            let min_price_usd = record.decimal("min_price_usd")?;
            let max_price_usd = record.decimal("max_price_usd")?;
            if tick_usd <= Decimal::ZERO {
                return Err(ctx.error("tick_usd", "must be positive"));
            }
            if min_price_usd <= Decimal::ZERO || min_price_usd > max_price_usd {
                return Err(ctx.error(
                    "min_price_usd",
                    "must be positive and at most max_price_usd",
                ));
            }
            for (field, price) in [
                ("min_price_usd", min_price_usd),
                ("max_price_usd", max_price_usd),
            ] {
                if !(price % tick_usd).is_zero() {
                    return Err(ctx.error(
                        field,
                        format!("{price} is not a whole number of {tick_usd} ticks"),
                    ));
                }
            }
            let eligibility = eligibility::parse(
                item.get("eligibility"),
                &Ctx {
                    file: path,
                    record: format!("instrument[{}].eligibility", i + 1),
                },
            )?;
            instruments.push(InstrumentConfig {
                symbol,
                sub_ledger: record.string("sub_ledger")?,
                tick_usd,
                min_price_usd,
                max_price_usd,
                eligibility,
            });
        }
        let mut lots = Vec::new();
        for (i, item) in array_of_tables(&table, "lots", path)?
            .into_iter()
            .enumerate()
        {
            let ctx = Ctx {
                file: path,
                record: format!("lots[{}]", i + 1),
            };
            let record = TomlRecord {
                table: item,
                ctx: &ctx,
            };
            let instrument = record.string("instrument")?;
            if !symbols.contains(&instrument) {
                return Err(ctx.error(
                    "instrument",
                    format!("{instrument} is not an instrument of this venue"),
                ));
            }
            lots.push(LotFile {
                file: dir.join(record.string("file")?),
                instrument,
            });
        }
        let session = read_session(&table, path)?;
        let durability = read_durability(&table, path)?;
        let admin = read_admin(&table, path)?;
        let fill_subscribers = read_fill_subscribers(&table, path, &accounts)?;
        let market_data = read_market_data(&table, path)?;
        let cluster_key = read_cluster_key(&table, path)?;
        let metrics_listen = match table.get("metrics") {
            None => None,
            Some(_) => {
                let ctx = Ctx {
                    file: path,
                    record: "metrics".to_string(),
                };
                TomlRecord {
                    table: root.table("metrics")?,
                    ctx: &ctx,
                }
                .opt_string("listen")?
            }
        };
        let web_operator = match table.get("web") {
            None => None,
            Some(_) => {
                let ctx = Ctx {
                    file: path,
                    record: "web".to_string(),
                };
                let name = TomlRecord {
                    table: root.table("web")?,
                    ctx: &ctx,
                }
                .opt_string("operator")?;
                if let Some(name) = &name {
                    if admin.operators.iter().all(|o| &o.name != name) {
                        return Err(LoadError {
                            file: path.to_path_buf(),
                            location: "web.operator".to_string(),
                            message: format!("'{name}' is not an [[operator]] of this file"),
                        });
                    }
                }
                name
            }
        };
        Ok(VenueConfig {
            path: path.to_path_buf(),
            web_operator,
            session,
            durability,
            admin,
            fill_subscribers,
            market_data,
            cluster_key,
            metrics_listen,
            inventory,
            attestations_approved,
            lots,
            order_entry,
            fill_stream,
            journal_dir,
            rules,
            ccp_labels,
            profiles,
            accounts,
            instruments,
        })
    }
}

pub(super) fn array_of_tables<'a>(
    table: &'a toml::Table,
    key: &str,
    path: &Path,
) -> Result<Vec<&'a toml::Table>, LoadError> {
    match table.get(key) {
        None => Ok(Vec::new()),
        Some(toml::Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                toml::Value::Table(t) => Ok(t),
                other => Err(LoadError {
                    file: path.to_path_buf(),
                    location: format!("{key}[{}]", i + 1),
                    message: format!("expected a table, found {}", other.type_str()),
                }),
            })
            .collect(),
        Some(other) => Err(LoadError {
            file: path.to_path_buf(),
            location: key.to_string(),
            message: format!("expected [[{key}]] tables, found {}", other.type_str()),
        }),
    }
}
