// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * libhmmverbs' restrack reader without a device: MR dump messages built as the kernel builds
 * them (rxe with ib_hmm, mlx5's u32 counters, a pinned MR, an entry without keys) are parsed
 * into the right records.
 */
#include <stdio.h>
#include <string.h>
#include <libmnl/libmnl.h>
#include <rdma/rdma_netlink.h>

#include "hmmv_priv.h"

#include "hmmv_unit.h"

static struct hmmv_nl_mr got[4];
static int ngot;

static int collect(const struct hmmv_nl_mr *r, void *arg)
{
	if (ngot < 4)
		got[ngot++] = *r;
	return 0;
}

static void put_drv_u64(struct nlmsghdr *nlh, const char *name, uint64_t v)
{
	mnl_attr_put_strz(nlh, RDMA_NLDEV_ATTR_DRIVER_STRING, name);
	mnl_attr_put_u8(nlh, RDMA_NLDEV_ATTR_DRIVER_PRINT_TYPE, 0);
	mnl_attr_put_u64(nlh, RDMA_NLDEV_ATTR_DRIVER_U64, v);
}

static void put_drv_u32(struct nlmsghdr *nlh, const char *name, uint32_t v)
{
	mnl_attr_put_strz(nlh, RDMA_NLDEV_ATTR_DRIVER_STRING, name);
	mnl_attr_put_u32(nlh, RDMA_NLDEV_ATTR_DRIVER_U32, v);
}

static void test_parse(void)
{
	char buf[4096];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nlattr *table, *entry, *drv;

	mnl_attr_put_u32(nlh, RDMA_NLDEV_ATTR_DEV_INDEX, 3);
	table = mnl_attr_nest_start(nlh, RDMA_NLDEV_ATTR_RES_MR);

	/* rxe with ib_hmm: an implicit MR. */
	entry = mnl_attr_nest_start(nlh, RDMA_NLDEV_ATTR_RES_MR_ENTRY);
	mnl_attr_put_u32(nlh, RDMA_NLDEV_ATTR_RES_RKEY, 0x1234);
	mnl_attr_put_u32(nlh, RDMA_NLDEV_ATTR_RES_LKEY, 0x1234);
	mnl_attr_put_u64(nlh, RDMA_NLDEV_ATTR_RES_MRLEN, UINT64_MAX);
	mnl_attr_put_u32(nlh, RDMA_NLDEV_ATTR_RES_MRN, 7);
	mnl_attr_put_u32(nlh, RDMA_NLDEV_ATTR_RES_PID, 99);
	drv = mnl_attr_nest_start(nlh, RDMA_NLDEV_ATTR_DRIVER);
	mnl_attr_put_strz(nlh, RDMA_NLDEV_ATTR_DRIVER_STRING, "odp");
	mnl_attr_put_strz(nlh, RDMA_NLDEV_ATTR_DRIVER_STRING, "implicit");
	put_drv_u64(nlh, "page_faults", 29);
	put_drv_u64(nlh, "page_faults_handled", 2);
	put_drv_u64(nlh, "page_invalidations", 13);
	put_drv_u64(nlh, "page_invalidations_handled", 13);
	put_drv_u64(nlh, "page_prefetch", 5);
	put_drv_u64(nlh, "hmm_mapped_pages", 16);
	put_drv_u64(nlh, "hmm_table_bytes", 16384);
	put_drv_u64(nlh, "some_future_counter", 1);
	mnl_attr_nest_end(nlh, drv);
	mnl_attr_nest_end(nlh, entry);

	/* mlx5-style: u32 counters, no mirror. */
	entry = mnl_attr_nest_start(nlh, RDMA_NLDEV_ATTR_RES_MR_ENTRY);
	mnl_attr_put_u32(nlh, RDMA_NLDEV_ATTR_RES_RKEY, 0x55);
	mnl_attr_put_u32(nlh, RDMA_NLDEV_ATTR_RES_LKEY, 0x56);
	drv = mnl_attr_nest_start(nlh, RDMA_NLDEV_ATTR_DRIVER);
	put_drv_u32(nlh, "page_faults", 4);
	put_drv_u32(nlh, "page_invalidations", 2);
	put_drv_u32(nlh, "page_prefetch", 1);
	mnl_attr_nest_end(nlh, drv);
	mnl_attr_nest_end(nlh, entry);

	/* A pinned MR: no driver attributes. */
	entry = mnl_attr_nest_start(nlh, RDMA_NLDEV_ATTR_RES_MR_ENTRY);
	mnl_attr_put_u32(nlh, RDMA_NLDEV_ATTR_RES_RKEY, 0x77);
	mnl_attr_put_u32(nlh, RDMA_NLDEV_ATTR_RES_LKEY, 0x77);
	mnl_attr_nest_end(nlh, entry);

	/* Seen without CAP_NET_ADMIN: no keys. */
	entry = mnl_attr_nest_start(nlh, RDMA_NLDEV_ATTR_RES_MR_ENTRY);
	mnl_attr_put_u32(nlh, RDMA_NLDEV_ATTR_RES_MRN, 9);
	mnl_attr_nest_end(nlh, entry);
	mnl_attr_nest_end(nlh, table);

	CHECK(hmmv_nl_parse_mr_msg(nlh, collect, NULL) == 0);
	CHECK(ngot == 4);
	CHECK(got[0].dev_index == 3 && got[0].has_keys && got[0].lkey == 0x1234);
	CHECK(got[0].mrn == 7 && got[0].pid == 99 && got[0].length == UINT64_MAX);
	CHECK(got[0].has_counters && got[0].has_mirror);
	CHECK(got[0].stats.flags == HMMV_MR_STATS_IMPLICIT);
	CHECK(got[0].stats.page_faults == 29 && got[0].stats.page_faults_handled == 2);
	CHECK(got[0].stats.page_invalidations == 13 &&
	      got[0].stats.page_invalidations_handled == 13);
	CHECK(got[0].stats.page_prefetch == 5 && got[0].stats.mapped_pages == 16 &&
	      got[0].stats.mirror_bytes == 16384);
	CHECK(got[1].lkey == 0x56 && got[1].rkey == 0x55 && got[1].has_counters);
	CHECK(!got[1].has_mirror && got[1].stats.flags == 0);
	CHECK(got[1].stats.page_faults == 4 && got[1].stats.page_invalidations == 2 &&
	      got[1].stats.page_prefetch == 1);
	CHECK(got[2].has_keys && !got[2].has_counters);
	CHECK(!got[3].has_keys && got[3].mrn == 9);
	printf("PASS %s\n", __func__);
}

int main(void)
{
	test_parse();
	return failures ? 1 : 0;
}
