//! The engine applied inline on the event-loop thread (`[session] engine =
//! "inline"`): for machines with few cores, where a third runnable thread
//! (gateway, spinning engine, clients) costs more in preemption and
//! wake-ups than the engine's own work. Inputs gather in a batch instead
//! of a ring; the batch is applied, journaled and synced as the durability
//! policy asks (exactly as on the engine thread: no output before its
//! command is in the journal), and its outputs handled at once.

use super::core::{Core, Input, Output};
use super::server::Gateway;

/// Largest batch applied at once (the engine thread's, too).
const BATCH: usize = 256;

/// The engine's core and the inputs waiting for it.
pub(super) struct InlineEngine {
    pub core: Core,
    pub batch: Vec<Input>,
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
        let mut outputs = Vec::new();
        loop {
            let Some(mut inline) = self.link.inline.take() else {
                return;
            };
            let mut batch = std::mem::take(&mut inline.batch);
            let mut emit = |output: Output| outputs.push(output);
            let result = if batch.is_empty() {
                inline.core.idle(&mut emit).map(|()| false)
            } else {
                inline.core.process(&mut batch, &mut emit)
            };
            inline.batch = batch;
            self.link.inline = Some(inline);
            match result {
                Ok(true) => outputs.push(Output::Stopped),
                Ok(false) => {}
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

    /// Whether the inline engine holds outputs for a group commit (the
    /// event loop then polls without sleeping).
    pub(super) fn inline_awaiting(&self) -> bool {
        self.link.inline.as_ref().is_some_and(|i| i.core.awaiting())
    }
}
