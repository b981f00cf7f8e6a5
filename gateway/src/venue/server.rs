//! The gateway thread: one mio event loop for every order-entry session.
//!
//! Its parts, one room each:
//! - [`super::net`]: the event loop and the connections (accept, read,
//!   write, close, timers);
//! - [`super::session`]: the session layer's decisions, pure, taking `now`;
//! - [`super::outbound`]: each account's sequenced messages, kept for
//!   replay across reconnects and restarts;
//! - [`super::intake`] and [`super::buyer`]: client messages become engine
//!   commands (decode → session → risk → pre-router → command);
//! - [`super::reports`]: engine outputs become execution reports and
//!   market data.
//!
//! This file holds the state they share and builds it; `server_rebuild.rs`
//! rebuilds what the journal knows (client ids, live orders, claims,
//! attestations, held orders) from the recovered engine state.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::BuildHasherDefault;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crossbeam_queue::ArrayQueue;
use mio::net::TcpListener;
use mio::Poll;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use tonnex_engine::accounts::IntHasher;
use tonnex_engine::seqhash::SeqHasher;
use tonnex_engine::venue::{OrderLines, SerialBlocks, VenueImage};
use tonnex_engine::Command;
use tonnex_protocol::wire::{InstrumentInfo, NewOrder, VenueMessage};
use tonnex_protocol::Pathway;

use super::admin::AdminDesk;
use super::core::{Input, Output};
use super::metrics::Metrics;
use super::net::Net;
use super::outbound::{Outbound, OutboundError};
use crate::compliance::profiles::Attestation;
use crate::compliance::{HeldOrders, Router};
use crate::config::{Role, SessionSettings, VenueConfig, VenueDurability};

/// A map by account or order id, with a cheap integer hash (the hot path
/// looks both up for every report).
pub(super) type IntMap<V> = HashMap<u64, V, BuildHasherDefault<IntHasher>>;

/// A map by order id: ids are journal sequence numbers, so the orders of one
/// moment share cache lines ([`tonnex_engine::seqhash`]).
pub(super) type OrderMap<V> = HashMap<u64, V, BuildHasherDefault<SeqHasher>>;

/// An account's risk limits, in engine units.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Risk {
    pub max_qty: Option<u64>,
    pub max_notional_micros: Option<i128>,
    /// Collar in hundredths of a percent.
    pub collar_bp: Option<i128>,
}

/// What the venue keeps per account across connections.
pub(super) struct Account {
    pub credential: super::session::Credential,
    pub role: Role,
    pub risk: Risk,
    /// The connection holding the account's session.
    pub conn: Option<mio::Token>,
    pub last_client_order_id: u64,
}

/// A live order the gateway keeps a record of
/// ([`Gateway::records_every_order`]): a buyer's buy always, for its claims.
/// Everything else about an order is in its pool slot (client id, side,
/// price, open tonnes), and the engine's events carry the client id.
pub(super) struct OrderInfo {
    pub account: u64,
    pub instrument: u32,
    /// Open tonnes.
    pub open: u64,
    /// A buyer's buy: its open tonnes per inventory slot (the router's
    /// claims mirror the engine's bookkeeping through it).
    pub allocation: Option<Box<OrderLines>>,
}

/// A command on its way through the engine, in submission order.
pub(super) struct Inflight {
    /// Correlation id: the engine's `Begin` for it must echo this.
    pub corr: u64,
    pub account: u64,
    pub client_order_id: u64,
    /// An accepted attestation: how many held orders it re-checked.
    pub rechecked: u32,
    pub pathway: Pathway,
    /// The instrument's sub-ledger a routed order's acceptance names
    /// (interned: an order takes no reference count), or "".
    pub sub_ledger: &'static str,
    pub floor_ticks: u32,
    pub attestation: Option<String>,
    pub allocation: Option<Box<OrderLines>>,
    /// An admin action's last command: where its answer goes.
    pub reply: Option<Box<super::admin::ReplyTo>>,
    /// The round clock when it was taken in (ack latency).
    pub received_ns: u64,
}

