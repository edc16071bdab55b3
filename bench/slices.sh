#!/usr/bin/env bash
# A/B benchmark of two twopc binaries in short slices: both clusters run
# at once, idle but for the slice being measured, and the load goes to
# A, then B, then B, then A, ..., a few seconds each. Each pair of slices
# runs on much the same machine, so the median of the pairs' ratios B/A
# resolves a few per cent where ab.sh's 15-second rounds, minutes apart,
# drift by 20 on a shared VM. The order alternates, so that whichever runs
# second in a pair has no edge.
#
# Usage: bench/slices.sh A_BINARY B_BINARY [PAIRS]     (default 12)
#   SECONDS_PER_SLICE=3
#   SHAPE=put:64          one shape (as ab.sh's SHAPES: put:1, txn:16, ...)
#
# Prints each slice's line (as ab.sh's), then the medians of A and B and
# of the pairs' ratios B/A: ops/s, and CPU µs per op by process.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
A=$1 B=$2 PAIRS=${3:-12}
DUR=${SECONDS_PER_SLICE:-3}
SHAPE=${SHAPE:-put:64}
WORK=$(mktemp -d /tmp/twopc-slices.XXXX)
declare -A LOCALS ADDRS TOKENS
trap 'for p in "${LOCALS[@]}"; do kill -INT "$p" 2>/dev/null; done; wait 2>/dev/null || true' EXIT

up() { # up LABEL BINARY PORT
  "$2" local --dir "$WORK/data-$1" --port "$3" >"$WORK/local-$1.log" 2>&1 &
  LOCALS[$1]=$!
  ADDRS[$1]="http://127.0.0.1:$3/RPC2"
  for _ in $(seq 1 300); do "$B" status --addr "${ADDRS[$1]}" >/dev/null 2>&1 && break; sleep 0.1; done
  TOKENS[$1]=$(cat "$WORK/data-$1/peer.token")
}
up A "$A" 7700
up B "$B" 7800

slice() { # slice LABEL: one slice of load, driven by B's bench
  TWOPC_PEER_TOKEN=${TOKENS[$1]} twopc_shape "$B" "${ADDRS[$1]}" "${LOCALS[$1]}" "${SHAPE%%:*}" "${SHAPE##*:}" "$1" 2>/dev/null
}
for i in $(seq 1 "$PAIRS"); do
  if [ $((i % 2)) = 1 ]; then slice A; slice B; else slice B; slice A; fi
done | tee "$WORK/lines"

echo
awk -v pairs="$PAIRS" '
  function med(list,   n, a, i, j, t) {
    n = split(list, a, ",")
    for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  {
    pair = int((NR - 1) / 2)
    for (i = 3; i <= NF; i++) {
      split($i, kv, "="); if (kv[1] == "p50" || kv[1] == "p99") continue
      v[$1, pair, kv[1]] = kv[2]; if (!(kv[1] in seen)) { seen[kv[1]] = 1; keys[++nk] = kv[1] }
    }
  }
  END {
    printf "%d pairs of %s slices: median A -> median B, and the median of the pairs'"'"' ratios B/A\n", pairs, "'"${DUR}s $SHAPE"'"
    for (k = 1; k <= nk; k++) {
      key = keys[k]; la = lb = lr = ""
      for (p = 0; p < pairs; p++) {
        a = v["A", p, key]; b = v["B", p, key]
        la = la "," a; lb = lb "," b; if (a > 0) lr = lr "," b / a
      }
      printf "  %-6s %8.0f -> %8.0f   %.3fx\n", key, med(substr(la, 2)), med(substr(lb, 2)), med(substr(lr, 2))
    }
  }' "$WORK/lines"
echo "raw lines: $WORK/lines"
