// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * hmmv_odp_test: bad input. Each case must end in a clean errno or an error completion (never
 * a kernel splat: the VM runner fails the run on one), and the device must keep working.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <rdma/ib_user_ioctl_verbs.h>
#include <rdma/ib_user_verbs.h>

#include "odp.h"

/* A registration that must fail with an errno. */
static int must_not_register(struct ibv_mr *mr, const char *what)
{
	if (mr) {
		ibv_dereg_mr(mr);
		return tfail("%s: registration succeeded (lkey 0x%x), want an error", what, mr->lkey);
	}
	if (!errno)
		return tfail("%s: registration failed without an errno", what);
	tnote("%s: %s", what, strerror(errno));
	return 0;
}

static int t_reg_overflow(struct env *e, const struct tcase *tc)
{
	const int acc = ACC_ALL | IBV_ACCESS_ON_DEMAND;
	const size_t len = 4 * PAGE;
	uint8_t *b = map_anon(len);

	(void)tc;
	if (!b)
		return tfail("mmap: %s", strerror(errno));
	errno = 0;
	{
		/* Evidence when it is accepted: what a write at the wrapped iova does. */
		struct ibv_mr *mr = ibv_reg_mr_iova2(e->pd, b, len, UINT64_MAX - PAGE + 1, acc);
		struct lbuf l;

		if (mr && !lbuf_get(e, &l, 4097, K_PINNED)) {
			int st = xfer(e, &e->rc, IBV_WR_RDMA_WRITE, l.p, l.mr->lkey, 4097, UINT64_MAX - 99,
				      mr->rkey, 0, 0);

			tnote("accepted iova 2^64-4096 length 16 KiB (lkey 0x%x): a 4097-byte write at 2^64-100 ended %s",
			      mr->lkey, st_str(st));
			pair_reset(e, &e->rc);
			lbuf_put(e, &l);
			ibv_dereg_mr(mr);
		}
	}
	errno = 0;
	if (must_not_register(ibv_reg_mr_iova2(e->pd, b, len, UINT64_MAX - PAGE + 1, acc),
			      "iova + length wraps past 2^64") ||
	    must_not_register(ibv_reg_mr_iova2(e->pd, b, len, UINT64_MAX - 7, acc),
			      "iova 2^64 - 8, length 4 pages") ||
	    must_not_register(ibv_reg_mr(e->pd, (void *)(UINTPTR_MAX - PAGE + 1), 2 * PAGE, acc),
			      "address + length wraps past 2^64") ||
	    must_not_register(ibv_reg_mr(e->pd, b, SIZE_MAX - PAGE, acc),
			      "a length of 2^64 - 4 KiB from a real address"))
		return T_FAIL;
	return sanity(e, "refused registrations");
}

/*
 * iova + length ending exactly at 2^64: either refused, or usable with the data landing in the
 * buffer (the last byte of the address space is a valid iova).
 */