/// An instrument as the gateway needs it.
pub struct InstrumentRef {
    /// Ticker (interned: every order names it, without a reference count).
    pub symbol: &'static str,
    /// Sub-ledger (interned, as the pre-router's decisions name it).
    pub sub_ledger: &'static str,
    /// Tick in USD.
    pub tick_usd: Decimal,
    /// Tick in micro-dollars.
    pub tick_micros: i64,
    /// Band in ticks.
    pub min_price: i64,
    /// Band in ticks.
    pub max_price: i64,
}

/// Instruments and their market data.
pub(super) struct Market {
    pub instruments: Vec<InstrumentRef>,
    pub reference: VenueMessage,
    /// Per instrument: market-data sequence, subscribed accounts, last trade.
    pub md_seq: Vec<u64>,
    pub subscribers: Vec<Vec<u64>>,
    pub last_trade: Vec<Option<i64>>,
}

/// The compliance desk: the pre-router, held orders, attestation ids and
/// the rules in force.
pub(super) struct Desk {
    pub router: Router,
    pub held: HeldOrders,
    /// Attestations accepted over the wire (a rules reload keeps them).
    pub wire_attestations: Vec<(u64, Attestation)>,
    /// `[compliance] attestations = "approved"`.
    pub attestations_approved: bool,
    /// Submitted attestations waiting for a compliance officer.
    pub pending_attestations: Vec<(u64, Attestation)>,
    /// `(buyer, attestation id)` → the officer who approved it.
    pub approvers: HashMap<(u64, String), String>,
    /// `(buyer, attestation id)` revoked: the id stays used.
    pub revoked: std::collections::HashSet<(u64, String)>,
    /// Held orders as sent, by `(account, client order id)`.
    pub held_orders: BTreeMap<(u64, u64), NewOrder>,
    pub attestation_ids: HashMap<String, u64>,
    pub attestation_names: Vec<String>,
    pub rules_version: String,
    pub rules_sha256: String,
    /// Every rules version the venue file names: the one in force follows
    /// the calendar (a rules reload reads them again).
    pub rule_versions: crate::compliance::RuleVersions,
    /// Inventories uploaded through the admin port, the latest per buyer
    /// (a rules reload keeps them).
    pub inventories: BTreeMap<u64, tonnex_engine::InventoryRecord>,
}

impl Desk {
    /// Whether `account` has used attestation id `id` in a way the profile
    /// does not show: pending approval, or revoked.
    #[must_use]
    pub fn attestation_id_used(&self, account: u64, id: &str) -> bool {
        self.pending_attestations
            .iter()
            .any(|(a, att)| *a == account && att.id == id)
            || self.revoked.contains(&(account, id.to_string()))
    }
}

/// The two rings to the engine thread and what is in flight on them.
pub(super) struct Link {
    pub to_engine: Arc<ArrayQueue<Input>>,
    pub from_engine: Arc<ArrayQueue<Output>>,
    pub engine: std::thread::Thread,
    pub sleeping: Arc<AtomicBool>,
    /// The engine applied on this thread (`[session] engine = "inline"`).
    pub inline: Option<Box<super::inline::InlineEngine>>,
    pub inflight: VecDeque<Inflight>,
    pub next_corr: u64,
    /// The last journal sequence whose outputs arrived.
    pub last_seq: u64,
    /// The command whose outputs are arriving, and what was sent with it.
    pub current: Option<Inflight>,
    pub current_command: Option<Command>,
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The outbound log.
    #[error(transparent)]
    Outbound(#[from] OutboundError),
    /// Registering the order-entry listener.
    #[error("order entry listener: {0}")]
    Listen(std::io::Error),
}

/// The gateway thread's whole state.
pub struct Gateway {
    pub(super) net: Net,
    pub(super) accounts: IntMap<Account>,
    pub(super) outbound: Outbound,
    pub(super) market: Market,
    /// The market-data feed's subscribers and settings.
    pub(super) feed: super::md_feed::Feed,
    pub(super) desk: Desk,
    pub(super) orders: OrderMap<OrderInfo>,
    pub(super) link: Link,
    pub(super) admin: AdminDesk,
    pub(super) metrics: Arc<Metrics>,
    /// When the gauges were last published (round clock).
    pub(super) gauges_at: u64,
    pub(super) settings: SessionSettings,
    /// This run of the venue (`LoginAccepted.incarnation`).
    pub(super) incarnation: u64,
    pub(super) closing: bool,
    pub(super) engine_stopped: bool,
    /// A cluster leader that lost leadership (its run ends).
    pub(super) demoted: bool,
    /// A cluster leader's acknowledgements waiting for their commit: the
    /// command's journal sequence and when it was received (the ack
    /// latency is observed when the answer may leave).
    pub(super) held_acks: VecDeque<(u64, u64)>,
}

impl Gateway {
    /// Whether the gateway keeps a record of every live order, not only of
    /// buyers' buys: when the engine runs on its own thread, whose book a
    /// replace's risk check cannot read (inline, it reads the pool slot).
    pub(super) fn records_every_order(&self) -> bool {
        self.link.inline.is_none()
    }
}

/// How a gateway's run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Asked to stop (SIGTERM/SIGINT): drained.
    Stopped,
    /// A cluster node that no longer leads: it starts again from its log.
    Demoted,
}

