//! The run: one thread, one mio event loop for every session. Sends follow
//! a fixed schedule (open loop) and latency is measured from each order's
//! scheduled time, so a venue that stalls shows in the percentiles instead
//! of slowing the sender (no coordinated omission). `rate = 0` is closed
//! loop: each session keeps `window` orders in flight.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use tonnex_protocol::frame;
use tonnex_protocol::wire::*;

use crate::report::{Latency, Report};
use crate::sim::{Action, Market, Mix};

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Venue order-entry address.
    pub venue: String,
    /// Sessions, one account each.
    pub sessions: usize,
    /// New messages per second across all sessions; 0: as fast as acknowledged.
    pub rate: u64,
    /// Seconds of sending.
    pub duration: Duration,
    /// Accounts to trade as (one per session) and their secrets.
    pub accounts: Vec<(u64, String)>,
    /// Instruments to trade.
    pub instruments: Vec<u32>,
    /// Starting mid in ticks.
    pub mid: i64,
    /// Order-flow mix.
    pub mix: Mix,
    /// Seed of the order flow.
    pub seed: u64,
    /// Closed loop: orders in flight per session.
    pub window: usize,
    /// File for the ids of acknowledged orders.
    pub acked_log: Option<std::path::PathBuf>,
    /// Hostile connections kept open during the run.
    pub hostile: usize,
    /// Print a progress line on standard error.
    pub progress: bool,
}

/// A live order of a session.
#[derive(Clone, Copy)]
struct LiveOrder {
    order_id: u64,
    instrument: u32,
    side: u8,
}

struct Session {
    account: u64,
    stream: TcpStream,
    input: Vec<u8>,
    output: Vec<u8>,
    written: usize,
    next_client_id: u64,
    /// client order id -> (scheduled ns, taker, first fill seen)
    pending: HashMap<u64, (u64, bool)>,
    /// Taker orders accepted and awaiting their first fill.
    awaiting_fill: HashMap<u64, u64>,
    live: Vec<LiveOrder>,
    live_index: HashMap<u64, usize>,
    logged_in: bool,
    /// Replayed messages of earlier runs arrive before ReferenceData: ignored.
    replaying: bool,
    closed: bool,
    last_send: Instant,
}

impl Session {
    fn remove_live(&mut self, order_id: u64) {
        if let Some(index) = self.live_index.remove(&order_id) {
            self.live.swap_remove(index);
            if let Some(moved) = self.live.get(index) {
                self.live_index.insert(moved.order_id, index);
            }
        }
    }

    fn queue(&mut self, message: &ClientMessage) {
        frame::encode_into(message, &mut self.output);
    }
}

/// A deliberately broken client: what it does cycles by its number.
struct Hostile {
    stream: TcpStream,
    kind: usize,
}

/// Counters and histograms shared by the loop.
struct Tally {
    report: Report,
    ack: Histogram<u64>,
    fill: Histogram<u64>,
    timeline: Vec<u64>,
    acked_log: Option<BufWriter<File>>,
}

impl Tally {
    fn error(&mut self, note: String) {
        self.report.errors += 1;
        if self.report.error_notes.len() < 20 {
            self.report.error_notes.push(note);
        }
    }
}

const HOSTILE_BASE: usize = 1 << 20;
const TIMER: Token = Token(HOSTILE_BASE - 1);

/// A monotonic-clock timerfd in the poll set: sub-millisecond wake-ups for
/// the next scheduled send while still waking at once for venue replies
/// (epoll's own timeout has millisecond granularity).
struct Timer {
    fd: libc::c_int,
    base: libc::timespec,
}

