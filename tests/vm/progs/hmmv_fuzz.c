// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * hmmv_fuzz: random sequences of memory-management calls, ODP MR registrations and RDMA
 * operations on one process's address space, each outcome predicted by a shadow model.
 *
 *   hmmv_fuzz [-d DEV] [-s SEED] [-n MAX_OPS] [-T SECONDS] [-v] [--self-test]
 *
 *   -d DEV       RDMA device (default $HMMV_DEV, else rxe0)
 *   -s SEED      the PRNG seed (default: from the clock); the same seed gives the same
 *                sequence of operations
 *   -n MAX_OPS   stop after this many operations (default: no limit)
 *   -T SECONDS   stop after this long (default 60 without -n, else no limit)
 *   -v           print every operation and its outcome
 *   --self-test  corrupt one byte of the model at the first successful RDMA read after
 *                operation 20: the run must then end in a mismatch (proves the checks bite)
 *
 * One process, an rxe loopback RC pair on one device ("req" issues, "resp" is the target).
 * The arena is a window of NSLOTS slots of SLOT_PAGES pages at a fixed address far from
 * where the kernel places mappings, so nothing but the fuzzer ever maps there. Operations:
 * mmap (anonymous private, or MAP_SHARED views of a few memfds, so that pages can alias),
 * munmap, mprotect, MADV_DONTNEED, mremap, CPU stores, fork (the child checks its copy,
 * writes into it and waits; the parent goes on; the child's private pages must keep their
 * content whatever the device does to the parent's), explicit ODP MRs (byte-granular ranges,
 * some at an iova other than the address, some with reduced access) and the implicit ODP MR
 * (registered and deregistered), RDMA write / read from a pinned buffer or from a buffer
 * reached through the implicit MR, compare&swap / fetch&add, and ADVISE_MR prefetch (read,
 * write, no-fault; synchronous and queued).
 *
 * The model keeps, per window page, what is mapped (a model page: content and a reference
 * count, shared by every view of one memfd page), its protection and whether the mapping is
 * shared; and every MR's range, iova and access. After each operation the affected bytes are
 * compared with the model: RDMA read results, and the CPU view (read through /proc/self/mem,
 * which also tells mapped from unmapped) of every write's target and PAD bytes around it; the
 * whole window every CHECK_EVERY operations. Any difference, an unexpected status or a
 * completion that does not come prints the seed, the operation and the last HIST operations
 * and ends the run with status 1.
 *
 * Where ODP semantics are loose, the model is loose in exactly that place and no wider:
 *  - A write that ends in an error completion may have placed a prefix of its bytes: rxe
 *    writes packet by packet and ib_hmm page by page, and how far it got depends on which
 *    pages the mirror held. Memory up to the first inaccessible page must be the old
 *    content with some prefix of the message stored over it in order (where the range
 *    maps one memfd page twice, later bytes overwrite earlier ones), nothing at or after
 *    that page may change; the model then takes what memory holds.
 *  - A read that ends in an error leaves the requester's buffer undefined over the message:
 *    only the bytes after it are checked.
 *  - A queued prefetch reports nothing and may still run while the next operations change
 *    the mappings; it never changes data, so only the call's return value is predicted.
 *  - Which pages the mirror holds (fault-around, prefetch) is not modelled: it is invisible
 *    in the data. The soak (hmmv_soak) looks at the counters.
 *  - mremap is issued only when its source is one VMA (checked in /proc/self/maps): 6.12
 *    refuses a multi-VMA move after it has already unmapped the destination, later kernels
 *    move it; VMA merging is not part of the model.
 * Nothing runs concurrently: every operation completes before the next starts, and the
 * forked child only runs while the parent waits for it, so every outcome is predictable.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rdma/ib_user_ioctl_verbs.h>

#include "fuzz_common.h"

#define NSLOTS		16
#define SLOT_PAGES	16
#define WIN_PAGES	(NSLOTS * SLOT_PAGES)
#define WIN_LEN		((uint64_t)WIN_PAGES * PAGE)
#define WIN_BASE	0x200000000000ULL	/* 32 TiB: far below the mmap area */
#define NFILES		4
#define FILE_PAGES	SLOT_PAGES
#define MAX_XMRS	6			/* explicit MRs alive at once */
#define IMR		MAX_XMRS		/* index of the implicit MR */
#define MAX_MSG		(16 * PAGE)
#define PAD		64			/* bytes checked on each side of a target */
#define HIST		20
#define CHECK_EVERY	64
#define DESC_LEN	240

enum prot { P_NONE, P_RO, P_RW };
static const int prot_bits[] = { PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE };
static const char *const prot_names[] = { "none", "ro", "rw" };

/* A page of memory as the model knows it: one per anonymous page, one per memfd page. */
struct mpage {
	uint8_t data[PAGE];
	int refs;
};

/* A page of the window. */
struct vpage {
	struct mpage *m;	/* NULL: nothing mapped */
	uint8_t prot;
	bool shared;		/* a MAP_SHARED view of a memfd page */
};

struct xmr {
	struct ibv_mr *mr;	/* NULL: free */
	uint64_t va, len, iova;
	int access;
};

/* The forked child that is still alive (one at a time). */
struct child {
	pid_t pid;
	int go;			/* parent -> child: check and exit */
	int ack;		/* child -> parent: copy checked and written */
	unsigned long op;
};

struct stats {
	unsigned long writes, reads, atomics, prefetches, mm, reg, errors, skipped;
	unsigned long vma_skips, children, checks;
};

struct fuzz {
	struct env e;
	struct rng rng;
	uint64_t seed;
	uint8_t *win;
	struct vpage pg[WIN_PAGES];
	int fd[NFILES];
	struct mpage *fpage[NFILES][FILE_PAGES];
	struct xmr mr[MAX_XMRS + 1];
	uint8_t *lbuf;			/* pinned requester buffer */
	struct ibv_mr *lmr;
	uint8_t *obuf;			/* requester buffer reached through the implicit MR */
	uint8_t *got;			/* scratch */
	int mem;			/* /proc/self/mem */
	bool read_none;			/* it reads PROT_NONE pages */
	struct child child;
	bool in_child;
	unsigned long op;
	struct stats st;
	char hist[HIST][DESC_LEN];
	char cur[DESC_LEN];
	bool self_test, self_test_done;
	unsigned long mismatches;
};

/* --- reporting -------------------------------------------------------------------------------- */

