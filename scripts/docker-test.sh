#!/usr/bin/env bash
# docker-test: the Docker set-up end to end against a real engine (make docker-test; not part of make
# test). Needs root, a Debian-like host with apt, Go (for the toolchain of the local build image),
# python3, and access to Debian's packages, the Go module proxy and the Python package index; about 15
# minutes from nothing on 2 cores (24 with ESVAE_DOCKER_CUDA=1), most of it the image builds.
#
#  1. installs the engine if it is missing (docker.io, docker-compose, debootstrap) and starts dockerd;
#  2. makes local base images (Docker Hub is not needed): Debian bookworm by debootstrap, and the same
#     with the Go toolchain from the Go module proxy; this machine's CA bundle goes into these local
#     images only (SSL_CERT_FILE, PIP_CERT), so that a build behind a TLS-inspecting proxy reaches the
#     package index; the Dockerfile's defaults, the official images, are not touched;
#  3. builds the CPU variant with them, then rebuilds after a one-line change to a .go file (timed);
#  4. runs esvae info, and train --device cuda (which must fail with a plain message), in a container;
#  5. trains a short run uninterrupted (the reference), then the same run in a container stopped in
#     the middle with docker stop (SIGTERM): last.ckpt on the host must load and belong to the host
#     user; docker compose up (CPU override) resumes it, and the per-step losses and per-epoch test
#     losses must equal the reference's exactly;
#  6. runs the compose sample service and checks the PNG;
#  7. SIGKILL: docker kill in the middle, compose up again: it resumes from the last good checkpoint
#     and ends equal to the reference; then a SIGKILL of the process alone (a crash), after which the
#     restart policy restarts the container by itself;
#  8. docker compose config of the GPU file; image sizes; wall time.
#
# Environment:
#   ESVAE_DOCKER_KEEP=1     keep the images it built (base images and esvae; reruns then take minutes)
#   ESVAE_DOCKER_CUDA=1     also build the CUDA variant (about 4.5 GB more download; +15 minutes) and
#                           check with ldd inside it that libtorch_cuda.so and its CUDA libraries resolve
#   ESVAE_DEBIAN_MIRROR=URL Debian mirror for debootstrap (default http://deb.debian.org/debian)
#   ESVAE_DOCKER_IMAGE=IMG  test this CPU image instead of building one (steps 2 and 3 skipped)
#   ESVAE_TEST_UID/GID      the host user the containers run as (default: the sudo caller, else 1000)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
T0=$(date +%s)
say() { printf '[docker-test %4ds] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }
fail() { printf '[docker-test %4ds] FAIL: %s\n' "$(( $(date +%s) - T0 ))" "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "run as root (it installs and drives the Docker engine): sudo make docker-test"
command -v python3 >/dev/null || fail "python3 is missing"
command -v go >/dev/null || fail "go is missing (the local build image takes its toolchain from the Go module proxy through it)"

KEEP=${ESVAE_DOCKER_KEEP:-0}
MIRROR=${ESVAE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
TUID=${ESVAE_TEST_UID:-${SUDO_UID:-1000}}
TGID=${ESVAE_TEST_GID:-${SUDO_GID:-$TUID}}
[ "$TUID" != 0 ] || fail "ESVAE_TEST_UID=0: the test checks that the containers do not write as root; use a non-root UID"
BASE_DEBIAN=esvae-test/debian:bookworm-slim
BASE_GO=esvae-test/golang:bookworm
IMG=esvae-test/esvae:cpu
IMG_CUDA=esvae-test/esvae:cuda
PROJ=esvaetest$$
TMP=$(mktemp -d /tmp/esvae-docker-test.XXXXXX)
RUNS=$TMP/runs
CREATED_IMAGES=()
DC=()

cleanup() {
  local rc=$?
  set +e
  if [ ${#DC[@]} -gt 0 ]; then "${DC[@]}" down --remove-orphans >/dev/null 2>&1; fi
  for c in "$PROJ-ref" "$PROJ-term" "$PROJ-chk"; do docker rm -f "$c" >/dev/null 2>&1; done
  if [ "$KEEP" != 1 ]; then
    for i in "${CREATED_IMAGES[@]}"; do docker rmi -f "$i" >/dev/null 2>&1; done
    # The build stages: the classic builder leaves each multi-stage build's first stage as an
    # untagged image (3 GB for CPU, 11 GB for CUDA); remove those that were not there before.
    if [ -n "${PRE_DANGLING+x}" ]; then
      comm -13 <(printf '%s\n' "$PRE_DANGLING") <(docker images -q -f dangling=true | sort -u) | xargs -r docker rmi -f >/dev/null 2>&1
    fi
    [ ${#CREATED_IMAGES[@]} -gt 0 ] && say "removed the images it built (ESVAE_DOCKER_KEEP=1 keeps them)"
  fi
  rm -rf "$TMP"
  say "wall time $(( $(date +%s) - T0 )) s"
  if [ $rc -eq 0 ]; then say "PASS"; else say "FAILED (exit $rc)"; fi
}
trap cleanup EXIT

# --- 1. engine ---------------------------------------------------------------------------------------
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
if ! command -v docker-compose >/dev/null && ! { command -v docker >/dev/null && docker compose version >/dev/null 2>&1; }; then need+=(docker-compose); fi
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]} from the distribution's packages"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
  say "starting dockerd in the background (log: /var/log/esvae-dockerd.log); it is left running"
  setsid dockerd >/var/log/esvae-dockerd.log 2>&1 < /dev/null &
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || fail "dockerd did not come up; see /var/log/esvae-dockerd.log"
fi
if docker compose version >/dev/null 2>&1; then COMPOSE=(docker compose); else COMPOSE=(docker-compose); fi
PRE_DANGLING=$(docker images -q -f dangling=true | sort -u)
say "engine: $(docker version -f 'server {{.Server.Version}}' 2>/dev/null), $(docker info -f 'storage {{.Driver}}, cgroup v{{.CgroupVersion}}' 2>/dev/null); compose: ${COMPOSE[*]} $("${COMPOSE[@]}" version --short 2>/dev/null || true)"

# --- 2. local base images ----------------------------------------------------------------------------
if [ -n "${ESVAE_DOCKER_IMAGE:-}" ]; then
  IMG=$ESVAE_DOCKER_IMAGE
  say "ESVAE_DOCKER_IMAGE=$IMG: testing that CPU image; no base images, no build"
else
GOVER=$(go env GOVERSION)
MODGO=$(sed -n 's/^go \([0-9.]*\)$/\1/p' go.mod)
if [ "$(printf '%s\n%s\n' "go$MODGO" "$GOVER" | sort -V | head -n1)" != "go$MODGO" ]; then GOVER=go$MODGO; fi
if docker image inspect "$BASE_DEBIAN" "$BASE_GO" >/dev/null 2>&1; then
  say "local base images $BASE_DEBIAN and $BASE_GO exist; using them"
else
  say "debootstrap --variant=minbase bookworm from $MIRROR"
  rootfs=$TMP/rootfs
  debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" > "$TMP/debootstrap.log" 2>&1 || { tail -n 20 "$TMP/debootstrap.log"; fail "debootstrap failed"; }
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  mkdir -p "$rootfs/etc/ssl"
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/local-ca.pem"
  envs=(-c 'ENV SSL_CERT_FILE=/etc/ssl/local-ca.pem' -c 'ENV PIP_CERT=/etc/ssl/local-ca.pem' -c 'CMD ["bash"]')
  tar -C "$rootfs" -c . | docker import "${envs[@]}" -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$BASE_DEBIAN" >/dev/null
  CREATED_IMAGES+=("$BASE_DEBIAN")
  say "Go toolchain $GOVER from the Go module proxy (module golang.org/toolchain)"
  gomod=$(cd "$TMP" && GOFLAGS=-mod=mod go mod download -json "golang.org/toolchain@v0.0.1-$GOVER.linux-amd64") || fail "downloading the Go toolchain $GOVER failed"
  godir=$(printf '%s\n' "$gomod" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -x "$godir/bin/go" ] || [ -f "$godir/bin/go" ] || fail "the toolchain module has no bin/go ($godir)"
  cp -r "$godir" "$rootfs/usr/local/go"
  chmod -R u+w,a+rX "$rootfs/usr/local/go" && chmod a+x "$rootfs"/usr/local/go/bin/* "$rootfs"/usr/local/go/pkg/tool/*/*
  tar -C "$rootfs" -c . | docker import "${envs[@]}" -c 'ENV PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV GOTOOLCHAIN=local' - "$BASE_GO" >/dev/null
  CREATED_IMAGES+=("$BASE_GO")
  rm -rf "$rootfs"
  say "base images: $BASE_DEBIAN, $BASE_GO ($(docker run --rm "$BASE_GO" go version))"
fi

# --- 3. build, and rebuild after a one-line change ----------------------------------------------------
BUILD_ARGS=(--build-arg "BUILD_IMAGE=$BASE_GO" --build-arg "RUNTIME_IMAGE=$BASE_DEBIAN")
say "building the CPU variant: docker build --build-arg VARIANT=cpu (log: $TMP/build.log while it runs)"
t=$(date +%s)
docker build --force-rm "${BUILD_ARGS[@]}" --build-arg VARIANT=cpu -t "$IMG" . > "$TMP/build.log" 2>&1 || { tail -n 40 "$TMP/build.log"; fail "docker build (cpu) failed"; }
CREATED_IMAGES+=("$IMG")
say "built $IMG in $(( $(date +%s) - t )) s"

say "rebuild after a one-line change to cmd/esvae/main.go (in a copy of the sources)"
ctx=$TMP/context
mkdir -p "$ctx"
git ls-files -z --cached --others --exclude-standard | xargs -0 tar -c --ignore-failed-read -f - 2>/dev/null | tar -C "$ctx" -xf -
echo "// docker-test: a one-line change" >> "$ctx/cmd/esvae/main.go"
t=$(date +%s)
docker build --force-rm "${BUILD_ARGS[@]}" --build-arg VARIANT=cpu -t "$IMG-rebuild" "$ctx" > "$TMP/rebuild.log" 2>&1 || { tail -n 40 "$TMP/rebuild.log"; fail "the rebuild failed"; }
REBUILD_S=$(( $(date +%s) - t ))
CREATED_IMAGES+=("$IMG-rebuild")
grep -q 'setup: downloading' "$TMP/rebuild.log" && fail "the rebuild downloaded libtorch again: the layer order does not hold"
say "rebuild after a one-line .go change: $REBUILD_S s (set-up and the cgo packages from the cache)"
docker rmi "$IMG-rebuild" >/dev/null
rm -rf "$ctx"
fi

# --- 4. esvae info, and a GPU asked for where there is none -------------------------------------------
info=$(docker run --rm "$IMG" info)
printf '%s\n' "$info" | sed 's/^/    /'
printf '%s\n' "$info" | grep -q '^CUDA build: no (CPU build)' || fail "esvae info does not report the CPU build"
printf '%s\n' "$info" | grep -q '^CUDA: not available: this esvae is a CPU build' || fail "esvae info does not say plainly why there is no GPU"
if out=$(docker run --rm "$IMG" train --config configs/demo.yaml --device cuda --max-steps 1 --out /tmp/x 2>&1); then
  fail "train --device cuda succeeded without a GPU"
fi
msg=$(printf '%s\n' "$out" | grep -o 'device cuda: no GPU: [^"]*' | head -n1)
[ -n "$msg" ] || { printf '%s\n' "$out" | tail -n 5; fail "train --device cuda without a GPU did not say so plainly"; }
say "train --device cuda without a GPU: $msg"

# --- 5. train, SIGTERM, resume with compose, compare with an uninterrupted run -------------------------
mkdir -p "$RUNS"
write_config() { # $1 = file, $2 = out
  cat > "$1" <<YAML
# docker-test: a short ESVAE run on real MNIST (2 epochs of 30 steps), a checkpoint every 5 steps.
data: {name: mnist, dir: "", batch_size: 16, workers: 1, train_limit: 480, test_limit: 64}
model: {kind: esvae, in_channels: 1, latent_dim: 16, timesteps: 4, large: false, mmd_weight: 0.001, readout_decay: 0.8,
        lif: {tau: 0.25, v_th: 0.2, a: 0.5, centered: false}}
optim: {lr: 0.0006, sample_layer_lr_mult: 10, beta1: 0.9, beta2: 0.999, eps: 1.0e-8, weight_decay: 0.001}
epochs: 2
max_steps: 0
seed: 7
out: $2
keep: 1
save_every: 5
samples: 16
log_every: 5
device: cpu
YAML
}
write_config "$RUNS/dt.yaml" runs/dt
write_config "$RUNS/kill.yaml" runs/kill
chown -R "$TUID:$TGID" "$RUNS"
TOTAL=60
RUN=(docker run --user "$TUID:$TGID" -v "$RUNS:/app/runs")

say "reference: the same run uninterrupted in a container"
t=$(date +%s)
"${RUN[@]}" --name "$PROJ-ref" "$IMG" train --config runs/dt.yaml --out runs/ref --device cpu > "$TMP/ref.log" 2>&1 || { tail -n 20 "$TMP/ref.log"; fail "the reference run failed"; }
REF_S=$(( $(date +%s) - t ))
docker rm "$PROJ-ref" >/dev/null
say "reference: $TOTAL steps in $REF_S s"

# heartbeat NAME: the step of the running container's training ($ESVAE_HEARTBEAT), 0 before the first.
heartbeat() { docker exec "$1" sh -c 'cat "$ESVAE_HEARTBEAT" 2>/dev/null || echo 0' 2>/dev/null | tr -dc 0-9 || true; }
wait_step() { # NAME STEP: wait until the container's training has passed STEP
  local s end=$(( $(date +%s) + 600 ))
  while [ "$(date +%s)" -lt "$end" ]; do
    s=$(heartbeat "$1"); s=${s:-0}
    [ "$s" -ge "$2" ] && { printf '%s' "$s"; return 0; }
    [ "$(docker inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" = true ] || fail "container $1 stopped before step $2"
    sleep 0.2
  done
  fail "container $1 did not reach step $2 in 10 minutes"
}
# resumed_step LOGFILE: the step of the first "resuming" line (JSON or console log format); a finished
# run's container is restarted by the policy and logs "resuming" at the last step again.
resumed_step() { grep 'resuming' "$1" | head -n1 | sed -n 's/.*"step":\([0-9]*\).*/\1/p; s/.*step=\([0-9]*\).*/\1/p' | head -n1; }
check_owner() { # FILE
  local o; o=$(stat -c '%u:%g' "$1")
  [ "$o" = "$TUID:$TGID" ] || fail "$1 belongs to $o, not to the host user $TUID:$TGID"
}
check_ckpt() { # RUNDIR (in the container): last.ckpt loads (checksum verified) and gives a grid
  "${RUN[@]}" --rm --name "$PROJ-chk" "$IMG" sample --checkpoint "runs/$1/last.ckpt" --n 4 --out "runs/$1/check.png" > "$TMP/check.log" 2>&1 \
    || { tail -n 5 "$TMP/check.log"; fail "runs/$1/last.ckpt does not load"; }
}
compare() { # RUNDIR: per-step losses and per-epoch test losses equal to the reference's
  python3 - "$RUNS/ref" "$RUNS/$1" "$TOTAL" <<'PY' || fail "runs/$1 differs from the uninterrupted reference"
import json, sys
ref, run, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
def steps(d):
    m = {}
    for line in open(d + "/steps.csv").read().splitlines()[1:]:
        s, l = line.split(",")
        m[int(s)] = l          # a step run again after a crash: the later line wins
    return m
def epochs(d):
    out = []
    for line in open(d + "/metrics.jsonl"):
        r = json.loads(line)
        if r.get("split") == "test":   # a resumed epoch's train record covers only its own steps
            out.append({k: v for k, v in r.items() if k in ("epoch", "step", "loss", "mse", "mmd", "mean_r_q", "mean_r_p")})
    return out
a, b = steps(ref), steps(run)
assert sorted(a) == list(range(1, total + 1)), f"reference steps: {sorted(a)[:3]}...{len(a)}"
assert a == b, "per-step losses differ: " + str([(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)][:5])
ea, eb = epochs(ref), epochs(run)
assert ea and ea == eb, f"per-epoch records differ:\n{ea}\n{eb}"
print(f"    {len(a)} per-step losses and {len(ea)} per-epoch test records equal to the reference's (exact)")
PY
}

say "train in a container, docker stop (SIGTERM) in the middle"
"${RUN[@]}" -d --name "$PROJ-term" "$IMG" train --config runs/dt.yaml --resume auto --device cpu >/dev/null
s=$(wait_step "$PROJ-term" 12)
docker stop -t 120 "$PROJ-term" >/dev/null
docker logs "$PROJ-term" > "$TMP/term.log" 2>&1
code=$(docker inspect -f '{{.State.ExitCode}}' "$PROJ-term")
docker rm "$PROJ-term" >/dev/null
[ "$code" = 0 ] || { tail -n 10 "$TMP/term.log"; fail "docker stop: exit code $code, not 0"; }
grep -q 'interrupted: saved, exiting' "$TMP/term.log" || fail "no 'interrupted: saved' in the log after SIGTERM"
[ -f "$RUNS/dt/last.ckpt" ] || fail "no runs/dt/last.ckpt after SIGTERM"
check_owner "$RUNS/dt/last.ckpt"; check_owner "$RUNS/dt"
check_ckpt dt
say "SIGTERM at step >= $s: exit 0, runs/dt/last.ckpt loads, owned by $(stat -c '%u:%g' "$RUNS/dt/last.ckpt")"

export ESVAE_IMAGE=$IMG ESVAE_RUNS=$RUNS ESVAE_DATA=$TMP/data
mkdir -p "$TMP/data"
# UID is a read-only shell variable of bash: env passes it (and GID) to compose.
DC=(env "UID=$TUID" "GID=$TGID" "${COMPOSE[@]}" -p "$PROJ" -f docker-compose.yml -f docker-compose.cpu.yml)
# compose_train: docker compose up (CPU override) of the service train-cpu with runs/CONFIG.yaml
compose_train() { # CONFIG [compose up flags]
  local c=$1; shift
  ESVAE_CONFIG=runs/$c.yaml "${DC[@]}" up -d --no-build "$@" train-cpu > "$TMP/up.log" 2>&1 || { cat "$TMP/up.log"; fail "docker compose up failed"; }
}
wait_done() { # RUNDIR LOG: until steps.csv holds step TOTAL and the container logged the end of training
  local cid end=$(( $(date +%s) + 900 )); cid=$("${DC[@]}" ps -q train-cpu)
  while [ "$(date +%s)" -lt "$end" ]; do
    docker logs "$cid" > "$2" 2>&1 || true
    if grep -q 'training stopped' "$2" && [ -f "$RUNS/$1/steps.csv" ] && grep -q "^$TOTAL," "$RUNS/$1/steps.csv"; then return 0; fi
    sleep 0.5
  done
  fail "the compose run of runs/$1 did not complete in 15 minutes"
}
say "docker compose up (CPU override) resumes it"
compose_train dt
wait_done dt "$TMP/resume.log"
"${DC[@]}" stop -t 120 train-cpu >/dev/null 2>&1
r=$(resumed_step "$TMP/resume.log")
[ -n "$r" ] && [ "$r" -ge 12 ] && [ "$r" -lt "$TOTAL" ] || fail "the compose run did not resume from the SIGTERM checkpoint (resumed at '${r}')"
compare dt
check_owner "$RUNS/dt/steps.csv"; check_owner "$RUNS/dt/last.ckpt"
say "resumed at step $r, completed $TOTAL steps, equal to the uninterrupted run"

# --- 6. sample service ----------------------------------------------------------------------------------
say "docker compose --profile sample run sample"
"${DC[@]}" --profile sample run --rm --no-deps sample > "$TMP/sample.log" 2>&1 || { tail -n 10 "$TMP/sample.log"; fail "the sample service failed"; }
png=$RUNS/dt/samples.png
[ -f "$png" ] || fail "the sample service wrote no runs/dt/samples.png (newest checkpoint)"
check_owner "$png"
python3 - "$png" <<'PY' || fail "runs/dt/samples.png is not a valid PNG grid"
import struct, sys, zlib
b = open(sys.argv[1], "rb").read()
assert b[:8] == b"\x89PNG\r\n\x1a\n", "no PNG signature"
w, h = struct.unpack(">II", b[16:24])
assert b[12:16] == b"IHDR" and w >= 8 * 32 and h >= 16 * 32, f"IHDR {w}x{h}: not a 128-image grid of 32x32 images"
i, idat = 8, b""
while i < len(b):
    n, = struct.unpack(">I", b[i:i+4]); t = b[i+4:i+8]
    if t == b"IDAT": idat += b[i+8:i+8+n]
    i += 12 + n
raw = zlib.decompress(idat)
assert len(set(raw)) > 16, "the image is (nearly) uniform"
print(f"    samples.png: {w}x{h}, {len(b)} bytes")
PY

say "docker compose --profile eval run eval-cpu --metrics mse --limit 64"
"${DC[@]}" --profile eval run --rm --no-deps eval-cpu --metrics mse --limit 64 --device cpu > "$TMP/eval.log" 2>&1 || { tail -n 10 "$TMP/eval.log"; fail "the eval service failed"; }
[ -f "$RUNS/dt/eval/report.json" ] || fail "the eval service wrote no runs/dt/eval/report.json"
check_owner "$RUNS/dt/eval/report.json"
say "eval service: runs/dt/eval/report.json written"

# --- 7. SIGKILL ----------------------------------------------------------------------------------------
say "SIGKILL: docker compose up a fresh run, docker kill it in the middle, compose up again"
compose_train kill
cid=$("${DC[@]}" ps -q train-cpu)
s=$(wait_step "$cid" 17)
docker kill "$cid" >/dev/null
code=$(docker inspect -f '{{.State.ExitCode}}' "$cid")
saved=$(ls "$RUNS/kill" | sed -n 's/^step-0*\([0-9][0-9]*\)\.ckpt$/\1/p' | sort -n | tail -n1)
say "killed at step >= $s (exit code $code); newest step checkpoint on the host: ${saved:-none}"
[ -f "$RUNS/kill/last.ckpt" ] || fail "no last.ckpt after SIGKILL"
check_ckpt kill
compose_train kill
wait_done kill "$TMP/kill.log"
r=$(resumed_step "$TMP/kill.log")
[ -n "$r" ] && [ "$r" = "$saved" ] && [ "$r" -ge 15 ] || fail "after SIGKILL the run did not resume from the last good checkpoint (resumed at '${r}', newest checkpoint step '${saved}')"
compare kill
say "after SIGKILL: resumed from the last good checkpoint (step $r), completed, equal to the uninterrupted run"

say "crash: SIGKILL to the training process alone; the restart policy (unless-stopped) restarts the container"
"${DC[@]}" stop -t 120 train-cpu >/dev/null 2>&1
rm -rf "$RUNS/kill"
compose_train kill --force-recreate
cid=$("${DC[@]}" ps -q train-cpu)
s=$(wait_step "$cid" 17)
kill -KILL "$(docker inspect -f '{{.State.Pid}}' "$cid")"
saved=$(ls "$RUNS/kill" | sed -n 's/^step-0*\([0-9][0-9]*\)\.ckpt$/\1/p' | sort -n | tail -n1)
for _ in $(seq 300); do
  [ "$(docker inspect -f '{{.RestartCount}}' "$cid")" -ge 1 ] && break; sleep 0.2
done
[ "$(docker inspect -f '{{.RestartCount}}' "$cid")" -ge 1 ] || fail "the container was not restarted after the crash"
wait_done kill "$TMP/crash.log"
r=$(resumed_step "$TMP/crash.log")
[ -n "$r" ] && [ "$r" = "$saved" ] && [ "$r" -ge 15 ] || fail "after the crash the run did not resume from the last good checkpoint (resumed at '${r}', newest checkpoint step '${saved}')"
compare kill
say "crash at step >= $s: restarted by Docker, resumed at step $r, equal to the uninterrupted run"
"${DC[@]}" down >/dev/null 2>&1

# --- 8. the GPU file, the CUDA variant, sizes -------------------------------------------------------------
gpu=$(ESVAE_CONFIG=configs/mnist.yaml "${COMPOSE[@]}" -f docker-compose.yml config) || fail "docker compose config (GPU file) failed"
printf '%s\n' "$gpu" | grep -q 'driver: nvidia' && printf '%s\n' "$gpu" | grep -q -- '- gpu' || fail "the GPU file's train service reserves no GPU"
say "docker compose -f docker-compose.yml config: valid; train reserves a GPU (driver nvidia, capabilities [gpu])"
if [ "${ESVAE_DOCKER_CUDA:-0}" = 1 ]; then
  say "building the CUDA variant (default VARIANT)"
  t=$(date +%s)
  docker build --force-rm "${BUILD_ARGS[@]}" -t "$IMG_CUDA" . > "$TMP/build-cuda.log" 2>&1 || { tail -n 40 "$TMP/build-cuda.log"; fail "docker build (cuda) failed"; }
  CREATED_IMAGES+=("$IMG_CUDA")
  say "built $IMG_CUDA in $(( $(date +%s) - t )) s"
  docker run --rm --entrypoint sh "$IMG_CUDA" -c 'lt=$(dirname "$(ls /opt/esvae/libtorch-*/torch/lib/libtorch_cuda.so)"); ldd "$lt/libtorch_cuda.so" | grep -E "libtorch_cuda|libcudart|libcublas|libcudnn|not found"; ! ldd "$lt/libtorch_cuda.so" /usr/local/bin/esvae | grep -q "not found"' \
    || fail "ldd in the CUDA image: a library does not resolve"
  docker run --rm "$IMG_CUDA" info | sed 's/^/    /'
fi
for i in "$IMG" "$IMG_CUDA"; do
  if docker image inspect "$i" >/dev/null 2>&1; then
    say "image $i: $(docker image inspect -f '{{.Size}}' "$i" | awk '{printf "%.2f GB", $1/1e9}')"
  fi
done