impl Timer {
    fn new(poll: &Poll) -> Result<Timer, String> {
        // SAFETY: plain syscalls on a descriptor this struct owns.
        let fd = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK) };
        if fd < 0 {
            return Err(format!(
                "timerfd_create: {}",
                std::io::Error::last_os_error()
            ));
        }
        let mut base = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `base` is a valid timespec to fill.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut base) };
        poll.registry()
            .register(&mut mio::unix::SourceFd(&fd), TIMER, Interest::READABLE)
            .map_err(|e| e.to_string())?;
        Ok(Timer { fd, base })
    }

    /// Fires at `offset_ns` after the timer's creation (its base).
    fn arm(&self, offset_ns: u64) {
        let total = self.base.tv_nsec as u64 + offset_ns;
        let value = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: self.base.tv_sec + (total / 1_000_000_000) as libc::time_t,
                tv_nsec: (total % 1_000_000_000) as libc::c_long,
            },
        };
        // SAFETY: valid descriptor and itimerspec.
        unsafe {
            libc::timerfd_settime(
                self.fd,
                libc::TFD_TIMER_ABSTIME,
                &value,
                std::ptr::null_mut(),
            );
        }
    }

    fn clear(&self) {
        let mut expirations = 0u64;
        // SAFETY: reads 8 bytes into a u64 from a non-blocking timerfd.
        unsafe {
            libc::read(self.fd, (&mut expirations as *mut u64).cast(), 8);
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        // SAFETY: closes the descriptor this struct owns.
        unsafe { libc::close(self.fd) };
    }
}

