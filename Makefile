# keel — common tasks. `make test` is what CI runs (.ci/run).
GO      ?= go
BIN     ?= bin/proxy
BENCH   ?= ../shared/bench

.PHONY: build test test-deps test-short bench bench-peers fuzz vet demo clean

build:
	$(GO) build -o $(BIN) ./cmd/proxy

demo:
	$(GO) run ./cmd/proxy demo

vet:
	$(GO) vet ./...

# Every test: unit tests of every package and the end-to-end tests that
# build and run the real binary, all under the race detector. The
# end-to-end package runs on its own so its load tests do not compete for
# the two cores with the unit tests.
test: test-deps vet
	$(GO) test -race -count=1 -timeout 10m $$($(GO) list ./... | grep -v /test/e2e)
	$(GO) test -race -count=1 -timeout 10m ./test/e2e/

# Installs what the tests need when missing (Chromium, redis-server, pebble).
test-deps:
	./scripts/test-deps.sh

test-short:
	$(GO) test -count=1 -short ./...

# Go benchmarks of the hot path (router, forwarding, access log).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 1s ./internal/router/ ./internal/proxy/ ./internal/obs/ ./internal/upstream/ ./internal/server/h1/
	$(GO) test -run '^$$' -bench 'Apply10000|Validate10000' -benchmem -benchtime 5x ./internal/control/
	$(GO) test -run '^$$' -bench . -benchmem ./internal/resilience/ ./internal/traffic/ ./internal/overload/ ./internal/ratelimit/ ./internal/auth/ ./internal/tracing/
	$(GO) test -run '^$$' -bench 'HedgingTail' -benchtime 2000x ./internal/proxy/
	$(GO) test -run '^$$' -bench . -benchmem ./internal/certs/ ./internal/proxyproto/ ./internal/server/h2/

# Side-by-side comparison with nginx, HAProxy, Caddy and plain Go proxies
# (../shared/bench; takes ~10 minutes and needs an otherwise idle machine).
bench-peers: build
	$(BENCH)/setup.sh
	PROXY_BIN=$(abspath $(BIN)) $(BENCH)/run.sh

# A short run of every fuzz target.
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 20s ./internal/config/
	$(GO) test -run '^$$' -fuzz FuzzNormalize -fuzztime 20s ./internal/router/
	$(GO) test -run '^$$' -fuzz FuzzMatch -fuzztime 20s ./internal/router/
	$(GO) test -run '^$$' -fuzz FuzzReadRequest -fuzztime 20s ./internal/server/h1/
	$(GO) test -run '^$$' -fuzz FuzzScanJSON -fuzztime 20s ./internal/config/
	$(GO) test -run '^$$' -fuzz FuzzCanonical -fuzztime 20s ./internal/config/
	$(GO) test -run '^$$' -fuzz FuzzSWAR -fuzztime 20s ./internal/router/
	$(GO) test -run '^$$' -fuzz FuzzVerify -fuzztime 20s ./internal/audit/
	$(GO) test -run '^$$' -fuzz FuzzCtlYAMLToJSON -fuzztime 20s ./internal/ctl/
	$(GO) test -run '^$$' -fuzz FuzzAccept -fuzztime 20s ./internal/proxyproto/
	$(GO) test -run '^$$' -fuzz FuzzServeConn -fuzztime 20s ./internal/server/h2/

clean:
	rm -rf bin
