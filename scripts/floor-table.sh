#!/usr/bin/env bash
# The README's "Against the floor" table, measured: the venue with its engine
# on a thread of its own, the venue with the engine inline, and the floor
# server, alternating, ROUNDS runs of SECONDS each per load; prints each run,
# then the medians as the README's markdown rows.
#   scripts/floor-table.sh [BIN_DIR] [ROUNDS] [SECONDS]
# BIN_DIR (default target/release) holds tonnex-venue, tonnex-loadtest and
# tonnex-floor (cargo build --release -p tonnex-gateway -p tonnex-loadtest
# -p tonnex-benches). Takes about ROUNDS x 12 x (SECONDS + 2) seconds; run
# it on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release} rounds=${2:-3} seconds=${3:-8}
for tool in tonnex-venue tonnex-loadtest tonnex-floor; do
    [[ -x "$bin/$tool" ]] || { echo "floor-table: $bin/$tool: not built" >&2; exit 2; }
done
runs=$(mktemp /tmp/tonnex-floor-table.XXXXXX)
trap 'rm -f "$runs"' EXIT
loads=("20000" "50000" "0" "0 --sessions 1 --window 1")
for round in $(seq 1 "$rounds"); do
    for load in "${loads[@]}"; do
        read -r -a args <<<"$load"
        rate=${args[0]} extra=("${args[@]:1}")
        for who in thread inline floor; do
            if [[ $who == floor ]]; then
                line=$(scripts/floor-bench.sh "$bin" "$rate" "$seconds" "${extra[@]}")
            else
                line=$(VENUE_ENGINE=$who scripts/venue-bench.sh "$bin" "$rate" "$seconds" "" "${extra[@]}" | grep '^sent=')
            fi
            echo "round=$round load=\"$load\" who=$who $line" | tee -a "$runs"
        done
    done
done
python3 - "$runs" "${loads[@]}" <<'PY'
import re, statistics, sys
runs, loads = sys.argv[1], sys.argv[2:]
rows = {}
for line in open(runs):
    load = re.search(r'load="([^"]*)"', line).group(1)
    who = re.search(r'who=(\w+)', line).group(1)
    fields = dict(re.findall(r'(\w+)=([0-9.]+)', line))
    rows.setdefault((load, who), []).append(fields)
def med(load, who, key):
    return statistics.median(float(r[key]) for r in rows[(load, who)])
names = {"20000": "20,000 msgs/s", "50000": "50,000 msgs/s", "0": "closed loop (`--rate 0`)",
         "0 --sessions 1 --window 1": "one order in flight (`--sessions 1 --rate 0 --window 1`)"}
print("| load | engine thread p50 / p99 | inline p50 / p99 | floor p50 / p99 | inline / floor |")
print("|---|---|---|---|---|")
for load in loads:
    cells = []
    for who in ("thread", "inline", "floor"):
        cell = f"{med(load, who, 'p50_us'):,.0f} / {med(load, who, 'p99_us'):,.0f}"
        if load == "0":
            cell += f"; {med(load, who, 'throughput_per_s'):,.0f}/s"
        cells.append(cell)
    ratio = (f"{med(load, 'inline', 'p50_us') / med(load, 'floor', 'p50_us'):.1f}x / "
             f"{med(load, 'inline', 'p99_us') / med(load, 'floor', 'p99_us'):.1f}x")
    if load == "0":
        share = med(load, "inline", "throughput_per_s") / med(load, "floor", "throughput_per_s")
        ratio += f"; {100 * share:.0f} % of the floor's throughput"
    print(f"| {names.get(load, load)} | " + " | ".join(cells) + f" | {ratio} |")
PY
