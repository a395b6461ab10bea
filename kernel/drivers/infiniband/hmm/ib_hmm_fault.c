// SPDX-License-Identifier: GPL-2.0
/*
 * ib_hmm fault helper: the hmm_range_fault() loop of hmm.rst, in batches,
 * used by the data path, prefetch and the test module.
 */
#include <linux/error-injection.h>
#include <linux/fs.h>
#include <linux/hmm.h>
#include <linux/jiffies.h>
#include <linux/minmax.h>
#include <linux/mm.h>
#include <linux/moduleparam.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <uapi/linux/magic.h>

#include "ib_hmm_priv.h"

/*
 * Pages faulted ahead of a data-path miss, within the MR and the VMA of
 * the missing page. 16 is a starting point: tune it by measurement (bigger
 * windows save fault round trips for streaming access, cost memory and
 * invalidation work for sparse access).
 */
unsigned int ib_hmm_fault_around_pages = 16;
module_param_named(fault_around_pages, ib_hmm_fault_around_pages, uint, 0644);
MODULE_PARM_DESC(fault_around_pages,
		 "Pages faulted ahead of a data-path miss (1..512, default 16; tune by measurement)");

/*
 * The end of a batch once the fault-around part (beyond @req_end) is
 * clipped to the VMA of the last required page. Called with the mmap lock.
 */
static u64 ib_hmm_fault_clip(struct mm_struct *mm, u64 start, u64 req_end,
			     u64 end)
{
	u64 anchor = start < req_end ? req_end - PAGE_SIZE : start;
	u64 keep = clamp(req_end, start, end);
	struct vm_area_struct *vma;

	mmap_assert_locked(mm);
	vma = vma_lookup(mm, anchor);
	if (!vma)
		return keep;
	return max(min(end, (u64)vma->vm_end), keep);
}

/*
 * memfd_secret() memory is not in the kernel's direct map, through which
 * ib_hmm_copy_page() reaches pages: refuse it, as GUP does. (Modules cannot
 * call vma_is_secretmem(); secret memory files live on their own pseudo
 * filesystem.)
 */
static bool ib_hmm_vma_refused(struct vm_area_struct *vma)
{
	return vma->vm_file &&
	       file_inode(vma->vm_file)->i_sb->s_magic == SECRETMEM_MAGIC;
}

/*
 * Clip *@endp before the first VMA in [@start, *@endp) that ib_hmm must not
 * touch; -EFAULT if that VMA holds a required page (below @req_end). Called
 * with the mmap lock.
 */
static int ib_hmm_fault_check_vmas(struct mm_struct *mm, u64 start,
				   u64 req_end, u64 *endp)
{
	VMA_ITERATOR(vmi, mm, start);
	struct vm_area_struct *vma;

	for_each_vma_range(vmi, vma, *endp) {
		if (!ib_hmm_vma_refused(vma))
			continue;
		if (max_t(u64, vma->vm_start, start) < req_end)
			return -EFAULT;
		*endp = vma->vm_start;
		break;
	}
	return 0;
}

/*
 * A write fault in a DMA mirror with MRs with ops: the pages of the batch
 * that are present without WRITE will be remapped by their install (another
 * DMA direction). Have the MRs' hooks called once for the span of them, not
 * once per page (ib_hmm_mirror_dma_upgrading()). Under mirror->lock.
 */
static void ib_hmm_fault_hook_upgrades(struct ib_hmm_mirror *m, u64 start,
				       const unsigned long *pfns,
				       unsigned long npages)
{
	u64 addr, e, s, first = 0, end = 0;
	unsigned long i;

	for (i = 0; i < npages; i++) {
		if ((pfns[i] & (HMM_PFN_VALID | HMM_PFN_ERROR |
				HMM_PFN_WRITE)) !=
		    (HMM_PFN_VALID | HMM_PFN_WRITE))
			continue;
		addr = start + ((u64)i << PAGE_SHIFT);
		e = ib_hmm_table_lookup(&m->table, addr);
		if (!(e & IB_HMM_E_VALID) || (e & IB_HMM_E_WRITE))
			continue;
		/* A huge entry is remapped whole. */
		s = e & IB_HMM_E_HUGE ?
			round_down(addr, IB_HMM_GRANULE_SIZE) : addr;
		if (!end || s < first)
			first = s;
		end = max(end, e & IB_HMM_E_HUGE ? s + IB_HMM_GRANULE_SIZE :
						    addr + PAGE_SIZE);
	}
	if (end)
		ib_hmm_mirror_dma_upgrading(m, first, end);
}