fn resident_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// Runs the load test and returns its report.
pub fn run(options: &Options) -> Result<Report, String> {
    if options.accounts.len() < options.sessions {
        return Err(format!(
            "{} sessions need {} accounts, {} given (one session per account)",
            options.sessions,
            options.sessions,
            options.accounts.len()
        ));
    }
    // Sleep precisely between scheduled sends: the default 50 us timer
    // slack would show up as latency.
    // SAFETY: prctl(PR_SET_TIMERSLACK) only changes this thread's timer slack.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
    let address: SocketAddr = options
        .venue
        .parse()
        .map_err(|e| format!("--venue '{}': {e}", options.venue))?;
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let first_client_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_micros() as u64);
    let mut sessions = Vec::new();
    for (i, (account, secret)) in options.accounts.iter().take(options.sessions).enumerate() {
        let std_stream = std::net::TcpStream::connect(address)
            .map_err(|e| format!("cannot connect to {address}: {e}"))?;
        std_stream.set_nodelay(true).map_err(|e| e.to_string())?;
        std_stream
            .set_nonblocking(true)
            .map_err(|e| e.to_string())?;
        let mut stream = TcpStream::from_std(std_stream);
        poll.registry()
            .register(
                &mut stream,
                Token(i),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(|e| e.to_string())?;
        let mut session = Session {
            account: *account,
            stream,
            input: Vec::with_capacity(1 << 16),
            output: Vec::with_capacity(1 << 16),
            written: 0,
            // Client order ids must grow across runs too (the venue remembers
            // each account's last one): start from the wall clock in µs.
            next_client_id: first_client_id,
            pending: HashMap::new(),
            awaiting_fill: HashMap::new(),
            live: Vec::new(),
            live_index: HashMap::new(),
            logged_in: false,
            replaying: true,
            closed: false,
            last_send: Instant::now(),
        };
        // A load test wants no replay of earlier runs' messages.
        session.queue(&ClientMessage::Login {
            account: *account,
            secret: secret.clone(),
            last_seen_seq: u64::MAX,
            cancel_on_disconnect: true,
        });
        sessions.push(session);
    }
    let mut tally = Tally {
        report: Report {
            venue: options.venue.clone(),
            sessions: options.sessions,
            rate: options.rate,
            seed: options.seed,
            rss_kb: (resident_kb(), 0),
            ..Report::default()
        },
        ack: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds"),
        fill: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds"),
        timeline: Vec::new(),
        acked_log: match &options.acked_log {
            Some(path) => Some(BufWriter::new(
                File::create(path).map_err(|e| format!("{}: {e}", path.display()))?,
            )),
            None => None,
        },
    };
    let mut events = Events::with_capacity(1024);

    // Log every session in before the clock starts.
    let login_deadline = Instant::now() + Duration::from_secs(5);
    while sessions.iter().any(|s| s.replaying) {
        if Instant::now() > login_deadline {
            return Err("the venue did not accept every login within 5 s".into());
        }
        flush(&mut sessions, &mut tally, Instant::now());
        poll.poll(&mut events, Some(Duration::from_millis(10)))
            .map_err(|e| e.to_string())?;
        let clock = Instant::now();
        for event in &events {
            read(
                &mut sessions[event.token().0],
                &mut tally,
                clock,
                clock,
                true,
            )?;
        }
        if let Some(s) = sessions.iter().find(|s| s.closed) {
            return Err(format!(
                "account {}: login failed: {:?}",
                s.account, tally.report.error_notes
            ));
        }
    }
    tally.report.errors = 0;

    let mut hostiles: Vec<Option<Hostile>> = (0..options.hostile).map(|_| None).collect();
    let mut market = Market::new(
        options.seed,
        options.mix,
        options.instruments.clone(),
        options.mid,
        1,
        100_000,
    );
    let mut timer = Timer::new(&poll)?;
    // Schedule offsets count from `start`, timer offsets from its base: take
    // both together (Instant reads CLOCK_MONOTONIC too).
    let start = Instant::now();
    // SAFETY: `base` is a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut timer.base) };
    let end_ns = options.duration.as_nanos() as u64;
    let interval_ns = if options.rate == 0 {
        0
    } else {
        1_000_000_000 / options.rate.max(1)
    };
    let mut scheduled = 0u64;
    let mut next_due = 0u64;
    let mut last_progress = 0u64;
    let mut hostile_turn = 0usize;
    loop {
        let now_ns = start.elapsed().as_nanos() as u64;
        if now_ns >= end_ns {
            break;
        }
        // Generate what is due.
        if options.rate > 0 {
            let mut budget = 4096;
            while next_due <= now_ns && budget > 0 {
                let index = (scheduled % options.sessions as u64) as usize;
                generate(&mut sessions[index], &mut market, next_due, &mut tally);
                scheduled += 1;
                budget -= 1;
                next_due = scheduled * interval_ns;
            }
        } else {
            for session in &mut sessions {
                while session.pending.len() < options.window && !session.closed {
                    generate(session, &mut market, now_ns, &mut tally);
                }
            }
        }
        flush(&mut sessions, &mut tally, start);
        // Hostile connections: a few actions per millisecond.
        if options.hostile > 0 && now_ns / 1_000_000 != hostile_turn as u64 {
            hostile_turn = (now_ns / 1_000_000) as usize;
            for _ in 0..4 {
                let slot = hostile_turn
                    .wrapping_mul(7)
                    .wrapping_add(scheduled as usize)
                    % hostiles.len();
                be_hostile(&mut hostiles, slot, address, &poll, &mut tally.report);
            }
        }
        // Wait for replies or the next scheduled send, whichever comes first.
        let timeout = if options.rate > 0 {
            let due = next_due.min(end_ns);
            if due > start.elapsed().as_nanos() as u64 {
                timer.arm(due);
                None
            } else {
                Some(Duration::ZERO)
            }
        } else {
            Some(Duration::from_millis(1))
        };
        poll.poll(&mut events, timeout.or(Some(Duration::from_secs(1))))
            .map_err(|e| e.to_string())?;
        let clock = Instant::now();
        for event in &events {
            let token = event.token().0;
            if event.token() == TIMER {
                timer.clear();
            } else if token >= HOSTILE_BASE {
                drain_hostile(&mut hostiles, token - HOSTILE_BASE);
            } else {
                read(&mut sessions[token], &mut tally, start, clock, false)?;
            }
        }
        if let Some(log) = &mut tally.acked_log {
            let _ = log.flush();
        }
        if options.progress && now_ns - last_progress >= 1_000_000_000 {
            last_progress = now_ns;
            let p99 = tally.ack.value_at_percentile(99.0) as f64 / 1000.0;
            let answered = tally.report.acked + tally.report.rejected;
            eprint!(
                "\r\x1b[K[{:>4}s] answered {} ({}/s), fills {}, p99 {:.1} us, errors {}",
                now_ns / 1_000_000_000,
                answered,
                answered * 1_000_000_000 / now_ns.max(1),
                tally.report.fills,
                p99,
                tally.report.errors
            );
        }
        // Heartbeats for idle sessions (closed loop waiting, low rates).
        for session in &mut sessions {
            if session.last_send.elapsed() > Duration::from_millis(500) && !session.closed {
                session.queue(&ClientMessage::Heartbeat);
                tally.report.messages_sent += 1;
            }
        }
    }
    let sending_s = start.elapsed().as_secs_f64();

    // Drain: every order sent deserves an answer.
    let drain_deadline = Instant::now() + Duration::from_secs(3);
    while sessions.iter().any(|s| !s.pending.is_empty() && !s.closed)
        && Instant::now() < drain_deadline
    {
        flush(&mut sessions, &mut tally, start);
        poll.poll(&mut events, Some(Duration::from_millis(10)))
            .map_err(|e| e.to_string())?;
        let clock = Instant::now();
        for event in &events {
            let token = event.token().0;
            if token < TIMER.0 {
                read(&mut sessions[token], &mut tally, start, clock, false)?;
            }
        }
    }
    let unanswered: usize = sessions.iter().map(|s| s.pending.len()).sum();
    if unanswered > 0 {
        tally.report.errors += unanswered as u64;
        tally
            .report
            .error_notes
            .push(format!("{unanswered} orders never answered"));
    }
    if let Some(log) = &mut tally.acked_log {
        let _ = log.flush();
    }
    for session in &mut sessions {
        session.queue(&ClientMessage::Logout);
    }
    flush(&mut sessions, &mut tally, start);
    if options.progress {
        eprintln!();
    }

    let mut report = tally.report;
    report.duration_s = sending_s;
    report.ack = Latency::of(&tally.ack);
    report.fill = Latency::of(&tally.fill);
    report.throughput_per_s =
        ((report.acked + report.rejected) as f64 / sending_s.max(1e-9)) as u64;
    let whole = sending_s.ceil() as usize;
    tally.timeline.resize(whole.max(tally.timeline.len()), 0);
    tally.timeline.truncate(whole.max(1));
    report.timeline = tally.timeline;
    report.rss_kb.1 = resident_kb();
    Ok(report)
}

