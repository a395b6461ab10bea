// SPDX-License-Identifier: GPL-2.0
/*
 * ib_hmm mirror table: a sparse multi-level table keyed by virtual address.
 *
 * Nodes are single pages of 512 u64 slots, allocated on first use and freed
 * (RCU-deferred) when they become empty, so memory grows with touched pages
 * only: about 8 bytes per mirrored 4 KiB page plus one node per level on the
 * path, and nothing for an MR that was never touched. A 2 MiB (or larger)
 * CPU mapping is one HUGE entry in a level 1 slot, without a leaf.
 *
 * The root is the lowest node whose span holds every address installed since
 * the table was last empty, not the top level: mirrored memory within one
 * 1 GiB region costs one node above its leaves instead of levels - 1. The
 * root word holds the node's address and its level (low bits); the node's
 * span starts at its page's private value, set before the node is published
 * as the root. Installing outside the span grows the root one level at a
 * time, each step publishing a parent of the old root.
 *
 * Writers (install, zap) hold mirror->lock; readers walk with READ_ONCE()
 * under rcu_read_lock() (see Locking in ib_hmm_priv.h).
 *
 * The table of a DMA mirror (t->dma_dev) also maps every entry it installs
 * for that device and unmaps every entry it zaps, under the granule's
 * stripe, through ib_hmm_dma.c; its leaf and level 1 nodes carry the DMA
 * state in extra pages after the slots (see struct ib_hmm_dma_gran).
 */
#include <linux/error-injection.h>
#include <linux/gfp.h>
#include <linux/minmax.h>
#include <linux/mm.h>
#include <linux/rcupdate.h>
#include <linux/string.h>

#include "ib_hmm_priv.h"

static inline void ib_hmm_slot_publish(u64 *slot, u64 *node)
{
	/* Pairs with READ_ONCE() in ib_hmm_table_lookup(): node is zeroed. */
	smp_store_release(slot, (u64)(unsigned long)node);
}

/*
 * DMA tables: the DMA state of the granule of level 1 slot @slot (the node
 * starts at the slot's page).
 */
static inline struct ib_hmm_dma_gran *ib_hmm_slot_gran(u64 *slot)
{
	u64 *node = PTR_ALIGN_DOWN(slot, PAGE_SIZE);

	return &ib_hmm_node_grans(node)[slot - node];
}

/* The root word: the root node's address, its level in the low bits. */
#define IB_HMM_ROOT_LEVEL_MASK	7UL

static inline u64 *ib_hmm_root_node(u64 root)
{
	return (u64 *)(unsigned long)(root & ~(u64)IB_HMM_ROOT_LEVEL_MASK);
}

static inline unsigned int ib_hmm_root_level(u64 root)
{
	return root & IB_HMM_ROOT_LEVEL_MASK;
}

/* First address of the span of a root node (see ib_hmm_root_publish()). */
static inline u64 ib_hmm_root_base(const u64 *node)
{
	return page_private(virt_to_page(node));
}

/* Whether @a and @b lie in the same span of a node at @level. */
static inline bool ib_hmm_same_span(u64 a, u64 b, unsigned int level)
{
	return !((a ^ b) >> ib_hmm_level_shift(level + 1));
}

/* First address of the span of a node at @level that holds @addr. */
static inline u64 ib_hmm_span_base(u64 addr, unsigned int level)
{
	return addr & ~((1ULL << ib_hmm_level_shift(level + 1)) - 1);
}

/* Make @node, whose span starts at @base, the root at @level. */
static void ib_hmm_root_publish(struct ib_hmm_table *t, u64 *node,
				unsigned int level, u64 base)
{
	set_page_private(virt_to_page(node), base);
	/* Pairs with READ_ONCE() in ib_hmm_table_lookup(): base and slots. */
	smp_store_release(&t->root, (u64)(unsigned long)node | level);
}

/*
 * The level 1 slot of the granule of @addr, which held something, is about
 * to change or has changed: views that cached it must look again (see
 * ib_hmm_mr_entry()). After the slot is written, so that a reader that sees
 * the new generation also sees the new slot.
 */
