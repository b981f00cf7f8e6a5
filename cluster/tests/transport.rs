//! The transport's hello: what a node learns from a peer that dials it,
//! and the connections it hangs up on (no hello, the wrong key, another
//! node's message).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::{Events, Poll};
use protobuf::Message as _;
use raft::prelude::{Message, MessageType};
use tonnex_cluster::{Hello, Transport};

/// The cluster key of these tests' nodes.
const KEY: &[u8] = b"transport-test-cluster-key";

/// A transport on its own poll, and what it delivered.
struct End {
    poll: Poll,
    transport: Transport,
    delivered: Vec<Message>,
    hellos: Vec<Hello>,
}

impl End {
    fn new(id: u64, peers: BTreeMap<u64, SocketAddr>, client: &str) -> End {
        // A free port: the hello it sends must name the one it listens on.
        let listen = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let poll = Poll::new().unwrap();
        let hello = Hello {
            id,
            listen,
            client: client.into(),
        };
        let transport = Transport::bind(&hello, KEY, peers, poll.registry(), 1000).unwrap();
        End {
            poll,
            transport,
            delivered: Vec::new(),
            hellos: Vec::new(),
        }
    }

    fn addr(&self) -> SocketAddr {
        self.transport.local_addr().unwrap()
    }

    /// One round: events handled, queued bytes written.
    fn turn(&mut self) {
        let mut events = Events::with_capacity(64);
        self.poll
            .poll(&mut events, Some(Duration::from_millis(2)))
            .unwrap();
        let registry = self.poll.registry();
        for event in &events {
            let delivered = &mut self.delivered;
            self.transport
                .on_event(event.token(), registry, &mut |m| delivered.push(m));
        }
        self.transport.send(Vec::new(), registry);
        self.hellos.extend(self.transport.take_reports().hellos);
    }

    fn send(&mut self, message: Message) {
        self.transport.send(vec![message], self.poll.registry());
    }
}

fn heartbeat(from: u64, to: u64) -> Message {
    let mut m = Message::default();
    m.set_msg_type(MessageType::MsgHeartbeat);
    m.from = from;
    m.to = to;
    m.term = 7;
    m
}

fn until(ends: &mut [&mut End], what: &str, done: impl Fn(&[&mut End]) -> bool) {
    let start = Instant::now();
    while !done(ends) {
        assert!(start.elapsed() < Duration::from_secs(5), "{what}");
        for end in ends.iter_mut() {
            end.turn();
        }
    }
}

#[test]
fn a_hello_round_trips_and_anything_else_is_not_one() {
    let hello = Hello {
        id: 4,
        listen: "127.0.0.1:7104".parse().unwrap(),
        client: "127.0.0.1:7004".into(),
    };
    let frame = hello.frame(KEY);
    assert_eq!(
        u32::from_le_bytes(frame[..4].try_into().unwrap()) as usize,
        frame.len() - 4
    );
    let payload = &frame[4..];
    assert_eq!(Hello::parse(payload, KEY), Some(hello.clone()));
    // Under another key, cut anywhere, with a byte more or any byte
    // changed, it is not a hello.
    assert_eq!(Hello::parse(payload, b"another-cluster-key"), None);
    for cut in 0..payload.len() {
        assert_eq!(Hello::parse(&payload[..cut], KEY), None, "cut at {cut}");
    }
    assert_eq!(Hello::parse(&[payload, &[0]].concat(), KEY), None);
    for at in 0..payload.len() {
        let mut changed = payload.to_vec();
        changed[at] ^= 1;
        assert_eq!(Hello::parse(&changed, KEY), None, "byte {at} changed");
    }
    let zero = Hello { id: 0, ..hello };
    assert_eq!(
        Hello::parse(&zero.frame(KEY)[4..], KEY),
        None,
        "node 0 is no node"
    );
    // A raft-rs message is not a hello.
    let bytes = heartbeat(2, 1).write_to_bytes().unwrap();
    assert_eq!(Hello::parse(&bytes, KEY), None);
}

#[test]
fn a_node_learns_where_an_unknown_peer_listens_from_its_hello() {
    // Node 1 knows only itself: node 2 was added after 1's --peers list.
    let mut one = End::new(1, BTreeMap::new(), "127.0.0.1:7001");
    let mut two = End::new(2, BTreeMap::new(), "127.0.0.1:7002");
    two.transport.add_peer(1, one.addr());
    // Node 1 cannot reach node 2 yet.
    one.send(heartbeat(1, 2));
    assert_eq!(one.transport.take_reports().unreachable, vec![2]);
    // Node 2 dials node 1: its hello comes first, then the message.
    two.send(heartbeat(2, 1));
    until(&mut [&mut one, &mut two], "node 1 hears node 2", |e| {
        !e[0].delivered.is_empty()
    });
    assert_eq!(one.delivered[0].from, 2);
    assert_eq!(one.hellos.len(), 1);
    assert_eq!(one.hellos[0].id, 2);
    assert_eq!(one.hellos[0].listen, two.addr());
    assert_eq!(one.hellos[0].client, "127.0.0.1:7002");
    // Node 1 now answers node 2 at the address its hello named.
    one.send(heartbeat(1, 2));
    until(&mut [&mut one, &mut two], "node 2 hears node 1", |e| {
        !e[1].delivered.is_empty()
    });
    assert_eq!(two.delivered[0].from, 1);
    assert_eq!(two.hellos[0].id, 1);
}