static void desc(struct fuzz *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void desc(struct fuzz *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(f->cur, sizeof(f->cur), fmt, ap);
	va_end(ap);
}

/* Append to the current operation's line (its outcome). */
static void outcome(struct fuzz *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void outcome(struct fuzz *f, const char *fmt, ...)
{
	size_t n = strlen(f->cur);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(f->cur + n, sizeof(f->cur) - n, fmt, ap);
	va_end(ap);
}

static int mismatch(struct fuzz *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int mismatch(struct fuzz *f, const char *fmt, ...)
{
	va_list ap;

	printf("fuzz: MISMATCH%s (seed %" PRIu64 ", op %lu): ", f->in_child ? " in the forked child" : "",
	       f->seed, f->op);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	f->mismatches++;
	return -1;
}

/* The operations up to @last, and how to run exactly the first @n again. */
static void history(struct fuzz *f, unsigned long last, unsigned long n)
{
	unsigned long first = last >= HIST ? last - HIST + 1 : 0;

	printf("fuzz: the last operations (seed %" PRIu64 "):\n", f->seed);
	for (unsigned long i = first; i <= last; i++)
		printf("  #%lu %s\n", i, f->hist[i % HIST]);
	printf("fuzz: reproduce with: hmmv_fuzz -s %" PRIu64 " -n %lu -v\n", f->seed, n);
}

/* A window address as an offset, the way the history prints it. */
static uint64_t wo(struct fuzz *f, uint64_t a)
{
	return a - (uintptr_t)f->win;
}

/* --- the model -------------------------------------------------------------------------------- */

static uint64_t win_addr(struct fuzz *f, size_t page)
{
	return (uintptr_t)f->win + (uint64_t)page * PAGE;
}

static bool in_win(struct fuzz *f, uint64_t a)
{
	return a >= (uintptr_t)f->win && a < (uintptr_t)f->win + WIN_LEN;
}

static struct vpage *vp(struct fuzz *f, uint64_t a)
{
	return &f->pg[(a - (uintptr_t)f->win) / PAGE];
}

static uint8_t *mbyte(struct fuzz *f, uint64_t a)
{
	return &vp(f, a)->m->data[a % PAGE];
}

static struct mpage *mp_new(void)
{
	struct mpage *m = calloc(1, sizeof(*m));

	if (!m) {
		perror("calloc");
		exit(2);
	}
	m->refs = 1;
	return m;
}

static void mp_put(struct mpage *m)
{
	if (m && --m->refs == 0)
		free(m);
}

static void vp_clear(struct fuzz *f, size_t first, size_t n)
{
	for (size_t i = first; i < first + n; i++) {
		mp_put(f->pg[i].m);
		memset(&f->pg[i], 0, sizeof(f->pg[i]));
	}
}

/* The model's content of [a, a + n) (mapped) from @src. */
static void model_store(struct fuzz *f, uint64_t a, const uint8_t *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		*mbyte(f, a + i) = src[i];
}

static void model_load(struct fuzz *f, uint64_t a, uint8_t *dst, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = *mbyte(f, a + i);
}

static bool page_allows(const struct vpage *v, int need)
{
	return v->m && v->prot >= need;
}

/* Bytes from @a until the first page that does not allow @need (P_RO/P_RW), at most @n. */
static uint64_t accessible(struct fuzz *f, uint64_t a, uint64_t n, int need)
{
	uint64_t p = a;

	while (p < a + n) {
		if (!in_win(f, p) || !page_allows(vp(f, p), need))
			return p - a;
		p = (p | (PAGE - 1)) + 1;
	}
	return n;
}

/* A run of mapped pages (allowing @need) from a random place: its first page and length. */
static int pick_run(struct fuzz *f, int need, bool in_slot, size_t *first, size_t *n)
{
	size_t p = rng_below(&f->rng, WIN_PAGES), i, len = 0, lim;

	for (i = 0; i < WIN_PAGES; i++) {
		size_t q = (p + i) % WIN_PAGES;

		if (page_allows(&f->pg[q], need)) {
			p = q;
			break;
		}
	}
	if (i == WIN_PAGES)
		return -1;
	lim = in_slot ? SLOT_PAGES - p % SLOT_PAGES : SLOT_PAGES;
	while (len < lim && p + len < WIN_PAGES && page_allows(&f->pg[p + len], need))
		len++;
	*first = p;
	*n = len;
	return 0;
}

/* --- checks ----------------------------------------------------------------------------------- */

static int report_bytes(struct fuzz *f, const char *what, uint64_t a, const uint8_t *got, size_t n)
{
	size_t first = SIZE_MAX, bad = 0, zeros = 0;

	for (size_t i = 0; i < n; i++) {
		if (got[i] == *mbyte(f, a + i))
			continue;
		if (first == SIZE_MAX)
			first = i;
		bad++;
		zeros += !got[i];
	}
	if (!bad)
		return 0;
	a += first;
	return mismatch(f, "%s: %zu of %zu bytes differ (%zu of them read 0), the first at w+%#" PRIx64
			" (page %" PRIu64 " +%#" PRIx64 ", %s%s): got 0x%02x, want 0x%02x", what, bad, n, zeros,
			wo(f, a), wo(f, a) / PAGE, a % PAGE, prot_names[vp(f, a)->prot],
			vp(f, a)->shared ? " shared" : "", got[first], *mbyte(f, a));
}

/* The CPU view of [a, a + n) against the model (clipped to the window). */
static int check_cpu(struct fuzz *f, uint64_t a, uint64_t n, const char *what)
{
	uint64_t lo = a < (uintptr_t)f->win ? (uintptr_t)f->win : a;
	uint64_t end = a + n > (uintptr_t)f->win + WIN_LEN ? (uintptr_t)f->win + WIN_LEN : a + n;

	f->st.checks++;
	for (uint64_t p = lo; p < end;) {
		uint64_t pend = (p | (PAGE - 1)) + 1, len;
		struct vpage *v = vp(f, p);
		ssize_t r;

		if (pend > end)
			pend = end;
		len = pend - p;
		r = self_mem_read(f->mem, p, f->got, len);
		if (!v->m) {
			if (r > 0)
				return mismatch(f, "%s: w+%#" PRIx64 " is mapped, the model has nothing there",
						what, wo(f, p));
		} else if (v->prot != P_NONE || f->read_none) {
			if (r != (ssize_t)len)
				return mismatch(f, "%s: w+%#" PRIx64 " (%s) cannot be read: the model has it mapped",
						what, wo(f, p), prot_names[v->prot]);
			if (report_bytes(f, what, p, f->got, len))
				return -1;
		}
		p = pend;
	}
	return 0;
}

static int check_window(struct fuzz *f)
{
	return check_cpu(f, (uintptr_t)f->win, WIN_LEN, "window check");
}

/* --- memory operations ------------------------------------------------------------------------ */

/* A page range of a slot: mostly from its start, often to its end. */
static void pick_slot_range(struct fuzz *f, size_t *first, size_t *n)
{
	size_t s = rng_below(&f->rng, NSLOTS);
	size_t lo = rng_chance(&f->rng, 60) ? 0 : rng_below(&f->rng, SLOT_PAGES);
	size_t len = rng_chance(&f->rng, 40) ? SLOT_PAGES - lo : 1 + rng_below(&f->rng, SLOT_PAGES - lo);

	*first = s * SLOT_PAGES + lo;
	*n = len;
}

static int do_mprotect(struct fuzz *f, size_t first, size_t n, int prot)
{
	if (mprotect((void *)win_addr(f, first), n * PAGE, prot_bits[prot]))
		return mismatch(f, "mprotect(w+%#" PRIx64 ", %zu pages, %s): %s (the model has them mapped)",
				wo(f, win_addr(f, first)), n, prot_names[prot], strerror(errno));
	for (size_t i = first; i < first + n; i++)
		f->pg[i].prot = prot;
	return 0;
}

/*
 * mmap (MAP_FIXED) of anonymous memory or of a memfd, half of its pages filled by the CPU,
 * then given its protection.
 */
static int op_mmap(struct fuzz *f)
{
	size_t first, n;
	bool shared;
	int file, foff, prot;
	uint64_t a;
	void *p;

	pick_slot_range(f, &first, &n);
	shared = rng_chance(&f->rng, 30);
	file = (int)rng_below(&f->rng, NFILES);
	foff = (int)rng_below(&f->rng, FILE_PAGES - n + 1);
	prot = rng_chance(&f->rng, 80) ? P_RW : rng_chance(&f->rng, 50) ? P_RO : P_NONE;
	a = win_addr(f, first);
	if (shared)
		desc(f, "mmap w+%#" PRIx64 " %zu pages memfd%d+%d shared %s", wo(f, a), n, file, foff,
		     prot_names[prot]);
	else
		desc(f, "mmap w+%#" PRIx64 " %zu pages anon %s", wo(f, a), n, prot_names[prot]);
	f->st.mm++;
	p = mmap((void *)a, n * PAGE, PROT_READ | PROT_WRITE,
		 MAP_FIXED | (shared ? MAP_SHARED : MAP_PRIVATE | MAP_ANONYMOUS), shared ? f->fd[file] : -1,
		 shared ? (off_t)foff * PAGE : 0);
	if (p != (void *)a)
		return mismatch(f, "mmap: %s", strerror(errno));
	vp_clear(f, first, n);
	for (size_t i = 0; i < n; i++) {
		struct vpage *v = &f->pg[first + i];

		if (shared) {
			v->m = f->fpage[file][foff + i];
			v->m->refs++;
		} else {
			v->m = mp_new();
		}
		v->shared = shared;
		v->prot = P_RW;
		if (rng_chance(&f->rng, 50)) {
			fill_stream(v->m->data, PAGE, rng_next(&f->rng));
			memcpy((void *)(a + i * PAGE), v->m->data, PAGE);
		}
	}
	if (prot != P_RW && do_mprotect(f, first, n, prot))
		return -1;
	return check_cpu(f, a, n * PAGE, "memory after mmap");
}

static int op_munmap(struct fuzz *f)
{
	size_t first, n;
	uint64_t a;

	pick_slot_range(f, &first, &n);
	a = win_addr(f, first);
	desc(f, "munmap w+%#" PRIx64 " %zu pages", wo(f, a), n);
	f->st.mm++;
	if (munmap((void *)a, n * PAGE))
		return mismatch(f, "munmap: %s", strerror(errno));
	vp_clear(f, first, n);
	return check_cpu(f, a - PAGE, (n + 2) * PAGE, "memory after munmap");
}

static int op_mprotect(struct fuzz *f)
{
	size_t first, n;
	int prot;

	if (pick_run(f, P_NONE, false, &first, &n)) {
		desc(f, "mprotect: nothing mapped");
		f->st.skipped++;
		return 0;
	}
	n = 1 + rng_below(&f->rng, n);
	prot = rng_chance(&f->rng, 50) ? P_RW : rng_chance(&f->rng, 50) ? P_RO : P_NONE;
	desc(f, "mprotect w+%#" PRIx64 " %zu pages %s", wo(f, win_addr(f, first)), n, prot_names[prot]);
	f->st.mm++;
	if (do_mprotect(f, first, n, prot))
		return -1;
	return check_cpu(f, win_addr(f, first), n * PAGE, "memory after mprotect");
}

/* MADV_DONTNEED: private pages read zero afterwards, shared ones keep the file's data. */
static int op_dontneed(struct fuzz *f)
{
	size_t first, n;
	uint64_t a;

	if (pick_run(f, P_NONE, false, &first, &n)) {
		desc(f, "madvise(DONTNEED): nothing mapped");
		f->st.skipped++;
		return 0;
	}
	n = 1 + rng_below(&f->rng, n);
	a = win_addr(f, first);
	desc(f, "madvise(DONTNEED) w+%#" PRIx64 " %zu pages", wo(f, a), n);
	f->st.mm++;
	if (madvise((void *)a, n * PAGE, MADV_DONTNEED))
		return mismatch(f, "madvise(MADV_DONTNEED): %s", strerror(errno));
	for (size_t i = first; i < first + n; i++)
		if (!f->pg[i].shared)
			memset(f->pg[i].m->data, 0, PAGE);
	return check_cpu(f, a, n * PAGE, "memory after MADV_DONTNEED");
}

/* Whether [a, a + len) lies inside one VMA (see the head comment about mremap). */
static bool one_vma(uint64_t a, uint64_t len)
{
	FILE *m = fopen("/proc/self/maps", "r");
	char line[512];
	bool one = false;

	if (!m)
		return false;
	while (fgets(line, sizeof(line), m)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx", &lo, &hi) != 2)
			continue;
		if (a >= lo && a < hi) {
			one = a + len <= hi;
			break;
		}
	}
	fclose(m);
	return one;
}

/* mremap of a mapped run of a slot to another slot: the pages (and their data) move. */
static int op_mremap(struct fuzz *f)
{
	size_t first, n, dst;
	uint64_t a, d;
	void *p;

	if (pick_run(f, P_NONE, true, &first, &n)) {
		desc(f, "mremap: nothing mapped");
		f->st.skipped++;
		return 0;
	}
	n = 1 + rng_below(&f->rng, n);
	dst = (first / SLOT_PAGES + 1 + rng_below(&f->rng, NSLOTS - 1)) % NSLOTS * SLOT_PAGES +
	      rng_below(&f->rng, SLOT_PAGES - n + 1);
	a = win_addr(f, first);
	d = win_addr(f, dst);
	desc(f, "mremap w+%#" PRIx64 " %zu pages to w+%#" PRIx64, wo(f, a), n, wo(f, d));
	if (!one_vma(a, n * PAGE)) {
		outcome(f, " -> skipped: the source spans VMAs");
		f->st.vma_skips++;
		return 0;
	}
	f->st.mm++;
	p = mremap((void *)a, n * PAGE, n * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)d);
	if (p != (void *)d)
		return mismatch(f, "mremap: %s", p == MAP_FAILED ? strerror(errno) : "moved elsewhere");
	vp_clear(f, dst, n);
	memcpy(&f->pg[dst], &f->pg[first], n * sizeof(f->pg[0]));
	memset(&f->pg[first], 0, n * sizeof(f->pg[0]));
	if (check_cpu(f, d, n * PAGE, "memory at the mremap destination"))
		return -1;
	return check_cpu(f, a, n * PAGE, "the mremap source");
}

/*
 * CPU stores of @src to [a, a + n), page by page in address order. Two pages of a range can be
 * views of one memfd page, and memcpy() does not store in address order (it writes the head
 * and tail vectors around the bulk): which view's bytes win would depend on it. Within one
 * page there is no aliasing, and the model applies stores in address order too.
 */
static void cpu_store(uint64_t a, const uint8_t *src, size_t n)
{
	for (size_t done = 0, len; done < n; done += len) {
		len = PAGE - (a + done) % PAGE;
		if (len > n - done)
			len = n - done;
		memcpy((void *)(a + done), src + done, len);
	}
}

/* CPU stores into writable memory: the device must see them (e.g. COW from the zero page). */
static int op_cpu_write(struct fuzz *f)
{
	size_t first, n;
	uint64_t a, len;
	uint8_t *buf = f->got;

	if (pick_run(f, P_RW, false, &first, &n)) {
		desc(f, "cpu write: nothing writable");
		f->st.skipped++;
		return 0;
	}
	a = win_addr(f, first) + rng_below(&f->rng, PAGE);
	len = 1 + rng_below(&f->rng, win_addr(f, first + n) - a);
	if (rng_chance(&f->rng, 60) && len > 512)
		len = 1 + len % 512;
	desc(f, "cpu write w+%#" PRIx64 " %" PRIu64 " bytes", wo(f, a), len);
	f->st.mm++;
	fill_stream(buf, len, rng_next(&f->rng));
	cpu_store(a, buf, len);
	model_store(f, a, buf, len);
	return 0;
}

/* --- fork ------------------------------------------------------------------------------------- */

struct cwrite {
	uint64_t a, len, seed;
};

/* The child: its copy must be the parent's memory; it writes, waits, and checks again. */
static void child_main(struct fuzz *f, const struct cwrite *w, int nw)
{
	char c = 0;

	f->in_child = true;
	f->mem = self_mem_open();
	if (f->mem < 0 || check_window(f))
		_exit(1);
	for (int i = 0; i < nw; i++) {
		fill_stream(f->got, w[i].len, w[i].seed);
		cpu_store(w[i].a, f->got, w[i].len);
		model_store(f, w[i].a, f->got, w[i].len);
	}
	if (write(f->child.ack, &c, 1) != 1 || read(f->child.go, &c, 1) != 1)
		_exit(1);
	/* The parent changed what is shared since; what is private is the child's alone. */
	for (size_t i = 0; i < WIN_PAGES; i++) {
		if (!f->pg[i].m || f->pg[i].shared)
			continue;
		if (check_cpu(f, win_addr(f, i), PAGE, "the child's private copy at its end"))
			_exit(1);
	}
	_exit(0);
}

static int reap_child(struct fuzz *f)
{
	int status;
	char c = 0;

	if (!f->child.pid)
		return 0;
	/* EPIPE: the child died already; its status below says how. */
	if (write(f->child.go, &c, 1) != 1 && errno != EPIPE)
		return mismatch(f, "the child forked at op %lu: %s", f->child.op, strerror(errno));
	close(f->child.go);
	if (waitpid(f->child.pid, &status, 0) != f->child.pid)
		return mismatch(f, "waitpid of the child forked at op %lu: %s", f->child.op, strerror(errno));
	f->child.pid = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return mismatch(f, "the child forked at op %lu failed (status 0x%x; its message is above)",
				f->child.op, status);
	return 0;
}

/* fork: a child that writes its copy and lives on; or, with one alive, its end. */
static int op_fork(struct fuzz *f)
{
	struct cwrite w[4];
	int nw = 0, go[2], ack[2];
	char c;
	pid_t pid;

	f->st.mm++;
	if (f->child.pid) {
		desc(f, "end of the child forked at op %lu", f->child.op);
		return reap_child(f);
	}
	for (int i = 1 + (int)rng_below(&f->rng, 4); i > 0; i--) {
		size_t first, n;

		if (pick_run(f, P_RW, false, &first, &n))
			break;
		w[nw].a = win_addr(f, first) + rng_below(&f->rng, PAGE);
		w[nw].len = 1 + rng_below(&f->rng, win_addr(f, first + n) - w[nw].a);
		w[nw].seed = rng_next(&f->rng);
		nw++;
	}
	desc(f, "fork; the child writes %d ranges", nw);
	for (int i = 0; i < nw; i++)
		outcome(f, " w+%#" PRIx64 "/%" PRIu64, wo(f, w[i].a), w[i].len);
	if (pipe(go) || pipe(ack))
		return mismatch(f, "pipe: %s", strerror(errno));
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return mismatch(f, "fork: %s", strerror(errno));
	if (pid == 0) {
		close(go[1]);
		close(ack[0]);
		f->child.go = go[0];
		f->child.ack = ack[1];
		child_main(f, w, nw);
	}
	close(go[0]);
	close(ack[1]);
	f->child = (struct child){ .pid = pid, .go = go[1], .op = f->op };
	f->st.children++;
	if (read(ack[0], &c, 1) != 1) {
		close(ack[0]);
		return reap_child(f) ? -1 : mismatch(f, "the child ended before it wrote");
	}
	close(ack[0]);
	/* Its stores into shared pages are ours too. */
	for (int i = 0; i < nw; i++) {
		fill_stream(f->got, w[i].len, w[i].seed);
		for (uint64_t j = 0; j < w[i].len; j++)
			if (vp(f, w[i].a + j)->shared)
				*mbyte(f, w[i].a + j) = f->got[j];
	}
	for (int i = 0; i < nw; i++)
		if (check_cpu(f, w[i].a, w[i].len, "the parent's memory after the child wrote"))
			return -1;
	return 0;
}

/* --- registrations ---------------------------------------------------------------------------- */

static const char *acc_str(int acc)
{
	static char s[8];

	snprintf(s, sizeof(s), "%c%c%c", acc & IBV_ACCESS_REMOTE_READ ? 'r' : '-',
		 acc & IBV_ACCESS_REMOTE_WRITE ? 'w' : '-', acc & IBV_ACCESS_REMOTE_ATOMIC ? 'a' : '-');
	return s;
}

static int dereg(struct fuzz *f, int i)
{
	int err = ibv_dereg_mr(f->mr[i].mr);

	f->mr[i].mr = NULL;
	if (err)
		return mismatch(f, "ibv_dereg_mr(mr%d): %s", i, strerror(err));
	return 0;
}

static int live_explicit(struct fuzz *f, int *live)
{
	int n = 0;

	for (int i = 0; i < MAX_XMRS; i++)
		if (f->mr[i].mr)
			live[n++] = i;
	return n;
}

/* One MR always stays, so that the RDMA operations have a target. */
static int op_dereg(struct fuzz *f)
{
	int live[MAX_XMRS], n = live_explicit(f, live), i;

	if (!n || (n == 1 && !f->mr[IMR].mr)) {
		desc(f, "dereg: no explicit MR to spare");
		f->st.skipped++;
		return 0;
	}
	i = live[rng_below(&f->rng, n)];
	desc(f, "dereg mr%d", i);
	f->st.reg++;
	return dereg(f, i);
}

/* An explicit ODP MR over a byte range of the window (mapped or not): always accepted. */
static int op_reg(struct fuzz *f)
{
	static const int reduced[] = {
		IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ,
		IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE,
		IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE,
	};
	size_t p = rng_below(&f->rng, WIN_PAGES), np;
	uint64_t off = rng_chance(&f->rng, 30) ? rng_below(&f->rng, PAGE) : 0;
	uint64_t trim = rng_chance(&f->rng, 30) ? rng_below(&f->rng, PAGE) : 0;
	struct xmr *m;
	int i;

	np = 1 + rng_below(&f->rng, (WIN_PAGES - p) < 3 * SLOT_PAGES ? WIN_PAGES - p : 3 * SLOT_PAGES);
	for (i = 0; i < MAX_XMRS && f->mr[i].mr; i++)
		;
	if (i == MAX_XMRS) {
		i = (int)rng_below(&f->rng, MAX_XMRS);
		if (dereg(f, i))
			return -1;
	}
	m = &f->mr[i];
	m->va = win_addr(f, p) + off;
	m->len = np * PAGE - off - trim;
	if (!m->len || np * PAGE <= off + trim)
		m->len = 1;
	m->iova = rng_chance(&f->rng, 70) ? m->va :
		  ((1 + rng_below(&f->rng, 255)) << 32) + (m->va & (PAGE - 1));
	m->access = rng_chance(&f->rng, 75) ? ACC_ALL : reduced[rng_below(&f->rng, 3)];
	desc(f, "reg mr%d w+%#" PRIx64 " len %#" PRIx64 " iova %#" PRIx64 " %s", i, wo(f, m->va), m->len,
	     m->iova, acc_str(m->access));
	f->st.reg++;
	m->mr = ibv_reg_mr_iova2(f->e.pd, (void *)m->va, m->len, m->iova, m->access | IBV_ACCESS_ON_DEMAND);
	if (!m->mr)
		return mismatch(f, "explicit ODP registration refused: %s", strerror(errno));
	return 0;
}

static int reg_implicit(struct fuzz *f)
{
	struct xmr *m = &f->mr[IMR];

	*m = (struct xmr){ .va = 0, .len = UINT64_MAX, .iova = 0, .access = ACC_ALL };
	m->mr = ibv_reg_mr(f->e.pd, NULL, SIZE_MAX, ACC_ALL | IBV_ACCESS_ON_DEMAND);
	if (!m->mr)
		return mismatch(f, "implicit ODP registration refused: %s", strerror(errno));
	return 0;
}

static int op_implicit(struct fuzz *f)
{
	int live[MAX_XMRS];

	if (!f->mr[IMR].mr) {
		desc(f, "reg the implicit MR");
		f->st.reg++;
		return reg_implicit(f);
	}
	if (!live_explicit(f, live)) {
		desc(f, "dereg the implicit MR: it is the only MR");
		f->st.skipped++;
		return 0;
	}
	desc(f, "dereg the implicit MR");
	f->st.reg++;
	return dereg(f, IMR);
}

/* --- RDMA ------------------------------------------------------------------------------------- */

enum xop { X_WRITE, X_READ, X_ATOMIC, X_PREFETCH };
static const int xop_acc[] = {
	IBV_ACCESS_REMOTE_WRITE, IBV_ACCESS_REMOTE_READ, IBV_ACCESS_REMOTE_ATOMIC, 0,
};

/* Where an operation goes and what the model says about it. */
struct target {
	int mi;
	struct xmr *m;
	uint64_t va;		/* the address the iova stands for */
	uint64_t iova, len;
	bool inside;		/* [iova, iova + len) inside the MR */
	bool allowed;		/* the MR's access allows the operation */
	uint64_t ok;		/* bytes from va before the first page that refuses it */
};

static uint64_t draw_len(struct fuzz *f, enum xop op)
{
	uint64_t r = rng_below(&f->rng, 100);

	if (op == X_ATOMIC)
		return 8;
	if (op == X_PREFETCH)
		return 1 + rng_below(&f->rng, 8 * PAGE);
	if (r < 40)
		return 1 + rng_below(&f->rng, 256);
	if (r < 75)
		return 1 + rng_below(&f->rng, 2 * PAGE);
	return 1 + rng_below(&f->rng, MAX_MSG);
}

static void draw_target(struct fuzz *f, struct target *t, enum xop op, int need)
{
	uint64_t base, blen, off, len = draw_len(f, op);
	bool implicit = t->mi == IMR;
	int64_t shift;

	t->m = &f->mr[t->mi];
	base = implicit ? (uintptr_t)f->win : t->m->va;
	blen = implicit ? WIN_LEN : t->m->len;
	off = rng_below(&f->rng, blen);
	if (rng_chance(&f->rng, 30)) {
		/* Just before a page boundary: the access crosses it. */
		uint64_t b = ((base + off) | (PAGE - 1)) + 1;

		off = b - base - (1 + rng_below(&f->rng, len < 64 ? len : 64));
		if (off >= blen)
			off = 0;
	}
	shift = 0;
	if (!implicit && rng_chance(&f->rng, 8))
		shift = -(int64_t)(1 + rng_below(&f->rng, 64));	/* starts before the MR */
	if (op == X_ATOMIC)
		off &= ~7ULL;	/* 8 bytes, crossing the end only where the MR ends unaligned */
	else if (off + len > blen && (implicit || rng_chance(&f->rng, 85)))
		len = blen - off;	/* crossing the MR's end stays rare */
	t->len = len;
	t->va = base + off + shift;
	if (op == X_ATOMIC)
		t->va &= ~7ULL;
	t->iova = implicit ? t->va : t->m->iova + (t->va - t->m->va);
	t->inside = implicit || (t->va >= t->m->va && t->va + len <= t->m->va + t->m->len);
	t->allowed = (t->m->access & xop_acc[op]) == xop_acc[op];
	t->ok = t->inside ? accessible(f, t->va, len, need) : 0;
}

/* A live MR and a range in it; most of the time one that works, if a few draws find one. */
static int pick_target(struct fuzz *f, struct target *t, enum xop op, int need)
{
	int live[MAX_XMRS + 1], n = 0;

	for (int i = 0; i <= MAX_XMRS; i++)
		if (f->mr[i].mr)
			live[n++] = i;
	if (!n)
		return -1;
	for (int tries = 0; tries < 4; tries++) {
		t->mi = live[rng_below(&f->rng, n)];
		draw_target(f, t, op, need);
		if ((t->inside && t->allowed && t->ok == t->len) || !rng_chance(&f->rng, 80))
			break;
	}
	return 0;
}

static bool target_ok(const struct target *t)
{
	return t->inside && t->allowed && t->ok == t->len;
}

/* The requester's buffer: pinned, or (with the implicit MR) an ODP one. */
static uint8_t *pick_local(struct fuzz *f, uint32_t *lkey, const char **name)
{
	if (f->mr[IMR].mr && rng_chance(&f->rng, 25)) {
		*lkey = f->mr[IMR].mr->lkey;
		*name = "odp";
		return f->obuf;
	}
	*lkey = f->lmr->lkey;
	*name = "pinned";
	return f->lbuf;
}

static void desc_target(struct fuzz *f, const char *what, const struct target *t, const char *local)
{
	desc(f, "%s mr%d%s w+%#" PRIx64 " len %" PRIu64 " (%s local) [%s]", what, t->mi,
	     t->mi == IMR ? "(implicit)" : "", wo(f, t->va), t->len, local,
	     !t->inside ? "outside the MR" : !t->allowed ? "access not allowed" :
	     t->ok < t->len ? "inaccessible page" : "ok");
}

static int expect_status(struct fuzz *f, int st, bool ok, const char *what)
{
	int want = ok ? IBV_WC_SUCCESS : IBV_WC_REM_ACCESS_ERR;

	outcome(f, " -> %s", st_str(st));
	if (st != want)
		return mismatch(f, "%s: completion %s (%d), expected %s", what, st_str(st), st,
				ibv_wc_status_str(want));
	if (!ok) {
		f->st.errors++;
		if (pair_reset(&f->e, &f->e.rc))
			return mismatch(f, "the QPs could not be reset after the error completion");
	}
	return 0;
}

/*
 * The value the model byte under t->va + @i has once the first @p bytes of @src are
 * stored in order: @alias holds the offsets (ascending, below t->ok) at which the
 * range reaches that byte, @i among them; a later offset overwrites an earlier one.
 */
static uint8_t prefix_value(struct fuzz *f, const struct target *t, const uint8_t *src,
			    const uint64_t *alias, size_t nalias, uint64_t p)
{
	uint8_t v = *mbyte(f, t->va + alias[0]);

	for (size_t k = 0; k < nalias && alias[k] < p; k++)
		v = src[alias[k]];
	return v;
}

/*
 * The offsets in [0, t->ok) at which the range reaches the same model byte as offset
 * @i (a memfd page may be mapped at several window pages, always at the same offset
 * in the page), ascending, into @alias; returns their number (>= 1).
 */
static size_t prefix_aliases(struct fuzz *f, const struct target *t, uint64_t i,
			     uint64_t *alias)
{
	uint64_t first = t->va & ~(uint64_t)(PAGE - 1), a = t->va + i;
	const struct mpage *m = vp(f, a)->m;
	size_t n = 0;

	for (uint64_t pa = first; pa < t->va + t->ok; pa += PAGE) {
		uint64_t b = pa + a % PAGE;

		if (vp(f, pa)->m == m && b >= t->va && b < t->va + t->ok)
			alias[n++] = b - t->va;
	}
	return n;
}

/*
 * After a refused write: the first p bytes of the message, for some p <= ok, have been
 * stored in order, nothing else (see the head comment). Where the range maps one memfd
 * page twice, the later bytes overwrite the earlier ones, so each byte of memory is
 * checked against the values it takes as p grows: every p a byte allows is counted,
 * and some p must be allowed by all of them. The model then takes what memory holds.
 */
static int adopt_prefix(struct fuzz *f, const struct target *t, const uint8_t *src)
{
	uint64_t alias[WIN_PAGES + 1], nbytes = 0, best = 0, best_votes = 0, p_lo = UINT64_MAX;
	int64_t *diff;
	size_t n;

	if (!t->ok)
		return 0;
	if (self_mem_read(f->mem, t->va, f->got, t->ok) != (ssize_t)t->ok)
		return mismatch(f, "refused write: w+%#" PRIx64 " cannot be read", wo(f, t->va));
	diff = calloc(t->ok + 2, sizeof(*diff));
	if (!diff) {
		perror("calloc");
		exit(2);
	}
	for (uint64_t i = 0; i < t->ok; i++) {
		uint64_t lo = 0;
		uint8_t v;

		n = prefix_aliases(f, t, i, alias);
		if (alias[0] != i)
			continue;	/* counted at its first offset */
		nbytes++;
		v = *mbyte(f, t->va + i);
		/* p in [lo, alias[k]] leaves v; past it, alias[k]'s message byte. */
		for (size_t k = 0; k <= n; k++) {
			uint64_t hi = k < n ? alias[k] : t->ok;

			if (f->got[i] == v) {
				diff[lo]++;
				diff[hi + 1]--;
			}
			if (k < n) {
				lo = alias[k] + 1;
				v = src[alias[k]];
			}
		}
	}
	for (uint64_t p = 0, votes = 0; p <= t->ok; p++) {
		votes += diff[p];
		if (votes > best_votes) {
			best = p;
			best_votes = votes;
		}
		if (votes == nbytes && p_lo == UINT64_MAX)
			p_lo = p;
	}
	free(diff);
	if (p_lo == UINT64_MAX) {
		/* Name the first byte that the prefix most bytes agree on does not explain. */
		for (uint64_t i = 0; i < t->ok; i++) {
			uint8_t want;

			n = prefix_aliases(f, t, i, alias);
			want = prefix_value(f, t, src, alias, n, best);
			if (f->got[i] != want)
				return mismatch(f, "refused write: no prefix of the message gives what memory holds: byte w+%#" PRIx64 " is 0x%02x; the old 0x%02x, the message's 0x%02x (%zu view(s) of it in the range)",
						wo(f, t->va + i), f->got[i], *mbyte(f, t->va + i),
						src[i], n);
		}
		return mismatch(f, "refused write: no prefix of the message gives what memory holds");
	}
	if (p_lo)
		outcome(f, " (a prefix of %" PRIu64 "+ bytes landed)", p_lo);
	model_store(f, t->va, f->got, t->ok);
	return 0;
}

static int op_write(struct fuzz *f)
{
	struct target t;
	const char *lname;
	uint32_t lkey;
	uint8_t *src;
	int st;

	if (pick_target(f, &t, X_WRITE, P_RW)) {
		desc(f, "write: no MR");
		f->st.skipped++;
		return 0;
	}
	src = pick_local(f, &lkey, &lname);
	fill_stream(src, t.len, rng_next(&f->rng));
	desc_target(f, "write", &t, lname);
	f->st.writes++;
	st = xfer(&f->e, &f->e.rc, IBV_WR_RDMA_WRITE, src, lkey, t.len, t.iova, t.m->mr->rkey, 0, 0);
	if (expect_status(f, st, target_ok(&t), "RDMA write"))
		return -1;
	if (target_ok(&t))
		model_store(f, t.va, src, t.len);
	else if (t.inside && t.allowed && adopt_prefix(f, &t, src))
		return -1;
	return check_cpu(f, t.va - PAD, t.len + 2 * PAD, "memory after the RDMA write");
}

static int op_read(struct fuzz *f)
{
	struct target t;
	const char *lname;
	uint32_t lkey;
	uint8_t *dst;
	int st;

	if (pick_target(f, &t, X_READ, P_RO)) {
		desc(f, "read: no MR");
		f->st.skipped++;
		return 0;
	}
	dst = pick_local(f, &lkey, &lname);
	memset(dst, 0xee, t.len + PAD);
	desc_target(f, "read", &t, lname);
	f->st.reads++;
	st = xfer(&f->e, &f->e.rc, IBV_WR_RDMA_READ, dst, lkey, t.len, t.iova, t.m->mr->rkey, 0, 0);
	if (expect_status(f, st, target_ok(&t), "RDMA read"))
		return -1;
	for (int i = 0; i < PAD; i++)
		if (dst[t.len + i] != 0xee)
			return mismatch(f, "RDMA read: the requester's buffer changed %d bytes after the message", i);
	if (!target_ok(&t))
		return 0;
	if (f->self_test && !f->self_test_done && f->op >= 20) {
		*mbyte(f, t.va) ^= 0x5a;
		f->self_test_done = true;
		printf("fuzz: --self-test: corrupted the model's byte at w+%#" PRIx64 " (op %lu)\n",
		       wo(f, t.va), f->op);
	}
	return report_bytes(f, "RDMA read result", t.va, dst, t.len);
}

static int op_atomic(struct fuzz *f)
{
	bool cas = rng_chance(&f->rng, 50);
	uint64_t add = rng_next(&f->rng), swap = rng_next(&f->rng), old = 0, cmp, res, nv;
	bool use_old = rng_chance(&f->rng, 50);
	struct target t;
	const char *lname;
	uint32_t lkey;
	uint8_t *dst;
	int st;

	if (pick_target(f, &t, X_ATOMIC, P_RW)) {
		desc(f, "atomic: no MR");
		f->st.skipped++;
		return 0;
	}
	dst = pick_local(f, &lkey, &lname);
	memset(dst, 0xee, 8 + PAD);
	if (target_ok(&t))
		model_load(f, t.va, (uint8_t *)&old, 8);
	cmp = use_old ? old : add;
	desc_target(f, cas ? "cmp&swap" : "fetch&add", &t, lname);
	f->st.atomics++;
	st = xfer(&f->e, &f->e.rc, cas ? IBV_WR_ATOMIC_CMP_AND_SWP : IBV_WR_ATOMIC_FETCH_AND_ADD, dst, lkey,
		  8, t.iova, t.m->mr->rkey, cas ? cmp : add, swap);
	if (expect_status(f, st, target_ok(&t), cas ? "compare&swap" : "fetch&add"))
		return -1;
	if (target_ok(&t)) {
		memcpy(&res, dst, 8);
		if (res != old)
			return mismatch(f, "atomic: returned %#" PRIx64 "%s, the model's value is %#" PRIx64,
					res, res == 0xeeeeeeeeeeeeeeeeULL ? " (the buffer as it was before)" : "",
					old);
		nv = cas ? (old == cmp ? swap : old) : old + add;
		model_store(f, t.va, (uint8_t *)&nv, 8);
	}
	return check_cpu(f, t.va - PAD, 8 + 2 * PAD, "memory after the atomic");
}

static int op_prefetch(struct fuzz *f)
{
	static const char *const names[] = { "PREFETCH", "PREFETCH_WRITE", "PREFETCH_NO_FAULT" };
	static const uint32_t advice[] = {
		IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH, IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE,
		IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT,
	};
	int a = (int)rng_below(&f->rng, 3), want, err;
	bool sync = rng_chance(&f->rng, 50);
	struct ibv_sge sge;
	struct target t;

	if (pick_target(f, &t, X_PREFETCH, a == 1 ? P_RW : P_RO)) {
		desc(f, "prefetch: no MR");
		f->st.skipped++;
		return 0;
	}
	sge = (struct ibv_sge){ .addr = t.iova, .length = (uint32_t)t.len, .lkey = t.m->mr->lkey };
	desc_target(f, names[a], &t, sync ? "sync" : "async");
	f->st.prefetches++;
	/* Only a synchronous faulting prefetch reports inaccessible pages. */
	want = !t.inside ? EFAULT : (sync && a != 2 && t.ok < t.len) ? EFAULT : 0;
	err = advise_mr(f->e.pd, advice[a], sync ? IB_UVERBS_ADVISE_MR_FLAG_FLUSH : 0, &sge, 1);
	outcome(f, " -> %s", err ? strerror(err) : "0");
	if (err != want)
		return mismatch(f, "advise_mr %s: %s, expected %s", names[a], err ? strerror(err) : "success",
				want ? strerror(want) : "success");
	if (want)
		f->st.errors++;
	return 0;
}

/* --- the run ---------------------------------------------------------------------------------- */

static const struct {
	int (*fn)(struct fuzz *f);
	unsigned int weight;
} ops[] = {
	{ op_write, 22 }, { op_read, 18 }, { op_atomic, 8 }, { op_prefetch, 8 },
	{ op_cpu_write, 5 }, { op_mmap, 12 }, { op_munmap, 3 }, { op_mprotect, 6 },
	{ op_dontneed, 5 }, { op_mremap, 3 }, { op_fork, 2 },
	{ op_reg, 4 }, { op_dereg, 3 }, { op_implicit, 1 },
};

#define NR_OPS (sizeof(ops) / sizeof(ops[0]))

static int one_op(struct fuzz *f)
{
	unsigned int total = 0, r;
	size_t i;
	int rc;

	for (i = 0; i < NR_OPS; i++)
		total += ops[i].weight;
	r = (unsigned int)rng_below(&f->rng, total);
	for (i = 0; r >= ops[i].weight; i++)
		r -= ops[i].weight;
	f->cur[0] = 0;
	rc = ops[i].fn(f);
	if (!rc && (f->op + 1) % CHECK_EVERY == 0)
		rc = check_window(f);
	snprintf(f->hist[f->op % HIST], DESC_LEN, "%s", f->cur);
	if (verbose)
		printf("#%lu %s\n", f->op, f->cur);
	return rc;
}

/* Every slot mapped, half of each filled; the implicit MR and one MR over the window. */
static int initial_state(struct fuzz *f)
{
	for (size_t s = 0; s < NSLOTS; s++) {
		uint64_t a = win_addr(f, s * SLOT_PAGES);

		if (mmap((void *)a, SLOT_PAGES * PAGE, PROT_READ | PROT_WRITE,
			 MAP_FIXED_NOREPLACE | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) != (void *)a)
			return tfail("mmap of the window at %#" PRIx64 ": %s", a, strerror(errno));
		for (size_t i = s * SLOT_PAGES; i < (s + 1) * SLOT_PAGES; i++) {
			f->pg[i] = (struct vpage){ .m = mp_new(), .prot = P_RW };
			if (i % 2) {
				fill_stream(f->pg[i].m->data, PAGE, rng_next(&f->rng));
				memcpy((void *)win_addr(f, i), f->pg[i].m->data, PAGE);
			}
		}
	}
	f->mr[0] = (struct xmr){ .va = (uintptr_t)f->win, .len = WIN_LEN, .iova = (uintptr_t)f->win,
				 .access = ACC_ALL };
	f->mr[0].mr = ibv_reg_mr(f->e.pd, f->win, WIN_LEN, ACC_ALL | IBV_ACCESS_ON_DEMAND);
	if (!f->mr[0].mr)
		return tfail("explicit ODP registration of the window: %s", strerror(errno));
	return reg_implicit(f) ? T_FAIL : 0;
}

static int setup(struct fuzz *f, const char *dev)
{
	int rc = env_open(&f->e, dev, K_ODP);

	if (rc)
		return rc;
	f->win = (uint8_t *)(uintptr_t)WIN_BASE;
	for (int i = 0; i < NFILES; i++) {
		f->fd[i] = memfd_create("hmmv-fuzz", MFD_CLOEXEC);
		if (f->fd[i] < 0 || ftruncate(f->fd[i], FILE_PAGES * PAGE))
			return tfail("memfd: %s", strerror(errno));
		for (int j = 0; j < FILE_PAGES; j++)
			f->fpage[i][j] = mp_new();	/* the file's own reference */
	}
	f->lbuf = map_anon(MAX_MSG + PAGE);
	f->obuf = map_anon(MAX_MSG + PAGE);
	f->got = malloc(MAX_MSG + WIN_LEN);
	if (!f->lbuf || !f->obuf || !f->got)
		return tfail("buffers: %s", strerror(errno));
	f->lmr = ibv_reg_mr(f->e.pd, f->lbuf, MAX_MSG + PAGE, IBV_ACCESS_LOCAL_WRITE);
	if (!f->lmr)
		return tfail("registration of the pinned buffer: %s", strerror(errno));
	f->mem = self_mem_open();
	if (f->mem < 0)
		return tfail("/proc/self/mem: %s", strerror(errno));
	f->read_none = self_mem_reads_none(f->mem);
	return initial_state(f);
}

static void teardown(struct fuzz *f)
{
	for (int i = 0; i <= MAX_XMRS; i++)
		if (f->mr[i].mr)
			ibv_dereg_mr(f->mr[i].mr);
	if (f->lmr)
		ibv_dereg_mr(f->lmr);
	env_close(&f->e);
}

static void summary(struct fuzz *f, double secs)
{
	const struct stats *s = &f->st;

	printf("fuzz: %.1f s, %.1f ops/s, %lu skipped (nothing to act on), %lu mremaps skipped (source spans VMAs), "
	       "%lu children, %lu checks, PROT_NONE pages %schecked through /proc/self/mem\n",
	       secs, secs > 0 ? f->op / secs : 0.0, s->skipped, s->vma_skips, s->children, s->checks,
	       f->read_none ? "" : "not ");
	printf("fuzz: seed %" PRIu64 ", %lu ops (%lu writes, %lu reads, %lu atomics, %lu prefetches, %lu mm ops, "
	       "%lu reg ops), %lu expected errors, %lu mismatches\n", f->seed, f->op, s->writes, s->reads,
	       s->atomics, s->prefetches, s->mm, s->reg, s->errors, f->mismatches);
}

static void usage(const char *argv0)
{
	fprintf(stderr, "usage: %s [-d DEV] [-s SEED] [-n MAX_OPS] [-T SECONDS] [-v] [--self-test]\n", argv0);
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "self-test", no_argument, NULL, 'X' },
		{ 0 },
	};
	static struct fuzz fz;
	struct fuzz *f = &fz;
	const char *dev = getenv("HMMV_DEV");
	unsigned long max_ops = 0, n;
	double secs = -1, t0;
	bool seeded = false;
	int opt, rc = 0;

	if (!dev || !*dev)
		dev = "rxe0";
	while ((opt = getopt_long(argc, argv, "d:s:n:T:vh", lopts, NULL)) != -1) {
		switch (opt) {
		case 'd': dev = optarg; break;
		case 's': f->seed = strtoull(optarg, NULL, 0); seeded = true; break;
		case 'n': max_ops = strtoul(optarg, NULL, 0); break;
		case 'T': secs = strtod(optarg, NULL); break;
		case 'v': verbose = true; break;
		case 'X': f->self_test = true; break;
		default: usage(argv[0]);
		}
	}
	if (secs < 0)
		secs = max_ops ? 0 : 60;
	if (!seeded) {
		uint64_t s = (uint64_t)(now_s() * 1e9) ^ ((uint64_t)getpid() << 32);

		f->seed = splitmix64(&s) % 1000000000000ULL;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	fuzz_prog = "fuzz";
	printf("fuzz: seed %" PRIu64 " on %s, %lu ops at most, %.0f s at most (0: no limit)\n", f->seed, dev,
	       max_ops, secs);
	signal(SIGPIPE, SIG_IGN);	/* a dead child's pipe is reported, not fatal */
	rng_seed(&f->rng, f->seed);
	if (setup(f, dev)) {
		printf("fuzz: setup failed (seed %" PRIu64 ")\n", f->seed);
		return 2;
	}
	t0 = now_s();
	for (n = 0; (!max_ops || n < max_ops) && (!secs || now_s() - t0 < secs); n++) {
		f->op = n;
		rc = one_op(f);
		if (rc) {
			history(f, n, n + 1);
			n++;
			break;
		}
	}
	f->op = n;
	if (!rc) {
		/* One more line for the history: the end of the run. */
		desc(f, "end of the run: the child's end and a window check");
		snprintf(f->hist[n % HIST], DESC_LEN, "%s", f->cur);
		rc = reap_child(f) || check_window(f);
		if (rc)
			history(f, n, n);
	}
	if (f->child.pid) {
		kill(f->child.pid, SIGKILL);
		waitpid(f->child.pid, NULL, 0);
	}
	summary(f, now_s() - t0);
	teardown(f);
	return f->mismatches ? 1 : 0;
}
