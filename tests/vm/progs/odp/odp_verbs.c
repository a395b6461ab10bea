// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * hmmv_odp_test: the verbs side — device, loopback QP pairs (RC, RC with SRQ, UD), MRs of each
 * kind, one operation at a time with a completion timeout, and byte checks.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "odp.h"
#include "rc_connect.h"
#include "roce_gid.h"

#define QKEY 0x11111111
#define CQ_DEPTH 512

int env_open(struct env *e, const char *dev, enum kind kind)
{
	struct ibv_device **list = ibv_get_device_list(NULL);
	struct ibv_port_attr pa;

	memset(e, 0, sizeof(*e));
	e->dev = dev;
	e->kind = kind;
	if (!list)
		return tfail("ibv_get_device_list: %s", strerror(errno));
	for (int i = 0; list[i]; i++)
		if (!strcmp(ibv_get_device_name(list[i]), dev))
			e->ctx = ibv_open_device(list[i]);
	ibv_free_device_list(list);
	if (!e->ctx)
		return tfail("device %s not found or not openable", dev);
	e->gid_index = hmmv_roce_v2_ipv4_gid(e->ctx, e->dev, 1, &e->gid);
	if (e->gid_index < 0)
		return tfail("no RoCE v2 IPv4 GID on %s", dev);
	if (ibv_query_port(e->ctx, 1, &pa))
		return tfail("ibv_query_port: %s", strerror(errno));
	e->mtu = pa.active_mtu;
	e->pd = ibv_alloc_pd(e->ctx);
	e->scq = ibv_create_cq(e->ctx, CQ_DEPTH, NULL, NULL, 0);
	e->rcq = ibv_create_cq(e->ctx, CQ_DEPTH, NULL, NULL, 0);
	if (!e->pd || !e->scq || !e->rcq)
		return tfail("pd/cq: %s", strerror(errno));
	if (pair_create(e, &e->rc, IBV_QPT_RC, false))
		return T_FAIL;
	if (kind == K_IMPLICIT) {
		e->implicit = ibv_reg_mr(e->pd, NULL, SIZE_MAX, ACC_ALL | IBV_ACCESS_ON_DEMAND);
		if (!e->implicit)
			return tfail("implicit ODP registration (NULL, SIZE_MAX): %s", strerror(errno));
	}
	return T_PASS;
}

void env_close(struct env *e)
{
	pair_destroy(&e->rc);
	if (e->implicit)
		ibv_dereg_mr(e->implicit);
	if (e->scq)
		ibv_destroy_cq(e->scq);
	if (e->rcq)
		ibv_destroy_cq(e->rcq);
	if (e->pd)
		ibv_dealloc_pd(e->pd);
	if (e->ctx)
		ibv_close_device(e->ctx);
}

static int qp_up(struct env *e, struct pair *p, struct ibv_qp *qp, uint32_t dest)
{
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_INIT, .port_num = 1, .qkey = QKEY };
	const char *step = "";

	if (p->type == IBV_QPT_RC) {
		struct hmmv_rc_attr rc = {
			.port = 1,
			.sgid_index = e->gid_index,
			.dgid = e->gid,
			.dest_qpn = dest,
			.mtu = e->mtu,
			.rd_atomic = 16,
			.min_rnr_timer = 1,
			.access = IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ |
				  IBV_ACCESS_REMOTE_ATOMIC,
			/*
			 * 1 s, not 67 ms: on the debug kernel (KASAN under TCG) a faulting
			 * responder often takes longer than 67 ms and the requester
			 * retransmits. When a fault then failed (fault injection), the write
			 * sometimes never completed: rxe takes 7 retries as "forever", and its
			 * completer_retry_err counter kept growing. With 1 s there were no
			 * retransmissions and every failure completed with REM_ACCESS_ERR.
			 */
			.timeout = 18,
		};
		int err = hmmv_rc_connect(qp, &rc, &step);

		return err ? tfail("modify_qp %s: %s", step, strerror(err)) : 0;
	}
	/* UD: the peer is in each work request; the QP needs its Q_Key and the states only. */
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_QKEY))
		return tfail("modify_qp INIT: %s", strerror(errno));
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTR;
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE))
		return tfail("modify_qp RTR: %s", strerror(errno));
	a.qp_state = IBV_QPS_RTS;
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN))
		return tfail("modify_qp RTS: %s", strerror(errno));
	return 0;
}

