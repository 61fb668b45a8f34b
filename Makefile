# copper — see README.md. `make demo` and `make test` are the two commands.
GO       ?= go
# No VCS stamping: Go cannot stamp from a git worktree (its .git is a file)
# and fails the build where git refuses the checkout's owner. The commit
# reaches --version through VERSION (git describe) instead.
GOFLAGS  ?= -buildvcs=false
BIN      ?= bin
TIMEOUT  ?= 30m

# Release metadata: VERSION is stamped into every binary (--version) and
# names the module file and the dist tarball.
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
PREFIX   ?= /usr/local
DESTDIR  ?=
DIST     ?= dist
ARCH     := $(shell $(GO) env GOARCH)
# Empty: the toolchain's default (cgo where a C compiler is present).
# make dist sets 0 for static binaries.
CGO_ENABLED ?=
LDFLAGS  := -X github.com/hpc-copper/copper/internal/version.Version=$(VERSION)
SHARE    = $(DESTDIR)$(PREFIX)/share
PROGRAMS := copper-launch copper-node copper-report
# The module file's prefix in a release tarball: found from the module
# file's own path, so the tarball works wherever it is unpacked.
LUA_RELOCATABLE := (myFileName():gsub("/share/modulefiles/copper/[^/]*$$", ""))

.PHONY: all build test test-slurm vet fmt-check deps demo demo-multihost bench bench-quick bench-large bench-controlplane bench-model memcheck fuzz soak clean \
	install dist check-version check-prefix

all: build

build: check-version
	$(if $(CGO_ENABLED),CGO_ENABLED=$(CGO_ENABLED) )$(GO) build $(GOFLAGS) $(BUILDFLAGS) -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

