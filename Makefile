# copper — see README.md. `make demo` and `make test` are the two commands.
GO       ?= go
GOFLAGS  ?= -buildvcs=false
BIN      := bin
TIMEOUT  ?= 30m

.PHONY: all build test test-slurm vet fmt-check deps demo bench bench-quick memcheck fuzz soak clean

all: build

build:
	$(GO) build $(GOFLAGS) -o $(BIN)/ ./cmd/...

deps:
	@scripts/setup-test-deps.sh

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# Everything, including real FUSE mounts, real copper-node processes, MPI
# (MPICH) and a private single-host Slurm (slurmtest: installs slurm-wlm and
# munge, runs its own daemons under /tmp/copper-slurm, stops them after).
test: deps fmt-check vet build
	$(GO) test $(GOFLAGS) -count=1 -timeout $(TIMEOUT) ./...
	$(GO) test $(GOFLAGS) -count=1 -race -timeout $(TIMEOUT) $$($(GO) list ./... | grep -v -e /e2e -e /cmd/ -e /slurmtest -e /bench/)

# Only the real-Slurm test of copper-launch.
test-slurm: deps build
	$(GO) test $(GOFLAGS) -count=1 -v -timeout 5m ./slurmtest/

demo: deps build
	@scripts/demo.sh

bench: deps build
	@scripts/bench.sh full

bench-quick: deps build
	@scripts/bench.sh quick

# RSS of a real 2-node tree against its cache budget (issue #8); updates
# docs/BENCHMARKS.md's Memory section. MEMCHECK_* knobs: scripts/memcheck.sh.
memcheck: deps build
	@scripts/memcheck.sh

# Every fuzz target of the repository (found by grep), FUZZTIME each;
# fails when one finds a crasher.
FUZZTIME ?= 15s
fuzz:
	@FUZZTIME=$(FUZZTIME) GO=$(GO) scripts/fuzz.sh

# Faults under load (not part of make test): 8 real copper-node processes,
# readers checking sha256 on every mount, SIGKILL of an interior node and of
# the root, SIGSTOP of another; writes docs/RELIABILITY.md. SOAK=short for
# a quicker run (about 2 minutes instead of 5).
SOAK ?= full
soak: deps build
	COPPER_SOAK=$(SOAK) $(GO) test $(GOFLAGS) -count=1 -timeout 15m -run '^TestSoak$$' -v ./e2e/

clean:
	rm -rf $(BIN)
