//! Budget mode (rules `floor_mode = "budget"`, docs/compliance.md "Floor
//! modes"): a buyer's internal carbon price x the tonnes it bought is a
//! budget for the reporting year; every purchase spends it at its real
//! price; an attestation of supplementary pricing covers the gap between
//! budget and spend over the year, not each trade. A decision made in
//! budget mode is one with a price (`floor_micros` > 0) and no per-trade
//! floor (`floor_ticks` = 0).

use serde_json::{json, Value};

use crate::certificate::CertificateData;

/// A buyer's year-to-date figures, micro-USD.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    /// The pathway's internal price, per tonne.
    pub price_micros: i64,
    /// Price x tonnes bought.
    pub budget_micros: i64,
    /// What the purchases cost.
    pub spent_micros: i64,
    /// The attestation covering the year's gap, if any.
    pub attestation: Option<String>,
}

impl Budget {
    /// Budget not spent (0 when purchases cost at least the budget).
    #[must_use]
    pub fn gap_micros(&self) -> i64 {
        (self.budget_micros - self.spent_micros).max(0)
    }

    /// The part of the gap an attestation covers (all of it, or none).
    #[must_use]
    pub fn attested_gap_micros(&self) -> i64 {
        if self.attestation.is_some() {
            self.gap_micros()
        } else {
            0
        }
    }

    /// The certificate's `budget` object, money formatted by `usd`.
    #[must_use]
    pub fn to_json(&self, usd: fn(i64) -> String) -> Value {
        json!({
            "mode": "budget",
            "price_usd": usd(self.price_micros),
            "budget_usd": usd(self.budget_micros),
            "spent_usd": usd(self.spent_micros),
            "gap_usd": usd(self.gap_micros()),
            "attested_gap_usd": usd(self.attested_gap_micros()),
            "unattested_gap_usd": usd(self.gap_micros() - self.attested_gap_micros()),
            "attestation": self.attestation,
        })
    }
}

/// Whether a decision with this price and floor was made in budget mode.
#[must_use]
pub fn is_budget_mode(floor_micros: i64, floor_ticks: i64) -> bool {
    floor_micros > 0 && floor_ticks == 0
}

/// Year to date at a certificate (its retired trades and the buyer's
/// earlier certificates of the year), when its order was decided in budget mode.
#[must_use]
pub fn of_certificate(
    data: &CertificateData,
    price_micros: i64,
    floor_ticks: i64,
) -> Option<Budget> {
    if !is_budget_mode(price_micros, floor_ticks) {
        return None;
    }
    let tonnes: i64 = data.trades.iter().map(|t| t.qty).sum();
    let spent: i64 = data
        .trades
        .iter()
        .map(|t| t.price_ticks * t.tick_micros * t.qty)
        .sum();
    Some(Budget {
        price_micros,
        budget_micros: price_micros * tonnes + data.earlier_budget_micros,
        spent_micros: spent + data.earlier_spent_micros,
        attestation: data
            .decision
            .get("attestation")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certificate::RetiredTrade;

    fn trade(price_ticks: i64, qty: i64) -> RetiredTrade {
        RetiredTrade {
            trade_id: 1,
            journal_seq: 1,
            symbol: "NBR".into(),
            sub_ledger: "ccp".into(),
            price_ticks,
            tick_micros: 10_000,
            qty,
            seller: 2001,
            supplementary_ticks: 0,
            retirement_ref: None,
            retired_ms: None,
        }
    }

    fn data(decision: Value, trades: Vec<RetiredTrade>, earlier: (i64, i64)) -> CertificateData {
        CertificateData {
            order_id: 7,
            account: 1001,
            decision,
            trades,
            credits: Vec::new(),
            earlier_retired: 0,
            earlier_budget_micros: earlier.0,
            earlier_spent_micros: earlier.1,
        }
    }

    #[test]
    fn the_gap_is_budget_less_spend_over_the_year_and_an_attestation_covers_it() {
        // $20/t budget; 10 t bought at $15 and 5 t at $21: budget 300,
        // spent 255, gap 45, no attestation.
        let first = data(
            json!({"floor_micros": 20_000_000, "floor_ticks": 0, "attestation": null}),
            vec![trade(1500, 10), trade(2100, 5)],
            (0, 0),
        );
        let b = of_certificate(&first, 20_000_000, 0).unwrap();
        assert_eq!(
            (b.budget_micros, b.spent_micros, b.gap_micros()),
            (300_000_000, 255_000_000, 45_000_000)
        );
        assert_eq!(b.attested_gap_micros(), 0);
        // A later order: 10 t at $30 with the year's attestation. Year to
        // date: budget 500, spent 555, no gap left.
        let second = data(
            json!({"floor_micros": 20_000_000, "floor_ticks": 0, "attestation": "ICP-2026"}),
            vec![trade(3000, 10)],
            (300_000_000, 255_000_000),
        );
        let b = of_certificate(&second, 20_000_000, 0).unwrap();
        assert_eq!(
            (b.budget_micros, b.spent_micros, b.gap_micros()),
            (500_000_000, 555_000_000, 0)
        );
        // The gap before it, attested.
        let attested = data(
            json!({"floor_micros": 20_000_000, "floor_ticks": 0, "attestation": "ICP-2026"}),
            vec![trade(1500, 10)],
            (0, 0),
        );
        let b = of_certificate(&attested, 20_000_000, 0).unwrap();
        assert_eq!(
            (b.gap_micros(), b.attested_gap_micros()),
            (50_000_000, 50_000_000)
        );
        let json = b.to_json(|m| format!("{}.{:02}", m / 1_000_000, m % 1_000_000 / 10_000));
        assert_eq!(json["unattested_gap_usd"], "0.00");
        assert_eq!(json["attestation"], "ICP-2026");
    }

    #[test]
    fn per_trade_and_credit_route_decisions_have_no_budget() {
        let d = data(json!({}), vec![trade(1500, 10)], (0, 0));
        assert!(of_certificate(&d, 20_000_000, 2000).is_none());
        assert!(of_certificate(&d, 0, 0).is_none());
    }
}
