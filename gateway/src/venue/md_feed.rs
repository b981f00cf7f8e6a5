//! The market-data feed (`[market_data]`, docs/protocol.md "Market-data
//! feed"): subscribers on a port of their own, with no order-entry account.
//! A subscription gets the instruments, then per instrument a full-depth
//! snapshot taken on the engine thread in order with the updates (so the
//! updates after it start at its `md_seq + 1`), then every level update and
//! trade. Each message is encoded once and queued to every subscriber; one
//! whose queue passes `max_queued_kb` is cut off with a reason, never
//! allowed to hold the venue back.

use mio::Token;
use tonnex_protocol::frame;
use tonnex_protocol::md::{MdMessage, MdRequest};
use tonnex_protocol::wire::{InstrumentInfo, Level, VenueMessage};

use super::core::Input;
use super::server::Gateway;

/// The feed's settings and who is subscribed to what.
#[derive(Default)]
pub(super) struct Feed {
    /// `[market_data] key`.
    pub key: Option<String>,
    /// Bytes a subscriber may have queued before it is cut off.
    pub max_queued: usize,
    /// Per instrument: the subscribed connections.
    pub subscribers: Vec<Vec<Token>>,
    /// One message, encoded once for every subscriber.
    pub scratch: Vec<u8>,
    /// Subscribers cut off as slow consumers, since start.
    pub cut: u64,
    /// Snapshots asked of the engine and not yet sent: (connection,
    /// instrument). A request while one is on its way asks nothing more
    /// (a full-depth snapshot is engine work no subscriber may multiply).
    pub pending: std::collections::BTreeSet<(usize, u32)>,
}

impl Gateway {
    /// A request on the market-data port.
    pub(super) fn on_md_request(&mut self, token: Token, request: MdRequest) {
        match request {
            MdRequest::Subscribe { key, instruments } => {
                self.md_subscribe(token, &key, instruments)
            }
            MdRequest::Snapshot { instrument } => {
                let subscribed = self
                    .net
                    .conn(token)
                    .is_some_and(|c| c.subscriptions.contains(&instrument));
                if subscribed {
                    self.md_snapshot(token, instrument);
                } else {
                    self.md_disconnect(token, format!("snapshot of instrument {instrument}, which this connection has not subscribed to"));
                }
            }
        }
    }

    fn md_subscribe(&mut self, token: Token, key: &str, instruments: Vec<u32>) {
        if let Some(expected) = &self.feed.key {
            if !super::session::constant_time_eq(expected.as_bytes(), key.as_bytes()) {
                self.md_disconnect(token, "wrong market-data key".into());
                return;
            }
        }
        if self
            .net
            .conn(token)
            .is_some_and(|c| !c.subscriptions.is_empty())
        {
            self.md_disconnect(token, "subscribed twice".into());
            return;
        }
        let count = self.market.instruments.len() as u32;
        let wanted: Vec<u32> = if instruments.is_empty() {
            (0..count).collect()
        } else {
            instruments
        };
        if let Some(bad) = wanted.iter().find(|&&i| i >= count) {
            self.md_disconnect(token, format!("unknown instrument {bad}"));
            return;
        }
        let reference = self
            .market
            .instruments
            .iter()
            .enumerate()
            .map(|(i, inst)| InstrumentInfo {
                instrument: i as u32,
                symbol: inst.symbol.to_string(),
                sub_ledger: inst.sub_ledger.to_string(),
                tick_micros: inst.tick_micros,
                min_price_ticks: inst.min_price,
                max_price_ticks: inst.max_price,
            })
            .collect();
        self.send_md(
            token,
            &MdMessage::Instruments {
                instruments: reference,
            },
        );
        for &instrument in &wanted {
            self.feed.subscribers[instrument as usize].push(token);
            self.md_snapshot(token, instrument);
        }
        if let Some(conn) = self.net.conn(token) {
            conn.subscriptions = wanted;
        }
    }

    /// Asks the engine thread for a full snapshot for `token`, in order
    /// with the updates.
    fn md_snapshot(&mut self, token: Token, instrument: u32) {
        if !self.feed.pending.insert((token.0, instrument)) {
            return;
        }
        self.metrics
            .md_snapshots
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.submit(Input::Book {
            instrument,
            account: 0,
            feed: Some(token.0),
        });
    }

