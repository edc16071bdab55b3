#!/usr/bin/env bash
# A/B benchmark of two twopc binaries, interleaved: round r runs every
# shape against a local cluster of A, then of B, so that the machine's
# drift hits both alike; then the median of each shape and the ratio B/A,
# of ops/s and of the CPU each process spent per operation (µs, from
# /proc/PID/stat; the load generator's own figure), which is far less
# noisy than ops/s on a shared machine.
#
# Usage: bench/ab.sh A_BINARY B_BINARY [ROUNDS]     (default 3)
#   SECONDS_PER_SHAPE=8   duration of each shape
#   SHAPES="put:1 put:64 get:1 get:64"   (also txn:16, multicall:64)
#   PORT=7700             the coordinator's port
#   LOADGEN=B             which binary's `twopc bench` drives both (A or B), or
#                         own: each side's its own (to measure the load generator)
#   COORDINATORS=1        coordinators in each cluster; with several, the
#                         shapes go to the leader
#   COORDINATORS_A, COORDINATORS_B   the same for one side (bench/coordinators.sh
#                         runs one binary as A with 1 and as B with 3)
#
# Every shape is driven by one binary's `twopc bench` (B's by default),
# with 8-byte keys and 64-byte values; txn:16 is transactions of 8 puts
# from 16 clients, multicall:64 system.multicall of 8 puts from 64.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
A=$1 B=$2 ROUNDS=${3:-3}
DUR=${SECONDS_PER_SHAPE:-8}
SHAPES=${SHAPES:-"put:1 put:64 get:1 get:64"}
GEN=$B; [ "${LOADGEN:-B}" = A ] && GEN=$A
WORK=$(mktemp -d /tmp/twopc-ab.XXXX)
trap '[ -n "${LOCAL:-}" ] && kill "$LOCAL" 2>/dev/null; wait 2>/dev/null || true' EXIT
PORT=${PORT:-7700}
ADDR="http://127.0.0.1:$PORT/RPC2"

round() { # round LABEL BINARY N
  local dir=$WORK/data-$1-$3 shape GEN=$GEN coordinators=${COORDINATORS:-1}
  [ "${LOADGEN:-B}" = own ] && GEN=$2
  [ "$1" = A ] && coordinators=${COORDINATORS_A:-$coordinators}
  [ "$1" = B ] && coordinators=${COORDINATORS_B:-$coordinators}
  "$2" local --dir "$dir" --port "$PORT" --coordinators "$coordinators" >"$WORK/local-$1-$3.log" 2>&1 &
  LOCAL=$!
  for _ in $(seq 1 300); do "$GEN" status --addr "$ADDR" >/dev/null 2>&1 && break; sleep 0.1; done
  TWOPC_PEER_TOKEN=$(cat "$dir/peer.token"); export TWOPC_PEER_TOKEN
  local addr
  addr=$(twopc_leader "$GEN" "$ADDR")
  for shape in $SHAPES; do
    twopc_shape "$GEN" "$addr" "$LOCAL" "${shape%%:*}" "${shape##*:}" "$1" 2>/dev/null
  done
  kill -INT "$LOCAL"; wait "$LOCAL" || true; LOCAL=
}

for r in $(seq 1 "$ROUNDS"); do
  echo "round $r/$ROUNDS (load $(cut -d' ' -f1 /proc/loadavg))" >&2
  round A "$A" "$r" | tee -a "$WORK/lines" >&2
  round B "$B" "$r" | tee -a "$WORK/lines" >&2
done

echo
echo "medians of $ROUNDS rounds: ops/s, p50 ms, CPU µs per op (total, then by process); B/A ratios"
medians "$WORK/lines" | sort -s -k2,2 | awk '{
    for (i = 3; i <= NF; i++) {
      split($i, kv, "="); v[$1, $2, kv[1]] = kv[2]
      if (!(($2, kv[1]) in known)) { known[$2, kv[1]] = 1; keys[$2] = keys[$2] " " kv[1] } # the processes of both sides, A first
    }
    shapes[$2] = 1
  }
  function fig(x) { return x == "" ? "-" : sprintf("%.0f", x) } # "-": that side has no such process
  END {
    for (s in shapes) {
      printf "%-9s ops/s %6.0f -> %6.0f (%.2fx)  p50 %.2f -> %.2f  CPU/op %4.0f -> %4.0f (%.2fx) ", s,
        v["A", s, "ops/s"], v["B", s, "ops/s"], v["B", s, "ops/s"] / (v["A", s, "ops/s"] + 1e-9),
        v["A", s, "p50"], v["B", s, "p50"], v["A", s, "total"], v["B", s, "total"], v["B", s, "total"] / (v["A", s, "total"] + 1e-9)
      n = split(keys[s], k, " ")
      for (i = 1; i <= n; i++) if (k[i] != "ops/s" && k[i] != "p50" && k[i] != "p99" && k[i] != "total")
        printf " %s %s->%s", k[i], fig(v["A", s, k[i]]), fig(v["B", s, k[i]])
      printf "\n"
    }
  }' | sort
# Round r's A and B ran one after the other, on much the same machine:
# their ratio drifts less than either side's median (here, a side's ops/s
# can move 20% between rounds while the pair's ratio moves a few %).
echo "B/A by round: ops/s and CPU per op, and in how many rounds B did better"
awk '{
    for (i = 3; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    r = ++n[$1, $2]; shapes[$2] = 1
    ops[$1, $2, r] = f["ops/s"]; cpu[$1, $2, r] = f["total"]
  }
  END {
    for (s in shapes) {
      line = sprintf("%-9s ops/s", s); wins = 0; cwins = 0; cl = ""
      for (r = 1; r <= n["A", s] && r <= n["B", s]; r++) {
        line = line sprintf(" %.2f", ops["B", s, r] / (ops["A", s, r] + 1e-9)); wins += ops["B", s, r] > ops["A", s, r]
        cl = cl sprintf(" %.2f", cpu["B", s, r] / (cpu["A", s, r] + 1e-9)); cwins += cpu["B", s, r] < cpu["A", s, r]
      }
      printf "%s (B faster in %d of %d)  CPU/op%s (B cheaper in %d of %d)\n", line, wins, r - 1, cl, cwins, r - 1
    }
  }' "$WORK/lines" | sort
echo "raw lines: $WORK/lines"
