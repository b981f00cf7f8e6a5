# Shared by the scripts that start processes: source it, after `cd` to the
# repository root.

# Waits (10 s at most) for a process's `ready ...` line in FILE.
wait_ready() { # FILE
    for _ in $(seq 1 200); do grep -q '^ready ' "$1" 2>/dev/null && return 0; sleep 0.05; done
    echo "no ready line in $1" >&2
    exit 1
}

# Starts the demo venue on JOURNAL_DIR, logs in WORK; sets VENUE_PID, ENTRY
# (order entry address), FILLS (fill stream address) and ADMIN (admin
# port), and adds the venue to the PIDS array.
start_demo_venue() { # JOURNAL_DIR WORK
    target/release/tonnex-venue run --config config/demo/venue.toml --journal-dir "$1" \
        --listen 127.0.0.1:0 --fills-listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
        --metrics-listen 127.0.0.1:0 --market-data-listen 127.0.0.1:0 \
        >"$2/venue.out" 2>"$2/venue.err" &
    VENUE_PID=$!
    PIDS+=("$VENUE_PID")
    wait_ready "$2/venue.out"
    ENTRY=$(sed -E 's/.*order_entry=([^ ]+).*/\1/' "$2/venue.out")
    FILLS=$(sed -E 's/.*fill_stream=([^ ]+).*/\1/' "$2/venue.out")
    ADMIN=$(sed -E 's/.*admin=([^ ]+).*/\1/' "$2/venue.out")
}