/// Queues the next action of `session`, scheduled at `due_ns`.
fn generate(session: &mut Session, market: &mut Market, due_ns: u64, tally: &mut Tally) {
    if session.closed {
        return;
    }
    let live = &session.live;
    let action = market.next(live.len(), |i| (live[i].instrument, live[i].side));
    match action {
        Action::Quote {
            instrument,
            side,
            price,
            qty,
        }
        | Action::Take {
            instrument,
            side,
            price,
            qty,
        } => {
            let taker = matches!(action, Action::Take { .. });
            let id = session.next_client_id;
            session.next_client_id += 1;
            session.pending.insert(id, (due_ns, taker));
            session.queue(&ClientMessage::NewOrder(NewOrder {
                client_order_id: id,
                instrument,
                side,
                order_type: TYPE_LIMIT,
                time_in_force: if taker { TIF_IOC } else { TIF_GTC },
                price_ticks: price,
                qty,
                cash_budget_micros: 0,
                scope: Vec::new(),
                attestation: None,
            }));
            tally.report.sent += 1;
        }
        Action::Cancel(index) => {
            let order = session.live[index];
            // Forget it now: it cannot be cancelled twice.
            session.remove_live(order.order_id);
            session.queue(&ClientMessage::Cancel {
                order_id: order.order_id,
            });
            tally.report.cancels_and_replaces += 1;
        }
        Action::Replace(index, price, qty) => {
            let order = session.live[index];
            session.queue(&ClientMessage::Replace {
                order_id: order.order_id,
                price_ticks: price,
                qty,
            });
            tally.report.cancels_and_replaces += 1;
        }
    }
    tally.report.messages_sent += 1;
}

