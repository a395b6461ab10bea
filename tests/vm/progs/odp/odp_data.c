// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * hmmv_odp_test: data tests. Every message is checked byte by byte from the CPU side, with
 * the bytes around it, at unaligned offsets and across packets (the MTU is 1024 here).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "odp.h"

static size_t round_page(size_t n)
{
	return (n + PAGE - 1) & ~(PAGE - 1);
}

/* A never-touched target of @need bytes (whole pages, plus one guard page) and its MR. */
static int target_get(struct env *e, size_t need, uint8_t **t, size_t *tlen, struct ibv_mr **mr)
{
	*tlen = round_page(need) + PAGE;
	*t = map_anon(*tlen);
	if (!*t)
		return tfail("mmap of %zu bytes: %s", *tlen, strerror(errno));
	madvise(*t, *tlen, MADV_NOHUGEPAGE);
	*mr = mr_get(e, e->kind, *t, *tlen, ACC_ALL);
	if (!*mr)
		return tfail("%s registration of %zu bytes: %s", kind_names[e->kind], *tlen, strerror(errno));
	return 0;
}

/* RDMA write into never-touched memory, then again into the now present pages. */
static int t_write(struct env *e, const struct tcase *tc)
{
	struct lbuf l;
	struct ibv_mr *mr;
	uint8_t *t;
	size_t tlen;
	char what[96];

	if (target_get(e, tc->off + tc->size, &t, &tlen, &mr) || lbuf_get(e, &l, tc->size, K_PINNED))
		return T_FAIL;
	for (int round = 0; round < 2; round++) {
		int seed = 11 + round;

		fill(l.p, tc->size, seed);
		snprintf(what, sizeof(what), "rdma write %s %zu B at offset %zu",
			 round ? "into present pages" : "into untouched memory", tc->size, tc->off);
		if (expect_ok(xfer(e, &e->rc, IBV_WR_RDMA_WRITE, l.p, l.mr->lkey, tc->size,
				   (uintptr_t)t + tc->off, mr->rkey, 0, 0), what) ||
		    check_region(what, t, tlen, tc->off, tc->size, seed, 0))
			return T_FAIL;
	}
	lbuf_put(e, &l);
	mr_put(e, mr);
	munmap(t, tlen);
	return T_PASS;
}

/* RDMA read out of memory the CPU filled. */
static int t_read(struct env *e, const struct tcase *tc)
{
	struct lbuf l;
	struct ibv_mr *mr;
	uint8_t *t;
	size_t tlen;
	char what[96];

	if (target_get(e, tc->off + tc->size, &t, &tlen, &mr) ||
	    lbuf_get(e, &l, tc->size + 128, K_PINNED))
		return T_FAIL;
	for (int round = 0; round < 2; round++) {
		int seed = 21 + round;

		fill(t + tc->off, tc->size, seed);
		memset(l.p, 0, l.len);
		snprintf(what, sizeof(what), "rdma read of %zu B at offset %zu (round %d)", tc->size,
			 tc->off, round);
		if (expect_ok(xfer(e, &e->rc, IBV_WR_RDMA_READ, l.p + 64, l.mr->lkey, tc->size,
				   (uintptr_t)t + tc->off, mr->rkey, 0, 0), what) ||
		    check_region(what, l.p, l.len, 64, tc->size, seed, 0))
			return T_FAIL;
	}
	return T_PASS;
}

/* RDMA read of never-touched memory returns zeros (and leaves it zero). */
static int t_read_untouched(struct env *e, const struct tcase *tc)
{
	struct lbuf l;
	struct ibv_mr *mr;
	uint8_t *t;
	size_t tlen;

	if (target_get(e, tc->off + tc->size, &t, &tlen, &mr) || lbuf_get(e, &l, tc->size, K_PINNED))
		return T_FAIL;
	memset(l.p, 0xa5, l.len);
	if (expect_ok(xfer(e, &e->rc, IBV_WR_RDMA_READ, l.p, l.mr->lkey, tc->size,
			   (uintptr_t)t + tc->off, mr->rkey, 0, 0), "rdma read of untouched memory"))
		return T_FAIL;
	for (size_t i = 0; i < tc->size; i++)
		if (l.p[i])
			return tfail("rdma read of untouched memory: byte %zu is 0x%02x, not 0", i, l.p[i]);
	for (size_t i = 0; i < tlen; i++)
		if (t[i])
			return tfail("untouched target byte %zu became 0x%02x", i, t[i]);
	return T_PASS;
}

