/* SPDX-License-Identifier: ((GPL-2.0 WITH Linux-syscall-note) OR Linux-OpenIB) */
/*
 * ioctl ABI of /dev/ib_hmm_test, the ib_hmm mock device (ib_hmm_test.ko).
 *
 * Each open file is one device (mirror owner). MRs created through it map
 * the calling process's address space; they are destroyed by
 * IB_HMM_TEST_IOC_MR_DESTROY or when the file is closed. Every struct is
 * fixed-size with __u64 fields; errors come back as the ioctl's errno.
 */
#ifndef _UAPI_RDMA_IB_HMM_TEST_H
#define _UAPI_RDMA_IB_HMM_TEST_H

#include <linux/const.h>
#include <linux/ioctl.h>
#include <linux/types.h>

#define IB_HMM_TEST_DEVICE		"/dev/ib_hmm_test"

/* MR access bits (the values of enum ib_hmm_access). */
#define IB_HMM_TEST_ACCESS_LOCAL_READ	_BITULL(0)
#define IB_HMM_TEST_ACCESS_LOCAL_WRITE	_BITULL(1)
#define IB_HMM_TEST_ACCESS_REMOTE_READ	_BITULL(2)
#define IB_HMM_TEST_ACCESS_REMOTE_WRITE	_BITULL(3)
#define IB_HMM_TEST_ACCESS_REMOTE_ATOMIC _BITULL(4)
#define IB_HMM_TEST_ACCESS_FLUSH	_BITULL(5)
#define IB_HMM_TEST_ACCESS_ALL		0x3fULL

/* Implicit MR: start 0, length ~0. */
#define IB_HMM_TEST_IMPLICIT_LENGTH	(~0ULL)

/* Prefetch flags (the values of IB_HMM_PREFETCH_*). */
#define IB_HMM_TEST_PREFETCH_WRITE	_BITULL(0)
#define IB_HMM_TEST_PREFETCH_NO_FAULT	_BITULL(1)
#define IB_HMM_TEST_PREFETCH_ASYNC	_BITULL(2)

/* Per-page state bytes of IB_HMM_TEST_IOC_SNAPSHOT (IB_HMM_PAGE_*). */
#define IB_HMM_TEST_PAGE_VALID		_BITUL(0)
#define IB_HMM_TEST_PAGE_WRITE		_BITUL(1)
#define IB_HMM_TEST_PAGE_HUGE		_BITUL(2)

struct ib_hmm_test_mr_create {
	__u64 start;
	__u64 length;
	__u64 access;		/* IB_HMM_TEST_ACCESS_* */
	__u64 handle;		/* out */
};

struct ib_hmm_test_mr_destroy {
	__u64 handle;
};

/* READ, WRITE and FLUSH. */
#define IB_HMM_TEST_RW_REMOTE		_BITULL(0) /* remote op, not local */

struct ib_hmm_test_rw {
	__u64 handle;
	__u64 iova;
	__u64 length;
	__u64 addr;		/* user buffer of length bytes (not FLUSH) */
	__u64 flags;		/* IB_HMM_TEST_RW_* */
};

enum ib_hmm_test_atomic_op {
	IB_HMM_TEST_ATOMIC_CMP_SWP,
	IB_HMM_TEST_ATOMIC_FETCH_ADD,
	IB_HMM_TEST_ATOMIC_WRITE,
};

struct ib_hmm_test_atomic {
	__u64 handle;
	__u64 iova;
	__u64 op;		/* enum ib_hmm_test_atomic_op */
	__u64 compare_add;	/* compare, addend, or value to write */
	__u64 swap;
	__u64 orig;		/* out: the original value */
};

struct ib_hmm_test_prefetch {
	__u64 handle;
	__u64 iova;
	__u64 length;
	__u64 flags;		/* IB_HMM_TEST_PREFETCH_* */
};

struct ib_hmm_test_snapshot {
	__u64 handle;
	__u64 iova;
	__u64 npages;		/* at most IB_HMM_TEST_SNAPSHOT_MAX */
	__u64 addr;		/* user array of npages bytes */
};

#define IB_HMM_TEST_SNAPSHOT_MAX	_BITULL(20)

struct ib_hmm_test_counters {
	__u64 handle;
	__u64 faults;		/* out: struct ib_hmm_mr_counters */
	__u64 faults_handled;
	__u64 invalidations;
	__u64 invalidations_handled;
	__u64 prefetch;
	__u64 mapped_pages;
	__u64 table_bytes;
};

/*
 * LOOKUP (benchmarks): npages one-page lookups, one after another from iova,
 * each as the data path of a driver would do it before touching a page;
 * nothing is faulted in.
 */
