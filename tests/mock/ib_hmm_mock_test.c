// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * ib_hmm_mock_test: drives the ib_hmm mirror through the mock device
 * /dev/ib_hmm_test (module ib_hmm_test) and checks data bytes from the
 * CPU's side, counter deltas and error codes.
 *
 * usage: ib_hmm_mock_test [-v] [NAME...]   (default: every case)
 * Prints PASS/FAIL/SKIP per case and "N passed, N failed[, N skipped]".
 * Each case runs in its own child process so that a crash is one failure
 * and every MR is gone (file closed) when the case ends.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
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
#include <time.h>
#include <unistd.h>

#include <uapi/rdma/ib_hmm_test.h>

#include "mock_harness.h"

static int mr_create(int fd, uint64_t start, uint64_t len, uint64_t access,
		     uint64_t *h)
{
	struct ib_hmm_test_mr_create a = {
		.start = start, .length = len, .access = access,
	};
	int e = xioctl(fd, IB_HMM_TEST_IOC_MR_CREATE, &a);

	if (!e)
		*h = a.handle;
	return e;
}

static int mr_rw(int fd, unsigned long cmd, uint64_t h, uint64_t iova,
		 uint64_t len, void *buf, uint64_t flags)
{
	struct ib_hmm_test_rw a = {
		.handle = h, .iova = iova, .length = len,
		.addr = (uintptr_t)buf, .flags = flags,
	};

	return xioctl(fd, cmd, &a);
}

static int mr_read(int fd, uint64_t h, uint64_t iova, uint64_t len, void *buf)
{
	return mr_rw(fd, IB_HMM_TEST_IOC_READ, h, iova, len, buf, 0);
}

static int mr_write(int fd, uint64_t h, uint64_t iova, uint64_t len,
		    const void *buf)
{
	return mr_rw(fd, IB_HMM_TEST_IOC_WRITE, h, iova, len, (void *)buf, 0);
}

static int mr_atomic(int fd, uint64_t h, uint64_t iova, uint64_t op,
		     uint64_t a1, uint64_t a2, uint64_t *orig)
{
	struct ib_hmm_test_atomic a = {
		.handle = h, .iova = iova, .op = op,
		.compare_add = a1, .swap = a2,
	};
	int e = xioctl(fd, IB_HMM_TEST_IOC_ATOMIC, &a);

	if (!e && orig)
		*orig = a.orig;
	return e;
}

static int mr_snapshot(int fd, uint64_t h, uint64_t iova, uint64_t npages,
		       uint8_t *state)
{
	struct ib_hmm_test_snapshot a = {
		.handle = h, .iova = iova, .npages = npages,
		.addr = (uintptr_t)state,
	};

	return xioctl(fd, IB_HMM_TEST_IOC_SNAPSHOT, &a);
}

/* ---- helpers ---- */

static bool all_bytes(const uint8_t *p, size_t len, uint8_t v)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != v)
			return false;
	return true;
}

static unsigned int fault_around(void)
{
	FILE *f = fopen("/sys/module/ib_hmm/parameters/fault_around_pages", "r");
	unsigned int v = 16;

	if (f) {
		if (fscanf(f, "%u", &v) != 1)
			v = 16;
		fclose(f);
	}
	if (v < 1)
		v = 1;
	if (v > 512)
		v = 512;
	return v;
}

static unsigned int count_state(const uint8_t *st, size_t n, uint8_t mask,
				uint8_t want)
{
	unsigned int c = 0;
	size_t i;

	for (i = 0; i < n; i++)
		c += (st[i] & mask) == want;
	return c;
}

#define U(p) ((uint64_t)(uintptr_t)(p))

/* ---- test cases ---- */

