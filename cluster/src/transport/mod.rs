//! Raft messages between nodes over TCP, driven by the caller's mio loop.
//!
//! Each node dials every peer once and only writes on that connection;
//! what peers dial in is only read. A frame is a length (u32 LE) and a
//! raft-rs message in its protobuf encoding (at most 64 MiB: a snapshot
//! travels in one message). The first frame on every connection is the
//! dialling node's [`Hello`]: its id, where its transport listens and
//! where its clients reach it, signed with the cluster key (HMAC-SHA-256).
//! A connection whose first frame is not a hello signed with this node's
//! key, or that carries a message from another node than its hello named,
//! is hung up on: only a holder of the key can speak Raft to a node. (The
//! key authenticates; it does not encrypt, and a hello recorded off the
//! wire can be sent again: across networks you do not trust, run the
//! transport in a tunnel.) A hello from a node this one has no address for
//! teaches it the address (kept for as long as the process runs): a node
//! restarted with a `--peers` list older than a membership change learns
//! the added node as soon as that node dials it, as a leader does with
//! its first heartbeat. A hello never moves a known address. Before its
//! hello a connection may declare no frame over 1 KiB and stay open no
//! more than 2 s, and past 64 such connections the oldest is hung up on:
//! whoever lacks the key holds little of a node's memory and descriptors.
//! A lost connection is dialled again on the next send; its unsent
//! messages are dropped (Raft resends) and the peer reported unreachable,
//! with any snapshot that was on it reported lost.
//! What a slow peer has not taken is bounded (`MAX_QUEUED`): past it,
//! messages to that peer are dropped and the peer reported unreachable.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use protobuf::Message as _;
use raft::prelude::{Message, MessageType};

mod hello;

use self::hello::take_hello;
pub use self::hello::Hello;

/// The largest frame accepted.
const MAX_FRAME: usize = 64 << 20;
/// The most bytes queued for one peer.
const MAX_QUEUED: usize = 128 << 20;
/// How long a connection may stay open without its hello.
const HELLO_WAIT: Duration = Duration::from_secs(2);
/// Connections open without their hello at once; past it the oldest goes.
const MAX_PENDING: usize = 64;

/// A connection this node dialled, to send on.
struct Link {
    stream: TcpStream,
    token: Token,
    out: Vec<u8>,
    written: usize,
    /// Snapshots queued on it (to report lost if it fails).
    snapshots: usize,
}

/// A connection a peer dialled, to read from.
struct Inbound {
    stream: TcpStream,
    buf: Vec<u8>,
    /// The node its hello named (none before its first frame).
    peer: Option<u64>,
    /// When it was accepted (it has `HELLO_WAIT` to say its hello).
    opened: Instant,
}

/// What the transport asks the node to report to Raft.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reports {
    /// Peers a message could not reach.
    pub unreachable: Vec<u64>,
    /// Snapshots that left whole (`true`) or were lost (`false`), by peer.
    pub snapshots: Vec<(u64, bool)>,
    /// Every hello read (peers that dialled this node).
    pub hellos: Vec<Hello>,
}

/// The node's connections to its peers.
pub struct Transport {
    listener: TcpListener,
    /// This node's id, the cluster key, and its hello as a frame.
    id: u64,
    key: Vec<u8>,
    hello: Vec<u8>,
    peers: BTreeMap<u64, SocketAddr>,
    links: BTreeMap<u64, Link>,
    inbound: BTreeMap<usize, Inbound>,
    /// Tokens from `token_base` up: the listener, then connections.
    token_base: usize,
    next_token: usize,
    reports: Reports,
}

