//! A venue node's replica: Raft over the journal ([`JournalLog`]) applying
//! committed entries to the venue's core, its transport on the caller's
//! mio poll, and the logical clock.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Registry, Token};
use tonnex_cluster::{
    Applied, ClusterError, Hello, ProposeError, Replica, Role, Status, Transport,
};

use tonnex_engine::{Command, VenueCommand};

use crate::venue::core::{Core, CoreError, Input, Output};
use crate::venue::metrics::Metrics;

/// The transport's tokens start here (the venue's connections count up
/// from a handful).
pub const TOKEN_BASE: usize = 1 << 40;

/// The Raft tick: elections after 20 to 40 ticks without a leader.
pub const TICK: Duration = Duration::from_millis(10);

/// When a node's view was last published, and the role and term it showed.
type Shown = (Instant, Role, u64);

/// One node of the cluster, as the venue runs it.
pub struct Node {
    pub(super) replica: Replica<Core>,
    transport: Transport,
    registry: Registry,
    last_tick: Instant,
    applied: Vec<Applied>,
    /// Every node's order-entry address, when known (for redirects).
    pub(super) order_entry: BTreeMap<u64, String>,
    /// Set once this node sequences: losing leadership then ends its run.
    leading: bool,
    /// Messages from the network Raft refused (dropped).
    refused: u64,
    /// Where its view is published for `GET /metrics`, and the last time.
    metrics: Option<(Arc<Metrics>, Option<Shown>)>,
}

impl Node {
    /// A node on `replica`, its transport listening on `listen`; the
    /// hello it dials peers with names its own order-entry address and
    /// proves the cluster `key`.
    pub fn new(
        replica: Replica<Core>,
        listen: SocketAddr,
        key: &[u8],
        peers: BTreeMap<u64, SocketAddr>,
        order_entry: BTreeMap<u64, String>,
        registry: &Registry,
    ) -> std::io::Result<Node> {
        let hello = Hello {
            id: replica.id(),
            listen,
            client: order_entry.get(&replica.id()).cloned().unwrap_or_default(),
        };
        let transport = Transport::bind(&hello, key, peers, registry, TOKEN_BASE)?;
        Ok(Node {
            replica,
            transport,
            registry: registry.try_clone()?,
            last_tick: Instant::now(),
            applied: Vec::new(),
            order_entry,
            leading: false,
            refused: 0,
            metrics: None,
        })
    }

    /// Publishes the node's view to `metrics` from now on (its core's
    /// journal position too).
    pub fn set_metrics(&mut self, metrics: &Arc<Metrics>) {
        self.replica.state_mut().set_metrics(Arc::clone(metrics));
        self.metrics = Some((Arc::clone(metrics), None));
    }

