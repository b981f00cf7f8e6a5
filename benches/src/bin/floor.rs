//! `tonnex-floor`: the floor of what any gateway can do on this machine.
//! A bare mio server that speaks the order-entry protocol and answers every
//! message at once: a login with `LoginAccepted` and `ReferenceData`, a new
//! order with `OrderAccepted` (a fresh order id), a cancel with
//! `Cancelled`, a replace with `Replaced`. No matching, no journal, no
//! compliance, no risk: driven by the same `tonnex-loadtest` on the same
//! cores, the venue's latency and throughput are measured against it
//! (`scripts/floor-bench.sh`, README "Against the floor").
//!
//! ```text
//! tonnex-floor [--listen ADDR] [--fills PER_100]   # prints `ready order_entry=ADDR`
//! ```
//! `--fills N` adds N `Fill` messages per 100 new orders accepted (to the
//! same session, never ending an order: leaves 1, not the aggressor), so
//! the floor sends as many messages as the venue does on the same flow
//! (in the closed loop about 92 per 100: `fills=` over `sent=` in the
//! venue's summary). What the floor loses then is the cost of the
//! message volume alone, in the kernel and in the load test's decoding.
//! It serves until SIGTERM or SIGINT (the default handlers end it).

use std::io::{ErrorKind, Read, Write};
use std::process::ExitCode;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use tonnex_protocol::frame;
use tonnex_protocol::wire::{ClientMessage, InstrumentInfo, Sequenced, VenueMessage, SIDE_BUY};
use tonnex_protocol::{CancelReason, Name};

const LISTENER: Token = Token(usize::MAX);
/// Most `--fills` (a hundred fills per order).
const MOST_FILLS_PER_100: u32 = 10_000;

/// One client connection.
struct Conn {
    stream: TcpStream,
    read: Vec<u8>,
    write: Vec<u8>,
    written: usize,
    seq: u64,
    /// `Fill` messages per 100 new orders (`--fills`).
    fills_per_100: u32,
    /// Hundredths of a `Fill` owed: one goes out per 100.
    fill_credit: u32,
    trade_id: u64,
}

impl Conn {
    fn send(&mut self, message: VenueMessage, sequenced: bool) {
        let seq = if sequenced {
            self.seq += 1;
            self.seq
        } else {
            0
        };
        frame::encode_into(&Sequenced { seq, message }, &mut self.write);
    }

