//! The run: one thread, one mio event loop for every session. Sends follow
//! a fixed schedule (open loop) and latency is measured from each order's
//! scheduled time, so a venue that stalls shows in the percentiles instead
//! of slowing the sender (no coordinated omission). `rate = 0` is closed
//! loop: each session keeps `window` orders in flight.

mod failover;
mod hostile;
mod progress;
mod session;
mod timer;

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use tonnex_protocol::wire::*;

use crate::report::{Latency, Report};
use crate::sim::{Action, Market, Mix};
pub use failover::Failover;
use failover::Venues;
use hostile::{be_hostile, drain_hostile, Hostile, HOSTILE_BASE};
pub use progress::Progress;
use progress::Tick;
use session::{flush, read, Session, Tally};
use timer::{Timer, TIMER};

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Venue order-entry address, or a cluster's nodes' (`A,B,C`): the
    /// run logs in to whichever leads and follows it across failovers.
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
    /// Progress on standard error while the run lasts.
    pub progress: Progress,
    /// Corporate buyers (`--buyers`), each a session of its own.
    pub buyers: Vec<crate::buyers::BuyerPlan>,
    /// New buyer orders (and cancels) per second, per buyer; open loop
    /// even when the market makers run closed loop.
    pub buyer_rate: u64,
    /// Market-data feed subscribers to run beside the sessions (`--md`):
    /// the feed's address and key, and how many.
    pub md: Option<(String, String, usize)>,
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
    let mut venues = Venues::parse(&options.venue)?;
    let address = venues.find_leader(Duration::from_secs(10))?;
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let first_client_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_micros() as u64);
    let mut sessions = Vec::new();
    let traders = options
        .accounts
        .iter()
        .take(options.sessions)
        .map(|(account, secret)| (*account, secret.clone(), None))
        .chain(options.buyers.iter().map(|plan| {
            (
                plan.account,
                plan.secret.clone(),
                Some(Box::new(plan.clone())),
            )
        }));
    for (i, (account, secret, buyer)) in traders.enumerate() {
        let stream = connect(address, &poll, Token(i))?;
        let mut session = Session {
            account,
            secret,
            buyer,
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
            session_id: None,
            last_seq: 0,
            resuming: false,
        };
        session.login();
        sessions.push(session);
    }
    let mut tally = Tally {
        report: Report {
            venue: options.venue.clone(),
            sessions: options.sessions,
            rate: options.rate,
            seed: options.seed,
            rss_kb: (resident_kb(), 0),
            buyers: options.buyers.len(),
            ..Report::default()
        },
        ack: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds"),
        flow_ack: [0, 1]
            .map(|_| Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds")),
        fill: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds"),
        timeline: Vec::new(),
        follow_failover: venues.cluster(),
        lost_at: None,
        replayed: 0,
        new_spaces: 0,
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

    let feed = match &options.md {
        Some((addr, key, count)) => Some(crate::md_client::Watchers::start(
            addr,
            key,
            &options.instruments,
            *count,
        )?),
        None => None,
    };
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
    let makers = options.sessions;
    let buyer_count = sessions.len() - makers;
    let buyer_interval_ns = 1_000_000_000 / (options.buyer_rate.max(1) * buyer_count.max(1) as u64);
    let mut buyer_scheduled = 0u64;
    let mut buyer_rng = crate::sim::Rng::new(options.seed ^ 0xB0B);
    let mut last_progress = 0u64;
    let mut hostile_turn = 0usize;
    loop {
        let now_ns = start.elapsed().as_nanos() as u64;
        if now_ns >= end_ns {
            break;
        }
        // Generate what is due.
        if buyer_count > 0 {
            let mut budget = 1024;
            while buyer_scheduled * buyer_interval_ns <= now_ns && budget > 0 {
                let index = makers + (buyer_scheduled % buyer_count as u64) as usize;
                let due = buyer_scheduled * buyer_interval_ns;
                generate_buyer(
                    &mut sessions[index],
                    &market,
                    &mut buyer_rng,
                    due,
                    &mut tally,
                );
                buyer_scheduled += 1;
                budget -= 1;
            }
        }
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
            for session in &mut sessions[..makers] {
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
        let timeout = if options.rate > 0 || buyer_count > 0 {
            let maker_due = if options.rate > 0 { next_due } else { u64::MAX };
            let buyer_due = if buyer_count > 0 {
                buyer_scheduled * buyer_interval_ns
            } else {
                u64::MAX
            };
            let due = maker_due.min(buyer_due).min(end_ns);
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
        if venues.cluster() && sessions.iter().any(|s| s.closed) {
            fail_over(&mut venues, &mut sessions, &mut poll, &mut tally, start)?;
        }
        if options.progress != Progress::Off && now_ns - last_progress >= 1_000_000_000 {
            last_progress = now_ns;
            let answered = tally.report.acked + tally.report.rejected;
            options.progress.show(&Tick {
                second: now_ns / 1_000_000_000,
                answered,
                per_s: answered * 1_000_000_000 / now_ns.max(1),
                fills: tally.report.fills,
                p99_us: tally.ack.value_at_percentile(99.0) as f64 / 1000.0,
                errors: tally.report.errors,
            });
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
    if let Some(feed) = feed {
        tally.report.md = Some(feed.stop(sending_s));
    }

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
    options.progress.finish();

    let mut report = tally.report;
    report.duration_s = sending_s;
    report.ack = Latency::of(&tally.ack);
    report.fill = Latency::of(&tally.fill);
    for (flow, histogram) in report.flows.iter_mut().zip(&tally.flow_ack) {
        flow.ack = Latency::of(histogram);
    }
    report.throughput_per_s =
        ((report.acked + report.rejected) as f64 / sending_s.max(1e-9)) as u64;
    let whole = sending_s.ceil() as usize;
    tally.timeline.resize(whole.max(tally.timeline.len()), 0);
    tally.timeline.truncate(whole.max(1));
    report.timeline = tally.timeline;
    report.rss_kb.1 = resident_kb();
    Ok(report)
}

/// A non-blocking connection to `address`, registered as `token`.
fn connect(address: SocketAddr, poll: &Poll, token: Token) -> Result<TcpStream, String> {
    let std_stream = std::net::TcpStream::connect(address)
        .map_err(|e| format!("cannot connect to {address}: {e}"))?;
    std_stream.set_nodelay(true).map_err(|e| e.to_string())?;
    std_stream
        .set_nonblocking(true)
        .map_err(|e| e.to_string())?;
    let mut stream = TcpStream::from_std(std_stream);
    poll.registry()
        .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
        .map_err(|e| e.to_string())?;
    Ok(stream)
}

/// The leader is gone: finds the new one and logs every lost session in
/// there from the last message it saw, waiting until all are back and
/// replayed. Orders in flight the replay does not answer were never
/// committed: given up.
fn fail_over(
    venues: &mut Venues,
    sessions: &mut [Session],
    poll: &mut Poll,
    tally: &mut Tally,
    start: Instant,
) -> Result<(), String> {
    let lost_at = Instant::now();
    let address = venues.find_leader(Duration::from_secs(20))?;
    let errors_before = tally.report.errors;
    tally.replayed = 0;
    tally.new_spaces = 0;
    for (i, session) in sessions.iter_mut().enumerate() {
        if !session.closed {
            // Its node is not the leader any more either: start over.
            let _ = poll.registry().deregister(&mut session.stream);
        }
        let stream = connect(address, poll, Token(i))?;
        session.reconnect(stream);
    }
    let mut events = Events::with_capacity(256);
    let deadline = Instant::now() + Duration::from_secs(10);
    while sessions.iter().any(|s| s.replaying && !s.closed) {
        if Instant::now() > deadline {
            return Err(format!(
                "sessions not logged in again on {address} within 10 s"
            ));
        }
        flush(sessions, tally, start);
        poll.poll(&mut events, Some(Duration::from_millis(10)))
            .map_err(|e| e.to_string())?;
        let clock = Instant::now();
        for event in &events {
            if let Some(session) = sessions.get_mut(event.token().0) {
                read(session, tally, start, clock, true)?;
            }
        }
    }
    if let Some(s) = sessions.iter().find(|s| s.closed) {
        return Err(format!(
            "account {}: login on the new leader {address} failed: {:?}",
            s.account, tally.report.error_notes
        ));
    }
    let mut unanswered = 0u64;
    for session in sessions.iter_mut() {
        unanswered += session.pending.len() as u64;
        session.pending.clear();
    }
    tally.report.failovers.push(Failover {
        at_s: lost_at.duration_since(start).as_secs_f64(),
        outage_ms: lost_at.elapsed().as_millis() as u64,
        first_ack_ms: 0,
        unanswered,
        replayed: tally.replayed,
        resumed: tally.new_spaces == 0 && tally.report.errors == errors_before,
        leader: address.to_string(),
    });
    tally.lost_at = Some(lost_at);
    Ok(())
}

/// Queues a buyer session's next action, scheduled at `due_ns`.
fn generate_buyer(
    session: &mut Session,
    market: &Market,
    rng: &mut crate::sim::Rng,
    due_ns: u64,
    tally: &mut Tally,
) {
    let Some(plan) = session.buyer.as_deref() else {
        return;
    };
    if session.closed {
        return;
    }
    let id = session.next_client_id;
    match crate::buyers::next(plan, rng, session.live.len(), |i| market.mid(i), id) {
        crate::buyers::BuyerAction::New(order) => {
            session.next_client_id += 1;
            session.pending.insert(id, (due_ns, false));
            session.queue(&ClientMessage::NewOrder(order));
            tally.report.sent += 1;
            tally.report.flows[1].sent += 1;
        }
        crate::buyers::BuyerAction::Cancel(index) => {
            let order = session.live[index];
            session.remove_live(order.order_id);
            session.queue(&ClientMessage::Cancel {
                order_id: order.order_id,
            });
            tally.report.cancels_and_replaces += 1;
        }
    }
    tally.report.messages_sent += 1;
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
            tally.report.flows[0].sent += 1;
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
