// SPDX-License-Identifier: GPL-2.0
/*
 * ib_hmm MR views: a range (or the whole address space) of a mirror with
 * its own access flags and counters, and the data-path helpers drivers use
 * on it.
 */
#include <linux/err.h>
#include <linux/error-injection.h>
#include <linux/highmem.h>
#include <linux/minmax.h>
#include <linux/module.h>
#include <linux/overflow.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>

#include "ib_hmm_priv.h"

/* Consecutive faults at one address that did not let it be accessed. */
#define IB_HMM_MAX_FAULT_RETRIES	1000

static const unsigned int ib_hmm_op_access[] = {
	[IB_HMM_OP_LOCAL_READ] = IB_HMM_ACCESS_LOCAL_READ,
	[IB_HMM_OP_LOCAL_WRITE] = IB_HMM_ACCESS_LOCAL_WRITE,
	[IB_HMM_OP_REMOTE_READ] = IB_HMM_ACCESS_REMOTE_READ,
	[IB_HMM_OP_REMOTE_WRITE] = IB_HMM_ACCESS_REMOTE_WRITE,
	[IB_HMM_OP_REMOTE_ATOMIC] = IB_HMM_ACCESS_REMOTE_ATOMIC,
	[IB_HMM_OP_FLUSH] = IB_HMM_ACCESS_FLUSH,
};

/*
 * ib_hmm_mr_create() and ib_hmm_mr_create_dma(); @dma_dev may be NULL.
 * Inlined into both, so that ib_hmm_mr_create() is a whole function and
 * not a tail call: fail_function on it (the faultinj suite) injected
 * nothing on 7.3 while it only jumped here.
 */
static __always_inline struct ib_hmm_mr *
ib_hmm_mr_new(const void *owner, struct mm_struct *mm, struct device *dma_dev,
	      u64 start, u64 length, unsigned int access)
{
	bool implicit = start == IB_HMM_IMPLICIT_START &&
			length == IB_HMM_IMPLICIT_LENGTH;
	struct ib_hmm_mirror *m;
	struct ib_hmm_mr *mr;
	u64 end;

	if (!mm || (access & ~IB_HMM_ACCESS_ALL))
		return ERR_PTR(-EINVAL);
	if (implicit) {
		end = mm->task_size;
	} else if (!length || check_add_overflow(start, length, &end) ||
		   end > mm->task_size) {
		return ERR_PTR(-EINVAL);
	}

	mr = kzalloc_obj(*mr, GFP_KERNEL);
	if (!mr)
		return ERR_PTR(-ENOMEM);
	m = ib_hmm_mirror_get(owner, mm, dma_dev);
	if (IS_ERR(m)) {
		kfree(mr);
		return ERR_CAST(m);
	}
	mr->mirror = m;
	mr->start = start;
	mr->end = end;
	mr->access = access | IB_HMM_ACCESS_LOCAL_READ;
	mr->implicit = implicit;
	refcount_set(&mr->users, 1);
	init_completion(&mr->released);
	raw_spin_lock_init(&mr->xc_lock);
	seqcount_raw_spinlock_init(&mr->xc_seq, &mr->xc_lock);
	mr->xc_base = U64_MAX;
	ib_hmm_mirror_add_mr(m, mr);
	atomic64_inc(&ib_hmm_stats.mrs);
	return mr;
}

/**
 * ib_hmm_mr_create() - create an MR view on the mirror of (@owner, @mm)
 * @owner: opaque owner, e.g. the driver's struct ib_device
 * @mm: the address space the MR maps (the registering process's)
 * @start: first virtual address, or IB_HMM_IMPLICIT_START
 * @length: length in bytes, or IB_HMM_IMPLICIT_LENGTH for an implicit MR
 * @access: enum ib_hmm_access bits; IB_HMM_ACCESS_LOCAL_READ is implied
 *
 * Finds or creates the mirror (one without a DMA device) and adds a view on
 * it. Nothing is faulted and no table memory is allocated, whatever the
 * size of the range.
 *
 * Context: process context, may sleep.
 * Return: the MR, or ERR_PTR(-EINVAL) for a zero length, a range that wraps
 * or ends beyond the user address space, or unknown access bits;
 * ERR_PTR(-ENOMEM); ERR_PTR(-EFAULT) if the process of @mm has exited.
 */
