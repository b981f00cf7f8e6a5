//! A buyer's compliance picture for its reporting year, computed from its
//! profile (inventory, ongoing emissions, pathway), the rules (the
//! pathway's coverage threshold) and the ledger (orders, fills,
//! retirements). Tonnes are whole tonnes; percentages are of ongoing
//! emissions, as on the certificates.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tonnex_gateway::compliance::BuyerProfile;

use crate::ledger::OrderRow;

/// One row of the scope table: a scope, or a Scope 3 category.
#[derive(Clone, Debug, PartialEq)]
pub struct ScopeRow {
    /// `Scope 1`, `Scope 2`, `S3 cat 4`...
    pub label: String,
    /// (scope, category; 0 for scopes 1 and 2).
    pub key: (i64, i64),
    /// Inventory, tCO2e.
    pub inventory: Decimal,
    /// Open buy orders' tonnes on this line.
    pub claimed: i64,
    /// Filled tonnes.
    pub filled: i64,
    /// Retired tonnes.
    pub retired: i64,
}

/// The buyer's picture.
#[derive(Clone, Debug)]
pub struct Summary {
    /// The account.
    pub account: u64,
    /// Company name.
    pub company: String,
    /// OER pathway.
    pub pathway: String,
    /// Reporting year.
    pub reporting_year: i64,
    /// Ongoing emissions, tCO2e.
    pub ongoing_tonnes: Decimal,
    /// The pathway's coverage threshold, percent.
    pub threshold_pct: Decimal,
    /// Retired tonnes over ongoing emissions, percent (two decimals, truncated).
    pub coverage_pct: Decimal,
    /// Tonnes retired in the year.
    pub retired_tonnes: i64,
    /// Tonnes filled in the year.
    pub filled_tonnes: i64,
    /// Tonnes on open orders in the year.
    pub claimed_tonnes: i64,
    /// Per scope and Scope 3 category.
    pub rows: Vec<ScopeRow>,
    /// Cumulative coverage after each retirement: (ms, percent).
    pub timeline: Vec<(i64, f64)>,
}

/// `tonnes` over `lines` (the decision's scope lines), first line first.
fn spread(lines: &[(i64, i64, i64)], mut tonnes: i64) -> Vec<i64> {
    lines
        .iter()
        .map(|&(_, _, line)| {
            let take = tonnes.min(line).max(0);
            tonnes -= take;
            take
        })
        .collect()
}

fn lines_of(decision: &Value) -> Vec<(i64, i64, i64)> {
    decision["scope"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            (
                l["scope"].as_i64().unwrap_or(0),
                l["category"].as_i64().unwrap_or(0),
                l["tonnes"].as_i64().unwrap_or(0),
            )
        })
        .collect()
}

/// Percent of `ongoing` that `tonnes` is, truncated to two decimals.
#[must_use]
pub fn percent(tonnes: i64, ongoing: Decimal) -> Decimal {
    if ongoing <= Decimal::ZERO {
        return Decimal::ZERO;
    }
    (Decimal::from(tonnes) * Decimal::from(100) / ongoing).trunc_with_scale(2)
}

