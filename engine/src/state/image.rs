//! The canonical image of a [`State`]: what a snapshot stores and what two
//! states are compared by.

use super::{crosses, EngineConfig, State, MAX_QTY};
use crate::accounts::Accounts;
use crate::book::Book;
use crate::command::InstrumentSpec;
use crate::event::Event;
use crate::pool::Pool;
use crate::pool::Slot;
use crate::settlement::PendingTrades;
use crate::venue::{VenueImage, VenueState};
use tonnex_protocol::Side;

/// The canonical, serialisable form of a [`State`] (see [`State::image`]).
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct StateImage {
    /// The engine's configuration.
    pub config: EngineConfig,
    /// Sequence number of the last command applied.
    pub last_seq: u64,
    /// Highest order id ever accepted.
    pub max_order_id: u64,
    /// Instruments, by index.
    pub instruments: Vec<InstrumentImage>,
    /// Resting orders, per instrument bids best first then asks, FIFO in a level.
    pub orders: Vec<OrderImage>,
    /// Accounts and their balances, in first-seen order.
    pub accounts: Vec<crate::accounts::Account>,
    /// The venue's bookkeeping: client ids, claims, holds, attestations, rules.
    pub venue: VenueImage,
    /// Trades booked and not yet finished by settlement, in trade id order.
    pub pending_trades: Vec<crate::settlement::PendingTrade>,
    /// The highest settlement outbox id applied.
    pub settlement_watermark: u64,
}

/// An instrument in a [`StateImage`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct InstrumentImage {
    /// Its definition.
    pub spec: InstrumentSpec,
    /// Whether it is halted.
    pub halted: bool,
}

/// A resting order in a [`StateImage`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct OrderImage {
    /// Order id.
    pub id: u64,
    /// Owning account.
    pub account: u64,
    /// Instrument index.
    pub instrument: u32,
    /// Side.
    pub side: Side,
    /// Limit price in ticks.
    pub price: i64,
    /// Open quantity in tonnes.
    pub qty: u64,
    /// Compliance floor in ticks.
    pub floor_ticks: u32,
    /// Entered post-only.
    pub post_only: bool,
    /// Carries an attestation.
    pub attested: bool,
    /// The client's id for the order (0: none).
    pub client_order_id: u64,
}

/// What a snapshot copies of a [`State`] on the engine's thread, to build
/// and write its image elsewhere: everything an image is made of, and not
/// the id index (an image does not hold it; at the venue's order capacity
/// it is 16 MB, which a whole-state clone copied into fresh pages at every
/// snapshot, each page a fault on the event loop).
#[derive(Debug)]
pub struct SnapshotCopy {
    config: EngineConfig,
    last_seq: u64,
    max_order_id: u64,
    books: Vec<Book>,
    pool: Pool,
    accounts: Accounts,
    venue: VenueState,
    trades: PendingTrades,
}

impl SnapshotCopy {
    /// The copied state's image (the same as [`State::image`] would have
    /// given when it was copied).
    #[must_use]
    pub fn image(&self) -> StateImage {
        Parts {
            config: self.config,
            last_seq: self.last_seq,
            max_order_id: self.max_order_id,
            books: &self.books,
            pool: &self.pool,
            accounts: &self.accounts,
            venue: &self.venue,
            trades: &self.trades,
        }
        .image()
    }
}

/// The parts of a state an image is made of.
struct Parts<'a> {
    config: EngineConfig,
    last_seq: u64,
    max_order_id: u64,
    books: &'a [Book],
    pool: &'a Pool,
    accounts: &'a Accounts,
    venue: &'a VenueState,
    trades: &'a PendingTrades,
}

impl Parts<'_> {
    fn image(&self) -> StateImage {
        let mut orders = Vec::with_capacity(self.pool.live());
        let mut prices = Vec::new();
        for book in self.books {
            book.walk(self.pool, &mut prices, |_, slot| {
                orders.push(OrderImage {
                    id: slot.id,
                    account: slot.account,
                    instrument: u32::from(slot.instrument),
                    side: slot.side(),
                    price: slot.price,
                    qty: slot.qty,
                    floor_ticks: slot.floor_ticks,
                    post_only: slot.post_only(),
                    attested: slot.attested(),
                    client_order_id: slot.client_order_id,
                });
            });
        }
        StateImage {
            config: self.config,
            last_seq: self.last_seq,
            max_order_id: self.max_order_id,
            instruments: self
                .books
                .iter()
                .map(|b| InstrumentImage {
                    spec: b.spec,
                    halted: b.halted,
                })
                .collect(),
            orders,
            accounts: self.accounts.all().to_vec(),
            venue: self.venue.image(),
            pending_trades: self.trades.image().0,
            settlement_watermark: self.trades.watermark(),
        }
    }
}