struct ib_hmm_mr *ib_hmm_mr_create(const void *owner, struct mm_struct *mm,
				   u64 start, u64 length, unsigned int access)
{
	return ib_hmm_mr_new(owner, mm, NULL, start, length, access);
}
EXPORT_SYMBOL_GPL(ib_hmm_mr_create);
ALLOW_ERROR_INJECTION(ib_hmm_mr_create, ERRNO);

/**
 * ib_hmm_mr_create_dma() - create an MR view on a DMA mirror
 * @owner: opaque owner, e.g. the driver's struct ib_device
 * @mm: the address space the MR maps
 * @dma_dev: the device that will DMA to and from the MR's pages
 * @start: first virtual address, or IB_HMM_IMPLICIT_START
 * @length: length in bytes, or IB_HMM_IMPLICIT_LENGTH for an implicit MR
 * @access: enum ib_hmm_access bits; IB_HMM_ACCESS_LOCAL_READ is implied
 *
 * As ib_hmm_mr_create(), on the mirror of (@owner, @mm, @dma_dev): every
 * page that becomes present in it is also mapped for @dma_dev, and unmapped
 * before the invalidation that removes it returns. The mapping is one IOVA
 * range per 2 MiB where the two-step IOVA API serves @dma_dev (see
 * ib_hmm_dma_uses_iova()), else dma_map_page() per entry; read-only entries
 * are mapped DMA_TO_DEVICE. Use ib_hmm_mr_dma_walk() or
 * ib_hmm_mr_dma_lookup() for the addresses. The driver keeps @dma_dev bound
 * until its last MR on it is destroyed.
 *
 * Context: process context, may sleep.
 * Return: the MR, or the errors of ib_hmm_mr_create(); ERR_PTR(-EINVAL) if
 * @dma_dev is NULL.
 */
struct ib_hmm_mr *ib_hmm_mr_create_dma(const void *owner,
				       struct mm_struct *mm,
				       struct device *dma_dev, u64 start,
				       u64 length, unsigned int access)
{
	if (!dma_dev)
		return ERR_PTR(-EINVAL);
	return ib_hmm_mr_new(owner, mm, dma_dev, start, length, access);
}
EXPORT_SYMBOL_GPL(ib_hmm_mr_create_dma);

/**
 * ib_hmm_mr_set_ops() - give a DMA mirror's MR driver callbacks
 * @mr: an MR created by ib_hmm_mr_create_dma()
 * @ops: the callbacks (see struct ib_hmm_mr_ops), kept until @mr is
 *	destroyed
 * @priv: passed to them
 *
 * Called once, before the MR is used to fault: from then on every
 * invalidation that overlaps @mr calls @ops->invalidate before it unmaps.
 * MRs without ops (and mirrors without any such MR) cost the invalidation
 * nothing.
 *
 * Context: process context, may sleep; takes mirror->lock.
 * Return: 0; -EOPNOTSUPP if @mr has no DMA device; -EINVAL if @ops has no
 * invalidate callback; -EBUSY if @mr already has ops.
 */
int ib_hmm_mr_set_ops(struct ib_hmm_mr *mr, const struct ib_hmm_mr_ops *ops,
		      void *priv)
{
	struct ib_hmm_mirror *m = mr->mirror;
	int ret = 0;

	if (!m->table.dma_dev)
		return -EOPNOTSUPP;
	if (!ops || !ops->invalidate)
		return -EINVAL;
	mutex_lock(&m->lock);
	if (mr->ops) {
		ret = -EBUSY;
		goto unlock;
	}
	mr->ops_priv = priv;
	mr->ops = ops;
	m->nr_ops++;
unlock:
	mutex_unlock(&m->lock);
	return ret;
}
EXPORT_SYMBOL_GPL(ib_hmm_mr_set_ops);

/**
 * ib_hmm_mr_destroy() - destroy an MR view
 * @mr: the MR; may be NULL or an ERR_PTR
 *
 * Cancels queued asynchronous prefetches of @mr and waits for running
 * ones, then drops the mirror reference (the last MR of a mirror frees it).
 *
 * Context: may sleep. No other call on @mr may run or follow.
 */
void ib_hmm_mr_destroy(struct ib_hmm_mr *mr)
{
	struct ib_hmm_mirror *m;

	if (IS_ERR_OR_NULL(mr))
		return;
	m = mr->mirror;
	WRITE_ONCE(mr->dying, true);
	if (!refcount_dec_and_test(&mr->users))
		wait_for_completion(&mr->released);
	ib_hmm_mirror_del_mr(m, mr);
	atomic64_dec(&ib_hmm_stats.mrs);
	ib_hmm_mirror_put(m);
	kfree_rcu(mr, rcu);
}
EXPORT_SYMBOL_GPL(ib_hmm_mr_destroy);

