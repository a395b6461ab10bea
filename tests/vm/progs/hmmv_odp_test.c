// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * hmmv_odp_test: proves On-Demand-Paging semantics through real verbs on Soft-RoCE.
 *
 *   hmmv_odp_test [-d DEV] [-g GROUPS] [-t PATTERN] [-l] [-v]
 *
 *   -d DEV      RDMA device (default $HMMV_DEV, else rxe0)
 *   -g GROUPS   comma-separated test groups: data, inval, prefetch, bad (the default set),
 *               hostile-mem, hostile-verbs ("hostile": both; suite hostile)
 *   -t PATTERN  run only the tests whose name matches the shell PATTERN (fnmatch; a pattern
 *               without a wildcard matches as a substring); may be given more than once
 *   -l          list the test names and exit
 *   -v          diagnostics on stderr
 *
 * Every test is run, per target memory kind (pinned, odp = an explicit ODP MR over the buffer,
 * implicit = one implicit ODP MR), in a child process of its own with a fresh device context,
 * and prints exactly one line: "PASS name", "FAIL name: reason" or "SKIP name: reason" (SKIP
 * only for a kernel feature the VM lacks). The last line is "N passed, N failed, N skipped";
 * the exit status is 1 when anything failed. The pinned variants are the control group: they
 * must pass on every kernel, while the stock 7.3 rxe fails the ODP ones (it loses the bytes
 * after the first packet of a message).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fnmatch.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "odp/odp.h"

#define REASON_LEN 1024
#define DEFAULT_TIMEOUT 120

const char *const kind_names[K_NR] = { "pinned", "odp", "implicit" };
bool verbose;
static char *reason;		/* shared with the test's child */
static const char *cur_name = "";

static void set_reason(const char *fmt, va_list ap)
{
	if (reason[0])
		return;		/* the first failure is the one that counts */
	vsnprintf(reason, REASON_LEN, fmt, ap);
	/* One line per test. */
	for (char *c = reason; *c; c++)
		if (*c == '\n' || *c == '\r')
			*c = ' ';
}

int tfail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set_reason(fmt, ap);
	va_end(ap);
	return T_FAIL;
}

int tskip(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set_reason(fmt, ap);
	va_end(ap);
	return T_SKIP;
}

void tnote(const char *fmt, ...)
{
	va_list ap;

	if (!verbose)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "# %s: ", cur_name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static const struct group {
	const char *name;
	const struct tcase *tests;
	bool by_default;
} groups[] = {
	{ "data", data_tests, true },
	{ "inval", inval_tests, true },
	{ "prefetch", prefetch_tests, true },
	{ "bad", bad_tests, true },
	{ "hostile-mem", hostile_mem_tests, false },
	{ "hostile-verbs", hostile_verbs_tests, false },
};
#define NR_GROUPS (sizeof(groups) / sizeof(groups[0]))

/* -g LIST: comma-separated group names ("hostile" stands for both hostile groups). */
static bool group_on(const struct group *g, const char *list)
{
	char buf[256], *tok, *save;

	if (!list)
		return g->by_default;
	snprintf(buf, sizeof(buf), "%s", list);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (!strcmp(tok, g->name) || (!strcmp(tok, "hostile") && !strncmp(g->name, "hostile-", 8)))
			return true;
	}
	return false;
}

static int check_groups(const char *list)
{
	char buf[256], *tok, *save;

	if (!list)
		return 0;
	snprintf(buf, sizeof(buf), "%s", list);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		size_t g;

		for (g = 0; g < NR_GROUPS; g++)
			if (!strcmp(tok, groups[g].name))
				break;
		if (g == NR_GROUPS && strcmp(tok, "hostile")) {
			fprintf(stderr, "unknown group %s\n", tok);
			return -1;
		}
	}
	return 0;
}

static bool selected(const char *name, char **pats, int npats)
{
	if (!npats)
		return true;
	for (int i = 0; i < npats; i++) {
		if (strpbrk(pats[i], "*?[") ? !fnmatch(pats[i], name, 0) : !!strstr(name, pats[i]))
			return true;
	}
	return false;
}

/* Run one test in a child; returns T_PASS/T_FAIL/T_SKIP with the reason in `reason`. */
static int run_one(const struct tcase *tc, enum kind kind, const char *dev)
{
	unsigned int limit = tc->timeout ? tc->timeout : DEFAULT_TIMEOUT;
	struct timespec t0, now;
	int status, rc;
	pid_t pid, w;

	reason[0] = 0;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return tfail("fork: %s", strerror(errno));
	if (pid == 0) {
		struct env e;

		/* Its own process group, so that whatever it starts can be ended with it. */
		setpgid(0, 0);
		rc = env_open(&e, dev, kind);
		if (rc == T_PASS) {
			rc = tc->fn(&e, tc);
			env_close(&e);
		}
		fflush(NULL);
		_exit(rc);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec >= (time_t)limit) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			reason[0] = 0;
			return tfail("timed out after %u s (hang)", limit);
		}
		usleep(20000);
	}
	/* Children the test left behind (it should not) go with it. */
	kill(-pid, SIGKILL);
	if (WIFSIGNALED(status)) {
		char buf[REASON_LEN];

		snprintf(buf, sizeof(buf), "%s", reason);
		reason[0] = 0;
		return tfail("killed by signal %d (%s)%s%s", WTERMSIG(status), strsignal(WTERMSIG(status)),
			     buf[0] ? "; " : "", buf);
	}
	rc = WEXITSTATUS(status);
	if (rc == T_PASS || rc == T_SKIP)
		return rc;
	if (!reason[0])
		tfail("exit status %d without a reason", rc);
	return T_FAIL;
}

int main(int argc, char **argv)
{
	const char *dev = getenv("HMMV_DEV");
	int opt, npats = 0, passed = 0, failed = 0, skipped = 0;
	char **pats = calloc(argc + 1, sizeof(*pats));
	const char *glist = NULL;
	bool list = false;

	if (!dev || !*dev)
		dev = "rxe0";
	while ((opt = getopt(argc, argv, "d:g:t:lvh")) != -1) {
		switch (opt) {
		case 'd': dev = optarg; break;
		case 'g': glist = optarg; break;
		case 't': pats[npats++] = optarg; break;
		case 'l': list = true; break;
		case 'v': verbose = true; break;
		default:
			fprintf(stderr, "usage: %s [-d DEV] [-g GROUP[,GROUP]...] [-t PATTERN]... [-l] [-v]\n", argv[0]);
			return 2;
		}
	}
	if (check_groups(glist))
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	reason = mmap(NULL, REASON_LEN, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (reason == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	for (size_t g = 0; g < NR_GROUPS; g++) {
		if (!group_on(&groups[g], glist))
			continue;
		for (const struct tcase *tc = groups[g].tests; tc->name; tc++) {
			for (int k = 0; k < K_NR; k++) {
				char name[256];
				int rc;

				if (!(tc->kinds & KB(k)))
					continue;
				snprintf(name, sizeof(name), "%s/%s", tc->name, kind_names[k]);
				if (!selected(name, pats, npats))
					continue;
				if (list) {
					printf("%s\n", name);
					continue;
				}
				cur_name = name;
				rc = run_one(tc, k, dev);
				if (rc == T_PASS) {
					printf("PASS %s\n", name);
					passed++;
				} else if (rc == T_SKIP) {
					printf("SKIP %s: %s\n", name, reason);
					skipped++;
				} else {
					printf("FAIL %s: %s\n", name, reason);
					failed++;
				}
			}
		}
	}
	if (!list)
		printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
	free(pats);
	return failed ? 1 : 0;
}
