//! Commands onto the engine: each with a fresh correlation id and an
//! in-flight record its outputs are matched to (in submission order), onto
//! the engine thread's ring with back-pressure, or into the inline engine's
//! batch.

use tonnex_engine::{Command, VenueCommand};
use tonnex_protocol::Pathway;

use super::core::{Annotation, Input};
use super::server::{Gateway, Inflight};

impl Gateway {
    /// A venue bookkeeping command on behalf of `account`.
    pub(super) fn submit_venue(
        &mut self,
        command: VenueCommand,
        account: u64,
        client_order_id: u64,
        rechecked: u32,
    ) {
        self.submit_uncompliant(
            Command::Venue(Box::new(command)),
            account,
            client_order_id,
            rechecked,
        );
    }

    /// A non-order command on behalf of `account`.
    pub(super) fn submit_command(&mut self, command: Command, account: u64, client_order_id: u64) {
        self.submit_uncompliant(command, account, client_order_id, 0);
    }

    /// Any command but a routed order: no pathway, floor or allocation.
    fn submit_uncompliant(
        &mut self,
        command: Command,
        account: u64,
        client_order_id: u64,
        rechecked: u32,
    ) {
        self.submit_tracked(
            Inflight {
                corr: 0,
                account,
                client_order_id,
                rechecked,
                pathway: Pathway::None,
                sub_ledger: "",
                floor_ticks: 0,
                attestation: None,
                allocation: None,
                reply: None,
                received_ns: 0,
            },
            command,
        );
    }

    /// Sends `command` with a fresh correlation id, remembering `inflight`
    /// for its outputs.
    pub(super) fn submit_tracked(&mut self, inflight: Inflight, command: Command) {
        self.submit_annotated(inflight, command, None);
    }

    /// [`Gateway::submit_tracked`] with fill-stream detail the engine does
    /// not hold (a deposited lot's registry identity).
    pub(super) fn submit_annotated(
        &mut self,
        mut inflight: Inflight,
        command: Command,
        annotation: Option<Box<Annotation>>,
    ) {
        let corr = self.link.next_corr;
        self.link.next_corr += 1;
        inflight.corr = corr;
        inflight.received_ns = self.net.round();
        self.link.inflight.push_back(inflight);
        self.submit(Input::Command {
            corr,
            command,
            annotation,
        });
    }

    /// Pushes onto the engine ring; when it is full, drains the engine's
    /// outputs while waiting (back-pressure, never an unbounded queue).
    pub(super) fn submit(&mut self, input: Input) {
        if self.link.inline.is_some() {
            self.submit_inline(input);
            return;
        }
        let mut item = input;
        loop {
            match self.link.to_engine.push(item) {
                Ok(()) => break,
                Err(back) => {
                    item = back;
                    self.link.engine.unpark();
                    self.drain_engine();
                    std::thread::yield_now();
                }
            }
        }
        self.link.engine.unpark();
    }
}
