//! The market-data feed (docs/protocol.md, "Market-data feed") during a
//! load test: a subscriber from the start, one that joins late and one
//! that loses an update all hold, at every sequence number, the book a
//! fresh snapshot shows at that number, and at the end the book the
//! journal's own recovery rebuilds; a subscriber that never reads is cut
//! off while the others keep up; a wrong key or instrument is refused.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tonnex_loadtest::md_client::{Book, Subscriber};
use tonnex_protocol::md::{MdMessage, MdRequest};
use tonnex_protocol::wire::*;
use tonnex_protocol::Side;

use crate::harness::{scratch, Venue, QUICK};

const KEY: &str = "demo-md-key";
const NBR: u32 = 0;

fn book_hash(book: &Book) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    book.levels().hash(&mut hasher);
    hasher.finish()
}

/// Reads `subscriber` until `stop`, applying everything; returns the hash
/// of instrument 0's book after every sequence number it applied, and the
/// subscriber. `drop_nth`: the nth level update the book would apply is
/// dropped unseen (a gap).
fn follow(
    mut subscriber: Subscriber,
    stop: Arc<AtomicBool>,
    drop_nth: Option<u64>,
) -> (HashMap<u64, u64>, Subscriber) {
    let mut hashes = HashMap::new();
    let mut levels = 0u64;
    let mut quiet = 0;
    loop {
        let message = subscriber.next(Duration::from_millis(50)).unwrap();
        let Some(message) = message else {
            if stop.load(Ordering::Acquire) {
                quiet += 1;
                if quiet > 6 {
                    break;
                }
            }
            continue;
        };
        quiet = 0;
        if let MdMessage::Level {
            instrument: NBR,
            md_seq,
            ..
        } = message
        {
            // Only an update the book would apply counts: one that comes
            // before the subscription's snapshot is dropped anyway, unseen
            // as a gap (a slow machine's subscriber may read 200 of those).
            let applies = subscriber
                .books
                .get(&NBR)
                .is_some_and(|b| b.synced && !b.recovering && md_seq > b.md_seq);
            if applies {
                levels += 1;
                if Some(levels) == drop_nth {
                    continue;
                }
            }
        }
        subscriber.apply(&message).unwrap();
        if let Some(book) = subscriber.books.get(&NBR) {
            if book.synced && !book.recovering {
                hashes.insert(book.md_seq, book_hash(book));
            }
        }
    }
    (hashes, subscriber)
}

/// A fresh subscriber's first snapshot of instrument 0: (md_seq, hash).
fn snapshot_now(addr: &str) -> (u64, u64, Book) {
    let mut fresh = Subscriber::connect(addr, KEY, vec![NBR]).unwrap();
    loop {
        let message = fresh
            .next(Duration::from_secs(5))
            .unwrap()
            .expect("a snapshot");
        if let MdMessage::Snapshot { .. } = message {
            fresh.apply(&message).unwrap();
            let book = fresh.books[&NBR].clone();
            return (book.md_seq, book_hash(&book), book);
        }
    }
}

