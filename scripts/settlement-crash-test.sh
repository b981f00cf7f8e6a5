#!/usr/bin/env bash
# Settlement crash test: venue + settlement + load test, the settlement
# process killed with SIGKILL mid-run and restarted. When it has caught up
# with the whole fill stream, `tonnex-settlement audit` must pass and every
# certificate must carry the fields of COMPLIANCE.md.
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
        --fill-key demo-settlement-key --secret demo-webhook-secret >"$WORK/settlement.out" 2>>"$WORK/settlement.err" &
    SETTLEMENT=$!
    PIDS+=($SETTLEMENT)
    wait_ready "$WORK/settlement.out"
}
start_settlement

# Buyer orders, each retired and certified once settled.
for i in 1 2 3; do
    python3 scripts/client.py --venue "$ENTRY" --account 2001 --secret demo-2001 --instrument 0 --side sell --price-ticks 2450 --qty 5 >/dev/null
    python3 scripts/client.py --venue "$ENTRY" --account 1001 --secret demo-1001 --instrument 0 --side buy --price-ticks 2600 --qty 5 --scope 1:0:5 >/dev/null
done
$BIN/tonnex-loadtest --venue "$ENTRY" --sessions 4 --rate 30000 --duration "$LOAD_SECONDS" --instruments 0,1,2 --quiet >"$WORK/load.out" &
LOAD=$!
sleep "$(python3 -c "import random; print(round(random.uniform(1.5, max(2.0, $LOAD_SECONDS - 3)), 2))")"
kill -9 "$SETTLEMENT"
echo "killed settlement mid-run at record $(python3 -c "
import sqlite3; db = sqlite3.connect('file:$WORK/settlement/ledger.sqlite?mode=ro', uri=True)
print(db.execute(\"SELECT value FROM meta WHERE key = 'last_stream_seq'\").fetchone()[0])")"
sleep 1   # settlement stays down for a second while the venue trades on
start_settlement
wait "$LOAD"
tail -1 "$WORK/load.out"

# Caught up: the ledger has applied every record the venue streamed, and nothing is in flight.
RECORDS=$(python3 scripts/fillstream.py "$FILLS")
python3 - "$RECORDS" "$WORK/settlement/ledger.sqlite" <<'PY'
import sys
sys.path.insert(0, "scripts")
from settled import wait_settled
wait_settled(sys.argv[2], int(sys.argv[1]), 180, poll_s=0.5)
print(f"settlement caught up: {sys.argv[1]} stream records applied")
PY
$BIN/tonnex-settlement audit --data-dir "$WORK/settlement" >"$WORK/audit.txt" || { head -c 3000 "$WORK/audit.txt"; echo; echo "FAIL: audit"; exit 1; }
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
