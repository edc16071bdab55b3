#!/usr/bin/env bash
# What several coordinators cost: puts against one coordinator (A), then
# against the leader of three (B), interleaved round by round with the
# same binary (bench/ab.sh), so that the machine's drift hits both alike;
# prints ops/s, p50 and the CPU each process spent per put, and the ratio
# three/one.
#
# Usage: bench/coordinators.sh [ROUNDS]        (default 3)
#   CLIENTS="64 1"    client counts to run
#   SECONDS_PER_RUN=8
#   PORT=7760         the first coordinator's port
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=$(mktemp -d /tmp/twopc-coordinators.XXXX)
go build -o "$WORK/twopc" ./cmd/twopc
SHAPES=""
for c in ${CLIENTS:-64 1}; do SHAPES+=" put:$c"; done
SHAPES=$SHAPES SECONDS_PER_SHAPE=${SECONDS_PER_RUN:-8} PORT=${PORT:-7760} COORDINATORS_A=1 COORDINATORS_B=3 \
  exec bench/ab.sh "$WORK/twopc" "$WORK/twopc" "${1:-3}"
