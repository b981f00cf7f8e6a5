//! Market data from the engine's outputs: price-level updates and book
//! snapshots, numbered per instrument by `md_seq` and sent to subscribed
//! order-entry connections outside their execution-report stream (`seq`
//! 0), so market data can never push a client's own reports out of its
//! replay window; and handed to the market-data feed ([`super::md_feed`]).

use tonnex_protocol::wire::VenueMessage;

use super::depth::BookSnapshot;
use super::server::Gateway;

impl Gateway {
    /// Numbers a market-data message in its instrument's sequence (every
    /// update counts, subscribed or not) and sends it to each subscriber.
    pub(super) fn publish(&mut self, instrument: u32, message: impl Fn(u64) -> VenueMessage) {
        let i = instrument as usize;
        let Some(seq) = self.market.md_seq.get_mut(i) else {
            return;
        };
        *seq += 1;
        let md_seq = *seq;
        for n in 0..self.market.subscribers[i].len() {
            let account = self.market.subscribers[i][n];
            self.send_market_data(account, message(md_seq));
        }
        if self.feed.subscribers.get(i).is_some_and(|s| !s.is_empty()) {
            self.md_publish_venue(instrument, &message(md_seq));
        }
    }

    /// Market data to an account's connection, outside its stream.
    fn send_market_data(&mut self, account: u64, message: VenueMessage) {
        if let Some(token) = self.accounts.get(&account).and_then(|a| a.conn) {
            self.net.queue_unsequenced(token, message);
        }
    }

    /// A depth snapshot for one connection, or (a mass change) for every
    /// subscriber.
    pub(super) fn on_book(&mut self, snapshot: BookSnapshot) {
        let i = snapshot.instrument as usize;
        let Some(seq) = self.market.md_seq.get_mut(i) else {
            return;
        };
        // A mass cancel's or a halt's snapshot to every subscriber stands for
        // the book changes it replaces, so it takes the next number: one
        // number never names two books. A snapshot one connection asked for
        // changes nothing and is current at the last number.
        if snapshot.feed.is_none() && snapshot.account == 0 {
            *seq += 1;
        }
        let md_seq = *seq;
        // The feed gets every level, for the connection that asked or (after
        // a mass change) for every subscriber; order entry the best ten.
        if snapshot.feed.is_some() || snapshot.account == 0 {
            self.md_on_book(
                snapshot.feed,
                snapshot.instrument,
                md_seq,
                &snapshot.bids,
                &snapshot.asks,
            );
            if snapshot.feed.is_some() {
                return;
            }
        }
        let top = |levels: &[tonnex_protocol::wire::Level]| {
            levels[..levels.len().min(super::depth::BOOK_DEPTH)].to_vec()
        };
        let (bids, asks) = (top(&snapshot.bids), top(&snapshot.asks));
        let targets = if snapshot.account == 0 {
            self.market.subscribers[i].clone()
        } else {
            vec![snapshot.account]
        };
        for account in targets {
            self.send_market_data(
                account,
                VenueMessage::BookSnapshot {
                    instrument: snapshot.instrument,
                    md_seq,
                    bids: bids.clone(),
                    asks: asks.clone(),
                },
            );
        }
    }
}
