// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * hmmv_odp_test, group hostile-verbs: the hostile-input and race matrix of the verbs (suite
 * hostile). Each case asserts the exact errno or completion status, that no byte it must not
 * touch changed (a snapshot of every watched region is compared after each refused operation),
 * that every operation that succeeded moved exactly the right bytes, and that the device still
 * works afterwards (sanity()). Races end with checks on data that only the test's own thread
 * writes: errors are allowed while racing, wrong data never is.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rdma/ib_user_ioctl_verbs.h>

#include "odp.h"
#include "rc_connect.h"

/* The end of the x86-64 user address space (4-level paging): the implicit MR ends here. */
#define USER_TOP 0x7ffffffff000ULL
#define TOP (~0ULL)

static double secs_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t0->tv_sec) + (now.tv_nsec - t0->tv_nsec) / 1e9;
}

static const char *op_name(enum ibv_wr_opcode op)
{
	switch (op) {
	case IBV_WR_RDMA_WRITE: return "write";
	case IBV_WR_RDMA_READ: return "read";
	case IBV_WR_ATOMIC_CMP_AND_SWP: return "CAS";
	case IBV_WR_ATOMIC_FETCH_AND_ADD: return "FAA";
	case IBV_WR_SEND: return "send";
	default: return "op";
	}
}

static bool is_atomic(enum ibv_wr_opcode op)
{
	return op == IBV_WR_ATOMIC_CMP_AND_SWP || op == IBV_WR_ATOMIC_FETCH_AND_ADD;
}

/* An MR of the test's kind of its own (a second implicit MR for kind implicit). */
static struct ibv_mr *mr_own(struct env *e, void *addr, size_t len, int access)
{
	if (e->kind == K_IMPLICIT)
		return ibv_reg_mr(e->pd, NULL, SIZE_MAX, access | IBV_ACCESS_ON_DEMAND);
	return mr_get(e, e->kind, addr, len, access);
}

/* --- watched regions: what a refused operation must not change ------------------------------- */

#define MAX_WATCH 4

struct watch {
	int n;
	struct {
		const uint8_t *p;
		uint8_t *was;
		size_t len;
		const char *name;
	} w[MAX_WATCH];
};

static int watch_add(struct watch *w, const uint8_t *p, size_t len, const char *name)
{
	if (w->n == MAX_WATCH)
		return tfail("watch_add: too many regions");
	w->w[w->n].p = p;
	w->w[w->n].len = len;
	w->w[w->n].name = name;
	w->w[w->n].was = malloc(len);
	if (!w->w[w->n].was)
		return tfail("malloc: %s", strerror(errno));
	memcpy(w->w[w->n].was, p, len);
	w->n++;
	return 0;
}

/* Take the current contents as the reference (after a checked, legitimate change). */
static void watch_update(struct watch *w)
{
	for (int i = 0; i < w->n; i++)
		memcpy(w->w[i].was, w->w[i].p, w->w[i].len);
}

static int watch_check(const struct watch *w, const char *after)
{
	for (int i = 0; i < w->n; i++) {
		size_t first = SIZE_MAX, n = 0;

		for (size_t j = 0; j < w->w[i].len; j++) {
			if (w->w[i].p[j] == w->w[i].was[j])
				continue;
			if (first == SIZE_MAX)
				first = j;
			n++;
		}
		if (n)
			return tfail("%s: %zu bytes of %s changed, first at byte %zu (0x%02x, was 0x%02x)",
				     after, n, w->w[i].name, first, w->w[i].p[first], w->w[i].was[first]);
	}
	return 0;
}

static void watch_free(struct watch *w)
{
	for (int i = 0; i < w->n; i++)
		free(w->w[i].was);
	w->n = 0;
}

/*
 * @op of @len bytes at @raddr through @rkey on pair @p must complete with @want; then the QPs
 * are reset and nothing watched changed.
 */
static int refused(struct env *e, struct pair *p, struct lbuf *l, enum ibv_wr_opcode op,
		   size_t len, uint64_t raddr, uint32_t rkey, enum ibv_wc_status want,
		   const struct watch *w, const char *why)
{
	char what[200];
	int st;

	snprintf(what, sizeof(what), "%s of %zu bytes at 0x%llx with key 0x%x (%s)", op_name(op),
		 is_atomic(op) ? (size_t)8 : len, (unsigned long long)raddr, rkey, why);
	st = xfer(e, p, op, l->p, l->mr->lkey, is_atomic(op) ? 8 : len, raddr, rkey, 1, 2);
	if (expect_err(st, want, what) || pair_reset(e, p))
		return T_FAIL;
	return watch_check(w, what);
}

/* --- 1. registration parameters ----------------------------------------------------------------- */

/* A registration that must fail with @want (or @want2 when nonzero): never success. */
static int reg_refused(struct ibv_mr *mr, int err, int want, int want2, const char *what)
{
	if (mr) {
		uint32_t key = mr->lkey;

		ibv_dereg_mr(mr);
		return tfail("%s: registered (lkey 0x%x), want %s", what, key, strerror(want));
	}
	if (err != want && (!want2 || err != want2))
		return tfail("%s: %s, want %s%s%s", what, strerror(err), strerror(want),
			     want2 ? " or " : "", want2 ? strerror(want2) : "");
	tnote("%s: %s", what, strerror(err));
	return 0;
}

/* Every case is tried (the first failure is the one reported); @fails counts them. */
#define REG_REFUSED(call, want, want2, what)					\
	do {									\
		struct ibv_mr *m_;						\
		errno = 0;							\
		m_ = (call);							\
		fails += reg_refused(m_, errno, want, want2, what) != 0;	\
	} while (0)

static int reg_params_implicit(struct env *e)
{
	const int acc = ACC_ALL | IBV_ACCESS_ON_DEMAND;
	int fails = 0;

	REG_REFUSED(ibv_reg_mr_iova2(e->pd, NULL, SIZE_MAX, 2 * MIB, acc), EINVAL, 0,
		    "implicit MR at iova 2 MiB");
	REG_REFUSED(ibv_reg_mr_iova2(e->pd, NULL, SIZE_MAX, 1ULL << 63, acc), EINVAL, 0,
		    "implicit MR at iova 2^63");
	REG_REFUSED(ibv_reg_mr_iova2(e->pd, NULL, SIZE_MAX, TOP - PAGE + 1, acc), EINVAL, 0,
		    "implicit MR at iova 2^64 - 4 KiB");
	/* The page offset of the iova differs from the address's (0): the core refuses it. */
	REG_REFUSED(ibv_reg_mr_iova2(e->pd, NULL, SIZE_MAX, 1, acc), EINVAL, 0,
		    "implicit MR at iova 1");
	/* Not quite implicit: from 0, all but the last page of the 64-bit space. */
	REG_REFUSED(ibv_reg_mr(e->pd, NULL, SIZE_MAX - PAGE + 1, acc), EINVAL, 0,
		    "an explicit ODP MR from 0 of length 2^64 - 4 KiB");
	if (fails)
		return T_FAIL;
	return sanity(e, "refused implicit registrations");
}

/*
 * Evidence for the report when an MR whose iova range wraps is accepted: where a write at its
 * first iova and one at the wrapped iova 0 (which stands for @b + 8 KiB) end up.
 */
static void wrap_evidence(struct env *e, uint8_t *b, size_t len, int acc)
{
	struct ibv_mr *mr = ibv_reg_mr_iova2(e->pd, b, len, TOP - 2 * PAGE + 1, acc);
	struct lbuf l;
	int st0, st1;

	if (!mr || lbuf_get(e, &l, 8, K_PINNED))
		goto out;
	memset(b, 0, len);
	memset(l.p, 0x77, 8);
	st0 = xfer(e, &e->rc, IBV_WR_RDMA_WRITE, l.p, l.mr->lkey, 8, TOP - 2 * PAGE + 1, mr->rkey, 0, 0);
	pair_reset(e, &e->rc);
	st1 = xfer(e, &e->rc, IBV_WR_RDMA_WRITE, l.p, l.mr->lkey, 8, 0, mr->rkey, 0, 0);
	pair_reset(e, &e->rc);
	tnote("accepted iova 2^64 - 8 KiB, length 16 KiB: a write at that iova: %s (buffer byte 0: "
	      "0x%02x); at the wrapped iova 0: %s (buffer byte 8192: 0x%02x)",
	      st_str(st0), b[0], st_str(st1), b[2 * PAGE]);
	lbuf_put(e, &l);
out:
	if (mr)
		ibv_dereg_mr(mr);
}

