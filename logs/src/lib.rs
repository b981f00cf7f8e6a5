//! Every tonnex binary's log on standard error, set up in one place.
//!
//! `--log-format text` (the default) or `--log-format json` (one JSON object
//! a line: `timestamp`, `level`, `fields.message` and the event's fields,
//! `target`, for a log shipper).
//!
//! Two shapes of text: a service (`tonnex-venue run`, `tonnex-settlement`)
//! writes timestamped, levelled lines; a command-line tool (`tonnex-replay`,
//! `tonnex-loadtest`, `tonnex-admin`) writes each message bare, exactly as
//! the contracts pin its diagnostics (`WORKLOAD:LINE: ...`,
//! `tonnex-admin: refused: ...`). In JSON both are the same objects.

use std::fmt;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// How a binary writes its log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Lines for a person at a terminal.
    #[default]
    Text,
    /// One JSON object a line.
    Json,
}

impl LogFormat {
    /// `text` or `json`; anything else is an error naming the flag.
    pub fn parse(value: &str) -> Result<Self, String> {
        match value {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!("--log-format: '{other}' is not text or json")),
        }
    }

    /// Takes `--log-format VALUE` out of `args` (wherever it stands), so a
    /// tool can set its log up before it parses (and reports on) the rest.
    pub fn take_flag(args: &mut Vec<String>) -> Result<Self, String> {
        let Some(at) = args.iter().position(|a| a == "--log-format") else {
            return Ok(Self::Text);
        };
        let Some(value) = args.get(at + 1).cloned() else {
            return Err("--log-format needs a value (text or json)".to_string());
        };
        args.drain(at..at + 2);
        Self::parse(&value)
    }
}

/// A service's log: INFO and above, timestamped text lines or JSON.
pub fn init_service(format: LogFormat) {
    init(format, false);
}

/// A command-line tool's log: in text, each event's message (and fields)
/// alone on its line, as the tool's diagnostics have always read; in JSON,
/// the same objects a service writes.
pub fn init_tool(format: LogFormat) {
    init(format, true);
}

/// A tool's start: takes `--log-format` out of its arguments and sets its
/// log up; a bad value is returned (nothing is set up) for the tool to
/// report as a usage error.
pub fn init_tool_from(args: &mut Vec<String>) -> Result<LogFormat, String> {
    let format = LogFormat::take_flag(args)?;
    init_tool(format);
    Ok(format)
}

fn init(format: LogFormat, bare: bool) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO);
    match (format, bare) {
        (LogFormat::Json, _) => builder.json().init(),
        (LogFormat::Text, true) => builder.event_format(Bare).init(),
        (LogFormat::Text, false) => builder.init(),
    }
}

/// An event's fields and nothing else: no time, level or target.
struct Bare;

impl<S, N> FormatEvent<S, N> for Bare
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_flag_is_taken_out_wherever_it_stands() {
        let mut list = args(&["--venue", "a", "--log-format", "json", "--quiet"]);
        assert_eq!(LogFormat::take_flag(&mut list), Ok(LogFormat::Json));
        assert_eq!(list, args(&["--venue", "a", "--quiet"]));
        let mut none = args(&["status"]);
        assert_eq!(LogFormat::take_flag(&mut none), Ok(LogFormat::Text));
        assert_eq!(none, args(&["status"]));
    }

    #[test]
    fn a_bad_or_missing_value_is_named() {
        let mut bad = args(&["--log-format", "xml"]);
        assert_eq!(
            LogFormat::take_flag(&mut bad),
            Err("--log-format: 'xml' is not text or json".to_string())
        );
        let mut missing = args(&["--log-format"]);
        assert!(LogFormat::take_flag(&mut missing)
            .unwrap_err()
            .contains("needs a value"));
    }
}