static void ib_hmm_granule_changed(struct ib_hmm_table *t, u64 addr)
{
	unsigned int i = ib_hmm_stripe_index(addr);

	smp_wmb();	/* pairs with smp_rmb() in ib_hmm_mr_entry() */
	WRITE_ONCE(t->gen[i], t->gen[i] + 1);
}

/**
 * ib_hmm_table_init() - set up an empty table for an address space
 * @t: the table
 * @task_size: the first user address not to be covered
 *
 * Uses as many 9-bit levels as @task_size needs (4 for 47-bit, 5 for
 * 56-bit user address spaces). Allocates nothing.
 */
void ib_hmm_table_init(struct ib_hmm_table *t, u64 task_size)
{
	unsigned int bits, levels, i;

	bits = task_size > 1 ? fls64(task_size - 1) : 1;
	bits = max_t(unsigned int, bits, ib_hmm_level_shift(2));
	levels = DIV_ROUND_UP(bits - PAGE_SHIFT, IB_HMM_LEVEL_BITS);
	levels = min_t(unsigned int, levels, IB_HMM_MAX_LEVELS);

	t->root = 0;
	t->levels = levels;
	t->limit = 1ULL << ib_hmm_level_shift(levels);
	t->bytes = 0;
	t->nr_spare = 0;
	t->dma_dev = NULL;
	t->dma_iova = false;
	t->order[0] = 0;
	t->order[1] = 0;
	t->nr_spare_big[0] = 0;
	t->nr_spare_big[1] = 0;
	for (i = 0; i < IB_HMM_NR_STRIPES; i++) {
		init_rwsem(&t->stripe[i]);
		t->gen[i] = 0;
	}
}

static void ib_hmm_table_account(struct ib_hmm_table *t, long delta)
{
	WRITE_ONCE(t->bytes, t->bytes + delta);
	atomic64_add(delta, &ib_hmm_stats.table_bytes);
}

/* Page order of the nodes at @level: above 0 only for DMA tables. */
static inline unsigned int ib_hmm_node_order(struct ib_hmm_table *t,
					     unsigned int level)
{
	return level <= 1 ? t->order[level] : 0;
}

static inline unsigned long ib_hmm_node_bytes(const u64 *node)
{
	return PAGE_SIZE << compound_order(virt_to_page(node));
}

/* A zeroed node of @order pages (compound when @order > 0). */
static u64 *ib_hmm_node_get_pages(unsigned int order, gfp_t gfp)
{
	if (order)
		gfp |= __GFP_COMP;
	return (u64 *)__get_free_pages(gfp | __GFP_ZERO, order);
}

static void ib_hmm_node_free_pages(u64 *node)
{
	struct page *page = virt_to_page(node);

	set_page_private(page, 0);
	__free_pages(page, compound_order(page));
}

static u64 *ib_hmm_node_alloc(struct ib_hmm_table *t, unsigned int level)
{
	unsigned int order = ib_hmm_node_order(t, level);
	u64 *node;

	if (order && t->nr_spare_big[level])
		node = t->spare_big[level][--t->nr_spare_big[level]];
	else if (!order && t->nr_spare)
		node = t->spare[--t->nr_spare];
	else
		node = ib_hmm_node_get_pages(order, GFP_NOWAIT | __GFP_NOWARN);
	if (node)
		ib_hmm_table_account(t, PAGE_SIZE << order);
	return node;
}

static void ib_hmm_node_free_rcu(struct rcu_head *head)
{
	struct page *page = container_of(head, struct page, rcu_head);

	ib_hmm_node_free_pages(page_address(page));
}

/*
 * Clear the slot (or root word) *@slot that pointed to the empty @node and
 * free the node after a grace period.
 */
static void ib_hmm_node_unlink(struct ib_hmm_table *t, u64 *slot, u64 *node)
{
	WRITE_ONCE(*slot, 0);
	ib_hmm_table_account(t, -(long)ib_hmm_node_bytes(node));
	call_rcu(&virt_to_page(node)->rcu_head, ib_hmm_node_free_rcu);
}

static bool ib_hmm_node_empty(const u64 *node)
{
	return !memchr_inv(node, 0, PAGE_SIZE);
}

