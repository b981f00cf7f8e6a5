//! The fill stream is not open: only configured subscribers read it, with
//! their key; a member's drop copy sees only its own accounts.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use tonnex_protocol::frame;
use tonnex_protocol::wire::*;

use crate::harness::{scratch, Venue, QUICK};

const NBR: u32 = 0;

/// Subscribes as `name`/`key` from record 1; returns every record until the
/// stream goes quiet (or closes).
fn subscribe(addr: &str, name: &str, key: &str) -> (Vec<StreamRecord>, bool) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .write_all(&frame::encode(&StreamSubscribe {
            from_seq: 1,
            name: name.into(),
            key: key.into(),
        }))
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let (mut buffer, mut records) = (Vec::new(), Vec::new());
    let mut chunk = [0u8; 65536];
    let closed = loop {
        match stream.read(&mut chunk) {
            Ok(0) => break true,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            Err(_) => break false,
        }
        while let Ok(Some((payload, used))) = frame::split(&buffer, 1 << 20) {
            records.push(frame::decode::<StreamRecord>(payload).unwrap());
            buffer.drain(..used);
        }
    };
    (records, closed)
}

#[test]
fn a_subscriber_without_its_key_is_refused_and_a_drop_copy_sees_only_its_accounts() {
    let dir = scratch("fill-keys", QUICK);
    let config = std::fs::read_to_string(dir.join("venue.toml")).unwrap();
    std::fs::write(
        dir.join("venue.toml"),
        format!(
            "{config}\n[[fill_subscriber]]\nname = \"member-3001\"\nkey = \"member-3001-key\"\naccounts = [3001]\n"
        ),
    )
    .unwrap();
    let venue = Venue::start(&dir);
    // Trades: 3001 with 3002, and 3003 with 3004.
    let mut makers: Vec<_> = [3001, 3002, 3003, 3004]
        .iter()
        .map(|&a| venue.login(a))
        .collect();
    makers[0].rest(NBR, SIDE_SELL, 2500, 5);
    let id = makers[1].limit(NBR, SIDE_BUY, 2500, 5);
    makers[1].accepted(id);
    makers[2].rest(NBR, SIDE_SELL, 2700, 7);
    let id = makers[3].limit(NBR, SIDE_BUY, 2700, 7);
    makers[3].accepted(id);
    std::thread::sleep(Duration::from_millis(200));

    for (name, key) in [
        ("settlement", ""),
        ("settlement", "demo-settlement-kez"),
        ("mallory", "demo-settlement-key"),
    ] {
        let (records, closed) = subscribe(&venue.fill_stream, name, key);
        assert_eq!(records.len(), 1, "{name}/{key}: {records:?}");
        assert!(matches!(records[0].event, StreamEvent::Refused { .. }));
        assert_eq!(records[0].seq, 0);
        assert!(closed, "the venue closes a refused subscription");
    }

    let (all, _) = subscribe(&venue.fill_stream, "settlement", "demo-settlement-key");
    let (mine, _) = subscribe(&venue.fill_stream, "member-3001", "member-3001-key");
    let trades = |records: &[StreamRecord]| {
        records
            .iter()
            .filter_map(|r| match r.event {
                StreamEvent::Trade { buyer, seller, .. } => Some((buyer, seller)),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(trades(&all), [(3002, 3001), (3004, 3003)]);
    assert_eq!(trades(&mine), [(3002, 3001)]);
    // Everything the drop copy got concerns 3001 (or is reference data),
    // and it got every such record.
    assert!(mine.iter().all(|r| r.event.concerns(&[3001])));
    let expected: Vec<u64> = all
        .iter()
        .filter(|r| r.event.concerns(&[3001]))
        .map(|r| r.seq)
        .collect();
    assert_eq!(mine.iter().map(|r| r.seq).collect::<Vec<_>>(), expected);
    assert!(mine.len() < all.len());
    assert!(mine
        .iter()
        .any(|r| matches!(r.event, StreamEvent::CashDeposit { account: 3001, .. })));
}
