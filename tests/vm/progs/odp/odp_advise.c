// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * hmmv_odp_test: ibv_advise_mr without the provider. The rxe provider of rdma-core 44 has no
 * advise_mr, so the uverbs ADVISE_MR method is issued here on the context's command fd, as the
 * kernel's uapi headers define it: object MR, method ADVISE_MR, attributes PD handle (an IDR),
 * advice (a 64-bit constant), flags (64-bit) and the SGE list (struct ib_uverbs_sge[]).
 */
#include <errno.h>
#include <string.h>
#include <stdlib.h>
#include <sys/ioctl.h>

#include <rdma/ib_user_ioctl_cmds.h>
#include <rdma/ib_user_ioctl_verbs.h>
#include <rdma/ib_user_verbs.h>
#include <rdma/rdma_user_ioctl.h>

#include "odp.h"

struct advise_cmd {
	struct ib_uverbs_ioctl_hdr hdr;
	struct ib_uverbs_attr attrs[4];
};

/* The raw method: @sges/@sge_bytes go to the kernel as they are. Returns 0 or an errno. */
int advise_mr_raw(struct ibv_pd *pd, uint64_t advice, uint64_t flags, const void *sges,
		  size_t sge_bytes)
{
	struct advise_cmd cmd;

	if (strncmp(ibv_get_device_name(pd->context->device), "rxe", 3))
		return EOPNOTSUPP;	/* the driver id below is rxe's */
	if (sge_bytes > UINT16_MAX)
		return E2BIG;		/* an attribute's length is 16 bits in the uverbs ABI */
	memset(&cmd, 0, sizeof(cmd));
	cmd.hdr.length = sizeof(cmd);
	cmd.hdr.object_id = UVERBS_OBJECT_MR;
	cmd.hdr.method_id = UVERBS_METHOD_ADVISE_MR;
	cmd.hdr.num_attrs = 4;
	cmd.hdr.driver_id = RDMA_DRIVER_RXE;
	cmd.attrs[0].attr_id = UVERBS_ATTR_ADVISE_MR_PD_HANDLE;
	cmd.attrs[0].flags = UVERBS_ATTR_F_MANDATORY;
	cmd.attrs[0].data = pd->handle;
	cmd.attrs[1].attr_id = UVERBS_ATTR_ADVISE_MR_ADVICE;
	cmd.attrs[1].len = sizeof(uint64_t);
	cmd.attrs[1].flags = UVERBS_ATTR_F_MANDATORY;
	cmd.attrs[1].data = advice;
	cmd.attrs[2].attr_id = UVERBS_ATTR_ADVISE_MR_FLAGS;
	cmd.attrs[2].len = sizeof(uint64_t);
	cmd.attrs[2].flags = UVERBS_ATTR_F_MANDATORY;
	cmd.attrs[2].data = flags;
	cmd.attrs[3].attr_id = UVERBS_ATTR_ADVISE_MR_SGE_LIST;
	cmd.attrs[3].len = (uint16_t)sge_bytes;
	cmd.attrs[3].flags = UVERBS_ATTR_F_MANDATORY;
	cmd.attrs[3].data = (uintptr_t)sges;
	if (ioctl(pd->context->cmd_fd, RDMA_VERBS_IOCTL, &cmd))
		return errno;
	return 0;
}

/* ibv_advise_mr's shape: returns 0 or an errno. */
int advise_mr(struct ibv_pd *pd, uint32_t advice, uint32_t flags, const struct ibv_sge *sg,
	      uint32_t num_sge)
{
	struct ib_uverbs_sge *u;
	int ret;

	if (!num_sge || (size_t)num_sge * sizeof(*u) > UINT16_MAX)
		return EINVAL;
	u = calloc(num_sge, sizeof(*u));
	if (!u)
		return ENOMEM;
	for (uint32_t i = 0; i < num_sge; i++) {
		u[i].addr = sg[i].addr;
		u[i].length = sg[i].length;
		u[i].lkey = sg[i].lkey;
	}
	ret = advise_mr_raw(pd, advice, flags, u, (size_t)num_sge * sizeof(*u));
	free(u);
	return ret;
}
