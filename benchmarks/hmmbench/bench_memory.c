// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/* hmmbench tests: overlap16, mirror-per-page, mirror-untouched, implicit-fixed (see hmmbench.c). */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <infiniband/hmmverbs.h>
#include <infiniband/verbs.h>

#include "hmm_stats.h"
#include "hmmbench.h"

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

void test_overlap(struct bench *b)
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

void test_mirror(struct bench *b)
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
		long long mirror_struct = hmm_debugfs_stat("mirror_struct_bytes");
		long long mr_struct = hmm_debugfs_stat("mr_struct_bytes");

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
			note("implicit-fixed: no structure sizes in %s: table bytes only", HMM_DEBUGFS_STATS);
		report("implicit-fixed", 0, "implicit_fixed_bytes", "B", &bytes, AGG_MEDIAN, NULL);
		report("implicit-fixed", 0, "implicit_table_bytes", "B", &table, AGG_MEDIAN, NULL);
		report("implicit-fixed", 0, "mirror_struct_bytes", "B", &ms, AGG_MEDIAN, NULL);
		report("implicit-fixed", 0, "mr_struct_bytes", "B", &rs, AGG_MEDIAN, NULL);
	}
}
