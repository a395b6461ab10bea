/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ib_hmm private definitions, one section per file.
 *
 * Locking
 * =======
 * Lock order (outer to inner):
 *
 *   ib_hmm_mirrors_lock (global mutex, mirror.c)
 *     -> mmap_lock (taken by mmu_interval_notifier_insert())
 *   mmap_lock (held by the core mm around most invalidations)
 *     -> mirror->lock (mutex)
 *       -> table->stripe[i] (rw_semaphore, write side, one at a time)
 *   table->stripe[i] (read side, data path; never nests with another stripe)
 *     -> mirror->atomic_lock (spinlock, device atomics only)
 *     -> mr->xc_lock (raw spinlock, trylock only: the granule cache)
 *
 * Stripe i = (addr >> 21) % IB_HMM_NR_STRIPES. The refcount of a mirror
 * drops to 0 only under ib_hmm_mirrors_lock, so lookups never see a dying
 * mirror.
 *
 * - mirror->lock serialises every change of the mirror table: installs by
 *   the fault helper (after mmu_interval_read_retry(), hmm.rst) and zaps by
 *   the invalidate callback (after mmu_interval_set_seq()). It also protects
 *   writers of mirror->mrs and the per-MR invalidation generation. It may be
 *   taken from reclaim (the invalidate callback), so nothing allocates with
 *   reclaim while holding it: table nodes come from a spare pool or
 *   GFP_NOWAIT.
 * - The data path never takes mirror->lock. A reader takes the read side of
 *   the stripe of the 2 MiB granule it accesses, walks the table under
 *   rcu_read_lock() and copies from/to the page while still holding the
 *   stripe. The invalidate callback zaps granule by granule holding that
 *   granule's stripe for write, so it returns only after in-flight accesses
 *   to the zapped pages finished (invariant 1). Readers never wait for each
 *   other (invariant 7); a reader may only wait for an invalidation of a
 *   granule that shares its stripe. A copy longer than a granule takes the
 *   stripes one after the other, never two at once.
 * - Each MR caches the level 1 slot of the granule its data path used last
 *   and skips the walk while the stripe's generation (table->gen[i]) is
 *   unchanged. The generation moves under the stripe's write side on every
 *   zap, and after the slot on every install that replaces a slot that was
 *   not empty; both under mirror->lock, the only writers.
 * - Interior table nodes are freed with call_rcu() (lock-free walkers of
 *   other granules may still see them); leaf nodes are only freed with their
 *   granule's stripe held for write.
 * - No lock is held across hmm_range_fault() except the mmap read lock, and
 *   the mmap lock is dropped before mirror->lock is taken.
 * - DMA mirrors (ib_hmm_dma.c) map an entry for their device under
 *   mirror->lock before storing it, and unmap it in the zap, under
 *   mirror->lock and the granule's stripe (write), before the entry's page
 *   is marked dirty and before the invalidate callback returns. The DMA API
 *   maps with GFP_ATOMIC and never sleeps here. Before the zap, the
 *   invalidate callback calls the ops->invalidate of every MR with ops that
 *   overlaps the range, under mirror->lock: drivers take their own locks
 *   there (mirror->lock -> driver lock) and drop device translations. An
 *   install that remaps a present entry (WRITE added) does the same for
 *   that entry before it unmaps the old mapping. DMA addresses are read
 *   under mirror->lock (ib_hmm_mr_dma_walk()), never locklessly: a device
 *   whose driver recorded them must drop them in its invalidation path.
 */
#ifndef _IB_HMM_PRIV_H
#define _IB_HMM_PRIV_H

#include <linux/atomic.h>
#include <linux/bits.h>
#include <linux/completion.h>
#include <linux/dma-mapping.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/mmu_notifier.h>
#include <linux/mutex.h>
#include <linux/refcount.h>
#include <linux/rwsem.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/workqueue.h>
#include <rdma/ib_hmm.h>

#include "ib_hmm_config.h"

#ifndef IB_HMM_HAVE_KZALLOC_OBJ
#define kzalloc_obj(P, GFP)	kzalloc(sizeof(P), GFP)
#endif

#if BITS_PER_LONG != 64
#error "ib_hmm stores kernel pointers in u64 table slots: 64-bit only"
#endif

struct dentry;

/* ------------------------------------------------------------------------
 * ib_hmm_table.c: the sparse mirror table.
 *
 * Each node is one 4 KiB page of 512 u64 slots. Level 0 nodes (leaves) hold
 * one entry per 4 KiB page; level 1 slots cover a 2 MiB granule each and
 * hold either a pointer to a leaf or a HUGE entry; higher levels hold
 * pointers only. A slot is 0 (empty), an entry (bit 0 set) or a pointer to
 * a child node (page aligned, bit 0 clear).
 */