#[test]
fn subscribers_early_late_and_with_a_gap_hold_the_venues_book_and_a_slow_one_is_cut_off() {
    let dir = scratch("market-data", QUICK);
    let venue_file = std::fs::read_to_string(dir.join("venue.toml"))
        .unwrap()
        .replace(
            "key = \"demo-md-key\"",
            "key = \"demo-md-key\"\nmax_queued_kb = 512",
        );
    std::fs::write(dir.join("venue.toml"), venue_file).unwrap();
    let mut venue = Venue::start(&dir);
    let md = venue.market_data.clone();
    // Resting asks that outlive the load test (its sessions cancel theirs
    // when they log out).
    let mut seller = venue.login(2001);
    for (price, qty) in [(3000, 5), (3100, 7), (3250, 2)] {
        seller.rest(NBR, SIDE_SELL, price, qty);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let early = Subscriber::connect(&md, KEY, vec![NBR]).unwrap();
    let early = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || follow(early, stop, None))
    };
    // A subscriber that never reads.
    let mut slow = Subscriber::connect(&md, KEY, vec![]).unwrap();
    let load = {
        let options = crate::harness::load_options(&venue, 20_000, 3.0, 11);
        std::thread::spawn(move || tonnex_loadtest::run::run(&options).unwrap())
    };
    std::thread::sleep(Duration::from_millis(800));
    let late = Subscriber::connect(&md, KEY, vec![NBR]).unwrap();
    let late = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || follow(late, stop, None))
    };
    let gappy = Subscriber::connect(&md, KEY, vec![NBR, 1]).unwrap();
    let gappy = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || follow(gappy, stop, Some(200)))
    };
    // Fresh snapshots during the run: what the venue says the book is at
    // their sequence numbers.
    let mut checkpoints = Vec::new();
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(500));
        let (seq, hash, _) = snapshot_now(&md);
        checkpoints.push((seq, hash));
    }
    let report = load.join().unwrap();
    assert_eq!(report.errors, 0, "{:?}", report.error_notes);
    std::thread::sleep(Duration::from_millis(300));
    let (end_seq, end_hash, end_book) = snapshot_now(&md);
    stop.store(true, Ordering::Release);
    let (early_hashes, early) = early.join().unwrap();
    let (late_hashes, late) = late.join().unwrap();
    let (gappy_hashes, gappy) = gappy.join().unwrap();

    assert!(
        checkpoints.iter().all(|&(seq, _)| seq > 100),
        "{checkpoints:?}"
    );
    for &(seq, hash) in checkpoints.iter().chain([&(end_seq, end_hash)]) {
        assert_eq!(
            early_hashes.get(&seq),
            Some(&hash),
            "early subscriber at md_seq {seq}"
        );
    }
    for &(seq, hash) in &checkpoints[1..] {
        assert_eq!(
            late_hashes.get(&seq),
            Some(&hash),
            "late subscriber at md_seq {seq}"
        );
    }
    assert_eq!(late_hashes.get(&end_seq), Some(&end_hash));
    // The gap was seen, recovered by a snapshot, and the book is right after.
    assert_eq!(gappy.counts.gaps, 1);
    assert!(gappy.counts.snapshots >= 3, "{:?}", gappy.counts);
    assert_eq!(gappy_hashes.get(&end_seq), Some(&end_hash));
    assert_eq!(early.counts.gaps + late.counts.gaps, 0);
    assert_eq!(early.books[&NBR], late.books[&NBR]);
    assert!(!end_book.asks.is_empty());

    // The slow subscriber was cut off: the connection ends (with the
    // venue's reason if it could still be written).
    let mut ended = false;
    let mut idle = 0;
    while idle < 20 {
        match slow.next(Duration::from_millis(100)) {
            Ok(Some(message)) => {
                idle = 0;
                slow.apply(&message).unwrap();
            }
            Ok(None) => idle += 1,
            Err(_) => {
                ended = true;
                break;
            }
        }
    }
    assert!(
        ended,
        "the slow subscriber was not cut off: {:?}, the early one read {:?}",
        slow.counts, early.counts
    );
    if let Some(reason) = &slow.disconnected {
        assert!(reason.starts_with("slow consumer"), "{reason}");
    }

    // The journal's own recovery rebuilds the same book.
    drop(seller);
    venue.sigterm();
    let state = crate::harness::recovered_state(&dir);
    let book = &state.books()[NBR as usize];
    let side = |side: Side| {
        let ladder = book.side(side);
        let mut levels = Vec::new();
        let mut price = ladder.best();
        while let Some(p) = price {
            levels.push((p, ladder.level(p).qty));
            price = ladder.next_worse(p);
        }
        levels
    };
    assert_eq!(
        early.books[&NBR].levels(),
        (side(Side::Buy), side(Side::Sell))
    );
}