# VERSION names files and goes into -ldflags and Lua: refuse what would
# break them (checked by make first, so no shell sees a stray quote).
check-version:
	$(if $(findstring ',$(VERSION))$(findstring ",$(VERSION))$(filter-out 1,$(words $(VERSION))),\
	  $(error VERSION '$(VERSION)': want letters, digits, '.', '_', '+' and '-' only (it names the module file and the tarball)))
	@case '$(VERSION)' in ''|*[!A-Za-z0-9._+-]*) \
	  echo "VERSION '$(VERSION)': want letters, digits, '.', '_', '+' and '-' only (it names the module file and the tarball)" >&2; exit 1;; esac

# PREFIX goes into the module file as a Lua string and into shell commands.
check-prefix:
	@:
	$(if $(filter-out 1,$(words $(PREFIX))),$(error PREFIX '$(PREFIX)': want one absolute path without spaces))
	$(if $(filter /%,$(PREFIX)),,$(error PREFIX '$(PREFIX)': want an absolute path))
	$(if $(findstring ',$(PREFIX))$(findstring ",$(PREFIX))$(findstring \,$(PREFIX)),\
	  $(error PREFIX '$(PREFIX)': no quotes or backslashes (it goes into the Lua module file)))

# $(DESTDIR)$(PREFIX)/bin: the three binaries; share/copper/{sites,examples};
# share/man/man1: man pages each binary writes from its flags and the
# settings table; share/modulefiles/copper/$(VERSION).lua for Lmod.
# Spack's packaging/spack/package.py runs this target.
install: check-prefix build
	install -d $(DESTDIR)$(PREFIX)/bin $(SHARE)/copper/sites $(SHARE)/man/man1 $(SHARE)/modulefiles/copper \
	  $(SHARE)/copper/examples/aurora_examples $(SHARE)/copper/examples/frontier_examples
	install -m 0755 $(addprefix $(BIN)/,$(PROGRAMS)) $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 config/sites/*.toml $(SHARE)/copper/sites/
	install -m 0644 examples/README.md $(SHARE)/copper/examples/
	install -m 0755 examples/aurora_examples/*.pbs $(SHARE)/copper/examples/aurora_examples/
	install -m 0755 examples/frontier_examples/*.sbatch $(SHARE)/copper/examples/frontier_examples/
	for p in $(PROGRAMS); do \
	  $(BIN)/$$p help man > $(SHARE)/man/man1/$$p.1.tmp && mv $(SHARE)/man/man1/$$p.1.tmp $(SHARE)/man/man1/$$p.1 || exit 1; \
	done
	sed -e 's|@VERSION@|$(VERSION)|g' \
	    -e 's|@PREFIX_LUA@|$(if $(RELOCATABLE),$(LUA_RELOCATABLE),"$(PREFIX)")|' \
	    packaging/lmod/copper.lua.in > $(SHARE)/modulefiles/copper/$(VERSION).lua

# dist/copper-$(VERSION)-linux-$(ARCH).tar.gz: static binaries (CGO_ENABLED=0)
# and the share/ tree of make install, with a relocatable module file;
# dist/SHA256SUMS covers every tarball in dist/. Reproducible: same
# tree and toolchain, same bytes (sorted entries, fixed owner and mtime,
# gzip -n, -trimpath).
DIST_NAME = copper-$(VERSION)-linux-$(ARCH)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
dist: check-version
	rm -rf $(DIST)/.stage $(DIST)/.bin $(DIST)/$(DIST_NAME).tar.gz
	$(MAKE) --no-print-directory install VERSION=$(VERSION) CGO_ENABLED=0 BUILDFLAGS=-trimpath \
	  BIN=$(DIST)/.bin DESTDIR= PREFIX=$(abspath $(DIST))/.stage/$(DIST_NAME) RELOCATABLE=1
	tar -C $(DIST)/.stage --sort=name --owner=0 --group=0 --numeric-owner --mtime=@$(SOURCE_DATE_EPOCH) \
	  -cf - $(DIST_NAME) | gzip -n -9 > $(DIST)/$(DIST_NAME).tar.gz.tmp
	mv $(DIST)/$(DIST_NAME).tar.gz.tmp $(DIST)/$(DIST_NAME).tar.gz
	cd $(DIST) && sha256sum copper-*.tar.gz > SHA256SUMS.tmp && mv SHA256SUMS.tmp SHA256SUMS
	rm -rf $(DIST)/.stage $(DIST)/.bin

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
# The -race pass leaves out packaging: its tests run make, Lmod and man on
# what make install and make dist produce, no Go code the race detector sees.
test: deps fmt-check vet build
	$(GO) test $(GOFLAGS) -count=1 -timeout $(TIMEOUT) ./...
	$(GO) test $(GOFLAGS) -count=1 -race -timeout $(TIMEOUT) $$($(GO) list ./... | grep -v -e /e2e -e /cmd/ -e /slurmtest -e /bench/ -e /packaging)

# Only the real-Slurm test of copper-launch.
test-slurm: deps build
	$(GO) test $(GOFLAGS) -count=1 -v -timeout 5m ./slurmtest/

demo: deps build
	@scripts/demo.sh

# The demo across 4 hosts: network namespaces on a private bridge, one
# copper-launch per host as mpiexec starts it (needs root).
demo-multihost: deps build
	@scripts/demo-multihost.sh

bench: deps build
	@scripts/bench.sh full

bench-quick: deps build
	@scripts/bench.sh quick

# The large-file workload alone at the issue's size (32 nodes × 1 GiB, the
# size halved until it fits the free space of /tmp); rewrites its own
# section of docs/BENCHMARKS.md (make bench writes it from its own run).
bench-large: deps build
	@scripts/large-full-bench.sh

# The control plane at scale alone (also part of bench and bench-quick):
# all-gather of 10,000 ranks, tree-ready of 1,024 nodes, the address book
# at 20,000 ranks; rewrites its own section of docs/BENCHMARKS.md.
bench-controlplane:
	@scripts/controlplane-bench.sh

# The scale model (bench/scalemodel): pfsbench replay at N = 1…32, calibrate,
# validate, project to 20,000 nodes; writes its docs/BENCHMARKS.md section.
# make bench and bench-quick run it too, on their own pfsbench run.
bench-model: deps build
	@scripts/bench-model.sh

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
	rm -rf $(BIN) $(DIST)
