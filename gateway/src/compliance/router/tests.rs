//! The router's integer arithmetic agrees with decimal arithmetic.

use super::*;

/// The integer coverage and threshold test agree with decimal arithmetic
/// (truncate 100 × claimed ÷ ongoing to 2 decimals, compare to the
/// threshold) over thresholds with 0-3 decimals and ongoing emissions
/// with 0-3 decimals.
#[test]
fn integer_coverage_and_threshold_agree_with_decimals() {
    let thresholds = ["0", "1", "40", "33.33", "33.335", "12.5", "99.999"];
    let ongoing = ["1", "3", "7.5", "123.457", "5000000", "0.001"];
    for t in thresholds {
        let threshold: Decimal = t.parse().unwrap();
        let rounded_up = (threshold * Decimal::ONE_HUNDRED).ceil().to_i64().unwrap();
        for o in ongoing {
            let ongoing: Decimal = o.parse().unwrap();
            for claimed in [0u64, 1, 2, 3, 7, 10, 333, 1_000, 999_999, 5_000_000] {
                let exact = coverage_pct_decimal(claimed, ongoing);
                let h = coverage_hundredths(claimed, ongoing).unwrap();
                assert_eq!(Decimal::new(h, 2), exact, "{claimed} / {o}");
                assert_eq!(
                    h >= rounded_up,
                    exact >= threshold,
                    "{claimed} / {o} vs {t}"
                );
            }
        }
    }
}

#[test]
fn slots_of_lists_set_bits_lowest_first() {
    assert_eq!(slots_of(0).count(), 0);
    assert_eq!(
        slots_of(0b1_0000_0000_0000_0101).collect::<Vec<_>>(),
        [0, 2, 16]
    );
}
