//! One command applied by the core: its sequence number (a new order's
//! id), the engine's events as outputs (fills with the trade ids minted
//! here), the fill-stream records it makes, and the price levels it
//! touched as market data. A command's fill-stream annotation is journaled
//! first, as a command of its own ([`VenueCommand::Annotate`]), so the log
//! alone rebuilds the fill log.

use tonnex_engine::{Command, Event, VenueCommand};
use tonnex_protocol::wire::{side_code, StreamEvent};
use tonnex_protocol::Side;

use super::{depth, fills, trade_id, Annotation, Core, Output};

impl Core {
    pub(super) fn apply_command(
        &mut self,
        corr: u64,
        mut command: Command,
        annotation: Option<&Annotation>,
    ) {
        if let Some(Annotation::Event(event)) = annotation {
            // Journaled first, as a command of its own: the log alone then
            // rebuilds the fill log (a follower's, a replay's).
            let note = Command::Venue(Box::new(VenueCommand::Annotate(Box::new(event.clone()))));
            self.apply_command(corr, note, None);
        }
        let seq = self.state.last_seq() + 1;
        if command.is_reports() {
            // What a leader sent: the state folds the numbers, a follower
            // keeps the messages; no other output.
            self.events.clear();
            self.state.apply(seq, &command, &mut self.events);
            self.keep_reports(&command);
            self.pending.push(Output::Begin { corr, seq, command });
            return;
        }
        if let Some(event) = command.annotation() {
            self.events.clear();
            self.state.apply(seq, &command, &mut self.events);
            self.note = Some(event.clone());
            // Its Begin carries it to the journal; no other output.
            self.pending.push(Output::Begin { corr, seq, command });
            return;
        }
        let note = self.note.take();
        self.touched.clear();
        let mut whole_books: Option<Option<u32>> = None;
        let order = match &mut command {
            Command::New(order) => Some(order),
            Command::Scoped(scoped) => Some(&mut scoped.order),
            _ => None,
        };
        if let Some(order) = order {
            order.id = seq;
        }
        match command.acting() {
            Command::New(_) | Command::Scoped(_) => {
                let order = command.new_order().expect("a new order");
                if order.kind != tonnex_protocol::OrderKind::Market {
                    self.touched
                        .push((order.instrument, order.side, order.price.ticks()));
                }
            }
            Command::Cancel { order_id, .. } | Command::Replace { order_id, .. } => {
                if let Some(slot) = self.state.order(*order_id) {
                    self.touched
                        .push((u32::from(slot.instrument), slot.side(), slot.price));
                }
                if let Command::Replace { price, .. } = command.acting() {
                    if let Some(&(instrument, side, _)) = self.touched.first() {
                        self.touched.push((instrument, side, price.ticks()));
                    }
                }
            }
            Command::MassCancel { instrument, .. } => whole_books = Some(*instrument),
            Command::Halt { instrument, .. } => whole_books = Some(Some(*instrument)),
            _ => {}
        }
        self.events.clear();
        self.state.apply(seq, &command, &mut self.events);
        self.pending.push(Output::Begin {
            corr,
            seq,
            command: command.clone(),
        });

        let mut fill_index = 0u64;
        for event in &self.events {
            // The one place a trade id is minted: the execution reports and
            // the fill stream both carry this one.
            let trade_id = match *event {
                Event::Fill { .. } => {
                    let id = trade_id(seq, fill_index);
                    fill_index += 1;
                    self.pending.push(Output::Fill {
                        trade_id: id,
                        event: *event,
                    });
                    id
                }
                _ => {
                    self.pending.push(Output::Event(*event));
                    0
                }
            };
            match *event {
                Event::Accepted {
                    order_id,
                    account,
                    instrument,
                } => {
                    if let Command::Scoped(scoped) = &command {
                        self.fills.push(
                            seq,
                            StreamEvent::BuyAccepted {
                                order_id,
                                account,
                                instrument,
                                price_ticks: scoped.order.price.ticks(),
                                qty: scoped.order.qty.tonnes(),
                                decision: scoped.decision.clone(),
                            },
                        );
                    }
                }
                Event::Fill {
                    instrument,
                    taker_id,
                    maker_id,
                    taker_account,
                    maker_account,
                    taker_side,
                    price,
                    qty,
                    supplementary_ticks,
                    ..
                } => {
                    let (buy_order_id, sell_order_id, buyer, seller) = match taker_side {
                        Side::Buy => (taker_id, maker_id, taker_account, maker_account),
                        Side::Sell => (maker_id, taker_id, maker_account, taker_account),
                    };
                    self.fills.push(
                        seq,
                        StreamEvent::Trade {
                            trade_id,
                            instrument,
                            buy_order_id,
                            sell_order_id,
                            buyer,
                            seller,
                            price_ticks: price.ticks(),
                            qty: qty.tonnes(),
                            supplementary_ticks,
                        },
                    );
                    self.touched
                        .push((instrument, taker_side.opposite(), price.ticks()));
                }
                Event::Cancelled {
                    order_id,
                    account,
                    instrument,
                    open_qty,
                    reason,
                    side,
                    price,
                    ..
                } => {
                    // A resting order taken off by self-trade prevention
                    // changes a level no fill touched.
                    if reason == tonnex_protocol::CancelReason::SelfTrade {
                        self.touched.push((instrument, side, price));
                    }
                    self.fills.push(
                        seq,
                        StreamEvent::Cancelled {
                            order_id,
                            account,
                            instrument,
                            open_qty: open_qty.tonnes(),
                            reason: reason.code(),
                        },
                    );
                }
                Event::Applied => {
                    let event = match &note {
                        Some(event) => Some(event.clone()),
                        None if matches!(command.acting(), Command::Venue(_)) => None,
                        None => fills::admin_event(command.acting()),
                    };
                    if let Some(event) = event {
                        self.fills.push(seq, event);
                    }
                }
                Event::Rejected { .. } | Event::Replaced { .. } => {}
            }
        }
        // Market data: each touched level's new total, once.
        self.touched
            .sort_unstable_by_key(|&(i, s, p)| (i, side_code(s), p));
        self.touched.dedup();
        for &(instrument, side, price) in &self.touched {
            let Some(book) = self.state.books().get(instrument as usize) else {
                continue;
            };
            if !book.in_band(price) {
                continue;
            }
            let qty = book.side(side).level(price).qty;
            self.pending.push(Output::Level {
                instrument,
                side,
                price,
                qty,
            });
        }
        if let Some(scope) = whole_books {
            let count = self.state.books().len() as u32;
            let instruments: Vec<u32> = match scope {
                Some(i) if i < count => vec![i],
                Some(_) => Vec::new(),
                None => (0..count).collect(),
            };
            for instrument in instruments {
                let snapshot = depth::snapshot(&self.state, instrument, 0, None);
                self.pending.push(Output::Book(Box::new(snapshot)));
            }
        }
    }
}
