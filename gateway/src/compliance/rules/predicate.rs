//! Named predicates of a rules file (`[predicate.NAME]`): tests over the
//! buyer, the order and the class of credits an instrument holds, each
//! optionally in force only from or until a date. A pathway's `require`
//! lists the ones its buyers must meet; the first that fails names the
//! refusal.
//!
//! Credit predicates are judged against the instrument's eligibility (the
//! predicate every lot deposited into it met): an instrument passes when
//! every lot it can hold passes. So the engine trades a buyer's order only
//! against credits that satisfy the buyer's rules without looking at lots.

use rust_decimal::Decimal;
use tonnex_protocol::RejectReason;

use super::date::Date;
use super::labels::CcpLabels;
use crate::config::InstrumentConfig;
use crate::values::{toml_decimal, Ctx, LoadError, TomlRecord};

/// One named predicate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Predicate {
    /// Its name in the rules file (what a refusal names).
    pub name: String,
    /// What it tests.
    pub test: Test,
    /// In force from this day on (before it, the predicate holds).
    pub from: Option<Date>,
    /// In force until the day before this one (from it on, it holds).
    pub until: Option<Date>,
}

/// What a predicate tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Test {
    /// The instrument's sub-ledger is one of these.
    SubLedger(Vec<String>),
    /// The buyer's declared internal carbon price is at least this (USD/t).
    InternalPrice(Decimal),
    /// The buyer's SBTi company category (`A`, `B`) is one of these.
    CompanyCategory(Vec<String>),
    /// Every credit is of one of these categories (`removal`, `avoidance`).
    Category(Vec<String>),
    /// Every credit is of one of these natures (`nature-based`, `technological`).
    Nature(Vec<String>),
    /// Every credit declares one of these durability classes.
    Durability(Vec<String>),
    /// Every credit was issued ex post (for verified outcomes).
    ExPost,
    /// No credit's vintage is older than this many years before the
    /// buyer's reporting year.
    MaxVintageAge(u32),
    /// Every credit has (true) or lacks (false) a corresponding adjustment.
    CorrespondingAdjustment(bool),
    /// Every credit is (true) or is not (false) CORSIA-eligible.
    Corsia(bool),
    /// Every credit carries a CCP label in force on the decision's day.
    CcpLabelCurrent,
    /// At least one of these predicates holds (indexes into the file's list).
    Any(Vec<usize>),
    /// Every one of these holds.
    All(Vec<usize>),
    /// This one does not hold.
    Not(usize),
}

/// What a decision is judged on.
pub struct Subject<'a> {
    /// The instrument (its eligibility is the class of its credits).
    pub instrument: &'a InstrumentConfig,
    /// The buyer's declared internal carbon price, USD/t.
    pub declared_price_usd: Decimal,
    /// The buyer's reporting year.
    pub reporting_year: i64,
    /// The buyer's SBTi company category.
    pub company_category: &'a str,
    /// The day of the decision.
    pub date: Date,
    /// The CCP label register.
    pub labels: &'a CcpLabels,
}

/// A predicate judged without a buyer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Holds for every buyer.
    Pass,
    /// Fails for every buyer.
    Fail,
    /// Depends on the buyer: judge it at decision time.
    Buyer,
}

impl Test {
    fn is_buyer_test(&self) -> bool {
        matches!(
            self,
            Test::InternalPrice(_) | Test::MaxVintageAge(_) | Test::CompanyCategory(_)
        )
    }
}

/// Whether `preds[index]` holds for `subject`.
#[must_use]
pub fn holds(preds: &[Predicate], index: usize, subject: &Subject<'_>) -> bool {
    let p = &preds[index];
    if p.from.is_some_and(|d| subject.date < d) || p.until.is_some_and(|d| subject.date >= d) {
        return true;
    }
    let e = &subject.instrument.eligibility;
    let within = |allowed: &Option<Vec<String>>, set: &[String]| {
        allowed
            .as_ref()
            .is_some_and(|a| !a.is_empty() && a.iter().all(|v| set.contains(v)))
    };
    match &p.test {
        Test::SubLedger(set) => set.contains(&subject.instrument.sub_ledger),
        Test::InternalPrice(amount) => subject.declared_price_usd >= *amount,
        Test::CompanyCategory(set) => set.iter().any(|c| c == subject.company_category),
        Test::Category(set) => within(&e.categories, set),
        Test::Nature(set) => within(&e.nature, set),
        Test::Durability(set) => within(&e.durability, set),
        Test::ExPost => within(&e.issuance, &["ex-post".to_string()]),
        Test::MaxVintageAge(years) => e
            .min_vintage
            .is_some_and(|v| v >= subject.reporting_year - i64::from(*years)),
        Test::CorrespondingAdjustment(want) => e.corresponding_adjustment == Some(*want),
        Test::Corsia(want) => e.corsia == Some(*want),
        Test::CcpLabelCurrent => {
            e.ccp == Some(true)
                && e.methodologies.as_ref().is_some_and(|ms| {
                    !ms.is_empty() && ms.iter().all(|m| subject.labels.current(m, subject.date))
                })
        }
        Test::Any(of) => of.iter().any(|&i| holds(preds, i, subject)),
        Test::All(of) => of.iter().all(|&i| holds(preds, i, subject)),
        Test::Not(i) => !holds(preds, *i, subject),
    }
}

