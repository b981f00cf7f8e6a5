//! What follows a ledger transaction: the registry requests it produced
//! (and, while the registry is down, every pending one again with
//! back-off), and the certificate files it issued.

use std::time::{Duration, Instant};

use super::{note, Options, RunError};
use crate::certificate;
use crate::ledger::{Ledger, Outbox};
use crate::metrics::{Call, Metrics};
use crate::registry::Registry;

/// The registry is unreachable: every request still owed an answer is sent
/// again, from the ledger, with back-off, until it takes them.
pub(super) struct Outage {
    pub(super) since: Instant,
    pub(super) next_try: Instant,
    pub(super) backoff: Duration,
}

pub(super) fn finish(
    outbox: &Outbox,
    registry: &mut dyn Registry,
    ledger: &Ledger,
    options: &Options,
    metrics: &Metrics,
    outage: &mut Option<Outage>,
) -> Result<(), RunError> {
    note(outbox);
    if !outbox.requests.is_empty() && outage.is_none() {
        let submitted = registry.submit(&outbox.requests);
        metrics.registry_call(Call::Submit, submitted.is_ok());
        if let Err(e) = submitted {
            tracing::warn!(error = %e, "registry submit failed: sending every pending request again until it answers");
            let now = Instant::now();
            *outage = Some(Outage {
                since: now,
                next_try: now + Duration::from_millis(500),
                backoff: Duration::from_millis(500),
            });
        }
    }
    if !outbox.certificates.is_empty() {
        write_certificates(ledger, &options.data_dir)?;
    }
    Ok(())
}

/// During an outage: when due, every pending request again.
pub(super) fn retry_outage(
    outage: &mut Option<Outage>,
    registry: &mut dyn Registry,
    ledger: &Ledger,
    metrics: &Metrics,
) -> Result<(), RunError> {
    let Some(o) = outage else {
        return Ok(());
    };
    if Instant::now() < o.next_try {
        return Ok(());
    }
    let pending = ledger.pending_requests()?;
    let submitted = registry.submit(&pending);
    metrics.registry_call(Call::Submit, submitted.is_ok());
    match submitted {
        Ok(()) => {
            tracing::info!(
                requests = pending.len(),
                down_s = o.since.elapsed().as_secs(),
                "the registry answers again: every pending request sent"
            );
            *outage = None;
        }
        Err(e) => {
            o.backoff = (o.backoff * 2).min(Duration::from_secs(30));
            o.next_try = Instant::now() + o.backoff;
            tracing::warn!(error = %e, down_s = o.since.elapsed().as_secs(), retry_ms = o.backoff.as_millis() as u64, "the registry is still unreachable");
        }
    }
    Ok(())
}

/// Writes the files of every stored certificate that has none yet.
pub(super) fn write_certificates(ledger: &Ledger, dir: &std::path::Path) -> Result<(), RunError> {
    let stored = crate::ledger::certificate_query::stored(ledger.connection())?;
    certificate::write_missing(&stored, dir)?;
    Ok(())
}
