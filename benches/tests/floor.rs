//! `tonnex-floor --fills N` answers every new order with its acceptance
//! and N `Fill` messages per 100 orders, spread evenly (the venue's message
//! volume without its work); without the flag, acceptances alone.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tonnex_protocol::frame;
use tonnex_protocol::wire::{ClientMessage, NewOrder, Sequenced, VenueMessage};

/// A floor process, killed when dropped.
struct Floor(Child);

impl Drop for Floor {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(args: &[&str]) -> (Floor, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tonnex-floor"))
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("tonnex-floor starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("a ready line");
    let addr = line
        .trim()
        .strip_prefix("ready order_entry=")
        .unwrap_or_else(|| panic!("not a ready line: {line:?}"))
        .to_string();
    (Floor(child), addr)
}

fn order(client_order_id: u64) -> ClientMessage {
    ClientMessage::NewOrder(NewOrder {
        client_order_id,
        instrument: 0,
        side: 0,
        order_type: 0,
        time_in_force: 0,
        price_ticks: 100,
        qty: 5,
        cash_budget_micros: 0,
        scope: Vec::new(),
        attestation: None,
    })
}

/// Sends a login and `orders` new orders, then reads until `expected`
/// sequenced messages came; returns (acceptances, fills).
fn run(addr: &str, orders: u64, expected: usize) -> (usize, usize) {
    let mut stream = TcpStream::connect(addr).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut out = Vec::new();
    frame::encode_into(
        &ClientMessage::Login {
            account: 1,
            secret: "any".into(),
            last_seen_seq: 0,
            cancel_on_disconnect: false,
        },
        &mut out,
    );
    for id in 1..=orders {
        frame::encode_into(&order(id), &mut out);
    }
    stream.write_all(&out).expect("writes");
    let (mut accepted, mut fills, mut next_seq) = (0, 0, 1);
    let mut read = Vec::new();
    let mut chunk = [0u8; 4096];
    while accepted + fills < expected {
        let n = stream.read(&mut chunk).expect("the floor answers in time");
        assert!(n > 0, "the floor closed the connection");
        read.extend_from_slice(&chunk[..n]);
        let mut at = 0;
        while let Some((payload, used)) = frame::split(&read[at..], 1 << 16).expect("a frame") {
            let message: Sequenced = frame::decode(payload).expect("decodes");
            at += used;
            match message.message {
                VenueMessage::OrderAccepted { .. } => accepted += 1,
                VenueMessage::Fill { leaves_qty, .. } => {
                    assert!(leaves_qty > 0, "a floor fill never ends an order");
                    fills += 1;
                }
                _ => continue,
            }
            assert_eq!(
                message.seq, next_seq,
                "one sequence for acceptances and fills"
            );
            next_seq += 1;
        }
        read.drain(..at);
    }
    (accepted, fills)
}

#[test]
fn fills_come_at_the_asked_share_of_new_orders() {
    let (_floor, addr) = start(&["--fills", "92"]);
    // 92 per 100, spread evenly: n orders bring floor(0.92 n) fills.
    assert_eq!(run(&addr, 50, 96), (50, 46));
}

#[test]
fn without_the_flag_orders_are_only_accepted() {
    let (_floor, addr) = start(&[]);
    assert_eq!(run(&addr, 20, 20), (20, 0));
}
