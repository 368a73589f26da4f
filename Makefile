# billsync — common tasks. `make run` starts billsync on the embedded defaults;
# `make test` runs the whole suite (Postgres at 127.0.0.1:5432 for the Postgres variants).
GO        ?= go
BIN       ?= bin/billsync
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
SHELL     := /bin/bash

.PHONY: run test build lint bench

run:
	$(GO) run ./cmd/billsync serve

# The summary (.ci/testsummary) prints what plain `go test` prints, then every
# skipped test with its reason and how to make it run.
test:
	@set -o pipefail; $(GO) test -count=1 -timeout 20m -json ./... | $(GO) run ./.ci/testsummary

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/billsync

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./... ./.ci/testsummary
	@GO=$(GO) bash .ci/govulncheck

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
