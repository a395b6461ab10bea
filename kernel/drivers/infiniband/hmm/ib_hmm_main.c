// SPDX-License-Identifier: GPL-2.0
/*
 * ib_hmm module entry points: HMM-backed On-Demand-Paging memory regions
 * for RDMA drivers. See <rdma/ib_hmm.h> and ib_hmm_priv.h (Locking).
 */
#include <linux/debugfs.h>
#include <linux/init.h>
#include <linux/module.h>
#include <linux/rcupdate.h>

#include "ib_hmm_priv.h"

static struct dentry *ib_hmm_debugfs;

static int __init ib_hmm_init(void)
{
	int ret;

	ret = ib_hmm_prefetch_init();
	if (ret)
		return ret;
	ib_hmm_debugfs = debugfs_create_dir("ib_hmm", NULL);
	ib_hmm_stats_debugfs_init(ib_hmm_debugfs);
	return 0;
}

static void __exit ib_hmm_exit(void)
{
	debugfs_remove_recursive(ib_hmm_debugfs);
	ib_hmm_prefetch_exit();
	/* Table nodes are freed by RCU callbacks in this module. */
	rcu_barrier();
}

module_init(ib_hmm_init);
module_exit(ib_hmm_exit);

MODULE_DESCRIPTION("HMM-backed On-Demand-Paging memory regions for RDMA");
MODULE_LICENSE("GPL");
