//! Start-up commands: the configured instruments (appended only), on an
//! empty journal the genesis deposits (cash, and each accepted credit lot
//! after its journaled serial block), and the rules and profiles in force
//! whenever they changed since the journal last recorded them.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use tonnex_engine::{Asset, Command, Event, InstrumentSpec, VenueCommand};
use tonnex_protocol::wire::StreamEvent;
use tonnex_protocol::Cash;

use super::cluster::Node;
use super::core::{Annotation, Core, Input, Output};
use super::{start_error, VenueError};
use crate::compliance::lots;
use crate::config::VenueConfig;

/// Where start-up commands are applied: a single venue's core (journaled,
/// then synced), or a cluster leader's (proposed, then waited for until
/// committed: nobody is served before).
pub(super) trait StartupEngine {
    /// The core.
    fn core(&self) -> &Core;
    /// Applies `batch` and returns once it is durable, its outputs to `watch`.
    fn run(
        &mut self,
        batch: &mut Vec<Input>,
        watch: &mut dyn FnMut(Output),
    ) -> Result<(), VenueError>;
}

impl StartupEngine for Core {
    fn core(&self) -> &Core {
        self
    }

    fn run(
        &mut self,
        batch: &mut Vec<Input>,
        watch: &mut dyn FnMut(Output),
    ) -> Result<(), VenueError> {
        self.process(batch, watch).map_err(start_error)?;
        self.sync(watch).map_err(start_error)
    }
}

/// A cluster leader at start-up, with the poll its transport is on.
pub(super) struct Settling<'a> {
    pub node: &'a mut Node,
    pub poll: &'a mut mio::Poll,
}

impl StartupEngine for Settling<'_> {
    fn core(&self) -> &Core {
        self.node.core()
    }

    fn run(
        &mut self,
        batch: &mut Vec<Input>,
        watch: &mut dyn FnMut(Output),
    ) -> Result<(), VenueError> {
        // (A batch waits while a snapshot is due: settle, then again.)
        while !batch.is_empty() {
            let failed = |e| match e {
                super::core::CoreError::Demoted => VenueError::NoQuorum(e.to_string()),
                other => start_error(other),
            };
            self.node.process(batch, watch).map_err(failed)?;
            // (No sessions yet: nothing sent to record.)
            self.node.seal(0, Vec::new()).map_err(failed)?;
            self.node
                .settle(self.poll, std::time::Duration::from_secs(10))
                .map_err(|e| VenueError::NoQuorum(e.to_string()))?;
        }
        Ok(())
    }
}

/// The rules version in force (the router's) and the profiles the venue
/// file names, as the journal records them.
pub(super) fn rules_in_force(
    config: &VenueConfig,
    rules: &crate::compliance::Rules,
) -> Result<VenueCommand, VenueError> {
    use sha2::{Digest, Sha256};
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|e| start_error(format!("{}: {e}", path.display())))
    };
    let hex = |bytes: &[u8]| -> String { bytes.iter().map(|b| format!("{b:02x}")).collect() };
    let rules_sha256 = rules.sha256.clone();
    keep_copy(config, &rules_sha256)?;
    let mut profiles = Sha256::new();
    profiles.update(read(&config.profiles)?);
    if let Some(inventory) = &config.inventory {
        profiles.update(read(inventory)?);
    }
    Ok(VenueCommand::Rules {
        version: rules.version.clone(),
        rules_sha256,
        profiles_sha256: hex(&profiles.finalize()),
    })
}

/// Keeps the bytes of the rules version with `sha256` as
/// `JOURNAL_DIR/rules/SHA256.toml` (once): every version the venue has
/// decided under stays readable beside its journal, whatever later
/// happens to the configured files.
fn keep_copy(config: &VenueConfig, sha256: &str) -> Result<(), VenueError> {
    use sha2::{Digest, Sha256};
    let dir = config.journal_dir.join("rules");
    let copy = dir.join(format!("{sha256}.toml"));
    if copy.exists() {
        return Ok(());
    }
    for file in &config.rules {
        let bytes =
            std::fs::read(file).map_err(|e| start_error(format!("{}: {e}", file.display())))?;
        let digest: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if digest == sha256 {
            std::fs::create_dir_all(&dir)
                .and_then(|()| std::fs::write(&copy, &bytes))
                .map_err(|e| start_error(format!("{}: {e}", copy.display())))?;
            return Ok(());
        }
    }
    Err(start_error(format!(
        "{}: no rules file has sha256 {sha256} any more (changed since the venue read it?)",
        config.path.display()
    )))
}