    /// A snapshot the engine took for a feed connection, or for every
    /// subscriber after a mass change.
    pub(super) fn md_on_book(
        &mut self,
        feed: Option<usize>,
        instrument: u32,
        md_seq: u64,
        bids: &[Level],
        asks: &[Level],
    ) {
        let message = MdMessage::Snapshot {
            instrument,
            md_seq,
            bids: bids.to_vec(),
            asks: asks.to_vec(),
        };
        match feed {
            Some(token) => {
                // Only to the connection that asked, if it is still there
                // (its token may have gone to another connection since).
                if self.feed.pending.remove(&(token, instrument)) {
                    self.send_md(Token(token), &message);
                }
            }
            None => self.publish_md(instrument, &message),
        }
    }

    /// The feed's copy of an order-entry market-data message.
    pub(super) fn md_publish_venue(&mut self, instrument: u32, message: &VenueMessage) {
        if self
            .feed
            .subscribers
            .get(instrument as usize)
            .is_none_or(Vec::is_empty)
        {
            return;
        }
        let md = match *message {
            VenueMessage::LevelUpdate {
                instrument,
                md_seq,
                side,
                price_ticks,
                qty,
            } => MdMessage::Level {
                instrument,
                md_seq,
                side,
                price_ticks,
                qty,
            },
            VenueMessage::Trade {
                instrument,
                md_seq,
                trade_id,
                price_ticks,
                qty,
                aggressor_side,
            } => MdMessage::Trade {
                instrument,
                md_seq,
                trade_id,
                price_ticks,
                qty,
                aggressor_side,
            },
            _ => return,
        };
        self.publish_md(instrument, &md);
    }

    /// Encodes `message` once and queues it to every subscriber of `instrument`.
    fn publish_md(&mut self, instrument: u32, message: &MdMessage) {
        let Some(list) = self.feed.subscribers.get(instrument as usize) else {
            return;
        };
        if list.is_empty() {
            return;
        }
        let tokens = list.clone();
        let mut bytes = std::mem::take(&mut self.feed.scratch);
        bytes.clear();
        frame::encode_into(message, &mut bytes);
        for token in tokens {
            self.queue_md(token, &bytes);
        }
        self.feed.scratch = bytes;
    }

    fn send_md(&mut self, token: Token, message: &MdMessage) {
        let mut bytes = Vec::new();
        frame::encode_into(message, &mut bytes);
        self.queue_md(token, &bytes);
    }

    /// Queues bytes to a subscriber, or cuts it off when it has fallen
    /// `max_queued` bytes behind.
    fn queue_md(&mut self, token: Token, bytes: &[u8]) {
        let max = self.feed.max_queued;
        let Some(conn) = self.net.conn(token) else {
            return;
        };
        if conn.closing || !conn.md {
            return;
        }
        if conn.queued() + bytes.len() > max {
            let queued = conn.queued();
            self.feed.cut += 1;
            self.metrics
                .md_cut
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(
                token = token.0,
                queued,
                "market-data subscriber cut off: slow consumer"
            );
            conn.drop_queued();
            self.md_disconnect(
                token,
                format!("slow consumer: {queued} bytes queued, more than the venue's {max}"),
            );
            return;
        }
        self.net.queue(token, bytes);
    }

    /// Sends `Disconnect` and closes once it is out (or after a second).
    pub(super) fn md_disconnect(&mut self, token: Token, reason: String) {
        tracing::info!(token = token.0, %reason, "market-data subscriber disconnected");
        self.md_forget(token);
        let mut bytes = Vec::new();
        frame::encode_into(&MdMessage::Disconnect { reason }, &mut bytes);
        self.net.queue(token, &bytes);
        self.close_after_flush(token);
    }

    /// Takes a connection off every instrument's subscriber list.
    pub(super) fn md_forget(&mut self, token: Token) {
        for list in &mut self.feed.subscribers {
            list.retain(|t| *t != token);
        }
        self.feed.pending.retain(|&(t, _)| t != token.0);
    }
}
