//! The journal is the venue's whole truth: compliance and session state
//! survive `kill -9` and restarts. Each test here is a regression of the
//! "Why" list of the one-truth issue and failed before it.

use std::time::Duration;

use tonnex_protocol::wire::*;

use crate::harness::{self, line as scope, scratch, Client, Venue, QUICK};

const NBR: u32 = 0;

/// Sends a buyer's buy with one scope line and returns its client id.
fn buy(client: &mut Client, tif: u8, price_ticks: i64, qty: u64, line: ScopeLine) -> u64 {
    client.buy_scoped(NBR, tif, price_ticks, qty, vec![line])
}

/// Logs in again after a restart, continuing the client order ids.
fn relogin(venue: &Venue, account: u64, next_id: u64) -> Client {
    let mut client = venue.login(account);
    client.next_client_order_id = next_id;
    client
}

#[test]
fn claims_client_ids_and_order_ids_survive_kill_9() {
    // Buyer 1003 (engaged) has 800 t of scope 1 inventory.
    let dir = scratch("claims-restart", QUICK);
    let mut venue = Venue::start(&dir);
    let mut buyer = venue.login(1003);
    let first = buy(&mut buyer, TIF_GTC, 100, 800, scope(1, 0, 800));
    let resting = buyer.accepted(first);
    venue.kill9();

    let venue = Venue::start(&dir);
    let mut buyer = relogin(&venue, 1003, 2);
    // The inventory is still claimed: a second scope 1 bid is refused.
    let second = buy(&mut buyer, TIF_GTC, 100, 1, scope(1, 0, 1));
    assert_eq!(buyer.rejected(), (second, 0, "SCOPE_EXCEEDS_INVENTORY"));
    // A used client order id is refused after the restart. The buyer holds
    // no credits, so the engine refuses this sell; its answer is awaited
    // before the duplicate goes out, because the gateway refuses a duplicate
    // at once and the two answers may come back in either order.
    let sell = buyer.limit(NBR, SIDE_SELL, 2500, 1);
    assert_eq!(buyer.rejected(), (sell, 0, "INSUFFICIENT_CREDITS"));
    buyer.next_client_order_id = 1;
    let duplicate = buy(&mut buyer, TIF_GTC, 100, 1, scope(1, 0, 1));
    assert_eq!(
        buyer.rejected(),
        (duplicate, 0, "DUPLICATE_CLIENT_ORDER_ID")
    );
    buyer.next_client_order_id = 4;
    // The order placed before the restart is cancelled with its client id,
    // and its tonnes are free again.
    buyer.send(&ClientMessage::Cancel { order_id: resting });
    let client_order_id = buyer.expect("cancelled", |m| match m {
        VenueMessage::Cancelled {
            order_id,
            client_order_id,
            ..
        } if *order_id == resting => Some(*client_order_id),
        _ => None,
    });
    assert_eq!(client_order_id, first);
    let third = buy(&mut buyer, TIF_GTC, 100, 800, scope(1, 0, 800));
    buyer.accepted(third);
}

#[test]
fn a_market_makers_resting_orders_keep_their_client_ids_after_kill_9() {
    // The venue keeps one record per order: the engine's pool slot holds
    // the client id, and the gateway rebuilds its view of live orders from
    // it (the engine tags buyers' buys only).
    let dir = scratch("maker-restart", QUICK);
    let mut venue = Venue::start(&dir);
    let mut maker = venue.login(3001);
    let first = maker.limit(NBR, SIDE_SELL, 2500, 10);
    let first_id = maker.accepted(first);
    let second = maker.limit(NBR, SIDE_SELL, 2600, 5);
    let second_id = maker.accepted(second);
    venue.kill9();

    let venue = Venue::start(&dir);
    let mut maker = relogin(&venue, 3001, 3);
    let mut taker = venue.login(3002);
    let buy = taker.limit(NBR, SIDE_BUY, 2500, 4);
    taker.accepted(buy);
    let fill = maker.expect("the maker's fill", |m| match m {
        VenueMessage::Fill {
            order_id,
            client_order_id,
            leaves_qty,
            ..
        } if *order_id == first_id => Some((*client_order_id, *leaves_qty)),
        _ => None,
    });
    assert_eq!(fill, (first, 6));
    maker.send(&ClientMessage::Cancel {
        order_id: second_id,
    });
    let cancelled = maker.expect("cancelled", |m| match m {
        VenueMessage::Cancelled {
            order_id,
            client_order_id,
            ..
        } if *order_id == second_id => Some(*client_order_id),
        _ => None,
    });
    assert_eq!(cancelled, second);
    maker.send(&ClientMessage::OrderStatus { client_order_id: 0 });
    let status = maker.expect("the live order's status", |m| match m {
        VenueMessage::OrderStatus {
            order_id,
            client_order_id,
            open_qty,
            price_ticks,
            ..
        } => Some((*order_id, *client_order_id, *open_qty, *price_ticks)),
        _ => None,
    });
    assert_eq!(status, (first_id, first, 6, 2500));
}

