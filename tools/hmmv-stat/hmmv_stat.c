// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * hmmv-stat [--json] [--watch[=SECS]] [DEVICE]: each RDMA device's ODP capabilities (from
 * hmmv_query_device()) and the On-Demand-Paging MRs of every process on it, with their
 * counters, from rdma netlink restrack (the same source as hmmv_query_mr_stats()). --watch
 * repeats every SECS seconds (default 1) and shows the change since the previous sample next
 * to each counter. MRs without ODP counters are not listed. Keys are shown to CAP_NET_ADMIN
 * only. --json prints JSON lines: one object per device ("caps"), then one per MR.
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
	struct sample *prev, *cur;
	size_t nprev, ncur, cap;
	int rows;		/* MRs shown in this sample */
	int dev_rows;		/* ...of the current device */
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
		printf("{\"dev\":\"%s\",\"mrn\":%u,\"pid\":%u,\"comm\":\"%s\",", c->dev_name,
		       r->mrn, r->pid, comm);
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
		printf("}\n");
		c->rows++;
		return 0;
	}
	c->rows++;
	if (!c->dev_rows++)
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

static const char *const provider_names[] = {
	[HMMV_PROVIDER_NONE] = "none", [HMMV_PROVIDER_RXE] = "rxe", [HMMV_PROVIDER_MLX5] = "mlx5",
};

/* The transport ODP capability bits as words: "send,recv,write" or "-". */
static const char *odp_ops(uint32_t caps, char *buf, size_t len)
{
	static const char *const names[] = { "send", "recv", "write", "read", "atomic",
					     "srq_recv" };
	size_t n = 0;

	buf[0] = 0;
	for (unsigned int b = 0; b < sizeof(names) / sizeof(names[0]); b++)
		if (caps & (1u << b))
			n += (size_t)snprintf(buf + n, n < len ? len - n : 0, "%s%s", n ? "," : "",
					      names[b]);
	return n ? buf : "-";
}

/* The device's line: what hmmv_query_device() says of it. */
static void print_caps(const struct ctx *c, struct ibv_device *dev)
{
	struct hmmv_device_attr a = { .comp_mask = HMMV_DEVICE_ATTR_MASK_ALL };
	struct ibv_context *ctx = ibv_open_device(dev);
	const char *prefetch, *prov;
	char rc[64], ud[64];
	int err = ctx ? hmmv_query_device(ctx, &a) : errno;

	if (ctx)
		ibv_close_device(ctx);
	if (err) {
		if (c->json)
			printf("{\"dev\":\"%s\",\"caps\":null,\"error\":\"%s\"}\n", c->dev_name,
			       strerror(err));
		else
			printf("%s: capabilities unknown: %s\n", c->dev_name, strerror(err));
		return;
	}
	prov = a.provider < sizeof(provider_names) / sizeof(provider_names[0]) ?
		       provider_names[a.provider] : "?";
	prefetch = !(a.flags & HMMV_DEVICE_PREFETCH)	     ? "no" :
		   (a.flags & HMMV_DEVICE_PREFETCH_IOCTL) ? "ioctl" : "native";
	if (c->json) {
		printf("{\"dev\":\"%s\",\"caps\":{\"provider\":\"%s\",\"hmm\":%s,\"odp\":%s,"
		       "\"implicit\":%s,\"prefetch\":\"%s\",\"mr_stats\":%s,"
		       "\"rc_odp_caps\":%u,\"uc_odp_caps\":%u,\"ud_odp_caps\":%u,"
		       "\"xrc_odp_caps\":%u,\"mirror_page_sizes\":%" PRIu64 "}}\n",
		       c->dev_name, prov, (a.flags & HMMV_DEVICE_HMM) ? "true" : "false",
		       (a.flags & HMMV_DEVICE_ODP) ? "true" : "false",
		       (a.flags & HMMV_DEVICE_ODP_IMPLICIT) ? "true" : "false", prefetch,
		       (a.flags & HMMV_DEVICE_MR_STATS) ? "true" : "false", a.rc_odp_caps,
		       a.uc_odp_caps, a.ud_odp_caps, a.xrc_odp_caps, a.mirror_page_sizes);
		return;
	}
	printf("%s: backend %s%s; ODP %s, implicit %s, prefetch %s; RC %s; UD %s\n", c->dev_name,
	       prov, (a.flags & HMMV_DEVICE_HMM) ? " (ib_hmm mirror)" : "",
	       (a.flags & HMMV_DEVICE_ODP) ? "yes" : "no",
	       (a.flags & HMMV_DEVICE_ODP_IMPLICIT) ? "yes" : "no", prefetch,
	       odp_ops(a.rc_odp_caps, rc, sizeof(rc)), odp_ops(a.ud_odp_caps, ud, sizeof(ud)));
}

static int sample(struct ctx *c, struct ibv_device **list, const char *only)
{
	int err, shown = 0;

	c->rows = 0;
	c->ncur = 0;
	for (int i = 0; list[i]; i++) {
		int index = ibv_get_device_index(list[i]);

		c->dev_name = ibv_get_device_name(list[i]);
		if ((only && strcmp(only, c->dev_name)) || index < 0)
			continue;
		shown++;
		print_caps(c, list[i]);
		c->dev_rows = 0;
		err = hmmv_nl_mr_dump(index, print_mr, c);
		if (err) {
			fprintf(stderr, "hmmv-stat: %s: %s\n", c->dev_name, strerror(err));
			return 1;
		}
	}
	if (!c->json && !c->rows)
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
