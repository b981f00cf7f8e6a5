//! Criterion bench of journal appends: one new-order record (the commonest
//! and largest command) per iteration, into a journal in the system's
//! temporary folder, `process` durability (no system call per record).
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tonnex_engine::journal::{self, Durability, Journal, JournalConfig, RecoverOptions};
use tonnex_engine::{Command, Compliance, EngineConfig, NewOrder};
use tonnex_protocol::{Cash, OrderKind, Price, Qty, Side};

fn append(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("tonnex-bench-journal-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = EngineConfig::default();
    let empty = journal::recover(
        &dir,
        RecoverOptions {
            use_snapshot: false,
            track_orders: false,
            config,
        },
    )
    .unwrap();
    let journal_config = JournalConfig {
        dir: dir.clone(),
        segment_bytes: 256 << 20,
        durability: Durability::Process,
    };
    let mut journal = Journal::open(journal_config, config, &empty).unwrap();
    let mut seq = 0u64;
    let mut group = c.benchmark_group("journal");
    group.throughput(Throughput::Elements(1));
    group.bench_function("append_new_order", |b| {
        b.iter(|| {
            seq += 1;
            let command = Command::New(NewOrder {
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
                compliance: Compliance::NONE,
                ts_ns: 1_700_000_000_000_000_000 + seq,
            });
            journal.append(black_box(seq), black_box(&command)).unwrap();
        })
    });
    group.finish();
    drop(journal);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, append);
criterion_main!(benches);