#[test]
fn an_ioc_remainder_and_a_replace_down_free_tonnes_and_a_replace_up_is_checked() {
    let dir = scratch("claims-fills", QUICK);
    let mut venue = Venue::start(&dir);
    let mut maker = venue.login(3001);
    maker.rest(NBR, SIDE_SELL, 1000, 10);
    let mut buyer = venue.login(1003);
    // IOC for 800 t fills 10 t: the 790 t remainder is free at once.
    let ioc = buy(&mut buyer, TIF_IOC, 1000, 800, scope(1, 0, 800));
    buyer.accepted(ioc);
    buyer.expect("remainder cancelled", |m| match m {
        VenueMessage::Cancelled {
            client_order_id,
            open_qty: 790,
            ..
        } if *client_order_id == ioc => Some(()),
        _ => None,
    });
    // 10 t filled + 790 t open = the whole 800 t inventory.
    let rest = buy(&mut buyer, TIF_GTC, 100, 790, scope(1, 0, 790));
    let resting = buyer.accepted(rest);
    let over = buy(&mut buyer, TIF_GTC, 100, 1, scope(1, 0, 1));
    assert_eq!(buyer.rejected(), (over, 0, "SCOPE_EXCEEDS_INVENTORY"));
    // Replace down to 700 t frees 90 t ...
    buyer.send(&ClientMessage::Replace {
        order_id: resting,
        price_ticks: 100,
        qty: 700,
    });
    buyer.expect("replaced", |m| {
        matches!(m, VenueMessage::Replaced { qty: 700, .. }).then_some(())
    });
    venue.kill9();

    // ... across a restart too; a replace up past the inventory is refused.
    let venue = Venue::start(&dir);
    let mut buyer = relogin(&venue, 1003, 10);
    buyer.send(&ClientMessage::Replace {
        order_id: resting,
        price_ticks: 100,
        qty: 791,
    });
    assert_eq!(buyer.rejected(), (0, resting, "SCOPE_EXCEEDS_INVENTORY"));
    let fits = buy(&mut buyer, TIF_GTC, 100, 90, scope(1, 0, 90));
    buyer.accepted(fits);
}

#[test]
fn a_held_order_and_a_wire_attestation_survive_kill_9() {
    let dir = scratch("held-restart", QUICK);
    let mut venue = Venue::start(&dir);
    let mut buyer = venue.login(1001);
    // Recognised pathway, floor 20.00: a bid at 16.00 is held.
    let held = buy(&mut buyer, TIF_GTC, 1600, 40, scope(3, 1, 40));
    buyer.expect("held", |m| match m {
        VenueMessage::OrderHeld {
            client_order_id, ..
        } if *client_order_id == held => Some(()),
        _ => None,
    });
    venue.kill9();

    let mut venue = Venue::start(&dir);
    let mut maker = venue.login(3001);
    maker.rest(NBR, SIDE_SELL, 1500, 100);
    let mut buyer = relogin(&venue, 1001, 2);
    buyer.send(&ClientMessage::SubmitAttestation {
        id: "ATT-R1".into(),
        internal_price_micros: 25_000_000,
        reporting_year: 2026,
    });
    buyer.expect("attestation accepted", |m| match m {
        VenueMessage::AttestationAccepted { rechecked: 1, .. } => Some(()),
        _ => None,
    });
    buyer.accepted(held);
    venue.kill9();

    // The attestation itself survives: its id cannot be used again.
    let venue = Venue::start(&dir);
    let mut buyer = relogin(&venue, 1001, 3);
    buyer.send(&ClientMessage::SubmitAttestation {
        id: "ATT-R1".into(),
        internal_price_micros: 25_000_000,
        reporting_year: 2026,
    });
    let (reason, text) = refused(&mut buyer);
    assert_eq!(reason, "ATTESTATION_INVALID");
    assert!(text.contains("already used"), "{text}");
}

