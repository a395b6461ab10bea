// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * hmmv_odp_test: prefetch (ADVISE_MR) and the per-MR counters. The counters move by exact
 * amounts where the semantics make them exact; where fault-around makes them approximate the
 * assertion is a bound, and says so.
 *
 * Every buffer here sits between two unmapped pages, is kept out of THP and is touched by no
 * other ODP MR of the process (the requester's buffers are pinned), so the mirror holds
 * nothing of it that the test did not put there.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <rdma/ib_user_ioctl_verbs.h>

#include "odp.h"

static const char *const advice_names[] = { "PREFETCH", "PREFETCH_WRITE", "PREFETCH_NO_FAULT" };

/* @n pages of untouched anonymous memory with an unmapped page on each side, and its MR. */
static int guarded(struct env *e, size_t n, uint8_t **t, struct ibv_mr **mr)
{
	uint8_t *r = reserve_va((n + 2) * PAGE);

	if (!r)
		return tfail("mmap: %s", strerror(errno));
	*t = mmap(r + PAGE, n * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	if (*t == MAP_FAILED)
		return tfail("mmap: %s", strerror(errno));
	madvise(*t, n * PAGE, MADV_NOHUGEPAGE);
	*mr = mr_get(e, e->kind, *t, n * PAGE, ACC_ALL);
	if (!*mr)
		return tfail("%s registration: %s", kind_names[e->kind], strerror(errno));
	return 0;
}

static int advise1(struct env *e, struct ibv_mr *mr, uint32_t advice, bool sync, const void *addr,
		   size_t len)
{
	struct ibv_sge sge = { .addr = (uintptr_t)addr, .length = (uint32_t)len, .lkey = mr->lkey };

	return advise_mr(e->pd, advice, sync ? IB_UVERBS_ADVISE_MR_FLAG_FLUSH : 0, &sge, 1);
}

/*
 * Counters after an operation. An asynchronous prefetch is waited for: until page_prefetch
 * reaches @want_prefetch (10 s at most), then a moment more, to see that it does not go past.
 */
static int counters_after(struct ibv_mr *mr, struct mr_counters *c, bool wait, long long want_prefetch)
{
	struct timespec t0, now;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (mr_counters(mr, c))
			return T_FAIL;
		if (!wait || c->prefetch >= want_prefetch)
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec > 10)
			break;
		usleep(50000);
	}
	if (wait) {
		usleep(300000);
		if (mr_counters(mr, c))
			return T_FAIL;
	}
	return 0;
}

#define DELTA(a, b, f) ((b).f - (a).f)

static int expect_delta(const char *what, long long got, long long want)
{
	if (got != want)
		return tfail("%s: changed by %lld, want exactly %lld", what, got, want);
	return 0;
}

/* The mapped-pages gauge, where the driver reports it. */
static int expect_mapped(const struct mr_counters *a, const struct mr_counters *b, long long want)
{
	if (a->mapped_pages < 0 || b->mapped_pages < 0)
		return 0;
	return expect_delta("hmm_mapped_pages", b->mapped_pages - a->mapped_pages, want);
}

/*
 * tc->size = advice, tc->off = 1 for synchronous (FLUSH). PREFETCH and PREFETCH_WRITE of N
 * untouched pages: page_prefetch += N, hmm_mapped_pages += N, and the access that follows
 * (read, resp. write of all N pages) faults nothing (page_faults += 0). PREFETCH_NO_FAULT maps
 * only present pages: += 0 on untouched memory, += N/2 after the CPU wrote every other page.
 */
static int t_prefetch(struct env *e, const struct tcase *tc)
{
	const size_t n = 64, len = n * PAGE;
	const uint32_t advice = (uint32_t)tc->size;
	const bool sync = tc->off;
	struct mr_counters c0, c1, c2;
	struct ibv_mr *mr;
	struct lbuf l;
	uint8_t *t;
	char what[128];
	int err;

	if (guarded(e, n, &t, &mr) || lbuf_get(e, &l, len, K_PINNED) || mr_counters(mr, &c0))
		return T_FAIL;
	snprintf(what, sizeof(what), "%s %s of %zu untouched pages", sync ? "sync" : "async",
		 advice_names[advice], n);
	err = advise1(e, mr, advice, sync, t, len);
	if (err)
		return tfail("%s: advise_mr: %s", what, strerror(err));

	if (advice != IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT) {
		if (counters_after(mr, &c1, !sync, c0.prefetch + n) ||
		    expect_delta("page_prefetch", DELTA(c0, c1, prefetch), n) ||
		    expect_mapped(&c0, &c1, n) ||
		    expect_delta("page_faults after the prefetch", DELTA(c0, c1, faults), 0))
			return T_FAIL;
		if (advice == IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH) {
			memset(l.p, 0xa5, len);
			if (expect_ok(rd(e, &l, 0, len, t, mr->rkey), "read of the prefetched pages") ||
			    check_zero("read of the prefetched pages", l.p, len))
				return T_FAIL;
		} else {
			fill(l.p, len, 7);
			if (expect_ok(wr(e, &l, 0, len, t, mr->rkey), "write into the prefetched pages") ||
			    check_pattern("write into the prefetched pages", t, len, 7))
				return T_FAIL;
		}
		if (mr_counters(mr, &c2) ||
		    expect_delta("page_faults of the access after the prefetch", DELTA(c1, c2, faults), 0))
			return T_FAIL;
		return T_PASS;
	}

	/* NO_FAULT: nothing is present yet. */
	if (counters_after(mr, &c1, !sync, c0.prefetch) ||
	    expect_delta("page_prefetch of NO_FAULT on untouched memory", DELTA(c0, c1, prefetch), 0) ||
	    expect_mapped(&c0, &c1, 0) ||
	    expect_delta("page_faults of NO_FAULT", DELTA(c0, c1, faults), 0))
		return T_FAIL;
	for (size_t i = 0; i < n; i += 2)
		fill(t + i * PAGE, PAGE, (unsigned int)i);
	err = advise1(e, mr, advice, sync, t, len);
	if (err)
		return tfail("NO_FAULT after the CPU wrote every other page: advise_mr: %s", strerror(err));
	if (counters_after(mr, &c2, !sync, c1.prefetch + n / 2) ||
	    expect_delta("page_prefetch of NO_FAULT with every other page present",
			 DELTA(c1, c2, prefetch), n / 2) ||
	    expect_mapped(&c1, &c2, n / 2) ||
	    expect_delta("page_faults of NO_FAULT", DELTA(c1, c2, faults), 0))
		return T_FAIL;
	/* The rest faults on access: at least the N/2 missing pages, at most all N. */
	memset(l.p, 0xa5, len);
	if (expect_ok(rd(e, &l, 0, len, t, mr->rkey), "read after NO_FAULT"))
		return T_FAIL;
	for (size_t i = 0; i < n; i++)
		if (i % 2 ? check_zero("read after NO_FAULT (a page the CPU did not touch)", l.p + i * PAGE, PAGE) :
			    check_pattern("read after NO_FAULT (a page the CPU wrote)", l.p + i * PAGE, PAGE,
					  (int)i))
			return T_FAIL;
	if (mr_counters(mr, &c0))
		return T_FAIL;
	if (DELTA(c2, c0, faults) < (long long)n / 2 || DELTA(c2, c0, faults) > (long long)n)
		return tfail("page_faults of the read after NO_FAULT changed by %lld, want %zu..%zu (>= the missing pages)",
			     DELTA(c2, c0, faults), n / 2, n);
	return T_PASS;
}

