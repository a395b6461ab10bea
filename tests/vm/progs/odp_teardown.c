// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * odp_teardown DEV: hold an explicit ODP MR of 256 MiB with an asynchronous PREFETCH_WRITE of
 * all of it queued, say "ready" on stdout, then wait to be killed. Used by the odp-teardown
 * suite, which deletes the device while the prefetch work is queued and then kills this owner
 * (rxe has no disassociate_ucontext, so ib_uverbs waits for the owner's context to close before
 * the device can go): neither may hang or splat. Exit status 1 on setup errors.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "odp/odp.h"

#define LEN (256UL << 20)
#define CHUNK (64UL << 20)

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : "rxe0";
	struct ibv_device **list = ibv_get_device_list(NULL);
	struct ibv_context *ctx = NULL;
	struct ibv_sge sge[LEN / CHUNK];
	struct ibv_mr *mr;
	struct ibv_pd *pd;
	void *buf;
	int err;

	for (int i = 0; list && list[i]; i++)
		if (!strcmp(ibv_get_device_name(list[i]), name))
			ctx = ibv_open_device(list[i]);
	if (!ctx) {
		fprintf(stderr, "odp_teardown: cannot open %s\n", name);
		return 1;
	}
	pd = ibv_alloc_pd(ctx);
	buf = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!pd || buf == MAP_FAILED) {
		perror("odp_teardown: pd/mmap");
		return 1;
	}
	mr = ibv_reg_mr(pd, buf, LEN, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_ON_DEMAND);
	if (!mr) {
		perror("odp_teardown: ibv_reg_mr(ON_DEMAND)");
		return 1;
	}
	for (size_t i = 0; i < LEN / CHUNK; i++) {
		sge[i].addr = (uintptr_t)buf + i * CHUNK;
		sge[i].length = CHUNK;
		sge[i].lkey = mr->lkey;
	}
	err = advise_mr(pd, IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE, 0, sge, LEN / CHUNK);
	if (err) {
		fprintf(stderr, "odp_teardown: async prefetch: %s\n", strerror(err));
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
	return 0;
}
