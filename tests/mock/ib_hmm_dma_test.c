// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * ib_hmm_dma_test: DMA mirrors driven through the mock device
 * /dev/ib_hmm_test with QEMU's edu PCI device as the DMA device
 * (tests/vm/run --viommu). The device reads and writes user memory through
 * the DMA addresses the mirror gives; the bytes are checked from the CPU's
 * side, and after an invalidation the old IOVA must not reach the page.
 *
 * usage: ib_hmm_dma_test [-v] [NAME...]   (default: every case)
 * Prints PASS/FAIL/SKIP per case and "N passed, N failed[, N skipped]".
 * Each case runs in its own child process (a crash is one failure, and the
 * MRs are gone when the case ends).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uapi/rdma/ib_hmm_test.h>

#include "mock_harness.h"

#define U(p)		((uint64_t)(uintptr_t)(p))
static int dma_info(int fd, struct ib_hmm_test_dma_info *info)
{
	return xioctl(fd, IB_HMM_TEST_IOC_DMA_INFO, info);
}

static int mr_create(int fd, bool dma, uint64_t start, uint64_t len,
		     uint64_t *h)
{
	struct ib_hmm_test_mr_create a = {
		.start = start, .length = len, .access = ACC_ALL,
	};
	int e = xioctl(fd, dma ? IB_HMM_TEST_IOC_MR_CREATE_DMA :
			   IB_HMM_TEST_IOC_MR_CREATE, &a);

	if (!e)
		*h = a.handle;
	return e;
}

/* The device reads (or writes) len bytes at iova through the mirror. */
static int mr_dma(int fd, uint64_t h, uint64_t iova, uint64_t len, void *buf,
		  uint64_t flags)
{
	struct ib_hmm_test_rw a = {
		.handle = h, .iova = iova, .length = len,
		.addr = (uintptr_t)buf, .flags = flags,
	};

	return xioctl(fd, IB_HMM_TEST_IOC_MR_DMA, &a);
}

/* The CPU path of the mock device (ib_hmm_mr_copy_to()). */
static int mr_write(int fd, uint64_t h, uint64_t iova, uint64_t len,
		    const void *buf)
{
	struct ib_hmm_test_rw a = {
		.handle = h, .iova = iova, .length = len,
		.addr = (uintptr_t)buf,
	};

	return xioctl(fd, IB_HMM_TEST_IOC_WRITE, &a);
}

/* DMA addresses of npages pages; *found: how many are present. */
static int dma_lookup(int fd, uint64_t h, uint64_t iova, uint64_t npages,
		      uint64_t *dma, uint64_t *found)
{
	struct ib_hmm_test_dma_lookup a = {
		.handle = h, .iova = iova, .npages = npages,
		.addr = (uintptr_t)dma,
	};
	int e = xioctl(fd, IB_HMM_TEST_IOC_DMA_LOOKUP, &a);

	if (!e && found)
		*found = a.found;
	return e;
}

/* A transfer at a raw device address; *phys: its IOMMU translation. */
static int dma_raw(int fd, uint64_t dma, uint64_t len, void *buf,
		   uint64_t flags, uint8_t fill, uint64_t *phys)
{
	struct ib_hmm_test_dma_raw a = {
		.dma_addr = dma, .length = len, .addr = (uintptr_t)buf,
		.flags = flags, .fill = fill,
	};
	int e = xioctl(fd, IB_HMM_TEST_IOC_DMA_RAW, &a);

	if (!e && phys)
		*phys = a.phys;
	return e;
}

/* Give DMA MR @h the logging invalidate hook (ib_hmm_mr_set_ops()). */
static int mr_set_ops(int fd, uint64_t h)
{
	struct ib_hmm_test_mr_set_ops a = { .handle = h };

	return xioctl(fd, IB_HMM_TEST_IOC_MR_SET_OPS, &a);
}

/* The hook calls of @h since the last look (log: the last 64, or NULL). */
static int hook_log(int fd, uint64_t h, struct ib_hmm_test_hook_call *log,
		    uint64_t *calls, uint64_t *file_calls)
{
	struct ib_hmm_test_hook_call tmp[IB_HMM_TEST_HOOK_LOG];
	struct ib_hmm_test_hook_log a = {
		.handle = h, .addr = (uintptr_t)(log ? log : tmp),
	};
	int e = xioctl(fd, IB_HMM_TEST_IOC_HOOK_LOG, &a);

	if (!e && calls)
		*calls = a.calls;
	if (!e && file_calls)
		*file_calls = a.file_calls;
	return e;
}

/* ---- helpers ---- */

/* The device and its IOMMU; SKIP without them. */
#define NEED_EDU(fd, info)						\
	do {								\
		CHECK_ERR(dma_info(fd, &(info)), 0);			\
		if (!(info).present)					\
			SKIP("no edu device (tests/vm/run --viommu)");	\
		CHECK((info).translated,				\
		      "edu is not behind a translating IOMMU");		\
	} while (0)

/*
 * The old DMA address @dma of a page whose contents were @old must not
 * reach it any more: the IOMMU has no translation for it, and a device read
 * there brings back something else (the faulting read leaves the device's
 * buffer as it was, or zeros).
 */
static int check_stale(int fd, uint64_t dma, const uint8_t *old, char *why,
		       size_t whylen)
{
	uint8_t got[PAGE];
	uint64_t phys = 1;
	int e;

	e = dma_raw(fd, dma, PAGE, got, 0, 0xa5, &phys);
	if (e) {
		snprintf(why, whylen, "DMA_RAW: %s", strerror(e));
		return -1;
	}
	if (phys) {
		snprintf(why, whylen, "IOVA %#llx still translates to %#llx",
			 (unsigned long long)dma, (unsigned long long)phys);
		return -1;
	}
	if (!memcmp(got, old, PAGE)) {
		snprintf(why, whylen,
			 "a read at the old IOVA %#llx reached the page",
			 (unsigned long long)dma);
		return -1;
	}
	return 0;
}

