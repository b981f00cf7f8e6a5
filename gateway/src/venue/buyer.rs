//! Intake's compliance half: the pre-router's decision on a new order
//! (accept with its pathway, floor and scope allocation; hold for an
//! attestation; refuse), the buyer's `BuyDecision` journaled with the
//! order, and wire attestations.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use tonnex_engine::venue::OrderLines;
use tonnex_engine::{Command, Compliance, NewOrder as EngineOrder, ScopedOrder, VenueCommand};
use tonnex_protocol::wire::{self, pathway_code, BuyDecision, NewOrder, VenueMessage};
use tonnex_protocol::{Cash, OrderKind, Pathway, Price, Qty, RejectReason, Side};

use super::intake::wall_ns;
use super::server::{Gateway, Inflight, InstrumentRef};
use crate::compliance::profiles::Attestation;
use crate::compliance::router::{Decision, LimitPrice, OrderRequest, Outcome, RawScopeLine};
use crate::config::Role;

/// Longest attestation id, in bytes (COMPLIANCE.md, "Attestations").
const MAX_ATTESTATION_ID: usize = 64;

impl Gateway {
    /// Routes a checked new order: refused, held (journaled, then
    /// answered `OrderHeld`) or sent to its book.
    pub(super) fn route(
        &mut self,
        account: u64,
        order: NewOrder,
        kind: OrderKind,
        side: Side,
        qty: i64,
    ) {
        let client_order_id = order.client_order_id;
        let reference = &self.market.instruments[order.instrument as usize];
        let request = order_request(account, &order, reference, kind, side, qty);
        let mut decision = Decision::default();
        self.desk.router.decide_into(&request, &mut decision);
        match decision.outcome {
            Outcome::Reject => {
                let reason = decision.reason.unwrap_or(RejectReason::InvalidOrder);
                match &decision.predicate {
                    Some(predicate) => {
                        tracing::info!(
                            account,
                            client_order_id,
                            reason = reason.as_str(),
                            predicate = &**predicate,
                            rules_version = self.desk.rules_version,
                            "order refused by a rules predicate"
                        );
                        self.metrics.order(kind, super::metrics::Outcome::Rejected);
                        self.submit_venue(
                            VenueCommand::RuleRefused {
                                account,
                                client_order_id,
                                reason: reason.code(),
                                predicate: predicate.to_string(),
                            },
                            account,
                            client_order_id,
                            0,
                        );
                    }
                    None => self.refuse_order(account, client_order_id, Some(kind), reason),
                }
            }
            Outcome::Hold => {
                self.metrics.order(kind, super::metrics::Outcome::Held);
                let expires_at_ns = wall_ns() + self.settings.hold_expiry_ms * 1_000_000;
                self.desk
                    .held_orders
                    .insert((account, client_order_id), order.clone());
                self.desk.held.hold(request, expires_at_ns);
                self.submit_venue(
                    VenueCommand::Hold {
                        account,
                        expires_at_ns,
                        order,
                    },
                    account,
                    client_order_id,
                    0,
                );
            }
            Outcome::Accept => self.submit_order(
                account,
                &request,
                &decision,
                order.instrument,
                order.price_ticks,
                order.cash_budget_micros,
                false,
            ),
        }
    }

    /// The attestation's number in order records (names are interned).
    fn attestation_number(&mut self, name: Option<&String>) -> u64 {
        let Some(name) = name else {
            return 0;
        };
        if let Some(&id) = self.desk.attestation_ids.get(name) {
            return id;
        }
        self.desk.attestation_names.push(name.clone());
        let id = self.desk.attestation_names.len() as u64;
        self.desk.attestation_ids.insert(name.clone(), id);
        id
    }

