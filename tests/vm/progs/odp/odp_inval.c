// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * hmmv_odp_test: invalidation tests. The target's memory changes under a live MR (remap,
 * MADV_DONTNEED, mprotect, fork, mremap, THP splits, hugetlb, shared files, process exit,
 * several processes) and the device must follow: new pages get the data, old pages never do,
 * what is not mapped (or not writable) ends in an error completion.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "odp.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

static int map_fixed_anon(void *at, size_t len)
{
	void *p = mmap(at, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
		       -1, 0);

	if (p != at)
		return tfail("mmap at %p: %s", at, p == MAP_FAILED ? strerror(errno) : "placed elsewhere");
	return 0;
}

/*
 * munmap + mmap of the same address. memfd1 is mapped at X and written through the MR; then
 * memfd2 is mapped over it (MAP_FIXED) and written again: through separate views, memfd1 must
 * keep exactly the first message and memfd2 hold exactly the second. Then X is unmapped (a
 * write there is a remote access error) and anonymous memory is mapped there: the next write
 * lands in it, and neither memfd changes.
 */
static int t_remap(struct env *e, const struct tcase *tc)
{
	const size_t len = 16 * PAGE, off = 1001, msg = 3 * PAGE + 77;
	int fd1 = memfd_create("hmmv-odp-1", 0), fd2 = memfd_create("hmmv-odp-2", 0);
	uint8_t *x, *v1, *v2;
	struct ibv_mr *mr;
	struct lbuf l;

	(void)tc;
	if (fd1 < 0 || fd2 < 0 || ftruncate(fd1, len) || ftruncate(fd2, len))
		return tfail("memfd: %s", strerror(errno));
	x = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd1, 0);
	v1 = mmap(NULL, len, PROT_READ, MAP_SHARED, fd1, 0);
	v2 = mmap(NULL, len, PROT_READ, MAP_SHARED, fd2, 0);
	if (x == MAP_FAILED || v1 == MAP_FAILED || v2 == MAP_FAILED)
		return tfail("mmap of the memfds: %s", strerror(errno));
	mr = mr_get(e, e->kind, x, len, ACC_ALL);
	if (!mr)
		return tfail("registration: %s", strerror(errno));
	if (lbuf_get(e, &l, msg, K_PINNED))
		return T_FAIL;

	fill(l.p, msg, 1);
	if (expect_ok(wr(e, &l, 0, msg, x + off, mr->rkey), "write into memfd1") ||
	    check_region("memfd1 after the first write", v1, len, off, msg, 1, 0))
		return T_FAIL;

	if (mmap(x, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd2, 0) != x)
		return tfail("mmap of memfd2 over memfd1: %s", strerror(errno));
	memset(l.p, 0xa5, msg);
	if (expect_ok(rd(e, &l, 0, msg, x + off, mr->rkey), "read after the remap") ||
	    check_zero("read after the remap (memfd2 is empty; nonzero = memfd1's stale pages)", l.p, msg))
		return T_FAIL;
	fill(l.p, msg, 2);
	if (expect_ok(wr(e, &l, 0, msg, x + off, mr->rkey), "write after the remap") ||
	    check_region("memfd2 after the second write", v2, len, off, msg, 2, 0) ||
	    check_region("memfd1 after the second write (must still hold the first)", v1, len, off, msg, 1, 0))
		return T_FAIL;

	if (munmap(x, len))
		return tfail("munmap: %s", strerror(errno));
	fill(l.p, msg, 3);
	if (e->kind != K_PINNED) {
		if (expect_err(wr(e, &l, 0, msg, x + off, mr->rkey), IBV_WC_REM_ACCESS_ERR,
			       "write into the unmapped range") ||
		    pair_reset(e, &e->rc))
			return T_FAIL;
	}
	if (map_fixed_anon(x, len))
		return T_FAIL;
	if (e->kind != K_PINNED) {
		if (expect_ok(wr(e, &l, 0, msg, x + off, mr->rkey), "write into the new anonymous memory") ||
		    check_region("the new anonymous memory", x, len, off, msg, 3, 0))
			return T_FAIL;
	}
	if (check_region("memfd1 at the end", v1, len, off, msg, 1, 0) ||
	    check_region("memfd2 at the end", v2, len, off, msg, 2, 0))
		return T_FAIL;
	return T_PASS;
}

