#!/usr/bin/env bash
# esvae set-up: installs libtorch (2.1.0 by default) into a cache outside the repository, materializes
# gotch v0.9.1 with cgo flags for that libtorch, adapts gotch's generated C++ to the libtorch version
# (scripts/adapt_gotch.py), and writes the git-ignored go.work and native cgo flags.
# Idempotent: a second run checks what is there and only rewrites small generated files.
#
# Environment:
#   ESVAE_TORCH=X.Y.Z       which torch wheel to install from the Python package index: 2.1.0 (default;
#                           CUDA 12.1, GPUs sm_50-sm_90) or 2.11.0 (CUDA 13.0, sm_75-sm_120: Blackwell).
#   ESVAE_DEVICE=cpu|cuda   which variant to install (default cpu). cuda also installs the pinned
#                           CUDA runtime wheels that torch depends on (2.1.0: ~2.7 GB; 2.11.0: ~2.1 GB).
#   ESVAE_LIBTORCH=DIR      use an existing libtorch >= 2.1 instead: an existing PyTorch's torch/ folder
#                           (python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))') or an
#                           unpacked libtorch zip (cxx11 ABI or not, CPU or CUDA); nothing is downloaded.
#   ESVAE_CACHE=DIR         where downloads go (default ${XDG_CACHE_HOME:-$HOME/.cache}/esvae).
set -euo pipefail

die() { printf 'setup: error: %s\n' "$1" >&2; shift; for l in "$@"; do printf '       %s\n' "$l" >&2; done; exit 1; }
say() { printf 'setup: %s\n' "$*" >&2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEVICE=${ESVAE_DEVICE:-cpu}
CACHE=${ESVAE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/esvae}
TORCH_VERSION=${ESVAE_TORCH:-2.1.0}
GOTCH_VERSION=v0.9.1
PINNED="2.1.0, 2.11.0"

case "$DEVICE" in cpu|cuda) ;; *) die "ESVAE_DEVICE=$DEVICE is not valid" "use ESVAE_DEVICE=cpu or ESVAE_DEVICE=cuda";; esac

# Pinned wheels of the Python package index, with their SHA-256, per torch version. The CPU libraries
# of both wheels link against the CUDA runtime and CUPTI (the profiler), so even the CPU install takes
# those two small wheels; the rest of the CUDA set is in scripts/cuda-wheels*.sh.
case "$TORCH_VERSION" in
  2.1.0)
    WHEELS_CPU=(
      "torch==2.1.0 2224622407ca52611cbc5b628106fde22ed8e679031f5a99ce286629fc696128"
      "nvidia-cuda-runtime-cu12==12.1.105 6e258468ddf5796e25f1dc591a31029fa317d97a0a94ed93468fc86301d61e40"
      "nvidia-cuda-cupti-cu12==12.1.105 e54fde3983165c624cb79254ae9818a456eb6e87a7fd4d56a2352c24ee542d7e"
    )
    PLATFORMS=(manylinux1_x86_64)
    TORCH_MB=670
    # shellcheck source=scripts/cuda-wheels.sh
    source "$ROOT/scripts/cuda-wheels.sh";;
  2.11.0)
    WHEELS_CPU=(
      "torch==2.11.0 7aa2f9bbc6d4595ba72138026b2074be1233186150e9292865e04b7a63b8c67a"
      "nvidia-cuda-runtime==13.0.96 7f82250d7782aa23b6cfe765ecc7db554bd3c2870c43f3d1821f1d18aebf0548"
      "nvidia-cuda-cupti==13.0.85 4eb01c08e859bf924d222250d2e8f8b8ff6d3db4721288cf35d14252a4d933c8"
    )
    PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_25_x86_64 manylinux_2_18_x86_64 manylinux_2_17_x86_64 manylinux_2_12_x86_64 manylinux_2_5_x86_64 manylinux2014_x86_64 manylinux2010_x86_64 manylinux1_x86_64)
    TORCH_MB=531
    # shellcheck source=scripts/cuda-wheels-2.11.0.sh
    source "$ROOT/scripts/cuda-wheels-2.11.0.sh";;
  *)
    if [ -z "${ESVAE_LIBTORCH:-}" ]; then
      die "ESVAE_TORCH=$TORCH_VERSION has no pinned wheels; set-up installs torch $PINNED" \
        "use ESVAE_TORCH=2.1.0 or ESVAE_TORCH=2.11.0, or point ESVAE_LIBTORCH at a libtorch >= 2.1 you have" \
        "(an unpacked libtorch zip, or an installed PyTorch's torch/ folder)"
    fi;;
