// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/* hmmbench tests: reg, first-touch and steady, invalidation-storm (see hmmbench.c). */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include <infiniband/hmmverbs.h>
#include <infiniband/verbs.h>

#include "hmmbench.h"

/* --- reg ----------------------------------------------------------------------------------- */

void test_reg(struct bench *b)
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

void test_first_touch(struct bench *b)
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

void test_storm(struct bench *b)
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
