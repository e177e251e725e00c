# The one test command: `make test` (what .ci/run runs). Each step also runs alone.
# It needs root on Debian 12 (bookworm): when a tool is missing, `host` runs
# hwtests/vm/setup-host, which installs them from Debian's mirror.
GO ?= go
STATICCHECK := $(GO) tool staticcheck
UAPI_INC = $(shell .ci/uapi-headers)

.PHONY: test host lint bpfcheck unit uapicheck fuzz guest

# The steps that must run alone go first (benchcheck measures ratios);
# then the rest share the machine: the fifteen guest boots, the unit
# tests, the fuzzers, lint and uapicheck are one pool of make jobs,
# TEST_JOBS at a time, started longest first. A TCG guest keeps about
# two thirds of a core busy (the kernel's sleeps, the tests' waits), so
# the pool holds one job more than the host has cores. Each step says how
# long it took, and each boot its phases and QEMU's CPU time: where CI's
# time goes, in its log.
TEST_STEPS := host bpfcheck benchcheck
TEST_JOBS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 1) + 1 )))
test: export HWTESTS_RESULTS = $(GUEST_RESULTS)
test:
	@set -e; all=$$(date +%s); for step in $(TEST_STEPS); do \
		s=$$(date +%s); $(MAKE) --no-print-directory $$step; \
		echo "make test: $$step took $$(( $$(date +%s) - s ))s"; \
	done; \
	s=$$(date +%s); rm -f "$$HWTESTS_RESULTS"; \
	$(MAKE) --no-print-directory -j$(TEST_JOBS) --output-sync=line $(GUEST_LONG) timed-unit timed-fuzz timed-lint timed-uapicheck $(GUEST_SHORT); \
	$(HWTESTS) -summary "$$HWTESTS_RESULTS"; \
	echo "make test: unit, fuzz and guest together took $$(( $$(date +%s) - s ))s"; \
	echo "make test: all steps took $$(( $$(date +%s) - all ))s"

# A step run as a job of the pool prints its own time when it ends.
.PHONY: timed-unit timed-fuzz timed-lint timed-uapicheck
timed-unit timed-fuzz timed-lint timed-uapicheck:
	@s=$$(date +%s); $(MAKE) --no-print-directory $(@:timed-%=%); echo "make test: $(@:timed-%=%) took $$(( $$(date +%s) - s ))s"

# What the steps below run besides Go: QEMU (guest), gcc (cgo: -race and
# uapicheck), clang-19 and llvm-strip-19 (bpfcheck), the module rebuild's
# make, bc, cpio and pahole; the own kernel's build (flex, bison, the arm64
# cross gcc) and its UEFI firmware. setup-host is idempotent (about a second
# when all is there) but needs root, so it runs only when something is missing.
HOST_TOOLS := qemu-system-x86_64 qemu-system-aarch64 gcc clang-19 llvm-strip-19 make bc cpio pahole flex bison aarch64-linux-gnu-gcc-12
HOST_FILES := /usr/share/qemu-efi-aarch64/QEMU_EFI.fd
host:
	@missing=; for t in $(HOST_TOOLS); do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	for f in $(HOST_FILES); do [ -e $$f ] || missing="$$missing $$f"; done; \
	if [ -n "$$missing" ]; then \
		echo "host: missing$$missing; running hwtests/vm/setup-host (root, Debian 12, network to Debian's mirror)"; \
		bash hwtests/vm/setup-host; \
	fi

# The packages the hwtests tag changes (a file of theirs names it in its
# build line): the only ones whose tagged vet and staticcheck differ.
HWTESTS_PKGS = $(addprefix ./,$(sort $(dir $(shell git grep -l '^//go:build.*hwtests' -- '*.go'))))
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt -l:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags hwtests $(HWTESTS_PKGS)
	$(STATICCHECK) ./...
	$(STATICCHECK) -tags hwtests $(HWTESTS_PKGS)
	@# The ghw comparison is a module of its own (ghw stays out of go.mod):
	@# vet it so a sysfs API change cannot break it unnoticed.
	cd hwtests/ghwbench && $(GO) vet ./...

