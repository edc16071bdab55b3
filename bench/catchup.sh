#!/usr/bin/env bash
# How fast a replaced participant catches up, and what the writes do
# meanwhile: a local cluster is loaded with KEYS keys (64-byte values, in
# txns of 128 puts); then, under a steady write load, one participant is
# killed with SIGKILL and its database deleted. `twopc local` starts it
# again (empty) after RESTART_PAUSE, and the coordinator excludes it and
# catches it up. Printed: how long the catch-up took (catching-up ->
# active, from status, and the coordinator's own figure), and the write
# rate before, during and after it.
#
# Usage: bench/catchup.sh
#   KEYS=1000000 WRITERS=16 RESTART_PAUSE=3s EXCLUDE_AFTER=1s
set -euo pipefail
cd "$(dirname "$0")/.."
KEYS=${KEYS:-1000000}
WRITERS=${WRITERS:-16}
RESTART_PAUSE=${RESTART_PAUSE:-3s}
EXCLUDE_AFTER=${EXCLUDE_AFTER:-1s}
WORK=$(mktemp -d /tmp/twopc-catchup.XXXX)
LOCAL=
trap '[ -n "$LOCAL" ] && kill "$LOCAL" 2>/dev/null; wait 2>/dev/null || true' EXIT
go build -o "$WORK/twopc" ./cmd/twopc
PORT=7660
"$WORK/twopc" local --dir "$WORK/data" --port "$PORT" --exclude-after "$EXCLUDE_AFTER" --restart-pause "$RESTART_PAUSE" >"$WORK/local.log" 2>&1 &
LOCAL=$!
for _ in $(seq 1 100); do "$WORK/twopc" status --addr "http://127.0.0.1:$PORT/RPC2" >/dev/null 2>&1 && break; sleep 0.1; done
victim=$(grep -o 'p3=[0-9][0-9]*' "$WORK/local.log" | head -1 | cut -d= -f2)
python3 - "http://127.0.0.1:$PORT/RPC2" "$victim" "$KEYS" "$WRITERS" "$WORK/data" <<'PY'
import sys, os, signal, threading, time, xmlrpc.client
url, victim, keys, writers, data = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
value = "v" * 64

# Load, 8 loaders, txns of 128 puts.
t0 = time.time()
def load(part):
    s = xmlrpc.client.ServerProxy(url)
    for start in range(part * 128, keys, 8 * 128):
        ops = [{"op": "put", "key": "key%08d" % i, "value": value} for i in range(start, min(start + 128, keys))]
        s.txn([], ops)
ts = [threading.Thread(target=load, args=(p,)) for p in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
print("loaded %d keys in %.1fs" % (keys, time.time() - t0), flush=True)

# Writers over the loaded keys, acks time-stamped.
acks, stop = [], False
def write(w):
    s = xmlrpc.client.ServerProxy(url); i = w
    while not stop:
        try:
            s.put("key%08d" % (i % keys), value); acks.append(time.time())
        except xmlrpc.client.Fault:
            pass
        i += writers
ws = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
[t.start() for t in ws]
time.sleep(10)
s = xmlrpc.client.ServerProxy(url)
def state():
    try:
        return {p["name"]: p["state"] for p in s.status()["participants"]}.get("p3", "?")
    except Exception:
        return "?"
killed = time.time()
os.kill(victim, signal.SIGKILL)
for f in ("p3.db", "p3.db-wal", "p3.db-shm"):
    try: os.remove(os.path.join(data, f))
    except FileNotFoundError: pass
seen, began, ended = [], None, None
while time.time() < killed + 600:
    st = state()
    if not seen or seen[-1][1] != st:
        seen.append((time.time() - killed, st))
    if st == "catching-up" and began is None: began = time.time()
    if st == "active" and began is not None: ended = time.time(); break
    time.sleep(0.05)
time.sleep(10)
stop = True; [t.join() for t in ws]
def rate(a, b):
    n = sum(1 for t in acks if a <= t < b)
    return n / (b - a) if b > a else 0
print("p3 states after the kill:", ", ".join("%.2fs %s" % x for x in seen))
if ended is None:
    print("p3 never became active again"); sys.exit(1)
before, during, after = rate(killed - 10, killed), rate(began, ended), rate(ended, ended + 10)
print("catch-up of %d keys: %.1fs (catching-up -> active, polled every 50 ms)" % (keys, ended - began))
print("puts/s with %d writers: before the kill %.0f | during the catch-up %.0f (%.2fx) | after %.0f"
      % (writers, before, during, during / before if before else 0, after))
PY
grep -o 'caught up and back.*' "$WORK/data/coordinator.log" | tail -1
kill -INT "$LOCAL"; wait "$LOCAL" || true; LOCAL=
