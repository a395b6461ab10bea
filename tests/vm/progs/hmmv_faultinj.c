// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * hmmv_faultinj: the ODP verbs paths that allocate or fault (registration, RDMA write into
 * and read from untouched memory, synchronous and asynchronous prefetch, deregistration),
 * in rounds, for the fault-injection suite (tests/vm/suites/faultinj), which makes the
 * kernel fail allocations and functions of our modules while this runs.
 *
 *   hmmv_faultinj [-d DEV] [-n ROUNDS] [--clean] [-v]
 *
 * Every operation must end in one of its documented outcomes: success with exactly the right
 * data, or a clean errno (registration, prefetch) or error completion (RDMA). Anything else -
 * wrong data, an errno outside the documented set, a completion that never comes, a failed
 * deregistration - is a failure. With --clean (injection off) nothing may fail at all.
 * The last line counts the outcomes: "faultinj: N rounds, ok O, errno E, error completions
 * C, bad B"; exit status 0 when B is 0 (and, with --clean, E and C too).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <rdma/ib_user_ioctl_verbs.h>

#include "fuzz_common.h"

#define REGION (256 * 1024UL)	/* 64 pages: several fault batches with fault-around */

static struct {
	unsigned long ok, err, wc_err, bad;
} cnt;

static void bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void bad(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "%s: BAD: ", fuzz_prog);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	cnt.bad++;
}

/* An errno a failed registration or prefetch may report under injection. */
static bool allowed_errno(int err)
{
	return err == ENOMEM || err == EFAULT || err == EBUSY || err == EAGAIN || err == EINTR ||
	       err == EIO;
}

static void count_errno(const char *what, int err)
{
	if (allowed_errno(err)) {
		tnote("%s: %s", what, strerror(err));
		cnt.err++;
	} else {
		bad("%s: unexpected errno %d (%s)", what, err, strerror(err));
	}
}

/* A failed RDMA operation: an error completion is fine, silence or a post failure is not. */
static int count_wc(struct env *e, int st, const char *what)
{
	if (st == IBV_WC_SUCCESS) {
		cnt.ok++;
		return 0;
	}
	if (st == XFER_TIMEOUT || st == XFER_POSTERR) {
		bad("%s: %s", what, st_str(st));
		return -1;
	}
	tnote("%s: %s", what, st_str(st));
	cnt.wc_err++;
	/* Bringing the QPs back allocates too, and may fail under injection: retry. */
	for (int tries = 0; pair_reset(e, &e->rc); tries++) {
		if (tries == 50) {
			bad("%s: the QPs did not come back after the error in 50 tries", what);
			return -1;
		}
	}
	return 1;
}

static struct ibv_mr *target_mr(struct env *e, enum kind kind, void *p)
{
	struct ibv_mr *mr = mr_get(e, kind, p, REGION, ACC_ALL);

	if (!mr)
		count_errno(kind == K_IMPLICIT ? "implicit registration" : "ODP registration", errno);
	else if (kind == K_ODP)
		cnt.ok++;
	return mr;
}

/* RDMA write into never-touched memory, then read it back from another untouched region. */
static int round_rdma(struct env *e, enum kind kind, struct lbuf *l, unsigned int seed)
{
	uint8_t *dst = map_anon(REGION), *src = map_anon(REGION);
	struct ibv_mr *mr, *smr;
	int rc = 0, st;

	if (!dst || !src)
		return tfail("mmap: %s", strerror(errno));
	fill(src, REGION, seed + 1);	/* the CPU made these pages present; dst is untouched */
	mr = target_mr(e, kind, dst);
	if (!mr)
		goto out;
	fill(l->p, REGION, seed);
	st = wr(e, l, 0, REGION, dst, mr->rkey);
	if (!count_wc(e, st, "RDMA write into untouched memory") &&
	    check_pattern("the written region", dst, REGION, seed))
		bad("RDMA write: wrong data (seed %u)", seed);
	if (st == XFER_TIMEOUT || st == XFER_POSTERR)
		rc = -1;
	memset(l->p, 0, REGION);
	/* src is inside the implicit MR; an explicit MR over dst does not cover it. */
	smr = mr == e->implicit ? mr : target_mr(e, K_ODP, src);
	if (smr) {
		st = rd(e, l, 0, REGION, src, smr->rkey);
		if (!count_wc(e, st, "RDMA read from untouched memory") &&
		    check_pattern("the read region", l->p, REGION, seed + 1))
			bad("RDMA read: wrong data (seed %u)", seed + 1);
		if (st == XFER_TIMEOUT || st == XFER_POSTERR)
			rc = -1;
		if (smr != e->implicit && ibv_dereg_mr(smr))
			bad("deregistration: %s", strerror(errno));
	}
	if (mr != e->implicit && ibv_dereg_mr(mr))
		bad("deregistration: %s", strerror(errno));
out:
	munmap(dst, REGION);
	munmap(src, REGION);
	return rc;
}

