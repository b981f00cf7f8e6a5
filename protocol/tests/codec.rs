//! The wire codec: every message round-trips through a frame; random
//! messages round-trip; random, truncated and bit-flipped bytes are refused
//! with an error and never panic.

use proptest::prelude::*;
use tonnex_protocol::frame::{self, DecodeError};
use tonnex_protocol::wire::*;

fn sample_order() -> NewOrder {
    NewOrder {
        client_order_id: 7,
        instrument: 1,
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
        attestation: Some("ATT-1".into()),
    }
}

fn every_client_message() -> Vec<ClientMessage> {
    vec![
        ClientMessage::Login {
            account: 1001,
            secret: "demo-1001".into(),
            last_seen_seq: 12,
            cancel_on_disconnect: true,
        },
        ClientMessage::Logout,
        ClientMessage::Heartbeat,
        ClientMessage::NewOrder(sample_order()),
        ClientMessage::Cancel { order_id: 99 },
        ClientMessage::Replace {
            order_id: 99,
            price_ticks: 2400,
            qty: 10,
        },
        ClientMessage::MassCancel { instrument: None },
        ClientMessage::MassCancel {
            instrument: Some(2),
        },
        ClientMessage::SubmitAttestation {
            id: "ATT-9".into(),
            internal_price_micros: 85_000_000,
            reporting_year: 2026,
        },
        ClientMessage::Subscribe { instrument: 0 },
        ClientMessage::OrderStatus { client_order_id: 0 },
    ]
}

fn every_venue_message() -> Vec<VenueMessage> {
    vec![
        VenueMessage::LoginAccepted {
            account: 1001,
            next_seq: 1,
            heartbeat_ms: 1000,
            session_id: 1_764_000_000_000_000_000,
            incarnation: 1_764_000_360_000_000_000,
        },
        VenueMessage::OrderStatus {
            client_order_id: 7,
            order_id: 42,
            instrument: 0,
            side: SIDE_BUY,
            price_ticks: 2450,
            open_qty: 300,
            state: STATE_LIVE,
        },
        VenueMessage::OrderStatusEnd {
            count: 1,
            last_seq: 12,
        },
        VenueMessage::LoginRejected {
            text: "wrong secret".into(),
        },
        VenueMessage::Heartbeat,
        VenueMessage::OrderAccepted {
            client_order_id: 7,
            order_id: 42,
            instrument: 1,
            side: SIDE_BUY,
            price_ticks: 2450,
            qty: 500,
            pathway: 2,
            sub_ledger: "ccp".into(),
            floor_ticks: 2000,
            attestation: None,
        },
        VenueMessage::OrderRejected {
            client_order_id: 7,
            order_id: 0,
            reason: 72,
        },
        VenueMessage::OrderHeld {
            client_order_id: 8,
            reason: 73,
        },
        VenueMessage::Fill {
            client_order_id: 7,
            order_id: 42,
            trade_id: 1 << 20,
            instrument: 1,
            side: SIDE_BUY,
            price_ticks: 2450,
            qty: 100,
            leaves_qty: 400,
            aggressor: true,
            supplementary_ticks: 0,
        },
        VenueMessage::Cancelled {
            client_order_id: 7,
            order_id: 42,
            instrument: 1,
            open_qty: 400,
            reason: 1,
        },
        VenueMessage::Replaced {
            client_order_id: 7,
            order_id: 42,
            price_ticks: 2440,
            qty: 300,
            priority_kept: true,
        },
        VenueMessage::ReferenceData {
            instruments: vec![InstrumentInfo {
                instrument: 0,
                symbol: "NBR-2024.CCP".into(),
                sub_ledger: "ccp".into(),
                tick_micros: 10_000,
                min_price_ticks: 1,
                max_price_ticks: 100_000,
            }],
        },
        VenueMessage::BookSnapshot {
            instrument: 0,
            md_seq: 5,
            bids: vec![Level {
                price_ticks: 2400,
                qty: 10,
            }],
            asks: vec![],
        },
        VenueMessage::LevelUpdate {
            instrument: 0,
            md_seq: 6,
            side: SIDE_SELL,
            price_ticks: 2500,
            qty: 0,
        },
        VenueMessage::Trade {
            instrument: 0,
            md_seq: 7,
            trade_id: 3,
            price_ticks: 2500,
            qty: 4,
            aggressor_side: SIDE_BUY,
        },
        VenueMessage::AttestationAccepted {
            id: "ATT-9".into(),
            rechecked: 2,
        },
        VenueMessage::SessionError {
            text: "malformed frame".into(),
        },
    ]
}

fn round_trip<T>(message: &T)
where
    T: bincode::Encode + bincode::Decode<()> + PartialEq + std::fmt::Debug,
{
    let bytes = frame::encode(message);
    let (payload, used) = frame::split(&bytes, 1 << 16).unwrap().unwrap();
    assert_eq!(used, bytes.len());
    assert_eq!(&frame::decode::<T>(payload).unwrap(), message);
}

#[test]
fn every_message_round_trips() {
    for message in every_client_message() {
        round_trip(&message);
    }
    for (seq, message) in every_venue_message().into_iter().enumerate() {
        round_trip(&Sequenced {
            seq: seq as u64,
            message,
        });
    }
    round_trip(&StreamSubscribe {
        from_seq: 1,
        name: "settlement".into(),
        key: "demo-settlement-key".into(),
    });
    round_trip(&StreamRecord {
        seq: 1,
        journal_seq: 9,
        event: StreamEvent::CreditDeposit {
            account: 2001,
            instrument: 0,
            qty: 1000,
            lot: Some(LotInfo {
                registry: "Verra".into(),
                project_id: "VCS-1".into(),
                serial_start: "1".into(),
                serial_end: "1000".into(),
                vintage: 2023,
                ccp: true,
            }),
        },
    });
}

