//! Rules files beyond COMPLIANCE.md's format: the shipped venue policy
//! decides exactly as today's defaults, and every new key is checked with
//! an error naming the file, the record and the field.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn scenarios() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios")
}

fn check(dir: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tonnex-venue"))
        .arg("check")
        .arg("--config")
        .arg(dir.join("venue.toml"))
        .arg("--orders")
        .arg(dir.join("orders.jsonl"))
        .args(extra)
        .output()
        .unwrap()
}

/// A copy of the `basic` scenario with `rules.toml` replaced by `rules`.
fn basic_with_rules(name: &str, rules: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tonnex-rules-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["venue.toml", "profiles.json", "orders.jsonl"] {
        std::fs::copy(scenarios().join("basic").join(file), dir.join(file)).unwrap();
    }
    std::fs::write(dir.join("rules.toml"), rules).unwrap();
    dir
}

fn shipped(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../config/rules")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

const LEGACY_FIELDS: [&str; 9] = [
    "decision",
    "reason",
    "pathway",
    "sub_ledger",
    "floor_usd",
    "attestation",
    "coverage_pct",
    "tier_threshold_met",
    "id",
];

#[test]
fn venue_strict_decides_every_basic_order_as_todays_defaults() {
    let dir = basic_with_rules("strict", &shipped("venue-strict.toml"));
    let output = check(&dir, &["--as-of", "2026-11-30"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let got = String::from_utf8(output.stdout).unwrap();
    let want = std::fs::read_to_string(scenarios().join("basic/expected.jsonl")).unwrap();
    assert_eq!(got.lines().count(), want.lines().count());
    for (g, w) in got.lines().zip(want.lines()) {
        let g: serde_json::Value = serde_json::from_str(g).unwrap();
        let w: serde_json::Value = serde_json::from_str(w).unwrap();
        if w.get("line").is_some() {
            assert_eq!(g, w, "a malformed line's answer is unchanged");
            continue;
        }
        for field in LEGACY_FIELDS {
            assert_eq!(g[field], w[field], "{field} of {w}");
        }
        assert_eq!(g["rules_version"], "venue-strict-2026.1");
        assert_eq!(g["floor_mode"], "per_trade");
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn as_of_picks_the_version_in_force_and_refuses_a_day_before_any() {
    let dir = scenarios().join("shipped");
    let before = check(&dir, &["--as-of", "2025-12-31"]);
    assert_eq!(before.status.code(), Some(2));
    let error = String::from_utf8(before.stderr).unwrap();
    assert!(
        error.contains("venue-strict.toml: effective_from: no rules version is in force on 2025-12-31 (the earliest takes effect on 2026-01-01)"),
        "{error}"
    );
    // Orders without a date of their own are decided on --as-of.
    let scratch = std::env::temp_dir().join(format!("tonnex-rules-{}-asof", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    let venue = std::fs::read_to_string(dir.join("venue.toml"))
        .unwrap()
        .replace(
            "../../../../config/rules/",
            &format!(
                "{}/",
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../config/rules")
                    .display()
            ),
        );
    std::fs::write(scratch.join("venue.toml"), venue).unwrap();
    std::fs::copy(dir.join("profiles.json"), scratch.join("profiles.json")).unwrap();
    std::fs::write(
        scratch.join("orders.jsonl"),
        r#"{"id": 1, "account": 1001, "side": "buy", "instrument": "NBR-2024.CCP", "type": "limit", "price_usd": "15.00", "qty": 10, "scope": [{"scope": 1, "qty": 10}]}
"#,
    )
    .unwrap();
    for (day, mode, version) in [
        ("2027-01-31", "per_trade", "venue-strict-2026.1"),
        ("2027-02-01", "budget", "2.0"),
    ] {
        let output = check(&scratch, &["--as-of", day]);
        let line: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(line["floor_mode"], mode, "{day}");
        assert_eq!(line["rules_version"], version, "{day}");
    }
    std::fs::remove_dir_all(scratch).ok();
}

#[test]
fn new_keys_are_checked_and_errors_name_the_record_and_field() {
    let base = shipped("sbti-cnzs-v2.toml");
    let cases: Vec<(String, &str)> = vec![
        (
            base.replace("effective_from = \"2027-02-01\"", ""),
            "rules.toml: effective_from: missing: a file using routes, predicates or floor modes must say from which day it is in force",
        ),
        (
            base.replace("effective_from = \"2027-02-01\"", "effective_from = \"2027-02-30\""),
            "rules.toml: effective_from: '2027-02-30' is not a date (YYYY-MM-DD)",
        ),
        (
            base.replace("floor_mode = \"budget\"", "floor_mode = \"monthly\""),
            "rules.toml: floor_mode: 'monthly' is not per_trade or budget",
        ),
        (
            base.replace("floor_mode = \"budget\"", "floor_mod = \"budget\""),
            "rules.toml: floor_mod: not a rules field",
        ),
        (
            base.replace("route = \"either\"", "route = \"credits\""),
            "rules.toml: pathway.recognised.route: 'credits' is not credit, pricing or either",
        ),
        (
            base.replacen("require = [\"category_a_removals_from_2035\"]", "require = [\"removal_2035\"]", 1),
            "rules.toml: pathway.recognised.require: no predicate named 'removal_2035'",
        ),
        (
            base.replace("category = [\"removal\"]", "category = [\"removal\"]\nnature = [\"technological\"]"),
            "rules.toml: predicate.removals: needs exactly one test",
        ),
        (
            base.replace("company_category = [\"A\"]", "not = \"not_category_a\""),
            "rules.toml: predicate.category_a: refers to itself: category_a -> not_category_a -> category_a",
        ),
        (
            base.replace("from = \"2035-01-01\"", "from = \"2035-01-01\"\nuntil = \"2030-01-01\""),
            "rules.toml: predicate.category_a_removals_from_2035.until: 2030-01-01 is not after from (2035-01-01)",
        ),
        (
            format!("{base}\n[predicate.labelled]\nccp_label = \"current\"\n"),
            "rules.toml: predicate: a ccp_label predicate needs a CCP label register",
        ),
    ];
    for (i, (rules, want)) in cases.iter().enumerate() {
        let dir = basic_with_rules(&format!("bad{i}"), rules);
        let output = check(&dir, &["--as-of", "2027-03-01"]);
        assert_eq!(output.status.code(), Some(2), "case {i}");
        let error = String::from_utf8(output.stderr).unwrap();
        assert!(error.contains(want), "case {i}: {error}");
        std::fs::remove_dir_all(dir).ok();
    }
}

#[test]
fn a_label_revoked_overnight_stops_admitting_resting_buys_on_its_book() {
    // What the venue asks of every resting buy when the day changes: the
    // REVOKED book admits AR-ACM0003, whose CCP label ends on 2026-06-15.
    let venue = scenarios().join("predicates/venue.toml");
    let day = |d: &str| tonnex_gateway::compliance::Date::parse(d).unwrap();
    let (_, mut router) =
        tonnex_gateway::compliance::load_router_on(&venue, day("2026-06-14")).unwrap();
    assert_eq!(router.failing_predicate(1001, "REVOKED"), None);
    assert_eq!(router.failing_predicate(1001, "GOOD"), None);
    router.set_date(day("2026-06-15"));
    assert_eq!(
        router.failing_predicate(1001, "REVOKED").as_deref(),
        Some("ccp_current")
    );
    assert_eq!(router.failing_predicate(1001, "GOOD"), None);
    // A predicate in force from a day: CORSIA from 2027.
    assert_eq!(router.failing_predicate(1001, "NOCORSIA"), None);
    router.set_date(day("2027-01-01"));
    assert_eq!(
        router.failing_predicate(1001, "NOCORSIA").as_deref(),
        Some("corsia_from_2027")
    );
    // No profile, no predicate to fail.
    assert_eq!(router.failing_predicate(2001, "REVOKED"), None);
}
