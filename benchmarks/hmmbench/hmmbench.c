// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * hmmbench: ODP memory regions measured through real verbs on one RDMA device (rxe loopback:
 * two RC QPs on DEV, connected through its RoCE v2 IPv4 GID). The target memory of every
 * test is registered in the mode under test; the source of every RDMA WRITE is a pinned MR.
 *
 *   hmmbench --mode pinned|odp|implicit [--mode-name NAME] [-d DEV] [--quick] [--repeats N]
 *            [--tests LIST] [--stock]
 *
 * Tests (LIST: a comma list of these names; default all):
 *   reg                 registration and deregistration time (reg_us, dereg_us) of fresh,
 *                       never-touched mmap(MAP_NORESERVE) buffers, 4 KiB .. 64 GiB (pinned:
 *                       at most 256 MiB, since pinning faults all of it in); implicit mode:
 *                       hmmv_reg_implicit_mr() (test reg-implicit, size 0)
 *   first-touch         RDMA WRITE of 64 KiB messages, 16 outstanding, into a never-touched
 *                       target of 32 MiB (--quick) or 256 MiB (bw_MBps), every byte checked
 *                       afterwards (data_ok, bad_bytes); reg_ms, the target's registration
 *                       time; wc_errors. Then test steady: the same write with other data
 *                       into the now-present target (bw_MBps, data_ok, bad_bytes)
 *   invalidation-storm  writes to the first half of one MR while a second thread cycles
 *                       munmap + mmap(MAP_FIXED_NOREPLACE) over 1 MiB chunks of its second half
 *                       (and, in the ODP modes, prefetches each new chunk, so that the next
 *                       cycle has mirror entries to zap): bw_MBps, storm_cycles,
 *                       page_invalidations (the MR's counter, where the driver has it),
 *                       wc_errors, data_ok and bad_bytes of the first half
 *   overlap16           16 MRs over one buffer, each made present (prefetch-write through each
 *                       ODP MR; pinned MRs are present once registered); then the time of one
 *                       MADV_DONTNEED of the whole buffer (invalidate_ms; invalidate_base_ms is
 *                       the same madvise of a buffer without MRs); kernel memory per page of the
 *                       buffer from /proc/meminfo (see meminfo_kernel()) from before the
 *                       registrations to after the population (kernel_bytes_per_page), the
 *                       same around populating a buffer without MRs (..._base, the noise
 *                       floor) and their difference (..._net); Slab + VmallocUsed alone; with
 *                       ib_hmm the mirror_bytes the MRs report (one table, shared by all 16)
 *   mirror-per-page     (ODP modes, drivers with mirror counters) mirror bytes per present page
 *                       after RDMA writes to every page of 16 MiB (dense) and to one 4 KiB page
 *                       per 2 MiB of 1 GiB (sparse); test mirror-untouched: mirror_bytes of an
 *                       explicit 1 GiB MR that nothing touched (must be 0); test implicit-fixed:
 *                       what a fresh implicit MR costs ib_hmm: its mirror_bytes plus the
 *                       kmalloc sizes of one mirror and one MR structure, which ib_hmm's
 *                       debugfs stats give (implicit_fixed_bytes; the parts as
 *                       implicit_table_bytes, mirror_struct_bytes, mr_struct_bytes)
 *
 * Every target buffer is MADV_NOHUGEPAGE: the comparison is per 4 KiB page (Debian's kernels
 * have THP "always"). Output: one JSON object per line on stdout,
 *
 *   {"suite":"hmmbench","kernel":K,"mode":NAME,"test":T,"size":BYTES,"qps":1,"metric":M,
 *    "value":V,"unit":U,"runs":N,"spread":(MAX-MIN)/MEDIAN,"values":[...]}
 *
 * V is the median of the N runs; lines with "agg":"min" (data_ok) or "agg":"max"
 * (wc_errors, bad_bytes) carry the worst run instead. A figure that could not be measured has
 * "value":null and an "error". Logs and notes go to stderr.
 *
 * --stock: the driver is the distribution's rdma_rxe. Failed registrations, completion
 * errors and data mismatches of the measured operations are findings about it: recorded, and
 * the exit status stays 0. Otherwise each of them makes the exit status 1. Setup failures
 * (device, PD, CQ, QP, the source MR) end the program at once with status 1; bad arguments
 * with 2.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <linux/membarrier.h>

#include <infiniband/hmmverbs.h>
#include <infiniband/verbs.h>

#include "hmmbench.h"

struct options opt = { .dev = "rxe0", .repeats = 3 };
struct utsname uts;
int failures;

/* --- messages and results -------------------------------------------------------------- */

void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "hmmbench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* A setup step failed with @err (an errno value): the run cannot go on. */
void __attribute__((noreturn)) die_err(const char *what, int err)
{
	die("%s: %s (%s)", what, strerror(err), strerrorname_np(err) ?: "?");
}

void __attribute__((format(printf, 1, 2))) note(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "hmmbench: %s: note: ", opt.mode_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* A measured operation went wrong: a finding with --stock, a failure otherwise. */
void __attribute__((format(printf, 1, 2))) fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "hmmbench: %s: %s: ", opt.mode_name, opt.stock ? "finding" : "FAIL");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (!opt.stock)
		failures++;
}

