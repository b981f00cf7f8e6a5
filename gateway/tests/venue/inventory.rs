//! The carbon-accounting integration on the venue: an inventory uploaded
//! through the admin port is checked, journaled and in force for the next
//! order, survives `kill -9` and a rules reload, and is refused (naming
//! what is wrong) when it does not fit the buyer's profile or claims.

use tonnex_protocol::wire::*;

use crate::harness::{line, scratch, Client, Venue, QUICK};

const NBR: u32 = 0;

/// Runs `tonnex-admin` as `operator`; (exit code, every line printed).
fn admin(venue: &Venue, operator: &str, key: &str, args: &[&str]) -> (i32, Vec<String>) {
    let output = venue.admin_cli(operator, key, args);
    // Diagnostics first, so the last line is the contract's `ok=...`.
    let mut lines: Vec<String> = String::from_utf8(output.stderr)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    lines.extend(
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(str::to_string),
    );
    (output.status.code().unwrap(), lines)
}

fn compliance(venue: &Venue, args: &[&str]) -> (i32, Vec<String>) {
    admin(venue, "compliance", "demo-compliance-key", args)
}

/// A buy of `qty` t at 21.00 on scope 3 `category`; its client id.
fn buy(client: &mut Client, category: u8, qty: u64) -> u64 {
    client.buy_scoped(NBR, TIF_GTC, 2100, qty, vec![line(3, category, qty)])
}

fn export(dir: &std::path::Path, name: &str, rows: &str) -> String {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!("account,reporting_year,scope,category,tonnes\n{rows}"),
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn an_uploaded_inventory_routes_the_next_order_and_survives_kill_9_and_a_reload() {
    let dir = scratch("inventory", QUICK);
    let mut venue = Venue::start(&dir);
    let mut buyer = venue.login(1001);
    // Category 6 (business travel) is not in the demo profile: no room.
    let before = buy(&mut buyer, 6, 10);
    assert_eq!(buyer.rejected(), (before, 0, "SCOPE_EXCEEDS_INVENTORY"));
    let upload = export(
        &dir,
        "acme-2026.csv",
        "1001,2026,1,,20000\n1001,2026,2,,8000\n1001,2026,3,1,30000\n1001,2026,3,1,10000\n\
         1001,2026,3,4,6000\n1001,2026,3,6,56000.5\n",
    );
    let (code, lines) = compliance(
        &venue,
        &["inventory", &upload, "--reason", "FY2026 inventory"],
    );
    assert_eq!(code, 0, "{lines:?}");
    assert!(
        lines.last().unwrap().starts_with("ok=true seq="),
        "{lines:?}"
    );
    let after = buy(&mut buyer, 6, 10);
    buyer.accepted(after);
    let (_, state) = compliance(&venue, &["buyer", "1001"]);
    assert!(
        state.contains(&"inventory scope=3 category=6 tonnes=56000.5 claimed=10".to_string()),
        "{state:?}"
    );
    assert!(state.contains(&"inventory scope=3 category=1 tonnes=40000 claimed=0".to_string()));
    drop(buyer);
    venue.kill9();

    // After kill -9 the upload is the venue's truth again, claims included.
    let venue = Venue::start(&dir);
    let (_, state) = compliance(&venue, &["buyer", "1001"]);
    assert!(
        state.contains(&"inventory scope=3 category=6 tonnes=56000.5 claimed=10".to_string()),
        "{state:?}"
    );
    // A rules reload rebuilds the pre-router from the files; the upload stays.
    let (code, lines) = admin(&venue, "ops", "demo-ops-key", &["reload-rules"]);
    assert_eq!(code, 0, "{lines:?}");
    let (_, state) = compliance(&venue, &["buyer", "1001"]);
    assert!(
        state.contains(&"inventory scope=3 category=6 tonnes=56000.5 claimed=10".to_string()),
        "{state:?}"
    );
}

#[test]
fn uploads_that_do_not_fit_the_profile_or_the_claims_are_refused_and_change_nothing() {
    let dir = scratch("inventory-refused", QUICK);
    let venue = Venue::start(&dir);
    let mut buyer = venue.login(1001);
    let claim = buy(&mut buyer, 1, 50);
    buyer.accepted(claim);
    let refused = |name: &str, rows: &str| {
        let file = export(&dir, name, rows);
        let (code, lines) = compliance(&venue, &["inventory", &file]);
        (code, lines.join("\n"))
    };
    // Another reporting year than the profile's.
    let (code, text) = refused("year.csv", "1001,2025,1,,200000\n");
    assert_eq!(code, 1);
    assert!(text.contains("reports for 2026, not 2025"), "{text}");
    // A total below the ongoing emissions it must contain (120,000 t).
    let (code, text) = refused("small.csv", "1001,2026,1,,1000\n1001,2026,3,1,1000\n");
    assert_eq!(code, 1);
    assert!(text.contains("below the ongoing emissions"), "{text}");
    // Below what is already claimed on a line.
    let (code, text) = refused("claims.csv", "1001,2026,1,,200000\n1001,2026,3,1,20\n");
    assert_eq!(code, 1);
    assert!(
        text.contains("scope 3 category 1: 50 t are already claimed"),
        "{text}"
    );
    // Bad rows never reach the venue: the tool names the line and field.
    let (code, text) = refused("bad.csv", "1001,2026,3,16,5\n");
    assert_eq!(code, 2);
    assert!(text.contains("line 2: category"), "{text}");
    let (code, text) = refused("negative.csv", "1001,2026,1,,-5\n");
    assert_eq!(code, 2);
    assert!(
        text.contains("line 2: tonnes: must not be negative"),
        "{text}"
    );
    // A role outside the verb, and a buyer without a profile.
    let file = export(&dir, "ok.csv", "1001,2026,1,,200000\n");
    let (_, lines) = admin(&venue, "auditor", "demo-auditor-key", &["inventory", &file]);
    assert_eq!(
        lines.last().unwrap(),
        "ok=false reason=NOT_PERMITTED",
        "{lines:?}"
    );
    let file = export(&dir, "seller.csv", "2001,2026,1,,200000\n");
    let (code, lines) = compliance(&venue, &["inventory", &file]);
    assert_eq!(
        (code, lines.last().unwrap().as_str()),
        (1, "ok=false reason=NO_PROFILE")
    );
    // Nothing changed: the demo profile's figures are still in force.
    let (_, state) = compliance(&venue, &["buyer", "1001"]);
    assert!(
        state.contains(&"inventory scope=3 category=1 tonnes=40000 claimed=50".to_string()),
        "{state:?}"
    );
}