/*
 * MADV_DONTNEED between transfers: the next RDMA read returns zeros, memory reads zero, the
 * next write lands; a DONTNEED of one page inside a message zeroes exactly that page.
 */
static int t_dontneed(struct env *e, const struct tcase *tc)
{
	const size_t len = 16 * PAGE, off = 17, msg = 5 * PAGE + 3;
	struct ibv_mr *mr;
	struct lbuf l;
	uint8_t *t = map_anon(len);

	(void)tc;
	if (!t)
		return tfail("mmap: %s", strerror(errno));
	madvise(t, len, MADV_NOHUGEPAGE);
	mr = mr_get(e, e->kind, t, len, ACC_ALL);
	if (!mr)
		return tfail("registration: %s", strerror(errno));
	if (lbuf_get(e, &l, msg, K_PINNED))
		return T_FAIL;
	for (int round = 0; round < 3; round++) {
		fill(l.p, msg, 10 + round);
		if (expect_ok(wr(e, &l, 0, msg, t + off, mr->rkey), "write") ||
		    check_region("write", t, len, off, msg, 10 + round, 0))
			return T_FAIL;
		if (madvise(t, len, MADV_DONTNEED))
			return tfail("madvise(MADV_DONTNEED): %s", strerror(errno));
		memset(l.p, 0xa5, msg);
		if (expect_ok(rd(e, &l, 0, msg, t + off, mr->rkey), "read after MADV_DONTNEED") ||
		    check_zero("read after MADV_DONTNEED (nonzero = the device kept the old pages)", l.p, msg) ||
		    check_zero("memory after MADV_DONTNEED", t, len))
			return T_FAIL;
	}
	/* One page in the middle of the message. */
	fill(l.p, msg, 20);
	if (expect_ok(wr(e, &l, 0, msg, t + off, mr->rkey), "write") ||
	    madvise(t + 2 * PAGE, PAGE, MADV_DONTNEED))
		return T_FAIL;
	memset(l.p, 0xa5, msg);
	if (expect_ok(rd(e, &l, 0, msg, t + off, mr->rkey), "read after a one-page MADV_DONTNEED"))
		return T_FAIL;
	for (size_t i = 0; i < msg; i++) {
		size_t a = off + i;
		uint8_t want = a >= 2 * PAGE && a < 3 * PAGE ? 0 : pattern(i, 20);

		if (l.p[i] != want)
			return tfail("read after a one-page MADV_DONTNEED: byte %zu (page %zu) is 0x%02x, want 0x%02x",
				     i, a / PAGE, l.p[i], want);
		if (t[a] != want)
			return tfail("memory after a one-page MADV_DONTNEED: byte %zu is 0x%02x, want 0x%02x",
				     a, t[a], want);
	}
	return T_PASS;
}

/*
 * mprotect: read-only memory can be read but a remote write is a remote access error that
 * leaves the data alone; PROT_NONE refuses reads too; PROT_WRITE back (and the QPs reset) and
 * writes work again.
 */
