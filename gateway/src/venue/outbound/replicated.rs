//! The streams on a cluster node. There is no file: a leader's round of
//! sequenced messages is journaled in the cluster's log with the commands
//! that made it ([`VenueCommand::Reports`](tonnex_engine::VenueCommand)),
//! every node appends the committed records to its own streams, and the
//! node that next leads takes its streams over, numbers and replay windows
//! alike. A client then resumes from `last_seen_seq` on whichever node
//! leads.

use std::path::PathBuf;

use tonnex_engine::venue::sessions::Records;
use tonnex_engine::venue::Sessions;

use super::{Outbound, Stream};

/// Largest `records` of one `Reports` command: a journal record carries at
/// most 4,096 bytes, the command's own fields included.
pub const CHUNK_BYTES: usize = 3_968;

impl Outbound {
    /// Streams kept in memory only, keeping the last `capacity` messages
    /// per account; the session id comes with the first records.
    #[must_use]
    pub fn replicated(capacity: usize) -> Outbound {
        Outbound::without_file(PathBuf::from("(the cluster's log)"), capacity, false, 0)
    }

    /// The records pushed since the last call, whole, in chunks of at most
    /// [`CHUNK_BYTES`] (a single larger record alone); the buffer empties.
    pub fn take_round(&mut self) -> Vec<Vec<u8>> {
        let mut chunks = Vec::new();
        let (mut start, mut end) = (0, 0);
        let mut records = Records(&self.buffer);
        while records.next().is_some() {
            let next_end = self.buffer.len() - records.0.len();
            if next_end - start > CHUNK_BYTES && end > start {
                chunks.push(self.buffer[start..end].to_vec());
                start = end;
            }
            end = next_end;
        }
        if end > start {
            chunks.push(self.buffer[start..end].to_vec());
        }
        self.buffer.clear();
        chunks
    }

    /// Appends committed records a leader journaled in `session_id`. A
    /// new session id starts every stream over; a stream that does not go
    /// on from its last message (this node started from a snapshot) starts
    /// again at the record's number.
    pub fn append_records(&mut self, session_id: u64, records: &[u8]) {
        if session_id != self.session_id {
            self.session_id = session_id;
            self.streams.clear();
        }
        for (account, seq, framed) in Records(records) {
            let stream = self
                .streams
                .entry(account)
                .or_insert_with(|| Stream::starting_at(seq));
            if stream.next_seq != seq {
                *stream = Stream::starting_at(seq);
            }
            stream.keep(framed, self.capacity);
        }
    }

    /// The streams a new leader serves: the sequence space and every
    /// account's next number as the state has them (the replay windows
    /// this node holds where they go on to that number; an empty window
    /// where they do not), or `fresh_session_id` when no leader has
    /// recorded any.
    pub fn adopt(&mut self, sessions: &Sessions, fresh_session_id: u64) {
        if sessions.session_id() == 0 {
            self.session_id = fresh_session_id;
            self.streams.clear();
            return;
        }
        if self.session_id != sessions.session_id() {
            self.session_id = sessions.session_id();
            self.streams.clear();
        }
        let mut kept = std::collections::HashMap::with_capacity_and_hasher(
            self.streams.len(),
            std::hash::BuildHasherDefault::default(),
        );
        for (account, next_seq) in sessions.next_seqs() {
            let stream = match self.streams.remove(&account) {
                Some(stream) if stream.next_seq == next_seq => stream,
                _ => Stream::starting_at(next_seq),
            };
            kept.insert(account, stream);
        }
        self.streams = kept;
    }
}

#[cfg(test)]
mod tests {
    use tonnex_protocol::frame;
    use tonnex_protocol::wire::{Sequenced, VenueMessage};

    use super::*;

    fn text(n: u64) -> VenueMessage {
        VenueMessage::SessionError {
            text: format!("message {n} {}", "x".repeat(200)),
        }
    }

    fn seqs(replay: &[u8]) -> Vec<u64> {
        let mut at = 0;
        let mut out = Vec::new();
        while let Ok(Some((payload, used))) = frame::split(&replay[at..], 4096) {
            out.push(frame::decode::<Sequenced>(payload).unwrap().seq);
            at += used;
        }
        out
    }

    #[test]
    fn a_followers_streams_match_the_leaders_and_carry_on_after_takeover() {
        let mut leader = Outbound::replicated(100);
        leader.adopt(&Sessions::default(), 42);
        for n in 1..=40 {
            leader.push(1 + n % 3, text(n));
        }
        let chunks = leader.take_round();
        assert!(chunks.len() > 1, "40 records of ~220 bytes span chunks");
        assert!(chunks.iter().all(|c| c.len() <= CHUNK_BYTES));
        assert!(!leader.has_pending());
        let mut follower = Outbound::replicated(100);
        let mut sessions = Sessions::default();
        for chunk in &chunks {
            follower.append_records(42, chunk);
            sessions.fold(42, chunk);
        }
        for account in 1..=3 {
            assert_eq!(follower.next_seq(account), leader.next_seq(account));
            let (mut a, mut b) = (Vec::new(), Vec::new());
            leader.stream(account).unwrap().replay_into(1, &mut a);
            follower.stream(account).unwrap().replay_into(1, &mut b);
            assert_eq!(a, b);
        }
        follower.adopt(&sessions, 99);
        assert_eq!(
            follower.session_id(),
            42,
            "the cluster's sequence space goes on"
        );
        let mut replay = Vec::new();
        follower.stream(2).unwrap().replay_into(12, &mut replay);
        assert_eq!(seqs(&replay), vec![12, 13, 14]);
        let framed = follower.push(2, text(99)).to_vec();
        assert_eq!(seqs(&framed), vec![15]);
    }

    #[test]
    fn a_node_from_a_snapshot_numbers_on_from_the_state() {
        // The state says account 5 is at 30 and account 6 at 8; this node
        // holds nothing of 5 and an older window of 6.
        let mut old = Outbound::replicated(10);
        old.adopt(&Sessions::default(), 7);
        for n in 1..=3 {
            old.push(6, text(n));
        }
        let mut node = Outbound::replicated(10);
        node.append_records(7, &old.take_round().concat());
        let mut newer = Outbound::replicated(10);
        newer.adopt(&Sessions::default(), 7);
        for n in 1..=29 {
            newer.push(5, text(n));
        }
        for n in 1..=7 {
            newer.push(6, text(n));
        }
        let mut sessions = Sessions::default();
        sessions.fold(7, &newer.take_round().concat());
        node.adopt(&sessions, 1);
        assert_eq!((node.next_seq(5), node.next_seq(6)), (30, 8));
        assert!(
            node.stream(6).unwrap().is_empty(),
            "a window that does not go on is dropped"
        );
        // New records past a gap restart the window there.
        node.append_records(7, &{
            let mut later = Outbound::replicated(10);
            later.adopt(&sessions, 1);
            later.push(6, text(8));
            later.push(6, text(9));
            later.take_round().concat()
        });
        assert_eq!(node.next_seq(6), 10);
        assert_eq!(node.stream(6).unwrap().first_seq, 8);
    }
}
