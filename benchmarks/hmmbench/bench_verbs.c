// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/* hmmbench: the device, the QP pair, target registration and the RDMA WRITE stream. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <infiniband/hmmverbs.h>
#include <infiniband/verbs.h>

#include "hmmbench.h"
#include "rc_connect.h"
#include "roce_gid.h"

/* --- verbs --------------------------------------------------------------------------------- */

static void qp_up(struct bench *b, struct ibv_qp *qp, uint32_t dest)
{
	struct hmmv_rc_attr a = {
		.port = 1,
		.sgid_index = b->gid_index,
		.dgid = b->gid,
		.dest_qpn = dest,
		.mtu = b->mtu,
		.rd_atomic = 16,
		.min_rnr_timer = 1,
		.access = IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ,
	};
	const char *step = "";
	int err = hmmv_rc_connect(qp, &a, &step);

	if (err) {
		char what[32];

		snprintf(what, sizeof(what), "ibv_modify_qp to %s", step);
		die_err(what, err);
	}
}

static void drain_cqs(struct bench *b)
{
	struct ibv_wc wc[16];

	while (ibv_poll_cq(b->cq, 16, wc) > 0)
		;
	while (ibv_poll_cq(b->rcq, 16, wc) > 0)
		;
}

/* After an error completion both QPs are in the error state: back to RTS through RESET. */
static void pair_reset(struct bench *b)
{
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_RESET };
	int err;

	usleep(100000);		/* let the flushes land before the CQs are drained */
	err = ibv_modify_qp(b->req, &a, IBV_QP_STATE);
	if (!err)
		err = ibv_modify_qp(b->resp, &a, IBV_QP_STATE);
	if (err)
		die_err("ibv_modify_qp to RESET", err);
	drain_cqs(b);
	qp_up(b, b->req, b->resp->qp_num);
	qp_up(b, b->resp, b->req->qp_num);
}

void bench_open(struct bench *b)
{
	struct ibv_device **list = ibv_get_device_list(NULL);
	struct ibv_qp_init_attr qia = {
		.qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = 2 * WINDOW, .max_recv_wr = 1, .max_send_sge = 1,
			 .max_recv_sge = 1 },
	};
	struct ibv_port_attr pa;
	int err;

	memset(b, 0, sizeof(*b));
	if (!list)
		die_err("ibv_get_device_list", errno);
	for (int i = 0; list[i]; i++)
		if (!strcmp(ibv_get_device_name(list[i]), opt.dev))
			b->ctx = ibv_open_device(list[i]);
	ibv_free_device_list(list);
	if (!b->ctx)
		die("device %s not found or cannot be opened", opt.dev);
	b->gid_index = hmmv_roce_v2_ipv4_gid(b->ctx, opt.dev, 1, &b->gid);
	if (b->gid_index < 0)
		die("no RoCE v2 IPv4 GID on %s", opt.dev);
	err = ibv_query_port(b->ctx, 1, &pa);
	if (err)
		die_err("ibv_query_port", err);
	b->mtu = pa.active_mtu;
	b->pd = ibv_alloc_pd(b->ctx);
	if (!b->pd)
		die_err("ibv_alloc_pd", errno);
	b->cq = ibv_create_cq(b->ctx, 4 * WINDOW, NULL, NULL, 0);
	b->rcq = ibv_create_cq(b->ctx, 4 * WINDOW, NULL, NULL, 0);
	if (!b->cq || !b->rcq)
		die_err("ibv_create_cq", errno);
	qia.send_cq = b->cq;
	qia.recv_cq = b->cq;
	b->req = ibv_create_qp(b->pd, &qia);
	qia.send_cq = b->rcq;
	qia.recv_cq = b->rcq;
	b->resp = ibv_create_qp(b->pd, &qia);
	if (!b->req || !b->resp)
		die_err("ibv_create_qp", errno);
	qp_up(b, b->req, b->resp->qp_num);
	qp_up(b, b->resp, b->req->qp_num);

	b->src = xmap(WINDOW * MSG);
	b->src_mr = ibv_reg_mr(b->pd, b->src, WINDOW * MSG, IBV_ACCESS_LOCAL_WRITE);
	if (!b->src_mr)
		die_err("ibv_reg_mr of the pinned source buffer", errno);
}

void bench_close(struct bench *b)
{
	ibv_dereg_mr(b->src_mr);
	munmap(b->src, WINDOW * MSG);
	ibv_destroy_qp(b->req);
	ibv_destroy_qp(b->resp);
	ibv_destroy_cq(b->cq);
	ibv_destroy_cq(b->rcq);
	ibv_dealloc_pd(b->pd);
	ibv_close_device(b->ctx);
}

/* An MR over [@p, @p + @len) in the mode under test (implicit: the whole address space). */
struct ibv_mr *reg_target(struct bench *b, void *p, size_t len)
{
	switch (opt.mode) {
	case M_PINNED:
		return ibv_reg_mr(b->pd, p, len, ACCESS);
	case M_ODP:
		return hmmv_reg_odp_mr(b->pd, p, len, ACCESS);
	case M_IMPLICIT:
	default:
		return hmmv_reg_implicit_mr(b->pd, ACCESS);
	}
}

