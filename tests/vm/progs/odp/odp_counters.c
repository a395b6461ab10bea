// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * hmmv_odp_test: per-MR ODP counters as `rdma -j -dd resource show mr` reports them, and the
 * resources a process still owns. The tool is started with posix_spawn (a vfork: no copy of
 * this address space, so reading the counters does not itself invalidate ODP mappings the way
 * a fork's write protection would).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "odp.h"

extern char **environ;

/* The tool's JSON output, NUL-terminated (malloc'd), or NULL. */
static char *rdma_json(const char *res)
{
	char *argv[] = { "rdma", "-j", "-dd", "resource", "show", (char *)res, NULL };
	posix_spawn_file_actions_t fa;
	size_t len = 0, cap = 65536;
	char *out = malloc(cap);
	int fds[2], status;
	pid_t pid;
	ssize_t n;

	if (!out || pipe(fds))
		return NULL;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	posix_spawn_file_actions_addclose(&fa, fds[0]);
	if (posix_spawnp(&pid, "rdma", &fa, NULL, argv, environ)) {
		posix_spawn_file_actions_destroy(&fa);
		close(fds[0]);
		close(fds[1]);
		free(out);
		return NULL;
	}
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	while ((n = read(fds[0], out + len, cap - len - 1)) > 0) {
		len += n;
		if (cap - len < 4096) {
			char *bigger = realloc(out, cap * 2);

			if (!bigger)
				break;
			out = bigger;
			cap *= 2;
		}
	}
	close(fds[0]);
	waitpid(pid, &status, 0);
	out[len] = 0;
	return out;
}

/*
 * Next object of the top-level array, as [*start, *end); false when there is none. @pos starts
 * at @s, before the array, and stays inside it between calls.
 */
static bool next_object(const char *s, const char **pos, const char **start, const char **end)
{
	int depth = *pos == s ? 0 : 1;
	bool str = false;

	for (const char *p = *pos; *p; p++) {
		if (str) {
			if (*p == '\\' && p[1])
				p++;
			else if (*p == '"')
				str = false;
			continue;
		}
		if (*p == '"') {
			str = true;
		} else if (*p == '{' || *p == '[') {
			if (++depth == 2 && *p == '{')
				*start = p;
		} else if (*p == '}' || *p == ']') {
			if (depth-- == 2 && *p == '}') {
				*end = p + 1;
				*pos = p + 1;
				return true;
			}
		}
	}
	return false;
}

/* The value of "key" in [obj, end): a number, or a string (hex when @hex). */
static bool json_get(const char *obj, const char *end, const char *key, bool hex, long long *val)
{
	char pat[96];
	const char *p;
	size_t n = (size_t)(end - obj);

	/* Driver attributes carry a "drv_" prefix in iproute2's JSON. */
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = memmem(obj, n, pat, strlen(pat));
	if (!p) {
		snprintf(pat, sizeof(pat), "\"drv_%s\":", key);
		p = memmem(obj, n, pat, strlen(pat));
	}
	if (!p)
		return false;
	p += strlen(pat);
	while (*p == ' ')
		p++;
	if (*p == '"')
		p++;
	*val = (long long)strtoull(p, NULL, hex ? 16 : 0);
	return true;
}

int mr_counters(const struct ibv_mr *mr, struct mr_counters *c)
{
	const char *pos, *o, *oe;
	char *js = rdma_json("mr");
	int ret = -1;

	memset(c, 0xff, sizeof(*c));
	if (!js)
		return tfail("cannot run `rdma -j -dd resource show mr`");
	pos = js;
	while (next_object(js, &pos, &o, &oe)) {
		long long rkey, lkey;

		if (!json_get(o, oe, "rkey", true, &rkey) || (uint32_t)rkey != mr->rkey)
			continue;
		if (json_get(o, oe, "lkey", true, &lkey) && (uint32_t)lkey != mr->lkey)
			continue;
		if (!json_get(o, oe, "page_faults", false, &c->faults) ||
		    !json_get(o, oe, "page_faults_handled", false, &c->faults_handled) ||
		    !json_get(o, oe, "page_invalidations", false, &c->invalidations) ||
		    !json_get(o, oe, "page_invalidations_handled", false, &c->invalidations_handled) ||
		    !json_get(o, oe, "page_prefetch", false, &c->prefetch)) {
			ret = tfail("the MR (rkey 0x%x) has no ODP counters in `rdma -j -dd resource show mr`: %.*s",
				    mr->rkey, (int)(oe - o), o);
			break;
		}
		if (!json_get(o, oe, "hmm_mapped_pages", false, &c->mapped_pages))
			c->mapped_pages = -1;
		if (!json_get(o, oe, "hmm_table_bytes", false, &c->table_bytes))
			c->table_bytes = -1;
		ret = 0;
		break;
	}
	if (ret == -1)
		ret = tfail("MR rkey 0x%x not found in `rdma -j -dd resource show mr`", mr->rkey);
	free(js);
	return ret;
}

int rdma_res_count_pid(const char *res, int pid, int *count)
{
	const char *pos, *o, *oe;
	char *js = rdma_json(res);

	if (!js)
		return tfail("cannot run `rdma -j resource show %s`", res);
	*count = 0;
	pos = js;
	while (next_object(js, &pos, &o, &oe)) {
		long long p;

		if (json_get(o, oe, "pid", false, &p) && p == pid)
			(*count)++;
	}
	free(js);
	return 0;
}