/// The byte layout docs/protocol.md draws for its NewOrder example.
#[test]
fn new_order_layout_matches_the_documented_offsets() {
    let bytes = frame::encode(&ClientMessage::NewOrder(sample_order()));
    let payload = &bytes[4..];
    assert_eq!(&payload[0..4], &3u32.to_le_bytes(), "tag");
    assert_eq!(&payload[4..12], &7u64.to_le_bytes(), "client_order_id");
    assert_eq!(&payload[12..16], &1u32.to_le_bytes(), "instrument");
    assert_eq!(payload[16..19], [SIDE_BUY, TYPE_LIMIT, TIF_GTC]);
    assert_eq!(&payload[19..27], &2450i64.to_le_bytes(), "price_ticks");
    assert_eq!(&payload[27..35], &500u64.to_le_bytes(), "qty");
    assert_eq!(&payload[35..43], &0i64.to_le_bytes(), "cash_budget_micros");
    assert_eq!(&payload[43..51], &1u64.to_le_bytes(), "scope count");
    assert_eq!(payload[51..53], [3, 1], "scope, category");
    assert_eq!(&payload[53..61], &500u64.to_le_bytes(), "line qty");
    assert_eq!(payload[61], 1, "attestation present");
    assert_eq!(&payload[62..70], &5u64.to_le_bytes(), "attestation length");
    assert_eq!(&payload[70..75], b"ATT-1");
    assert_eq!(payload.len(), 75);
}

fn arb_string() -> impl Strategy<Value = String> {
    "[ -~]{0,24}"
}

fn arb_order() -> impl Strategy<Value = NewOrder> {
    (
        any::<u64>(),
        any::<u32>(),
        any::<(u8, u8, u8)>(),
        any::<i64>(),
        any::<u64>(),
        any::<i64>(),
        prop::collection::vec((any::<u8>(), any::<u8>(), any::<u64>()), 0..5),
        prop::option::of(arb_string()),
    )
        .prop_map(
            |(
                client_order_id,
                instrument,
                (side, order_type, tif),
                price,
                qty,
                cash,
                lines,
                att,
            )| {
                NewOrder {
                    client_order_id,
                    instrument,
                    side,
                    order_type,
                    time_in_force: tif,
                    price_ticks: price,
                    qty,
                    cash_budget_micros: cash,
                    scope: lines
                        .into_iter()
                        .map(|(scope, category, qty)| ScopeLine {
                            scope,
                            category,
                            qty,
                        })
                        .collect(),
                    attestation: att,
                }
            },
        )
}

fn arb_client_message() -> impl Strategy<Value = ClientMessage> {
    prop_oneof![
        (any::<u64>(), arb_string(), any::<u64>(), any::<bool>()).prop_map(|(a, s, l, c)| {
            ClientMessage::Login {
                account: a,
                secret: s,
                last_seen_seq: l,
                cancel_on_disconnect: c,
            }
        }),
        Just(ClientMessage::Logout),
        Just(ClientMessage::Heartbeat),
        arb_order().prop_map(ClientMessage::NewOrder),
        any::<u64>().prop_map(|order_id| ClientMessage::Cancel { order_id }),
        (any::<u64>(), any::<i64>(), any::<u64>()).prop_map(|(order_id, price_ticks, qty)| {
            ClientMessage::Replace {
                order_id,
                price_ticks,
                qty,
            }
        }),
        prop::option::of(any::<u32>())
            .prop_map(|instrument| ClientMessage::MassCancel { instrument }),
        (arb_string(), any::<i64>(), any::<u16>()).prop_map(|(id, p, y)| {
            ClientMessage::SubmitAttestation {
                id,
                internal_price_micros: p,
                reporting_year: y,
            }
        }),
        any::<u32>().prop_map(|instrument| ClientMessage::Subscribe { instrument }),
        any::<u64>().prop_map(|client_order_id| ClientMessage::OrderStatus { client_order_id }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_client_messages_round_trip(message in arb_client_message()) {
        round_trip(&message);
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = frame::split(&bytes, 4096).map(|f| f.map(|(p, _)| frame::decode::<ClientMessage>(p)));
        let _ = frame::decode::<ClientMessage>(&bytes);
        let _ = frame::decode::<Sequenced>(&bytes);
        let _ = frame::decode::<StreamRecord>(&bytes);
    }

    #[test]
    fn every_truncation_of_a_message_is_an_error(message in arb_client_message()) {
        let bytes = frame::encode(&message);
        let payload = &bytes[4..];
        for cut in 0..payload.len() {
            prop_assert!(frame::decode::<ClientMessage>(&payload[..cut]).is_err());
        }
    }

    #[test]
    fn bit_flips_decode_or_fail_cleanly(message in arb_client_message(), bit in 0usize..2400) {
        let mut bytes = frame::encode(&message);
        let at = 4 + (bit / 8) % (bytes.len() - 4);
        bytes[at] ^= 1 << (bit % 8);
        match frame::decode::<ClientMessage>(&bytes[4..]) {
            Ok(_) | Err(DecodeError::Malformed(_)) | Err(DecodeError::TrailingBytes { .. }) => {}
            Err(other) => prop_assert!(false, "unexpected {other:?}"),
        }
    }
}