static int t_reg_params(struct env *e, const struct tcase *tc)
{
	const int acc = ACC_ALL | (e->kind == K_ODP ? IBV_ACCESS_ON_DEMAND : 0);
	const size_t len = 4 * PAGE, moff = 5, mlen = 3 * PAGE + 7, msg = 100;
	const uint64_t iova = 0x5a5a00000000ULL + moff;	/* same page offset as the address */
	struct ibv_mr *mr;
	struct watch w = { 0 };
	struct lbuf l;
	uint8_t *b = map_anon(len);
	int fails = 0;

	(void)tc;
	if (e->kind == K_IMPLICIT)
		return reg_params_implicit(e);
	if (!b)
		return tfail("mmap: %s", strerror(errno));
	wrap_evidence(e, b, len, acc);
	REG_REFUSED(ibv_reg_mr_iova2(e->pd, b, len, TOP - 2 * PAGE + 1, acc), EINVAL, 0,
		    "iova 2^64 - 8 KiB + length 16 KiB wraps past 2^64");
	REG_REFUSED(ibv_reg_mr_iova2(e->pd, b, len, TOP, acc), EINVAL, 0,
		    "iova 2^64 - 1 + length 16 KiB wraps past 2^64");
	REG_REFUSED(ibv_reg_mr_iova2(e->pd, (void *)(uintptr_t)(TOP - PAGE + 1), 2 * PAGE, 0x10000, acc),
		    EINVAL, 0, "address 2^64 - 4 KiB + length 8 KiB wraps past 2^64");
	/* Not wrapping, but not user memory: EINVAL (ODP: outside the address space) or EFAULT (pinning). */
	REG_REFUSED(ibv_reg_mr(e->pd, (void *)0xffff888000000000ULL, len, acc), EINVAL, EFAULT,
		    "a kernel address");
	REG_REFUSED(ibv_reg_mr_iova2(e->pd, b + 16, len, 0x100000, acc), EINVAL, 0,
		    "address offset 16 in its page, iova offset 0");
	REG_REFUSED(ibv_reg_mr_iova2(e->pd, b, len, 0x100000 + 16, acc), EINVAL, 0,
		    "address offset 0 in its page, iova offset 16");

	/* Accepted: unaligned start and length at an unrelated iova with the same page offset. */
	fill(b, len, 1);
	mr = ibv_reg_mr_iova2(e->pd, b + moff, mlen, iova, acc);
	if (!mr)
		return tfail("%zu bytes at page offset %zu, iova 0x%llx: %s", mlen, moff,
			     (unsigned long long)iova, strerror(errno));
	if (lbuf_get(e, &l, msg, K_PINNED) || watch_add(&w, b, len, "the buffer"))
		return T_FAIL;
	/* The last 100 bytes of the MR, by iova: they must land at the end of the registered range. */
	fill(l.p, msg, 2);
	if (expect_ok(xfer(e, &e->rc, IBV_WR_RDMA_WRITE, l.p, l.mr->lkey, msg, iova + mlen - msg, mr->rkey,
			   0, 0), "write of the last 100 bytes by iova"))
		return T_FAIL;
	if (check_slice("the last 100 bytes of the MR", b + moff + mlen - msg, msg, 0, 2) ||
	    check_slice("the bytes before them", b, moff + mlen - msg, 0, 1) ||
	    check_slice("the bytes after the MR", b + moff + mlen, len - moff - mlen, moff + mlen, 1))
		return T_FAIL;
	watch_update(&w);
	memset(l.p, 0, msg);
	if (expect_ok(xfer(e, &e->rc, IBV_WR_RDMA_READ, l.p, l.mr->lkey, msg, iova, mr->rkey, 0, 0),
		      "read of the first 100 bytes by iova") ||
	    check_slice("read of the first 100 bytes by iova", l.p, msg, moff, 1))
		return T_FAIL;
	if (refused(e, &e->rc, &l, IBV_WR_RDMA_WRITE, 1, iova + mlen, mr->rkey, IBV_WC_REM_ACCESS_ERR,
		    &w, "the byte after an unaligned MR") ||
	    refused(e, &e->rc, &l, IBV_WR_RDMA_WRITE, 1, iova - 1, mr->rkey, IBV_WC_REM_ACCESS_ERR,
		    &w, "the byte before an unaligned MR") ||
	    refused(e, &e->rc, &l, IBV_WR_RDMA_WRITE, msg, (uintptr_t)b + moff, mr->rkey,
		    IBV_WC_REM_ACCESS_ERR, &w, "by virtual address instead of iova"))
		return T_FAIL;
	if (ibv_dereg_mr(mr))
		return tfail("dereg: %s", strerror(errno));
	lbuf_put(e, &l);
	watch_free(&w);
	if (fails)
		return T_FAIL;
	return sanity(e, "hostile registration parameters");
}

/* --- 2. remote addresses at the bounds and near 2^64 -------------------------------------------- */

struct bound_case {
	enum ibv_wr_opcode op;
	uint64_t raddr;
	size_t len;
	const char *why;
};

static int run_refusals(struct env *e, struct lbuf *l, const struct bound_case *c, int n, uint32_t rkey,
			const struct watch *w)
{
	for (int i = 0; i < n; i++)
		if (refused(e, &e->rc, l, c[i].op, c[i].len, c[i].raddr, rkey, IBV_WC_REM_ACCESS_ERR, w,
			    c[i].why))
			return T_FAIL;
	return 0;
}

/*
 * Explicit MR (pinned / ODP) over t[5, 5 + 3 pages + 7) at iova 5, so that an address near 2^64
 * whose range wraps past zero ends inside the MR.
 */
static int bounds_explicit(struct env *e)
{
	const size_t tlen = 4 * PAGE, moff = 5, mlen = 3 * PAGE + 7;
	const uint64_t base = moff, end = base + mlen;
	const int acc = ACC_ALL | (e->kind == K_ODP ? IBV_ACCESS_ON_DEMAND : 0);
	const struct bound_case cases[] = {
		{ IBV_WR_RDMA_WRITE, TOP - 7, 8, "the last 8 bytes of the 64-bit space" },
		{ IBV_WR_RDMA_READ, TOP - 7, 8, "the last 8 bytes of the 64-bit space" },
		{ IBV_WR_ATOMIC_FETCH_AND_ADD, TOP - 7, 8, "the last 8 bytes of the 64-bit space" },
		{ IBV_WR_ATOMIC_CMP_AND_SWP, TOP - PAGE + 1, 8, "2^64 - 4096" },
		{ IBV_WR_RDMA_WRITE, TOP - PAGE, 100, "2^64 - 4097" },
		{ IBV_WR_RDMA_READ, TOP - PAGE, 100, "2^64 - 4097" },
		{ IBV_WR_RDMA_WRITE, TOP - 7, 8 + base + 16, "wraps past 2^64 into the MR's first 16 bytes" },
		{ IBV_WR_RDMA_READ, TOP - 7, 8 + base + 16, "wraps past 2^64 into the MR's first 16 bytes" },
		{ IBV_WR_RDMA_WRITE, TOP - 2999, 3000 + base + 3000, "6 KiB wrapping past 2^64 into the MR" },
		{ IBV_WR_RDMA_WRITE, base - 1, 2, "starts one byte before the MR" },
		{ IBV_WR_RDMA_READ, base - 1, 2, "starts one byte before the MR" },
		{ IBV_WR_ATOMIC_FETCH_AND_ADD, 0, 8, "covers the 5 bytes before the MR" },
		{ IBV_WR_RDMA_WRITE, end - 10, 11, "ends one byte past the MR" },
		{ IBV_WR_RDMA_READ, end - 10, 11, "ends one byte past the MR" },
		{ IBV_WR_RDMA_WRITE, base, mlen + 1, "the whole MR and one byte more (several packets)" },
		{ IBV_WR_ATOMIC_FETCH_AND_ADD, (end - 8 + 7) & ~7ULL, 8, "crosses the MR's end" },
		{ IBV_WR_ATOMIC_CMP_AND_SWP, (end + 7) & ~7ULL, 8, "after the MR's end" },
	};
	uint8_t *t = map_anon(tlen);
	struct watch w = { 0 };
	struct ibv_mr *mr;
	struct lbuf l;
	uint64_t *u;

	if (!t)
		return tfail("mmap: %s", strerror(errno));
	fill(t, tlen, 1);
	mr = ibv_reg_mr_iova2(e->pd, t + moff, mlen, base, acc);
	if (!mr)
		return tfail("registration of %zu bytes at iova %llu: %s", mlen, (unsigned long long)base,
			     strerror(errno));
	if (lbuf_get(e, &l, tlen + 2 * PAGE, K_PINNED) || watch_add(&w, t, tlen, "the target buffer"))
		return T_FAIL;
	fill(l.p, l.len, 7);
	if (run_refusals(e, &l, cases, sizeof(cases) / sizeof(cases[0]), mr->rkey, &w))
		return T_FAIL;

	/* The controls: exactly the MR's range works, byte for byte. */
	if (expect_ok(xfer(e, &e->rc, IBV_WR_RDMA_WRITE, l.p, l.mr->lkey, mlen, base, mr->rkey, 0, 0),
		      "write of exactly the whole MR") ||
	    check_slice("the bytes before the MR after the write", t, moff, 0, 1) ||
	    check_slice("the MR after a write of all of it", t + moff, mlen, 0, 7) ||
	    check_slice("the bytes after the MR after the write", t + moff + mlen, tlen - moff - mlen,
			moff + mlen, 1))
		return T_FAIL;
	memset(l.p, 0, l.len);
	if (expect_ok(xfer(e, &e->rc, IBV_WR_RDMA_READ, l.p, l.mr->lkey, mlen, base, mr->rkey, 0, 0),
		      "read of exactly the whole MR") ||
	    check_slice("read of exactly the whole MR", l.p, mlen, 0, 7))
		return T_FAIL;
	/* The last aligned word inside: FAA by iova, at t + its offset. */
	u = (uint64_t *)(t + ((end - 8) & ~7ULL));
	*u = 1000;
	if (expect_ok(xfer(e, &e->rc, IBV_WR_ATOMIC_FETCH_AND_ADD, l.p, l.mr->lkey, 8, (end - 8) & ~7ULL,
			   mr->rkey, 5, 0), "FAA on the last aligned word of the MR"))
		return T_FAIL;
	if (*u != 1005 || *(uint64_t *)l.p != 1000)
		return tfail("FAA on the last word: memory %llu (want 1005), returned %llu (want 1000)",
			     (unsigned long long)*u, (unsigned long long)*(uint64_t *)l.p);
	ibv_dereg_mr(mr);
	lbuf_put(e, &l);
	watch_free(&w);
	munmap(t, tlen);
	return 0;
}

