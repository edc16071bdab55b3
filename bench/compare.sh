#!/usr/bin/env bash
# Side-by-side benchmark: twopc (coordinator + 3 participants on loopback)
# against a 3-member etcd cluster on the same machine, in interleaved rounds
# (etcd, twopc, etcd, twopc, ...), then the median of each shape.
#
# Usage: bench/compare.sh [ROUNDS]        (default 3)
#   ETCD_BENCH=path/to/etcd_bench.sh      (default ../shared/peers/etcd_bench.sh)
#   SECONDS_PER_SHAPE=8                   (twopc: duration of each shape)
#
# Shapes, as etcd_bench.sh runs them: 8-byte keys, 64-byte values;
# put with 1 client; put with 64 clients; linearizable read with 1 and 64;
# transactions of 8 puts from 16 clients (txn8_c16: transactions/s).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
ETCD_BENCH=${ETCD_BENCH:-../shared/peers/etcd_bench.sh}
DUR=${SECONDS_PER_SHAPE:-8}
WORK=$(mktemp -d /tmp/twopc-compare.XXXX)
trap '[ -n "${LOCAL:-}" ] && kill "$LOCAL" 2>/dev/null; wait 2>/dev/null || true' EXIT

go build -o "$WORK/twopc" ./cmd/twopc
PORT=7600
ADDR="http://127.0.0.1:$PORT/RPC2"

twopc_round() {
  local dir=$WORK/data-$1
  "$WORK/twopc" local --dir "$dir" --port "$PORT" >"$WORK/local-$1.log" 2>&1 &
  LOCAL=$!
  for _ in $(seq 1 100); do "$WORK/twopc" status --addr "$ADDR" >/dev/null 2>&1 && break; sleep 0.1; done
  export TWOPC_PEER_TOKEN; TWOPC_PEER_TOKEN=$(cat "$dir/peer.token")
  local line="twopc"
  for shape in "put 1" "put 64" "get 1" "get 64" "txn 16"; do
    set -- $shape
    out=$("$WORK/twopc" bench --addr "$ADDR" --op "$1" --txn-ops 8 --clients "$2" --duration "${DUR}s" --keys 100000)
    echo "  $out" >&2
    name="$1_c$2"; [ "$1" = txn ] && name="txn8_c$2"
    line+=" | $(awk -v n="$name" '{for(i=1;i<=NF;i++){split($i,kv,"="); v[kv[1]]=kv[2]}}
      END{gsub("ms","",v["p50"]); gsub("ms","",v["p99"]); printf "%s %s/s p50=%.2fms p99=%.2fms", n, v["ops/s"], v["p50"], v["p99"]}' <<<"$out")"
  done
  for pid in $(pgrep -P "$LOCAL"); do # memory after the load, per process
    echo "  rss $(ps -o rss= -p "$pid" | awk '{printf "%.0fMB", $1/1024}') $(ps -o args= -p "$pid" | awk '{print $2, $4}')" >&2
  done
  kill -INT "$LOCAL"; wait "$LOCAL" || true; LOCAL=
  echo "$line"
}

: >"$WORK/lines"
for r in $(seq 1 "$ROUNDS"); do
  echo "round $r/$ROUNDS: etcd" >&2
  bash "$ETCD_BENCH" | tail -n 1 | tee -a "$WORK/lines" >&2
  echo "round $r/$ROUNDS: twopc" >&2
  twopc_round "$r" | tee -a "$WORK/lines" >&2
done

# Median per system and shape. etcd names reads rangeL_cN; twopc get_cN.
echo
printf '%-8s %-8s %12s %10s %10s   (median of %s rounds, %s)\n' system shape "ops/s" p50 p99 "$ROUNDS" "$(nproc) cores"
awk -F' [|] ' '{
    sys = ($1 ~ /^etcd/) ? "etcd" : "twopc"
    for (i = 2; i <= NF; i++) {
      split($i, f, " "); shape = f[1]; sub("rangeL", "get", shape)
      r = f[2]; sub("/s", "", r); p50 = f[3]; sub("p50=", "", p50); sub("ms", "", p50)
      p99 = f[4]; sub("p99=", "", p99); sub("ms", "", p99)
      print sys, shape, r, p50, p99
    }
  }' "$WORK/lines" | sort -k1,1 -k2,2 | awk '
  function med(s,   n, a, i, j, t) {
    n = split(s, a, ",")
    for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return a[int((n + 1) / 2)]
  }
  { k = $1 " " $2; r[k] = r[k] (r[k] ? "," : "") $3; p[k] = p[k] (p[k] ? "," : "") $4; q[k] = q[k] (q[k] ? "," : "") $5; keys[k] = 1 }
  END { for (k in keys) { split(k, kk, " "); printf "%-8s %-8s %12.0f %8.2fms %8.2fms\n", kk[1], kk[2], med(r[k]), med(p[k]), med(q[k]) } }' | sort -b -k2,2 -k1,1
echo "raw lines: $WORK/lines"
