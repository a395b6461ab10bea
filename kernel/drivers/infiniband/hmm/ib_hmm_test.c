// SPDX-License-Identifier: GPL-2.0
/*
 * ib_hmm_test: a mock RDMA device for testing ib_hmm from userspace.
 *
 * /dev/ib_hmm_test; each open file is one device (the mirror owner). The
 * ioctls create MR views of the caller's address space and access memory
 * through them the way a NIC's data path would (see
 * <uapi/rdma/ib_hmm_test.h>). Data goes through a kernel bounce buffer: the
 * user buffer is never touched while ib_hmm holds a stripe.
 *
 * DMA mode: the module also drives QEMU's edu PCI device, which then is the
 * DMA device of DMA mirrors (tests/vm/run --viommu).
 */
#include <linux/delay.h>
#include <linux/dma-mapping.h>
#include <linux/fs.h>
#include <linux/io.h>
#include <linux/iommu.h>
#include <linux/jiffies.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/rwsem.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
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
	struct rw_semaphore lock;	/* write: MR create/destroy, set_ops */
	struct xarray mrs;		/* handle -> struct ib_hmm_mr */
	struct xarray hooks;		/* handle -> struct ib_hmm_test_hook */
	atomic64_t hook_calls;		/* of every MR, destroyed ones too */
};

/*
 * The invalidate callback of an MR given ops by MR_SET_OPS: what it was
 * called for, and whether the DMA addresses the last DMA_LOOKUP returned
 * for the range were still mapped then.
 */
struct ib_hmm_test_hook {
	struct ib_hmm_test_file *tf;
	struct iommu_domain *domain;	/* NULL: no translating IOMMU */
	spinlock_t lock;		/* under mirror->lock in the callback */
	u64 calls;			/* lock: since the last HOOK_LOG */
	struct ib_hmm_test_hook_call log[IB_HMM_TEST_HOOK_LOG]; /* lock */
	u64 iova;			/* lock: first page of the lookup */
	u64 npages;			/* lock: pages in dma */
	dma_addr_t dma[IB_HMM_TEST_HOOK_PAGES];	/* lock */
};

static int ib_hmm_test_open(struct inode *inode, struct file *filp)
{
	struct ib_hmm_test_file *tf;

	tf = kzalloc_obj(*tf, GFP_KERNEL);
	if (!tf)
		return -ENOMEM;
	init_rwsem(&tf->lock);
	xa_init_flags(&tf->mrs, XA_FLAGS_ALLOC1);
	xa_init(&tf->hooks);
	atomic64_set(&tf->hook_calls, 0);
	filp->private_data = tf;
	return 0;
}

