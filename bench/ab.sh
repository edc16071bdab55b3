#!/usr/bin/env bash
# A/B benchmark of two twopc binaries, interleaved: round r runs every
# shape against a local cluster of A, then of B, so that the machine's
# drift hits both alike; then the median of each shape and the ratio B/A.
#
# Usage: bench/ab.sh A_BINARY B_BINARY [ROUNDS]     (default 3)
#   SECONDS_PER_SHAPE=8   duration of each shape
#   SHAPES="put:1 put:64 get:1 get:64 txn:16"
#
# Every shape is driven by B's `twopc bench` (put and get have not
# changed), with 8-byte keys and 64-byte values; txn:16 is transactions
# of 8 puts from 16 clients (needs a B that has txn).
set -euo pipefail
cd "$(dirname "$0")/.."
A=$1 B=$2 ROUNDS=${3:-3}
DUR=${SECONDS_PER_SHAPE:-8}
SHAPES=${SHAPES:-"put:1 put:64 get:1 get:64"}
WORK=$(mktemp -d /tmp/twopc-ab.XXXX)
trap '[ -n "${LOCAL:-}" ] && kill "$LOCAL" 2>/dev/null; wait 2>/dev/null || true' EXIT
PORT=7700
ADDR="http://127.0.0.1:$PORT/RPC2"

round() { # round LABEL BINARY N
  local dir=$WORK/data-$1-$3
  "$2" local --dir "$dir" --port "$PORT" >"$WORK/local-$1-$3.log" 2>&1 &
  LOCAL=$!
  for _ in $(seq 1 300); do "$B" status --addr "$ADDR" >/dev/null 2>&1 && break; sleep 0.1; done
  TWOPC_PEER_TOKEN=$(cat "$dir/peer.token"); export TWOPC_PEER_TOKEN
  for shape in $SHAPES; do
    out=$("$B" bench --addr "$ADDR" --op "${shape%%:*}" --clients "${shape##*:}" --txn-ops 8 --duration "${DUR}s" --keys 100000)
    echo "$1 $shape $(grep -o 'ops/s=[0-9]*' <<<"$out" | cut -d= -f2) $(grep -o 'p50=[0-9.]*' <<<"$out" | cut -d= -f2) $(grep -o 'p99=[0-9.]*' <<<"$out" | cut -d= -f2)" | tee -a "$WORK/lines" >&2
  done
  kill -INT "$LOCAL"; wait "$LOCAL" || true; LOCAL=
}

for r in $(seq 1 "$ROUNDS"); do
  round A "$A" "$r"
  round B "$B" "$r"
done

echo
printf '%-8s %10s %10s %8s   %10s %10s   (medians of %s rounds: ops/s, p50 ms)\n' shape A B B/A "A p50" "B p50" "$ROUNDS"
awk '
  function med(s,   n, a, i, j, t) {
    n = split(s, a, ",")
    for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return a[int((n + 1) / 2)]
  }
  { r[$1 $2] = r[$1 $2] (r[$1 $2] ? "," : "") $3; p[$1 $2] = p[$1 $2] (p[$1 $2] ? "," : "") $4; shapes[$2] = 1 }
  END { for (s in shapes) { a = med(r["A" s]); b = med(r["B" s]);
          printf "%-8s %10.0f %10.0f %7.2fx   %9.2f %10.2f\n", s, a, b, (a > 0 ? b / a : 0), med(p["A" s]), med(p["B" s]) } }' "$WORK/lines" | sort
echo "raw lines: $WORK/lines"
