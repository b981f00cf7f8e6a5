//! Every binary's log on standard error: text by default, exactly as the
//! contracts pin it, and one JSON object a line with `--log-format json`
//! (the services' events and the tools' diagnostics alike; the load test's
//! own in loadtest/tests/logs.rs).

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

use crate::harness::{scratch, Venue, QUICK};

/// Every line of `stderr` parsed as a JSON object (the test fails naming
/// the first line that is not one).
fn json_lines(stderr: &[u8]) -> Vec<serde_json::Value> {
    let text = String::from_utf8(stderr.to_vec()).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

fn message(line: &serde_json::Value) -> &str {
    line["fields"]["message"].as_str().unwrap_or_default()
}

fn admin(venue: &Venue, key: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tonnex-admin"))
        .args(["--admin", &venue.admin, "--operator", "ops", "--key", key])
        .args(extra)
        .arg("status")
        .output()
        .unwrap()
}

#[test]
fn logs_come_as_json_lines_with_log_format_json() {
    let dir = scratch("json-logs", QUICK);
    let mut child = Command::new(env!("CARGO_BIN_EXE_tonnex-venue"))
        .args(["run", "--log-format", "json", "--config"])
        .arg(dir.join("venue.toml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert!(ready.starts_with("ready "), "{ready}");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let lines = json_lines(&output.stderr);
    assert!(lines.len() >= 2, "{lines:?}");
    assert!(lines
        .iter()
        .all(|l| l["level"].is_string() && l["fields"]["message"].is_string()));
    assert!(lines.iter().any(|l| message(l) == "recovered"));
}

#[test]
fn the_admin_tool_refused_says_so_as_a_bare_line_or_a_json_warning() {
    let dir = scratch("json-logs-admin", QUICK);
    let venue = Venue::start(&dir);
    // Text: the line the runbook shows, nothing else.
    let text = admin(&venue, "not-the-key", &[]);
    assert_eq!(text.status.code(), Some(1));
    let stderr = String::from_utf8(text.stderr).unwrap();
    assert!(
        stderr.starts_with("tonnex-admin: refused: ") && stderr.lines().count() == 1,
        "{stderr:?}"
    );
    // JSON: the same words as a WARN event; standard output unchanged.
    let json = admin(&venue, "not-the-key", &["--log-format", "json"]);
    assert_eq!(json.status.code(), Some(1));
    assert_eq!(json.stdout, text.stdout);
    let lines = json_lines(&json.stderr);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["level"], "WARN");
    assert_eq!(message(&lines[0]), stderr.trim_end());
    // And a venue nobody listens on is an ERROR event naming the address.
    let mut gone = Command::new(env!("CARGO_BIN_EXE_tonnex-admin"));
    gone.args(["--admin", "127.0.0.1:1", "--operator", "ops", "--key", "k"]);
    let gone = gone
        .args(["--log-format", "json", "status"])
        .output()
        .unwrap();
    assert_eq!(gone.status.code(), Some(1));
    let lines = json_lines(&gone.stderr);
    assert_eq!(lines[0]["level"], "ERROR");
    assert!(message(&lines[0]).contains("127.0.0.1:1"), "{lines:?}");
}