static void ib_hmm_node_destroy(struct ib_hmm_table *t, u64 *node,
				unsigned int level)
{
	unsigned int i;
	u64 v;

	for (i = 0; level && i < IB_HMM_LEVEL_SLOTS; i++) {
		v = node[i];
		if (v && !ib_hmm_slot_is_entry(v))
			ib_hmm_node_destroy(t, ib_hmm_slot_node(v), level - 1);
		/* Mappings are gone (ib_hmm_table_unmap_all()); ranges too. */
		if (level == 1 && t->dma_dev)
			ib_hmm_dma_gran_free(t, &ib_hmm_node_grans(node)[i]);
	}
	ib_hmm_node_free_pages(node);
}

/**
 * ib_hmm_table_destroy() - free every node of a table
 * @t: the table; nobody may use it any more
 */
void ib_hmm_table_destroy(struct ib_hmm_table *t)
{
	unsigned int l, n;

	if (t->root)
		ib_hmm_node_destroy(t, ib_hmm_root_node(t->root),
				    ib_hmm_root_level(t->root));
	t->root = 0;
	ib_hmm_table_account(t, -(long)t->bytes);
	while (t->nr_spare)
		free_page((unsigned long)t->spare[--t->nr_spare]);
	for (l = 0; l < 2; l++)
		while (t->nr_spare_big[l]) {
			n = --t->nr_spare_big[l];
			ib_hmm_node_free_pages(t->spare_big[l][n]);
		}
}

/**
 * ib_hmm_table_refill() - top up the spare node pool
 * @t: the table
 * @lock: mirror->lock, not held by the caller
 *
 * Installs run under mirror->lock, which reclaim may need (the invalidate
 * callback), so they only allocate with GFP_NOWAIT. When that fails the
 * fault helper drops the lock, calls this (which may sleep in reclaim) and
 * retries.
 *
 * Context: may sleep; takes @lock.
 * Return: true if the pool holds at least one node.
 */
bool ib_hmm_table_refill(struct ib_hmm_table *t, struct mutex *lock)
{
	void *nodes[IB_HMM_SPARE_NODES], *big[2][IB_HMM_SPARE_BIG];
	unsigned int n, nb[2] = { 0, 0 }, l;
	bool ok;

	for (n = 0; n < IB_HMM_SPARE_NODES; n++) {
		nodes[n] = (void *)get_zeroed_page(GFP_KERNEL);
		if (!nodes[n])
			break;
	}
	/* DMA tables: leaf and level 1 nodes of more than one page. */
	for (l = 0; l < 2; l++) {
		if (!t->order[l])
			continue;
		for (; nb[l] < IB_HMM_SPARE_BIG; nb[l]++) {
			big[l][nb[l]] = ib_hmm_node_get_pages(t->order[l],
							      GFP_KERNEL);
			if (!big[l][nb[l]])
				break;
		}
	}
	mutex_lock(lock);
	while (n && t->nr_spare < IB_HMM_SPARE_NODES)
		t->spare[t->nr_spare++] = nodes[--n];
	ok = t->nr_spare > 0;
	for (l = 0; l < 2; l++) {
		while (nb[l] && t->nr_spare_big[l] < IB_HMM_SPARE_BIG)
			t->spare_big[l][t->nr_spare_big[l]++] = big[l][--nb[l]];
		if (t->order[l] && !t->nr_spare_big[l])
			ok = false;
	}
	mutex_unlock(lock);
	while (n)
		free_page((unsigned long)nodes[--n]);
	for (l = 0; l < 2; l++)
		while (nb[l])
			ib_hmm_node_free_pages(big[l][--nb[l]]);
	return ok;
}

/**
 * ib_hmm_table_granule() - the level 1 slot of the 2 MiB granule of @addr
 * @t: the table
 * @addr: a user virtual address
 *
 * Context: as ib_hmm_table_lookup().
 * Return: what the slot holds: a leaf, a HUGE entry, or 0 (also when no
 * node covers @addr). ib_hmm_granule_entry() gives a page's entry from it.
 */
u64 ib_hmm_table_granule(struct ib_hmm_table *t, u64 addr)
{
	unsigned int level;
	u64 root, *node, v;

	if (addr >= t->limit)
		return 0;
	root = READ_ONCE(t->root);
	if (!root)
		return 0;
	node = ib_hmm_root_node(root);
	level = ib_hmm_root_level(root);
	if (!ib_hmm_same_span(addr, ib_hmm_root_base(node), level))
		return 0;
	v = (u64)(unsigned long)node;
	for (; level > 0; level--) {
		if (!v || ib_hmm_slot_is_entry(v))
			return v;
		v = READ_ONCE(ib_hmm_slot_node(v)[ib_hmm_slot_index(addr, level)]);
	}
	return v;
}

