#!/usr/bin/env bash
# Two venue builds compared the way this machine allows: alternating runs
# of the same load (A, B, A, B, ...), so each pair shares a minute of the
# VM's speed, which swings by 1.5x and more between minutes.
#   scripts/venue-pairs.sh A_DIR B_DIR [PAIRS] [SECONDS] [RATE]
# Each DIR holds tonnex-venue and tonnex-loadtest (a build's own: copy them
# out of target/release before rebuilding). RATE 0 (the default) is the
# closed loop. Prints every run (new orders/s, ack p50/p99/max in µs, the
# event loop's CPU per acknowledged order in ns), then the means and how
# many pairs B won.
set -euo pipefail
cd "$(dirname "$0")/.."
a=$1 b=$2 pairs=${3:-6} seconds=${4:-8} rate=${5:-0}
for dir in "$a" "$b"; do
    for tool in tonnex-venue tonnex-loadtest; do
        [[ -x "$dir/$tool" ]] || { echo "venue-pairs: $dir/$tool: not built" >&2; exit 2; }
    done
done
runs=$(mktemp /tmp/tonnex-venue-pairs.XXXXXX)
trap 'rm -f "$runs"' EXIT
for pair in $(seq 1 "$pairs"); do
    for side in A B; do
        dir=$a
        [[ $side == B ]] && dir=$b
        out=$(scripts/venue-bench.sh "$dir" "$rate" "$seconds")
        summary=$(grep '^sent=' <<<"$out")
        cpu=$(sed -nE 's/^cpu event_loop_s=([0-9.]+)$/\1/p' <<<"$out")
        field() { sed -E "s/.* $1=([0-9.]+).*/\\1/" <<<" $summary"; }
        echo "$pair $side $(field throughput_per_s) $(field p50_us) $(field p99_us) $(field max_us) $(field acked) ${cpu:-0}" >>"$runs"
        awk '{ printf "pair %s %s: %d new orders/s, p50 %s p99 %s max %s us, event loop %d ns/order\n",
                 $1, $2, $3, $4, $5, $6, ($7 > 0 ? $8 * 1e9 / $7 : 0) }' <(tail -1 "$runs")
    done
done
awk -v pairs="$pairs" '
    { tp[$2] += $3; p99[$2] += $5; ns[$2] += ($7 > 0 ? $8 * 1e9 / $7 : 0); t[$1, $2] = $3 }
    END {
        for (p = 1; p <= pairs; p++) won += t[p, "B"] > t[p, "A"]
        for (s = 0; s < 2; s++) {
            side = s ? "B" : "A"
            printf "%s mean: %d new orders/s, p99 %.0f us, event loop %.0f ns/order\n",
                side, tp[side] / pairs, p99[side] / pairs, ns[side] / pairs
        }
        printf "B/A throughput %.3f; B ahead in %d of %d pairs\n", tp["B"] / tp["A"], won, pairs
    }' "$runs"
