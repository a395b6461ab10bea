/* SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB */
/*
 * ib_hmm's global counts (/sys/kernel/debug/ib_hmm/stats, "name: value" lines), for the tests
 * that run in the VMs as root.
 */
#ifndef HMMV_TEST_HMM_STATS_H
#define HMMV_TEST_HMM_STATS_H

#include <stdio.h>
#include <string.h>
#include <sys/mount.h>

#define HMM_DEBUGFS_STATS "/sys/kernel/debug/ib_hmm/stats"

/* The value of @name, or -1 (no ib_hmm loaded, or no such line); mounts debugfs if needed. */
static inline long long hmm_debugfs_stat(const char *name)
{
	char line[128], key[64];
	long long v, ret = -1;
	FILE *f = fopen(HMM_DEBUGFS_STATS, "r");

	if (!f) {
		mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL);
		f = fopen(HMM_DEBUGFS_STATS, "r");
		if (!f)
			return -1;
	}
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%63[^:]: %lld", key, &v) == 2 && !strcmp(key, name)) {
			ret = v;
			break;
		}
	fclose(f);
	return ret;
}

#endif
