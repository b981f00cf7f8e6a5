//! Instruments listed at runtime through the admin port. Each listing is
//! journaled (`VenueCommand::InstrumentListed`: what the venue needs of it,
//! its sub-ledger and lot eligibility, the decimals as given) right before
//! the engine's `AddInstrument`, so that every start lists it again beside
//! the venue file's instruments.

use std::sync::Arc;

use rust_decimal::Decimal;
use tonnex_engine::{Command, InstrumentListing, VenueCommand};
use tonnex_protocol::wire::{InstrumentInfo, StreamEvent, VenueMessage};
use tonnex_protocol::RejectReason;

use super::admin_lots::Planned;
use super::core::Annotation;
use super::server::{Gateway, InstrumentRef};
use crate::config::{Eligibility, InstrumentConfig};

/// The instrument a listing describes; an error says which value is wrong.
pub fn listed_instrument(listing: &InstrumentListing) -> Result<InstrumentConfig, String> {
    let decimal = |text: &str, what: &str| {
        crate::values::parse_decimal(text)
            .map_err(|e| format!("{}: {what} '{text}': {e}", listing.symbol))
    };
    Ok(InstrumentConfig {
        symbol: listing.symbol.clone(),
        sub_ledger: listing.sub_ledger.clone(),
        tick_usd: decimal(&listing.tick_usd, "tick_usd")?,
        min_price_usd: decimal(&listing.min_price_usd, "min_price_usd")?,
        max_price_usd: decimal(&listing.max_price_usd, "max_price_usd")?,
        eligibility: Eligibility {
            ccp: listing.ccp,
            categories: listing.categories.clone(),
            nature: listing.nature.clone(),
            min_vintage: listing.min_vintage,
            // A listing over the admin port constrains these four
            // attributes only: credit predicates about the others fail
            // on its book (they cannot be shown to hold).
            ..Eligibility::default()
        },
    })
}

impl Gateway {
    /// Lists `listing` (its index the next free one): checked, then the
    /// gateway routes to it at once and the journal gets the listing and
    /// the engine's book.
    pub(super) fn list_instrument(
        &mut self,
        mut listing: InstrumentListing,
    ) -> Result<(Planned, String), (RejectReason, String)> {
        let invalid = |text: String| (RejectReason::InvalidInstrument, text);
        if self
            .market
            .instruments
            .iter()
            .any(|i| *i.symbol == *listing.symbol)
        {
            return Err(invalid(format!("'{}' is already listed", listing.symbol)));
        }
        if listing.sub_ledger.is_empty() {
            return Err(invalid("the sub-ledger is empty".into()));
        }
        let index = self.market.instruments.len();
        listing.instrument = index as u32;
        let config = listed_instrument(&listing).map_err(invalid)?;
        let spec = super::instrument_spec(&config).map_err(invalid)?;
        if config.min_price_usd > config.max_price_usd || config.tick_usd <= Decimal::ZERO {
            return Err(invalid(format!("{}: an empty price band", config.symbol)));
        }
        // Routed from now on: orders for it are behind the listing on the ring.
        self.market.instruments.push(InstrumentRef {
            symbol: crate::interned::intern(&config.symbol),
            sub_ledger: crate::interned::intern(&config.sub_ledger),
            tick_usd: config.tick_usd,
            tick_micros: spec.tick_micros,
            min_price: spec.min_price.ticks(),
            max_price: spec.max_price.ticks(),
        });
        self.market.md_seq.push(0);
        self.feed.subscribers.push(Vec::new());
        self.market.subscribers.push(Vec::new());
        self.market.last_trade.push(None);
        self.admin.halted.push(false);
        if let VenueMessage::ReferenceData { instruments } = &mut self.market.reference {
            instruments.push(InstrumentInfo {
                instrument: index as u32,
                symbol: config.symbol.clone(),
                sub_ledger: config.sub_ledger.clone(),
                tick_micros: spec.tick_micros,
                min_price_ticks: spec.min_price.ticks(),
                max_price_ticks: spec.max_price.ticks(),
            });
        }
        self.desk.router.add_instrument(index, &config);
        let mut venue = (*self.admin.config).clone();
        venue.instruments.push(config.clone());
        self.admin.config = Arc::new(venue);
        let text = format!("listed {} as instrument {index}", config.symbol);
        Ok((
            vec![
                (
                    Command::Venue(Box::new(VenueCommand::InstrumentListed(listing))),
                    None,
                ),
                (
                    Command::AddInstrument {
                        instrument: index as u32,
                        spec,
                    },
                    Some(Box::new(Annotation::Event(StreamEvent::Instrument {
                        instrument: index as u32,
                        symbol: config.symbol,
                        sub_ledger: config.sub_ledger,
                        tick_micros: spec.tick_micros,
                    }))),
                ),
            ],
            text,
        ))
    }
}
