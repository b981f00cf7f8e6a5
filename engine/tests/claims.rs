//! Property: a buyer's claimed tonnes equal what it filled plus what its
//! open orders still hold, per inventory slot, after every command
//! (COMPLIANCE.md step 11: claims follow fills). Random streams of buyers'
//! scoped buys (limit, IOC, FOK; one to three scope lines), market makers'
//! orders on both sides, cancels, replaces up and down, and mass cancels
//! run through the engine; a model written here, with its own list of scope
//! lines per order, counts fills first line first and frees last line
//! first, and the venue bookkeeping must agree with it exactly.

mod common;

use std::collections::BTreeMap;

use common::{order, Engine};
use proptest::prelude::*;
use tonnex_engine::venue::{Allocation, OrderLines, SLOTS};
use tonnex_engine::{Command, EngineConfig, Event, ScopedOrder, State};
use tonnex_protocol::wire::{BuyDecision, ScopeLine};
use tonnex_protocol::{Price, Qty};

#[derive(Clone, Debug)]
enum Op {
    Buy {
        buyer: u64,
        kind: char,
        price: i64,
        lines: Vec<(usize, u64)>,
    },
    Maker {
        account: u64,
        buy: bool,
        kind: char,
        price: i64,
        qty: u64,
    },
    Cancel {
        pick: usize,
    },
    Replace {
        pick: usize,
        price: i64,
        qty: u64,
    },
    MassCancel {
        account: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let kind = prop::sample::select(vec!['L', 'L', 'I', 'F']);
    prop_oneof![
        4 => (1u64..=2, kind.clone(), 95i64..=105, prop::collection::vec((0..SLOTS, 1u64..=20), 1..=3))
            .prop_map(|(buyer, kind, price, lines)| Op::Buy { buyer, kind, price, lines }),
        4 => (10u64..=11, any::<bool>(), kind, 95i64..=105, 1u64..=30)
            .prop_map(|(account, buy, kind, price, qty)| Op::Maker { account, buy, kind, price, qty }),
        2 => any::<usize>().prop_map(|pick| Op::Cancel { pick }),
        2 => (any::<usize>(), 95i64..=105, 1u64..=60)
            .prop_map(|(pick, price, qty)| Op::Replace { pick, price, qty }),
        1 => prop::sample::select(vec![1u64, 2, 10, 11]).prop_map(|account| Op::MassCancel { account }),
    ]
}

/// The model: each live buyer order's open tonnes as its own scope lines
/// (slot, tonnes), in line order, and each buyer's filled tonnes per slot.
#[derive(Default)]
struct Model {
    open: BTreeMap<u64, (u64, Vec<(usize, u64)>)>,
    filled: BTreeMap<u64, Allocation>,
}

impl Model {
    fn fill(&mut self, order_id: u64, mut qty: u64) {
        let Some((buyer, lines)) = self.open.get_mut(&order_id) else {
            return;
        };
        let filled = self.filled.entry(*buyer).or_default();
        for (slot, open) in lines.iter_mut() {
            let take = qty.min(*open);
            *open -= take;
            filled.0[*slot] += take;
            qty -= take;
        }
        lines.retain(|(_, open)| *open > 0);
        if lines.is_empty() {
            self.open.remove(&order_id);
        }
    }

    /// A replace to `new_open`: down frees from the last line back, up adds
    /// to the last line.
    fn resize(&mut self, order_id: u64, new_open: u64) {
        let Some((_, lines)) = self.open.get_mut(&order_id) else {
            return;
        };
        let old: u64 = lines.iter().map(|(_, q)| q).sum();
        if new_open >= old {
            if let Some(last) = lines.last_mut() {
                last.1 += new_open - old;
            }
            return;
        }
        let mut free = old - new_open;
        while free > 0 {
            let last = lines.last_mut().expect("tonnes to free");
            let take = free.min(last.1);
            last.1 -= take;
            free -= take;
            if last.1 == 0 {
                lines.pop();
            }
        }
    }

