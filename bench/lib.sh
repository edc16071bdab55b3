# Helpers shared by compare.sh and ab.sh (sourced, not run).
#
# A measured run is one line, "SYSTEM SHAPE key=value...": ops/s, p50 and
# p99 (ms), then the CPU each process spent per operation (µs, from
# /proc/PID/stat utime+stime before and after; the load generator's own
# figure), and total, their sum. medians prints the median of every
# key over the rounds, per system and shape.

HZ=$(getconf CLK_TCK)

# ticks PID: user + system CPU of PID so far, in clock ticks (0 if gone).
ticks() {
  local s f
  read -r s <"/proc/$1/stat" 2>/dev/null || { echo 0; return; }
  f=(${s##*) })   # the fields after "(comm) ": f[0] is field 3, the state
  echo $((f[11] + f[12]))
}

# machine_ticks: the CPU the whole machine has spent so far (user, nice,
# system, irq and softirq from /proc/stat, in clock ticks): what
# /proc/PID/stat leaves out too, such as kernel threads working for a
# process (an fsync's journal commit, an AIO fsync's worker).
machine_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8; exit }' /proc/stat; }

# twopc_procs LOCAL_PID [LEADER_ADDR]: "NAME PID" for each server `twopc
# local` runs: coord (with several: leader, the one serving LEADER_ADDR,
# then follower1, follower2, ..., whichever of c1, c2, ... leads), then
# each participant by its database's name (p1, p2, ...).
twopc_procs() {
  local p args db name listen leader=${2#*://} n=0
  leader=${leader%%/*}
  for p in $(pgrep -P "$1"); do
    args=$(tr '\0' ' ' <"/proc/$p/cmdline")
    case "$args" in
      *" coordinator "*" --name "*)
        listen=${args#* --listen }; listen=${listen%% *}
        if [ "$listen" = "$leader" ]; then echo "leader $p"; else n=$((n + 1)); echo "follower$n $p"; fi ;;
      *" coordinator "*) echo "coord $p" ;;
      *" participant "*) db=${args#* --db }; db=${db%% *}; db=${db##*/}; echo "${db%.db} $p" ;;
    esac
  done | sort -k1,1
}

# twopc_shape BIN ADDR LOCAL_PID OP CLIENTS LABEL: runs one shape with
# BIN's `twopc bench` against the cluster of LOCAL_PID and prints its line
# (LABEL and the shape's name first). The bench's own output goes to
# stderr. Puts of a multicall count one op each; a txn counts one.
twopc_shape() {
  local bin=$1 addr=$2 local=$3 op=$4 clients=$5 label=$6
  local -a names=() pids=() before=()
  local name pid i out
  if [ "$op" = get ] && [ "${PRELOADED:-}" != "$local" ]; then # the keys the gets read, put before the count starts
    "$bin" bench --addr "$addr" --op get --duration 1ms >/dev/null
    PRELOADED=$local
  fi
  while read -r name pid; do names+=("$name"); pids+=("$pid"); before+=("$(ticks "$pid")"); done < <(twopc_procs "$local" "$addr")
  local m0; m0=$(machine_ticks)
  out=$("$bin" bench --addr "$addr" --op "$op" --txn-ops 8 --clients "$clients" --duration "${DUR}s" --keys 100000 --preload=false)
  local machine=$(( $(machine_ticks) - m0 ))
  echo "  $out" >&2
  local line="" shape="${op}_c$clients"
  case $op in txn) shape="txn8_c$clients" ;; multicall) shape="mc8_c$clients" ;; esac
  for i in "${!pids[@]}"; do line+=" ${names[$i]}=$(( $(ticks "${pids[$i]}") - before[i] ))"; done
  awk -v label="$label" -v shape="$shape" -v hz="$HZ" -v servers="$line" -v machine="$machine" '{
      for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    } END {
      ops = v["ops"] + 0; if (ops == 0) ops = 1
      gsub("ms", "", v["p50"]); gsub("ms", "", v["p99"]); sub("s$", "", v["cpu"])
      printf "%s %s ops/s=%s p50=%s p99=%s", label, shape, v["ops/s"], v["p50"], v["p99"]
      n = split(servers, s, " "); total = 0; out = ""
      for (i = 1; i <= n; i++) { split(s[i], kv, "="); us = kv[2] * 1e6 / hz / ops; total += us; out = out sprintf(" %s=%.0f", kv[1], us) }
      us = v["cpu"] * 1e6 / ops; total += us
      printf " total=%.0f%s bench=%.0f machine=%.0f\n", total, out, us, machine * 1e6 / hz / ops
    }' <<<"$out"
}

# medians FILE: the median of each key=value over the lines of FILE that
# share their first two fields, one line per (system, shape), keys in the
# order they first appear.
medians() {
  awk '
    function med(s,   n, a, i, j, t) {
      n = split(s, a, ",")
      for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
      return a[int((n + 1) / 2)]
    }
    {
      k = $1 " " $2; if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
      for (i = 3; i <= NF; i++) {
        split($i, kv, "="); f = k SUBSEP kv[1]
        if (f in vals) vals[f] = vals[f] "," kv[2]
        else { names[k] = names[k] " " kv[1]; vals[f] = kv[2] }
      }
    }
    END {
      for (x = 1; x <= nk; x++) {
        k = order[x]; line = k; n = split(names[k], nm, " ")
        for (i = 1; i <= n; i++) line = line " " nm[i] "=" med(vals[k SUBSEP nm[i]])
        print line
      }
    }' "$1"
}

# twopc_leader BIN ADDR: the address of the coordinator that leads, when
# `twopc local --coordinators N` gave c1 ADDR's port, c2 the next, ...;
# ADDR itself with one coordinator.
twopc_leader() {
  local leader port=${2##*:}
  port=${port%%/*}
  leader=$(python3 -c "import xmlrpc.client,sys; print(xmlrpc.client.ServerProxy(sys.argv[1]).status().get('leader',''))" "$2")
  [ -z "$leader" ] && { echo "$2"; return; }
  echo "${2%%:$port*}:$((port + ${leader#c} - 1))/RPC2"
}