#define IB_HMM_LEVEL_BITS	9
#define IB_HMM_LEVEL_SLOTS	BIT(IB_HMM_LEVEL_BITS)
#define IB_HMM_MAX_LEVELS	5
#define IB_HMM_GRANULE_SHIFT	(PAGE_SHIFT + IB_HMM_LEVEL_BITS)
#define IB_HMM_GRANULE_SIZE	BIT_ULL(IB_HMM_GRANULE_SHIFT)
#define IB_HMM_GRANULE_PAGES	BIT(IB_HMM_LEVEL_BITS)
#define IB_HMM_NR_STRIPES	64
#define IB_HMM_SPARE_NODES	(2 * IB_HMM_MAX_LEVELS)

#define IB_HMM_E_VALID		BIT_ULL(0)
#define IB_HMM_E_WRITE		BIT_ULL(1)
#define IB_HMM_E_HUGE		BIT_ULL(2)

static inline unsigned long ib_hmm_entry_pfn(u64 entry)
{
	return entry >> PAGE_SHIFT;
}

/*
 * DMA mirrors (ib_hmm_dma.c) keep DMA state beside the slots, in the pages
 * that follow a node's first page (nodes then are compound pages):
 * - a level 1 node has one struct ib_hmm_dma_gran per slot (granule);
 * - in page mode a leaf has one dma_addr_t per slot; in IOVA mode a leaf is
 *   a single page, as in mirrors without a device.
 * Interior nodes above level 1 never have any.
 */
struct ib_hmm_dma_gran {
	dma_addr_t addr;		/* page mode: a huge entry's mapping */
#ifdef IB_HMM_HAVE_DMA_IOVA
	struct dma_iova_state iova;	/* IOVA mode: the granule's range */
#endif
};

/* Spare leaf and level 1 nodes of DMA tables (more than a page each). */
#define IB_HMM_SPARE_BIG	2

struct ib_hmm_table {
	u64 root;			/* mirror->lock (write), RCU (read) */
	unsigned int levels;		/* constant */
	u64 limit;			/* constant: first address not covered */
	unsigned long bytes;		/* mirror->lock; READ_ONCE to read */
	unsigned int nr_spare;		/* mirror->lock */
	void *spare[IB_HMM_SPARE_NODES];	/* mirror->lock */
	struct device *dma_dev;		/* constant; NULL: no DMA mapping */
	bool dma_iova;			/* constant: IOVA mode */
	unsigned int order[2];		/* constant: leaf, level 1 page order */
	unsigned int nr_spare_big[2];	/* mirror->lock; per order[] */
	void *spare_big[2][IB_HMM_SPARE_BIG];	/* mirror->lock */
	struct rw_semaphore stripe[IB_HMM_NR_STRIPES];
	/*
	 * Per stripe: moves whenever a level 1 slot of one of its granules
	 * that held something changes (zapped under the stripe's write side,
	 * or replaced by a fault); see ib_hmm_mr_entry(). Written under
	 * mirror->lock, after the slot.
	 */
	u64 gen[IB_HMM_NR_STRIPES];	/* 64 bits: never wraps */
};

/* The DMA state of the granules of level 1 node @node of a DMA table. */
static inline struct ib_hmm_dma_gran *ib_hmm_node_grans(u64 *node)
{
	return (struct ib_hmm_dma_gran *)(node + IB_HMM_LEVEL_SLOTS);
}

/* The DMA addresses of the pages of leaf @leaf (page mode). */
static inline dma_addr_t *ib_hmm_leaf_dma(u64 *leaf)
{
	return (dma_addr_t *)(leaf + IB_HMM_LEVEL_SLOTS);
}

/* Called for each zapped entry, under mirror->lock. */
typedef void (*ib_hmm_zap_fn)(void *priv, u64 start, u64 end);

void ib_hmm_table_init(struct ib_hmm_table *t, u64 task_size);
void ib_hmm_mirror_dma_replacing(struct ib_hmm_table *t, u64 start,
				 u64 size);
void ib_hmm_table_destroy(struct ib_hmm_table *t);
u64 ib_hmm_table_lookup(struct ib_hmm_table *t, u64 addr);
u64 ib_hmm_table_granule(struct ib_hmm_table *t, u64 addr);
int ib_hmm_table_install(struct ib_hmm_table *t, struct mutex *lock, u64 addr,
			 unsigned long pfn, unsigned int order, bool write,
			 u64 *made_present);
int ib_hmm_table_zap(struct ib_hmm_table *t, struct mutex *lock, u64 start,
		     u64 end, bool blockable, ib_hmm_zap_fn fn, void *priv);
u64 ib_hmm_table_count(struct ib_hmm_table *t, struct mutex *lock, u64 start,
		       u64 end);
