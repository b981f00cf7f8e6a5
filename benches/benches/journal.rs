//! Criterion bench of journal appends, `process` durability (no system call
//! per record): a plain new order (a market maker's: the commonest command,
//! 64-byte record) and a new order with compliance fields (88 bytes).
//!
//! Only appends into an open, prepared segment are timed: each batch of
//! iterations gets a fresh journal whose first segment is larger than the
//! batch fills, so a segment roll-over (file preparation, which on a small
//! machine costs more than the appends themselves) never lands inside a
//! measurement. Roll-overs are measured by a long journaled replay instead
//! (README, "Journal and recovery").
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tonnex_engine::journal::{self, Durability, Journal, JournalConfig, RecoverOptions};
use tonnex_engine::{Command, Compliance, EngineConfig, NewOrder};
use tonnex_protocol::{Cash, OrderKind, Pathway, Price, Qty, Side};

/// Appends per fresh journal: 1,000,000 records of at most 88 bytes fit in
/// one 128 MiB segment.
const PER_JOURNAL: u64 = 1_000_000;
const SEGMENT_BYTES: u64 = 128 << 20;

fn fresh_journal(dir: &Path) -> Journal {
    let _ = std::fs::remove_dir_all(dir);
    let config = EngineConfig::default();
    let empty = journal::recover(
        dir,
        RecoverOptions {
            use_snapshot: false,
            track_orders: false,
            config,
        },
    )
    .unwrap();
    let journal_config = JournalConfig {
        dir: dir.to_path_buf(),
        segment_bytes: SEGMENT_BYTES,
        durability: Durability::Process,
    };
    Journal::open(journal_config, config, &empty).unwrap()
}

fn order(seq: u64, compliance: Compliance) -> Command {
    Command::New(NewOrder {
        client_order_id: 0,
        id: seq,
        account: 1 + seq % 50,
        instrument: 0,
        side: if seq.is_multiple_of(2) {
            Side::Buy
        } else {
            Side::Sell
        },
        kind: OrderKind::Limit,
        price: Price(2_500 + (seq % 40) as i64),
        qty: Qty(1 + seq % 100),
        cash_budget: Cash::ZERO,
        compliance,
        ts_ns: 1_700_000_000_000_000_000 + seq,
    })
}

/// Times `iters` appends of `order(seq, compliance)`, in fresh journals of
/// at most [`PER_JOURNAL`] records each; only the appends are timed.
fn time_appends(dir: &Path, iters: u64, compliance: Compliance) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let batch = left.min(PER_JOURNAL);
        let mut journal = fresh_journal(dir);
        // The first append opens (prepares) the first segment: untimed.
        journal.append(1, &order(1, compliance)).unwrap();
        let commands: Vec<Command> = (2..batch + 2).map(|seq| order(seq, compliance)).collect();
        let started = Instant::now();
        for (seq, command) in (2..).zip(&commands) {
            journal.append(black_box(seq), black_box(command)).unwrap();
        }
        total += started.elapsed();
        left -= batch;
    }
    total
}

fn append(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("tonnex-bench-journal-{}", std::process::id()));
    let mut group = c.benchmark_group("journal");
    group.throughput(Throughput::Elements(1));
    group.bench_function("append_new_order_plain", |b| {
        b.iter_custom(|iters| time_appends(&dir, iters, Compliance::NONE));
    });
    let compliance = Compliance {
        pathway: Pathway::Recognised,
        floor_ticks: 2_000,
        attestation_id: 7,
        skip_below_floor: false,
    };
    group.bench_function("append_new_order_with_compliance", |b| {
        b.iter_custom(|iters| time_appends(&dir, iters, compliance));
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, append);
criterion_main!(benches);
