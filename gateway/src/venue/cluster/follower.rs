//! A follower's round: Raft over the transport, committed entries applied
//! to the core, every order-entry caller answered with `NotLeader` naming
//! the leader (then hung up on), and the admin port answering
//! `ClusterStatus` (verified as on the leader; anything else is refused
//! `NOT_LEADER`), until this node may lead or is asked to stop.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use tonnex_protocol::admin::{AdminReply, AdminVerb, Signed};
use tonnex_protocol::frame;
use tonnex_protocol::wire::{Sequenced, VenueMessage};

use super::Node;
use crate::venue::admin::AdminDesk;
use crate::venue::admin_cluster::{cluster_status, not_leader};
use crate::venue::{start_error, VenueError};

/// The order-entry listener's token while following.
const LISTENER: Token = Token(0);
/// The admin listener's.
const ADMIN_LISTENER: Token = Token(1);
/// Callers' tokens count up from here.
const FIRST_CALLER: usize = 16;
/// Callers held at once (more wait in the listen backlog).
const MAX_CALLERS: usize = 1024;
/// A caller that has not sent its login by then is hung up on.
const CALLER_PATIENCE: Duration = Duration::from_secs(2);

/// How following ended.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Followed {
    /// Asked to stop.
    Stop,
    /// This node leads and has applied the whole log before its term.
    Lead,
}

/// An order-entry connection waiting for its redirect, or an admin one.
struct Caller {
    stream: TcpStream,
    read: Vec<u8>,
    since: Instant,
    admin: bool,
}

/// The ports a follower answers on.
pub(super) struct Desk<'a> {
    pub order_entry: &'a mut TcpListener,
    pub admin: Option<&'a mut TcpListener>,
    pub verifier: AdminDesk,
}

/// Follows until this node may lead or `stop` is set.
pub(super) fn follow(
    node: &mut Node,
    poll: &mut Poll,
    desk: &mut Desk<'_>,
    stop: &AtomicBool,
) -> Result<Followed, VenueError> {
    poll.registry()
        .register(desk.order_entry, LISTENER, Interest::READABLE)
        .map_err(start_error)?;
    if let Some(admin) = desk.admin.as_deref_mut() {
        poll.registry()
            .register(admin, ADMIN_LISTENER, Interest::READABLE)
            .map_err(start_error)?;
    }
    let mut callers: BTreeMap<usize, Caller> = BTreeMap::new();
    let mut next = FIRST_CALLER;
    let mut events = Events::with_capacity(256);
    let followed = loop {
        if stop.load(Ordering::Acquire) {
            break Followed::Stop;
        }
        if node.replica.ready_to_lead() {
            break Followed::Lead;
        }
        match poll.poll(&mut events, Some(node.until_tick())) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(start_error(e)),
        }
        for event in &events {
            let token = event.token();
            if Node::owns(token) {
                node.on_event(token);
            } else if token == LISTENER {
                accept(desk.order_entry, false, poll, &mut callers, &mut next);
            } else if token == ADMIN_LISTENER {
                if let Some(admin) = desk.admin.as_deref() {
                    accept(admin, true, poll, &mut callers, &mut next);
                }
            } else if let Some(caller) = callers.get_mut(&token.0) {
                let done = if caller.admin {
                    answer_admin(caller, node, &mut desk.verifier)
                } else {
                    answer(caller, node)
                };
                if done {
                    if let Some(mut gone) = callers.remove(&token.0) {
                        let _ = poll.registry().deregister(&mut gone.stream);
                    }
                }
            }
        }
        callers.retain(|_, c| c.since.elapsed() < CALLER_PATIENCE);
        node.pump().map_err(start_error)?;
    };
    let _ = poll.registry().deregister(desk.order_entry);
    if let Some(admin) = desk.admin.as_deref_mut() {
        let _ = poll.registry().deregister(admin);
    }
    for caller in callers.values_mut() {
        let _ = poll.registry().deregister(&mut caller.stream);
    }
    Ok(followed)
}

fn accept(
    listener: &TcpListener,
    admin: bool,
    poll: &Poll,
    callers: &mut BTreeMap<usize, Caller>,
    next: &mut usize,
) {
    while callers.len() < MAX_CALLERS {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let token = *next;
                *next = if *next >= super::TOKEN_BASE - 1 {
                    FIRST_CALLER
                } else {
                    *next + 1
                };
                if poll
                    .registry()
                    .register(&mut stream, Token(token), Interest::READABLE)
                    .is_ok()
                {
                    callers.insert(
                        token,
                        Caller {
                            stream,
                            read: Vec::new(),
                            since: Instant::now(),
                            admin,
                        },
                    );
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                return;
            }
        }
    }
}

/// Reads what `caller` has sent into its buffer (up to `max` bytes);
/// true when the connection ended (or sent too much).
fn take_in(caller: &mut Caller, max: usize) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match caller.stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => caller.read.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
        if caller.read.len() > max {
            return true;
        }
    }
}

/// Answers each whole admin request `caller` sent: `ClusterStatus` with
/// this node's view, anything else `NOT_LEADER` (after the same checks the
/// leader makes). Says whether the connection is done.
fn answer_admin(caller: &mut Caller, node: &Node, verifier: &mut AdminDesk) -> bool {
    const MAX: usize = 4 << 20;
    let ended = take_in(caller, MAX);
    loop {
        let (payload, used) = match frame::split(&caller.read, MAX) {
            Ok(Some((payload, used))) => (payload.to_vec(), used),
            Ok(None) => return ended,
            Err(_) => return true,
        };
        caller.read.drain(..used);
        let Ok(signed) = frame::decode::<Signed>(&payload) else {
            return true;
        };
        let nonce = signed.request.nonce;
        let reply = match verifier.check(&signed) {
            Err((reason, text)) => refusal(nonce, reason, text),
            Ok(_) if signed.request.verb == AdminVerb::ClusterStatus => cluster_status(node, nonce),
            Ok(_) => {
                let (reason, text) = not_leader(node);
                refusal(nonce, reason, text)
            }
        };
        if caller.stream.write_all(&frame::encode(&reply)).is_err() {
            return true;
        }
    }
}

fn refusal(nonce: u64, reason: tonnex_protocol::RejectReason, text: String) -> AdminReply {
    AdminReply::Refused {
        nonce,
        reason: reason.code(),
        text,
    }
}

/// Reads what `caller` sent; once a whole first frame is in (or the
/// connection ends), answers `NotLeader` and says it is done.
fn answer(caller: &mut Caller, node: &Node) -> bool {
    if take_in(caller, 1 << 16) {
        return true;
    }
    match frame::split(&caller.read, 1 << 16) {
        Ok(None) => false,
        Ok(Some(_)) | Err(_) => {
            let (mut leader, mut order_entry) = node.leader();
            if leader == node.replica.id() {
                // Elected, not serving yet (still applying its log): naming
                // itself would send the caller straight back here. No
                // leader yet: the caller tries again shortly.
                (leader, order_entry) = (0, String::new());
            }
            let reply = frame::encode(&Sequenced {
                seq: 0,
                message: VenueMessage::NotLeader {
                    leader,
                    order_entry,
                },
            });
            let _ = caller.stream.write_all(&reply);
            true
        }
    }
}