static int t_reg_iova_top(struct env *e, const struct tcase *tc)
{
	const size_t len = 4 * PAGE, msg = 4097, off = 5;
	const uint64_t iova = 0 - (uint64_t)len;
	struct ibv_mr *mr;
	struct lbuf l;
	uint8_t *b = map_anon(len);
	int st;

	(void)tc;
	if (!b)
		return tfail("mmap: %s", strerror(errno));
	errno = 0;
	mr = ibv_reg_mr_iova2(e->pd, b, len, iova, ACC_ALL | IBV_ACCESS_ON_DEMAND);
	if (!mr) {
		if (!errno)
			return tfail("registration at iova 2^64 - 16 KiB failed without an errno");
		tnote("registration at iova 2^64 - 16 KiB refused: %s", strerror(errno));
		return sanity(e, "a refused registration");
	}
	if (lbuf_get(e, &l, msg, K_PINNED))
		return T_FAIL;
	fill(l.p, msg, 5);
	st = xfer(e, &e->rc, IBV_WR_RDMA_WRITE, l.p, l.mr->lkey, msg, iova + off, mr->rkey, 0, 0);
	if (st == IBV_WC_SUCCESS) {
		if (check_region("write at iova 2^64 - 16 KiB + 5", b, len, off, msg, 5, 0))
			return T_FAIL;
	} else if (expect_err(st, IBV_WC_REM_ACCESS_ERR, "write at iova 2^64 - 16 KiB + 5") ||
		   pair_reset(e, &e->rc)) {
		return T_FAIL;
	}
	/* The last bytes, up to 2^64 - 1 exactly, and one past. */
	fill(l.p, 16, 6);
	st = xfer(e, &e->rc, IBV_WR_RDMA_WRITE, l.p, l.mr->lkey, 16, UINT64_MAX - 15, mr->rkey, 0, 0);
	if (st != IBV_WC_SUCCESS && expect_err(st, IBV_WC_REM_ACCESS_ERR, "write of the last 16 bytes"))
		return T_FAIL;
	if (st == IBV_WC_SUCCESS && check_pattern("the last 16 bytes", b + len - 16, 16, 6))
		return T_FAIL;
	if (pair_reset(e, &e->rc))
		return T_FAIL;
	if (expect_err(xfer(e, &e->rc, IBV_WR_RDMA_WRITE, l.p, l.mr->lkey, 17, UINT64_MAX - 15,
			    mr->rkey, 0, 0), IBV_WC_REM_ACCESS_ERR, "write of 17 bytes wrapping past 2^64"))
		return T_FAIL;
	ibv_dereg_mr(mr);
	return sanity(e, "iova at the top of the address space");
}

static int t_reg_zero(struct env *e, const struct tcase *tc)
{
	uint8_t *b = map_anon(PAGE);
	struct ibv_mr *mr;
	struct lbuf l;

	(void)tc;
	errno = 0;
	mr = ibv_reg_mr(e->pd, b, 0, ACC_ALL | IBV_ACCESS_ON_DEMAND);
	if (!mr) {
		if (!errno)
			return tfail("zero-length registration failed without an errno");
		tnote("zero length refused: %s", strerror(errno));
		return sanity(e, "a zero-length registration");
	}
	/* Accepted: then it must cover nothing. */
	if (lbuf_get(e, &l, 8, K_PINNED))
		return T_FAIL;
	if (expect_err(xfer(e, &e->rc, IBV_WR_RDMA_WRITE, l.p, l.mr->lkey, 1, (uintptr_t)b, mr->rkey, 0, 0),
		       IBV_WC_REM_ACCESS_ERR, "1-byte write into a zero-length MR"))
		return T_FAIL;
	if (ibv_dereg_mr(mr))
		return tfail("dereg of a zero-length MR: %s", strerror(errno));
	return sanity(e, "a zero-length MR");
}

static int t_implicit_nonzero(struct env *e, const struct tcase *tc)
{
	const int acc = ACC_ALL | IBV_ACCESS_ON_DEMAND;

	(void)tc;
	errno = 0;
	if (must_not_register(ibv_reg_mr(e->pd, (void *)PAGE, SIZE_MAX, acc), "start 4096, length SIZE_MAX") ||
	    must_not_register(ibv_reg_mr(e->pd, (void *)1, SIZE_MAX, acc), "start 1, length SIZE_MAX") ||
	    must_not_register(ibv_reg_mr_iova2(e->pd, NULL, SIZE_MAX, PAGE, acc),
			      "start 0, length SIZE_MAX, iova 4096"))
		return T_FAIL;
	return sanity(e, "refused implicit registrations");
}

/* ODP access combinations the verbs forbid: EINVAL exactly. */
static int t_access_combo(struct env *e, const struct tcase *tc)
{
	static const struct { int acc; const char *name; } bad[] = {
		{ IBV_ACCESS_REMOTE_WRITE, "REMOTE_WRITE without LOCAL_WRITE" },
		{ IBV_ACCESS_REMOTE_ATOMIC, "REMOTE_ATOMIC without LOCAL_WRITE" },
		{ IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE, "REMOTE_READ|REMOTE_WRITE without LOCAL_WRITE" },
	};
	uint8_t *b = map_anon(4 * PAGE);

	(void)tc;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ibv_mr *mr;

		errno = 0;
		if (e->kind == K_IMPLICIT)
			mr = ibv_reg_mr(e->pd, NULL, SIZE_MAX, bad[i].acc | IBV_ACCESS_ON_DEMAND);
		else
			mr = ibv_reg_mr(e->pd, b, 4 * PAGE, bad[i].acc | IBV_ACCESS_ON_DEMAND);
		if (mr) {
			ibv_dereg_mr(mr);
			return tfail("ODP with %s: registered, want EINVAL", bad[i].name);
		}
		if (errno != EINVAL)
			return tfail("ODP with %s: %s, want EINVAL", bad[i].name, strerror(errno));
	}
	return sanity(e, "refused access combinations");
}