/* Destroy DMA MR @h: no page may stay mapped, no IOVA range allocated. */
static int destroy_unmapped(int fd, uint64_t h)
{
	int ret = T_PASS;

	CHECK_ERR(mr_destroy(fd, h), 0);
	CHECK(hmm_debugfs_stat("dma_mapped_pages") == 0 &&
	      hmm_debugfs_stat("dma_iova_ranges") == 0,
	      "mappings left after destroy: %lld pages, %lld IOVA ranges",
	      hmm_debugfs_stat("dma_mapped_pages"),
	      hmm_debugfs_stat("dma_iova_ranges"));
out:
	return ret;
}

/*
 * The hook of @h was called exactly once since the last look, for
 * [@start, @end), blockable, and @known pages of it that a DMA_LOOKUP had
 * given were all still mapped then. -1 with @why otherwise.
 */
static int hook_one_call(int fd, uint64_t h, uint64_t start, uint64_t end,
			 uint64_t known, char *why, size_t whylen)
{
	struct ib_hmm_test_hook_call log[IB_HMM_TEST_HOOK_LOG], *c = log;
	uint64_t calls;
	int e;

	e = hook_log(fd, h, log, &calls, NULL);
	if (e) {
		snprintf(why, whylen, "HOOK_LOG: %s", strerror(e));
		return -1;
	}
	if (calls != 1) {
		snprintf(why, whylen,
			 "MR %llu: %llu hook calls, want 1 for [%#llx, %#llx)",
			 (unsigned long long)h, (unsigned long long)calls,
			 (unsigned long long)start, (unsigned long long)end);
		if (calls)
			snprintf(why + strlen(why), whylen - strlen(why),
				 "; the first for [%#llx, %#llx)",
				 (unsigned long long)c->start,
				 (unsigned long long)c->end);
		return -1;
	}
	if (c->start != start || c->end != end || c->blockable != 1 ||
	    c->checked != known || c->mapped != known) {
		snprintf(why, whylen,
			 "MR %llu: hook for [%#llx, %#llx) blockable %llu, "
			 "%llu of %llu known pages mapped; want [%#llx, %#llx) "
			 "blockable 1, %llu of %llu",
			 (unsigned long long)h, (unsigned long long)c->start,
			 (unsigned long long)c->end,
			 (unsigned long long)c->blockable,
			 (unsigned long long)c->mapped,
			 (unsigned long long)c->checked,
			 (unsigned long long)start, (unsigned long long)end,
			 (unsigned long long)known, (unsigned long long)known);
		return -1;
	}
	return 0;
}

/* No hook call of @h since the last look. */
#define HOOK_NONE(fd, h, when)						\
	do {								\
		uint64_t __calls = ~0ULL;				\
		CHECK_ERR(hook_log(fd, h, NULL, &__calls, NULL), 0);	\
		CHECK(__calls == 0, "MR %llu: %llu hook calls %s",	\
		      (unsigned long long)(h),				\
		      (unsigned long long)__calls, when);		\
	} while (0)

#define HOOK_ONE(fd, h, start, end, known)				\
	do {								\
		if (hook_one_call(fd, h, start, end, known, reason,	\
				  512)) {				\
			ret = T_FAIL;					\
			goto out;					\
		}							\
	} while (0)

/* @len bytes of 4 KiB pages (THP off), filled from @seed; NULL on failure. */
static uint8_t *small_pages(size_t len, int seed)
{
	uint8_t *buf = map_aligned(len, HUGE_2M);

	if (!buf || madvise(buf, len, MADV_NOHUGEPAGE))
		return NULL;
	fill_pattern(buf, len, seed);
	return buf;
}

/* ---- test cases ---- */