/**
 * ib_hmm_mr_is_implicit() - whether @mr covers the whole address space
 * @mr: the MR
 *
 * Context: any.
 * Return: true for an implicit MR.
 */
bool ib_hmm_mr_is_implicit(const struct ib_hmm_mr *mr)
{
	return mr->implicit;
}
EXPORT_SYMBOL_GPL(ib_hmm_mr_is_implicit);

/*
 * [iova, iova + length) inside the MR, with overflow checking before
 * anything is indexed (invariant 4). A zero length is inside if iova is.
 */
static __always_inline bool ib_hmm_mr_in_range(struct ib_hmm_mr *mr,
					       u64 iova, u64 length)
{
	u64 end;

	return !check_add_overflow(iova, length, &end) && iova >= mr->start &&
	       end <= mr->end;
}

/*
 * ib_hmm_mr_check_range(), inlined into the copies: they run once per
 * packet, and their calls and returns show in the bandwidth
 * (docs/PERFORMANCE.md).
 */
static __always_inline int ib_hmm_mr_check(struct ib_hmm_mr *mr, u64 iova,
					   u64 length, enum ib_hmm_op op)
{
	if ((unsigned int)op >= ARRAY_SIZE(ib_hmm_op_access))
		return -EINVAL;
	if (!ib_hmm_mr_in_range(mr, iova, length))
		return -EFAULT;
	if (!(mr->access & ib_hmm_op_access[op]))
		return -EACCES;
	return 0;
}

/**
 * ib_hmm_mr_check_range() - check a range and an operation against an MR
 * @mr: the MR
 * @iova: first address
 * @length: length in bytes (may be 0)
 * @op: the operation about to be performed
 *
 * Does not consult the mirror and does not fault.
 *
 * Context: any.
 * Return: 0; -EFAULT if [@iova, @iova + @length) wraps or leaves the MR;
 * -EACCES if the MR's access flags do not allow @op; -EINVAL for an unknown
 * @op.
 */
int ib_hmm_mr_check_range(struct ib_hmm_mr *mr, u64 iova, u64 length,
			  enum ib_hmm_op op)
{
	return ib_hmm_mr_check(mr, iova, length, op);
}
EXPORT_SYMBOL_GPL(ib_hmm_mr_check_range);

/* A data-path miss at @addr while accessing up to @end: fault with fault-around. */
static int ib_hmm_mr_fault(struct ib_hmm_mr *mr, u64 addr, u64 end, bool write)
{
	u64 start = addr & PAGE_MASK;
	u64 limit = min(ALIGN(mr->end, PAGE_SIZE),
			start + (u64)IB_HMM_FAULT_BATCH * PAGE_SIZE);
	u64 around = clamp(READ_ONCE(ib_hmm_fault_around_pages), 1U,
			   (unsigned int)IB_HMM_FAULT_BATCH);
	u64 req_end = min(ALIGN(end, PAGE_SIZE), limit);
	u64 around_end = min(limit, start + around * PAGE_SIZE);
	u64 made = 0;
	int ret;

	ret = ib_hmm_fault_range(mr->mirror, start, req_end,
				 max(req_end, around_end),
				 write ? IB_HMM_FAULT_WRITE : 0, &made);
	if (ret) {
		pr_debug_ratelimited("ib_hmm: fault at %#llx (%s) failed: %d\n",
				     addr, write ? "write" : "read", ret);
		return ret;
	}
	atomic64_add(made, &mr->faults);
	atomic64_inc(&mr->faults_handled);
	atomic64_add(made, &ib_hmm_stats.faults);
	return 0;
}

/*
 * A data-path miss at @addr: fault, then say whether the loop around it
 * should give up (after IB_HMM_MAX_FAULT_RETRIES misses in a row, or on a
 * fatal signal). A failure is counted in the global stats by reason.
 */
