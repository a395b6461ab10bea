# SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
#
# make demo    set everything up, boot a Soft-RoCE VM on the default kernel and show what the
#              project does, then the quick benchmark comparison (benchmarks/run --quick)
# make check   set everything up and run every test (unit + VM, both kernels; the debug
#              kernel's lane too when that kernel has been built)
# make gate    the driver glue's build gate alone (mlx5_ib with W=1 C=1 against the stock
#              source, depends on ib_hmm; also a step of make check)
# make debug-kernel  build the debug kernels (KASAN, lockdep, kmemleak, fault injection)
#              into the cache, once
#
# Variables: KERNELS="6.12 7.3" (kernels to set up and test), KERNEL=6.12 (the demo's kernel),
# BUILD=build (build directory). The cache of downloads and prepared kernel trees lives in
# $HMMVERBS_CACHE (default ~/.cache/hmmverbs); pin a kernel with HMMV_KERNEL_6_12=<release> or
# HMMV_KERNEL_7_3=<release>.
BUILD ?= build
KERNELS ?= 6.12 7.3
KERNEL ?= 6.12
export HMMV_BUILD := $(abspath $(BUILD))
export HMMV_KERNELS := $(KERNELS)

.PHONY: all setup build modules check unit gate demo clean debug-kernel
all: build

setup:
	scripts/setup

build: setup
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j2
	tests/outside/build-installed

debug-kernel:
	HMMV_KERNELS="6.12-debug 7.3-debug" scripts/setup

modules: setup
	kernel/build

unit: build
	tests/check --unit-only

check: build
	tests/check --kernels "$(KERNELS)"

gate: build
	rc=0; for k in $(KERNELS); do kernel/gate --kernel $$k || rc=1; done; exit $$rc

demo: build
	tests/vm/run --kernel $(KERNEL) -- tests/vm/demo
	@echo; echo "== The quick comparison (benchmarks/run --quick --kernels $(KERNEL), about 3 minutes)"
	@benchmarks/run --quick --kernels "$(KERNEL)" --out $(BUILD)/demo-benchmarks >$(BUILD)/demo-benchmarks.log 2>&1; \
		rc=$$?; sed -n '/^## Medians/,$$p' $(BUILD)/demo-benchmarks/summary.md; \
		echo "(full report: $(BUILD)/demo-benchmarks/summary.md, bandwidth.png)"; exit $$rc

clean:
	rm -rf $(BUILD)

# make soak [DURATION=10m] [KERNEL=...]  hmmv_soak (checksummed multi-QP writes under an
#              invalidation storm) for DURATION (a number of seconds, or with s, m or h) in one
#              VM on SOAK_KERNEL, then its report
# make fuzz [SECONDS=60] [SEED=...] [KERNEL=...]  hmmv_fuzz the same way on FUZZ_KERNEL (SEED
#              default: from the clock; the run prints it)
# Both kernels default to KERNEL when given, else the debug kernel (KASAN, lockdep...) once
# `make debug-kernel` has built it, else 6.12.
DURATION ?= 10m
SECONDS ?= 60
SEED ?=
HMMV_CACHE_DIR := $(or $(HMMVERBS_CACHE),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/hmmverbs)
LONG_RUN_KERNEL = $(if $(filter-out file,$(origin KERNEL)),$(KERNEL),$(if $(wildcard \
	$(HMMV_CACHE_DIR)/kernels/6.12-debug.release),6.12-debug,6.12))
SOAK_KERNEL ?= $(LONG_RUN_KERNEL)
FUZZ_KERNEL ?= $(LONG_RUN_KERNEL)
# $(call to_secs,VALUE): shell code that sets $secs from N, Ns, Nm or Nh (or fails).
to_secs = d='$(1)'; case $$d in *h) secs=$$(($${d%h} * 3600)) ;; *m) secs=$$(($${d%m} * 60)) ;; \
	*s) secs=$${d%s} ;; *) secs=$$d ;; esac; case $$secs in ''|*[!0-9]*|0) \
	echo "make: '$(1)' is not a duration (N, Ns, Nm or Nh)" >&2; exit 2 ;; esac

.PHONY: soak fuzz
soak: build
	@$(call to_secs,$(DURATION)); log=$(HMMV_BUILD)/vm-logs/soak-$$(date +%Y%m%d-%H%M%S); \
	echo "== hmmv_soak for $$secs s on $(SOAK_KERNEL) (logs: $$log)"; \
	tests/vm/run --kernel $(SOAK_KERNEL) --timeout $$((secs + 300)) --log-dir "$$log" -- \
		$(HMMV_BUILD)/tests/vm/hmmv_soak -T $$secs -v; rc=$$?; \
	echo "== report ($(SOAK_KERNEL), exit $$rc):"; grep -a '^soak: ' "$$log/a/console.txt" | grep -v '^soak: [0-9]* s: '; \
	[ ! -s "$$log/a/splats.txt" ] || { echo "kernel splats:"; cat "$$log/a/splats.txt"; }; exit $$rc

fuzz: build
	@$(call to_secs,$(SECONDS)); seed='$(SEED)'; [ -n "$$seed" ] || seed=$$(($$(date +%s%N) % 1000000000000)); \
	log=$(HMMV_BUILD)/vm-logs/fuzz-$$(date +%Y%m%d-%H%M%S); \
	echo "== hmmv_fuzz seed $$seed for $$secs s on $(FUZZ_KERNEL) (logs: $$log)"; \
	tests/vm/run --kernel $(FUZZ_KERNEL) --timeout $$((secs + 300)) --log-dir "$$log" -- \
		$(HMMV_BUILD)/tests/vm/hmmv_fuzz -s $$seed -T $$secs; rc=$$?; \
	echo "== report ($(FUZZ_KERNEL), exit $$rc):"; grep -a '^fuzz: \(seed\|reproduce\|MISMATCH\)' "$$log/a/console.txt"; \
	[ ! -s "$$log/a/splats.txt" ] || { echo "kernel splats:"; cat "$$log/a/splats.txt"; }; exit $$rc
