//! The engine applied inline on the event-loop thread (`[session] engine =
//! "inline"`): for machines with few cores, where a third runnable thread
//! (gateway, spinning engine, clients) costs more in preemption and
//! wake-ups than the engine's own work. Inputs gather in a batch instead
//! of a ring; the batch is applied, journaled and synced as the durability
//! policy asks (exactly as on the engine thread: no output before its
//! command is in the journal), and its outputs handled at once.

use std::time::Duration;

use super::cluster::Node;
use super::core::{Core, CoreError, Input, Output};
use super::server::Gateway;

/// Largest batch applied at once (the engine thread's, too).
const BATCH: usize = 256;

/// The engine's core and the inputs waiting for it.
pub(super) struct InlineEngine {
    pub engine: Engine,
    pub batch: Vec<Input>,
    /// A round's outputs, kept between rounds so they are not grown
    /// again each time (a realloc per doubling was 1 % of a busy loop).
    pub outputs: Vec<Output>,
}

/// The core alone (its own journal), or a cluster node's (the node's log).
pub enum Engine {
    /// A single venue.
    Local(Box<Core>),
    /// A cluster's leader.
    Cluster(Box<Node>),
}

impl Engine {
    /// The core (read-only).
    #[must_use]
    pub fn core(&self) -> &Core {
        match self {
            Engine::Local(core) => core,
            Engine::Cluster(node) => node.core(),
        }
    }

    /// Applies `batch` (see [`Core::process`], [`Node::process`]).
    pub fn process(
        &mut self,
        batch: &mut Vec<Input>,
        emit: &mut dyn FnMut(Output),
    ) -> Result<bool, CoreError> {
        match self {
            Engine::Local(core) => core.process(batch, emit),
            Engine::Cluster(node) => node.process(batch, emit),
        }
    }

    /// Periodic work (see [`Core::idle`], [`Node::idle`]).
    pub fn idle(&mut self, emit: &mut dyn FnMut(Output)) -> Result<(), CoreError> {
        match self {
            Engine::Local(core) => core.idle(emit),
            Engine::Cluster(node) => node.idle(emit),
        }
    }

    /// Whether the event loop must poll without sleeping: outputs wait for
    /// a group commit of the core's own journal. (A cluster's commits
    /// arrive as network events.)
    #[must_use]
    pub fn busy(&self) -> bool {
        match self {
            Engine::Local(core) => core.awaiting(),
            Engine::Cluster(_) => false,
        }
    }

    /// The longest the event loop may sleep.
    #[must_use]
    pub fn patience(&self, idle: Duration) -> Duration {
        match self {
            Engine::Local(_) => idle,
            Engine::Cluster(node) => idle.min(node.until_tick()),
        }
    }
}

impl Gateway {
    /// Queues an input for the inline engine; a full batch is applied now.
    pub(super) fn submit_inline(&mut self, input: Input) {
        let Some(inline) = self.link.inline.as_mut() else {
            return;
        };
        inline.batch.push(input);
        if inline.batch.len() >= BATCH {
            self.run_inline();
        }
    }

    /// Applies every queued input (and what handling their outputs queues
    /// in turn), then the core's periodic work: group commits, snapshots.
    pub(super) fn run_inline(&mut self) {
        let Some(inline) = self.link.inline.as_mut() else {
            return;
        };
        // (Empty when an output's handling runs a full batch in turn.)
        let mut outputs = std::mem::take(&mut inline.outputs);
        self.run_inline_into(&mut outputs);
        if let Some(inline) = self.link.inline.as_mut() {
            outputs.clear();
            inline.outputs = outputs;
        }
    }

    fn run_inline_into(&mut self, outputs: &mut Vec<Output>) {
        loop {
            let Some(mut inline) = self.link.inline.take() else {
                return;
            };
            let mut batch = std::mem::take(&mut inline.batch);
            let mut emit = |output: Output| outputs.push(output);
            let result = if batch.is_empty() {
                inline.engine.idle(&mut emit).map(|()| false)
            } else {
                inline.engine.process(&mut batch, &mut emit)
            };
            inline.batch = batch;
            self.link.inline = Some(inline);
            match result {
                Ok(true) => outputs.push(Output::Stopped),
                Ok(false) => {}
                Err(CoreError::Demoted) => {
                    self.on_demoted();
                    return;
                }
                Err(e) => super::fatal(&e),
            }
            let handled = !outputs.is_empty();
            for output in outputs.drain(..) {
                self.on_output(output);
            }
            // Handling outputs may have queued inputs (a re-check after an
            // attestation): go round again; with none, one idle pass more
            // for what a sync released, then done.
            if !handled {
                return;
            }
        }
    }

    /// What this node applied ahead of its log may be overwritten: nothing
    /// more leaves; it starts again from its log as a follower.
    fn on_demoted(&mut self) {
        tracing::warn!(
            "no longer the cluster's leader: closing sessions, starting again from the log"
        );
        self.demoted = true;
        self.engine_stopped = true;
    }

    /// A cluster leader's round ends: the sequenced messages it made go
    /// into the log with its commands, one entry, and what the round
    /// queued on each connection waits for that entry's commit.
    pub(super) fn seal_round(&mut self) {
        let Some(inline) = self.link.inline.as_mut() else {
            return;
        };
        let Engine::Cluster(node) = &mut inline.engine else {
            return;
        };
        if self.demoted {
            return;
        }
        let records = self.outbound.take_round();
        match node.seal(self.outbound.session_id(), records) {
            Ok(()) => {}
            Err(CoreError::Demoted) => {
                self.on_demoted();
                return;
            }
            Err(e) => super::fatal(&e),
        }
        let core = node.core();
        let (last, committed) = (core.state().last_seq(), core.committed_seq());
        self.net.mark_round(last);
        self.net.set_committed(committed);
        let now = self.net.round();
        while let Some(&(seq, received_ns)) = self.held_acks.front() {
            if seq > committed {
                break;
            }
            self.metrics.ack_latency(now.saturating_sub(received_ns));
            self.held_acks.pop_front();
        }
    }

    /// Whether the inline engine holds outputs for a group commit (the
    /// event loop then polls without sleeping).
    pub(super) fn inline_awaiting(&self) -> bool {
        self.link.inline.as_ref().is_some_and(|i| i.engine.busy())
    }
}
