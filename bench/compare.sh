#!/usr/bin/env bash
# Side-by-side benchmark: twopc (coordinator + 3 participants on loopback)
# against a 3-member etcd cluster on the same machine, in interleaved rounds
# (etcd, twopc, etcd, twopc, ...), then the median of each shape, with the
# CPU each process spent per operation.
#
# Usage: bench/compare.sh [ROUNDS]        (default 3)
#        bench/compare.sh --table LINES   (the tables again, from a run's raw lines)
#   ETCD_BENCH=path/to/etcd_bench.sh      (default ../shared/peers/etcd_bench.sh)
#   ETCD_PEER_BIN=dir                     where etcd_bench.sh installed etcd, etcdctl
#                                         and benchmark (default ${TMPDIR:-/tmp}/etcd-peer/bin)
#   SECONDS_PER_SHAPE=8                   (twopc: duration of each shape)
#   PORT=7600                             (twopc: the coordinator's port)
#
# Shapes, as etcd_bench.sh runs them: 8-byte keys, 64-byte values;
# put with 1 client; put with 64 clients; linearizable read with 1 and 64;
# transactions of 8 puts from 16 clients (txn8_c16: transactions/s). twopc
# adds mc8_c64: 64 clients each sending system.multicall of 8 puts (puts/s;
# each put is its own transaction), set against etcd's put_c64.
#
# CPU per operation (µs) is read from /proc/PID/stat (utime + stime)
# before and after each shape, for every server process; the load
# generator reports its own. For etcd, compare.sh runs etcd_bench.sh with
# PEER_DIR pointing at a directory of its own whose bin/benchmark is
# bench/etcd-cpu.sh, which wraps the real tool and measures the members.
# CPU is far less noisy than ops/s on a shared machine. machine= is the
# whole machine's CPU per operation (/proc/stat), which also counts what
# kernel threads did for the processes (journal commits, an AIO fsync's
# worker) and anything else running: its ratio is the one no process's
# accounting can move.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

rounds() { cut -d' ' -f1,2 "$1" | sort | uniq -c | sort -rn | awk 'NR == 1 { print $1 }'; }

tables() { # tables LINES: the medians of a run's raw lines, then the ratios
  # The median of each figure; CPU in µs per operation (per transaction for
  # txn8, per put for mc8), by process, and their total.
  echo
  printf '%-6s %-9s %8s %8s %8s %7s   %s   (median of %s rounds, %s cores)\n' \
    system shape "ops/s" "p50 ms" "p99 ms" "CPU µs" "CPU µs/op by process" "$(rounds "$1")" "$(nproc)"
  medians "$1" | sort -k2,2 -k1,1 | awk '{
      for (i = 3; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
      procs = ""; for (i = 7; i <= NF; i++) procs = procs " " $i
      printf "%-6s %-9s %8.0f %8.2f %8.2f %7.0f  %s\n", $1, $2, v["ops/s"], v["p50"], v["p99"], v["total"], procs
    }'

  # twopc against etcd, shape by shape (mc8_c64 against etcd's put_c64).
  echo
  printf '%-9s %14s %16s %20s\n' shape "ops/s ratio" "CPU/op ratio" "machine CPU/op ratio"
  medians "$1" | awk '{
      for (i = 3; i <= NF; i++) {
        split($i, kv, "=")
        if (kv[1] == "ops/s") r[$1, $2] = kv[2]; if (kv[1] == "total") c[$1, $2] = kv[2]; if (kv[1] == "machine") m[$1, $2] = kv[2]
      }
      if ($1 == "twopc") shapes[++n] = $2
    } END {
      for (i = 1; i <= n; i++) {
        s = shapes[i]; e = (s == "mc8_c64") ? "put_c64" : s
        mr = (m["twopc", s] > 0 && m["etcd", e] > 0) ? sprintf("%19.2fx", m["twopc", s] / m["etcd", e]) : sprintf("%20s", "-")
        if (r["etcd", e] > 0 && c["etcd", e] > 0)
          printf "%-9s %13.2fx %15.2fx %s\n", s, r["twopc", s] / r["etcd", e], c["twopc", s] / c["etcd", e], mr
      }
    }'
}

if [ "${1:-}" = --table ]; then tables "$2"; exit; fi
ROUNDS=${1:-3}
ETCD_BENCH=${ETCD_BENCH:-../shared/peers/etcd_bench.sh}
ETCD_PEER_BIN=${ETCD_PEER_BIN:-${TMPDIR:-/tmp}/etcd-peer/bin}
DUR=${SECONDS_PER_SHAPE:-8}
WORK=$(mktemp -d /tmp/twopc-compare.XXXX)
trap '[ -n "${LOCAL:-}" ] && kill "$LOCAL" 2>/dev/null; wait 2>/dev/null || true' EXIT

