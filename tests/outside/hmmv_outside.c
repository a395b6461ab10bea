// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * A program as somebody outside the project would write it: it knows only the installed
 * <infiniband/hmmverbs.h> and is built with `pkg-config --cflags --libs hmmverbs` (see the
 * Makefile next to it). In one process, two RC QPs of one device are connected to each other;
 * one implicit ODP MR then carries RDMA writes and reads between a malloc'd, an mmap'd and a
 * stack buffer, an explicit ODP MR is prefetched before use, and the MRs' counters are read
 * back. Every byte moved is checked.
 *
 *   hmmv_outside [-d DEVICE]   exit 0: all correct; 2: the device has no implicit ODP; 1: error
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <infiniband/hmmverbs.h>

#define ACCESS (IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ)

static struct ibv_cq *cq;

static int die(const char *what, int err)
{
	fprintf(stderr, "hmmv_outside: %s: %s\n", what, strerror(err));
	return 1;
}

/* Find the device's RoCE v2 GID with an IPv4 address; -1 if there is none. */
static int roce_v2_ipv4_gid(struct ibv_context *ctx)
{
	static const uint8_t v4_prefix[12] = { [10] = 0xff, [11] = 0xff };
	struct ibv_gid_entry e;
	int i;

	for (i = 0; i < 16; i++)
		if (!ibv_query_gid_ex(ctx, 1, i, &e, 0) && e.gid_type == IBV_GID_TYPE_ROCE_V2 &&
		    !memcmp(e.gid.raw, v4_prefix, sizeof(v4_prefix)))
			return i;
	return -1;
}

static struct ibv_qp *make_qp(struct ibv_pd *pd)
{
	struct ibv_qp_init_attr init = {
		.send_cq = cq, .recv_cq = cq, .qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = 4, .max_recv_wr = 4, .max_send_sge = 1,
			 .max_recv_sge = 1 },
	};
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_INIT, .port_num = 1,
				 .qp_access_flags = ACCESS };
	struct ibv_qp *qp = ibv_create_qp(pd, &init);

	if (qp && ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
				IBV_QP_ACCESS_FLAGS)) {
		ibv_destroy_qp(qp);
		return NULL;
	}
	return qp;
}

/* Take qp to RTS, talking to the QP numbered dest on the same port and GID. */
static int connect_qp(struct ibv_qp *qp, uint32_t dest, int gid_index, union ibv_gid *gid)
{
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_RTR, .path_mtu = IBV_MTU_1024, .dest_qp_num = dest,
		.max_dest_rd_atomic = 1, .min_rnr_timer = 12,
		.ah_attr = { .is_global = 1, .port_num = 1,
			     .grh = { .dgid = *gid, .sgid_index = gid_index, .hop_limit = 1 } },
	};

	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
			  IBV_QP_DEST_QPN | IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC |
			  IBV_QP_MIN_RNR_TIMER))
		return errno;
	a.qp_state = IBV_QPS_RTS;
	a.timeout = 14;
	a.retry_cnt = 7;
	a.rnr_retry = 7;
	a.max_rd_atomic = 1;
	return ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
			     IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC) ? errno : 0;
}

/* One RDMA operation of len bytes from local (lkey) to/from remote (rkey), waited for. */
static int rdma(struct ibv_qp *qp, enum ibv_wr_opcode op, void *local, uint32_t lkey,
		void *remote, uint32_t rkey, size_t len)
{
	struct ibv_sge sge = { .addr = (uintptr_t)local, .length = (uint32_t)len, .lkey = lkey };
	struct ibv_send_wr wr = { .sg_list = &sge, .num_sge = 1, .opcode = op,
				  .send_flags = IBV_SEND_SIGNALED,
				  .wr.rdma = { .remote_addr = (uintptr_t)remote, .rkey = rkey } };
	struct ibv_send_wr *bad;
	struct ibv_wc wc;
	int n, spins = 0;

	if (ibv_post_send(qp, &wr, &bad))
		return die("ibv_post_send", errno);
	while ((n = ibv_poll_cq(cq, 1, &wc)) == 0) {
		if (++spins > 200000)
			return die("waiting for a completion", ETIMEDOUT);
		usleep(50);
	}
	if (n < 0 || wc.status != IBV_WC_SUCCESS) {
		fprintf(stderr, "hmmv_outside: %s of %zu bytes: %s\n",
			op == IBV_WR_RDMA_WRITE ? "RDMA write" : "RDMA read", len,
			n < 0 ? "poll failed" : ibv_wc_status_str(wc.status));
		return 1;
	}
	return 0;
}

