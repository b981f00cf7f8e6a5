//! Recovery: the newest valid snapshot, then the journal's tail, through the
//! same `apply` the live engine ran. The venue calls this at start; so does
//! `tonnex-replay --journal`, offline.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::reader::{decode, list_segments, SegmentFile};
use super::RecoverError;
use crate::command::Command;
use crate::event::Event;
use crate::snapshot;
use crate::state::{EngineConfig, State};

/// A torn final record, cut off (it was never acknowledged).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// The newest segment.
    pub path: PathBuf,
    /// Where the torn record starts: the log ends here.
    pub offset: u64,
    /// Where its bytes end.
    pub end: u64,
}

/// What became of an order, as far as the journal tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderStatus {
    /// Resting in the book.
    Open,
    /// Traded in full.
    Filled,
    /// Left the book (or never joined it) without trading in full.
    Cancelled,
    /// Refused on arrival.
    Rejected,
}

impl OrderStatus {
    /// `open`, `filled`, `cancelled` or `rejected`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Open => "open",
            OrderStatus::Filled => "filled",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Rejected => "rejected",
        }
    }
}

/// The rebuilt engine and where the journal goes on.
pub struct Recovered {
    /// The state after the last good record.
    pub state: State,
    /// Journal records applied (after the snapshot, if one was used).
    pub records: u64,
    /// Sequence number of the last command in the state (0: none).
    pub last_seq: u64,
    /// The snapshot recovery started from.
    pub snapshot_seq: Option<u64>,
    /// A torn final record that was found (and is to be cut off).
    pub torn: Option<TornTail>,
    /// The newest segment and the offset after its last good record.
    pub append_at: Option<(PathBuf, u64)>,
    /// Problems recovery worked around (an unreadable snapshot, a torn tail),
    /// for the operator's log.
    pub warnings: Vec<String>,
    /// With `track_orders`: every order id seen, and its status.
    pub orders: BTreeMap<u64, OrderStatus>,
}

/// How to recover.
#[derive(Clone, Copy, Debug)]
pub struct RecoverOptions {
    /// Start from the newest valid snapshot (else replay the whole journal,
    /// which must then reach back to sequence 1).
    pub use_snapshot: bool,
    /// Collect every order's status into [`Recovered::orders`].
    pub track_orders: bool,
    /// The engine configuration for a journal that has no segment yet.
    pub config: EngineConfig,
}

/// Rebuilds the state a venue left in journal folder `dir`.
pub fn recover(dir: &Path, options: RecoverOptions) -> Result<Recovered, RecoverError> {
    let segments = list_segments(dir)?;
    let mut warnings = Vec::new();
    let mut orders = BTreeMap::new();

    // The newest snapshot that reads back whole.
    let mut start: Option<State> = None;
    if options.use_snapshot {
        let snapshots = snapshot::list(dir).map_err(|e| RecoverError::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })?;
        for (seq, path) in snapshots {
            match snapshot::read(&path).and_then(|image| {
                State::from_image(&image).map_err(|what| snapshot::SnapshotError::Invalid {
                    path: path.clone(),
                    what,
                })
            }) {
                Ok(state) => {
                    if options.track_orders {
                        for order in state.image().orders {
                            orders.insert(order.id, OrderStatus::Open);
                        }
                    }
                    start = Some(state);
                    break;
                }
                Err(e) => warnings.push(format!("snapshot {seq} skipped: {e}")),
            }
        }
    }
    let snapshot_seq = start.as_ref().map(State::last_seq);
    let covered = snapshot_seq.unwrap_or(0);

    let mut state = match start {
        Some(state) => state,
        None => {
            let config = match segments.first() {
                Some((first, path)) => SegmentFile::open(path, *first)?.header()?.config,
                None => options.config,
            };
            State::new(config)
        }
    };

    let mut records = 0;
    let mut events = Vec::new();
    let end = scan(
        &segments,
        covered,
        &mut warnings,
        |segment, seq, payload, offset| {
            let command = decode(segment, payload, offset)?;
            events.clear();
            state.apply(seq, &command, &mut events);
            if options.track_orders {
                track(&mut orders, &command, &events);
            }
            records += 1;
            Ok(())
        },
    )?;
    let (torn, append_at) = (end.torn, end.append_at);
    Ok(Recovered {
        last_seq: state.last_seq(),
        state,
        records,
        snapshot_seq,
        torn,
        append_at,
        warnings,
        orders,
    })
}

/// Where the journal ends and how to go on appending, without its records
/// applied ([`locate_end`]).
#[derive(Clone, Debug, Default)]
pub struct JournalEnd {
    /// Sequence number of the last record (or of the snapshot, if later).
    pub last_seq: u64,
    /// Records after the snapshot.
    pub records: u64,
    /// A torn final record that was found (and is to be cut off).
    pub torn: Option<TornTail>,
    /// The newest segment and the offset after its last good record.
    pub append_at: Option<(PathBuf, u64)>,
    /// Problems worked around, for the operator's log.
    pub warnings: Vec<String>,
}

