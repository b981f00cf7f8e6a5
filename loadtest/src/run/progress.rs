//! Progress during a run: a line rewritten in place on a terminal, or, with
//! `--log-format json`, one log event a second for a log shipper.

/// How the run reports progress on standard error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Nothing until the report.
    Off,
    /// One line, rewritten every second (standard error is a terminal).
    Terminal,
    /// One INFO event a second through the log.
    Events,
}

/// The figures shown each second.
pub(super) struct Tick {
    pub(super) second: u64,
    pub(super) answered: u64,
    pub(super) per_s: u64,
    pub(super) fills: u64,
    pub(super) p99_us: f64,
    pub(super) errors: u64,
}

impl Progress {
    pub(super) fn show(self, tick: &Tick) {
        match self {
            Progress::Off => {}
            Progress::Terminal => eprint!(
                "\r\x1b[K[{:>4}s] answered {} ({}/s), fills {}, p99 {:.1} us, errors {}",
                tick.second, tick.answered, tick.per_s, tick.fills, tick.p99_us, tick.errors
            ),
            Progress::Events => tracing::info!(
                second = tick.second,
                answered = tick.answered,
                answered_per_s = tick.per_s,
                fills = tick.fills,
                p99_us = tick.p99_us,
                errors = tick.errors,
                "progress"
            ),
        }
    }

    /// Ends the rewritten line so the report starts on its own.
    pub(super) fn finish(self) {
        if self == Progress::Terminal {
            eprintln!();
        }
    }
}
