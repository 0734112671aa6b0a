GO ?= go
BIN := bin/clustertx

.PHONY: build test demo bench lint deps clean

build:
	$(GO) build -o $(BIN) .

deps:
	@bash scripts/deps.sh

# Real ffmpeg on generated clips and real sshd hosts on loopback ports.
test: deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 15m ./...

# Two throwaway sshd hosts (mounted + streaming) plus the local host.
demo: deps build
	@bash scripts/demo.sh $(BIN)

bench: deps
	$(GO) test -run '^$$' -bench . -benchtime 1x ./...

# The model-based test (e2e/model_test.go) longer than in `make test`: many
# seeds (new ones each time unless STRESS_SEED is given; a failure prints the
# seed to replay), longer sequences, and a real-sshd streaming host that may
# die mid-run.
STRESS_SEED ?= $(shell date +%s)
STRESS_SEEDS ?= 20
STRESS_STEPS ?= 40
.PHONY: stress
stress: deps
	$(GO) test -count=1 -timeout 120m -run '^TestModel$$' -v ./e2e -args \
		-seed $(STRESS_SEED) -seeds $(STRESS_SEEDS) -steps $(STRESS_STEPS) -sshd

lint:
	@test -z "$$(gofmt -l . | tee /dev/stderr)" || (echo "gofmt: files above need formatting" >&2; exit 1)
	$(GO) vet ./...

clean:
	rm -rf bin