/// Builds the picture from the profile, the threshold and the ledger.
#[must_use]
pub fn summarise(
    profile: &BuyerProfile,
    pathway: &str,
    threshold_pct: Decimal,
    orders: &[OrderRow],
    retirements: &[(i64, i64)],
) -> Summary {
    let inventory = &profile.inventory;
    let mut rows = vec![
        row("Scope 1", (1, 0), inventory.scope1),
        row("Scope 2", (2, 0), inventory.scope2),
    ];
    for (category, tonnes) in inventory.scope3.iter().enumerate().skip(1) {
        if !tonnes.is_zero() {
            rows.push(row(
                &format!("S3 cat {category}"),
                (3, category as i64),
                *tonnes,
            ));
        }
    }
    let (mut filled_total, mut claimed_total) = (0, 0);
    for order in orders
        .iter()
        .filter(|o| o.reporting_year() == profile.reporting_year)
    {
        let lines = lines_of(&order.decision);
        let filled = spread(&lines, order.filled);
        let retired = spread(&lines, order.retired);
        let through_open = spread(&lines, order.filled + order.open());
        for (i, &(scope, category, _)) in lines.iter().enumerate() {
            let key = (scope, if scope == 3 { category } else { 0 });
            let at = match rows.iter().position(|r| r.key == key) {
                Some(at) => at,
                None => {
                    rows.push(row(&format!("S3 cat {category}"), key, Decimal::ZERO));
                    rows.len() - 1
                }
            };
            rows[at].filled += filled[i];
            rows[at].retired += retired[i];
            rows[at].claimed += through_open[i] - filled[i];
        }
        filled_total += order.filled;
        claimed_total += order.open();
    }
    let ongoing = profile.ongoing_emissions_tonnes;
    let mut cumulative = 0;
    let timeline = retirements
        .iter()
        .map(|&(ms, tonnes)| {
            cumulative += tonnes;
            (ms, percent(cumulative, ongoing).to_f64().unwrap_or(0.0))
        })
        .collect();
    Summary {
        account: profile.account,
        company: profile.company.clone(),
        pathway: pathway.to_string(),
        reporting_year: profile.reporting_year,
        ongoing_tonnes: ongoing,
        threshold_pct,
        coverage_pct: percent(cumulative, ongoing),
        retired_tonnes: cumulative,
        filled_tonnes: filled_total,
        claimed_tonnes: claimed_total,
        rows,
        timeline,
    }
}

fn row(label: &str, key: (i64, i64), inventory: Decimal) -> ScopeRow {
    ScopeRow {
        label: label.to_string(),
        key,
        inventory,
        claimed: 0,
        filled: 0,
        retired: 0,
    }
}

impl Summary {
    /// Coverage has reached the pathway's threshold.
    #[must_use]
    pub fn threshold_met(&self) -> bool {
        self.retired_tonnes > 0 && self.coverage_pct >= self.threshold_pct
    }

    /// The summary as the JSON API gives it.
    #[must_use]
    pub fn json(&self) -> Value {
        json!({
            "account": self.account,
            "company": self.company,
            "reporting_year": self.reporting_year,
            "pathway": self.pathway,
            "ongoing_emissions_tonnes": self.ongoing_tonnes.to_string(),
            "threshold_pct": self.threshold_pct.to_string(),
            "coverage_pct": self.coverage_pct.to_string(),
            "threshold_met": self.threshold_met(),
            "retired_tonnes": self.retired_tonnes,
            "filled_tonnes": self.filled_tonnes,
            "claimed_tonnes": self.claimed_tonnes,
            "scopes": self.rows.iter().map(|r| json!({
                "scope": r.key.0,
                "category": if r.key.0 == 3 { Value::from(r.key.1) } else { Value::Null },
                "inventory_tonnes": r.inventory.to_string(),
                "claimed_tonnes": r.claimed,
                "filled_tonnes": r.filled,
                "retired_tonnes": r.retired,
            })).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tonnes_fill_the_lines_in_the_order_the_buyer_gave_them() {
        let lines = [(3, 1, 10), (1, 0, 5), (3, 4, 7)];
        assert_eq!(spread(&lines, 12), vec![10, 2, 0]);
        assert_eq!(spread(&lines, 30), vec![10, 5, 7]);
        assert_eq!(spread(&lines, 0), vec![0, 0, 0]);
    }

    #[test]
    fn coverage_is_truncated_not_rounded() {
        assert_eq!(percent(1, Decimal::from(3)), Decimal::new(3333, 2));
        assert_eq!(percent(10, Decimal::from(120_000)), Decimal::new(0, 2));
        assert_eq!(percent(5, Decimal::ZERO), Decimal::ZERO);
    }
}
