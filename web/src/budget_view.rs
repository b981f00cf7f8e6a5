//! The buyer dashboard's budget-mode section (rules `floor_mode =
//! "budget"`): the year's internal carbon price budget beside what was
//! spent, and the attested gap (tonnex_settlement::budget).

use std::fmt::Write as _;

use tonnex_settlement::budget::Budget;
use tonnex_settlement::certificate::usd;

use crate::page::escape;

/// Appends the section for `b` to `body`.
pub fn section(body: &mut String, b: &Budget) {
    let _ = write!(
            body,
            "<h2>Internal carbon price budget</h2>\
             <p>Budget mode: the pathway's internal price times the tonnes bought is a budget for the reporting year; \
             purchases spend it at their real prices, and an attestation of supplementary pricing covers the gap.</p>\
             <table id=\"budget\"><tr><th>price USD/t</th><td class=\"num\">{}</td></tr>\
             <tr><th>budget USD</th><td class=\"num\">{}</td></tr><tr><th>spent USD</th><td class=\"num\">{}</td></tr>\
             <tr><th>gap USD</th><td class=\"num\">{}</td></tr><tr><th>attested gap USD</th><td class=\"num\">{}</td></tr>\
             <tr><th>attestation</th><td>{}</td></tr></table>",
            usd(b.price_micros),
            usd(b.budget_micros),
            usd(b.spent_micros),
            usd(b.gap_micros()),
            usd(b.attested_gap_micros()),
            escape(b.attestation.as_deref().unwrap_or("none")),
        );
}
