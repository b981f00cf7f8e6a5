//! The arithmetic of scope allocations and coverage: inventories in whole
//! tonnes per slot, an order's allocation checked (step 8), the slots it
//! uses, and coverage in exact integer hundredths of a percent.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

use super::{Allocation, OrderRequest};

pub(super) fn whole_tonnes(tonnes: Decimal) -> u64 {
    tonnes.floor().to_u64().unwrap_or(u64::MAX)
}

/// Each slot's inventory in whole tonnes: scope 1, scope 2, then Scope 3
/// categories 1-15.
pub(super) fn slot_limits(inventory: &crate::compliance::profiles::Inventory) -> [u64; 17] {
    let mut limits = [0u64; 17];
    limits[0] = whole_tonnes(inventory.scope1);
    limits[1] = whole_tonnes(inventory.scope2);
    for category in 1..=15 {
        limits[1 + category] = whole_tonnes(inventory.scope3[category]);
    }
    limits
}

/// 100 × `claimed` ÷ `ongoing` in hundredths of a percent, truncated,
/// computed exactly in integers: with `ongoing` = m × 10^-s, it is
/// ⌊10⁴ · claimed · 10^s ÷ m⌋. `None` when out of integer range.
pub(super) fn coverage_hundredths(claimed: u64, ongoing: Decimal) -> Option<i64> {
    let (m, s) = (ongoing.mantissa(), ongoing.scale());
    10i64
        .checked_pow(s)
        .and_then(|p| {
            i64::try_from(claimed)
                .ok()?
                .checked_mul(10_000)?
                .checked_mul(p)
        })
        .zip(i64::try_from(m).ok().filter(|&m| m > 0))
        .map(|(n, m)| n / m)
}

/// The coverage in percent, truncated to 2 decimals, by decimal division
/// (where [`coverage_hundredths`] is out of range: the same digits).
pub(super) fn coverage_pct_decimal(claimed: u64, ongoing: Decimal) -> Decimal {
    let mut pct = (Decimal::ONE_HUNDRED * Decimal::from(claimed) / ongoing)
        .round_dp_with_strategy(2, RoundingStrategy::ToZero);
    pct.rescale(2);
    pct
}

/// The slot indexes whose bits are set in `used`, lowest first.
pub(super) fn slots_of(mut used: u32) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (used != 0).then(|| {
            let slot = used.trailing_zeros() as usize;
            used &= used - 1;
            slot
        })
    })
}

/// Step 8: fills `allocation` (empty on entry) and returns the slots it uses
/// (bit `i` for slot `i`), or `None` if the allocation is missing or
/// inconsistent (`allocation` then holds a part of it).
pub(super) fn check_allocation(order: &OrderRequest, allocation: &mut Allocation) -> Option<u32> {
    let raw = order.scope.as_ref()?;
    if raw.is_empty() {
        return None;
    }
    let mut used = 0u32;
    let mut sum: i64 = 0;
    for line in raw {
        if line.malformed {
            return None;
        }
        let qty = line.qty?;
        if qty <= 0 {
            return None;
        }
        let slot = match (line.scope?, line.category_given, line.category) {
            (1, false, _) => 0,
            (2, false, _) => 1,
            (3, true, Some(c)) if (1..=15).contains(&c) => 1 + c as usize,
            _ => return None,
        };
        allocation.0[slot] += qty as u64;
        used |= 1 << slot;
        sum = sum.checked_add(qty)?;
    }
    (sum == order.qty).then_some(used)
}
