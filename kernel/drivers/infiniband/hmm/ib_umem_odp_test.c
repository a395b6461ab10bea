// SPDX-License-Identifier: GPL-2.0
/*
 * ib_umem_odp_test: the mock device's ABI (<uapi/rdma/ib_hmm_test.h>) served
 * by the kernel's own ODP umem (ib_umem_odp) instead of ib_hmm, so that the
 * two can be measured side by side on one kernel by one benchmark program.
 *
 * /dev/ib_umem_odp_test; each open file holds its MRs, one ib_umem_odp each,
 * created the way an ODP driver creates them (ib_umem_odp_get() with an
 * interval notifier whose invalidate callback unmaps the range under the
 * umem mutex). The umems belong to an unregistered ib_device without a DMA
 * device, as rxe's do, so nothing is DMA-mapped: what is measured is the
 * umem's page lists, its locking and hmm_range_fault().
 */
#include <linux/fs.h>
#include <linux/hmm.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mmu_notifier.h>
#include <linux/rwsem.h>
#include <linux/slab.h>
#include <linux/timekeeping.h>
#include <linux/uaccess.h>
#include <linux/xarray.h>
#include <rdma/ib_umem_odp.h>
#include <rdma/ib_verbs.h>
#include <uapi/rdma/ib_hmm_test.h>

#include "ib_hmm_config.h"

#ifndef IB_HMM_HAVE_KZALLOC_OBJ
#define kzalloc_obj(P, GFP)	kzalloc(sizeof(P), GFP)
#endif

/* Pages per ib_umem_odp_map_dma_and_lock() call, as a fault handler batches. */
#define UMEM_TEST_FAULT_PAGES	512

struct umem_test_device {
	struct ib_device ibdev;
};

static struct umem_test_device *umem_test_dev;

struct umem_test_mr {
	struct ib_umem_odp *odp;
	u64 table_bytes;		/* the umem and its page lists */
	atomic64_t invalidations;	/* pages unmapped by invalidations */
	atomic64_t invalidations_handled;
};

struct umem_test_file {
	struct rw_semaphore lock;	/* write: MR create/destroy */
	struct xarray mrs;		/* handle -> struct umem_test_mr */
};

/* Is page idx of the umem mapped? Called with the umem mutex held. */
static bool umem_test_present(struct ib_umem_odp *odp, size_t idx)
{
#ifdef IB_HMM_HAVE_HMM_DMA_MAP
	return odp->map.pfn_list[idx] & HMM_PFN_VALID;
#else
	return odp->dma_list[idx];
#endif
}

static bool umem_test_invalidate(struct mmu_interval_notifier *mni,
				 const struct mmu_notifier_range *range,
				 unsigned long cur_seq)
{
	struct ib_umem_odp *odp =
		container_of(mni, struct ib_umem_odp, notifier);
	struct umem_test_mr *mr = odp->private;
	int before;

	if (!mmu_notifier_range_blockable(range))
		return false;
	mutex_lock(&odp->umem_mutex);
	mmu_interval_set_seq(mni, cur_seq);
	before = odp->npages;
	ib_umem_odp_unmap_dma_pages(odp, max(ib_umem_start(odp), range->start),
				    min(ib_umem_end(odp), range->end));
	if (before != odp->npages) {
		atomic64_add(before - odp->npages, &mr->invalidations);
		atomic64_inc(&mr->invalidations_handled);
	}
	mutex_unlock(&odp->umem_mutex);
	return true;
}

static const struct mmu_interval_notifier_ops umem_test_ops = {
	.invalidate = umem_test_invalidate,
};

static int umem_test_open(struct inode *inode, struct file *filp)
{
	struct umem_test_file *tf = kzalloc_obj(*tf, GFP_KERNEL);

	if (!tf)
		return -ENOMEM;
	init_rwsem(&tf->lock);
	xa_init_flags(&tf->mrs, XA_FLAGS_ALLOC1);
	filp->private_data = tf;
	return 0;
}

static void umem_test_mr_free(struct umem_test_mr *mr)
{
	ib_umem_odp_release(mr->odp);
	kfree(mr);
}

static int umem_test_release(struct inode *inode, struct file *filp)
{
	struct umem_test_file *tf = filp->private_data;
	struct umem_test_mr *mr;
	unsigned long handle;

	xa_for_each(&tf->mrs, handle, mr)
		umem_test_mr_free(mr);
	xa_destroy(&tf->mrs);
	kfree(tf);
	return 0;
}

static int umem_test_mr_create(struct umem_test_file *tf,
			       struct ib_hmm_test_mr_create *arg)
{
	int access = IB_ACCESS_ON_DEMAND;
	struct umem_test_mr *mr;
	size_t pages;
	u32 handle;
	int ret;

