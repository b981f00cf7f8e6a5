#!/usr/bin/env bash
# One load-test run against the floor server (benches/src/bin/floor.rs:
# a bare mio server acknowledging every order, no matching, journal or
# compliance), for side-by-side comparisons with scripts/venue-bench.sh:
#   scripts/floor-bench.sh BIN_DIR RATE SECONDS [LOADTEST_ARGS...]
# Prints the load test's summary line. FLOOR_FILLS=N passes --fills N (the
# floor then also sends N Fill messages per 100 new orders: the venue's
# message volume without its work).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$1 rate=$2 seconds=$3
shift 3
work=$(mktemp -d /tmp/tonnex-floor-bench.XXXXXX)
trap 'kill "$floor_pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
"$bin/tonnex-floor" ${FLOOR_FILLS:+--fills "$FLOOR_FILLS"} >"$work/floor.out" 2>"$work/floor.err" &
floor_pid=$!
for _ in $(seq 1 200); do grep -q '^ready ' "$work/floor.out" 2>/dev/null && break; sleep 0.05; done
entry=$(sed -E 's/.*order_entry=([^ ]+).*/\1/' "$work/floor.out")
"$bin/tonnex-loadtest" --venue "$entry" --sessions 4 --rate "$rate" --duration "$seconds" \
    --out "$work/report.json" --quiet "$@" | grep -E '^sent='
