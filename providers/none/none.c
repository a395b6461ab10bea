// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * none backend: a device whose driver has no backend here (or that has no ODP). It answers
 * hmmv_query_device() with the caps the device reports and no library feature; every other
 * call fails with EOPNOTSUPP (its ops are NULL).
 */
#include "hmmv_priv.h"

static int none_query_device(struct ibv_context *context, struct hmmv_device_attr *attr)
{
	int err;

	err = hmmv_odp_query_caps(context, attr);
	/* Whatever the device says, the library offers nothing on it. */
	attr->flags = 0;
	if (attr->comp_mask & HMMV_DEVICE_ATTR_MASK_PAGE_SIZES)
		attr->mirror_page_sizes = 0;
	return err;
}

const struct hmmv_provider_ops hmmv_none_ops = {
	.name = "none",
	.provider = HMMV_PROVIDER_NONE,
	.query_device = none_query_device,
};