/* MR access flags are checked before the mirror: no remote write/read/atomic right, no access. */
static int t_mr_rights(struct env *e, const struct tcase *tc)
{
	const size_t len = 4 * PAGE, msg = 2000;
	struct ibv_mr *mr;
	struct lbuf l;
	uint8_t *b = map_anon(len);
	const int acc = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ | IBV_ACCESS_ON_DEMAND;

	(void)tc;
	fill(b, len, 1);	/* present and writable in the CPU's tables */
	mr = e->kind == K_IMPLICIT ? ibv_reg_mr(e->pd, NULL, SIZE_MAX, acc) : ibv_reg_mr(e->pd, b, len, acc);
	if (!mr)
		return tfail("registration without REMOTE_WRITE: %s", strerror(errno));
	if (lbuf_get(e, &l, msg, K_PINNED))
		return T_FAIL;
	if (expect_ok(rd(e, &l, 0, msg, b + 1, mr->rkey), "read (allowed)") ||
	    check_slice("read (allowed)", l.p, msg, 1, 1))
		return T_FAIL;
	fill(l.p, msg, 2);
	if (expect_err(wr(e, &l, 0, msg, b + 1, mr->rkey), IBV_WC_REM_ACCESS_ERR,
		       "write through an MR without REMOTE_WRITE") ||
	    check_pattern("memory after the refused write", b, len, 1) ||
	    pair_reset(e, &e->rc))
		return T_FAIL;
	if (expect_err(xfer(e, &e->rc, IBV_WR_ATOMIC_FETCH_AND_ADD, l.p, l.mr->lkey, 8, (uintptr_t)b + 8,
			    mr->rkey, 1, 0), IBV_WC_REM_ACCESS_ERR, "atomic through an MR without REMOTE_ATOMIC") ||
	    check_pattern("memory after the refused atomic", b, len, 1))
		return T_FAIL;
	ibv_dereg_mr(mr);
	return sanity(e, "refused accesses");
}

/* Unmapped addresses (a hole, address 0, a kernel address) through the MR: remote access error. */
static int t_unmapped(struct env *e, const struct tcase *tc)
{
	const size_t len = 4 * PAGE;
	struct ibv_mr *mr;
	struct lbuf l;
	uint8_t *b = map_anon(len);
	uint64_t addrs[3];
	int naddr = 1;

	(void)tc;
	if (!b)
		return tfail("mmap: %s", strerror(errno));
	mr = mr_get(e, e->kind, b, len, ACC_ALL);
	if (!mr)
		return tfail("registration: %s", strerror(errno));
	munmap(b, len);		/* the whole (explicit) range is a hole now */
	addrs[0] = (uintptr_t)b + 5;
	if (e->kind == K_IMPLICIT) {
		addrs[naddr++] = 0;
		addrs[naddr++] = 0xffff888000000000ULL;
	}
	if (lbuf_get(e, &l, 2 * PAGE, K_PINNED))
		return T_FAIL;
	for (int i = 0; i < naddr; i++) {
		char what[96];

		snprintf(what, sizeof(what), "write to unmapped 0x%llx", (unsigned long long)addrs[i]);
		if (expect_err(xfer(e, &e->rc, IBV_WR_RDMA_WRITE, l.p, l.mr->lkey, 5000, addrs[i], mr->rkey, 0, 0),
			       IBV_WC_REM_ACCESS_ERR, what) || pair_reset(e, &e->rc))
			return T_FAIL;
		snprintf(what, sizeof(what), "read of unmapped 0x%llx", (unsigned long long)addrs[i]);
		if (expect_err(xfer(e, &e->rc, IBV_WR_RDMA_READ, l.p, l.mr->lkey, 5000, addrs[i], mr->rkey, 0, 0),
			       IBV_WC_REM_ACCESS_ERR, what) || pair_reset(e, &e->rc))
			return T_FAIL;
		snprintf(what, sizeof(what), "atomic on unmapped 0x%llx", (unsigned long long)(addrs[i] + 3));
		if (expect_err(xfer(e, &e->rc, IBV_WR_ATOMIC_FETCH_AND_ADD, l.p, l.mr->lkey, 8,
				    (addrs[i] + 3) & ~7ULL, mr->rkey, 1, 0), IBV_WC_REM_ACCESS_ERR, what) ||
		    pair_reset(e, &e->rc))
			return T_FAIL;
	}
	mr_put(e, mr);
	return sanity(e, "accesses to unmapped memory");
}

