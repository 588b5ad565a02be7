# coid: see README.md. build and run need only Go; test also needs a C
# compiler (the race detector needs cgo): apt-get install gcc libc6-dev.
GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
FUZZTIME ?= 10s

.PHONY: build run test bench lint fuzz clean

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/coid ./cmd/coid

# RUN_FLAGS adds serve flags, e.g. RUN_FLAGS="--mqtt-url tcp://127.0.0.1:1883" when
# another MQTT broker already holds port 1883, or RUN_FLAGS="--http 127.0.0.1:8081".
# serve's own defaults (--data ./data, --http 127.0.0.1:8080) apply, so COID_DATA,
# COID_HTTP and the other COID_* variables are honoured.
RUN_FLAGS ?=
run: build
	./bin/coid serve $(RUN_FLAGS)

# RACE= runs the tests without the race detector (and without cgo).
RACE ?= -race
test:
	@if [ -n "$(RACE)" ]; then \
	  cc=$$(CGO_ENABLED=1 $(GO) env CC); \
	  if ! command -v "$${cc%% *}" >/dev/null 2>&1; then \
	    echo "make test runs the race detector, which needs cgo and a C compiler ($$cc), not found:"; \
	    echo "  install one (Debian/Ubuntu: apt-get install gcc libc6-dev), or run without it: make test RACE="; \
	    exit 1; fi; fi
	CGO_ENABLED=$(if $(RACE),1,0) $(GO) test $(RACE) -count=1 -timeout 30m ./...

# Benchmarks on this machine; the README records the figures.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 -timeout 30m ./... | tee bench.out

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

# A short run of every fuzz target (go test -fuzz takes one target at a time).
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; done

clean:
	rm -rf bin bench.out