impl State {
    /// The whole logical state, in a canonical form: what a snapshot stores
    /// and what two states are compared by. Orders are listed per
    /// instrument, bids best first then asks, each level in time priority;
    /// accounts in first-seen order. (Pool slot numbers and the dense
    /// window's position are layout, not state, and are not included.)
    #[must_use]
    pub fn image(&self) -> StateImage {
        Parts {
            config: self.config,
            last_seq: self.last_seq,
            max_order_id: self.max_order_id,
            books: &self.books,
            pool: &self.pool,
            accounts: &self.accounts,
            venue: &self.venue,
            trades: &self.trades,
        }
        .image()
    }

    /// What a snapshot needs of this state, copied (see [`SnapshotCopy`]).
    #[must_use]
    pub fn snapshot_copy(&self) -> SnapshotCopy {
        SnapshotCopy {
            config: self.config,
            last_seq: self.last_seq,
            max_order_id: self.max_order_id,
            books: self.books.clone(),
            pool: self.pool.clone(),
            accounts: self.accounts.clone(),
            venue: self.venue.clone(),
            trades: self.trades.clone(),
        }
    }

    /// Rebuilds a state from its image. Fails, saying why, on an image no
    /// state could have produced (an order in an unknown instrument or
    /// outside its band, a duplicate id, a crossed book).
    pub fn from_image(image: &StateImage) -> Result<State, String> {
        let mut state = State::new(EngineConfig {
            order_capacity: image.config.order_capacity.max(image.orders.len()),
            ..image.config
        });
        for (i, instrument) in image.instruments.iter().enumerate() {
            let mut events = Vec::new();
            state.add_instrument(i as u32, instrument.spec, &mut events);
            if events != [Event::Applied] {
                return Err(format!(
                    "instrument {i} ({}) is invalid",
                    instrument.spec.symbol
                ));
            }
            state.books[i].halted = instrument.halted;
        }
        for order in &image.orders {
            let Some(book) = state.books.get(order.instrument as usize) else {
                return Err(format!(
                    "order {} in unknown instrument {}",
                    order.id, order.instrument
                ));
            };
            if !book.in_band(order.price) || order.qty == 0 || order.qty > MAX_QTY {
                return Err(format!(
                    "order {} has price {} or quantity {} out of range",
                    order.id, order.price, order.qty
                ));
            }
            if crosses(book, order.side, order.price) {
                return Err(format!(
                    "order {} at {} crosses its book",
                    order.id, order.price
                ));
            }
            if state.ids.get(order.id, &state.pool).is_some() {
                return Err(format!("order {} appears twice", order.id));
            }
            state.rest(
                Slot::new(
                    order.id,
                    order.account,
                    order.instrument as u16,
                    order.side,
                    order.price,
                    order.qty,
                    order.floor_ticks,
                    order.post_only,
                    order.attested,
                )
                .with_client_order_id(order.client_order_id),
            );
        }
        state.accounts = Accounts::from_list(image.accounts.clone());
        state.last_seq = image.last_seq;
        state.max_order_id = image.max_order_id;
        state.venue = VenueState::from_image(&image.venue);
        state.trades = crate::settlement::PendingTrades::from_image(
            &image.pending_trades,
            image.settlement_watermark,
        )?;
        Ok(state)
    }
}

impl State {
    /// SHA-256 of the canonical image, lowercase hex: two states are the
    /// same venue state exactly when their digests are equal (books, holds,
    /// balances, pending trades, claims, client ids, held orders, attestations,
    /// rules).
    #[must_use]
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let bytes = bincode::encode_to_vec(self.image(), tonnex_protocol::codec_config())
            .expect("a state image always encodes");
        Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}