/* A mapping that was never writable (anonymous PROT_READ, a read-only file mapping). */
static int t_readonly_mapping(struct env *e, const struct tcase *tc)
{
	const size_t len = 4 * PAGE, msg = 5000;
	int fd = memfd_create("hmmv-odp-ro", 0);
	uint8_t *a = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), *f, *rw;
	struct lbuf l;

	(void)tc;
	if (fd < 0 || ftruncate(fd, len) || a == MAP_FAILED)
		return tfail("memfd/mmap: %s", strerror(errno));
	rw = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	f = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	if (rw == MAP_FAILED || f == MAP_FAILED)
		return tfail("mmap: %s", strerror(errno));
	fill(rw, len, 1);
	if (lbuf_get(e, &l, msg, K_PINNED))
		return T_FAIL;
	for (int i = 0; i < 2; i++) {
		uint8_t *b = i ? f : a;
		struct ibv_mr *mr = mr_get(e, e->kind, b, len, ACC_ALL);
		const char *what = i ? "write into a read-only shared file mapping" :
				       "write into a read-only anonymous mapping";

		if (!mr) {
			/* Refusing REMOTE_WRITE over a read-only mapping at registration is fine too. */
			tnote("%s: registration refused: %s", what, strerror(errno));
			continue;
		}
		memset(l.p, 0xa5, msg);
		if (expect_ok(rd(e, &l, 0, msg, b + 7, mr->rkey), "read of a read-only mapping") ||
		    (i ? check_slice("read of a read-only file mapping", l.p, msg, 7, 1) :
			 check_zero("read of a read-only anonymous mapping", l.p, msg)))
			return T_FAIL;
		fill(l.p, msg, 2);
		if (expect_err(wr(e, &l, 0, msg, b + 7, mr->rkey), IBV_WC_REM_ACCESS_ERR, what) ||
		    pair_reset(e, &e->rc))
			return T_FAIL;
		if (i ? check_pattern("the file after the refused write", rw, len, 1) :
			check_zero("the anonymous mapping after the refused write", a, len))
			return T_FAIL;
		mr_put(e, mr);
	}
	return sanity(e, "refused writes to read-only mappings");
}