static int pair_up(struct env *e, struct pair *p)
{
	if (qp_up(e, p, p->req, p->resp->qp_num) || qp_up(e, p, p->resp, p->req->qp_num))
		return -1;
	return 0;
}

int pair_create(struct env *e, struct pair *p, enum ibv_qp_type type, bool srq)
{
	struct ibv_qp_init_attr qia = {
		.send_cq = e->scq,
		.recv_cq = e->scq,
		.qp_type = type,
		.cap = { .max_send_wr = 256, .max_recv_wr = 256, .max_send_sge = 1, .max_recv_sge = 1 },
	};

	memset(p, 0, sizeof(*p));
	p->type = type;
	p->req = ibv_create_qp(e->pd, &qia);
	if (srq) {
		struct ibv_srq_init_attr sia = { .attr = { .max_wr = 64, .max_sge = 1 } };

		p->srq = ibv_create_srq(e->pd, &sia);
		if (!p->srq)
			return tfail("ibv_create_srq: %s", strerror(errno));
		qia.srq = p->srq;
	}
	qia.send_cq = e->rcq;
	qia.recv_cq = e->rcq;
	p->resp = ibv_create_qp(e->pd, &qia);
	if (!p->req || !p->resp)
		return tfail("ibv_create_qp: %s", strerror(errno));
	if (type == IBV_QPT_UD) {
		struct ibv_ah_attr aa = {
			.is_global = 1,
			.grh = { .dgid = e->gid, .sgid_index = e->gid_index, .hop_limit = 64 },
			.port_num = 1,
		};

		p->ah = ibv_create_ah(e->pd, &aa);
		if (!p->ah)
			return tfail("ibv_create_ah: %s", strerror(errno));
	}
	return pair_up(e, p);
}

void pair_destroy(struct pair *p)
{
	if (p->req)
		ibv_destroy_qp(p->req);
	if (p->resp)
		ibv_destroy_qp(p->resp);
	if (p->srq)
		ibv_destroy_srq(p->srq);
	if (p->ah)
		ibv_destroy_ah(p->ah);
	memset(p, 0, sizeof(*p));
}

void drain_cqs(struct env *e)
{
	struct ibv_wc wc[16];

	while (ibv_poll_cq(e->scq, 16, wc) > 0)
		;
	while (ibv_poll_cq(e->rcq, 16, wc) > 0)
		;
}

/* After an error completion both QPs are in the error state: back to RTS through RESET. */
int pair_reset(struct env *e, struct pair *p)
{
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_RESET };

	/* Let the flushes land before the CQs are drained. */
	usleep(100000);
	if (ibv_modify_qp(p->req, &a, IBV_QP_STATE) || ibv_modify_qp(p->resp, &a, IBV_QP_STATE))
		return tfail("modify_qp RESET: %s", strerror(errno));
	drain_cqs(e);
	return pair_up(e, p);
}

void *map_anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* Anonymous memory starting at a multiple of @align; the rest of the reservation is unmapped. */
void *map_aligned(size_t len, size_t align)
{
	uint8_t *p = mmap(NULL, len + align, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			  -1, 0);
	uintptr_t a;

	if (p == MAP_FAILED)
		return NULL;
	a = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
	if (a > (uintptr_t)p)
		munmap(p, a - (uintptr_t)p);
	munmap((void *)(a + len), (uintptr_t)p + len + align - (a + len));
	return (void *)a;
}

/* An address range that is free now (nothing mapped there). */
void *reserve_va(size_t len)
{
	void *p = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	munmap(p, len);
	return p;
}

