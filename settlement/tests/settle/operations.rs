//! Operating settlement: no defaulted secret, metrics, JSON logs, and the
//! audit naming a tampered posting or custody-log row.

use super::*;

#[test]
fn no_secret_is_defaulted_a_missing_one_stops_the_command_naming_it() {
    let run = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_tonnex-settlement"))
            .args(args)
            .env_remove("TONNEX_WEBHOOK_SECRET")
            .env_remove("TONNEX_FILL_KEY")
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8(output.stderr).unwrap(),
        )
    };
    let dir = std::env::temp_dir().join(format!("tonnex-no-secret-{}", std::process::id()));
    let dir = dir.to_str().unwrap();
    let base = ["run", "--venue", "127.0.0.1:9", "--data-dir", dir];
    // An external registry shares the webhook secret: it must be given.
    let external = ["--registry", "127.0.0.1:9", "--fill-key", "k-12345678"];
    let (code, stderr) = run(&[&base[..], &external[..]].concat());
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("--secret") && stderr.contains("TONNEX_WEBHOOK_SECRET"),
        "{stderr}"
    );
    let (code, stderr) = run(&[&base[..], &["--secret", "s"]].concat());
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("--fill-key") && stderr.contains("TONNEX_FILL_KEY"),
        "{stderr}"
    );
    let (code, stderr) = run(&[
        "registry-sim",
        "--listen",
        "127.0.0.1:0",
        "--callback",
        "127.0.0.1:9",
    ]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--secret"), "{stderr}");
}