/*
 * The requester's own buffer in the MR kind under test (the target is pinned): the source of
 * an RDMA write, the destination of an RDMA read.
 */
static int t_local(struct env *e, const struct tcase *tc, bool read)
{
	struct lbuf l;
	struct ibv_mr *mr;
	uint8_t *t;
	size_t tlen = round_page(tc->off + tc->size) + PAGE;
	const char *what = read ? "rdma read into a local buffer of this kind" :
				  "rdma write from a local buffer of this kind";

	t = map_anon(tlen);
	if (!t)
		return tfail("mmap: %s", strerror(errno));
	mr = ibv_reg_mr(e->pd, t, tlen, ACC_ALL);
	if (!mr)
		return tfail("pinned registration: %s", strerror(errno));
	memset(&l, 0, sizeof(l));
	l.len = tlen;
	l.p = map_anon(tlen);
	if (!l.p)
		return tfail("mmap: %s", strerror(errno));
	madvise(l.p, tlen, MADV_NOHUGEPAGE);
	l.mr = mr_get(e, e->kind, l.p, tlen, IBV_ACCESS_LOCAL_WRITE);
	if (!l.mr)
		return tfail("%s registration: %s", kind_names[e->kind], strerror(errno));
	if (read) {
		/* The local pages are never touched before the read response lands in them. */
		fill(t + tc->off, tc->size, 31);
		if (expect_ok(xfer(e, &e->rc, IBV_WR_RDMA_READ, l.p + tc->off, l.mr->lkey, tc->size,
				   (uintptr_t)t + tc->off, mr->rkey, 0, 0), what) ||
		    check_region(what, l.p, tlen, tc->off, tc->size, 31, 0))
			return T_FAIL;
	} else {
		fill(l.p + tc->off, tc->size, 32);
		if (expect_ok(xfer(e, &e->rc, IBV_WR_RDMA_WRITE, l.p + tc->off, l.mr->lkey, tc->size,
				   (uintptr_t)t + tc->off, mr->rkey, 0, 0), what) ||
		    check_region(what, t, tlen, tc->off, tc->size, 32, 0))
			return T_FAIL;
	}
	return T_PASS;
}

static int t_local_read(struct env *e, const struct tcase *tc)
{
	return t_local(e, tc, true);
}

static int t_local_write(struct env *e, const struct tcase *tc)
{
	return t_local(e, tc, false);
}

/* Send into a receive buffer of this kind (on the responder's RQ or an SRQ). */
static int send_recv(struct env *e, const struct tcase *tc, bool srq)
{
	struct pair sp, *p = &e->rc;
	struct lbuf l;
	struct ibv_mr *mr;
	struct ibv_wc wc;
	uint8_t *t;
	size_t tlen;
	int st;

	if (srq) {
		if (pair_create(e, &sp, IBV_QPT_RC, true))
			return T_FAIL;
		p = &sp;
	}
	if (target_get(e, tc->off + tc->size, &t, &tlen, &mr) || lbuf_get(e, &l, tc->size, K_PINNED))
		return T_FAIL;
	for (int round = 0; round < 2; round++) {
		int seed = 41 + round;

		fill(l.p, tc->size, seed);
		if (post_recv(p, t + tc->off, mr->lkey, tc->size))
			return T_FAIL;
		if (expect_ok(xfer(e, p, IBV_WR_SEND, l.p, l.mr->lkey, tc->size, 0, 0, 0, 0), "send"))
			return T_FAIL;
		st = wait_wc(e, e->rcq, &wc, 20);
		if (expect_ok(st, srq ? "srq receive" : "receive"))
			return T_FAIL;
		if (wc.byte_len != tc->size)
			return tfail("receive completion says %u bytes, sent %zu", wc.byte_len, tc->size);
		if (check_region(srq ? "srq receive" : "receive", t, tlen, tc->off, tc->size, seed, 0))
			return T_FAIL;
	}
	if (srq)
		pair_destroy(&sp);
	return T_PASS;
}