fn flush(sessions: &mut [Session], tally: &mut Tally, _start: Instant) {
    for session in sessions.iter_mut() {
        if session.closed || session.written == session.output.len() {
            continue;
        }
        while session.written < session.output.len() {
            match session.stream.write(&session.output[session.written..]) {
                Ok(0) => break,
                Ok(n) => session.written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    session.closed = true;
                    tally.error(format!("account {}: write failed: {e}", session.account));
                    break;
                }
            }
        }
        session.last_send = Instant::now();
        if session.written == session.output.len() {
            session.output.clear();
            session.written = 0;
        } else if session.written > 1 << 20 {
            session.output.drain(..session.written);
            session.written = 0;
        }
    }
}

/// Reads and handles everything available on one session.
fn read(
    session: &mut Session,
    tally: &mut Tally,
    start: Instant,
    clock: Instant,
    logging_in: bool,
) -> Result<(), String> {
    if session.closed {
        return Ok(());
    }
    let now_ns = clock.saturating_duration_since(start).as_nanos() as u64;
    let mut chunk = [0u8; 1 << 16];
    loop {
        match session.stream.read(&mut chunk) {
            Ok(0) => {
                session.closed = true;
                tally.error(format!(
                    "account {}: the venue closed the session",
                    session.account
                ));
                return Ok(());
            }
            Ok(n) => session.input.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                session.closed = true;
                tally.error(format!("account {}: read failed: {e}", session.account));
                return Ok(());
            }
        }
    }
    let mut at = 0;
    loop {
        match frame::split(&session.input[at..], 1 << 24) {
            Ok(Some((payload, used))) => {
                let message = frame::decode::<Sequenced>(payload).map_err(|e| {
                    format!(
                        "account {}: undecodable venue message: {e}",
                        session.account
                    )
                })?;
                at += used;
                handle(session, message.message, tally, now_ns, logging_in);
            }
            Ok(None) => break,
            Err(e) => {
                return Err(format!(
                    "account {}: bad frame from the venue: {e}",
                    session.account
                ))
            }
        }
    }
    session.input.drain(..at);
    Ok(())
}

fn record(histogram: &mut Histogram<u64>, ns: u64) {
    let _ = histogram.record(ns.max(1));
}

