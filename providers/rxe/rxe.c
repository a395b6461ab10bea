// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * rxe backend: Soft-RoCE. With our rdma_rxe (ODP served by ib_hmm) the device reports
 * IBV_ODP_SUPPORT | IBV_ODP_SUPPORT_IMPLICIT; stock 6.12 rxe has no ODP, stock 7.3 rxe has
 * explicit ODP only, so implicit registration fails there with EOPNOTSUPP. rdma-core's rxe
 * provider has no ibv_advise_mr before v59: prefetch falls back to the ADVISE_MR ioctl.
 */
#include <errno.h>
#include <rdma/ib_user_ioctl_verbs.h>

#include "hmmv_priv.h"

static int rxe_query_device(struct ibv_context *context, struct hmmv_device_attr *attr)
{
	int err;

	err = hmmv_odp_query_caps(context, attr);
	if (err)
		return err;
	if (attr->flags & HMMV_DEVICE_ODP)
		attr->flags |= HMMV_DEVICE_PREFETCH | HMMV_DEVICE_PREFETCH_IOCTL;
	/* Implicit ODP on rxe exists only with ib_hmm, which also reports the counters. */
	if (attr->flags & HMMV_DEVICE_ODP_IMPLICIT)
		attr->flags |= HMMV_DEVICE_HMM | HMMV_DEVICE_MR_STATS;
	if (attr->comp_mask & HMMV_DEVICE_ATTR_MASK_PAGE_SIZES)
		attr->mirror_page_sizes = (attr->flags & HMMV_DEVICE_HMM) ?
						  (1ull << 12) | (1ull << 21) : (1ull << 12);
	return 0;
}

static bool rxe_has(struct ibv_context *context, uint64_t flag)
{
	struct hmmv_device_attr attr = {};

	return !rxe_query_device(context, &attr) && (attr.flags & flag);
}

static struct ibv_mr *rxe_reg_implicit_mr(struct ibv_pd *pd, int access)
{
	if (!rxe_has(pd->context, HMMV_DEVICE_ODP_IMPLICIT)) {
		errno = EOPNOTSUPP;
		return NULL;
	}
	return hmmv_odp_reg(pd, NULL, SIZE_MAX, access);
}

static struct ibv_mr *rxe_reg_odp_mr(struct ibv_pd *pd, void *addr, size_t length, int access)
{
	if (!rxe_has(pd->context, HMMV_DEVICE_ODP)) {
		errno = EOPNOTSUPP;
		return NULL;
	}
	return hmmv_odp_reg(pd, addr, length, access);
}

static int rxe_advise_mr(struct ibv_pd *pd, enum ibv_advise_mr_advice advice, uint32_t flags,
			 struct ibv_sge *sg_list, uint32_t num_sge)
{
	int err;

	/* A provider with advise_mr (rdma-core >= 59) goes to the kernel itself. */
	err = ibv_advise_mr(pd, advice, flags, sg_list, num_sge);
	if (err != EOPNOTSUPP)
		return err;
	return hmmv_advise_ioctl(pd, RDMA_DRIVER_RXE, advice, flags, sg_list, num_sge);
}

const struct hmmv_provider_ops hmmv_rxe_ops = {
	.name = "rxe",
	.provider = HMMV_PROVIDER_RXE,
	.query_device = rxe_query_device,
	.reg_implicit_mr = rxe_reg_implicit_mr,
	.reg_odp_mr = rxe_reg_odp_mr,
	.advise_mr = rxe_advise_mr,
	.query_mr_stats = hmmv_nl_mr_stats,
};