impl From<&Recovered> for JournalEnd {
    fn from(recovered: &Recovered) -> JournalEnd {
        JournalEnd {
            last_seq: recovered.last_seq,
            records: recovered.records,
            torn: recovered.torn.clone(),
            append_at: recovered.append_at.clone(),
            warnings: recovered.warnings.clone(),
        }
    }
}

/// Finds where the journal in `dir` ends after the snapshot at sequence
/// `covered` (0: none), checking every record's checksum and the segments'
/// continuity as [`recover`] does, but applying nothing: for a caller that
/// rebuilds its state by other means (a cluster node replays its committed
/// log through its own state machine).
pub fn locate_end(dir: &Path, covered: u64) -> Result<JournalEnd, RecoverError> {
    let segments = list_segments(dir)?;
    let mut warnings = Vec::new();
    let mut records = 0;
    let end = scan(&segments, covered, &mut warnings, |_, _, _, _| {
        records += 1;
        Ok(())
    })?;
    Ok(JournalEnd {
        last_seq: (end.next_seq - 1).max(covered),
        records,
        torn: end.torn,
        append_at: end.append_at,
        warnings,
    })
}

/// The end of a scan.
struct ScanEnd {
    next_seq: u64,
    torn: Option<TornTail>,
    append_at: Option<(PathBuf, u64)>,
}

/// Reads the segments after the snapshot at `covered`, handing `visit`
/// every record past it, and says where the journal ends.
fn scan(
    segments: &[(u64, PathBuf)],
    covered: u64,
    warnings: &mut Vec<String>,
    mut visit: impl FnMut(&SegmentFile, u64, &[u8], usize) -> Result<(), RecoverError>,
) -> Result<ScanEnd, RecoverError> {
    // Segments wholly covered by the snapshot need not be read: a segment is
    // covered when the next one starts at or before covered + 1.
    let mut first_needed = 0;
    for i in 0..segments.len() {
        if segments
            .get(i + 1)
            .is_some_and(|(next, _)| *next <= covered + 1)
        {
            first_needed = i + 1;
        }
    }
    if let Some((first, path)) = segments.get(first_needed) {
        if *first > covered + 1 {
            return Err(RecoverError::MissingStart {
                path: path.clone(),
                first: *first,
            });
        }
    }

    let mut next_seq = covered + 1;
    let mut torn = None;
    let mut append_at = None;
    let count = segments.len();
    for (i, (first, path)) in segments.iter().enumerate().skip(first_needed) {
        let segment = SegmentFile::open(path, *first)?;
        let newest = i + 1 == count;
        if i > first_needed && *first != next_seq {
            return Err(RecoverError::Corrupt {
                path: path.clone(),
                offset: 0,
                what: format!(
                    "segment starts at sequence {first}, the journal before it ends at {}",
                    next_seq - 1
                ),
            });
        }
        let end = segment.scan(newest, |seq, payload, offset| {
            if seq <= covered {
                return Ok(()); // already in the snapshot
            }
            visit(&segment, seq, payload, offset)
        })?;
        next_seq = end.next_seq;
        if let Some(end_offset) = end.torn_end {
            warnings.push(format!(
                "{}: torn final record at offset {} ignored (it was never acknowledged)",
                path.display(),
                end.pos
            ));
            torn = Some(TornTail {
                path: path.clone(),
                offset: end.pos as u64,
                end: end_offset,
            });
        }
        if newest {
            append_at = Some((path.clone(), end.pos as u64));
        }
    }
    if next_seq <= covered && count > 0 {
        warnings.push(format!(
            "the journal ends at sequence {} but the snapshot reaches {covered}: appends start a new segment",
            next_seq - 1
        ));
        // Appending after the old end would leave a gap inside a segment;
        // a new segment named covered + 1 continues where the snapshot is.
        append_at = None;
        torn = None;
    }
    Ok(ScanEnd {
        next_seq,
        torn,
        append_at,
    })
}

/// Updates order statuses from one command's events.
fn track(orders: &mut BTreeMap<u64, OrderStatus>, command: &Command, events: &[Event]) {
    for event in events {
        match *event {
            Event::Accepted { order_id, .. } => {
                orders.insert(order_id, OrderStatus::Open);
            }
            Event::Rejected { order_id, .. } => {
                // Only a new order's own rejection; a refused cancel or
                // replace says nothing about the order it names.
                if matches!(command, Command::New(o) if o.id == order_id) {
                    orders.entry(order_id).or_insert(OrderStatus::Rejected);
                }
            }
            Event::Fill {
                taker_id,
                maker_id,
                taker_open,
                maker_open,
                ..
            } => {
                if taker_open.tonnes() == 0 {
                    orders.insert(taker_id, OrderStatus::Filled);
                }
                if maker_open.tonnes() == 0 {
                    orders.insert(maker_id, OrderStatus::Filled);
                }
            }
            Event::Cancelled { order_id, .. } => {
                orders.insert(order_id, OrderStatus::Cancelled);
            }
            Event::Replaced { .. } | Event::Applied => {}
        }
    }
}