	if (arg->access & ~IB_HMM_TEST_ACCESS_ALL)
		return -EINVAL;
	/* Implicit umems are per-chunk children in the drivers: not here. */
	if (arg->length == IB_HMM_TEST_IMPLICIT_LENGTH || !arg->length)
		return -EOPNOTSUPP;
	if (arg->access & IB_HMM_TEST_ACCESS_LOCAL_WRITE)
		access |= IB_ACCESS_LOCAL_WRITE;
	if (arg->access & IB_HMM_TEST_ACCESS_REMOTE_WRITE)
		access |= IB_ACCESS_REMOTE_WRITE;
	if (arg->access & IB_HMM_TEST_ACCESS_REMOTE_READ)
		access |= IB_ACCESS_REMOTE_READ;
	mr = kzalloc_obj(*mr, GFP_KERNEL);
	if (!mr)
		return -ENOMEM;
	mr->odp = ib_umem_odp_get(&umem_test_dev->ibdev, arg->start,
				  arg->length, access, &umem_test_ops);
	if (IS_ERR(mr->odp)) {
		ret = PTR_ERR(mr->odp);
		kfree(mr);
		return ret;
	}
	mr->odp->private = mr;
	/*
	 * What ib_init_umem_odp() allocated: one pfn per page, and before the
	 * hmm_dma_map helpers one dma_addr_t per page as well.
	 */
	pages = (ib_umem_end(mr->odp) - ib_umem_start(mr->odp)) >> PAGE_SHIFT;
#ifdef IB_HMM_HAVE_HMM_DMA_MAP
	mr->table_bytes = sizeof(*mr->odp) + pages * sizeof(unsigned long);
#else
	mr->table_bytes = sizeof(*mr->odp) +
			  pages * (sizeof(unsigned long) + sizeof(dma_addr_t));
#endif
	down_write(&tf->lock);
	ret = xa_alloc(&tf->mrs, &handle, mr, xa_limit_32b, GFP_KERNEL);
	up_write(&tf->lock);
	if (ret) {
		umem_test_mr_free(mr);
		return ret;
	}
	arg->handle = handle;
	return 0;
}

static int umem_test_mr_destroy(struct umem_test_file *tf, u64 handle)
{
	struct umem_test_mr *mr;

	if (handle > U32_MAX)
		return -ENOENT;
	down_write(&tf->lock);
	mr = xa_erase(&tf->mrs, handle);
	up_write(&tf->lock);
	if (!mr)
		return -ENOENT;
	umem_test_mr_free(mr);
	return 0;
}

/* Fault a range in, in batches, as an ODP driver's page-fault handler does. */
static int umem_test_fault(struct umem_test_mr *mr,
			   struct ib_hmm_test_prefetch *arg)
{
	struct ib_umem_odp *odp = mr->odp;
	u64 access = 0;
	u64 addr = arg->iova, end, chunk;
	int ret;

	if (arg->flags & ~IB_HMM_TEST_PREFETCH_WRITE)
		return -EOPNOTSUPP;
	if (check_add_overflow(arg->iova, arg->length, &end) ||
	    addr < ib_umem_start(odp) || end > ib_umem_end(odp))
		return -EFAULT;
	/* The access mask's bits changed with the hmm_dma_map helpers. */
#ifdef IB_HMM_HAVE_HMM_DMA_MAP
	if (arg->flags & IB_HMM_TEST_PREFETCH_WRITE)
		access |= HMM_PFN_WRITE;
#else
	access = ODP_READ_ALLOWED_BIT;
	if (arg->flags & IB_HMM_TEST_PREFETCH_WRITE)
		access |= ODP_WRITE_ALLOWED_BIT;
#endif
	while (addr < end) {
		chunk = min_t(u64, end - addr,
			      UMEM_TEST_FAULT_PAGES * PAGE_SIZE -
			      (addr & (PAGE_SIZE - 1)));
		ret = ib_umem_odp_map_dma_and_lock(odp, addr, chunk, access,
						   true);
		if (ret < 0)
			return ret;
		mutex_unlock(&odp->umem_mutex);
		addr += chunk;
	}
	return 0;
}

static int umem_test_lookup(struct umem_test_mr *mr,
			    struct ib_hmm_test_lookup *arg)
{
	struct ib_umem_odp *odp = mr->odp;
	u64 i, addr, t0;

