//! The venue over real loopback TCP: a `tonnex-venue run` process on the
//! demo configuration, driven by clients speaking the wire protocol.
//! Demo accounts: 3001-3004 market makers, 1001 a recognised-pathway buyer
//! (floor 20.00 USD = 2000 ticks on instrument 0), secrets `demo-<id>`.

mod admin;
mod anywhere;
mod cluster_key;
mod floor_modes;
mod harness;
mod inventory;
mod load;
mod logs;
mod market_data;
mod metrics;
mod order_records;
mod restart;
#[path = "../../../testkit/scratch.rs"]
mod scratch_dir;
mod sessions;
mod settlement;
mod stream;

use std::io::Write;
use std::time::Duration;

use harness::*;
use tonnex_protocol::wire::*;

const NBR: u32 = 0;

#[test]
fn an_order_trades_and_both_sides_get_their_fill_then_cancel_replace_and_mass_cancel() {
    let dir = scratch("trade", QUICK);
    let venue = Venue::start(&dir);
    let mut maker = venue.login(3001);
    let mut taker = venue.login(3002);

    let ask = maker.rest(NBR, SIDE_SELL, 2500, 10);
    let buy = taker.limit(NBR, SIDE_BUY, 2600, 4);
    let bid = taker.accepted(buy);
    let taker_fill = taker.expect("taker fill", |m| match m {
        VenueMessage::Fill { .. } => Some(m.clone()),
        _ => None,
    });
    let maker_fill = maker.expect("maker fill", |m| match m {
        VenueMessage::Fill { .. } => Some(m.clone()),
        _ => None,
    });
    let VenueMessage::Fill {
        trade_id,
        order_id,
        price_ticks,
        qty,
        leaves_qty,
        aggressor,
        ..
    } = taker_fill
    else {
        unreachable!()
    };
    assert_eq!(
        (order_id, price_ticks, qty, leaves_qty, aggressor),
        (bid, 2500, 4, 0, true)
    );
    let VenueMessage::Fill {
        trade_id: maker_trade,
        order_id: maker_order,
        leaves_qty: maker_leaves,
        aggressor: maker_aggressor,
        ..
    } = maker_fill
    else {
        unreachable!()
    };
    assert_eq!(
        (maker_trade, maker_order, maker_leaves, maker_aggressor),
        (trade_id, ask, 6, false)
    );

    // Replace the rest of the ask, then cancel it.
    maker.send(&ClientMessage::Replace {
        order_id: ask,
        price_ticks: 2550,
        qty: 5,
    });
    maker.expect("Replaced", |m| match m {
        VenueMessage::Replaced {
            order_id,
            price_ticks: 2550,
            qty: 5,
            ..
        } if *order_id == ask => Some(()),
        _ => None,
    });
    maker.send(&ClientMessage::Cancel { order_id: ask });
    maker.expect("Cancelled", |m| match m {
        VenueMessage::Cancelled {
            order_id,
            open_qty: 5,
            reason,
            ..
        } if *order_id == ask && cancel_name(*reason) == "USER" => Some(()),
        _ => None,
    });

    // Mass cancel takes every resting order of the account, nobody else's.
    let a = maker.rest(NBR, SIDE_SELL, 2700, 1);
    let b = maker.rest(1, SIDE_SELL, 2700, 1);
    let other = taker.rest(NBR, SIDE_SELL, 2800, 1);
    let gone = mass_cancel(&mut maker, 2);
    assert_eq!(gone, vec![a, b]);
    taker.send(&ClientMessage::Cancel { order_id: other });
    taker.expect("own cancel still works", |m| match m {
        VenueMessage::Cancelled { order_id, .. } if *order_id == other => Some(()),
        _ => None,
    });
}

