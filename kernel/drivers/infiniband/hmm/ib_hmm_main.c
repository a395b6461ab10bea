// SPDX-License-Identifier: GPL-2.0
/*
 * ib_hmm module entry points.
 */
#include <linux/module.h>
#include <linux/init.h>

static int __init ib_hmm_init(void)
{
	return 0;
}

static void __exit ib_hmm_exit(void)
{
}

module_init(ib_hmm_init);
module_exit(ib_hmm_exit);

MODULE_DESCRIPTION("HMM-backed On-Demand-Paging memory regions for RDMA");
MODULE_LICENSE("GPL");