static int t_mprotect(struct env *e, const struct tcase *tc)
{
	const size_t len = 8 * PAGE, off = 9, msg = 3 * PAGE + 5;
	struct ibv_mr *mr;
	struct lbuf l;
	uint8_t *t = map_anon(len);

	(void)tc;
	if (!t)
		return tfail("mmap: %s", strerror(errno));
	mr = mr_get(e, e->kind, t, len, ACC_ALL);
	if (!mr)
		return tfail("registration: %s", strerror(errno));
	if (lbuf_get(e, &l, msg, K_PINNED))
		return T_FAIL;
	fill(l.p, msg, 1);
	if (expect_ok(wr(e, &l, 0, msg, t + off, mr->rkey), "write") ||
	    check_region("write", t, len, off, msg, 1, 0))
		return T_FAIL;

	if (mprotect(t, len, PROT_READ))
		return tfail("mprotect(PROT_READ): %s", strerror(errno));
	memset(l.p, 0, msg);
	if (expect_ok(rd(e, &l, 0, msg, t + off, mr->rkey), "read of read-only memory") ||
	    check_region("read of read-only memory", l.p, msg, 0, msg, 1, 0))
		return T_FAIL;
	fill(l.p, msg, 2);
	if (expect_err(wr(e, &l, 0, msg, t + off, mr->rkey), IBV_WC_REM_ACCESS_ERR,
		       "write into read-only memory") ||
	    check_region("read-only memory after the refused write", t, len, off, msg, 1, 0) ||
	    pair_reset(e, &e->rc))
		return T_FAIL;

	if (mprotect(t, len, PROT_NONE))
		return tfail("mprotect(PROT_NONE): %s", strerror(errno));
	if (expect_err(rd(e, &l, 0, msg, t + off, mr->rkey), IBV_WC_REM_ACCESS_ERR,
		       "read of PROT_NONE memory") ||
	    pair_reset(e, &e->rc))
		return T_FAIL;

	if (mprotect(t, len, PROT_READ | PROT_WRITE))
		return tfail("mprotect(PROT_READ|PROT_WRITE): %s", strerror(errno));
	fill(l.p, msg, 3);
	if (expect_ok(wr(e, &l, 0, msg, t + off, mr->rkey), "write after PROT_WRITE is back") ||
	    check_region("write after PROT_WRITE is back", t, len, off, msg, 3, 0))
		return T_FAIL;
	return T_PASS;
}

/*
 * fork: a child's copy-on-write copy is the child's; the parent's MR keeps seeing the parent's
 * memory, also after the parent's own write breaks COW into new pages while the child still
 * shares the old ones (which must never see the device's later writes).
 */
static int t_fork(struct env *e, const struct tcase *tc)
{
	const size_t len = 4 * PAGE, off = 7, msg = 2 * PAGE + 11;
	int p2c[2], c2p[2];
	struct ibv_mr *mr;
	struct lbuf l;
	uint8_t *t = map_anon(len), go = 1;
	pid_t pid;

	(void)tc;
	if (!t || pipe(p2c) || pipe(c2p))
		return tfail("mmap/pipe: %s", strerror(errno));
	madvise(t, len, MADV_NOHUGEPAGE);
	mr = mr_get(e, e->kind, t, len, ACC_ALL);
	if (!mr)
		return tfail("registration: %s", strerror(errno));
	if (lbuf_get(e, &l, msg, K_PINNED))
		return T_FAIL;
	fill(t + off, msg, 1);
	if (expect_ok(rd(e, &l, 0, msg, t + off, mr->rkey), "read before fork") ||
	    check_pattern("read before fork", l.p, msg, 1))
		return T_FAIL;

	/* Child 1 writes its copy and exits. */
	pid = fork();
	if (pid == 0) {
		fill(t + off, msg, 2);
		_exit(check_pattern("child 1's copy", t + off, msg, 2) ? 1 : 0);
	}
	if (pid < 0 || child_wait(pid, "child 1 (writes its copy)"))
		return T_FAIL;
	if (expect_ok(rd(e, &l, 0, msg, t + off, mr->rkey), "read after child 1") ||
	    check_pattern("read after child 1 wrote its copy (must be the parent's data)", l.p, msg, 1))
		return T_FAIL;
	fill(t + off, msg, 3);
	if (expect_ok(rd(e, &l, 0, msg, t + off, mr->rkey), "read after the parent's write") ||
	    check_pattern("read after the parent's CPU write", l.p, msg, 3))
		return T_FAIL;

	/* Child 2 keeps sharing while the parent breaks COW. */
	pid = fork();
	if (pid == 0) {
		if (read(p2c[0], &go, 1) != 1)
			_exit(2);
		_exit(check_pattern("child 2's copy", t + off, msg, 3) ? 1 : 0);
	}
	if (pid < 0)
		return tfail("fork: %s", strerror(errno));
	fill(t + off, msg, 4);
	if (expect_ok(rd(e, &l, 0, msg, t + off, mr->rkey), "read after COW was broken") ||
	    check_pattern("read after the parent broke COW (must be the parent's new pages)", l.p, msg, 4))
		return T_FAIL;
	fill(l.p, msg, 5);
	if (expect_ok(wr(e, &l, 0, msg, t + off, mr->rkey), "write after COW was broken") ||
	    check_region("the parent's memory after the write", t, len, off, msg, 5, 0))
		return T_FAIL;
	if (write(p2c[1], &go, 1) != 1 ||
	    child_wait(pid, "child 2 (its copy must keep the pre-fork data: the device wrote into the old pages?)"))
		return T_FAIL;
	memset(l.p, 0, msg);
	if (expect_ok(rd(e, &l, 0, msg, t + off, mr->rkey), "read at the end") ||
	    check_pattern("read at the end", l.p, msg, 5))
		return T_FAIL;
	return T_PASS;
}