/**
 * ib_hmm_table_lookup() - the entry of the 4 KiB page at @addr
 * @t: the table
 * @addr: a user virtual address
 *
 * Context: rcu_read_lock() or mirror->lock held. To use the page, the caller
 * must also hold the stripe of @addr (read) from before the lookup until
 * the access ends.
 * Return: 0 if no page is mirrored at @addr, else an entry with the pfn of
 * that 4 KiB page and IB_HMM_E_* flags (IB_HMM_E_HUGE if it comes from a
 * huge entry).
 */
u64 ib_hmm_table_lookup(struct ib_hmm_table *t, u64 addr)
{
	return ib_hmm_granule_entry(ib_hmm_table_granule(t, addr), addr);
}

/**
 * ib_hmm_table_lookup_dma() - the entry and DMA address of the page at @addr
 * @t: a DMA table
 * @lock: mirror->lock, held
 * @addr: a user virtual address
 * @dma: set to the device's address of the page when it is present
 *
 * Context: mirror->lock held: the mapping stays until the lock is dropped.
 * Return: as ib_hmm_table_lookup().
 */
u64 ib_hmm_table_lookup_dma(struct ib_hmm_table *t, struct mutex *lock,
			    u64 addr, dma_addr_t *dma)
{
	u64 off = addr & (IB_HMM_GRANULE_SIZE - 1) & PAGE_MASK;
	unsigned int level, idx;
	struct ib_hmm_dma_gran *g;
	u64 root, *node, *leaf, v;

	lockdep_assert_held(lock);
	root = t->root;
	if (!t->dma_dev || addr >= t->limit || !root)
		return 0;
	node = ib_hmm_root_node(root);
	level = ib_hmm_root_level(root);
	if (!ib_hmm_same_span(addr, ib_hmm_root_base(node), level))
		return 0;
	for (; level > 1; level--) {
		v = node[ib_hmm_slot_index(addr, level)];
		if (!v)
			return 0;
		node = ib_hmm_slot_node(v);
	}
	idx = ib_hmm_slot_index(addr, 1);
	v = node[idx];
	g = &ib_hmm_node_grans(node)[idx];
	if (!v)
		return 0;
	if (ib_hmm_slot_is_entry(v)) {
		*dma = ib_hmm_dma_gran_base(t, g) + off;
		return v + ((u64)ib_hmm_slot_index(addr, 0) << PAGE_SHIFT);
	}
	leaf = ib_hmm_slot_node(v);
	idx = ib_hmm_slot_index(addr, 0);
	v = leaf[idx];
	if (!(v & IB_HMM_E_VALID))
		return 0;
	if (t->dma_iova)
		*dma = ib_hmm_dma_gran_base(t, g) + off;
	else
		*dma = ib_hmm_leaf_dma(leaf)[idx];
	return v;
}

/*
 * Make the root's span hold @addr: create a level 1 root for an empty table,
 * else add parents above the root until its span holds @addr. Each step
 * publishes a valid root, so a failed allocation leaves a usable table.
 */
static int ib_hmm_root_cover(struct ib_hmm_table *t, u64 addr)
{
	unsigned int level;
	u64 *node, *parent, base;

	if (!t->root) {
		node = ib_hmm_node_alloc(t, 1);
		if (!node)
			return -ENOMEM;
		ib_hmm_root_publish(t, node, 1, ib_hmm_span_base(addr, 1));
		return 0;
	}
	for (;;) {
		node = ib_hmm_root_node(t->root);
		level = ib_hmm_root_level(t->root);
		base = ib_hmm_root_base(node);
		if (ib_hmm_same_span(addr, base, level))
			return 0;
		/* The top level spans the whole table and addr < t->limit. */
		if (WARN_ON_ONCE(level + 1 >= t->levels))
			return -EFAULT;
		parent = ib_hmm_node_alloc(t, level + 1);
		if (!parent)
			return -ENOMEM;
		parent[ib_hmm_slot_index(base, level + 1)] =
			(u64)(unsigned long)node;
		ib_hmm_root_publish(t, parent, level + 1,
				    ib_hmm_span_base(base, level + 1));
	}
}

