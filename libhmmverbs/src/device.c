// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * Backend selection: which provider ops serve a device, from the device's kernel driver.
 *
 * The rule: ask the kernel which driver the device's uverbs char device belongs to (rdma
 * netlink RDMA_NLDEV_CMD_GET_CHARDEV -> RDMA_NLDEV_ATTR_UVERBS_DRIVER_ID, the same
 * enum rdma_driver_id libibverbs binds its providers with; rxe has no parent device, so the
 * sysfs device/driver link cannot name it, but its driver id is RDMA_DRIVER_RXE). The device's
 * name plays no part: "mlx5_0" may be renamed, and an rxe device may be called anything.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <rdma/ib_user_ioctl_verbs.h>

#include "hmmv_priv.h"

#define HMMV_CACHE_SLOTS 32

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	struct ibv_device *device;	/* protected by cache_lock */
	const struct hmmv_provider_ops *ops;
} cache[HMMV_CACHE_SLOTS];
static const struct hmmv_provider_ops *ops_override;

void hmmv_set_ops_override(const struct hmmv_provider_ops *ops)
{
	pthread_mutex_lock(&cache_lock);
	ops_override = ops;
	pthread_mutex_unlock(&cache_lock);
}

static const struct hmmv_provider_ops *ops_for_driver(uint32_t driver_id)
{
	switch (driver_id) {
	case RDMA_DRIVER_RXE:
		return &hmmv_rxe_ops;
	case RDMA_DRIVER_MLX5:
		return &hmmv_mlx5_ops;
	default:
		return &hmmv_none_ops;
	}
}

/*
 * Where netlink does not answer: the driver of the parent device (sysfs device/driver link).
 * rxe and siw have no parent device, so this fallback never names them.
 */
static const struct hmmv_provider_ops *ops_from_sysfs(struct ibv_device *device)
{
	char path[IBV_SYSFS_PATH_MAX + 32], link[256];
	const char *driver;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/device/driver", device->ibdev_path);
	n = readlink(path, link, sizeof(link) - 1);
	if (n <= 0)
		return &hmmv_none_ops;
	link[n] = 0;
	driver = strrchr(link, '/') ? strrchr(link, '/') + 1 : link;
	if (!strcmp(driver, "mlx5_core"))
		return &hmmv_mlx5_ops;
	return &hmmv_none_ops;
}

static const struct hmmv_provider_ops *lookup_ops(struct ibv_device *device)
{
	uint32_t driver_id;
	int index;

	index = ibv_get_device_index(device);
	if (index < 0 || hmmv_nl_driver_id(index, &driver_id))
		return ops_from_sysfs(device);
	return ops_for_driver(driver_id);
}

const struct hmmv_provider_ops *hmmv_get_ops(struct ibv_device *device)
{
	const struct hmmv_provider_ops *ops = NULL;
	int i, free_slot = -1;

	pthread_mutex_lock(&cache_lock);
	if (ops_override) {
		ops = ops_override;
		goto out;
	}
	for (i = 0; i < HMMV_CACHE_SLOTS; i++) {
		if (cache[i].device == device) {
			ops = cache[i].ops;
			goto out;
		}
		if (!cache[i].device && free_slot < 0)
			free_slot = i;
	}
	ops = lookup_ops(device);
	/* A failed lookup is not cached: netlink may answer next time. */
	if (ops != &hmmv_none_ops && free_slot >= 0) {
		cache[free_slot].device = device;
		cache[free_slot].ops = ops;
	}
out:
	pthread_mutex_unlock(&cache_lock);
	return ops;
}