/// Every sample of a settlement scrape, through the reference Prometheus
/// parser (`scripts/metrics.py`), as `name{labels} -> value`.
fn scrape(addr: &str) -> std::collections::BTreeMap<String, f64> {
    use std::io::Read as _;
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .write_all(
            format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let body = response.split_once("\r\n\r\n").unwrap().1.to_string();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/metrics.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the Prometheus parser refused: {body}"
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let labels: Vec<String> = v["labels"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, x)| format!("{k}={}", x.as_str().unwrap()))
                .collect();
            (
                format!("{}{{{}}}", v["name"].as_str().unwrap(), labels.join(",")),
                v["value"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn settlement_metrics_show_the_stream_the_escrows_and_the_registry_calls() {
    let dir = scratch("metrics");
    let records = stream(40, 10);
    let total = records.len() as u64;
    let venue = fake_venue(records);
    let settlement = Settlement::start(&venue, &dir, &["--metrics-listen", "127.0.0.1:0"]);
    wait_for(20, "every trade settled", || {
        trades_in(&dir, &["settled", "retired"]) == 12
    });
    let addr = settlement
        .metrics
        .clone()
        .expect("a metrics address on the ready line");
    wait_for(10, "the stream applied", || {
        scrape(&addr)["tonnex_settlement_stream_seq{}"] as u64 == total
    });
    let samples = scrape(&addr);
    assert_eq!(samples["tonnex_settlement_stream_lag{}"], 0.0);
    let settled = samples
        .get("tonnex_settlement_trades{state=settled}")
        .unwrap_or(&0.0)
        + samples
            .get("tonnex_settlement_trades{state=retired}")
            .unwrap_or(&0.0);
    assert_eq!(settled, 12.0);
    assert_eq!(samples["tonnex_settlement_escrows_in_flight{}"], 0.0);
    assert_eq!(samples["tonnex_settlement_unwinds_total{}"], 0.0);
    assert!(samples["tonnex_settlement_registry_calls_total{kind=submit,outcome=ok}"] >= 1.0);
    assert_eq!(
        samples["tonnex_settlement_registry_calls_total{kind=submit,outcome=error}"],
        0.0
    );
}

/// `--log-format json`: every line settlement writes on standard error is a
/// JSON object; here the venue is unreachable, so it warns (with the error
/// and the retry) until it is stopped.
#[test]
fn logs_are_json_objects_with_log_format_json() {
    let dir = scratch("json-logs");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tonnex-settlement"))
        .args(["run", "--venue", "127.0.0.1:1", "--fill-key", "k"])
        .args(["--log-format", "json", "--data-dir"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut warning = None;
    let mut line = String::new();
    while warning.is_none() && stderr.read_line(&mut line).unwrap() > 0 {
        let event: serde_json::Value = serde_json::from_str(line.trim_end())
            .unwrap_or_else(|e| panic!("not JSON: {line}: {e}"));
        assert!(
            event["timestamp"].is_string() && event["level"].is_string(),
            "{event}"
        );
        if event["fields"]["message"] == "fill stream unreachable" {
            warning = Some(event);
        }
        line.clear();
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let warning = warning.expect("a warning that the venue is unreachable");
    assert_eq!(warning["level"], "WARN");
    assert!(warning["fields"]["retry_ms"].is_u64(), "{warning}");
    std::fs::remove_dir_all(dir).ok();
}

/// The custody log: every movement's entry links to the one before; the
/// audit recomputes each from the postings as they are, so altering one
/// posting (even keeping the movement balanced), one log row, or removing
/// one, is named; the report prints the head an operator publishes.
#[test]
fn tampering_with_a_posting_or_the_custody_log_is_named_by_the_audit() {
    let dir = scratch("custody");
    let records = stream(40, 30);
    let venue = fake_venue(records);
    let mut settlement = Settlement::start(&venue, &dir, &[]);
    wait_for(20, "every trade settled", || {
        trades_in(&dir, &["settled", "retired"]) == 32
    });
    settlement.kill9();
    let (ok, json, _) = audit(&dir);
    assert!(ok, "{json:#}");
    let verified = json["custody_log"]["verified_entries"].as_u64().unwrap();
    let head = json["custody_log"]["head_sha256"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(verified > 60, "{json:#}");
    let report = Command::new(env!("CARGO_BIN_EXE_tonnex-settlement"))
        .args(["report", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(report["custody_head"]["sha256"], head.as_str());

    let db = || rusqlite::Connection::open(dir.join("ledger.sqlite")).unwrap();
    let broken = |json: &serde_json::Value| {
        json["custody_log"]["first_broken_link"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    // 1. A settle movement's cash paid to someone else: still balanced, so
    //    only the chain can tell.
    let (movement, rowid): (i64, i64) = db()
        .query_row(
            "SELECT p.movement_id, p.rowid FROM postings p JOIN movements m ON m.id = p.movement_id
             WHERE m.kind = 'settle' AND p.account > 0 AND p.asset = -1 ORDER BY p.rowid LIMIT 1 OFFSET 3",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    db().execute(
        "UPDATE postings SET account = 999 WHERE rowid = ?1",
        [rowid],
    )
    .unwrap();
    let (ok, json, _) = audit(&dir);
    assert!(
        !ok && json["checks"]["custody_chain_verifies"] == false,
        "{json:#}"
    );
    assert!(
        broken(&json).starts_with(&format!(
            "custody log entry {movement} (movement {movement}, settle"
        )),
        "{}",
        broken(&json)
    );
    assert_eq!(
        json["custody_log"]["verified_entries"].as_i64().unwrap(),
        movement - 1
    );
    db().execute("UPDATE postings SET account = (SELECT seller FROM trades t JOIN movements m ON m.trade_id = t.trade_id WHERE m.id = ?1) WHERE rowid = ?2", [movement, rowid])
        .unwrap();
    let (ok, json, _) = audit(&dir);
    assert!(ok, "restoring the posting restores the chain: {json:#}");
    // 2. A log row rewritten (its hash recomputed by a forger who does not
    //    also rewrite every later entry) cuts the chain at the next one.
    db().execute(
        "UPDATE custody_log SET sha256 = ?1 WHERE movement_id = 10",
        [&"ab".repeat(32)],
    )
    .unwrap();
    let (ok, json, _) = audit(&dir);
    assert!(!ok, "{json:#}");
    assert!(
        broken(&json).starts_with("custody log entry 10 "),
        "{}",
        broken(&json)
    );
    // 3. A log row removed.
    db().execute("DELETE FROM custody_log WHERE movement_id = 10", [])
        .unwrap();
    let (ok, json, _) = audit(&dir);
    assert!(!ok, "{json:#}");
    assert!(
        broken(&json).contains("custody log entry 11 where movement 10"),
        "{}",
        broken(&json)
    );
}