struct ibv_mr *xreg_target(struct bench *b, void *p, size_t len)
{
	struct ibv_mr *mr = reg_target(b, p, len);

	if (!mr)
		die_err("registration of the target", errno);
	return mr;
}

void xdereg(struct ibv_mr *mr)
{
	int err = ibv_dereg_mr(mr);

	if (err)
		die_err("ibv_dereg_mr", err);
}

/* The MR's counters with the mirror fields; 0 or an errno value (said once). */
int mr_stats(struct bench *b, struct ibv_mr *mr, struct hmmv_mr_stats *s)
{
	int err;

	memset(s, 0, sizeof(*s));
	s->comp_mask = HMMV_MR_STATS_MASK_MIRROR;
	err = hmmv_query_mr_stats(mr, s);
	if (err && !b->stats_noted) {
		note("hmmv_query_mr_stats: %s (%s): no MR counters in this mode", strerror(err),
		     strerrorname_np(err) ?: "?");
		b->stats_noted = true;
	}
	return err;
}

bool has_mirror(const struct hmmv_mr_stats *s)
{
	return s->comp_mask & HMMV_MR_STATS_MASK_MIRROR;
}

/* Prefetch-write [@p, @p + @len) through @mr, synchronously: 0 or an errno value. */
int prefetch(struct bench *b, struct ibv_mr *mr, void *p, uint64_t len)
{
	struct ibv_sge sge = { .addr = (uintptr_t)p, .length = (uint32_t)len, .lkey = mr->lkey };

	if (len > UINT32_MAX)
		return EINVAL;
	return hmmv_advise_mr(b->pd, IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE, IBV_ADVISE_MR_FLAG_FLUSH,
			      &sge, 1);
}

/*
 * RDMA WRITE of @nmsg messages of @msglen bytes (at most MSG, a multiple of PAGE) to
 * @raddr + k * @stride, WINDOW outstanding, every one signalled; the data is what
 * check_msgs() expects for @seed. After the first error completion no more is posted, the
 * rest is waited for, and the QPs are reset. Returns true when every message completed well.
 */
bool write_msgs(struct bench *b, uint64_t raddr, uint32_t rkey, uint64_t nmsg,
		uint64_t stride, uint64_t msglen, uint32_t seed, struct xfer *x)
{
	uint32_t free_slots[WINDOW], nfree = WINDOW;
	uint64_t posted = 0, done = 0, limit = nmsg;
	double t0, last;

	memset(x, 0, sizeof(*x));
	for (uint64_t w = 0; w < WINDOW * MSG / 8; w++)
		b->src[w] = pat(w % (MSG / 8), seed);
	for (uint32_t i = 0; i < WINDOW; i++)
		free_slots[i] = i;
	t0 = now_s();
	last = t0;
	while (done < posted || posted < limit) {
		struct ibv_wc wc[WINDOW];
		int n;

		while (nfree && posted < limit) {
			uint32_t slot = free_slots[--nfree];
			uint64_t *s = b->src + slot * (MSG / 8);
			uint64_t dst = raddr + posted * stride;
			struct ibv_sge sge = { .addr = (uintptr_t)s, .length = (uint32_t)msglen,
					       .lkey = b->src_mr->lkey };
			struct ibv_send_wr wr = {
				.wr_id = slot,
				.sg_list = &sge,
				.num_sge = 1,
				.opcode = IBV_WR_RDMA_WRITE,
				.send_flags = IBV_SEND_SIGNALED,
				.wr.rdma = { .remote_addr = dst, .rkey = rkey },
			}, *bad;
			int err;

			for (uint64_t pg = 0; pg < msglen / PAGE; pg++)
				s[pg * PAGE_WORDS] = stamp(dst + pg * PAGE, seed);
			err = ibv_post_send(b->req, &wr, &bad);
			if (err)
				die_err("ibv_post_send", err);
			posted++;
		}
		n = ibv_poll_cq(b->cq, WINDOW, wc);
		if (n < 0)
			die("ibv_poll_cq failed");
		for (int i = 0; i < n; i++) {
			free_slots[nfree++] = (uint32_t)wc[i].wr_id;
			done++;
			if (wc[i].status == IBV_WC_SUCCESS) {
				x->bytes += msglen;
				continue;
			}
			if (!x->wc_errors++)
				x->first_status = wc[i].status;
			limit = posted;
		}
		if (n) {
			last = now_s();
		} else if (now_s() - last > CQ_TIMEOUT_S) {
			fprintf(stderr, "hmmbench: %s: no completion for %d s (%" PRIu64
				" of %" PRIu64 " posted messages done)\n", opt.mode_name,
				CQ_TIMEOUT_S, done, posted);
			if (!x->wc_errors++)
				x->first_status = IBV_WC_RESP_TIMEOUT_ERR;
			break;
		}
	}
	x->secs = now_s() - t0;
	if (x->wc_errors) {
		pair_reset(b);
		return false;
	}
	return true;
}

double mbps(const struct xfer *x)
{
	return x->secs > 0 ? (double)x->bytes / x->secs / 1e6 : 0;
}

const char *wc_str(const struct xfer *x)
{
	return ibv_wc_status_str(x->first_status);
}