struct ib_hmm_test_lookup {
	__u64 handle;
	__u64 iova;
	__u64 npages;
	__u64 found;		/* out: lookups that found the page present */
	__u64 ns;		/* out: time taken by the npages lookups */
};

/*
 * DMA mode: QEMU's "edu" PCI device (1234:11e8, tests/vm/run --viommu), bound
 * by ib_hmm_test, is the DMA device of DMA mirrors. It copies between its
 * 4 KiB buffer and memory, at most 4 KiB per transfer; the test module
 * bounces what the device read or writes through a coherent buffer. Every
 * DMA request gets ENODEV when no edu device is bound.
 *
 * DMA_INFO: whether the device is there and how it maps.
 */
struct ib_hmm_test_dma_info {
	__u64 present;		/* out: an edu device is bound */
	__u64 translated;	/* out: it sits behind a translating IOMMU */
	__u64 iova_mode;	/* out: DMA mirrors use one IOVA range per 2 MiB */
};

/*
 * DMA_SELFTEST: the edu device reads and writes a kernel page through
 * dma_map_page(); after dma_unmap_page() (translated devices only) the IOVA
 * must not reach the page any more. 0, or EIO with the failed step.
 */
struct ib_hmm_test_dma_selftest {
	__u64 step;		/* out: 1 read, 2 write, 3 iova_to_phys, 4 stale */
};

/*
 * DMA_RAW (translated devices only): one transfer at a raw device address,
 * e.g. an IOVA that was unmapped. Without IB_HMM_TEST_DMA_WRITE the device
 * reads length bytes at dma_addr into its buffer, which was filled with the
 * byte fill first, and they are copied to addr; with it, the device writes
 * the length bytes at addr to dma_addr. phys is iommu_iova_to_phys() of
 * dma_addr before the transfer (0: not mapped).
 */
#define IB_HMM_TEST_DMA_WRITE		_BITULL(0)
#define IB_HMM_TEST_DMA_NO_FAULT	_BITULL(1) /* MR_DMA: do not fault in */
#define IB_HMM_TEST_DMA_MAX		65536ULL

struct ib_hmm_test_dma_raw {
	__u64 dma_addr;
	__u64 length;		/* 1..4096 */
	__u64 addr;
	__u64 flags;		/* IB_HMM_TEST_DMA_WRITE */
	__u64 fill;
	__u64 phys;		/* out */
};

/*
 * MR_CREATE_DMA (struct ib_hmm_test_mr_create): as MR_CREATE, on the DMA
 * mirror of the edu device (ib_hmm_mr_create_dma()).
 *
 * DMA_LOOKUP: the DMA address of each page of a DMA MR, or
 * IB_HMM_TEST_DMA_NONE where no page is present; nothing is faulted.
 */
#define IB_HMM_TEST_DMA_NONE		(~0ULL)

struct ib_hmm_test_dma_lookup {
	__u64 handle;
	__u64 iova;
	__u64 npages;		/* at most IB_HMM_TEST_SNAPSHOT_MAX */
	__u64 addr;		/* user array of npages __u64 */
	__u64 found;		/* out: pages present */
};

/*
 * MR_DMA (struct ib_hmm_test_rw, flags IB_HMM_TEST_DMA_*): the edu device
 * reads (WRITE: writes) length bytes at iova through the DMA addresses of
 * the mirror, page by page, as a NIC would after its page fault: the pages
 * are faulted in first (for write with WRITE) unless NO_FAULT. iova and
 * length are page aligned, length at most IB_HMM_TEST_DMA_MAX. EFAULT if a
 * page is not present, EACCES if WRITE meets a page the device may not
 * write.
 */

/*
 * MR_SET_OPS: give a DMA MR driver callbacks (ib_hmm_mr_set_ops()) whose
 * invalidate logs each call, where a NIC driver would drop its MTTs.
 * EOPNOTSUPP for an MR without a DMA device, EBUSY if it has them already
 * (both from ib_hmm).
 *
 * HOOK_LOG: the log of an MR with callbacks, which is then emptied; EINVAL
 * for an MR without. Per call: the range, blockable, and of the pages of
 * the range that the MR's last DMA_LOOKUP (after MR_SET_OPS; its first
 * IB_HMM_TEST_HOOK_PAGES pages) gave an address for, how many there were
 * (checked) and how many of them the IOMMU still translated (mapped) when
 * the callback ran; both 0 without a translating IOMMU.
 */
#define IB_HMM_TEST_HOOK_LOG		64
#define IB_HMM_TEST_HOOK_PAGES		512

struct ib_hmm_test_mr_set_ops {
	__u64 handle;
};

struct ib_hmm_test_hook_call {
	__u64 start;
	__u64 end;
	__u64 blockable;
	__u64 checked;
	__u64 mapped;
};

