// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/* RESET -> INIT -> RTR -> RTS for an RC QP; see rc_connect.h. */
#include <errno.h>
#include <string.h>

#include "rc_connect.h"

static int modify(struct ibv_qp *qp, struct ibv_qp_attr *qa, int mask, const char *name,
		  const char **step)
{
	int err = ibv_modify_qp(qp, qa, mask);

	if (err && step)
		*step = name;
	/* libibverbs returns the errno (or -1 with errno set, in old providers). */
	return err > 0 ? err : err ? (errno ? errno : EINVAL) : 0;
}

int hmmv_rc_connect(struct ibv_qp *qp, const struct hmmv_rc_attr *a, const char **step)
{
	struct ibv_qp_attr qa = {
		.qp_state = IBV_QPS_INIT,
		.port_num = a->port,
		.qp_access_flags = a->access,
	};
	int err;

	err = modify(qp, &qa, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS,
		     "INIT", step);
	if (err)
		return err;

	memset(&qa, 0, sizeof(qa));
	qa.qp_state = IBV_QPS_RTR;
	qa.path_mtu = a->mtu;
	qa.dest_qp_num = a->dest_qpn;
	qa.rq_psn = a->rq_psn;
	qa.max_dest_rd_atomic = a->rd_atomic;
	qa.min_rnr_timer = a->min_rnr_timer;
	qa.ah_attr.is_global = 1;
	qa.ah_attr.grh.dgid = a->dgid;
	qa.ah_attr.grh.sgid_index = a->sgid_index;
	qa.ah_attr.grh.hop_limit = 64;
	qa.ah_attr.port_num = a->port;
	err = modify(qp, &qa, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
			 IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER,
		     "RTR", step);
	if (err)
		return err;

	memset(&qa, 0, sizeof(qa));
	qa.qp_state = IBV_QPS_RTS;
	qa.sq_psn = a->sq_psn;
	qa.timeout = a->timeout ? a->timeout : 14;
	qa.retry_cnt = a->retries ? a->retries : 7;
	qa.rnr_retry = qa.retry_cnt;
	qa.max_rd_atomic = a->rd_atomic;
	return modify(qp, &qa, IBV_QP_STATE | IBV_QP_SQ_PSN | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
			       IBV_QP_RNR_RETRY | IBV_QP_MAX_QP_RD_ATOMIC,
		      "RTS", step);
}
