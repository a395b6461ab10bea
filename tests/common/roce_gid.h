/* SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB */
/*
 * The GID the test and benchmark programs use on Soft-RoCE: RoCE v2 over IPv4.
 */
#ifndef HMMV_ROCE_GID_H
#define HMMV_ROCE_GID_H

#include <infiniband/verbs.h>

/*
 * Find the first RoCE v2 GID of @port that maps an IPv4 address (::ffff:a.b.c.d) on the
 * device @ctx opened as @dev_name (its sysfs name, where the GID types are). Returns the GID
 * index and fills @gid, or returns -1 when there is none.
 */
int hmmv_roce_v2_ipv4_gid(struct ibv_context *ctx, const char *dev_name, uint8_t port,
			  union ibv_gid *gid);

#endif /* HMMV_ROCE_GID_H */