struct ib_hmm_test_hook_log {
	__u64 handle;
	__u64 addr;		/* user array of IB_HMM_TEST_HOOK_LOG calls */
	__u64 calls;		/* out: calls since the last HOOK_LOG; the
				 * last IB_HMM_TEST_HOOK_LOG of them are at
				 * addr, oldest first
				 */
	__u64 file_calls;	/* out: calls of every MR of this file (open)
				 * since it was opened, destroyed MRs too
				 */
};

#define IB_HMM_TEST_IOC_MAGIC		0xE8
#define IB_HMM_TEST_IOC_MR_CREATE \
	_IOWR(IB_HMM_TEST_IOC_MAGIC, 0x00, struct ib_hmm_test_mr_create)
#define IB_HMM_TEST_IOC_MR_DESTROY \
	_IOWR(IB_HMM_TEST_IOC_MAGIC, 0x01, struct ib_hmm_test_mr_destroy)
#define IB_HMM_TEST_IOC_READ \
	_IOWR(IB_HMM_TEST_IOC_MAGIC, 0x02, struct ib_hmm_test_rw)
#define IB_HMM_TEST_IOC_WRITE \
	_IOWR(IB_HMM_TEST_IOC_MAGIC, 0x03, struct ib_hmm_test_rw)
#define IB_HMM_TEST_IOC_ATOMIC \
	_IOWR(IB_HMM_TEST_IOC_MAGIC, 0x04, struct ib_hmm_test_atomic)
#define IB_HMM_TEST_IOC_PREFETCH \
	_IOWR(IB_HMM_TEST_IOC_MAGIC, 0x05, struct ib_hmm_test_prefetch)
#define IB_HMM_TEST_IOC_SNAPSHOT \
	_IOWR(IB_HMM_TEST_IOC_MAGIC, 0x06, struct ib_hmm_test_snapshot)
#define IB_HMM_TEST_IOC_COUNTERS \
	_IOWR(IB_HMM_TEST_IOC_MAGIC, 0x07, struct ib_hmm_test_counters)
#define IB_HMM_TEST_IOC_FLUSH \
	_IOWR(IB_HMM_TEST_IOC_MAGIC, 0x08, struct ib_hmm_test_rw)
#define IB_HMM_TEST_IOC_LOOKUP \
	_IOWR(IB_HMM_TEST_IOC_MAGIC, 0x09, struct ib_hmm_test_lookup)
#define IB_HMM_TEST_IOC_DMA_INFO \
	_IOWR(IB_HMM_TEST_IOC_MAGIC, 0x0a, struct ib_hmm_test_dma_info)
#define IB_HMM_TEST_IOC_DMA_SELFTEST \
	_IOWR(IB_HMM_TEST_IOC_MAGIC, 0x0b, struct ib_hmm_test_dma_selftest)
#define IB_HMM_TEST_IOC_DMA_RAW \
	_IOWR(IB_HMM_TEST_IOC_MAGIC, 0x0c, struct ib_hmm_test_dma_raw)
#define IB_HMM_TEST_IOC_MR_CREATE_DMA \
	_IOWR(IB_HMM_TEST_IOC_MAGIC, 0x0d, struct ib_hmm_test_mr_create)
#define IB_HMM_TEST_IOC_DMA_LOOKUP \
	_IOWR(IB_HMM_TEST_IOC_MAGIC, 0x0e, struct ib_hmm_test_dma_lookup)
#define IB_HMM_TEST_IOC_MR_DMA \
	_IOWR(IB_HMM_TEST_IOC_MAGIC, 0x0f, struct ib_hmm_test_rw)
#define IB_HMM_TEST_IOC_MR_SET_OPS \
	_IOWR(IB_HMM_TEST_IOC_MAGIC, 0x10, struct ib_hmm_test_mr_set_ops)
#define IB_HMM_TEST_IOC_HOOK_LOG \
	_IOWR(IB_HMM_TEST_IOC_MAGIC, 0x11, struct ib_hmm_test_hook_log)

/*
 * /dev/ib_umem_odp_test (ib_umem_odp_test.ko) serves the same ABI from the
 * kernel's own ODP umem (ib_umem_odp) for side-by-side benchmarks: MR_CREATE
 * (explicit ranges), MR_DESTROY, PREFETCH (faults in; flags WRITE only),
 * COUNTERS (invalidations, invalidations_handled, mapped_pages, table_bytes)
 * and LOOKUP; every other request gets ENOTTY.
 */
#define IB_UMEM_ODP_TEST_DEVICE		"/dev/ib_umem_odp_test"

#endif /* _UAPI_RDMA_IB_HMM_TEST_H */