static int t_send(struct env *e, const struct tcase *tc)
{
	return send_recv(e, tc, false);
}

static int t_srq_send(struct env *e, const struct tcase *tc)
{
	return send_recv(e, tc, true);
}

/* One atomic; checks the returned original value and the new value in memory. */
static int atomic_check(struct env *e, struct lbuf *l, struct ibv_mr *mr, uint64_t *target,
			enum ibv_wr_opcode op, uint64_t cmp_add, uint64_t swap, uint64_t want_orig,
			uint64_t want_new, const char *what)
{
	uint64_t *res = (uint64_t *)l->p;

	*res = 0xdeadbeefdeadbeefULL;
	if (expect_ok(xfer(e, &e->rc, op, res, l->mr->lkey, 8, (uintptr_t)target, mr->rkey, cmp_add,
			   swap), what))
		return T_FAIL;
	if (*res != want_orig)
		return tfail("%s: returned original 0x%" PRIx64 ", want 0x%" PRIx64, what, *res, want_orig);
	if (*target != want_new)
		return tfail("%s: memory holds 0x%" PRIx64 ", want 0x%" PRIx64, what, *target, want_new);
	return 0;
}

/*
 * Compare-and-swap and fetch-and-add on never-touched memory (the last u64 of a page and the
 * first of the next), then on present memory; a failing compare leaves the memory alone.
 */
static int t_atomic(struct env *e, const struct tcase *tc)
{
	const uint64_t a = 0x0123456789abcdefULL, b = 0xfedcba9876543210ULL;
	bool cas = tc->size == 0;
	enum ibv_wr_opcode op = cas ? IBV_WR_ATOMIC_CMP_AND_SWP : IBV_WR_ATOMIC_FETCH_AND_ADD;
	struct lbuf l;
	struct ibv_mr *mr;
	uint8_t *t;
	size_t tlen;

	if (target_get(e, 3 * PAGE, &t, &tlen, &mr) || lbuf_get(e, &l, PAGE, K_PINNED))
		return T_FAIL;
	for (int i = 0; i < 2; i++) {
		uint64_t *x = (uint64_t *)(t + PAGE - 8 + i * 8);

		if (cas) {
			if (atomic_check(e, &l, mr, x, op, 0, a, 0, a, "cas on untouched memory") ||
			    atomic_check(e, &l, mr, x, op, b, 1, a, a, "cas with a wrong compare value") ||
			    atomic_check(e, &l, mr, x, op, a, b, a, b, "cas on present memory"))
				return T_FAIL;
		} else {
			if (atomic_check(e, &l, mr, x, op, a, 0, 0, a, "faa on untouched memory") ||
			    atomic_check(e, &l, mr, x, op, b, 0, a, a + b, "faa on present memory"))
				return T_FAIL;
		}
	}
	/* Nothing else changed. */
	for (size_t i = 0; i < tlen; i++)
		if ((i < PAGE - 8 || i >= PAGE + 8) && t[i])
			return tfail("byte %zu outside the atomic targets became 0x%02x", i, t[i]);
	return T_PASS;
}

/*
 * UD: the send buffer and the receive buffer (GRH + payload) both of this kind, never touched
 * before; the payload is 1000 bytes at an unaligned offset (a UD message is one packet).
 */
