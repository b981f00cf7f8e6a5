#!/usr/bin/env bash
# Crash test: a venue under full load is killed with SIGKILL at a random
# moment; every order the load test saw acknowledged must be in the state
# recovered from the journal, a restarted venue must recover the same number
# of records, and a torn record cut into the newest segment must be reported
# and ignored. Exit 0 only if all of that holds.
#
#   scripts/crash-test.sh [SECONDS_OF_LOAD]      (default 8; kill at 2..SECONDS-2)
set -euo pipefail
cd "$(dirname "$0")/.."

LOAD_SECONDS=${1:-8}
cargo build --release --quiet --bin tonnex-venue --bin tonnex-loadtest --bin tonnex-replay
BIN=target/release
WORK=$(mktemp -d /tmp/tonnex-crash.XXXXXX)
VENUE_PID=""
LOAD_PID=""
cleanup() {
    [ -n "$LOAD_PID" ] && kill "$LOAD_PID" 2>/dev/null || true
    [ -n "$VENUE_PID" ] && kill -9 "$VENUE_PID" 2>/dev/null || true
}
trap cleanup EXIT

# The demo venue, journaling into the scratch folder, on free ports.
cp config/demo/* "$WORK/"
sed -i -e 's#^journal_dir = .*#journal_dir = "journal"#' \
       -e "s#\"\\.\\./rules/#\"$PWD/config/rules/#" \
       -e 's#127.0.0.1:7001#127.0.0.1:0#' -e 's#127.0.0.1:7002#127.0.0.1:0#' -e 's#127.0.0.1:7003#127.0.0.1:0#' -e 's#127.0.0.1:7004#127.0.0.1:0#' -e 's#127.0.0.1:7005#127.0.0.1:0#' "$WORK/venue.toml"

start_venue() {
    "$BIN/tonnex-venue" run --config "$WORK/venue.toml" >"$WORK/venue.out" 2>>"$WORK/venue.err" &
    VENUE_PID=$!
    for _ in $(seq 1 200); do
        grep -q '^ready ' "$WORK/venue.out" 2>/dev/null && break
        sleep 0.05
    done
    READY=$(grep '^ready ' "$WORK/venue.out") || { echo "venue did not start"; cat "$WORK/venue.err"; exit 1; }
    ADDR=$(sed -E 's/.*order_entry=([^ ]+).*/\1/' <<<"$READY")
    RECOVERED=$(sed -E 's/.*recovered_records=([0-9]+).*/\1/' <<<"$READY")
}

start_venue
echo "venue ready at $ADDR"
"$BIN/tonnex-loadtest" --venue "$ADDR" --sessions 4 --rate 0 --duration "$LOAD_SECONDS" \
    --instruments 0,1 --acked-log "$WORK/acked.log" --quiet >"$WORK/load.out" 2>&1 &
LOAD_PID=$!
KILL_AT=$(python3 -c "import random; print(round(random.uniform(2, max(2.5, $LOAD_SECONDS - 2)), 2))")
sleep "$KILL_AT"
kill -9 "$VENUE_PID"
wait "$VENUE_PID" 2>/dev/null || true
VENUE_PID=""
wait "$LOAD_PID" 2>/dev/null || true
LOAD_PID=""
ACKED=$(wc -l <"$WORK/acked.log")
echo "killed the venue after ${KILL_AT}s; the load test saw $ACKED orders acknowledged"

# Every acknowledged order is in the recovered state.
"$BIN/tonnex-replay" --journal "$WORK/journal" --orders "$WORK/orders.txt" >"$WORK/replay.out" 2>"$WORK/replay.err"
RECORDS=$(tail -1 "$WORK/replay.out" | sed -E 's/.*records=([0-9]+).*/\1/')
MISSING=$(python3 - "$WORK/acked.log" "$WORK/orders.txt" <<'EOF'
import sys
acked = {int(l) for l in open(sys.argv[1]) if l.strip()}
known = {int(l.split()[0]) for l in open(sys.argv[2]) if l.strip()}
missing = sorted(acked - known)
print(len(missing), *missing[:10])
EOF
)
if [ "${MISSING%% *}" != "0" ]; then
    echo "FAIL: acknowledged orders missing from the recovered journal: $MISSING"
    exit 1
fi
echo "all $ACKED acknowledged orders recovered ($RECORDS journal records)"

# A restarted venue recovers what tonnex-replay recovers (both start from
# the newest snapshot, so both count the records replayed after it).
"$BIN/tonnex-replay" --journal "$WORK/journal" >"$WORK/replay1.out" 2>/dev/null
RECORDS_AFTER_SNAPSHOT=$(tail -1 "$WORK/replay1.out" | sed -E 's/.*records=([0-9]+).*/\1/')
: >"$WORK/venue.out"
start_venue
kill -TERM "$VENUE_PID"
wait "$VENUE_PID" || { echo "FAIL: the venue did not exit 0 on SIGTERM"; exit 1; }
VENUE_PID=""
if [ "$RECOVERED" != "$RECORDS_AFTER_SNAPSHOT" ]; then
    echo "FAIL: the restarted venue recovered $RECOVERED records, tonnex-replay $RECORDS_AFTER_SNAPSHOT"
    exit 1
fi
echo "restarted venue recovered the same $RECOVERED records and stopped cleanly on SIGTERM"
"$BIN/tonnex-replay" --journal "$WORK/journal" >"$WORK/replay2.out" 2>/dev/null
RECORDS=$(tail -1 "$WORK/replay2.out" | sed -E 's/.*records=([0-9]+).*/\1/')

# Cut a torn record into the newest segment: recovery reports it and succeeds.
NEWEST=$(ls "$WORK"/journal/journal-*.seg | sort | tail -1)
python3 - "$NEWEST" <<'EOF'
import struct, sys
path = sys.argv[1]
with open(path, "r+b") as f:
    data = f.read()
    pos = 64
    seq = None
    while pos + 16 <= len(data):
        length, seq_here, _crc = struct.unpack_from("<IQI", data, pos)
        if length == 0:
            break
        seq = seq_here
        pos += 16 + (length + 7) // 8 * 8
    # Half a record: a length, the next sequence, a checksum that cannot
    # match, and a few payload bytes, as a write cut short by a crash.
    f.seek(pos)
    f.write(struct.pack("<IQI", 68, (seq or 0) + 1, 0xDEADBEEF) + b"\x01\x02\x03\x04")
EOF
"$BIN/tonnex-replay" --journal "$WORK/journal" >"$WORK/replay3.out" 2>"$WORK/replay3.err"
AFTER=$(tail -1 "$WORK/replay3.out" | sed -E 's/.*records=([0-9]+).*/\1/')
grep -q "torn" "$WORK/replay3.err" || { echo "FAIL: the torn tail was not reported"; cat "$WORK/replay3.err"; exit 1; }
if [ "$AFTER" != "$RECORDS" ]; then
    echo "FAIL: after the torn tail $AFTER records, before $RECORDS"
    exit 1
fi
echo "torn tail reported and ignored: $(head -1 "$WORK/replay3.err")"
rm -rf "$WORK"
echo "crash-test ok acked=$ACKED records=$RECORDS"