/// Whether `preds[index]` reads the buyer (its price or reporting year).
#[must_use]
pub fn reads_buyer(preds: &[Predicate], index: usize) -> bool {
    match &preds[index].test {
        Test::Any(of) | Test::All(of) => of.iter().any(|&i| reads_buyer(preds, i)),
        Test::Not(i) => reads_buyer(preds, *i),
        test => test.is_buyer_test(),
    }
}

/// `preds[index]` judged for an instrument on a day, before any buyer.
#[must_use]
pub fn verdict(
    preds: &[Predicate],
    index: usize,
    instrument: &InstrumentConfig,
    date: Date,
    labels: &CcpLabels,
) -> Verdict {
    if reads_buyer(preds, index) {
        return Verdict::Buyer;
    }
    let subject = Subject {
        instrument,
        declared_price_usd: Decimal::ZERO,
        reporting_year: 0,
        company_category: "",
        date,
        labels,
    };
    if holds(preds, index, &subject) {
        Verdict::Pass
    } else {
        Verdict::Fail
    }
}

/// The reason code a failure of `preds[index]` carries.
#[must_use]
pub fn reason(preds: &[Predicate], index: usize) -> RejectReason {
    match &preds[index].test {
        Test::SubLedger(_) => RejectReason::SubledgerNotEligible,
        Test::InternalPrice(_) => RejectReason::InternalPriceBelowFloor,
        Test::Any(of) | Test::All(of) => {
            if of
                .iter()
                .all(|&i| reason(preds, i) == RejectReason::CreditNotEligible)
            {
                RejectReason::CreditNotEligible
            } else {
                RejectReason::RuleNotMet
            }
        }
        Test::Not(_) | Test::CompanyCategory(_) => RejectReason::RuleNotMet,
        _ => RejectReason::CreditNotEligible,
    }
}

/// Whether a rules file's `labels` register is needed by `preds`.
#[must_use]
pub fn needs_labels(preds: &[Predicate]) -> bool {
    preds.iter().any(|p| p.test == Test::CcpLabelCurrent)
}

const TESTS: [&str; 14] = [
    "sub_ledger",
    "internal_price_usd",
    "company_category",
    "category",
    "nature",
    "durability",
    "ex_post",
    "max_vintage_age_years",
    "corresponding_adjustment",
    "corsia",
    "ccp_label",
    "any",
    "all",
    "not",
];