u64 ib_hmm_table_lookup_dma(struct ib_hmm_table *t, struct mutex *lock,
			    u64 addr, dma_addr_t *dma);
bool ib_hmm_table_refill(struct ib_hmm_table *t, struct mutex *lock);

static inline unsigned int ib_hmm_stripe_index(u64 addr)
{
	return (addr >> IB_HMM_GRANULE_SHIFT) % IB_HMM_NR_STRIPES;
}

static inline struct rw_semaphore *ib_hmm_table_stripe(struct ib_hmm_table *t,
						       u64 addr)
{
	return &t->stripe[ib_hmm_stripe_index(addr)];
}

static inline unsigned int ib_hmm_level_shift(unsigned int level)
{
	return PAGE_SHIFT + level * IB_HMM_LEVEL_BITS;
}

static inline unsigned int ib_hmm_slot_index(u64 addr, unsigned int level)
{
	return (addr >> ib_hmm_level_shift(level)) & (IB_HMM_LEVEL_SLOTS - 1);
}

static inline bool ib_hmm_slot_is_entry(u64 slot)
{
	return slot & IB_HMM_E_VALID;
}

static inline u64 *ib_hmm_slot_node(u64 slot)
{
	return (u64 *)(unsigned long)slot;
}

/*
 * The entry of the page at @addr in the granule whose level 1 slot holds
 * @slot (a HUGE entry, a leaf, or 0): as ib_hmm_table_lookup(). A leaf must
 * be kept alive by the granule's stripe or RCU.
 */
static inline u64 ib_hmm_granule_entry(u64 slot, u64 addr)
{
	unsigned int idx = ib_hmm_slot_index(addr, 0);

	if (ib_hmm_slot_is_entry(slot))
		return slot + ((u64)idx << PAGE_SHIFT);
	if (!slot)
		return 0;
	return READ_ONCE(ib_hmm_slot_node(slot)[idx]);
}

/*
 * The data path's read side of a stripe. down_read() is a voluntary
 * preemption point (might_sleep()): on kernels with voluntary preemption
 * (Debian 6.12) the driver's work item gave its CPU away there on every
 * packet, to whatever else was runnable (a process polling its CQ), which
 * cost a third of the steady-state bandwidth of ODP MRs against pinned
 * ones. Only a contended stripe (an invalidation of the granule in
 * progress) needs to wait.
 */
static inline void ib_hmm_stripe_read_lock(struct rw_semaphore *sem)
{
	if (!down_read_trylock(sem))
		down_read(sem);
}

/* ------------------------------------------------------------------------
 * ib_hmm_dma.c: mapping for the device of a DMA mirror, under mirror->lock.
 */
void ib_hmm_dma_table_init(struct ib_hmm_table *t, struct device *dev);
int ib_hmm_dma_map(struct ib_hmm_table *t, struct ib_hmm_dma_gran *g,
		   dma_addr_t *addr, u64 off, unsigned long pfn, size_t size,
		   bool write);
void ib_hmm_dma_unmap(struct ib_hmm_table *t, struct ib_hmm_dma_gran *g,
		      dma_addr_t *addr, u64 off, size_t size, bool write);
void ib_hmm_dma_gran_free(struct ib_hmm_table *t, struct ib_hmm_dma_gran *g);
dma_addr_t ib_hmm_dma_gran_base(struct ib_hmm_table *t,
				struct ib_hmm_dma_gran *g);

/* ------------------------------------------------------------------------
 * ib_hmm_mirror.c: one mirror per (owner, mm, DMA device or NULL).
 */
struct ib_hmm_mirror {
	struct hlist_node hnode;	/* ib_hmm_mirrors_lock */
	const void *owner;		/* constant */
	struct mm_struct *mm;		/* constant; mmgrab()ed */
	refcount_t ref;			/* 0 transition under ib_hmm_mirrors_lock */
	struct mmu_interval_notifier notifier;
	struct mutex lock;		/* see Locking */
	struct ib_hmm_table table;	/* changes under lock */
	struct list_head mrs;		/* RCU; writers hold lock */
	u64 inv_gen;			/* lock */
	unsigned int nr_ops;		/* lock: MRs of mrs with ops */
	u64 upgrade_start, upgrade_end;	/* lock: hooks called for these */
	spinlock_t atomic_lock;		/* device atomics */
};

struct ib_hmm_mirror *ib_hmm_mirror_get(const void *owner,
					struct mm_struct *mm,
					struct device *dma_dev);
void ib_hmm_mirror_put(struct ib_hmm_mirror *m);
void ib_hmm_mirror_add_mr(struct ib_hmm_mirror *m, struct ib_hmm_mr *mr);
void ib_hmm_mirror_del_mr(struct ib_hmm_mirror *m, struct ib_hmm_mr *mr);
void ib_hmm_mirror_dma_upgrading(struct ib_hmm_mirror *m, u64 start,
				 u64 end);
