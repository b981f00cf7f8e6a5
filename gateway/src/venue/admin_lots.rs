//! The admin port's lot deposit: a registry export checked exactly as
//! `tonnex-venue lots` checks it (serial blocks, overlaps with every block
//! ever deposited, the instrument's eligibility), then each accepted lot
//! journaled as its serial block and a credit deposit carrying its registry
//! identity to the fill stream.

use std::path::Path;

use tonnex_engine::{Asset, Command, VenueCommand};
use tonnex_protocol::wire::{LotInfo, StreamEvent};
use tonnex_protocol::{Qty, RejectReason};

use super::core::Annotation;
use super::server::Gateway;
use crate::compliance::lots::{self, LotDecision, LotRefusal};
use tonnex_engine::venue::SerialBlock;

/// Commands to submit, each with its fill-stream detail.
pub(super) type Planned = Vec<(Command, Option<Box<Annotation>>)>;

/// An accepted lot's two journal records: its serial block, then the credit
/// deposit of its owner into instrument `index`, whose fill-stream event
/// carries the lot's registry identity (genesis and the admin port alike).
pub(super) fn lot_commands(
    decision: &LotDecision,
    block: SerialBlock,
    index: u32,
) -> [(Command, Option<Box<Annotation>>); 2] {
    let lot = &decision.lot;
    [
        (
            Command::Venue(Box::new(VenueCommand::Serials {
                block,
                source: decision.source.clone(),
            })),
            None,
        ),
        (
            Command::Deposit {
                account: lot.owner_account,
                asset: Asset::Credits {
                    instrument: index,
                    qty: Qty(lot.quantity),
                },
            },
            Some(Box::new(Annotation::Event(StreamEvent::CreditDeposit {
                account: lot.owner_account,
                instrument: index,
                qty: lot.quantity,
                lot: Some(LotInfo {
                    registry: lot.registry.clone(),
                    project_id: lot.project_id.clone(),
                    serial_start: lot.serial_start.clone(),
                    serial_end: lot.serial_end.clone(),
                    vintage: u16::try_from(lot.vintage).unwrap_or(0),
                    ccp: lot.ccp,
                }),
            }))),
        ),
    ]
}

impl Gateway {
    /// Plans the deposit of `csv` (an export named `name`) into `symbol`:
    /// the commands for its accepted lots and a summary naming every
    /// refused one (line, reason, why). Refused whole when no lot passes.
    pub(super) fn lot_deposits(
        &mut self,
        symbol: &str,
        name: &str,
        csv: &str,
    ) -> Result<(Planned, String), (RejectReason, String)> {
        let index = self
            .market
            .instruments
            .iter()
            .position(|i| i.symbol == symbol)
            .ok_or_else(|| {
                (
                    RejectReason::UnknownInstrument,
                    format!("no instrument '{symbol}'"),
                )
            })? as u32;
        let config = std::sync::Arc::clone(&self.admin.config);
        let instrument = config
            .instruments
            .iter()
            .find(|i| i.symbol == symbol)
            .ok_or_else(|| {
                (
                    RejectReason::UnknownInstrument,
                    format!("'{symbol}' has no eligibility rule in the venue file"),
                )
            })?;
        // Checked against a copy: the blocks count as deposited only once
        // the request is carried out.
        let mut deposited = self.admin.serials.clone();
        let decisions =
            lots::ingest_text(Path::new(name), csv, instrument, &config, &mut deposited)
                .map_err(|e| (RejectReason::InvalidRequest, e.to_string()))?;
        let mut planned = Vec::new();
        let mut refused = Vec::new();
        let mut already = 0usize;
        let mut tonnes = 0u64;
        for decision in decisions {
            match (&decision.refusal, decision.block.clone()) {
                (None, Some(block)) => {
                    tonnes += decision.lot.quantity;
                    planned.extend(lot_commands(&decision, block, index));
                }
                // The same block from the same export line: sent again
                // (its answer lost), not a second deposit.
                (Some(LotRefusal::Overlap(_)), Some(block))
                    if self
                        .admin
                        .serials
                        .overlapping(&block)
                        .is_some_and(|hit| hit.block == block && hit.source == decision.source) =>
                {
                    already += 1;
                }
                (refusal, _) => {
                    let refusal = refusal.as_ref().expect("a lot without a block is refused");
                    refused.push((decision.line, refusal.reason(), refusal.text()));
                }
            }
        }
        let details: Vec<String> = refused
            .iter()
            .map(|(line, reason, text)| format!("line {line}: {} ({text})", reason.as_str()))
            .collect();
        if planned.is_empty() && refused.is_empty() && already > 0 {
            return Ok((
                planned,
                format!("the {already} lots of {name} were deposited before: nothing done"),
            ));
        }
        if planned.is_empty() {
            let reason = refused
                .first()
                .map_or(RejectReason::InvalidRequest, |r| r.1);
            return Err((
                reason,
                format!("no lot of {name} was deposited: {}", details.join("; ")),
            ));
        }
        self.admin.serials = deposited;
        let lots = planned.len() / 2;
        let mut text = format!("deposited {lots} lots ({tonnes} t) of {name} into {symbol}");
        if !details.is_empty() {
            text.push_str(&format!(
                "; refused {}: {}",
                details.len(),
                details.join("; ")
            ));
        }
        Ok((planned, text))
    }
}
