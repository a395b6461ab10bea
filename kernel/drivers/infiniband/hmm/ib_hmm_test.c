// SPDX-License-Identifier: GPL-2.0
/*
 * ib_hmm_test: a mock RDMA device for testing ib_hmm from userspace.
 *
 * /dev/ib_hmm_test; each open file is one device (the mirror owner). The
 * ioctls create MR views of the caller's address space and access memory
 * through them the way a NIC's data path would (see
 * <uapi/rdma/ib_hmm_test.h>). Data goes through a kernel bounce buffer: the
 * user buffer is never touched while ib_hmm holds a stripe.
 */
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/rwsem.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/timekeeping.h>
#include <linux/uaccess.h>
#include <linux/xarray.h>
#include <rdma/ib_hmm.h>
#include <uapi/rdma/ib_hmm_test.h>

#include "ib_hmm_config.h"

#ifndef IB_HMM_HAVE_KZALLOC_OBJ
#define kzalloc_obj(P, GFP)	kzalloc(sizeof(P), GFP)
#endif

#define IB_HMM_TEST_BOUNCE	(64 * 1024)

struct ib_hmm_test_file {
	struct rw_semaphore lock;	/* write: MR create/destroy */
	struct xarray mrs;		/* handle -> struct ib_hmm_mr */
};

static int ib_hmm_test_open(struct inode *inode, struct file *filp)
{
	struct ib_hmm_test_file *tf;

	tf = kzalloc_obj(*tf, GFP_KERNEL);
	if (!tf)
		return -ENOMEM;
	init_rwsem(&tf->lock);
	xa_init_flags(&tf->mrs, XA_FLAGS_ALLOC1);
	filp->private_data = tf;
	return 0;
}

static int ib_hmm_test_release(struct inode *inode, struct file *filp)
{
	struct ib_hmm_test_file *tf = filp->private_data;
	struct ib_hmm_mr *mr;
	unsigned long handle;

	xa_for_each(&tf->mrs, handle, mr)
		ib_hmm_mr_destroy(mr);
	xa_destroy(&tf->mrs);
	kfree(tf);
	return 0;
}

/* Lookups run under tf->lock (read), which MR_DESTROY takes for write. */
static struct ib_hmm_mr *ib_hmm_test_mr(struct ib_hmm_test_file *tf,
					u64 handle)
{
	if (handle > U32_MAX)
		return NULL;
	return xa_load(&tf->mrs, handle);
}

static int ib_hmm_test_mr_create(struct ib_hmm_test_file *tf,
				 struct ib_hmm_test_mr_create *arg)
{
	struct ib_hmm_mr *mr;
	u32 handle;
	int ret;

	if (arg->access & ~IB_HMM_TEST_ACCESS_ALL)
		return -EINVAL;
	mr = ib_hmm_mr_create(tf, current->mm, arg->start, arg->length,
			      arg->access);
	if (IS_ERR(mr))
		return PTR_ERR(mr);
	down_write(&tf->lock);
	ret = xa_alloc(&tf->mrs, &handle, mr, xa_limit_32b, GFP_KERNEL);
	up_write(&tf->lock);
	if (ret) {
		ib_hmm_mr_destroy(mr);
		return ret;
	}
	arg->handle = handle;
	return 0;
}

static int ib_hmm_test_mr_destroy(struct ib_hmm_test_file *tf,
				  struct ib_hmm_test_mr_destroy *arg)
{
	struct ib_hmm_mr *mr;

	if (arg->handle > U32_MAX)
		return -ENOENT;
	down_write(&tf->lock);
	mr = xa_erase(&tf->mrs, arg->handle);
	up_write(&tf->lock);
	if (!mr)
		return -ENOENT;
	ib_hmm_mr_destroy(mr);
	return 0;
}

