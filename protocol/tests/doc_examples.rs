//! docs/protocol.md stays true: every hex example in it is the exact frame
//! the codec produces for the message it describes.

use tonnex_protocol::frame;
use tonnex_protocol::wire::*;

fn samples() -> Vec<(&'static str, Vec<u8>)> {
    let venue = |seq: u64, message: VenueMessage| frame::encode(&Sequenced { seq, message });
    vec![
        (
            "login",
            frame::encode(&ClientMessage::Login {
                account: 3001,
                secret: "demo-3001".into(),
                last_seen_seq: 0,
                cancel_on_disconnect: true,
            }),
        ),
        ("logout", frame::encode(&ClientMessage::Logout)),
        ("heartbeat", frame::encode(&ClientMessage::Heartbeat)),
        (
            "new-order",
            frame::encode(&ClientMessage::NewOrder(NewOrder {
                client_order_id: 1,
                instrument: 0,
                side: SIDE_BUY,
                order_type: TYPE_LIMIT,
                time_in_force: TIF_GTC,
                price_ticks: 2450,
                qty: 500,
                cash_budget_micros: 0,
                scope: vec![ScopeLine {
                    scope: 3,
                    category: 1,
                    qty: 500,
                }],
                attestation: None,
            })),
        ),
        (
            "cancel",
            frame::encode(&ClientMessage::Cancel { order_id: 42 }),
        ),
        (
            "replace",
            frame::encode(&ClientMessage::Replace {
                order_id: 42,
                price_ticks: 2440,
                qty: 300,
            }),
        ),
        (
            "mass-cancel",
            frame::encode(&ClientMessage::MassCancel {
                instrument: Some(0),
            }),
        ),
        (
            "submit-attestation",
            frame::encode(&ClientMessage::SubmitAttestation {
                id: "ATT-7".into(),
                internal_price_micros: 25_000_000,
                reporting_year: 2026,
            }),
        ),
        (
            "subscribe",
            frame::encode(&ClientMessage::Subscribe { instrument: 0 }),
        ),
        (
            "order-status-request",
            frame::encode(&ClientMessage::OrderStatus { client_order_id: 0 }),
        ),
        (
            "order-status",
            venue(
                0,
                VenueMessage::OrderStatus {
                    client_order_id: 7,
                    order_id: 42,
                    instrument: 0,
                    side: SIDE_BUY,
                    price_ticks: 2450,
                    open_qty: 300,
                    state: STATE_LIVE,
                },
            ),
        ),
        (
            "order-status-end",
            venue(
                0,
                VenueMessage::OrderStatusEnd {
                    count: 1,
                    last_seq: 12,
                },
            ),
        ),
        (
            "login-accepted",
            venue(
                0,
                VenueMessage::LoginAccepted {
                    account: 3001,
                    next_seq: 1,
                    heartbeat_ms: 1000,
                    session_id: 7,
                    incarnation: 9,
                },
            ),
        ),
        (
            "login-rejected",
            venue(
                0,
                VenueMessage::LoginRejected {
                    text: "wrong".into(),
                },
            ),
        ),
        (
            "not-leader",
            venue(
                0,
                VenueMessage::NotLeader {
                    leader: 2,
                    order_entry: "127.0.0.1:7121".into(),
                },
            ),
        ),
        ("venue-heartbeat", venue(0, VenueMessage::Heartbeat)),
        (
            "order-accepted",
            venue(
                1,
                VenueMessage::OrderAccepted {
                    client_order_id: 1,
                    order_id: 42,
                    instrument: 0,
                    side: SIDE_BUY,
                    price_ticks: 2450,
                    qty: 500,
                    pathway: 2,
                    sub_ledger: "ccp".into(),
                    floor_ticks: 2000,
                    attestation: None,
                },
            ),
        ),
        (
            "order-rejected",
            venue(
                2,
                VenueMessage::OrderRejected {
                    client_order_id: 2,
                    order_id: 0,
                    reason: 71,
                },
            ),
        ),
        (
            "order-held",
            venue(
                3,
                VenueMessage::OrderHeld {
                    client_order_id: 3,
                    reason: 73,
                },
            ),
        ),
        (
            "fill",
            venue(
                4,
                VenueMessage::Fill {
                    client_order_id: 1,
                    order_id: 42,
                    trade_id: 44 << 20,
                    instrument: 0,
                    side: SIDE_BUY,
                    price_ticks: 2400,
                    qty: 100,
                    leaves_qty: 400,
                    aggressor: false,
                    supplementary_ticks: 0,
                },
            ),
        ),
        (
            "cancelled",
            venue(
                5,
                VenueMessage::Cancelled {
                    client_order_id: 1,
                    order_id: 42,
                    instrument: 0,
                    open_qty: 400,
                    reason: 1,
                },
            ),
        ),
        (
            "replaced",
            venue(
                6,
                VenueMessage::Replaced {
                    client_order_id: 1,
                    order_id: 42,
                    price_ticks: 2440,
                    qty: 300,
                    priority_kept: true,
                },
            ),
        ),
        (
            "reference-data",
            venue(
                0,
                VenueMessage::ReferenceData {
                    instruments: vec![InstrumentInfo {
                        instrument: 0,
                        symbol: "NBR".into(),
                        sub_ledger: "ccp".into(),
                        tick_micros: 10_000,
                        min_price_ticks: 1,
                        max_price_ticks: 100_000,
                    }],
                },
            ),
        ),
        (
            "book-snapshot",
            venue(
                7,
                VenueMessage::BookSnapshot {
                    instrument: 0,
                    md_seq: 9,
                    bids: vec![Level {
                        price_ticks: 2400,
                        qty: 10,
                    }],
                    asks: vec![],
                },
            ),
        ),
        (
            "level-update",
            venue(
                8,
                VenueMessage::LevelUpdate {
                    instrument: 0,
                    md_seq: 10,
                    side: SIDE_SELL,
                    price_ticks: 2500,
                    qty: 0,
                },
            ),
        ),
        (
            "trade",
            venue(
                9,
                VenueMessage::Trade {
                    instrument: 0,
                    md_seq: 11,
                    trade_id: 44 << 20,
                    price_ticks: 2400,
                    qty: 100,
                    aggressor_side: SIDE_SELL,
                },
            ),
        ),
        (
            "attestation-accepted",
            venue(
                10,
                VenueMessage::AttestationAccepted {
                    id: "ATT-7".into(),
                    rechecked: 1,
                },
            ),
        ),
        (
            "attestation-refused",
            venue(
                10,
                VenueMessage::AttestationRefused {
                    id: "ATT-7".into(),
                    reason: 75,
                    text: "bad".into(),
                },
            ),
        ),
        (
            "session-error",
            venue(0, VenueMessage::SessionError { text: "bad".into() }),
        ),
        (
            "stream-subscribe",
            frame::encode(&StreamSubscribe {
                from_seq: 1,
                name: "settlement".into(),
                key: "demo-settlement-key".into(),
            }),
        ),
        (
            "stream-refused",
            frame::encode(&StreamRecord {
                seq: 0,
                journal_seq: 0,
                event: StreamEvent::Refused { text: "bad".into() },
            }),
        ),
        (
            "stream-trade",
            frame::encode(&StreamRecord {
                seq: 27,
                journal_seq: 44,
                event: StreamEvent::Trade {
                    trade_id: 44 << 20,
                    instrument: 0,
                    buy_order_id: 42,
                    sell_order_id: 44,
                    buyer: 1001,
                    seller: 3001,
                    price_ticks: 1500,
                    qty: 40,
                    supplementary_ticks: 500,
                },
            }),
        ),
    ]
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .chunks(16)
        .map(|row| {
            row.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The examples of `doc` (a file under docs/) that are missing or differ
/// from what the codec writes, as the block that should be there.
fn check_examples(doc_name: &str, samples: Vec<(&'static str, Vec<u8>)>) {
    let path = format!("{}/../docs/{doc_name}", env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(&path).expect(doc_name);
    let mut wrong = Vec::new();
    for (name, bytes) in samples {
        let marker = format!("<!-- example: {name} -->");
        let documented = doc.find(&marker).and_then(|at| {
            let rest = &doc[at + marker.len()..];
            let start = rest.find("```text\n")? + 8;
            let end = start + rest[start..].find("```")?;
            Some(
                rest[start..end]
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
            )
        });
        let expected = hex(&bytes);
        if documented.as_deref() != Some(&expected.split_whitespace().collect::<Vec<_>>().join(" "))
        {
            wrong.push(format!("{marker}\n```text\n{expected}\n```"));
        }
    }
    assert!(
        wrong.is_empty(),
        "docs/{doc_name} examples missing or wrong; the codec writes:\n\n{}",
        wrong.join("\n\n")
    );
}

#[test]
fn every_hex_example_in_docs_protocol_md_is_what_the_codec_writes() {
    check_examples("protocol.md", samples());
}

/// The market-data feed's examples (docs/protocol.md, "Market-data feed").
fn md_samples() -> Vec<(&'static str, Vec<u8>)> {
    use tonnex_protocol::md::{MdMessage, MdRequest};
    vec![
        (
            "md-subscribe",
            frame::encode(&MdRequest::Subscribe {
                key: "demo-md-key".into(),
                instruments: vec![0],
            }),
        ),
        (
            "md-snapshot-request",
            frame::encode(&MdRequest::Snapshot { instrument: 0 }),
        ),
        (
            "md-instruments",
            frame::encode(&MdMessage::Instruments {
                instruments: vec![InstrumentInfo {
                    instrument: 0,
                    symbol: "NBR".into(),
                    sub_ledger: "ccp".into(),
                    tick_micros: 10_000,
                    min_price_ticks: 1,
                    max_price_ticks: 100_000,
                }],
            }),
        ),
        (
            "md-snapshot",
            frame::encode(&MdMessage::Snapshot {
                instrument: 0,
                md_seq: 9,
                bids: vec![Level {
                    price_ticks: 2400,
                    qty: 10,
                }],
                asks: vec![Level {
                    price_ticks: 2500,
                    qty: 7,
                }],
            }),
        ),
        (
            "md-level",
            frame::encode(&MdMessage::Level {
                instrument: 0,
                md_seq: 10,
                side: SIDE_SELL,
                price_ticks: 2500,
                qty: 0,
            }),
        ),
        (
            "md-trade",
            frame::encode(&MdMessage::Trade {
                instrument: 0,
                md_seq: 11,
                trade_id: 180_224,
                price_ticks: 2400,
                qty: 10,
                aggressor_side: SIDE_SELL,
            }),
        ),
        (
            "md-disconnect",
            frame::encode(&MdMessage::Disconnect {
                reason: "slow consumer".into(),
            }),
        ),
    ]
}

#[test]
fn every_market_data_feed_example_in_docs_protocol_md_is_what_the_codec_writes() {
    check_examples("protocol.md", md_samples());
}

/// The admin port's examples: the `ops` operator's signed requests (key
/// `demo-ops-key`, timestamp 1,764,000,000,000,000,000 ns, nonce 7) and
/// the venue's replies.
fn admin_samples() -> Vec<(&'static str, Vec<u8>)> {
    use tonnex_protocol::admin::*;
    let signed = |verb: AdminVerb, reason: &str| {
        frame::encode(&sign(
            AdminRequest {
                operator: "ops".into(),
                ts_ns: 1_764_000_000_000_000_000,
                nonce: 7,
                reason: reason.into(),
                verb,
            },
            b"demo-ops-key",
        ))
    };
    vec![
        ("admin-status", signed(AdminVerb::Status, "")),
        (
            "admin-halt",
            signed(
                AdminVerb::Halt {
                    symbol: Some("GEN-2023".into()),
                },
                "drill",
            ),
        ),
        (
            "admin-resume",
            signed(AdminVerb::Resume { symbol: None }, ""),
        ),
        (
            "admin-kyc",
            signed(
                AdminVerb::Kyc {
                    account: 3001,
                    status: KYC_SUSPENDED,
                },
                "",
            ),
        ),
        (
            "admin-mass-cancel",
            signed(
                AdminVerb::MassCancel {
                    account: Some(3001),
                    symbol: None,
                },
                "",
            ),
        ),
        (
            "admin-deposit-cash",
            signed(
                AdminVerb::DepositCash {
                    account: 1001,
                    amount_micros: 1_000_000,
                },
                "",
            ),
        ),
        (
            "admin-withdraw-cash",
            signed(
                AdminVerb::WithdrawCash {
                    account: 1001,
                    amount_micros: 1_000_000,
                },
                "",
            ),
        ),
        (
            "admin-deposit-lots",
            signed(
                AdminVerb::DepositLots {
                    symbol: "NBR-2024.CCP".into(),
                    name: "lots.csv".into(),
                    csv: "registry,project_id,serial_start,serial_end,quantity,vintage,methodology,category,nature,ccp,corresponding_adjustment,corsia,owner_account\nVerra,VCS-7,VCS-7-1,VCS-7-9,9,2024,VM0047,removal,nature-based,true,false,false,2001\n".into(),
                },
                "",
            ),
        ),
        ("admin-reload-rules", signed(AdminVerb::ReloadRules, "")),
        (
            "admin-withdraw-credits",
            signed(
                AdminVerb::WithdrawCredits {
                    account: 2001,
                    symbol: "NBR-2024.CCP".into(),
                    qty: 100,
                },
                "",
            ),
        ),
        (
            "admin-add-account",
            signed(
                AdminVerb::AddAccount {
                    account: 4001,
                    name: "Delta Trading".into(),
                    role: "market_maker".into(),
                    secret: "delta-secret-4001".into(),
                },
                "",
            ),
        ),
        (
            "admin-add-instrument",
            signed(
                AdminVerb::AddInstrument {
                    symbol: "BIOCHAR-2025.REM".into(),
                    sub_ledger: "ccp_removal".into(),
                    tick_usd: "0.05".into(),
                    min_price_usd: "1.00".into(),
                    max_price_usd: "800".into(),
                    ccp: Some(true),
                    categories: vec!["removal".into()],
                    nature: vec![],
                    min_vintage: Some(2024),
                },
                "",
            ),
        ),
        (
            "admin-attestation",
            signed(
                AdminVerb::Attestation {
                    account: 1001,
                    id: "ACME-ICP-9".into(),
                    approve: true,
                    evidence_sha256: "ab".repeat(32),
                },
                "",
            ),
        ),
        (
            "admin-inventory",
            signed(
                AdminVerb::Inventory {
                    account: 1001,
                    reporting_year: 2026,
                    lines: vec![
                        InventoryLine {
                            scope: 1,
                            category: 0,
                            tonnes: "20000".into(),
                        },
                        InventoryLine {
                            scope: 3,
                            category: 6,
                            tonnes: "100000.5".into(),
                        },
                    ],
                },
                "",
            ),
        ),
        ("admin-buyer", signed(AdminVerb::Buyer { account: 1001 }, "")),
        (
            "admin-cluster-status",
            signed(AdminVerb::ClusterStatus, ""),
        ),
        (
            "admin-cluster-add",
            signed(
                AdminVerb::ClusterAdd {
                    node: 4,
                    address: "10.0.0.4:7190".into(),
                },
                "replace node 3",
            ),
        ),
        (
            "admin-settlement",
            frame::encode(&sign(
                AdminRequest {
                    operator: "settlement".into(),
                    ts_ns: 1_764_000_000_000_000_000,
                    nonce: 7,
                    reason: "settlement".into(),
                    verb: AdminVerb::Settlement {
                        first_id: 41,
                        outcomes: vec![
                            SettlementOutcome::Settled {
                                trade_id: 5 << 20,
                                retire: true,
                            },
                            SettlementOutcome::Unwound {
                                trade_id: (6 << 20) | 1,
                            },
                        ],
                    },
                },
                b"demo-settlement-admin-key",
            )),
        ),
        (
            "admin-settlement-reply",
            frame::encode(&AdminReply::Settlement {
                nonce: 7,
                seq: 42,
                through_id: 42,
                applied: 1,
                refused: vec![OutcomeRefusal { id: 42, reason: 16 }],
            }),
        ),
        (
            "admin-buyer-reply",
            frame::encode(&AdminReply::Buyer {
                nonce: 7,
                reporting_year: 2026,
                ongoing_emissions_tonnes: "120000".into(),
                inventory: vec![InventoryLine {
                    scope: 1,
                    category: 0,
                    tonnes: "20000".into(),
                }],
                claimed: vec![10],
                held: vec![HeldLine {
                    client_order_id: 5,
                    instrument: 0,
                    price_ticks: 1500,
                    qty: 10,
                    expires_at_ns: 1_764_000_060_000_000_000,
                }],
                pending: vec![PendingLine {
                    id: "ACME-ICP-9".into(),
                    internal_price_micros: 45_000_000,
                    reporting_year: 2026,
                }],
                attestation_in_force: false,
            }),
        ),
        (
            "admin-done",
            frame::encode(&AdminReply::Done {
                nonce: 7,
                seq: 42,
                text: "ok".into(),
            }),
        ),
        (
            "admin-refused",
            frame::encode(&AdminReply::Refused {
                nonce: 7,
                reason: 111,
                text: "bad".into(),
            }),
        ),
        (
            "admin-status-reply",
            frame::encode(&AdminReply::Status {
                nonce: 7,
                instruments: vec![InstrumentStatus {
                    symbol: "GEN-2023".into(),
                    halted: true,
                    tick_micros: 10_000,
                    last_trade_ticks: Some(480),
                }],
                accounts: vec![AccountStatusLine {
                    account: 3001,
                    kyc: KYC_ACTIVE,
                    connected: false,
                }],
                sessions: 0,
                journal_seq: 42,
                in_flight: 0,
                durable_lag: 0,
            }),
        ),
        (
            "admin-cluster-reply",
            frame::encode(&AdminReply::Cluster {
                nonce: 7,
                node: 1,
                role: "leader".into(),
                term: 3,
                leader: 1,
                commit: 120,
                applied: 120,
                voters: vec![1, 2, 3],
                peers: vec![
                    ClusterPeer {
                        node: 2,
                        matched: 120,
                        lag: 0,
                    },
                    ClusterPeer {
                        node: 3,
                        matched: 118,
                        lag: 2,
                    },
                ],
            }),
        ),
    ]
}

#[test]
fn every_hex_example_in_docs_admin_md_is_what_the_codec_writes() {
    check_examples("admin.md", admin_samples());
}
