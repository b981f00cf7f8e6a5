//! Criterion bench of the compliance pre-router's decision function with
//! 10,000 buyer profiles loaded: a Recognised buyer's limit buy through all
//! eleven checks (accepted, so claims grow), the same under a dated rules
//! file whose Recognised pathway requires predicates (one judged per
//! instrument and day, one reading the buyer on every order), and a market
//! maker's order (stops after step 4).
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use tonnex_gateway::compliance::{self, Decision, LimitPrice, OrderRequest, Outcome, RawScopeLine};
use tonnex_protocol::{OrderKind, Side};

const BUYERS: u64 = 10_000;

/// Today's rules (undated, no predicates).
const RULES: &str = "floor_policy = \"attest\"\n[pathway.engaged]\nfloor_usd = \"0\"\nsub_ledgers = [\"ccp\", \"ccp_removal\", \"general\"]\ncoverage_threshold_pct = \"0\"\n\
     [pathway.recognised]\nfloor_usd = \"20.00\"\nsub_ledgers = [\"ccp\", \"ccp_removal\"]\ncoverage_threshold_pct = \"1\"\n\
     [pathway.leadership]\nfloor_usd = \"80.00\"\nsub_ledgers = [\"ccp_removal\"]\ncoverage_threshold_pct = \"40\"\n";

/// Dated rules whose Recognised pathway requires a credit predicate (judged
/// once per instrument and day) and a vintage window (reads the buyer's
/// reporting year on every order).
const PREDICATE_RULES: &str = "effective_from = \"2026-01-01\"\nfloor_policy = \"attest\"\n[pathway.engaged]\nfloor_usd = \"0\"\nsub_ledgers = [\"ccp\", \"ccp_removal\", \"general\"]\ncoverage_threshold_pct = \"0\"\n\
     [pathway.recognised]\nroute = \"either\"\nfloor_usd = \"20.00\"\nsub_ledgers = [\"ccp\", \"ccp_removal\"]\ncoverage_threshold_pct = \"1\"\nrequire = [\"removals\", \"vintage_5y\"]\n\
     [pathway.leadership]\nfloor_usd = \"80.00\"\nsub_ledgers = [\"ccp_removal\"]\ncoverage_threshold_pct = \"40\"\n\
     [predicate.removals]\ncategory = [\"removal\"]\n[predicate.vintage_5y]\nmax_vintage_age_years = 5\n";

/// A venue folder with 10,000 buyers on the Recognised pathway and one market maker.
fn venue(name: &str, rules: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("tonnex-bench-router-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut toml =
        String::from("[compliance]\nrules = \"rules.toml\"\nprofiles = \"profiles.json\"\n\n");
    for id in 1..=BUYERS {
        toml.push_str(&format!(
            "[[account]]\nid = {id}\nrole = \"buyer\"\nstatus = \"active\"\n\n"
        ));
    }
    toml.push_str("[[account]]\nid = 99999\nrole = \"market_maker\"\nstatus = \"active\"\n\n");
    toml.push_str("[[instrument]]\nsymbol = \"NBR-2024.CCP\"\nsub_ledger = \"ccp\"\ntick_usd = \"0.01\"\nmin_price_usd = \"0.01\"\nmax_price_usd = \"1000.00\"\neligibility = { categories = [\"removal\"], min_vintage = 2023 }\n");
    std::fs::write(dir.join("venue.toml"), toml).unwrap();
    std::fs::write(dir.join("rules.toml"), rules).unwrap();
    let profiles: Vec<String> = (1..=BUYERS)
        .map(|id| {
            format!(
                "{{\"account\": {id}, \"company\": \"C{id}\", \"category\": \"A\", \"pathway\": \"recognised\", \
                 \"internal_carbon_price_usd\": \"45.00\", \"reporting_year\": 2026, \
                 \"inventory\": {{\"scope1\": 1000000000, \"scope2\": 0, \"scope3\": {{\"1\": 1000000000}}}}, \
                 \"ongoing_emissions_tonnes\": 5000000, \"attestations\": []}}"
            )
        })
        .collect();
    std::fs::write(
        dir.join("profiles.json"),
        format!("[{}]", profiles.join(",\n")),
    )
    .unwrap();
    dir
}

fn order(id: u64, account: u64) -> OrderRequest {
    OrderRequest {
        id,
        account,
        side: Side::Buy,
        instrument: "NBR-2024.CCP".into(),
        kind: OrderKind::Limit,
        price: Some(LimitPrice::Usd("24.50".parse().unwrap())),
        qty: 10,
        scope: Some(vec![
            RawScopeLine {
                scope: Some(1),
                qty: Some(6),
                ..RawScopeLine::default()
            },
            RawScopeLine {
                scope: Some(3),
                category: Some(1),
                category_given: true,
                qty: Some(4),
                malformed: false,
            },
        ]),
    }
}

fn decide(c: &mut Criterion) {
    let dir = venue("today", RULES);
    let (_, mut router) = compliance::load_router(&dir.join("venue.toml")).unwrap();
    let predicate_dir = venue("predicates", PREDICATE_RULES);
    let (_, mut predicate_router) =
        compliance::load_router(&predicate_dir.join("venue.toml")).unwrap();
    let orders: Vec<OrderRequest> = (0..BUYERS)
        .map(|i| order(i, 1 + (i * 7919) % BUYERS))
        .collect();
    let mut group = c.benchmark_group("router");
    // As the venue calls it: into the decision it then reads.
    let mut decision = Decision::default();
    for (name, router) in [
        ("buyer_limit_all_11_checks_10k_profiles", &mut router),
        (
            "buyer_limit_with_predicates_10k_profiles",
            &mut predicate_router,
        ),
    ] {
        let mut i = 0usize;
        group.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % orders.len();
                router.decide_into(black_box(&orders[i]), &mut decision);
                debug_assert_eq!(decision.outcome, Outcome::Accept);
                black_box(&decision);
            })
        });
    }
    let maker = order(1, 99999);
    group.bench_function("market_maker_stops_at_step_4", |b| {
        b.iter(|| router.decide(black_box(&maker)))
    });
    group.finish();
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(predicate_dir);
}

criterion_group!(benches, decide);
criterion_main!(benches);