#[test]
fn a_session_cannot_cancel_another_accounts_order_and_a_wrong_secret_is_refused() {
    let dir = scratch("owner", QUICK);
    let venue = Venue::start(&dir);
    let mut owner = venue.login(3001);
    let mut intruder = venue.login(3002);
    let order = owner.rest(NBR, SIDE_SELL, 3000, 5);
    intruder.send(&ClientMessage::Cancel { order_id: order });
    assert_eq!(intruder.rejected(), (0, order, "NOT_ORDER_OWNER"));
    intruder.send(&ClientMessage::Replace {
        order_id: order,
        price_ticks: 3100,
        qty: 1,
    });
    assert_eq!(intruder.rejected(), (0, order, "NOT_ORDER_OWNER"));

    let mut wrong = venue.connect();
    wrong.send(&ClientMessage::Login {
        account: 3001,
        secret: "guess".into(),
        last_seen_seq: 0,
        cancel_on_disconnect: false,
    });
    assert!(matches!(
        wrong.recv(),
        Some(VenueMessage::LoginRejected { .. })
    ));
    assert!(wrong.closed_within(Duration::from_secs(2)));

    // The order is untouched: it still trades.
    let mut buyer = venue.login(3003);
    let id = buyer.limit(NBR, SIDE_BUY, 3000, 5);
    buyer.accepted(id);
    owner.expect("the owner's fill", |m| match m {
        VenueMessage::Fill {
            order_id, qty: 5, ..
        } if *order_id == order => Some(()),
        _ => None,
    });
}

#[test]
fn a_reconnecting_session_gets_every_message_it_missed_in_sequence() {
    let dir = scratch("replay", QUICK);
    let venue = Venue::start(&dir);
    let mut maker = venue.login(3001);
    let ask = maker.rest(NBR, SIDE_SELL, 2500, 10);
    let seen = maker.last_seq;
    drop(maker);

    // While the maker is away, its order trades twice.
    let mut taker = venue.login(3002);
    for _ in 0..2 {
        let id = taker.limit(NBR, SIDE_BUY, 2500, 3);
        taker.accepted(id);
    }
    let (mut back, replayed) = venue.relogin(3001, seen, false);
    let fills: Vec<u64> = replayed
        .iter()
        .filter_map(|m| match m {
            VenueMessage::Fill {
                order_id,
                leaves_qty,
                ..
            } if *order_id == ask => Some(*leaves_qty),
            _ => None,
        })
        .collect();
    assert_eq!(fills, vec![7, 4], "replayed: {replayed:#?}");
    assert_eq!(back.last_seq, seen + 2);

    // Client order ids stay strictly increasing across the reconnect.
    back.send(&ClientMessage::NewOrder(NewOrder {
        client_order_id: 1,
        instrument: NBR,
        side: SIDE_SELL,
        order_type: TYPE_LIMIT,
        time_in_force: TIF_GTC,
        price_ticks: 2600,
        qty: 1,
        cash_budget_micros: 0,
        scope: vec![],
        attestation: None,
    }));
    assert_eq!(back.rejected(), (1, 0, "DUPLICATE_CLIENT_ORDER_ID"));
}

#[test]
fn cancel_on_disconnect_cancels_resting_orders_when_the_connection_drops() {
    let dir = scratch("cod", QUICK);
    let venue = Venue::start(&dir);
    let mut maker = venue.connect();
    maker.login(3001, "demo-3001", 0, true);
    let ask = maker.rest(NBR, SIDE_SELL, 2500, 10);
    let seen = maker.last_seq;
    drop(maker);

    // Accepted once the venue has seen the drop; the cancel it made of the
    // ask comes in the replay, or just after it if the engine had not yet
    // answered when the new session began.
    let (mut back, replayed) = venue.relogin(3001, seen, false);
    let cancelled = |m: &VenueMessage| {
        matches!(m,
            VenueMessage::Cancelled { order_id, open_qty: 10, reason, .. }
                if *order_id == ask && cancel_name(*reason) == "MASS_CANCEL")
    };
    if !replayed.iter().any(cancelled) {
        back.expect("the cancel-on-disconnect of the ask", |m| {
            cancelled(m).then_some(())
        });
    }
    // And nothing is left to trade against.
    let mut taker = venue.login(3002);
    let id = taker.limit(NBR, SIDE_BUY, 2500, 1);
    taker.accepted(id);
    assert!(
        taker.recv_within(Duration::from_millis(300)).is_none(),
        "the cancelled ask must not trade"
    );
}

