/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ib_hmm: HMM-backed On-Demand-Paging memory regions for RDMA drivers.
 *
 * A process's address space is mirrored, per device, in a sparse secondary
 * page table kept in sync with the CPU page tables by an mmu interval
 * notifier and filled by hmm_range_fault(). Every ODP MR of that process on
 * that device is a view (struct ib_hmm_mr) on the one mirror.
 *
 * This header is the contract between the core (module ib_hmm) and drivers
 * (rxe, mlx5, the ib_hmm_test mock device). Nothing here is ABI to userspace.
 */
#ifndef _RDMA_IB_HMM_H
#define _RDMA_IB_HMM_H

#include <linux/bits.h>
#include <linux/dma-mapping.h>
#include <linux/types.h>

struct device;
struct mm_struct;
struct ib_hmm_mr;

/**
 * IB_HMM_IMPLICIT_START, IB_HMM_IMPLICIT_LENGTH - an implicit MR's range.
 *
 * An MR created with start 0 and length U64_MAX covers the whole user
 * address space of its process (implicit ODP). Any other range is explicit
 * and must satisfy start + length <= TASK_SIZE without wrapping.
 */
#define IB_HMM_IMPLICIT_START	0ULL
#define IB_HMM_IMPLICIT_LENGTH	U64_MAX

/**
 * enum ib_hmm_access - what an MR lets the device do, checked before the
 * mirror is consulted (invariant 3). Drivers translate IB_ACCESS_* to these.
 */
enum ib_hmm_access {
	IB_HMM_ACCESS_LOCAL_READ = 1 << 0,	/* always set */
	IB_HMM_ACCESS_LOCAL_WRITE = 1 << 1,
	IB_HMM_ACCESS_REMOTE_READ = 1 << 2,
	IB_HMM_ACCESS_REMOTE_WRITE = 1 << 3,
	IB_HMM_ACCESS_REMOTE_ATOMIC = 1 << 4,
	IB_HMM_ACCESS_FLUSH = 1 << 5,		/* FLUSH_GLOBAL / PERSISTENT */
};

/**
 * enum ib_hmm_op - the operation a driver is about to perform, for
 * ib_hmm_mr_check_range(): the needed access bits and whether the pages
 * must be mapped writable follow from it.
 */
enum ib_hmm_op {
	IB_HMM_OP_LOCAL_READ,	/* gather from the MR (send, RDMA write source) */
	IB_HMM_OP_LOCAL_WRITE,	/* scatter into the MR (recv, RDMA read sink) */
	IB_HMM_OP_REMOTE_READ,
	IB_HMM_OP_REMOTE_WRITE,
	IB_HMM_OP_REMOTE_ATOMIC,
	IB_HMM_OP_FLUSH,
};

/* Flags for ib_hmm_mr_prefetch(). */
#define IB_HMM_PREFETCH_WRITE		(1U << 0) /* fault for write */
#define IB_HMM_PREFETCH_NO_FAULT	(1U << 1) /* map only what is present */
#define IB_HMM_PREFETCH_ASYNC		(1U << 2) /* queue; return at once */

/* Atomic opcodes for ib_hmm_mr_atomic(). */
enum ib_hmm_atomic_op {
	IB_HMM_ATOMIC_CMP_SWP,
	IB_HMM_ATOMIC_FETCH_ADD,
};

/**
 * struct ib_hmm_mr_counters - per-MR statistics, named after the kernel's
 * ODP counters.
 * @faults: pages made present in the mirror by data-path faults of this MR.
 * @faults_handled: data-path fault events of this MR that completed.
 * @invalidations: pages of this MR's range zapped by invalidations.
 * @invalidations_handled: invalidation callbacks that zapped at least one
 *	page of this MR's range.
 * @prefetch: pages made present by prefetch through this MR.
 * @mapped_pages: 4 KiB pages of this MR's range present in the mirror now
 *	(a huge entry counts as all the small pages it stands for).
 * @table_bytes: bytes of mirror table memory of the mirror this MR views
 *	(shared by every MR of the same mirror).
 */
struct ib_hmm_mr_counters {
	u64 faults;
	u64 faults_handled;
	u64 invalidations;
	u64 invalidations_handled;
	u64 prefetch;
	u64 mapped_pages;
	u64 table_bytes;
};

/*
 * Page states reported by ib_hmm_mr_snapshot(), one byte per 4 KiB page.
 */
#define IB_HMM_PAGE_VALID	BIT(0) /* present in the mirror */
#define IB_HMM_PAGE_WRITE	BIT(1) /* present and writable by the device */
#define IB_HMM_PAGE_HUGE	BIT(2) /* part of a huge (2 MiB+) entry */

