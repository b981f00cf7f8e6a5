//! The engine thread's work: sequence each command, apply it to the state,
//! record its settlement-relevant events in the fill log, journal it, and
//! only then let its outputs leave the thread.
//!
//! Per batch the order is apply → fill log written (to the page cache) →
//! journal appended → outputs pushed once the journal's durability policy
//! covers their command. So after a crash the fill log holds at least every
//! journaled command's events; records beyond the journal's end were never
//! acknowledged and are cut at the next start ([`super::fills`]).
//!
//! Durability ([`crate::config::VenueDurability`]): under `process` outputs leave at once
//! (the page cache holds the records); under `batch` and `sync` they wait in
//! `awaiting` until an `msync` covers their command (group commit), so no
//! client hears of a command a power cut could lose.
//!
//! Every command carries a correlation id that its `Begin` echoes (the
//! gateway checks it against the command it expects), and this thread alone
//! mints trade ids ([`trade_id`]).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use tonnex_engine::journal::{AppendError, Journal};
use tonnex_engine::snapshot::{self, SnapshotError};
use tonnex_engine::{Command, Event, State};
use tonnex_protocol::wire::StreamEvent;
use tonnex_protocol::Side;

use super::depth::{self, BookSnapshot};
use super::fills::{self, FillLog};
use super::metrics::Metrics;
use super::outbound::Outbound;
use super::status::{self, StatusAnswer};

pub use tonnex_engine::settlement::{trade_id, TRADE_SHIFT};

/// What the gateway thread hands the engine thread.
pub enum Input {
    /// A command to sequence and apply, with what the fill stream should say
    /// about it beyond what the engine knows.
    Command {
        /// The gateway's correlation id, echoed by the command's `Begin`.
        corr: u64,
        /// The command (a new order's id is replaced by its sequence number).
        command: Command,
        /// Settlement detail the engine does not hold.
        annotation: Option<Box<Annotation>>,
    },
    /// A depth snapshot of one instrument for one account's subscription
    /// or one market-data feed connection.
    Book {
        /// Instrument index.
        instrument: u32,
        /// The subscribing account (0 for a feed connection).
        account: u64,
        /// The feed connection's token.
        feed: Option<usize>,
    },
    /// A client's live orders ([`status::live_orders`]), in line with
    /// the commands.
    Status {
        /// The account that asked.
        account: u64,
        /// Only this client order id (0: every order).
        client_order_id: u64,
        /// The connection that asked (its token).
        token: usize,
    },
    /// Finish the queue, sync the journal and stop.
    Shutdown,
}

/// Fill-stream detail the gateway decided.
pub enum Annotation {
    /// An admin command's event, written if it applies (deposits with their
    /// registry lot, instruments with their sub-ledger).
    Event(StreamEvent),
}

/// What the engine thread hands back, in command order.
pub enum Output {
    /// The start of a command's results.
    Begin {
        /// The correlation id the command came with.
        corr: u64,
        /// Its journal sequence number.
        seq: u64,
        /// The command as applied (new orders carry their assigned id).
        command: Command,
    },
    /// One engine event of the current command (fills come as `Fill`).
    Event(Event),
    /// A fill of the current command, with the trade id minted for it.
    Fill {
        /// `trade_id(seq, n)` for the command's `n`-th fill.
        trade_id: u64,
        /// The `Event::Fill`.
        event: Event,
    },
    /// A price level's new total after the current command.
    Level {
        /// Instrument index.
        instrument: u32,
        /// Side.
        side: Side,
        /// Price in ticks.
        price: i64,
        /// Tonnes now resting there.
        qty: u64,
    },
    /// A depth snapshot, for `account` (0: everyone subscribed).
    Book(Box<BookSnapshot>),
    /// A client's live orders, for its order status.
    Status(Box<StatusAnswer>),
    /// The engine thread has stopped.
    Stopped,
}

