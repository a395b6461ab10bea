# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
#
# Helpers for benchmarks that run inside a VM of tests/vm/run (one host) and switch between
# our rxe modules and the distribution's within that VM. Source it. The topology it rebuilds is
# the one tests/vm/guest-init builds (rxe0 on veth0; rxe1 on veth1 inside $HMMV_PEER_NS where
# $HMMV_PEER_DEV is set); the module loading follows guest-init too.
# shellcheck source=/dev/null
. "$HMMV_ROOT/tests/vm/suite-lib.sh"

# rxe_private_ns NAME "$0" ARGS...: run the calling script again in a private mount namespace
# and, once inside it, prepare that namespace; NAME prefixes the messages. libibverbs dlopens
# every provider listed in /etc/libibverbs.d (17 on Debian 12) in every process, ~3 s over 9p
# under TCG, more than many transfers: inside, /etc/libibverbs.d lists rxe only (the same in
# every mode, so it changes no ratio; the guest's own view is untouched). debugfs is mounted
# there too (ib_hmm's stats, tracing). The namespace ends with the script.
rxe_private_ns() {
	local name=$1 cfg
	shift
	[ -n "${HMMV_PRIVATE_NS:-}" ] || HMMV_PRIVATE_NS=1 exec unshare --mount --propagation private "$@"
	cfg=$(mktemp -d) && echo "driver rxe" >"$cfg/rxe.driver" && mount --bind "$cfg" /etc/libibverbs.d ||
		echo "$name: cannot narrow libibverbs.d; slower" >&2
	mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
}

# rxe_loaded: "ours", "stock" or "none". Our rdma_rxe is the one that holds ib_hmm (Debian's
# modules carry no srcversion to compare).
rxe_loaded() {
	if [ ! -d /sys/module/rdma_rxe ]; then
		echo none
	elif [ -e /sys/module/ib_hmm/holders/rdma_rxe ]; then
		echo ours
	else
		echo stock
	fi
}

# mod_id FILE: vermagic's release, srcversion where there is one, and a hash of the file.
mod_id() {
	local sv
	sv=$(modinfo -F srcversion "$1" 2>/dev/null)
	printf 'vermagic %s srcversion %s sha256 %s' "$(modinfo -F vermagic "$1" | awk '{ print $1 }')" \
		"${sv:-none}" "$(sha256sum "$1" | cut -c1-12)"
}

# rxe_loaded_info: what the loaded rxe modules are, one line.
rxe_loaded_info() {
	local f
	if [ "$(rxe_loaded)" = ours ]; then
		for f in ib_hmm rdma_rxe; do
			printf '%s.ko (ours) %s; ' "$f" "$(mod_id "$HMMV_MODDIR/$f.ko")"
		done
	else
		f=$(modinfo -n rdma_rxe)
		printf '%s %s' "$f" "$(mod_id "$f")"
	fi
}

# rxe_links_delete: remove every rxe device (rxe1 may live in the peer namespace).
rxe_links_delete() {
	local d
	for d in $(rdma link show | awk '{ sub("/.*", "", $2); print $2 }'); do
		rdma link delete "$d" 2>/dev/null || ip netns exec "$HMMV_PEER_NS" rdma link delete "$d" 2>/dev/null ||
			{ echo "rxe: cannot delete $d" >&2; return 1; }
	done
}

# rxe_links_add: rxe0 on veth0 (and rxe1 on veth1 in the peer namespace where the kernel allows
# it), then wait for rxe0's RoCE v2 IPv4 GID.
rxe_links_add() {
	local _
	rdma link add "$HMMV_DEV" type rxe netdev veth0 || return 1
	if [ -n "${HMMV_PEER_DEV:-}" ]; then
		ip netns exec "$HMMV_PEER_NS" rdma link add "$HMMV_PEER_DEV" type rxe netdev veth1 || return 1
	fi
	for _ in $(seq 100); do
		gid_index "$HMMV_DEV" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "rxe: no RoCE v2 IPv4 GID on $HMMV_DEV" >&2
	return 1
}

# rxe_swap ours|stock: delete the devices, unload whatever rdma_rxe is loaded, load the wanted
# one (ours: ib_hmm [+ ib_hmm_test] + our rdma_rxe; stock: modprobe's rdma_rxe from
# /lib/modules/$(uname -r)), create the devices again. A no-op when the set is loaded already.
rxe_swap() {
	local want=$1 cur m
	cur=$(rxe_loaded)
	[ "$cur" = "$want" ] && return 0
	rxe_links_delete || return 1
	case $cur in
	ours) for m in rdma_rxe ib_hmm_test ib_hmm; do
		lsmod | grep -q "^$m " || continue
		rmmod "$m" || { echo "rxe: cannot unload $m" >&2; return 1; }
	done ;;
	stock) modprobe -r rdma_rxe || { echo "rxe: cannot unload the stock rdma_rxe" >&2; return 1; } ;;
	esac
	if [ "$want" = ours ]; then
		for m in $(modinfo -F depends "$HMMV_MODDIR/rdma_rxe.ko" | tr ',' ' '); do
			[ "$m" = ib_hmm ] || modprobe "$m" || return 1
		done
		insmod "$HMMV_MODDIR/ib_hmm.ko" || return 1
		if [ -f "$HMMV_MODDIR/ib_hmm_test.ko" ]; then insmod "$HMMV_MODDIR/ib_hmm_test.ko" || return 1; fi
		insmod "$HMMV_MODDIR/rdma_rxe.ko" || return 1
	else
		case $(modinfo -n rdma_rxe) in
		/lib/modules/"$(uname -r)"/kernel/*) ;;
		*) echo "rxe: modprobe would not load the distribution's rdma_rxe: $(modinfo -n rdma_rxe)" >&2; return 1 ;;
		esac
		modprobe rdma_rxe || return 1
	fi
	[ "$(rxe_loaded)" = "$want" ] || { echo "rxe: loaded $(rxe_loaded), wanted $want" >&2; return 1; }
	rxe_links_add
}

# rxe_has_odp DEV: the device advertises On-Demand Paging.
rxe_has_odp() {
	ibv_devinfo -v -d "$1" 2>/dev/null | sed -n '/general_odp_caps/,/_odp_caps/p' | grep -q 'ODP_SUPPORT$'
}
