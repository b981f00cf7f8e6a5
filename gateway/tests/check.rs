//! `tonnex-venue check`: golden scenarios (every reason code, every pathway,
//! attestation choice, coverage truncation, threshold flags, scope 3
//! categories, malformed lines), and loading errors that name the file,
//! the record and the field.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tonnex_gateway::compliance::{self, LimitPrice, OrderRequest, Outcome, RawScopeLine};
use tonnex_protocol::{OrderKind, RejectReason, Side};

fn venue(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tonnex-venue"))
        .args(args)
        .output()
        .unwrap()
}

/// `tonnex-venue check` on the `venue.toml` and `orders.jsonl` of `dir`.
fn check_dir(dir: &Path) -> Output {
    venue(&[
        "check",
        "--config",
        dir.join("venue.toml").to_str().unwrap(),
        "--orders",
        dir.join("orders.jsonl").to_str().unwrap(),
    ])
}

/// The standard output lines of a run that must have succeeded.
fn successful_lines(output: Output) -> Vec<String> {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn scenarios() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios")
}

#[test]
fn golden_scenarios_give_exactly_their_expected_lines() {
    for name in ["basic", "reject-policy", "predicates", "shipped"] {
        let dir = scenarios().join(name);
        let output = check_dir(&dir);
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
    let output = check_dir(dir);
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
        instrument: "NBR-2024.CCP".into(),
        kind: OrderKind::Limit,
        price: Some(LimitPrice::Usd(price.parse().unwrap())),
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
fn a_held_order_is_accepted_once_the_buyer_attests_or_expires() {
    let (_, mut router) = compliance::load_router(&scenarios().join("basic/venue.toml")).unwrap();
    let mut held = compliance::HeldOrders::default();
    let mut order = buy(7, "79.99", 10, &[(1, None, 10)]);
    order.account = 1002;
    order.instrument = "DAC-2025.REM".into();
    let mut other = order.clone();
    other.id = 8;
    for o in [&order, &other] {
        assert_eq!(router.decide(o).outcome, Outcome::Hold);
        held.hold(o.clone(), if o.id == 7 { 1_000 } else { 5_000 });
    }
    // An attestation below the floor changes nothing; the orders keep waiting.
    let weak = compliance::Attestation {
        id: "B-1".into(),
        internal_price_usd: "70.00".parse().unwrap(),
        reporting_year: 2026,
    };
    assert!(held.attest(&mut router, 1002, weak).is_empty());
    assert_eq!(held.len(), 2);
    // Order 7 expires first.
    let expired = held.expire(1_000);
    assert_eq!(expired.iter().map(|o| o.id).collect::<Vec<_>>(), [7]);
    // A valid attestation releases order 8: accepted, attested, claimed.
    let valid = compliance::Attestation {
        id: "B-2".into(),
        internal_price_usd: "85.00".parse().unwrap(),
        reporting_year: 2026,
    };
    let decided = held.attest(&mut router, 1002, valid);
    assert_eq!(decided.len(), 1);
    let (order, decision) = &decided[0];
    assert_eq!(order.id, 8);
    assert_eq!(decision.outcome, Outcome::Accept);
    assert_eq!(decision.attestation.as_deref(), Some("B-2"));
    assert_eq!(router.claimed_tonnes(1002), 10);
    assert!(held.is_empty());
}

#[test]
fn a_hold_claims_nothing() {
    let (_, mut router) = compliance::load_router(&scenarios().join("basic/venue.toml")).unwrap();
    let mut order = buy(1, "79.99", 10, &[(1, None, 10)]);
    order.account = 1002;
    order.instrument = "DAC-2025.REM".into();
    let held = router.decide(&order);
    assert_eq!(
        (held.outcome, held.reason),
        (Outcome::Hold, Some(RejectReason::AttestationRequired))
    );
    assert_eq!(router.claimed_tonnes(1002), 0);
}

#[test]
fn an_inventory_export_replaces_the_profiles_figures_for_their_reporting_year() {
    let dir = scratch("inventory");
    let venue_text = std::fs::read_to_string(dir.join("venue.toml")).unwrap();
    write(
        &dir,
        "venue.toml",
        &venue_text.replacen(
            "profiles = \"profiles.json\"",
            "profiles = \"profiles.json\"\ninventory = \"inventory.csv\"",
            1,
        ),
    );
    // Acme (1001, reporting 2026): scope 3 category 4 now 700 t (two facilities), 2025 rows are history.
    write(
        &dir,
        "inventory.csv",
        "account,reporting_year,scope,category,tonnes\n1001,2026,1,,1000\n1001,2026,3,4,400\n1001,2026,3,4,300.5\n1001,2025,3,4,9999\n",
    );
    write(
        &dir,
        "orders.jsonl",
        "{\"id\": 1, \"account\": 1001, \"side\": \"buy\", \"instrument\": \"NBR-2024.CCP\", \"type\": \"limit\", \"price_usd\": \"25.00\", \"qty\": 700, \"scope\": [{\"scope\": 3, \"category\": 4, \"qty\": 700}]}\n\
         {\"id\": 2, \"account\": 1001, \"side\": \"buy\", \"instrument\": \"NBR-2024.CCP\", \"type\": \"limit\", \"price_usd\": \"25.00\", \"qty\": 1, \"scope\": [{\"scope\": 3, \"category\": 4, \"qty\": 1}]}\n\
         {\"id\": 3, \"account\": 1001, \"side\": \"buy\", \"instrument\": \"NBR-2024.CCP\", \"type\": \"limit\", \"price_usd\": \"25.00\", \"qty\": 1, \"scope\": [{\"scope\": 2, \"qty\": 1}]}\n",
    );
    let output = check_dir(&dir);
    let lines = successful_lines(output);
    assert!(
        lines[0].contains("\"decision\": \"accept\""),
        "{}",
        lines[0]
    );
    assert!(lines[1].contains("SCOPE_EXCEEDS_INVENTORY"), "{}", lines[1]); // 700 + 1 > 700.5
    assert!(lines[2].contains("SCOPE_EXCEEDS_INVENTORY"), "{}", lines[2]); // scope 2 not in the export: 0
                                                                           // A bad row names the file, the line and the field.
    write(
        &dir,
        "inventory.csv",
        "account,reporting_year,scope,category,tonnes\n1001,2026,3,17,5\n",
    );
    let error = check_error(&dir);
    assert!(
        error
            .contains("inventory.csv: line 2: category: scope 3 needs a category 1-15, found '17'"),
        "{error}"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn registry_lots_are_deposited_only_where_eligible_naming_the_failing_attribute() {
    let dir = scratch("lots");
    let venue_text = std::fs::read_to_string(dir.join("venue.toml")).unwrap();
    write(
        &dir,
        "venue.toml",
        &format!(
            "{venue_text}\n[[lots]]\nfile = \"lots.csv\"\ninstrument = \"NBR-2024.CCP\"\n\
             [[lots]]\nfile = \"more.csv\"\ninstrument = \"NBR-2024.CCP\"\n"
        ),
    );
    let header = "registry,project_id,serial_start,serial_end,quantity,vintage,methodology,category,nature,ccp,corresponding_adjustment,corsia,owner_account";
    write(
        &dir,
        "lots.csv",
        &format!(
            "{header}\n\
             Verra,VCS-1001,VCS-1001-2022-0001,VCS-1001-2022-0500,500,2022,VM0047,removal,nature-based,true,false,false,2001\n\
             Verra,VCS-1002,VCS-1002-2022-0001,VCS-1002-2022-0100,100,2022,VM0047,removal,nature-based,false,false,false,2001\n\
             Verra,VCS-1003,VCS-1003-2022-1,VCS-1003-2022-100,100,2022,VM0042,avoidance,nature-based,true,false,false,2001\n\
             Gold Standard,GS-7,\"GS-7,a-1\",\"GS-7,a-9\",9,2020,GS-AR,removal,nature-based,true,true,true,3001\n\
             Verra,VCS-1004,VCS-1004-2022-0001,VCS-1004-2022-0010,50000,2022,VM0047,removal,nature-based,true,false,false,2001\n\
             Verra,VCS-1001,VCS-1001-2022-0400,VCS-1001-2022-0600,201,2022,VM0047,removal,nature-based,true,false,false,2001\n\
             Verra,VCS-1005,A,B,1,2022,VM0047,removal,nature-based,true,false,false,2001\n"
        ),
    );
    write(
        &dir,
        "more.csv",
        &format!(
            "{header}\n\
             Verra,VCS-1001,VCS-1001-2022-0500,VCS-1001-2022-0500,1,2022,VM0047,removal,nature-based,true,false,false,3001\n\
             Verra,VCS-1001,VCS-1001-2022-0501,VCS-1001-2022-0502,2,2022,VM0047,removal,nature-based,true,false,false,3001\n"
        ),
    );
    let output = venue(&["lots", "--config", dir.join("venue.toml").to_str().unwrap()]);
    let lines = successful_lines(output);
    assert_eq!(lines.len(), 9);
    assert!(
        lines[0].contains("\"decision\": \"deposit\"") && lines[0].contains("\"quantity\": 500"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("\"reason\": \"LOT_NOT_ELIGIBLE\", \"attribute\": \"ccp\""),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].contains("\"attribute\": \"category\""),
        "{}",
        lines[2]
    );
    assert!(
        lines[3].contains("\"attribute\": \"vintage\"")
            && lines[3].contains("\"serial_start\": \"GS-7,a-1\""),
        "{}",
        lines[3]
    );
    // A 10-serial block declared as 50,000 t would mint credits.
    assert!(
        lines[4].contains("\"reason\": \"LOT_SERIALS_INVALID\"")
            && lines[4].contains(
                "quantity 50000 but VCS-1004-2022-0001..VCS-1004-2022-0010 holds 10 serials"
            ),
        "{}",
        lines[4]
    );
    // Overlaps: in the same file, naming the block and its file and line.
    assert!(
        lines[5].contains("\"reason\": \"LOT_SERIALS_OVERLAP\"")
            && lines[5].contains("Verra VCS-1001-2022-0400..VCS-1001-2022-0600 overlap Verra VCS-1001-2022-0001..VCS-1001-2022-0500 deposited from ")
            && lines[5].contains("lots.csv line 2"),
        "{}",
        lines[5]
    );
    assert!(
        lines[6].contains("\"reason\": \"LOT_SERIALS_INVALID\"")
            && lines[6].contains("serial_start 'A' does not end in a serial number"),
        "{}",
        lines[6]
    );
    // ... and in another file; the block next to it is fine.
    assert!(
        lines[7].contains("\"reason\": \"LOT_SERIALS_OVERLAP\"")
            && lines[7].contains("more.csv line 2")
            && lines[7].contains("lots.csv line 2"),
        "{}",
        lines[7]
    );
    assert!(
        lines[8].contains("\"decision\": \"deposit\""),
        "{}",
        lines[8]
    );
    // An unknown owner is a loading error naming the line and the field.
    write(
        &dir,
        "lots.csv",
        &format!("{header}\nVerra,P,1,2,2,2022,M,removal,nature-based,true,false,false,4242\n"),
    );
    let output = venue(&["lots", "--config", dir.join("venue.toml").to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let error = String::from_utf8(output.stderr).unwrap();
    assert!(
        error.contains("lots.csv: line 2: owner_account: account 4242 is not defined"),
        "{error}"
    );
    std::fs::remove_dir_all(dir).ok();
}