/* Map one page at @addr exactly (NULL when the kernel refuses: then only the refusal is checked). */
static uint8_t *map_at(uint64_t addr)
{
	void *p = mmap((void *)(uintptr_t)addr, PAGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

	if (p == MAP_FAILED || p != (void *)(uintptr_t)addr) {
		tnote("cannot map a page at 0x%llx: %s", (unsigned long long)addr, strerror(errno));
		if (p != MAP_FAILED)
			munmap(p, PAGE);
		return NULL;
	}
	return p;
}

/*
 * Implicit MR: it starts at 0 and ends at the top of the user address space. Page 0 and the
 * last user page are mapped where the kernel allows it (root may map below mmap_min_addr), so
 * that an access that wraps past 2^64 or runs past the top would find memory there.
 */
static int bounds_implicit(struct env *e)
{
	const struct bound_case cases[] = {
		{ IBV_WR_RDMA_WRITE, TOP - 7, 8, "the last 8 bytes of the 64-bit space" },
		{ IBV_WR_RDMA_READ, TOP - 7, 8, "the last 8 bytes of the 64-bit space" },
		{ IBV_WR_ATOMIC_FETCH_AND_ADD, TOP - 7, 8, "the last 8 bytes of the 64-bit space" },
		{ IBV_WR_ATOMIC_CMP_AND_SWP, TOP - PAGE + 1, 8, "2^64 - 4096" },
		{ IBV_WR_RDMA_WRITE, TOP - PAGE, 100, "2^64 - 4097" },
		{ IBV_WR_RDMA_READ, TOP - PAGE, 100, "2^64 - 4097" },
		{ IBV_WR_RDMA_WRITE, TOP - 7, 8 + 16, "wraps past 2^64 into page 0" },
		{ IBV_WR_RDMA_READ, TOP - 7, 8 + 16, "wraps past 2^64 into page 0" },
		{ IBV_WR_RDMA_WRITE, TOP, 2, "starts one byte before the MR: 2^64 - 1, wrapping to 0" },
		{ IBV_WR_RDMA_WRITE, TOP - 2999, 3000 + 3000, "6 KiB wrapping past 2^64 into page 0" },
		{ IBV_WR_RDMA_WRITE, USER_TOP - 8, 16, "crosses the top of the user address space" },
		{ IBV_WR_RDMA_READ, USER_TOP - 8, 16, "crosses the top of the user address space" },
		{ IBV_WR_RDMA_WRITE, USER_TOP, 8, "the first byte above the user address space" },
		{ IBV_WR_ATOMIC_FETCH_AND_ADD, USER_TOP, 8, "the first word above the user address space" },
		{ IBV_WR_RDMA_READ, 0xffffffffff600000ULL, 64, "the vsyscall page" },
		{ IBV_WR_RDMA_WRITE, 1ULL << 63, 64, "a non-canonical address" },
		{ IBV_WR_RDMA_READ, 0xffff800000000000ULL, 64, "the first kernel address" },
	};
	uint8_t *zero = map_at(0), *top = map_at(USER_TOP - PAGE);
	struct ibv_mr *mr = mr_get(e, K_IMPLICIT, NULL, 0, ACC_ALL);
	struct watch w = { 0 };
	struct lbuf l;

	if (!mr)
		return tfail("implicit registration: %s", strerror(errno));
	if (lbuf_get(e, &l, 2 * PAGE, K_PINNED))
		return T_FAIL;
	fill(l.p, l.len, 7);
	if (zero) {
		fill(zero, PAGE, 1);
		if (watch_add(&w, zero, PAGE, "page 0"))
			return T_FAIL;
	}
	if (top) {
		fill(top, PAGE, 2);
		if (watch_add(&w, top, PAGE, "the last user page"))
			return T_FAIL;
	}
	if (run_refusals(e, &l, cases, sizeof(cases) / sizeof(cases[0]), mr->rkey, &w))
		return T_FAIL;
	/* The controls: the memory next to each refused range is reachable. */
	if (zero) {
		if (expect_ok(xfer(e, &e->rc, IBV_WR_RDMA_WRITE, l.p, l.mr->lkey, 16, 0, mr->rkey, 0, 0),
			      "write of 16 bytes at address 0") ||
		    check_slice("page 0 after a write at 0", zero, 16, 0, 7) ||
		    check_slice("the rest of page 0", zero + 16, PAGE - 16, 16, 1))
			return T_FAIL;
	}
	if (top) {
		if (expect_ok(xfer(e, &e->rc, IBV_WR_RDMA_WRITE, l.p, l.mr->lkey, 8, USER_TOP - 8, mr->rkey,
				   0, 0), "write of the last 8 bytes of the user address space") ||
		    check_slice("the last user page after a write of its last 8 bytes", top, PAGE - 8, 0, 2) ||
		    check_slice("the last 8 user bytes", top + PAGE - 8, 8, 0, 7))
			return T_FAIL;
	}
	lbuf_put(e, &l);
	watch_free(&w);
	if (zero)
		munmap(zero, PAGE);
	if (top)
		munmap(top, PAGE);
	return 0;
}

static int t_raddr_bounds(struct env *e, const struct tcase *tc)
{
	(void)tc;
	if ((e->kind == K_IMPLICIT ? bounds_implicit(e) : bounds_explicit(e)))
		return T_FAIL;
	return sanity(e, "refused out-of-bounds addresses");
}

/* --- 3. dereg during traffic ---------------------------------------------------------------------- */

#define DQ_PAIRS 4
#define DQ_PER_QP 16
#define DQ_MSG (64 * 1024 + 3)
#define DQ_STRIDE (17 * PAGE)
#define DQ_OFF 1

/* A slot whose write failed may hold part of the message (whole packets), nothing else. */
static int check_failed_slot(const uint8_t *s, int slot)
{
	for (size_t i = 0; i < DQ_MSG; i++)
		if (s[i] && s[i] != pattern(i, 7))
			return tfail("slot %d (write failed): byte %zu is 0x%02x, neither 0 nor the message's 0x%02x",
				     slot, i, s[i], pattern(i, 7));
	return 0;
}

static int check_slots(const uint8_t *t, const int *status)
{
	for (int s = 0; s < DQ_PAIRS * DQ_PER_QP; s++) {
		const uint8_t *p = t + (size_t)s * DQ_STRIDE;
		char what[64];

		snprintf(what, sizeof(what), "slot %d (write succeeded)", s);
		if (check_zero("the bytes before a slot", p, DQ_OFF) ||
		    check_zero("the bytes after a slot", p + DQ_OFF + DQ_MSG, DQ_STRIDE - DQ_OFF - DQ_MSG))
			return T_FAIL;
		if (status[s] == IBV_WC_SUCCESS ? check_slice(what, p + DQ_OFF, DQ_MSG, 0, 7) :
						  check_failed_slot(p + DQ_OFF, s))
			return T_FAIL;
	}
	return 0;
}

struct dq_count {
	int status[DQ_PAIRS * DQ_PER_QP];
	bool failed_qp[DQ_PAIRS];
	int n, ok, errs;
};

/* Wait for @n more completions; per QP, nothing may succeed after an error. */
static int collect(struct env *e, struct pair *pairs, struct dq_count *c, int n)
{
	for (int i = 0; i < n; i++, c->n++) {
		struct ibv_wc wc;
		int st = wait_wc(e, e->scq, &wc, 60), q;

		if (st == XFER_TIMEOUT)
			return tfail("completion %d of %d never came (%d ok, %d errors)", c->n + 1,
				     DQ_PAIRS * DQ_PER_QP, c->ok, c->errs);
		if (st != IBV_WC_SUCCESS && st != IBV_WC_REM_ACCESS_ERR && st != IBV_WC_WR_FLUSH_ERR &&
		    st != IBV_WC_REM_OP_ERR && st != IBV_WC_REM_INV_REQ_ERR)
			return tfail("after dereg: completion %d: unexpected %s", i + 1, st_str(st));
		for (q = 0; q < DQ_PAIRS; q++)
			if (pairs[q].req->qp_num == wc.qp_num)
				break;
		if (q == DQ_PAIRS || wc.wr_id >= (uint64_t)(DQ_PAIRS * DQ_PER_QP))
			return tfail("a completion of an unknown QP 0x%x / wr_id %llu", wc.qp_num,
				     (unsigned long long)wc.wr_id);
		if (st == IBV_WC_SUCCESS && c->failed_qp[q])
			return tfail("QP %d: write %llu succeeded after an earlier error completion", q,
				     (unsigned long long)wc.wr_id);
		c->failed_qp[q] |= st != IBV_WC_SUCCESS;
		c->status[wc.wr_id] = st;
		if (st == IBV_WC_SUCCESS)
			c->ok++;
		else
			c->errs++;
	}
	return 0;
}

/*
 * Dereg with 64 writes of 64 KiB on 4 QPs into untouched memory, once the first of them has
 * completed (so that the traffic is under way, not merely queued).
 */
static int t_dereg_multiqp(struct env *e, const struct tcase *tc)
{
	const size_t len = (size_t)DQ_PAIRS * DQ_PER_QP * DQ_STRIDE;
	struct pair pairs[DQ_PAIRS];
	struct dq_count c = { 0 };
	struct timespec t0;
	struct ibv_mr *mr;
	struct lbuf l;
	uint8_t *t = map_anon(len);
	double dt;

	(void)tc;
	if (!t)
		return tfail("mmap: %s", strerror(errno));
	pairs[0] = e->rc;
	for (int q = 1; q < DQ_PAIRS; q++)
		if (pair_create(e, &pairs[q], IBV_QPT_RC, false))
			return T_FAIL;
	mr = mr_get(e, e->kind, t, len, ACC_ALL);
	if (!mr || lbuf_get(e, &l, DQ_MSG, K_PINNED))
		return tfail("registration: %s", strerror(errno));
	fill(l.p, DQ_MSG, 7);
	for (int i = 0; i < DQ_PER_QP; i++) {
		for (int q = 0; q < DQ_PAIRS; q++) {
			int slot = q * DQ_PER_QP + i;

			errno = post_wr(pairs[q].req, IBV_WR_RDMA_WRITE, l.p, l.mr->lkey, DQ_MSG,
					t + (size_t)slot * DQ_STRIDE + DQ_OFF, mr->rkey, slot, true);
			if (errno)
				return tfail("post of write %d on QP %d: %s", i, q, strerror(errno));
		}
	}
	if (collect(e, pairs, &c, 1))
		return T_FAIL;
	if (c.errs)
		return tfail("the first write to complete failed before the dereg");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (ibv_dereg_mr(mr))
		return tfail("dereg with writes in flight on %d QPs: %s", DQ_PAIRS, strerror(errno));
	if (mr == e->implicit)
		e->implicit = NULL;
	dt = secs_since(&t0);
	if (collect(e, pairs, &c, DQ_PAIRS * DQ_PER_QP - 1))
		return T_FAIL;
	tnote("dereg took %.3f s; %d writes completed, %d errors", dt, c.ok, c.errs);
	if (check_slots(t, c.status))
		return T_FAIL;
	for (int q = 1; q < DQ_PAIRS; q++)
		pair_destroy(&pairs[q]);
	lbuf_put(e, &l);
	munmap(t, len);
	return sanity(e, "dereg with writes in flight on several QPs");
}

/*
 * Dereg while another thread keeps prefetching the MR for write: asynchronous PREFETCH_WRITEs of
 * 64 MiB chunks (the work runs on ib_hmm's workqueue) and synchronous ones of 32 MiB (in the
 * thread's system call). The buffer is dropped with MADV_DONTNEED first, so that the prefetches
 * running at the dereg have pages to fault again. Dereg must return in bounded time, and an
 * advise_mr with the dead lkey must fail.
 */
#define PF_LEN (256 * MIB)
#define PF_CHUNK (64 * MIB)

struct pf_thread {
	struct ibv_pd *pd;
	uint8_t *p;
	uint32_t lkey;
	atomic_int calls, ok;
	atomic_bool deregistered;
	int err_async, err_sync;	/* the calls made after dereg returned */
};

static void *pf_loop(void *arg)
{
	struct pf_thread *pt = arg;

	for (unsigned int i = 0;; i++) {
		bool after = atomic_load(&pt->deregistered);
		uint64_t off = (i % (PF_LEN / PF_CHUNK)) * PF_CHUNK;
		struct ibv_sge a = { (uintptr_t)pt->p + off, (uint32_t)PF_CHUNK, pt->lkey };
		struct ibv_sge s = { (uintptr_t)pt->p + (PF_LEN - off - PF_CHUNK / 2), (uint32_t)(PF_CHUNK / 2),
				     pt->lkey };
		int ea = advise_mr(pt->pd, IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE, 0, &a, 1);
		int es = advise_mr(pt->pd, IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE,
				   IB_UVERBS_ADVISE_MR_FLAG_FLUSH, &s, 1);

		atomic_fetch_add(&pt->calls, 2);
		atomic_fetch_add(&pt->ok, !ea + !es);
		if (after) {
			pt->err_async = ea;
			pt->err_sync = es;
			return NULL;
		}
	}
}

static int t_dereg_prefetch_thread(struct env *e, const struct tcase *tc)
{
	struct pf_thread pt = { .pd = e->pd };
	struct timespec t0;
	struct ibv_mr *mr;
	pthread_t th;
	double dt;
	int calls;

	(void)tc;
	pt.p = mmap(NULL, PF_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (pt.p == MAP_FAILED)
		return tfail("mmap: %s", strerror(errno));
	mr = mr_get(e, e->kind, pt.p, PF_LEN, ACC_ALL);
	if (!mr)
		return tfail("registration of 256 MiB: %s", strerror(errno));
	pt.lkey = mr->lkey;
	errno = pthread_create(&th, NULL, pf_loop, &pt);
	if (errno)
		return tfail("pthread_create: %s", strerror(errno));
	/* Let it get going: a few calls made, one of them likely running now. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (atomic_load(&pt.calls) < 4 && secs_since(&t0) < 60)
		usleep(1000);
	madvise(pt.p, PF_LEN, MADV_DONTNEED);
	usleep(50000);
	calls = atomic_load(&pt.calls);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (ibv_dereg_mr(mr))
		return tfail("dereg while another thread prefetches: %s", strerror(errno));
	dt = secs_since(&t0);
	if (mr == e->implicit)
		e->implicit = NULL;
	atomic_store(&pt.deregistered, true);
	pthread_join(th, NULL);
	tnote("dereg after %d advise calls took %.3f s; %d of %d calls succeeded; after dereg: async %s, sync %s",
	      calls, dt, atomic_load(&pt.ok), atomic_load(&pt.calls), strerror(pt.err_async),
	      strerror(pt.err_sync));
	if (dt > 30)
		return tfail("dereg took %.1f s while another thread prefetched (bounded by one 64 MiB chunk)", dt);
	if (!pt.err_async || !pt.err_sync)
		return tfail("advise_mr with the lkey of a deregistered MR succeeded (async: %s, sync: %s)",
			     strerror(pt.err_async), strerror(pt.err_sync));
	munmap(pt.p, PF_LEN);
	return sanity(e, "dereg while another thread prefetched");
}

/* --- 4. implicit MRs: registration, mapping, traffic and prefetch all at once --------------------- */

#define CH_SLOTS 16
#define CH_SLOT (64 * 1024)
#define CH_STABLE (64 * 1024)
#define CH_SECS 20

struct churn {
	struct env *e;
	_Atomic uint64_t keys;		/* lkey << 32 | rkey of the current implicit MR */
	atomic_bool stop;
	uint8_t *area;			/* CH_SLOTS slots, mapped and unmapped all the time */
	uint8_t *stable;		/* only the data thread writes it */
	struct lbuf l;			/* the data thread's local buffer */
	struct pair p;			/* the data thread's QPs (67 ms transport timeout) */
	atomic_long regs, maps, dontneeds, unmaps;
	long wr_ok, wr_err, rd_ok, rd_err, churn_ok, churn_err, resets;
	atomic_long pf_ok, pf_err;
	atomic_bool failed;
	char why[256];
};

static void churn_fail(struct churn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void churn_fail(struct churn *c, const char *fmt, ...)
{
	va_list ap;

	if (atomic_exchange(&c->failed, true))
		return;
	va_start(ap, fmt);
	vsnprintf(c->why, sizeof(c->why), fmt, ap);
	va_end(ap);
	atomic_store(&c->stop, true);
}

static void *churn_reg(void *arg)
{
	struct churn *c = arg;
	struct ibv_mr *old = NULL, *mr;

	while (!atomic_load(&c->stop)) {
		mr = ibv_reg_mr(c->e->pd, NULL, SIZE_MAX, ACC_ALL | IBV_ACCESS_ON_DEMAND);
		if (!mr) {
			churn_fail(c, "implicit registration %ld: %s", atomic_load(&c->regs), strerror(errno));
			break;
		}
		atomic_store(&c->keys, (uint64_t)mr->lkey << 32 | mr->rkey);
		if (old && ibv_dereg_mr(old)) {
			churn_fail(c, "dereg of an implicit MR: %s", strerror(errno));
			break;
		}
		old = mr;
		atomic_fetch_add(&c->regs, 1);
		usleep(20000);
	}
	return old;	/* the last one stays registered: the final checks use it */
}

static void *churn_map(void *arg)
{
	struct churn *c = arg;

	for (unsigned int i = 0; !atomic_load(&c->stop); i++) {
		uint8_t *s = c->area + (size_t)(i % CH_SLOTS) * CH_SLOT;

		switch (i / CH_SLOTS % 3) {
		case 0:
			if (mmap(s, CH_SLOT, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) != s) {
				churn_fail(c, "mmap of a churned slot: %s", strerror(errno));
				return NULL;
			}
			memset(s, 0x33, CH_SLOT);
			atomic_fetch_add(&c->maps, 1);
			break;
		case 1:
			madvise(s, CH_SLOT, MADV_DONTNEED);
			atomic_fetch_add(&c->dontneeds, 1);
			break;
		default:
			munmap(s, CH_SLOT);
			atomic_fetch_add(&c->unmaps, 1);
			break;
		}
		usleep(500);
	}
	return NULL;
}

static void *churn_prefetch(void *arg)
{
	struct churn *c = arg;

	for (unsigned int i = 0; !atomic_load(&c->stop); i++) {
		uint32_t lkey = (uint32_t)(atomic_load(&c->keys) >> 32);
		uint8_t *p = i % 2 ? c->stable : c->area + (size_t)(i / 2 % CH_SLOTS) * CH_SLOT;
		struct ibv_sge sge = { (uintptr_t)p, CH_SLOT, lkey };
		int err = advise_mr(c->e->pd, IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE,
				    i % 4 < 2 ? IB_UVERBS_ADVISE_MR_FLAG_FLUSH : 0, &sge, 1);

		atomic_fetch_add(err ? &c->pf_err : &c->pf_ok, 1);
		usleep(2000);
	}
	return NULL;
}

/*
 * The data thread's QP pair has the transport timeout most applications use, 14 (67 ms; so do
 * ibv_rc_pingpong and perftest), not the 1 s of the other tests: a fault that takes longer
 * makes the requester retransmit, and the error NAK of a racing dereg or munmap must still end
 * the work request. Back to RTS through RESET, as after every error completion.
 */
static int churn_pair_up(struct churn *c)
{
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_RESET };
	struct env *e = c->e;
	struct ibv_qp *qps[2] = { c->p.req, c->p.resp };

	usleep(100000);		/* let the flushes land */
	if (ibv_modify_qp(c->p.req, &a, IBV_QP_STATE) || ibv_modify_qp(c->p.resp, &a, IBV_QP_STATE))
		return tfail("modify_qp RESET: %s", strerror(errno));
	drain_cqs(e);
	for (int i = 0; i < 2; i++) {
		struct hmmv_rc_attr rc = {
			.port = 1,
			.sgid_index = e->gid_index,
			.dgid = e->gid,
			.dest_qpn = qps[!i]->qp_num,
			.mtu = e->mtu,
			.rd_atomic = 16,
			.min_rnr_timer = 1,
			.access = IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ,
			.timeout = 14,
		};
		const char *step = "";
		int err = hmmv_rc_connect(qps[i], &rc, &step);

		if (err)
			return tfail("modify_qp %s: %s", step, strerror(err));
	}
	return 0;
}

/*
 * Evidence for a work request that did not complete: does it complete later, and in which
 * state are the two QPs (`rdma -dd resource show qp`)?
 */
static void churn_stuck(struct churn *c, char *why, size_t n)
{
	struct ibv_wc wc;
	char cmd[96], line[256];
	int st = wait_wc(c->e, c->e->scq, &wc, 10), len;
	FILE *f;

	len = snprintf(why, n, "%s 10 s later", st == XFER_TIMEOUT ? "still none" : st_str(st));
	for (int i = 0; i < 2; i++) {
		struct ibv_qp *qp = i ? c->p.resp : c->p.req;

		snprintf(cmd, sizeof(cmd), "rdma -dd resource show qp lqpn %u 2>&1", qp->qp_num);
		f = popen(cmd, "r");
		if (f && fgets(line, sizeof(line), f)) {
			char *state = strstr(line, "state ");
			char *end = state ? strstr(state, " path-mig") : NULL;

			if (end)
				*end = 0;
			len += snprintf(why + len, n - len, "; %s QP %u: %s", i ? "responder" : "requester",
					qp->qp_num, state ? state : line);
		}
		if (f)
			pclose(f);
	}
}

/* One operation through the current key: 1 ok, 0 error (QPs reset), -1 hang or failure. */
static int churn_op(struct churn *c, enum ibv_wr_opcode op, uint8_t *raddr, size_t len)
{
	uint32_t rkey = (uint32_t)atomic_load(&c->keys);
	int st = xfer(c->e, &c->p, op, c->l.p, c->l.mr->lkey, len, (uintptr_t)raddr, rkey, 0, 0);
	char why[256];

	if (st == IBV_WC_SUCCESS)
		return 1;
	if (st == XFER_TIMEOUT) {
		churn_stuck(c, why, sizeof(why));
		churn_fail(c, "%s of %zu bytes at %p: no completion within 20 s (hang): %s", op_name(op),
			   len, raddr, why);
		return -1;
	}
	if (st != IBV_WC_REM_ACCESS_ERR && st != IBV_WC_REM_OP_ERR && st != IBV_WC_REM_INV_REQ_ERR &&
	    st != IBV_WC_WR_FLUSH_ERR) {
		churn_fail(c, "%s of %zu bytes at %p: %s", op_name(op), len, raddr, st_str(st));
		return -1;
	}
	c->resets++;
	if (churn_pair_up(c)) {
		churn_fail(c, "QP reset after %s", st_str(st));
		return -1;
	}
	return 0;
}

/* The data thread: a successful write or read of the stable region moves exactly its bytes. */
static void *churn_data(void *arg)
{
	struct churn *c = arg;

	for (unsigned int i = 0; !atomic_load(&c->stop); i++) {
		size_t off = (i * 97) % 4096, msg = CH_STABLE - 4096;
		int seed = 100 + (int)(i % 1000), r;

		fill(c->l.p, msg, seed);
		r = churn_op(c, IBV_WR_RDMA_WRITE, c->stable + off, msg);
		if (r < 0)
			break;
		if (r) {
			c->wr_ok++;
			if (check_slice("the stable region after a successful write", c->stable + off, msg, 0,
					seed)) {
				churn_fail(c, "write %u into the stable region succeeded but the data is wrong", i);
				break;
			}
		} else {
			c->wr_err++;
		}
		fill(c->stable + off, msg, seed + 1);
		memset(c->l.p, 0, msg);
		r = churn_op(c, IBV_WR_RDMA_READ, c->stable + off, msg);
		if (r < 0)
			break;
		if (r) {
			c->rd_ok++;
			if (check_slice("a successful read of the stable region", c->l.p, msg, 0, seed + 1)) {
				churn_fail(c, "read %u of the stable region succeeded but the data is wrong", i);
				break;
			}
		} else {
			c->rd_err++;
		}
		r = churn_op(c, i % 2 ? IBV_WR_RDMA_WRITE : IBV_WR_RDMA_READ,
			     c->area + (size_t)(i % CH_SLOTS) * CH_SLOT + 8, CH_SLOT - 16);
		if (r < 0)
			break;
		if (r)
			c->churn_ok++;
		else
			c->churn_err++;
	}
	return NULL;
}

static int churn_final(struct env *e, struct churn *c, struct ibv_mr *mr)
{
	const size_t msg = CH_STABLE - 3;

	if (pair_reset(e, &e->rc))
		return T_FAIL;
	fill(c->l.p, msg, 7);
	if (expect_ok(xfer(e, &e->rc, IBV_WR_RDMA_WRITE, c->l.p, c->l.mr->lkey, msg,
			   (uintptr_t)c->stable + 3, mr->rkey, 0, 0), "the final write into the stable region") ||
	    check_slice("the stable region after the final write", c->stable + 3, msg, 0, 7))
		return T_FAIL;
	fill(c->stable, CH_STABLE, 8);
	memset(c->l.p, 0, msg);
	if (expect_ok(xfer(e, &e->rc, IBV_WR_RDMA_READ, c->l.p, c->l.mr->lkey, msg,
			   (uintptr_t)c->stable + 3, mr->rkey, 0, 0), "the final read of the stable region") ||
	    check_slice("the final read of the stable region", c->l.p, msg, 3, 8))
		return T_FAIL;
	if (ibv_dereg_mr(mr))
		return tfail("dereg of the last implicit MR: %s", strerror(errno));
	return 0;
}

/*
 * The churned slots live far below where mmap(NULL) places anything (it allocates top-down
 * from just under the stack), so that no other mapping of this process moves into a slot while
 * it is unmapped and receives the device's writes meant for the slot.
 */
static uint8_t *churn_area(void)
{
	void *want = (void *)(64UL << 30);
	void *p = mmap(want, CH_SLOTS * CH_SLOT, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (p != want) {
		munmap(p, CH_SLOTS * CH_SLOT);
		errno = EEXIST;
		return NULL;
	}
	munmap(p, CH_SLOTS * CH_SLOT);
	return p;
}

static int t_implicit_churn(struct env *e, const struct tcase *tc)
{
	struct churn c = { .e = e };
	void *(*const fns[])(void *) = { churn_reg, churn_map, churn_data, churn_prefetch };
	pthread_t th[4];
	void *last = NULL;
	struct ibv_mr *mr;

	(void)tc;
	c.area = churn_area();
	c.stable = map_anon(CH_STABLE);
	if (!c.area || !c.stable || lbuf_get(e, &c.l, CH_SLOT, K_PINNED))
		return tfail("mmap: %s", strerror(errno));
	if (pair_create(e, &c.p, IBV_QPT_RC, false) || churn_pair_up(&c))
		return T_FAIL;
	mr = ibv_reg_mr(e->pd, NULL, SIZE_MAX, ACC_ALL | IBV_ACCESS_ON_DEMAND);
	if (!mr)
		return tfail("implicit registration: %s", strerror(errno));
	atomic_store(&c.keys, (uint64_t)mr->lkey << 32 | mr->rkey);
	for (int i = 0; i < 4; i++) {
		errno = pthread_create(&th[i], NULL, fns[i], &c);
		if (errno)
			return tfail("pthread_create: %s", strerror(errno));
	}
	for (int s = 0; s < CH_SECS * 10 && !atomic_load(&c.stop); s++)
		usleep(100000);
	atomic_store(&c.stop, true);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], i ? NULL : &last);
	tnote("%ld implicit MRs; %ld maps, %ld MADV_DONTNEEDs, %ld unmaps; stable region: writes %ld ok / "
	      "%ld errors, reads %ld ok / %ld errors; churned area: %ld ok / %ld errors; %ld QP resets; "
	      "prefetches %ld ok / %ld errors",
	      atomic_load(&c.regs), atomic_load(&c.maps), atomic_load(&c.dontneeds), atomic_load(&c.unmaps),
	      c.wr_ok, c.wr_err, c.rd_ok, c.rd_err, c.churn_ok, c.churn_err, c.resets,
	      atomic_load(&c.pf_ok), atomic_load(&c.pf_err));
	if (atomic_load(&c.failed))
		return tfail("%s", c.why);
	/* A race in which nothing got through proves nothing. */
	if (!c.wr_ok || !c.rd_ok || atomic_load(&c.regs) < 10 || !atomic_load(&c.maps) ||
	    !atomic_load(&c.pf_ok))
		return tfail("the race did not happen: %ld writes and %ld reads ok, %ld registrations, "
			     "%ld maps, %ld prefetches ok", c.wr_ok, c.rd_ok, atomic_load(&c.regs),
			     atomic_load(&c.maps), atomic_load(&c.pf_ok));
	if (!last)
		return tfail("the registering thread left no MR");
	if (churn_final(e, &c, last) || ibv_dereg_mr(mr))
		return tfail("the final checks on the stable region or the first MR's dereg failed");
	lbuf_put(e, &c.l);
	pair_destroy(&c.p);
	return sanity(e, "the implicit registration / mapping race");
}

/* --- 5. an MR registered by a thread that exits ----------------------------------------------------- */

struct reg_thread {
	struct env *e;
	uint8_t *t;
	size_t len;
	struct ibv_mr *mr;
	int err;
};

static void *reg_and_exit(void *arg)
{
	struct reg_thread *r = arg;

	/* The mapping and the MR are the thread's doing; both belong to the process. */
	r->t = map_anon(r->len);
	if (!r->t) {
		r->err = errno;
		return NULL;
	}
	fill(r->t, r->len, 1);
	r->mr = mr_own(r->e, r->t, r->len, ACC_ALL);
	if (!r->mr)
		r->err = errno;
	return NULL;
}

static int t_thread_mr(struct env *e, const struct tcase *tc)
{
	struct reg_thread r = { .e = e, .len = 2 * MIB };
	const size_t msg = 300 * 1024 + 5;
	struct lbuf l;
	pthread_t th;

	(void)tc;
	errno = pthread_create(&th, NULL, reg_and_exit, &r);
	if (errno)
		return tfail("pthread_create: %s", strerror(errno));
	pthread_join(th, NULL);
	if (!r.mr)
		return tfail("registration in a thread: %s", strerror(r.err));
	if (lbuf_get(e, &l, msg, K_PINNED))
		return T_FAIL;
	/* Present pages, then (ODP) pages dropped by MADV_DONTNEED: faults after the thread's end. */
	memset(l.p, 0, msg);
	if (expect_ok(rd(e, &l, 0, msg, r.t + 11, r.mr->rkey), "read through the exited thread's MR") ||
	    check_slice("read through the exited thread's MR", l.p, msg, 11, 1))
		return T_FAIL;
	/* A pinned MR keeps its pages: MADV_DONTNEED would leave the CPU other (zero) pages. */
	if (e->kind != K_PINNED)
		madvise(r.t, r.len, MADV_DONTNEED);
	else
		memset(r.t, 0, r.len);
	fill(l.p, msg, 2);
	if (expect_ok(wr(e, &l, 0, msg, r.t + MIB + 7, r.mr->rkey), "write after MADV_DONTNEED") ||
	    check_region("write through the exited thread's MR", r.t, r.len, MIB + 7, msg, 2, 0))
		return T_FAIL;
	if (e->kind != K_PINNED) {
		struct ibv_sge sge = { (uintptr_t)r.t, (uint32_t)MIB, r.mr->lkey };
		int err = advise_mr(e->pd, IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE,
				    IB_UVERBS_ADVISE_MR_FLAG_FLUSH, &sge, 1);

		if (err)
			return tfail("sync PREFETCH_WRITE through the exited thread's MR: %s", strerror(err));
	}
	if (ibv_dereg_mr(r.mr))
		return tfail("dereg of the exited thread's MR: %s", strerror(errno));
	lbuf_put(e, &l);
	munmap(r.t, r.len);
	return sanity(e, "an MR of an exited thread");
}

/* --- 6. fork storm during a write stream ------------------------------------------------------------ */

#define FS_SLOTS 16
#define FS_SLOT (4 * PAGE)
#define FS_OFF 100
#define FS_MSG (3 * PAGE + 1000)
#define FS_SECS 5

struct forker {
	uint8_t *t, *local;
	size_t tlen, llen;
	atomic_bool stop;
	long forks;
	int bad_status;
};

static void *fork_loop(void *arg)
{
	struct forker *f = arg;

	while (!atomic_load(&f->stop)) {
		pid_t pid = fork();
		int status;

		if (pid == 0) {
			/* The child scribbles over its copies: the parent must never see this. */
			memset(f->t, 0xee, f->tlen);
			memset(f->local, 0xdd, f->llen);
			_exit(0);
		}
		if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) {
			f->bad_status = pid < 0 ? -errno : status;
			break;
		}
		f->forks++;
	}
	return NULL;
}

/* The parent's view of slot @s after round @r: guards (r & 0x7f) + 1, the message seed r * 16 + s. */
static int check_fs_slot(const uint8_t *p, int s, int r, const char *who)
{
	uint8_t g = (uint8_t)((r & 0x7f) + 1);
	char what[128];

	for (size_t i = 0; i < FS_SLOT; i++) {
		if (i >= FS_OFF && i < FS_OFF + FS_MSG)
			continue;
		if (p[i] != g)
			return tfail("%s, round %d, slot %d: guard byte %zu is 0x%02x, want 0x%02x", who, r, s, i,
				     p[i], g);
	}
	snprintf(what, sizeof(what), "%s, round %d, slot %d", who, r, s);
	return check_slice(what, p + FS_OFF, FS_MSG, 0, r * FS_SLOTS + s);
}

static int fs_round(struct env *e, struct ibv_mr *mr, uint8_t *t, struct lbuf *l, struct lbuf *rb, int r)
{
	int s;

	/* The CPU's writes: guards (a COW break where a child shares the page). */
	for (s = 0; s < FS_SLOTS; s++) {
		uint8_t *p = t + (size_t)s * FS_SLOT;

		memset(p, (r & 0x7f) + 1, FS_OFF);
		memset(p + FS_OFF + FS_MSG, (r & 0x7f) + 1, FS_SLOT - FS_OFF - FS_MSG);
		fill(l->p + (size_t)s * FS_MSG, FS_MSG, r * FS_SLOTS + s);
	}
	for (s = 0; s < FS_SLOTS; s++) {
		errno = post_wr(e->rc.req, IBV_WR_RDMA_WRITE, l->p + (size_t)s * FS_MSG, l->mr->lkey, FS_MSG,
				t + (size_t)s * FS_SLOT + FS_OFF, mr->rkey, s, true);
		if (errno)
			return tfail("round %d: post %d: %s", r, s, strerror(errno));
	}
	for (s = 0; s < FS_SLOTS; s++) {
		struct ibv_wc wc;
		char what[64];

		snprintf(what, sizeof(what), "round %d: write %d during the fork storm", r, s);
		if (expect_ok(wait_wc(e, e->scq, &wc, 60), what))
			return T_FAIL;
	}
	for (s = 0; s < FS_SLOTS; s++)
		if (check_fs_slot(t + (size_t)s * FS_SLOT, s, r, "the parent's memory"))
			return T_FAIL;
	/* And the device reads the parent's pages, not a child's (0xee) or stale ones. */
	s = r % FS_SLOTS;
	memset(rb->p, 0, FS_SLOT);
	if (expect_ok(rd(e, rb, 0, FS_SLOT, t + (size_t)s * FS_SLOT, mr->rkey), "read-back") ||
	    check_fs_slot(rb->p, s, r, "the device's read-back"))
		return T_FAIL;
	return 0;
}

static int t_fork_storm(struct env *e, const struct tcase *tc)
{
	struct forker f = { .tlen = FS_SLOTS * FS_SLOT };
	struct timespec t0;
	struct ibv_mr *mr;
	struct lbuf l, rb;
	pthread_t th;
	int r, rc = 0;

	(void)tc;
	f.t = map_anon(f.tlen);
	if (!f.t)
		return tfail("mmap: %s", strerror(errno));
	madvise(f.t, f.tlen, MADV_NOHUGEPAGE);
	mr = mr_get(e, e->kind, f.t, f.tlen, ACC_ALL);
	if (!mr || lbuf_get(e, &l, FS_SLOTS * FS_MSG, K_PINNED) || lbuf_get(e, &rb, FS_SLOT, K_PINNED))
		return tfail("registration: %s", strerror(errno));
	f.local = l.p;
	f.llen = l.len;
	errno = pthread_create(&th, NULL, fork_loop, &f);
	if (errno)
		return tfail("pthread_create: %s", strerror(errno));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (r = 0; secs_since(&t0) < FS_SECS || r < 4; r++) {
		rc = fs_round(e, mr, f.t, &l, &rb, r);
		if (rc)
			break;
	}
	atomic_store(&f.stop, true);
	pthread_join(th, NULL);
	tnote("%d rounds of %d writes, %ld forks", r, FS_SLOTS, f.forks);
	if (rc)
		return rc;
	if (f.bad_status)
		return tfail("a child of the fork storm failed (%d)", f.bad_status);
	if (f.forks < 4)
		return tfail("only %ld forks during %d rounds: the storm did not happen", f.forks, r);
	mr_put(e, mr);
	lbuf_put(e, &l);
	lbuf_put(e, &rb);
	return sanity(e, "a fork storm");
}

/* --- 7. keys and PDs ---------------------------------------------------------------------------------- */

/* Another process registers an MR and hands its key over: our QP must not reach its memory. */
static int foreign_process_key(struct env *e, struct lbuf *l)
{
	const size_t len = 4 * PAGE;
	struct { uint64_t addr; uint32_t rkey; } info;
	int c2p[2], p2c[2];
	struct watch w = { 0 };
	uint8_t *mine = NULL, go = 1;
	pid_t pid;

	if (pipe(c2p) || pipe(p2c))
		return tfail("pipe: %s", strerror(errno));
	pid = fork();
	if (pid == 0) {
		struct env c;
		uint8_t *y;
		struct ibv_mr *mr;

		if (env_open(&c, e->dev, e->kind) != T_PASS)
			_exit(1);
		y = map_anon(len);
		if (!y)
			_exit(1);
		fill(y, len, 9);
		mr = mr_get(&c, c.kind, y, len, ACC_ALL);
		if (!mr)
			_exit(1);
		info.addr = (uintptr_t)y;
		info.rkey = mr->rkey;
		if (write(c2p[1], &info, sizeof(info)) != sizeof(info) || read(p2c[0], &go, 1) != 1)
			_exit(1);
		/* Exit status 2: the parent's QP reached this process's memory. */
		_exit(check_slice("the other process's memory", y, len, 0, 9) ? 2 : 0);
	}
	if (pid < 0 || read(c2p[0], &info, sizeof(info)) != sizeof(info))
		return tfail("the child that registers an MR: %s", strerror(errno));
	/* The same address in our own space, where possible: it must not change either. */
	mine = mmap((void *)(uintptr_t)info.addr, len, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (mine == MAP_FAILED || mine != (uint8_t *)(uintptr_t)info.addr) {
		tnote("address 0x%llx is taken here: only the other process's copy is checked",
		      (unsigned long long)info.addr);
		mine = NULL;
	} else {
		fill(mine, len, 10);
		if (watch_add(&w, mine, len, "our memory at the other process's address"))
			return T_FAIL;
	}
	if (refused(e, &e->rc, l, IBV_WR_RDMA_WRITE, 3000, info.addr + 5, info.rkey, IBV_WC_REM_ACCESS_ERR,
		    &w, "another process's rkey") ||
	    refused(e, &e->rc, l, IBV_WR_RDMA_READ, 3000, info.addr + 5, info.rkey, IBV_WC_REM_ACCESS_ERR,
		    &w, "another process's rkey") ||
	    refused(e, &e->rc, l, IBV_WR_ATOMIC_FETCH_AND_ADD, 8, info.addr + 8, info.rkey,
		    IBV_WC_REM_ACCESS_ERR, &w, "another process's rkey"))
		return T_FAIL;
	if (write(p2c[1], &go, 1) != 1 || child_wait(pid, "the other process (exit 2: its memory changed)"))
		return T_FAIL;
	watch_free(&w);
	if (mine)
		munmap(mine, len);
	return 0;
}

/* A QP pair on a second PD, and an MR on it; keys must not cross PDs in either direction. */
static int other_pd(struct env *e, struct lbuf *l, struct ibv_mr *mr, uint8_t *t, struct watch *w)
{
	const size_t len = 4 * PAGE;
	struct ibv_pd *pd2 = ibv_alloc_pd(e->ctx);
	struct env e2;
	struct pair p2;
	struct lbuf l2;
	struct ibv_mr *m3;
	uint8_t *v = map_anon(len);

	if (!pd2 || !v)
		return tfail("second PD: %s", strerror(errno));
	e2 = *e;
	e2.pd = pd2;
	e2.implicit = NULL;
	if (pair_create(&e2, &p2, IBV_QPT_RC, false) || lbuf_get(&e2, &l2, 3000, K_PINNED))
		return T_FAIL;
	fill(l2.p, l2.len, 4);
	fill(v, len, 3);
	m3 = mr_get(&e2, e->kind, v, len, ACC_ALL);
	if (!m3 || watch_add(w, v, len, "the other PD's buffer"))
		return tfail("registration on the second PD: %s", strerror(errno));
	if (refused(e, &e->rc, l, IBV_WR_RDMA_WRITE, 3000, (uintptr_t)v + 5, m3->rkey,
		    IBV_WC_REM_ACCESS_ERR, w, "the rkey of an MR on another PD") ||
	    refused(e, &e->rc, l, IBV_WR_RDMA_READ, 3000, (uintptr_t)v + 5, m3->rkey,
		    IBV_WC_REM_ACCESS_ERR, w, "the rkey of an MR on another PD") ||
	    refused(e, &p2, &l2, IBV_WR_RDMA_WRITE, 3000, (uintptr_t)t + 5, mr->rkey,
		    IBV_WC_REM_ACCESS_ERR, w, "a QP on another PD than the MR's") ||
	    refused(e, &p2, &l2, IBV_WR_ATOMIC_CMP_AND_SWP, 8, (uintptr_t)t + 8, mr->rkey,
		    IBV_WC_REM_ACCESS_ERR, w, "a QP on another PD than the MR's"))
		return T_FAIL;
	/* The control: on its own PD, that pair and that MR work. */
	if (expect_ok(xfer(e, &p2, IBV_WR_RDMA_WRITE, l2.p, l2.mr->lkey, 3000, (uintptr_t)v + 5, m3->rkey,
			   0, 0), "write on the second PD into its own MR") ||
	    check_region("the second PD's MR after its own write", v + 5, 3000, 0, 3000, 4, 0))
		return T_FAIL;
	watch_update(w);
	mr_put(&e2, m3);
	if (e2.implicit)
		ibv_dereg_mr(e2.implicit);
	lbuf_put(&e2, &l2);
	pair_destroy(&p2);
	munmap(v, len);
	w->n--;			/* v is gone */
	free(w->w[w->n].was);
	return ibv_dealloc_pd(pd2) ? tfail("dealloc of the second PD: %s", strerror(errno)) : 0;
}

/* A key dies with its MR; the next MR gets another key, and the old one reaches nothing. */
static int dead_keys(struct env *e, struct lbuf *l, struct watch *w)
{
	const size_t len = 4 * PAGE;
	uint8_t *a = map_anon(len), *b = map_anon(len);
	struct ibv_mr *m4, *m5, *m6;
	uint32_t k4;

	if (!a || !b)
		return tfail("mmap: %s", strerror(errno));
	fill(a, len, 5);
	fill(b, len, 6);
	m4 = mr_own(e, a, len, ACC_ALL);
	if (!m4)
		return tfail("registration: %s", strerror(errno));
	k4 = m4->rkey;
	/* It worked while it lived. */
	if (expect_ok(xfer(e, &e->rc, IBV_WR_RDMA_READ, l->p, l->mr->lkey, 3000, (uintptr_t)a + 5, k4, 0, 0),
		      "read through the MR before its dereg") ||
	    check_slice("read before dereg", l->p, 3000, 5, 5))
		return T_FAIL;
	if (ibv_dereg_mr(m4))
		return tfail("dereg: %s", strerror(errno));
	if (watch_add(w, a, len, "the deregistered MR's buffer") ||
	    watch_add(w, b, len, "the next MR's buffer"))
		return T_FAIL;
	if (refused(e, &e->rc, l, IBV_WR_RDMA_WRITE, 3000, (uintptr_t)a + 5, k4, IBV_WC_REM_ACCESS_ERR, w,
		    "a deregistered rkey"))
		return T_FAIL;
	m5 = mr_own(e, b, len, ACC_ALL);
	m6 = mr_own(e, a, len, ACC_ALL);
	if (!m5 || !m6)
		return tfail("registration after dereg: %s", strerror(errno));
	tnote("dead rkey 0x%x; the next MRs got 0x%x and 0x%x", k4, m5->rkey, m6->rkey);
	if (m5->rkey == k4 || m6->rkey == k4)
		return tfail("an MR registered right after the dereg got the dead key 0x%x again", k4);
	if (refused(e, &e->rc, l, IBV_WR_RDMA_WRITE, 3000, (uintptr_t)b + 5, k4, IBV_WC_REM_ACCESS_ERR, w,
		    "the dead rkey into the next MR's memory") ||
	    refused(e, &e->rc, l, IBV_WR_RDMA_WRITE, 3000, (uintptr_t)a + 5, k4, IBV_WC_REM_ACCESS_ERR, w,
		    "the dead rkey into the same memory registered again") ||
	    refused(e, &e->rc, l, IBV_WR_RDMA_READ, 3000, (uintptr_t)b + 5, k4, IBV_WC_REM_ACCESS_ERR, w,
		    "the dead rkey into the next MR's memory"))
		return T_FAIL;
	/* The new keys do work. */
	if (expect_ok(xfer(e, &e->rc, IBV_WR_RDMA_READ, l->p, l->mr->lkey, 3000, (uintptr_t)b + 5, m5->rkey,
			   0, 0), "read through the next MR") ||
	    check_slice("read through the next MR", l->p, 3000, 5, 6))
		return T_FAIL;
	ibv_dereg_mr(m5);
	ibv_dereg_mr(m6);
	return 0;
}

static int t_key_isolation(struct env *e, const struct tcase *tc)
{
	const size_t len = 4 * PAGE;
	uint8_t *t = map_anon(len), *u = map_anon(len);
	struct watch w = { 0 };
	struct ibv_mr *mr, *m2;
	struct lbuf l;

	(void)tc;
	if (!t || !u)
		return tfail("mmap: %s", strerror(errno));
	fill(t, len, 1);
	fill(u, len, 2);
	mr = mr_get(e, e->kind, t, len, ACC_ALL);
	m2 = mr_get(e, e->kind == K_IMPLICIT ? K_PINNED : e->kind, u, len, IBV_ACCESS_LOCAL_WRITE);
	if (!mr || !m2 || lbuf_get(e, &l, 3000, K_PINNED))
		return tfail("registration: %s", strerror(errno));
	fill(l.p, l.len, 8);
	if (watch_add(&w, t, len, "the target MR's buffer") || watch_add(&w, u, len, "a local-only MR's buffer"))
		return T_FAIL;
	srandom((unsigned int)getpid() ^ (unsigned int)time(NULL));
	for (int i = 0; i < 6; i++) {
		uint32_t k = (uint32_t)random() ^ ((uint32_t)random() << 16);

		if (k == mr->rkey || k == m2->lkey || k == l.mr->lkey || k == m2->rkey)
			continue;
		if (refused(e, &e->rc, &l, i % 2 ? IBV_WR_RDMA_READ : IBV_WR_RDMA_WRITE, 3000,
			    (uintptr_t)t + 5, k, IBV_WC_REM_ACCESS_ERR, &w, "a random rkey"))
			return T_FAIL;
	}
	if (refused(e, &e->rc, &l, IBV_WR_RDMA_WRITE, 3000, (uintptr_t)u + 5, m2->lkey, IBV_WC_REM_ACCESS_ERR,
		    &w, "the lkey of a local-only MR, into its memory") ||
	    refused(e, &e->rc, &l, IBV_WR_RDMA_WRITE, 3000, (uintptr_t)t + 5, m2->lkey, IBV_WC_REM_ACCESS_ERR,
		    &w, "the lkey of another MR, into the target"))
		return T_FAIL;
	if (other_pd(e, &l, mr, t, &w) || dead_keys(e, &l, &w) || foreign_process_key(e, &l))
		return T_FAIL;
	/* The control: the right key works. */
	fill(l.p, l.len, 8);
	if (expect_ok(wr(e, &l, 0, 3000, t + 5, mr->rkey), "write with the right key") ||
	    check_slice("write with the right key", t + 5, 3000, 0, 8))
		return T_FAIL;
	mr_put(e, mr);
	mr_put(e, m2);
	lbuf_put(e, &l);
	watch_free(&w);
	return sanity(e, "refused keys");
}

/* --- 8. access bits ---------------------------------------------------------------------------------------- */

static int t_access_bits(struct env *e, const struct tcase *tc)
{
	const size_t len = 4 * PAGE;
	const int ro = IBV_ACCESS_REMOTE_READ, local = IBV_ACCESS_LOCAL_WRITE;
	const int wo = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE;
	uint8_t *t = map_anon(len);
	struct ibv_mr *mro, *mloc, *mwo, *mnone, *msrc;
	uint8_t *src = map_anon(len);
	struct watch w = { 0 };
	struct lbuf l;
	int st;

	(void)tc;
	if (!t)
		return tfail("mmap: %s", strerror(errno));
	fill(t, len, 1);
	mro = mr_own(e, t, len, ro);
	mloc = mr_own(e, t, len, local);
	mwo = mr_own(e, t, len, wo);
	if (!mro || !mloc || !mwo || lbuf_get(e, &l, 3000, K_PINNED))
		return tfail("registration: %s", strerror(errno));
	fill(l.p, l.len, 2);
	if (watch_add(&w, t, len, "the buffer"))
		return T_FAIL;

	/* Remote read only. */
	if (expect_ok(rd(e, &l, 0, 3000, t + 5, mro->rkey), "read through a remote-read-only MR") ||
	    check_slice("read through a remote-read-only MR", l.p, 3000, 5, 1))
		return T_FAIL;
	fill(l.p, l.len, 2);
	if (refused(e, &e->rc, &l, IBV_WR_RDMA_WRITE, 3000, (uintptr_t)t + 5, mro->rkey,
		    IBV_WC_REM_ACCESS_ERR, &w, "a remote-read-only MR") ||
	    refused(e, &e->rc, &l, IBV_WR_ATOMIC_CMP_AND_SWP, 8, (uintptr_t)t + 8, mro->rkey,
		    IBV_WC_REM_ACCESS_ERR, &w, "a remote-read-only MR") ||
	    refused(e, &e->rc, &l, IBV_WR_ATOMIC_FETCH_AND_ADD, 8, (uintptr_t)t + 16, mro->rkey,
		    IBV_WC_REM_ACCESS_ERR, &w, "a remote-read-only MR"))
		return T_FAIL;

	/* No remote right at all: by its rkey and by its lkey. */
	if (refused(e, &e->rc, &l, IBV_WR_RDMA_READ, 3000, (uintptr_t)t + 5, mloc->rkey,
		    IBV_WC_REM_ACCESS_ERR, &w, "an MR without remote rights, its rkey") ||
	    refused(e, &e->rc, &l, IBV_WR_RDMA_READ, 3000, (uintptr_t)t + 5, mloc->lkey,
		    IBV_WC_REM_ACCESS_ERR, &w, "an MR without remote rights, its lkey") ||
	    refused(e, &e->rc, &l, IBV_WR_RDMA_WRITE, 3000, (uintptr_t)t + 5, mloc->lkey,
		    IBV_WC_REM_ACCESS_ERR, &w, "an MR without remote rights, its lkey"))
		return T_FAIL;

	/* Remote write only: no reads, no atomics; writes work. */
	if (refused(e, &e->rc, &l, IBV_WR_RDMA_READ, 3000, (uintptr_t)t + 5, mwo->rkey,
		    IBV_WC_REM_ACCESS_ERR, &w, "a remote-write-only MR") ||
	    refused(e, &e->rc, &l, IBV_WR_ATOMIC_FETCH_AND_ADD, 8, (uintptr_t)t + 16, mwo->rkey,
		    IBV_WC_REM_ACCESS_ERR, &w, "a remote-write-only MR"))
		return T_FAIL;
	if (expect_ok(wr(e, &l, 0, 3000, t + 5, mwo->rkey), "write through a remote-write-only MR") ||
	    check_slice("write through a remote-write-only MR", t + 5, 3000, 0, 2))
		return T_FAIL;
	watch_update(&w);

	/* Local write missing: as a receive buffer and as an RDMA read's sink. */
	msrc = src ? ibv_reg_mr(e->pd, src, len, ACC_ALL) : NULL;
	mnone = mr_own(e, t, len, 0);
	if (!msrc || !mnone)
		return tfail("registration without any access right: %s", strerror(errno));
	fill(src, len, 3);
	if (post_recv(&e->rc, t + 5, mnone->lkey, 3000))
		return T_FAIL;
	st = xfer(e, &e->rc, IBV_WR_SEND, l.p, l.mr->lkey, 3000, 0, 0, 0, 0);
	{
		struct ibv_wc wc;
		int rst = wait_wc(e, e->rcq, &wc, 20);

		/* rxe completes the receive with LOC_QP_OP_ERR (class A); the IBTA says LOC_PROT_ERR. */
		if (rst != IBV_WC_LOC_QP_OP_ERR && rst != IBV_WC_LOC_PROT_ERR)
			return tfail("receive into an MR without LOCAL_WRITE: %s, want a local error",
				     st_str(rst));
	}
	if (expect_err(st, IBV_WC_REM_OP_ERR, "send into a receive buffer without LOCAL_WRITE") ||
	    pair_reset(e, &e->rc) || watch_check(&w, "a receive into an MR without LOCAL_WRITE"))
		return T_FAIL;
	st = xfer(e, &e->rc, IBV_WR_RDMA_READ, t + 5, mnone->lkey, 3000, (uintptr_t)src, msrc->rkey, 0, 0);
	if (expect_err(st, IBV_WC_LOC_PROT_ERR, "RDMA read into an MR without LOCAL_WRITE") ||
	    pair_reset(e, &e->rc) || watch_check(&w, "an RDMA read into an MR without LOCAL_WRITE"))
		return T_FAIL;
	ibv_dereg_mr(mnone);
	ibv_dereg_mr(msrc);
	ibv_dereg_mr(mro);
	ibv_dereg_mr(mloc);
	ibv_dereg_mr(mwo);
	lbuf_put(e, &l);
	munmap(src, len);
	watch_free(&w);
	return sanity(e, "refused accesses");
}

const struct tcase hostile_verbs_tests[] = {
	{ "hostile-reg-params", t_reg_params, K_ALL, 0, 0, 0 },
	{ "hostile-raddr-bounds", t_raddr_bounds, K_ALL, 0, 0, 0 },
	{ "hostile-dereg-inflight-4qp", t_dereg_multiqp, K_ALL, 0, 0, 0 },
	{ "hostile-dereg-prefetch-thread", t_dereg_prefetch_thread, K_ODPS, 0, 0, 120 },
	{ "hostile-implicit-churn", t_implicit_churn, KB(K_IMPLICIT), 0, 0, 120 },
	{ "hostile-mr-of-exited-thread", t_thread_mr, K_ALL, 0, 0, 0 },
	{ "hostile-fork-storm", t_fork_storm, K_ALL, 0, 0, 90 },
	{ "hostile-key-isolation", t_key_isolation, K_ALL, 0, 0, 0 },
	{ "hostile-access-bits", t_access_bits, K_ALL, 0, 0, 0 },
	{ 0 }
};
