//! The core on a cluster node ([`Sink::Replicated`]): the node's log holds
//! the commands, and the node applies each committed entry to the core.
//!
//! A leader applies a batch the moment it takes it (it alone sequences, so
//! the order is final) and hands its outputs to the gateway at once; the
//! round's commands and the sequenced messages they made go to the node as
//! one entry, and the gateway holds every byte it sends, and the core the
//! fill-log records, until the node reports the entry committed: the state
//! then runs ahead of the log by the entries in flight. A follower applies
//! committed entries only; their outputs answer nobody (its sessions are on
//! the leader) and are dropped, but it keeps the leader's sequenced
//! messages (`Reports`) and writes its fill log as the leader's is.

use tonnex_cluster::StateMachine;
use tonnex_engine::{Command, State, StateImage, VenueCommand};

use super::super::outbound::Outbound;
use super::{Core, Sink};

impl Core {
    /// The commands applied since the last call, to propose as one entry.
    pub fn take_proposal(&mut self) -> Vec<Command> {
        match &mut self.sink {
            Sink::Replicated { proposal, .. } => std::mem::take(proposal),
            Sink::Journal(_) => Vec::new(),
        }
    }

    /// A follower keeps the messages of a committed `Reports` command.
    pub(super) fn keep_reports(&mut self, command: &Command) {
        let Sink::Replicated {
            reports: Some(streams),
            ..
        } = &mut self.sink
        else {
            return;
        };
        if let Command::Venue(venue) = command {
            if let VenueCommand::Reports {
                session_id,
                records,
            } = &**venue
            {
                streams.append_records(*session_id, records);
            }
        }
    }

    /// The streams this node kept as a follower, adopted as the state
    /// numbers them (see [`Outbound::adopt`]), for the gateway of a new
    /// leader; `None` once taken (or on a single venue).
    pub fn take_reports(&mut self, fresh_session_id: u64) -> Option<Outbound> {
        let Sink::Replicated { reports, .. } = &mut self.sink else {
            return None;
        };
        let mut streams = *reports.take()?;
        streams.adopt(self.state.venue().sessions(), fresh_session_id);
        Some(streams)
    }

    /// The fill log.
    #[must_use]
    pub fn fill_log(&self) -> &super::FillLog {
        &self.fills
    }

    /// The last command the node has committed and applied.
    #[must_use]
    pub fn committed_seq(&self) -> u64 {
        match &self.sink {
            Sink::Replicated { committed_seq, .. } => *committed_seq,
            Sink::Journal(journal) => journal.durable_seq(),
        }
    }

    /// Whether the state holds commands not yet committed (a leader's in
    /// flight).
    #[must_use]
    pub fn ahead(&self) -> bool {
        self.state.last_seq() > self.committed_seq()
    }

    /// From now on this core sequences (a leader): its fill-log records
    /// reach subscribers only once committed, since a new leader may
    /// overwrite what this one has not committed.
    pub fn lead(&mut self) {
        self.fills.hold_until_committed();
    }

    fn set_committed(&mut self, seq: u64) {
        if let Sink::Replicated { committed_seq, .. } = &mut self.sink {
            *committed_seq = seq;
        }
    }
}

impl StateMachine for Core {
    fn applied_ahead(&mut self, first_seq: u64, count: usize) -> bool {
        if count == 0 || !self.ahead() {
            return false;
        }
        // This leader's own entry, applied when it was proposed (in this
        // term every entry is this leader's, in order).
        let last = first_seq + count as u64 - 1;
        if first_seq != self.committed_seq() + 1 || last > self.state.last_seq() {
            super::super::fatal(&format!(
                "committed commands {first_seq}..={last} are not the ones this leader applied (state at {}, committed {})",
                self.state.last_seq(),
                self.committed_seq()
            ));
        }
        self.set_committed(last);
        self.fills.publish_through(last);
        true
    }

    fn apply(&mut self, first_seq: u64, commands: &[Command]) {
        if commands.is_empty() || self.applied_ahead(first_seq, commands.len()) {
            return;
        }
        for command in commands {
            self.apply_command(0, command.clone(), None);
        }
        self.pending.clear();
        if let Err(e) = self.fills.flush() {
            super::super::fatal(&format!("fill log {}: {e}", self.fills.path().display()));
        }
        self.set_committed(self.state.last_seq());
        self.publish_position();
    }

    fn last_seq(&self) -> u64 {
        self.committed_seq()
    }

    fn image(&self) -> StateImage {
        self.state.image()
    }

    fn restore(&mut self, image: &StateImage) -> Result<(), String> {
        self.state = State::from_image(image)?;
        self.set_committed(self.state.last_seq());
        Ok(())
    }

    fn digest(&self) -> String {
        self.state.digest()
    }

    fn settled(&self) -> bool {
        !self.ahead()
    }
}
