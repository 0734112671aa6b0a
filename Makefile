GO ?= go
BIN := bin/clustertx

.PHONY: build test race demo bench lint deps clean cross dist

build:
	$(GO) build -o $(BIN) .

deps:
	@bash scripts/deps.sh

# Real ffmpeg on generated clips and real sshd hosts on loopback ports.
test: deps cross race
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 15m ./...

# The race detector where it fits the time: the pure, concurrent packages
# whole, and the manager's tests where two copies of a job run at once
# (speculation, a prefetch taken over). The rest of the suite spends its
# time in ffmpeg, where -race buys nothing and costs minutes.
race:
	$(GO) test -race -count=1 -timeout 10m ./queue/ ./journal/ ./internal/... ./progress/ ./metrics/ ./notify/
	$(GO) test -race -count=1 -timeout 10m -run '^(TestSpeculativeCopyWins|TestIdleHostTakesAPrefetchedFile)$$' ./cluster/

# The manager must build on every platform it is released for.
PLATFORMS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64
cross:
	@for t in $(PLATFORMS); do echo "go build $$t"; \
		GOOS=$${t%/*} GOARCH=$${t#*/} CGO_ENABLED=0 $(GO) build -o /dev/null . || exit 1; done

# Release archives (.tar.gz, .zip for Windows) and SHA256SUMS in dist/.
dist:
	@GO=$(GO) bash scripts/dist.sh $(VERSION)

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
	rm -rf bin dist