/*
 * All functions below may sleep unless they say otherwise. None may be
 * called with the mmap lock of the MR's mm held.
 *
 * An iova is a virtual address of the MR's process inside the MR's range
 * [start, start + length) (the whole user address space for an implicit
 * MR); drivers whose MR iova differs from the address translate first.
 */

struct ib_hmm_mr *ib_hmm_mr_create(const void *owner, struct mm_struct *mm,
				   u64 start, u64 length, unsigned int access);
struct ib_hmm_mr *ib_hmm_mr_create_dma(const void *owner,
				       struct mm_struct *mm,
				       struct device *dma_dev, u64 start,
				       u64 length, unsigned int access);
void ib_hmm_mr_destroy(struct ib_hmm_mr *mr);

bool ib_hmm_mr_is_implicit(const struct ib_hmm_mr *mr);
int ib_hmm_mr_check_range(struct ib_hmm_mr *mr, u64 iova, u64 length,
			  enum ib_hmm_op op);

int ib_hmm_mr_copy_from(struct ib_hmm_mr *mr, void *dst, u64 iova,
			u64 length, enum ib_hmm_op op);
int ib_hmm_mr_copy_to(struct ib_hmm_mr *mr, u64 iova, const void *src,
		      u64 length, enum ib_hmm_op op);
int ib_hmm_mr_atomic(struct ib_hmm_mr *mr, u64 iova, enum ib_hmm_atomic_op op,
		     u64 compare_add, u64 swap, u64 *orig);
int ib_hmm_mr_atomic_write(struct ib_hmm_mr *mr, u64 iova, u64 value);
int ib_hmm_mr_flush(struct ib_hmm_mr *mr, u64 iova, u64 length);

int ib_hmm_mr_prefetch(struct ib_hmm_mr *mr, u64 iova, u64 length,
		       unsigned int flags);

void ib_hmm_mr_get_counters(struct ib_hmm_mr *mr,
			    struct ib_hmm_mr_counters *counters);
int ib_hmm_mr_snapshot(struct ib_hmm_mr *mr, u64 iova, u64 npages,
		       u8 *state);

/*
 * DMA mirrors (ib_hmm_mr_create_dma()): the device's addresses of present
 * pages. ib_hmm_dma_fn is called under the mirror's lock, see
 * ib_hmm_mr_dma_walk(); flags are IB_HMM_PAGE_* bits.
 */
typedef int (*ib_hmm_dma_fn)(void *priv, u64 iova, dma_addr_t dma,
			     unsigned int flags);

/**
 * struct ib_hmm_mr_ops - driver callbacks of a DMA mirror's MR
 * @invalidate: a device that caches translations of the MR's pages (MTTs)
 *	drops those of [@start, @end) here, and waits until the device no
 *	longer uses them, before ib_hmm unmaps the pages. Called for every
 *	invalidation whose range overlaps the MR (@start, @end are clipped to
 *	the MR's range, page aligned), under mirror->lock, before anything of
 *	the range is zapped or unmapped; and by a fault that remaps present
 *	pages of the MR (WRITE added: a new DMA direction), once per fault
 *	batch for the span of them, before the old mappings go, from the
 *	faulting thread (which may be the driver's own fault handler: it must
 *	not hold the locks taken here). It may sleep waiting for the device
 *	but must not allocate with reclaim (GFP_NOWAIT, GFP_ATOMIC or memory
 *	allocated beforehand) nor call into ib_hmm. If @blockable is false
 *	(the OOM reaper) it must not sleep at all: it either drops the
 *	translations without waiting or returns false, and the invalidation
 *	then fails with nothing of it zapped (the core mm retries later).
 *	Returns true when the device no longer uses the translations; it must
 *	when @blockable is true.
 *
 * See ib_hmm_mr_set_ops().
 */
struct ib_hmm_mr_ops {
	bool (*invalidate)(struct ib_hmm_mr *mr, void *priv, u64 start,
			   u64 end, bool blockable);
};

int ib_hmm_mr_set_ops(struct ib_hmm_mr *mr, const struct ib_hmm_mr_ops *ops,
		      void *priv);

bool ib_hmm_dma_uses_iova(struct device *dev);
int ib_hmm_mr_dma_walk(struct ib_hmm_mr *mr, u64 iova, u64 npages,
		       ib_hmm_dma_fn fn, void *priv);
s64 ib_hmm_mr_dma_lookup(struct ib_hmm_mr *mr, u64 iova, u64 npages,
			 dma_addr_t *dma);

#endif /* _RDMA_IB_HMM_H */