/*
 * mremap moving a buffer. Implicit MR: the data is found at the new address, the old one is a
 * remote access error. Explicit MR over the old range: access is a remote access error until
 * something is mapped there again, and then it is that new memory that is used.
 */
static int t_mremap(struct env *e, const struct tcase *tc)
{
	const size_t len = 8 * PAGE, off = 100, msg = 5 * PAGE + 1;
	struct ibv_mr *mr;
	struct lbuf l;
	uint8_t *t = map_anon(len), *dst;

	(void)tc;
	if (!t)
		return tfail("mmap: %s", strerror(errno));
	madvise(t, len, MADV_NOHUGEPAGE);
	mr = mr_get(e, e->kind, t, len, ACC_ALL);
	if (!mr)
		return tfail("registration: %s", strerror(errno));
	if (lbuf_get(e, &l, msg, K_PINNED))
		return T_FAIL;
	fill(t + off, msg, 1);
	if (expect_ok(rd(e, &l, 0, msg, t + off, mr->rkey), "read before mremap") ||
	    check_pattern("read before mremap", l.p, msg, 1))
		return T_FAIL;
	/* Reserved last, so that no other buffer of the test sits where the target moves. */
	dst = reserve_va(len);
	if (!dst)
		return tfail("mmap: %s", strerror(errno));
	if (mremap(t, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, dst) != dst)
		return tfail("mremap: %s", strerror(errno));
	if (check_region("moved memory (CPU) right after mremap", dst, len, off, msg, 1, 0))
		return T_FAIL;

	if (e->kind == K_IMPLICIT) {
		memset(l.p, 0, msg);
		if (expect_ok(rd(e, &l, 0, msg, dst + off, mr->rkey), "read at the new address") ||
		    check_pattern("read at the new address", l.p, msg, 1))
			return T_FAIL;
		fill(l.p, msg, 2);
		if (expect_ok(wr(e, &l, 0, msg, dst + off, mr->rkey), "write at the new address") ||
		    check_region("memory at the new address", dst, len, off, msg, 2, 0))
			return T_FAIL;
	}
	if (expect_err(rd(e, &l, 0, msg, t + off, mr->rkey), IBV_WC_REM_ACCESS_ERR,
		       "read at the old (now unmapped) address") ||
	    pair_reset(e, &e->rc))
		return T_FAIL;
	if (check_region("moved memory after the refused read", dst, len, off, msg,
			 e->kind == K_IMPLICIT ? 2 : 1, 0))
		return T_FAIL;
	fill(l.p, msg, 3);
	if (expect_err(wr(e, &l, 0, msg, t + off, mr->rkey), IBV_WC_REM_ACCESS_ERR,
		       "write at the old (now unmapped) address") ||
	    pair_reset(e, &e->rc))
		return T_FAIL;
	if (check_region("moved memory after the refused write", dst, len, off, msg,
			 e->kind == K_IMPLICIT ? 2 : 1, 0))
		return T_FAIL;
	/* New memory at the old address: the explicit MR now uses it. */
	if (map_fixed_anon(t, len))
		return T_FAIL;
	if (expect_ok(wr(e, &l, 0, msg, t + off, mr->rkey), "write into new memory at the old address") ||
	    check_region("new memory at the old address", t, len, off, msg, 3, 0) ||
	    check_region("moved memory at the end", dst, len, off, msg, e->kind == K_IMPLICIT ? 2 : 1, 0))
		return T_FAIL;
	return T_PASS;
}

/* kB of AnonHugePages in the smaps entry that contains @addr (-1 if unknown). */
static long anon_huge_kb(const void *addr)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[256];
	bool in = false;
	long kb = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			in = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
			continue;
		}
		if (in && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
			break;
	}
	fclose(f);
	return kb;
}

