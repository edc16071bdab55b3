#!/usr/bin/env bash
# How twopc rides out the loss of a participant, beside etcd losing a
# member, in one run: one client writes serially; a participant (etcd: a
# follower, then the leader) is killed with SIGKILL and not brought back;
# the longest gap between two acknowledged puts is printed.
#
# Then three coordinators (twopc local --coordinators 3): the leading
# one is killed with SIGKILL; the client moves to the next coordinator
# when one does not answer.
#
# Then bench/catchup.sh: a participant replaced empty catches up
# CATCHUP_KEYS keys under a write load.
#
# Usage: bench/failover.sh
#   EXCLUDE_AFTER="5s 500ms"     twopc settings to measure, one run each
#   ETCD_FAILOVER=path           default ../shared/peers/etcd_failover.sh
#   SKIP_ETCD=1                  twopc only
#   SKIP_LEADER=1                no run with three coordinators
#   CATCHUP_KEYS=1000000         keys for the catch-up (0: skip it)
set -euo pipefail
cd "$(dirname "$0")/.."
EXCLUDE_AFTER=${EXCLUDE_AFTER:-"5s 500ms"}
ETCD_FAILOVER=${ETCD_FAILOVER:-../shared/peers/etcd_failover.sh}
WORK=$(mktemp -d /tmp/twopc-failover.XXXX)
LOCAL=
trap '[ -n "$LOCAL" ] && kill "$LOCAL" 2>/dev/null; wait 2>/dev/null || true' EXIT
go build -o "$WORK/twopc" ./cmd/twopc
PORT=7650

twopc_run() { # $1: --exclude-after
  local dir=$WORK/data-$1
  # --restart-pause 1h: the killed participant stays dead for the run.
  "$WORK/twopc" local --dir "$dir" --port "$PORT" --exclude-after "$1" --restart-pause 1h >"$WORK/local-$1.log" 2>&1 &
  LOCAL=$!
  for _ in $(seq 1 100); do "$WORK/twopc" status --addr "http://127.0.0.1:$PORT/RPC2" >/dev/null 2>&1 && break; sleep 0.1; done
  local victim
  victim=$(grep -o 'p3=[0-9][0-9]*' "$WORK/local-$1.log" | head -1 | cut -d= -f2)
  python3 - "http://127.0.0.1:$PORT/RPC2" "$victim" "$1" <<'PY'
import sys, time, os, signal, xmlrpc.client
url, victim, setting = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = xmlrpc.client.ServerProxy(url)
exclude = float(setting[:-2]) / 1000 if setting.endswith("ms") else float(setting.rstrip("s"))
# 3 s of writes, the kill, then the exclusion's wait and 9 s more.
start = time.time(); t_end = start + 3 + exclude + 9
acks = []; killed_at = None; i = 0; faults = 0
while time.time() < t_end:
    if killed_at is None and time.time() > start + 3:
        os.kill(victim, signal.SIGKILL); killed_at = time.time()
    try:
        s.put("k%d" % i, "v"); acks.append(time.time())
    except xmlrpc.client.Fault:
        faults += 1
    i += 1
after = [t for t in acks if t > killed_at]
gap = max(b - a for a, b in zip(acks, acks[1:]))
rate = len(after) / (acks[-1] - after[0]) if len(after) > 1 else 0
print("twopc participants=3 exclude-after=%s kill=participant | longest gap between acked puts %.2fs | first ack after kill %.2fs | acked after kill %d (%.0f/s) | faults %d"
      % (setting, gap, (after[0] - killed_at) if after else -1, len(after), rate, faults))
PY
  kill -INT "$LOCAL"; wait "$LOCAL" || true; LOCAL=
}

leader_run() {
  local dir=$WORK/data-leader
  "$WORK/twopc" local --dir "$dir" --port "$PORT" --coordinators 3 --restart-pause 1h >"$WORK/local-leader.log" 2>&1 &
  LOCAL=$!
  for _ in $(seq 1 100); do "$WORK/twopc" status --addr "http://127.0.0.1:$PORT/RPC2" >/dev/null 2>&1 && break; sleep 0.1; done
  python3 - "$PORT" "$WORK/local-leader.log" <<'PY'
import sys, time, os, re, signal, xmlrpc.client
port, log = int(sys.argv[1]), open(sys.argv[2]).read()
urls = ["http://127.0.0.1:%d/RPC2" % (port + i) for i in range(3)]
pids = dict((n, int(p)) for n, p in re.findall(r"(c\d)=(\d+)", log))
leader = xmlrpc.client.ServerProxy(urls[0]).status()["leader"]
# The client starts at a follower, as one that knows every coordinator
# would half the time; it moves on when a coordinator does not answer.
cur = (int(leader[1:]) % 3)
start = time.time(); t_end = start + 3 + 9
acks = []; killed_at = None; i = 0; faults = 0; moves = 0
while time.time() < t_end:
    if killed_at is None and time.time() > start + 3:
        os.kill(pids[leader], signal.SIGKILL); killed_at = time.time()
    try:
        xmlrpc.client.ServerProxy(urls[cur]).put("k%d" % i, "v"); acks.append(time.time())
    except xmlrpc.client.Fault:
        faults += 1
    except OSError:
        cur = (cur + 1) % 3; moves += 1
    i += 1
after = [t for t in acks if t > killed_at]
gap = max(b - a for a, b in zip(acks, acks[1:]))
rate = len(after) / (acks[-1] - after[0]) if len(after) > 1 else 0
print("twopc coordinators=3 participants=3 kill=leader(%s) | longest gap between acked puts %.2fs | first ack after kill %.2fs | acked after kill %d (%.0f/s) | faults %d | client moved %d times"
      % (leader, gap, (after[0] - killed_at) if after else -1, len(after), rate, faults, moves))
PY
  kill -INT "$LOCAL"; wait "$LOCAL" || true; LOCAL=
}

if [ -z "${SKIP_ETCD:-}" ]; then
  VICTIM=follower bash "$ETCD_FAILOVER"
  VICTIM=leader bash "$ETCD_FAILOVER"
fi
for e in $EXCLUDE_AFTER; do twopc_run "$e"; done
if [ -z "${SKIP_LEADER:-}" ]; then leader_run; fi
if [ "${CATCHUP_KEYS:-1000000}" != 0 ]; then KEYS=${CATCHUP_KEYS:-1000000} bash bench/catchup.sh; fi
