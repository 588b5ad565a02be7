# coid: see README.md. Every target works on a fresh machine with Go installed.
GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
FUZZTIME ?= 10s

.PHONY: build run test bench lint fuzz clean

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/coid ./cmd/coid

# RUN_FLAGS adds serve flags, e.g. RUN_FLAGS="--mqtt-url tcp://127.0.0.1:1883" when
# another MQTT broker already holds port 1883.
RUN_FLAGS ?=
run: build
	./bin/coid serve --data ./data --http 127.0.0.1:8080 $(RUN_FLAGS)

test:
	$(GO) test -race -count=1 ./...

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