/// Why the engine thread had to stop.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The journal refused a record: nothing more may be acknowledged.
    #[error(transparent)]
    Journal(#[from] AppendError),
    /// The cluster node could not go on (its log, Raft).
    #[error("cluster: {0}")]
    Cluster(#[from] tonnex_cluster::ClusterError),
    /// This node no longer leads: what it applied ahead of the log may be
    /// overwritten, so it starts again from its log.
    #[error("this node is no longer the cluster's leader")]
    Demoted,
    /// The fill log could not be written.
    #[error("fill log {path}: {source}")]
    FillLog {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
}

/// Where the core's commands go once applied.
enum Sink {
    /// A journal of its own (a single venue).
    Journal(Journal),
    /// A cluster node's log: a round's commands are handed to the node as
    /// one proposal; outputs go to the gateway at once, which holds what
    /// it sends until the node has committed them (`committed_seq`). A
    /// follower keeps the committed reports in `reports`, which the
    /// gateway takes over when the node leads.
    Replicated {
        committed_seq: u64,
        proposal: Vec<Command>,
        reports: Option<Box<Outbound>>,
    },
}

/// Commands between snapshots per resting order or unsettled trade in the
/// state, when that is more than the venue's `snapshot_every`: a snapshot
/// copies the whole state on the event loop and encodes and writes it on
/// another thread, so its cost grows with the state, and spacing snapshots
/// in proportion keeps it a small, fixed share of the work (at full load,
/// with trades left unsettled, a snapshot every million commands cost 7-13 %
/// of the throughput). Recovery replays at most this many commands per
/// entry more than it loads from the snapshot, still in proportion to it.
pub const SNAPSHOT_COMMANDS_PER_ENTRY: u64 = 4;

/// State, journal and fill log, owned by the engine thread.
pub struct Core {
    state: State,
    sink: Sink,
    fills: FillLog,
    journal_dir: PathBuf,
    snapshot_every: u64,
    /// Commands from the last snapshot to the next: `snapshot_every`, or
    /// more for a large state ([`SNAPSHOT_COMMANDS_PER_ENTRY`]).
    snapshot_gap: u64,
    last_snapshot_seq: u64,
    snapshot_job: Option<JoinHandle<Result<PathBuf, SnapshotError>>>,
    events: Vec<Event>,
    /// The annotation journaled just before the command being applied.
    note: Option<StreamEvent>,
    touched: Vec<(u32, Side, i64)>,
    pending: Vec<Output>,
    /// Outputs whose commands are journaled but not yet durable.
    awaiting: VecDeque<Output>,
    /// Time base for group-commit ticks.
    clock: Instant,
    /// Where the journal position is published for `GET /metrics`.
    metrics: Option<Arc<Metrics>>,
}

impl Core {
    /// A core continuing from `state`, the recovered journal and fill log.
    pub fn new(
        state: State,
        journal: Journal,
        fills: FillLog,
        journal_dir: PathBuf,
        snapshot_every: u64,
    ) -> Core {
        Core::new_with(
            state,
            Sink::Journal(journal),
            fills,
            journal_dir,
            snapshot_every,
        )
    }

    fn new_with(
        state: State,
        sink: Sink,
        fills: FillLog,
        journal_dir: PathBuf,
        snapshot_every: u64,
    ) -> Core {
        let last_snapshot_seq = state.last_seq();
        Core {
            state,
            sink,
            fills,
            journal_dir,
            snapshot_every,
            snapshot_gap: snapshot_every,
            last_snapshot_seq,
            snapshot_job: None,
            events: Vec::with_capacity(1024),
            note: None,
            touched: Vec::with_capacity(64),
            pending: Vec::with_capacity(4096),
            awaiting: VecDeque::new(),
            clock: Instant::now(),
            metrics: None,
        }
    }

    /// A cluster node's core (see [`Sink::Replicated`]): no journal of its
    /// own and no snapshots (the node takes them between entries).
    pub fn replicated(
        state: State,
        fills: FillLog,
        journal_dir: PathBuf,
        replay_capacity: usize,
    ) -> Core {
        let committed_seq = state.last_seq();
        Core::new_with(
            state,
            Sink::Replicated {
                committed_seq,
                proposal: Vec::new(),
                reports: Some(Box::new(Outbound::replicated(replay_capacity))),
            },
            fills,
            journal_dir,
            u64::MAX,
        )
    }

    /// Publishes the journal position to `metrics` from now on.
    pub fn set_metrics(&mut self, metrics: Arc<Metrics>) {
        self.metrics = Some(metrics);
    }

    fn publish_position(&self) {
        if let Some(metrics) = &self.metrics {
            let (last, durable) = match &self.sink {
                Sink::Journal(journal) => (journal.last_seq(), journal.durable_seq()),
                Sink::Replicated { committed_seq, .. } => (self.state.last_seq(), *committed_seq),
            };
            metrics.journal_seq.store(last, Ordering::Relaxed);
            metrics.durable_seq.store(durable, Ordering::Relaxed);
        }
    }

    /// The engine state (read-only).
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Applies a batch of inputs and journals it; its outputs are handed to
    /// `emit` only once the journal holds every command of the batch as
    /// durably as the policy asks (maybe in a later call).
    pub fn process(
        &mut self,
        batch: &mut Vec<Input>,
        emit: &mut dyn FnMut(Output),
    ) -> Result<bool, CoreError> {
        let mut stop = false;
        for input in batch.drain(..) {
            match input {
                Input::Command {
                    corr,
                    command,
                    annotation,
                } => self.apply_command(corr, command, annotation.as_deref()),
                Input::Book {
                    instrument,
                    account,
                    feed,
                } => {
                    let snapshot = depth::snapshot(&self.state, instrument, account, feed);
                    self.pending.push(Output::Book(Box::new(snapshot)));
                }
                Input::Status {
                    account,
                    client_order_id,
                    token,
                } => {
                    let answer = status::live_orders(&self.state, account, client_order_id, token);
                    self.pending.push(Output::Status(Box::new(answer)));
                }
                Input::Shutdown => stop = true,
            }
        }
        self.fills.flush().map_err(|source| CoreError::FillLog {
            path: self.fills.path().to_path_buf(),
            source,
        })?;
        for output in &self.pending {
            if let Output::Begin { seq, command, .. } = output {
                match &mut self.sink {
                    Sink::Journal(journal) => journal.append(*seq, command)?,
                    Sink::Replicated { proposal, .. } => proposal.push(command.clone()),
                }
            }
        }
        let replicated = matches!(self.sink, Sink::Replicated { .. });
        if replicated || (self.awaiting.is_empty() && self.durable_seq() == self.state.last_seq()) {
            // `process` durability, a sync that covered the batch, or a
            // cluster's leader (whose gateway holds what it sends).
            for output in self.pending.drain(..) {
                emit(output);
            }
        } else {
            self.awaiting.extend(self.pending.drain(..));
            self.tick()?;
            self.release(emit);
        }
        // (`u64::MAX`: never; saturating, so a state past 0 cannot wrap.)
        if self.state.last_seq() >= self.last_snapshot_seq.saturating_add(self.snapshot_gap) {
            self.snapshot();
        }
        self.publish_position();
        if stop {
            self.close()?;
            self.release(emit);
        }
        Ok(stop)
    }

    /// The last command durable (committed, on a cluster).
    fn durable_seq(&self) -> u64 {
        match &self.sink {
            Sink::Journal(journal) => journal.durable_seq(),
            Sink::Replicated { committed_seq, .. } => *committed_seq,
        }
    }

    /// A group-commit tick of the journal (a cluster's commits come from
    /// the node instead).
    fn tick(&mut self) -> Result<(), CoreError> {
        let now = self.now_ns();
        if let Sink::Journal(journal) = &mut self.sink {
            journal.tick(now)?;
        }
        Ok(())
    }

    /// Hands `emit` every awaiting output whose command is durable.
    fn release(&mut self, emit: &mut dyn FnMut(Output)) {
        let durable = self.durable_seq();
        while let Some(front) = self.awaiting.front() {
            if matches!(front, Output::Begin { seq, .. } if *seq > durable) {
                break;
            }
            emit(self.awaiting.pop_front().expect("a front"));
        }
    }

    /// Whether outputs wait for a sync.
    #[must_use]
    pub fn awaiting(&self) -> bool {
        !self.awaiting.is_empty()
    }

    fn now_ns(&self) -> u64 {
        self.clock.elapsed().as_nanos() as u64
    }

    /// Periodic work while idle: group commits (releasing what they cover),
    /// finished snapshots.
    pub fn idle(&mut self, emit: &mut dyn FnMut(Output)) -> Result<(), CoreError> {
        // Nothing awaiting means nothing unsynced: no clock read, no tick.
        if !self.awaiting.is_empty() {
            self.tick()?;
            self.release(emit);
            self.publish_position();
        }
        if self
            .snapshot_job
            .as_ref()
            .is_some_and(JoinHandle::is_finished)
        {
            self.reap_snapshot();
        }
        Ok(())
    }

    /// Syncs the journal and hands `emit` everything awaiting.
    pub fn sync(&mut self, emit: &mut dyn FnMut(Output)) -> Result<(), CoreError> {
        if let Sink::Journal(journal) = &mut self.sink {
            journal.sync()?;
        }
        self.release(emit);
        Ok(())
    }

    /// Syncs the journal and waits for a snapshot in progress.
    pub fn close(&mut self) -> Result<(), CoreError> {
        if let Sink::Journal(journal) = &mut self.sink {
            journal.sync()?;
        }
        self.reap_snapshot();
        Ok(())
    }

    fn snapshot(&mut self) {
        if self.snapshot_job.is_some() {
            return;
        }
        self.last_snapshot_seq = self.state.last_seq();
        let entries = self.state.resting_orders() + self.state.pending_trades().len();
        self.snapshot_gap = self
            .snapshot_every
            .max((entries as u64).saturating_mul(SNAPSHOT_COMMANDS_PER_ENTRY));
        self.snapshot_job = Some(snapshot::write_in_background(
            &self.state,
            &self.journal_dir,
        ));
    }

    fn reap_snapshot(&mut self) {
        if let Some(job) = self.snapshot_job.take() {
            match job.join() {
                Ok(Ok(path)) => tracing::info!(path = %path.display(), "snapshot written"),
                Ok(Err(e)) => tracing::warn!(error = %e, "snapshot failed"),
                Err(_) => tracing::warn!("snapshot thread panicked"),
            }
        }
    }
}

#[path = "core_apply.rs"]
mod apply;

#[path = "core_replicated.rs"]
mod replicated;

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
