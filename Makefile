# The two commands a newcomer runs: `make demo` (main job) and `make test` (the tests).
# Both run the set-up first (idempotent; it installs libtorch 2.1.0 on first use).
GO ?= go
BIN := bin/esvae
DEMO_FLAGS ?=

.PHONY: setup build test vet demo bench clean docker-test gpu-bundle kernel-report

setup:
	@bash scripts/setup.sh

build: setup
	$(GO) build -o $(BIN) ./cmd/esvae

vet: setup
	$(GO) vet ./...

# The tests also compile the fused CUDA kernels to CUBIN with the NVRTC of both pinned torch versions
# (no GPU needed): scripts/nvrtc-wheels.sh installs them into the set-up's cache. esvae serve's page is
# tested in a real browser: scripts/browser-setup.sh installs Debian's chromium when it is missing.
test: setup
	@bash scripts/nvrtc-wheels.sh >/dev/null
	@bash scripts/browser-setup.sh
	$(GO) vet ./...
	$(GO) test -timeout 45m ./...

demo: build
	./$(BIN) train --config configs/demo.yaml --resume auto $(DEMO_FLAGS)
	./$(BIN) sample --config configs/demo.yaml --checkpoint runs/demo/last.ckpt --n 128 --out runs/demo/samples.png

# The Docker set-up end to end against a real engine (needs root; installs Docker if missing; ~15 min).
docker-test:
	bash scripts/docker-test.sh

# Training and sampling speed against the PyTorch reference on this machine (MNIST-size, batch 32;
# BENCH_FLAGS="--batch 64", "--large", ...). The reference's Python venv is created on first use.
BENCH_FLAGS ?=
bench: build
	./$(BIN) bench --config configs/mnist.yaml --reference --steps 8 --ref-steps 3 $(BENCH_FLAGS)

# What a GPU machine lent for minutes needs (docs/gpu.md): esvae built against torch 2.11.0, stripped and
# packed, and the full MNIST, into .gpu-bundle/; checks that it fits the 64 MiB a device command carries.
gpu-bundle:
	bash scripts/gpu-bundle.sh

# Registers and spills of the fused CUDA kernels compiled to CUBIN by both pinned NVRTC versions (no GPU).
kernel-report: setup
	@bash scripts/nvrtc-wheels.sh >/dev/null
	@$(GO) test ./internal/native -run 'TestCUDAKernelsCompileToCUBIN$$' -count=1 -v | sed -n 's/^ *cudakernels_compile_test.go:[0-9]*: //p; /^ *[|]/p'

clean:
	rm -rf bin .gotch go.work go.work.sum internal/native/zz_cgo_flags.go
