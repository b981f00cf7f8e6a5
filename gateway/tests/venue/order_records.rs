//! A market maker's order has one record, the engine's pool slot: its
//! reports carry its client order id from the engine's events, order
//! status reads the book in line with the commands, and a replace is
//! risk-checked against the instrument the slot names. Run with the
//! engine on its own thread and applied inline (where the gateway keeps
//! no record of a market maker's order at all).

use tonnex_protocol::wire::*;

use crate::harness::{scratch, Client, Venue, QUICK};

const NBR: u32 = 0;

/// A venue with the engine placed as `engine` and market maker 3001
/// limited to 50 t an order.
fn venue(name: &str, engine: &str) -> (crate::harness::Scratch, Venue) {
    let dir = scratch(name, QUICK);
    let file = dir.join("venue.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("engine = "))
        .map(|l| match l {
            "[session]" => format!("[session]\nengine = \"{engine}\""),
            "secret = \"demo-3001\"" => format!("{l}\nmax_order_qty = 50"),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&file, text).unwrap();
    let venue = Venue::start(&dir);
    (dir, venue)
}

/// Messages up to and including the next `OrderStatusEnd`.
fn until_status_end(client: &mut Client) -> Vec<VenueMessage> {
    let mut seen = Vec::new();
    loop {
        let message = client.recv().expect("an OrderStatusEnd");
        let end = matches!(message, VenueMessage::OrderStatusEnd { .. });
        seen.push(message);
        if end {
            return seen;
        }
    }
}

fn one_record_per_order(engine: &str) {
    let (_dir, venue) = venue(&format!("records-{engine}"), engine);
    let mut maker = venue.login(3001);
    let mut taker = venue.login(3002);

    // A new order and an order status in one write: the status answers
    // after the order's acceptance, and lists it.
    let (id, order) = maker.order_message(NBR, SIDE_SELL, TIF_GTC, 2500, 10, vec![]);
    let mut bytes = tonnex_protocol::frame::encode(&order);
    bytes.extend(tonnex_protocol::frame::encode(
        &ClientMessage::OrderStatus { client_order_id: 0 },
    ));
    std::io::Write::write_all(&mut maker.stream, &bytes).unwrap();
    let seen = until_status_end(&mut maker);
    let VenueMessage::OrderAccepted { order_id, .. } = seen[0] else {
        panic!("{engine}: acceptance first, saw {seen:#?}");
    };
    let live = VenueMessage::OrderStatus {
        client_order_id: id,
        order_id,
        instrument: NBR,
        side: SIDE_SELL,
        price_ticks: 2500,
        open_qty: 10,
        state: STATE_LIVE,
    };
    assert_eq!(
        seen[1..],
        [
            live,
            VenueMessage::OrderStatusEnd {
                count: 1,
                last_seq: maker.last_seq
            }
        ],
        "{engine}"
    );

    // A replace over the account's limit is refused by the risk check,
    // which needs the order's instrument; one within it goes through.
    maker.send(&ClientMessage::Replace {
        order_id,
        price_ticks: 2500,
        qty: 60,
    });
    assert_eq!(maker.rejected(), (0, order_id, "RISK_MAX_QTY"), "{engine}");
    maker.send(&ClientMessage::Replace {
        order_id,
        price_ticks: 2500,
        qty: 8,
    });
    assert_eq!(
        maker.recv().unwrap(),
        VenueMessage::Replaced {
            client_order_id: id,
            order_id,
            price_ticks: 2500,
            qty: 8,
            priority_kept: true,
        },
        "{engine}"
    );

    // A fill names both sides' client ids, a cancel the maker's.
    let taker_id = taker.limit(NBR, SIDE_BUY, 2500, 3);
    let taker_order = taker.accepted(taker_id);
    let fill = |m: &VenueMessage| match m {
        VenueMessage::Fill {
            client_order_id,
            order_id,
            qty,
            leaves_qty,
            ..
        } => Some((*client_order_id, *order_id, *qty, *leaves_qty)),
        _ => None,
    };
    assert_eq!(taker.expect("Fill", fill), (taker_id, taker_order, 3, 0));
    assert_eq!(maker.expect("Fill", fill), (id, order_id, 3, 5), "{engine}");
    maker.send(&ClientMessage::Cancel { order_id });
    assert_eq!(
        maker.expect("Cancelled", |m| match m {
            VenueMessage::Cancelled {
                client_order_id,
                order_id,
                open_qty,
                ..
            } => Some((*client_order_id, *order_id, *open_qty)),
            _ => None,
        }),
        (id, order_id, 5),
        "{engine}"
    );
    maker.send(&ClientMessage::OrderStatus { client_order_id: 0 });
    assert_eq!(
        until_status_end(&mut maker),
        [VenueMessage::OrderStatusEnd {
            count: 0,
            last_seq: maker.last_seq
        }],
        "{engine}"
    );
}

#[test]
fn a_market_makers_order_is_one_record_with_the_engine_on_its_thread() {
    one_record_per_order("thread");
}

#[test]
fn a_market_makers_order_is_one_record_with_the_engine_inline() {
    one_record_per_order("inline");
}