    /// Answers every whole frame read so far; false when the client is done.
    fn answer(&mut self, next_order_id: &mut u64) -> bool {
        let mut at = 0;
        let mut open = true;
        loop {
            match frame::split(&self.read[at..], 1 << 16) {
                Ok(Some((payload, used))) => {
                    let message = frame::decode::<ClientMessage>(payload);
                    at += used;
                    match message {
                        Ok(message) => open &= self.on_message(message, next_order_id),
                        Err(_) => open = false,
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    open = false;
                    break;
                }
            }
        }
        self.read.drain(..at);
        open
    }

    fn on_message(&mut self, message: ClientMessage, next_order_id: &mut u64) -> bool {
        match message {
            ClientMessage::Login { account, .. } => {
                self.send(
                    VenueMessage::LoginAccepted {
                        account,
                        next_seq: 1,
                        heartbeat_ms: 1000,
                        session_id: 1,
                        incarnation: 1,
                    },
                    false,
                );
                let instruments = (0..4)
                    .map(|i| InstrumentInfo {
                        instrument: i,
                        symbol: format!("FLOOR-{i}"),
                        sub_ledger: "general".into(),
                        tick_micros: 10_000,
                        min_price_ticks: 1,
                        max_price_ticks: 100_000,
                    })
                    .collect();
                self.send(VenueMessage::ReferenceData { instruments }, false);
            }
            ClientMessage::NewOrder(order) => {
                *next_order_id += 1;
                self.send(
                    VenueMessage::OrderAccepted {
                        client_order_id: order.client_order_id,
                        order_id: *next_order_id,
                        instrument: order.instrument,
                        side: order.side,
                        price_ticks: order.price_ticks,
                        qty: order.qty,
                        pathway: 0,
                        sub_ledger: Name::default(),
                        floor_ticks: 0,
                        attestation: None,
                    },
                    true,
                );
                self.fills(order.instrument, *next_order_id, order.price_ticks);
            }
            ClientMessage::Cancel { order_id } => self.send(
                VenueMessage::Cancelled {
                    client_order_id: 0,
                    order_id,
                    instrument: 0,
                    open_qty: 0,
                    reason: CancelReason::User.code(),
                },
                true,
            ),
            ClientMessage::Replace {
                order_id,
                price_ticks,
                qty,
            } => self.send(
                VenueMessage::Replaced {
                    client_order_id: 0,
                    order_id,
                    price_ticks,
                    qty,
                    priority_kept: false,
                },
                true,
            ),
            ClientMessage::Logout => return false,
            _ => {}
        }
        true
    }

    /// The `--fills` share of `Fill` messages for one accepted order.
    fn fills(&mut self, instrument: u32, order_id: u64, price_ticks: i64) {
        self.fill_credit += self.fills_per_100;
        while self.fill_credit >= 100 {
            self.fill_credit -= 100;
            self.trade_id += 1;
            self.send(
                VenueMessage::Fill {
                    client_order_id: 0,
                    order_id,
                    trade_id: self.trade_id,
                    instrument,
                    side: SIDE_BUY,
                    price_ticks,
                    qty: 1,
                    leaves_qty: 1,
                    aggressor: false,
                    supplementary_ticks: 0,
                },
                true,
            );
        }
    }

    /// Writes what it can; false on a broken connection.
    fn flush(&mut self) -> bool {
        while self.written < self.write.len() {
            match self.stream.write(&self.write[self.written..]) {
                Ok(0) => return false,
                Ok(n) => self.written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        self.write.clear();
        self.written = 0;
        true
    }
}

fn serve(listen: &str, fills_per_100: u32) -> std::io::Result<()> {
    let mut poll = Poll::new()?;
    let mut listener = TcpListener::bind(listen.parse().map_err(std::io::Error::other)?)?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    println!("ready order_entry={}", listener.local_addr()?);
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut events = Events::with_capacity(1024);
    let mut chunk = vec![0u8; 1 << 16];
    let mut next_order_id = 0u64;
    loop {
        poll.poll(&mut events, None)?;
        for event in &events {
            if event.token() == LISTENER {
                while let Ok((mut stream, _)) = listener.accept() {
                    stream.set_nodelay(true)?;
                    let token = Token(conns.len());
                    poll.registry()
                        .register(&mut stream, token, Interest::READABLE)?;
                    conns.push(Some(Conn {
                        stream,
                        read: Vec::with_capacity(1 << 16),
                        write: Vec::with_capacity(1 << 16),
                        written: 0,
                        seq: 0,
                        fills_per_100,
                        fill_credit: 0,
                        trade_id: 0,
                    }));
                }
                continue;
            }
            let Some(conn) = conns.get_mut(event.token().0).and_then(Option::as_mut) else {
                continue;
            };
            let mut open = true;
            loop {
                match conn.stream.read(&mut chunk) {
                    Ok(0) => {
                        open = false;
                        break;
                    }
                    Ok(n) => conn.read.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => {
                        open = false;
                        break;
                    }
                }
            }
            open &= conn.answer(&mut next_order_id);
            // Answers go out in the same round, as the venue's do.
            open &= conn.flush();
            let pending = conn.written < conn.write.len();
            let interest = if pending {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if open {
                poll.registry()
                    .reregister(&mut conn.stream, event.token(), interest)?;
            } else {
                conns[event.token().0] = None;
            }
        }
    }
}

fn main() -> ExitCode {
    let usage = || {
        eprintln!("usage: tonnex-floor [--listen ADDR] [--fills PER_100]");
        ExitCode::from(2)
    };
    let mut args = std::env::args().skip(1);
    let mut listen = "127.0.0.1:0".to_string();
    let mut fills_per_100 = 0u32;
    while let Some(flag) = args.next() {
        let Some(value) = args.next() else {
            return usage();
        };
        match flag.as_str() {
            "--listen" => listen = value,
            "--fills" => match value.parse() {
                Ok(n) if n <= MOST_FILLS_PER_100 => fills_per_100 = n,
                _ => {
                    eprintln!(
                            "tonnex-floor: --fills {value}: not a whole number of fills per 100 orders from 0 to {MOST_FILLS_PER_100}"
                        );
                    return ExitCode::from(2);
                }
            },
            _ => return usage(),
        }
    }
    match serve(&listen, fills_per_100) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tonnex-floor: {e}");
            ExitCode::from(1)
        }
    }
}
