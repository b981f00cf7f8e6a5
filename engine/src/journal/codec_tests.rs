//! Every command round-trips through the fixed layout; damaged payloads
//! are errors, never panics.

use super::*;

fn every_kind_of_command() -> Vec<Command> {
    let order = NewOrder {
        client_order_id: 0,
        id: u64::MAX,
        account: 1001,
        instrument: 7,
        side: Side::Sell,
        kind: OrderKind::PostOnly,
        price: Price(-5),
        qty: Qty(1 << 40),
        cash_budget: Cash(123_456_789),
        compliance: Compliance {
            pathway: Pathway::Leadership,
            floor_ticks: 8_000,
            attestation_id: 42,
            skip_below_floor: true,
        },
        ts_ns: 1_700_000_000_123_456_789,
    };
    let plain = NewOrder {
        cash_budget: Cash::ZERO,
        compliance: Compliance::NONE,
        ..order
    };
    // Compliance without a budget, and a budget without compliance:
    // both need the full form.
    let floor_only = NewOrder {
        cash_budget: Cash::ZERO,
        ..order
    };
    let budget_only = NewOrder {
        compliance: Compliance::NONE,
        ..order
    };
    let decision = tonnex_protocol::wire::BuyDecision {
        company: "Acme".into(),
        reporting_year: 2026,
        pathway: 2,
        sub_ledger: "ccp".into(),
        floor_micros: 20_000_000,
        floor_ticks: 2_000,
        internal_price_micros: 45_000_000,
        attestation: Some("ATT-1".into()),
        scope: vec![tonnex_protocol::wire::ScopeLine {
            scope: 3,
            category: 4,
            qty: 7,
        }],
        coverage_bp: 9,
        tier_threshold_met: false,
        ongoing_emissions_milli_t: 5_000_000,
        threshold_bp: 100,
        rules_version: "2.0".into(),
        rules_sha256: "00".repeat(32),
        attestation_approver: None,
    };
    vec![
        Command::New(order),
        Command::New(plain),
        Command::New(floor_only),
        Command::New(budget_only),
        Command::New(NewOrder {
            client_order_id: 77,
            ..order
        }),
        Command::New(NewOrder {
            client_order_id: 78,
            ..plain
        }),
        Command::Scoped(Box::new(ScopedOrder {
            order: NewOrder {
                client_order_id: 79,
                ..order
            },
            decision,
            released_from_hold: true,
        })),
        Command::Venue(Box::new(crate::command::VenueCommand::Attest {
            account: 3,
            id: "ATT-2".into(),
            internal_price_micros: 30_000_000,
            reporting_year: 2026,
        })),
        Command::Venue(Box::new(crate::command::VenueCommand::Refused {
            account: 3,
            client_order_id: 80,
            reason: 66,
        })),
        Command::Venue(Box::new(crate::command::VenueCommand::RuleRefused {
            account: 3,
            client_order_id: 81,
            reason: 78,
            predicate: "vintage_5y".into(),
        })),
        Command::Admin(Box::new(crate::command::AdminCommand {
            operator: "ops".into(),
            reason: "venue-wide halt drill".into(),
            command: Command::Halt {
                instrument: 2,
                cancel_resting: false,
            },
        })),
        Command::Admin(Box::new(crate::command::AdminCommand {
            operator: "risk".into(),
            reason: String::new(),
            command: Command::Venue(Box::new(crate::command::VenueCommand::Kyc {
                account: 3,
                status: 2,
            })),
        })),
        Command::Admin(Box::new(crate::command::AdminCommand {
            operator: "settlement".into(),
            reason: "settlement outcomes".into(),
            command: Command::Settlement(Box::new(crate::settlement::SettlementBatch {
                first_id: 41,
                outcomes: vec![
                    crate::settlement::Outcome::Settled {
                        trade_id: 5 << 20,
                        retire: true,
                    },
                    crate::settlement::Outcome::Unwound { trade_id: 6 << 20 },
                    crate::settlement::Outcome::Retired { trade_id: 5 << 20 },
                    crate::settlement::Outcome::RetirementRefused { trade_id: 7 << 20 },
                ],
            })),
        })),
        Command::Cancel {
            order_id: 9,
            account: 0,
        },
        Command::Replace {
            order_id: 9,
            account: 3,
            price: Price(2_501),
            qty: Qty(4),
        },
        Command::MassCancel {
            account: 3,
            instrument: None,
        },
        Command::MassCancel {
            account: 3,
            instrument: Some(2),
        },
        Command::AddInstrument {
            instrument: 1,
            spec: InstrumentSpec {
                symbol: Symbol::new("NBR-2024.CCP").unwrap(),
                tick_micros: 10_000,
                min_price: Price(1),
                max_price: Price(100_000),
            },
        },
        Command::Halt {
            instrument: 1,
            cancel_resting: true,
        },
        Command::Resume { instrument: 1 },
        Command::Deposit {
            account: 5,
            asset: Asset::Cash(Cash(-1)),
        },
        Command::Withdraw {
            account: 5,
            asset: Asset::Credits {
                instrument: 1,
                qty: Qty(77),
            },
        },
    ]
}