/* The level 1 slot (2 MiB granule) of @addr, allocating the path to it. */
static u64 *ib_hmm_table_walk_alloc(struct ib_hmm_table *t, u64 addr)
{
	unsigned int level;
	u64 root_slot, *slot = &root_slot;
	u64 *node;

	if (ib_hmm_root_cover(t, addr))
		return NULL;
	root_slot = (u64)(unsigned long)ib_hmm_root_node(t->root);
	for (level = ib_hmm_root_level(t->root); level >= 1; level--) {
		if (!*slot) {
			node = ib_hmm_node_alloc(t, level);
			if (!node)
				return NULL;
			ib_hmm_slot_publish(slot, node);
		}
		node = ib_hmm_slot_node(*slot);
		slot = &node[ib_hmm_slot_index(addr, level)];
	}
	return slot;
}

/*
 * The device writes through the kernel's mapping of the page, which leaves
 * the CPU's page table entry clean: a page it may have written must be
 * marked dirty before it leaves the mirror, or reclaim would drop (clean
 * shmem, MADV_FREE'd anonymous memory) or not write back what the device
 * wrote. As ib_umem_odp does, every entry with WRITE counts as written.
 * mirror->lock keeps the page mapped in the meantime.
 */
static void ib_hmm_entry_dirty(u64 entry)
{
	if (entry & IB_HMM_E_WRITE)
		folio_mark_dirty(pfn_folio(ib_hmm_entry_pfn(entry)));
}

/*
 * DMA tables, outside a zap: unmap valid entry @old (@size bytes at @off in
 * granule @g, which maps user address @base) that an install replaces. A
 * device may hold its DMA address (an MTT), so the drivers of the MRs over
 * it drop that first, as in an invalidation (ib_hmm_mirror_dma_replacing()).
 */
static void ib_hmm_table_dma_drop(struct ib_hmm_table *t,
				  struct ib_hmm_dma_gran *g, u64 base,
				  dma_addr_t *addr, u64 off, size_t size,
				  u64 old)
{
	ib_hmm_mirror_dma_replacing(t, base + off, size);
	ib_hmm_dma_unmap(t, g, addr, off, size, old & IB_HMM_E_WRITE);
}

/*
 * DMA tables: replace the mapping of entry @old (if valid) by one of entry
 * @new, for @size bytes at @off in granule @g (@addr: where page mode keeps
 * the DMA address). The entry changes only if both succeed.
 */
static int ib_hmm_table_dma_remap(struct ib_hmm_table *t,
				  struct ib_hmm_dma_gran *g, u64 base,
				  dma_addr_t *addr, u64 off, size_t size,
				  u64 old, u64 new)
{
	if (old & IB_HMM_E_VALID)
		ib_hmm_table_dma_drop(t, g, base, addr, off, size, old);
	return ib_hmm_dma_map(t, g, addr, off, ib_hmm_entry_pfn(new), size,
			      new & IB_HMM_E_WRITE);
}

/**
 * ib_hmm_table_install() - make the page at @addr present
 * @t: the table
 * @lock: mirror->lock, held
 * @addr: page-aligned user virtual address
 * @pfn: pfn of the 4 KiB page mapped at @addr
 * @order: CPU mapping order (hmm_pfn_to_map_order())
 * @write: install with IB_HMM_E_WRITE
 * @made_present: incremented by the number of 4 KiB pages that became
 *	present
 *
 * A mapping of order >= 9 becomes one HUGE entry covering the whole 2 MiB
 * granule of @addr, unless that granule already has a leaf.
 *
 * In a DMA table the entry is mapped for the device before it is stored;
 * an entry that changes (another page, or WRITE added) is unmapped and
 * mapped again, so a device must look its DMA address up again after a
 * fault (page mode gives it a new one). Before the old mapping goes, the
 * drivers of the MRs over it drop their translations of it, as in an
 * invalidation (struct ib_hmm_mr_ops).
 *
 * Context: mirror->lock held, after a successful mmu_interval_read_retry().
 * Sleeps only in a driver's ops->invalidate.
 * Return: the number of pages from @addr on that are now covered (>= 1),
 * -ENOMEM if a node could not be allocated without sleeping, -EFAULT if
 * @addr is beyond the table, -EIO if the DMA mapping failed (the page is
 * then not present).
 */