#[test]
fn a_hello_never_moves_a_known_address() {
    let mut one = End::new(1, BTreeMap::new(), "");
    let mut two = End::new(2, BTreeMap::new(), "");
    // Node 1 has node 2 at an address where nothing listens.
    let elsewhere: SocketAddr = "127.0.0.1:9".parse().unwrap();
    one.transport.add_peer(2, elsewhere);
    two.transport.add_peer(1, one.addr());
    two.send(heartbeat(2, 1));
    until(&mut [&mut one, &mut two], "node 1 hears node 2", |e| {
        !e[0].delivered.is_empty()
    });
    // Its answer still goes to the configured address (and is lost there).
    one.send(heartbeat(1, 2));
    for _ in 0..50 {
        one.turn();
        two.turn();
    }
    assert!(two.delivered.is_empty(), "a hello moved a known address");
}

fn hung_up(addr: SocketAddr, bytes: &[u8]) -> bool {
    let mut stranger = std::net::TcpStream::connect(addr).unwrap();
    stranger.write_all(bytes).unwrap();
    stranger
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut buf = [0u8; 16];
    matches!(stranger.read(&mut buf), Ok(0))
}

fn framed(bytes: &[u8]) -> Vec<u8> {
    [&(bytes.len() as u32).to_le_bytes()[..], bytes].concat()
}

#[test]
fn no_hello_or_a_message_from_another_node_is_hung_up_on() {
    let mut one = End::new(1, BTreeMap::new(), "");
    let addr = one.addr();
    let message = heartbeat(2, 1).write_to_bytes().unwrap();
    let hello = |id: u64, key: &[u8]| {
        Hello {
            id,
            listen: "127.0.0.1:7102".parse().unwrap(),
            client: String::new(),
        }
        .frame(key)
    };
    let cases: [(&str, Vec<u8>); 3] = [
        ("a message with no hello", framed(&message)),
        (
            "node 2's hello under another key, then its message",
            [hello(2, b"not-this-cluster-key"), framed(&message)].concat(),
        ),
        (
            "node 3's hello, then a message from node 2",
            [hello(3, KEY), framed(&message)].concat(),
        ),
    ];
    for (what, bytes) in cases {
        let strangers = std::thread::spawn(move || {
            let start = Instant::now();
            while !hung_up(addr, &bytes) {
                assert!(
                    start.elapsed() < Duration::from_secs(5),
                    "{what}: not hung up on"
                );
            }
        });
        while !strangers.is_finished() {
            one.turn();
        }
        strangers.join().unwrap();
        assert!(one.delivered.is_empty(), "{what}: delivered");
    }
    // A node's hello and its own message are delivered.
    let good = [hello(2, KEY), framed(&message)].concat();
    let mut peer = std::net::TcpStream::connect(addr).unwrap();
    peer.write_all(&good).unwrap();
    until(&mut [&mut one], "a hello and a message delivered", |e| {
        !e[0].delivered.is_empty()
    });
    assert_eq!(one.delivered[0].from, 2);
}

/// Whether the node hung up on `stream` (read gives end of file) while
/// `end` runs, within `seconds`.
fn hung_up_within(end: &mut End, stream: &mut std::net::TcpStream, seconds: f64) -> bool {
    stream.set_nonblocking(true).unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 16];
    while start.elapsed() < Duration::from_secs_f64(seconds) {
        end.turn();
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            _ => {}
        }
    }
    false
}

#[test]
fn before_its_hello_a_connection_may_not_declare_a_long_frame_or_linger() {
    let mut one = End::new(1, BTreeMap::new(), "");
    // A frame longer than any hello: hung up on at once.
    let mut long = std::net::TcpStream::connect(one.addr()).unwrap();
    long.write_all(&2000u32.to_le_bytes()).unwrap();
    long.write_all(&[7; 100]).unwrap();
    assert!(
        hung_up_within(&mut one, &mut long, 1.0),
        "a long first frame"
    );
    // Silent, or half a hello: hung up on after a while.
    let mut silent = std::net::TcpStream::connect(one.addr()).unwrap();
    let mut half = std::net::TcpStream::connect(one.addr()).unwrap();
    half.write_all(&100u32.to_le_bytes()).unwrap();
    half.write_all(b"TNXHELO1").unwrap();
    assert!(
        hung_up_within(&mut one, &mut silent, 5.0),
        "a silent connection"
    );
    assert!(hung_up_within(&mut one, &mut half, 1.0), "half a hello");
    assert!(one.delivered.is_empty() && one.hellos.is_empty());
}

#[test]
fn past_sixty_four_silent_connections_the_oldest_go_and_a_peer_still_gets_in() {
    let mut one = End::new(1, BTreeMap::new(), "");
    let mut silent = Vec::new();
    for _ in 0..100 {
        silent.push(std::net::TcpStream::connect(one.addr()).unwrap());
        one.turn();
    }
    for _ in 0..20 {
        one.turn();
    }
    // The oldest were hung up on (well before the 2 s wait), the newest
    // are still open.
    assert!(
        hung_up_within(&mut one, &mut silent[0], 0.5),
        "the oldest kept"
    );
    let newest = silent.last_mut().unwrap();
    assert!(!hung_up_within(&mut one, newest, 0.2), "the newest dropped");
    // A peer with the key still gets its message through.
    let mut two = End::new(2, BTreeMap::new(), "");
    two.transport.add_peer(1, one.addr());
    two.send(heartbeat(2, 1));
    until(&mut [&mut one, &mut two], "node 1 hears node 2", |e| {
        !e[0].delivered.is_empty()
    });
}
