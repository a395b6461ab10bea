/* SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB */
/*
 * Bringing an RC QP of the test and benchmark programs to RTS (RoCE: global routing).
 */
#ifndef HMMV_RC_CONNECT_H
#define HMMV_RC_CONNECT_H

#include <infiniband/verbs.h>

/* Both ends' attributes; what differs between the programs is here, the rest is fixed. */
struct hmmv_rc_attr {
	uint8_t port;
	int sgid_index;			/* the local RoCE v2 GID */
	union ibv_gid dgid;		/* the peer's GID */
	uint32_t dest_qpn;
	uint32_t rq_psn;		/* the peer's first send PSN */
	uint32_t sq_psn;
	enum ibv_mtu mtu;
	uint8_t rd_atomic;		/* max_rd_atomic and max_dest_rd_atomic */
	uint8_t min_rnr_timer;
	unsigned int access;		/* qp_access_flags (IBV_ACCESS_REMOTE_*) */
	uint8_t timeout;		/* local ACK timeout, 4.096 us << timeout; 0: 14 */
	uint8_t retries;		/* retry_cnt and rnr_retry; 0: 7 (rxe: without limit) */
};

/*
 * Moves @qp from RESET through INIT and RTR to RTS with @a (timeout @a->timeout or 14,
 * @a->retries or 7 retries and RNR retries, hop limit 64). Returns 0, or the errno of the first ibv_modify_qp() that failed
 * with *@step naming its target state ("INIT", "RTR" or "RTS").
 */
int hmmv_rc_connect(struct ibv_qp *qp, const struct hmmv_rc_attr *a, const char **step);

#endif /* HMMV_RC_CONNECT_H */