static void fill(unsigned char *p, size_t len, unsigned int seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)(seed + i * 7 + (i >> 9));
}

static int check(const char *what, const unsigned char *p, size_t len, unsigned int seed)
{
	for (size_t i = 0; i < len; i++) {
		if (p[i] != (unsigned char)(seed + i * 7 + (i >> 9))) {
			fprintf(stderr, "hmmv_outside: %s: byte %zu wrong\n", what, i);
			return 1;
		}
	}
	printf("%s: %zu bytes correct\n", what, len);
	return 0;
}

static void print_stats(const char *name, struct ibv_mr *mr, struct hmmv_mr_stats *s)
{
	int err;

	s->comp_mask = HMMV_MR_STATS_MASK_MIRROR;
	err = hmmv_query_mr_stats(mr, s);
	if (err) {
		printf("%s MR counters: %s\n", name, strerror(err));
		return;
	}
	printf("%s MR counters: faults %llu (%llu handled), invalidations %llu, prefetched %llu",
	       name, (unsigned long long)s->page_faults,
	       (unsigned long long)s->page_faults_handled,
	       (unsigned long long)s->page_invalidations, (unsigned long long)s->page_prefetch);
	if (s->comp_mask & HMMV_MR_STATS_MASK_MIRROR)
		printf(", %llu pages mapped, %llu mirror bytes",
		       (unsigned long long)s->mapped_pages, (unsigned long long)s->mirror_bytes);
	printf("\n");
}

