# The two commands a newcomer runs: `make demo` (main job) and `make test` (the tests).
# Both run the set-up first (idempotent; it installs libtorch 2.1.0 on first use).
GO ?= go
BIN := bin/esvae
DEMO_FLAGS ?=

.PHONY: setup build test vet demo bench clean docker-test

setup:
	@bash scripts/setup.sh

build: setup
	$(GO) build -o $(BIN) ./cmd/esvae

vet: setup
	$(GO) vet ./...

test: setup
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

clean:
	rm -rf bin .gotch go.work go.work.sum internal/native/zz_cgo_flags.go