int ib_hmm_table_install(struct ib_hmm_table *t, struct mutex *lock, u64 addr,
			 unsigned long pfn, unsigned int order, bool write,
			 u64 *made_present)
{
	unsigned int idx = ib_hmm_slot_index(addr, 0);
	u64 base = addr & ~(u64)(IB_HMM_GRANULE_SIZE - 1);
	struct ib_hmm_dma_gran *g = NULL;
	u64 *slot, *leaf, old, new;
	int ret;

	lockdep_assert_held(lock);
	if (addr >= t->limit)
		return -EFAULT;
	slot = ib_hmm_table_walk_alloc(t, addr);
	if (!slot)
		return -ENOMEM;
	old = *slot;
	if (t->dma_dev)
		g = ib_hmm_slot_gran(slot);

	if (order >= IB_HMM_LEVEL_BITS &&
	    (!old || ib_hmm_slot_is_entry(old))) {
		new = ((u64)(pfn - idx) << PAGE_SHIFT) | IB_HMM_E_VALID |
		      IB_HMM_E_HUGE | (write ? IB_HMM_E_WRITE : 0);
		/* A read fault does not take WRITE away from the same page. */
		if (!write && old == (new | IB_HMM_E_WRITE))
			new = old;
		if (g && new != old) {
			ret = ib_hmm_table_dma_remap(t, g, base, &g->addr, 0,
						     IB_HMM_GRANULE_SIZE, old,
						     new);
			if (ret) {
				/* @old is unmapped: drop it, keeping its writes. */
				WRITE_ONCE(*slot, 0);
				if (old)
					ib_hmm_granule_changed(t, addr);
				if (ib_hmm_slot_is_entry(old))
					ib_hmm_entry_dirty(old);
				ib_hmm_dma_gran_free(t, g);
				return ret;
			}
		}
		if (!old)
			*made_present += IB_HMM_GRANULE_PAGES;
		WRITE_ONCE(*slot, new);
		if (old && new != old)
			ib_hmm_granule_changed(t, addr);
		return IB_HMM_GRANULE_PAGES - idx;
	}

	if (!old || ib_hmm_slot_is_entry(old)) {
		/* A stale huge entry cannot survive a split; be safe anyway. */
		leaf = ib_hmm_node_alloc(t, 0);
		if (!leaf)
			return -ENOMEM;
		if (g && old)
			ib_hmm_table_dma_drop(t, g, base, &g->addr, 0,
					      IB_HMM_GRANULE_SIZE, old);
		ib_hmm_slot_publish(slot, leaf);
		if (old)
			ib_hmm_granule_changed(t, addr);
	} else {
		leaf = ib_hmm_slot_node(old);
	}
	old = leaf[idx];
	new = ((u64)pfn << PAGE_SHIFT) | IB_HMM_E_VALID |
	      (write ? IB_HMM_E_WRITE : 0);
	if (!write && old == (new | IB_HMM_E_WRITE))
		new = old;
	if (g && new != old) {
		ret = ib_hmm_table_dma_remap(t, g, base,
					     t->dma_iova ? NULL :
					     &ib_hmm_leaf_dma(leaf)[idx],
					     (u64)idx << PAGE_SHIFT, PAGE_SIZE,
					     old, new);
		if (ret) {
			/* @old is unmapped: drop it, keeping its writes. */
			WRITE_ONCE(leaf[idx], 0);
			if (old & IB_HMM_E_VALID)
				ib_hmm_entry_dirty(old);
			return ret;
		}
	}
	if (!(old & IB_HMM_E_VALID))
		(*made_present)++;
	WRITE_ONCE(leaf[idx], new);
	return 1;
}
ALLOW_ERROR_INJECTION(ib_hmm_table_install, ERRNO);

struct ib_hmm_zap {
	struct ib_hmm_table *t;
	u64 start;
	u64 end;
	bool blockable;
	ib_hmm_zap_fn fn;
	void *priv;
};

