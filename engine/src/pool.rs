//! The order pool: every resting order lives in one preallocated slot,
//! addressed by a `u32` index, linked into its price level's FIFO through
//! `prev`/`next`. Freed slots are recycled through a free list, so the steady
//! state allocates nothing.

use tonnex_protocol::Side;

use crate::owners::Owners;

/// "No slot": the end of a list.
pub const NIL: u32 = u32::MAX;

/// Flag bit: the order sells.
const FLAG_SELL: u8 = 1;
/// Flag bit: the order is post-only (matters when a replace re-enters it).
const FLAG_POST_ONLY: u8 = 2;
/// Flag bit: the buyer attached a valid attestation (may trade below its floor).
const FLAG_ATTESTED: u8 = 4;

/// One resting order. 56 bytes: the hot fields a match touches come first;
/// the client's id, which only the reports need, last.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct Slot {
    /// Venue order id.
    pub id: u64,
    /// Open (unfilled) quantity in tonnes.
    pub qty: u64,
    /// Owning account.
    pub account: u64,
    /// Limit price in ticks.
    pub price: i64,
    /// Previous order in the level (older), or `NIL`.
    pub prev: u32,
    /// Next order in the level (newer), or `NIL`; the free-list link when free.
    pub next: u32,
    /// Compliance price floor in ticks (0: none).
    pub floor_ticks: u32,
    /// Instrument index.
    pub instrument: u16,
    flags: u8,
    /// The client's id for the order (0: none, as in workload replays).
    /// The engine keeps it so the venue needs no order record of its own
    /// to rebuild after a restart: one record per order.
    pub client_order_id: u64,
}

const _: () = assert!(std::mem::size_of::<Slot>() == 56);

impl Slot {
    /// A fresh, unlinked slot.
    #[must_use]
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: u64,
        account: u64,
        instrument: u16,
        side: Side,
        price: i64,
        qty: u64,
        floor_ticks: u32,
        post_only: bool,
        attested: bool,
    ) -> Slot {
        let mut flags = 0;
        if side == Side::Sell {
            flags |= FLAG_SELL;
        }
        if post_only {
            flags |= FLAG_POST_ONLY;
        }
        if attested {
            flags |= FLAG_ATTESTED;
        }
        Slot {
            id,
            qty,
            account,
            price,
            prev: NIL,
            next: NIL,
            floor_ticks,
            instrument,
            flags,
            client_order_id: 0,
        }
    }

    /// The slot, carrying the client's id for the order.
    #[must_use]
    pub fn with_client_order_id(self, client_order_id: u64) -> Slot {
        Slot {
            client_order_id,
            ..self
        }
    }

    /// The order's side.
    #[inline]
    #[must_use]
    pub fn side(&self) -> Side {
        if self.flags & FLAG_SELL != 0 {
            Side::Sell
        } else {
            Side::Buy
        }
    }

    /// Whether the order was entered post-only.
    #[inline]
    #[must_use]
    pub fn post_only(&self) -> bool {
        self.flags & FLAG_POST_ONLY != 0
    }

    /// Whether the order carries a valid attestation.
    #[inline]
    #[must_use]
    pub fn attested(&self) -> bool {
        self.flags & FLAG_ATTESTED != 0
    }
}

/// The slab of order slots with its free list, and each account's list of
/// the slots it holds.
#[derive(Clone, Debug)]
pub struct Pool {
    slots: Vec<Slot>,
    free_head: u32,
    live: usize,
    /// Each account's slots (`None`: not kept, see [`Pool::drop_owner_lists`]).
    owners: Option<Owners>,
}

impl Pool {
    /// A pool with room for `capacity` orders before it has to grow.
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Pool {
        Pool {
            slots: Vec::with_capacity(capacity),
            free_head: NIL,
            live: 0,
            owners: Some(Owners::with_capacity(capacity)),
        }
    }

    /// Stores `slot` and returns its index.
    #[inline]
    pub fn alloc(&mut self, slot: Slot) -> u32 {
        self.live += 1;
        let account = slot.account;
        let index = if self.free_head != NIL {
            let index = self.free_head;
            let cell = &mut self.slots[index as usize];
            self.free_head = cell.next;
            *cell = slot;
            index
        } else {
            let index = u32::try_from(self.slots.len()).expect("order pool exceeds u32 slots");
            assert!(index != NIL, "order pool exceeds u32 slots");
            self.slots.push(slot);
            index
        };
        if let Some(owners) = &mut self.owners {
            owners.link(index, account);
        }
        index
    }

    /// Returns slot `index` to the free list.
    #[inline]
    pub fn release(&mut self, index: u32) {
        self.live -= 1;
        let cell = &mut self.slots[index as usize];
        if let Some(owners) = &mut self.owners {
            owners.unlink(index, cell.account);
        }
        cell.next = self.free_head;
        self.free_head = index;
    }

    /// The slot at `index`.
    #[inline]
    #[must_use]
    pub fn get(&self, index: u32) -> &Slot {
        &self.slots[index as usize]
    }

    /// The slot at `index`, mutably.
    #[inline]
    pub fn get_mut(&mut self, index: u32) -> &mut Slot {
        &mut self.slots[index as usize]
    }

    /// Orders currently stored.
    #[must_use]
    pub fn live(&self) -> usize {
        self.live
    }

    /// Stops keeping each account's list of its slots (a pool with none in
    /// use: the replay tool's, whose workloads never ask for one account's
    /// orders but pay for the lists on every order).
    pub fn drop_owner_lists(&mut self) {
        assert_eq!(self.live, 0, "owner lists dropped from a pool in use");
        self.owners = None;
    }

    /// Each account's list of its slots, if kept.
    #[must_use]
    pub fn owners(&self) -> Option<&Owners> {
        self.owners.as_ref()
    }

    /// Slots ever used at once (the pool's high-water mark).
    #[must_use]
    pub fn high_water(&self) -> usize {
        self.slots.len()
    }
}