static int t_ud(struct env *e, const struct tcase *tc)
{
	const size_t grh = 40, msg = tc->size, off = tc->off;
	struct pair up;
	struct lbuf l;
	struct ibv_mr *mr;
	struct ibv_wc wc;
	uint8_t *t;
	size_t tlen;

	if (pair_create(e, &up, IBV_QPT_UD, false))
		return T_FAIL;
	if (target_get(e, off + grh + msg, &t, &tlen, &mr) || lbuf_get(e, &l, 2 * PAGE, e->kind))
		return T_FAIL;
	for (int round = 0; round < 2; round++) {
		int seed = 51 + round;

		fill(l.p + off, msg, seed);
		if (post_recv(&up, t + off, mr->lkey, grh + msg))
			return T_FAIL;
		if (expect_ok(xfer(e, &up, IBV_WR_SEND, l.p + off, l.mr->lkey, msg, 0, 0, 0, 0), "ud send") ||
		    expect_ok(wait_wc(e, e->rcq, &wc, 20), "ud receive"))
			return T_FAIL;
		if (wc.byte_len != grh + msg)
			return tfail("ud receive completion says %u bytes, want %zu (GRH + payload)",
				     wc.byte_len, grh + msg);
		if (!(wc.wc_flags & IBV_WC_GRH))
			return tfail("ud receive completion without IBV_WC_GRH");
		/* The GRH area is the device's to fill; the payload and everything after it are ours. */
		if (check_region("ud receive", t + off + grh, tlen - off - grh, 0, msg, seed, 0))
			return T_FAIL;
		for (size_t i = 0; i < off; i++)
			if (t[i])
				return tfail("ud receive: byte %zu before the receive buffer became 0x%02x", i, t[i]);
	}
	pair_destroy(&up);
	return T_PASS;
}

/* ODP capabilities as the device reports them. */
static int t_caps(struct env *e, const struct tcase *tc)
{
	struct ibv_device_attr_ex a;
	const uint32_t rc = IBV_ODP_SUPPORT_SEND | IBV_ODP_SUPPORT_RECV | IBV_ODP_SUPPORT_WRITE |
			    IBV_ODP_SUPPORT_READ | IBV_ODP_SUPPORT_ATOMIC | IBV_ODP_SUPPORT_SRQ_RECV;
	const uint32_t ud = IBV_ODP_SUPPORT_SEND | IBV_ODP_SUPPORT_RECV;

	if (ibv_query_device_ex(e->ctx, NULL, &a))
		return tfail("ibv_query_device_ex: %s", strerror(errno));
	if (!(a.odp_caps.general_caps & IBV_ODP_SUPPORT))
		return tfail("general_caps 0x%" PRIx64 " lacks IBV_ODP_SUPPORT", a.odp_caps.general_caps);
	if (tc->size && !(a.odp_caps.general_caps & IBV_ODP_SUPPORT_IMPLICIT))
		return tfail("general_caps 0x%" PRIx64 " lacks IBV_ODP_SUPPORT_IMPLICIT",
			     a.odp_caps.general_caps);
	if ((a.odp_caps.per_transport_caps.rc_odp_caps & rc) != rc)
		return tfail("rc_odp_caps 0x%x lacks 0x%x", a.odp_caps.per_transport_caps.rc_odp_caps,
			     rc & ~a.odp_caps.per_transport_caps.rc_odp_caps);
	if ((a.odp_caps.per_transport_caps.ud_odp_caps & ud) != ud)
		return tfail("ud_odp_caps 0x%x lacks 0x%x", a.odp_caps.per_transport_caps.ud_odp_caps,
			     ud & ~a.odp_caps.per_transport_caps.ud_odp_caps);
	return T_PASS;
}

/* An implicit MR serves memory mapped after it was registered, anywhere. */
static int t_implicit_late(struct env *e, const struct tcase *tc)
{
	struct lbuf l;
	size_t len = 3 * PAGE;
	uint8_t *bufs[4];

	(void)tc;
	if (lbuf_get(e, &l, len, K_PINNED))
		return T_FAIL;
	for (int i = 0; i < 4; i++) {
		bufs[i] = i & 1 ? map_aligned(len, 1UL << 30) : map_anon(len);
		if (!bufs[i])
			return tfail("mmap: %s", strerror(errno));
		fill(l.p, len - 9, 60 + i);
		if (expect_ok(xfer(e, &e->rc, IBV_WR_RDMA_WRITE, l.p, l.mr->lkey, len - 9,
				   (uintptr_t)bufs[i] + 5, e->implicit->rkey, 0, 0), "rdma write") ||
		    check_region("rdma write through the implicit MR", bufs[i], len, 5, len - 9, 60 + i, 0))
			return T_FAIL;
	}
	return T_PASS;
}