/// A live order of a client's (one with a client order id, or a buyer's
/// buy) as the recovered engine state has it: what the gateway's record of
/// it needs ([`OrderInfo`]).
pub struct SeedOrder {
    /// Venue order id.
    pub order_id: u64,
    /// Owner.
    pub account: u64,
    /// Instrument index.
    pub instrument: u32,
    /// Open tonnes.
    pub open: u64,
}

/// What the gateway rebuilds from the recovered engine state at start: the
/// journal's bookkeeping, and each live tagged order's book position.
pub struct Seed {
    /// Client ids, live orders, claims, attestations, held orders, rules.
    pub venue: VenueImage,
    /// Every live client order's instrument and open tonnes.
    pub orders: Vec<SeedOrder>,
    /// The rules in force (`version`).
    pub rules_version: String,
    /// SHA-256 of the rules file, hex.
    pub rules_sha256: String,
    /// Every rules version the venue file names.
    pub rule_versions: crate::compliance::RuleVersions,
    /// Per instrument: halted.
    pub halted: Vec<bool>,
    /// The last journal sequence recovered.
    pub last_seq: u64,
}

/// What the gateway serves.
pub struct Listeners {
    /// Order entry.
    pub order_entry: TcpListener,
    /// The admin port, if configured.
    pub admin: Option<TcpListener>,
    /// The market-data feed, if configured.
    pub market_data: Option<TcpListener>,
}

/// The engine thread's ends of the rings, as the gateway holds them.
pub struct EngineEnds {
    /// Gateway → engine.
    pub to_engine: Arc<ArrayQueue<Input>>,
    /// Engine → gateway.
    pub from_engine: Arc<ArrayQueue<Output>>,
    /// The engine thread, to unpark.
    pub engine: std::thread::Thread,
    /// Set while the gateway sleeps in `poll` (the engine wakes it then).
    pub sleeping: Arc<AtomicBool>,
    /// The counters both threads write and `GET /metrics` reads.
    pub metrics: Arc<Metrics>,
    /// `[session] engine = "inline"` (and every cluster node): the core,
    /// applied on the event loop.
    pub inline: Option<super::inline::Engine>,
}

