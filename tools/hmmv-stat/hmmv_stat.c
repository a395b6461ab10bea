// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * hmmv-stat [--json] [--watch[=SECS]] [DEVICE]: the On-Demand-Paging MRs of every process on
 * every RDMA device (or DEVICE), with their counters, from rdma netlink restrack (the same
 * source as hmmv_query_mr_stats()). --watch repeats every SECS seconds (default 1) and shows
 * the change since the previous sample next to each counter. MRs without ODP counters are
 * not listed. Keys are shown to CAP_NET_ADMIN only.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hmmv_priv.h"

struct sample {
	uint32_t dev_index, mrn;
	struct hmmv_mr_stats s;
};

struct ctx {
	const char *dev_name;
	bool json;
	bool first;		/* no JSON element printed yet */
	struct sample *prev, *cur;
	size_t nprev, ncur, cap;
	int rows;
};

static const struct sample *find_prev(const struct ctx *c, uint32_t dev, uint32_t mrn)
{
	for (size_t i = 0; i < c->nprev; i++)
		if (c->prev[i].dev_index == dev && c->prev[i].mrn == mrn)
			return &c->prev[i];
	return NULL;
}

static void comm_of(uint32_t pid, char *buf, size_t len)
{
	char path[64];
	FILE *f;

	snprintf(buf, len, "-");
	snprintf(path, sizeof(path), "/proc/%u/comm", pid);
	f = fopen(path, "r");
	if (!f)
		return;
	if (fgets(buf, (int)len, f))
		buf[strcspn(buf, "\n")] = 0;
	fclose(f);
	/* Shown in JSON strings and table columns: no quotes, backslashes or controls. */
	for (char *p = buf; *p; p++)
		if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
			*p = '_';
}

static int print_mr(const struct hmmv_nl_mr *r, void *arg)
{
	struct ctx *c = arg;
	const struct hmmv_mr_stats *s = &r->stats;
	const struct sample *p;
	char comm[32], keys[32];

	if (!r->has_counters)
		return 0;
	if (c->ncur == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		struct sample *n = realloc(c->cur, cap * sizeof(*n));

		if (!n)
			return ENOMEM;
		c->cur = n;
		c->cap = cap;
	}
	c->cur[c->ncur++] = (struct sample){ r->dev_index, r->mrn, *s };
	p = find_prev(c, r->dev_index, r->mrn);
	comm_of(r->pid, comm, sizeof(comm));
	if (r->has_keys)
		snprintf(keys, sizeof(keys), "%#x/%#x", r->lkey, r->rkey);
	else
		snprintf(keys, sizeof(keys), "-");
	if (c->json) {
		printf("%s{\"dev\":\"%s\",\"mrn\":%u,\"pid\":%u,\"comm\":\"%s\",", c->first ? "" : ",",
		       c->dev_name, r->mrn, r->pid, comm);
		if (r->has_keys)
			printf("\"lkey\":%u,\"rkey\":%u,", r->lkey, r->rkey);
		printf("\"odp\":\"%s\",\"length\":%" PRIu64 ",\"page_faults\":%" PRIu64
		       ",\"page_faults_handled\":%" PRIu64 ",\"page_invalidations\":%" PRIu64
		       ",\"page_invalidations_handled\":%" PRIu64 ",\"page_prefetch\":%" PRIu64,
		       (s->flags & HMMV_MR_STATS_IMPLICIT) ? "implicit" : "explicit", r->length,
		       s->page_faults, s->page_faults_handled, s->page_invalidations,
		       s->page_invalidations_handled, s->page_prefetch);
		if (r->has_mirror)
			printf(",\"mapped_pages\":%" PRIu64 ",\"mirror_bytes\":%" PRIu64,
			       s->mapped_pages, s->mirror_bytes);
		printf("}");
		c->first = false;
		return 0;
	}
	if (!c->rows++)
		printf("%-8s %5s %7s %-15s %-13s %-8s %12s %12s %12s %12s %10s %10s\n", "DEV", "MRN",
		       "PID", "COMM", "LKEY/RKEY", "ODP", "FAULTS", "INVAL", "INVAL_EVT",
		       "PREFETCH", "MAPPED", "MIRROR_B");
#define COL(f) (p ? (long long)(s->f - p->s.f) : 0LL)
	printf("%-8s %5u %7u %-15s %-13s %-8s %12" PRIu64 " %12" PRIu64 " %12" PRIu64
	       " %12" PRIu64 " %10" PRIu64 " %10" PRIu64 "\n",
	       c->dev_name, r->mrn, r->pid, comm, keys,
	       (s->flags & HMMV_MR_STATS_IMPLICIT) ? "implicit" : "explicit", s->page_faults,
	       s->page_invalidations, s->page_invalidations_handled, s->page_prefetch,
	       s->mapped_pages, s->mirror_bytes);
	if (p)
		printf("%-8s %5s %7s %-15s %-13s %-8s %+12lld %+12lld %+12lld %+12lld %+10lld %+10lld\n",
		       "", "", "", "", "", "delta", COL(page_faults), COL(page_invalidations),
		       COL(page_invalidations_handled), COL(page_prefetch), COL(mapped_pages),
		       COL(mirror_bytes));
#undef COL
	return 0;
}

static int sample(struct ctx *c, struct ibv_device **list, const char *only)
{
	int err, shown = 0;

	c->rows = 0;
	c->ncur = 0;
	c->first = true;
	if (c->json)
		printf("[");
	for (int i = 0; list[i]; i++) {
		int index = ibv_get_device_index(list[i]);

		c->dev_name = ibv_get_device_name(list[i]);
		if ((only && strcmp(only, c->dev_name)) || index < 0)
			continue;
		shown++;
		err = hmmv_nl_mr_dump(index, print_mr, c);
		if (err) {
			fprintf(stderr, "hmmv-stat: %s: %s\n", c->dev_name, strerror(err));
			return 1;
		}
	}
	if (c->json)
		printf("]\n");
	else if (!c->rows)
		printf("no ODP memory regions\n");
	fflush(stdout);
	if (only && !shown) {
		fprintf(stderr, "hmmv-stat: no RDMA device %s\n", only);
		return 1;
	}
	/* This sample becomes the previous one. */
	free(c->prev);
	c->prev = c->cur;
	c->nprev = c->ncur;
	c->cur = NULL;
	c->ncur = c->cap = 0;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "watch", optional_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct ctx c = {};
	double watch = 0;
	struct ibv_device **list;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "jw::h", opts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			c.json = true;
			break;
		case 'w':
			watch = optarg ? atof(optarg) : 1;
			if (watch <= 0)
				watch = 1;
			break;
		default:
			fprintf(stderr, "usage: hmmv-stat [--json] [--watch[=SECS]] [DEVICE]\n");
			return opt == 'h' ? 0 : 2;
		}
	}
	list = ibv_get_device_list(NULL);
	if (!list) {
		fprintf(stderr, "hmmv-stat: no RDMA devices: %s\n", strerror(errno));
		return 1;
	}
	do {
		rc = sample(&c, list, optind < argc ? argv[optind] : NULL);
		if (rc || !watch)
			break;
		usleep((useconds_t)(watch * 1e6));
		if (!c.json)
			printf("\n");
	} while (1);
	ibv_free_device_list(list);
	free(c.prev);
	free(c.cur);
	return rc;
}