static int ib_hmm_test_release(struct inode *inode, struct file *filp)
{
	struct ib_hmm_test_file *tf = filp->private_data;
	struct ib_hmm_test_hook *hook;
	struct ib_hmm_mr *mr;
	unsigned long handle;

	xa_for_each(&tf->mrs, handle, mr)
		ib_hmm_mr_destroy(mr);
	xa_destroy(&tf->mrs);
	xa_for_each(&tf->hooks, handle, hook)
		kfree(hook);
	xa_destroy(&tf->hooks);
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

static struct ib_hmm_mr *
ib_hmm_test_mr_create_dma(struct ib_hmm_test_file *tf,
			  struct ib_hmm_test_mr_create *arg);

static int ib_hmm_test_mr_create(struct ib_hmm_test_file *tf,
				 struct ib_hmm_test_mr_create *arg, bool dma)
{
	struct ib_hmm_mr *mr;
	u32 handle;
	int ret;

	if (arg->access & ~IB_HMM_TEST_ACCESS_ALL)
		return -EINVAL;
	if (dma)
		mr = ib_hmm_test_mr_create_dma(tf, arg);
	else
		mr = ib_hmm_mr_create(tf, current->mm, arg->start,
				      arg->length, arg->access);
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
	struct ib_hmm_test_hook *hook;
	struct ib_hmm_mr *mr;

	if (arg->handle > U32_MAX)
		return -ENOENT;
	down_write(&tf->lock);
	mr = xa_erase(&tf->mrs, arg->handle);
	hook = xa_erase(&tf->hooks, arg->handle);
	up_write(&tf->lock);
	if (!mr)
		return -ENOENT;
	/* The MR's callback may run until the MR is destroyed. */
	ib_hmm_mr_destroy(mr);
	kfree(hook);
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

/* ------------------------------------------------------------------------
 * DMA mode: QEMU's edu device (docs/specs/edu.rst) as the DMA device.
 *
 * Its DMA engine copies between memory and a 4 KiB buffer inside the device
 * (device address 0x40000) when the command register is written, 100 ms of
 * virtual time later; the buffer itself is not visible through the BAR, so
 * what the device read is brought back by a second transfer into a coherent
 * bounce buffer. The device masks DMA addresses to 28 bits. A page takes
 * four transfers each way, 0.4 s: tests move few pages.
 */
#define EDU_VENDOR		0x1234
#define EDU_DEVICE		0x11e8
#define EDU_REG_ID		0x00
#define EDU_REG_LIVENESS	0x04
#define EDU_REG_DMA_SRC		0x80
#define EDU_REG_DMA_DST		0x88
#define EDU_REG_DMA_CNT		0x90
#define EDU_REG_DMA_CMD		0x98
#define EDU_CMD_START		BIT(0)
#define EDU_CMD_TO_RAM		BIT(1)	/* device buffer -> memory */
#define EDU_BUF_ADDR		0x40000
#define EDU_BUF_SIZE		4096
/*
 * QEMU 7.2 stops the whole VM (hw_error) on a transfer that ends at the end
 * of the device's buffer: transfers use its first half only.
 */
#define EDU_XFER_MAX		2048
#define EDU_DMA_BITS		28
#define EDU_DMA_TIMEOUT_MS	5000

struct ib_hmm_test_edu {
	struct pci_dev *pdev;
	void __iomem *regs;
	void *bounce;			/* IB_HMM_TEST_DMA_MAX bytes */
	dma_addr_t bounce_dma;
};

/* Protects ib_hmm_test_edu and serialises the device's DMA engine. */
static DEFINE_MUTEX(ib_hmm_test_edu_lock);
static struct ib_hmm_test_edu *ib_hmm_test_edu;

/* One transfer of @len bytes; returns once the device reports it done. */
static int ib_hmm_test_edu_dma(struct ib_hmm_test_edu *edu, u64 src, u64 dst,
			       u64 len, bool to_ram)
{
	unsigned long deadline;

	lockdep_assert_held(&ib_hmm_test_edu_lock);
	if (!len || len > EDU_XFER_MAX)
		return -EINVAL;
	writeq(src, edu->regs + EDU_REG_DMA_SRC);
	writeq(dst, edu->regs + EDU_REG_DMA_DST);
	writeq(len, edu->regs + EDU_REG_DMA_CNT);
	writeq(EDU_CMD_START | (to_ram ? EDU_CMD_TO_RAM : 0),
	       edu->regs + EDU_REG_DMA_CMD);
	deadline = jiffies + msecs_to_jiffies(EDU_DMA_TIMEOUT_MS);
	while (readq(edu->regs + EDU_REG_DMA_CMD) & EDU_CMD_START) {
		if (time_after(jiffies, deadline))
			return -ETIMEDOUT;
		usleep_range(1000, 2000);
	}
	return 0;
}

/*
 * Move @len bytes between @dma and @off in the bounce buffer through the
 * device's own buffer: with @to_dma the device reads the bounce and writes
 * at @dma, else it reads at @dma and writes the bounce.
 */
static int ib_hmm_test_edu_copy(struct ib_hmm_test_edu *edu, dma_addr_t dma,
				u64 len, u64 off, bool to_dma)
{
	u64 done, n, at_dma, at_bounce;
	int ret = 0;

	for (done = 0; done < len && !ret; done += n) {
		n = min_t(u64, len - done, EDU_XFER_MAX);
		at_dma = dma + done;
		at_bounce = edu->bounce_dma + off + done;
		ret = ib_hmm_test_edu_dma(edu, to_dma ? at_bounce : at_dma,
					  EDU_BUF_ADDR, n, false);
		if (!ret)
			ret = ib_hmm_test_edu_dma(edu, EDU_BUF_ADDR,
						  to_dma ? at_dma : at_bounce,
						  n, true);
	}
	return ret;
}

/* The device reads @len bytes at @dma; they land at @off in the bounce. */
static int ib_hmm_test_edu_read(struct ib_hmm_test_edu *edu, dma_addr_t dma,
				u64 len, u64 off)
{
	return ib_hmm_test_edu_copy(edu, dma, len, off, false);
}

/* The device writes the @len bytes at @off in the bounce to @dma. */
static int ib_hmm_test_edu_write(struct ib_hmm_test_edu *edu, dma_addr_t dma,
				 u64 len, u64 off)
{
	return ib_hmm_test_edu_copy(edu, dma, len, off, true);
}

/* Fill the part of the device's buffer that transfers use with @fill. */
static int ib_hmm_test_edu_fill(struct ib_hmm_test_edu *edu, u8 fill)
{
	memset(edu->bounce, fill, EDU_XFER_MAX);
	return ib_hmm_test_edu_dma(edu, edu->bounce_dma, EDU_BUF_ADDR,
				   EDU_XFER_MAX, false);
}

/* Whether the device's DMA goes through a translating IOMMU domain. */
static struct iommu_domain *ib_hmm_test_edu_domain(struct ib_hmm_test_edu *edu)
{
	struct iommu_domain *d = iommu_get_domain_for_dev(&edu->pdev->dev);

	return d && (d->type & __IOMMU_DOMAIN_PAGING) ? d : NULL;
}

static struct ib_hmm_test_edu *ib_hmm_test_edu_get_and_lock(void)
	__acquires(&ib_hmm_test_edu_lock)
{
	mutex_lock(&ib_hmm_test_edu_lock);
	return ib_hmm_test_edu;
}

static int ib_hmm_test_dma_info(struct ib_hmm_test_dma_info *arg)
{
	struct ib_hmm_test_edu *edu = ib_hmm_test_edu_get_and_lock();

	memset(arg, 0, sizeof(*arg));
	if (edu) {
		arg->present = 1;
		arg->translated = !!ib_hmm_test_edu_domain(edu);
		arg->iova_mode = ib_hmm_dma_uses_iova(&edu->pdev->dev);
	}
	mutex_unlock(&ib_hmm_test_edu_lock);
	return 0;
}

static int ib_hmm_test_dma_selftest(struct ib_hmm_test_dma_selftest *arg)
{
	struct ib_hmm_test_edu *edu = ib_hmm_test_edu_get_and_lock();
	struct iommu_domain *domain;
	struct device *dev;
	struct page *page;
	dma_addr_t dma;
	u8 *p;
	int ret, i;

	arg->step = 0;
	if (!edu) {
		ret = -ENODEV;
		goto unlock;
	}
	dev = &edu->pdev->dev;
	domain = ib_hmm_test_edu_domain(edu);
	page = alloc_page(GFP_KERNEL);
	if (!page) {
		ret = -ENOMEM;
		goto unlock;
	}
	p = page_address(page);
	for (i = 0; i < PAGE_SIZE; i++)
		p[i] = i * 7 + 3;
	dma = dma_map_page(dev, page, 0, PAGE_SIZE, DMA_BIDIRECTIONAL);
	if (dma_mapping_error(dev, dma)) {
		ret = -ENOMEM;
		goto free_page;
	}

	arg->step = 1;
	ret = ib_hmm_test_edu_read(edu, dma, PAGE_SIZE, 0);
	if (ret)
		goto unmap;
	if (memcmp(edu->bounce, p, PAGE_SIZE)) {
		ret = -EIO;
		goto unmap;
	}
	arg->step = 2;
	for (i = 0; i < PAGE_SIZE; i++)
		((u8 *)edu->bounce)[i] = i * 5 + 1;
	ret = ib_hmm_test_edu_write(edu, dma, PAGE_SIZE, 0);
	if (ret)
		goto unmap;
	dma_sync_single_for_cpu(dev, dma, PAGE_SIZE, DMA_BIDIRECTIONAL);
	if (memcmp(edu->bounce, p, PAGE_SIZE)) {
		ret = -EIO;
		goto unmap;
	}
	dma_unmap_page(dev, dma, PAGE_SIZE, DMA_BIDIRECTIONAL);
	if (domain) {
		arg->step = 3;
		if (iommu_iova_to_phys(domain, dma)) {
			ret = -EIO;
			goto free_page;
		}
		/* The stale IOVA must not reach the page: the read faults. */
		arg->step = 4;
		ret = ib_hmm_test_edu_fill(edu, 0x5a);
		if (!ret)
			ret = ib_hmm_test_edu_read(edu, dma, PAGE_SIZE, 0);
		if (!ret && !memcmp(edu->bounce, p, PAGE_SIZE))
			ret = -EIO;
	}
	if (!ret)
		arg->step = 0;
	goto free_page;

unmap:
	dma_unmap_page(dev, dma, PAGE_SIZE, DMA_BIDIRECTIONAL);
free_page:
	__free_page(page);
unlock:
	mutex_unlock(&ib_hmm_test_edu_lock);
	return ret;
}

static int ib_hmm_test_dma_raw(struct ib_hmm_test_dma_raw *arg)
{
	void __user *ubuf = u64_to_user_ptr(arg->addr);
	bool write = arg->flags & IB_HMM_TEST_DMA_WRITE;
	struct ib_hmm_test_edu *edu;
	struct iommu_domain *domain;
	int ret;

	if ((arg->flags & ~IB_HMM_TEST_DMA_WRITE) || !arg->length ||
	    arg->length > EDU_BUF_SIZE || arg->fill > U8_MAX)
		return -EINVAL;
	edu = ib_hmm_test_edu_get_and_lock();
	if (!edu) {
		ret = -ENODEV;
		goto unlock;
	}
	/* Raw addresses only where the IOMMU confines them. */
	domain = ib_hmm_test_edu_domain(edu);
	if (!domain) {
		ret = -EOPNOTSUPP;
		goto unlock;
	}
	arg->phys = iommu_iova_to_phys(domain, arg->dma_addr);
	if (write) {
		if (copy_from_user(edu->bounce, ubuf, arg->length)) {
			ret = -EFAULT;
			goto unlock;
		}
		ret = ib_hmm_test_edu_write(edu, arg->dma_addr, arg->length, 0);
	} else {
		ret = ib_hmm_test_edu_fill(edu, arg->fill);
		if (!ret)
			ret = ib_hmm_test_edu_read(edu, arg->dma_addr,
						   arg->length, 0);
		if (!ret && copy_to_user(ubuf, edu->bounce, arg->length))
			ret = -EFAULT;
	}
unlock:
	mutex_unlock(&ib_hmm_test_edu_lock);
	return ret;
}

static struct ib_hmm_mr *
ib_hmm_test_mr_create_dma(struct ib_hmm_test_file *tf,
			  struct ib_hmm_test_mr_create *arg)
{
	struct ib_hmm_test_edu *edu = ib_hmm_test_edu_get_and_lock();
	struct ib_hmm_mr *mr;

	if (edu)
		mr = ib_hmm_mr_create_dma(tf, current->mm, &edu->pdev->dev,
					  arg->start, arg->length,
					  arg->access);
	else
		mr = ERR_PTR(-ENODEV);
	mutex_unlock(&ib_hmm_test_edu_lock);
	return mr;
}

/* The addresses of the MR's last DMA_LOOKUP, for its invalidate callback. */
static void ib_hmm_test_hook_learn(struct ib_hmm_test_hook *hook, u64 iova,
				   u64 npages, const dma_addr_t *dma)
{
	if (!hook)
		return;
	npages = min_t(u64, npages, IB_HMM_TEST_HOOK_PAGES);
	spin_lock(&hook->lock);
	hook->iova = iova;
	hook->npages = npages;
	memcpy(hook->dma, dma, npages * sizeof(*dma));
	spin_unlock(&hook->lock);
}

static int ib_hmm_test_dma_lookup(struct ib_hmm_mr *mr,
				  struct ib_hmm_test_hook *hook,
				  struct ib_hmm_test_dma_lookup *arg)
{
	dma_addr_t *dma;
	u64 *out, i;
	s64 found;
	int ret = 0;

	if (!arg->npages || arg->npages > IB_HMM_TEST_SNAPSHOT_MAX)
		return -EINVAL;
	dma = kvmalloc_array(arg->npages, sizeof(*dma), GFP_KERNEL);
	out = kvmalloc_array(arg->npages, sizeof(*out), GFP_KERNEL);
	if (!dma || !out) {
		ret = -ENOMEM;
		goto free;
	}
	found = ib_hmm_mr_dma_lookup(mr, arg->iova, arg->npages, dma);
	if (found < 0) {
		ret = found;
		goto free;
	}
	ib_hmm_test_hook_learn(hook, arg->iova, arg->npages, dma);
	for (i = 0; i < arg->npages; i++)
		out[i] = dma[i] == DMA_MAPPING_ERROR ? IB_HMM_TEST_DMA_NONE :
						       dma[i];
	arg->found = found;
	if (copy_to_user(u64_to_user_ptr(arg->addr), out,
			 arg->npages * sizeof(*out)))
		ret = -EFAULT;
free:
	kvfree(out);
	kvfree(dma);
	return ret;
}

struct ib_hmm_test_dma_walk {
	struct ib_hmm_test_edu *edu;
	u64 iova;		/* first page */
	u64 next;		/* the page expected next */
	bool write;
};

/*
 * One page of MR_DMA, under the mirror's lock: no invalidation can unmap
 * the page while the device uses it, as a NIC's in-flight access delays
 * the invalidation of its pages.
 */
static int ib_hmm_test_dma_page(void *priv, u64 iova, dma_addr_t dma,
				unsigned int flags)
{
	struct ib_hmm_test_dma_walk *w = priv;
	u64 off = iova - w->iova;

	if (iova != w->next)
		return -EFAULT;
	if (w->write && !(flags & IB_HMM_PAGE_WRITE))
		return -EACCES;
	w->next += PAGE_SIZE;
	return w->write ? ib_hmm_test_edu_write(w->edu, dma, PAGE_SIZE, off) :
			  ib_hmm_test_edu_read(w->edu, dma, PAGE_SIZE, off);
}

static int ib_hmm_test_mr_dma(struct ib_hmm_mr *mr, struct ib_hmm_test_rw *arg)
{
	struct ib_hmm_test_dma_walk w = {
		.iova = arg->iova,
		.next = arg->iova,
		.write = arg->flags & IB_HMM_TEST_DMA_WRITE,
	};
	void __user *ubuf = u64_to_user_ptr(arg->addr);
	u64 npages = arg->length >> PAGE_SHIFT;
	u64 known = IB_HMM_TEST_DMA_WRITE | IB_HMM_TEST_DMA_NO_FAULT;
	int ret;

	if ((arg->flags & ~known) || !arg->length || arg->length > IB_HMM_TEST_DMA_MAX ||
	    !PAGE_ALIGNED(arg->iova) || !PAGE_ALIGNED(arg->length))
		return -EINVAL;
	if (!(arg->flags & IB_HMM_TEST_DMA_NO_FAULT)) {
		ret = ib_hmm_mr_prefetch(mr, arg->iova, arg->length,
					 w.write ? IB_HMM_PREFETCH_WRITE : 0);
		if (ret)
			return ret;
	}
	w.edu = ib_hmm_test_edu_get_and_lock();
	if (!w.edu) {
		ret = -ENODEV;
		goto unlock;
	}
	if (w.write && copy_from_user(w.edu->bounce, ubuf, arg->length)) {
		ret = -EFAULT;
		goto unlock;
	}
	ret = ib_hmm_mr_dma_walk(mr, arg->iova, npages, ib_hmm_test_dma_page,
				 &w);
	if (!ret && w.next != arg->iova + arg->length)
		ret = -EFAULT;
	if (!ret && !w.write && copy_to_user(ubuf, w.edu->bounce, arg->length))
		ret = -EFAULT;
unlock:
	mutex_unlock(&ib_hmm_test_edu_lock);
	return ret;
}

/*
 * ops->invalidate, under mirror->lock and before anything of [start, end)
 * is unmapped: log the call and which known addresses still translate.
 * Never sleeps, so non-blockable calls are logged the same way.
 */
static bool ib_hmm_test_hook_invalidate(struct ib_hmm_mr *mr, void *priv,
					u64 start, u64 end, bool blockable)
{
	struct ib_hmm_test_hook *hook = priv;
	struct ib_hmm_test_hook_call *c;
	u64 i, iova;

	atomic64_inc(&hook->tf->hook_calls);
	spin_lock(&hook->lock);
	c = &hook->log[hook->calls++ % IB_HMM_TEST_HOOK_LOG];
	memset(c, 0, sizeof(*c));
	c->start = start;
	c->end = end;
	c->blockable = blockable;
	for (i = 0; hook->domain && i < hook->npages; i++) {
		iova = hook->iova + i * PAGE_SIZE;
		if (iova < start || iova >= end ||
		    hook->dma[i] == DMA_MAPPING_ERROR)
			continue;
		c->checked++;
		if (iommu_iova_to_phys(hook->domain, hook->dma[i]))
			c->mapped++;
	}
	spin_unlock(&hook->lock);
	return true;
}

static const struct ib_hmm_mr_ops ib_hmm_test_hook_ops = {
	.invalidate = ib_hmm_test_hook_invalidate,
};

/*
 * ib_hmm_mr_set_ops() is called even when the MR has a hook already, so
 * that its EBUSY is what userspace sees.
 */
static int ib_hmm_test_mr_set_ops(struct ib_hmm_test_file *tf,
				  struct ib_hmm_test_mr_set_ops *arg)
{
	struct ib_hmm_test_edu *edu;
	struct ib_hmm_test_hook *hook;
	struct ib_hmm_mr *mr;
	bool had;
	int ret;

	hook = kzalloc_obj(*hook, GFP_KERNEL);
	if (!hook)
		return -ENOMEM;
	hook->tf = tf;
	spin_lock_init(&hook->lock);
	mutex_lock(&ib_hmm_test_edu_lock);
	edu = ib_hmm_test_edu;
	if (edu)
		hook->domain = ib_hmm_test_edu_domain(edu);
	mutex_unlock(&ib_hmm_test_edu_lock);

	down_write(&tf->lock);
	mr = ib_hmm_test_mr(tf, arg->handle);
	if (!mr) {
		ret = -ENOENT;
		goto unlock;
	}
	had = !!xa_load(&tf->hooks, arg->handle);
	/* The slot is reserved first: once the MR has ops, storing can't fail. */
	ret = xa_reserve(&tf->hooks, arg->handle, GFP_KERNEL);
	if (ret)
		goto unlock;
	ret = ib_hmm_mr_set_ops(mr, &ib_hmm_test_hook_ops, hook);
	if (ret) {
		if (!had)
			xa_release(&tf->hooks, arg->handle);
		goto unlock;
	}
	xa_store(&tf->hooks, arg->handle, hook, GFP_KERNEL);
	hook = NULL;
unlock:
	up_write(&tf->lock);
	kfree(hook);
	return ret;
}

static int ib_hmm_test_hook_log(struct ib_hmm_test_file *tf,
				struct ib_hmm_test_hook *hook,
				struct ib_hmm_test_hook_log *arg)
{
	struct ib_hmm_test_hook_call *log;
	u64 calls, n, i;
	int ret = 0;

	if (!hook)
		return -EINVAL;
	log = kmalloc_array(IB_HMM_TEST_HOOK_LOG, sizeof(*log), GFP_KERNEL);
	if (!log)
		return -ENOMEM;
	spin_lock(&hook->lock);
	calls = hook->calls;
	n = min_t(u64, calls, IB_HMM_TEST_HOOK_LOG);
	for (i = 0; i < n; i++)
		log[i] = hook->log[(calls - n + i) % IB_HMM_TEST_HOOK_LOG];
	hook->calls = 0;
	spin_unlock(&hook->lock);
	arg->calls = calls;
	arg->file_calls = atomic64_read(&tf->hook_calls);
	if (n && copy_to_user(u64_to_user_ptr(arg->addr), log,
			      n * sizeof(*log)))
		ret = -EFAULT;
	kfree(log);
	return ret;
}

static int ib_hmm_test_edu_probe(struct pci_dev *pdev,
				 const struct pci_device_id *id)
{
	struct ib_hmm_test_edu *edu;
	int ret;

	edu = kzalloc_obj(*edu, GFP_KERNEL);
	if (!edu)
		return -ENOMEM;
	edu->pdev = pdev;
	ret = pci_enable_device(pdev);
	if (ret)
		goto free_edu;
	ret = pci_request_region(pdev, 0, "ib_hmm_test");
	if (ret)
		goto disable;
	edu->regs = pci_iomap(pdev, 0, 0);
	if (!edu->regs) {
		ret = -ENOMEM;
		goto release;
	}
	/* The identification register reads 0x010000ed (version 1.0). */
	if ((readl(edu->regs + EDU_REG_ID) & 0xff) != 0xed) {
		ret = -ENODEV;
		goto unmap_regs;
	}
	writel(0x5a5a1234, edu->regs + EDU_REG_LIVENESS);
	if (readl(edu->regs + EDU_REG_LIVENESS) != ~0x5a5a1234U) {
		ret = -ENODEV;
		goto unmap_regs;
	}
	ret = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(EDU_DMA_BITS));
	if (ret)
		goto unmap_regs;
	pci_set_master(pdev);
	edu->bounce = dma_alloc_coherent(&pdev->dev, IB_HMM_TEST_DMA_MAX,
					 &edu->bounce_dma, GFP_KERNEL);
	if (!edu->bounce) {
		ret = -ENOMEM;
		goto clear_master;
	}
	mutex_lock(&ib_hmm_test_edu_lock);
	if (ib_hmm_test_edu) {
		mutex_unlock(&ib_hmm_test_edu_lock);
		ret = -EBUSY;
		goto free_bounce;
	}
	ib_hmm_test_edu = edu;
	mutex_unlock(&ib_hmm_test_edu_lock);
	pci_set_drvdata(pdev, edu);
	dev_info(&pdev->dev, "edu DMA device for ib_hmm tests (%s)\n",
		 ib_hmm_test_edu_domain(edu) ? "behind an IOMMU" : "direct");
	return 0;

free_bounce:
	dma_free_coherent(&pdev->dev, IB_HMM_TEST_DMA_MAX, edu->bounce,
			  edu->bounce_dma);
clear_master:
	pci_clear_master(pdev);
unmap_regs:
	pci_iounmap(pdev, edu->regs);
release:
	pci_release_region(pdev, 0);
disable:
	pci_disable_device(pdev);
free_edu:
	kfree(edu);
	return ret;
}

static void ib_hmm_test_edu_remove(struct pci_dev *pdev)
{
	struct ib_hmm_test_edu *edu = pci_get_drvdata(pdev);

	mutex_lock(&ib_hmm_test_edu_lock);
	ib_hmm_test_edu = NULL;
	mutex_unlock(&ib_hmm_test_edu_lock);
	dma_free_coherent(&pdev->dev, IB_HMM_TEST_DMA_MAX, edu->bounce,
			  edu->bounce_dma);
	pci_clear_master(pdev);
	pci_iounmap(pdev, edu->regs);
	pci_release_region(pdev, 0);
	pci_disable_device(pdev);
	kfree(edu);
}

static const struct pci_device_id ib_hmm_test_edu_ids[] = {
	{ PCI_DEVICE(EDU_VENDOR, EDU_DEVICE) },
	{ }
};

static struct pci_driver ib_hmm_test_edu_driver = {
	.name = "ib_hmm_test_edu",
	.id_table = ib_hmm_test_edu_ids,
	.probe = ib_hmm_test_edu_probe,
	.remove = ib_hmm_test_edu_remove,
};

union ib_hmm_test_arg {
	struct ib_hmm_test_mr_create create;
	struct ib_hmm_test_mr_destroy destroy;
	struct ib_hmm_test_rw rw;
	struct ib_hmm_test_atomic atomic;
	struct ib_hmm_test_prefetch prefetch;
	struct ib_hmm_test_snapshot snapshot;
	struct ib_hmm_test_counters counters;
	struct ib_hmm_test_lookup lookup;
	struct ib_hmm_test_dma_info dma_info;
	struct ib_hmm_test_dma_selftest dma_selftest;
	struct ib_hmm_test_dma_raw dma_raw;
	struct ib_hmm_test_dma_lookup dma_lookup;
	struct ib_hmm_test_mr_set_ops set_ops;
	struct ib_hmm_test_hook_log hook_log;
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
	case IB_HMM_TEST_IOC_DMA_LOOKUP:
		ret = ib_hmm_test_dma_lookup(mr, xa_load(&tf->hooks,
							 arg->destroy.handle),
					     &arg->dma_lookup);
		break;
	case IB_HMM_TEST_IOC_MR_DMA:
		ret = ib_hmm_test_mr_dma(mr, &arg->rw);
		break;
	case IB_HMM_TEST_IOC_HOOK_LOG:
		ret = ib_hmm_test_hook_log(tf, xa_load(&tf->hooks,
						       arg->destroy.handle),
					   &arg->hook_log);
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
	bool dma;
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
	case IB_HMM_TEST_IOC_DMA_INFO:
	case IB_HMM_TEST_IOC_DMA_SELFTEST:
	case IB_HMM_TEST_IOC_DMA_RAW:
	case IB_HMM_TEST_IOC_MR_CREATE_DMA:
	case IB_HMM_TEST_IOC_DMA_LOOKUP:
	case IB_HMM_TEST_IOC_MR_DMA:
	case IB_HMM_TEST_IOC_MR_SET_OPS:
	case IB_HMM_TEST_IOC_HOOK_LOG:
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
	case IB_HMM_TEST_IOC_MR_CREATE_DMA:
		dma = cmd == IB_HMM_TEST_IOC_MR_CREATE_DMA;
		ret = ib_hmm_test_mr_create(tf, &arg.create, dma);
		break;
	case IB_HMM_TEST_IOC_MR_DESTROY:
		ret = ib_hmm_test_mr_destroy(tf, &arg.destroy);
		break;
	case IB_HMM_TEST_IOC_MR_SET_OPS:
		ret = ib_hmm_test_mr_set_ops(tf, &arg.set_ops);
		break;
	case IB_HMM_TEST_IOC_DMA_INFO:
		ret = ib_hmm_test_dma_info(&arg.dma_info);
		break;
	case IB_HMM_TEST_IOC_DMA_SELFTEST:
		ret = ib_hmm_test_dma_selftest(&arg.dma_selftest);
		/* The failed step goes back with the error. */
		if (ret == -EIO && copy_to_user(uptr, &arg, size))
			ret = -EFAULT;
		break;
	case IB_HMM_TEST_IOC_DMA_RAW:
		ret = ib_hmm_test_dma_raw(&arg.dma_raw);
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

static int __init ib_hmm_test_init(void)
{
	int ret;

	ret = pci_register_driver(&ib_hmm_test_edu_driver);
	if (ret)
		return ret;
	ret = misc_register(&ib_hmm_test_misc);
	if (ret)
		pci_unregister_driver(&ib_hmm_test_edu_driver);
	return ret;
}

static void __exit ib_hmm_test_exit(void)
{
	misc_deregister(&ib_hmm_test_misc);
	pci_unregister_driver(&ib_hmm_test_edu_driver);
}

module_init(ib_hmm_test_init);
module_exit(ib_hmm_test_exit);

MODULE_DESCRIPTION("Mock RDMA device for testing ib_hmm from userspace");
MODULE_LICENSE("GPL");