static int t_write_cpu_sees(void)
{
	size_t len = 64 * PAGE, glen = 2 * HUGE_2M;
	uint8_t *buf = NULL, *g = NULL, *src = NULL;
	int fd = -1, ret = T_PASS;
	size_t off = 777, n = 3 * PAGE + 123;
	uint64_t h, h2;
	long d;

	fd = dev_open();
	CHECK(fd >= 0, "open: %s", strerror(errno));
	buf = map_anon(len);
	src = malloc(glen);
	CHECK(buf && src, "mmap failed");
	memset(buf + len / 2, 0x5a, len / 2);	/* half present, half not */
	CHECK_ERR(mr_create(fd, U(buf), len, ACC_ALL, &h), 0);

	/* Untouched pages, multi-page, unaligned start and end. */
	fill_pattern(src, n, 1);
	CHECK_ERR(mr_write(fd, h, U(buf) + off, n, src), 0);
	d = first_diff(buf + off, src, n);
	CHECK(d < 0, "CPU sees wrong byte at %ld of untouched write", d);
	CHECK(all_bytes(buf, off, 0) && all_bytes(buf + off + n, 8, 0),
	      "bytes around the write changed");

	/* Present pages: 1 byte at an odd offset, then a long run. */
	CHECK_ERR(mr_write(fd, h, U(buf) + len / 2 + 4095, 1, src), 0);
	CHECK(buf[len / 2 + 4095] == src[0] && buf[len / 2 + 4094] == 0x5a &&
	      buf[len / 2 + 4096] == 0x5a, "single-byte write wrong");
	fill_pattern(src, len / 2 - 3, 2);
	CHECK_ERR(mr_write(fd, h, U(buf) + len / 2 + 1, len / 2 - 3, src), 0);
	d = first_diff(buf + len / 2 + 1, src, len / 2 - 3);
	CHECK(d < 0, "CPU sees wrong byte at %ld of present write", d);
	CHECK(buf[len - 1] == 0x5a && buf[len - 2] == 0x5a,
	      "tail bytes changed");

	/* A write across a 2 MiB granule boundary. */
	g = map_aligned(glen, HUGE_2M);
	CHECK(g, "mmap failed");
	madvise(g, glen, MADV_NOHUGEPAGE);
	CHECK_ERR(mr_create(fd, U(g), glen, ACC_ALL, &h2), 0);
	fill_pattern(src, 12001, 3);
	CHECK_ERR(mr_write(fd, h2, U(g) + HUGE_2M - 5001, 12001, src), 0);
	d = first_diff(g + HUGE_2M - 5001, src, 12001);
	CHECK(d < 0, "granule-crossing write wrong at %ld", d);
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

static int t_cpu_write_read(void)
{
	size_t len = 48 * PAGE;
	uint8_t *buf = NULL, *dst = NULL;
	int fd = -1, ret = T_PASS;
	uint64_t h;
	long d;

	fd = dev_open();
	CHECK(fd >= 0, "open: %s", strerror(errno));
	buf = map_anon(len);
	dst = malloc(len);
	CHECK(buf && dst, "mmap failed");
	fill_pattern(buf, len, 4);
	CHECK_ERR(mr_create(fd, U(buf), len, ACC_ALL, &h), 0);
	memset(dst, 0xee, len);
	CHECK_ERR(mr_read(fd, h, U(buf) + 3, len - 7, dst), 0);
	d = first_diff(dst, buf + 3, len - 7);
	CHECK(d < 0, "READ wrong byte at %ld", d);
	CHECK(dst[len - 7] == 0xee, "READ wrote past its length");

	/* The CPU changes bytes of present pages; READ sees them. */
	buf[5 * PAGE + 17] ^= 0xff;
	buf[len - 5] ^= 0xff;
	CHECK_ERR(mr_read(fd, h, U(buf), len, dst), 0);
	CHECK(!memcmp(dst, buf, len), "READ missed a CPU store");

	/* Remote read works too with full access. */
	CHECK_ERR(mr_rw(fd, IB_HMM_TEST_IOC_READ, h, U(buf), 100, dst,
			IB_HMM_TEST_RW_REMOTE), 0);
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

static int t_untouched_read(void)
{
	size_t len = 64 * PAGE;
	struct ib_hmm_test_counters c0, c1;
	unsigned int fa = fault_around();
	uint8_t *buf = NULL, *dst = NULL;
	int fd = -1, ret = T_PASS;
	uint64_t h, want;

	fd = dev_open();
	CHECK(fd >= 0, "open: %s", strerror(errno));
	buf = map_anon(len);
	dst = malloc(len);
	CHECK(buf && dst, "mmap failed");
	CHECK_ERR(mr_create(fd, U(buf), len, ACC_ALL, &h), 0);
	CHECK_ERR(mr_counters(fd, h, &c0), 0);
	CHECK(c0.faults == 0 && c0.mapped_pages == 0 && c0.table_bytes == 0,
	      "fresh MR: faults %llu mapped %llu table %llu",
	      c0.faults, c0.mapped_pages, c0.table_bytes);
	memset(dst, 0xee, len);
	/* Pages 0..2; fault-around makes max(3, fa) pages present. */
	CHECK_ERR(mr_read(fd, h, U(buf) + 100, 10000, dst), 0);
	CHECK(all_bytes(dst, 10000, 0), "never-touched memory is not zero");
	CHECK_ERR(mr_counters(fd, h, &c1), 0);
	want = fa > 3 ? fa : 3;
	CHECK(c1.faults - c0.faults == want, "faults delta %llu, want %llu",
	      c1.faults - c0.faults, want);
	CHECK(c1.faults_handled - c0.faults_handled == 1,
	      "faults_handled delta %llu, want 1",
	      c1.faults_handled - c0.faults_handled);
	CHECK(c1.mapped_pages == want, "mapped_pages %llu, want %llu",
	      c1.mapped_pages, want);
	CHECK(c1.prefetch == 0, "prefetch counted %llu", c1.prefetch);

	/*
	 * 16 pages past the fault-around window (one 64 KiB bounce chunk of
	 * the mock device): one fault event for exactly those pages.
	 */
	if (want + 16 > 64)
		goto out;
	CHECK_ERR(mr_read(fd, h, U(buf) + want * PAGE, 16 * PAGE, dst), 0);
	CHECK(all_bytes(dst, 16 * PAGE, 0), "never-touched memory is not zero");
	CHECK_ERR(mr_counters(fd, h, &c0), 0);
	CHECK(c0.faults == want + 16 && c0.faults_handled == 2 &&
	      c0.mapped_pages == want + 16,
	      "after second read: faults %llu handled %llu mapped %llu",
	      c0.faults, c0.faults_handled, c0.mapped_pages);
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

static int t_munmap_remap(void)
{
	size_t len = 16 * PAGE;
	struct ib_hmm_test_counters c0, c1;
	uint8_t *buf = NULL, *p, *dst = NULL, src[300];
	int fd = -1, ret = T_PASS;
	uint64_t h;

	fd = dev_open();
	CHECK(fd >= 0, "open: %s", strerror(errno));
	buf = map_anon(len);
	dst = malloc(len);
	CHECK(buf && dst, "mmap failed");
	memset(buf, 0xaa, len);
	CHECK_ERR(mr_create(fd, U(buf), len, ACC_ALL, &h), 0);
	CHECK_ERR(mr_read(fd, h, U(buf), len, dst), 0);
	CHECK(all_bytes(dst, len, 0xaa), "initial READ wrong");
	CHECK_ERR(mr_counters(fd, h, &c0), 0);
	CHECK(c0.mapped_pages == 16, "mapped %llu, want 16", c0.mapped_pages);

	CHECK(!munmap(buf, len), "munmap");
	p = mmap(buf, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	CHECK(p == buf, "mmap at the same address failed");
	CHECK_ERR(mr_counters(fd, h, &c1), 0);
	CHECK(c1.invalidations - c0.invalidations == 16,
	      "invalidations delta %llu, want 16",
	      c1.invalidations - c0.invalidations);
	CHECK(c1.invalidations_handled > c0.invalidations_handled,
	      "invalidations_handled did not grow");
	CHECK(c1.mapped_pages == 0, "mapped %llu after munmap",
	      c1.mapped_pages);

	memset(src, 0x77, sizeof(src));
	CHECK_ERR(mr_write(fd, h, U(buf) + 5 * PAGE - 100, sizeof(src), src), 0);
	CHECK(all_bytes(buf + 5 * PAGE - 100, sizeof(src), 0x77),
	      "write did not land in the new pages");
	CHECK(all_bytes(buf, 5 * PAGE - 100, 0) &&
	      all_bytes(buf + 5 * PAGE + 200, len - 5 * PAGE - 200, 0),
	      "new pages show old or stray bytes");
	CHECK_ERR(mr_read(fd, h, U(buf), len, dst), 0);
	CHECK(!memcmp(dst, buf, len), "READ differs from the CPU view");
	CHECK(!memchr(dst, 0xaa, len), "old content visible");
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

static int t_madv_dontneed(void)
{
	size_t len = 32 * PAGE, np = 32;
	struct ib_hmm_test_counters c0, c1;
	uint8_t *buf = NULL, *dst = NULL, st[32];
	int fd = -1, ret = T_PASS;
	uint64_t h;

	fd = dev_open();
	CHECK(fd >= 0, "open: %s", strerror(errno));
	buf = map_anon(len);
	dst = malloc(len);
	CHECK(buf && dst, "mmap failed");
	memset(buf, 0xcd, len);
	CHECK_ERR(mr_create(fd, U(buf), len, ACC_ALL, &h), 0);
	CHECK_ERR(mr_read(fd, h, U(buf), len, dst), 0);
	CHECK(all_bytes(dst, len, 0xcd), "READ wrong");
	CHECK_ERR(mr_snapshot(fd, h, U(buf), np, st), 0);
	CHECK(count_state(st, np, IB_HMM_TEST_PAGE_VALID,
			  IB_HMM_TEST_PAGE_VALID) == np, "not all pages valid");
	CHECK(count_state(st, np, IB_HMM_TEST_PAGE_WRITE, 0) == np,
	      "a read fault installed WRITE");
	CHECK_ERR(mr_counters(fd, h, &c0), 0);

	CHECK(!madvise(buf, len, MADV_DONTNEED), "madvise");
	CHECK_ERR(mr_counters(fd, h, &c1), 0);
	CHECK(c1.invalidations - c0.invalidations == np,
	      "invalidations delta %llu, want %zu",
	      c1.invalidations - c0.invalidations, np);
	CHECK(c1.invalidations_handled - c0.invalidations_handled == 1,
	      "invalidations_handled delta %llu, want 1",
	      c1.invalidations_handled - c0.invalidations_handled);
	CHECK_ERR(mr_snapshot(fd, h, U(buf), np, st), 0);
	CHECK(count_state(st, np, 0xff, 0) == np, "entries not zapped");
	CHECK(c1.mapped_pages == 0 && c1.table_bytes == 0,
	      "after zap: mapped %llu table_bytes %llu", c1.mapped_pages,
	      c1.table_bytes);
	memset(dst, 0xee, len);
	CHECK_ERR(mr_read(fd, h, U(buf), len, dst), 0);
	CHECK(all_bytes(dst, len, 0), "re-read is not zeros");
	CHECK(all_bytes(buf, len, 0), "CPU does not see zeros");
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

static int t_mprotect_ro(void)
{
	size_t len = 8 * PAGE;
	uint8_t *buf = NULL, *dst = NULL, src[64], st[8];
	int fd = -1, ret = T_PASS;
	uint64_t h;

	fd = dev_open();
	CHECK(fd >= 0, "open: %s", strerror(errno));
	buf = map_anon(len);
	dst = malloc(len);
	CHECK(buf && dst, "mmap failed");
	memset(buf, 0x11, len);
	memset(src, 0x22, sizeof(src));
	CHECK_ERR(mr_create(fd, U(buf), len, ACC_ALL, &h), 0);
	CHECK_ERR(mr_write(fd, h, U(buf) + PAGE, sizeof(src), src), 0);
	CHECK(all_bytes(buf + PAGE, sizeof(src), 0x22), "first write lost");
	CHECK_ERR(mr_snapshot(fd, h, U(buf), 8, st), 0);
	CHECK(st[1] & IB_HMM_TEST_PAGE_WRITE, "write fault gave no WRITE");

	CHECK(!mprotect(buf, len, PROT_READ), "mprotect");
	CHECK_ERR(mr_snapshot(fd, h, U(buf), 8, st), 0);
	CHECK(count_state(st, 8, IB_HMM_TEST_PAGE_WRITE, 0) == 8,
	      "WRITE entries survived mprotect");
	memset(src, 0x33, sizeof(src));
	CHECK_ERR(mr_write(fd, h, U(buf) + PAGE, sizeof(src), src), EFAULT);
	CHECK_ERR(mr_write(fd, h, U(buf) + 3 * PAGE + 5, 1, src), EFAULT);
	CHECK_ERR(mr_atomic(fd, h, U(buf) + 2 * PAGE,
			    IB_HMM_TEST_ATOMIC_FETCH_ADD, 1, 0, NULL), EFAULT);
	CHECK(all_bytes(buf + PAGE, sizeof(src), 0x22) &&
	      buf[3 * PAGE + 5] == 0x11 && buf[2 * PAGE] == 0x11,
	      "data changed through a read-only mapping");
	CHECK_ERR(mr_read(fd, h, U(buf), len, dst), 0);
	CHECK(!memcmp(dst, buf, len), "READ after mprotect wrong");
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

static int t_prot_none(void)
{
	size_t len = 8 * PAGE;
	uint8_t *buf = NULL, dst[64];
	int fd = -1, ret = T_PASS;
	long long other0, busy0, nomem0;
	uint64_t h, orig;

	fd = dev_open();
	CHECK(fd >= 0, "open: %s", strerror(errno));
	buf = map_anon(len);
	CHECK(buf, "mmap failed");
	memset(buf, 0x44, len);
	CHECK_ERR(mr_create(fd, U(buf), len, ACC_ALL, &h), 0);
	CHECK_ERR(mr_read(fd, h, U(buf), sizeof(dst), dst), 0);
	CHECK(!mprotect(buf + 2 * PAGE, 2 * PAGE, PROT_NONE), "mprotect");
	other0 = hmm_debugfs_stat("fault_fail_other");
	busy0 = hmm_debugfs_stat("fault_fail_busy");
	nomem0 = hmm_debugfs_stat("fault_fail_nomem");
	CHECK(other0 >= 0 && busy0 >= 0 && nomem0 >= 0, "no fault_fail_* in " HMM_DEBUGFS_STATS);
	CHECK_ERR(mr_read(fd, h, U(buf) + 2 * PAGE, sizeof(dst), dst), EFAULT);
	CHECK_ERR(mr_read(fd, h, U(buf) + 2 * PAGE - 10, 20, dst), EFAULT);
	CHECK_ERR(mr_write(fd, h, U(buf) + 3 * PAGE, sizeof(dst), dst), EFAULT);
	CHECK_ERR(mr_atomic(fd, h, U(buf) + 2 * PAGE,
			    IB_HMM_TEST_ATOMIC_CMP_SWP, 0, 1, &orig), EFAULT);
	/* Each failed data access counted once, as neither busy nor out of memory. */
	CHECK(hmm_debugfs_stat("fault_fail_other") == other0 + 4 &&
	      hmm_debugfs_stat("fault_fail_busy") == busy0 &&
	      hmm_debugfs_stat("fault_fail_nomem") == nomem0,
	      "fault_fail other +%lld (want 4) busy +%lld nomem +%lld",
	      hmm_debugfs_stat("fault_fail_other") - other0,
	      hmm_debugfs_stat("fault_fail_busy") - busy0,
	      hmm_debugfs_stat("fault_fail_nomem") - nomem0);
	CHECK_ERR(mr_prefetch(fd, h, U(buf), len, 0), EFAULT);
	CHECK_ERR(mr_read(fd, h, U(buf) + 4 * PAGE, sizeof(dst), dst), 0);
	CHECK(all_bytes(dst, sizeof(dst), 0x44), "READ next to PROT_NONE wrong");
	CHECK(!mprotect(buf + 2 * PAGE, 2 * PAGE, PROT_READ | PROT_WRITE),
	      "mprotect");
	CHECK_ERR(mr_read(fd, h, U(buf) + 2 * PAGE, sizeof(dst), dst), 0);
	CHECK(all_bytes(dst, sizeof(dst), 0x44), "READ after restore wrong");
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

static int t_implicit_unmapped(void)
{
	uint8_t *buf = NULL, dst[64];
	int fd = -1, ret = T_PASS;
	uint64_t h, orig;

	fd = dev_open();
	CHECK(fd >= 0, "open: %s", strerror(errno));
	buf = map_anon(4 * PAGE);
	CHECK(buf, "mmap failed");
	memset(buf, 0x55, 4 * PAGE);
	CHECK(!munmap(buf + 2 * PAGE, 2 * PAGE), "munmap");
	CHECK_ERR(mr_create(fd, 0, IB_HMM_TEST_IMPLICIT_LENGTH, ACC_ALL, &h), 0);
	CHECK_ERR(mr_read(fd, h, U(buf), sizeof(dst), dst), 0);
	CHECK(all_bytes(dst, sizeof(dst), 0x55), "implicit READ wrong");
	CHECK_ERR(mr_read(fd, h, U(buf) + 2 * PAGE, sizeof(dst), dst), EFAULT);
	CHECK_ERR(mr_read(fd, h, U(buf) + 2 * PAGE - 8, 16, dst), EFAULT);
	CHECK_ERR(mr_write(fd, h, U(buf) + 3 * PAGE, sizeof(dst), dst), EFAULT);
	CHECK_ERR(mr_atomic(fd, h, U(buf) + 2 * PAGE,
			    IB_HMM_TEST_ATOMIC_FETCH_ADD, 1, 0, &orig), EFAULT);
	CHECK_ERR(mr_read(fd, h, PAGE, 8, dst), EFAULT);
	CHECK_ERR(mr_rw(fd, IB_HMM_TEST_IOC_FLUSH, h, U(buf) + 2 * PAGE, 8,
			NULL, 0), EFAULT);
	CHECK_ERR(mr_rw(fd, IB_HMM_TEST_IOC_FLUSH, h, U(buf), 2 * PAGE, NULL,
			0), 0);
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

static int t_fork_cow(void)
{
	size_t len = 4 * PAGE;
	uint8_t *buf = NULL, *dst = NULL, *src = NULL;
	int fd = -1, ret = T_PASS, pfd[2] = { -1, -1 }, status;
	uint64_t h;
	pid_t pid;
	char c = 0;

	fd = dev_open();
	CHECK(fd >= 0, "open: %s", strerror(errno));
	buf = map_anon(len);
	dst = malloc(len);
	src = malloc(len);
	CHECK(buf && dst && src && !pipe(pfd), "setup failed");
	memset(buf, 0x01, len);
	CHECK_ERR(mr_create(fd, U(buf), len, ACC_ALL, &h), 0);
	CHECK_ERR(mr_read(fd, h, U(buf), len, dst), 0);

	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		if (read(pfd[0], &c, 1) != 1)
			_exit(2);
		/* The parent's device write must not show in the child. */
		if (!all_bytes(buf, len, 0x01))
			_exit(3);
		memset(buf, 0x02, len);	/* the child's COW copy */
		_exit(0);
	}
	memset(src, 0x03, len);
	CHECK_ERR(mr_write(fd, h, U(buf) + 10, len - 20, src), 0);
	CHECK(write(pfd[1], &c, 1) == 1, "pipe write");
	CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "child saw the parent's device write (status %#x)", status);
	CHECK(all_bytes(buf + 10, len - 20, 0x03) && buf[0] == 0x01 &&
	      buf[len - 1] == 0x01, "parent CPU view wrong");
	CHECK_ERR(mr_read(fd, h, U(buf), len, dst), 0);
	CHECK(!memcmp(dst, buf, len), "parent mirror does not see parent data");
	CHECK(!memchr(dst, 0x02, len), "child data visible to the parent");
out:
	if (pfd[0] >= 0) {
		close(pfd[0]);
		close(pfd[1]);
	}
	if (fd >= 0)
		close(fd);
	return ret;
}

static int t_mremap_move(void)
{
	size_t len = 8 * PAGE;
	struct ib_hmm_test_counters c0, c1;
	uint8_t *a = NULL, *b = NULL, *p, *dst = NULL, src[100];
	int fd = -1, ret = T_PASS;
	uint64_t h;

	fd = dev_open();
	CHECK(fd >= 0, "open: %s", strerror(errno));
	a = map_anon(len);
	b = map_anon(len);
	dst = malloc(len);
	CHECK(a && b && dst, "mmap failed");
	memset(a, 0x44, len);
	CHECK_ERR(mr_create(fd, 0, IB_HMM_TEST_IMPLICIT_LENGTH, ACC_ALL, &h), 0);
	CHECK_ERR(mr_read(fd, h, U(a), len, dst), 0);
	CHECK_ERR(mr_counters(fd, h, &c0), 0);
	p = mremap(a, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, b);
	CHECK(p == b, "mremap: %s", strerror(errno));
	CHECK_ERR(mr_counters(fd, h, &c1), 0);
	CHECK(c1.invalidations - c0.invalidations >= 8,
	      "mremap zapped %llu pages, want >= 8",
	      c1.invalidations - c0.invalidations);
	CHECK_ERR(mr_read(fd, h, U(a), 8, dst), EFAULT);
	CHECK_ERR(mr_read(fd, h, U(b), len, dst), 0);
	CHECK(all_bytes(dst, len, 0x44), "READ at the new address wrong");
	memset(src, 0x45, sizeof(src));
	CHECK_ERR(mr_write(fd, h, U(b) + 3 * PAGE - 50, sizeof(src), src), 0);
	CHECK(all_bytes(b + 3 * PAGE - 50, sizeof(src), 0x45) &&
	      b[3 * PAGE - 51] == 0x44 && b[3 * PAGE + 50] == 0x44,
	      "WRITE at the new address wrong");
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

static int t_thp(void)
{
	size_t np = HUGE_2M / PAGE;
	struct ib_hmm_test_counters c0, c1;
	uint8_t *g = NULL, *dst = NULL, *st = NULL;
	int fd = -1, ret = T_PASS;
	uint64_t h;
	long d;

	fd = dev_open();
	CHECK(fd >= 0, "open: %s", strerror(errno));
	g = map_aligned(HUGE_2M, HUGE_2M);
	dst = malloc(HUGE_2M);
	st = malloc(np);
	CHECK(g && dst && st, "mmap failed");
	if (madvise(g, HUGE_2M, MADV_HUGEPAGE))
		SKIP("MADV_HUGEPAGE: %s", strerror(errno));
	fill_pattern(g, HUGE_2M, 7);
	if (!smaps_has_thp(g))
		SKIP("the kernel did not back the buffer with a THP");
	CHECK_ERR(mr_create(fd, U(g), HUGE_2M, ACC_ALL, &h), 0);
	CHECK_ERR(mr_read(fd, h, U(g) + HUGE_2M / 2 + 5, 3 * PAGE, dst), 0);
	d = first_diff(dst, g + HUGE_2M / 2 + 5, 3 * PAGE);
	CHECK(d < 0, "READ through huge entry wrong at %ld", d);
	CHECK_ERR(mr_snapshot(fd, h, U(g), np, st), 0);
	CHECK(count_state(st, np, IB_HMM_TEST_PAGE_VALID | IB_HMM_TEST_PAGE_HUGE,
			  IB_HMM_TEST_PAGE_VALID | IB_HMM_TEST_PAGE_HUGE) == np,
	      "THP not mirrored as one huge entry (page 0 state %#x)", st[0]);
	CHECK_ERR(mr_counters(fd, h, &c0), 0);
	CHECK(c0.mapped_pages == np, "mapped %llu, want %zu", c0.mapped_pages,
	      np);
	/* No leaf: the interior path only (at most 4 nodes). */
	CHECK(c0.table_bytes <= 4 * PAGE, "huge entry used %llu table bytes",
	      c0.table_bytes);
	CHECK_ERR(mr_read(fd, h, U(g), HUGE_2M, dst), 0);
	CHECK(!memcmp(dst, g, HUGE_2M), "full READ of the THP wrong");

	/* Split it by unmapping its last page. */
	CHECK(!munmap(g + HUGE_2M - PAGE, PAGE), "munmap");
	CHECK_ERR(mr_counters(fd, h, &c1), 0);
	CHECK(c1.invalidations - c0.invalidations == np,
	      "split zapped %llu pages, want %zu",
	      c1.invalidations - c0.invalidations, np);
	CHECK_ERR(mr_snapshot(fd, h, U(g), np, st), 0);
	CHECK(count_state(st, np, 0xff, 0) == np, "huge entry survived split");
	CHECK_ERR(mr_read(fd, h, U(g) + 100, HUGE_2M - PAGE - 200, dst), 0);
	d = first_diff(dst, g + 100, HUGE_2M - PAGE - 200);
	CHECK(d < 0, "READ after split wrong at %ld", d);
	CHECK_ERR(mr_snapshot(fd, h, U(g), np, st), 0);
	CHECK(count_state(st, np, IB_HMM_TEST_PAGE_HUGE, 0) == np,
	      "huge entry after split");
	CHECK(st[0] & IB_HMM_TEST_PAGE_VALID, "page 0 not valid after re-read");
	CHECK_ERR(mr_read(fd, h, U(g) + HUGE_2M - PAGE, 8, dst), EFAULT);
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

static long read_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static int write_long(const char *path, long v)
{
	FILE *f = fopen(path, "w");
	int r;

	if (!f)
		return -1;
	r = fprintf(f, "%ld\n", v) > 0 ? 0 : -1;
	return fclose(f) ? -1 : r;
}

static int t_hugetlb(void)
{
	const char *nr = "/proc/sys/vm/nr_hugepages";
	size_t np = HUGE_2M / PAGE;
	uint8_t *g = MAP_FAILED, *dst = NULL, *st = NULL, src[500];
	int fd = -1, ret = T_PASS;
	long old = read_long(nr);
	uint64_t h;
	long d;

	if (old < 0)
		SKIP("no %s", nr);
	if (write_long(nr, old + 1))
		SKIP("cannot reserve a huge page");
	g = mmap(NULL, HUGE_2M, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	if (g == MAP_FAILED)
		SKIP("MAP_HUGETLB: %s", strerror(errno));
	fd = dev_open();
	dst = malloc(HUGE_2M);
	st = malloc(np);
	CHECK(fd >= 0 && dst && st, "setup failed");
	fill_pattern(g, HUGE_2M, 9);
	CHECK_ERR(mr_create(fd, U(g), HUGE_2M, ACC_ALL, &h), 0);
	CHECK_ERR(mr_read(fd, h, U(g) + 12345, HUGE_2M - 20000, dst), 0);
	d = first_diff(dst, g + 12345, HUGE_2M - 20000);
	CHECK(d < 0, "READ of hugetlb wrong at %ld", d);
	CHECK_ERR(mr_snapshot(fd, h, U(g), np, st), 0);
	CHECK(count_state(st, np, IB_HMM_TEST_PAGE_HUGE,
			  IB_HMM_TEST_PAGE_HUGE) == np,
	      "hugetlb page not mirrored as a huge entry (state %#x)", st[0]);
	memset(src, 0x99, sizeof(src));
	CHECK_ERR(mr_write(fd, h, U(g) + HUGE_2M - 250, 250, src), 0);
	CHECK_ERR(mr_write(fd, h, U(g) + 1000000, sizeof(src), src), 0);
	CHECK(all_bytes(g + HUGE_2M - 250, 250, 0x99) &&
	      all_bytes(g + 1000000, sizeof(src), 0x99),
	      "WRITE to hugetlb wrong");
out:
	if (fd >= 0)
		close(fd);
	if (g != MAP_FAILED)
		munmap(g, HUGE_2M);
	if (old >= 0)
		write_long(nr, old);
	return ret;
}

static int t_memfd_shared(void)
{
	size_t len = 16 * PAGE;
	uint8_t *a = MAP_FAILED, *b = MAP_FAILED, *dst = NULL, src[3000];
	int fd = -1, mfd = -1, ret = T_PASS;
	uint64_t h;
	long d;

	fd = dev_open();
	mfd = memfd_create("ib_hmm_mock", MFD_CLOEXEC);
	CHECK(fd >= 0 && mfd >= 0 && !ftruncate(mfd, len), "setup failed");
	a = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	b = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	dst = malloc(len);
	CHECK(a != MAP_FAILED && b != MAP_FAILED && dst, "mmap failed");
	CHECK_ERR(mr_create(fd, U(a), len, ACC_ALL, &h), 0);
	fill_pattern(src, sizeof(src), 11);
	CHECK_ERR(mr_write(fd, h, U(a) + 2 * PAGE - 1000, sizeof(src), src), 0);
	d = first_diff(b + 2 * PAGE - 1000, src, sizeof(src));
	CHECK(d < 0, "other mapping does not see the device write (%ld)", d);
	CHECK(pread(mfd, dst, sizeof(src), 2 * PAGE - 1000) == sizeof(src) &&
	      !memcmp(dst, src, sizeof(src)), "pread does not see it");
	fill_pattern(b, len, 12);
	CHECK_ERR(mr_read(fd, h, U(a), len, dst), 0);
	CHECK(!memcmp(dst, b, len), "READ misses stores via the other mapping");
	/* Dropping the PTEs keeps the page cache: same bytes after refault. */
	CHECK(!madvise(a, len, MADV_DONTNEED), "madvise");
	CHECK_ERR(mr_read(fd, h, U(a), len, dst), 0);
	CHECK(!memcmp(dst, b, len), "READ after DONTNEED of shmem wrong");
out:
	if (a != MAP_FAILED)
		munmap(a, len);
	if (b != MAP_FAILED)
		munmap(b, len);
	if (mfd >= 0)
		close(mfd);
	if (fd >= 0)
		close(fd);
	return ret;
}

static int t_prefetch_sync(void)
{
	size_t len = 64 * PAGE;
	struct ib_hmm_test_counters c0, c1;
	uint8_t *buf = NULL, *dst = NULL, st[64];
	int fd = -1, ret = T_PASS;
	uint64_t h;

	fd = dev_open();
	CHECK(fd >= 0, "open: %s", strerror(errno));
	buf = map_anon(len);
	dst = malloc(len);
	CHECK(buf && dst, "mmap failed");
	CHECK_ERR(mr_create(fd, U(buf), len, ACC_ALL, &h), 0);
	CHECK_ERR(mr_counters(fd, h, &c0), 0);
	CHECK_ERR(mr_prefetch(fd, h, U(buf), 32 * PAGE, 0), 0);
	CHECK_ERR(mr_counters(fd, h, &c1), 0);
	CHECK(c1.prefetch - c0.prefetch == 32 && c1.faults == c0.faults &&
	      c1.mapped_pages == 32,
	      "prefetch delta %llu faults delta %llu mapped %llu",
	      c1.prefetch - c0.prefetch, c1.faults - c0.faults,
	      c1.mapped_pages);
	CHECK_ERR(mr_read(fd, h, U(buf), 32 * PAGE, dst), 0);
	CHECK_ERR(mr_counters(fd, h, &c0), 0);
	CHECK(c0.faults == c1.faults && c0.faults_handled == c1.faults_handled,
	      "READ of prefetched pages faulted");
	CHECK_ERR(mr_prefetch(fd, h, U(buf) + 32 * PAGE, 8 * PAGE,
			      IB_HMM_TEST_PREFETCH_WRITE), 0);
	CHECK_ERR(mr_counters(fd, h, &c1), 0);
	CHECK(c1.prefetch - c0.prefetch == 8, "write prefetch delta %llu",
	      c1.prefetch - c0.prefetch);
	CHECK_ERR(mr_snapshot(fd, h, U(buf), 64, st), 0);
	CHECK(count_state(st + 32, 8, 0xff, IB_HMM_TEST_PAGE_VALID |
			  IB_HMM_TEST_PAGE_WRITE) == 8,
	      "write prefetch did not install WRITE entries");
	CHECK(count_state(st + 40, 24, 0xff, 0) == 24,
	      "prefetch went beyond its range");
	CHECK_ERR(mr_prefetch(fd, h, U(buf), len + 1, 0), EFAULT);
	CHECK_ERR(mr_prefetch(fd, h, U(buf), PAGE, 1ULL << 7), EINVAL);
	CHECK_ERR(mr_prefetch(fd, h, U(buf), 0, 0), 0);
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

static int t_prefetch_async(void)
{
	size_t len = 64 * PAGE, big = 4096 * PAGE;
	struct ib_hmm_test_counters c0, c1;
	uint8_t *buf = NULL, *bigbuf = NULL;
	int fd = -1, ret = T_PASS, i;
	uint64_t h, h2;

	fd = dev_open();
	CHECK(fd >= 0, "open: %s", strerror(errno));
	buf = map_anon(len);
	bigbuf = map_anon(big);
	CHECK(buf && bigbuf, "mmap failed");
	CHECK_ERR(mr_create(fd, U(buf), len, ACC_ALL, &h), 0);
	CHECK_ERR(mr_counters(fd, h, &c0), 0);
	CHECK_ERR(mr_prefetch(fd, h, U(buf) + PAGE, 16 * PAGE,
			      IB_HMM_TEST_PREFETCH_ASYNC), 0);
	for (i = 0; i < 500; i++) {
		CHECK_ERR(mr_counters(fd, h, &c1), 0);
		if (c1.prefetch - c0.prefetch >= 16)
			break;
		usleep(10000);
	}
	CHECK(c1.prefetch - c0.prefetch == 16 && c1.mapped_pages == 16 &&
	      c1.faults == 0, "async prefetch: delta %llu mapped %llu",
	      c1.prefetch - c0.prefetch, c1.mapped_pages);

	/* Destroy with work queued or running: must wait or cancel. */
	for (i = 0; i < 4; i++) {
		CHECK_ERR(mr_create(fd, U(bigbuf), big, ACC_ALL, &h2), 0);
		CHECK_ERR(mr_prefetch(fd, h2, U(bigbuf), big,
				      IB_HMM_TEST_PREFETCH_ASYNC |
				      IB_HMM_TEST_PREFETCH_WRITE), 0);
		CHECK_ERR(mr_prefetch(fd, h2, U(bigbuf), big,
				      IB_HMM_TEST_PREFETCH_ASYNC), 0);
		if (i & 1)
			usleep(1000);
		CHECK_ERR(mr_destroy(fd, h2), 0);
	}
	CHECK_ERR(mr_destroy(fd, h2), ENOENT);
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

static int t_prefetch_no_fault(void)
{
	size_t len = 32 * PAGE;
	struct ib_hmm_test_counters c0, c1;
	uint8_t *buf = NULL, st[32];
	int fd = -1, ret = T_PASS;
	uint64_t h;

	fd = dev_open();
	CHECK(fd >= 0, "open: %s", strerror(errno));
	buf = map_anon(len);
	CHECK(buf, "mmap failed");
	memset(buf, 0x66, 10 * PAGE);	/* pages 0..9 present */
	CHECK_ERR(mr_create(fd, U(buf), len, ACC_ALL, &h), 0);
	CHECK_ERR(mr_counters(fd, h, &c0), 0);
	CHECK_ERR(mr_prefetch(fd, h, U(buf), len,
			      IB_HMM_TEST_PREFETCH_NO_FAULT), 0);
	CHECK_ERR(mr_counters(fd, h, &c1), 0);
	CHECK(c1.prefetch - c0.prefetch == 10 && c1.mapped_pages == 10,
	      "NO_FAULT prefetch delta %llu mapped %llu, want 10",
	      c1.prefetch - c0.prefetch, c1.mapped_pages);
	CHECK_ERR(mr_snapshot(fd, h, U(buf), 32, st), 0);
	CHECK(count_state(st, 10, IB_HMM_TEST_PAGE_VALID,
			  IB_HMM_TEST_PAGE_VALID) == 10 &&
	      count_state(st + 10, 22, 0xff, 0) == 22,
	      "NO_FAULT mapped the wrong pages");
	CHECK(all_bytes(buf + 10 * PAGE, 22 * PAGE, 0), "not zero");
	/* NO_FAULT over an unmapped hole is not an error. */
	CHECK(!munmap(buf + 20 * PAGE, 4 * PAGE), "munmap");
	CHECK_ERR(mr_prefetch(fd, h, U(buf), len,
			      IB_HMM_TEST_PREFETCH_NO_FAULT), 0);
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

static int t_overflow(void)
{
	uint8_t *buf = NULL, dst[16];
	int fd = -1, ret = T_PASS;
	uint64_t h, hi, x, orig;

	fd = dev_open();
	CHECK(fd >= 0, "open: %s", strerror(errno));
	buf = map_anon(4 * PAGE);
	CHECK(buf, "mmap failed");
	CHECK_ERR(mr_create(fd, U(buf), 4 * PAGE, ACC_ALL, &h), 0);
	/* iova + length wraps to inside the MR. */
	CHECK_ERR(mr_read(fd, h, U(buf) + PAGE, UINT64_MAX - PAGE + 2, dst),
		  EFAULT);
	CHECK_ERR(mr_write(fd, h, U(buf) + PAGE, -(U(buf) + PAGE) + 16, dst),
		  EFAULT);
	CHECK_ERR(mr_prefetch(fd, h, U(buf) + PAGE, UINT64_MAX, 0), EFAULT);
	CHECK_ERR(mr_rw(fd, IB_HMM_TEST_IOC_FLUSH, h, U(buf), UINT64_MAX, NULL,
			0), EFAULT);
	/* iova near U64_MAX. */
	CHECK_ERR(mr_read(fd, h, UINT64_MAX - 7, 8, dst), EFAULT);
	CHECK_ERR(mr_read(fd, h, UINT64_MAX, 1, dst), EFAULT);
	CHECK_ERR(mr_atomic(fd, h, UINT64_MAX - 7, IB_HMM_TEST_ATOMIC_FETCH_ADD,
			    1, 0, &orig), EFAULT);
	/* Just past the end, and the last byte. */
	CHECK_ERR(mr_read(fd, h, U(buf) + 4 * PAGE - 1, 2, dst), EFAULT);
	CHECK_ERR(mr_read(fd, h, U(buf) + 4 * PAGE - 1, 1, dst), 0);
	CHECK_ERR(mr_read(fd, h, U(buf) - 1, 1, dst), EFAULT);
	/* Zero length. */
	CHECK_ERR(mr_create(fd, U(buf), 0, ACC_ALL, &x), EINVAL);
	CHECK_ERR(mr_read(fd, h, U(buf), 0, dst), 0);
	CHECK_ERR(mr_write(fd, h, U(buf), 0, dst), 0);
	/* Explicit MRs that wrap or end beyond TASK_SIZE. */
	CHECK_ERR(mr_create(fd, U(buf), UINT64_MAX - 100, ACC_ALL, &x), EINVAL);
	CHECK_ERR(mr_create(fd, UINT64_MAX - PAGE + 1, PAGE, ACC_ALL, &x),
		  EINVAL);
	hi = (1ULL << 56) - PAGE;	/* past TASK_SIZE with 4 or 5 levels */
	CHECK_ERR(mr_create(fd, hi, 2 * PAGE, ACC_ALL, &x), EINVAL);
	CHECK_ERR(mr_create(fd, 1ULL << 60, PAGE, ACC_ALL, &x), EINVAL);
	/* Implicit needs start 0. */
	CHECK_ERR(mr_create(fd, PAGE, IB_HMM_TEST_IMPLICIT_LENGTH, ACC_ALL, &x),
		  EINVAL);
	CHECK_ERR(mr_create(fd, U(buf), 4 * PAGE, 1ULL << 40, &x), EINVAL);
	/* Implicit MR: beyond TASK_SIZE and wrapping. */
	CHECK_ERR(mr_create(fd, 0, IB_HMM_TEST_IMPLICIT_LENGTH, ACC_ALL, &x), 0);
	CHECK_ERR(mr_read(fd, x, 1ULL << 60, 8, dst), EFAULT);
	CHECK_ERR(mr_read(fd, x, U(buf), UINT64_MAX, dst), EFAULT);
	CHECK_ERR(mr_read(fd, x, UINT64_MAX - 3, 8, dst), EFAULT);
	/* Misaligned atomics. */
	CHECK_ERR(mr_atomic(fd, h, U(buf) + 4, IB_HMM_TEST_ATOMIC_CMP_SWP, 0,
			    1, &orig), EINVAL);
	CHECK_ERR(mr_atomic(fd, h, U(buf) + 8, 77, 0, 1, &orig), EINVAL);
	/* Unknown handle. */
	CHECK_ERR(mr_read(fd, 12345, U(buf), 8, dst), ENOENT);
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

static int t_access_atomics(void)
{
	uint8_t *buf = NULL, dst[64];
	int fd = -1, ret = T_PASS;
	uint64_t h, hro, orig, *w;

	fd = dev_open();
	CHECK(fd >= 0, "open: %s", strerror(errno));
	buf = map_anon(4 * PAGE);
	CHECK(buf, "mmap failed");
	w = (uint64_t *)(buf + PAGE + 64);
	*w = 100;
	CHECK_ERR(mr_create(fd, U(buf), 4 * PAGE, ACC_ALL, &h), 0);
	CHECK_ERR(mr_atomic(fd, h, U(w), IB_HMM_TEST_ATOMIC_FETCH_ADD, 5, 0,
			    &orig), 0);
	CHECK(orig == 100 && *w == 105, "fetch_add: orig %llu now %llu",
	      (unsigned long long)orig, (unsigned long long)*w);
	CHECK_ERR(mr_atomic(fd, h, U(w), IB_HMM_TEST_ATOMIC_CMP_SWP, 7, 9,
			    &orig), 0);
	CHECK(orig == 105 && *w == 105, "failed cmp_swp changed memory");
	CHECK_ERR(mr_atomic(fd, h, U(w), IB_HMM_TEST_ATOMIC_CMP_SWP, 105,
			    0x1122334455667788ULL, &orig), 0);
	CHECK(orig == 105 && *w == 0x1122334455667788ULL, "cmp_swp wrong");
	CHECK_ERR(mr_atomic(fd, h, U(w) + 8, IB_HMM_TEST_ATOMIC_WRITE, 42, 0,
			    NULL), 0);
	CHECK(w[1] == 42 && w[0] == 0x1122334455667788ULL, "atomic write wrong");
	/* An untouched page: the atomic faults it for write. */
	CHECK_ERR(mr_atomic(fd, h, U(buf) + 3 * PAGE,
			    IB_HMM_TEST_ATOMIC_FETCH_ADD, 3, 0, &orig), 0);
	CHECK(orig == 0 && *(uint64_t *)(buf + 3 * PAGE) == 3,
	      "atomic on untouched page wrong");

	/* Access flags are checked before the mirror. */
	CHECK_ERR(mr_create(fd, U(buf), 4 * PAGE,
			    IB_HMM_TEST_ACCESS_LOCAL_READ, &hro), 0);
	CHECK_ERR(mr_read(fd, hro, U(buf), 8, dst), 0);
	CHECK_ERR(mr_write(fd, hro, U(buf), 8, dst), EACCES);
	CHECK_ERR(mr_rw(fd, IB_HMM_TEST_IOC_READ, hro, U(buf), 8, dst,
			IB_HMM_TEST_RW_REMOTE), EACCES);
	CHECK_ERR(mr_atomic(fd, hro, U(w), IB_HMM_TEST_ATOMIC_FETCH_ADD, 1, 0,
			    &orig), EACCES);
	CHECK_ERR(mr_rw(fd, IB_HMM_TEST_IOC_FLUSH, hro, U(buf), 8, NULL, 0),
		  EACCES);
	CHECK_ERR(mr_prefetch(fd, hro, U(buf), PAGE,
			      IB_HMM_TEST_PREFETCH_WRITE), EACCES);
	CHECK(w[0] == 0x1122334455667788ULL, "denied atomic changed memory");
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

static int t_table_big_mr(void)
{
	struct ib_hmm_test_counters c;
	int fd = -1, ret = T_PASS;
	struct timespec a, b;
	uint64_t h1, h2;
	double ms;

	fd = dev_open();
	CHECK(fd >= 0, "open: %s", strerror(errno));
	clock_gettime(CLOCK_MONOTONIC, &a);
	CHECK_ERR(mr_create(fd, 1ULL << 40, 64ULL << 30, ACC_ALL, &h1), 0);
	CHECK_ERR(mr_create(fd, 0, IB_HMM_TEST_IMPLICIT_LENGTH, ACC_ALL, &h2), 0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6;
	CHECK_ERR(mr_counters(fd, h1, &c), 0);
	CHECK(c.table_bytes == 0 && c.mapped_pages == 0,
	      "64 GiB MR: table_bytes %llu mapped %llu", c.table_bytes,
	      c.mapped_pages);
	CHECK_ERR(mr_counters(fd, h2, &c), 0);
	CHECK(c.table_bytes == 0 && c.mapped_pages == 0,
	      "implicit MR: table_bytes %llu mapped %llu", c.table_bytes,
	      c.mapped_pages);
	CHECK(ms < 2000, "creating two huge MRs took %.1f ms", ms);
	if (verbose)
		printf("  creating 64 GiB + implicit MRs: %.2f ms\n", ms);
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

static int t_table_per_page(void)
{
	size_t np = 65536, len = np * PAGE;
	struct ib_hmm_test_counters c;
	int fd = -1, ret = T_PASS;
	uint8_t *buf = NULL;
	double per;
	uint64_t h;

	fd = dev_open();
	CHECK(fd >= 0, "open: %s", strerror(errno));
	buf = map_aligned(len, HUGE_2M);
	CHECK(buf, "mmap failed");
	madvise(buf, len, MADV_NOHUGEPAGE);
	memset(buf, 1, len);
	CHECK_ERR(mr_create(fd, U(buf), len, ACC_ALL, &h), 0);
	CHECK_ERR(mr_prefetch(fd, h, U(buf), len,
			      IB_HMM_TEST_PREFETCH_NO_FAULT), 0);
	CHECK_ERR(mr_counters(fd, h, &c), 0);
	per = (double)c.table_bytes / np;
	if (verbose)
		printf("  %zu pages: %llu table bytes, %.3f bytes/page\n", np,
		       c.table_bytes, per);
	CHECK(c.mapped_pages == np, "mapped %llu, want %zu", c.mapped_pages,
	      np);
	CHECK(per <= 8.5, "%.3f table bytes per page (%llu for %zu pages)",
	      per, c.table_bytes, np);
	/* Zapping everything frees every node. */
	CHECK(!madvise(buf, len, MADV_DONTNEED), "madvise");
	CHECK_ERR(mr_counters(fd, h, &c), 0);
	CHECK(c.table_bytes == 0 && c.mapped_pages == 0,
	      "after zap: table_bytes %llu mapped %llu", c.table_bytes,
	      c.mapped_pages);
out:
	if (buf)
		munmap(buf, len);
	if (fd >= 0)
		close(fd);
	return ret;
}

/*
 * Table nodes for a set of 2 MiB granules that each hold 4 KiB entries: one leaf
 * per granule, and at each level above, one node per distinct span of that
 * level, up to the lowest level whose span holds them all (the root).
 */
static uint64_t table_nodes(const uint64_t *gran, int n)
{
	uint64_t nodes = n;
	unsigned int level, shift;
	int i, j, distinct;

	for (level = 1;; level++) {
		shift = 12 + 9 * (level + 1);
		distinct = 0;
		for (i = 0; i < n; i++) {
			for (j = 0; j < i; j++)
				if (gran[j] >> shift == gran[i] >> shift)
					break;
			distinct += j == i;
		}
		nodes += distinct;
		if (distinct == 1)
			return nodes;
	}
}

/*
 * The root grows from the lowest level that holds what is mirrored: 8 MiB in
 * one 1 GiB region costs one node above its leaves; a granule in another
 * region, then one at 32 TiB, add parents above the old root, and what was
 * mirrored before stays reachable. Zapping everything frees the whole table;
 * the next install starts a level 1 root again.
 */
static int t_table_root_grows(void)
{
	size_t alen = 4 * HUGE_2M;
	struct ib_hmm_test_counters c, c0;
	uint8_t *a, *b, *hi, *dst = malloc(alen);
	struct mirrored { uint8_t *p; size_t len; const char *what; } step[3];
	uint64_t gran[6], h, want;
	int fd = -1, ret = T_PASS, n = 0, s;
	size_t off;

	fd = dev_open();
	CHECK(fd >= 0, "open: %s", strerror(errno));
	a = map_aligned(alen, 1UL << 30);
	b = map_aligned(HUGE_2M, 1UL << 30);
	hi = mmap((void *)(1UL << 45), HUGE_2M, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	CHECK(a && b && hi == (void *)(1UL << 45) && dst,
	      "mmap failed: %s", strerror(errno));
	step[0] = (struct mirrored){ a, alen, "8 MiB in one 1 GiB region" };
	step[1] = (struct mirrored){ b, HUGE_2M, "another 1 GiB region" };
	step[2] = (struct mirrored){ hi, HUGE_2M, "at 32 TiB" };
	for (s = 0; s < 3; s++) {
		madvise(step[s].p, step[s].len, MADV_NOHUGEPAGE);
		fill_pattern(step[s].p, step[s].len, 21 + s);
	}
	CHECK_ERR(mr_create(fd, 0, IB_HMM_TEST_IMPLICIT_LENGTH, ACC_ALL, &h), 0);

	/* Mirror exactly the present pages of each buffer, one at a time. */
	for (s = 0; s < 3; s++) {
		for (off = 0; off < step[s].len; off += HUGE_2M)
			gran[n++] = U(step[s].p) + off;
		CHECK_ERR(mr_prefetch(fd, h, U(step[s].p), step[s].len,
				      IB_HMM_TEST_PREFETCH_NO_FAULT), 0);
		CHECK_ERR(mr_counters(fd, h, &c0), 0);
		want = table_nodes(gran, n) * PAGE;
		/* The first buffer: 4 leaves and a level 1 root, nothing above. */
		CHECK(c0.table_bytes == want && (s || want == 5 * PAGE),
		      "%s: table_bytes %llu, want %llu", step[s].what,
		      c0.table_bytes, (unsigned long long)want);
	}
	CHECK(c0.mapped_pages == (alen + 2 * HUGE_2M) / PAGE,
	      "mapped %llu", c0.mapped_pages);

	/* Everything mirrored before the root grew is found without a fault. */
	for (s = 0; s < 3; s++) {
		CHECK_ERR(mr_read(fd, h, U(step[s].p), step[s].len, dst), 0);
		CHECK(!memcmp(dst, step[s].p, step[s].len), "%s: READ differs",
		      step[s].what);
	}
	CHECK_ERR(mr_counters(fd, h, &c), 0);
	CHECK(c.faults == c0.faults && c.table_bytes == c0.table_bytes,
	      "reads faulted %llu pages, table %llu -> %llu",
	      c.faults - c0.faults, c0.table_bytes, c.table_bytes);

	for (s = 0; s < 3; s++)
		CHECK(!madvise(step[s].p, step[s].len, MADV_DONTNEED), "madvise");
	CHECK_ERR(mr_counters(fd, h, &c), 0);
	CHECK(c.table_bytes == 0 && c.mapped_pages == 0,
	      "after zapping all: table_bytes %llu mapped %llu",
	      c.table_bytes, c.mapped_pages);

	memset(hi, 0x3c, HUGE_2M);
	CHECK_ERR(mr_prefetch(fd, h, U(hi), HUGE_2M, IB_HMM_TEST_PREFETCH_NO_FAULT), 0);
	CHECK_ERR(mr_read(fd, h, U(hi) + HUGE_2M - 100, 100, dst), 0);
	CHECK(all_bytes(dst, 100, 0x3c), "READ after the table emptied");
	CHECK_ERR(mr_counters(fd, h, &c), 0);
	CHECK(c.table_bytes == 2 * PAGE,
	      "a fresh root: table_bytes %llu, want %lu", c.table_bytes,
	      2 * PAGE);
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

static int t_shared_table(void)
{
	size_t np = 512, len = np * PAGE;
	struct ib_hmm_test_counters c0, c;
	uint8_t *buf = NULL, *dst = NULL;
	int fd = -1, ret = T_PASS, i;
	uint64_t h[16];

	fd = dev_open();
	CHECK(fd >= 0, "open: %s", strerror(errno));
	buf = map_anon(len);
	dst = malloc(len);
	CHECK(buf && dst, "mmap failed");
	fill_pattern(buf, len, 13);
	for (i = 0; i < 16; i++)
		CHECK_ERR(mr_create(fd, U(buf), len, ACC_ALL, &h[i]), 0);
	CHECK_ERR(mr_read(fd, h[0], U(buf), len, dst), 0);
	CHECK_ERR(mr_counters(fd, h[0], &c0), 0);
	CHECK(c0.table_bytes > 0, "no table memory after a read");
	for (i = 1; i < 16; i++) {
		CHECK_ERR(mr_read(fd, h[i], U(buf), len, dst), 0);
		CHECK(!memcmp(dst, buf, len), "MR %d reads wrong data", i);
		CHECK_ERR(mr_counters(fd, h[i], &c), 0);
		CHECK(c.table_bytes == c0.table_bytes && c.mapped_pages == np &&
		      c.faults == 0, "MR %d: table_bytes %llu (first %llu) "
		      "mapped %llu faults %llu", i, c.table_bytes,
		      c0.table_bytes, c.mapped_pages, c.faults);
	}
	CHECK(!madvise(buf, len, MADV_DONTNEED), "madvise");
	for (i = 0; i < 16; i++) {
		CHECK_ERR(mr_counters(fd, h[i], &c), 0);
		CHECK(c.invalidations == np && c.invalidations_handled == 1,
		      "MR %d: invalidations %llu handled %llu, want %zu/1", i,
		      c.invalidations, c.invalidations_handled, np);
	}
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

static int t_exit_live_mrs(void)
{
	long long m0 = hmm_debugfs_stat("mirrors"), r0 = hmm_debugfs_stat("mrs");
	long long m1 = -1, r1 = -1, b1;
	int ret = T_PASS, status, i;
	pid_t pid;

	if (m0 < 0)
		SKIP("no %s", HMM_DEBUGFS_STATS);
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		uint8_t *buf = map_anon(64 * PAGE), dst[256];
		int fd = dev_open(), fd2 = dev_open();
		uint64_t h;

		if (!buf || fd < 0 || fd2 < 0)
			_exit(2);
		memset(buf, 3, 64 * PAGE);
		if (mr_create(fd, 0, IB_HMM_TEST_IMPLICIT_LENGTH, ACC_ALL, &h) ||
		    mr_read(fd, h, U(buf), sizeof(dst), dst) ||
		    mr_create(fd, U(buf), 64 * PAGE, ACC_ALL, &h) ||
		    mr_prefetch(fd, h, U(buf), 64 * PAGE,
				IB_HMM_TEST_PREFETCH_ASYNC) ||
		    mr_create(fd2, U(buf), 64 * PAGE, ACC_ALL, &h) ||
		    mr_write(fd2, h, U(buf), sizeof(dst), dst))
			_exit(3);
		_exit(0);	/* no close, no destroy */
	}
	CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "child failed (status %#x)", status);
	/* The files are released at exit; allow the release to finish. */
	for (i = 0; i < 200; i++) {
		m1 = hmm_debugfs_stat("mirrors");
		r1 = hmm_debugfs_stat("mrs");
		if (m1 == m0 && r1 == r0)
			break;
		usleep(10000);
	}
	CHECK(m1 == m0 && r1 == r0, "mirrors %lld -> %lld, mrs %lld -> %lld",
	      m0, m1, r0, r1);
	b1 = hmm_debugfs_stat("table_bytes");
	CHECK(m0 != 0 || b1 == 0, "table_bytes %lld with no mirror", b1);
out:
	return ret;
}

struct reader_arg {
	int fd;
	uint64_t h;
	uint8_t *base;		/* start of this reader's granule */
	const uint8_t *ref;	/* expected bytes of that granule */
	volatile int *stop;
	long reads;
	long bad;
	long busy;
	int err;
};

static void *reader_fn(void *p)
{
	struct reader_arg *a = p;
	uint8_t *dst = malloc(64 * 1024);
	unsigned int seed = (unsigned int)(uintptr_t)a->base;

	while (dst && !*a->stop) {
		size_t off = rand_r(&seed) % (HUGE_2M - 1);
		size_t n = 1 + rand_r(&seed) % (64 * 1024);
		int e;

		if (off + n > HUGE_2M)
			n = HUGE_2M - off;
		e = mr_read(a->fd, a->h, U(a->base) + off, n, dst);
		/*
		 * EBUSY: the fault kept colliding with invalidations for
		 * HMM_RANGE_DEFAULT_TIMEOUT; transient (a NIC would RNR-retry).
		 */
		if (e == EBUSY) {
			a->busy++;
			continue;
		}
		if (e) {
			a->err = e;
			break;
		}
		if (memcmp(dst, a->ref + off, n))
			a->bad++;
		a->reads++;
	}
	free(dst);
	return NULL;
}

static int t_concurrent_dontneed(void)
{
	size_t len = 2 * HUGE_2M;
	struct ib_hmm_test_counters c0, c1;
	struct reader_arg ra[2];
	pthread_t th[2];
	volatile int stop = 0;
	uint8_t *buf = MAP_FAILED, *ref = NULL, *p;
	int fd = -1, mfd = -1, ret = T_PASS, i, started = 0;
	struct timespec t0, t;
	long zaps = 0;
	uint64_t h;

	fd = dev_open();
	mfd = memfd_create("ib_hmm_mock_conc", MFD_CLOEXEC);
	ref = malloc(len);
	CHECK(fd >= 0 && mfd >= 0 && ref && !ftruncate(mfd, len), "setup");
	/* Shared file pages: DONTNEED drops PTEs, the data stays. */
	p = map_aligned(len, HUGE_2M);
	CHECK(p, "mmap failed");
	buf = mmap(p, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, mfd,
		   0);
	CHECK(buf == p, "mmap memfd failed");
	fill_pattern(ref, len, 21);
	memcpy(buf, ref, len);
	CHECK_ERR(mr_create(fd, U(buf), len, ACC_ALL, &h), 0);
	CHECK_ERR(mr_counters(fd, h, &c0), 0);
	for (i = 0; i < 2; i++) {
		ra[i] = (struct reader_arg){
			.fd = fd, .h = h, .base = buf + i * HUGE_2M,
			.ref = ref + i * HUGE_2M, .stop = &stop,
		};
		CHECK(!pthread_create(&th[i], NULL, reader_fn, &ra[i]),
		      "pthread_create");
		started++;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		madvise(buf, len, MADV_DONTNEED);
		madvise(buf + HUGE_2M - 3 * PAGE, 6 * PAGE, MADV_DONTNEED);
		zaps += 2;
		sched_yield();
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (t.tv_sec - t0.tv_sec < 3);
out:
	stop = 1;
	for (i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	if (ret == T_PASS) {
		if (mr_counters(fd, h, &c1)) {
			set_reason("counters");
			ret = T_FAIL;
		} else if (ra[0].err || ra[1].err) {
			set_reason("reader error %s / %s", strerror(ra[0].err),
				   strerror(ra[1].err));
			ret = T_FAIL;
		} else if (ra[0].bad || ra[1].bad) {
			set_reason("%ld + %ld reads saw wrong bytes", ra[0].bad,
				   ra[1].bad);
			ret = T_FAIL;
		} else if (!ra[0].reads || !ra[1].reads ||
			   c1.invalidations == c0.invalidations) {
			set_reason("no overlap: reads %ld/%ld invalidations %llu",
				   ra[0].reads, ra[1].reads,
				   c1.invalidations - c0.invalidations);
			ret = T_FAIL;
		} else if (verbose) {
			printf("  reads %ld + %ld (EBUSY %ld + %ld), %ld zaps, %llu pages invalidated\n",
			       ra[0].reads, ra[1].reads, ra[0].busy, ra[1].busy,
			       zaps, c1.invalidations - c0.invalidations);
		}
	}
	if (buf != MAP_FAILED)
		munmap(buf, len);
	if (mfd >= 0)
		close(mfd);
	if (fd >= 0)
		close(fd);
	return ret;
}

static const struct tcase cases[] = {
	{ "write_then_cpu_sees", t_write_cpu_sees },
	{ "cpu_write_then_read", t_cpu_write_read },
	{ "untouched_read_zeros", t_untouched_read },
	{ "munmap_mmap_same_address", t_munmap_remap },
	{ "madv_dontneed", t_madv_dontneed },
	{ "mprotect_readonly", t_mprotect_ro },
	{ "prot_none", t_prot_none },
	{ "implicit_unmapped", t_implicit_unmapped },
	{ "fork_cow", t_fork_cow },
	{ "mremap_move", t_mremap_move },
	{ "thp_and_split", t_thp },
	{ "hugetlb", t_hugetlb },
	{ "memfd_shared", t_memfd_shared },
	{ "prefetch_sync", t_prefetch_sync },
	{ "prefetch_async", t_prefetch_async },
	{ "prefetch_no_fault", t_prefetch_no_fault },
	{ "overflow", t_overflow },
	{ "access_and_atomics", t_access_atomics },
	{ "table_bytes_big_mr", t_table_big_mr },
	{ "table_bytes_per_page", t_table_per_page },
	{ "table_root_grows", t_table_root_grows },
	{ "shared_table_16_mrs", t_shared_table },
	{ "exit_with_live_mrs", t_exit_live_mrs },
	{ "concurrent_readers_dontneed", t_concurrent_dontneed },
};

int main(int argc, char **argv)
{
	return mock_main(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