struct ibv_mr *mr_get(struct env *e, enum kind kind, void *addr, size_t len, int access)
{
	switch (kind) {
	case K_PINNED:
		return ibv_reg_mr(e->pd, addr, len, access);
	case K_ODP:
		return ibv_reg_mr(e->pd, addr, len, access | IBV_ACCESS_ON_DEMAND);
	case K_IMPLICIT:
		if (!e->implicit) {
			e->implicit = ibv_reg_mr(e->pd, NULL, SIZE_MAX, ACC_ALL | IBV_ACCESS_ON_DEMAND);
			if (!e->implicit)
				return NULL;
		}
		return e->implicit;
	default:
		errno = EINVAL;
		return NULL;
	}
}

void mr_put(struct env *e, struct ibv_mr *mr)
{
	if (mr && mr != e->implicit)
		ibv_dereg_mr(mr);
}

int lbuf_get(struct env *e, struct lbuf *b, size_t len, enum kind kind)
{
	memset(b, 0, sizeof(*b));
	b->len = len;
	b->p = map_anon(len);
	if (!b->p)
		return tfail("mmap of a %zu-byte local buffer: %s", len, strerror(errno));
	b->mr = mr_get(e, kind, b->p, len, IBV_ACCESS_LOCAL_WRITE);
	if (!b->mr)
		return tfail("registration of a %zu-byte local %s buffer: %s", len, kind_names[kind],
			     strerror(errno));
	b->own_mr = b->mr != e->implicit;
	return 0;
}

void lbuf_put(struct env *e, struct lbuf *b)
{
	mr_put(e, b->mr);
	if (b->p)
		munmap(b->p, b->len);
	memset(b, 0, sizeof(*b));
}

const char *st_str(int st)
{
	if (st == XFER_TIMEOUT)
		return "no completion (timeout)";
	if (st == XFER_POSTERR)
		return "post failed";
	return ibv_wc_status_str(st);
}

/* Wait for one completion on @cq; the status, or XFER_TIMEOUT. */
int wait_wc(struct env *e, struct ibv_cq *cq, struct ibv_wc *wc, unsigned int secs)
{
	struct timespec t0, now;

	(void)e;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		int n = ibv_poll_cq(cq, 1, wc);

		if (n < 0)
			return XFER_POSTERR;
		if (n == 1)
			return wc->status;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec > (time_t)secs)
			return XFER_TIMEOUT;
		if (now.tv_sec - t0.tv_sec >= 1)
			usleep(1000);
	}
}

/*
 * Time allowed for one operation before it counts as lost: TCG is slow, large messages more
 * so, and the debug kernel beside another VM most (a 64 KiB read during compaction on
 * 6.12-debug took more than 20 s in one CI run). A lost completion still fails.
 */
static unsigned int op_secs(size_t len)
{
	return 60 + (unsigned int)(len / MIB);
}

/* Post one RDMA write or read of @len bytes at @raddr without waiting for its completion. */
int post_wr(struct ibv_qp *qp, enum ibv_wr_opcode op, void *laddr, uint32_t lkey, size_t len,
	    const void *raddr, uint32_t rkey, uint64_t id, bool signaled)
{
	struct ibv_sge sge = { .addr = (uintptr_t)laddr, .length = (uint32_t)len, .lkey = lkey };
	struct ibv_send_wr wr = {
		.wr_id = id,
		.sg_list = &sge,
		.num_sge = 1,
		.opcode = op,
		.send_flags = signaled ? IBV_SEND_SIGNALED : 0,
	}, *bad;

	wr.wr.rdma.remote_addr = (uintptr_t)raddr;
	wr.wr.rdma.rkey = rkey;
	return ibv_post_send(qp, &wr, &bad);
}

