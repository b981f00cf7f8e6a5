//! Instrument symbols and sub-ledger names as `&'static str`. Every order
//! carries its instrument's symbol into the pre-router, and its decision
//! the sub-ledger to the order's acceptance; a shared `Arc<str>` cost two
//! atomic reference-count updates per copy on the event loop, a static
//! name costs nothing. Each distinct name is leaked once: they are the
//! venue's instruments and sub-ledgers, a handful that only the venue file
//! or an operator's listing adds to.

use std::collections::BTreeSet;
use std::sync::Mutex;

static NAMES: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());

/// The one static copy of `name`.
pub(crate) fn intern(name: &str) -> &'static str {
    // (A panic while holding the lock cannot leave the set inconsistent.)
    let mut names = NAMES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(&known) = names.get(name) {
        return known;
    }
    let leaked: &'static str = Box::leak(name.into());
    names.insert(leaked);
    leaked
}

#[cfg(test)]
mod tests {
    use super::intern;

    #[test]
    fn one_copy_per_name() {
        let a = intern("ccp-removals");
        let b = intern(&String::from("ccp-removals"));
        assert!(std::ptr::eq(a, b));
        assert_eq!(a, "ccp-removals");
        assert!(!std::ptr::eq(a, intern("ccp-avoidance")));
    }
}