#[test]
fn a_resent_client_order_id_is_answered_and_never_executed_twice() {
    let dir = scratch("dup", QUICK);
    let venue = Venue::start(&dir);
    let mut maker = venue.login(3001);
    let order = NewOrder {
        client_order_id: 7,
        instrument: NBR,
        side: SIDE_SELL,
        order_type: TYPE_LIMIT,
        time_in_force: TIF_GTC,
        price_ticks: 2500,
        qty: 10,
        cash_budget_micros: 0,
        scope: vec![],
        attestation: None,
    };
    maker.send(&ClientMessage::NewOrder(order.clone()));
    maker.send(&ClientMessage::NewOrder(order));
    // The duplicate is answered by the gateway at once, possibly before the
    // original's acceptance comes back from the engine.
    let mut answers = Vec::new();
    while answers.len() < 2 {
        match maker.recv().expect("two answers") {
            VenueMessage::OrderAccepted {
                client_order_id: 7, ..
            } => answers.push("accepted"),
            VenueMessage::OrderRejected {
                client_order_id: 7,
                reason,
                ..
            } => answers.push(reject_name(reason)),
            _ => {}
        }
    }
    answers.sort_unstable();
    assert_eq!(answers, ["DUPLICATE_CLIENT_ORDER_ID", "accepted"]);
    // Only 10 tonnes rest: a buy of 20 fills 10.
    let mut taker = venue.login(3002);
    let id = taker.limit(NBR, SIDE_BUY, 2500, 20);
    taker.accepted(id);
    let filled = taker.expect("fill", |m| match m {
        VenueMessage::Fill { qty, .. } => Some(*qty),
        _ => None,
    });
    assert_eq!(filled, 10);
    assert!(taker.recv_within(Duration::from_millis(300)).is_none());
}

#[test]
fn the_throttle_rejects_at_the_limit_and_disconnects_at_one_and_a_half_times_it() {
    let dir = scratch("throttle", "heartbeat_ms = 1000\nthrottle_per_s = 20");
    let venue = Venue::start(&dir);
    let mut maker = venue.login(3001);
    for i in 0..25 {
        maker.limit(NBR, SIDE_SELL, 5000 + i, 1);
    }
    let mut accepted = 0;
    let mut throttled = 0;
    while accepted + throttled < 25 {
        match maker.recv().expect("an answer per order") {
            VenueMessage::OrderAccepted { .. } => accepted += 1,
            VenueMessage::OrderRejected { reason, .. } => {
                assert_eq!(reject_name(reason), "THROTTLED");
                throttled += 1;
            }
            _ => {}
        }
    }
    assert!(throttled >= 1 && accepted >= 1, "{accepted} {throttled}");
    // 40 more messages in one second is past 1.5x: disconnected.
    for i in 0..40 {
        // The venue may hang up part-way: later writes can fail.
        let order = ClientMessage::NewOrder(NewOrder {
            client_order_id: 100 + i,
            instrument: NBR,
            side: SIDE_SELL,
            order_type: TYPE_LIMIT,
            time_in_force: TIF_GTC,
            price_ticks: 6000 + i as i64,
            qty: 1,
            cash_budget_micros: 0,
            scope: vec![],
            attestation: None,
        });
        let _ = maker
            .stream
            .write_all(&tonnex_protocol::frame::encode(&order));
    }
    assert!(maker.closed_within(Duration::from_secs(3)));
}