static int thp_enable(void)
{
	char mode[128] = "";
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");

	if (!f)
		return tskip("no transparent huge pages in this kernel (no /sys/kernel/mm/transparent_hugepage)");
	if (!fgets(mode, sizeof(mode), f))
		mode[0] = 0;
	fclose(f);
	if (strstr(mode, "[never]")) {
		f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "w");
		if (!f || fputs("madvise", f) < 0 || fclose(f))
			return tskip("transparent huge pages are disabled and cannot be enabled");
	}
	return 0;
}

/*
 * THP: a 2 MiB-aligned buffer with MADV_HUGEPAGE; transfers across the huge page boundary are
 * correct; then (tc->size) a huge page is split by munmap of one page or mprotect of a part,
 * and transfers around the split stay correct while the hole / read-only part refuses.
 */
static int t_thp(struct env *e, const struct tcase *tc)
{
	const size_t huge = 2 * MIB, len = 2 * huge;
	const size_t woff = huge - 2049, wmsg = huge + 1027, roff = 513, rmsg = 3 * MIB + 5;
	struct ibv_mr *mr;
	struct lbuf l;
	uint8_t *t;
	int rc = thp_enable();

	if (rc)
		return rc;
	t = map_aligned(len, huge);
	if (!t)
		return tfail("mmap: %s", strerror(errno));
	if (madvise(t, len, MADV_HUGEPAGE))
		return tskip("madvise(MADV_HUGEPAGE): %s", strerror(errno));
	mr = mr_get(e, e->kind, t, len, ACC_ALL);
	if (!mr)
		return tfail("registration: %s", strerror(errno));
	if (lbuf_get(e, &l, rmsg, K_PINNED))
		return T_FAIL;

	fill(l.p, wmsg, 1);
	if (expect_ok(wr(e, &l, 0, wmsg, t + woff, mr->rkey), "write across the huge page boundary") ||
	    check_region("write across the huge page boundary", t, len, woff, wmsg, 1, 0))
		return T_FAIL;
	fill(t, len, 2);
	tnote("AnonHugePages of the buffer: %ld kB", anon_huge_kb(t));
	if (expect_ok(rd(e, &l, 0, rmsg, t + roff, mr->rkey), "read of huge pages") ||
	    check_slice("read of huge pages", l.p, rmsg, roff, 2))
		return T_FAIL;

	if (tc->size == 1) {
		/* Split the first huge page: unmap one 4 KiB page at 1 MiB. */
		uint8_t *hole = t + MIB;

		if (munmap(hole, PAGE))
			return tfail("munmap of one page of a huge page: %s", strerror(errno));
		memset(l.p, 0, rmsg);
		if (expect_ok(rd(e, &l, 0, MIB - 3, t + 3, mr->rkey), "read before the hole") ||
		    check_slice("read before the hole", l.p, MIB - 3, 3, 2) ||
		    expect_ok(rd(e, &l, 0, 2 * MIB, hole + PAGE, mr->rkey), "read after the hole") ||
		    check_slice("read after the hole", l.p, 2 * MIB, MIB + PAGE, 2))
			return T_FAIL;
		if (expect_err(rd(e, &l, 0, 3 * PAGE, hole - PAGE, mr->rkey), IBV_WC_REM_ACCESS_ERR,
			       "read across the hole") ||
		    pair_reset(e, &e->rc))
			return T_FAIL;
		fill(l.p, huge, 3);
		if (expect_ok(wr(e, &l, 0, huge, hole + PAGE + 5, mr->rkey), "write after the hole") ||
		    check_slice("memory before the hole", t, MIB, 0, 2) ||
		    check_pattern("write after the hole", hole + PAGE + 5, huge, 3) ||
		    check_slice("memory after the write", hole + PAGE + 5 + huge,
				len - (MIB + PAGE + 5 + huge), MIB + PAGE + 5 + huge, 2))
			return T_FAIL;
	} else if (tc->size == 2) {
		/* Split by mprotect of 64 KiB at 1 MiB. */
		uint8_t *ro = t + MIB;
		const size_t rolen = 64 * 1024;

		if (mprotect(ro, rolen, PROT_READ))
			return tfail("mprotect of part of a huge page: %s", strerror(errno));
		fill(l.p, 8193, 4);
		if (expect_ok(wr(e, &l, 0, 8193, t + MIB / 2, mr->rkey), "write beside the read-only part") ||
		    check_pattern("write beside the read-only part", t + MIB / 2, 8193, 4) ||
		    check_slice("memory after that write", t + MIB / 2 + 8193, MIB / 2 - 8193, MIB / 2 + 8193, 2))
			return T_FAIL;
		if (expect_err(wr(e, &l, 0, 8193, ro + 77, mr->rkey), IBV_WC_REM_ACCESS_ERR,
			       "write into the read-only part") ||
		    check_slice("the read-only part after the refused write", ro, rolen, MIB, 2) ||
		    pair_reset(e, &e->rc))
			return T_FAIL;
		memset(l.p, 0, rolen + 2);
		if (expect_ok(rd(e, &l, 0, rolen + 2, ro - 1, mr->rkey), "read of the read-only part") ||
		    check_slice("read of the read-only part", l.p, rolen + 2, MIB - 1, 2))
			return T_FAIL;
		if (mprotect(ro, rolen, PROT_READ | PROT_WRITE))
			return tfail("mprotect back: %s", strerror(errno));
		fill(l.p, huge, 5);
		if (expect_ok(wr(e, &l, 0, huge, ro - 3, mr->rkey), "write across the former read-only part") ||
		    check_pattern("write across the former read-only part", ro - 3, huge, 5))
			return T_FAIL;
	}
	return T_PASS;
}

