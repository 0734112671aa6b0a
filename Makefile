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

lint:
	@test -z "$$(gofmt -l . | tee /dev/stderr)" || (echo "gofmt: files above need formatting" >&2; exit 1)
	$(GO) vet ./...

clean:
	rm -rf bin
