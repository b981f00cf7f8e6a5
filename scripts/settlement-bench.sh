#!/usr/bin/env bash
# Settlement throughput: a venue is loaded with a closed-loop load test for
# SECONDS (default 10), so its fill stream holds about a million trades; then
# a fresh `tonnex-settlement run` catches up with that stream from record 1.
# Printed: the time from its start until every record is applied and no
# trade is in flight (each trade locked in escrow, confirmed twice by the
# embedded registry simulator over signed webhooks, settled), trades per
# second, and how long `tonnex-settlement audit` then takes.
#
#   scripts/settlement-bench.sh [SECONDS] [-- extra tonnex-settlement run flags]
#
# With TONNEX_BENCH_LIVE_RATE=N the settlement runs from the start instead,
# while the load test sends N order messages a second for SECONDS (the demo
# sends 50000): printed is how far behind the venue it was when the load
# ended, and how long it took to catch up from there.
#
# Settlement feeds every outcome back to the venue (--venue-admin) and the
# time counts until the venue has acknowledged them all;
# TONNEX_BENCH_NO_FEED=1 runs without the feed (and an older build, through
# SETTLEMENT_WRAPPER, that has none).
#
# With TONNEX_BENCH_VENUE=DIR the venue's journal and fill log are kept in
# DIR and, when DIR already holds them, reused without a new load test: every
# run then settles the very same fill stream (compare builds that way).
set -euo pipefail
cd "$(dirname "$0")/.."
LOAD_SECONDS=${1:-10}
shift || true
[ "${1:-}" = "--" ] && shift
cargo build --release --quiet --bin tonnex-venue --bin tonnex-loadtest --bin tonnex-settlement
BIN=target/release
WORK=$(mktemp -d /tmp/tonnex-settle-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
source scripts/lib.sh

VENUE_DIR=${TONNEX_BENCH_VENUE:-$WORK/journal}
REUSE=no
[ -n "${TONNEX_BENCH_VENUE:-}" ] && [ -d "$VENUE_DIR" ] && REUSE=yes
start_demo_venue "$VENUE_DIR" "$WORK"
FEED=(--venue-admin "$ADMIN" --admin-key demo-settlement-admin-key)
[ -n "${TONNEX_BENCH_NO_FEED:-}" ] && FEED=()
start_settlement() {
    ${SETTLEMENT_WRAPPER:-} $BIN/tonnex-settlement run --venue "$FILLS" --data-dir "$WORK/settlement" \
        --fill-key demo-settlement-key --secret demo-webhook-secret "${FEED[@]}" "$@" \
        >"$WORK/settlement.out" 2>"$WORK/settlement.err" &
    PIDS+=($!)
}
if [ -n "${TONNEX_BENCH_LIVE_RATE:-}" ]; then
    start_settlement "$@"
    wait_ready "$WORK/settlement.out"
    $BIN/tonnex-loadtest --venue "$ENTRY" --sessions 4 --rate "$TONNEX_BENCH_LIVE_RATE" \
        --duration "$LOAD_SECONDS" --instruments 0,1,2 --quiet | tail -1
    python3 - "$FILLS" "$WORK/settlement/ledger.sqlite" <<'PY'
import sys, time
sys.path.insert(0, "scripts")
from fillstream import records
from settled import applied, open_ledger, wait_settled
end, path = time.time(), sys.argv[2]
applied_at_end = applied(open_ledger(path))
count = len(records(sys.argv[1]))
behind = count - applied_at_end
db = wait_settled(path, count, 900, poll_s=0.1, since=end)
trades = db.execute("SELECT COUNT(*) FROM trades").fetchone()[0]
print(f"{trades} trades ({count} stream records); when the load ended the settlement was "
      f"{behind} records behind; every trade settled {time.time() - end:.1f} s after the load ended")
PY
    exit 0
fi
if [ $REUSE = no ]; then
    $BIN/tonnex-loadtest --venue "$ENTRY" --sessions 4 --rate 0 --duration "$LOAD_SECONDS" \
        --instruments 0,1,2 --quiet | tail -1
fi
RECORDS=$(python3 scripts/fillstream.py "$FILLS")

START=$(date +%s.%N)
start_settlement "$@"
python3 - "$START" "$RECORDS" "$WORK/settlement/ledger.sqlite" "${#FEED[@]}" <<'PY'
import sys, time
sys.path.insert(0, "scripts")
from settled import wait_fed, wait_settled
start, count, path, feed = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4] != "0"
db = wait_settled(path, count, 900, since=start)
settled = time.time() - start
if feed:
    wait_fed(path, 900, poll_s=0.1)
seconds = time.time() - start
trades = db.execute("SELECT COUNT(*) FROM trades").fetchone()[0]
fed = f", every outcome acknowledged by the venue after {seconds:.1f} s" if feed else " (no feed)"
print(f"settled {trades} trades ({count} stream records) in {settled:.1f} s{fed}: {trades / seconds:,.0f} trades/s")
PY
kill -9 "${PIDS[@]}" 2>/dev/null || true
wait 2>/dev/null || true
START=$(date +%s.%N)
$BIN/tonnex-settlement audit --data-dir "$WORK/settlement" | tail -1
echo "audit took $(python3 -c "print(round($(date +%s.%N) - $START, 1))") s"
