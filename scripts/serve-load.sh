#!/usr/bin/env bash
# Load test of `esvae serve` (serve/loadtest): K clients send drawn-digit reconstructions to the
# server on a loopback port for a fixed time; prints requests/s, p50/p95/p99 latency, the 503
# count and the process RSS before and after. Usage:
#   bash scripts/serve-load.sh [CHECKPOINT] [loadtest flags: --clients 4 --duration 20s --queue 8 ...]
# Without a checkpoint it trains a small one (the demo's ESVAE, 30 steps on testdata/mnist-small):
# the cost of a request does not depend on the training. Run from the repository root.
set -euo pipefail
CKPT=
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then CKPT=$1; shift; fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
if [ -z "$CKPT" ]; then
  go build -o "$WORK/esvae" ./cmd/esvae
  "$WORK/esvae" train --config configs/demo.yaml --data-dir "$PWD/testdata/mnist-small" --epochs 4 \
    --max-steps 30 --out "$WORK/run" --device cpu --log-level warn
  CKPT=$WORK/run/last.ckpt
fi
go build -o "$WORK/loadtest" ./serve/loadtest
"$WORK/loadtest" --checkpoint "$CKPT" "$@"