go build -o "$WORK/twopc" ./cmd/twopc
PORT=${PORT:-7600}
ADDR="http://127.0.0.1:$PORT/RPC2"

# etcd_bench.sh installs etcd on its first run: let it, with tiny totals.
if [ ! -x "$ETCD_PEER_BIN/benchmark" ]; then
  echo "installing etcd with $ETCD_BENCH" >&2
  PUT1_TOTAL=10 PUT64_TOTAL=64 RNG1_TOTAL=10 RNG64_TOTAL=64 TXN_TOTAL=16 \
    PEER_DIR=$(dirname "$ETCD_PEER_BIN") bash "$ETCD_BENCH" >/dev/null
fi
PEER=$WORK/etcd
mkdir -p "$PEER/bin"
ln -s "$ETCD_PEER_BIN/etcd" "$ETCD_PEER_BIN/etcdctl" "$PEER/bin/"
ln -s "$PWD/bench/etcd-cpu.sh" "$PEER/bin/benchmark"
export ETCD_CPU_REAL=$ETCD_PEER_BIN/benchmark ETCD_CPU_DATA=$PEER/data

etcd_round() {
  PEER_DIR=$PEER bash "$ETCD_BENCH" | tail -n 1 | sed 's/^/  /' >&2
  local name
  for name in put_c1 put_c64 rangeL_c1 rangeL_c64 txn8_c16; do
    tr '\r' '\n' <"$PEER/logs/n3-$name.out" | awk -v shape="${name/rangeL/get}" -v hz="$HZ" '
      /Total:/ { t = $2 } /Requests\/sec/ { r = $2 } / 50% in/ { p50 = $3 * 1000 } / 99% in/ { p99 = $3 * 1000 }
      $1 == "cpu" { cpu = $0 }
      END {
        ops = t * r
        if (ops < 1) { print "  (etcd " shape ": no summary, left out of this round)" > "/dev/stderr"; exit }
        n = split(cpu, f, " "); total = 0; out = ""; machine = ""
        for (i = 2; i <= n; i++) {
          split(f[i], kv, "="); us = (kv[1] == "bench" ? kv[2] : kv[2] / hz) * 1e6 / ops
          if (kv[1] == "machine") { machine = sprintf(" machine=%.0f", us); continue }
          total += us; out = out sprintf(" %s=%.0f", kv[1], us)
        }
        printf "etcd %s ops/s=%.0f p50=%.2f p99=%.2f total=%.0f%s%s\n", shape, r, p50, p99, total, out, machine
      }'
  done
}

twopc_round() {
  local dir=$WORK/data-$1
  "$WORK/twopc" local --dir "$dir" --port "$PORT" >"$WORK/local-$1.log" 2>&1 &
  LOCAL=$!
  for _ in $(seq 1 100); do "$WORK/twopc" status --addr "$ADDR" >/dev/null 2>&1 && break; sleep 0.1; done
  export TWOPC_PEER_TOKEN; TWOPC_PEER_TOKEN=$(cat "$dir/peer.token")
  for shape in "put 1" "put 64" "get 1" "get 64" "txn 16" "multicall 64"; do
    set -- $shape
    twopc_shape "$WORK/twopc" "$ADDR" "$LOCAL" "$1" "$2" twopc
  done
  for pid in $(pgrep -P "$LOCAL"); do # memory after the load, per process
    echo "  rss $(ps -o rss= -p "$pid" | awk '{printf "%.0fMB", $1/1024}') $(ps -o args= -p "$pid" | awk '{print $2, $4}')" >&2
  done
  kill -INT "$LOCAL"; wait "$LOCAL" || true; LOCAL=
}

: >"$WORK/lines"
for r in $(seq 1 "$ROUNDS"); do
  echo "round $r/$ROUNDS: etcd (load $(cut -d' ' -f1 /proc/loadavg))" >&2
  etcd_round | tee -a "$WORK/lines" >&2
  echo "round $r/$ROUNDS: twopc (load $(cut -d' ' -f1 /proc/loadavg))" >&2
  twopc_round "$r" | tee -a "$WORK/lines" >&2
done

tables "$WORK/lines"
echo "raw lines: $WORK/lines"
