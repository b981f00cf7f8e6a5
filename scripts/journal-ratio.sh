#!/usr/bin/env bash
# Journaled vs un-journaled replay throughput (the journal issue's >= 70 %
# target): PAIRS alternating runs of `tonnex-replay WORKLOAD --repeat 5`
# without and with `--journal-out` (default journal durability `process`),
# side by side so the machine's drift hits both alike; prints each pair and
# the median of the ratios.
#
#   scripts/journal-ratio.sh [WORKLOAD] [PAIRS]
# WORKLOAD defaults to a 1,000,000-command steady gen.py workload (seed 7),
# generated into target/ on first use; PAIRS to 7.
set -euo pipefail
cd "$(dirname "$0")/.."
WORKLOAD=${1:-target/workloads/steady-1m-seed7.txt}
PAIRS=${2:-7}
if [ ! -f "$WORKLOAD" ]; then
    mkdir -p "$(dirname "$WORKLOAD")"
    python3 ../shared/workloads/gen.py --ops 1000000 --seed 7 --profile steady >"$WORKLOAD"
fi
cargo build --release --quiet -p tonnex-engine --bin tonnex-replay
JOURNAL=$(mktemp -d /tmp/tonnex-journal-ratio.XXXXXX)
trap 'rm -rf "$JOURNAL"' EXIT
rate() { tail -1 | sed -E 's/.*ops_per_sec=([0-9]+).*/\1/'; }
RATIOS=()
for i in $(seq 1 "$PAIRS"); do
    PLAIN=$(target/release/tonnex-replay "$WORKLOAD" --repeat 5 | rate)
    JOURNALED=$(target/release/tonnex-replay "$WORKLOAD" --repeat 5 --journal-out "$JOURNAL" | rate)
    RATIO=$(python3 -c "print(f'{$JOURNALED / $PLAIN * 100:.0f}')")
    RATIOS+=("$RATIO")
    echo "pair $i: without journal $PLAIN ops/s, journaled $JOURNALED ops/s: $RATIO %"
done
python3 -c "import statistics, sys; r = sorted(map(int, sys.argv[1:])); print(f'journaled / un-journaled: median {statistics.median(r):.0f} %, range {r[0]}-{r[-1]} % over {len(r)} pairs')" "${RATIOS[@]}"