esac

# Version of the libtorch in $1 from its headers (2.1: torch/csrc/api/include/torch/version.h; newer
# versions moved the macros to torch/headeronly/version.h). Sets LT_VERSION (X.Y.Z) or dies.
check_version() { # $1 = libtorch dir (with include/ and lib/)
  local h="" c maj min pat
  for c in "$1/include/torch/headeronly/version.h" "$1/include/torch/csrc/api/include/torch/version.h"; do
    if [ -f "$c" ] && grep -q '^#define TORCH_VERSION_MAJOR' "$c"; then h=$c; break; fi
  done
  if [ -z "$h" ]; then
    local found; found=$(ls -A "$1" 2>/dev/null | head -n 8 | tr '\n' ' ')
    die "$1 does not look like libtorch: include/torch/csrc/api/include/torch/version.h (or include/torch/headeronly/version.h) is missing; the folder holds: ${found:-nothing}" \
      "point ESVAE_LIBTORCH at the folder that holds include/ and lib/ (an unpacked libtorch zip, or a PyTorch's torch/ folder), or unset it to let set-up install libtorch"
  fi
  maj=$(sed -n 's/^#define TORCH_VERSION_MAJOR \([0-9]*\).*/\1/p' "$h")
  min=$(sed -n 's/^#define TORCH_VERSION_MINOR \([0-9]*\).*/\1/p' "$h")
  pat=$(sed -n 's/^#define TORCH_VERSION_PATCH \([0-9]*\).*/\1/p' "$h")
  LT_VERSION="$maj.$min.${pat:-0}"
  if [ "${maj:-0}" -lt 2 ] || { [ "$maj" -eq 2 ] && [ "${min:-0}" -lt 1 ]; }; then
    die "libtorch at $1 is version $LT_VERSION (from $h); esvae needs libtorch 2.1 or newer" \
      "install a newer PyTorch or libtorch, or unset ESVAE_LIBTORCH to let set-up install torch $PINNED into $CACHE"
  fi
  # The data-parallel shim (internal/native/gloo_shim.h) declares ProcessGroupGloo's Options as
  # these versions have it; another version would stop the build there with an #error.
  case "$maj.$min" in
    2.1 | 2.11) ;;
    *) die "libtorch at $1 is version $LT_VERSION; esvae builds against libtorch 2.1 and 2.11 (internal/native/gloo_shim.h is checked against those headers)" \
      "use torch 2.1.0 or 2.11.0 (ESVAE_TORCH=2.11.0, or unset ESVAE_LIBTORCH), or compare ProcessGroupGloo.hpp of $LT_VERSION with the shim and add the version there" ;;
  esac
  [ -f "$1/lib/libtorch_cpu.so" ] && [ -f "$1/lib/libc10.so" ] || die "libtorch $LT_VERSION at $1 lacks lib/libtorch_cpu.so or lib/libc10.so" \
    "the install looks partial: reinstall it, or unset ESVAE_LIBTORCH"
}

# CUDA version of a CUDA build in $1 (empty for a CPU build): a PyTorch folder's version.py, else the
# soname of the CUDA runtime that libtorch_cuda.so needs.
cuda_version() {
  [ -f "$1/lib/libtorch_cuda.so" ] || return 0
  local v=""
  [ -f "$1/version.py" ] && v=$(sed -n "s/^cuda[: a-zA-Z\[\]]*= *'\([0-9.]*\)'.*/\1/p" "$1/version.py" | head -n1)
  if [ -z "$v" ]; then
    local needed; needed=$(readelf -d "$1/lib/libtorch_cuda.so" 2>/dev/null || true)
    v=$(printf '%s\n' "$needed" | sed -n 's/.*\[libcudart\.so\.\([0-9.]*\)\].*/\1/p' | head -n1)
    [ -n "$v" ] || v=unknown
  fi
  printf '%s' "$v"
}