fn refused(client: &mut Client) -> (&'static str, String) {
    client.expect("attestation refused", |m| match m {
        VenueMessage::AttestationRefused { reason, text, .. } => {
            Some((reject_name(*reason), text.clone()))
        }
        _ => None,
    })
}

#[test]
fn wire_attestations_are_validated_and_refusals_answered() {
    let dir = scratch("attest-rules", QUICK);
    let venue = Venue::start(&dir);
    let mut buyer = venue.login(1001);
    for (id, price, year, why) in [
        ("", 25_000_000, 2026, "empty"),
        (&"x".repeat(65)[..], 25_000_000, 2026, "more than 64"),
        ("NEG", -1_000_000, 2026, "not positive"),
        ("CENT", 25_000_001, 2026, "whole number of cents"),
        ("YEAR", 25_000_000, 2025, "reporting year"),
    ] {
        buyer.send(&ClientMessage::SubmitAttestation {
            id: id.into(),
            internal_price_micros: price,
            reporting_year: year,
        });
        let (reason, text) = refused(&mut buyer);
        assert_eq!(reason, "ATTESTATION_INVALID", "{id}");
        assert!(text.contains(why), "{id}: {text}");
    }
    // A market maker has no profile.
    let mut maker = venue.login(3001);
    maker.send(&ClientMessage::SubmitAttestation {
        id: "MM".into(),
        internal_price_micros: 25_000_000,
        reporting_year: 2026,
    });
    assert_eq!(refused(&mut maker).0, "NO_PROFILE");
    // Nothing else arrives for the refused ones.
    assert!(buyer
        .recv_within(Duration::from_millis(200))
        .is_none_or(|m| { !matches!(m, VenueMessage::AttestationAccepted { .. }) }));
    let _ = harness::QUICK;
}

#[test]
fn a_lot_overlapping_a_block_deposited_in_an_earlier_run_is_refused() {
    let dir = scratch("lots-earlier-run", QUICK);
    let mut venue = Venue::start(&dir);
    assert!(venue.sigterm().success());
    // A new export re-offers part of a demo lot deposited by that run.
    let header = std::fs::read_to_string(dir.join("lots-nbr.csv")).unwrap();
    let header = header.lines().next().unwrap();
    std::fs::write(
        dir.join("lots-again.csv"),
        format!(
            "{header}\n\
             Verra,VCS-2451,VCS-2451-2023-000049000,VCS-2451-2023-000051000,2001,2023,VM0047,removal,nature-based,true,false,false,2001\n\
             Verra,VCS-2451,VCS-2451-2023-000050001,VCS-2451-2023-000051000,1000,2023,VM0047,removal,nature-based,true,false,false,2001\n"
        ),
    )
    .unwrap();
    let config = std::fs::read_to_string(dir.join("venue.toml")).unwrap();
    std::fs::write(
        dir.join("venue.toml"),
        format!("{config}\n[[lots]]\nfile = \"lots-again.csv\"\ninstrument = \"NBR-2024.CCP\"\n"),
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tonnex-venue"))
        .args(["lots", "--config"])
        .arg(dir.join("venue.toml"))
        .output()
        .unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("lots-again.csv"))
        .collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].contains("\"reason\": \"LOT_SERIALS_OVERLAP\"")
            && lines[0].contains(
                "overlap Verra VCS-2451-2023-000000001..VCS-2451-2023-000050000 deposited from "
            )
            && lines[0].contains("lots-nbr.csv line 2 (journal sequence "),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("\"decision\": \"deposit\""),
        "{}",
        lines[1]
    );
    // The venue's own lots are in its journal, so each of them now overlaps
    // itself: the journal, not the file, is what was deposited.
    assert!(
        stdout
            .lines()
            .filter(|l| !l.contains("lots-again.csv"))
            .all(|l| l.contains("LOT_SERIALS_OVERLAP") || l.contains("LOT_NOT_ELIGIBLE")),
        "{stdout}"
    );
}