#[test]
fn garbage_on_one_connection_closes_only_that_session() {
    let dir = scratch("garbage", QUICK);
    let venue = Venue::start(&dir);
    let mut maker = venue.login(3001);
    let mut taker = venue.login(3002);

    // Random bytes after a good login.
    let mut bad = venue.login(3003);
    bad.stream
        .write_all(&[9, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5])
        .unwrap();
    assert!(matches!(
        bad.recv(),
        Some(VenueMessage::SessionError { .. })
    ));
    assert!(bad.closed_within(Duration::from_secs(2)));
    // An absurd length prefix.
    let mut absurd = venue.connect();
    absurd.stream.write_all(&[0xff, 0xff, 0xff, 0x7f]).unwrap();
    assert!(absurd.closed_within(Duration::from_secs(2)));
    // A truncated frame, then silence: closed at the login deadline.
    let mut silent = venue.connect();
    silent.stream.write_all(&[60, 0, 0, 0, 0, 0]).unwrap();
    assert!(silent.closed_within(Duration::from_secs(3)));

    let ask = maker.rest(NBR, SIDE_SELL, 2500, 3);
    let id = taker.limit(NBR, SIDE_BUY, 2500, 3);
    taker.accepted(id);
    maker.expect("fill after the garbage", |m| match m {
        VenueMessage::Fill { order_id, .. } if *order_id == ask => Some(()),
        _ => None,
    });
    // The bad session's account can log in again: its session was closed cleanly.
    let _again = venue.login(3003);
}

#[test]
fn risk_limits_refuse_oversized_orders_and_prices_outside_the_collar() {
    let dir = scratch("risk", QUICK);
    let venue_toml = std::fs::read_to_string(dir.join("venue.toml")).unwrap();
    let venue_toml = venue_toml.replacen(
        "secret = \"demo-3004\"",
        "secret = \"demo-3004\"\nmax_order_qty = 100\nmax_notional_usd = \"1000\"\nprice_collar_pct = \"10\"",
        1,
    );
    std::fs::write(dir.join("venue.toml"), venue_toml).unwrap();
    let venue = Venue::start(&dir);
    let mut limited = venue.login(3004);
    let id = limited.limit(NBR, SIDE_SELL, 100, 101);
    assert_eq!(limited.rejected(), (id, 0, "RISK_MAX_QTY"));
    // 100 t at 20.00 USD = 2000 USD > 1000.
    let id = limited.limit(NBR, SIDE_SELL, 2000, 100);
    assert_eq!(limited.rejected(), (id, 0, "RISK_MAX_NOTIONAL"));
    // Establish a last trade at 10.00 (1000 ticks).
    let mut maker = venue.login(3001);
    maker.rest(NBR, SIDE_SELL, 1000, 1);
    let mut taker = venue.login(3002);
    let t = taker.limit(NBR, SIDE_BUY, 1000, 1);
    taker.accepted(t);
    taker.expect("trade", |m| {
        matches!(m, VenueMessage::Fill { .. }).then_some(())
    });
    let id = limited.limit(NBR, SIDE_SELL, 1200, 1);
    assert_eq!(limited.rejected(), (id, 0, "RISK_PRICE_COLLAR"));
    let id = limited.limit(NBR, SIDE_SELL, 1050, 1);
    limited.accepted(id);
}