/*
 * One hmm_range_fault() call's worth: [start, *endp), at most a batch.
 * -EAGAIN when an invalidation collided with it (nothing was installed) or
 * the table ran out of spare nodes in the middle (refilled since).
 */
static int ib_hmm_fault_batch(struct ib_hmm_mirror *m, unsigned long *pfns,
			      u64 start, u64 req_end, u64 *endp,
			      unsigned int flags, u64 *made_present)
{
	struct hmm_range range = {
		.notifier = &m->notifier,
		.start = start,
		.hmm_pfns = pfns,
	};
	struct mm_struct *mm = m->mm;
	unsigned long i, npages, p;
	u64 end;
	int ret;

	if (!(flags & IB_HMM_FAULT_NO_FAULT)) {
		range.default_flags = HMM_PFN_REQ_FAULT;
		if (flags & IB_HMM_FAULT_WRITE)
			range.default_flags |= HMM_PFN_REQ_WRITE;
	}

again:
	range.notifier_seq = mmu_interval_read_begin(&m->notifier);
	mmap_read_lock(mm);
	end = *endp;
	if (end > req_end)
		end = ib_hmm_fault_clip(mm, start, req_end, end);
	ret = ib_hmm_fault_check_vmas(mm, start, req_end, &end);
	if (ret) {
		mmap_read_unlock(mm);
		return ret;
	}
	if (end <= start) {
		mmap_read_unlock(mm);
		*endp = start;
		return 0;
	}
	range.end = end;
	npages = (end - start) >> PAGE_SHIFT;
	/* Input flags are sticky on newer kernels: start from zero. */
	memset(pfns, 0, npages * sizeof(*pfns));
	ret = hmm_range_fault(&range);
	mmap_read_unlock(mm);
	if (ret) {
		if (ret == -EBUSY)
			return -EAGAIN;
		/*
		 * Fault-around is best effort: a page it adds may fail (beyond
		 * the end of a truncated file, say) where the required ones
		 * would not. Try the required pages alone.
		 */
		if (start < req_end && end > req_end) {
			*endp = req_end;
			goto again;
		}
		/* Write to a read-only VMA: a bad address for the device. */
		return ret == -EPERM ? -EFAULT : ret;
	}

	mutex_lock(&m->lock);
	if (mmu_interval_read_retry(&m->notifier, range.notifier_seq)) {
		mutex_unlock(&m->lock);
		return -EAGAIN;
	}
	if (m->nr_ops && (flags & IB_HMM_FAULT_WRITE))
		ib_hmm_fault_hook_upgrades(m, start, pfns, npages);
	for (i = 0, ret = 0; i < npages; i += ret) {
		p = pfns[i];
		if (!(p & HMM_PFN_VALID) || (p & HMM_PFN_ERROR)) {
			ret = 1;
			continue;
		}
		ret = ib_hmm_table_install(&m->table, &m->lock,
					   start + ((u64)i << PAGE_SHIFT),
					   page_to_pfn(hmm_pfn_to_page(p)),
					   hmm_pfn_to_map_order(p),
					   (flags & IB_HMM_FAULT_WRITE) &&
					   (p & HMM_PFN_WRITE),
					   made_present);
		if (ret < 0)
			break;
	}
	if (m->upgrade_end)
		ib_hmm_mirror_dma_upgraded(m);
	mutex_unlock(&m->lock);
	/*
	 * Nothing beyond what was installed is lost; the caller retries the
	 * rest (a smaller batch, within its deadline) once the spare pool is
	 * refilled.
	 */
	if (ret == -ENOMEM)
		return ib_hmm_table_refill(&m->table, &m->lock) ? -EAGAIN :
								  -ENOMEM;
	if (ret < 0)
		return ret;
	*endp = end;
	return 0;
}