# The committed BPF objects and their Go wrappers are what `go generate ./ebpf`
# makes with the pinned clang-19 (hwtests/vm/setup-host installs it); without
# it the check is skipped, saying so. Files it rewrote unchanged get their
# modification times back: the guest binary cache keys on them.
bpfcheck:
	@set -e; if ! command -v clang-19 >/dev/null || ! command -v llvm-strip-19 >/dev/null; then \
		echo "bpfcheck: clang-19 and llvm-strip-19 not installed, skipped"; exit 0; fi; \
	keep=$$(mktemp -d); cp -p ebpf/*_bpfel.* "$$keep"/; \
	$(GO) generate ./ebpf; \
	for f in "$$keep"/*; do cmp -s "$$f" ebpf/$${f##*/} && touch -r "$$f" ebpf/$${f##*/}; done; rm -rf "$$keep"; \
	git diff --exit-code --stat -- ebpf/ || { echo "bpfcheck: go generate ./ebpf changed the files above"; exit 1; }; \
	out=$$(git ls-files --others --exclude-standard -- 'ebpf/*_bpfel.*'); \
	if [ -n "$$out" ]; then echo "bpfcheck: not committed: $$out"; exit 1; fi

# -race needs cgo, so a C compiler: say so instead of cgo's own message.
# atexit_sleep_ms=0: the race runtime otherwise sleeps a second at the
# exit of every test binary, 24 s of make test's wall time over the
# module's packages.
unit:
	@command -v $${CC:-gcc} >/dev/null || { echo "unit: go test -race needs a C compiler for cgo: install gcc (make host does)"; exit 1; }
	GORACE="atexit_sleep_ms=0 $$GORACE" $(GO) test -race -count=1 ./...

# The cgo cross-check of ioctl/uapi against the kernel's own 6.12 headers.
uapicheck:
	CGO_ENABLED=1 CGO_CFLAGS="-isystem $(UAPI_INC) -isystem $(UAPI_INC)/x86_64-linux-gnu" \
		$(GO) test -count=1 -tags uapicheck ./ioctl/uapi/...

# Every fuzz target for a fixed number of inputs; crashers land in
# testdata/fuzz. A count, not a duration: with -fuzztime 5s a loaded machine
# sometimes fails a target with "context deadline exceeded" when a worker
# stops late at the deadline (seen in CI on FuzzParseReservedRegions).
# The targets that build a sysfs tree on disk per input (FuzzTree, FuzzList:
# about 1-2 ms an input on tmpfs) get FUZZTIME_TREE instead. make test runs
# a fifth of make test-long's counts (with the corpus, every target still
# runs thousands of new inputs; 31 targets took two minutes at the full
# counts). The targets are found in the sources, and each package's
# fuzzing binary is built once for all its targets (go test -c -fuzz), run
# in the package's directory with go test's corpus cache: asking go test
# -list of every package, then go test -fuzz of every target, linked 80
# test binaries, most of the step's minute.
FUZZTIME ?= 10000x
FUZZTIME_TREE ?= 2000x
FUZZ_BIN = $(or $(TMPDIR),/tmp)/iommu-agent-fuzz$(subst /,-,$(CURDIR))
fuzz:
	@set -e; cache=$$($(GO) env GOCACHE)/fuzz; rm -rf "$(FUZZ_BIN)"; mkdir -p "$(FUZZ_BIN)"; \
	for dir in $$(git ls-files '*_test.go' | xargs grep -l '^func Fuzz' | xargs -n1 dirname | sort -u); do \
		targets=$$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$dir/*_test.go); \
		bin="$(FUZZ_BIN)/$$(echo $$dir | tr / -).test"; \
		$(GO) test -c -fuzz "^$$(echo $$targets | cut -d' ' -f1)$$" -o "$$bin" ./$$dir; \
		for f in $$targets; do \
			n=$(FUZZTIME); case $$f in FuzzTree|FuzzList) n=$(FUZZTIME_TREE);; esac; \
			echo "fuzz ./$$dir $$f ($$n)"; \
			(cd $$dir && "$$bin" -test.run '^$$' -test.fuzz "^$$f$$" -test.fuzztime $$n -test.fuzzcachedir "$$cache"); \
		done; \
	done; rm -rf "$(FUZZ_BIN)"

# The real kernel: QEMU guests with an IOMMU and edu (see README.md),
# fifteen boots over four lanes, GUEST_JOBS at a time (the host's cores),
# longest first. make's --output-sync=line prints each boot's output whole
# when it ends, and every test line names its lane, so interleaved boots
# stay readable. Each boot is a target of its own (boot-LANE-WHAT), and
# guest-LANE runs one lane's boots.
# arm64-smmuv3-7.3 (our own Linux 7.3, TCG, UEFI/ACPI): everything the
# arm64 lane runs, plus SMMUv3 hw info, nesting objects and the ioctls after
# 6.12; SR-IOV, where 7.3 groups each VF at once; the bridge group. Its
# main boot goes first: a cold run builds its kernel (about ten minutes on
# two cores).
# x86_64-vtd: edu and an e1000 (with its kernel driver) behind a PCIe-to-PCI
# bridge, one iommu_group: discovery, viability and the group bind with
# rollback; two edus on iommufd's vfio-compat container, running what speaks
# type1 there; two edus with every package (two functions, so the accounting
# cases run: one IOAS shared by two devices counts once, two containers
# twice); an igb for SR-IOV.
# arm64-smmuv3 (Debian's 6.12, TCG): the kernel suites, discovery, the
# tracer, the daemon and the CLI (all but QEMU as a client: the guest cannot
# run the host's x86 QEMU); SR-IOV, where a VF lands in its PF's group at its
# first probe and is refused as not viable; the bridge, where the second
# alias is refused (TestGuestBridgeAlias); the compat container.
# x86_64-amdvi: discovery, the bridge group and the CLI; two edus with the
# packages that meet the IOMMU driver (the kernel suites, discovery, the
# CLI's probe and bind): the daemon, the tracer and the bench rows meet
# only the VFIO and iommufd core, whose kernel and code are the VT-d
# lane's, and run there; an igb for SR-IOV; the compat container. The
# bridge boots skip the tracer's CLI tests, which the main boots run.
# Each boot prints its own counts and appends them to HWTESTS_RESULTS (a file
# per checkout, emptied first); the last line sums them per lane and over all
# lanes. After a failing boot make starts no new one and lets the running
# ones finish, so the summary comes only after every boot passed (and fails
# itself if one did not, or if the file holds no boot).
GUEST_LANES := arm64-smmuv3-7.3 x86_64-vtd arm64-smmuv3 x86_64-amdvi
GUEST_JOBS ?= $(shell nproc 2>/dev/null || echo 1)
GUEST_RESULTS := $(or $(TMPDIR),/tmp)/iommu-agent-hwtests$(subst /,-,$(CURDIR)).results
HWTESTS = $(GO) run ./hwtests/vm/cmd/hwtests $(HWTESTS_FLAGS)
ARM64_MAIN_PKGS = ./sysfs/guest,./hwtests,./agent/iommu/cdev,./agent/iommu/type1,./ioctl/iommufd,./ebpf,./cmd/sysfs-snapshot,./agent/server,./cmd/iommu-agent
AMDVI_MAIN_PKGS = ./sysfs/guest,./hwtests,./agent/iommu/cdev,./agent/iommu/type1,./ioctl/iommufd,./cmd/sysfs-snapshot,./cmd/iommu-agent
COMPAT_RUN = 'TestConformance|TestBackendEdu|TestTwoGroups|TestSameGroup|TestFailNth|TestFailTeardown|TestConcurrentMapUnmap'
SRIOV_PKGS = ./agent/sriov,./agent/server,./cmd/iommu-agent -run 'SRIOV|VF' -ioctl-coverage off
# The boots by their length in a warm run, longest first: the main boots
# (a minute or two each), then the SR-IOV, bridge and compat ones.
GUEST_LONG := boot-arm64-smmuv3-7.3-main boot-x86_64-vtd-main boot-arm64-smmuv3-main boot-x86_64-amdvi-main
GUEST_SHORT := boot-x86_64-vtd-bridge boot-x86_64-vtd-sriov boot-arm64-smmuv3-7.3-sriov boot-x86_64-amdvi-sriov \
	boot-arm64-smmuv3-sriov boot-x86_64-vtd-compat boot-x86_64-amdvi-bridge boot-x86_64-amdvi-compat \
	boot-arm64-smmuv3-compat boot-arm64-smmuv3-7.3-bridge boot-arm64-smmuv3-bridge
GUEST_BOOTS := $(GUEST_LONG) $(GUEST_SHORT)
.PHONY: $(addprefix guest-,$(GUEST_LANES)) $(GUEST_BOOTS)

boot-arm64-smmuv3-7.3-main:
	$(HWTESTS) -lane arm64-smmuv3-7.3 -devices edu,edu -ioctl-coverage on -pkgs $(ARM64_MAIN_PKGS)
boot-arm64-smmuv3-7.3-sriov:
	$(HWTESTS) -lane arm64-smmuv3-7.3 -devices igb -pkgs $(SRIOV_PKGS)
boot-arm64-smmuv3-7.3-bridge:
	$(HWTESTS) -lane arm64-smmuv3-7.3 -devices bridge:edu,e1000 -pkgs ./sysfs/guest,./cmd/iommu-agent -ioctl-coverage off -- -skip Trace

boot-x86_64-vtd-bridge:
	$(HWTESTS) -devices bridge:edu,e1000 -pkgs ./sysfs/guest,./cmd/iommu-agent,./cmd/sysfs-snapshot -- -skip Trace
boot-x86_64-vtd-compat:
	$(HWTESTS) -modules compat -devices edu,edu -pkgs ./agent/iommu/type1,./hwtests -run $(COMPAT_RUN)
boot-x86_64-vtd-main:
	$(HWTESTS) -devices edu,edu
boot-x86_64-vtd-sriov:
	$(HWTESTS) -devices igb -pkgs $(SRIOV_PKGS)

boot-arm64-smmuv3-main:
	$(HWTESTS) -lane arm64-smmuv3 -devices edu,edu -ioctl-coverage on -pkgs $(ARM64_MAIN_PKGS)
boot-arm64-smmuv3-sriov:
	$(HWTESTS) -lane arm64-smmuv3 -devices igb -pkgs $(SRIOV_PKGS)
boot-arm64-smmuv3-bridge:
	$(HWTESTS) -lane arm64-smmuv3 -devices bridge:edu,e1000 -pkgs ./sysfs/guest -run TestGuestBridgeAlias -ioctl-coverage off
boot-arm64-smmuv3-compat:
	$(HWTESTS) -lane arm64-smmuv3 -modules compat -devices edu,edu -pkgs ./agent/iommu/type1,./hwtests -run $(COMPAT_RUN)

boot-x86_64-amdvi-bridge:
	$(HWTESTS) -lane x86_64-amdvi -devices bridge:edu,e1000 -pkgs ./sysfs/guest,./cmd/iommu-agent,./cmd/sysfs-snapshot -ioctl-coverage off -- -skip Trace
boot-x86_64-amdvi-main:
	$(HWTESTS) -lane x86_64-amdvi -devices edu,edu -ioctl-coverage on -pkgs $(AMDVI_MAIN_PKGS)
boot-x86_64-amdvi-sriov:
	$(HWTESTS) -lane x86_64-amdvi -devices igb -pkgs $(SRIOV_PKGS)
boot-x86_64-amdvi-compat:
	$(HWTESTS) -lane x86_64-amdvi -modules compat -devices edu,edu -pkgs ./agent/iommu/type1,./hwtests -run $(COMPAT_RUN)

guest-arm64-smmuv3-7.3: boot-arm64-smmuv3-7.3-main boot-arm64-smmuv3-7.3-sriov boot-arm64-smmuv3-7.3-bridge
guest-x86_64-vtd: boot-x86_64-vtd-bridge boot-x86_64-vtd-compat boot-x86_64-vtd-main boot-x86_64-vtd-sriov
guest-arm64-smmuv3: boot-arm64-smmuv3-main boot-arm64-smmuv3-sriov boot-arm64-smmuv3-bridge boot-arm64-smmuv3-compat
guest-x86_64-amdvi: boot-x86_64-amdvi-bridge boot-x86_64-amdvi-main boot-x86_64-amdvi-sriov boot-x86_64-amdvi-compat

# make bench measures every bench group (agent/bench) and regenerates
# docs/benchmarks.md and its JSON: the host's emulated and daemon groups,
# discovery against ghw (hwtests/ghwbench, a module of its own), then a
# guest with two edus for the kernel groups, then one under -icount for the
# tracer (guest instructions, which a loaded host cannot blur). benchcheck
# is CI's regression check: a quick host run whose ratios must stay within
# a margin of docs/benchmarks.json's (ratios only, never absolute times).
BENCH_DIR ?= $(or $(TMPDIR),/tmp)/iommu-agent-bench$(subst /,-,$(CURDIR))
.PHONY: bench benchcheck test-long
bench:
	rm -rf "$(BENCH_DIR)" && mkdir -p "$(BENCH_DIR)"
	$(GO) run ./cmd/iommu-agent bench -q -only emulated,daemon -format json -o "$(BENCH_DIR)/host.json"
	cd hwtests/ghwbench && BENCH_OUT="$(BENCH_DIR)/discovery.json" $(GO) test -run '^$$' -bench BenchmarkDiscovery -benchtime 5x .
	$(HWTESTS) -bench -devices edu,edu -m 4G -cprog agent/bench/cloop/cloop.c:/bin/cloop -pkgs ./agent/bench -run 'TestGuestBench$$' \
		-ioctl-coverage off -timeout 20m -run-dir "$(BENCH_DIR)/x86_64-vtd"
	$(HWTESTS) -bench -icount shift=0,sleep=off -devices edu -pkgs ./agent/bench -run 'TestTracerGroup$$' \
		-ioctl-coverage off -run-dir "$(BENCH_DIR)/tracer"
	$(GO) run ./cmd/iommu-agent bench -merge "$(BENCH_DIR)/host.json,$(BENCH_DIR)/discovery.json,$(BENCH_DIR)/x86_64-vtd/out/bench-x86_64-vtd.json,$(BENCH_DIR)/tracer/out/bench-tracer-x86_64-vtd.json" \
		-format json -o docs/benchmarks.json -update docs/benchmarks.md
	@echo "docs/benchmarks.md and docs/benchmarks.json regenerated"

# make test-long: the fuzz targets at five times make test's inputs, and
# the guests with the long tests at their nightly size (the crash sweep's
# 100 kills, the differential run's four seeds on every lane); make test
# runs 25 kills and two seeds where nothing nests.
test-long:
	$(MAKE) --no-print-directory fuzz FUZZTIME=50000x FUZZTIME_TREE=10000x
	$(MAKE) --no-print-directory guest HWTESTS_FLAGS=-long

# A ratio may double before it counts (the CI machine is shared and its
# nanosecond loops move with what else runs), and a regression must show
# in a second run too.
BENCH_MARGIN ?= 1
benchcheck:
	$(GO) build -o "$(BENCH_DIR).bin" ./cmd/iommu-agent
	"$(BENCH_DIR).bin" bench -quick -q -only emulated,daemon -check docs/benchmarks.json -margin $(BENCH_MARGIN) >/dev/null || \
		{ echo "benchcheck: measuring again to confirm"; "$(BENCH_DIR).bin" bench -quick -q -only emulated,daemon -check docs/benchmarks.json -margin $(BENCH_MARGIN); }

guest: export HWTESTS_RESULTS = $(GUEST_RESULTS)
guest:
	rm -f "$$HWTESTS_RESULTS"
	$(MAKE) --no-print-directory -j$(GUEST_JOBS) --output-sync=line $(GUEST_BOOTS)
	$(HWTESTS) -summary "$$HWTESTS_RESULTS"
