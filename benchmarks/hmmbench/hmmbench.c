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
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
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

#include "rc_connect.h"
#include "roce_gid.h"

#define KIB UINT64_C(1024)
#define MIB (1024 * KIB)
#define GIB (1024 * MIB)
#define PAGE UINT64_C(4096)
#define PAGE_WORDS (PAGE / 8)
#define MSG (64 * KIB)		/* message size of the bandwidth tests */
#define WINDOW 16		/* messages outstanding */
#define MAX_REPEATS 15
#define PINNED_CAP (256 * MIB)	/* the guest has 2 GiB: pin no more than this */
#define NOVERLAP 16
#define CQ_TIMEOUT_S 30		/* no completion for this long: the transfer is stuck */
#define STORM_CHUNK MIB

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ACCESS (IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ)

enum mode { M_PINNED, M_ODP, M_IMPLICIT };

static struct {
	enum mode mode;
	const char *mode_name;
	const char *dev;
	const char *tests;
	bool quick;
	bool stock;
	int repeats;
} opt = { .dev = "rxe0", .repeats = 3 };

static struct utsname uts;
static int failures;		/* measured operations that failed (not with --stock) */

struct bench {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;	/* the requester's completions */
	struct ibv_cq *rcq;	/* the responder's (RDMA WRITE gives none) */
	struct ibv_qp *req, *resp;
	int gid_index;
	union ibv_gid gid;
	enum ibv_mtu mtu;
	uint64_t *src;		/* WINDOW slots of MSG bytes */
	struct ibv_mr *src_mr;
	bool stats_noted;	/* "no counters" said once */
};

/* --- messages and results -------------------------------------------------------------- */

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
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
static void __attribute__((noreturn)) die_err(const char *what, int err)
{
	die("%s: %s (%s)", what, strerror(err), strerrorname_np(err) ?: "?");
}