/* hugetlb pages (8 reserved for the test): transfers across the boundary of two. */
static int t_hugetlb(struct env *e, const struct tcase *tc)
{
	const size_t huge = 2 * MIB, len = 2 * huge;
	const size_t woff = huge - 2049, wmsg = huge + 1027, roff = 513, rmsg = 3 * MIB + 5;
	struct ibv_mr *mr;
	struct lbuf l;
	long before = -1;
	uint8_t *t;
	FILE *f;
	int rc = T_FAIL;

	(void)tc;
	f = fopen("/proc/sys/vm/nr_hugepages", "r");
	if (f) {
		if (fscanf(f, "%ld", &before) != 1)
			before = -1;
		fclose(f);
	}
	if (before >= 0 && before < 8) {
		f = fopen("/proc/sys/vm/nr_hugepages", "w");
		if (f) {
			fprintf(f, "8\n");
			fclose(f);
		}
	}
	t = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	if (t == MAP_FAILED) {
		rc = tskip("no hugetlb pages (mmap MAP_HUGETLB of 4 MiB: %s)", strerror(errno));
		goto restore;
	}
	mr = mr_get(e, e->kind, t, len, ACC_ALL);
	if (!mr) {
		rc = tfail("registration of hugetlb memory: %s", strerror(errno));
		goto restore;
	}
	if (lbuf_get(e, &l, rmsg, K_PINNED))
		goto restore;
	fill(l.p, wmsg, 1);
	if (expect_ok(wr(e, &l, 0, wmsg, t + woff, mr->rkey), "write across two hugetlb pages") ||
	    check_region("write across two hugetlb pages", t, len, woff, wmsg, 1, 0))
		goto restore;
	fill(t, len, 2);
	if (expect_ok(rd(e, &l, 0, rmsg, t + roff, mr->rkey), "read of hugetlb pages") ||
	    check_slice("read of hugetlb pages", l.p, rmsg, roff, 2))
		goto restore;
	lbuf_put(e, &l);
	mr_put(e, mr);
	munmap(t, len);
	rc = T_PASS;
restore:
	if (before >= 0 && before < 8) {
		f = fopen("/proc/sys/vm/nr_hugepages", "w");
		if (f) {
			fprintf(f, "%ld\n", before);
			fclose(f);
		}
	}
	return rc;
}