impl Gateway {
    /// A gateway for `config`, serving `listener`, feeding the engine
    /// thread, its outbound log in `config.journal_dir`.
    pub fn new(
        poll: Poll,
        listeners: Listeners,
        config: &VenueConfig,
        router: Router,
        instruments: Vec<InstrumentRef>,
        mut ends: EngineEnds,
        seed: Seed,
    ) -> Result<Gateway, GatewayError> {
        let accounts = config
            .accounts
            .iter()
            .map(|a| {
                let risk = Risk {
                    max_qty: a.max_order_qty,
                    max_notional_micros: a
                        .max_notional_usd
                        .and_then(|d| (d * Decimal::from(1_000_000)).trunc().to_i128()),
                    collar_bp: a
                        .price_collar_pct
                        .and_then(|d| (d * Decimal::from(100)).trunc().to_i128()),
                };
                (
                    a.id,
                    Account {
                        credential: super::session::Credential::Secret(a.secret.clone()),
                        role: a.role,
                        risk,
                        conn: None,
                        last_client_order_id: 0,
                    },
                )
            })
            .collect();
        let reference = VenueMessage::ReferenceData {
            instruments: instruments
                .iter()
                .enumerate()
                .map(|(i, r)| InstrumentInfo {
                    instrument: i as u32,
                    symbol: r.symbol.to_string(),
                    sub_ledger: r.sub_ledger.to_string(),
                    tick_micros: r.tick_micros,
                    min_price_ticks: r.min_price,
                    max_price_ticks: r.max_price,
                })
                .collect(),
        };
        let incarnation = super::intake::wall_ns();
        // A cluster's leader goes on with the streams the log holds (a new
        // cluster: a new session id); a single venue with its own log file.
        let replicated = matches!(ends.inline, Some(super::inline::Engine::Cluster(_)));
        let outbound = match ends.inline.as_mut() {
            Some(super::inline::Engine::Cluster(node)) => node
                .core_mut()
                .take_reports(incarnation)
                .ok_or_else(|| OutboundError {
                    path: config.journal_dir.clone(),
                    what: "the cluster node's streams were already taken".into(),
                })?,
            _ => Outbound::open(
                &config.journal_dir,
                config.session.replay_capacity,
                config.durability != VenueDurability::Process,
                incarnation,
            )?,
        };
        let count = instruments.len();
        let mut net = Net::new(
            poll,
            listeners.order_entry,
            listeners.admin,
            listeners.market_data,
        )
        .map_err(GatewayError::Listen)?;
        net.hold = replicated;
        let mut gateway = Gateway {
            net,
            accounts,
            outbound,
            market: Market {
                instruments,
                reference,
                md_seq: vec![0; count],
                subscribers: vec![Vec::new(); count],
                last_trade: vec![None; count],
            },
            feed: super::md_feed::Feed {
                key: config.market_data.as_ref().and_then(|m| m.key.clone()),
                max_queued: config
                    .market_data
                    .as_ref()
                    .map_or(4 << 20, |m| m.max_queued_bytes),
                subscribers: vec![Vec::new(); count],
                ..super::md_feed::Feed::default()
            },
            desk: Desk {
                router,
                held: HeldOrders::default(),
                held_orders: BTreeMap::new(),
                wire_attestations: Vec::new(),
                attestations_approved: config.attestations_approved,
                pending_attestations: Vec::new(),
                approvers: HashMap::new(),
                revoked: std::collections::HashSet::new(),
                attestation_ids: HashMap::new(),
                attestation_names: Vec::new(),
                rules_version: seed.rules_version.clone(),
                rules_sha256: seed.rules_sha256.clone(),
                rule_versions: seed.rule_versions.clone(),
                inventories: BTreeMap::new(),
            },
            orders: OrderMap::default(),
            link: Link {
                to_engine: ends.to_engine,
                from_engine: ends.from_engine,
                engine: ends.engine,
                sleeping: ends.sleeping,
                inline: ends.inline.map(|engine| {
                    Box::new(super::inline::InlineEngine {
                        engine,
                        batch: Vec::with_capacity(256),
                        outputs: Vec::with_capacity(4096),
                    })
                }),
                inflight: VecDeque::new(),
                next_corr: 1,
                last_seq: seed.last_seq,
                current: None,
                current_command: None,
            },
            admin: AdminDesk::new(
                config,
                seed.halted.clone(),
                SerialBlocks::from_records(&seed.venue.serials),
            ),
            metrics: ends.metrics,
            gauges_at: 0,
            settings: config.session.clone(),
            incarnation,
            closing: false,
            engine_stopped: false,
            demoted: false,
            held_acks: VecDeque::new(),
        };
        gateway.rebuild(&seed);
        Ok(gateway)
    }
}

#[path = "server_rebuild.rs"]
mod rebuild;
