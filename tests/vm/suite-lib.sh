# SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
#
# Helpers for test suites that run inside a VM of tests/vm/run. Every test prints exactly one
# line, "PASS <name>", "FAIL <name>: <why>" or "SKIP <name>: <why>", where <name> is prefixed
# with the VM's configuration (vm/<kernel>/<modules>/<hosts>h/); tests/check counts them.
# The output of a failing test is kept in $HMMV_RUN_DIR/a/tests/<name>.log and its tail shown.

SUITE_PREFIX="vm/$HMMV_KERNEL/$HMMV_MODULES/${HMMV_HOSTS}h"
SUITE_FAILS=0
SUITE_LOGS=$HMMV_RUN_DIR/a/tests
mkdir -p "$SUITE_LOGS"
BIN=${HMMV_BUILD:-$HMMV_ROOT/build}/tests/vm

# t NAME CMD...: run CMD (a shell function or program) as the test NAME, 300 s at most.
t() {
	local name="$SUITE_PREFIX/$1" log rc
	shift
	log="$SUITE_LOGS/${name//\//_}.log"
	( "$@" ) >"$log" 2>&1 &
	local pid=$! waited=0
	while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 3000 ]; do
		sleep 0.1
		waited=$((waited + 1))
	done
	if kill -0 "$pid" 2>/dev/null; then
		pkill -KILL -P "$pid" 2>/dev/null
		kill -KILL "$pid" 2>/dev/null
		echo "test timed out after 300 s" >>"$log"
	fi
	wait "$pid"
	rc=$?
	if [ "$rc" = 0 ]; then
		echo "PASS $name"
	elif [ "$rc" = 77 ]; then
		echo "SKIP $name: $(tail -n 1 "$log")"
	else
		echo "FAIL $name: exit $rc; last lines of $log:"
		tail -n 8 "$log" | sed 's/^/    /'
		SUITE_FAILS=$((SUITE_FAILS + 1))
	fi
}

skip() { echo "$*"; exit 77; }

# The GID index of DEV's RoCE v2 IPv4 address (as the perftest and pingpong tools want it).
gid_index() {
	local dev=$1 i
	for i in $(seq 0 15); do
		[ -f "/sys/class/infiniband/$dev/ports/1/gid_attrs/types/$i" ] || continue
		grep -q 'v2' "/sys/class/infiniband/$dev/ports/1/gid_attrs/types/$i" 2>/dev/null || continue
		grep -q '0000:0000:0000:0000:0000:ffff' "/sys/class/infiniband/$dev/ports/1/gids/$i" && { echo "$i"; return; }
	done
	echo "no RoCE v2 IPv4 GID on $dev" >&2
	return 1
}

# pair WHERE SERVER_DEV CONNECT_ADDR -- ARGS...: run a hmmv_xfer server (locally or, with WHERE
# = peer, on the second host) and a client against it; both must succeed.
pair() {
	local where=$1 sdev=$2 addr=$3 srv_rc cli_rc port=$((18600 + RANDOM % 1000))
	shift 4
	if [ "$where" = peer ]; then
		peer "$BIN/hmmv_xfer" -d "$sdev" -p "$port" "$@" &
	else
		"$BIN/hmmv_xfer" -d "$sdev" -p "$port" "$@" &
	fi
	local spid=$!
	"$BIN/hmmv_xfer" -d "$HMMV_DEV" -p "$port" "$@" "$addr"
	cli_rc=$?
	# A client that never connected leaves the server waiting for it: do not wait for ever.
	[ "$cli_rc" = 0 ] || kill "$spid" 2>/dev/null
	wait "$spid"
	srv_rc=$?
	[ "$cli_rc" = 0 ] && [ "$srv_rc" = 0 ]
}

suite_end() {
	exit $((SUITE_FAILS > 0))
}

# passthrough GROUP CMD...: run a test program that prints its own "PASS name" / "FAIL name: why"
# / "SKIP name: why" lines; show them under $SUITE_PREFIX/GROUP/. A program that exits non-zero
# without naming a failing test, or runs no test at all, counts as one failed test.
passthrough() {
	local group=$1 log rc n fails
	shift
	log="$SUITE_LOGS/${group//\//_}.log"
	"$@" >"$log" 2>&1
	rc=$?
	sed -nE "s#^(PASS|FAIL|SKIP) #\\1 $SUITE_PREFIX/$group/#p" "$log"
	n=$(grep -cE '^(PASS|FAIL|SKIP) ' "$log")
	fails=$(grep -c '^FAIL ' "$log")
	if [ "$n" = 0 ] || { [ "$rc" != 0 ] && [ "$fails" = 0 ]; }; then
		echo "FAIL $SUITE_PREFIX/$group/program: exit $rc after $n tests; last lines of $log:"
		tail -n 8 "$log" | sed 's/^/    /'
		fails=1
	fi
	[ "$fails" = 0 ] || SUITE_FAILS=$((SUITE_FAILS + 1))
}

# odp_test LABEL ARGS...: run hmmv_odp_test with ARGS, its PASS/FAIL/SKIP lines shown under
# $SUITE_PREFIX/LABEL/ as they come.
odp_test() {
	local label=$1 out err rc
	shift
	out=$SUITE_LOGS/${label}_hmmv_odp_test.out err=$SUITE_LOGS/${label}_hmmv_odp_test.log
	"$BIN/hmmv_odp_test" -d "$HMMV_DEV" -v "$@" 2>"$err" | tee "$out" |
		sed -u -n -E "s#^(PASS|FAIL|SKIP) #\1 $SUITE_PREFIX/$label/#p"
	rc=${PIPESTATUS[0]}
	# The program ends every run with its summary; without it (a crash) or with an exit
	# status other than 0/1, the run itself failed.
	if ! grep -qE '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$out" || [ "$rc" -gt 1 ]; then
		echo "FAIL $SUITE_PREFIX/$label/hmmv_odp_test-run: exit $rc without a summary; see $err"
		tail -n 8 "$err" | sed 's/^/    /'
		SUITE_FAILS=$((SUITE_FAILS + 1))
	elif [ "$rc" != 0 ]; then
		SUITE_FAILS=$((SUITE_FAILS + $(grep -c '^FAIL ' "$out")))
	fi
}

# wait_listen PORT [SECONDS]: wait until a TCP server listens on PORT (default 30 s), so that a
# client that does not retry its connect (ibv_rc_pingpong, perftest) can be started.
wait_listen() {
	local port=$1 i
	for i in $(seq $((${2:-30} * 10))); do
		ss -ltnH "sport = :$port" 2>/dev/null | grep -q . && return 0
		sleep 0.1
	done
	echo "nothing listens on port $port" >&2
	return 1
}

# server_client PORT CMD...: the server (CMD) runs in the background, the client (CMD
# $HMMV_ADDR) starts once the server listens on PORT; both must succeed, within 120 s each.
server_client() {
	local port=$1 srv rc
	shift
	timeout 120 "$@" &
	srv=$!
	wait_listen "$port" || { kill "$srv" 2>/dev/null; return 1; }
	timeout 120 "$@" "$HMMV_ADDR"
	rc=$?
	wait "$srv" || rc=1
	return "$rc"
}
