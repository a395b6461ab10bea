#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
# Unit test of tests/vm/judge-log: which guest logs fail a VM run.
set -u
JUDGE=$(dirname "$0")/../vm/judge-log
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0

# expect VERDICT(0 clean / 1 splat) NAME FILE [expected text in the report]
expect() {
	local want=$1 name=$2 file=$3 text=${4:-} out got
	out=$("$JUDGE" "$file")
	got=$?
	if [ "$got" != "$want" ]; then
		echo "FAIL $name: verdict $got, want $want (report: $out)"
		fails=$((fails + 1))
	elif [ -n "$text" ] && ! grep -qF -- "$text" <<<"$out"; then
		echo "FAIL $name: report does not name '$text' (report: $out)"
		fails=$((fails + 1))
	else
		echo "ok $name"
	fi
}

log() { printf '%s\n' "$@" >"$T/$1.dmesg"; }

printf '[    1.0] rdma_rxe: loaded\n[    2.0] rxe0: added veth0\n' >"$T/clean.dmesg"
expect 0 clean "$T/clean.dmesg"

for splat in "BUG: injected" "BUG: kernel NULL pointer dereference, address: 0000000000000008" \
	"WARNING: CPU: 1 PID: 77 at drivers/infiniband/hmm/ib_hmm_mr.c:120 ib_hmm_mr_copy+0x1/0x2" \
	"Oops: general protection fault, probably for non-canonical address" \
	"watchdog: BUG: soft lockup - CPU#0 stuck for 26s! [kworker/0:1:33]" \
	"INFO: task kworker/u4:2:88 blocked for more than 120 seconds." \
	"BUG: KASAN: slab-use-after-free in ib_hmm_table_lookup+0x2a/0x90" \
	"UBSAN: shift-out-of-bounds in drivers/infiniband/hmm/ib_hmm_table.c:44:9" \
	"WARNING: possible circular locking dependency detected" \
	"Kernel panic - not syncing: Fatal exception" \
	"rcu: INFO: rcu_sched self-detected stall on CPU"; do
	printf '[    1.0] rdma_rxe: loaded\n[    3.5] %s\n' "$splat" >"$T/s.dmesg"
	expect 1 "splat: ${splat:0:40}" "$T/s.dmesg" "${splat:0:20}"
done

# kmemleak: its summary line is not a splat; the report names whose objects leaked.
printf '[    1.0] rdma_rxe: loaded\n[    9.0] kmemleak: 3 new suspected memory leaks (see /sys/kernel/debug/kmemleak)\n' >"$T/kml.dmesg"
expect 0 "kmemleak summary line alone" "$T/kml.dmesg"
printf 'unreferenced object 0xffff888004a1c000 (size 64):\n  comm "swapper/0", pid 1\n  backtrace (crc 0):\n    kmalloc_trace+0x2a/0x60\n    p9_client_create+0x1/0x2 [9pnet]\n' >"$T/other.kmemleak"
printf 'unreferenced object 0xffff888004a1d000 (size 128):\n  comm "hmmv_odp_test", pid 77\n  backtrace (crc 0):\n    kmalloc_trace+0x2a/0x60\n    ib_hmm_mirror_get+0x55/0x200 [ib_hmm]\n' >"$T/ours.kmemleak"
cat "$T/other.kmemleak" "$T/ours.kmemleak" "$T/other.kmemleak" >"$T/mixed.kmemleak"
for f in other ours mixed; do
	out=$("$JUDGE" --kmemleak "$T/$f.kmemleak")
	rc=$?
	want=1 n=1
	[ "$f" = other ] && want=0 n=0
	if [ "$rc" = "$want" ] && [ "$(grep -c '^unreferenced object' <<<"$out")" = "$n" ] &&
		{ [ "$n" = 0 ] || grep -q 'ib_hmm_mirror_get' <<<"$out"; }; then
		echo "ok kmemleak report: $f"
	else
		echo "FAIL kmemleak report: $f (exit $rc): $out"
		fails=$((fails + 1))
	fi
done

# Console captures: only kernel lines count, the command's own output does not.
printf ' WARNING: BW peak won'"'"'t be measured in this run.\nBUG: this is test output\n' >"$T/a.console"
expect 0 "console: command output is not judged" "$T/a.console"
printf 'hello\n[   12.345678] BUG: unable to handle page fault for address: ffff\n' >"$T/b.console"
expect 1 "console: kernel line is judged" "$T/b.console" "unable to handle page fault"

# At most five lines, duplicates once.
for i in 1 2 3 4 5 6 7; do echo "[ $i.0] WARNING: at foo.c:$i"; echo "[ $i.1] WARNING: at foo.c:$i"; done >"$T/many.dmesg"
out=$("$JUDGE" "$T/many.dmesg")
if [ "$(wc -l <<<"$out")" = 5 ] && [ "$(sort -u <<<"$out" | wc -l)" = 5 ]; then
	echo "ok report is bounded and deduplicated"
else
	echo "FAIL report is bounded and deduplicated: $out"
	fails=$((fails + 1))
fi

expect 0 "missing file is ignored" "$T/nonexistent"

# --context: the whole report of the first splat, from the first file that has one, with the
# kernel lines around it and without the command's output.
{
	echo "[   9.0] rxe0: added veth0"
	echo "ib_write_bw output"
	echo "[  10.0] Oops: int3: 0000 [#1] SMP NOPTI"
	for i in $(seq 1 50); do echo "[  10.$i] trace line $i"; done
} >"$T/k.console"
out=$("$JUDGE" --context "$T/clean.dmesg" "$T/k.console" "$T/s.dmesg")
got=$?
if [ "$got" = 0 ] && grep -q '^(from .*k.console)$' <<<"$out" && grep -q 'rxe0: added veth0' <<<"$out" &&
	grep -q 'Oops: int3' <<<"$out" && grep -q 'trace line 40$' <<<"$out" &&
	! grep -q 'trace line 41$' <<<"$out" && ! grep -q 'ib_write_bw output' <<<"$out" &&
	! grep -q 'rcu_sched' <<<"$out"; then
	echo "ok --context prints the first report"
else
	echo "FAIL --context prints the first report: exit $got; $out"
	fails=$((fails + 1))
fi
"$JUDGE" --context "$T/clean.dmesg" >/dev/null
got=$?
if [ "$got" = 1 ]; then echo "ok --context on clean logs"; else echo "FAIL --context on clean logs: exit $got"; fails=$((fails + 1)); fi
[ "$fails" = 0 ]