static int ib_hmm_mr_miss(struct ib_hmm_mr *mr, u64 addr, u64 end,
			  bool write, unsigned int *tries)
{
	int ret = ib_hmm_mr_fault(mr, addr, end, write);

	if (!ret && ++*tries > IB_HMM_MAX_FAULT_RETRIES)
		ret = -EBUSY;
	else if (!ret && fatal_signal_pending(current))
		ret = -EINTR;
	if (ret) {
		ib_hmm_stats_fault_failed(ret);
		return ret;
	}
	cond_resched();
	return 0;
}

/* Whether @e lets the data path read the page, or write it for @write. */
static __always_inline bool ib_hmm_entry_usable(u64 e, bool write)
{
	return (e & IB_HMM_E_VALID) && (!write || (e & IB_HMM_E_WRITE));
}

static __always_inline void ib_hmm_copy_page(u64 entry, u64 addr, void *buf,
					     size_t n, bool to_mr)
{
	void *kaddr = kmap_local_page(pfn_to_page(ib_hmm_entry_pfn(entry)));
	void *p = kaddr + offset_in_page(addr);

	if (to_mr)
		memcpy(p, buf, n);
	else
		memcpy(buf, p, n);
	kunmap_local(kaddr);
}

/*
 * The entry of the page at @addr, whose stripe the caller holds for read.
 *
 * A packet-sized copy touches one or two pages, and a transfer's packets
 * come one after the other through the same granules: the MR keeps the
 * level 1 slot of the granule it used last (a leaf or a HUGE entry) and
 * reads the entry from it, without walking the table. The slot is good
 * while its stripe's generation has not moved: a zap moves it under the
 * stripe's write side, so no reader holds the stripe then, and a fault
 * that replaces a slot moves it after the new slot is written. A leaf
 * cannot be freed while its stripe is held (the zap frees it under the
 * write side). Several QPs may use one MR at once: xc_seq gives readers a
 * consistent copy; a writer that finds xc_lock taken leaves the cache
 * alone.
 */
static __always_inline bool ib_hmm_mr_cached(struct ib_hmm_mr *mr,
					     struct ib_hmm_table *t, u64 addr,
					     u64 *gen, u64 *e)
{
	u64 base = addr & ~(u64)(IB_HMM_GRANULE_SIZE - 1);
	unsigned int seq;
	u64 slot;

	*gen = READ_ONCE(t->gen[ib_hmm_stripe_index(addr)]);
	smp_rmb();	/* the slot as new as @gen; see ib_hmm_granule_changed() */
	seq = raw_seqcount_begin(&mr->xc_seq);
	if (mr->xc_base != base || mr->xc_gen != *gen)
		return false;
	slot = mr->xc_slot;
	if (read_seqcount_retry(&mr->xc_seq, seq))
		return false;
	*e = ib_hmm_granule_entry(slot, addr);
	return true;
}

static u64 ib_hmm_mr_entry(struct ib_hmm_mr *mr, struct ib_hmm_table *t,
			   u64 addr)
{
	u64 base = addr & ~(u64)(IB_HMM_GRANULE_SIZE - 1);
	u64 gen, slot, e;

	if (ib_hmm_mr_cached(mr, t, addr, &gen, &e))
		return e;

	rcu_read_lock();
	slot = ib_hmm_table_granule(t, addr);
	e = ib_hmm_granule_entry(slot, addr);
	rcu_read_unlock();
	if (slot && raw_spin_trylock(&mr->xc_lock)) {
		write_seqcount_begin(&mr->xc_seq);
		mr->xc_base = base;
		mr->xc_slot = slot;
		mr->xc_gen = gen;
		write_seqcount_end(&mr->xc_seq);
		raw_spin_unlock(&mr->xc_lock);
	}
	return e;
}

/*
 * Copy between @buf and [@iova, @iova + @length) (already checked),
 * faulting on misses; with @buf NULL only make the range present. Each
 * 2 MiB granule is accessed under its stripe's read side, so an
 * invalidation of it waits for the copy (invariant 1) while other readers
 * do not (invariant 7).
 */