#[test]
fn a_wrong_key_an_unknown_instrument_and_a_snapshot_not_subscribed_are_refused() {
    let dir = scratch("market-data-refusals", QUICK);
    let venue = Venue::start(&dir);
    let refused = |key: &str, instruments: Vec<u32>, then: Option<MdRequest>| {
        let mut subscriber = Subscriber::connect(&venue.market_data, key, instruments).unwrap();
        if let Some(request) = then {
            subscriber.request(&request).unwrap();
        }
        loop {
            match subscriber.next(Duration::from_secs(5)) {
                Ok(Some(MdMessage::Disconnect { reason })) => return reason,
                Ok(Some(_)) => {}
                other => panic!("{other:?}"),
            }
        }
    };
    assert_eq!(
        refused("not-the-key", vec![], None),
        "wrong market-data key"
    );
    assert_eq!(refused(KEY, vec![0, 9], None), "unknown instrument 9");
    assert_eq!(
        refused(KEY, vec![0], Some(MdRequest::Snapshot { instrument: 1 })),
        "snapshot of instrument 1, which this connection has not subscribed to"
    );
    // An order-entry session is not needed, and a good subscriber gets
    // the instruments and a snapshot of each.
    let mut good = Subscriber::connect(&venue.market_data, KEY, vec![]).unwrap();
    let mut snapshots = 0;
    let mut instruments = 0;
    while snapshots < 3 {
        match good.next(Duration::from_secs(5)).unwrap().unwrap() {
            MdMessage::Instruments { instruments: list } => instruments = list.len(),
            MdMessage::Snapshot { .. } => snapshots += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(instruments, 3);
}

#[test]
fn the_load_test_runs_feed_subscribers_beside_the_sessions() {
    let dir = scratch("market-data-load", QUICK);
    let venue = Venue::start(&dir);
    let mut options = crate::harness::load_options(&venue, 5_000, 1.5, 3);
    options.md = Some((venue.market_data.clone(), KEY.to_string(), 3));
    let report = tonnex_loadtest::run::run(&options).unwrap();
    assert_eq!(report.errors, 0, "{:?}", report.error_notes);
    let md = report.md.clone().unwrap();
    assert_eq!((md.subscribers, md.gaps, md.cut), (3, 0, 0), "{md:?}");
    assert!(
        md.messages > 3 * 1000 && md.per_subscriber_per_s > 500,
        "{md:?}"
    );
    assert!(report
        .md_line()
        .unwrap()
        .starts_with("md subscribers=3 messages="));
    assert!(report.json().contains("\"md\": {\"subscribers\": 3"));
}

#[test]
fn snapshot_requests_on_the_way_are_not_multiplied() {
    use std::io::Write;
    let dir = scratch("market-data-spam", QUICK);
    let venue = Venue::start(&dir);
    // A subscription and fifty snapshot requests in one write: a
    // full-depth snapshot is engine work, asked once while one is on its way.
    let mut bytes = tonnex_protocol::frame::encode(&MdRequest::Subscribe {
        key: KEY.into(),
        instruments: vec![NBR],
    });
    for _ in 0..50 {
        bytes.extend(tonnex_protocol::frame::encode(&MdRequest::Snapshot {
            instrument: NBR,
        }));
    }
    let mut stream = std::net::TcpStream::connect(&venue.market_data).unwrap();
    stream.write_all(&bytes).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n) = std::io::Read::read(&mut stream, &mut chunk) {
        if n == 0 {
            break;
        }
        received.extend_from_slice(&chunk[..n]);
    }
    let mut snapshots = 0;
    let mut at = 0;
    while let Ok(Some((payload, used))) = tonnex_protocol::frame::split(&received[at..], 1 << 20) {
        if let MdMessage::Snapshot { .. } =
            tonnex_protocol::frame::decode::<MdMessage>(payload).unwrap()
        {
            snapshots += 1;
        }
        at += used;
    }
    assert!(
        (1..=2).contains(&snapshots),
        "{snapshots} snapshots for 51 requests"
    );
    // And the engine was asked as few times (the venue's own count).
    let mut http = std::net::TcpStream::connect(&venue.metrics).unwrap();
    http.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut http, &mut text).unwrap();
    let asked: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("tonnex_md_snapshots_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=2).contains(&asked),
        "{asked} snapshots asked of the engine"
    );
}

/// Reads `subscriber` until `pick` finds a message (5 s at most).
fn wait_for<T>(subscriber: &mut Subscriber, mut pick: impl FnMut(&MdMessage) -> Option<T>) -> T {
    loop {
        let message = subscriber
            .next(Duration::from_secs(5))
            .unwrap()
            .expect("a market-data message within 5 s");
        subscriber.apply(&message).unwrap();
        if let Some(found) = pick(&message) {
            return found;
        }
    }
}

#[test]
fn a_mass_cancels_snapshot_takes_the_next_number() {
    // Before, it carried the last update's number: a subscriber that held
    // the book at that number and one that took the snapshot held two
    // different books under one number.
    let dir = scratch("market-data-mass", QUICK);
    let venue = Venue::start(&dir);
    let mut feed = Subscriber::connect(&venue.market_data, KEY, vec![NBR]).unwrap();
    wait_for(&mut feed, |m| {
        matches!(m, MdMessage::Snapshot { .. }).then_some(())
    });
    let mut seller = venue.login(2001);
    seller.rest(NBR, SIDE_SELL, 3000, 5);
    let level = wait_for(&mut feed, |m| match *m {
        MdMessage::Level { md_seq, qty: 5, .. } => Some(md_seq),
        _ => None,
    });
    seller.send(&ClientMessage::MassCancel { instrument: None });
    let (md_seq, asks) = wait_for(&mut feed, |m| match m {
        MdMessage::Snapshot { md_seq, asks, .. } => Some((*md_seq, asks.len())),
        _ => None,
    });
    assert_eq!((md_seq, asks), (level + 1, 0));
    assert_eq!(feed.books[&NBR].md_seq, level + 1);
    // The next update follows the snapshot: no gap, no recovery.
    seller.rest(NBR, SIDE_SELL, 3100, 2);
    let next = wait_for(&mut feed, |m| match *m {
        MdMessage::Level { md_seq, qty: 2, .. } => Some(md_seq),
        _ => None,
    });
    assert_eq!(next, level + 2);
    assert_eq!(feed.counts.gaps, 0);
    // A snapshot one subscriber asks for changes nothing: the same number.
    let (asked, _, _) = snapshot_now(&venue.market_data);
    assert_eq!(asked, level + 2);
}
