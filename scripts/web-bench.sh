#!/usr/bin/env bash
# tonnex-web's pages against a big ledger: a venue is loaded with
# closed-loop load tests of SECONDS each (default 2) until its fill stream
# holds over a million trades (whatever the VM's speed: settlement's
# catching up is most of the run, so no more than needed), a buyer trades
# beside it, settlement catches up with the whole fill stream,
# and then every page of the buyer, the operator and the verifier is timed
# (20 requests each, over HTTP on loopback, server-side rendering included).
# Fails when a page's 95th percentile is 200 ms or more.
#
#   scripts/web-bench.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
LOAD_SECONDS=${1:-2}
cargo build --release --quiet --bin tonnex-venue --bin tonnex-loadtest --bin tonnex-settlement --bin tonnex-web
BIN=target/release
WORK=$(mktemp -d /tmp/tonnex-web-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
source scripts/lib.sh

start_demo_venue "$WORK/journal" "$WORK"
ADMIN=$(sed -E 's/.*admin=([^ ]+).*/\1/' "$WORK/venue.out")
METRICS=$(sed -E 's/.*metrics=([^ ]+).*/\1/' "$WORK/venue.out")
# Every trade is between two of the load test's sessions: two Fills.
TRADES=0
while (( TRADES < 1050000 )); do
    SUMMARY=$($BIN/tonnex-loadtest --venue "$ENTRY" --sessions 4 --rate 0 --duration "$LOAD_SECONDS" \
        --instruments 0,1,2 --quiet | tail -1)
    echo "$SUMMARY"
    ROUND_FILLS=$(sed -nE 's/.* fills=([0-9]+) .*/\1/p' <<<"$SUMMARY")
    [[ -n "$ROUND_FILLS" ]] || { echo "web-bench: no fills= in the load test's summary"; exit 1; }
    TRADES=$((TRADES + ROUND_FILLS / 2))
done
# The buyer's own trades, among the market makers' million.
for i in 1 2 3; do
    python3 scripts/client.py --venue "$ENTRY" --account 2001 --secret demo-2001 --instrument 0 \
        --side sell --price-ticks 2450 --qty 10 >/dev/null
    python3 scripts/client.py --venue "$ENTRY" --account 1001 --secret demo-1001 --instrument 0 \
        --side buy --price-ticks 2600 --qty 10 --scope 3:1:10 >/dev/null
done
RECORDS=$(python3 scripts/fillstream.py "$FILLS")
$BIN/tonnex-settlement run --venue "$FILLS" --data-dir "$WORK/settlement" \
    --fill-key demo-settlement-key >"$WORK/settlement.out" 2>"$WORK/settlement.err" &
PIDS+=($!)
python3 - "$RECORDS" "$WORK/settlement/ledger.sqlite" <<'PY'
import sys
sys.path.insert(0, "scripts")
from settled import wait_settled
db = wait_settled(sys.argv[2], int(sys.argv[1]), 900)
trades = db.execute("SELECT COUNT(*) FROM trades").fetchone()[0]
print(f"ledger: {trades} trades settled")
if trades < 1_000_000:
    sys.exit(f"web-bench: only {trades} trades in the ledger; load for longer (SECONDS)")
PY
$BIN/tonnex-web --config config/demo/venue.toml --ledger "$WORK/settlement" --listen 127.0.0.1:0 \
    --venue-admin "$ADMIN" --venue-metrics "$METRICS" >"$WORK/web.out" 2>"$WORK/web.err" &
PIDS+=($!)
wait_ready "$WORK/web.out"
WEB=$(sed -E 's/ready web=//' "$WORK/web.out")
python3 - "$WEB" <<'PY'
import http.cookiejar, json, sys, time, urllib.request
base = "http://" + sys.argv[1]

def client(body):
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    req = urllib.request.Request(base + "/api/login", json.dumps(body).encode(),
                                 {"content-type": "application/json"})
    opener.open(req).read()
    return opener

buyer = client({"account": 1001, "password": "demo-1001"})
operator = client({"operator": "ops", "password": "demo-ops-key"})
summary = json.loads(buyer.open(base + "/api/buyer/1001/summary").read())
assert summary["retired_tonnes"] == 30, summary
page = buyer.open(base + "/buyer/1001").read().decode()
order = page.split('/buyer/1001/orders/')[1].split('"')[0]
certificate = page.split('/buyer/1001/certificates/')[1].split('"')[0]
cert_json = buyer.open(f"{base}/buyer/1001/certificates/{certificate}/json").read()
pages = [
    ("buyer dashboard", buyer, "/buyer/1001", None),
    ("summary API", buyer, "/api/buyer/1001/summary", None),
    ("order decision", buyer, f"/buyer/1001/orders/{order}", None),
    ("certificate", buyer, f"/buyer/1001/certificates/{certificate}", None),
    ("verify API", buyer, "/api/verify", cert_json),
    ("operator console", operator, "/operator", None),
]
slow = []
for name, opener, path, data in pages:
    times = []
    for _ in range(20):
        started = time.perf_counter()
        with opener.open(urllib.request.Request(base + path, data)) as r:
            r.read()
            assert r.status == 200, (path, r.status)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    p50, p95 = times[len(times) // 2], times[int(len(times) * 0.95) - 1]
    print(f"{name:<18} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  max {times[-1]:6.1f} ms")
    if p95 >= 200:
        slow.append(name)
if slow:
    sys.exit(f"web-bench FAILED: {', '.join(slow)} took 200 ms or more (p95)")
print("web-bench ok: every page under 200 ms (p95)")
PY
