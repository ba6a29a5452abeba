#!/usr/bin/env bash
# esvae set-up: installs libtorch 2.1.0 into a cache outside the repository, materializes gotch v0.9.1
# with cgo flags for that libtorch, and writes the git-ignored go.work and native cgo flags.
# Idempotent: a second run checks what is there and only rewrites small generated files.
#
# Environment:
#   ESVAE_DEVICE=cpu|cuda   which libtorch to install (default cpu). cuda also installs the pinned
#                           CUDA 12.1 runtime wheels that torch 2.1.0 depends on (~2.7 GB).
#   ESVAE_LIBTORCH=DIR      use an existing libtorch 2.1.x instead (the official zip, cxx11 ABI or not,
#                           or a wheel's torch/ folder); nothing is downloaded.
#   ESVAE_CACHE=DIR         where downloads go (default ${XDG_CACHE_HOME:-$HOME/.cache}/esvae).
set -euo pipefail

die() { printf 'setup: error: %s\n' "$1" >&2; shift; for l in "$@"; do printf '       %s\n' "$l" >&2; done; exit 1; }
say() { printf 'setup: %s\n' "$*" >&2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEVICE=${ESVAE_DEVICE:-cpu}
CACHE=${ESVAE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/esvae}
TORCH_VERSION=2.1.0
GOTCH_VERSION=v0.9.1

case "$DEVICE" in cpu|cuda) ;; *) die "ESVAE_DEVICE=$DEVICE is not valid" "use ESVAE_DEVICE=cpu or ESVAE_DEVICE=cuda";; esac

# Pinned wheels of the Python package index, with their SHA-256. torch 2.1.0's libtorch_cpu.so itself
# needs libcudart and libcupti (the profiler), so even the CPU install takes those two small wheels.
WHEELS_CPU=(
  "torch==2.1.0 2224622407ca52611cbc5b628106fde22ed8e679031f5a99ce286629fc696128"
  "nvidia-cuda-runtime-cu12==12.1.105 6e258468ddf5796e25f1dc591a31029fa317d97a0a94ed93468fc86301d61e40"
  "nvidia-cuda-cupti-cu12==12.1.105 e54fde3983165c624cb79254ae9818a456eb6e87a7fd4d56a2352c24ee542d7e"
)
# shellcheck source=scripts/cuda-wheels.sh
source "$ROOT/scripts/cuda-wheels.sh"

check_version() { # $1 = libtorch dir (with include/ and lib/)
  local h="$1/include/torch/csrc/api/include/torch/version.h"
  [ -f "$h" ] || die "$1 does not look like libtorch: $h is missing" \
    "point ESVAE_LIBTORCH at the folder that holds include/ and lib/, or unset it to let set-up install libtorch $TORCH_VERSION"
  local maj min
  maj=$(sed -n 's/^#define TORCH_VERSION_MAJOR \([0-9]*\)/\1/p' "$h")
  min=$(sed -n 's/^#define TORCH_VERSION_MINOR \([0-9]*\)/\1/p' "$h")
  [ "$maj.$min" = "2.1" ] || die "libtorch at $1 is version $maj.$min, gotch $GOTCH_VERSION needs 2.1.x" \
    "install libtorch 2.1.0 there, or unset ESVAE_LIBTORCH to let set-up install it into $CACHE"
  [ -f "$1/lib/libtorch_cpu.so" ] && [ -f "$1/lib/libc10.so" ] || die "libtorch at $1 lacks lib/libtorch_cpu.so or lib/libc10.so" \
    "the install looks partial: reinstall it, or unset ESVAE_LIBTORCH"
}