static int ib_hmm_mr_xfer(struct ib_hmm_mr *mr, u64 iova, void *buf,
			  u64 length, bool to_mr, bool need_write)
{
	struct ib_hmm_table *t = &mr->mirror->table;
	u64 addr = iova, end = iova + length, gend, n, e;
	struct rw_semaphore *sem;
	unsigned int tries = 0;
	int ret;

	while (addr < end) {
		gend = min(end, (addr | (IB_HMM_GRANULE_SIZE - 1)) + 1);
		sem = ib_hmm_table_stripe(t, addr);
		ib_hmm_stripe_read_lock(sem);
		while (addr < gend) {
			e = ib_hmm_mr_entry(mr, t, addr);
			if (!ib_hmm_entry_usable(e, need_write))
				break;
			n = min(gend, (addr & PAGE_MASK) + PAGE_SIZE) - addr;
			if (buf) {
				ib_hmm_copy_page(e, addr, buf, n, to_mr);
				buf += n;
			}
			addr += n;
			tries = 0;
		}
		up_read(sem);
		if (addr == gend) {
			/* Long copies yield between granules; a packet's does not. */
			if (addr < end)
				cond_resched();
			continue;
		}
		ret = ib_hmm_mr_miss(mr, addr, end, need_write, &tries);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * The common case of the data path, a packet's copy inside one page whose
 * granule the MR used last and whose stripe is free, in one function: no
 * table walk, no call but the stripe's and memcpy(). False (nothing copied)
 * for anything else, which ib_hmm_mr_xfer() then handles.
 */
static __always_inline bool ib_hmm_mr_copy_fast(struct ib_hmm_mr *mr,
						u64 iova, void *buf,
						u64 length, bool to_mr)
{
	struct ib_hmm_table *t = &mr->mirror->table;
	struct rw_semaphore *sem;
	bool done = false;
	u64 gen, e;

	if (!length || offset_in_page(iova) + length > PAGE_SIZE)
		return false;
	sem = ib_hmm_table_stripe(t, iova);
	if (!down_read_trylock(sem))
		return false;
	if (ib_hmm_mr_cached(mr, t, iova, &gen, &e) &&
	    ib_hmm_entry_usable(e, to_mr)) {
		ib_hmm_copy_page(e, iova, buf, length, to_mr);
		done = true;
	}
	up_read(sem);
	return done;
}

/**
 * ib_hmm_mr_copy_from() - copy from an MR into a kernel buffer
 * @mr: the MR
 * @dst: kernel buffer of @length bytes
 * @iova: first address
 * @length: bytes to copy (0 is a no-op after the checks)
 * @op: IB_HMM_OP_LOCAL_READ (send, RDMA write source) or
 *	IB_HMM_OP_REMOTE_READ (RDMA read responder)
 *
 * Faults missing pages (with fault-around). Counts data-path faults in the
 * MR's counters.
 *
 * Context: may sleep; takes the mmap read lock of the MR's mm on a miss.
 * Return: 0; -EFAULT for a range outside the MR or an unmapped or PROT_NONE
 * page, or if the process has exited; -EACCES if the MR does not allow
 * @op; -ENOMEM; -EBUSY if invalidations kept racing with the fault; -EINTR
 * on a fatal signal. On error, part of @dst may have been written.
 */
int ib_hmm_mr_copy_from(struct ib_hmm_mr *mr, void *dst, u64 iova,
			u64 length, enum ib_hmm_op op)
{
	int ret = ib_hmm_mr_check(mr, iova, length, op);

	if (ret)
		return ret;
	if (ib_hmm_mr_copy_fast(mr, iova, dst, length, false))
		return 0;
	return ib_hmm_mr_xfer(mr, iova, dst, length, false, false);
}
EXPORT_SYMBOL_GPL(ib_hmm_mr_copy_from);

/**
 * ib_hmm_mr_copy_to() - copy a kernel buffer into an MR
 * @mr: the MR
 * @iova: first address
 * @src: kernel buffer of @length bytes
 * @length: bytes to copy (0 is a no-op after the checks)
 * @op: IB_HMM_OP_LOCAL_WRITE (receive, RDMA read sink) or
 *	IB_HMM_OP_REMOTE_WRITE (RDMA write responder)
 *
 * Writes only through entries faulted for write from writable mappings
 * (invariant 3); pages missing or present read-only are faulted for write.
 *
 * Context: may sleep; takes the mmap read lock of the MR's mm on a miss.
 * Return: 0; -EFAULT for a range outside the MR, an unmapped, PROT_NONE or
 * read-only page, or if the process has exited; -EACCES if the MR does not
 * allow @op; -ENOMEM; -EBUSY; -EINTR. On error, part of the range may have
 * been written.
 */
int ib_hmm_mr_copy_to(struct ib_hmm_mr *mr, u64 iova, const void *src,
		      u64 length, enum ib_hmm_op op)
{
	int ret = ib_hmm_mr_check(mr, iova, length, op);

	if (ret)
		return ret;
	if (ib_hmm_mr_copy_fast(mr, iova, (void *)src, length, true))
		return 0;
	return ib_hmm_mr_xfer(mr, iova, (void *)src, length, true, true);
}
EXPORT_SYMBOL_GPL(ib_hmm_mr_copy_to);

enum ib_hmm_atomic_kind {
	IB_HMM_ATOMIC_KIND_CMP_SWP,
	IB_HMM_ATOMIC_KIND_FETCH_ADD,
	IB_HMM_ATOMIC_KIND_WRITE,
};

/* An 8-byte aligned atomic at @iova (checked), under the stripe and atomic_lock. */
static int ib_hmm_mr_do_atomic(struct ib_hmm_mr *mr, u64 iova,
			       enum ib_hmm_atomic_kind kind, u64 a, u64 b,
			       u64 *orig)
{
	struct ib_hmm_mirror *m = mr->mirror;
	struct ib_hmm_table *t = &m->table;
	struct rw_semaphore *sem = ib_hmm_table_stripe(t, iova);
	unsigned int tries = 0;
	void *kaddr;
	u64 e, old = 0, *p;
	int ret;

	for (;;) {
		ib_hmm_stripe_read_lock(sem);
		rcu_read_lock();
		e = ib_hmm_table_lookup(t, iova);
		rcu_read_unlock();
		if (ib_hmm_entry_usable(e, true))
			break;
		up_read(sem);
		ret = ib_hmm_mr_miss(mr, iova, iova + sizeof(u64), true,
				     &tries);
		if (ret)
			return ret;
	}

	kaddr = kmap_local_page(pfn_to_page(ib_hmm_entry_pfn(e)));
	p = kaddr + offset_in_page(iova);
	/*
	 * The atomic instructions make this atomic against the CPU too;
	 * atomic_lock orders device atomics against each other in one place.
	 */
	spin_lock(&m->atomic_lock);
	switch (kind) {
	case IB_HMM_ATOMIC_KIND_CMP_SWP:
		old = cmpxchg64(p, a, b);
		break;
	case IB_HMM_ATOMIC_KIND_FETCH_ADD:
		old = atomic64_fetch_add(a, (atomic64_t *)p);
		break;
	case IB_HMM_ATOMIC_KIND_WRITE:
		/* IB ATOMIC_WRITE: earlier writes of the QP land first. */
		smp_store_release(p, a);
		break;
	}
	spin_unlock(&m->atomic_lock);
	kunmap_local(kaddr);
	up_read(sem);
	if (orig)
		*orig = old;
	return 0;
}

/**
 * ib_hmm_mr_atomic() - an 8-byte device atomic on an MR
 * @mr: the MR
 * @iova: 8-byte aligned address
 * @op: IB_HMM_ATOMIC_CMP_SWP or IB_HMM_ATOMIC_FETCH_ADD
 * @compare_add: the compare value (CMP_SWP) or the addend (FETCH_ADD)
 * @swap: the value stored by CMP_SWP when the compare matches
 * @orig: set to the original value on success
 *
 * Faults the page for write if needed; atomic against other device
 * atomics and CPU atomics on the same address.
 *
 * Context: may sleep.
 * Return: 0; -EFAULT for a range outside the MR or an unmapped, PROT_NONE or
 * read-only page; -EACCES without IB_HMM_ACCESS_REMOTE_ATOMIC; -EINVAL for
 * a misaligned @iova or unknown @op; -ENOMEM; -EBUSY; -EINTR.
 */
int ib_hmm_mr_atomic(struct ib_hmm_mr *mr, u64 iova, enum ib_hmm_atomic_op op,
		     u64 compare_add, u64 swap, u64 *orig)
{
	enum ib_hmm_atomic_kind kind;
	int ret;

	switch (op) {
	case IB_HMM_ATOMIC_CMP_SWP:
		kind = IB_HMM_ATOMIC_KIND_CMP_SWP;
		break;
	case IB_HMM_ATOMIC_FETCH_ADD:
		kind = IB_HMM_ATOMIC_KIND_FETCH_ADD;
		break;
	default:
		return -EINVAL;
	}
	ret = ib_hmm_mr_check_range(mr, iova, sizeof(u64),
				    IB_HMM_OP_REMOTE_ATOMIC);
	if (ret)
		return ret;
	if (!IS_ALIGNED(iova, sizeof(u64)))
		return -EINVAL;
	return ib_hmm_mr_do_atomic(mr, iova, kind, compare_add, swap, orig);
}
EXPORT_SYMBOL_GPL(ib_hmm_mr_atomic);

/**
 * ib_hmm_mr_atomic_write() - an 8-byte atomic write (IB ATOMIC_WRITE)
 * @mr: the MR
 * @iova: 8-byte aligned address
 * @value: the value to store (a single 8-byte store, release ordered)
 *
 * Context: may sleep.
 * Return: 0; -EFAULT for a range outside the MR or an unmapped, PROT_NONE or
 * read-only page; -EACCES without IB_HMM_ACCESS_REMOTE_WRITE; -EINVAL for a
 * misaligned @iova; -ENOMEM; -EBUSY; -EINTR.
 */
int ib_hmm_mr_atomic_write(struct ib_hmm_mr *mr, u64 iova, u64 value)
{
	int ret;

	ret = ib_hmm_mr_check_range(mr, iova, sizeof(u64),
				    IB_HMM_OP_REMOTE_WRITE);
	if (ret)
		return ret;
	if (!IS_ALIGNED(iova, sizeof(u64)))
		return -EINVAL;
	return ib_hmm_mr_do_atomic(mr, iova, IB_HMM_ATOMIC_KIND_WRITE, value, 0,
				   NULL);
}
EXPORT_SYMBOL_GPL(ib_hmm_mr_atomic_write);

/**
 * ib_hmm_mr_flush() - check and fault a range for an RDMA FLUSH
 * @mr: the MR
 * @iova: first address
 * @length: bytes (0 is a no-op after the checks)
 *
 * Data reaches the pages synchronously in ib_hmm, so there is nothing to
 * write back; the range must still be valid, allowed and mapped.
 *
 * Context: may sleep.
 * Return: 0; -EFAULT for a range outside the MR or an unmapped or PROT_NONE
 * page; -EACCES without IB_HMM_ACCESS_FLUSH; -ENOMEM; -EBUSY; -EINTR.
 */
int ib_hmm_mr_flush(struct ib_hmm_mr *mr, u64 iova, u64 length)
{
	int ret = ib_hmm_mr_check_range(mr, iova, length, IB_HMM_OP_FLUSH);

	if (ret)
		return ret;
	return ib_hmm_mr_xfer(mr, iova, NULL, length, false, false);
}
EXPORT_SYMBOL_GPL(ib_hmm_mr_flush);

/* Whether @npages pages from page-aligned @addr lie inside the MR's pages. */
static bool ib_hmm_mr_pages_inside(struct ib_hmm_mr *mr, u64 addr, u64 npages)
{
	u64 len, end;

	return !check_mul_overflow(npages, (u64)PAGE_SIZE, &len) &&
	       !check_add_overflow(addr, len, &end) &&
	       addr >= (mr->start & PAGE_MASK) &&
	       end <= ALIGN(mr->end, PAGE_SIZE);
}

/* The IB_HMM_PAGE_* state of a page whose entry is @e. */
static unsigned int ib_hmm_entry_page_state(u64 e)
{
	unsigned int state;

	if (!(e & IB_HMM_E_VALID))
		return 0;
	state = IB_HMM_PAGE_VALID;
	if (e & IB_HMM_E_WRITE)
		state |= IB_HMM_PAGE_WRITE;
	if (e & IB_HMM_E_HUGE)
		state |= IB_HMM_PAGE_HUGE;
	return state;
}

/**
 * ib_hmm_mr_snapshot() - report what the mirror holds, without faulting
 * @mr: the MR
 * @iova: address of the first page (rounded down to a page)
 * @npages: number of 4 KiB pages
 * @state: @npages bytes, set to IB_HMM_PAGE_* bits
 *
 * Context: may sleep; takes mirror->lock.
 * Return: 0; -EFAULT if the pages are not all inside the MR's range.
 */
int ib_hmm_mr_snapshot(struct ib_hmm_mr *mr, u64 iova, u64 npages, u8 *state)
{
	struct ib_hmm_mirror *m = mr->mirror;
	u64 addr = iova & PAGE_MASK, e, i;

	if (!ib_hmm_mr_pages_inside(mr, addr, npages))
		return -EFAULT;

	mutex_lock(&m->lock);
	for (i = 0; i < npages; i++, addr += PAGE_SIZE) {
		e = ib_hmm_table_lookup(&m->table, addr);
		state[i] = ib_hmm_entry_page_state(e);
	}
	mutex_unlock(&m->lock);
	return 0;
}
EXPORT_SYMBOL_GPL(ib_hmm_mr_snapshot);

/**
 * ib_hmm_mr_dma_walk() - the DMA addresses of the present pages of a range
 * @mr: an MR created by ib_hmm_mr_create_dma()
 * @iova: address of the first page (rounded down to a page)
 * @npages: number of 4 KiB pages
 * @fn: called for each present page, in address order, with the page's
 *	address, its DMA address and IB_HMM_PAGE_* flags (WRITE: the device
 *	may write it); a non-zero return ends the walk
 * @priv: passed to @fn
 *
 * Nothing is faulted (ib_hmm_mr_prefetch() does that). The walk holds
 * mirror->lock, which every invalidation takes before it unmaps: what @fn
 * is given stays mapped until the walk returns, and a driver that records
 * the addresses (device page tables) from @fn must drop them in its own
 * invalidation path after that. @fn must not sleep for long, allocate with
 * reclaim, or call into ib_hmm.
 *
 * Context: may sleep; takes mirror->lock.
 * Return: 0, or what @fn returned; -EOPNOTSUPP if @mr has no DMA device;
 * -EFAULT if the pages are not all inside the MR's range.
 */
int ib_hmm_mr_dma_walk(struct ib_hmm_mr *mr, u64 iova, u64 npages,
		       ib_hmm_dma_fn fn, void *priv)
{
	struct ib_hmm_mirror *m = mr->mirror;
	u64 addr = iova & PAGE_MASK, e, i;
	unsigned int state;
	dma_addr_t dma;
	int ret = 0;

	if (!m->table.dma_dev)
		return -EOPNOTSUPP;
	if (!ib_hmm_mr_pages_inside(mr, addr, npages))
		return -EFAULT;

	mutex_lock(&m->lock);
	for (i = 0; i < npages && !ret; i++, addr += PAGE_SIZE) {
		e = ib_hmm_table_lookup_dma(&m->table, &m->lock, addr, &dma);
		state = ib_hmm_entry_page_state(e);
		if (state)
			ret = fn(priv, addr, dma, state);
	}
	mutex_unlock(&m->lock);
	return ret;
}
EXPORT_SYMBOL_GPL(ib_hmm_mr_dma_walk);

struct ib_hmm_dma_lookup {
	u64 start;
	dma_addr_t *dma;
	u64 found;
};

static int ib_hmm_dma_lookup_one(void *priv, u64 addr, dma_addr_t dma,
				 unsigned int flags)
{
	struct ib_hmm_dma_lookup *l = priv;

	l->dma[(addr - l->start) >> PAGE_SHIFT] = dma;
	l->found++;
	return 0;
}

/**
 * ib_hmm_mr_dma_lookup() - a snapshot of the DMA addresses of a range
 * @mr: an MR created by ib_hmm_mr_create_dma()
 * @iova: address of the first page (rounded down to a page)
 * @npages: number of 4 KiB pages
 * @dma: @npages addresses, set to each page's DMA address, or to
 *	DMA_MAPPING_ERROR where no page is present
 *
 * A snapshot: an invalidation may unmap the pages as soon as this returns.
 * A driver that must keep the addresses consistent with invalidations uses
 * ib_hmm_mr_dma_walk().
 *
 * Context: may sleep; takes mirror->lock.
 * Return: the number of present pages; -EOPNOTSUPP if @mr has no DMA
 * device; -EFAULT if the pages are not all inside the MR's range.
 */
s64 ib_hmm_mr_dma_lookup(struct ib_hmm_mr *mr, u64 iova, u64 npages,
			 dma_addr_t *dma)
{
	struct ib_hmm_dma_lookup l = { .start = iova & PAGE_MASK, .dma = dma };
	u64 i;
	int ret;

	if (!mr->mirror->table.dma_dev)
		return -EOPNOTSUPP;
	if (npages > U64_MAX / PAGE_SIZE)
		return -EFAULT;
	for (i = 0; i < npages; i++)
		dma[i] = DMA_MAPPING_ERROR;
	ret = ib_hmm_mr_dma_walk(mr, iova, npages, ib_hmm_dma_lookup_one, &l);
	return ret ? ret : l.found;
}
EXPORT_SYMBOL_GPL(ib_hmm_mr_dma_lookup);