static void __attribute__((format(printf, 1, 2))) note(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "hmmbench: %s: note: ", opt.mode_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* A measured operation went wrong: a finding with --stock, a failure otherwise. */
static void __attribute__((format(printf, 1, 2))) fail(const char *fmt, ...)
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

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

struct series {
	double v[MAX_REPEATS];
	int n;
};

static void add(struct series *s, double v)
{
	if (s->n < MAX_REPEATS)
		s->v[s->n++] = v;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

enum agg { AGG_MEDIAN, AGG_MIN, AGG_MAX };
static const char *const agg_names[] = { "median", "min", "max" };

/*
 * One JSON line: @s's median (or its worst run, see enum agg) and spread. @extra is appended
 * to the object as it is (",\"key\":...") when not NULL. No runs: "value":null, and @extra
 * should say why.
 */
static void report(const char *test, uint64_t size, const char *metric, const char *unit,
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

static void *xmap(size_t len)
{
	void *p = map_buf(len);

	if (!p)
		die_err("mmap", errno);
	return p;
}

/*
 * What the target holds after an RDMA WRITE from the source slots: word w of a message is
 * pat(w, seed), except the first word of every 4 KiB page, which is stamp(its address, seed),
 * so that a page that received another page's data is caught as well as one that lost its
 * data. No byte of pat() and no stamp() is zero (the value of never-written memory).
 */
static inline uint64_t pat(uint64_t w, uint32_t seed)
{
	return ((w + 1) * 0x9e3779b97f4a7c15ull ^ (seed + 1ull) * 0xd1b54a32d192ed03ull) |
	       0x0101010101010101ull;
}

static inline uint64_t stamp(uint64_t va, uint32_t seed)
{
	return 0xa500000000000000ull | ((uint64_t)(seed & 0xff) << 48) | (va & 0xffffffffffffull);
}

struct check {
	uint64_t bad_bytes;	/* in 8-byte words that differ */
	uint64_t zero_bytes;	/* ...of which hold zero (never written) */
	uint64_t first_bad;	/* address of the first one */
	uint64_t first_got, first_want;
};

/* Compare @nmsg messages of @msglen bytes at @base + k * @stride with what seed wrote there. */
static void check_msgs(uint64_t base, uint64_t nmsg, uint64_t stride, uint64_t msglen,
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
static void verify(const char *what, uint64_t base, uint64_t nmsg, uint64_t stride,
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
static int64_t meminfo_kernel(int64_t *slab_vm)
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

/* --- verbs --------------------------------------------------------------------------------- */

static void qp_up(struct bench *b, struct ibv_qp *qp, uint32_t dest)
{
	struct hmmv_rc_attr a = {
		.port = 1,
		.sgid_index = b->gid_index,
		.dgid = b->gid,
		.dest_qpn = dest,
		.mtu = b->mtu,
		.rd_atomic = 16,
		.min_rnr_timer = 1,
		.access = IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ,
	};
	const char *step = "";
	int err = hmmv_rc_connect(qp, &a, &step);

	if (err) {
		char what[32];

		snprintf(what, sizeof(what), "ibv_modify_qp to %s", step);
		die_err(what, err);
	}
}

static void drain_cqs(struct bench *b)
{
	struct ibv_wc wc[16];

	while (ibv_poll_cq(b->cq, 16, wc) > 0)
		;
	while (ibv_poll_cq(b->rcq, 16, wc) > 0)
		;
}

/* After an error completion both QPs are in the error state: back to RTS through RESET. */
static void pair_reset(struct bench *b)
{
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_RESET };
	int err;

	usleep(100000);		/* let the flushes land before the CQs are drained */
	err = ibv_modify_qp(b->req, &a, IBV_QP_STATE);
	if (!err)
		err = ibv_modify_qp(b->resp, &a, IBV_QP_STATE);
	if (err)
		die_err("ibv_modify_qp to RESET", err);
	drain_cqs(b);
	qp_up(b, b->req, b->resp->qp_num);
	qp_up(b, b->resp, b->req->qp_num);
}

static void bench_open(struct bench *b)
{
	struct ibv_device **list = ibv_get_device_list(NULL);
	struct ibv_qp_init_attr qia = {
		.qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = 2 * WINDOW, .max_recv_wr = 1, .max_send_sge = 1,
			 .max_recv_sge = 1 },
	};
	struct ibv_port_attr pa;
	int err;

	memset(b, 0, sizeof(*b));
	if (!list)
		die_err("ibv_get_device_list", errno);
	for (int i = 0; list[i]; i++)
		if (!strcmp(ibv_get_device_name(list[i]), opt.dev))
			b->ctx = ibv_open_device(list[i]);
	ibv_free_device_list(list);
	if (!b->ctx)
		die("device %s not found or cannot be opened", opt.dev);
	b->gid_index = hmmv_roce_v2_ipv4_gid(b->ctx, opt.dev, 1, &b->gid);
	if (b->gid_index < 0)
		die("no RoCE v2 IPv4 GID on %s", opt.dev);
	err = ibv_query_port(b->ctx, 1, &pa);
	if (err)
		die_err("ibv_query_port", err);
	b->mtu = pa.active_mtu;
	b->pd = ibv_alloc_pd(b->ctx);
	if (!b->pd)
		die_err("ibv_alloc_pd", errno);
	b->cq = ibv_create_cq(b->ctx, 4 * WINDOW, NULL, NULL, 0);
	b->rcq = ibv_create_cq(b->ctx, 4 * WINDOW, NULL, NULL, 0);
	if (!b->cq || !b->rcq)
		die_err("ibv_create_cq", errno);
	qia.send_cq = b->cq;
	qia.recv_cq = b->cq;
	b->req = ibv_create_qp(b->pd, &qia);
	qia.send_cq = b->rcq;
	qia.recv_cq = b->rcq;
	b->resp = ibv_create_qp(b->pd, &qia);
	if (!b->req || !b->resp)
		die_err("ibv_create_qp", errno);
	qp_up(b, b->req, b->resp->qp_num);
	qp_up(b, b->resp, b->req->qp_num);

	b->src = xmap(WINDOW * MSG);
	b->src_mr = ibv_reg_mr(b->pd, b->src, WINDOW * MSG, IBV_ACCESS_LOCAL_WRITE);
	if (!b->src_mr)
		die_err("ibv_reg_mr of the pinned source buffer", errno);
}

static void bench_close(struct bench *b)
{
	ibv_dereg_mr(b->src_mr);
	munmap(b->src, WINDOW * MSG);
	ibv_destroy_qp(b->req);
	ibv_destroy_qp(b->resp);
	ibv_destroy_cq(b->cq);
	ibv_destroy_cq(b->rcq);
	ibv_dealloc_pd(b->pd);
	ibv_close_device(b->ctx);
}

/* An MR over [@p, @p + @len) in the mode under test (implicit: the whole address space). */
static struct ibv_mr *reg_target(struct bench *b, void *p, size_t len)
{
	switch (opt.mode) {
	case M_PINNED:
		return ibv_reg_mr(b->pd, p, len, ACCESS);
	case M_ODP:
		return hmmv_reg_odp_mr(b->pd, p, len, ACCESS);
	case M_IMPLICIT:
	default:
		return hmmv_reg_implicit_mr(b->pd, ACCESS);
	}
}

static struct ibv_mr *xreg_target(struct bench *b, void *p, size_t len)
{
	struct ibv_mr *mr = reg_target(b, p, len);

	if (!mr)
		die_err("registration of the target", errno);
	return mr;
}

static void xdereg(struct ibv_mr *mr)
{
	int err = ibv_dereg_mr(mr);

	if (err)
		die_err("ibv_dereg_mr", err);
}

/* The MR's counters with the mirror fields; 0 or an errno value (said once). */
static int mr_stats(struct bench *b, struct ibv_mr *mr, struct hmmv_mr_stats *s)
{
	int err;

	memset(s, 0, sizeof(*s));
	s->comp_mask = HMMV_MR_STATS_MASK_MIRROR;
	err = hmmv_query_mr_stats(mr, s);
	if (err && !b->stats_noted) {
		note("hmmv_query_mr_stats: %s (%s): no MR counters in this mode", strerror(err),
		     strerrorname_np(err) ?: "?");
		b->stats_noted = true;
	}
	return err;
}

static bool has_mirror(const struct hmmv_mr_stats *s)
{
	return s->comp_mask & HMMV_MR_STATS_MASK_MIRROR;
}

/* Prefetch-write [@p, @p + @len) through @mr, synchronously: 0 or an errno value. */
static int prefetch(struct bench *b, struct ibv_mr *mr, void *p, uint64_t len)
{
	struct ibv_sge sge = { .addr = (uintptr_t)p, .length = (uint32_t)len, .lkey = mr->lkey };

	if (len > UINT32_MAX)
		return EINVAL;
	return hmmv_advise_mr(b->pd, IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE, IBV_ADVISE_MR_FLAG_FLUSH,
			      &sge, 1);
}

struct xfer {
	double secs;
	uint64_t bytes;		/* written by successful completions */
	int wc_errors;		/* completions with an error status (or a stuck transfer) */
	enum ibv_wc_status first_status;
};

/*
 * RDMA WRITE of @nmsg messages of @msglen bytes (at most MSG, a multiple of PAGE) to
 * @raddr + k * @stride, WINDOW outstanding, every one signalled; the data is what
 * check_msgs() expects for @seed. After the first error completion no more is posted, the
 * rest is waited for, and the QPs are reset. Returns true when every message completed well.
 */
static bool write_msgs(struct bench *b, uint64_t raddr, uint32_t rkey, uint64_t nmsg,
		       uint64_t stride, uint64_t msglen, uint32_t seed, struct xfer *x)
{
	uint32_t free_slots[WINDOW], nfree = WINDOW;
	uint64_t posted = 0, done = 0, limit = nmsg;
	double t0, last;

	memset(x, 0, sizeof(*x));
	for (uint64_t w = 0; w < WINDOW * MSG / 8; w++)
		b->src[w] = pat(w % (MSG / 8), seed);
	for (uint32_t i = 0; i < WINDOW; i++)
		free_slots[i] = i;
	t0 = now_s();
	last = t0;
	while (done < posted || posted < limit) {
		struct ibv_wc wc[WINDOW];
		int n;

		while (nfree && posted < limit) {
			uint32_t slot = free_slots[--nfree];
			uint64_t *s = b->src + slot * (MSG / 8);
			uint64_t dst = raddr + posted * stride;
			struct ibv_sge sge = { .addr = (uintptr_t)s, .length = (uint32_t)msglen,
					       .lkey = b->src_mr->lkey };
			struct ibv_send_wr wr = {
				.wr_id = slot,
				.sg_list = &sge,
				.num_sge = 1,
				.opcode = IBV_WR_RDMA_WRITE,
				.send_flags = IBV_SEND_SIGNALED,
				.wr.rdma = { .remote_addr = dst, .rkey = rkey },
			}, *bad;
			int err;

			for (uint64_t pg = 0; pg < msglen / PAGE; pg++)
				s[pg * PAGE_WORDS] = stamp(dst + pg * PAGE, seed);
			err = ibv_post_send(b->req, &wr, &bad);
			if (err)
				die_err("ibv_post_send", err);
			posted++;
		}
		n = ibv_poll_cq(b->cq, WINDOW, wc);
		if (n < 0)
			die("ibv_poll_cq failed");
		for (int i = 0; i < n; i++) {
			free_slots[nfree++] = (uint32_t)wc[i].wr_id;
			done++;
			if (wc[i].status == IBV_WC_SUCCESS) {
				x->bytes += msglen;
				continue;
			}
			if (!x->wc_errors++)
				x->first_status = wc[i].status;
			limit = posted;
		}
		if (n) {
			last = now_s();
		} else if (now_s() - last > CQ_TIMEOUT_S) {
			fprintf(stderr, "hmmbench: %s: no completion for %d s (%" PRIu64
				" of %" PRIu64 " posted messages done)\n", opt.mode_name,
				CQ_TIMEOUT_S, done, posted);
			if (!x->wc_errors++)
				x->first_status = IBV_WC_RESP_TIMEOUT_ERR;
			break;
		}
	}
	x->secs = now_s() - t0;
	if (x->wc_errors) {
		pair_reset(b);
		return false;
	}
	return true;
}

static double mbps(const struct xfer *x)
{
	return x->secs > 0 ? (double)x->bytes / x->secs / 1e6 : 0;
}

static const char *wc_str(const struct xfer *x)
{
	return ibv_wc_status_str(x->first_status);
}

/* --- reg ----------------------------------------------------------------------------------- */

static void test_reg(struct bench *b)
{
	static const uint64_t full[] = { 4 * KIB, 64 * KIB, MIB, 16 * MIB, 256 * MIB, GIB,
					 64 * GIB };
	static const uint64_t quick[] = { 4 * KIB, MIB, 64 * MIB, 64 * GIB };
	const uint64_t *sizes = opt.quick ? quick : full;
	size_t nsizes = opt.quick ? ARRAY_SIZE(quick) : ARRAY_SIZE(full);
	struct series reg, dereg;
	struct ibv_mr *mr;
	double t0, t1, t2;
	char extra[256];
	void *p;

	if (opt.mode == M_IMPLICIT) {
		memset(&reg, 0, sizeof(reg));
		memset(&dereg, 0, sizeof(dereg));
		xdereg(xreg_target(b, NULL, 0));	/* warm-up, not counted */
		for (int r = 0; r < opt.repeats; r++) {
			t0 = now_s();
			mr = xreg_target(b, NULL, 0);
			t1 = now_s();
			xdereg(mr);
			t2 = now_s();
			add(&reg, (t1 - t0) * 1e6);
			add(&dereg, (t2 - t1) * 1e6);
		}
		report("reg-implicit", 0, "reg_us", "us", &reg, AGG_MEDIAN, NULL);
		report("reg-implicit", 0, "dereg_us", "us", &dereg, AGG_MEDIAN, NULL);
		return;
	}

	p = xmap(PAGE);		/* warm-up: the first registration of a process is slower */
	xdereg(xreg_target(b, p, PAGE));
	munmap(p, PAGE);
	for (size_t i = 0; i < nsizes; i++) {
		uint64_t len = sizes[i];
		int err = 0;

		if (opt.mode == M_PINNED && len > PINNED_CAP) {
			note("reg %" PRIu64 " MiB skipped: pinned MRs are capped at %" PRIu64
			     " MiB (pinning faults in all of it; the guest has 2 GiB)",
			     len / MIB, PINNED_CAP / MIB);
			continue;
		}
		memset(&reg, 0, sizeof(reg));
		memset(&dereg, 0, sizeof(dereg));
		for (int r = 0; r < opt.repeats && !err; r++) {
			p = xmap(len);
			t0 = now_s();
			mr = reg_target(b, p, len);
			t1 = now_s();
			if (!mr) {
				err = errno;
				fail("registration of %" PRIu64 " bytes: %s (%s)", len,
				     strerror(err), strerrorname_np(err) ?: "?");
			} else {
				xdereg(mr);
				t2 = now_s();
				add(&reg, (t1 - t0) * 1e6);
				add(&dereg, (t2 - t1) * 1e6);
			}
			munmap(p, len);
		}
		extra[0] = 0;
		if (err)
			snprintf(extra, sizeof(extra), ",\"error\":\"%s: %s\"",
				 strerrorname_np(err) ?: "?", strerror(err));
		report("reg", len, "reg_us", "us", &reg, AGG_MEDIAN, extra);
		report("reg", len, "dereg_us", "us", &dereg, AGG_MEDIAN, extra);
	}
}

/* --- first-touch and steady ----------------------------------------------------------------- */

static void test_first_touch(struct bench *b)
{
	uint64_t len = opt.quick ? 32 * MIB : 256 * MIB, nmsg = len / MSG;
	static const char *const phases[] = { "first-touch", "steady" };
	struct series bw[2] = {}, ok[2] = {}, bad[2] = {}, regms = {}, errs = {};
	struct xfer x;
	char what[96];

	for (int r = 0; r < opt.repeats; r++) {
		uint8_t *p = xmap(len);
		uint64_t base = (uintptr_t)p;
		struct ibv_mr *mr;
		double t0 = now_s();
		int wc_errors = 0;

		mr = xreg_target(b, p, len);
		add(&regms, (now_s() - t0) * 1e3);
		/* first touch: seed 1; steady: seed 2, so that stale data is caught */
		for (int ph = 0; ph < 2; ph++) {
			snprintf(what, sizeof(what), "%s run %d", phases[ph], r + 1);
			if (write_msgs(b, base, mr->rkey, nmsg, MSG, MSG, 1 + (uint32_t)ph, &x)) {
				add(&bw[ph], mbps(&x));
			} else {
				wc_errors += x.wc_errors;
				fail("%s: %d completion error(s), the first %s", what, x.wc_errors,
				     wc_str(&x));
			}
			verify(what, base, nmsg, MSG, MSG, 1 + (uint32_t)ph, &ok[ph], &bad[ph]);
		}
		add(&errs, wc_errors);
		xdereg(mr);
		munmap(p, len);
	}
	for (int ph = 0; ph < 2; ph++) {
		report(phases[ph], len, "bw_MBps", "MB/s", &bw[ph], AGG_MEDIAN, NULL);
		report(phases[ph], len, "data_ok", "bool", &ok[ph], AGG_MIN, NULL);
		report(phases[ph], len, "bad_bytes", "B", &bad[ph], AGG_MAX, NULL);
		if (!ph) {
			report(phases[ph], len, "reg_ms", "ms", &regms, AGG_MEDIAN, NULL);
			report(phases[ph], len, "wc_errors", "count", &errs, AGG_MAX,
			       ",\"note\":\"first-touch and steady\"");
		}
	}
}

/* --- invalidation-storm ---------------------------------------------------------------------- */

struct storm {
	struct bench *b;
	struct ibv_mr *mr;
	uint8_t *lo, *hi;	/* the second half of the target */
	atomic_bool stop;
	uint64_t cycles;
	int err;		/* the first failed call's errno value */
	const char *err_what;
	uint64_t advise_errors;
};

/* Second thread: replace the second half's chunks, one at a time, until told to stop. */
static void *storm_thread(void *arg)
{
	struct storm *s = arg;

	while (!s->stop) {
		for (uint8_t *c = s->lo; c < s->hi && !s->stop; c += STORM_CHUNK) {
			void *q;
			int err;

			if (munmap(c, STORM_CHUNK)) {
				s->err = errno;
				s->err_what = "munmap";
				return NULL;
			}
			q = mmap(c, STORM_CHUNK, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE,
				 -1, 0);
			if (q != c) {
				s->err = q == MAP_FAILED ? errno : EEXIST;
				s->err_what = "mmap(MAP_FIXED_NOREPLACE) of the unmapped chunk";
				return NULL;
			}
			madvise(c, STORM_CHUNK, MADV_NOHUGEPAGE);
			for (uint64_t o = 0; o < STORM_CHUNK; o += PAGE)
				c[o] = 1;
			if (opt.mode != M_PINNED) {
				err = prefetch(s->b, s->mr, c, STORM_CHUNK);
				if (err && !s->advise_errors++)
					note("storm: prefetch of a chunk: %s", strerror(err));
			}
			s->cycles++;
		}
	}
	return NULL;
}

static void test_storm(struct bench *b)
{
	uint64_t len = opt.quick ? 16 * MIB : 64 * MIB, half = len / 2, nmsg = half / MSG;
	int passes = opt.quick ? 4 : 8;
	struct series bw = {}, cycles = {}, inval = {}, errs = {}, ok = {}, bad = {};
	bool counters = true;
	struct xfer x;
	char what[96];

	for (int r = 0; r < opt.repeats; r++) {
		uint8_t *p = xmap(len);
		uint64_t base = (uintptr_t)p, bytes = 0;
		struct hmmv_mr_stats s0, s1;
		struct storm st = { .b = b, .lo = p + half, .hi = p + len };
		uint32_t seed = 0;
		int wc_errors = 0, err;
		pthread_t th;
		double t0, secs;

		st.mr = xreg_target(b, p, len);
		/* Warm: the first half present, the second half with something to invalidate. */
		snprintf(what, sizeof(what), "invalidation-storm run %d warm-up", r + 1);
		if (!write_msgs(b, base, st.mr->rkey, nmsg, MSG, MSG, 10, &x)) {
			wc_errors += x.wc_errors;
			fail("%s: %d completion error(s), the first %s", what, x.wc_errors,
			     wc_str(&x));
		}
		memset(p + half, 1, half);
		if (opt.mode != M_PINNED)
			prefetch(b, st.mr, p + half, half);
		if (counters && mr_stats(b, st.mr, &s0))
			counters = false;

		err = pthread_create(&th, NULL, storm_thread, &st);
		if (err)
			die_err("pthread_create", err);
		t0 = now_s();
		for (int pass = 0; pass < passes; pass++) {
			seed = 11 + (uint32_t)pass;
			write_msgs(b, base, st.mr->rkey, nmsg, MSG, MSG, seed, &x);
			bytes += x.bytes;
			if (x.wc_errors) {
				wc_errors += x.wc_errors;
				fail("invalidation-storm run %d pass %d: %d completion error(s), "
				     "the first %s", r + 1, pass + 1, x.wc_errors, wc_str(&x));
			}
		}
		secs = now_s() - t0;
		st.stop = true;
		pthread_join(th, NULL);
		if (st.err)
			die_err(st.err_what, st.err);

		add(&bw, secs > 0 ? (double)bytes / secs / 1e6 : 0);
		add(&cycles, (double)st.cycles);
		add(&errs, wc_errors);
		if (counters && !mr_stats(b, st.mr, &s1))
			add(&inval, (double)(s1.page_invalidations - s0.page_invalidations));
		snprintf(what, sizeof(what), "invalidation-storm run %d (first half, last pass)",
			 r + 1);
		verify(what, base, nmsg, MSG, MSG, seed, &ok, &bad);
		xdereg(st.mr);
		munmap(p, len);
	}
	report("invalidation-storm", len, "bw_MBps", "MB/s", &bw, AGG_MEDIAN, NULL);
	report("invalidation-storm", len, "storm_cycles", "count", &cycles, AGG_MEDIAN, NULL);
	if (inval.n)
		report("invalidation-storm", len, "page_invalidations", "pages", &inval, AGG_MEDIAN,
		       NULL);
	report("invalidation-storm", len, "wc_errors", "count", &errs, AGG_MAX, NULL);
	report("invalidation-storm", len, "data_ok", "bool", &ok, AGG_MIN, NULL);
	report("invalidation-storm", len, "bad_bytes", "B", &bad, AGG_MAX, NULL);
}

/* --- overlap16 ---------------------------------------------------------------------------- */

/* Make [@p, @p + @len) present through @mr: prefetch-write, or (where that fails) RDMA WRITE. */
static void populate(struct bench *b, struct ibv_mr *mr, uint8_t *p, uint64_t len, uint32_t seed)
{
	struct xfer x;
	int err;

	err = prefetch(b, mr, p, len);
	if (!err)
		return;
	fail("overlap16: prefetch-write of %" PRIu64 " MiB: %s (%s); RDMA WRITE instead",
	     len / MIB, strerror(err), strerrorname_np(err) ?: "?");
	if (!write_msgs(b, (uintptr_t)p, mr->rkey, len / MSG, MSG, MSG, seed, &x))
		fail("overlap16: populating write: %d completion error(s), the first %s",
		     x.wc_errors, wc_str(&x));
}

static void test_overlap(struct bench *b)
{
	uint64_t len = opt.quick ? 64 * MIB : GIB, npages = len / PAGE;
	struct series regms = {}, popms = {}, invms = {}, basems = {}, kbpp = {}, svpp = {};
	struct series kbase = {}, knet = {};
	struct series msum = {}, mone = {}, mpp = {}, mapped = {};
	bool counters = opt.mode != M_PINNED;

	for (int r = 0; r < opt.repeats; r++) {
		struct ibv_mr *mr[NOVERLAP];
		int64_t k0, k1, sv0, sv1;
		uint64_t sum = 0, one = 0, pages = UINT64_MAX;
		uint8_t *p = xmap(len);
		double t0;

		k0 = meminfo_kernel(&sv0);
		t0 = now_s();
		for (int i = 0; i < NOVERLAP; i++)
			mr[i] = xreg_target(b, p, len);
		add(&regms, (now_s() - t0) * 1e3);
		if (opt.mode != M_PINNED) {
			t0 = now_s();
			for (int i = 0; i < NOVERLAP; i++)
				populate(b, mr[i], p, len, 20 + (uint32_t)i);
			add(&popms, (now_s() - t0) * 1e3);
		}
		k1 = meminfo_kernel(&sv1);
		add(&kbpp, (double)(k1 - k0) / (double)npages);
		add(&svpp, (double)(sv1 - sv0) / (double)npages);

		for (int i = 0; counters && i < NOVERLAP; i++) {
			struct hmmv_mr_stats s;

			if (mr_stats(b, mr[i], &s) || !has_mirror(&s)) {
				counters = false;
				break;
			}
			sum += s.mirror_bytes;
			one = s.mirror_bytes > one ? s.mirror_bytes : one;
			pages = s.mapped_pages < pages ? s.mapped_pages : pages;
		}
		if (counters) {
			if (pages < npages)
				fail("overlap16: an MR has %" PRIu64 " of %" PRIu64
				     " pages present after populating it", pages, npages);
			add(&msum, (double)sum);
			add(&mone, (double)one);
			add(&mapped, (double)pages);
			add(&mpp, pages ? (double)one / (double)pages : 0);
		}

		t0 = now_s();
		if (madvise(p, len, MADV_DONTNEED))
			die_err("madvise(MADV_DONTNEED)", errno);
		add(&invms, (now_s() - t0) * 1e3);
		if (counters) {
			struct hmmv_mr_stats s;

			if (!mr_stats(b, mr[0], &s) && s.mapped_pages)
				fail("overlap16: %" PRIu64 " pages present after MADV_DONTNEED",
				     s.mapped_pages);
		}
		for (int i = 0; i < NOVERLAP; i++)
			xdereg(mr[i]);
		munmap(p, len);

		/*
		 * The same without any MR: the kernel memory the population costs by itself
		 * (the noise floor of kernel_bytes_per_page), and the madvise.
		 */
		p = xmap(len);
		k0 = meminfo_kernel(&sv0);
		for (uint64_t o = 0; o < len; o += PAGE)
			p[o] = 1;
		k1 = meminfo_kernel(&sv1);
		add(&kbase, (double)(k1 - k0) / (double)npages);
		add(&knet, kbpp.v[kbpp.n - 1] - kbase.v[kbase.n - 1]);
		t0 = now_s();
		if (madvise(p, len, MADV_DONTNEED))
			die_err("madvise(MADV_DONTNEED)", errno);
		add(&basems, (now_s() - t0) * 1e3);
		munmap(p, len);
	}
	report("overlap16", len, "reg_ms", "ms", &regms, AGG_MEDIAN, ",\"note\":\"16 MRs\"");
	if (popms.n)
		report("overlap16", len, "populate_ms", "ms", &popms, AGG_MEDIAN,
		       ",\"note\":\"prefetch-write through each of the 16 MRs\"");
	report("overlap16", len, "invalidate_ms", "ms", &invms, AGG_MEDIAN,
	       ",\"note\":\"one MADV_DONTNEED of the buffer, 16 MRs present\"");
	report("overlap16", len, "invalidate_base_ms", "ms", &basems, AGG_MEDIAN,
	       ",\"note\":\"the same MADV_DONTNEED without MRs\"");
	report("overlap16", len, "kernel_bytes_per_page", "B/page", &kbpp, AGG_MEDIAN,
	       ",\"note\":\"meminfo delta: used - AnonPages - Buffers - Cached - PageTables, "
	       "per-CPU free lists counted free; before registration to after population\"");
	report("overlap16", len, "kernel_bytes_per_page_base", "B/page", &kbase, AGG_MEDIAN,
	       ",\"note\":\"the same meminfo delta around populating a buffer without MRs: the "
	       "noise floor\"");
	report("overlap16", len, "kernel_bytes_per_page_net", "B/page", &knet, AGG_MEDIAN,
	       ",\"note\":\"kernel_bytes_per_page minus kernel_bytes_per_page_base, per run\"");
	report("overlap16", len, "slab_vmalloc_bytes_per_page", "B/page", &svpp, AGG_MEDIAN,
	       ",\"note\":\"meminfo delta of Slab + VmallocUsed alone\"");
	if (msum.n) {
		report("overlap16", len, "mirror_bytes_sum", "B", &msum, AGG_MEDIAN,
		       ",\"note\":\"sum over the 16 MRs; each reports the table of the mirror "
		       "it views, shared by all 16\"");
		report("overlap16", len, "mirror_bytes", "B", &mone, AGG_MEDIAN,
		       ",\"note\":\"the largest of the 16 MRs' mirror_bytes\"");
		report("overlap16", len, "mapped_pages", "pages", &mapped, AGG_MEDIAN, NULL);
		report("overlap16", len, "mirror_bytes_per_page", "B/page", &mpp, AGG_MEDIAN,
		       ",\"note\":\"mirror_bytes / mapped_pages\"");
	}
}

/* --- mirror-per-page ----------------------------------------------------------------------- */

/* Whether the driver reports the mirror fields for an MR of this mode. */
static bool mirror_counters(struct bench *b)
{
	uint8_t *p = opt.mode == M_ODP ? xmap(PAGE) : NULL;
	struct ibv_mr *mr = xreg_target(b, p, PAGE);
	struct hmmv_mr_stats s;
	bool ok = !mr_stats(b, mr, &s) && has_mirror(&s);

	xdereg(mr);
	if (p)
		munmap(p, PAGE);
	return ok;
}

#define IB_HMM_STATS "/sys/kernel/debug/ib_hmm/stats"

/* A "name: value" line of ib_hmm's debugfs stats, or -1 when there is none. */
static long long ib_hmm_stat(const char *name)
{
	FILE *f = fopen(IB_HMM_STATS, "r");
	size_t n = strlen(name);
	long long v = -1;
	char line[128];

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, name, n) && line[n] == ':') {
			v = strtoll(line + n + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

static void test_mirror(struct bench *b)
{
	static const struct {
		const char *layout;
		uint64_t len, stride, msglen;
	} layouts[] = {
		{ "dense", 16 * MIB, MSG, MSG },
		{ "sparse", GIB, 2 * MIB, PAGE },
	};
	struct hmmv_mr_stats s;
	struct ibv_mr *mr;
	char extra[96];

	if (opt.mode == M_PINNED)
		return;
	if (!mirror_counters(b)) {
		note("mirror-per-page skipped: the driver reports no mirror counters");
		return;
	}
	for (size_t l = 0; l < ARRAY_SIZE(layouts); l++) {
		uint64_t len = layouts[l].len, nmsg = len / layouts[l].stride;
		uint64_t touched = nmsg * layouts[l].msglen / PAGE;
		struct series pp = {}, ppt = {}, mapped = {}, bytes = {};

		for (int r = 0; r < opt.repeats; r++) {
			uint8_t *p = xmap(len);
			struct series ok = {};
			struct xfer x;
			char what[96];

			mr = xreg_target(b, p, len);
			snprintf(what, sizeof(what), "mirror-per-page %s run %d", layouts[l].layout,
				 r + 1);
			if (!write_msgs(b, (uintptr_t)p, mr->rkey, nmsg, layouts[l].stride,
					layouts[l].msglen, 30, &x))
				fail("%s: %d completion error(s), the first %s", what, x.wc_errors,
				     wc_str(&x));
			verify(what, (uintptr_t)p, nmsg, layouts[l].stride, layouts[l].msglen, 30,
			       &ok, NULL);
			if (!mr_stats(b, mr, &s) && has_mirror(&s)) {
				if (s.mapped_pages < touched)
					fail("%s: %" PRIu64 " pages present, %" PRIu64 " written",
					     what, s.mapped_pages, touched);
				add(&bytes, (double)s.mirror_bytes);
				add(&mapped, (double)s.mapped_pages);
				add(&pp, s.mapped_pages ?
					 (double)s.mirror_bytes / (double)s.mapped_pages : 0);
				add(&ppt, (double)s.mirror_bytes / (double)touched);
			}
			xdereg(mr);
			munmap(p, len);
		}
		snprintf(extra, sizeof(extra), ",\"layout\":\"%s\",\"touched_pages\":%" PRIu64,
			 layouts[l].layout, touched);
		report("mirror-per-page", len, "mirror_bytes_per_page", "B/page", &pp, AGG_MEDIAN,
		       extra);
		report("mirror-per-page", len, "mirror_bytes_per_touched_page", "B/page", &ppt,
		       AGG_MEDIAN, extra);
		report("mirror-per-page", len, "mapped_pages", "pages", &mapped, AGG_MEDIAN, extra);
		report("mirror-per-page", len, "mirror_bytes", "B", &bytes, AGG_MEDIAN, extra);
	}

	if (opt.mode == M_ODP) {
		struct series bytes = {}, mapped = {};

		for (int r = 0; r < opt.repeats; r++) {
			uint8_t *p = xmap(GIB);

			mr = xreg_target(b, p, GIB);
			if (!mr_stats(b, mr, &s) && has_mirror(&s)) {
				if (s.mirror_bytes || s.mapped_pages)
					fail("mirror-untouched: an untouched MR has %" PRIu64
					     " mirror bytes, %" PRIu64 " pages", s.mirror_bytes,
					     s.mapped_pages);
				add(&bytes, (double)s.mirror_bytes);
				add(&mapped, (double)s.mapped_pages);
			}
			xdereg(mr);
			munmap(p, GIB);
		}
		report("mirror-untouched", GIB, "mirror_bytes", "B", &bytes, AGG_MEDIAN, NULL);
		report("mirror-untouched", GIB, "mapped_pages", "pages", &mapped, AGG_MEDIAN, NULL);
	} else {
		struct series bytes = {}, table = {}, ms = {}, rs = {};
		long long mirror_struct = ib_hmm_stat("mirror_struct_bytes");
		long long mr_struct = ib_hmm_stat("mr_struct_bytes");

		for (int r = 0; r < opt.repeats; r++) {
			mr = xreg_target(b, NULL, 0);
			if (!mr_stats(b, mr, &s) && has_mirror(&s)) {
				add(&table, (double)s.mirror_bytes);
				if (mirror_struct >= 0 && mr_struct >= 0) {
					add(&bytes, (double)(s.mirror_bytes + mirror_struct + mr_struct));
					add(&ms, (double)mirror_struct);
					add(&rs, (double)mr_struct);
				}
			}
			xdereg(mr);
		}
		if (mirror_struct < 0 || mr_struct < 0)
			note("implicit-fixed: no structure sizes in %s: table bytes only", IB_HMM_STATS);
		report("implicit-fixed", 0, "implicit_fixed_bytes", "B", &bytes, AGG_MEDIAN, NULL);
		report("implicit-fixed", 0, "implicit_table_bytes", "B", &table, AGG_MEDIAN, NULL);
		report("implicit-fixed", 0, "mirror_struct_bytes", "B", &ms, AGG_MEDIAN, NULL);
		report("implicit-fixed", 0, "mr_struct_bytes", "B", &rs, AGG_MEDIAN, NULL);
	}
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