install_wheels() { # $1 = target dir; installs torch/lib, torch/include and nvidia/*/lib from the pinned wheels
  local target=$1; shift
  command -v python3 >/dev/null || die "python3 is missing" "install Python 3 with pip (Debian: apt-get install python3-pip), or point ESVAE_LIBTORCH at an existing libtorch 2.1"
  python3 -m pip --version >/dev/null 2>&1 || die "pip is missing for python3" "install it (Debian: apt-get install python3-pip; or python3 -m ensurepip), or point ESVAE_LIBTORCH at an existing libtorch 2.1"
  mkdir -p "$CACHE" || die "cannot create the cache folder $CACHE" "set ESVAE_CACHE to a writable folder"
  local need_mb=2500; [ "$DEVICE" = cuda ] && need_mb=9000
  local free_mb; free_mb=$(df -Pm "$CACHE" | awk 'NR==2 {print $4}')
  [ "${free_mb:-0}" -ge "$need_mb" ] || die "only ${free_mb} MB free in $CACHE, set-up needs about $need_mb MB" \
    "free some space, or set ESVAE_CACHE to a folder on a bigger disk"
  TMP=$(mktemp -d "$CACHE/.partial-XXXXXX")
  trap 'rm -rf "$TMP"' EXIT
  local req="$TMP/requirements.txt" spec hash
  : > "$req"
  for w in "$@"; do spec=${w% *}; hash=${w#* }; echo "$spec --hash=sha256:$hash" >> "$req"; done
  say "downloading $# wheel(s) from the Python package index (torch $TORCH_VERSION is 670 MB)..."
  if ! python3 -m pip download --no-deps --only-binary=:all: --python-version 3.11 --platform manylinux1_x86_64 \
      --require-hashes --progress-bar on -r "$req" -d "$TMP/wheels" 2>&1 | tee "$TMP/pip.log" >&2; then
    grep -q 'DO NOT MATCH THE HASHES' "$TMP/pip.log" && die "a downloaded wheel does not match its pinned SHA-256 (corrupt, partial or altered download)" \
      "nothing was kept; run set-up again, and if it persists check any proxy or mirror between you and the package index"
    die "the download of the pinned wheels failed (see pip's message above)" \
      "check that the Python package index is reachable (pip config, proxy), and that $CACHE has space; then run set-up again" \
      "or point ESVAE_LIBTORCH at an existing libtorch 2.1"
  fi
  say "verifying SHA-256 of the wheels..."
  for w in "$@"; do
    spec=${w% *}; hash=${w#* }
    local name=${spec%%==*} ver=${spec#*==} f
    f=$(ls "$TMP/wheels/${name//-/_}-${ver}-"*.whl 2>/dev/null | head -n1)
    [ -n "$f" ] || die "wheel $spec was not downloaded" "run set-up again; if it persists, check pip's output"
    echo "$hash  $f" | sha256sum -c --quiet - >/dev/null 2>&1 || die "$(basename "$f") has the wrong SHA-256 (corrupt or partial download)" \
      "run set-up again: nothing of it was kept"
  done
  say "extracting libtorch..."
  DEVICE="$DEVICE" python3 - "$TMP/wheels" "$TMP/root" <<'PY' || die "extracting the wheels failed (see above)" "check free space in the cache and run set-up again"
import os, sys, zipfile, glob
src, dst = sys.argv[1], sys.argv[2]
cuda = os.environ["DEVICE"] == "cuda"
cpu_libs = ("libtorch_cpu.so", "libc10.so", "libgomp-")
cuda_libs = cpu_libs + ("libtorch_cuda.so", "libc10_cuda.so", "libtorch.so", "libcaffe2_nvrtc.so",
                        "libtorch_cuda_linalg.so", "libtorch_global_deps.so", "libnvfuser_codegen.so")
for whl in sorted(glob.glob(os.path.join(src, "*.whl"))):
    with zipfile.ZipFile(whl) as z:
        for info in z.infolist():
            n = info.filename
            keep = False
            if n.startswith("torch/include/"):
                keep = True
            elif n.startswith("torch/lib/"):
                base = os.path.basename(n)
                keep = base.startswith(cuda_libs if cuda else cpu_libs)
            elif n.startswith("nvidia/") and "/lib/" in n:
                keep = True
            if keep and not n.endswith("/"):
                z.extract(info, dst)
PY
  printf 'libtorch %s (%s) from the torch==%s wheel; pre-cxx11 ABI\n' "$TORCH_VERSION" "$DEVICE" "$TORCH_VERSION" > "$TMP/root/ESVAE-INSTALL"
  rm -rf "$target"
  mv "$TMP/root" "$target" || die "could not move the install into $target" "check permissions on $CACHE"
  rm -rf "$TMP"; trap - EXIT
}

# --- 1. libtorch -----------------------------------------------------------------------------------
if [ -n "${ESVAE_LIBTORCH:-}" ]; then
  LIBTORCH=$(cd "$ESVAE_LIBTORCH" 2>/dev/null && pwd) || die "ESVAE_LIBTORCH=$ESVAE_LIBTORCH is not a folder" "point it at a libtorch 2.1 folder, or unset it"
  check_version "$LIBTORCH"
  if nm -DC --defined-only "$LIBTORCH/lib/libc10.so" 2>/dev/null | grep -q 'c10::.*std::__cxx11'; then ABI=1; else ABI=0; fi
  if [ -f "$LIBTORCH/lib/libtorch_cuda.so" ] && [ "$DEVICE" = cpu ] && [ -z "${ESVAE_DEVICE:-}" ]; then DEVICE=cuda; fi
  say "using libtorch at $LIBTORCH (ABI flag $ABI, $DEVICE)"
else
  DEST="$CACHE/libtorch-$TORCH_VERSION-$DEVICE"
  if [ -f "$DEST/ESVAE-INSTALL" ]; then
    say "libtorch $TORCH_VERSION ($DEVICE) already installed in $DEST"
  else
    [ -e "$DEST" ] && say "removing the incomplete install in $DEST"
    if [ "$DEVICE" = cuda ]; then install_wheels "$DEST" "${WHEELS_CPU[@]}" "${WHEELS_CUDA[@]}"; else install_wheels "$DEST" "${WHEELS_CPU[@]}"; fi
    say "installed libtorch $TORCH_VERSION ($DEVICE) in $DEST ($(du -sh "$DEST" | cut -f1))"
  fi
  LIBTORCH="$DEST/torch"
  check_version "$LIBTORCH"
  ABI=0
fi

if [ "$DEVICE" = cuda ]; then
  [ -f "$LIBTORCH/lib/libtorch_cuda.so" ] || die "ESVAE_DEVICE=cuda but $LIBTORCH/lib/libtorch_cuda.so is missing" "point ESVAE_LIBTORCH at a CUDA build of libtorch 2.1, or use ESVAE_DEVICE=cpu"
  LINK="-Wl,--no-as-needed -ltorch_cuda -lc10_cuda -Wl,--as-needed -ltorch_cpu -lc10"
else
  LINK="-ltorch_cpu -lc10"
fi
INC="-I$LIBTORCH/include -I$LIBTORCH/include/torch/csrc/api/include"
LDFLAGS="-L$LIBTORCH/lib -Wl,-rpath,$LIBTORCH/lib $LINK -lstdc++"
CXXFLAGS="-std=c++17 -D_GLIBCXX_USE_CXX11_ABI=$ABI $INC"

# --- 2. gotch, materialized with flags for this libtorch ------------------------------------------
command -v go >/dev/null || die "go is missing" "install Go 1.22 or newer"
cd "$ROOT"
GOTCH_SRC=$(go mod download -json "github.com/sugarme/gotch@$GOTCH_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$GOTCH_SRC" ] || die "could not download gotch $GOTCH_VERSION from the Go module proxy" "check GOPROXY and the network, then run set-up again"
STAMP="$GOTCH_SRC|$CXXFLAGS|$LDFLAGS"
if [ ! -f .gotch/.esvae-stamp ] || [ "$(cat .gotch/.esvae-stamp)" != "$STAMP" ]; then
  say "materializing gotch $GOTCH_VERSION into .gotch/"
  rm -rf .gotch.partial && cp -r "$GOTCH_SRC" .gotch.partial && chmod -R u+w .gotch.partial
  cat > .gotch.partial/libtch/lib.go <<GO
// Code generated by scripts/setup.sh; DO NOT EDIT. Flags for libtorch at $LIBTORCH ($DEVICE).
package libtch

// #cgo LDFLAGS: $LDFLAGS
// #cgo CFLAGS: -I\${SRCDIR} -O2 -Wall -Wno-unused-variable -Wno-deprecated-declarations -Wno-sign-compare -Wno-unused-function
// #cgo CXXFLAGS: -I\${SRCDIR} -O2 -Wno-deprecated-declarations -Wno-unused-variable $CXXFLAGS
import "C"
GO
  printf '%s' "$STAMP" > .gotch.partial/.esvae-stamp
  rm -rf .gotch && mv .gotch.partial .gotch
fi

# --- 3. go.work and the native layer's cgo flags -----------------------------------------------------
GOVER=$(sed -n 's/^go \([0-9.]*\)$/\1/p' go.mod)
cat > go.work.partial <<GO
// Code generated by scripts/setup.sh; DO NOT EDIT.
go $GOVER

use .

replace github.com/sugarme/gotch $GOTCH_VERSION => ./.gotch
GO
mv go.work.partial go.work
cat > internal/native/zz_cgo_flags.go.partial <<GO
// Code generated by scripts/setup.sh; DO NOT EDIT. Flags for libtorch at $LIBTORCH ($DEVICE).

package native

// #cgo CXXFLAGS: -O2 -Wno-deprecated-declarations $CXXFLAGS
// #cgo LDFLAGS: $LDFLAGS
import "C"

// builtFor names the libtorch this package was configured for.
const builtFor = "$LIBTORCH ($DEVICE)"
GO
mv internal/native/zz_cgo_flags.go.partial internal/native/zz_cgo_flags.go
say "ready: libtorch $LIBTORCH ($DEVICE); go.work and internal/native/zz_cgo_flags.go written"