/* advise_mr refusals: each an errno, none a hang. */
static int t_advise_bad(struct env *e, const struct tcase *tc)
{
	const size_t len = 16 * PAGE;
	const uint32_t flush = IB_UVERBS_ADVISE_MR_FLAG_FLUSH, pf = IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH;
	uint8_t *b = map_anon(len);
	struct ibv_pd *pd2 = ibv_alloc_pd(e->ctx);
	struct ibv_mr *mr, *pinned, *foreign;
	struct ibv_sge sge;
	int err;

	(void)tc;
	if (!b || !pd2)
		return tfail("mmap/pd: %s", strerror(errno));
	mr = mr_get(e, e->kind, b, len, ACC_ALL);
	pinned = ibv_reg_mr(e->pd, map_anon(len), len, ACC_ALL);
	foreign = ibv_reg_mr(pd2, b, len, ACC_ALL | IBV_ACCESS_ON_DEMAND);
	if (!mr || !pinned || !foreign)
		return tfail("registrations: %s", strerror(errno));

	/* The good case first: the method works at all. */
	sge = (struct ibv_sge){ (uintptr_t)b, PAGE, mr->lkey };
	err = advise_mr(e->pd, pf, flush, &sge, 1);
	if (err)
		return tfail("a valid sync PREFETCH of one page: %s", strerror(err));

#define REFUSED(what, call)							\
	do {									\
		err = (call);							\
		if (!err)							\
			return tfail("%s: advise_mr succeeded, want an errno", what); \
		tnote("%s: %s", what, strerror(err));				\
	} while (0)

	sge = (struct ibv_sge){ (uintptr_t)pinned->addr, PAGE, pinned->lkey };
	REFUSED("advise on a pinned (non-ODP) MR", advise_mr(e->pd, pf, flush, &sge, 1));
	sge = (struct ibv_sge){ (uintptr_t)b, PAGE, foreign->lkey };
	REFUSED("advise with the lkey of another PD's MR", advise_mr(e->pd, pf, flush, &sge, 1));
	sge = (struct ibv_sge){ (uintptr_t)b, PAGE, mr->lkey ^ 0x5a5a00 };
	REFUSED("advise with a made-up lkey", advise_mr(e->pd, pf, flush, &sge, 1));
	sge = (struct ibv_sge){ (uintptr_t)b, PAGE, mr->lkey };
	REFUSED("advise with unknown flags", advise_mr(e->pd, pf, 2, &sge, 1));
	REFUSED("advise with an unknown advice", advise_mr(e->pd, 7, flush, &sge, 1));
	REFUSED("advise with an empty SGE list", advise_mr_raw(e->pd, pf, flush, &sge, 0));
	REFUSED("advise with a list length that is not a multiple of an SGE",
		advise_mr_raw(e->pd, pf, flush, &sge, sizeof(sge) + 3));
	if (e->kind == K_ODP) {
		sge = (struct ibv_sge){ (uintptr_t)b + len - PAGE, 2 * PAGE, mr->lkey };
		REFUSED("sync advise past the end of the MR", advise_mr(e->pd, pf, flush, &sge, 1));
		/* Async may be refused at once or when it runs (mlx5 checks the range then). */
		err = advise_mr(e->pd, pf, 0, &sge, 1);
		tnote("async advise past the end of the MR: %s", err ? strerror(err) : "accepted");
		sge = (struct ibv_sge){ (uintptr_t)b - PAGE, PAGE, mr->lkey };
		REFUSED("sync advise before the start of the MR", advise_mr(e->pd, pf, flush, &sge, 1));
		sge = (struct ibv_sge){ UINT64_MAX - PAGE + 1, 2 * PAGE, mr->lkey };
		REFUSED("advise with addr + length wrapping", advise_mr(e->pd, pf, flush, &sge, 1));
	} else {
		uint8_t *hole = reserve_va(len);

		sge = (struct ibv_sge){ (uintptr_t)hole, (uint32_t)len, mr->lkey };
		REFUSED("sync PREFETCH of unmapped memory through the implicit MR",
			advise_mr(e->pd, pf, flush, &sge, 1));
		sge = (struct ibv_sge){ 0xffff888000000000ULL, PAGE, mr->lkey };
		REFUSED("sync PREFETCH of a kernel address", advise_mr(e->pd, pf, flush, &sge, 1));
		sge = (struct ibv_sge){ UINT64_MAX - PAGE + 1, 2 * PAGE, mr->lkey };
		REFUSED("advise with addr + length wrapping", advise_mr(e->pd, pf, flush, &sge, 1));
		/* Async of a hole: accepted or refused, but finished (no hang, no splat). */
		sge = (struct ibv_sge){ (uintptr_t)hole, (uint32_t)len, mr->lkey };
		err = advise_mr(e->pd, pf, 0, &sge, 1);
		tnote("async PREFETCH of unmapped memory: %s", err ? strerror(err) : "accepted");
	}
	/* Read-only MR and PREFETCH_WRITE. */
	{
		struct ibv_mr *ro = ibv_reg_mr(e->pd, b, len, IBV_ACCESS_REMOTE_READ | IBV_ACCESS_ON_DEMAND);

		if (ro) {
			sge = (struct ibv_sge){ (uintptr_t)b, PAGE, ro->lkey };
			REFUSED("PREFETCH_WRITE on an MR without LOCAL_WRITE",
				advise_mr(e->pd, IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE, flush, &sge, 1));
			ibv_dereg_mr(ro);
		}
	}
#undef REFUSED
	ibv_dereg_mr(foreign);
	ibv_dereg_mr(pinned);
	ibv_dealloc_pd(pd2);
	return sanity(e, "refused advise_mr calls");
}