    fn publish(&mut self) {
        let Some((metrics, at)) = &mut self.metrics else {
            return;
        };
        // Every 100 ms, and at once when the role or term changes.
        let (role, term) = (self.replica.role(), self.replica.term());
        if at.is_some_and(|(at, shown_role, shown_term)| {
            at.elapsed() < Duration::from_millis(100) && (shown_role, shown_term) == (role, term)
        }) {
            return;
        }
        *at = Some((Instant::now(), role, term));
        let status = self.replica.status();
        let gauges = &metrics.cluster;
        let max_lag = status.peers.iter().map(|p| p.lag).max().unwrap_or(0);
        for (gauge, value) in [
            (&gauges.node, status.id),
            (&gauges.leader, u64::from(status.role == Role::Leader)),
            (&gauges.term, status.term),
            (&gauges.commit, status.commit),
            (&gauges.applied, status.applied),
            (&gauges.max_lag, max_lag),
            (&gauges.read_back, self.replica.log().commands_read_back()),
        ] {
            gauge.store(value, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Whether `token` is the transport's.
    #[must_use]
    pub fn owns(token: Token) -> bool {
        token.0 >= TOKEN_BASE
    }

    /// The core (read-only).
    #[must_use]
    pub fn core(&self) -> &Core {
        self.replica.state()
    }

    /// The core.
    pub fn core_mut(&mut self) -> &mut Core {
        self.replica.state_mut()
    }

    /// This node's role.
    #[must_use]
    pub fn role(&self) -> Role {
        self.replica.role()
    }

    /// Role, term, commit and applied index, and each peer's progress.
    #[must_use]
    pub fn status(&self) -> Status {
        self.replica.status()
    }

    /// Messages from the network Raft refused.
    #[must_use]
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// The leader's id and order-entry address, as far as this node knows.
    #[must_use]
    pub fn leader(&self) -> (u64, String) {
        let id = self.replica.leader().unwrap_or(0);
        (id, self.order_entry.get(&id).cloned().unwrap_or_default())
    }

    /// The voters, as this node last applied them.
    #[must_use]
    pub fn voters(&self) -> Vec<u64> {
        self.replica.voters()
    }

    /// Proposes adding node `id`, listening for Raft at `address`.
    pub fn propose_add(&mut self, id: u64, address: SocketAddr) -> Result<u64, ProposeError> {
        self.transport.add_peer(id, address);
        self.replica.propose_add_at(id, &address.to_string())
    }

    /// Proposes removing voter `id`.
    pub fn propose_remove(&mut self, id: u64) -> Result<u64, ProposeError> {
        self.replica.propose_remove(id)
    }

    /// Hands leadership to `to` (a planned transfer).
    pub fn transfer_leader(&mut self, to: u64) {
        self.replica.transfer_leader(to);
    }

    /// From now on this node sequences: its core holds outputs until
    /// committed, and losing leadership ends its run.
    pub fn lead(&mut self) {
        self.leading = true;
        self.replica.state_mut().lead();
    }

    /// Reads what the transport's socket `token` has.
    pub fn on_event(&mut self, token: Token) {
        let (replica, refused) = (&mut self.replica, &mut self.refused);
        self.transport
            .on_event(token, &self.registry, &mut |message| {
                // A message Raft refuses (a stranger's) is dropped, never fatal.
                if replica.step(message).is_err() {
                    *refused += 1;
                }
            });
    }

    /// How long until the next tick is due.
    #[must_use]
    pub fn until_tick(&self) -> Duration {
        TICK.saturating_sub(self.last_tick.elapsed())
    }

    /// Ticks when due, persists and applies what Raft has ready, sends its
    /// messages. A leader that lost leadership stops here, before applying
    /// anything a new leader may have overwritten.
    pub fn pump(&mut self) -> Result<(), CoreError> {
        if self.leading && self.replica.role() != Role::Leader {
            return Err(CoreError::Demoted);
        }
        if self.last_tick.elapsed() >= TICK {
            self.last_tick = Instant::now();
            self.replica.tick();
        }
        self.applied.clear();
        self.replica
            .handle_ready(&mut self.applied)
            .map_err(CoreError::Cluster)?;
        for (id, address) in self.replica.take_joined() {
            match address.parse() {
                Ok(address) => self.transport.add_peer(id, address),
                Err(e) => {
                    tracing::warn!(node = id, %address, error = %e, "an added node's address does not parse")
                }
            }
        }
        self.transport
            .send(self.replica.take_messages(), &self.registry);
        let reports = self.transport.take_reports();
        // A peer's own word for where its clients reach it fills a gap in
        // --peer-order-entry (a node added since), never overrides it.
        for hello in reports.hellos {
            if !hello.client.is_empty() {
                self.order_entry.entry(hello.id).or_insert(hello.client);
            }
        }
        for peer in reports.unreachable {
            self.replica.report_unreachable(peer);
        }
        for (peer, delivered) in reports.snapshots {
            self.replica.report_snapshot(peer, delivered);
        }
        self.publish();
        Ok(())
    }

    /// Applies `batch` at once and hands `emit` its outputs (the gateway
    /// holds what it sends until [`Node::seal`] has them committed). While
    /// a snapshot is due and entries are in flight, the batch waits (the
    /// caller keeps it): the state must settle on the log for the snapshot,
    /// which a leader under steady load would otherwise never reach.
    pub fn process(
        &mut self,
        batch: &mut Vec<Input>,
        emit: &mut dyn FnMut(Output),
    ) -> Result<bool, CoreError> {
        if self.replica.snapshot_due() && self.core().ahead() {
            self.pump()?;
            return Ok(false);
        }
        self.replica.state_mut().process(batch, emit)
    }

    /// Ends a round: the sequenced messages it made (`records`, outbound
    /// records in `session_id`) are applied as `Reports` commands after
    /// its commands, all of them are proposed as one entry (so a report
    /// is committed with the command that made it, or neither is), and
    /// Raft does its work.
    pub fn seal(&mut self, session_id: u64, records: Vec<Vec<u8>>) -> Result<(), CoreError> {
        if !records.is_empty() {
            let mut inputs: Vec<Input> = records
                .into_iter()
                .map(|records| Input::Command {
                    corr: 0,
                    command: Command::Venue(Box::new(VenueCommand::Reports {
                        session_id,
                        records,
                    })),
                    annotation: None,
                })
                .collect();
            // Their only outputs are their own Begins: nothing to answer.
            self.replica.state_mut().process(&mut inputs, &mut |_| {})?;
        }
        let mut commands = self.replica.state_mut().take_proposal();
        if !commands.is_empty() {
            self.replica
                .propose(&mut commands)
                .map_err(|_| CoreError::Demoted)?;
        }
        self.pump()
    }

    /// Periodic work: Raft's, then the core's (a finished snapshot).
    pub fn idle(&mut self, emit: &mut dyn FnMut(Output)) -> Result<(), CoreError> {
        self.pump()?;
        self.replica.state_mut().idle(emit)
    }

    /// Waits, polling `poll` for the transport alone, until everything
    /// applied is committed (start-up commands: the venue serves nobody
    /// yet). Fails after `patience` or when leadership is lost.
    pub fn settle(&mut self, poll: &mut mio::Poll, patience: Duration) -> Result<(), ClusterError> {
        let deadline = Instant::now() + patience;

        let mut events = mio::Events::with_capacity(64);
        while self.core().ahead() {
            if Instant::now() >= deadline || self.replica.role() != Role::Leader {
                return Err(ClusterError::Unsupported {
                    index: self.replica.applied_index(),
                    what: "start-up commands were not committed (no quorum, or leadership lost)"
                        .into(),
                });
            }
            let _ = poll.poll(&mut events, Some(self.until_tick()));
            for event in &events {
                if Node::owns(event.token()) {
                    self.on_event(event.token());
                }
            }
            match self.pump() {
                Ok(()) => {}
                Err(CoreError::Cluster(e)) => return Err(e),
                Err(_) => {}
            }
        }
        Ok(())
    }
}
