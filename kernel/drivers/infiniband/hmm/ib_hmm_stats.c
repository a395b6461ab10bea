// SPDX-License-Identifier: GPL-2.0
/*
 * ib_hmm statistics: per-MR counters (the kernel's ODP vocabulary) and
 * global totals in debugfs (ib_hmm/stats).
 */
#include <linux/debugfs.h>
#include <linux/minmax.h>
#include <linux/rculist.h>
#include <linux/seq_file.h>

#include "ib_hmm_priv.h"

struct ib_hmm_global_stats ib_hmm_stats;

/* Attribute the zapped run to every MR whose range overlaps it. */
static void ib_hmm_stats_flush_run(struct ib_hmm_zap_acct *acct)
{
	struct ib_hmm_mirror *m = acct->mirror;
	struct ib_hmm_mr *mr;
	u64 s, e;

	lockdep_assert_held(&m->lock);
	list_for_each_entry_rcu(mr, &m->mrs, node, lockdep_is_held(&m->lock)) {
		s = max(acct->run_start, mr->start & PAGE_MASK);
		e = min(acct->run_end, ALIGN(mr->end, PAGE_SIZE));
		if (s >= e)
			continue;
		atomic64_add((e - s) >> PAGE_SHIFT, &mr->invalidations);
		if (mr->inv_gen != m->inv_gen) {
			mr->inv_gen = m->inv_gen;
			atomic64_inc(&mr->invalidations_handled);
		}
	}
	acct->zapped += (acct->run_end - acct->run_start) >> PAGE_SHIFT;
	acct->run_start = 0;
	acct->run_end = 0;
}

/**
 * ib_hmm_stats_zapped() - account one zapped table entry
 * @priv: the struct ib_hmm_zap_acct of this invalidation
 * @start: first address of the entry
 * @end: end of the entry (exclusive)
 *
 * Contiguous entries are merged into runs before they are attributed.
 *
 * Context: mirror->lock held (called by ib_hmm_table_zap()).
 */
void ib_hmm_stats_zapped(void *priv, u64 start, u64 end)
{
	struct ib_hmm_zap_acct *acct = priv;

	if (acct->run_end != acct->run_start) {
		if (acct->run_end == start) {
			acct->run_end = end;
			return;
		}
		ib_hmm_stats_flush_run(acct);
	}
	acct->run_start = start;
	acct->run_end = end;
}

/**
 * ib_hmm_stats_zap_done() - finish the accounting of one invalidation
 * @acct: the accounting state passed to ib_hmm_table_zap()
 *
 * Context: mirror->lock held.
 */
void ib_hmm_stats_zap_done(struct ib_hmm_zap_acct *acct)
{
	if (acct->run_end != acct->run_start)
		ib_hmm_stats_flush_run(acct);
	if (acct->zapped)
		atomic64_add(acct->zapped, &ib_hmm_stats.invalidations);
}

/**
 * ib_hmm_stats_fault_failed() - count a data-path access that failed
 * @err: why: -EBUSY (invalidations kept winning), -ENOMEM, or another errno
 *	(unmapped, read-only, process gone, fatal signal)
 */
void ib_hmm_stats_fault_failed(int err)
{
	if (err == -EBUSY)
		atomic64_inc(&ib_hmm_stats.fault_fail_busy);
	else if (err == -ENOMEM)
		atomic64_inc(&ib_hmm_stats.fault_fail_nomem);
	else
		atomic64_inc(&ib_hmm_stats.fault_fail_other);
}

/**
 * ib_hmm_mr_get_counters() - read an MR's counters
 * @mr: the MR
 * @counters: filled in; see struct ib_hmm_mr_counters
 *
 * mapped_pages is counted by walking the populated part of the table
 * inside the MR's range.
 *
 * Context: may sleep; takes mirror->lock.
 */
void ib_hmm_mr_get_counters(struct ib_hmm_mr *mr,
			    struct ib_hmm_mr_counters *counters)
{
	struct ib_hmm_mirror *m = mr->mirror;

	counters->faults = atomic64_read(&mr->faults);
	counters->faults_handled = atomic64_read(&mr->faults_handled);
	counters->invalidations = atomic64_read(&mr->invalidations);
	counters->invalidations_handled =
		atomic64_read(&mr->invalidations_handled);
	counters->prefetch = atomic64_read(&mr->prefetch);

	mutex_lock(&m->lock);
	counters->mapped_pages = ib_hmm_table_count(&m->table, &m->lock,
						    mr->start, mr->end);
	counters->table_bytes = m->table.bytes;
	mutex_unlock(&m->lock);
}
EXPORT_SYMBOL_GPL(ib_hmm_mr_get_counters);

static int ib_hmm_stats_show(struct seq_file *s, void *unused)
{
	seq_printf(s, "mirrors: %lld\n", atomic64_read(&ib_hmm_stats.mirrors));
	seq_printf(s, "mrs: %lld\n", atomic64_read(&ib_hmm_stats.mrs));
	seq_printf(s, "faults: %lld\n", atomic64_read(&ib_hmm_stats.faults));
	seq_printf(s, "invalidations: %lld\n",
		   atomic64_read(&ib_hmm_stats.invalidations));
	seq_printf(s, "table_bytes: %lld\n",
		   atomic64_read(&ib_hmm_stats.table_bytes));
	/* DMA mirrors: pages mapped for devices, IOVA ranges held. */
	seq_printf(s, "dma_mapped_pages: %lld\n",
		   atomic64_read(&ib_hmm_stats.dma_mapped_pages));
	seq_printf(s, "dma_iova_ranges: %lld\n",
		   atomic64_read(&ib_hmm_stats.dma_iova_ranges));
	/* Data-path accesses a fault could not serve (an error completion follows). */
	seq_printf(s, "fault_fail_busy: %lld\n",
		   atomic64_read(&ib_hmm_stats.fault_fail_busy));
	seq_printf(s, "fault_fail_nomem: %lld\n",
		   atomic64_read(&ib_hmm_stats.fault_fail_nomem));
	seq_printf(s, "fault_fail_other: %lld\n",
		   atomic64_read(&ib_hmm_stats.fault_fail_other));
	/* What one mirror and one MR take from kmalloc, tables aside. */
	seq_printf(s, "mirror_struct_bytes: %zu\n",
		   kmalloc_size_roundup(sizeof(struct ib_hmm_mirror)));
	seq_printf(s, "mr_struct_bytes: %zu\n",
		   kmalloc_size_roundup(sizeof(struct ib_hmm_mr)));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(ib_hmm_stats);

/**
 * ib_hmm_stats_debugfs_init() - create the stats file
 * @dir: the ib_hmm debugfs directory
 *
 * Context: module init.
 */
void ib_hmm_stats_debugfs_init(struct dentry *dir)
{
	debugfs_create_file("stats", 0444, dir, NULL, &ib_hmm_stats_fops);
}
