# SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
# Shared shell helpers for the setup script, the module build and the VM runner.
# Source it; it defines no behaviour of its own beyond variables and functions.

HMMV_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HMMV_CACHE=${HMMVERBS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hmmverbs}
HMMV_BUILD=${HMMV_BUILD:-$HMMV_ROOT/build}
# Kernels the project supports, by series; the default kernel is the first one.
HMMV_SERIES_ALL="6.12 7.3"
HMMV_SERIES_DEFAULT=6.12
# Debug builds (KASAN, lockdep, kmemleak...), built only on request: make debug-kernel.
HMMV_SERIES_DEBUG="6.12-debug 7.3-debug"

hmmv_log() { printf '\033[1m[hmmv]\033[0m %s\n' "$*" >&2; }
hmmv_die() { printf '\033[1;31m[hmmv] error:\033[0m %s\n' "$*" >&2; exit 1; }

# Run a command as root (directly, or through sudo when we are not root).
hmmv_as_root() {
	if [ "$(id -u)" = 0 ]; then
		"$@"
	elif command -v sudo >/dev/null; then
		sudo "$@"
	else
		hmmv_die "need root for: $* (run as root or install sudo)"
	fi
}

# The user-set pin for a series, e.g. HMMV_KERNEL_6_12=6.12.115+deb12-amd64
# (HMMV_KERNEL_6_12_debug for the series 6.12-debug).
hmmv_pin_var() { local v=${1//./_}; echo "HMMV_KERNEL_${v//-/_}"; }

# Print the kernel release (uname -r of the guest) that the cache holds for a series,
# honouring a pin. Fails when the series has not been set up.
hmmv_kernel_release() {
	local series=$1 var pin
	var=$(hmmv_pin_var "$series")
	pin=${!var:-}
	if [ -n "$pin" ]; then
		echo "$pin"
		return 0
	fi
	[ -f "$HMMV_CACHE/kernels/$series.release" ] ||
		hmmv_die "kernel $series is not set up: run 'make setup' (or scripts/setup)"
	cat "$HMMV_CACHE/kernels/$series.release"
}

# Directory of one prepared kernel in the cache.
hmmv_kernel_dir() { echo "$HMMV_CACHE/kernels/$1"; }

# Map a kernel release to its series ("6.12.117+deb12-amd64" -> "6.12"),
# keeping a "-debug" suffix for debug builds.
hmmv_release_series() {
	local rel=$1 s
	s=$(echo "$rel" | sed -E 's/^([0-9]+\.[0-9]+).*/\1/')
	case "$rel" in *-debug) s="$s-debug" ;; esac
	echo "$s"
}