/* A file-backed MAP_SHARED mapping (memfd, or a file in /tmp): writes reach the file. */
static int t_shared_file(struct env *e, const struct tcase *tc)
{
	const size_t len = 16 * PAGE, off = 11, msg = 3 * PAGE + 7, poff = 20001, pmsg = 9000;
	char path[] = "/tmp/hmmv-odp-XXXXXX";
	struct ibv_mr *mr;
	struct lbuf l;
	uint8_t *t, *file;
	int fd;

	if (tc->size) {
		fd = mkstemp(path);
		if (fd >= 0)
			unlink(path);
	} else {
		fd = memfd_create("hmmv-odp", 0);
	}
	if (fd < 0 || ftruncate(fd, len))
		return tfail("%s: %s", tc->size ? "file in /tmp" : "memfd", strerror(errno));
	t = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	file = malloc(len);
	if (t == MAP_FAILED || !file)
		return tfail("mmap: %s", strerror(errno));
	mr = mr_get(e, e->kind, t, len, ACC_ALL);
	if (!mr)
		return tfail("registration: %s", strerror(errno));
	if (lbuf_get(e, &l, msg > pmsg ? msg : pmsg, K_PINNED))
		return T_FAIL;
	fill(l.p, msg, 1);
	if (expect_ok(wr(e, &l, 0, msg, t + off, mr->rkey), "write into the shared mapping"))
		return T_FAIL;
	if (pread(fd, file, len, 0) != (ssize_t)len)
		return tfail("pread: %s", strerror(errno));
	if (check_region("the file after the write (pread)", file, len, off, msg, 1, 0))
		return T_FAIL;
	fill(file, pmsg, 2);
	if (pwrite(fd, file, pmsg, poff) != (ssize_t)pmsg)
		return tfail("pwrite: %s", strerror(errno));
	memset(l.p, 0, pmsg);
	if (expect_ok(rd(e, &l, 0, pmsg, t + poff, mr->rkey), "read after pwrite") ||
	    check_pattern("read after pwrite", l.p, pmsg, 2))
		return T_FAIL;
	close(fd);
	return T_PASS;
}

static int env_write_check(struct env *e, struct ibv_mr *mr, uint8_t *t, size_t len, struct lbuf *l,
			   size_t off, size_t msg, int seed)
{
	fill(l->p, msg, seed);
	if (expect_ok(wr(e, l, 0, msg, t + off, mr->rkey), "write") ||
	    check_region("write", t, len, off, msg, seed, 0))
		return T_FAIL;
	memset(l->p, 0, msg);
	if (expect_ok(rd(e, l, 0, msg, t + off, mr->rkey), "read") ||
	    check_pattern("read", l->p, msg, seed))
		return T_FAIL;
	return 0;
}

/*
 * A child registers, moves data, leaves writes in flight and _exit()s without cleaning up:
 * afterwards nothing of it is left in the device's resources, and the device still works.
 */
static int t_exit_live(struct env *e, const struct tcase *tc)
{
	const size_t len = 4 * MIB, msg = MIB + 3;
	struct ibv_mr *mr;
	struct lbuf l;
	uint8_t *t;
	pid_t pid;

	(void)tc;
	pid = fork();
	if (pid == 0) {
		struct env c;
		struct ibv_send_wr wr, *bad;
		struct ibv_sge sge;

		if (env_open(&c, e->dev, e->kind) != T_PASS)
			_exit(1);
		t = map_anon(len);
		mr = t ? mr_get(&c, c.kind, t, len, ACC_ALL) : NULL;
		if (!mr || lbuf_get(&c, &l, msg, K_PINNED))
			_exit(1);
		if (env_write_check(&c, mr, t, len, &l, 5, msg, 1))
			_exit(1);
		post_recv(&c.rc, t, mr->lkey, len);
		for (int i = 0; i < 8; i++) {
			sge = (struct ibv_sge){ .addr = (uintptr_t)l.p, .length = msg, .lkey = l.mr->lkey };
			wr = (struct ibv_send_wr){ .sg_list = &sge, .num_sge = 1, .opcode = IBV_WR_RDMA_WRITE,
						   .send_flags = IBV_SEND_SIGNALED };
			wr.wr.rdma.remote_addr = (uintptr_t)t + (i % 3) * MIB;
			wr.wr.rdma.rkey = mr->rkey;
			ibv_post_send(c.rc.req, &wr, &bad);
		}
		_exit(0);
	}
	if (pid < 0 || child_wait(pid, "the child that registers and exits"))
		return T_FAIL;
	for (int tries = 0;; tries++) {
		static const char *const res[] = { "mr", "qp", "cq", "pd" };
		int left = 0, c;
		const char *which = "";

		for (int i = 0; i < 4; i++) {
			if (rdma_res_count_pid(res[i], pid, &c))
				return T_FAIL;
			if (c && !left)
				which = res[i];
			left += c;
		}
		if (!left)
			break;
		if (tries == 50)
			return tfail("5 s after the child (pid %d) exited, `rdma resource show` still lists %d of its resources (%s ...)",
				     pid, left, which);
		usleep(100000);
	}
	/* The device still works for us. */
	t = map_anon(len);
	mr = t ? mr_get(e, e->kind, t, len, ACC_ALL) : NULL;
	if (!mr)
		return tfail("registration after the child's exit: %s", strerror(errno));
	if (lbuf_get(e, &l, msg, K_PINNED) || env_write_check(e, mr, t, len, &l, 9, msg, 2))
		return T_FAIL;
	return T_PASS;
}