double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

void add(struct series *s, double v)
{
	if (s->n < MAX_REPEATS)
		s->v[s->n++] = v;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static const char *const agg_names[] = { "median", "min", "max" };

/*
 * One JSON line: @s's median (or its worst run, see enum agg) and spread. @extra is appended
 * to the object as it is (",\"key\":...") when not NULL. No runs: "value":null, and @extra
 * should say why.
 */
void report(const char *test, uint64_t size, const char *metric, const char *unit,
	    struct series *s, enum agg how, const char *extra)
{
	double med = 0, val = 0, spread = 0;
	int n = s->n;

	qsort(s->v, (size_t)n, sizeof(s->v[0]), cmp_double);
	if (n) {
		med = n % 2 ? s->v[n / 2] : (s->v[n / 2 - 1] + s->v[n / 2]) / 2;
		val = how == AGG_MIN ? s->v[0] : how == AGG_MAX ? s->v[n - 1] : med;
		spread = med ? (s->v[n - 1] - s->v[0]) / fabs(med) : 0;
	}
	printf("{\"suite\":\"hmmbench\",\"kernel\":\"%s\",\"mode\":\"%s\",\"test\":\"%s\",",
	       uts.release, opt.mode_name, test);
	printf("\"size\":%" PRIu64 ",\"qps\":1,\"metric\":\"%s\",", size, metric);
	if (n)
		printf("\"value\":%.10g,", val);
	else
		printf("\"value\":null,");
	printf("\"unit\":\"%s\",\"runs\":%d,\"spread\":%.4f,\"values\":[", unit, n, spread);
	for (int i = 0; i < n; i++)
		printf("%s%.10g", i ? "," : "", s->v[i]);
	printf("]");
	if (how != AGG_MEDIAN)
		printf(",\"agg\":\"%s\"", agg_names[how]);
	printf("%s}\n", extra ? extra : "");
	fflush(stdout);
}

static bool want(const char *test)
{
	const char *p = opt.tests;
	size_t n = strlen(test);

	if (!p)
		return true;
	while ((p = strstr(p, test))) {
		if ((p == opt.tests || p[-1] == ',') && (p[n] == ',' || !p[n]))
			return true;
		p += n;
	}
	return false;
}

/* --- memory -------------------------------------------------------------------------------- */

/* A fresh anonymous buffer of 4 KiB pages; NULL with errno set. */
static void *map_buf(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	madvise(p, len, MADV_NOHUGEPAGE);
	return p;
}

void *xmap(size_t len)
{
	void *p = map_buf(len);

	if (!p)
		die_err("mmap", errno);
	return p;
}

/* Compare @nmsg messages of @msglen bytes at @base + k * @stride with what seed wrote there. */
void check_msgs(uint64_t base, uint64_t nmsg, uint64_t stride, uint64_t msglen,
		uint32_t seed, struct check *c)
{
	static uint64_t expect[MSG / 8];

	memset(c, 0, sizeof(*c));
	for (uint64_t w = 0; w < msglen / 8; w++)
		expect[w] = pat(w, seed);
	for (uint64_t k = 0; k < nmsg; k++) {
		for (uint64_t pg = 0; pg < msglen / PAGE; pg++) {
			uint64_t va = base + k * stride + pg * PAGE;
			const uint64_t *got = (const uint64_t *)(uintptr_t)va;
			const uint64_t *exp = expect + pg * PAGE_WORDS;

			if (got[0] == stamp(va, seed) &&
			    !memcmp(got + 1, exp + 1, PAGE - 8))
				continue;
			for (uint64_t w = 0; w < PAGE_WORDS; w++) {
				uint64_t want = w ? exp[w] : stamp(va, seed);

				if (got[w] == want)
					continue;
				if (!c->bad_bytes) {
					c->first_bad = va + w * 8;
					c->first_got = got[w];
					c->first_want = want;
				}
				c->bad_bytes += 8;
				if (!got[w])
					c->zero_bytes += 8;
			}
		}
	}
}

/* Whether the check passed; says what differed where when it did not. */
static bool check_ok(const char *what, uint64_t base, const struct check *c, uint64_t len)
{
	if (!c->bad_bytes)
		return true;
	fail("%s: %" PRIu64 " of %" PRIu64 " bytes differ (in 8-byte words; %" PRIu64
	     " of them zero), the first at offset %" PRIu64 " (got 0x%016" PRIx64 ", want 0x%016"
	     PRIx64 ")", what, c->bad_bytes, len, c->zero_bytes, c->first_bad - base,
	     c->first_got, c->first_want);
	return false;
}

/* check_msgs() and check_ok(); the outcome (1/0) to @ok, the bytes that differ to @bad. */
void verify(const char *what, uint64_t base, uint64_t nmsg, uint64_t stride,
	    uint64_t msglen, uint32_t seed, struct series *ok, struct series *bad)
{
	struct check c;

	check_msgs(base, nmsg, stride, msglen, seed, &c);
	add(ok, check_ok(what, base, &c, nmsg * msglen));
	if (bad)
		add(bad, (double)c.bad_bytes);
}

/*
 * Let RCU-deferred frees of earlier steps (page tables, table nodes) happen before memory is
 * read (MEMBARRIER_CMD_GLOBAL waits for an RCU grace period), then fold the per-CPU
 * differentials of the vm counters into the totals that /proc/meminfo shows (vm.stat_refresh;
 * without it each counter lags by up to its threshold per CPU: hundreds of KiB).
 */
static void settle(void)
{
	FILE *f;

	for (int i = 0; i < 2; i++)
		syscall(__NR_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0);
	usleep(20000);
	f = fopen("/proc/sys/vm/stat_refresh", "w");
	if (!f)
		die_err("/proc/sys/vm/stat_refresh (needs root)", errno);
	fputs("1\n", f);
	fclose(f);
}

/*
 * Kernel memory, in bytes, from /proc/meminfo and /proc/zoneinfo: all that is not free (free
 * includes the pages on the per-CPU free lists, which MemFree leaves out and which would
 * otherwise be noise of megabytes), minus user pages (AnonPages), the page cache (Buffers,
 * Cached), and the CPU's page tables (PageTables, SecPageTables: the process's own, the same
 * in every mode). What is left is every kernel allocation, of the slab, vmalloc and the page
 * allocator alike (ib_hmm's table nodes are whole pages from the page allocator). *slab_vm
 * gets Slab + VmallocUsed alone.
 */
int64_t meminfo_kernel(int64_t *slab_vm)
{
	int64_t total = 0, free_kb = 0, anon = 0, buffers = 0, cached = 0, pt = 0, spt = 0;
	int64_t slab = 0, vmalloc = 0, pcp = 0, v;
	char line[256], key[64];
	FILE *f;

	settle();
	f = fopen("/proc/meminfo", "r");
	if (!f)
		die_err("/proc/meminfo", errno);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%63[^:]: %" SCNd64, key, &v) != 2)
			continue;
		if (!strcmp(key, "MemTotal"))
			total = v;
		else if (!strcmp(key, "MemFree"))
			free_kb = v;
		else if (!strcmp(key, "AnonPages"))
			anon = v;
		else if (!strcmp(key, "Buffers"))
			buffers = v;
		else if (!strcmp(key, "Cached"))
			cached = v;
		else if (!strcmp(key, "PageTables"))
			pt = v;
		else if (!strcmp(key, "SecPageTables"))
			spt = v;
		else if (!strcmp(key, "Slab"))
			slab = v;
		else if (!strcmp(key, "VmallocUsed"))
			vmalloc = v;
	}
	fclose(f);
	f = fopen("/proc/zoneinfo", "r");
	if (!f)
		die_err("/proc/zoneinfo", errno);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, " count: %" SCNd64, &v) == 1)
			pcp += v;
	fclose(f);
	*slab_vm = (slab + vmalloc) * 1024;
	return (total - free_kb - anon - buffers - cached - pt - spt) * 1024 - pcp * (int64_t)PAGE;
}