/*
 * DMA tables: unmap the run of entries [@first, @last] of a leaf, which all
 * have WRITE as @write: one unlink for the run in IOVA mode, one unmap per
 * page in page mode.
 */
static void ib_hmm_zap_dma_run(struct ib_hmm_table *t,
			       struct ib_hmm_dma_gran *g, u64 *leaf,
			       unsigned int first, unsigned int last,
			       bool write)
{
	unsigned int i;

	if (t->dma_iova) {
		ib_hmm_dma_unmap(t, g, NULL, (u64)first << PAGE_SHIFT,
				 (size_t)(last - first + 1) << PAGE_SHIFT,
				 write);
		return;
	}
	for (i = first; i <= last; i++)
		ib_hmm_dma_unmap(t, g, &ib_hmm_leaf_dma(leaf)[i],
				 (u64)i << PAGE_SHIFT, PAGE_SIZE, write);
}

/* Zap [z->start, z->end) within the granule at @base, under its stripe. */
static int ib_hmm_zap_granule(struct ib_hmm_zap *z, u64 *slot, u64 base)
{
	struct rw_semaphore *sem = ib_hmm_table_stripe(z->t, base);
	struct ib_hmm_dma_gran *g = NULL;
	unsigned int i, j, last;
	u64 s, e, v, *leaf;
	bool write;

	if (z->blockable)
		down_write(sem);
	else if (!down_write_trylock(sem))
		return -EAGAIN;
	/* No reader of the stripe runs: cached slots are dropped at once. */
	ib_hmm_granule_changed(z->t, base);

	if (z->t->dma_dev)
		g = ib_hmm_slot_gran(slot);
	v = *slot;
	if (ib_hmm_slot_is_entry(v)) {
		/* Any change inside a huge mapping drops all of it. */
		WRITE_ONCE(*slot, 0);
		if (g) {
			ib_hmm_dma_unmap(z->t, g, &g->addr, 0,
					 IB_HMM_GRANULE_SIZE,
					 v & IB_HMM_E_WRITE);
			ib_hmm_dma_gran_free(z->t, g);
		}
		ib_hmm_entry_dirty(v);
		z->fn(z->priv, base, base + IB_HMM_GRANULE_SIZE);
		goto unlock;
	}
	leaf = ib_hmm_slot_node(v);
	s = max(z->start, base);
	e = min(z->end, base + IB_HMM_GRANULE_SIZE);
	last = ib_hmm_slot_index(e - 1, 0);
	i = ib_hmm_slot_index(s, 0);
	while (i <= last) {
		v = leaf[i];
		if (!(v & IB_HMM_E_VALID)) {
			i++;
			continue;
		}
		/*
		 * A run of present entries alike in WRITE: the device loses
		 * them (DMA tables) before they are marked dirty.
		 */
		write = v & IB_HMM_E_WRITE;
		for (j = i + 1; j <= last; j++)
			if (!(leaf[j] & IB_HMM_E_VALID) ||
			    !!(leaf[j] & IB_HMM_E_WRITE) != write)
				break;
		if (g)
			ib_hmm_zap_dma_run(z->t, g, leaf, i, j - 1, write);
		for (; i < j; i++) {
			v = leaf[i];
			WRITE_ONCE(leaf[i], 0);
			ib_hmm_entry_dirty(v);
			z->fn(z->priv, base + ((u64)i << PAGE_SHIFT),
			      base + ((u64)(i + 1) << PAGE_SHIFT));
		}
	}
	/* Freeing may not wait; the leaf is freed under its stripe. */
	if (z->blockable && ib_hmm_node_empty(leaf)) {
		ib_hmm_node_unlink(z->t, slot, leaf);
		if (g)
			ib_hmm_dma_gran_free(z->t, g);
	}
unlock:
	up_write(sem);
	return 0;
}