/* Four processes at once, each with its own MR, writing and checking in a loop. */
static int t_multi(struct env *e, const struct tcase *tc)
{
	const int nproc = 4, iters = 20;
	pid_t pids[4];
	int failed = 0;

	(void)tc;
	for (int p = 0; p < nproc; p++) {
		pids[p] = fork();
		if (pids[p] == 0) {
			const size_t len = 256 * 1024;
			struct env c;
			struct ibv_mr *mr;
			struct lbuf l;
			uint8_t *t;

			if (env_open(&c, e->dev, e->kind) != T_PASS)
				_exit(1);
			t = map_anon(len);
			mr = t ? mr_get(&c, c.kind, t, len, ACC_ALL) : NULL;
			if (!mr || lbuf_get(&c, &l, len, K_PINNED)) {
				tfail("process %d: registration: %s", p, strerror(errno));
				_exit(1);
			}
			for (int i = 0; i < iters; i++) {
				memset(t, 0, len);
				size_t off = (size_t)(i * 7 + p), msg = 8193 + (size_t)(i * 1031 + p * 3);

				if (env_write_check(&c, mr, t, len, &l, off, msg, 100 + p * iters + i)) {
					tfail("process %d iteration %d failed", p, i);
					_exit(1);
				}
				if (i % 3 == 2 && madvise(t, len, MADV_DONTNEED))
					_exit(1);
				if (i % 3 == 2)
					memset(l.p, 0, len);
			}
			env_close(&c);
			_exit(0);
		}
		if (pids[p] < 0)
			return tfail("fork: %s", strerror(errno));
	}
	for (int p = 0; p < nproc; p++) {
		int status;

		if (waitpid(pids[p], &status, 0) != pids[p] || !WIFEXITED(status) || WEXITSTATUS(status))
			failed++;
	}
	if (failed)
		return tfail("%d of %d processes failed", failed, nproc);
	return T_PASS;
}

const struct tcase inval_tests[] = {
	{ "inval-remap-memfd", t_remap, K_ODPS, 0, 0, 0 },
	{ "inval-dontneed", t_dontneed, K_ODPS, 0, 0, 0 },
	{ "inval-mprotect", t_mprotect, K_ODPS, 0, 0, 0 },
	{ "inval-fork-cow", t_fork, K_ALL, 0, 0, 0 },
	{ "inval-mremap", t_mremap, K_ODPS, 0, 0, 0 },
	{ "thp", t_thp, K_ALL, 0, 0, 0 },
	{ "thp-split-munmap", t_thp, K_ODPS, 1, 0, 0 },
	{ "thp-split-mprotect", t_thp, K_ODPS, 2, 0, 0 },
	{ "hugetlb", t_hugetlb, K_ALL, 0, 0, 0 },
	{ "shared-memfd", t_shared_file, K_ALL, 0, 0, 0 },
	{ "shared-tmpfile", t_shared_file, K_ALL, 1, 0, 0 },
	{ "exit-with-live-mr-qp", t_exit_live, K_ALL, 0, 0, 0 },
	{ "multi-process-4", t_multi, K_ODPS, 0, 0, 200 },
	{ 0 }
};
