/* SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB */
/*
 * libhmmverbs internals: the provider ops table, backend selection, and the helpers that
 * providers share (ODP caps, ODP registration, the ADVISE_MR ioctl, netlink MR counters).
 *
 * Locking: one mutex (backend cache in device.c) guards the device -> backend cache; nothing
 * else in the library keeps state. Providers are stateless.
 */
#ifndef HMMV_PRIV_H
#define HMMV_PRIV_H

#include <infiniband/hmmverbs.h>

#define HMMV_EXPORT __attribute__((visibility("default")))

/*
 * One backend per device family. Every op may be NULL, which makes the matching public call
 * fail with EOPNOTSUPP. The library validates arguments before calling an op; ops return 0
 * or a positive errno (constructors: NULL with errno set).
 */
struct hmmv_provider_ops {
	const char *name;
	enum hmmv_provider provider;
	/* Fill attr->flags and, for the bits in attr->comp_mask, the optional fields. */
	int (*query_device)(struct ibv_context *context, struct hmmv_device_attr *attr);
	struct ibv_mr *(*reg_implicit_mr)(struct ibv_pd *pd, int access);
	struct ibv_mr *(*reg_odp_mr)(struct ibv_pd *pd, void *addr, size_t length, int access);
	int (*advise_mr)(struct ibv_pd *pd, enum ibv_advise_mr_advice advice, uint32_t flags,
			 struct ibv_sge *sg_list, uint32_t num_sge);
	int (*query_mr_stats)(struct ibv_mr *mr, struct hmmv_mr_stats *stats);
};

extern const struct hmmv_provider_ops hmmv_rxe_ops;
extern const struct hmmv_provider_ops hmmv_mlx5_ops;
extern const struct hmmv_provider_ops hmmv_none_ops;

/* device.c: the backend of a device (never NULL; hmmv_none_ops when nothing matches). */
const struct hmmv_provider_ops *hmmv_get_ops(struct ibv_device *device);
/* Unit tests only: serve every device with @ops (NULL restores driver-based selection). */
void hmmv_set_ops_override(const struct hmmv_provider_ops *ops);

/*
 * Backend selection: the kernel driver of a device, as the uverbs char device reports it
 * over rdma netlink (RDMA_NLDEV_CMD_GET_CHARDEV, RDMA_NLDEV_ATTR_UVERBS_DRIVER_ID: the
 * enum rdma_driver_id that libibverbs itself binds providers with); where netlink does not
 * answer, the sysfs driver link of the parent device, and for a device without a parent
 * (rxe, siw) the driver name is not known and the "none" backend serves it.
 */
int hmmv_nl_driver_id(uint32_t dev_index, uint32_t *driver_id);

/* nldev.c: one MR of a restrack dump (RDMA_NLDEV_CMD_RES_MR_GET). */
struct hmmv_nl_mr {
	uint32_t dev_index;
	uint32_t mrn;		/* restrack id */
	uint32_t pid;
	const char *comm;	/* valid during the callback only; NULL for none */
	bool has_keys;		/* keys are shown to CAP_NET_ADMIN only */
	uint32_t lkey, rkey;
	uint64_t length;
	bool has_counters;	/* ODP counters among the driver attributes */
	bool has_mirror;	/* ib_hmm's mapped pages / table bytes among them */
	struct hmmv_mr_stats stats;	/* comp_mask unset; flags: HMMV_MR_STATS_IMPLICIT */
};
typedef int (*hmmv_nl_mr_cb)(const struct hmmv_nl_mr *mr, void *arg);
/* Call @cb for every MR of a device until it returns non-zero (that value is returned). */
int hmmv_nl_mr_dump(uint32_t dev_index, hmmv_nl_mr_cb cb, void *arg);
/* One message of that dump (unit tests feed it hand-built messages). */
struct nlmsghdr;
int hmmv_nl_parse_mr_msg(const struct nlmsghdr *nlh, hmmv_nl_mr_cb cb, void *arg);
/* The ODP counters of @mr, found by device index, lkey and rkey. */
int hmmv_nl_mr_stats(struct ibv_mr *mr, struct hmmv_mr_stats *stats);

/* odp.c: helpers shared by the ODP backends. */
int hmmv_odp_query_caps(struct ibv_context *context, struct hmmv_device_attr *attr);
struct ibv_mr *hmmv_odp_reg(struct ibv_pd *pd, void *addr, size_t length, int access);
/* @driver_id: the device's enum rdma_driver_id (the kernel checks it). */
int hmmv_advise_ioctl(struct ibv_pd *pd, uint32_t driver_id, enum ibv_advise_mr_advice advice,
		      uint32_t flags, struct ibv_sge *sg_list, uint32_t num_sge);

#endif /* HMMV_PRIV_H */
