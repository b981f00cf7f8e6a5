//! `tonnex-cluster-bench`: what replication costs. One or three nodes
//! (`tonnex_cluster::runner`: a thread each with its own mio loop, TCP on
//! loopback, a journal folder each) and a client keeping `--window`
//! proposals of `--batch` engine commands in flight at the leader; every
//! proposal's latency from sending to its acknowledgement (committed by a
//! quorum and applied at the leader).
//!
//! ```text
//! tonnex-cluster-bench [--nodes 1|3|5] [--seconds N] [--ops N] [--batch N]
//!                      [--window N] [--durability process|sync]
//! ```
//! The run ends after `--seconds` or once the `--ops` commands of the
//! generated flow (2,000,000 by default) are all acknowledged.
//! Prints one line: `nodes= batch= window= proposals= commands_per_s=
//! p50_us= p99_us= p999_us= max_us=`.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tonnex_cluster::runner::{RunnerConfig, Running};
use tonnex_cluster::Role;
use tonnex_engine::generate::{generate, Mix, Options, Profile};
use tonnex_engine::journal::Durability;
use tonnex_engine::{workload, Command, EngineConfig};

struct Args {
    nodes: u64,
    seconds: u64,
    batch: usize,
    window: usize,
    ops: usize,
    durability: Durability,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        nodes: 3,
        seconds: 5,
        batch: 64,
        window: 8,
        ops: 2_000_000,
        durability: Durability::Process,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("{flag}: '{value}' is not a positive integer"))
        };
        match flag.as_str() {
            "--nodes" => args.nodes = number()?,
            "--seconds" => args.seconds = number()?,
            "--batch" => args.batch = number()? as usize,
            "--window" => args.window = number()? as usize,
            "--ops" => args.ops = number()? as usize,
            "--durability" => args.durability = Durability::parse(&value)?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    match parse_args().and_then(|args| run(&args)) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tonnex-cluster-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<String, String> {
    let engine = EngineConfig {
        holds: false,
        order_capacity: 1 << 20,
        ..EngineConfig::default()
    };
    let root = std::env::temp_dir().join(format!("tonnex-cluster-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let addrs: BTreeMap<u64, SocketAddr> = (1..=args.nodes)
        .map(|id| {
            let addr = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| e.to_string())?;
            Ok((id, addr))
        })
        .collect::<Result<_, String>>()?;
    let nodes: BTreeMap<u64, Running> = addrs
        .keys()
        .map(|&id| {
            Running::spawn(RunnerConfig {
                id,
                dir: root.join(format!("node-{id}")),
                peers: addrs.clone(),
                engine,
                durability: args.durability,
                snapshot_every: 100_000,
                tick: Duration::from_millis(10),
                // The nodes are this process's threads: any key they share.
                key: b"tonnex-cluster-bench".to_vec(),
            })
            .map(|node| (id, node))
            .map_err(|e| e.to_string())
        })
        .collect::<Result<_, String>>()?;
    let started = Instant::now();
    let leader = loop {
        if let Some((&id, _)) = nodes
            .iter()
            .find(|(_, n)| n.view().role == Some(Role::Leader))
        {
            break id;
        }
        if started.elapsed() > Duration::from_secs(5) {
            return Err("no leader in 5 s".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    // Order flow from the project's generator (every command kind).
    let mut text = Vec::new();
    generate(
        Options {
            profile: Profile::Steady,
            mix: Mix::Full,
            ops: args.ops,
            seed: 7,
            depth: None,
        },
        &mut text,
    )
    .map_err(|e| e.to_string())?;
    let flow = workload::parse(&String::from_utf8(text).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let node = &nodes[&leader];
    let (answer, answers) = channel();
    let instrument = vec![Command::AddInstrument {
        instrument: 0,
        spec: workload::instrument(),
    }];
    node.propose(instrument, answer.clone());
    answers
        .recv_timeout(Duration::from_secs(5))
        .map_err(|_| "the instrument was not acknowledged".to_string())?
        .ok_or("the leader refused the instrument")?;
    let mut histogram =
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map_err(|e| e.to_string())?;
    let mut in_flight = VecDeque::new();
    let mut next = 0;
    let mut proposals = 0u64;
    let begin = Instant::now();
    let until = begin + Duration::from_secs(args.seconds);
    loop {
        let now = Instant::now();
        while in_flight.len() < args.window && now < until {
            let end = (next + args.batch).min(flow.len());
            if next == end {
                break;
            }
            if !node.propose(flow[next..end].to_vec(), answer.clone()) {
                return Err("the leader stopped".into());
            }
            in_flight.push_back(Instant::now());
            next = end;
        }
        if in_flight.is_empty() {
            break;
        }
        match answers.recv_timeout(Duration::from_secs(5)) {
            Ok(Some(_)) => {
                let sent = in_flight.pop_front().expect("one in flight");
                histogram
                    .record(sent.elapsed().as_micros().max(1) as u64)
                    .map_err(|e| e.to_string())?;
                proposals += 1;
            }
            Ok(None) => return Err("the leader lost its leadership".into()),
            Err(_) => return Err("no acknowledgement in 5 s".into()),
        }
    }
    let elapsed = begin.elapsed().as_secs_f64();
    for node in nodes.into_values() {
        node.stop().map_err(|e| e.to_string())?;
    }
    let _ = std::fs::remove_dir_all(&root);
    let commands = next as f64;
    Ok(format!(
        "nodes={} batch={} window={} proposals={proposals} commands_per_s={:.0} p50_us={} p99_us={} p999_us={} max_us={}",
        args.nodes,
        args.batch,
        args.window,
        commands / elapsed,
        histogram.value_at_quantile(0.5),
        histogram.value_at_quantile(0.99),
        histogram.value_at_quantile(0.999),
        histogram.max(),
    ))
}
