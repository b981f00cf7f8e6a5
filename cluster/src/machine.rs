//! What a replica applies committed entries to. The simulation applies
//! them to the engine state alone ([`State`]); a venue node applies them
//! through its core, which also writes the fill log and produces reports
//! and market data from the same commands.

use tonnex_engine::{Command, Event, State, StateImage};

/// A deterministic state machine over engine commands.
pub trait StateMachine {
    /// Applies one committed entry's commands, numbered from `first_seq`
    /// (the machine's last sequence number plus one).
    fn apply(&mut self, first_seq: u64, commands: &[Command]);

    /// The sequence number of the last command applied.
    fn last_seq(&self) -> u64;

    /// The whole state, for a snapshot.
    fn image(&self) -> StateImage;

    /// Replaces the whole state with a snapshot's.
    fn restore(&mut self, image: &StateImage) -> Result<(), String>;

    /// A digest of the state, to compare nodes at one index.
    fn digest(&self) -> String;

    /// Whether the state is exactly the applied entries' (a snapshot may be
    /// taken now). A venue leader applies its own proposals before they
    /// commit, so its state runs ahead while they are in flight; its
    /// snapshot waits for a moment when none is.
    fn settled(&self) -> bool {
        true
    }

    /// A committed entry of `count` commands from `first_seq` that the
    /// machine applied already, when it proposed it (a venue leader): it
    /// records them committed and answers true, and the entry is not
    /// decoded. False: the caller decodes and [`StateMachine::apply`]s it.
    fn applied_ahead(&mut self, first_seq: u64, count: usize) -> bool {
        let _ = (first_seq, count);
        false
    }
}

impl StateMachine for State {
    fn apply(&mut self, first_seq: u64, commands: &[Command]) {
        let mut events: Vec<Event> = Vec::new();
        for (seq, command) in (first_seq..).zip(commands) {
            events.clear();
            State::apply(self, seq, command, &mut events);
        }
    }

    fn last_seq(&self) -> u64 {
        State::last_seq(self)
    }

    fn image(&self) -> StateImage {
        State::image(self)
    }

    fn restore(&mut self, image: &StateImage) -> Result<(), String> {
        *self = State::from_image(image)?;
        Ok(())
    }

    fn digest(&self) -> String {
        State::digest(self)
    }
}
