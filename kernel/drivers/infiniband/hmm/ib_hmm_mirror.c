// SPDX-License-Identifier: GPL-2.0
/*
 * ib_hmm mirrors: one per (owner, mm, DMA device), shared by every MR of
 * that owner in that process that asked for that device (or for none). A
 * mirror holds the mm with mmgrab() only and watches the whole user address
 * space with one mmu interval notifier. A DMA mirror maps its entries for
 * its device (ib_hmm_dma.c); the device is part of the key so that one
 * mirror has one way of mapping for its whole life, and a driver with
 * several DMA devices under one owner gets one mirror per device.
 */
#include <linux/device.h>
#include <linux/err.h>
#include <linux/hashtable.h>
#include <linux/minmax.h>
#include <linux/mmu_notifier.h>
#include <linux/rculist.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>

#include "ib_hmm_priv.h"

/* Protects ib_hmm_mirrors and the final put of every mirror's ref. */
static DEFINE_MUTEX(ib_hmm_mirrors_lock);
static DEFINE_HASHTABLE(ib_hmm_mirrors, 6);

static unsigned long ib_hmm_mirror_key(const void *owner, struct mm_struct *mm,
				       struct device *dma_dev)
{
	return hash_ptr(owner, 32) ^ (unsigned long)mm ^
	       hash_ptr(dma_dev, 32);
}

/*
 * Let the drivers of the MRs that overlap [start, end) drop their device
 * translations before anything is unmapped. Only MRs with ops are visited:
 * a mirror without any (rxe) does not walk its MRs here.
 */
static bool ib_hmm_mirror_invalidate_mrs(struct ib_hmm_mirror *m, u64 start,
					 u64 end, bool blockable)
{
	struct ib_hmm_mr *mr;
	u64 s, e;

	lockdep_assert_held(&m->lock);
	list_for_each_entry_rcu(mr, &m->mrs, node, lockdep_is_held(&m->lock)) {
		if (!mr->ops)
			continue;
		s = max(start, mr->start & PAGE_MASK);
		e = min(end, ALIGN(mr->end, PAGE_SIZE));
		if (s >= e)
			continue;
		if (!mr->ops->invalidate(mr, mr->ops_priv, s, e, blockable))
			return false;
	}
	return true;
}

/**
 * ib_hmm_mirror_dma_replacing() - a DMA entry is about to be remapped
 * @t: the table of a mirror (mirror->lock held)
 * @start: user address of the entry
 * @size: its size
 *
 * An install that changes a present entry of a DMA table (WRITE added:
 * another DMA direction) unmaps its old mapping without an invalidation.
 * The drivers of the MRs over it drop their translations first, so a device
 * never uses the old address after it is unmapped. Their ops->invalidate
 * may sleep; blockable is true (the faulting thread, not an OOM reaper).
 * Nothing is called when ib_hmm_mirror_dma_upgrading() covered the entry.
 */
void ib_hmm_mirror_dma_replacing(struct ib_hmm_table *t, u64 start,
				 u64 size)
{
	struct ib_hmm_mirror *m = container_of(t, struct ib_hmm_mirror, table);

	if (!m->nr_ops)
		return;
	if (start >= m->upgrade_start && start + size <= m->upgrade_end)
		return;
	ib_hmm_mirror_invalidate_mrs(m, start, start + size, true);
}

/**
 * ib_hmm_mirror_dma_upgrading() - a fault is about to remap present pages
 * @m: a mirror with MRs with ops (mirror->lock held)
 * @start: first page that a write fault's install will change
 * @end: end of the last one
 *
 * Calls the MRs' hooks once for the span instead of once per page from the
 * install, which then skips the pages of [@start, @end) until
 * ib_hmm_mirror_dma_upgraded(). A driver that drops translations with a
 * device command (mlx5: a UMR per call) pays one per fault batch.
 */
void ib_hmm_mirror_dma_upgrading(struct ib_hmm_mirror *m, u64 start, u64 end)
{
	lockdep_assert_held(&m->lock);
	ib_hmm_mirror_invalidate_mrs(m, start, end, true);
	m->upgrade_start = start;
	m->upgrade_end = end;
}

/* The install of the span of ib_hmm_mirror_dma_upgrading() is over. */
void ib_hmm_mirror_dma_upgraded(struct ib_hmm_mirror *m)
{
	lockdep_assert_held(&m->lock);
	m->upgrade_start = 0;
	m->upgrade_end = 0;
}

/*
 * The invalidate side of hmm.rst: blockable check, lock, set_seq, zap,
 * unlock. Drivers' device translations go first (ops->invalidate), then
 * the zap, which takes each populated granule's stripe for write, so
 * in-flight data-path accesses to the range end before this returns.
 */
static bool ib_hmm_mirror_invalidate(struct mmu_interval_notifier *mni,
				     const struct mmu_notifier_range *range,
				     unsigned long cur_seq)
{
	struct ib_hmm_mirror *m = container_of(mni, struct ib_hmm_mirror,
					       notifier);
	bool blockable = mmu_notifier_range_blockable(range);
	struct ib_hmm_zap_acct acct = { .mirror = m };
	int ret;

	if (blockable)
		mutex_lock(&m->lock);
	else if (!mutex_trylock(&m->lock))
		return false;

	mmu_interval_set_seq(mni, cur_seq);
	if (m->nr_ops &&
	    !ib_hmm_mirror_invalidate_mrs(m, range->start, range->end,
					  blockable)) {
		mutex_unlock(&m->lock);
		return false;
	}
	m->inv_gen++;
	ret = ib_hmm_table_zap(&m->table, &m->lock, range->start, range->end,
			       blockable, ib_hmm_stats_zapped, &acct);
	ib_hmm_stats_zap_done(&acct);
	mutex_unlock(&m->lock);
	return !ret;
}