/// Reads every `[predicate.NAME]` table, in name order (TOML tables have
/// no order of their own); references between them are resolved by name.
pub fn load(table: Option<&toml::Table>, ctx: &Ctx<'_>) -> Result<Vec<Predicate>, LoadError> {
    let Some(table) = table else {
        return Ok(Vec::new());
    };
    let names: Vec<&String> = table.keys().collect();
    let index_of = |name: &str, at: &Ctx<'_>, field: &str| {
        names
            .iter()
            .position(|n| *n == name)
            .ok_or_else(|| at.error(field, format!("no predicate named '{name}'")))
    };
    let mut preds = Vec::with_capacity(names.len());
    for (name, value) in table {
        let at = Ctx {
            file: ctx.file,
            record: format!("predicate.{name}"),
        };
        let toml::Value::Table(fields) = value else {
            return Err(at.error("", format!("expected a table, found {}", value.type_str())));
        };
        let record = TomlRecord {
            table: fields,
            ctx: &at,
        };
        for key in fields.keys() {
            if !TESTS.contains(&key.as_str())
                && !["from", "until", "clause"].contains(&key.as_str())
            {
                return Err(at.error(key, "not a predicate field"));
            }
        }
        let given: Vec<&str> = TESTS
            .iter()
            .copied()
            .filter(|k| fields.contains_key(*k))
            .collect();
        let [key] = given[..] else {
            return Err(at.error(
                "",
                format!(
                    "needs exactly one test ({}), found {}",
                    TESTS.join(", "),
                    if given.is_empty() {
                        "none".to_string()
                    } else {
                        given.join(", ")
                    }
                ),
            ));
        };
        let boolean = |key: &str| match fields.get(key) {
            Some(toml::Value::Boolean(b)) => Ok(*b),
            Some(other) => Err(at.error(
                key,
                format!("expected a boolean, found {}", other.type_str()),
            )),
            None => Err(at.error(key, "missing")),
        };
        let refs = |key: &str| -> Result<Vec<usize>, LoadError> {
            let list = record.strings(key)?;
            if list.is_empty() {
                return Err(at.error(key, "names no predicate"));
            }
            list.iter().map(|n| index_of(n, &at, key)).collect()
        };
        let test = match key {
            "sub_ledger" => Test::SubLedger(record.strings(key)?),
            "internal_price_usd" => {
                let amount = toml_decimal(&fields[key]).map_err(|m| at.error(key, m))?;
                if amount < Decimal::ZERO {
                    return Err(at.error(key, "must not be negative"));
                }
                Test::InternalPrice(amount)
            }
            "company_category" => Test::CompanyCategory(record.strings(key)?),
            "category" => Test::Category(record.strings(key)?),
            "nature" => Test::Nature(record.strings(key)?),
            "durability" => Test::Durability(record.strings(key)?),
            "ex_post" => {
                if !boolean(key)? {
                    return Err(at.error(key, "only `ex_post = true` is a test"));
                }
                Test::ExPost
            }
            "max_vintage_age_years" => {
                let years = record.integer(key)?;
                Test::MaxVintageAge(
                    u32::try_from(years)
                        .map_err(|_| at.error(key, format!("{years} is not a number of years")))?,
                )
            }
            "corresponding_adjustment" => Test::CorrespondingAdjustment(boolean(key)?),
            "corsia" => Test::Corsia(boolean(key)?),
            "ccp_label" => match record.string(key)?.as_str() {
                "current" => Test::CcpLabelCurrent,
                other => return Err(at.error(key, format!("'{other}' is not \"current\""))),
            },
            "any" => Test::Any(refs(key)?),
            "all" => Test::All(refs(key)?),
            _ => Test::Not(index_of(&record.string(key)?, &at, key)?),
        };
        let date = |key: &str| -> Result<Option<Date>, LoadError> {
            record
                .opt_string(key)?
                .map(|text| Date::parse(&text).map_err(|m| at.error(key, m)))
                .transpose()
        };
        let (from, until) = (date("from")?, date("until")?);
        if let (Some(f), Some(u)) = (from, until) {
            if u <= f {
                return Err(at.error("until", format!("{u} is not after from ({f})")));
            }
        }
        preds.push(Predicate {
            name: name.clone(),
            test,
            from,
            until,
        });
    }
    check_acyclic(&preds, ctx)?;
    Ok(preds)
}

/// A predicate that (through `any`, `all`, `not`) refers back to itself
/// could never be judged.
fn check_acyclic(preds: &[Predicate], ctx: &Ctx<'_>) -> Result<(), LoadError> {
    fn visit(preds: &[Predicate], i: usize, path: &mut Vec<usize>) -> Result<(), String> {
        if path.contains(&i) {
            let names: Vec<&str> = path
                .iter()
                .chain([&i])
                .map(|&j| preds[j].name.as_str())
                .collect();
            return Err(names.join(" -> "));
        }
        path.push(i);
        let children: &[usize] = match &preds[i].test {
            Test::Any(of) | Test::All(of) => of,
            Test::Not(j) => std::slice::from_ref(j),
            _ => &[],
        };
        for &j in children {
            visit(preds, j, path)?;
        }
        path.pop();
        Ok(())
    }
    for (i, p) in preds.iter().enumerate() {
        visit(preds, i, &mut Vec::new()).map_err(|cycle| {
            Ctx {
                file: ctx.file,
                record: format!("predicate.{}", p.name),
            }
            .error("", format!("refers to itself: {cycle}"))
        })?;
    }
    Ok(())
}