/*
 * The largest SGE list the uverbs ABI can carry (an attribute's length is 16 bits: 4095
 * entries; a list of 10^6 cannot even be expressed): a sync PREFETCH_WRITE of 4095 distinct
 * untouched pages finishes, and page_prefetch moves by exactly 4095. The same list with every
 * lkey bad is refused.
 */
static int t_advise_big_list(struct env *e, const struct tcase *tc)
{
	const uint32_t n = UINT16_MAX / sizeof(struct ib_uverbs_sge);
	const size_t len = (size_t)n * 2 * PAGE;
	struct ibv_sge *sg = calloc(n, sizeof(*sg));
	struct mr_counters c0, c1;
	struct ibv_mr *mr;
	uint8_t *b = map_anon(len);
	struct timespec t0, t1;
	int err;

	(void)tc;
	if (!b || !sg)
		return tfail("mmap: %s", strerror(errno));
	madvise(b, len, MADV_NOHUGEPAGE);
	mr = mr_get(e, e->kind, b, len, ACC_ALL);
	if (!mr || mr_counters(mr, &c0))
		return mr ? T_FAIL : tfail("registration: %s", strerror(errno));
	for (uint32_t i = 0; i < n; i++)
		sg[i] = (struct ibv_sge){ (uintptr_t)b + (size_t)i * 2 * PAGE + 100, 10, mr->lkey };
	clock_gettime(CLOCK_MONOTONIC, &t0);
	err = advise_mr(e->pd, IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE, IB_UVERBS_ADVISE_MR_FLAG_FLUSH, sg, n);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (err)
		return tfail("sync PREFETCH_WRITE with %u SGEs: %s", n, strerror(err));
	tnote("%u SGEs took %.2f s", n, (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	if (mr_counters(mr, &c1))
		return T_FAIL;
	if (c1.prefetch - c0.prefetch != n)
		return tfail("page_prefetch changed by %lld after %u one-page SGEs, want exactly %u",
			     c1.prefetch - c0.prefetch, n, n);
	for (uint32_t i = 0; i < n; i++)
		sg[i].lkey = mr->lkey ^ 0x777700;
	err = advise_mr(e->pd, IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH, 0, sg, n);
	if (!err)
		return tfail("async PREFETCH with %u bad lkeys succeeded", n);
	free(sg);
	return sanity(e, "a maximal SGE list");
}

/* Dereg of the target MR while RDMA writes are in flight: no hang; each op completes or errors. */
static int t_dereg_inflight(struct env *e, const struct tcase *tc)
{
	const size_t len = 8 * MIB, msg = MIB + 1;
	const int nops = 32;
	struct ibv_mr *mr;
	struct lbuf l;
	uint8_t *t = map_anon(len);
	struct timespec t0, t1;
	int ok = 0, errs = 0;

	(void)tc;
	if (!t)
		return tfail("mmap: %s", strerror(errno));
	mr = mr_get(e, e->kind, t, len, ACC_ALL);
	if (!mr || lbuf_get(e, &l, msg, K_PINNED))
		return tfail("registration: %s", strerror(errno));
	fill(l.p, msg, 1);
	for (int i = 0; i < nops; i++) {
		struct ibv_sge sge = { (uintptr_t)l.p, (uint32_t)msg, l.mr->lkey };
		struct ibv_send_wr wr = { .wr_id = (uint64_t)i, .sg_list = &sge, .num_sge = 1,
					  .opcode = IBV_WR_RDMA_WRITE, .send_flags = IBV_SEND_SIGNALED }, *bad;

		wr.wr.rdma.remote_addr = (uintptr_t)t + (size_t)(i % 7) * MIB + (size_t)i;
		wr.wr.rdma.rkey = mr->rkey;
		errno = ibv_post_send(e->rc.req, &wr, &bad);
		if (errno)
			return tfail("post %d: %s", i, strerror(errno));
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (ibv_dereg_mr(mr))
		return tfail("dereg with writes in flight: %s", strerror(errno));
	if (mr == e->implicit)
		e->implicit = NULL;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	tnote("dereg took %.3f s", (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	for (int i = 0; i < nops; i++) {
		struct ibv_wc wc;
		int st = wait_wc(e, e->scq, &wc, 60);

		if (st == XFER_TIMEOUT)
			return tfail("after dereg: completion %d of %d never came (%d ok, %d errors)", i + 1, nops,
				     ok, errs);
		if (st == IBV_WC_SUCCESS)
			ok++;
		else if (st == IBV_WC_REM_ACCESS_ERR || st == IBV_WC_WR_FLUSH_ERR ||
			 st == IBV_WC_REM_OP_ERR || st == IBV_WC_REM_INV_REQ_ERR)
			errs++;
		else
			return tfail("after dereg: completion %d: unexpected %s", i + 1, st_str(st));
	}
	tnote("%d completed, %d errors", ok, errs);
	return sanity(e, "dereg with writes in flight");
}

/* Dereg while an async prefetch of 256 MiB is queued: no hang. */
static int t_dereg_prefetch(struct env *e, const struct tcase *tc)
{
	const size_t len = 256 * MIB;
	struct ibv_mr *mr;
	struct ibv_sge sge;
	uint8_t *t = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	struct timespec t0, t1;
	int err;

	(void)tc;
	if (t == MAP_FAILED)
		return tfail("mmap: %s", strerror(errno));
	mr = mr_get(e, e->kind, t, len, ACC_ALL);
	if (!mr)
		return tfail("registration of 256 MiB: %s", strerror(errno));
	sge = (struct ibv_sge){ (uintptr_t)t, (uint32_t)len, mr->lkey };
	err = advise_mr(e->pd, IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE, 0, &sge, 1);
	if (err)
		return tfail("async PREFETCH_WRITE of 256 MiB: %s", strerror(err));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (ibv_dereg_mr(mr))
		return tfail("dereg with a prefetch queued: %s", strerror(errno));
	if (mr == e->implicit)
		e->implicit = NULL;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	tnote("dereg took %.3f s", (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	munmap(t, len);
	return sanity(e, "dereg with a 256 MiB prefetch queued");
}

const struct tcase bad_tests[] = {
	{ "bad-reg-overflow", t_reg_overflow, KB(K_ODP), 0, 0, 0 },
	{ "bad-reg-iova-top", t_reg_iova_top, KB(K_ODP), 0, 0, 0 },
	{ "bad-reg-zero-length", t_reg_zero, KB(K_ODP), 0, 0, 0 },
	{ "bad-implicit-nonzero-start", t_implicit_nonzero, KB(K_IMPLICIT), 0, 0, 0 },
	{ "bad-access-combination", t_access_combo, K_ODPS, 0, 0, 0 },
	{ "bad-mr-rights", t_mr_rights, K_ODPS, 0, 0, 0 },
	{ "bad-unmapped", t_unmapped, K_ODPS, 0, 0, 0 },
	{ "bad-readonly-mapping", t_readonly_mapping, K_ODPS, 0, 0, 0 },
	{ "bad-advise", t_advise_bad, K_ODPS, 0, 0, 0 },
	{ "bad-advise-max-sge-list", t_advise_big_list, K_ODPS, 0, 0, 0 },
	{ "bad-dereg-inflight-writes", t_dereg_inflight, K_ODPS, 0, 0, 0 },
	{ "bad-dereg-async-prefetch-256MiB", t_dereg_prefetch, K_ODPS, 0, 0, 200 },
	{ 0 }
};
