#!/usr/bin/env bash
# Makes docs/serve.png: a screenshot of `esvae serve`'s page in headless Chromium, taken by the
# page's browser test (serve/browser_test.go: it draws a "7", then fills the other panels).
# Usage: bash scripts/serve-screenshot.sh [CHECKPOINT] [OUT.png]. Without a checkpoint it trains
# a small one first: ESVAE with the demo's settings (T = 16, latent 32, batch 64) for 300 steps on
# the repository's small MNIST sample (testdata/mnist-small), about 2 minutes on 2 CPU cores.
# Needs chromium (Debian: bash scripts/browser-setup.sh). Run from the repository root.
set -euo pipefail
CKPT=${1:-}
OUT=${2:-docs/serve.png}
command -v chromium >/dev/null || { echo "needs chromium (Debian: bash scripts/browser-setup.sh)" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
if [ -z "$CKPT" ]; then
  go build -o "$WORK/esvae" ./cmd/esvae
  # An absolute --data-dir: the checkpoint keeps it, and the test runs in serve/.
  "$WORK/esvae" train --config configs/demo.yaml --data-dir "$PWD/testdata/mnist-small" --epochs 40 \
    --max-steps 300 --out "$WORK/run" --device cpu --log-level warn
  CKPT=$WORK/run/last.ckpt
fi
ESVAE_SERVE_CHECKPOINT=$(realpath "$CKPT") ESVAE_SERVE_SCREENSHOT=$(realpath -m "$OUT") \
  go test ./serve/ -run '^TestBrowserDrawReconstruct$' -count=1 -v | grep -E '^(--- |ok|FAIL|\s+browser_test)'
echo "wrote $OUT ($(stat -c %s "$OUT") bytes)"
