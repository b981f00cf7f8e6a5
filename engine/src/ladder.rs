//! One side of a book: its price levels, reachable without a tree walk.
//!
//! Levels live in a dense window of `W` consecutive ticks (an array indexed by
//! `price - base`), with one bit per tick in an occupancy bitmap so that the
//! next best level is found a 64-tick word at a time. Prices outside the
//! window (rare: far-away limits on instruments whose band is wider than the
//! window) fall back to a `BTreeMap`. Where the band fits in the window the
//! fallback is never used. While the window holds no level its base moves to
//! centre on the next order, so a drifting market keeps its levels dense.
//!
//! "Better" is side-aware: for bids a higher price, for asks a lower one.

use std::collections::BTreeMap;

use crate::pool::NIL;
use tonnex_protocol::Side;

/// Default widest dense window, in ticks (1 MiB of levels per side at 16
/// bytes each); `EngineConfig::window_ticks` sets it per engine.
pub const DEFAULT_WINDOW_TICKS: i64 = 1 << 16;

/// A price level: a FIFO of order slots, oldest at `head`, and their open total.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Level {
    /// Oldest order (first to trade), or `NIL`.
    pub head: u32,
    /// Newest order, or `NIL`.
    pub tail: u32,
    /// Sum of the open quantities of the level's orders, in tonnes.
    pub qty: u64,
}

impl Level {
    /// A level with no orders.
    pub const EMPTY: Level = Level {
        head: NIL,
        tail: NIL,
        qty: 0,
    };

    /// Whether the level has no orders.
    #[inline]
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.head == NIL
    }
}

/// The levels of one side of one instrument's book.
#[derive(Clone, Debug)]
pub struct Ladder {
    side: Side,
    band_low: i64,
    band_high: i64,
    base: i64,
    dense: Box<[Level]>,
    bits: Box<[u64]>,
    dense_levels: usize,
    far: BTreeMap<i64, Level>,
    best: Option<i64>,
}

impl Ladder {
    /// An empty side for prices in `[band_low, band_high]`, with a dense
    /// window of at most `max_window` ticks (rounded up to a multiple of 64).
    #[must_use]
    pub fn new(side: Side, band_low: i64, band_high: i64, max_window: i64) -> Ladder {
        let span = band_high.saturating_sub(band_low).saturating_add(1);
        let window = span.min(max_window).max(64);
        let window = (window + 63) & !63;
        Ladder {
            side,
            band_low,
            band_high,
            base: band_low,
            dense: vec![Level::EMPTY; window as usize].into_boxed_slice(),
            bits: vec![0u64; window as usize / 64].into_boxed_slice(),
            dense_levels: 0,
            far: BTreeMap::new(),
            best: None,
        }
    }

    /// The best price with orders, if any.
    #[inline]
    #[must_use]
    pub fn best(&self) -> Option<i64> {
        self.best
    }

    /// Whether `a` is a better price than `b` on this side.
    #[inline]
    #[must_use]
    pub fn is_better(&self, a: i64, b: i64) -> bool {
        match self.side {
            Side::Buy => a > b,
            Side::Sell => a < b,
        }
    }

    #[inline]
    fn window_index(&self, price: i64) -> Option<usize> {
        let offset = price.wrapping_sub(self.base);
        if (offset as u64) < self.dense.len() as u64 {
            Some(offset as usize)
        } else {
            None
        }
    }

    /// The level at `price` (empty if none).
    #[inline]
    #[must_use]
    pub fn level(&self, price: i64) -> Level {
        match self.window_index(price) {
            Some(i) => self.dense[i],
            None => self.far_level(price),
        }
    }

    #[cold]
    #[inline(never)]
    fn far_level(&self, price: i64) -> Level {
        self.far.get(&price).copied().unwrap_or(Level::EMPTY)
    }

    /// The level at `price`, which must hold orders.
    #[inline]
    pub fn level_mut(&mut self, price: i64) -> &mut Level {
        match self.window_index(price) {
            Some(i) => &mut self.dense[i],
            None => self.far_level_mut(price),
        }
    }

    #[cold]
    #[inline(never)]
    fn far_level_mut(&mut self, price: i64) -> &mut Level {
        self.far
            .get_mut(&price)
            .expect("level_mut of a missing far level")
    }

    /// The level at `price`, created (empty, and made best if better) when absent.
    /// The caller must put an order in it before anything else reads the side.
    #[inline]
    pub fn level_for_insert(&mut self, price: i64) -> &mut Level {
        let better = match self.best {
            None => true,
            Some(best) => self.is_better(price, best),
        };
        if better {
            self.best = Some(price);
        }
        match self.window_index(price) {
            Some(i) => {
                if self.dense[i].is_empty() {
                    self.bits[i >> 6] |= 1u64 << (i & 63);
                    self.dense_levels += 1;
                }
                &mut self.dense[i]
            }
            None => self.far_level_for_insert(price),
        }
    }

    /// `level_for_insert` of a price outside the window: moves the window
    /// there if it is empty, else uses the far map.
    #[cold]
    #[inline(never)]
    fn far_level_for_insert(&mut self, price: i64) -> &mut Level {
        if self.dense_levels == 0 {
            self.recentre(price);
            if let Some(i) = self.window_index(price) {
                if self.dense[i].is_empty() {
                    self.bits[i >> 6] |= 1u64 << (i & 63);
                    self.dense_levels += 1;
                }
                return &mut self.dense[i];
            }
        }
        self.far.entry(price).or_insert(Level::EMPTY)
    }