/*
 * Data-path faults and invalidations. A write of N untouched pages: page_faults += N exactly
 * for an explicit MR of exactly those pages; for the implicit MR >= N (fault-around may map
 * more; the unmapped guard pages bound it here, so it is N in practice); page_faults_handled
 * 1..N; hmm_mapped_pages += N. MADV_DONTNEED of the N mapped pages: page_invalidations += N
 * exactly, page_invalidations_handled >= 1, hmm_mapped_pages back; a second MADV_DONTNEED
 * (nothing mapped) changes page_invalidations by 0.
 */
static int t_counters(struct env *e, const struct tcase *tc)
{
	const size_t n = 32, len = n * PAGE;
	struct mr_counters c0, c1, c2, c3;
	struct ibv_mr *mr;
	struct lbuf l;
	uint8_t *t;
	long long d;

	(void)tc;
	if (guarded(e, n, &t, &mr) || lbuf_get(e, &l, len, K_PINNED) || mr_counters(mr, &c0))
		return T_FAIL;
	fill(l.p, len, 3);
	if (expect_ok(wr(e, &l, 0, len, t, mr->rkey), "write of untouched pages") ||
	    check_pattern("write of untouched pages", t, len, 3) || mr_counters(mr, &c1))
		return T_FAIL;
	d = DELTA(c0, c1, faults);
	if (e->kind == K_ODP ? d != (long long)n : d < (long long)n)
		return tfail("page_faults changed by %lld, want %s %zu", d, e->kind == K_ODP ? "exactly" : ">=", n);
	d = DELTA(c0, c1, faults_handled);
	if (d < 1 || d > (long long)n)
		return tfail("page_faults_handled changed by %lld, want 1..%zu", d, n);
	if (expect_mapped(&c0, &c1, n) ||
	    expect_delta("page_prefetch of data-path faults", DELTA(c0, c1, prefetch), 0) ||
	    expect_delta("page_invalidations of the write", DELTA(c0, c1, invalidations), 0))
		return T_FAIL;

	if (madvise(t, len, MADV_DONTNEED))
		return tfail("madvise: %s", strerror(errno));
	if (mr_counters(mr, &c2) ||
	    expect_delta("page_invalidations of MADV_DONTNEED of the mapped pages",
			 DELTA(c1, c2, invalidations), n) ||
	    expect_mapped(&c1, &c2, -(long long)n))
		return T_FAIL;
	if (DELTA(c1, c2, invalidations_handled) < 1)
		return tfail("page_invalidations_handled did not move on MADV_DONTNEED");
	if (madvise(t, len, MADV_DONTNEED) || mr_counters(mr, &c3) ||
	    expect_delta("page_invalidations of MADV_DONTNEED of unmapped-in-the-mirror pages",
			 DELTA(c2, c3, invalidations), 0))
		return T_FAIL;
	if (c1.table_bytes == 0)
		return tfail("hmm_table_bytes is 0 with %zu pages mapped", n);
	return T_PASS;
}

const struct tcase prefetch_tests[] = {
	{ "prefetch-sync", t_prefetch, K_ODPS, IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH, 1, 0 },
	{ "prefetch-async", t_prefetch, K_ODPS, IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH, 0, 0 },
	{ "prefetch-write-sync", t_prefetch, K_ODPS, IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE, 1, 0 },
	{ "prefetch-write-async", t_prefetch, K_ODPS, IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE, 0, 0 },
	{ "prefetch-nofault-sync", t_prefetch, K_ODPS, IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT, 1, 0 },
	{ "prefetch-nofault-async", t_prefetch, K_ODPS, IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT, 0, 0 },
	{ "counters-fault-invalidate", t_counters, K_ODPS, 0, 0, 0 },
	{ 0 }
};
