#!/usr/bin/env bash
# Stands in for etcd's `benchmark` tool inside etcd_bench.sh (compare.sh
# points the script's PEER_DIR at a directory whose bin/benchmark is this
# file): it runs the real tool with the same arguments and then prints,
# after the tool's own output, the CPU that each etcd member and the tool
# itself used during the run:
#
#   cpu machine=TICKS m1=TICKS m2=TICKS m3=TICKS bench=SECONDS
#
# (machine: the whole machine's CPU during the run, as lib.sh's
# machine_ticks counts it)
#
# The members are the etcd processes whose --data-dir lies under
# $ETCD_CPU_DATA; the real tool is $ETCD_CPU_REAL.
set -uo pipefail
source "$(dirname "$(readlink -f "$0")")/lib.sh"

# child_cpu: sets CHILD_CPU to the user + system seconds of this shell's
# reaped children. Not through $(...), whose subshell has other children.
child_cpu() {
  local self u s
  times >"$TMPDIR_CPU"
  { read -r self; read -r u s; } <"$TMPDIR_CPU"
  CHILD_CPU=$(awk -v u="$u" -v s="$s" 'function sec(t, a) { split(t, a, /[ms]/); return a[1] * 60 + a[2] } BEGIN { printf "%.3f", sec(u) + sec(s) }')
}

TMPDIR_CPU=$(mktemp)
declare -a names=() pids=() before=()
for f in /proc/[0-9]*/cmdline; do
  args=$(tr '\0' ' ' <"$f" 2>/dev/null) || continue
  case "$args" in
    *" --data-dir $ETCD_CPU_DATA/"*)
      name=${args#* --name }; pid=${f#/proc/}; pid=${pid%/cmdline}
      names+=("${name%% *}"); pids+=("$pid") ;;
  esac
done
for i in "${!pids[@]}"; do before+=("$(ticks "${pids[$i]}")"); done
child_cpu; c0=$CHILD_CPU
m0=$(machine_ticks)

"$ETCD_CPU_REAL" "$@" &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM INT
wait "$child"; rc=$?
wait "$child" 2>/dev/null # a trapped signal interrupts the first wait

line="cpu machine=$(( $(machine_ticks) - m0 ))"
for i in "${!pids[@]}"; do line+=" ${names[$i]}=$(( $(ticks "${pids[$i]}") - before[i] ))"; done
child_cpu
echo "$line bench=$(awk -v a="$c0" -v b="$CHILD_CPU" 'BEGIN { printf "%.3f", b - a }')"
rm -f "$TMPDIR_CPU"
exit "$rc"
