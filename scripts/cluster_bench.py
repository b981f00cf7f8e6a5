#!/usr/bin/env python3
"""One venue against a three-node cluster, side by side on this machine:
the load test's ack latency at a fixed rate and its closed-loop
throughput, alternating single and cluster runs, each on fresh folders.

    scripts/cluster_bench.py BIN_DIR [--rounds 3] [--seconds 8] [--rate 20000]

Prints every run's summary line, then per setup and load the medians:
`bench setup=single|cluster load=RATE p50_us=.. p99_us=.. throughput_per_s=..`.
"""

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_nodes import ROOT, Node, free_ports, wait_for  # noqa: E402


def load(bin_dir, venues, rate, seconds):
    result = subprocess.run(
        [f"{bin_dir}/tonnex-loadtest", "--venue", venues, "--sessions", "4",
         "--rate", str(rate), "--duration", str(seconds), "--quiet"],
        capture_output=True, text=True, timeout=seconds + 120)
    last = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    if result.returncode != 0 or not last.startswith("sent="):
        raise SystemExit(f"FAIL: load test: {result.stdout}{result.stderr}")
    values = dict(re.findall(r"(\w+)=([\d.]+)", last))
    return last, {k: float(values[k]) for k in ("p50_us", "p99_us", "throughput_per_s")}


def single(bin_dir, work, rate, seconds):
    entry, fills = free_ports(2)
    out = open(os.path.join(work, "single.out"), "w")
    venue = subprocess.Popen(
        [f"{bin_dir}/tonnex-venue", "run", "--config",
         os.path.join(ROOT, "config/demo/venue.toml"),
         "--journal-dir", os.path.join(work, "single"),
         "--listen", f"127.0.0.1:{entry}", "--fills-listen", f"127.0.0.1:{fills}",
         "--admin-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
         "--market-data-listen", "127.0.0.1:0"],
        stdout=out, stderr=subprocess.DEVNULL)
    try:
        wait_for("the venue ready", lambda: "ready " in open(out.name).read(), 20)
        return load(bin_dir, f"127.0.0.1:{entry}", rate, seconds)
    finally:
        venue.send_signal(signal.SIGTERM)
        venue.wait(timeout=30)


def cluster(bin_dir, work, rate, seconds):
    ports = free_ports(18)
    nodes = [Node(bin_dir, work, i + 1, ports[6 * i], ports[6 * i + 1], ports[6 * i + 2:6 * i + 6])
             for i in range(3)]
    peers = ",".join(f"{n.id}@127.0.0.1:{n.raft}" for n in nodes)
    entries = ",".join(f"{n.id}@127.0.0.1:{n.entry}" for n in nodes)
    try:
        for node in nodes:
            node.start(peers, entries)
        wait_for("a leader", lambda: any(n.role() == "leader" for n in nodes), 20)
        return load(bin_dir, ",".join(f"127.0.0.1:{n.entry}" for n in nodes), rate, seconds)
    finally:
        for node in nodes:
            node.proc.send_signal(signal.SIGTERM)
        for node in nodes:
            node.proc.wait(timeout=30)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("bin_dir")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rate", type=int, default=20000)
    args = parser.parse_args()
    bin_dir = os.path.abspath(args.bin_dir)
    results = {}
    for round_ in range(args.rounds):
        for rate in (args.rate, 0):
            for name, run in (("single", single), ("cluster", cluster)):
                work = tempfile.mkdtemp(prefix="tonnex-cluster-bench.")
                try:
                    line, figures = run(bin_dir, work, rate, args.seconds)
                finally:
                    shutil.rmtree(work, ignore_errors=True)
                print(f"round={round_ + 1} setup={name} rate={rate} {line}", flush=True)
                results.setdefault((name, rate), []).append(figures)
    for (name, rate), runs in sorted(results.items(), key=lambda kv: (-kv[0][1], kv[0][0])):
        median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(f"bench setup={name} load={rate} p50_us={median['p50_us']:.1f} "
              f"p99_us={median['p99_us']:.1f} throughput_per_s={median['throughput_per_s']:.0f}")


if __name__ == "__main__":
    sys.exit(main())
