# campaignd — build, test, lint, bench, demo.
# A clean machine needs only Go 1.26, gcc and git: every tool below is
# installed at a pinned version into bin/tools by this Makefile.

GO          ?= go
BIN         := $(CURDIR)/bin
TOOLS       := $(BIN)/tools
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT      ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS     := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)

MAILPIT_VERSION     := v1.33.1
STATICCHECK_VERSION := v0.8.2
BUF_VERSION         := v1.75.0
PROTOC_GEN_GO       := v1.36.12
PROTOC_GEN_GO_GRPC  := v1.6.0

PLUGINS := smtp outbox sendgrid

export CGO_ENABLED := 1

.PHONY: all build tools chromium test lint bench demo proto clean chaos load fuzz dist

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/campaignd ./cmd/campaignd
	@for p in $(PLUGINS); do \
		$(GO) build -trimpath -ldflags '-s -w' -o $(BIN)/campaignd-sender-$$p ./plugins/$$p || exit 1; \
	done

$(TOOLS)/mailpit:
	GOBIN=$(TOOLS) $(GO) install github.com/axllent/mailpit@$(MAILPIT_VERSION)

$(TOOLS)/staticcheck:
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

tools: $(TOOLS)/mailpit

# The whole suite: unit, integration and end-to-end tests (the built binaries
# against mailpit and in-process SMTP and SendGrid servers, the fault, security
# and short chaos suites), then a short run of every fuzz target.
# The dashboard's browser test drives Debian's chromium. As root (CI runs
# as root on Debian) a missing one is installed; otherwise the test fails
# saying what is missing, never skipping.
CHROMIUM ?= /usr/bin/chromium
chromium:
	@if [ ! -x $(CHROMIUM) ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium for the dashboard's browser test"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y chromium || \
		{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }; \
	fi

test: build tools chromium
	CAMPAIGND_BIN_DIR=$(BIN) MAILPIT=$(TOOLS)/mailpit $(GO) test -count=1 -timeout 30m ./...
	CAMPAIGND_BIN_DIR=$(BIN) FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

FUZZTIME ?= 3s

# Longer fuzzing: make fuzz FUZZTIME=5m
fuzz: build
	CAMPAIGND_BIN_DIR=$(BIN) FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

# Opt-in long suites; each writes its section of BENCHMARKS.md.
# chaos: kill -9 of ticks, daemon and plugin at random for CAMPAIGND_CHAOS_DURATION (default 10m).
chaos: build
	CAMPAIGND_BIN_DIR=$(BIN) ./scripts/chaos.sh
# load: a 1,000,000-recipient campaign through the daemon to completion.
load: build
	CAMPAIGND_BIN_DIR=$(BIN) ./scripts/load.sh

lint: $(TOOLS)/staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(TOOLS)/staticcheck ./...

# Benchmarks of the design's target numbers; writes BENCHMARKS.md.
bench: build
	CAMPAIGND_BIN_DIR=$(BIN) ./scripts/bench.sh BENCHMARKS.md

# Quick start: a whole campaign end to end on the embedded default (SQLite
# file + the outbox plugin), no mail server needed.
demo: build
	./scripts/demo.sh $(BIN)

# Release tarball: dist/campaignd-VERSION-linux-amd64.tar.gz (+ .sha256) of
# the binaries make build stamped, the example config, deploy/ and the
# README, with SHA256SUMS inside. make dist VERSION=v1.2.0
dist: build
	CAMPAIGND_BIN_DIR=$(BIN) ./scripts/dist.sh $(CURDIR)/dist

proto:
	GOBIN=$(TOOLS) $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
	GOBIN=$(TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO)
	GOBIN=$(TOOLS) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC)
	cd sdk/plugin/internal/pb && $(TOOLS)/buf lint && $(TOOLS)/buf generate

clean:
	rm -rf $(BIN) dist
