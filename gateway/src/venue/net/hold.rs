//! Output held for a cluster's commit. A leader applies each round at once
//! and proposes it; nothing it sends (reports, answers, market data, a
//! login's replay) may reach a client before the log has committed the
//! state it reflects, since a new leader would not know of it. Each
//! round's bytes on a connection are marked with the journal sequence the
//! state had reached ([`Net::mark_round`]); they go once the log has
//! committed through it ([`Net::set_committed`]). A single venue holds
//! nothing here (its journal's group commit holds outputs in the core).

use std::collections::VecDeque;

use mio::Token;

use super::sockets::{Conn, Net, FIRST};

/// A connection's held bytes: where each round's bytes end, and the
/// sequence they wait for.
#[derive(Debug, Default)]
pub(in crate::venue) struct Held {
    marks: VecDeque<(usize, u64)>,
    /// Bytes of `write` marked so far.
    marked_to: usize,
    /// Bytes of `write` that may be written.
    released: usize,
}

impl Net {
    /// Marks the bytes queued this round on every dirty connection as
    /// waiting for journal sequence `seq`.
    pub fn mark_round(&mut self, seq: u64) {
        if !self.hold {
            return;
        }
        for i in 0..self.dirty.len() {
            let token = self.dirty[i];
            if let Some(conn) = self.conn(token) {
                let end = conn.write.len();
                if end > conn.held.marked_to {
                    conn.held.marks.push_back((end, seq));
                    conn.held.marked_to = end;
                }
            }
        }
    }

    /// The log has committed through `seq`: held bytes up to it may go
    /// (their connections become dirty).
    pub fn set_committed(&mut self, seq: u64) {
        if !self.hold {
            return;
        }
        self.committed = seq;
        for (i, slot) in self.conns.iter_mut().enumerate() {
            let Some(conn) = slot.as_mut().filter(|c| !c.held.marks.is_empty()) else {
                continue;
            };
            let mut moved = false;
            while let Some(&(end, waits_for)) = conn.held.marks.front() {
                if waits_for > seq {
                    break;
                }
                conn.held.released = end;
                conn.held.marks.pop_front();
                moved = true;
            }
            if moved {
                self.dirty.push(Token(i + FIRST));
            }
        }
    }
}

impl Conn {
    /// Where the bytes that may be written now end.
    pub(super) fn sendable(&self, hold: bool) -> usize {
        if hold {
            self.held.released
        } else {
            self.write.len()
        }
    }

    /// The first `n` bytes of `write` are gone (written or dropped): the
    /// marks move down with the rest.
    pub(super) fn forget_front(&mut self, n: usize) {
        let held = &mut self.held;
        held.released = held.released.saturating_sub(n);
        held.marked_to = held.marked_to.saturating_sub(n);
        for mark in &mut held.marks {
            mark.0 = mark.0.saturating_sub(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_go_only_once_their_round_is_committed() {
        let poll = mio::Poll::new().unwrap();
        let listener = mio::net::TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let address = listener.local_addr().unwrap();
        let mut net = Net::new(poll, listener, None, None).unwrap();
        net.hold = true;
        let stream = mio::net::TcpStream::connect(address).unwrap();
        net.conns.push(Some(Conn::new(stream, false, false, 0)));
        let token = Token(FIRST);
        net.queue(token, b"round one");
        net.mark_round(10);
        net.queue(token, b"round two");
        net.mark_round(12);
        assert_eq!(net.conn(token).unwrap().sendable(true), 0);
        net.dirty.clear();
        net.set_committed(11);
        assert_eq!(net.conn(token).unwrap().sendable(true), 9);
        assert_eq!(net.dirty, vec![token]);
        // The first round is written and dropped from the buffer.
        let conn = net.conn(token).unwrap();
        conn.write.drain(..9);
        conn.forget_front(9);
        net.set_committed(12);
        assert_eq!(net.conn(token).unwrap().sendable(true), 9);
        // A round with nothing new queued adds no mark.
        net.mark_round(13);
        assert!(net.conn(token).unwrap().held.marks.is_empty());
        // A round that reflects nothing new (a login on an idle leader)
        // goes with the commit already there.
        net.queue(token, b"answer");
        net.mark_round(12);
        net.set_committed(12);
        assert_eq!(net.conn(token).unwrap().sendable(true), 15);
    }
}
