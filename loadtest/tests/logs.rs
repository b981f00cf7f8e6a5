//! `tonnex-loadtest --log-format json`: progress each second and every
//! diagnostic as JSON objects on standard error, the report unchanged on
//! standard output. The venue here is a stand-in that acknowledges every
//! order (the load test's own behaviour is what is under test).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output};

use tonnex_protocol::frame;
use tonnex_protocol::wire::*;

/// Serves each connection on its own thread: a login is accepted and
/// followed by reference data; every new order is acknowledged.
fn acknowledging_venue() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve(stream));
        }
    });
    addr
}

fn serve(mut stream: TcpStream) {
    let (mut input, mut chunk, mut seq) = (Vec::new(), [0u8; 1 << 14], 0u64);
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        input.extend_from_slice(&chunk[..n]);
        let mut out = Vec::new();
        let mut at = 0;
        while let Ok(Some((payload, used))) = frame::split(&input[at..], 1 << 20) {
            at += used;
            let mut say = |message: VenueMessage| {
                seq += 1;
                frame::encode_into(&Sequenced { seq, message }, &mut out);
            };
            match frame::decode::<ClientMessage>(payload) {
                Ok(ClientMessage::Login { account, .. }) => {
                    say(VenueMessage::LoginAccepted {
                        account,
                        next_seq: 1,
                        heartbeat_ms: 1000,
                        session_id: 1,
                        incarnation: 1,
                    });
                    say(VenueMessage::ReferenceData {
                        instruments: vec![InstrumentInfo {
                            instrument: 0,
                            symbol: "TEST".into(),
                            sub_ledger: "ccp".into(),
                            tick_micros: 10_000,
                            min_price_ticks: 1,
                            max_price_ticks: 100_000,
                        }],
                    });
                }
                Ok(ClientMessage::NewOrder(order)) => say(VenueMessage::OrderAccepted {
                    client_order_id: order.client_order_id,
                    order_id: order.client_order_id,
                    instrument: order.instrument,
                    side: order.side,
                    price_ticks: order.price_ticks,
                    qty: order.qty,
                    pathway: 0,
                    sub_ledger: "ccp".into(),
                    floor_ticks: 0,
                    attestation: None,
                }),
                Ok(_) => {}
                Err(_) => return,
            }
        }
        input.drain(..at);
        if stream.write_all(&out).is_err() {
            return;
        }
    }
}

fn loadtest(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tonnex-loadtest"))
        .args(args)
        .output()
        .unwrap()
}

fn json_lines(stderr: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8(stderr.to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

fn message(line: &serde_json::Value) -> &str {
    line["fields"]["message"].as_str().unwrap_or_default()
}

#[test]
fn progress_comes_each_second_as_a_json_event_and_the_report_stays_on_stdout() {
    let venue = acknowledging_venue();
    let output = loadtest(&[
        "--venue",
        &venue,
        "--sessions",
        "2",
        "--rate",
        "2000",
        "--duration",
        "2.5",
        "--mix",
        "quote=100",
        "--log-format",
        "json",
    ]);
    assert!(output.status.success(), "{output:?}");
    let lines = json_lines(&output.stderr);
    let progress: Vec<&serde_json::Value> =
        lines.iter().filter(|l| message(l) == "progress").collect();
    assert!(progress.len() >= 2, "{lines:?}");
    let last = progress.last().unwrap();
    assert_eq!(last["level"], "INFO");
    assert!(
        last["fields"]["answered"].as_u64().unwrap() > 1000,
        "{last}"
    );
    assert_eq!(last["fields"]["errors"], 0);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.lines().last().unwrap().contains("p99_us="),
        "{stdout}"
    );
}

#[test]
fn diagnostics_are_bare_lines_by_default_and_json_objects_on_request() {
    // A bad flag: the same words either way, exit status 2 either way.
    let text = loadtest(&["--sessions", "many"]);
    assert_eq!(text.status.code(), Some(2));
    let stderr = String::from_utf8(text.stderr).unwrap();
    let first = stderr.lines().next().unwrap();
    assert_eq!(
        first,
        "tonnex-loadtest: --sessions: 'many' is not a whole number"
    );
    assert!(stderr.contains("usage: tonnex-loadtest"), "{stderr}");
    let json = loadtest(&["--log-format", "json", "--sessions", "many"]);
    assert_eq!(json.status.code(), Some(2));
    let lines = json_lines(&json.stderr);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["level"], "ERROR");
    assert_eq!(message(&lines[0]), first);
    // Nobody listening: an ERROR naming the address, exit status 1.
    let gone = loadtest(&[
        "--venue",
        "127.0.0.1:1",
        "--duration",
        "1",
        "--log-format",
        "json",
    ]);
    assert_eq!(gone.status.code(), Some(1));
    let lines = json_lines(&gone.stderr);
    assert!(
        message(&lines[0]).contains("cannot connect to 127.0.0.1:1"),
        "{lines:?}"
    );
    // And a format nobody knows is refused by name.
    let bad = loadtest(&["--log-format", "xml"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8(bad.stderr)
        .unwrap()
        .contains("'xml' is not text or json"));
}