static int t_edu_selftest(void)
{
	struct ib_hmm_test_dma_selftest st = { 0 };
	struct ib_hmm_test_dma_info info;
	int fd, ret = T_PASS;

	fd = dev_open();
	CHECK(fd >= 0, "open: %s", strerror(errno));
	CHECK_ERR(dma_info(fd, &info), 0);
	if (!info.present)
		SKIP("no edu device (boot with tests/vm/run --viommu)");
	CHECK(info.translated, "edu is not behind a translating IOMMU");
	CHECK(!xioctl(fd, IB_HMM_TEST_IOC_DMA_SELFTEST, &st),
	      "DMA selftest failed at step %llu: %s", st.step,
	      strerror(errno));
	if (verbose)
		printf("# iova_mode %llu\n", info.iova_mode);
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

/* The device reads what the CPU wrote and the CPU sees what it wrote. */
static int t_read_write(void)
{
	size_t np = 4, len = np * PAGE;
	struct ib_hmm_test_dma_info info;
	uint64_t h, hc, dma[4], found;
	uint8_t *buf = NULL, *got = NULL, *src = NULL;
	long long mirrors0, mapped0;
	int fd, ret = T_PASS;
	size_t i;
	long d;

	fd = dev_open();
	CHECK(fd >= 0, "open: %s", strerror(errno));
	/* Also without an IOMMU (page mode, direct mapping). */
	CHECK_ERR(dma_info(fd, &info), 0);
	if (!info.present)
		SKIP("no edu device (tests/vm/run --viommu)");
	buf = map_aligned(len, HUGE_2M);
	got = malloc(len);
	src = malloc(len);
	CHECK(buf && got && src, "allocation failed");
	fill_pattern(buf, len, 1);
	mirrors0 = hmm_debugfs_stat("mirrors");
	mapped0 = hmm_debugfs_stat("dma_mapped_pages");
	CHECK(mapped0 == 0, "dma_mapped_pages %lld before any DMA MR", mapped0);
	/* One owner, the same range: one mirror without and one with DMA. */
	CHECK_ERR(mr_create(fd, false, U(buf), len, &hc), 0);
	CHECK_ERR(mr_create(fd, true, U(buf), len, &h), 0);
	CHECK(hmm_debugfs_stat("mirrors") == mirrors0 + 2,
	      "a DMA MR shares the mirror without a device");

	CHECK_ERR(dma_lookup(fd, h, U(buf), np, dma, &found), 0);
	CHECK(found == 0, "%llu pages present before any fault",
	      (unsigned long long)found);
	CHECK_ERR(mr_dma(fd, h, U(buf), len, got, 0), 0);
	d = first_diff(got, buf, len);
	CHECK(d < 0, "device read %#x at %ld, CPU has %#x", got[d], d, buf[d]);
	CHECK_ERR(dma_lookup(fd, h, U(buf), np, dma, &found), 0);
	CHECK(found == np, "%llu of %zu pages present after the DMA read",
	      (unsigned long long)found, np);
	CHECK(hmm_debugfs_stat("dma_mapped_pages") - mapped0 >= (long long)np,
	      "dma_mapped_pages did not count the pages");
	for (i = 0; i < np; i++)
		CHECK(dma[i] != IB_HMM_TEST_DMA_NONE && !(dma[i] & (PAGE - 1)),
		      "page %zu: DMA address %#llx", i,
		      (unsigned long long)dma[i]);
	/* IOVA mode: one range per 2 MiB, pages at their offset. */
	for (i = 1; info.iova_mode && i < np; i++)
		CHECK(dma[i] == dma[0] + i * PAGE,
		      "IOVA mode: page %zu at %#llx, base %#llx", i,
		      (unsigned long long)dma[i], (unsigned long long)dma[0]);

	/* The device writes; the CPU sees it. */
	fill_pattern(src, len, 2);
	CHECK_ERR(mr_dma(fd, h, U(buf) + PAGE, 2 * PAGE, src,
			 IB_HMM_TEST_DMA_WRITE), 0);
	d = first_diff(buf + PAGE, src, 2 * PAGE);
	CHECK(d < 0, "CPU sees %#x at %ld after the device wrote %#x",
	      buf[PAGE + d], d, src[d]);
	/* The CPU path of the same mirror writes; the device sees it. */
	fill_pattern(src, PAGE, 3);
	CHECK_ERR(mr_write(fd, h, U(buf) + 3 * PAGE, PAGE, src), 0);
	CHECK_ERR(mr_dma(fd, h, U(buf) + 3 * PAGE, PAGE, got, 0), 0);
	CHECK(!memcmp(got, src, PAGE), "device missed a write of the CPU path");

	CHECK_ERR(mr_destroy(fd, h), 0);
	CHECK(hmm_debugfs_stat("dma_mapped_pages") == 0,
	      "dma_mapped_pages %lld after the DMA MR was destroyed",
	      hmm_debugfs_stat("dma_mapped_pages"));
	CHECK(hmm_debugfs_stat("dma_iova_ranges") == 0,
	      "dma_iova_ranges %lld after the DMA MR was destroyed",
	      hmm_debugfs_stat("dma_iova_ranges"));
	if (info.translated && check_stale(fd, dma[0], buf, reason, 512)) {
		ret = T_FAIL;
		goto out;
	}
	if (verbose)
		printf("# read_write: %s, %s mode\n",
		       info.translated ? "behind an IOMMU" : "direct mapping",
		       info.iova_mode ? "IOVA" : "page");
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

enum inval_kind { INV_MUNMAP, INV_DONTNEED, INV_MPROTECT };

/*
 * After an invalidation of page 1 of 4 the device no longer reaches it
 * through its old IOVA, the other pages stay mapped, and a refault maps the
 * page again (IOVA mode: at the same address, its granule's range is kept).
 */
static int inval_case(enum inval_kind kind)
{
	size_t np = 4, len = np * PAGE;
	struct ib_hmm_test_dma_info info;
	uint64_t h, dma[4], dma2[4], found;
	uint8_t *buf = NULL, *got = NULL, *old = NULL, *src = NULL;
	int fd, ret = T_PASS;

	fd = dev_open();
	CHECK(fd >= 0, "open: %s", strerror(errno));
	NEED_EDU(fd, info);
	buf = map_aligned(len, HUGE_2M);
	got = malloc(len);
	old = malloc(PAGE);
	src = malloc(PAGE);
	CHECK(buf && got && old && src, "allocation failed");
	fill_pattern(buf, len, 4);
	memcpy(old, buf + PAGE, PAGE);
	CHECK_ERR(mr_create(fd, true, U(buf), len, &h), 0);
	CHECK_ERR(mr_prefetch(fd, h, U(buf), len, IB_HMM_TEST_PREFETCH_WRITE),
		  0);
	CHECK_ERR(dma_lookup(fd, h, U(buf), np, dma, &found), 0);
	CHECK(found == np, "%llu pages present", (unsigned long long)found);

	switch (kind) {
	case INV_MUNMAP:
		CHECK(!munmap(buf + PAGE, PAGE), "munmap");
		break;
	case INV_DONTNEED:
		CHECK(!madvise(buf + PAGE, PAGE, MADV_DONTNEED), "madvise");
		break;
	case INV_MPROTECT:
		CHECK(!mprotect(buf + PAGE, PAGE, PROT_READ), "mprotect");
		break;
	}
	CHECK_ERR(dma_lookup(fd, h, U(buf), np, dma2, &found), 0);
	CHECK(found == np - 1 && dma2[1] == IB_HMM_TEST_DMA_NONE,
	      "after the invalidation %llu pages present, page 1 at %#llx",
	      (unsigned long long)found, (unsigned long long)dma2[1]);
	CHECK(dma2[0] == dma[0] && dma2[2] == dma[2],
	      "pages beside the invalidated one moved");
	if (check_stale(fd, dma[1], old, reason, 512)) {
		ret = T_FAIL;
		goto out;
	}
	/* A device write to the old IOVA must not reach the page either. */
	if (kind == INV_MPROTECT) {
		fill_pattern(src, PAGE, 9);
		CHECK_ERR(dma_raw(fd, dma[1], PAGE, src, IB_HMM_TEST_DMA_WRITE,
				  0, NULL), 0);
		CHECK(!memcmp(buf + PAGE, old, PAGE),
		      "a write to the old IOVA reached the page");
	}
	CHECK_ERR(mr_dma(fd, h, U(buf) + PAGE, PAGE, got,
			 IB_HMM_TEST_DMA_NO_FAULT), EFAULT);

	switch (kind) {
	case INV_MUNMAP:
		/* Gone from the process: the device gets an error. */
		CHECK_ERR(mr_dma(fd, h, U(buf) + PAGE, PAGE, got, 0), EFAULT);
		goto destroy;
	case INV_DONTNEED:
		/* Refault: a new zero page, mapped again. */
		CHECK_ERR(mr_dma(fd, h, U(buf), 2 * PAGE, got, 0), 0);
		CHECK(!memcmp(got, buf, 2 * PAGE),
		      "device read after refault differs");
		break;
	case INV_MPROTECT:
		/* Read-only now: readable, not writable, by the device too. */
		CHECK_ERR(mr_dma(fd, h, U(buf) + PAGE, PAGE, got, 0), 0);
		CHECK(!memcmp(got, old, PAGE), "device read after mprotect");
		CHECK_ERR(mr_dma(fd, h, U(buf) + PAGE, PAGE, src,
				 IB_HMM_TEST_DMA_WRITE), EFAULT);
		CHECK_ERR(dma_lookup(fd, h, U(buf), np, dma2, &found), 0);
		CHECK(found == np, "%llu pages present after the refault",
		      (unsigned long long)found);
		/* The IOMMU refuses writes through a read-only entry. */
		CHECK_ERR(dma_raw(fd, dma2[1], PAGE, src, IB_HMM_TEST_DMA_WRITE,
				  0, NULL), 0);
		CHECK(!memcmp(buf + PAGE, old, PAGE),
		      "the device wrote through a read-only entry");
		break;
	}
	CHECK_ERR(dma_lookup(fd, h, U(buf), np, dma2, &found), 0);
	CHECK(found == np, "%llu pages present after the refault",
	      (unsigned long long)found);
	if (info.iova_mode)
		CHECK(dma2[1] == dma[1],
		      "IOVA mode: page 1 came back at %#llx, was %#llx",
		      (unsigned long long)dma2[1], (unsigned long long)dma[1]);
destroy:
	ret = destroy_unmapped(fd, h);
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

static int t_munmap(void)
{
	return inval_case(INV_MUNMAP);
}

static int t_dontneed(void)
{
	return inval_case(INV_DONTNEED);
}

static int t_mprotect(void)
{
	return inval_case(INV_MPROTECT);
}

/* A THP is one 2 MiB mapping, contiguous for the device. */
static int t_thp(void)
{
	size_t np = HUGE_2M / PAGE;
	struct ib_hmm_test_dma_info info;
	uint64_t h, *dma = NULL, found, old0;
	uint8_t *g = NULL, *got = NULL, *old = NULL;
	long long mapped0;
	int fd, ret = T_PASS;
	size_t i;

	fd = dev_open();
	CHECK(fd >= 0, "open: %s", strerror(errno));
	NEED_EDU(fd, info);
	g = map_aligned(HUGE_2M, HUGE_2M);
	dma = malloc(np * sizeof(*dma));
	got = malloc(2 * PAGE);
	old = malloc(PAGE);
	CHECK(g && dma && got && old, "allocation failed");
	if (madvise(g, HUGE_2M, MADV_HUGEPAGE))
		SKIP("MADV_HUGEPAGE: %s", strerror(errno));
	fill_pattern(g, HUGE_2M, 5);
	if (!smaps_has_thp(g))
		SKIP("the kernel did not back the buffer with a THP");
	mapped0 = hmm_debugfs_stat("dma_mapped_pages");
	CHECK_ERR(mr_create(fd, true, U(g), HUGE_2M, &h), 0);
	CHECK_ERR(mr_prefetch(fd, h, U(g), HUGE_2M, IB_HMM_TEST_PREFETCH_WRITE),
		  0);
	CHECK(hmm_debugfs_stat("dma_mapped_pages") - mapped0 == (long long)np,
	      "a huge entry mapped %lld pages",
	      hmm_debugfs_stat("dma_mapped_pages") - mapped0);
	CHECK_ERR(dma_lookup(fd, h, U(g), np, dma, &found), 0);
	CHECK(found == np, "%llu pages present", (unsigned long long)found);
	for (i = 1; i < np; i++)
		CHECK(dma[i] == dma[0] + i * PAGE,
		      "huge entry: page %zu at %#llx, base %#llx", i,
		      (unsigned long long)dma[i], (unsigned long long)dma[0]);
	/* First and last page through the device. */
	CHECK_ERR(mr_dma(fd, h, U(g), PAGE, got, IB_HMM_TEST_DMA_NO_FAULT), 0);
	CHECK_ERR(mr_dma(fd, h, U(g) + HUGE_2M - PAGE, PAGE, got + PAGE,
			 IB_HMM_TEST_DMA_NO_FAULT), 0);
	CHECK(!memcmp(got, g, PAGE) &&
	      !memcmp(got + PAGE, g + HUGE_2M - PAGE, PAGE),
	      "device read of the huge page differs");

	/* Splitting it drops the whole mapping. */
	old0 = dma[0];
	memcpy(old, g, PAGE);
	CHECK(!munmap(g + HUGE_2M - PAGE, PAGE), "munmap");
	CHECK_ERR(dma_lookup(fd, h, U(g), np, dma, &found), 0);
	CHECK(found == 0, "%llu pages present after the split",
	      (unsigned long long)found);
	CHECK(hmm_debugfs_stat("dma_mapped_pages") == mapped0,
	      "%lld pages mapped after the split",
	      hmm_debugfs_stat("dma_mapped_pages") - mapped0);
	if (check_stale(fd, old0, old, reason, 512)) {
		ret = T_FAIL;
		goto out;
	}
	CHECK_ERR(mr_dma(fd, h, U(g) + PAGE, PAGE, got, 0), 0);
	CHECK(!memcmp(got, g + PAGE, PAGE), "device read after the split");
	ret = destroy_unmapped(fd, h);
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

/*
 * A mirror that lives through many invalidations holds no more mappings
 * or IOVA ranges than it has present pages, and none after destroy.
 */
static int t_no_leak(void)
{
	size_t np = 64, len = np * PAGE;
	struct ib_hmm_test_dma_info info;
	struct ib_hmm_test_counters c;
	uint64_t h, dma[64], found, l1;
	uint8_t *buf = NULL, *got = NULL;
	long long mapped, ranges;
	int fd, ret = T_PASS, i;

	fd = dev_open();
	CHECK(fd >= 0, "open: %s", strerror(errno));
	NEED_EDU(fd, info);
	/*
	 * Across two granules, never across a 1 GiB boundary (that would add
	 * a level 2 root and a second level 1 node to the table's bytes).
	 */
	buf = map_aligned(2 * HUGE_2M, 2 * HUGE_2M);
	got = malloc(PAGE);
	CHECK(buf && got, "allocation failed");
	CHECK(!madvise(buf, 2 * HUGE_2M, MADV_NOHUGEPAGE), "MADV_NOHUGEPAGE");
	buf += HUGE_2M - len / 2;
	CHECK_ERR(mr_create(fd, true, U(buf), len, &h), 0);
	for (i = 0; i < 200; i++) {
		memset(buf, i, len);
		CHECK_ERR(mr_prefetch(fd, h, U(buf), len,
				      i & 1 ? IB_HMM_TEST_PREFETCH_WRITE : 0),
			  0);
		mapped = hmm_debugfs_stat("dma_mapped_pages");
		CHECK(mapped == (long long)np, "round %d: %lld pages mapped",
		      i, mapped);
		ranges = hmm_debugfs_stat("dma_iova_ranges");
		CHECK(ranges == (info.iova_mode ? 2 : 0),
		      "round %d: %lld IOVA ranges", i, ranges);
		/*
		 * The DMA state is in the table's bytes: two leaves (8 KiB
		 * each in page mode, with an address per page; 4 KiB in IOVA
		 * mode) and one level 1 node with the state per granule
		 * (16 KiB with struct dma_iova_state, 8 KiB without).
		 */
		CHECK_ERR(mr_counters(fd, h, &c), 0);
		l1 = c.table_bytes - 2 * (info.iova_mode ? PAGE : 2 * PAGE);
		CHECK(l1 == 4 * PAGE || (!info.iova_mode && l1 == 2 * PAGE),
		      "round %d: %llu table bytes", i,
		      (unsigned long long)c.table_bytes);
		if (verbose && !i)
			printf("# 64 pages in 2 granules: %llu table bytes\n",
			       (unsigned long long)c.table_bytes);
		/* Half of it, or all of it. */
		if (i % 3)
			CHECK(!madvise(buf, len, MADV_DONTNEED), "madvise");
		else
			CHECK(!madvise(buf + len / 2, len / 2, MADV_DONTNEED),
			      "madvise");
	}
	CHECK_ERR(dma_lookup(fd, h, U(buf), np, dma, &found), 0);
	memset(buf, 0x3c, len);
	CHECK_ERR(mr_dma(fd, h, U(buf) + len / 2 - PAGE, PAGE, got, 0), 0);
	CHECK(got[0] == 0x3c && got[PAGE - 1] == 0x3c,
	      "device read after 200 invalidations");
	ret = destroy_unmapped(fd, h);
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

/* Closing the file with live DMA MRs unmaps everything. */
static int t_close_unmaps(void)
{
	struct ib_hmm_test_dma_info info;
	uint64_t h, dma, found;
	uint8_t *buf = NULL;
	int fd, fd2 = -1, ret = T_PASS;

	fd = dev_open();
	CHECK(fd >= 0, "open: %s", strerror(errno));
	NEED_EDU(fd, info);
	fd2 = dev_open();
	CHECK(fd2 >= 0, "open: %s", strerror(errno));
	buf = map_anon(8 * PAGE);
	CHECK(buf, "mmap");
	fill_pattern(buf, 8 * PAGE, 6);
	CHECK_ERR(mr_create(fd2, true, U(buf), 8 * PAGE, &h), 0);
	CHECK_ERR(mr_prefetch(fd2, h, U(buf), 8 * PAGE, 0), 0);
	CHECK_ERR(dma_lookup(fd2, h, U(buf) + 3 * PAGE, 1, &dma, &found), 0);
	CHECK(found == 1, "page not present");
	close(fd2);
	fd2 = -1;
	CHECK(hmm_debugfs_stat("dma_mapped_pages") == 0 &&
	      hmm_debugfs_stat("dma_iova_ranges") == 0,
	      "mappings left after close");
	if (check_stale(fd, dma, buf + 3 * PAGE, reason, 512)) {
		ret = T_FAIL;
		goto out;
	}
out:
	if (fd2 >= 0)
		close(fd2);
	if (fd >= 0)
		close(fd);
	return ret;
}

/* Invalidations of the pages the device is reading, from another thread. */
struct churn {
	uint8_t *buf;
	size_t len;
	volatile int stop;
	unsigned long rounds;
};

static void *churn_fn(void *p)
{
	struct churn *c = p;

	while (!c->stop) {
		madvise(c->buf, c->len, MADV_DONTNEED);
		memset(c->buf, 0x77, c->len);
		c->rounds++;
	}
	return NULL;
}

static int t_dma_during_invalidations(void)
{
	struct churn c = { .len = 2 * PAGE };
	struct ib_hmm_test_dma_info info;
	int fd, ret = T_PASS, i, ok = 0, e;
	pthread_t th;
	bool started = false;
	uint64_t h;
	uint8_t *got = NULL;

	fd = dev_open();
	CHECK(fd >= 0, "open: %s", strerror(errno));
	NEED_EDU(fd, info);
	c.buf = map_anon(c.len);
	got = malloc(c.len);
	CHECK(c.buf && got, "allocation failed");
	memset(c.buf, 0x77, c.len);
	CHECK_ERR(mr_create(fd, true, U(c.buf), c.len, &h), 0);
	CHECK(!pthread_create(&th, NULL, churn_fn, &c), "pthread_create");
	started = true;
	for (i = 0; i < 8; i++) {
		e = mr_dma(fd, h, U(c.buf), c.len, got, i & 1 ?
			   IB_HMM_TEST_DMA_WRITE : 0);
		/* A page may be invalidated between the fault and the walk. */
		CHECK(!e || e == EFAULT, "DMA %d during invalidations: %s", i,
		      strerror(e));
		ok += !e;
	}
	c.stop = 1;
	pthread_join(th, NULL);
	started = false;
	CHECK(c.rounds > 0, "no invalidation ran");
	if (verbose)
		printf("# %d of 8 DMAs completed, %lu invalidation rounds\n", ok,
		       c.rounds);
	ret = destroy_unmapped(fd, h);
out:
	if (started) {
		c.stop = 1;
		pthread_join(th, NULL);
	}
	if (fd >= 0)
		close(fd);
	return ret;
}

/*
 * A driver's invalidate hook runs before the pages go: for a munmap of
 * pages 2-5 of 8 it is called once, for exactly that range, blockable, and
 * the addresses it would drop still translate; after munmap() they do not.
 */
static int t_hook_before_unmap(void)
{
	size_t np = 8, len = np * PAGE, i;
	struct ib_hmm_test_dma_info info;
	uint64_t h, dma[8], dma2[8], found;
	uint8_t *buf = NULL, *old = NULL;
	int fd, ret = T_PASS;

	fd = dev_open();
	CHECK(fd >= 0, "open: %s", strerror(errno));
	NEED_EDU(fd, info);
	buf = small_pages(len, 11);
	old = malloc(len);
	CHECK(buf && old, "allocation failed");
	memcpy(old, buf, len);
	CHECK_ERR(mr_create(fd, true, U(buf), len, &h), 0);
	CHECK_ERR(mr_set_ops(fd, h), 0);
	CHECK_ERR(mr_prefetch(fd, h, U(buf), len, IB_HMM_TEST_PREFETCH_WRITE),
		  0);
	CHECK_ERR(dma_lookup(fd, h, U(buf), np, dma, &found), 0);
	CHECK(found == np, "%llu pages present", (unsigned long long)found);
	HOOK_NONE(fd, h, "after faulting absent pages in");

	CHECK(!munmap(buf + 2 * PAGE, 4 * PAGE), "munmap");
	HOOK_ONE(fd, h, U(buf) + 2 * PAGE, U(buf) + 6 * PAGE, 4);
	for (i = 2; i < 6; i++)
		if (check_stale(fd, dma[i], old + i * PAGE, reason, 512)) {
			ret = T_FAIL;
			goto out;
		}
	CHECK_ERR(dma_lookup(fd, h, U(buf), np, dma2, &found), 0);
	CHECK(found == 4, "%llu pages present after the munmap",
	      (unsigned long long)found);
	for (i = 0; i < np; i++)
		CHECK(i >= 2 && i < 6 ? dma2[i] == IB_HMM_TEST_DMA_NONE :
		      dma2[i] == dma[i], "page %zu at %#llx, was %#llx", i,
		      (unsigned long long)dma2[i], (unsigned long long)dma[i]);
	HOOK_NONE(fd, h, "from lookups and stale checks");
	ret = destroy_unmapped(fd, h);
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

/*
 * One mirror, four MRs over pages 0-23: A [0, 8) and B [16, 24) and C
 * [4, 12) with the hook, D [0, 8) without. MADV_DONTNEED of [2, 6) calls
 * A's hook for [2, 6) and C's for [4, 6), not B's; D's pages of it are
 * unmapped all the same.
 */
static int t_hook_only_overlapping(void)
{
	size_t np = 24, len = np * PAGE, i;
	struct ib_hmm_test_dma_info info;
	uint64_t ha, hb, hc, hd, dma[8], dmac[8], dmad[8], found, f0, f1;
	uint8_t *buf = NULL, *old = NULL;
	int fd, ret = T_PASS;

	fd = dev_open();
	CHECK(fd >= 0, "open: %s", strerror(errno));
	NEED_EDU(fd, info);
	buf = small_pages(len, 12);
	old = malloc(len);
	CHECK(buf && old, "allocation failed");
	memcpy(old, buf, len);
	CHECK_ERR(mr_create(fd, true, U(buf), 8 * PAGE, &ha), 0);
	CHECK_ERR(mr_create(fd, true, U(buf) + 16 * PAGE, 8 * PAGE, &hb), 0);
	CHECK_ERR(mr_create(fd, true, U(buf) + 4 * PAGE, 8 * PAGE, &hc), 0);
	CHECK_ERR(mr_create(fd, true, U(buf), 8 * PAGE, &hd), 0);
	CHECK_ERR(mr_set_ops(fd, ha), 0);
	CHECK_ERR(mr_set_ops(fd, hb), 0);
	CHECK_ERR(mr_set_ops(fd, hc), 0);
	CHECK_ERR(mr_prefetch(fd, ha, U(buf), 8 * PAGE,
			      IB_HMM_TEST_PREFETCH_WRITE), 0);
	CHECK_ERR(mr_prefetch(fd, hb, U(buf) + 16 * PAGE, 8 * PAGE,
			      IB_HMM_TEST_PREFETCH_WRITE), 0);
	/* Pages 4-7 are there already, for write: no remap, no hook. */
	CHECK_ERR(mr_prefetch(fd, hc, U(buf) + 4 * PAGE, 8 * PAGE,
			      IB_HMM_TEST_PREFETCH_WRITE), 0);
	CHECK_ERR(dma_lookup(fd, ha, U(buf), 8, dma, &found), 0);
	CHECK(found == 8, "A: %llu pages present", (unsigned long long)found);
	CHECK_ERR(dma_lookup(fd, hc, U(buf) + 4 * PAGE, 8, dmac, &found), 0);
	CHECK(found == 8, "C: %llu pages present", (unsigned long long)found);
	CHECK(!memcmp(dmac, dma + 4, 4 * sizeof(*dma)),
	      "A and C see pages 4-7 at different addresses");
	CHECK_ERR(dma_lookup(fd, hb, U(buf) + 16 * PAGE, 8, dmad, &found), 0);
	CHECK(found == 8, "B: %llu pages present", (unsigned long long)found);
	HOOK_NONE(fd, ha, "after faulting absent pages in");
	HOOK_NONE(fd, hb, "after faulting absent pages in");
	CHECK_ERR(hook_log(fd, hc, NULL, &found, &f0), 0);
	CHECK(found == 0, "C: %llu hook calls after faulting in",
	      (unsigned long long)found);

	CHECK(!madvise(buf + 2 * PAGE, 4 * PAGE, MADV_DONTNEED), "madvise");
	HOOK_ONE(fd, ha, U(buf) + 2 * PAGE, U(buf) + 6 * PAGE, 4);
	HOOK_ONE(fd, hc, U(buf) + 4 * PAGE, U(buf) + 6 * PAGE, 2);
	CHECK_ERR(hook_log(fd, hb, NULL, &found, &f1), 0);
	CHECK(found == 0 && f1 == f0 + 2,
	      "B: %llu hook calls; %llu calls of all MRs, want 2",
	      (unsigned long long)found, (unsigned long long)(f1 - f0));

	/* D, without ops, sees the same mirror: the pages are gone. */
	CHECK_ERR(dma_lookup(fd, hd, U(buf), 8, dmad, &found), 0);
	CHECK(found == 4, "D: %llu pages present", (unsigned long long)found);
	for (i = 0; i < 8; i++)
		CHECK(i >= 2 && i < 6 ? dmad[i] == IB_HMM_TEST_DMA_NONE :
		      dmad[i] == dma[i], "D: page %zu at %#llx, was %#llx", i,
		      (unsigned long long)dmad[i], (unsigned long long)dma[i]);
	for (i = 2; i < 6; i++)
		if (check_stale(fd, dma[i], old + i * PAGE, reason, 512)) {
			ret = T_FAIL;
			goto out;
		}
	CHECK_ERR(mr_destroy(fd, ha), 0);
	CHECK_ERR(mr_destroy(fd, hb), 0);
	CHECK_ERR(mr_destroy(fd, hc), 0);
	ret = destroy_unmapped(fd, hd);
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

/*
 * A fault for write over a page faulted for read remaps it (another DMA
 * direction): the hook is called for that page first, while the old
 * address still translates. The new address takes device writes; faulting
 * again (for write or read) calls no hook.
 */
static int t_hook_on_write_upgrade(void)
{
	size_t np = 4, len = np * PAGE;
	struct ib_hmm_test_dma_info info;
	uint64_t h, a, b, found, phys = 0;
	uint8_t *buf = NULL, *old = NULL, *src = NULL, *got = NULL;
	uint64_t pg;
	int fd, ret = T_PASS;
	long d;

	fd = dev_open();
	CHECK(fd >= 0, "open: %s", strerror(errno));
	NEED_EDU(fd, info);
	buf = small_pages(len, 13);
	old = malloc(PAGE);
	src = malloc(PAGE);
	got = malloc(PAGE);
	CHECK(buf && old && src && got, "allocation failed");
	pg = U(buf) + PAGE;
	CHECK_ERR(mr_create(fd, true, U(buf), len, &h), 0);
	CHECK_ERR(mr_set_ops(fd, h), 0);
	CHECK_ERR(mr_prefetch(fd, h, pg, PAGE, 0), 0);
	CHECK_ERR(dma_lookup(fd, h, pg, 1, &a, &found), 0);
	CHECK(found == 1, "page not present after a read fault");
	HOOK_NONE(fd, h, "after the read fault");

	CHECK_ERR(mr_prefetch(fd, h, pg, PAGE, IB_HMM_TEST_PREFETCH_WRITE), 0);
	HOOK_ONE(fd, h, pg, pg + PAGE, 1);
	CHECK_ERR(dma_lookup(fd, h, pg, 1, &b, &found), 0);
	CHECK(found == 1 && b != IB_HMM_TEST_DMA_NONE,
	      "page not present after the write fault");
	/* Page mode may map it elsewhere: then the old address is dead. */
	memcpy(old, buf + PAGE, PAGE);
	if (b != a && check_stale(fd, a, old, reason, 512)) {
		ret = T_FAIL;
		goto out;
	}
	/* The device writes at the new address; the CPU sees it. */
	fill_pattern(src, PAGE, 14);
	CHECK_ERR(dma_raw(fd, b, PAGE, src, IB_HMM_TEST_DMA_WRITE, 0, &phys),
		  0);
	CHECK(phys, "the new address %#llx does not translate",
	      (unsigned long long)b);
	d = first_diff(buf + PAGE, src, PAGE);
	CHECK(d < 0, "CPU sees %#x at %ld after the device wrote %#x",
	      buf[PAGE + d], d, src[d]);
	fill_pattern(src, PAGE, 15);
	CHECK_ERR(mr_dma(fd, h, pg, PAGE, src,
			 IB_HMM_TEST_DMA_WRITE | IB_HMM_TEST_DMA_NO_FAULT), 0);
	CHECK(!memcmp(buf + PAGE, src, PAGE),
	      "CPU missed a device write through the mirror");
	CHECK_ERR(mr_dma(fd, h, pg, PAGE, got, IB_HMM_TEST_DMA_NO_FAULT), 0);
	CHECK(!memcmp(got, buf + PAGE, PAGE), "device read differs");
	HOOK_NONE(fd, h, "from device accesses");

	/* WRITE is there already: neither fault remaps. */
	CHECK_ERR(mr_prefetch(fd, h, pg, PAGE, IB_HMM_TEST_PREFETCH_WRITE), 0);
	CHECK_ERR(mr_prefetch(fd, h, pg, PAGE, 0), 0);
	HOOK_NONE(fd, h, "after a second write fault and a read fault");
	CHECK_ERR(dma_lookup(fd, h, pg, 1, &a, &found), 0);
	CHECK(a == b, "the page moved from %#llx to %#llx without a remap",
	      (unsigned long long)b, (unsigned long long)a);
	ret = destroy_unmapped(fd, h);
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

/*
 * A write fault over the whole buffer of 8 pages, 4 of which (2-5) were
 * read-faulted: one hook call, for exactly those 4 pages (not the absent
 * ones around them), blockable, before any of their old mappings goes;
 * the install calls no more per page.
 */
static int t_hook_on_write_upgrade_range(void)
{
	size_t np = 8, len = np * PAGE;
	struct ib_hmm_test_dma_info info;
	uint64_t h, dma[4], found, lo, hi;
	uint8_t *buf = NULL;
	int fd, ret = T_PASS;

	fd = dev_open();
	CHECK(fd >= 0, "open: %s", strerror(errno));
	NEED_EDU(fd, info);
	buf = small_pages(len, 17);
	CHECK(buf, "allocation failed");
	lo = U(buf) + 2 * PAGE;
	hi = lo + 4 * PAGE;
	CHECK_ERR(mr_create(fd, true, U(buf), len, &h), 0);
	CHECK_ERR(mr_set_ops(fd, h), 0);
	CHECK_ERR(mr_prefetch(fd, h, lo, 4 * PAGE, 0), 0);
	CHECK_ERR(dma_lookup(fd, h, lo, 4, dma, &found), 0);
	CHECK(found == 4, "%llu pages present", (unsigned long long)found);
	HOOK_NONE(fd, h, "after the read fault");
	CHECK_ERR(mr_prefetch(fd, h, U(buf), len, IB_HMM_TEST_PREFETCH_WRITE),
		  0);
	HOOK_ONE(fd, h, lo, hi, 4);
	ret = destroy_unmapped(fd, h);
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

/*
 * A destroyed MR's hook is not called: its pages, which the mirror keeps
 * while another MR (B) holds it, are unmapped by the next invalidation
 * without it. B's hook still works; nothing is left mapped at the end.
 */
static int t_hook_destroy(void)
{
	size_t np = 16, len = np * PAGE;
	struct ib_hmm_test_dma_info info;
	uint64_t ha, hb, dma[8], found, calls, f0, f1;
	uint8_t *buf = NULL, *old = NULL;
	long long mapped;
	int fd, ret = T_PASS;

	fd = dev_open();
	CHECK(fd >= 0, "open: %s", strerror(errno));
	NEED_EDU(fd, info);
	buf = small_pages(len, 16);
	old = malloc(len);
	CHECK(buf && old, "allocation failed");
	memcpy(old, buf, len);
	CHECK(hmm_debugfs_stat("dma_mapped_pages") == 0,
	      "%lld pages mapped before the test",
	      hmm_debugfs_stat("dma_mapped_pages"));
	CHECK_ERR(mr_create(fd, true, U(buf), 8 * PAGE, &ha), 0);
	CHECK_ERR(mr_create(fd, true, U(buf) + 8 * PAGE, 8 * PAGE, &hb), 0);
	CHECK_ERR(mr_set_ops(fd, ha), 0);
	CHECK_ERR(mr_set_ops(fd, hb), 0);
	CHECK_ERR(mr_prefetch(fd, ha, U(buf), 8 * PAGE,
			      IB_HMM_TEST_PREFETCH_WRITE), 0);
	CHECK_ERR(dma_lookup(fd, ha, U(buf), 8, dma, &found), 0);
	CHECK(found == 8, "%llu pages present", (unsigned long long)found);
	CHECK_ERR(mr_destroy(fd, ha), 0);
	mapped = hmm_debugfs_stat("dma_mapped_pages");
	CHECK(mapped == 8, "%lld pages mapped after A's destroy, want 8 (the "
	      "mirror keeps them)", mapped);
	CHECK_ERR(hook_log(fd, hb, NULL, &calls, &f0), 0);
	CHECK(calls == 0, "B: %llu hook calls", (unsigned long long)calls);

	CHECK(!munmap(buf, 8 * PAGE), "munmap");
	CHECK_ERR(hook_log(fd, hb, NULL, &calls, &f1), 0);
	CHECK(calls == 0 && f1 == f0,
	      "B: %llu hook calls; %llu calls of all MRs, want none",
	      (unsigned long long)calls, (unsigned long long)(f1 - f0));
	CHECK(hmm_debugfs_stat("dma_mapped_pages") == 0,
	      "%lld pages mapped after the munmap",
	      hmm_debugfs_stat("dma_mapped_pages"));
	if (check_stale(fd, dma[0], old, reason, 512) ||
	    check_stale(fd, dma[7], old + 7 * PAGE, reason, 512)) {
		ret = T_FAIL;
		goto out;
	}
	/* B's hook still runs (nothing of it looked up: none checked). */
	CHECK(!madvise(buf + 8 * PAGE, 8 * PAGE, MADV_DONTNEED), "madvise");
	HOOK_ONE(fd, hb, U(buf) + 8 * PAGE, U(buf) + 16 * PAGE, 0);
	ret = destroy_unmapped(fd, hb);
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

/*
 * MR_SET_OPS: EOPNOTSUPP without a DMA device, EBUSY the second time (the
 * first hook stays), ENOENT for no MR; HOOK_LOG: EINVAL without ops.
 */
static int t_set_ops_errors(void)
{
	struct ib_hmm_test_dma_info info;
	uint64_t h, hn, calls;
	uint8_t *buf = NULL;
	int fd, ret = T_PASS;

	fd = dev_open();
	CHECK(fd >= 0, "open: %s", strerror(errno));
	NEED_EDU(fd, info);
	buf = map_anon(4 * PAGE);
	CHECK(buf, "mmap");
	memset(buf, 1, 4 * PAGE);
	CHECK_ERR(mr_create(fd, false, U(buf), 4 * PAGE, &hn), 0);
	CHECK_ERR(mr_set_ops(fd, hn), EOPNOTSUPP);
	CHECK_ERR(hook_log(fd, hn, NULL, &calls, NULL), EINVAL);
	CHECK_ERR(mr_create(fd, true, U(buf), 4 * PAGE, &h), 0);
	CHECK_ERR(hook_log(fd, h, NULL, &calls, NULL), EINVAL);
	CHECK_ERR(mr_set_ops(fd, h), 0);
	CHECK_ERR(mr_set_ops(fd, h), EBUSY);
	CHECK_ERR(mr_set_ops(fd, h + hn + 100), ENOENT);
	CHECK_ERR(mr_prefetch(fd, h, U(buf), 4 * PAGE, 0), 0);
	CHECK(!madvise(buf, PAGE, MADV_DONTNEED), "madvise");
	HOOK_ONE(fd, h, U(buf), U(buf) + PAGE, 0);
	CHECK_ERR(mr_destroy(fd, hn), 0);
	ret = destroy_unmapped(fd, h);
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

static const struct tcase cases[] = {
	{ "edu_selftest", t_edu_selftest },
	{ "read_write", t_read_write },
	{ "munmap", t_munmap },
	{ "madv_dontneed_refault", t_dontneed },
	{ "mprotect_readonly", t_mprotect },
	{ "thp", t_thp },
	{ "no_leak_200_invalidations", t_no_leak },
	{ "close_unmaps", t_close_unmaps },
	{ "dma_during_invalidations", t_dma_during_invalidations },
	{ "hook_before_unmap", t_hook_before_unmap },
	{ "hook_only_overlapping", t_hook_only_overlapping },
	{ "hook_on_write_upgrade", t_hook_on_write_upgrade },
	{ "hook_on_write_upgrade_range", t_hook_on_write_upgrade_range },
	{ "hook_destroy", t_hook_destroy },
	{ "set_ops_errors", t_set_ops_errors },
};

int main(int argc, char **argv)
{
	return mock_main(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
