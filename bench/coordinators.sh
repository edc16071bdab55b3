#!/usr/bin/env bash
# What several coordinators cost: puts against one coordinator, then
# against the leader of three, interleaved round by round (twopc local
# --coordinators N and twopc bench), so that the machine's drift hits
# both alike; prints each run and the ratio three/one of each round.
#
# Usage: bench/coordinators.sh [ROUNDS]        (default 3)
#   CLIENTS="64 1"    client counts to run
#   SECONDS_PER_RUN=8
#   PORT=7760         the first coordinator's port
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
CLIENTS=${CLIENTS:-"64 1"}
DUR=${SECONDS_PER_RUN:-8}
PORT=${PORT:-7760}
WORK=$(mktemp -d /tmp/twopc-coordinators.XXXX)
LOCAL=
trap '[ -n "$LOCAL" ] && kill "$LOCAL" 2>/dev/null; wait 2>/dev/null || true' EXIT
go build -o "$WORK/twopc" ./cmd/twopc

run() { # $1 coordinators, $2 clients; prints ops/s
  rm -rf "$WORK/data"
  "$WORK/twopc" local --dir "$WORK/data" --port "$PORT" --coordinators "$1" >"$WORK/local.log" 2>&1 &
  LOCAL=$!
  for _ in $(seq 1 100); do "$WORK/twopc" status --addr "http://127.0.0.1:$PORT/RPC2" >/dev/null 2>&1 && break; sleep 0.1; done
  local leader port=$PORT
  leader=$(python3 -c "import xmlrpc.client,sys; print(xmlrpc.client.ServerProxy(sys.argv[1]).status()['leader'])" "http://127.0.0.1:$PORT/RPC2")
  [ -n "$leader" ] && port=$((PORT + ${leader#c} - 1)) # the leader: c1 is PORT, c2 the next
  local line
  line=$("$WORK/twopc" bench --addr "http://127.0.0.1:$port/RPC2" --clients "$2" --duration "${DUR}s" 2>&1 | head -1)
  kill -INT "$LOCAL"; wait "$LOCAL" || true; LOCAL=
  echo "coordinators=$1 ${line%% bytes/op*}" >&2
  grep -o 'ops/s=[0-9]*' <<<"$line" | cut -d= -f2
}

for c in $CLIENTS; do
  for r in $(seq 1 "$ROUNDS"); do
    one=$(run 1 "$c"); three=$(run 3 "$c")
    python3 -c "import sys; o,t=float(sys.argv[1]),float(sys.argv[2]); print('clients=%s round %s: one %d/s, three %d/s, three/one %.2fx' % (sys.argv[3], sys.argv[4], o, t, t/o))" "$one" "$three" "$c" "$r"
  done
done
