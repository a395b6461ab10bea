# SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
#
# make demo    set everything up, boot a Soft-RoCE VM on the default kernel and show what the
#              project does, then the quick benchmark comparison (benchmarks/run --quick)
# make check   set everything up and run every test (unit + VM, both kernels; the debug
#              kernel's lane too when that kernel has been built)
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

.PHONY: all setup build modules check unit demo clean debug-kernel
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

demo: build
	tests/vm/run --kernel $(KERNEL) -- tests/vm/demo
	@echo; echo "== The quick comparison (benchmarks/run --quick --kernels $(KERNEL), about 3 minutes)"
	@benchmarks/run --quick --kernels "$(KERNEL)" --out $(BUILD)/demo-benchmarks >$(BUILD)/demo-benchmarks.log 2>&1; \
		rc=$$?; sed -n '/^## Medians/,$$p' $(BUILD)/demo-benchmarks/summary.md; \
		echo "(full report: $(BUILD)/demo-benchmarks/summary.md, bandwidth.png)"; exit $$rc

clean:
	rm -rf $(BUILD)
