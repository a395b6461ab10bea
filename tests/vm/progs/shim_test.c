// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * shim_test: what hmmv-run's shim does with registrations, seen by an ordinary verbs program
 * (this one knows nothing of libhmmverbs and is run under hmmv-run). One line per test.
 *
 *   hmmv-run -- shim_test -d DEV -e ours|stock
 *
 * ours: ordinary registrations of mapped memory share the keys of one implicit MR per PD and
 * access mask and pin nothing; the registrations the shim passes on (unmapped, wrapping, zero
 * length, memory-window access) fail or succeed exactly as without it; deregistering and
 * freeing the PD work. stock: every registration is a real, separate MR.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#define RW (IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ)

static int failures;

static void result(const char *name, bool ok, const char *why)
{
	if (ok) {
		printf("PASS %s\n", name);
	} else {
		printf("FAIL %s: %s\n", name, why);
		failures++;
	}
}

/* Registering must fail with one of the errnos the real call gives for such a range. */
static void expect_fail(const char *name, struct ibv_pd *pd, void *addr, size_t len, int e1,
			int e2)
{
	char why[96];
	struct ibv_mr *mr;

	errno = 0;
	mr = ibv_reg_mr(pd, addr, len, RW);
	snprintf(why, sizeof(why), "got %s, errno %d (%s)", mr ? "an MR" : "NULL", errno,
		 strerror(errno));
	result(name, !mr && (errno == e1 || errno == e2), why);
	if (mr)
		ibv_dereg_mr(mr);
}

int main(int argc, char **argv)
{
	const char *devname = NULL, *expect = NULL;
	struct ibv_device **list;
	struct ibv_context *ctx = NULL;
	struct ibv_mr *a, *b, *c, *mw;
	struct ibv_pd *pd, *pd2;
	char why[128];
	bool ours;
	void *hole;
	char *buf;
	int opt;

	while ((opt = getopt(argc, argv, "d:e:")) != -1) {
		if (opt == 'd')
			devname = optarg;
		else if (opt == 'e')
			expect = optarg;
	}
	if (!devname || !expect) {
		fprintf(stderr, "usage: shim_test -d DEV -e ours|stock\n");
		return 2;
	}
	ours = !strcmp(expect, "ours");
	list = ibv_get_device_list(NULL);
	for (int i = 0; list && list[i]; i++)
		if (!strcmp(ibv_get_device_name(list[i]), devname))
			ctx = ibv_open_device(list[i]);
	pd = ctx ? ibv_alloc_pd(ctx) : NULL;
	pd2 = ctx ? ibv_alloc_pd(ctx) : NULL;
	buf = malloc(3 << 20);
	if (!pd || !pd2 || !buf) {
		fprintf(stderr, "shim_test: no device %s or no memory\n", devname);
		return 2;
	}

	/* Two buffers of one PD, same access: one implicit MR answers both (ours). */
	a = ibv_reg_mr(pd, buf, 1 << 20, RW);
	b = ibv_reg_mr(pd, buf + (2 << 20), 4097, RW);
	c = ibv_reg_mr(pd2, buf, 4096, RW);
	if (!a || !b || !c) {
		result("reg/ordinary", false, strerror(errno));
		return 1;
	}
	snprintf(why, sizeof(why), "keys %#x/%#x, %#x/%#x, other PD %#x", a->lkey, a->rkey,
		 b->lkey, b->rkey, c->lkey);
	result("reg/ordinary/addr-length-kept", a->addr == buf && a->length == 1 << 20 &&
		a->pd == pd && b->addr == buf + (2 << 20) && b->length == 4097, "addr/length/pd");
	if (ours)
		result("reg/ordinary/one-implicit-mr-per-pd",
		       a->lkey == b->lkey && a->rkey == b->rkey && c->lkey != a->lkey, why);
	else
		result("reg/ordinary/separate-mrs", a->lkey != b->lkey && c->lkey != a->lkey, why);

	/* Optional access bits (relaxed ordering) do not change how it is served. */
	mw = ibv_reg_mr(pd, buf + 4096, 8192, RW | IBV_ACCESS_RELAXED_ORDERING);
	snprintf(why, sizeof(why), "lkey %#x vs %#x", mw ? mw->lkey : 0, a->lkey);
	result("reg/relaxed-ordering", mw && (ours ? mw->lkey == a->lkey : mw->lkey != a->lkey),
	       why);
	if (mw)
		ibv_dereg_mr(mw);

	/* Registrations passed on: the real call's answer, as without the shim. */
	hole = mmap(NULL, 1 << 16, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(hole, 1 << 16);
	expect_fail("reg/unmapped-range-EFAULT", pd, hole, 1 << 16, EFAULT, EFAULT);
	expect_fail("reg/partly-unmapped-EFAULT", pd, (char *)hole - 4096, 8192, EFAULT, EFAULT);
	expect_fail("reg/wrapping-range", pd, (void *)(UINTPTR_MAX - 4095), 8192, EINVAL, EFAULT);
	/* Zero length goes to the real call, which (rxe) gives a real, empty MR. */
	mw = ibv_reg_mr(pd, buf, 0, RW);
	snprintf(why, sizeof(why), "%s", mw ? "lkey equals the implicit MR's" : strerror(errno));
	result("reg/zero-length-passed-on", !mw || mw->lkey != a->lkey, why);
	if (mw)
		ibv_dereg_mr(mw);
	mw = ibv_reg_mr(pd, buf, 4096, RW | IBV_ACCESS_MW_BIND);
	snprintf(why, sizeof(why), "%s", mw ? "lkey equals the implicit MR's" : strerror(errno));
	/* rxe supports MW_BIND: a real MR with its own key. */
	result("reg/mw-bind-passed-on", mw && mw->lkey != a->lkey, why);
	if (mw)
		ibv_dereg_mr(mw);

	/* Deregistering the caller's MRs works and does not disturb the others. */
	result("dereg/served", !ibv_dereg_mr(b), strerror(errno));
	b = ibv_reg_mr(pd, buf + 8192, 100, RW);
	result("reg/after-dereg", b && (!ours || b->lkey == a->lkey), "lost the implicit MR");
	result("dereg/all", !ibv_dereg_mr(a) && (!b || !ibv_dereg_mr(b)) && !ibv_dereg_mr(c),
	       strerror(errno));
	/* The PDs hold no MR of the program's any more: freeing them must succeed. */
	result("dealloc_pd", !ibv_dealloc_pd(pd) && !ibv_dealloc_pd(pd2), strerror(errno));
	ibv_close_device(ctx);
	ibv_free_device_list(list);
	free(buf);
	return failures ? 1 : 0;
}