pub(super) fn rules_version_of(rules: &VenueCommand) -> String {
    match rules {
        VenueCommand::Rules { version, .. } => version.clone(),
        _ => String::new(),
    }
}

pub(super) fn rules_sha256_of(rules: &VenueCommand) -> String {
    match rules {
        VenueCommand::Rules { rules_sha256, .. } => rules_sha256.clone(),
        _ => String::new(),
    }
}

/// Journals the rules and profiles in force when they differ from what the
/// journal last recorded (a first start, or files changed since): every
/// later decision was made under them.
pub(super) fn record_rules(
    engine: &mut dyn StartupEngine,
    rules: &VenueCommand,
) -> Result<(), VenueError> {
    let VenueCommand::Rules {
        version,
        rules_sha256,
        profiles_sha256,
    } = rules
    else {
        return Ok(());
    };
    let same = engine.core().state().venue().rules().is_some_and(|r| {
        r.version == *version
            && r.rules_sha256 == *rules_sha256
            && r.profiles_sha256 == *profiles_sha256
    });
    if same {
        return Ok(());
    }
    tracing::info!(
        version,
        rules_sha256,
        profiles_sha256,
        "rules in force recorded"
    );
    let mut batch = vec![Input::Command {
        corr: 0,
        command: Command::Venue(Box::new(rules.clone())),
        annotation: None,
    }];
    engine.run(&mut batch, &mut |_| {})
}

/// Lists configured instruments the journal does not have yet and, on an
/// empty journal, deposits the configured cash and eligible credit lots.
pub(super) fn genesis(
    engine: &mut dyn StartupEngine,
    config: &VenueConfig,
    specs: &[InstrumentSpec],
    fresh: bool,
) -> Result<(), VenueError> {
    let mut batch = Vec::new();
    let existing = engine.core().state().books().len();
    for (i, (instrument, spec)) in config.instruments.iter().zip(specs).enumerate() {
        if i < existing {
            let listed = engine.core().state().books()[i].spec.symbol;
            if listed != spec.symbol {
                return Err(start_error(format!(
                    "{}: instrument {} is {} in the journal but {} in the config: instruments may only be appended",
                    config.path.display(),
                    i + 1,
                    listed,
                    spec.symbol
                )));
            }
            continue;
        }
        batch.push(Input::Command {
            corr: 0,
            command: Command::AddInstrument {
                instrument: i as u32,
                spec: *spec,
            },
            annotation: Some(Box::new(Annotation::Event(StreamEvent::Instrument {
                instrument: i as u32,
                symbol: instrument.symbol.clone(),
                sub_ledger: instrument.sub_ledger.clone(),
                tick_micros: spec.tick_micros,
            }))),
        });
    }
    if fresh {
        for account in &config.accounts {
            let micros = (account.cash_usd * Decimal::from(1_000_000))
                .trunc()
                .to_i64()
                .ok_or_else(|| {
                    start_error(format!("account {}: cash_usd too large", account.id))
                })?;
            if micros > 0 {
                batch.push(Input::Command {
                    corr: 0,
                    command: Command::Deposit {
                        account: account.id,
                        asset: Asset::Cash(Cash(micros)),
                    },
                    annotation: None,
                });
            }
        }
        let journaled = engine.core().state().venue().serials().clone();
        for decision in lots::ingest_all(config, &journaled)? {
            if let Some(refusal) = &decision.refusal {
                tracing::warn!(
                    source = %decision.source,
                    reason = refusal.reason().as_str(),
                    text = %refusal.text(),
                    "lot not deposited"
                );
                continue;
            }
            let Some(block) = decision.block.clone() else {
                continue;
            };
            let index = config
                .instruments
                .iter()
                .position(|i| i.symbol == decision.instrument)
                .expect("ingest checks instruments") as u32;
            for (command, annotation) in super::admin_lots::lot_commands(&decision, block, index) {
                batch.push(Input::Command {
                    corr: 0,
                    command,
                    annotation,
                });
            }
        }
    }
    if batch.is_empty() {
        return Ok(());
    }
    let mut refused = Vec::new();
    let mut current = None;
    let mut watch = |output| match output {
        Output::Begin { command, .. } => current = Some(command),
        Output::Event(Event::Rejected { reason, .. }) => {
            refused.push(format!("{:?}: {reason}", current));
        }
        _ => {}
    };
    engine.run(&mut batch, &mut watch)?;
    if !refused.is_empty() {
        return Err(start_error(format!(
            "{}: the engine refused start-up commands: {}",
            config.path.display(),
            refused.join("; ")
        )));
    }
    Ok(())
}
