// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * The public calls: argument validation, then dispatch to the device's provider ops.
 * A missing op gives EOPNOTSUPP.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "hmmv_priv.h"

/* The access flags an ODP MR may carry (IBV_ACCESS_ON_DEMAND is added by the library). */
#define HMMV_ACCESS_ALLOWED                                                              \
	(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ |     \
	 IBV_ACCESS_REMOTE_ATOMIC | IBV_ACCESS_MW_BIND | IBV_ACCESS_ON_DEMAND |          \
	 IBV_ACCESS_HUGETLB | IBV_ACCESS_RELAXED_ORDERING)

static int check_access(int access)
{
	if (access & ~HMMV_ACCESS_ALLOWED)
		return EINVAL;
	/* As ibv_reg_mr: remote write or atomic needs local write. */
	if ((access & (IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_ATOMIC)) &&
	    !(access & IBV_ACCESS_LOCAL_WRITE))
		return EINVAL;
	return 0;
}

HMMV_EXPORT bool hmmv_is_supported(struct ibv_device *device)
{
	struct hmmv_device_attr attr = {};
	struct ibv_context *context;
	int err;

	if (!device || hmmv_get_ops(device)->provider == HMMV_PROVIDER_NONE)
		return false;
	context = ibv_open_device(device);
	if (!context)
		return false;
	err = hmmv_query_device(context, &attr);
	ibv_close_device(context);
	return !err && (attr.flags & HMMV_DEVICE_ODP);
}

HMMV_EXPORT int hmmv_query_device(struct ibv_context *context, struct hmmv_device_attr *attr)
{
	const struct hmmv_provider_ops *ops;
	struct hmmv_device_attr out = {};
	int err;

	if (!context || !context->device || !attr)
		return EINVAL;
	if (attr->comp_mask & ~(uint64_t)HMMV_DEVICE_ATTR_MASK_ALL)
		return EINVAL;
	ops = hmmv_get_ops(context->device);
	out.comp_mask = attr->comp_mask;
	out.provider = ops->provider;
	if (!ops->query_device)
		return EOPNOTSUPP;
	err = ops->query_device(context, &out);
	if (err)
		return err;
	/* A backend fills no more than was asked for; fields not filled read as zero. */
	out.comp_mask &= attr->comp_mask;
	if (!(out.comp_mask & HMMV_DEVICE_ATTR_MASK_ODP_CAPS)) {
		out.general_odp_caps = 0;
		out.rc_odp_caps = out.uc_odp_caps = out.ud_odp_caps = out.xrc_odp_caps = 0;
	}
	if (!(out.comp_mask & HMMV_DEVICE_ATTR_MASK_PAGE_SIZES))
		out.mirror_page_sizes = 0;
	out.provider = ops->provider;
	*attr = out;
	return 0;
}

HMMV_EXPORT struct ibv_mr *hmmv_reg_implicit_mr(struct ibv_pd *pd, int access)
{
	const struct hmmv_provider_ops *ops;

	if (!pd || !pd->context || check_access(access)) {
		errno = EINVAL;
		return NULL;
	}
	ops = hmmv_get_ops(pd->context->device);
	if (!ops->reg_implicit_mr) {
		errno = EOPNOTSUPP;
		return NULL;
	}
	return ops->reg_implicit_mr(pd, access | IBV_ACCESS_ON_DEMAND);
}

HMMV_EXPORT struct ibv_mr *hmmv_reg_odp_mr(struct ibv_pd *pd, void *addr, size_t length,
					   int access)
{
	const struct hmmv_provider_ops *ops;

	/* The whole address space is hmmv_reg_implicit_mr()'s job; a range must not wrap. */
	if (!pd || !pd->context || check_access(access) || !length ||
	    (uintptr_t)addr > UINTPTR_MAX - (length - 1) || (!addr && length == SIZE_MAX)) {
		errno = EINVAL;
		return NULL;
	}
	ops = hmmv_get_ops(pd->context->device);
	if (!ops->reg_odp_mr) {
		errno = EOPNOTSUPP;
		return NULL;
	}
	return ops->reg_odp_mr(pd, addr, length, access | IBV_ACCESS_ON_DEMAND);
}

HMMV_EXPORT int hmmv_advise_mr(struct ibv_pd *pd, enum ibv_advise_mr_advice advice,
			       uint32_t flags, struct ibv_sge *sg_list, uint32_t num_sge)
{
	const struct hmmv_provider_ops *ops;

	if (!pd || !pd->context || !sg_list || !num_sge || num_sge > HMMV_ADVISE_MAX_SGE)
		return EINVAL;
	switch (advice) {
	case IBV_ADVISE_MR_ADVICE_PREFETCH:
	case IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE:
	case IBV_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT:
		break;
	default:
		return EINVAL;
	}
	if (flags & ~(uint32_t)IBV_ADVISE_MR_FLAG_FLUSH)
		return EINVAL;
	ops = hmmv_get_ops(pd->context->device);
	if (!ops->advise_mr)
		return EOPNOTSUPP;
	return ops->advise_mr(pd, advice, flags, sg_list, num_sge);
}

HMMV_EXPORT int hmmv_query_mr_stats(struct ibv_mr *mr, struct hmmv_mr_stats *stats)
{
	const struct hmmv_provider_ops *ops;
	struct hmmv_mr_stats out = {};
	int err;

	if (!mr || !mr->context || !stats)
		return EINVAL;
	if (stats->comp_mask & ~(uint64_t)HMMV_MR_STATS_MASK_ALL)
		return EINVAL;
	ops = hmmv_get_ops(mr->context->device);
	if (!ops->query_mr_stats)
		return EOPNOTSUPP;
	out.comp_mask = stats->comp_mask;
	err = ops->query_mr_stats(mr, &out);
	if (err)
		return err;
	out.comp_mask &= stats->comp_mask;
	*stats = out;
	return 0;
}
