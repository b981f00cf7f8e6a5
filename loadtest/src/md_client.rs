//! A market-data feed subscriber (docs/protocol.md, "Market-data feed"):
//! connects, subscribes, and keeps each instrument's full book from a
//! snapshot and the updates after it, checking every `md_seq`. A gap
//! (an update that does not follow the last) asks the venue for a fresh
//! snapshot and drops updates until it arrives. Blocking I/O: one thread
//! per subscriber.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use tonnex_protocol::frame;
use tonnex_protocol::md::{MdMessage, MdRequest};

/// One side's levels, best first: `(price in ticks, tonnes)`.
pub type Levels = Vec<(i64, u64)>;

/// One instrument's book as the subscriber rebuilt it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Book {
    /// Price → tonnes, bids.
    pub bids: BTreeMap<i64, u64>,
    /// Price → tonnes, asks.
    pub asks: BTreeMap<i64, u64>,
    /// The last `md_seq` applied (0 before the first snapshot).
    pub md_seq: u64,
    /// A snapshot has been applied (updates before the first one are
    /// older than it, and dropped).
    pub synced: bool,
    /// Waiting for a snapshot after a gap.
    pub recovering: bool,
}

impl Book {
    /// Bids best first, then asks best first, as `(price, tonnes)`.
    #[must_use]
    pub fn levels(&self) -> (Levels, Levels) {
        (
            self.bids.iter().rev().map(|(p, q)| (*p, *q)).collect(),
            self.asks.iter().map(|(p, q)| (*p, *q)).collect(),
        )
    }
}

/// What a subscriber counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Messages read.
    pub messages: u64,
    /// Bytes read (frames included).
    pub bytes: u64,
    /// Gaps seen (each recovered by a snapshot).
    pub gaps: u64,
    /// Snapshots applied.
    pub snapshots: u64,
}

/// What the `--md` subscribers saw during a run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FeedReport {
    /// Subscribers.
    pub subscribers: usize,
    /// Messages all of them read.
    pub messages: u64,
    /// Bytes all of them read.
    pub bytes: u64,
    /// Messages each read per second of the run, on average.
    pub per_subscriber_per_s: u64,
    /// Gaps seen (each recovered by a snapshot).
    pub gaps: u64,
    /// Subscribers the venue disconnected (or that failed).
    pub cut: u64,
}

/// Subscribers reading in threads of their own while the load runs.
pub struct Watchers {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<(Counts, bool)>>,
}

impl Watchers {
    /// Connects `count` subscribers to `instruments` and starts reading.
    pub fn start(
        addr: &str,
        key: &str,
        instruments: &[u32],
        count: usize,
    ) -> Result<Watchers, String> {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut threads = Vec::with_capacity(count);
        for _ in 0..count {
            let mut subscriber = Subscriber::connect(addr, key, instruments.to_vec())
                .map_err(|e| format!("--md {addr}: {e}"))?;
            let stop = std::sync::Arc::clone(&stop);
            threads.push(std::thread::spawn(move || {
                let mut failed = false;
                while !stop.load(std::sync::atomic::Ordering::Acquire) && !failed {
                    match subscriber.next(Duration::from_millis(50)) {
                        Ok(Some(message)) => failed = subscriber.apply(&message).is_err(),
                        Ok(None) => {}
                        Err(_) => failed = true,
                    }
                }
                (
                    subscriber.counts,
                    failed || subscriber.disconnected.is_some(),
                )
            }));
        }
        Ok(Watchers { stop, threads })
    }

    /// Stops reading and sums up over `seconds` of sending.
    #[must_use]
    pub fn stop(self, seconds: f64) -> FeedReport {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        let mut report = FeedReport {
            subscribers: self.threads.len(),
            ..FeedReport::default()
        };
        for thread in self.threads {
            let (counts, cut) = thread.join().unwrap_or_default();
            report.messages += counts.messages;
            report.bytes += counts.bytes;
            report.gaps += counts.gaps;
            report.cut += u64::from(cut);
        }
        report.per_subscriber_per_s =
            (report.messages as f64 / report.subscribers.max(1) as f64 / seconds.max(1e-9)) as u64;
        report
    }
}

/// A connected subscriber.
pub struct Subscriber {
    stream: TcpStream,
    buffer: Vec<u8>,
    at: usize,
    /// Books by instrument.
    pub books: BTreeMap<u32, Book>,
    /// Counters.
    pub counts: Counts,
    /// The venue's `Disconnect` reason, if it sent one.
    pub disconnected: Option<String>,
}

