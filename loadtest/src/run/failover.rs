//! A cluster of venue nodes (`--venue A,B,C`): find the node that leads,
//! and after a failover log every session in again on the new leader,
//! resuming from the last message it saw (the new leader replays the rest
//! of each stream, same session id, same numbers).
//!
//! A node is asked with a `Heartbeat` as the first message of a connection:
//! a follower answers `NotLeader` (naming the leader when it knows it), the
//! leader `SessionError` (the first message must be `Login`). Neither is a
//! login, so probing logs nothing against any account.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use tonnex_protocol::frame;
use tonnex_protocol::wire::{ClientMessage, Sequenced, VenueMessage};

/// What a probe learnt of one node.
enum Answer {
    /// It leads.
    Leader,
    /// It follows; the leader's order-entry address if it named one.
    Follower(Option<SocketAddr>),
    /// No answer (down, starting, or mid-election): what happened.
    Silent(&'static str),
}

impl Answer {
    /// How a give-up message names it.
    fn describe(&self) -> String {
        match self {
            Answer::Leader => "leads".into(),
            Answer::Follower(Some(leader)) => format!("follows {leader}"),
            Answer::Follower(None) => "follows, leader unknown".into(),
            Answer::Silent(why) => (*why).into(),
        }
    }
}

/// One failover as the load test saw it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Failover {
    /// Seconds into the run when a session was lost.
    pub at_s: f64,
    /// From then until every session was logged in again, ms.
    pub outage_ms: u64,
    /// From then until the new leader's first acknowledgement, ms.
    pub first_ack_ms: u64,
    /// Orders in flight when the sessions were lost that the new leader's
    /// replay did not answer either (never committed: never taken).
    pub unanswered: u64,
    /// Sequenced messages the new leader replayed (sent by the old one
    /// after, or never seen before, the loss).
    pub replayed: u64,
    /// Every session went on in the same sequence space with no gap.
    pub resumed: bool,
    /// The new leader's order-entry address.
    pub leader: String,
}

/// The venue's nodes and the one in use.
pub(super) struct Venues {
    nodes: Vec<SocketAddr>,
    pub current: SocketAddr,
}

impl Venues {
    /// Parses `--venue ADDR[,ADDR...]`.
    pub fn parse(text: &str) -> Result<Venues, String> {
        let nodes = text
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|a| {
                a.parse::<SocketAddr>()
                    .map_err(|e| format!("--venue '{a}': {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let current = *nodes.first().ok_or("--venue: no address")?;
        Ok(Venues { nodes, current })
    }

    /// Whether several nodes were named (failover is followed).
    pub fn cluster(&self) -> bool {
        self.nodes.len() > 1
    }

    /// Asks the nodes, in turn, until one leads (following the redirects
    /// followers give); gives up after `patience`.
    pub fn find_leader(&mut self, patience: Duration) -> Result<SocketAddr, String> {
        if !self.cluster() {
            return Ok(self.current);
        }
        let deadline = Instant::now() + patience;
        let mut turn = 0usize;
        let mut hint: Option<SocketAddr> = None;
        // Redirects followed in a row: followers with stale views could
        // name each other; past one per node, the round robin (and its
        // pause) takes over.
        let mut hops = 0usize;
        // Each node's last answer, for the message if none leads.
        let mut last: Vec<String> = vec!["not asked".into(); self.nodes.len()];
        while Instant::now() < deadline {
            let node = hint.take().unwrap_or_else(|| {
                turn += 1;
                self.nodes[(turn - 1) % self.nodes.len()]
            });
            let answer = probe(node);
            if let Some(i) = self.nodes.iter().position(|n| *n == node) {
                last[i] = answer.describe();
            }
            match answer {
                Answer::Leader => {
                    self.current = node;
                    return Ok(node);
                }
                // A node naming itself is not a redirect (an older venue
                // answers so between its election and serving).
                Answer::Follower(leader) => {
                    hint = leader.filter(|l| *l != node && hops < self.nodes.len());
                    hops = if hint.is_some() { hops + 1 } else { 0 };
                }
                Answer::Silent(_) => hops = 0,
            }
            if turn.is_multiple_of(self.nodes.len()) && hint.is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let answers: Vec<String> = self
            .nodes
            .iter()
            .zip(&last)
            .map(|(node, answer)| format!("{node} {answer}"))
            .collect();
        Err(format!(
            "no node of {:?} answered as leader within {} ms (last answers: {})",
            self.nodes,
            patience.as_millis(),
            answers.join("; ")
        ))
    }
}

/// Asks `node` whether it leads.
fn probe(node: SocketAddr) -> Answer {
    let Ok(mut stream) = TcpStream::connect_timeout(&node, Duration::from_millis(200)) else {
        return Answer::Silent("no connection");
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let _ = stream.set_nodelay(true);
    if stream
        .write_all(&frame::encode(&ClientMessage::Heartbeat))
        .is_err()
    {
        return Answer::Silent("write failed");
    }
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        match frame::split(&bytes, 1 << 16) {
            Ok(Some((payload, _))) => {
                return match frame::decode::<Sequenced>(payload) {
                    Ok(Sequenced {
                        message: VenueMessage::NotLeader { order_entry, .. },
                        ..
                    }) => Answer::Follower(order_entry.parse().ok()),
                    Ok(_) => Answer::Leader,
                    Err(_) => Answer::Silent("an answer that does not decode"),
                }
            }
            Ok(None) => {}
            Err(_) => return Answer::Silent("a malformed frame"),
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Answer::Silent("closed without an answer"),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Answer::Silent("no answer within 500 ms")
            }
            Err(_) => return Answer::Silent("connection reset"),
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
        }
    }
}
