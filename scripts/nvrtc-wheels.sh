#!/usr/bin/env bash
# Installs the NVRTC of both pinned torch versions (CUDA 12.1 for torch 2.1.0, CUDA 13.0 for torch
# 2.11.0) into the set-up's cache, from the same pinned wheels as the CUDA installs, so that the
# fused CUDA kernels are compiled to CUBIN for sm_80/sm_90/sm_100/sm_120 on any machine, GPU or not
# (internal/native's TestCUDAKernelsCompileToCUBIN, `esvae kernels`). Idempotent; about 114 MB.
#
#   scripts/nvrtc-wheels.sh          prints the two libnvrtc.so paths, one a line
#
# Environment: ESVAE_CACHE as in setup.sh.
set -euo pipefail
die() { printf 'nvrtc-wheels: error: %s\n' "$1" >&2; shift; for l in "$@"; do printf '       %s\n' "$l" >&2; done; exit 1; }
say() { printf 'nvrtc-wheels: %s\n' "$*" >&2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${ESVAE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/esvae}
# name==version SHA-256 (the same pins as scripts/cuda-wheels.sh and cuda-wheels-2.11.0.sh) and the
# library inside the wheel.
SPECS=(
  "12.1 nvidia-cuda-nvrtc-cu12==12.1.105 339b385f50c309763ca65456ec75e17bbefcbbf2893f462cb8b90584cd27a1c2 nvidia/cuda_nvrtc/lib/libnvrtc.so.12"
  "13.0 nvidia-cuda-nvrtc==13.0.88 ad9b6d2ead2435f11cbb6868809d2adeeee302e9bb94bcf0539c7a40d80e8575 nvidia/cu13/lib/libnvrtc.so.13"
)
for s in "${SPECS[@]}"; do
  read -r ver spec hash lib <<<"$s"
  grep -q "$hash" "$ROOT/scripts/cuda-wheels.sh" "$ROOT/scripts/cuda-wheels-2.11.0.sh" \
    || die "the pin of $spec here differs from scripts/cuda-wheels*.sh" "keep the two lists equal"
  dest="$CACHE/nvrtc-$ver"
  if [ ! -f "$dest/$lib" ] || [ ! -f "$dest/ESVAE-INSTALL" ]; then
    command -v python3 >/dev/null || die "python3 is missing" "install Python 3 with pip"
    mkdir -p "$CACHE"
    tmp=$(mktemp -d "$CACHE/.partial-nvrtc-XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    say "downloading $spec (NVRTC $ver) from the Python package index..."
    echo "$spec --hash=sha256:$hash" > "$tmp/req.txt"
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
      --platform manylinux1_x86_64 --platform manylinux2010_x86_64 --platform manylinux_2_12_x86_64 \
      --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
      --require-hashes -r "$tmp/req.txt" -d "$tmp/w" >&2 \
      || die "downloading $spec failed (see pip's message above)" "check that the Python package index is reachable, then run make setup again"
    whl=$(ls "$tmp"/w/*.whl)
    echo "$hash  $whl" | sha256sum -c --quiet - >/dev/null 2>&1 || die "$(basename "$whl") has the wrong SHA-256" "run make setup again: nothing of it was kept"
    python3 - "$whl" "$tmp/root" <<'PY' || die "extracting $spec failed" "check free space in $CACHE"
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for i in z.infolist():
        if "/lib/" in i.filename and not i.filename.endswith("/"):
            z.extract(i, sys.argv[2])
PY
    echo "$spec" > "$tmp/root/ESVAE-INSTALL"
    rm -rf "$dest" && mv "$tmp/root" "$dest"
    rm -rf "$tmp"; trap - EXIT
  fi
  echo "$dest/$lib"
done