/// `OrderStatus` and `MassCancel` read every resting order of the
/// account, so they have a limit of their own (`sweeps_per_s`):
/// past it they are refused `THROTTLED`, counted whether answered or not,
/// while the session's orders and other sessions carry on.
#[test]
fn order_status_and_mass_cancel_past_their_own_limit_are_throttled() {
    let dir = scratch("sweeps", &format!("{QUICK}\nsweeps_per_s = 2"));
    let venue = Venue::start(&dir);
    let mut maker = venue.login(3001);
    let ask = maker.rest(NBR, SIDE_SELL, 2500, 10);
    for _ in 0..6 {
        maker.send(&ClientMessage::OrderStatus { client_order_id: 0 });
    }
    // Two answered, or three when a second begins inside the burst (the
    // window slides over two seconds); the rest refused.
    let (mut answered, mut refused) = (0, 0);
    while answered + refused < 6 {
        match maker.recv().expect("an answer per request") {
            VenueMessage::OrderStatusEnd { count: 1, .. } => answered += 1,
            VenueMessage::OrderRejected {
                client_order_id: 0,
                order_id: 0,
                reason,
            } if reject_name(reason) == "THROTTLED" => refused += 1,
            VenueMessage::OrderStatus { order_id, .. } => assert_eq!(order_id, ask),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!((2..=3).contains(&answered), "{answered} answered");
    maker.send(&ClientMessage::MassCancel { instrument: None });
    assert_eq!(maker.rejected(), (0, 0, "THROTTLED"));
    // Orders are not limited by it, nor is another session.
    let id = maker.limit(NBR, SIDE_SELL, 2600, 1);
    maker.accepted(id);
    let mut other = venue.login(3002);
    other.send(&ClientMessage::OrderStatus { client_order_id: 0 });
    other.expect("the other session's answer", |m| match m {
        VenueMessage::OrderStatusEnd { count: 0, .. } => Some(()),
        _ => None,
    });
    // Two seconds on (heartbeats keep the session), the window is clear:
    // the mass cancel goes through.
    for _ in 0..7 {
        std::thread::sleep(Duration::from_millis(300));
        maker.send(&ClientMessage::Heartbeat);
    }
    let gone = mass_cancel(&mut maker, 2);
    assert!(gone.contains(&ask), "{gone:?}");
}

/// Sends a mass cancel of every instrument; the ids of the `count` orders
/// it cancels, sorted.
fn mass_cancel(client: &mut Client, count: usize) -> Vec<u64> {
    client.send(&ClientMessage::MassCancel { instrument: None });
    let mut gone = Vec::new();
    while gone.len() < count {
        gone.push(client.expect("mass cancel", |m| match m {
            VenueMessage::Cancelled {
                order_id, reason, ..
            } if cancel_name(*reason) == "MASS_CANCEL" => Some(*order_id),
            _ => None,
        }));
    }
    gone.sort_unstable();
    gone
}

/// A wire order's price is in ticks; the pre-router checks it against the
/// instrument's band in ticks (NBR: 0.01 to 1000.00 USD at 0.01 a tick).
#[test]
fn a_limit_price_outside_the_instruments_band_is_refused_and_its_edges_are_accepted() {
    let dir = scratch("band", QUICK);
    let venue = Venue::start(&dir);
    let mut maker = venue.login(3001);
    for price_ticks in [0, -1, 100_001, i64::MAX, i64::MIN] {
        let id = maker.limit(NBR, SIDE_SELL, price_ticks, 1);
        assert_eq!(
            maker.rejected(),
            (id, 0, "INVALID_ORDER"),
            "price {price_ticks}"
        );
    }
    for price_ticks in [1, 100_000] {
        maker.rest(NBR, SIDE_SELL, price_ticks, 1);
    }
}

#[test]
fn a_buy_below_the_floor_is_held_until_an_attestation_then_fills_with_supplementary_pricing() {
    let dir = scratch("attest", QUICK);
    let venue = Venue::start(&dir);
    let mut maker = venue.login(3001);
    maker.rest(NBR, SIDE_SELL, 1500, 100);

    let mut buyer = venue.login(1001);
    let id = buyer.next_id();
    buyer.send(&ClientMessage::NewOrder(NewOrder {
        client_order_id: id,
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
    buyer.expect("held", |m| match m {
        VenueMessage::OrderHeld {
            client_order_id,
            reason,
        } if *client_order_id == id && reject_name(*reason) == "ATTESTATION_REQUIRED" => Some(()),
        _ => None,
    });
    buyer.send(&ClientMessage::SubmitAttestation {
        id: "ATT-2026-7".into(),
        internal_price_micros: 25_000_000,
        reporting_year: 2026,
    });
    buyer.expect("attestation accepted", |m| match m {
        VenueMessage::AttestationAccepted { rechecked: 1, .. } => Some(()),
        _ => None,
    });
    let (order_id, attestation) = buyer.expect("accepted after attestation", |m| match m {
        VenueMessage::OrderAccepted {
            client_order_id,
            order_id,
            pathway: 2,
            floor_ticks: 2000,
            attestation,
            ..
        } if *client_order_id == id => Some((*order_id, attestation.clone())),
        _ => None,
    });
    assert_eq!(attestation.as_deref(), Some("ATT-2026-7"));
    let supplementary = buyer.expect("fill", |m| match m {
        VenueMessage::Fill {
            order_id: o,
            qty: 40,
            supplementary_ticks,
            ..
        } if *o == order_id => Some(*supplementary_ticks),
        _ => None,
    });
    assert_eq!(supplementary, 500, "floor 2000 ticks - price 1500");

    // The fill stream has the buyer's decision and the trade.
    let all = read_stream(&venue.fill_stream, 1, count_records(&venue));
    let decision = harness::buy_decision(&all, order_id).expect("BuyAccepted in the fill stream");
    assert_eq!(decision.company, "Acme Manufacturing");
    assert_eq!(decision.attestation.as_deref(), Some("ATT-2026-7"));
    assert_eq!(
        decision.scope,
        vec![ScopeLine {
            scope: 3,
            category: 1,
            qty: 40
        }]
    );
    assert!(all.iter().any(|r| matches!(r.event,
        StreamEvent::Trade { buy_order_id, supplementary_ticks: 500, qty: 40, .. } if buy_order_id == order_id)));
}

/// Records in the venue's fill log so far (read back through the stream).
fn count_records(venue: &Venue) -> usize {
    let mut count = 0;
    let mut seq = 1;
    loop {
        let batch = read_stream_some(&venue.fill_stream, seq);
        if batch == 0 {
            return count;
        }
        count += batch;
        seq += batch as u64;
    }
}

fn read_stream_some(addr: &str, from_seq: u64) -> usize {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .write_all(&tonnex_protocol::frame::encode(&harness::subscription(
            from_seq,
        )))
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 65536];
    while let Ok(n) = stream.read(&mut chunk) {
        if n == 0 {
            break;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let mut count = 0;
    let mut at = 0;
    while let Ok(Some((_, used))) = tonnex_protocol::frame::split(&buffer[at..], 1 << 20) {
        at += used;
        count += 1;
    }
    count
}

#[test]
fn a_cancelled_buy_releases_its_claim_on_the_buyers_inventory() {
    // Buyer 1003 (engaged pathway) has 800 t of scope 1 inventory.
    let dir = scratch("claims", QUICK);
    let venue = Venue::start(&dir);
    let mut buyer = venue.login(1003);
    let scope1 = |qty| ScopeLine {
        scope: 1,
        category: 0,
        qty,
    };
    let order = |client: &mut harness::Client, qty: u64| {
        let id = client.next_id();
        client.send(&ClientMessage::NewOrder(NewOrder {
            client_order_id: id,
            instrument: NBR,
            side: SIDE_BUY,
            order_type: TYPE_LIMIT,
            time_in_force: TIF_GTC,
            price_ticks: 100,
            qty,
            cash_budget_micros: 0,
            scope: vec![scope1(qty)],
            attestation: None,
        }));
        id
    };
    let first = order(&mut buyer, 800);
    let resting = buyer.accepted(first);
    let second = order(&mut buyer, 1);
    assert_eq!(buyer.rejected(), (second, 0, "SCOPE_EXCEEDS_INVENTORY"));
    buyer.send(&ClientMessage::Cancel { order_id: resting });
    buyer.expect("cancelled", |m| match m {
        VenueMessage::Cancelled { order_id, .. } if *order_id == resting => Some(()),
        _ => None,
    });
    let third = order(&mut buyer, 800);
    buyer.accepted(third);
}

#[test]
fn market_data_gives_a_snapshot_then_level_updates_and_trades() {
    let dir = scratch("md", QUICK);
    let venue = Venue::start(&dir);
    let mut maker = venue.login(3001);
    maker.rest(NBR, SIDE_SELL, 2500, 10);
    let mut watcher = venue.login(3003);
    watcher.send(&ClientMessage::Subscribe { instrument: NBR });
    let (md_seq, asks) = watcher.expect("snapshot", |m| match m {
        VenueMessage::BookSnapshot { md_seq, asks, .. } => Some((*md_seq, asks.clone())),
        _ => None,
    });
    assert_eq!(
        asks,
        vec![Level {
            price_ticks: 2500,
            qty: 10
        }]
    );
    maker.rest(NBR, SIDE_SELL, 2500, 5);
    watcher.expect("level update", |m| match m {
        VenueMessage::LevelUpdate {
            md_seq: s,
            price_ticks: 2500,
            qty: 15,
            ..
        } if *s == md_seq + 1 => Some(()),
        _ => None,
    });
    let mut taker = venue.login(3002);
    let id = taker.limit(NBR, SIDE_BUY, 2500, 15);
    taker.accepted(id);
    watcher.expect("trade", |m| match m {
        VenueMessage::Trade {
            price_ticks: 2500,
            qty: 10,
            ..
        } => Some(()),
        _ => None,
    });
    watcher.expect("level emptied", |m| match m {
        VenueMessage::LevelUpdate {
            price_ticks: 2500,
            qty: 0,
            ..
        } => Some(()),
        _ => None,
    });
}

#[test]
fn acknowledged_orders_and_the_fill_stream_survive_kill_9_and_sigterm_exits_cleanly() {
    let dir = scratch("restart", QUICK);
    let mut venue = Venue::start(&dir);
    let genesis = venue.recovered_records;
    assert_eq!(genesis, 0);
    let mut maker = venue.login(3001);
    let mut acked = Vec::new();
    for i in 0..50 {
        acked.push(maker.rest(NBR, SIDE_SELL, 3000 + i, 1));
    }
    let mut taker = venue.login(3002);
    let id = taker.limit(NBR, SIDE_BUY, 3010, 5);
    taker.accepted(id);
    taker.expect("fill", |m| {
        matches!(m, VenueMessage::Fill { .. }).then_some(())
    });
    let before = count_records(&venue);
    venue.kill9();

    let mut venue = Venue::start(&dir);
    // 59 start-up commands (3 instruments, each after its fill-stream
    // annotation, 7 cash deposits, 15 lots each after its serial block and
    // annotation, the rules in force) + 51 orders.
    assert_eq!(venue.recovered_records, 59 + 51);
    // The fill stream resumes where it was, with nothing lost or doubled.
    assert_eq!(count_records(&venue), before);
    // A recovered resting order still trades (it is 3000 + 5 after the 5 fills).
    // The taker's client order ids go on from where they were: used ones
    // stay used across the restart.
    let mut taker = venue.login(3002);
    taker.next_client_order_id = 2;
    let id = taker.limit(NBR, SIDE_BUY, 3005, 1);
    taker.accepted(id);
    let filled = taker.expect("fill against a recovered order", |m| match m {
        VenueMessage::Fill { price_ticks, .. } => Some(*price_ticks),
        _ => None,
    });
    assert_eq!(filled, 3005);
    let next = read_stream(&venue.fill_stream, before as u64 + 1, 1);
    assert_eq!(next[0].seq, before as u64 + 1);
    assert!(matches!(
        next[0].event,
        StreamEvent::Trade {
            price_ticks: 3005,
            ..
        }
    ));
    let status = venue.sigterm();
    assert!(status.success(), "{status:?}");
}
