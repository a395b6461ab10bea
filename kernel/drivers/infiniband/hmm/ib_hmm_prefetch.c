// SPDX-License-Identifier: GPL-2.0
/*
 * ib_hmm prefetch (ibv_advise_mr): synchronous, or queued on a workqueue
 * with a reference on the MR that ib_hmm_mr_destroy() waits for.
 */
#include <linux/error-injection.h>
#include <linux/slab.h>
#include <linux/workqueue.h>

#include "ib_hmm_priv.h"

#define IB_HMM_PREFETCH_ALL	(IB_HMM_PREFETCH_WRITE |		\
				 IB_HMM_PREFETCH_NO_FAULT |		\
				 IB_HMM_PREFETCH_ASYNC)

static struct workqueue_struct *ib_hmm_wq;

struct ib_hmm_prefetch_work {
	struct work_struct work;
	struct ib_hmm_mr *mr;		/* holds a count of mr->users */
	u64 start;
	u64 end;
	unsigned int flags;
};

/**
 * ib_hmm_prefetch_range() - prefetch [@start, @end) of @mr now
 * @mr: the MR
 * @start: first address (checked by the caller)
 * @end: end address (checked by the caller)
 * @flags: IB_HMM_PREFETCH_WRITE, IB_HMM_PREFETCH_NO_FAULT
 *
 * Pages made present are counted in the MR's prefetch counter.
 *
 * Context: may sleep.
 * Return: as ib_hmm_fault_range().
 */
int ib_hmm_prefetch_range(struct ib_hmm_mr *mr, u64 start, u64 end,
			  unsigned int flags)
{
	unsigned int fflags = 0;
	u64 made = 0;
	int ret;

	if (flags & IB_HMM_PREFETCH_WRITE)
		fflags |= IB_HMM_FAULT_WRITE;
	if (flags & IB_HMM_PREFETCH_NO_FAULT)
		fflags |= IB_HMM_FAULT_NO_FAULT;
	ret = ib_hmm_fault_range(mr->mirror, start, end, end, fflags, &made);
	atomic64_add(made, &mr->prefetch);
	return ret;
}

static void ib_hmm_prefetch_work_fn(struct work_struct *work)
{
	struct ib_hmm_prefetch_work *w =
		container_of(work, struct ib_hmm_prefetch_work, work);
	struct ib_hmm_mr *mr = w->mr;
	int ret;

	/* A destroyed MR cancels what is still queued. */
	if (!READ_ONCE(mr->dying)) {
		ret = ib_hmm_prefetch_range(mr, w->start, w->end, w->flags);
		if (ret)
			pr_debug_ratelimited("ib_hmm: async prefetch %#llx-%#llx failed: %d\n",
					     w->start, w->end, ret);
	}
	kfree(w);
	if (refcount_dec_and_test(&mr->users))
		complete(&mr->released);
}

/**
 * ib_hmm_mr_prefetch() - make a range of an MR present ahead of use
 * @mr: the MR
 * @iova: first address
 * @length: bytes (0 is a no-op after the checks)
 * @flags: IB_HMM_PREFETCH_WRITE (fault for write; needs
 *	IB_HMM_ACCESS_LOCAL_WRITE), IB_HMM_PREFETCH_NO_FAULT (map only pages
 *	already present in the CPU page tables), IB_HMM_PREFETCH_ASYNC (queue
 *	the work and return at once; errors are then only logged at debug
 *	level)
 *
 * Context: may sleep.
 * Return: 0; -EINVAL for unknown @flags; -EFAULT for a range outside the MR
 * or (synchronous, without NO_FAULT) an unmapped, PROT_NONE, or read-only
 * when writing page; -EACCES if the MR lacks the access; -ENOMEM; -EBUSY;
 * -EINTR.
 */
int ib_hmm_mr_prefetch(struct ib_hmm_mr *mr, u64 iova, u64 length,
		       unsigned int flags)
{
	struct ib_hmm_prefetch_work *w;
	int ret;

	if (flags & ~IB_HMM_PREFETCH_ALL)
		return -EINVAL;
	ret = ib_hmm_mr_check_range(mr, iova, length,
				    (flags & IB_HMM_PREFETCH_WRITE) ?
				    IB_HMM_OP_LOCAL_WRITE : IB_HMM_OP_LOCAL_READ);
	if (ret || !length)
		return ret;
	if (!(flags & IB_HMM_PREFETCH_ASYNC))
		return ib_hmm_prefetch_range(mr, iova, iova + length, flags);

	w = kzalloc_obj(*w, GFP_KERNEL);
	if (!w)
		return -ENOMEM;
	INIT_WORK(&w->work, ib_hmm_prefetch_work_fn);
	w->mr = mr;
	w->start = iova;
	w->end = iova + length;
	w->flags = flags & ~IB_HMM_PREFETCH_ASYNC;
	refcount_inc(&mr->users);
	queue_work(ib_hmm_wq, &w->work);
	return 0;
}
EXPORT_SYMBOL_GPL(ib_hmm_mr_prefetch);
ALLOW_ERROR_INJECTION(ib_hmm_mr_prefetch, ERRNO);

/**
 * ib_hmm_prefetch_init() - create the prefetch workqueue
 *
 * Context: module init.
 * Return: 0 or -ENOMEM.
 */
int ib_hmm_prefetch_init(void)
{
	ib_hmm_wq = alloc_workqueue("ib_hmm_prefetch", WQ_UNBOUND, 0);
	return ib_hmm_wq ? 0 : -ENOMEM;
}

/**
 * ib_hmm_prefetch_exit() - drain and destroy the prefetch workqueue
 *
 * Context: module exit.
 */
void ib_hmm_prefetch_exit(void)
{
	destroy_workqueue(ib_hmm_wq);
}