/* An explicit ODP MR of 8 GiB (the stock rxe refuses 4 GiB and more): its far end works. */
static int t_reg_8g(struct env *e, const struct tcase *tc)
{
	const size_t len = 8UL << 30, msg = 4097, off = len - 5000;
	struct lbuf l;
	struct ibv_mr *mr;
	uint8_t *t;

	(void)tc;
	t = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (t == MAP_FAILED)
		return tfail("mmap of 8 GiB (MAP_NORESERVE): %s", strerror(errno));
	mr = mr_get(e, e->kind, t, len, ACC_ALL);
	if (!mr)
		return tfail("%s registration of 8 GiB: %s", kind_names[e->kind], strerror(errno));
	if (lbuf_get(e, &l, msg, K_PINNED))
		return T_FAIL;
	fill(l.p, msg, 70);
	if (expect_ok(xfer(e, &e->rc, IBV_WR_RDMA_WRITE, l.p, l.mr->lkey, msg, (uintptr_t)t + off,
			   mr->rkey, 0, 0), "rdma write near the end of 8 GiB") ||
	    check_region("rdma write near the end of 8 GiB", t + off - 3000, 3000 + msg + 903, 3000, msg, 70, 0))
		return T_FAIL;
	return T_PASS;
}

const struct tcase data_tests[] = {
	{ "caps-odp", t_caps, KB(K_ODP), 0, 0, 0 },
	{ "caps-implicit", t_caps, KB(K_IMPLICIT), 1, 0, 0 },
	{ "write-1B", t_write, K_ALL, 1, 0, 0 },
	{ "write-1B-off4095", t_write, K_ALL, 1, 4095, 0 },
	{ "write-4097B-off3", t_write, K_ALL, 4097, 3, 0 },
	{ "write-1MiB+7-off13", t_write, K_ALL, MIB + 7, 13, 0 },
	{ "write-64MiB+5-off1", t_write, K_ALL, 64 * MIB + 5, 1, 400 },
	{ "read-1B", t_read, K_ALL, 1, 0, 0 },
	{ "read-4097B-off3", t_read, K_ALL, 4097, 3, 0 },
	{ "read-1MiB+7-off13", t_read, K_ALL, MIB + 7, 13, 0 },
	{ "read-untouched-64KiB+3-off5", t_read_untouched, K_ALL, 65539, 5, 0 },
	{ "local-write-src-1MiB+7-off13", t_local_write, K_ALL, MIB + 7, 13, 0 },
	{ "local-read-dst-1MiB+7-off13", t_local_read, K_ALL, MIB + 7, 13, 0 },
	{ "send-1B", t_send, K_ALL, 1, 0, 0 },
	{ "send-4097B-off3", t_send, K_ALL, 4097, 3, 0 },
	{ "send-256KiB+5-off7", t_send, K_ALL, 256 * 1024 + 5, 7, 0 },
	{ "srq-send-4097B-off3", t_srq_send, K_ALL, 4097, 3, 0 },
	{ "srq-send-64KiB+1-off1", t_srq_send, K_ALL, 65537, 1, 0 },
	{ "atomic-cas", t_atomic, K_ALL, 0, 0, 0 },
	{ "atomic-faa", t_atomic, K_ALL, 1, 0, 0 },
	{ "ud-send-1000B-off3", t_ud, K_ALL, 1000, 3, 0 },
	{ "ud-send-1B-off4095", t_ud, K_ALL, 1, 4095, 0 },
	{ "implicit-late-mappings", t_implicit_late, KB(K_IMPLICIT), 0, 0, 0 },
	{ "reg-8GiB-far-end", t_reg_8g, KB(K_ODP), 0, 0, 0 },
	{ 0 }
};