install_wheels() { # $1 = target dir; installs torch/lib, torch/include and nvidia/*/lib from the pinned wheels
  local target=$1; shift
  command -v python3 >/dev/null || die "python3 is missing" "install Python 3 with pip (Debian: apt-get install python3-pip), or point ESVAE_LIBTORCH at an existing libtorch >= 2.1"
  python3 -m pip --version >/dev/null 2>&1 || die "pip is missing for python3" "install it (Debian: apt-get install python3-pip; or python3 -m ensurepip), or point ESVAE_LIBTORCH at an existing libtorch >= 2.1"
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
  say "downloading $# wheel(s) from the Python package index (torch $TORCH_VERSION is $TORCH_MB MB)..."
  local plat=() p
  for p in "${PLATFORMS[@]}"; do plat+=(--platform "$p"); done
  if ! python3 -m pip download --no-deps --only-binary=:all: --python-version 3.11 "${plat[@]}" \
      --require-hashes --progress-bar on -r "$req" -d "$TMP/wheels" 2>&1 | tee "$TMP/pip.log" >&2; then
    grep -q 'DO NOT MATCH THE HASHES' "$TMP/pip.log" && die "a downloaded wheel does not match its pinned SHA-256 (corrupt, partial or altered download)" \
      "nothing was kept; run set-up again, and if it persists check any proxy or mirror between you and the package index"
    die "the download of the pinned wheels failed (see pip's message above)" \
      "check that the Python package index is reachable (pip config, proxy), and that $CACHE has space; then run set-up again" \
      "or point ESVAE_LIBTORCH at an existing libtorch >= 2.1"
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
cpu_libs = ("libtorch_cpu.so", "libc10.so", "libgomp")
cuda_libs = cpu_libs + ("libtorch_cuda.so", "libc10_cuda.so", "libtorch.so", "libcaffe2_nvrtc.so",
                        "libtorch_cuda_linalg.so", "libtorch_global_deps.so", "libnvfuser_codegen.so",
                        "libtorch_nvshmem.so")
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
            elif n == "torch/version.py":
                keep = True
            elif n.startswith("nvidia/") and "/lib/" in n:
                keep = True
            if keep and not n.endswith("/"):
                z.extract(info, dst)
PY
  printf 'libtorch %s (%s) from the torch==%s wheel\n' "$TORCH_VERSION" "$DEVICE" "$TORCH_VERSION" > "$TMP/root/ESVAE-INSTALL"
  rm -rf "$target"
  mv "$TMP/root" "$target" || die "could not move the install into $target" "check permissions on $CACHE"
  rm -rf "$TMP"; trap - EXIT
}

# --- 1. libtorch -----------------------------------------------------------------------------------
if [ -n "${ESVAE_LIBTORCH:-}" ]; then
  LIBTORCH=$(cd "$ESVAE_LIBTORCH" 2>/dev/null && pwd) || die "ESVAE_LIBTORCH=$ESVAE_LIBTORCH is not a folder" "point it at a libtorch >= 2.1 folder, or unset it"
  # A libtorch zip's root or a PyTorch's torch/ folder both hold include/ and lib/; accept the folder above a torch/ too.
  if [ ! -d "$LIBTORCH/include" ] && [ -d "$LIBTORCH/torch/include" ]; then LIBTORCH="$LIBTORCH/torch"; fi
  check_version "$LIBTORCH"
  if [ -f "$LIBTORCH/lib/libtorch_cuda.so" ] && [ "$DEVICE" = cpu ] && [ -z "${ESVAE_DEVICE:-}" ]; then DEVICE=cuda; fi
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
fi
# The C++ ABI of the build: count (not grep -q: under pipefail its early exit reads as a failure)
# c10's own symbols that carry the cxx11 std::string (libstdc++ symbols linked into it carry it either way).
NM_OUT=$(nm -DC --defined-only "$LIBTORCH/lib/libc10.so" 2>/dev/null || true)
if [ "$(printf '%s\n' "$NM_OUT" | grep -c 'c10::.*std::__cxx11' || true)" -gt 0 ]; then ABI=1; else ABI=0; fi
unset NM_OUT
CUDA_VERSION=$(cuda_version "$LIBTORCH")
say "using libtorch $LT_VERSION at $LIBTORCH (${CUDA_VERSION:+CUDA $CUDA_VERSION, }ABI flag $ABI, $DEVICE)"

