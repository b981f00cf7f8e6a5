#!/usr/bin/env bash
# The README's main command. Builds tonnex in release mode, starts a venue on
# the embedded demo configuration (config/demo/: instruments for each CCP
# sub-ledger, buyers on each OER pathway, a seller with registry lots, four
# market makers), runs a 10-second load test against it over the binary
# protocol, sends a compliance-routed buyer order with the reference Python
# client, reads the fill stream, stops the venue with SIGTERM, and then shows
# the engine on its own: a workload of the project's own generator
# (tonnex-replay generate) replayed, its fills checked against gen.py's
# independent reference book when ../shared is beside the clone, journaled
# and recovered.
#
# A settlement process follows the venue's fill stream throughout, with the
# embedded registry simulator confirming payments, transfers and
# retirements over signed webhooks; its audit and certificates are printed
# at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
gen="$root/../shared/workloads/gen.py"
ops=${TONNEX_DEMO_OPS:-300000}
load_seconds=${TONNEX_DEMO_SECONDS:-10}

echo "== building (cargo build --release)"
cargo build --release --quiet

work=$(mktemp -d)
venue_pid=""
settlement_pid=""
web_pid=""
stop_all() {
  if [ -n "$web_pid" ]; then kill -9 "$web_pid" 2>/dev/null || true; fi
  if [ -n "$venue_pid" ]; then kill -9 "$venue_pid" 2>/dev/null || true; fi
  if [ -n "$settlement_pid" ]; then kill -9 "$settlement_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

echo "== starting the venue: tonnex-venue run --config config/demo/venue.toml (fresh journal in $work/journal)"
target/release/tonnex-venue run --config config/demo/venue.toml --journal-dir "$work/journal" \
  --listen 127.0.0.1:0 --fills-listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
  --metrics-listen 127.0.0.1:0 --market-data-listen 127.0.0.1:0 \
  > "$work/venue.out" 2> "$work/venue.log" &
venue_pid=$!
for _ in $(seq 1 200); do
  grep -q '^ready ' "$work/venue.out" 2>/dev/null && break
  sleep 0.05
done
ready=$(grep '^ready ' "$work/venue.out") || { echo "the venue did not start:" >&2; cat "$work/venue.log" >&2; exit 1; }
echo "$ready"
entry=$(sed -E 's/.*order_entry=([^ ]+).*/\1/' <<<"$ready")
fills=$(sed -E 's/.*fill_stream=([^ ]+).*/\1/' <<<"$ready")
admin=$(sed -E 's/.*admin=([^ ]+).*/\1/' <<<"$ready")
metrics=$(sed -E 's/.*metrics=([^ ]+).*/\1/' <<<"$ready")
market_data=$(sed -E 's/.*market_data=([^ ]+).*/\1/' <<<"$ready")

settlement_dir="$root/target/demo-settlement"
rm -rf "$settlement_dir"
echo "== starting settlement: tonnex-settlement run --venue $fills --data-dir target/demo-settlement --venue-admin $admin"
target/release/tonnex-settlement run --venue "$fills" --data-dir "$settlement_dir" \
  --fill-key demo-settlement-key --secret demo-webhook-secret \
  --venue-admin "$admin" --admin-key demo-settlement-admin-key \
  > "$work/settlement.out" 2> "$work/settlement.log" &
settlement_pid=$!
for _ in $(seq 1 200); do
  grep -q '^ready ' "$work/settlement.out" 2>/dev/null && break
  sleep 0.05
done
grep '^ready ' "$work/settlement.out" || { echo "settlement did not start:" >&2; cat "$work/settlement.log" >&2; exit 1; }

web_listen=${TONNEX_WEB_LISTEN:-127.0.0.1:0}
echo "== starting the dashboards: tonnex-web --config config/demo/venue.toml --ledger target/demo-settlement"
target/release/tonnex-web --config config/demo/venue.toml --ledger "$settlement_dir" --listen "$web_listen" \
  --venue-admin "$admin" --venue-metrics "$metrics" > "$work/web.out" 2> "$work/web.log" &
web_pid=$!
for _ in $(seq 1 200); do
  grep -q '^ready ' "$work/web.out" 2>/dev/null && break
  sleep 0.05
done
web=$(sed -E 's/ready web=//' "$work/web.out")
[ -n "$web" ] || { echo "tonnex-web did not start:" >&2; cat "$work/web.log" >&2; exit 1; }
echo "dashboards at http://$web  (buyer: account 1001, password demo-1001; operator: ops, key demo-ops-key; auditors: http://$web/verify)"

echo "== load test: 4 market-maker sessions, 50,000 order messages/s, ${load_seconds} s, with 2 corporate buyers"
echo "   (compliance-routed orders) and 2 market-data feed subscribers rebuilding the full books (tonnex-loadtest)"
target/release/tonnex-loadtest --venue "$entry" --sessions 4 --rate 50000 --duration "$load_seconds" \
  --instruments 0,1,2 --buyers 2 --md "$market_data" --md-key demo-md-key --md-subscribers 2 \
  --out "$root/target/demo-load-report.json" --svg "$root/target/demo-load-report.svg"
echo "report: target/demo-load-report.json, chart: target/demo-load-report.svg"

echo "== the seller (account 2001) offers 10 t of its registry lot at 24.50 USD (scripts/client.py)"
python3 scripts/client.py --venue "$entry" --account 2001 --secret demo-2001 --instrument 0 \
  --side sell --price-ticks 2450 --qty 10 | grep -v ReferenceData
echo "== a recognised-pathway buyer (account 1001) buys them at up to 26.00 USD, scope 3 category 1"
python3 scripts/client.py --venue "$entry" --account 1001 --secret demo-1001 --instrument 0 \
  --side buy --price-ticks 2600 --qty 10 --scope 3:1:10 | grep -v ReferenceData

echo "== the operator halts GEN-2023 and resumes it through the signed admin port (tonnex-admin, operator ops)"
admin_cli=(target/release/tonnex-admin --admin "$admin" --operator ops --key demo-ops-key)
"${admin_cli[@]}" halt GEN-2023 --reason "demo: halt drill"
"${admin_cli[@]}" resume GEN-2023 --reason "demo: drill over"
"${admin_cli[@]}" status | tail -1

echo "== the fill stream settlement follows (first and last records)"
python3 scripts/fillstream.py "$fills" --summary

echo "== settlement: waiting until every trade is settled and the venue has every outcome"
python3 - "$settlement_dir/ledger.sqlite" <<'PY'
import sqlite3, sys, time
# Read-only: the settlement process keeps writing (WAL allows a reader).
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
deadline = time.time() + 120
while time.time() < deadline:
    in_flight, certificates, unsent = db.execute(
        "SELECT (SELECT COUNT(*) FROM trades WHERE state IN ('locked', 'awaiting_confirmations', 'failed')),"
        " (SELECT COUNT(*) FROM certificates),"
        " (SELECT COUNT(*) FROM venue_feedback) - COALESCE((SELECT value FROM meta WHERE key = 'feedback_acked'), 0)").fetchone()
    if in_flight == 0 and certificates > 0 and unsent == 0:
        break
    time.sleep(0.2)
PY
kill -TERM "$settlement_pid"
wait "$settlement_pid" || true
settlement_pid=""
python3 - "$web" <<'PY'
import http.cookiejar, json, sys, urllib.request
base = "http://" + sys.argv[1]
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
opener.open(urllib.request.Request(base + "/api/login", json.dumps({"account": 1001, "password": "demo-1001"}).encode(),
                                   {"content-type": "application/json"})).read()
s = json.loads(opener.open(base + "/api/buyer/1001/summary").read())
print(f"tonnex-web: {s['company']} ({s['pathway']}, {s['reporting_year']}): {s['retired_tonnes']} t retired, "
      f"coverage {s['coverage_pct']}% of {s['ongoing_emissions_tonnes']} t, threshold {s['threshold_pct']}%")
PY
if [ "${TONNEX_DEMO_STAY:-}" = 1 ]; then
  echo "== TONNEX_DEMO_STAY=1: the venue and the dashboards stay up at http://$web until Ctrl-C"
  wait "$web_pid"
fi
kill -TERM "$web_pid" 2>/dev/null || true
wait "$web_pid" 2>/dev/null || true
web_pid=""
echo "certificates: $(ls "$settlement_dir"/certificates/*.json | wc -l) in target/demo-settlement/certificates/, e.g. $(ls "$settlement_dir"/certificates/*.html | head -1 | sed "s#$root/##")"
echo "load-test chart: target/demo-load-report.svg"

echo "== stopping the venue (SIGTERM: drain, sync the journal, exit 0)"
kill -TERM "$venue_pid"
wait "$venue_pid"
venue_pid=""
echo "venue exited 0; journal: $(ls "$work/journal" | tr '\n' ' ')"
echo "== the audit: the ledger's invariants, the custody chain, and the ledger against the venue's journal, account by account (tonnex-settlement audit --journal)"
target/release/tonnex-settlement audit --data-dir "$settlement_dir" --journal "$work/journal" > "$work/audit.txt" || true
tail -1 "$work/audit.txt"
if ! tail -1 "$work/audit.txt" | grep -q '^audit ok=true .*reconciled=true custody_chain=ok$'; then
  echo "demo: the settlement audit or its reconciliation with the venue failed:" >&2
  head -c 3000 "$work/audit.txt" >&2
  exit 1
fi
echo "== restarting it recovers the journal"
target/release/tonnex-venue run --config config/demo/venue.toml --journal-dir "$work/journal" \
  --listen 127.0.0.1:0 --fills-listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
  --metrics-listen 127.0.0.1:0 --market-data-listen 127.0.0.1:0 \
  > "$work/venue2.out" 2>> "$work/venue.log" &
venue_pid=$!
for _ in $(seq 1 400); do
  grep -q '^ready ' "$work/venue2.out" 2>/dev/null && break
  sleep 0.05
done
grep '^ready ' "$work/venue2.out"
kill -TERM "$venue_pid"
wait "$venue_pid"
venue_pid=""

echo "== the engine alone: $ops commands from the project's own generator (tonnex-replay generate) through tonnex-replay"
target/release/tonnex-replay generate --profile steady --mix full --ops "$ops" --seed 7 > "$work/steady.txt"
target/release/tonnex-replay generate --profile steady --mix basic --ops "$ops" --seed 7 > "$work/basic.txt"
target/release/tonnex-replay "$work/steady.txt" --fills "$work/got.fills" --book "$work/book.txt" | tail -1
echo "fills: $(wc -l < "$work/got.fills") trades"
if [ -f "$gen" ]; then
  echo "== the basic mix's fills checked against gen.py's independent reference book ($gen)"
  target/release/tonnex-replay "$work/basic.txt" --fills "$work/got-basic.fills" > /dev/null
  python3 scripts/gen_oracle.py "$gen" "$work/basic.txt" > "$work/want-basic.fills"
  if cmp -s "$work/want-basic.fills" "$work/got-basic.fills"; then
    echo "fills: identical to gen.py's reference book ($(wc -l < "$work/got-basic.fills") trades)"
  else
    echo "fills: DIFFER from gen.py's reference book" >&2
    exit 1
  fi
else
  echo "($gen is not beside the repository: the oracle check is skipped; the demo needs nothing outside the clone)"
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