impl Subscriber {
    /// Connects to `addr` and subscribes to `instruments` (empty: all).
    pub fn connect(addr: &str, key: &str, instruments: Vec<u32>) -> std::io::Result<Subscriber> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        let mut subscriber = Subscriber {
            stream,
            buffer: Vec::with_capacity(1 << 16),
            at: 0,
            books: BTreeMap::new(),
            counts: Counts::default(),
            disconnected: None,
        };
        subscriber.request(&MdRequest::Subscribe {
            key: key.to_string(),
            instruments,
        })?;
        Ok(subscriber)
    }

    /// Sends a request.
    pub fn request(&mut self, request: &MdRequest) -> std::io::Result<()> {
        self.stream.write_all(&frame::encode(request))
    }

    /// The next message, waiting at most `wait` (`Ok(None)`: nothing came;
    /// an error once the venue closed the connection).
    pub fn next(&mut self, wait: Duration) -> std::io::Result<Option<MdMessage>> {
        loop {
            match frame::split(&self.buffer[self.at..], 1 << 26) {
                Ok(Some((payload, used))) => {
                    let message = frame::decode::<MdMessage>(payload)
                        .map_err(|e| std::io::Error::other(e.to_string()))?;
                    self.at += used;
                    self.counts.messages += 1;
                    self.counts.bytes += used as u64;
                    if self.at > 1 << 20 {
                        self.buffer.drain(..self.at);
                        self.at = 0;
                    }
                    return Ok(Some(message));
                }
                Ok(None) => {}
                Err(e) => return Err(std::io::Error::other(e.to_string())),
            }
            self.stream
                .set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
            let mut chunk = [0u8; 1 << 16];
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the venue closed the feed",
                    ))
                }
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return Ok(None)
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Applies a message to the books; on a gap, asks for a snapshot.
    pub fn apply(&mut self, message: &MdMessage) -> std::io::Result<()> {
        match message {
            MdMessage::Snapshot {
                instrument,
                md_seq,
                bids,
                asks,
            } => {
                let book = self.books.entry(*instrument).or_default();
                book.bids = bids.iter().map(|l| (l.price_ticks, l.qty)).collect();
                book.asks = asks.iter().map(|l| (l.price_ticks, l.qty)).collect();
                book.md_seq = *md_seq;
                book.synced = true;
                book.recovering = false;
                self.counts.snapshots += 1;
            }
            MdMessage::Level {
                instrument,
                md_seq,
                side,
                price_ticks,
                qty,
            } => {
                if self.follows(*instrument, *md_seq)? {
                    let book = self.books.get_mut(instrument).expect("followed");
                    let levels = if *side == 0 {
                        &mut book.bids
                    } else {
                        &mut book.asks
                    };
                    if *qty == 0 {
                        levels.remove(price_ticks);
                    } else {
                        levels.insert(*price_ticks, *qty);
                    }
                }
            }
            MdMessage::Trade {
                instrument, md_seq, ..
            } => {
                self.follows(*instrument, *md_seq)?;
            }
            MdMessage::Disconnect { reason } => self.disconnected = Some(reason.clone()),
            MdMessage::Instruments { .. } => {}
        }
        Ok(())
    }

    /// Whether an update numbered `md_seq` applies: it must follow the last
    /// one; a gap asks for a snapshot and drops updates until it comes.
    fn follows(&mut self, instrument: u32, md_seq: u64) -> std::io::Result<bool> {
        let book = self.books.entry(instrument).or_default();
        if book.recovering || !book.synced || md_seq <= book.md_seq {
            return Ok(false);
        }
        if md_seq == book.md_seq + 1 {
            book.md_seq = md_seq;
            return Ok(true);
        }
        book.recovering = true;
        self.counts.gaps += 1;
        self.request(&MdRequest::Snapshot { instrument })?;
        Ok(false)
    }

    /// Reads and applies messages for `wait`, or until the connection ends.
    pub fn pump(&mut self, wait: Duration) -> std::io::Result<()> {
        let deadline = std::time::Instant::now() + wait;
        while std::time::Instant::now() < deadline {
            if let Some(message) = self.next(Duration::from_millis(20))? {
                self.apply(&message)?;
            }
        }
        Ok(())
    }
}
