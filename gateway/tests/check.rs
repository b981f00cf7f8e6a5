//! `tonnex-venue check`: golden scenarios (every reason code, every pathway,
//! attestation choice, coverage truncation, threshold flags, scope 3
//! categories, malformed lines), and loading errors that name the file,
//! the record and the field.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tonnex_gateway::compliance::{self, OrderRequest, Outcome, RawScopeLine};
use tonnex_protocol::{OrderKind, RejectReason, Side};

fn venue(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tonnex-venue"))
        .args(args)
        .output()
        .unwrap()
}

fn scenarios() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios")
}

#[test]
fn golden_scenarios_give_exactly_their_expected_lines() {
    for name in ["basic", "reject-policy"] {
        let dir = scenarios().join(name);
        let output = venue(&[
            "check",
            "--config",
            dir.join("venue.toml").to_str().unwrap(),
            "--orders",
            dir.join("orders.jsonl").to_str().unwrap(),
        ]);
        assert!(
            output.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let got = String::from_utf8(output.stdout).unwrap();
        let want = std::fs::read_to_string(dir.join("expected.jsonl")).unwrap();
        for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
            assert_eq!(g, w, "{name}: output line {}", i + 1);
        }
        assert_eq!(
            got.lines().count(),
            want.lines().count(),
            "{name}: line count"
        );
    }
}

#[test]
fn every_reason_code_and_pathway_appears_in_the_basic_scenario() {
    let want = std::fs::read_to_string(scenarios().join("basic/expected.jsonl")).unwrap();
    for reason in [
        "UNKNOWN_ACCOUNT",
        "ACCOUNT_NOT_ACTIVE",
        "UNKNOWN_INSTRUMENT",
        "INVALID_ORDER",
        "NO_PROFILE",
        "SUBLEDGER_NOT_ELIGIBLE",
        "INTERNAL_PRICE_BELOW_FLOOR",
        "SCOPE_MISSING",
        "SCOPE_EXCEEDS_INVENTORY",
        "ATTESTATION_REQUIRED",
    ] {
        assert!(
            want.contains(&format!("\"reason\": \"{reason}\"")),
            "{reason}"
        );
    }
    for pathway in ["none", "engaged", "recognised", "leadership"] {
        assert!(
            want.contains(&format!(
                "\"decision\": \"accept\", \"reason\": null, \"pathway\": \"{pathway}\""
            )),
            "{pathway}"
        );
    }
    let reject = std::fs::read_to_string(scenarios().join("reject-policy/expected.jsonl")).unwrap();
    assert!(reject.contains("\"reason\": \"PRICE_BELOW_FLOOR\""));
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tonnex-check-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["venue.toml", "rules.toml", "profiles.json"] {
        std::fs::copy(scenarios().join("basic").join(file), dir.join(file)).unwrap();
    }
    write(&dir, "orders.jsonl", "");
    dir
}

