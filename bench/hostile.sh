#!/usr/bin/env bash
# Hostile-load benchmark: each attack of issue 13 (internal/hostile), sent
# by `twopc attack` in its own process, runs against a fresh `twopc local`
# cluster while `twopc bench` puts go on. For each attack it prints the
# peak RSS of every server during the attack (VmHWM, reset when the attack
# starts), the put throughput with the attack against without it (same
# cluster, just before), how fast the process logs grew, and the CPU
# seconds the coordinator, the participants and the attacker used during
# the attack: everything shares the machine's cores.
#
# Usage: bench/hostile.sh [ATTACK...]        (default: all of them)
#   SERVER_BIN=path     the servers' binary (default: this tree's); give an
#                       older build to measure before/after (the load and
#                       the attacks always come from this tree's build)
#   SECONDS_PER_RUN=10  length of each run (without, then with the attack)
#   CLIENTS=16          concurrent put clients
#   ATTACKERS=N         concurrent attackers (default: as the issue ran them)
#   ROUNDS=1            runs of each attack, each on a fresh cluster; with
#                       more than one, a summary follows: the highest peaks
#                       and log growth, the median puts/s and ratio (the
#                       machine is shared: single runs are noisy)
# The load and the attacks are plain XML-RPC, so any older build can be
# SERVER_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${SECONDS_PER_RUN:-10}
CLIENTS=${CLIENTS:-16}
WORK=$(mktemp -d /tmp/twopc-hostile.XXXX)
trap '[ -n "${LOCAL:-}" ] && kill "$LOCAL" 2>/dev/null; wait 2>/dev/null || true' EXIT

go build -o "$WORK/twopc" ./cmd/twopc
TWOPC=$WORK/twopc
SERVER_BIN=${SERVER_BIN:-$TWOPC}
PORT=7700
ADDR="http://127.0.0.1:$PORT/RPC2"
ATTACKS=("$@")
[ ${#ATTACKS[@]} -gt 0 ] || ATTACKS=(multicall unauth-batch echo flood)
ROUNDS=${ROUNDS:-1}
ROWS=$WORK/rows

mb() { awk '{printf "%.0f", $1/1024}'; }          # kB -> MB
hwm() { awk '/VmHWM/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
cpu() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }   # clock ticks, user + system
secs() { awk -v t="$1" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.1f", t/hz}'; }
logsize() { cat "$1"/*.log 2>/dev/null | wc -c; }
opsps() { sed -n 's/.* ops\/s=\([0-9]*\) .*/\1/p' <<<"$1"; }

echo "$(nproc) CPUs, shared: the last column is the machine's 1-minute load average after each run"
printf '%-13s %9s %9s %9s %9s %10s %10s %7s %11s %22s %5s\n' attack "coord MB" "p1 MB" "p2 MB" "p3 MB" "puts/s" "w/ attack" ratio "log KB/min" "CPU s coord/parts/att" load
for round in $(seq 1 "$ROUNDS"); do
for attack in "${ATTACKS[@]}"; do
  dir=$WORK/$attack-$round
  "$SERVER_BIN" local --dir "$dir" --port "$PORT" >"$WORK/local-$attack.log" 2>&1 &
  LOCAL=$!
  for _ in $(seq 1 100); do "$TWOPC" status --addr "$ADDR" >/dev/null 2>&1 && break; sleep 0.1; done
  declare -A pid=()
  for p in $(pgrep -P "$LOCAL"); do
    args=$(ps -o args= -p "$p")
    case "$args" in
      *" coordinator "*) pid[coord]=$p ;;
      *"/p1.db"*) pid[p1]=$p ;; *"/p2.db"*) pid[p2]=$p ;; *"/p3.db"*) pid[p3]=$p ;;
    esac
  done
  export TWOPC_PEER_TOKEN; TWOPC_PEER_TOKEN=$(cat "$dir/peer.token")
  bench=("$TWOPC" bench --addr "$ADDR" --op put --clients "$CLIENTS" --duration "${DUR}s")
  without=$("${bench[@]}")
  for k in "${!pid[@]}"; do echo 5 >"/proc/${pid[$k]}/clear_refs"; done
  log0=$(logsize "$dir")
  c0=$(cpu "${pid[coord]}"); p0=$(( $(cpu "${pid[p1]}") + $(cpu "${pid[p2]}") + $(cpu "${pid[p3]}") ))
  "$TWOPC" attack --addr "$ADDR" --participant "http://127.0.0.1:$((PORT + 1))/RPC2" --duration "${DUR}s" \
    ${ATTACKERS:+--attackers "$ATTACKERS"} "$attack" >"$WORK/attack-$attack.out" &
  ATTACKER=$!
  with=$("${bench[@]}")
  wait "$ATTACKER" || true
  attacker_cpu=$(sed -n 's/.* cpu=\([0-9.]*\)s$/\1/p' "$WORK/attack-$attack.out")
  c1=$(cpu "${pid[coord]}"); p1=$(( $(cpu "${pid[p1]}") + $(cpu "${pid[p2]}") + $(cpu "${pid[p3]}") ))
  log1=$(logsize "$dir")
  a=$(opsps "$without"); b=$(opsps "$with")
  row=("$attack" "$(hwm "${pid[coord]}" | mb)" "$(hwm "${pid[p1]}" | mb)" "$(hwm "${pid[p2]}" | mb)" "$(hwm "${pid[p3]}" | mb)" \
    "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.2f", a ? b/a : 0}')" \
    "$(awk -v d=$((log1 - log0)) -v s="$DUR" 'BEGIN{printf "%.0f", d/1024*60/s}')" \
    "$(secs $((c1 - c0)))/$(secs $((p1 - p0)))/${attacker_cpu:-?}" "$(cut -d' ' -f1 /proc/loadavg)")
  printf '%-13s %9s %9s %9s %9s %10s %10s %7s %11s %22s %5s\n' "${row[@]}" | tee -a "$ROWS"
  echo "  $(cat "$WORK/attack-$attack.out")" >&2
  kill -INT "$LOCAL"; wait "$LOCAL" || true; LOCAL=
  unset pid
done
done
if [ "$ROUNDS" -gt 1 ]; then
  echo
  echo "over $ROUNDS rounds: highest peaks and log growth, median puts/s and ratio"
  printf '%-13s %9s %11s %10s %10s %7s %11s\n' attack "coord MB" "partic. MB" "puts/s" "w/ attack" ratio "log KB/min"
  awk 'function med(s,  n, a, i, j, t) { n = split(s, a, " "); for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t } return a[int((n + 1) / 2)] }
    { k = $1; if (!(k in seen)) { seen[k] = 1; order[++n] = k }
      c[k] = c[k] > $2 ? c[k] : $2; p = $3 > $4 ? $3 : $4; p = p > $5 ? p : $5; q[k] = q[k] > p ? q[k] : p
      a[k] = a[k] " " $6; b[k] = b[k] " " $7; r[k] = r[k] " " $8; l[k] = l[k] > $9 ? l[k] : $9 }
    END { for (i = 1; i <= n; i++) { k = order[i]; printf "%-13s %9s %11s %10s %10s %7s %11s\n", k, c[k], q[k], med(a[k]), med(b[k]), med(r[k]), l[k] } }' "$ROWS"
fi
echo "process logs: $WORK/*/" >&2
