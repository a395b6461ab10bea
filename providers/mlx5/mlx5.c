// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * mlx5 backend: the stock mlx5 ODP (ib_umem_odp). Implicit MRs where the device reports
 * IBV_ODP_SUPPORT_IMPLICIT, prefetch through the provider's own ibv_advise_mr, and the
 * counters mlx5 reports through restrack (page_faults, page_invalidations, page_prefetch).
 */
#include <errno.h>

#include "hmmv_priv.h"

static int mlx5_query_device(struct ibv_context *context, struct hmmv_device_attr *attr)
{
	int err;

	err = hmmv_odp_query_caps(context, attr);
	if (err)
		return err;
	if (attr->flags & HMMV_DEVICE_ODP)
		attr->flags |= HMMV_DEVICE_PREFETCH | HMMV_DEVICE_MR_STATS;
	if (attr->comp_mask & HMMV_DEVICE_ATTR_MASK_PAGE_SIZES)
		attr->mirror_page_sizes = 1ull << 12;
	return 0;
}

static struct ibv_mr *mlx5_reg_implicit_mr(struct ibv_pd *pd, int access)
{
	struct hmmv_device_attr attr = {};

	if (mlx5_query_device(pd->context, &attr) || !(attr.flags & HMMV_DEVICE_ODP_IMPLICIT)) {
		errno = EOPNOTSUPP;
		return NULL;
	}
	return hmmv_odp_reg(pd, NULL, SIZE_MAX, access);
}

static struct ibv_mr *mlx5_reg_odp_mr(struct ibv_pd *pd, void *addr, size_t length, int access)
{
	struct hmmv_device_attr attr = {};

	if (mlx5_query_device(pd->context, &attr) || !(attr.flags & HMMV_DEVICE_ODP)) {
		errno = EOPNOTSUPP;
		return NULL;
	}
	return hmmv_odp_reg(pd, addr, length, access);
}

static int mlx5_advise_mr(struct ibv_pd *pd, enum ibv_advise_mr_advice advice, uint32_t flags,
			  struct ibv_sge *sg_list, uint32_t num_sge)
{
	return ibv_advise_mr(pd, advice, flags, sg_list, num_sge);
}

const struct hmmv_provider_ops hmmv_mlx5_ops = {
	.name = "mlx5",
	.provider = HMMV_PROVIDER_MLX5,
	.query_device = mlx5_query_device,
	.reg_implicit_mr = mlx5_reg_implicit_mr,
	.reg_odp_mr = mlx5_reg_odp_mr,
	.advise_mr = mlx5_advise_mr,
	.query_mr_stats = hmmv_nl_mr_stats,
};