fn check_error(dir: &Path) -> String {
    let output = venue(&[
        "check",
        "--config",
        dir.join("venue.toml").to_str().unwrap(),
        "--orders",
        dir.join("orders.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    String::from_utf8(output.stderr).unwrap()
}

#[test]
fn loading_errors_name_the_file_the_record_and_the_field() {
    let dir = scratch("errors");
    let venue_text = std::fs::read_to_string(dir.join("venue.toml")).unwrap();
    write(
        &dir,
        "venue.toml",
        &venue_text.replacen("role = \"seller\"", "role = \"vendor\"", 1),
    );
    let error = check_error(&dir);
    assert!(
        error
            .contains("venue.toml: account[8].role: 'vendor' is not buyer, seller or market_maker"),
        "{error}"
    );

    write(
        &dir,
        "venue.toml",
        &venue_text.replacen("tick_usd = \"0.05\"", "tick_usd = \"0.0x\"", 1),
    );
    let error = check_error(&dir);
    assert!(
        error.contains("venue.toml: instrument[3].tick_usd: '0.0x' is not a decimal number"),
        "{error}"
    );

    write(
        &dir,
        "venue.toml",
        &venue_text.replacen("[[instrument]]", "[[instrument]\n", 1),
    );
    let error = check_error(&dir);
    assert!(error.contains("venue.toml: line "), "{error}");

    write(&dir, "venue.toml", &venue_text);
    let profiles = std::fs::read_to_string(dir.join("profiles.json")).unwrap();
    write(
        &dir,
        "profiles.json",
        &profiles.replacen("\"pathway\": \"engaged\"", "\"pathway\": \"engagd\"", 1),
    );
    let error = check_error(&dir);
    assert!(error.contains("profiles.json: record 3 (account 1003).pathway: 'engagd' is not engaged, recognised or leadership"), "{error}");

    write(
        &dir,
        "profiles.json",
        &profiles.replacen("\"4\": 300", "\"16\": 300", 1),
    );
    let error = check_error(&dir);
    assert!(
        error.contains("record 1 (account 1001).inventory.scope3.\"16\""),
        "{error}"
    );

    write(&dir, "profiles.json", &profiles);
    let rules = std::fs::read_to_string(dir.join("rules.toml")).unwrap();
    write(
        &dir,
        "rules.toml",
        &rules.replacen("[pathway.leadership]", "[pathway.leader]", 1),
    );
    let error = check_error(&dir);
    assert!(
        error.contains("rules.toml: pathway.leadership: missing"),
        "{error}"
    );
    std::fs::remove_dir_all(dir).ok();
}

fn buy(id: u64, price: &str, qty: i64, scope: &[(i64, Option<i64>, i64)]) -> OrderRequest {
    OrderRequest {
        id,
        account: 1001,
        side: Side::Buy,
        instrument: "NBR-2024.CCP".to_string(),
        kind: OrderKind::Limit,
        price_usd: Some(price.parse().unwrap()),
        qty,
        scope: Some(
            scope
                .iter()
                .map(|&(scope, category, qty)| RawScopeLine {
                    scope: Some(scope),
                    category,
                    category_given: category.is_some(),
                    qty: Some(qty),
                    malformed: false,
                })
                .collect(),
        ),
    }
}

#[test]
fn claims_count_until_released_and_release_frees_the_inventory() {
    let (_, mut router) = compliance::load_router(&scenarios().join("basic/venue.toml")).unwrap();
    // Acme's scope 3 category 4 inventory is 300 t.
    let first = router.decide(&buy(1, "25.00", 200, &[(3, Some(4), 200)]));
    assert_eq!(first.outcome, Outcome::Accept);
    let second = router.decide(&buy(2, "25.00", 150, &[(3, Some(4), 150)]));
    assert_eq!(second.reason, Some(RejectReason::ScopeExceedsInventory));
    // The first order is cancelled with 120 t unfilled: those tonnes are free again.
    router.release(1001, &first.allocation, 120);
    assert_eq!(router.claimed_tonnes(1001), 80);
    let third = router.decide(&buy(3, "25.00", 150, &[(3, Some(4), 150)]));
    assert_eq!(third.outcome, Outcome::Accept);
    assert_eq!(third.coverage_pct.unwrap().to_string(), "2.30"); // (80 + 150) / 10000
                                                                 // The engine gets the floor in ticks and the price in ticks.
    assert_eq!(third.floor_ticks, 2_000);
    assert_eq!(third.price_ticks, Some(2_500));
}

#[test]
fn a_hold_claims_nothing() {
    let (_, mut router) = compliance::load_router(&scenarios().join("basic/venue.toml")).unwrap();
    let mut order = buy(1, "79.99", 10, &[(1, None, 10)]);
    order.account = 1002;
    order.instrument = "DAC-2025.REM".to_string();
    let held = router.decide(&order);
    assert_eq!(
        (held.outcome, held.reason),
        (Outcome::Hold, Some(RejectReason::AttestationRequired))
    );
    assert_eq!(router.claimed_tonnes(1002), 0);
}