/* One operation on p->req, signalled and waited for: the completion status or XFER_*. */
int xfer(struct env *e, struct pair *p, enum ibv_wr_opcode op, void *laddr, uint32_t lkey,
	 size_t len, uint64_t raddr, uint32_t rkey, uint64_t cmp_add, uint64_t swap)
{
	struct ibv_sge sge = { .addr = (uintptr_t)laddr, .length = (uint32_t)len, .lkey = lkey };
	struct ibv_send_wr wr = {
		.wr_id = 1,
		.sg_list = &sge,
		.num_sge = 1,
		.opcode = op,
		.send_flags = IBV_SEND_SIGNALED,
	}, *bad;
	struct ibv_wc wc;

	if (op == IBV_WR_ATOMIC_CMP_AND_SWP || op == IBV_WR_ATOMIC_FETCH_AND_ADD) {
		wr.wr.atomic.remote_addr = raddr;
		wr.wr.atomic.rkey = rkey;
		wr.wr.atomic.compare_add = cmp_add;
		wr.wr.atomic.swap = swap;
	} else if (p->type == IBV_QPT_UD) {
		wr.wr.ud.ah = p->ah;
		wr.wr.ud.remote_qpn = p->resp->qp_num;
		wr.wr.ud.remote_qkey = QKEY;
	} else {
		wr.wr.rdma.remote_addr = raddr;
		wr.wr.rdma.rkey = rkey;
	}
	errno = ibv_post_send(p->req, &wr, &bad);
	if (errno) {
		tnote("ibv_post_send: %s", strerror(errno));
		return XFER_POSTERR;
	}
	return wait_wc(e, e->scq, &wc, op_secs(len));
}

int post_recv(struct pair *p, void *addr, uint32_t lkey, size_t len)
{
	struct ibv_sge sge = { .addr = (uintptr_t)addr, .length = (uint32_t)len, .lkey = lkey };
	struct ibv_recv_wr wr = { .wr_id = 2, .sg_list = &sge, .num_sge = 1 }, *bad;

	errno = p->srq ? ibv_post_srq_recv(p->srq, &wr, &bad) : ibv_post_recv(p->resp, &wr, &bad);
	if (errno)
		return tfail("post recv: %s", strerror(errno));
	return 0;
}

int expect_ok(int st, const char *what)
{
	if (st == IBV_WC_SUCCESS)
		return 0;
	return tfail("%s: %s (%d)", what, st_str(st), st);
}

int expect_err(int st, enum ibv_wc_status want, const char *what)
{
	if (st == (int)want)
		return 0;
	return tfail("%s: %s (%d), expected %s", what, st_str(st), st, ibv_wc_status_str(want));
}

uint8_t pattern(size_t i, unsigned int seed)
{
	uint8_t v = (uint8_t)((i * 131 + seed * 17 + 1) ^ (i >> 8) ^ (i >> 16) ^ (seed >> 3));

	return v ? v : 0x5a;	/* never zero: zero is what untouched memory holds */
}

void fill(uint8_t *p, size_t len, unsigned int seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = pattern(i, seed);
}

/*
 * @buf[0, @len): the message, pattern @seed, at [@off, @off + @msg); every other byte is
 * @outside (-1 for @seed: outside bytes are not checked).
 */
int check_region(const char *what, const uint8_t *buf, size_t len, size_t off, size_t msg,
		 int seed, uint8_t outside)
{
	size_t bad = 0, first = SIZE_MAX, first_out = SIZE_MAX, bad_out = 0;

	for (size_t i = 0; i < msg; i++) {
		if (buf[off + i] != pattern(i, seed)) {
			if (first == SIZE_MAX)
				first = i;
			bad++;
		}
	}
	for (size_t i = 0; i < len; i++) {
		if (msg && i == off) {
			i += msg - 1;
			continue;
		}
		if (buf[i] != outside) {
			if (first_out == SIZE_MAX)
				first_out = i;
			bad_out++;
		}
	}
	if (bad) {
		/* Where did the message go? Look for its start elsewhere in the buffer. */
		uint8_t head[16];
		size_t hl = msg < sizeof(head) ? msg : sizeof(head), found = SIZE_MAX;
		size_t last_ok = 0;

		for (size_t i = 0; i < hl; i++)
			head[i] = pattern(i, seed);
		for (size_t i = 0; hl >= 8 && i + hl <= len; i++)
			if (!memcmp(buf + i, head, hl)) {
				found = i;
				break;
			}
		for (size_t i = 0; i < msg; i++)
			if (buf[off + i] == pattern(i, seed))
				last_ok = i + 1;
		tnote("%s: message head found at buffer byte %s%zu (want %zu); last matching byte %zu",
		      what, found == SIZE_MAX ? "(none) " : "", found == SIZE_MAX ? 0 : found, off, last_ok);
		return tfail("%s: %zu of %zu bytes differ, first at byte %zu (got 0x%02x, want 0x%02x)",
			     what, bad, msg, first, buf[off + first], pattern(first, seed));
	}
	if (bad_out)
		return tfail("%s: %zu bytes outside the message changed, first at buffer byte %zu "
			     "(message at %zu..%zu; got 0x%02x, want 0x%02x)", what, bad_out, first_out,
			     off, off + msg, buf[first_out], outside);
	return 0;
}