/* --- main ---------------------------------------------------------------------------------- */

static void read_line(const char *path, char *buf, size_t n)
{
	FILE *f = fopen(path, "r");

	buf[0] = 0;
	if (f) {
		if (!fgets(buf, (int)n, f))
			buf[0] = 0;
		fclose(f);
	}
	buf[strcspn(buf, "\n")] = 0;
}

/* The environment, first, on stderr; and whether the device serves the mode. */
static void environment(struct bench *b)
{
	struct hmmv_device_attr a = { .comp_mask = HMMV_DEVICE_ATTR_MASK_ODP_CAPS };
	char thp[128], far[32];
	int err;

	err = hmmv_query_device(b->ctx, &a);
	if (err)
		die_err("hmmv_query_device", err);
	read_line("/sys/kernel/mm/transparent_hugepage/enabled", thp, sizeof(thp));
	read_line("/sys/module/ib_hmm/parameters/fault_around_pages", far, sizeof(far));
	fprintf(stderr, "hmmbench: %s: kernel %s, device %s (rxe %s), odp caps general 0x%" PRIx64
		" rc 0x%x, flags 0x%" PRIx64 ", mtu %d, THP [%s] (targets are NOHUGEPAGE), "
		"fault_around_pages %s, %s, repeats %d\n", opt.mode_name, uts.release, opt.dev,
		access("/sys/module/ib_hmm/holders/rdma_rxe", F_OK) ? "stock" : "ours",
		a.general_odp_caps, a.rc_odp_caps, a.flags, 128 << b->mtu, thp,
		far[0] ? far : "-", opt.quick ? "quick" : "full", opt.repeats);
	if (opt.mode == M_ODP && !(a.flags & HMMV_DEVICE_ODP))
		die("%s has no ODP: mode odp does not exist on it", opt.dev);
	if (opt.mode == M_IMPLICIT && !(a.flags & HMMV_DEVICE_ODP_IMPLICIT))
		die("%s has no implicit ODP: mode implicit does not exist on it", opt.dev);
}