    /// A buyer's decision as journaled with its order and sent to
    /// settlement (`None` for anyone but a buyer buying on a pathway).
    fn buy_decision(
        &self,
        account: u64,
        request: &OrderRequest,
        decision: &Decision,
        pathway: Pathway,
    ) -> Option<BuyDecision> {
        let buyer = self
            .accounts
            .get(&account)
            .is_some_and(|a| a.role == Role::Buyer);
        if request.side != Side::Buy || pathway == Pathway::None || !buyer {
            return None;
        }
        let router = &self.desk.router;
        let profile = router.profile(account)?;
        Some(BuyDecision {
            company: profile.company.clone(),
            reporting_year: u16::try_from(profile.reporting_year).unwrap_or(0),
            pathway: pathway_code(pathway),
            sub_ledger: decision.sub_ledger.unwrap_or_default().to_string(),
            floor_micros: micros(decision.floor_usd.unwrap_or_default()),
            floor_ticks: decision.floor_ticks,
            internal_price_micros: micros(profile.internal_carbon_price_usd),
            attestation: decision.attestation.clone(),
            // The buyer's lines in the buyer's order (step 8 checked them):
            // fills take them first line first, frees last line first.
            scope: request
                .scope
                .iter()
                .flatten()
                .map(|l| wire::ScopeLine {
                    scope: l.scope.and_then(|s| u8::try_from(s).ok()).unwrap_or(0),
                    category: l.category.and_then(|c| u8::try_from(c).ok()).unwrap_or(0),
                    qty: l.qty.and_then(|q| u64::try_from(q).ok()).unwrap_or(0),
                })
                .collect(),
            coverage_bp: decision
                .coverage_pct
                .and_then(|c| (c * Decimal::from(100)).trunc().to_u32())
                .unwrap_or(0),
            tier_threshold_met: decision.tier_threshold_met.unwrap_or(false),
            ongoing_emissions_milli_t: (profile.ongoing_emissions_tonnes * Decimal::from(1000))
                .trunc()
                .to_u64()
                .unwrap_or(0),
            threshold_bp: u32::try_from(router.threshold_hundredths(pathway)).unwrap_or(0),
            rules_version: self.desk.rules_version.clone(),
            rules_sha256: self.desk.rules_sha256.clone(),
            attestation_approver: decision
                .attestation
                .as_ref()
                .and_then(|id| self.desk.approvers.get(&(account, id.clone())).cloned()),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn submit_order(
        &mut self,
        account: u64,
        request: &OrderRequest,
        decision: &Decision,
        instrument: u32,
        price_ticks: i64,
        cash_budget_micros: i64,
        released_from_hold: bool,
    ) {
        let pathway = decision.pathway.unwrap_or(Pathway::None);
        let attestation_id = self.attestation_number(decision.attestation.as_ref());
        let buy_decision = self.buy_decision(account, request, decision, pathway);
        let price = if request.kind == OrderKind::Market {
            0
        } else {
            decision.price_ticks.unwrap_or(price_ticks)
        };
        let order = EngineOrder {
            id: 0,
            account,
            client_order_id: request.id,
            instrument,
            side: request.side,
            kind: request.kind,
            price: Price(price),
            qty: Qty(request.qty as u64),
            cash_budget: Cash(cash_budget_micros),
            compliance: Compliance {
                pathway,
                floor_ticks: decision.floor_ticks,
                attestation_id,
                skip_below_floor: decision.skip_below_floor,
            },
            ts_ns: self.net.round_wall_ns(),
        };
        let allocation = buy_decision
            .as_ref()
            .map(|d| Box::new(OrderLines::from_scope(&d.scope)));
        let command = match buy_decision {
            Some(decision) => Command::Scoped(Box::new(ScopedOrder {
                order,
                decision,
                released_from_hold,
            })),
            None => Command::New(order),
        };
        self.submit_tracked(
            Inflight {
                corr: 0,
                account,
                client_order_id: request.id,
                rechecked: 0,
                pathway,
                sub_ledger: decision.sub_ledger.unwrap_or_default(),
                floor_ticks: decision.floor_ticks,
                attestation: decision.attestation.clone(),
                allocation,
                reply: None,
                received_ns: 0,
            },
            command,
        );
    }

    /// A wire attestation: refused with `AttestationRefused` when it breaks
    /// a rule of COMPLIANCE.md "Attestations"; else journaled, and the
    /// buyer's held orders re-checked oldest first (each answered on its own).
    pub(super) fn attest(
        &mut self,
        account: u64,
        id: String,
        internal_price_micros: i64,
        year: u16,
    ) {
        let verdict = match self.desk.router.profile(account) {
            None => Err((
                RejectReason::NoProfile,
                "the account has no buyer profile".to_string(),
            )),
            Some(profile) => attestation_problem(profile, &id, internal_price_micros, year)
                .or_else(|| {
                    // Ids pending approval or revoked stay used too.
                    self.desk
                        .attestation_id_used(account, &id)
                        .then(|| format!("attestation id '{id}' is already used by this buyer"))
                })
                .map_or(Ok(()), |text| Err((RejectReason::AttestationInvalid, text))),
        };
        if let Err((reason, text)) = verdict {
            tracing::info!(account, id, text, "attestation refused");
            self.send(
                account,
                VenueMessage::AttestationRefused {
                    id,
                    reason: reason.code(),
                    text,
                },
            );
            return;
        }
        let attestation = Attestation {
            id: id.clone(),
            internal_price_usd: Decimal::new(internal_price_micros, 6),
            reporting_year: i64::from(year),
        };
        if self.desk.attestations_approved {
            // Counts only once a compliance officer approves it: journaled
            // as submitted, answered AttestationAccepted { rechecked: 0 }.
            self.desk.pending_attestations.push((account, attestation));
            self.submit_venue(
                VenueCommand::AttestationSubmitted {
                    account,
                    id,
                    internal_price_micros,
                    reporting_year: year,
                },
                account,
                0,
                0,
            );
            return;
        }
        let desk = &mut self.desk;
        desk.wire_attestations.push((account, attestation.clone()));
        let decided = desk.held.attest(&mut desk.router, account, attestation);
        // Answered (AttestationAccepted) once it is journaled; the re-checked
        // orders follow it into the journal.
        self.submit_venue(
            VenueCommand::Attest {
                account,
                id,
                internal_price_micros,
                reporting_year: year,
            },
            account,
            0,
            decided.len() as u32,
        );
        self.submit_rechecked(account, decided);
    }

    /// The held orders an attestation re-checked, each to its book or to
    /// its refusal, oldest first.
    pub(super) fn submit_rechecked(
        &mut self,
        account: u64,
        decided: Vec<(OrderRequest, Decision)>,
    ) {
        for (request, decision) in decided {
            let budget = self
                .desk
                .held_orders
                .remove(&(account, request.id))
                .map_or(0, |o| o.cash_budget_micros);
            match decision.outcome {
                Outcome::Accept => {
                    let instrument = decision.instrument.unwrap_or(0) as u32;
                    let price = decision.price_ticks.unwrap_or(0);
                    self.submit_order(
                        account, &request, &decision, instrument, price, budget, true,
                    );
                }
                _ => {
                    let reason = decision.reason.unwrap_or(RejectReason::InvalidOrder);
                    self.submit_venue(
                        VenueCommand::Unhold {
                            account,
                            client_order_id: request.id,
                            reason: reason.code(),
                        },
                        account,
                        request.id,
                        0,
                    );
                }
            }
        }
    }
}

/// USD to micro-dollars, truncated.
fn micros(usd: Decimal) -> i64 {
    (usd * Decimal::from(1_000_000))
        .trunc()
        .to_i64()
        .unwrap_or(0)
}

/// The pre-router's view of a wire order (also how held orders come back
/// from the journal at start).
pub(super) fn order_request(
    account: u64,
    order: &NewOrder,
    reference: &InstrumentRef,
    kind: OrderKind,
    side: Side,
    qty: i64,
) -> OrderRequest {
    let price = match kind {
        OrderKind::Market if order.price_ticks == 0 => None,
        _ => Some(LimitPrice::Ticks(order.price_ticks)),
    };
    OrderRequest {
        id: order.client_order_id,
        account,
        side,
        instrument: tonnex_protocol::Name::from(reference.symbol),
        kind,
        price,
        qty,
        scope: (!order.scope.is_empty()).then(|| {
            order
                .scope
                .iter()
                .map(|line| RawScopeLine {
                    scope: Some(i64::from(line.scope)),
                    category: (line.category != 0).then_some(i64::from(line.category)),
                    category_given: line.category != 0,
                    qty: i64::try_from(line.qty).ok(),
                    malformed: i64::try_from(line.qty).is_err(),
                })
                .collect()
        }),
    }
}

/// Why a submitted attestation must be refused (COMPLIANCE.md,
/// "Attestations"), or `None` when it is acceptable.
fn attestation_problem(
    profile: &crate::compliance::BuyerProfile,
    id: &str,
    internal_price_micros: i64,
    year: u16,
) -> Option<String> {
    if id.is_empty() {
        return Some("the attestation id is empty".into());
    }
    if id.len() > MAX_ATTESTATION_ID {
        return Some(format!(
            "the attestation id has {} bytes, more than {MAX_ATTESTATION_ID}",
            id.len()
        ));
    }
    if profile.attestations.iter().any(|a| a.id == id) {
        return Some(format!(
            "attestation id '{id}' is already used by this buyer"
        ));
    }
    if internal_price_micros <= 0 {
        return Some("the internal price is not positive".into());
    }
    if internal_price_micros % 10_000 != 0 {
        return Some("the internal price is not a whole number of cents".into());
    }
    if i64::from(year) != profile.reporting_year {
        return Some(format!(
            "reporting year {year} is not the profile's reporting year {}",
            profile.reporting_year
        ));
    }
    None
}
