//! Sessions survive venue restarts: the sequence and replay go on (the
//! outbound log), `LoginAccepted` names the session and the incarnation,
//! `OrderStatus` resynchronises a client, market data stays out of the
//! report sequence, and each durability policy acknowledges what it should.

use std::time::Duration;

use tonnex_protocol::wire::*;

use crate::harness::{scratch, Client, Venue, QUICK};

const NBR: u32 = 0;
const MAKER: u64 = 3001;

fn session_of(client: &Client) -> (u64, u64, u64) {
    match client.login_accepted.as_ref().expect("logged in") {
        VenueMessage::LoginAccepted {
            next_seq,
            session_id,
            incarnation,
            ..
        } => (*next_seq, *session_id, *incarnation),
        other => panic!("{other:?}"),
    }
}

fn login_from(venue: &Venue, account: u64, last_seen_seq: u64) -> (Client, Vec<VenueMessage>) {
    let mut client = venue.connect();
    let replayed = client.login(account, &format!("demo-{account}"), last_seen_seq, false);
    (client, replayed)
}

#[test]
fn the_report_sequence_and_its_replay_go_on_across_kill_9() {
    let dir = scratch("seq-restart", QUICK);
    let mut venue = Venue::start(&dir);
    let mut maker = venue.login(MAKER);
    let (next_seq, session, incarnation) = session_of(&maker);
    assert_eq!(next_seq, 1);
    let mut accepted = Vec::new();
    for price in [2500, 2510, 2520] {
        let id = maker.limit(NBR, SIDE_SELL, price, 1);
        accepted.push(maker.accepted(id));
    }
    assert_eq!(maker.last_seq, 3);
    venue.kill9();

    let venue = Venue::start(&dir);
    // Everything is replayed from the outbound log, with its numbers ...
    let (mut maker, replayed) = login_from(&venue, MAKER, 0);
    let (next_seq, same_session, new_incarnation) = session_of(&maker);
    assert_eq!((next_seq, same_session), (4, session));
    assert_ne!(new_incarnation, incarnation);
    let replayed_ids: Vec<u64> = replayed
        .iter()
        .map(|m| match m {
            VenueMessage::OrderAccepted { order_id, .. } => *order_id,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(replayed_ids, accepted);
    assert_eq!(maker.last_seq, 3);
    // ... and new reports go on above them.
    maker.next_client_order_id = 4;
    let id = maker.limit(NBR, SIDE_SELL, 2530, 1);
    maker.accepted(id);
    assert_eq!(maker.last_seq, 4);
    maker.logout();
    // A client that saw up to 2 gets 3 and 4 only.
    let (maker, replayed) = login_from(&venue, MAKER, 2);
    assert_eq!(replayed.len(), 2, "{replayed:?}");
    assert_eq!(maker.last_seq, 4);
}

#[test]
fn order_status_lists_live_and_held_orders_after_a_restart() {
    let dir = scratch("status-restart", QUICK);
    let mut venue = Venue::start(&dir);
    let mut maker = venue.login(MAKER);
    let live = maker.rest(NBR, SIDE_SELL, 2600, 5);
    let mut buyer = venue.login(1001);
    // Recognised pathway, floor 20.00: a bid at 16.00 is held.
    buyer.send(&ClientMessage::NewOrder(NewOrder {
        client_order_id: 1,
        instrument: NBR,
        side: SIDE_BUY,
        order_type: TYPE_LIMIT,
        time_in_force: TIF_GTC,
        price_ticks: 1600,
        qty: 40,
        cash_budget_micros: 0,
        scope: vec![ScopeLine {
            scope: 3,
            category: 1,
            qty: 40,
        }],
        attestation: None,
    }));
    buyer.expect("held", |m| {
        matches!(m, VenueMessage::OrderHeld { .. }).then_some(())
    });
    venue.kill9();

    let venue = Venue::start(&dir);
    let (mut maker, _) = login_from(&venue, MAKER, 1);
    maker.send(&ClientMessage::OrderStatus { client_order_id: 0 });
    assert_eq!(
        maker.recv_sequenced(Duration::from_secs(5)).unwrap(),
        (
            0,
            VenueMessage::OrderStatus {
                client_order_id: 1,
                order_id: live,
                instrument: NBR,
                side: SIDE_SELL,
                price_ticks: 2600,
                open_qty: 5,
                state: STATE_LIVE,
            }
        )
    );
    assert_eq!(
        maker.recv().unwrap(),
        VenueMessage::OrderStatusEnd {
            count: 1,
            last_seq: 1
        }
    );
    let (mut buyer, _) = login_from(&venue, 1001, 1);
    buyer.send(&ClientMessage::OrderStatus { client_order_id: 1 });
    assert_eq!(
        buyer.recv().unwrap(),
        VenueMessage::OrderStatus {
            client_order_id: 1,
            order_id: 0,
            instrument: NBR,
            side: SIDE_BUY,
            price_ticks: 1600,
            open_qty: 40,
            state: STATE_HELD,
        }
    );
    assert_eq!(
        buyer.recv().unwrap(),
        VenueMessage::OrderStatusEnd {
            count: 1,
            last_seq: 1
        }
    );
    // An order that is not live or held: an empty answer.
    buyer.send(&ClientMessage::OrderStatus { client_order_id: 9 });
    assert_eq!(
        buyer.recv().unwrap(),
        VenueMessage::OrderStatusEnd {
            count: 0,
            last_seq: 1
        }
    );
}

#[test]
fn market_data_travels_outside_the_report_sequence() {
    let dir = scratch("md-unsequenced", QUICK);
    let venue = Venue::start(&dir);
    let mut watcher = venue.login(3002);
    watcher.send(&ClientMessage::Subscribe { instrument: NBR });
    let (seq, snapshot) = watcher.recv_sequenced(Duration::from_secs(5)).unwrap();
    assert!(matches!(snapshot, VenueMessage::BookSnapshot { .. }) && seq == 0);
    let mut maker = venue.login(MAKER);
    for n in 0..20 {
        maker.rest(NBR, SIDE_SELL, 2700 + n, 1);
    }
    let mut updates = 0;
    while let Some((seq, message)) = watcher.recv_sequenced(Duration::from_millis(500)) {
        assert!(
            matches!(message, VenueMessage::LevelUpdate { .. }),
            "{message:?}"
        );
        assert_eq!(seq, 0);
        updates += 1;
    }
    assert_eq!(updates, 20);
    // The watcher's own stream holds none of it.
    assert_eq!(watcher.last_seq, 0);
    watcher.logout();
    let (_, replayed) = login_from(&venue, 3002, 0);
    assert!(replayed.is_empty(), "{replayed:?}");
}

#[test]
fn batch_and_sync_durability_acknowledge_and_recover_what_they_acknowledged() {
    for (name, table) in [
        ("sync", "[journal]\ndurability = \"sync\"\n"),
        (
            "batch",
            "[journal]\ndurability = \"batch\"\nbatch_records = 8\nbatch_micros = 2000\n",
        ),
    ] {
        let dir = scratch(&format!("durability-{name}"), QUICK);
        let config = std::fs::read_to_string(dir.join("venue.toml")).unwrap();
        std::fs::write(dir.join("venue.toml"), format!("{table}\n{config}")).unwrap();
        let mut venue = Venue::start(&dir);
        let mut maker = venue.login(MAKER);
        // One at a time (each waits for its sync), then a burst.
        for n in 0..3 {
            maker.rest(NBR, SIDE_SELL, 2800 + n, 1);
        }
        let burst: Vec<u64> = (0..50)
            .map(|n| maker.limit(NBR, SIDE_SELL, 2900 + n, 1))
            .collect();
        for id in burst {
            maker.accepted(id);
        }
        venue.kill9();
        let venue = Venue::start(&dir);
        let (mut maker, _) = login_from(&venue, MAKER, 53);
        maker.send(&ClientMessage::OrderStatus { client_order_id: 0 });
        let count = maker.expect("status end", |m| match m {
            VenueMessage::OrderStatusEnd { count, .. } => Some(*count),
            _ => None,
        });
        assert_eq!(count, 53, "{name}");
    }
}
