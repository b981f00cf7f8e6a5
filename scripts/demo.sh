#!/usr/bin/env bash
# The README's main command. Builds tonnex in release mode and runs the demo.
#
# Until the TCP venue (gateway issue) lands, the demo drives the parts that
# exist directly: it generates a workload with shared/workloads/gen.py,
# replays it through tonnex-replay (throughput and per-command latency),
# checks the fills against gen.py's independent reference book, replays the
# same flow through the plain BTreeMap baseline book for comparison,
# journals it and recovers the journal, and runs the compliance pre-router
# over the golden scenario.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
gen="$root/../shared/workloads/gen.py"
ops=${TONNEX_DEMO_OPS:-500000}

echo "== building (cargo build --release)"
cargo build --release --quiet

echo "== the TCP venue (tonnex-venue run) is not built yet (gateway issue): demonstrating the engine, journal and compliance check"

if [ ! -f "$gen" ]; then
  echo "demo: $gen not found (the workload generator lives in shared/ beside the repository)" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

echo "== generating $ops commands (gen.py --profile steady --seed 7)"
python3 "$gen" --ops "$ops" --seed 7 --profile steady --fills "$work/want.fills" > "$work/steady.txt"
python3 "$gen" --ops "$ops" --seed 7 --profile steady --mix basic > "$work/basic.txt"

echo "== tonnex-replay: full mix, fills checked against gen.py's reference book"
target/release/tonnex-replay "$work/steady.txt" --fills "$work/got.fills" --book "$work/book.txt" | tail -1
if cmp -s "$work/want.fills" "$work/got.fills"; then
  echo "fills: identical to the reference ($(wc -l < "$work/got.fills") trades)"
else
  echo "fills: DIFFER from the reference" >&2
  exit 1
fi

echo "== tonnex-replay --latency (per-command timing)"
target/release/tonnex-replay "$work/steady.txt" --latency | tail -1

echo "== basic mix, median of 3: tonnex vs a plain BTreeMap book"
printf 'tonnex   '; target/release/tonnex-replay "$work/basic.txt" --repeat 3 | tail -1
printf 'baseline '; target/release/tonnex-baseline-replay "$work/basic.txt" --repeat 3

echo "== journaling every command, then recovering the journal (tonnex-replay --journal)"
target/release/tonnex-replay "$work/steady.txt" --journal-out "$work/journal" --segment-mb 64 --snapshot-every 200000 | tail -2
target/release/tonnex-replay --journal "$work/journal" --book "$work/recovered.txt" | tail -1
if cmp -s <(echo "I WORKLOAD"; cat "$work/book.txt") "$work/recovered.txt"; then
  echo "recovered book: identical to the live one"
else
  echo "recovered book: DIFFERS from the live one" >&2
  exit 1
fi

echo "== compliance pre-router (tonnex-venue check) on gateway/tests/scenarios/basic"
scenario=gateway/tests/scenarios/basic
target/release/tonnex-venue check --config "$scenario/venue.toml" --orders "$scenario/orders.jsonl" > "$work/decisions.jsonl"
python3 - "$work/decisions.jsonl" <<'PY'
import collections, json, sys
counts = collections.Counter()
for line in open(sys.argv[1]):
    d = json.loads(line)
    counts[(d["decision"], d["reason"] or "-")] += 1
for (decision, reason), n in sorted(counts.items()):
    print(f"{n:3d}  {decision:7s} {reason}")
PY
