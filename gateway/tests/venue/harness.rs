//! A real venue process on loopback ports and a blocking test client.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tonnex_protocol::frame;
use tonnex_protocol::wire::*;

pub use crate::scratch_dir::Scratch;

/// A scratch copy of `config/demo` with its journal inside and `extra`
/// replacing the `[session]` table; removed when the test ends (each holds
/// a preallocated 256 MiB journal segment, and a run makes over fifty).
pub fn scratch(name: &str, session: &str) -> Scratch {
    remove_stale_scratch();
    let dir = Scratch::fresh(
        std::env::temp_dir().join(format!("tonnex-venue-{name}-{}", std::process::id())),
    );
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/demo");
    for entry in std::fs::read_dir(&demo).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    // The demo's rules, beside the copy (a test may change them).
    std::fs::copy(
        demo.join("../rules/venue-strict.toml"),
        dir.join("rules.toml"),
    )
    .unwrap();
    let venue = std::fs::read_to_string(dir.join("venue.toml")).unwrap();
    let start = venue.find("[session]").unwrap();
    let end = start + venue[start..].find("[[account]]").unwrap();
    // TONNEX_TEST_ENGINE=inline runs every venue test with the engine
    // applied on the event loop (`[session] engine`).
    let engine = match std::env::var("TONNEX_TEST_ENGINE").as_deref() {
        Ok("inline") => "\nengine = \"inline\"",
        _ => "",
    };
    let venue = format!(
        "{}[session]\n{session}{engine}\n\n{}",
        &venue[..start],
        &venue[end..]
    )
    .replace("../../target/demo-journal", "journal")
    .replace("\"../rules/venue-strict.toml\"", "\"rules.toml\"")
    .replace("127.0.0.1:7001", "127.0.0.1:0")
    .replace("127.0.0.1:7002", "127.0.0.1:0")
    .replace("127.0.0.1:7003", "127.0.0.1:0")
    .replace("127.0.0.1:7004", "127.0.0.1:0")
    .replace("127.0.0.1:7005", "127.0.0.1:0");
    std::fs::write(dir.join("venue.toml"), venue).unwrap();
    dir
}