static int ib_hmm_test_rw(struct ib_hmm_mr *mr, struct ib_hmm_test_rw *arg,
			  bool write)
{
	bool remote = arg->flags & IB_HMM_TEST_RW_REMOTE;
	void __user *ubuf = u64_to_user_ptr(arg->addr);
	enum ib_hmm_op op;
	u64 done, n;
	void *buf;
	int ret;

	if (arg->flags & ~IB_HMM_TEST_RW_REMOTE)
		return -EINVAL;
	if (write)
		op = remote ? IB_HMM_OP_REMOTE_WRITE : IB_HMM_OP_LOCAL_WRITE;
	else
		op = remote ? IB_HMM_OP_REMOTE_READ : IB_HMM_OP_LOCAL_READ;
	ret = ib_hmm_mr_check_range(mr, arg->iova, arg->length, op);
	if (ret || !arg->length)
		return ret;

	buf = kvmalloc(min_t(u64, arg->length, IB_HMM_TEST_BOUNCE),
		       GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	for (done = 0; done < arg->length; done += n) {
		n = min_t(u64, arg->length - done, IB_HMM_TEST_BOUNCE);
		if (write) {
			if (copy_from_user(buf, ubuf + done, n)) {
				ret = -EFAULT;
				break;
			}
			ret = ib_hmm_mr_copy_to(mr, arg->iova + done, buf, n,
						op);
			if (ret)
				break;
		} else {
			ret = ib_hmm_mr_copy_from(mr, buf, arg->iova + done, n,
						  op);
			if (ret)
				break;
			if (copy_to_user(ubuf + done, buf, n)) {
				ret = -EFAULT;
				break;
			}
		}
	}
	kvfree(buf);
	return ret;
}

static int ib_hmm_test_atomic(struct ib_hmm_mr *mr,
			      struct ib_hmm_test_atomic *arg)
{
	switch (arg->op) {
	case IB_HMM_TEST_ATOMIC_CMP_SWP:
		return ib_hmm_mr_atomic(mr, arg->iova, IB_HMM_ATOMIC_CMP_SWP,
					arg->compare_add, arg->swap,
					&arg->orig);
	case IB_HMM_TEST_ATOMIC_FETCH_ADD:
		return ib_hmm_mr_atomic(mr, arg->iova, IB_HMM_ATOMIC_FETCH_ADD,
					arg->compare_add, 0, &arg->orig);
	case IB_HMM_TEST_ATOMIC_WRITE:
		return ib_hmm_mr_atomic_write(mr, arg->iova, arg->compare_add);
	default:
		return -EINVAL;
	}
}

static int ib_hmm_test_snapshot(struct ib_hmm_mr *mr,
				struct ib_hmm_test_snapshot *arg)
{
	u8 *state;
	int ret;

	if (!arg->npages || arg->npages > IB_HMM_TEST_SNAPSHOT_MAX)
		return -EINVAL;
	state = kvmalloc(arg->npages, GFP_KERNEL);
	if (!state)
		return -ENOMEM;
	ret = ib_hmm_mr_snapshot(mr, arg->iova, arg->npages, state);
	if (!ret && copy_to_user(u64_to_user_ptr(arg->addr), state,
				 arg->npages))
		ret = -EFAULT;
	kvfree(state);
	return ret;
}

static void ib_hmm_test_counters(struct ib_hmm_mr *mr,
				 struct ib_hmm_test_counters *arg)
{
	struct ib_hmm_mr_counters c;

	ib_hmm_mr_get_counters(mr, &c);
	arg->faults = c.faults;
	arg->faults_handled = c.faults_handled;
	arg->invalidations = c.invalidations;
	arg->invalidations_handled = c.invalidations_handled;
	arg->prefetch = c.prefetch;
	arg->mapped_pages = c.mapped_pages;
	arg->table_bytes = c.table_bytes;
}

/*
 * One-page mirror lookups, each under the mirror's lock as a snapshot takes
 * it (ib_umem_odp_test does the same under the umem's mutex); nothing faults.
 */
static int ib_hmm_test_lookup(struct ib_hmm_mr *mr,
			      struct ib_hmm_test_lookup *arg)
{
	u64 i, t0;
	u8 state;
	int ret;

	if (arg->npages > IB_HMM_TEST_SNAPSHOT_MAX)
		return -EINVAL;
	arg->found = 0;
	t0 = ktime_get_ns();
	for (i = 0; i < arg->npages; i++) {
		ret = ib_hmm_mr_snapshot(mr, arg->iova + i * PAGE_SIZE, 1,
					 &state);
		if (ret)
			return ret;
		if (state & IB_HMM_PAGE_VALID)
			arg->found++;
	}
	arg->ns = ktime_get_ns() - t0;
	return 0;
}

union ib_hmm_test_arg {
	struct ib_hmm_test_mr_create create;
	struct ib_hmm_test_mr_destroy destroy;
	struct ib_hmm_test_rw rw;
	struct ib_hmm_test_atomic atomic;
	struct ib_hmm_test_prefetch prefetch;
	struct ib_hmm_test_snapshot snapshot;
	struct ib_hmm_test_counters counters;
	struct ib_hmm_test_lookup lookup;
};

/* Every operation on an MR: the handle is each struct's first field. */
static long ib_hmm_test_mr_op(struct ib_hmm_test_file *tf, unsigned int cmd,
			      union ib_hmm_test_arg *arg)
{
	struct ib_hmm_mr *mr;
	long ret;

	down_read(&tf->lock);
	mr = ib_hmm_test_mr(tf, arg->destroy.handle);
	if (!mr) {
		ret = -ENOENT;
		goto unlock;
	}
	switch (cmd) {
	case IB_HMM_TEST_IOC_READ:
		ret = ib_hmm_test_rw(mr, &arg->rw, false);
		break;
	case IB_HMM_TEST_IOC_WRITE:
		ret = ib_hmm_test_rw(mr, &arg->rw, true);
		break;
	case IB_HMM_TEST_IOC_FLUSH:
		ret = ib_hmm_mr_flush(mr, arg->rw.iova, arg->rw.length);
		break;
	case IB_HMM_TEST_IOC_ATOMIC:
		ret = ib_hmm_test_atomic(mr, &arg->atomic);
		break;
	case IB_HMM_TEST_IOC_PREFETCH:
		ret = arg->prefetch.flags > U32_MAX ? -EINVAL :
		      ib_hmm_mr_prefetch(mr, arg->prefetch.iova,
					 arg->prefetch.length,
					 arg->prefetch.flags);
		break;
	case IB_HMM_TEST_IOC_SNAPSHOT:
		ret = ib_hmm_test_snapshot(mr, &arg->snapshot);
		break;
	case IB_HMM_TEST_IOC_COUNTERS:
		ib_hmm_test_counters(mr, &arg->counters);
		ret = 0;
		break;
	case IB_HMM_TEST_IOC_LOOKUP:
		ret = ib_hmm_test_lookup(mr, &arg->lookup);
		break;
	default:
		ret = -ENOTTY;
		break;
	}
unlock:
	up_read(&tf->lock);
	return ret;
}

static long ib_hmm_test_ioctl(struct file *filp, unsigned int cmd,
			      unsigned long uarg)
{
	struct ib_hmm_test_file *tf = filp->private_data;
	void __user *uptr = (void __user *)uarg;
	union ib_hmm_test_arg arg;
	unsigned int size = _IOC_SIZE(cmd);
	long ret;

	switch (cmd) {
	case IB_HMM_TEST_IOC_MR_CREATE:
	case IB_HMM_TEST_IOC_MR_DESTROY:
	case IB_HMM_TEST_IOC_READ:
	case IB_HMM_TEST_IOC_WRITE:
	case IB_HMM_TEST_IOC_FLUSH:
	case IB_HMM_TEST_IOC_ATOMIC:
	case IB_HMM_TEST_IOC_PREFETCH:
	case IB_HMM_TEST_IOC_SNAPSHOT:
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

	switch (cmd) {
	case IB_HMM_TEST_IOC_MR_CREATE:
		ret = ib_hmm_test_mr_create(tf, &arg.create);
		break;
	case IB_HMM_TEST_IOC_MR_DESTROY:
		ret = ib_hmm_test_mr_destroy(tf, &arg.destroy);
		break;
	default:
		ret = ib_hmm_test_mr_op(tf, cmd, &arg);
		break;
	}
	if (!ret && copy_to_user(uptr, &arg, size))
		ret = -EFAULT;
	return ret;
}

static const struct file_operations ib_hmm_test_fops = {
	.owner = THIS_MODULE,
	.open = ib_hmm_test_open,
	.release = ib_hmm_test_release,
	.unlocked_ioctl = ib_hmm_test_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice ib_hmm_test_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "ib_hmm_test",
	.fops = &ib_hmm_test_fops,
};

module_misc_device(ib_hmm_test_misc);

MODULE_DESCRIPTION("Mock RDMA device for testing ib_hmm from userspace");
MODULE_LICENSE("GPL");