int check_pattern(const char *what, const uint8_t *p, size_t len, int seed)
{
	return check_region(what, p, len, 0, len, seed, 0);
}

/* @p[0, @n) holds bytes @base.. of the pattern @seed (a window into a filled buffer). */
int check_slice(const char *what, const uint8_t *p, size_t n, size_t base, int seed)
{
	size_t bad = 0, first = SIZE_MAX;

	for (size_t i = 0; i < n; i++) {
		if (p[i] != pattern(base + i, seed)) {
			if (first == SIZE_MAX)
				first = i;
			bad++;
		}
	}
	if (bad)
		return tfail("%s: %zu of %zu bytes differ, first at byte %zu (got 0x%02x, want 0x%02x)",
			     what, bad, n, first, p[first], pattern(base + first, seed));
	return 0;
}

int check_zero(const char *what, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return tfail("%s: byte %zu is 0x%02x, want 0", what, i, p[i]);
	return 0;
}

/* Shortcuts: RDMA write/read on the default pair between a local buffer and a target. */
int wr(struct env *e, struct lbuf *l, size_t loff, size_t len, const void *raddr, uint32_t rkey)
{
	return xfer(e, &e->rc, IBV_WR_RDMA_WRITE, l->p + loff, l->mr->lkey, len, (uintptr_t)raddr,
		    rkey, 0, 0);
}

int rd(struct env *e, struct lbuf *l, size_t loff, size_t len, const void *raddr, uint32_t rkey)
{
	return xfer(e, &e->rc, IBV_WR_RDMA_READ, l->p + loff, l->mr->lkey, len, (uintptr_t)raddr,
		    rkey, 0, 0);
}

/*
 * The device still moves data correctly for this kind: after the QPs are reset, a checked write
 * into a fresh MR and a checked read back.
 */
int sanity(struct env *e, const char *after)
{
	const size_t len = 4 * PAGE, off = 3, msg = 4097;
	uint8_t *t = map_anon(len);
	struct ibv_mr *mr;
	struct lbuf l;
	char what[160];
	int rc = T_FAIL;

	snprintf(what, sizeof(what), "a normal transfer after %s", after);
	if (!t)
		return tfail("mmap: %s", strerror(errno));
	if (pair_reset(e, &e->rc))
		return T_FAIL;
	mr = mr_get(e, e->kind, t, len, ACC_ALL);
	if (!mr)
		return tfail("%s: registration: %s", what, strerror(errno));
	if (lbuf_get(e, &l, msg, K_PINNED))
		return T_FAIL;
	fill(l.p, msg, 99);
	if (!expect_ok(wr(e, &l, 0, msg, t + off, mr->rkey), what) &&
	    !check_region(what, t, len, off, msg, 99, 0)) {
		memset(l.p, 0, msg);
		if (!expect_ok(rd(e, &l, 0, msg, t + off, mr->rkey), what) &&
		    !check_pattern(what, l.p, msg, 99))
			rc = T_PASS;
	}
	lbuf_put(e, &l);
	mr_put(e, mr);
	munmap(t, len);
	return rc;
}

/* Reap child @pid, which must have exited with status 0. */
int child_wait(pid_t pid, const char *what)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		return tfail("waitpid(%s): %s", what, strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return tfail("%s failed (status 0x%x)", what, status);
	return 0;
}