/// Removes scratch folders that earlier test runs could not (their process
/// was killed).
fn remove_stale_scratch() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("tonnex-venue-") else {
            continue;
        };
        let Some(pid) = rest.rsplit('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Default session settings for tests: quick heartbeats and deadlines.
pub const QUICK: &str = "heartbeat_ms = 300\nlogin_timeout_ms = 400\nthrottle_per_s = 100000";

/// A scope line: `qty` tonnes of scope `scope` (3: of `category`).
pub fn line(scope: u8, category: u8, qty: u64) -> ScopeLine {
    ScopeLine {
        scope,
        category,
        qty,
    }
}

/// A running `tonnex-venue run`.
pub struct Venue {
    pub child: Child,
    pub order_entry: String,
    pub fill_stream: String,
    pub recovered_records: u64,
    pub admin: String,
    pub metrics: String,
    /// The market-data feed's address.
    pub market_data: String,
}

impl Venue {
    pub fn start(dir: &Path) -> Venue {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tonnex-venue"))
            .args(["run", "--config"])
            .arg(dir.join("venue.toml"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("ready "), "venue did not start: {line:?}");
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
                .unwrap()
                .to_string()
        };
        Venue {
            order_entry: field("order_entry"),
            fill_stream: field("fill_stream"),
            recovered_records: field("recovered_records").parse().unwrap(),
            admin: field("admin"),
            metrics: field("metrics"),
            market_data: field("market_data"),
            child,
        }
    }

    /// Runs `tonnex-admin ARGS` against this venue as `operator` with `key`.
    pub fn admin_cli(&self, operator: &str, key: &str, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_tonnex-admin"))
            .args(["--admin", &self.admin, "--operator", operator, "--key", key])
            .args(args)
            .output()
            .unwrap()
    }

    pub fn connect(&self) -> Client {
        Client::connect(&self.order_entry)
    }

    /// Logs in again as demo account `account` after its connection was
    /// dropped: refused while the venue has not yet seen the drop ("already
    /// has a session"), so tried every 20 ms for up to 5 s; returns the
    /// client and the messages replayed after `last_seen_seq`.
    pub fn relogin(
        &self,
        account: u64,
        last_seen_seq: u64,
        cancel_on_disconnect: bool,
    ) -> (Client, Vec<VenueMessage>) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut client = self.connect();
            let secret = format!("demo-{account}");
            match client.try_login(account, &secret, last_seen_seq, cancel_on_disconnect) {
                Ok(replayed) => return (client, replayed),
                Err(refusal) => {
                    assert!(Instant::now() < deadline, "login refused: {refusal:?}");
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }

    /// Logs in as a demo account (secret `demo-<id>`).
    pub fn login(&self, account: u64) -> Client {
        let mut client = self.connect();
        client.login(account, &format!("demo-{account}"), 0, false);
        client
    }

    pub fn sigterm(&mut self) -> std::process::ExitStatus {
        send_signal(self.child.id(), "TERM");
        self.child.wait().unwrap()
    }

    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Venue {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// A blocking client speaking the wire protocol.
pub struct Client {
    pub stream: TcpStream,
    buffer: Vec<u8>,
    pub last_seq: u64,
    pub next_client_order_id: u64,
    /// The last login's `LoginAccepted`.
    pub login_accepted: Option<VenueMessage>,
}

impl Client {
    pub fn connect(addr: &str) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            buffer: Vec::new(),
            last_seq: 0,
            next_client_order_id: 1,
            login_accepted: None,
        }
    }

    pub fn send(&mut self, message: &ClientMessage) {
        self.stream.write_all(&frame::encode(message)).unwrap();
    }

    /// Logs in and reads up to ReferenceData; returns what came between
    /// (replayed messages).
    pub fn login(
        &mut self,
        account: u64,
        secret: &str,
        last_seen_seq: u64,
        cancel_on_disconnect: bool,
    ) -> Vec<VenueMessage> {
        match self.try_login(account, secret, last_seen_seq, cancel_on_disconnect) {
            Ok(between) => between,
            Err(refusal) => panic!("{refusal:?}"),
        }
    }

    /// [`Client::login`], or the venue's first answer if it is not
    /// `LoginAccepted`.
    pub fn try_login(
        &mut self,
        account: u64,
        secret: &str,
        last_seen_seq: u64,
        cancel_on_disconnect: bool,
    ) -> Result<Vec<VenueMessage>, VenueMessage> {
        self.last_seq = last_seen_seq;
        self.send(&ClientMessage::Login {
            account,
            secret: secret.into(),
            last_seen_seq,
            cancel_on_disconnect,
        });
        let first = self.recv().expect("a login answer");
        if !matches!(first, VenueMessage::LoginAccepted { .. }) {
            return Err(first);
        }
        self.login_accepted = Some(first);
        let mut between = Vec::new();
        loop {
            match self.recv().expect("reference data") {
                VenueMessage::ReferenceData { .. } => return Ok(between),
                other => between.push(other),
            }
        }
    }

    /// The next message other than a heartbeat, or `None` if the venue
    /// closed the connection or nothing came within 5 s.
    pub fn recv(&mut self) -> Option<VenueMessage> {
        self.recv_within(Duration::from_secs(5))
    }

    pub fn recv_within(&mut self, wait: Duration) -> Option<VenueMessage> {
        self.recv_sequenced(wait).map(|(_, message)| message)
    }

    /// The next message other than a heartbeat with its session sequence
    /// number (0: outside the account's stream); gaps fail the test.
    pub fn recv_sequenced(&mut self, wait: Duration) -> Option<(u64, VenueMessage)> {
        let deadline = Instant::now() + wait;
        loop {
            if let Ok(Some((payload, used))) = frame::split(&self.buffer, 1 << 20) {
                let message: Sequenced = frame::decode(payload).unwrap();
                self.buffer.drain(..used);
                if message.seq != 0 {
                    assert_eq!(message.seq, self.last_seq + 1, "session sequence gap");
                    self.last_seq = message.seq;
                }
                if message.message == VenueMessage::Heartbeat {
                    continue;
                }
                return Some((message.seq, message.message));
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return None
                }
                Err(_) => return None,
            }
        }
    }

    /// Reads until `pick` accepts a message; panics after 5 s.
    pub fn expect<T>(&mut self, what: &str, mut pick: impl FnMut(&VenueMessage) -> Option<T>) -> T {
        let mut seen = Vec::new();
        while let Some(message) = self.recv() {
            if let Some(found) = pick(&message) {
                return found;
            }
            seen.push(message);
        }
        panic!("no {what}; saw {seen:#?}");
    }

    /// Whether the venue closes the connection within `wait`.
    /// Logs out and waits until the venue has closed the session, so the
    /// account may log in again at once ("already has a session" otherwise:
    /// a dropped socket is noticed on the venue's next round, not before).
    pub fn logout(mut self) {
        self.send(&ClientMessage::Logout);
        assert!(
            self.closed_within(Duration::from_secs(5)),
            "the venue did not close the session after Logout"
        );
    }

    pub fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            self.stream
                .set_read_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return true,
            }
        }
        false
    }

    pub fn next_id(&mut self) -> u64 {
        let id = self.next_client_order_id;
        self.next_client_order_id += 1;
        id
    }

    /// Sends a GTC limit order and returns its client order id.
    pub fn limit(&mut self, instrument: u32, side: u8, price_ticks: i64, qty: u64) -> u64 {
        self.order(instrument, side, TIF_GTC, price_ticks, qty, vec![])
    }

    /// Sends a buyer's limit buy with its scope lines; its client id.
    pub fn buy_scoped(
        &mut self,
        instrument: u32,
        tif: u8,
        price_ticks: i64,
        qty: u64,
        scope: Vec<ScopeLine>,
    ) -> u64 {
        self.order(instrument, SIDE_BUY, tif, price_ticks, qty, scope)
    }

    fn order(
        &mut self,
        instrument: u32,
        side: u8,
        tif: u8,
        price_ticks: i64,
        qty: u64,
        scope: Vec<ScopeLine>,
    ) -> u64 {
        let (id, message) = self.order_message(instrument, side, tif, price_ticks, qty, scope);
        self.send(&message);
        id
    }

    /// A limit order with the next client order id, not sent: its id and
    /// the message.
    pub fn order_message(
        &mut self,
        instrument: u32,
        side: u8,
        tif: u8,
        price_ticks: i64,
        qty: u64,
        scope: Vec<ScopeLine>,
    ) -> (u64, ClientMessage) {
        let id = self.next_id();
        (
            id,
            limit_order(id, instrument, side, tif, price_ticks, qty, scope),
        )
    }

    /// Sends a limit order and waits for its acceptance: the venue order id.
    pub fn rest(&mut self, instrument: u32, side: u8, price_ticks: i64, qty: u64) -> u64 {
        let id = self.limit(instrument, side, price_ticks, qty);
        self.accepted(id)
    }

    pub fn accepted(&mut self, client_order_id: u64) -> u64 {
        self.expect("OrderAccepted", |m| match m {
            VenueMessage::OrderAccepted {
                client_order_id: c,
                order_id,
                ..
            } if *c == client_order_id => Some(*order_id),
            _ => None,
        })
    }

    pub fn rejected(&mut self) -> (u64, u64, &'static str) {
        self.expect("OrderRejected", |m| match m {
            VenueMessage::OrderRejected {
                client_order_id,
                order_id,
                reason,
            } => Some((*client_order_id, *order_id, reject_name(*reason))),
            _ => None,
        })
    }
}

