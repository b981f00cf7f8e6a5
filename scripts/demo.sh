#!/usr/bin/env bash
# The README's main command. Builds tonnex in release mode and runs the demo.
#
# Until the venue (gateway issue) lands, the demo drives the matching engine
# directly: it generates a workload with shared/workloads/gen.py, replays it
# through tonnex-replay (throughput and per-command latency), checks the
# fills against gen.py's independent reference book, and replays the same
# flow through the plain BTreeMap baseline book for comparison.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
gen="$root/../shared/workloads/gen.py"
ops=${TONNEX_DEMO_OPS:-500000}

echo "== building (cargo build --release)"
cargo build --release --quiet

if [ -x target/release/tonnex-venue ]; then
  echo "tonnex-venue exists but the venue demo is not wired into this script yet"
else
  echo "== the venue (tonnex-venue) is not built yet (gateway issue); demonstrating the engine"
fi

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