/// A command's payload, by whichever encoder it takes.
fn encoded(command: &Command) -> Vec<u8> {
    if is_large(command) {
        let mut out = Vec::new();
        encode_large(command, &mut out);
        out
    } else {
        let mut buf = [0u8; MAX_ENCODED];
        let len = encode(command, &mut buf);
        buf[..len].to_vec()
    }
}

#[test]
fn every_command_round_trips_and_new_orders_take_their_fixed_sizes() {
    for command in every_kind_of_command() {
        let bytes = encoded(&command);
        assert_eq!(decode(&bytes), Ok(command.clone()));
        if let Command::New(order) = command {
            let plain = order.cash_budget == Cash::ZERO && order.compliance == Compliance::NONE;
            let expected = match (plain, order.client_order_id != 0) {
                (true, false) => (10, 47),
                (true, true) => (11, 55),
                (false, false) => (1, 68),
                (false, true) => (12, MAX_ENCODED),
            };
            assert_eq!((bytes[0], bytes.len()), expected);
        }
    }
}

#[test]
fn damaged_payloads_are_errors_never_panics() {
    for command in every_kind_of_command() {
        let bytes = encoded(&command);
        let len = bytes.len();
        let buf = bytes;
        for cut in 0..len {
            assert!(decode(&buf[..cut]).is_err(), "{command:?} cut at {cut}");
        }
        let mut longer = buf[..len].to_vec();
        longer.push(0);
        assert!(decode(&longer).is_err());
        for i in 0..len {
            for bit in 0..8 {
                let mut flipped = buf[..len].to_vec();
                flipped[i] ^= 1 << bit;
                let _ = decode(&flipped); // any result but a panic
            }
        }
    }
    assert!(decode(&[0]).is_err());
    assert!(decode(&[10]).is_err());
    assert!(decode(&[11]).is_err());
}

#[test]
fn the_largest_settlement_batch_with_the_longest_reason_is_one_record_and_reads_back() {
    use tonnex_protocol::admin::{MAX_OUTCOMES, MAX_REASON_BYTES};
    // The largest outcome on the wire and in memory.
    let outcome = crate::settlement::Outcome::WithdrawalReturned {
        withdrawal_id: u64::MAX,
        account: u64::MAX,
        instrument: u32::MAX,
        qty: u64::MAX,
    };
    let command = Command::Admin(Box::new(crate::command::AdminCommand {
        operator: "s".repeat(64),
        reason: "r".repeat(MAX_REASON_BYTES),
        command: Command::Settlement(Box::new(crate::settlement::SettlementBatch {
            first_id: u64::MAX,
            outcomes: vec![outcome; MAX_OUTCOMES],
        })),
    }));
    let bytes = encoded(&command);
    assert!(
        bytes.len() <= crate::journal::segment::MAX_PAYLOAD,
        "{} bytes",
        bytes.len()
    );
    // Recovery reads it back (bincode counts the vector's memory, more
    // than its bytes, against its limit).
    assert_eq!(super::decode(&bytes), Ok(command));
}