int main(int argc, char **argv)
{
	const char *want = argc == 3 && !strcmp(argv[1], "-d") ? argv[2] : NULL;
	const size_t heap_len = 100000, map_len = 1 << 20, odp_len = 256 << 10;
	struct ibv_device **list = ibv_get_device_list(NULL), *dev = NULL;
	struct hmmv_device_attr attr = { .comp_mask = HMMV_DEVICE_ATTR_MASK_ALL };
	struct hmmv_mr_stats st, odp_st;
	unsigned char stack_buf[3000], *heap, *map, *odp_buf;
	struct ibv_mr *imr, *odp_mr;
	struct ibv_qp *qa, *qb;
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	union ibv_gid gid;
	int gid_index, err, rc = 0;

	if (argc != 1 && !want) {
		fprintf(stderr, "usage: hmmv_outside [-d DEVICE]\n");
		return 1;
	}
	for (int i = 0; list && list[i] && !dev; i++)
		if (want ? !strcmp(ibv_get_device_name(list[i]), want) : hmmv_is_supported(list[i]))
			dev = list[i];
	if (!dev) {
		fprintf(stderr, "hmmv_outside: no %s device\n", want ? want : "ODP-capable");
		return want ? 1 : 2;
	}
	ctx = ibv_open_device(dev);
	if (!ctx)
		return die("ibv_open_device", errno);
	err = hmmv_query_device(ctx, &attr);
	if (err)
		return die("hmmv_query_device", err);
	printf("%s: ODP %s, implicit %s, prefetch %s\n", ibv_get_device_name(dev),
	       attr.flags & HMMV_DEVICE_ODP ? "yes" : "no",
	       attr.flags & HMMV_DEVICE_ODP_IMPLICIT ? "yes" : "no",
	       attr.flags & HMMV_DEVICE_PREFETCH ? "yes" : "no");

	pd = ibv_alloc_pd(ctx);
	if (!pd)
		return die("ibv_alloc_pd", errno);
	imr = hmmv_reg_implicit_mr(pd, ACCESS);
	if (!imr) {
		err = errno;
		fprintf(stderr, "hmmv_outside: no implicit ODP MR on %s: %s\n",
			ibv_get_device_name(dev), strerror(err));
		return err == EOPNOTSUPP ? 2 : 1;
	}

	cq = ibv_create_cq(ctx, 8, NULL, NULL, 0);
	gid_index = roce_v2_ipv4_gid(ctx);
	if (!cq || gid_index < 0 || ibv_query_gid(ctx, 1, gid_index, &gid))
		return die("CQ or RoCE v2 IPv4 GID", cq ? ENODEV : errno);
	qa = make_qp(pd);
	qb = make_qp(pd);
	if (!qa || !qb)
		return die("creating the QPs", errno);
	err = connect_qp(qa, qb->qp_num, gid_index, &gid);
	if (!err)
		err = connect_qp(qb, qa->qp_num, gid_index, &gid);
	if (err)
		return die("connecting the QPs", err);

	/* Three unrelated buffers, none registered on its own; the mmap'd one never touched. */
	heap = malloc(heap_len);
	map = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!heap || map == MAP_FAILED)
		return die("allocating buffers", ENOMEM);
	fill(heap, heap_len, 11);
	fill(stack_buf, sizeof(stack_buf), 23);
	rc = rdma(qa, IBV_WR_RDMA_WRITE, heap, imr->lkey, map + 4093, imr->rkey, heap_len);
	rc = rc ?: check("malloc -> untouched mmap (RDMA write)", map + 4093, heap_len, 11);
	rc = rc ?: rdma(qb, IBV_WR_RDMA_WRITE, stack_buf, imr->lkey, map + 500000, imr->rkey,
			 sizeof(stack_buf));
	memset(stack_buf, 0, sizeof(stack_buf));
	rc = rc ?: rdma(qa, IBV_WR_RDMA_READ, stack_buf, imr->lkey, map + 500000, imr->rkey,
			 sizeof(stack_buf));
	rc = rc ?: check("stack -> mmap -> stack (RDMA write, read)", stack_buf,
			  sizeof(stack_buf), 23);

	/* An explicit ODP range, prefetched before the first RDMA write lands in it. */
	odp_buf = mmap(NULL, odp_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	odp_mr = odp_buf == MAP_FAILED ? NULL : hmmv_reg_odp_mr(pd, odp_buf, odp_len, ACCESS);
	if (!odp_mr)
		return die("hmmv_reg_odp_mr", errno);
	if (attr.flags & HMMV_DEVICE_PREFETCH) {
		struct ibv_sge sge = { .addr = (uintptr_t)odp_buf, .length = (uint32_t)odp_len,
				       .lkey = odp_mr->lkey };

		err = hmmv_advise_mr(pd, IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE,
				     IBV_ADVISE_MR_FLAG_FLUSH, &sge, 1);
		if (err)
			return die("hmmv_advise_mr", err);
	}
	rc = rc ?: rdma(qb, IBV_WR_RDMA_WRITE, heap, imr->lkey, odp_buf + 1, odp_mr->rkey,
			 heap_len);
	rc = rc ?: check("malloc -> prefetched explicit ODP MR", odp_buf + 1, heap_len, 11);

	print_stats("implicit", imr, &st);
	print_stats("explicit", odp_mr, &odp_st);
	if (!rc && (attr.flags & HMMV_DEVICE_MR_STATS)) {
		/* The untouched mmap pages the first write landed in were faulted by the device;
		 * the explicit range was made present by the prefetch, all 64 pages of it. */
		if (st.page_faults < (heap_len + 4093) / 4096) {
			fprintf(stderr, "hmmv_outside: implicit MR shows %llu faults\n",
				(unsigned long long)st.page_faults);
			rc = 1;
		}
		if ((attr.flags & HMMV_DEVICE_PREFETCH) && odp_st.page_prefetch != odp_len / 4096) {
			fprintf(stderr, "hmmv_outside: explicit MR shows %llu pages prefetched\n",
				(unsigned long long)odp_st.page_prefetch);
			rc = 1;
		}
	}

	ibv_destroy_qp(qa);
	ibv_destroy_qp(qb);
	ibv_dereg_mr(odp_mr);
	ibv_dereg_mr(imr);
	ibv_destroy_cq(cq);
	ibv_dealloc_pd(pd);
	ibv_close_device(ctx);
	ibv_free_device_list(list);
	printf("%s\n", rc ? "FAILED" : "OK");
	return rc;
}