	if (arg->npages > IB_HMM_TEST_SNAPSHOT_MAX)
		return -EINVAL;
	arg->found = 0;
	t0 = ktime_get_ns();
	for (i = 0; i < arg->npages; i++) {
		addr = arg->iova + i * PAGE_SIZE;
		if (addr < ib_umem_start(odp) || addr >= ib_umem_end(odp))
			return -EFAULT;
		mutex_lock(&odp->umem_mutex);
		if (umem_test_present(odp, (addr - ib_umem_start(odp)) >>
					   PAGE_SHIFT))
			arg->found++;
		mutex_unlock(&odp->umem_mutex);
	}
	arg->ns = ktime_get_ns() - t0;
	return 0;
}

static void umem_test_counters(struct umem_test_mr *mr,
			       struct ib_hmm_test_counters *arg)
{
	/* A umem counts no faults or prefetches of its own. */
	arg->faults = 0;
	arg->faults_handled = 0;
	arg->prefetch = 0;
	arg->invalidations = atomic64_read(&mr->invalidations);
	arg->invalidations_handled = atomic64_read(&mr->invalidations_handled);
	mutex_lock(&mr->odp->umem_mutex);
	arg->mapped_pages = mr->odp->npages;
	mutex_unlock(&mr->odp->umem_mutex);
	arg->table_bytes = mr->table_bytes;
}

union umem_test_arg {
	struct ib_hmm_test_mr_create create;
	struct ib_hmm_test_mr_destroy destroy;
	struct ib_hmm_test_prefetch prefetch;
	struct ib_hmm_test_counters counters;
	struct ib_hmm_test_lookup lookup;
};

static long umem_test_mr_op(struct umem_test_file *tf, unsigned int cmd,
			    union umem_test_arg *arg)
{
	struct umem_test_mr *mr = NULL;
	long ret;

	down_read(&tf->lock);
	if (arg->destroy.handle <= U32_MAX)
		mr = xa_load(&tf->mrs, arg->destroy.handle);
	if (!mr) {
		ret = -ENOENT;
	} else if (cmd == IB_HMM_TEST_IOC_PREFETCH) {
		ret = umem_test_fault(mr, &arg->prefetch);
	} else if (cmd == IB_HMM_TEST_IOC_LOOKUP) {
		ret = umem_test_lookup(mr, &arg->lookup);
	} else {
		umem_test_counters(mr, &arg->counters);
		ret = 0;
	}
	up_read(&tf->lock);
	return ret;
}

static long umem_test_ioctl(struct file *filp, unsigned int cmd,
			    unsigned long uarg)
{
	struct umem_test_file *tf = filp->private_data;
	void __user *uptr = (void __user *)uarg;
	unsigned int size = _IOC_SIZE(cmd);
	union umem_test_arg arg;
	long ret;

	switch (cmd) {
	case IB_HMM_TEST_IOC_MR_CREATE:
	case IB_HMM_TEST_IOC_MR_DESTROY:
	case IB_HMM_TEST_IOC_PREFETCH:
	case IB_HMM_TEST_IOC_COUNTERS:
	case IB_HMM_TEST_IOC_LOOKUP:
		break;
	default:
		return -ENOTTY;
	}
	if (size > sizeof(arg))
		return -ENOTTY;
	if (copy_from_user(&arg, uptr, size))
		return -EFAULT;
	if (cmd == IB_HMM_TEST_IOC_MR_CREATE)
		ret = umem_test_mr_create(tf, &arg.create);
	else if (cmd == IB_HMM_TEST_IOC_MR_DESTROY)
		ret = umem_test_mr_destroy(tf, arg.destroy.handle);
	else
		ret = umem_test_mr_op(tf, cmd, &arg);
	if (!ret && copy_to_user(uptr, &arg, size))
		ret = -EFAULT;
	return ret;
}

static const struct file_operations umem_test_fops = {
	.owner = THIS_MODULE,
	.open = umem_test_open,
	.release = umem_test_release,
	.unlocked_ioctl = umem_test_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice umem_test_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "ib_umem_odp_test",
	.fops = &umem_test_fops,
};

static int __init umem_test_init(void)
{
	int ret;

	/* Never registered: it only gives the umems a device without DMA. */
	umem_test_dev = ib_alloc_device(umem_test_device, ibdev);
	if (!umem_test_dev)
		return -ENOMEM;
	ret = misc_register(&umem_test_misc);
	if (ret)
		ib_dealloc_device(&umem_test_dev->ibdev);
	return ret;
}

static void __exit umem_test_exit(void)
{
	misc_deregister(&umem_test_misc);
	ib_dealloc_device(&umem_test_dev->ibdev);
}

module_init(umem_test_init);
module_exit(umem_test_exit);

MODULE_DESCRIPTION("The ib_hmm mock device's ABI served by ib_umem_odp, for benchmarks");
MODULE_LICENSE("GPL");
