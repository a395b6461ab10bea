#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
# Unit test of scripts/lib.sh: kernel series, pins and cache location.
set -u
fails=0
check() {
	if [ "$2" = "$3" ]; then
		echo "ok $1"
	else
		echo "FAIL $1: got '$2', want '$3'"
		fails=$((fails + 1))
	fi
}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export HMMVERBS_CACHE=$T/cache
. "$(dirname "$0")/../../scripts/lib.sh"

check "cache from HMMVERBS_CACHE" "$HMMV_CACHE" "$T/cache"
check "series of a 6.12 release" "$(hmmv_release_series 6.12.117+deb12-amd64)" 6.12
check "series of a 7.3 release" "$(hmmv_release_series 7.3.4+deb13-amd64)" 7.3
check "series of a debug build" "$(hmmv_release_series 6.12.117-debug)" 6.12-debug
check "pin variable name" "$(hmmv_pin_var 6.12)" HMMV_KERNEL_6_12

mkdir -p "$T/cache/kernels"
echo 6.12.117+deb12-amd64 >"$T/cache/kernels/6.12.release"
check "release from the cache" "$(hmmv_kernel_release 6.12)" 6.12.117+deb12-amd64
check "a pin wins over the cache" "$(HMMV_KERNEL_6_12=6.12.115+deb12-amd64 hmmv_kernel_release 6.12)" 6.12.115+deb12-amd64
out=$( (hmmv_kernel_release 7.3) 2>&1)
rc=$?
check "unset-up series fails" "$rc" 1
case $out in *"make setup"*) echo "ok unset-up series says what to run" ;;
*) echo "FAIL unset-up series says what to run: $out"; fails=$((fails + 1)) ;; esac

unset HMMVERBS_CACHE
check "XDG cache default" "$(XDG_CACHE_HOME=/x bash -c ". $(dirname "$0")/../../scripts/lib.sh; echo \$HMMV_CACHE")" /x/hmmverbs
[ "$fails" = 0 ]
