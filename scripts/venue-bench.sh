#!/usr/bin/env bash
# One venue load-test run on a fresh journal, for side-by-side comparisons:
#   scripts/venue-bench.sh BIN_DIR RATE SECONDS [DURABILITY] [LOADTEST_ARGS...]
# BIN_DIR holds tonnex-venue and tonnex-loadtest (target/release, or another
# build's: each build's load test speaks its own protocol). DURABILITY is
# process (the default), batch or sync (passed as --durability; leave it
# out for builds that predate the flag). Prints the load test's summary line
# (after its per-flow lines and rejects, with --buyers), then a line
# `cpu event_loop_s=S`: the CPU time of the venue's event-loop thread over
# the run (scripts/venue-pairs.sh divides it by the orders acknowledged).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$1 rate=$2 seconds=$3 durability=${4:-}
shift $(( $# < 4 ? $# : 4 ))
work=$(mktemp -d /tmp/tonnex-venue-bench.XXXXXX)
trap 'kill "$venue_pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
extra=()
[[ -n "$durability" ]] && extra=(--durability "$durability")
# VENUE_ENGINE=thread|inline chooses where the engine runs (--engine).
[[ -n "${VENUE_ENGINE:-}" ]] && extra+=(--engine "$VENUE_ENGINE")
# Builds with a market-data feed in the demo file take it on a free port.
md_listen=()
grep -q '^\[market_data\]' config/demo/venue.toml && md_listen=(--market-data-listen 127.0.0.1:0)
"$bin/tonnex-venue" run --config config/demo/venue.toml --journal-dir "$work/journal" \
    --listen 127.0.0.1:0 --fills-listen 127.0.0.1:0 "${extra[@]}" "${md_listen[@]}" \
    >"$work/venue.out" 2>"$work/venue.err" &
venue_pid=$!
for _ in $(seq 1 200); do grep -q '^ready ' "$work/venue.out" 2>/dev/null && break; sleep 0.05; done
entry=$(sed -E 's/.*order_entry=([^ ]+).*/\1/' "$work/venue.out")
# A load-test argument @MD@ becomes the market-data feed's address.
md=$(sed -nE 's/.*market_data=([^ ]+).*/\1/p' "$work/venue.out")
args=()
for a in "$@"; do [[ "$a" == "@MD@" ]] && args+=("$md") || args+=("$a"); done
# The event loop's CPU time (its thread's utime + stime, in clock ticks).
loop_ticks() { awk '{ print $14 + $15 }' "/proc/$venue_pid/task/$venue_pid/stat" 2>/dev/null || echo 0; }
before=$(loop_ticks)
"$bin/tonnex-loadtest" --venue "$entry" --sessions 4 --rate "$rate" --duration "$seconds" \
    --out "$work/report.json" --quiet "${args[@]}" | grep -E '^(flow |rejects |md |sent=)'
# Last line: the event loop's CPU seconds over the run (0 without /proc).
echo "cpu event_loop_s=$(awk -v t=$(( $(loop_ticks) - before )) -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }')"
kill -TERM "$venue_pid"
wait "$venue_pid"