/// A limit order with no cash budget or attestation.
pub fn limit_order(
    client_order_id: u64,
    instrument: u32,
    side: u8,
    tif: u8,
    price_ticks: i64,
    qty: u64,
    scope: Vec<ScopeLine>,
) -> ClientMessage {
    ClientMessage::NewOrder(NewOrder {
        client_order_id,
        instrument,
        side,
        order_type: TYPE_LIMIT,
        time_in_force: tif,
        price_ticks,
        qty,
        cash_budget_micros: 0,
        scope,
        attestation: None,
    })
}

/// Load-test options: the four demo market makers on instruments 0 and 1.
pub fn load_options(
    venue: &Venue,
    rate: u64,
    seconds: f64,
    seed: u64,
) -> tonnex_loadtest::run::Options {
    tonnex_loadtest::run::Options {
        venue: venue.order_entry.clone(),
        sessions: 4,
        rate,
        duration: Duration::from_secs_f64(seconds),
        accounts: (3001..=3004).map(|a| (a, format!("demo-{a}"))).collect(),
        instruments: vec![0, 1],
        mid: 2500,
        mix: tonnex_loadtest::sim::Mix::default(),
        seed,
        window: 32,
        acked_log: None,
        hostile: 0,
        progress: tonnex_loadtest::run::Progress::Off,
        buyers: Vec::new(),
        buyer_rate: 50,
        md: None,
    }
}

/// The decision the fill stream's `BuyAccepted` carries for `order_id`.
pub fn buy_decision(records: &[StreamRecord], order_id: u64) -> Option<BuyDecision> {
    records.iter().find_map(|r| match &r.event {
        StreamEvent::BuyAccepted {
            order_id: o,
            decision,
            ..
        } if *o == order_id => Some(decision.clone()),
        _ => None,
    })
}

/// The demo settlement subscriber's subscription from `from_seq`.
pub fn subscription(from_seq: u64) -> StreamSubscribe {
    StreamSubscribe {
        from_seq,
        name: "settlement".into(),
        key: "demo-settlement-key".into(),
    }
}

/// Reads the fill stream from `from_seq` until `count` records arrived.
pub fn read_stream(addr: &str, from_seq: u64, count: usize) -> Vec<StreamRecord> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .write_all(&frame::encode(&subscription(from_seq)))
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buffer = Vec::new();
    let mut records = Vec::new();
    while records.len() < count {
        let mut chunk = [0u8; 65536];
        let n = stream.read(&mut chunk).expect("fill stream records");
        assert!(n > 0, "fill stream closed after {} records", records.len());
        buffer.extend_from_slice(&chunk[..n]);
        while let Ok(Some((payload, used))) = frame::split(&buffer, 1 << 20) {
            records.push(frame::decode::<StreamRecord>(payload).unwrap());
            buffer.drain(..used);
        }
    }
    records
}

/// Every record of the journal in `dir`, one described line each.
pub fn journal_text(dir: &Path) -> String {
    let mut dumped = String::new();
    tonnex_engine::journal::dump(&dir.join("journal"), |line| {
        dumped.push_str(&line.text);
        dumped.push('\n');
    })
    .unwrap();
    dumped
}

/// The engine state the journal in `dir` recovers to (snapshots used).
pub fn recovered_state(dir: &Path) -> tonnex_engine::State {
    tonnex_engine::journal::recover(
        &dir.join("journal"),
        tonnex_engine::journal::RecoverOptions {
            use_snapshot: true,
            track_orders: false,
            config: tonnex_engine::EngineConfig::default(),
        },
    )
    .unwrap()
    .state
}