void ib_hmm_mirror_dma_upgraded(struct ib_hmm_mirror *m);

/* ------------------------------------------------------------------------
 * ib_hmm_fault.c: the hmm_range_fault() loop.
 */
#define IB_HMM_FAULT_WRITE	BIT(0)	/* HMM_PFN_REQ_WRITE; install WRITE */
#define IB_HMM_FAULT_NO_FAULT	BIT(1)	/* snapshot: install present pages only */
#define IB_HMM_FAULT_BATCH	512	/* pages per hmm_range_fault() call */
#define IB_HMM_FAULT_MIN_COLLISIONS	16	/* before -EBUSY; see ib_hmm_fault_range() */

extern unsigned int ib_hmm_fault_around_pages;

int ib_hmm_fault_range(struct ib_hmm_mirror *m, u64 start, u64 req_end,
		       u64 end, unsigned int flags, u64 *made_present);

/* ------------------------------------------------------------------------
 * ib_hmm_mr.c: MR views.
 */
#define IB_HMM_ACCESS_ALL	(IB_HMM_ACCESS_LOCAL_READ |		\
				 IB_HMM_ACCESS_LOCAL_WRITE |		\
				 IB_HMM_ACCESS_REMOTE_READ |		\
				 IB_HMM_ACCESS_REMOTE_WRITE |		\
				 IB_HMM_ACCESS_REMOTE_ATOMIC |		\
				 IB_HMM_ACCESS_FLUSH)

/*
 * Drivers see struct ib_hmm_mr as opaque. genksyms (MODVERSIONS) expands
 * the structs a symbol's prototype points to, so the definition is hidden
 * from it: the CRCs of our exports then match the ones drivers compute.
 */
#ifndef __GENKSYMS__
struct ib_hmm_mr {
	struct ib_hmm_mirror *mirror;	/* constant */
	struct list_head node;		/* mirror->mrs */
	u64 start;			/* constant */
	u64 end;			/* constant, exclusive */
	unsigned int access;		/* constant, enum ib_hmm_access */
	bool implicit;			/* constant */
	bool dying;			/* set once by destroy */
	refcount_t users;		/* creator + queued async prefetches */
	struct completion released;	/* users reached 0 */
	u64 inv_gen;			/* mirror->lock */
	const struct ib_hmm_mr_ops *ops;	/* mirror->lock (write) */
	void *ops_priv;			/* mirror->lock (write) */
	atomic64_t faults;
	atomic64_t faults_handled;
	atomic64_t invalidations;
	atomic64_t invalidations_handled;
	atomic64_t prefetch;
	/*
	 * The level 1 slot of the granule the data path used last, valid
	 * while its stripe's generation is xc_gen (ib_hmm_mr_entry()).
	 * Written under xc_lock; read locklessly through xc_seq.
	 */
	raw_spinlock_t xc_lock;
	seqcount_raw_spinlock_t xc_seq;
	u64 xc_base;
	u64 xc_slot;
	u64 xc_gen;
	struct rcu_head rcu;
};
#endif /* __GENKSYMS__ */

/* ------------------------------------------------------------------------
 * ib_hmm_prefetch.c: prefetch, sync and through the workqueue.
 */
int ib_hmm_prefetch_init(void);
void ib_hmm_prefetch_exit(void);
int ib_hmm_prefetch_range(struct ib_hmm_mr *mr, u64 start, u64 end,
			  unsigned int flags);

/* ------------------------------------------------------------------------
 * ib_hmm_stats.c: global totals (debugfs) and per-MR accounting.
 */
struct ib_hmm_global_stats {
	atomic64_t mirrors;
	atomic64_t mrs;
	atomic64_t faults;
	atomic64_t invalidations;
	atomic64_t table_bytes;
	atomic64_t dma_mapped_pages;
	atomic64_t dma_iova_ranges;
	/* Data-path accesses that a fault could not serve, by reason. */
	atomic64_t fault_fail_busy;
	atomic64_t fault_fail_nomem;
	atomic64_t fault_fail_other;
};

extern struct ib_hmm_global_stats ib_hmm_stats;

struct ib_hmm_zap_acct {
	struct ib_hmm_mirror *mirror;
	u64 run_start;
	u64 run_end;
	u64 zapped;
};

void ib_hmm_stats_zapped(void *priv, u64 start, u64 end);
void ib_hmm_stats_zap_done(struct ib_hmm_zap_acct *acct);
void ib_hmm_stats_fault_failed(int err);
void ib_hmm_stats_debugfs_init(struct dentry *dir);

#endif /* _IB_HMM_PRIV_H */
