#!/usr/bin/env bash
# Settlement crash test: venue + settlement (feeding outcomes back to the
# venue) + a load test with buyers and sellers; the settlement process is
# killed with SIGKILL mid-run and restarted, then the venue is killed with
# SIGKILL at another random moment and restarted on its journal (and
# settlement with it, on the venue's new addresses). When settlement has
# caught up with the whole fill stream and the venue has every outcome, both
# stop and `tonnex-settlement audit --journal` must pass: the ledger's
# invariants, the custody chain, and the engine's balances equal to the
# ledger's for every account and asset (nothing applied twice or lost on
# either side). Every certificate must carry the fields of COMPLIANCE.md.
#
#   scripts/settlement-crash-test.sh [SECONDS_OF_LOAD]     (default 8)
set -euo pipefail
cd "$(dirname "$0")/.."
LOAD_SECONDS=${1:-8}
cargo build --release --quiet --bin tonnex-venue --bin tonnex-loadtest --bin tonnex-settlement
BIN=target/release
WORK=$(mktemp -d /tmp/tonnex-settle-crash.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

source scripts/lib.sh
start_demo_venue "$WORK/journal" "$WORK"

start_settlement() {
    : >"$WORK/settlement.out"
    $BIN/tonnex-settlement run --venue "$FILLS" --data-dir "$WORK/settlement" \
        --fill-key demo-settlement-key --secret demo-webhook-secret \
        --venue-admin "$ADMIN" --admin-key demo-settlement-admin-key >"$WORK/settlement.out" 2>>"$WORK/settlement.err" &
    SETTLEMENT=$!
    PIDS+=($SETTLEMENT)
    wait_ready "$WORK/settlement.out"
}
start_settlement

# Buyer orders, each retired and certified once settled.
buyers() {
    for i in 1 2 3; do
        python3 scripts/client.py --venue "$ENTRY" --account 2001 --secret demo-2001 --instrument 0 --side sell --price-ticks 2450 --qty 5 >/dev/null
        python3 scripts/client.py --venue "$ENTRY" --account 1001 --secret demo-1001 --instrument 0 --side buy --price-ticks 2600 --qty 5 --scope 1:0:5 >/dev/null
    done
}
random_pause() { python3 -c "import random; print(round(random.uniform($1, $2), 2))"; }
buyers
$BIN/tonnex-loadtest --venue "$ENTRY" --sessions 4 --rate 30000 --duration "$LOAD_SECONDS" --instruments 0,1,2 --quiet >"$WORK/load.out" &
LOAD=$!
sleep "$(random_pause 1.0 "$(python3 -c "print(max(1.5, $LOAD_SECONDS / 2 - 1))")")"
kill -9 "$SETTLEMENT"
echo "killed settlement mid-run at record $(python3 -c "
import sqlite3; db = sqlite3.connect('file:$WORK/settlement/ledger.sqlite?mode=ro', uri=True)
print(db.execute(\"SELECT value FROM meta WHERE key = 'last_stream_seq'\").fetchone()[0])")"
sleep 1   # settlement stays down for a second while the venue trades on
start_settlement
wait "$LOAD"
tail -1 "$WORK/load.out"

# The venue killed at a random moment of a second load (its sessions die with it).
$BIN/tonnex-loadtest --venue "$ENTRY" --sessions 4 --rate 30000 --duration 30 --instruments 0,1,2 --quiet >"$WORK/load2.out" 2>&1 &
LOAD=$!
sleep "$(random_pause 0.5 2.5)"
kill -9 "$VENUE_PID"
# The load test has nothing left to do (it would wait out its 30 s).
kill "$LOAD" 2>/dev/null || true
wait "$LOAD" || true
echo "killed the venue mid-run; settlement loses its stream and admin port"
kill -9 "$SETTLEMENT"
sleep 0.5
start_demo_venue "$WORK/journal" "$WORK"
echo "venue restarted: $(grep -o 'recovered_records=[0-9]*' "$WORK/venue.out")"
start_settlement
buyers

# Caught up: the ledger has applied every record the venue streamed,
# nothing is in flight, and the venue has acknowledged every outcome.
RECORDS=$(python3 scripts/fillstream.py "$FILLS")
python3 - "$RECORDS" "$WORK/settlement/ledger.sqlite" <<'PY'
import sys
sys.path.insert(0, "scripts")
from settled import wait_fed, wait_settled
wait_settled(sys.argv[2], int(sys.argv[1]), 180, poll_s=0.5)
wait_fed(sys.argv[2], 60)
print(f"settlement caught up: {sys.argv[1]} stream records applied, every outcome acknowledged by the venue")
PY
kill -TERM "$SETTLEMENT"; wait "$SETTLEMENT"
kill -TERM "$VENUE_PID"; wait "$VENUE_PID"
$BIN/tonnex-settlement audit --data-dir "$WORK/settlement" --journal "$WORK/journal" >"$WORK/audit.txt" || { head -c 3000 "$WORK/audit.txt"; echo; echo "FAIL: audit"; exit 1; }
grep -q 'reconciled=true custody_chain=ok' "$WORK/audit.txt" || { tail -1 "$WORK/audit.txt"; echo "FAIL: reconciliation"; exit 1; }
tail -1 "$WORK/audit.txt"
python3 - "$WORK/settlement/certificates" <<'PY'
import json, pathlib, sys
fields = ["certificate_id", "issued_at", "account", "company", "reporting_year", "pathway", "floor_usd",
          "internal_carbon_price_usd", "attestation", "scope_allocation", "trades",
          "supplementary_pricing_total_usd", "credits", "retirement", "coverage_pct",
          "tier_threshold_met", "sha256"]
certificates = sorted(pathlib.Path(sys.argv[1]).glob("*.json"))
if not certificates:
    sys.exit("FAIL: no certificates")
for path in certificates:
    c = json.loads(path.read_text())
    missing = [f for f in fields if f not in c]
    if missing:
        sys.exit(f"FAIL: {path.name} lacks {missing}")
print(f"{len(certificates)} certificates carry every field")
PY
rm -rf "$WORK"
echo "settlement-crash-test ok"
