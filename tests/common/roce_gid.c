// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/* The RoCE v2 IPv4 GID of a port; see roce_gid.h. */
#include <stdio.h>
#include <string.h>

#include "roce_gid.h"

/* libibverbs 44 has no ibv_query_gid_ex(): the GID type is in sysfs. */
static int gid_is_roce_v2(const char *dev_name, uint8_t port, int index)
{
	char path[256], type[64] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/sys/class/infiniband/%s/ports/%u/gid_attrs/types/%d",
		 dev_name, port, index);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (!fgets(type, sizeof(type), f))
		type[0] = 0;
	fclose(f);
	return strstr(type, "v2") != NULL;
}

int hmmv_roce_v2_ipv4_gid(struct ibv_context *ctx, const char *dev_name, uint8_t port,
			  union ibv_gid *gid)
{
	static const uint8_t v4_mapped[12] = { [10] = 0xff, [11] = 0xff };

	for (int i = 0; i < 16; i++) {
		union ibv_gid g;

		if (ibv_query_gid(ctx, port, i, &g))
			break;
		if (gid_is_roce_v2(dev_name, port, i) && !memcmp(g.raw, v4_mapped, sizeof(v4_mapped))) {
			*gid = g;
			return i;
		}
	}
	return -1;
}