fn handle(
    session: &mut Session,
    message: VenueMessage,
    tally: &mut Tally,
    now_ns: u64,
    logging_in: bool,
) {
    let answered = |tally: &mut Tally| {
        let second = (now_ns / 1_000_000_000) as usize;
        if tally.timeline.len() <= second {
            tally.timeline.resize(second + 1, 0);
        }
        tally.timeline[second] += 1;
    };
    if session.replaying {
        match message {
            VenueMessage::ReferenceData { .. } => session.replaying = false,
            VenueMessage::LoginAccepted { .. } => session.logged_in = true,
            VenueMessage::LoginRejected { text } | VenueMessage::SessionError { text } => {
                session.closed = true;
                tally.error(format!("account {}: {text}", session.account));
            }
            _ => {}
        }
        return;
    }
    match message {
        VenueMessage::LoginRejected { text } | VenueMessage::SessionError { text } => {
            session.closed = !logging_in || !session.logged_in;
            tally.error(format!("account {}: {text}", session.account));
        }
        VenueMessage::OrderAccepted {
            client_order_id,
            order_id,
            instrument,
            side,
            ..
        } => {
            if let Some((due, taker)) = session.pending.remove(&client_order_id) {
                record(&mut tally.ack, now_ns.saturating_sub(due));
                if taker {
                    session.awaiting_fill.insert(order_id, due);
                } else {
                    session.live_index.insert(order_id, session.live.len());
                    session.live.push(LiveOrder {
                        order_id,
                        instrument,
                        side,
                    });
                }
                answered(tally);
                tally.report.acked += 1;
            }
            if let Some(log) = &mut tally.acked_log {
                let _ = writeln!(log, "{order_id}");
            }
        }
        VenueMessage::OrderRejected {
            client_order_id,
            reason,
            ..
        } => {
            *tally
                .report
                .rejects_by_reason
                .entry(reject_name(reason).to_string())
                .or_default() += 1;
            if client_order_id != 0 {
                if let Some((due, _)) = session.pending.remove(&client_order_id) {
                    record(&mut tally.ack, now_ns.saturating_sub(due));
                    answered(tally);
                }
                tally.report.rejected += 1;
            }
        }
        VenueMessage::OrderHeld {
            client_order_id, ..
        } => {
            if let Some((due, _)) = session.pending.remove(&client_order_id) {
                record(&mut tally.ack, now_ns.saturating_sub(due));
                answered(tally);
                tally.report.acked += 1;
            }
        }
        VenueMessage::Fill {
            order_id,
            leaves_qty,
            aggressor,
            ..
        } => {
            tally.report.fills += 1;
            if aggressor {
                if let Some(due) = session.awaiting_fill.remove(&order_id) {
                    record(&mut tally.fill, now_ns.saturating_sub(due));
                }
            }
            if leaves_qty == 0 {
                session.remove_live(order_id);
                session.awaiting_fill.remove(&order_id);
            }
        }
        VenueMessage::Cancelled { order_id, .. } => {
            session.remove_live(order_id);
            session.awaiting_fill.remove(&order_id);
        }
        _ => {}
    }
}

/// Opens, feeds or replaces hostile connection `slot`.
fn be_hostile(
    hostiles: &mut [Option<Hostile>],
    slot: usize,
    address: SocketAddr,
    poll: &Poll,
    report: &mut Report,
) {
    match &mut hostiles[slot] {
        None => {
            let Ok(mut stream) = TcpStream::connect(address) else {
                return;
            };
            if poll
                .registry()
                .register(&mut stream, Token(HOSTILE_BASE + slot), Interest::READABLE)
                .is_err()
            {
                return;
            }
            report.hostile_connections += 1;
            hostiles[slot] = Some(Hostile {
                stream,
                kind: (report.hostile_connections as usize) % 4,
            });
        }
        Some(hostile) => {
            let bytes: &[u8] = match hostile.kind {
                // Random-looking bytes.
                0 => &[
                    0x17, 0, 0, 0, 0x99, 0x42, 0x13, 0x37, 0xfe, 0xed, 0xfa, 0xce, 0x01,
                ],
                // An absurd length prefix.
                1 => &[0xff, 0xff, 0xff, 0x7f, 0, 0],
                // A truncated frame, never completed.
                2 => &[0x40, 0, 0, 0, 3, 0, 0],
                // Silent: a half-open socket that never speaks.
                _ => &[],
            };
            if !bytes.is_empty() {
                let _ = hostile.stream.write(bytes);
                hostile.kind = 3; // then fall silent
            }
        }
    }
}

/// Reads (and discards) what the venue says to a hostile connection;
/// forgets it once the venue has closed it.
fn drain_hostile(hostiles: &mut [Option<Hostile>], slot: usize) {
    let Some(Some(hostile)) = hostiles.get_mut(slot) else {
        return;
    };
    let mut chunk = [0u8; 4096];
    let gone = loop {
        match hostile.stream.read(&mut chunk) {
            Ok(0) => break true,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
            Err(_) => break true,
        }
    };
    if gone {
        hostiles[slot] = None;
    }
}