/* The final zap of a DMA mirror is no invalidation: nothing to count. */
static void ib_hmm_mirror_zapped_quietly(void *priv, u64 start, u64 end)
{
}

static const struct mmu_interval_notifier_ops ib_hmm_mirror_ops = {
	.invalidate = ib_hmm_mirror_invalidate,
};

/**
 * ib_hmm_mirror_get() - find or create the mirror of (@owner, @mm, @dma_dev)
 * @owner: opaque owner (device) pointer
 * @mm: the address space to mirror
 * @dma_dev: the device to map for, or NULL (no DMA mapping)
 *
 * Context: process context, may sleep; takes ib_hmm_mirrors_lock and, to
 * create a mirror, the mmap lock of @mm.
 * Return: the mirror with a reference held, ERR_PTR(-ENOMEM), or
 * ERR_PTR(-EFAULT) if the process of @mm has exited.
 */
struct ib_hmm_mirror *ib_hmm_mirror_get(const void *owner,
					struct mm_struct *mm,
					struct device *dma_dev)
{
	unsigned long key = ib_hmm_mirror_key(owner, mm, dma_dev);
	struct ib_hmm_mirror *m;
	int ret;

	mutex_lock(&ib_hmm_mirrors_lock);
	hash_for_each_possible(ib_hmm_mirrors, m, hnode, key) {
		if (m->owner == owner && m->mm == mm &&
		    m->table.dma_dev == dma_dev) {
			refcount_inc(&m->ref);
			goto unlock;
		}
	}

	m = kzalloc_obj(*m, GFP_KERNEL);
	if (!m) {
		ret = -ENOMEM;
		goto err;
	}
	m->owner = owner;
	m->mm = mm;
	refcount_set(&m->ref, 1);
	mutex_init(&m->lock);
	INIT_LIST_HEAD(&m->mrs);
	spin_lock_init(&m->atomic_lock);
	ib_hmm_table_init(&m->table, mm->task_size);
	if (dma_dev)
		ib_hmm_dma_table_init(&m->table, get_device(dma_dev));

	/* Registering a notifier needs a live mm; keep it only for that. */
	if (!mmget_not_zero(mm)) {
		ret = -EFAULT;
		goto free_mirror;
	}
	ret = mmu_interval_notifier_insert(&m->notifier, mm, 0,
					   ULONG_MAX & PAGE_MASK,
					   &ib_hmm_mirror_ops);
	mmput(mm);
	if (ret)
		goto free_mirror;
	mmgrab(mm);
	hash_add(ib_hmm_mirrors, &m->hnode, key);
	atomic64_inc(&ib_hmm_stats.mirrors);
unlock:
	mutex_unlock(&ib_hmm_mirrors_lock);
	return m;

free_mirror:
	put_device(dma_dev);
	kfree(m);
err:
	mutex_unlock(&ib_hmm_mirrors_lock);
	return ERR_PTR(ret);
}

/**
 * ib_hmm_mirror_put() - drop a mirror reference
 * @m: the mirror
 *
 * The last reference unmaps everything for the DMA device (DMA mirrors),
 * removes the notifier, frees the table and drops the mm and the device.
 *
 * Context: may sleep; no ib_hmm lock held.
 */
void ib_hmm_mirror_put(struct ib_hmm_mirror *m)
{
	if (!refcount_dec_and_mutex_lock(&m->ref, &ib_hmm_mirrors_lock))
		return;
	hash_del(&m->hnode);
	mutex_unlock(&ib_hmm_mirrors_lock);

	/*
	 * The device must lose its mappings while the notifier still keeps
	 * the pages from being freed under them: zap everything first.
	 */
	if (m->table.dma_dev) {
		mutex_lock(&m->lock);
		ib_hmm_table_zap(&m->table, &m->lock, 0, U64_MAX, true,
				 ib_hmm_mirror_zapped_quietly, NULL);
		mutex_unlock(&m->lock);
	}
	/* Waits for running invalidations; none start afterwards. */
	mmu_interval_notifier_remove(&m->notifier);
	ib_hmm_table_destroy(&m->table);
	put_device(m->table.dma_dev);
	mmdrop(m->mm);
	atomic64_dec(&ib_hmm_stats.mirrors);
	kfree(m);
}

/**
 * ib_hmm_mirror_add_mr() - make @mr see the invalidations of @m
 * @m: the mirror
 * @mr: a new MR view on it
 *
 * Context: may sleep; takes mirror->lock.
 */
void ib_hmm_mirror_add_mr(struct ib_hmm_mirror *m, struct ib_hmm_mr *mr)
{
	mutex_lock(&m->lock);
	list_add_tail_rcu(&mr->node, &m->mrs);
	mutex_unlock(&m->lock);
}

/**
 * ib_hmm_mirror_del_mr() - remove @mr from the invalidation accounting
 * @m: the mirror
 * @mr: an MR view on it
 *
 * Context: may sleep; takes mirror->lock.
 */
void ib_hmm_mirror_del_mr(struct ib_hmm_mirror *m, struct ib_hmm_mr *mr)
{
	mutex_lock(&m->lock);
	list_del_rcu(&mr->node);
	if (mr->ops)
		m->nr_ops--;
	mutex_unlock(&m->lock);
}
