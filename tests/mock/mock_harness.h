/* SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB */
/*
 * The harness of the mock-device test programs (ib_hmm_mock_test,
 * ib_hmm_dma_test): checks that leave a reason, one child process per
 * case, and the main loop that selects cases by name and prints
 * PASS/FAIL/SKIP per case and "N passed, N failed[, N skipped]".
 *
 * A program defines its cases and calls mock_main() from main().
 */
#ifndef HMMV_MOCK_HARNESS_H
#define HMMV_MOCK_HARNESS_H

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uapi/rdma/ib_hmm_test.h>

#include "hmm_stats.h"

#define PAGE		4096UL
#define HUGE_2M		(2UL << 20)
#define ACC_ALL		IB_HMM_TEST_ACCESS_ALL

enum { T_PASS, T_FAIL, T_SKIP };

static char *reason;		/* shared with the parent */
static int verbose;

static void set_reason(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, 512, fmt, ap);
	va_end(ap);
}

#define CHECK(cond, ...)						\
	do {								\
		if (!(cond)) {						\
			set_reason(__VA_ARGS__);			\
			ret = T_FAIL;					\
			goto out;					\
		}							\
	} while (0)

#define SKIP(...)							\
	do {								\
		set_reason(__VA_ARGS__);				\
		ret = T_SKIP;						\
		goto out;						\
	} while (0)

/* Expect an ioctl result: 0 or a positive errno. */
#define CHECK_ERR(expr, want)						\
	do {								\
		int __e = (expr);					\
		CHECK(__e == (want), "%s:%d: %s returned %s, want %s",	\
		      __func__, __LINE__, #expr, strerror(__e),		\
		      strerror(want));					\
	} while (0)

/* ---- mock device wrappers: return 0 or errno ---- */

static inline int xioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) ? errno : 0;
}

static inline int dev_open(void)
{
	return open(IB_HMM_TEST_DEVICE, O_RDWR | O_CLOEXEC);
}

/* ---- helpers shared by the programs ---- */

static inline int mr_destroy(int fd, uint64_t h)
{
	struct ib_hmm_test_mr_destroy a = { .handle = h };

	return xioctl(fd, IB_HMM_TEST_IOC_MR_DESTROY, &a);
}

static inline int mr_counters(int fd, uint64_t h,
			      struct ib_hmm_test_counters *c)
{
	memset(c, 0, sizeof(*c));
	c->handle = h;
	return xioctl(fd, IB_HMM_TEST_IOC_COUNTERS, c);
}

static inline int mr_prefetch(int fd, uint64_t h, uint64_t iova,
			      uint64_t len, uint64_t flags)
{
	struct ib_hmm_test_prefetch a = {
		.handle = h, .iova = iova, .length = len, .flags = flags,
	};

	return xioctl(fd, IB_HMM_TEST_IOC_PREFETCH, &a);
}

static inline void *map_anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* An anonymous mapping of @len bytes aligned to @align. */
static inline void *map_aligned(size_t len, size_t align)
{
	uint8_t *p = mmap(NULL, len + align, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uintptr_t a;

	if (p == MAP_FAILED)
		return NULL;
	a = ((uintptr_t)p + align - 1) & ~(align - 1);
	if (a > (uintptr_t)p)
		munmap(p, a - (uintptr_t)p);
	munmap((void *)(a + len), (uintptr_t)p + align - a);
	return (void *)a;
}

static inline void fill_pattern(uint8_t *p, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 131 + seed * 17 + (i >> 12) + 1);
}

static inline long first_diff(const uint8_t *a, const uint8_t *b, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (a[i] != b[i])
			return (long)i;
	return -1;
}

static inline bool smaps_has_thp(void *addr)
{
	char line[256];
	bool in = false, thp = false;
	unsigned long s, e, kb;
	FILE *f = fopen("/proc/self/smaps", "r");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &s, &e) == 2 && strchr(line, '-') &&
		    line[0] != ' ') {
			in = (uintptr_t)addr >= s && (uintptr_t)addr < e;
			continue;
		}
		if (in && sscanf(line, "AnonHugePages: %lu kB", &kb) == 1 &&
		    kb >= 2048)
			thp = true;
	}
	fclose(f);
	return thp;
}

struct tcase {
	const char *name;
	int (*fn)(void);
};

static int run_case(const struct tcase *tc)
{
	int status;
	pid_t pid;

	reason[0] = 0;
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		snprintf(reason, 512, "fork: %s", strerror(errno));
		return T_FAIL;
	}
	if (pid == 0) {
		status = tc->fn();
		fflush(stdout);
		_exit(status);
	}
	if (waitpid(pid, &status, 0) != pid) {
		snprintf(reason, 512, "waitpid: %s", strerror(errno));
		return T_FAIL;
	}
	if (WIFSIGNALED(status)) {
		snprintf(reason, 512, "killed by signal %d", WTERMSIG(status));
		return T_FAIL;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) > T_SKIP) {
		snprintf(reason, 512, "exit status %#x", status);
		return T_FAIL;
	}
	return WEXITSTATUS(status);
}

/* usage: PROG [-v] [NAME...]; every case of @cases when no NAME is given. */
static int mock_main(const struct tcase *cases, size_t n, int argc,
		     char **argv)
{
	int passed = 0, failed = 0, skipped = 0, fd, r, j, selected;
	size_t i;

	if (argc > 1 && !strcmp(argv[1], "-v")) {
		verbose = 1;
		argc--;
		argv++;
	}
	reason = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (reason == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	fd = dev_open();
	if (fd < 0) {
		fprintf(stderr, "%s: %s (is ib_hmm_test loaded?)\n",
			IB_HMM_TEST_DEVICE, strerror(errno));
		printf("0 passed, 1 failed\n");
		return 1;
	}
	close(fd);
	for (i = 0; i < n; i++) {
		selected = argc <= 1;
		for (j = 1; j < argc; j++)
			selected |= !strcmp(argv[j], cases[i].name);
		if (!selected)
			continue;
		r = run_case(&cases[i]);
		if (r == T_PASS) {
			printf("PASS %s\n", cases[i].name);
			passed++;
		} else if (r == T_SKIP) {
			printf("SKIP %s: %s\n", cases[i].name, reason);
			skipped++;
		} else {
			printf("FAIL %s: %s\n", cases[i].name, reason);
			failed++;
		}
	}
	if (skipped)
		printf("%d passed, %d failed, %d skipped\n", passed, failed,
		       skipped);
	else
		printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

#endif /* HMMV_MOCK_HARNESS_H */