static int ib_hmm_zap_node(struct ib_hmm_zap *z, u64 *node, unsigned int level,
			   u64 base)
{
	unsigned int shift = ib_hmm_level_shift(level);
	u64 span = 1ULL << ib_hmm_level_shift(level + 1);
	u64 s = max(z->start, base), e = min(z->end, base + span);
	unsigned int i, last;
	u64 cbase;
	int ret;

	if (s >= e)
		return 0;
	last = ib_hmm_slot_index(e - 1, level);
	for (i = ib_hmm_slot_index(s, level); i <= last; i++) {
		if (!node[i])
			continue;
		cbase = base + ((u64)i << shift);
		if (level == 1) {
			ret = ib_hmm_zap_granule(z, &node[i], cbase);
		} else {
			ret = ib_hmm_zap_node(z, ib_hmm_slot_node(node[i]),
					      level - 1, cbase);
			if (!ret && z->blockable &&
			    ib_hmm_node_empty(ib_hmm_slot_node(node[i])))
				ib_hmm_node_unlink(z->t, &node[i],
						   ib_hmm_slot_node(node[i]));
		}
		if (ret)
			return ret;
	}
	return 0;
}

/**
 * ib_hmm_table_zap() - remove every entry in [@start, @end)
 * @t: the table
 * @lock: mirror->lock, held
 * @start: first address
 * @end: end address (exclusive; clipped to the table)
 * @blockable: may sleep; if false, only trylocks are used and no node is
 *	freed
 * @fn: called for every zapped entry with its range
 * @priv: passed to @fn
 *
 * Walks only the populated parts of the table. Each granule is zapped with
 * its stripe held for write, so in-flight readers of it finish first.
 *
 * Context: mirror->lock held.
 * Return: 0, or -EAGAIN if !@blockable and a stripe was contended.
 */
int ib_hmm_table_zap(struct ib_hmm_table *t, struct mutex *lock, u64 start,
		     u64 end, bool blockable, ib_hmm_zap_fn fn, void *priv)
{
	struct ib_hmm_zap z = {
		.t = t, .start = start & PAGE_MASK, .end = min(end, t->limit),
		.blockable = blockable, .fn = fn, .priv = priv,
	};
	u64 *root;
	int ret;

	lockdep_assert_held(lock);
	if (!t->root || z.start >= z.end)
		return 0;
	root = ib_hmm_root_node(t->root);
	ret = ib_hmm_zap_node(&z, root, ib_hmm_root_level(t->root),
			      ib_hmm_root_base(root));
	if (!ret && blockable && ib_hmm_node_empty(root))
		ib_hmm_node_unlink(t, &t->root, root);
	return ret;
}

static u64 ib_hmm_count_node(u64 *node, unsigned int level, u64 base, u64 s,
			     u64 e)
{
	unsigned int shift = ib_hmm_level_shift(level);
	u64 span = 1ULL << ib_hmm_level_shift(level + 1);
	u64 cs = max(s, base), ce = min(e, base + span);
	unsigned int i, last;
	u64 v, cbase, n = 0;

	if (cs >= ce)
		return 0;
	last = ib_hmm_slot_index(ce - 1, level);
	for (i = ib_hmm_slot_index(cs, level); i <= last; i++) {
		v = node[i];
		if (!v)
			continue;
		cbase = base + ((u64)i << shift);
		if (level == 0)
			n += !!(v & IB_HMM_E_VALID);
		else if (ib_hmm_slot_is_entry(v))
			n += (min(ce, cbase + IB_HMM_GRANULE_SIZE) -
			      max(cs, cbase)) >> PAGE_SHIFT;
		else
			n += ib_hmm_count_node(ib_hmm_slot_node(v), level - 1,
					       cbase, cs, ce);
	}
	return n;
}

/**
 * ib_hmm_table_count() - number of 4 KiB pages present in [@start, @end)
 * @t: the table
 * @lock: mirror->lock, held
 * @start: first address
 * @end: end address (exclusive)
 *
 * Context: mirror->lock held. Walks only populated parts of the table.
 * Return: the number of present 4 KiB pages (huge entries count all the
 * small pages they cover inside the range).
 */
u64 ib_hmm_table_count(struct ib_hmm_table *t, struct mutex *lock, u64 start,
		       u64 end)
{
	u64 s = start & PAGE_MASK;
	u64 e = min(end, t->limit);
	u64 *root;

	lockdep_assert_held(lock);
	e = ALIGN(e, PAGE_SIZE);
	if (!t->root || s >= e)
		return 0;
	root = ib_hmm_root_node(t->root);
	return ib_hmm_count_node(root, ib_hmm_root_level(t->root),
				 ib_hmm_root_base(root), s, e);
}
