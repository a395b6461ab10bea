// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * libhmmverbs without a device: argument validation, comp_mask handling and dispatch to the
 * provider ops (a fake provider stands in for the device's backend), the "none" backend and
 * the ADVISE_MR ioctl's answer on a file that is no uverbs device.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hmmv_priv.h"

#include "hmmv_unit.h"

static struct ibv_device fake_device;
static struct ibv_context fake_context = { .device = &fake_device };
static struct ibv_pd fake_pd = { .context = &fake_context, .handle = 7 };
static struct ibv_mr fake_mr = { .context = &fake_context, .lkey = 1, .rkey = 2 };
static struct ibv_mr returned_mr;

/* What the fake provider saw. */
static struct {
	int calls;
	int access;
	void *addr;
	size_t length;
	int advice;
	uint32_t flags, num_sge;
	uint64_t comp_mask;
} seen;

static int fake_query(struct ibv_context *c, struct hmmv_device_attr *a)
{
	seen.calls++;
	seen.comp_mask = a->comp_mask;
	a->flags = HMMV_DEVICE_ODP | HMMV_DEVICE_ODP_IMPLICIT;
	/* Fill everything, asked for or not: the library must drop what was not asked. */
	a->comp_mask = HMMV_DEVICE_ATTR_MASK_ALL;
	a->general_odp_caps = IBV_ODP_SUPPORT;
	a->rc_odp_caps = IBV_ODP_SUPPORT_SEND;
	a->mirror_page_sizes = 1 << 12;
	a->provider = HMMV_PROVIDER_MLX5; /* lies: the library reports the ops' provider */
	return 0;
}

static struct ibv_mr *fake_reg_implicit(struct ibv_pd *pd, int access)
{
	seen.calls++;
	seen.access = access;
	return &returned_mr;
}

static struct ibv_mr *fake_reg_odp(struct ibv_pd *pd, void *addr, size_t length, int access)
{
	seen.calls++;
	seen.addr = addr;
	seen.length = length;
	seen.access = access;
	return &returned_mr;
}

static int fake_advise(struct ibv_pd *pd, enum ibv_advise_mr_advice advice, uint32_t flags,
		       struct ibv_sge *sg, uint32_t n)
{
	seen.calls++;
	seen.advice = advice;
	seen.flags = flags;
	seen.num_sge = n;
	return 0;
}

static int fake_stats(struct ibv_mr *mr, struct hmmv_mr_stats *s)
{
	seen.calls++;
	seen.comp_mask = s->comp_mask;
	s->comp_mask = HMMV_MR_STATS_MASK_ALL;
	s->page_faults = 3;
	s->mapped_pages = 9;
	return 0;
}

static const struct hmmv_provider_ops fake_ops = {
	.name = "fake",
	.provider = HMMV_PROVIDER_RXE,
	.query_device = fake_query,
	.reg_implicit_mr = fake_reg_implicit,
	.reg_odp_mr = fake_reg_odp,
	.advise_mr = fake_advise,
	.query_mr_stats = fake_stats,
};

static const struct hmmv_provider_ops empty_ops = { .name = "empty" };

static void reset(const struct hmmv_provider_ops *ops)
{
	memset(&seen, 0, sizeof(seen));
	hmmv_set_ops_override(ops);
}

static void test_query_device(void)
{
	struct hmmv_device_attr attr = {};

	reset(&fake_ops);
	CHECK(hmmv_query_device(NULL, &attr) == EINVAL);
	CHECK(hmmv_query_device(&fake_context, NULL) == EINVAL);
	attr.comp_mask = 1ull << 40;
	CHECK(hmmv_query_device(&fake_context, &attr) == EINVAL);
	CHECK(seen.calls == 0);

	memset(&attr, 0, sizeof(attr));
	CHECK(hmmv_query_device(&fake_context, &attr) == 0);
	CHECK(seen.calls == 1 && seen.comp_mask == 0);
	CHECK(attr.comp_mask == 0);
	CHECK(attr.flags == (HMMV_DEVICE_ODP | HMMV_DEVICE_ODP_IMPLICIT));
	CHECK(attr.provider == HMMV_PROVIDER_RXE);
	CHECK(attr.general_odp_caps == 0 && attr.rc_odp_caps == 0 && attr.mirror_page_sizes == 0);

	memset(&attr, 0, sizeof(attr));
	attr.comp_mask = HMMV_DEVICE_ATTR_MASK_ODP_CAPS;
	CHECK(hmmv_query_device(&fake_context, &attr) == 0);
	CHECK(attr.comp_mask == HMMV_DEVICE_ATTR_MASK_ODP_CAPS);
	CHECK(attr.general_odp_caps == IBV_ODP_SUPPORT && attr.rc_odp_caps == IBV_ODP_SUPPORT_SEND);
	CHECK(attr.mirror_page_sizes == 0);

	attr.comp_mask = HMMV_DEVICE_ATTR_MASK_ALL;
	CHECK(hmmv_query_device(&fake_context, &attr) == 0);
	CHECK(attr.comp_mask == HMMV_DEVICE_ATTR_MASK_ALL && attr.mirror_page_sizes == 4096);

	reset(&empty_ops);
	memset(&attr, 0, sizeof(attr));
	CHECK(hmmv_query_device(&fake_context, &attr) == EOPNOTSUPP);
	printf("PASS %s\n", __func__);
}

static void test_reg_implicit(void)
{
	reset(&fake_ops);
	errno = 0;
	CHECK(!hmmv_reg_implicit_mr(NULL, 0) && errno == EINVAL);
	errno = 0;
	CHECK(!hmmv_reg_implicit_mr(&fake_pd, 1 << 29) && errno == EINVAL);
	errno = 0;
	CHECK(!hmmv_reg_implicit_mr(&fake_pd, IBV_ACCESS_REMOTE_WRITE) && errno == EINVAL);
	errno = 0;
	CHECK(!hmmv_reg_implicit_mr(&fake_pd, IBV_ACCESS_REMOTE_ATOMIC) && errno == EINVAL);
	CHECK(seen.calls == 0);

	CHECK(hmmv_reg_implicit_mr(&fake_pd, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE) ==
	      &returned_mr);
	CHECK(seen.calls == 1);
	CHECK(seen.access ==
	      (IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_ON_DEMAND));

	reset(&empty_ops);
	errno = 0;
	CHECK(!hmmv_reg_implicit_mr(&fake_pd, 0) && errno == EOPNOTSUPP);
	reset(&hmmv_none_ops);
	errno = 0;
	CHECK(!hmmv_reg_implicit_mr(&fake_pd, 0) && errno == EOPNOTSUPP);
	printf("PASS %s\n", __func__);
}

static void test_reg_odp(void)
{
	char buf[64];

	reset(&fake_ops);
	errno = 0;
	CHECK(!hmmv_reg_odp_mr(NULL, buf, sizeof(buf), 0) && errno == EINVAL);
	errno = 0;
	CHECK(!hmmv_reg_odp_mr(&fake_pd, buf, 0, 0) && errno == EINVAL);
	errno = 0;
	CHECK(!hmmv_reg_odp_mr(&fake_pd, (void *)(UINTPTR_MAX - 10), 12, 0) && errno == EINVAL);
	errno = 0;
	CHECK(!hmmv_reg_odp_mr(&fake_pd, NULL, SIZE_MAX, 0) && errno == EINVAL);
	errno = 0;
	CHECK(!hmmv_reg_odp_mr(&fake_pd, buf, sizeof(buf), 1 << 30) && errno == EINVAL);
	CHECK(seen.calls == 0);

	/* The last byte of the address space is a valid end. */
	CHECK(hmmv_reg_odp_mr(&fake_pd, (void *)(UINTPTR_MAX - 9), 10, 0) == &returned_mr);
	CHECK(hmmv_reg_odp_mr(&fake_pd, buf, sizeof(buf), IBV_ACCESS_LOCAL_WRITE) == &returned_mr);
	CHECK(seen.calls == 2 && seen.addr == buf && seen.length == sizeof(buf));
	CHECK(seen.access == (IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_ON_DEMAND));

	reset(&empty_ops);
	errno = 0;
	CHECK(!hmmv_reg_odp_mr(&fake_pd, buf, sizeof(buf), 0) && errno == EOPNOTSUPP);
	printf("PASS %s\n", __func__);
}

static void test_advise(void)
{
	struct ibv_sge sge = { .addr = 4096, .length = 4096, .lkey = 1 };

	reset(&fake_ops);
	CHECK(hmmv_advise_mr(NULL, IBV_ADVISE_MR_ADVICE_PREFETCH, 0, &sge, 1) == EINVAL);
	CHECK(hmmv_advise_mr(&fake_pd, IBV_ADVISE_MR_ADVICE_PREFETCH, 0, NULL, 1) == EINVAL);
	CHECK(hmmv_advise_mr(&fake_pd, IBV_ADVISE_MR_ADVICE_PREFETCH, 0, &sge, 0) == EINVAL);
	CHECK(hmmv_advise_mr(&fake_pd, IBV_ADVISE_MR_ADVICE_PREFETCH, 0, &sge,
			     HMMV_ADVISE_MAX_SGE + 1) == EINVAL);
	CHECK(hmmv_advise_mr(&fake_pd, (enum ibv_advise_mr_advice)3, 0, &sge, 1) == EINVAL);
	CHECK(hmmv_advise_mr(&fake_pd, IBV_ADVISE_MR_ADVICE_PREFETCH, 2, &sge, 1) == EINVAL);
	CHECK(seen.calls == 0);

	CHECK(hmmv_advise_mr(&fake_pd, IBV_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT,
			     IBV_ADVISE_MR_FLAG_FLUSH, &sge, 1) == 0);
	CHECK(seen.calls == 1 && seen.advice == IBV_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT);
	CHECK(seen.flags == IBV_ADVISE_MR_FLAG_FLUSH && seen.num_sge == 1);

	reset(&empty_ops);
	CHECK(hmmv_advise_mr(&fake_pd, IBV_ADVISE_MR_ADVICE_PREFETCH, 0, &sge, 1) == EOPNOTSUPP);
	printf("PASS %s\n", __func__);
}

static void test_stats(void)
{
	struct hmmv_mr_stats st = {};

	reset(&fake_ops);
	CHECK(hmmv_query_mr_stats(NULL, &st) == EINVAL);
	CHECK(hmmv_query_mr_stats(&fake_mr, NULL) == EINVAL);
	st.comp_mask = 1 << 5;
	CHECK(hmmv_query_mr_stats(&fake_mr, &st) == EINVAL);
	CHECK(seen.calls == 0);

	memset(&st, 0, sizeof(st));
	CHECK(hmmv_query_mr_stats(&fake_mr, &st) == 0);
	CHECK(seen.calls == 1 && seen.comp_mask == 0);
	CHECK(st.comp_mask == 0 && st.page_faults == 3);

	st.comp_mask = HMMV_MR_STATS_MASK_MIRROR;
	CHECK(hmmv_query_mr_stats(&fake_mr, &st) == 0);
	CHECK(st.comp_mask == HMMV_MR_STATS_MASK_MIRROR && st.mapped_pages == 9);

	reset(&empty_ops);
	CHECK(hmmv_query_mr_stats(&fake_mr, &st) == EOPNOTSUPP);
	printf("PASS %s\n", __func__);
}

static void test_none_backend(void)
{
	struct ibv_sge sge = { .addr = 4096, .length = 4096, .lkey = 1 };
	struct hmmv_mr_stats st = {};

	reset(&hmmv_none_ops);
	CHECK(!hmmv_is_supported(&fake_device));
	CHECK(!hmmv_is_supported(NULL));
	CHECK(hmmv_advise_mr(&fake_pd, IBV_ADVISE_MR_ADVICE_PREFETCH, 0, &sge, 1) == EOPNOTSUPP);
	CHECK(hmmv_query_mr_stats(&fake_mr, &st) == EOPNOTSUPP);
	errno = 0;
	CHECK(!hmmv_reg_odp_mr(&fake_pd, &sge, sizeof(sge), 0) && errno == EOPNOTSUPP);
	printf("PASS %s\n", __func__);
}

/* The ioctl fallback on a file that is no uverbs device: the kernel says ENOTTY. */
static void test_advise_ioctl_not_uverbs(void)
{
	struct ibv_context ctx = { .device = &fake_device };
	struct ibv_pd pd = { .context = &ctx, .handle = 1 };
	struct ibv_sge sge = { .addr = 4096, .length = 4096, .lkey = 1 };
	int fds[2];

	CHECK(pipe(fds) == 0);
	ctx.cmd_fd = fds[0];
	CHECK(hmmv_advise_ioctl(&pd, 0, IBV_ADVISE_MR_ADVICE_PREFETCH, 0, &sge, 1) == EOPNOTSUPP);
	close(fds[0]);
	close(fds[1]);
	ctx.cmd_fd = fds[0];
	CHECK(hmmv_advise_ioctl(&pd, 0, IBV_ADVISE_MR_ADVICE_PREFETCH, 0, &sge, 1) == EBADF);
	printf("PASS %s\n", __func__);
}

int main(void)
{
	test_query_device();
	test_reg_implicit();
	test_reg_odp();
	test_advise();
	test_stats();
	test_none_backend();
	test_advise_ioctl_not_uverbs();
	hmmv_set_ops_override(NULL);
	printf("%s\n", failures ? "FAILED" : "all passed");
	return failures ? 1 : 0;
}
