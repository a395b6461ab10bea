// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * Helpers the ODP backends share: the device's ODP capabilities, ODP registration through
 * libibverbs, and the uverbs ADVISE_MR method issued on the context's command fd for verbs
 * providers that lack ibv_advise_mr (rdma-core's rxe provider before v59).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <rdma/ib_user_ioctl_cmds.h>
#include <rdma/ib_user_ioctl_verbs.h>
#include <rdma/ib_user_verbs.h>
#include <rdma/rdma_user_ioctl.h>

#include "hmmv_priv.h"

int hmmv_odp_query_caps(struct ibv_context *context, struct hmmv_device_attr *attr)
{
	struct ibv_device_attr_ex dattr = {};
	int err;

	err = ibv_query_device_ex(context, NULL, &dattr);
	if (err)
		return err;
	if (dattr.odp_caps.general_caps & IBV_ODP_SUPPORT)
		attr->flags |= HMMV_DEVICE_ODP;
	if (dattr.odp_caps.general_caps & IBV_ODP_SUPPORT_IMPLICIT)
		attr->flags |= HMMV_DEVICE_ODP_IMPLICIT;
	if (attr->comp_mask & HMMV_DEVICE_ATTR_MASK_ODP_CAPS) {
		attr->general_odp_caps = dattr.odp_caps.general_caps;
		attr->rc_odp_caps = dattr.odp_caps.per_transport_caps.rc_odp_caps;
		attr->uc_odp_caps = dattr.odp_caps.per_transport_caps.uc_odp_caps;
		attr->ud_odp_caps = dattr.odp_caps.per_transport_caps.ud_odp_caps;
		attr->xrc_odp_caps = dattr.xrc_odp_caps;
	}
	return 0;
}

struct ibv_mr *hmmv_odp_reg(struct ibv_pd *pd, void *addr, size_t length, int access)
{
	struct ibv_mr *mr;

	mr = ibv_reg_mr(pd, addr, length, access | IBV_ACCESS_ON_DEMAND);
	if (!mr && !errno)
		errno = EINVAL;
	return mr;
}

/* One ioctl attribute; data is inline for values of up to 8 bytes, else a user pointer. */
static void put_attr(struct ib_uverbs_attr *attr, uint16_t id, uint16_t len, uint64_t data)
{
	memset(attr, 0, sizeof(*attr));
	attr->attr_id = id;
	attr->len = len;
	attr->flags = UVERBS_ATTR_F_MANDATORY;
	attr->data = data;
}

int hmmv_advise_ioctl(struct ibv_pd *pd, uint32_t driver_id, enum ibv_advise_mr_advice advice,
		      uint32_t flags, struct ibv_sge *sg_list, uint32_t num_sge)
{
	struct {
		struct ib_uverbs_ioctl_hdr hdr;
		struct ib_uverbs_attr attrs[4];
	} cmd;
	struct ib_uverbs_sge *sges;
	uint32_t i;
	int err = 0;

	/* struct ibv_sge and struct ib_uverbs_sge have the same fields; copy, do not cast. */
	sges = calloc(num_sge, sizeof(*sges));
	if (!sges)
		return ENOMEM;
	for (i = 0; i < num_sge; i++) {
		sges[i].addr = sg_list[i].addr;
		sges[i].length = sg_list[i].length;
		sges[i].lkey = sg_list[i].lkey;
	}

	memset(&cmd, 0, sizeof(cmd));
	cmd.hdr.length = sizeof(cmd);
	cmd.hdr.object_id = UVERBS_OBJECT_MR;
	cmd.hdr.method_id = UVERBS_METHOD_ADVISE_MR;
	cmd.hdr.num_attrs = 4;
	/* The kernel rejects (EINVAL) a header whose driver id is not the device's. */
	cmd.hdr.driver_id = driver_id;
	/* An object handle: len 0, the handle in data. */
	put_attr(&cmd.attrs[0], UVERBS_ATTR_ADVISE_MR_PD_HANDLE, 0, pd->handle);
	/* A const-in value is passed as a u64. */
	put_attr(&cmd.attrs[1], UVERBS_ATTR_ADVISE_MR_ADVICE, sizeof(uint64_t), advice);
	put_attr(&cmd.attrs[2], UVERBS_ATTR_ADVISE_MR_FLAGS, sizeof(uint64_t), flags);
	put_attr(&cmd.attrs[3], UVERBS_ATTR_ADVISE_MR_SGE_LIST, num_sge * sizeof(*sges),
		 (uintptr_t)sges);

	if (ioctl(pd->context->cmd_fd, RDMA_VERBS_IOCTL, &cmd))
		err = errno;
	free(sges);
	/* Old kernels without the method, or a driver without advise_mr. */
	if (err == EPROTONOSUPPORT || err == ENOTTY)
		err = EOPNOTSUPP;
	return err;
}
