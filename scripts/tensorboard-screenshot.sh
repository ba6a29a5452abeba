#!/usr/bin/env bash
# Makes docs/tensorboard.png: a short esvae run on the repository's small MNIST sample (64 steps,
# stopped at step 30 and resumed), TensorBoard's server on its event files (loopback only), and
# a screenshot of its Time Series page in headless Chromium (Debian: apt-get install chromium).
# The server comes from the package index into $ESVAE_CACHE/tbservevenv (tensorboard 2.21.0 with
# its dependencies; a docs tool, not a test). Run from the repository root after the setup.
set -euo pipefail
CACHE=${ESVAE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/esvae}
VENV=$CACHE/tbservevenv
OUT=${1:-docs/tensorboard.png}
PORT=${TB_PORT:-6123}
command -v chromium >/dev/null || { echo "needs chromium (Debian: apt-get install chromium)" >&2; exit 1; }
if [ ! -x "$VENV/bin/tensorboard" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check tensorboard==2.21.0
fi
WORK=$(mktemp -d)
trap 'kill "${TB_PID:-}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
go build -o "$WORK/esvae" ./cmd/esvae
ARGS=(--data mnist --data-dir testdata/mnist-small --batch-size 32 --epochs 4 --out "$WORK/runs/esvae-mnist-small" --device cpu --log-level warn)
"$WORK/esvae" train "${ARGS[@]}" --max-steps 30
"$WORK/esvae" train "${ARGS[@]}" --resume auto
"$VENV/bin/tensorboard" --logdir "$WORK/runs" --host 127.0.0.1 --port "$PORT" >"$WORK/tb.log" 2>&1 &
TB_PID=$!
for _ in $(seq 60); do curl -fs "http://127.0.0.1:$PORT/data/runs" | grep -q esvae && break; sleep 1; done
# forceSVG: the line charts are drawn without WebGL, which headless Chromium lacks.
chromium --headless=new --no-sandbox --hide-scrollbars --window-size=1400,1000 --virtual-time-budget=40000 \
  --screenshot="$OUT" "http://127.0.0.1:$PORT/?darkMode=false&forceSVG=true&tagFilter=train%2Floss%7Ctest%2Fmse%7Creconstructions%7Cposterior#timeseries" 2>/dev/null
echo "wrote $OUT"