impl Transport {
    /// Listens on `hello.listen` and registers with `registry`, using
    /// tokens from `token_base` up (the caller keeps that range for this);
    /// `key` is the cluster's, which every peer's hello must prove.
    pub fn bind(
        hello: &Hello,
        key: &[u8],
        peers: BTreeMap<u64, SocketAddr>,
        registry: &Registry,
        token_base: usize,
    ) -> std::io::Result<Transport> {
        let mut listener = TcpListener::bind(hello.listen)?;
        registry.register(&mut listener, Token(token_base), Interest::READABLE)?;
        Ok(Transport {
            listener,
            id: hello.id,
            key: key.to_vec(),
            hello: hello.frame(key),
            peers,
            links: BTreeMap::new(),
            inbound: BTreeMap::new(),
            token_base,
            next_token: token_base + 1,
            reports: Reports::default(),
        })
    }

    /// Learns (or changes) where peer `id` listens; a link to its old
    /// address is dropped.
    pub fn add_peer(&mut self, id: u64, address: SocketAddr) {
        if self.peers.insert(id, address) != Some(address) {
            self.links.remove(&id);
        }
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Whether `token` is one of the transport's.
    #[must_use]
    pub fn owns(&self, token: Token) -> bool {
        token.0 == self.token_base
            || self.inbound.contains_key(&token.0)
            || self.links.values().any(|l| l.token == token)
    }

    /// Queues `messages` to their peers and writes what the sockets take;
    /// hangs up on connections that have not said their hello in time.
    pub fn send(&mut self, messages: Vec<Message>, registry: &Registry) {
        self.expire_pending(registry);
        for message in messages {
            let to = message.to;
            let snapshot = message.get_msg_type() == MessageType::MsgSnapshot;
            let Ok(bytes) = message.write_to_bytes() else {
                continue;
            };
            if !self.links.contains_key(&to) && !self.dial(to, registry) {
                self.lost(to, snapshot);
                continue;
            }
            let link = self.links.get_mut(&to).expect("dialled");
            if link.out.len() - link.written + bytes.len() > MAX_QUEUED {
                self.lost(to, snapshot);
                continue;
            }
            link.out
                .extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            link.out.extend_from_slice(&bytes);
            link.snapshots += usize::from(snapshot);
        }
        let ids: Vec<u64> = self.links.keys().copied().collect();
        for id in ids {
            self.flush(id, registry);
        }
    }

    /// Hangs up on connections still without their hello after
    /// `HELLO_WAIT`, and on the oldest of them past `MAX_PENDING`.
    fn expire_pending(&mut self, registry: &Registry) {
        if self.inbound.values().all(|c| c.peer.is_some()) {
            return;
        }
        let mut pending: Vec<(Instant, usize)> = self
            .inbound
            .iter()
            .filter(|(_, c)| c.peer.is_none())
            .map(|(&token, c)| (c.opened, token))
            .collect();
        pending.sort_unstable();
        let now = Instant::now();
        let excess = pending.len().saturating_sub(MAX_PENDING);
        for (i, &(opened, token)) in pending.iter().enumerate() {
            if i < excess || now.duration_since(opened) >= HELLO_WAIT {
                if let Some(mut gone) = self.inbound.remove(&token) {
                    let _ = registry.deregister(&mut gone.stream);
                }
            }
        }
    }

    fn lost(&mut self, to: u64, snapshot: bool) {
        if !self.reports.unreachable.contains(&to) {
            self.reports.unreachable.push(to);
        }
        if snapshot {
            self.reports.snapshots.push((to, false));
        }
    }

    fn dial(&mut self, to: u64, registry: &Registry) -> bool {
        let Some(&addr) = self.peers.get(&to) else {
            return false;
        };
        let Ok(mut stream) = TcpStream::connect(addr) else {
            return false;
        };
        let token = Token(self.next_token);
        self.next_token += 1;
        if registry
            .register(&mut stream, token, Interest::WRITABLE)
            .is_err()
        {
            return false;
        }
        let _ = stream.set_nodelay(true);
        self.links.insert(
            to,
            Link {
                stream,
                token,
                out: self.hello.clone(),
                written: 0,
                snapshots: 0,
            },
        );
        true
    }

    /// Writes what `id`'s socket takes; a failed link is dropped.
    fn flush(&mut self, id: u64, registry: &Registry) {
        let Some(link) = self.links.get_mut(&id) else {
            return;
        };
        while link.written < link.out.len() {
            match link.stream.write(&link.out[link.written..]) {
                Ok(0) => return self.drop_link(id, registry),
                Ok(n) => link.written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // Not connected yet, refused, reset: dial again next send.
                Err(_) => return self.drop_link(id, registry),
            }
        }
        // Everything went: snapshots on it left whole.
        for _ in 0..link.snapshots {
            self.reports.snapshots.push((id, true));
        }
        link.snapshots = 0;
        link.out.clear();
        link.written = 0;
    }

    fn drop_link(&mut self, id: u64, registry: &Registry) {
        if let Some(mut link) = self.links.remove(&id) {
            let _ = registry.deregister(&mut link.stream);
            for _ in 0..link.snapshots {
                self.reports.snapshots.push((id, false));
            }
            if !self.reports.unreachable.contains(&id) {
                self.reports.unreachable.push(id);
            }
        }
    }

    /// Handles a readiness event for one of its tokens, handing every
    /// whole message read to `deliver`.
    pub fn on_event(
        &mut self,
        token: Token,
        registry: &Registry,
        deliver: &mut dyn FnMut(Message),
    ) {
        if token.0 == self.token_base {
            while let Ok((mut stream, _)) = self.listener.accept() {
                let token = self.next_token;
                self.next_token += 1;
                if registry
                    .register(&mut stream, Token(token), Interest::READABLE)
                    .is_ok()
                {
                    self.inbound.insert(
                        token,
                        Inbound {
                            stream,
                            buf: Vec::new(),
                            peer: None,
                            opened: Instant::now(),
                        },
                    );
                }
            }
            self.expire_pending(registry);
            return;
        }
        if let Some(id) = self
            .links
            .iter()
            .find(|(_, l)| l.token == token)
            .map(|(&id, _)| id)
        {
            return self.flush(id, registry);
        }
        let Some(inbound) = self.inbound.get_mut(&token.0) else {
            return;
        };
        let mut chunk = [0u8; 64 << 10];
        let mut closed = false;
        loop {
            match inbound.stream.read(&mut chunk) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => {
                    inbound.buf.extend_from_slice(&chunk[..n]);
                    // The hello first: nothing more is read from a
                    // connection that has not proved the key.
                    if inbound.peer.is_none() {
                        match take_hello(&mut inbound.buf, &self.key) {
                            Err(()) => {
                                closed = true;
                                break;
                            }
                            Ok(None) => {}
                            Ok(Some(hello)) => {
                                inbound.peer = Some(hello.id);
                                if hello.id != self.id && !self.peers.contains_key(&hello.id) {
                                    self.peers.insert(hello.id, hello.listen);
                                }
                                self.reports.hellos.push(hello);
                            }
                        }
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        let mut at = 0;
        while let Some(peer) = inbound.peer {
            if inbound.buf.len() < at + 4 {
                break;
            }
            let len = u32::from_le_bytes(inbound.buf[at..at + 4].try_into().expect("4")) as usize;
            if len > MAX_FRAME {
                closed = true;
                break;
            }
            if inbound.buf.len() < at + 4 + len {
                break;
            }
            let payload = &inbound.buf[at + 4..at + 4 + len];
            at += 4 + len;
            match Message::parse_from_bytes(payload) {
                // A node speaks for itself only.
                Ok(message) if message.from == peer => deliver(message),
                _ => {
                    closed = true;
                    break;
                }
            }
        }
        inbound.buf.drain(..at);
        if closed {
            if let Some(mut gone) = self.inbound.remove(&token.0) {
                let _ = registry.deregister(&mut gone.stream);
            }
        }
    }

    /// What to report to Raft since the last call.
    pub fn take_reports(&mut self) -> Reports {
        std::mem::take(&mut self.reports)
    }
}