    fn lines(lines: &[(usize, u64)]) -> OrderLines {
        OrderLines(lines.iter().map(|&(slot, qty)| (slot as u8, qty)).collect())
    }
}

fn scoped(id: u64, buyer: u64, kind: char, price: i64, lines: &[(usize, u64)]) -> Command {
    let qty = lines.iter().map(|(_, q)| q).sum();
    let mut new = order(id, buyer, 'B', kind, price, qty);
    new.client_order_id = id;
    Command::Scoped(Box::new(ScopedOrder {
        order: new,
        decision: BuyDecision {
            company: format!("buyer {buyer}"),
            reporting_year: 2026,
            pathway: 1,
            sub_ledger: "ccp".into(),
            floor_micros: 0,
            floor_ticks: 0,
            internal_price_micros: 0,
            attestation: None,
            scope: lines
                .iter()
                .map(|&(slot, qty)| {
                    let (scope, category) = Allocation::scope_of(slot);
                    ScopeLine {
                        scope,
                        category,
                        qty,
                    }
                })
                .collect(),
            coverage_bp: 0,
            tier_threshold_met: true,
            ongoing_emissions_milli_t: 0,
            threshold_bp: 0,
            rules_version: "2.0".into(),
            rules_sha256: String::new(),
            attestation_approver: None,
        },
        released_from_hold: false,
    }))
}

fn check(engine: &Engine, model: &Model) -> Result<(), TestCaseError> {
    let venue = engine.state.venue();
    venue
        .check_claims(&model.filled)
        .map_err(TestCaseError::fail)?;
    for (order_id, (_, lines)) in &model.open {
        let tag = venue
            .order(*order_id)
            .ok_or_else(|| TestCaseError::fail(format!("order {order_id} lost its tag")))?;
        prop_assert_eq!(
            tag.allocation.as_deref(),
            Some(&Model::lines(lines)),
            "order {}",
            order_id
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn claims_equal_filled_plus_open_after_every_command(ops in prop::collection::vec(op(), 1..120)) {
        let mut engine = Engine::with_state(State::new(EngineConfig {
            holds: false,
            order_capacity: 512,
            ..EngineConfig::default()
        }));
        let mut model = Model::default();
        let mut live: Vec<u64> = Vec::new();
        for (n, op) in ops.into_iter().enumerate() {
            let id = 1000 + n as u64;
            let mut lines = Vec::new();
            let command = match &op {
                Op::Buy { buyer, kind, price, lines: l } => {
                    lines.clone_from(l);
                    scoped(id, *buyer, *kind, *price, l)
                }
                Op::Maker { account, buy, kind, price, qty } => {
                    Command::New(order(id, *account, if *buy { 'B' } else { 'S' }, *kind, *price, *qty))
                }
                Op::Cancel { pick } if !live.is_empty() => Command::Cancel {
                    order_id: live[pick % live.len()],
                    account: tonnex_engine::OPERATOR,
                },
                Op::Replace { pick, price, qty } if !live.is_empty() => Command::Replace {
                    order_id: live[pick % live.len()],
                    account: tonnex_engine::OPERATOR,
                    price: Price(*price),
                    qty: Qty(*qty),
                },
                Op::MassCancel { account } => Command::MassCancel { account: *account, instrument: None },
                _ => continue,
            };
            let scoped_buyer = match &op {
                Op::Buy { buyer, .. } => Some(*buyer),
                _ => None,
            };
            for event in engine.apply(command) {
                match event {
                    Event::Accepted { order_id, .. } => {
                        live.push(order_id);
                        if let Some(buyer) = scoped_buyer {
                            model.open.insert(order_id, (buyer, lines.clone()));
                        }
                    }
                    Event::Fill { taker_id, maker_id, qty, .. } => {
                        model.fill(taker_id, qty.tonnes());
                        model.fill(maker_id, qty.tonnes());
                    }
                    Event::Cancelled { order_id, .. } => {
                        model.open.remove(&order_id);
                    }
                    Event::Replaced { order_id, qty, .. } => model.resize(order_id, qty.tonnes()),
                    Event::Rejected { .. } | Event::Applied => {}
                }
            }
            live.retain(|id| engine.state.order(*id).is_some());
            check(&engine, &model)?;
        }
    }
}