    /// Moves the (empty) window so that `price` sits in its middle, inside
    /// the band, and pulls any far levels the window now covers into it.
    fn recentre(&mut self, price: i64) {
        debug_assert_eq!(self.dense_levels, 0);
        let window = self.dense.len() as i64;
        let highest_base = self.band_high.saturating_sub(window - 1).max(self.band_low);
        self.base = price
            .saturating_sub(window / 2)
            .clamp(self.band_low, highest_base);
        let end = self.base.saturating_add(window);
        while let Some((&p, _)) = self.far.range(self.base..end).next() {
            let level = self.far.remove(&p).expect("far level just seen");
            let i = (p - self.base) as usize;
            self.dense[i] = level;
            self.bits[i >> 6] |= 1u64 << (i & 63);
            self.dense_levels += 1;
        }
    }

    /// Call after the level at `price` lost its last order: forgets it and,
    /// if it was the best, finds the next best.
    #[inline]
    pub fn level_emptied(&mut self, price: i64) {
        match self.window_index(price) {
            Some(i) => {
                self.bits[i >> 6] &= !(1u64 << (i & 63));
                self.dense_levels -= 1;
            }
            None => self.far_level_emptied(price),
        }
        if self.best == Some(price) {
            self.best = self.next_worse(price);
        }
    }

    #[cold]
    #[inline(never)]
    fn far_level_emptied(&mut self, price: i64) {
        self.far.remove(&price);
    }

    /// The best non-empty price strictly worse than `price`.
    #[must_use]
    pub fn next_worse(&self, price: i64) -> Option<i64> {
        let dense = if self.dense_levels == 0 {
            None
        } else {
            match self.side {
                Side::Buy => {
                    let offset = price.saturating_sub(self.base);
                    if offset <= 0 {
                        None
                    } else {
                        let start = (offset - 1).min(self.dense.len() as i64 - 1) as usize;
                        self.highest_set_at_or_below(start)
                    }
                }
                Side::Sell => {
                    let offset = price.saturating_sub(self.base).saturating_add(1);
                    if offset >= self.dense.len() as i64 {
                        None
                    } else {
                        self.lowest_set_at_or_above(offset.max(0) as usize)
                    }
                }
            }
            .map(|i| self.base + i as i64)
        };
        let far = if self.far.is_empty() {
            None
        } else {
            self.far_next_worse(price)
        };
        match (dense, far) {
            (Some(d), Some(f)) => Some(if self.is_better(f, d) { f } else { d }),
            (d, f) => d.or(f),
        }
    }

    #[cold]
    #[inline(never)]
    fn far_next_worse(&self, price: i64) -> Option<i64> {
        match self.side {
            Side::Buy => self.far.range(..price).next_back().map(|(&p, _)| p),
            Side::Sell => self
                .far
                .range(price.saturating_add(1)..)
                .next()
                .map(|(&p, _)| p),
        }
    }

    fn highest_set_at_or_below(&self, start: usize) -> Option<usize> {
        let mut word = start >> 6;
        let mut bits = self.bits[word] & (u64::MAX >> (63 - (start & 63)));
        loop {
            if bits != 0 {
                return Some((word << 6) + 63 - bits.leading_zeros() as usize);
            }
            if word == 0 {
                return None;
            }
            word -= 1;
            bits = self.bits[word];
        }
    }

    fn lowest_set_at_or_above(&self, start: usize) -> Option<usize> {
        let mut word = start >> 6;
        let mut bits = self.bits[word] & (u64::MAX << (start & 63));
        loop {
            if bits != 0 {
                return Some((word << 6) + bits.trailing_zeros() as usize);
            }
            word += 1;
            if word == self.bits.len() {
                return None;
            }
            bits = self.bits[word];
        }
    }

    /// Every non-empty level's price, best first, appended to `out`.
    /// Not for the hot path: mass cancels, dumps and the invariant checker.
    pub fn prices_best_first(&self, out: &mut Vec<i64>) {
        let start = out.len();
        let window_end = self.base + self.dense.len() as i64;
        out.extend(self.far.range(..self.base).map(|(&p, _)| p));
        for (w, &word) in self.bits.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                let i = (w << 6) + bits.trailing_zeros() as usize;
                out.push(self.base + i as i64);
                bits &= bits - 1;
            }
        }
        out.extend(self.far.range(window_end..).map(|(&p, _)| p));
        if self.side == Side::Buy {
            out[start..].reverse();
        }
    }

    /// Checks the side's own bookkeeping: occupancy bits match non-empty
    /// levels, and the cached best is the true best. Panics with a message.
    pub fn check(&self) {
        let mut occupied = 0;
        for (i, level) in self.dense.iter().enumerate() {
            let bit = self.bits[i >> 6] >> (i & 63) & 1 == 1;
            assert_eq!(
                bit,
                !level.is_empty(),
                "occupancy bit of tick {}",
                self.base + i as i64
            );
            occupied += usize::from(bit);
        }
        assert_eq!(occupied, self.dense_levels, "dense level count");
        assert!(
            self.far.values().all(|l| !l.is_empty()),
            "empty far level kept"
        );
        let mut prices = Vec::new();
        self.prices_best_first(&mut prices);
        assert_eq!(self.best, prices.first().copied(), "cached best price");
        assert!(
            prices.windows(2).all(|w| self.is_better(w[0], w[1])),
            "levels not in best-first order"
        );
        assert!(
            prices
                .iter()
                .all(|&p| p >= self.band_low && p <= self.band_high),
            "level outside the band"
        );
    }
}
