//! Settlement's outcomes on the admin port: only the `settlement` role may
//! send them; each frees (or returns) the legs of its trade once, by outbox
//! id, also after `kill -9`; an outcome for a trade that is not pending is
//! refused by name and changes nothing.

use tonnex_protocol::admin::{AdminReply, AdminVerb, OutcomeRefusal, SettlementOutcome};
use tonnex_protocol::admin_client;
use tonnex_protocol::wire::*;

use crate::harness::{scratch, Venue, QUICK};

const NBR: u32 = 0;

fn send(
    venue: &Venue,
    operator: &str,
    key: &str,
    first_id: u64,
    outcomes: Vec<SettlementOutcome>,
) -> AdminReply {
    admin_client::call(
        &venue.admin,
        operator,
        key,
        "settlement outcomes",
        AdminVerb::Settlement { first_id, outcomes },
    )
    .unwrap()
}

fn settle(
    venue: &Venue,
    first_id: u64,
    outcomes: Vec<SettlementOutcome>,
) -> (u64, u32, Vec<OutcomeRefusal>) {
    match send(
        venue,
        "settlement",
        "demo-settlement-admin-key",
        first_id,
        outcomes,
    ) {
        AdminReply::Settlement {
            through_id,
            applied,
            refused,
            ..
        } => (through_id, applied, refused),
        other => panic!("{other:?}"),
    }
}

fn withdraw(venue: &Venue, tonnes: &str) -> String {
    let out = venue.admin_cli(
        "ops",
        "demo-ops-key",
        &["withdraw-credits", "2001", "NBR-2024.CCP", tonnes],
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string()
}

#[test]
fn an_unwound_trade_gives_the_seller_its_credits_back_once_even_after_kill_9() {
    let dir = scratch("settle-unwind", QUICK);
    let mut venue = Venue::start(&dir);
    // Seller 2001 holds 50,000 t; 10 t trade to market maker 3002.
    let mut seller = venue.login(2001);
    seller.rest(NBR, SIDE_SELL, 3000, 10);
    let mut buyer = venue.login(3002);
    buyer.limit(NBR, SIDE_BUY, 3000, 10);
    let trade_id = buyer.expect("fill", |m| match m {
        VenueMessage::Fill { trade_id, .. } => Some(*trade_id),
        _ => None,
    });
    // Traded away: pending settlement, not free.
    assert_eq!(
        withdraw(&venue, "49991"),
        "ok=false reason=INSUFFICIENT_CREDITS"
    );

    // Only settlement may report outcomes; settlement may do nothing else.
    let unwound = vec![SettlementOutcome::Unwound { trade_id }];
    assert!(matches!(
        send(&venue, "ops", "demo-ops-key", 1, unwound.clone()),
        AdminReply::Refused { reason: 114, .. }
    ));
    let halt = admin_client::call(
        &venue.admin,
        "settlement",
        "demo-settlement-admin-key",
        "",
        AdminVerb::Halt { symbol: None },
    )
    .unwrap();
    assert!(
        matches!(halt, AdminReply::Refused { reason: 114, .. }),
        "{halt:?}"
    );
    assert!(matches!(
        send(
            &venue,
            "settlement",
            "demo-settlement-admin-key",
            0,
            unwound.clone()
        ),
        AdminReply::Refused { reason: 115, .. }
    ));

    assert_eq!(settle(&venue, 1, unwound.clone()), (1, 1, vec![]));
    // Sent again (settlement did not see the answer): nothing changes.
    assert_eq!(settle(&venue, 1, unwound.clone()), (1, 0, vec![]));
    // The same trade under a new id: no longer pending.
    assert_eq!(
        settle(
            &venue,
            2,
            vec![SettlementOutcome::Settled {
                trade_id,
                retire: false
            }]
        ),
        (2, 0, vec![OutcomeRefusal { id: 2, reason: 16 }])
    );
    drop((seller, buyer));
    venue.kill9();

    let venue = Venue::start(&dir);
    assert_eq!(settle(&venue, 1, unwound), (1, 0, vec![]));
    // The seller's 50,000 t are all free again, once.
    assert_eq!(
        withdraw(&venue, "50001"),
        "ok=false reason=INSUFFICIENT_CREDITS"
    );
    assert!(withdraw(&venue, "50000").starts_with("ok=true"));
}