/**
 * ib_hmm_fault_range() - make [@start, @end) present in the mirror
 * @m: the mirror
 * @start: first address (rounded down to a page)
 * @req_end: end of the pages that must become present; pages in
 *	[@req_end, @end) are fault-around: clipped to the VMA of the last
 *	required page and best effort
 * @end: end address (rounded up to a page)
 * @flags: IB_HMM_FAULT_WRITE to fault for write (only then entries get
 *	WRITE), IB_HMM_FAULT_NO_FAULT to install only pages already present
 * @made_present: incremented by the number of 4 KiB pages that became
 *	present
 *
 * Runs the hmm.rst loop (read_begin, mmap_read_lock, hmm_range_fault,
 * mmap_read_unlock, mirror->lock, read_retry, install, unlock) once per
 * batch of up to IB_HMM_FAULT_BATCH pages. A batch that collides with an
 * invalidation is retried at half the size (and the size grows back with
 * each batch that completes): under a storm of invalidations anywhere in
 * the process (compaction, migration), a shorter walk is more likely to
 * fit between two of them.
 *
 * Context: process or worker context, may sleep; no ib_hmm lock and no
 * mmap lock held.
 * Return: 0 on success; -EFAULT if the process is gone or a required page
 * is unmapped, PROT_NONE, or read-only when writing was asked; -ENOMEM;
 * -EBUSY if invalidations kept colliding, IB_HMM_FAULT_MIN_COLLISIONS
 * times and for HMM_RANGE_DEFAULT_TIMEOUT ms, without any batch completing;
 * -EINTR on a fatal signal.
 */
int ib_hmm_fault_range(struct ib_hmm_mirror *m, u64 start, u64 req_end,
		       u64 end, unsigned int flags, u64 *made_present)
{
	unsigned long timeout = msecs_to_jiffies(HMM_RANGE_DEFAULT_TIMEOUT);
	unsigned long deadline = jiffies + timeout;
	unsigned int batch = IB_HMM_FAULT_BATCH, collisions = 0;
	unsigned long *pfns;
	u64 bs, be, full;
	int ret = 0;

	start &= PAGE_MASK;
	req_end = ALIGN(req_end, PAGE_SIZE);
	end = max(ALIGN(end, PAGE_SIZE), req_end);

	pfns = kmalloc_array(IB_HMM_FAULT_BATCH, sizeof(*pfns), GFP_KERNEL);
	if (!pfns)
		return -ENOMEM;
	if (!mmget_not_zero(m->mm)) {
		ret = -EFAULT;
		goto free_pfns;
	}
	for (bs = start; bs < end; bs = be) {
		full = min(end, bs + (u64)batch * PAGE_SIZE);
		be = full;
		ret = ib_hmm_fault_batch(m, pfns, bs, req_end, &be, flags,
					 made_present);
		if (ret == -EAGAIN) {
			/*
			 * Time alone is no measure of collisions: one attempt
			 * may wait for the mmap lock across a whole fork()
			 * (over a second in a TCG guest) and collide once.
			 */
			ret = ++collisions >= IB_HMM_FAULT_MIN_COLLISIONS &&
			      time_after(jiffies, deadline) ? -EBUSY : 0;
			batch = max(batch / 2, 1U);
			be = bs;
		} else if (!ret) {
			collisions = 0;
			deadline = jiffies + timeout;
			batch = min_t(unsigned int, batch * 2,
				      IB_HMM_FAULT_BATCH);
			if (be != full)
				break;
		}
		if (ret) {
			/* Fault-around is best effort. */
			if (bs >= req_end)
				ret = 0;
			break;
		}
		if (fatal_signal_pending(current)) {
			ret = -EINTR;
			break;
		}
		cond_resched();
	}
	mmput(m->mm);
free_pfns:
	kfree(pfns);
	return ret;
}
ALLOW_ERROR_INJECTION(ib_hmm_fault_range, ERRNO);
