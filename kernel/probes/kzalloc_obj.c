// SPDX-License-Identifier: GPL-2.0
/* The typed allocation helpers (kzalloc_obj and friends), newer than 6.12.0. */
#include <linux/slab.h>

struct ib_hmm_probe_obj {
	int x;
};

void *ib_hmm_probe_kzalloc_obj(void);

void *ib_hmm_probe_kzalloc_obj(void)
{
	struct ib_hmm_probe_obj *p = kzalloc_obj(*p, GFP_KERNEL);

	return p;
}