/* Synchronous (FLUSH) and asynchronous prefetch of untouched memory, then dereg at once. */
static void round_prefetch(struct env *e, enum kind kind)
{
	static const uint32_t flags[] = { IB_UVERBS_ADVISE_MR_FLAG_FLUSH, 0 };
	uint8_t *p = map_anon(REGION);
	struct ibv_mr *mr;

	if (!p) {
		bad("mmap: %s", strerror(errno));
		return;
	}
	mr = target_mr(e, kind, p);
	for (int i = 0; mr && i < 2; i++) {
		struct ibv_sge sge = { (uintptr_t)p, (uint32_t)REGION, mr->lkey };
		int err = advise_mr(e->pd, IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE, flags[i],
				    &sge, 1);

		if (err)
			count_errno(i ? "async prefetch" : "sync prefetch", err);
		else
			cnt.ok++;
	}
	/* Deregistration with an asynchronous prefetch maybe still queued. */
	if (mr && mr != e->implicit && ibv_dereg_mr(mr))
		bad("deregistration after prefetch: %s", strerror(errno));
	munmap(p, REGION);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "clean", no_argument, NULL, 'c' }, { 0 } };
	const char *dev = getenv("HMMV_DEV") ? getenv("HMMV_DEV") : "rxe0";
	unsigned int rounds = 20;
	bool clean = false;
	struct lbuf l;
	struct env e;
	int opt;

	fuzz_prog = "faultinj";
	while ((opt = getopt_long(argc, argv, "d:n:v", opts, NULL)) != -1) {
		switch (opt) {
		case 'd': dev = optarg; break;
		case 'n': rounds = (unsigned int)strtoul(optarg, NULL, 0); break;
		case 'c': clean = true; break;
		case 'v': verbose = true; break;
		default:
			fprintf(stderr, "usage: %s [-d DEV] [-n ROUNDS] [--clean] [-v]\n", argv[0]);
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	/*
	 * The device context, QPs and the pinned local buffer are not what is tested (they may
	 * fail under injection too): they come first, with retries.
	 */
	for (int tries = 0;; tries++) {
		if (env_open(&e, dev, K_ODP) == T_PASS) {
			if (!lbuf_get(&e, &l, REGION, K_PINNED))
				break;
			lbuf_put(&e, &l);
		}
		env_close(&e);
		if (tries == 100)
			return tfail("could not set up %s (context, QPs, local buffer) in 100 tries", dev);
	}
	for (unsigned int r = 0; r < rounds; r++) {
		enum kind kind = r % 2 ? K_IMPLICIT : K_ODP;

		if (round_rdma(&e, kind, &l, r * 2))
			break;
		round_prefetch(&e, kind);
		/* A fresh implicit MR now and then: its registration is a path of its own. */
		if (e.implicit && r % 4 == 3) {
			if (ibv_dereg_mr(e.implicit))
				bad("implicit deregistration: %s", strerror(errno));
			e.implicit = NULL;
		}
	}
	lbuf_put(&e, &l);
	env_close(&e);
	printf("faultinj: %u rounds, ok %lu, errno %lu, error completions %lu, bad %lu\n", rounds,
	       cnt.ok, cnt.err, cnt.wc_err, cnt.bad);
	if (cnt.bad || (clean && (cnt.err || cnt.wc_err)))
		return 1;
	return 0;
}