if [ "$DEVICE" = cuda ]; then
  [ -f "$LIBTORCH/lib/libtorch_cuda.so" ] || die "ESVAE_DEVICE=cuda but $LIBTORCH/lib/libtorch_cuda.so is missing" "point ESVAE_LIBTORCH at a CUDA build of libtorch >= 2.1, or use ESVAE_DEVICE=cpu"
  LINK="-Wl,--no-as-needed -ltorch_cuda -lc10_cuda -Wl,--as-needed -ltorch_cpu -lc10"
else
  LINK="-ltorch_cpu -lc10"
fi
INC="-I$LIBTORCH/include -I$LIBTORCH/include/torch/csrc/api/include"
# DT_RUNPATH (not DT_RPATH): the binaries find this libtorch without LD_LIBRARY_PATH, and an
# LD_LIBRARY_PATH set at run time (ESVAE_LIBTORCH_DIR) still takes precedence over it.
LDFLAGS="-L$LIBTORCH/lib -Wl,--enable-new-dtags -Wl,-rpath,$LIBTORCH/lib $LINK -lstdc++"
CXXFLAGS="-std=c++17 -D_GLIBCXX_USE_CXX11_ABI=$ABI $INC"

# --- 2. gotch, materialized with flags for this libtorch ------------------------------------------
command -v go >/dev/null || die "go is missing" "install Go 1.22 or newer"
cd "$ROOT"
GOTCH_SRC=$(go mod download -json "github.com/sugarme/gotch@$GOTCH_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$GOTCH_SRC" ] || die "could not download gotch $GOTCH_VERSION from the Go module proxy" "check GOPROXY and the network, then run set-up again"
STAMP="$GOTCH_SRC|$LT_VERSION|$CXXFLAGS|$LDFLAGS|$(sha256sum "$ROOT/scripts/adapt_gotch.py" | cut -c1-16)"
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
  # shellcheck disable=SC2086 # CXXFLAGS is a list of flags
  python3 "$ROOT/scripts/adapt_gotch.py" .gotch.partial "$LT_VERSION" "$CACHE" $CXXFLAGS \
    || die "adapting gotch's generated C++ to libtorch $LT_VERSION failed (see above)" "check that g++ is installed, or use ESVAE_TORCH=2.1.0"
  printf '%s' "$STAMP" > .gotch.partial/.esvae-stamp
  rm -rf .gotch && mv .gotch.partial .gotch
fi

# --- 3. go.work and the native layer's cgo flags -----------------------------------------------------
UNAVAILABLE=$(grep -v '^#' .gotch/unavailable.txt | paste -sd, - || true)
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

// The libtorch set-up configured: its folder, version (from its headers), CUDA version ("" for a CPU
// build) and the gotch functions that scripts/adapt_gotch.py found unavailable in it.
const (
	builtLibtorchDir     = "$LIBTORCH"
	builtLibtorchVersion = "$LT_VERSION"
	builtCUDAVersion     = "$CUDA_VERSION"
	gotchUnavailable     = "$UNAVAILABLE"
)
GO
mv internal/native/zz_cgo_flags.go.partial internal/native/zz_cgo_flags.go
say "ready: libtorch $LIBTORCH ($DEVICE); go.work and internal/native/zz_cgo_flags.go written"