static void __attribute__((noreturn)) usage(int status)
{
	fprintf(status ? stderr : stdout,
		"usage: hmmbench --mode pinned|odp|implicit [--mode-name NAME] [-d DEV] [--quick]\n"
		"                [--repeats N] [--tests reg,first-touch,invalidation-storm,"
		"overlap16,mirror-per-page] [--stock]\n"
		"(see the comment at the top of benchmarks/hmmbench/hmmbench.c)\n");
	exit(status);
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "mode", required_argument, NULL, 'm' },
		{ "mode-name", required_argument, NULL, 'M' },
		{ "quick", no_argument, NULL, 'q' },
		{ "repeats", required_argument, NULL, 'r' },
		{ "tests", required_argument, NULL, 't' },
		{ "stock", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	static const struct {
		const char *name;
		void (*fn)(struct bench *b);
	} tests[] = {
		{ "reg", test_reg },
		{ "first-touch", test_first_touch },
		{ "invalidation-storm", test_storm },
		{ "overlap16", test_overlap },
		{ "mirror-per-page", test_mirror },
	};
	const char *mode = NULL;
	struct bench b;
	int c;

	while ((c = getopt_long(argc, argv, "d:m:qr:t:h", lopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			opt.dev = optarg;
			break;
		case 'm':
			mode = optarg;
			break;
		case 'M':
			opt.mode_name = optarg;
			break;
		case 'q':
			opt.quick = true;
			break;
		case 'r':
			opt.repeats = atoi(optarg);
			break;
		case 't':
			opt.tests = optarg;
			break;
		case 's':
			opt.stock = true;
			break;
		case 'h':
			usage(0);
		default:
			usage(2);
		}
	}
	if (!mode || optind != argc)
		usage(2);
	if (!strcmp(mode, "pinned"))
		opt.mode = M_PINNED;
	else if (!strcmp(mode, "odp"))
		opt.mode = M_ODP;
	else if (!strcmp(mode, "implicit"))
		opt.mode = M_IMPLICIT;
	else
		usage(2);
	if (!opt.mode_name)
		opt.mode_name = mode;
	if (opt.repeats < 1 || opt.repeats > MAX_REPEATS) {
		fprintf(stderr, "hmmbench: --repeats takes 1..%d\n", MAX_REPEATS);
		return 2;
	}
	uname(&uts);

	bench_open(&b);
	environment(&b);
	for (size_t i = 0; i < ARRAY_SIZE(tests); i++) {
		double t0 = now_s();

		if (!want(tests[i].name))
			continue;
		tests[i].fn(&b);
		fprintf(stderr, "hmmbench: %s: %s took %.1f s\n", opt.mode_name, tests[i].name,
			now_s() - t0);
	}
	bench_close(&b);
	if (failures)
		fprintf(stderr, "hmmbench: %s: %d failure(s)\n", opt.mode_name, failures);
	return failures ? 1 : 0;
}
