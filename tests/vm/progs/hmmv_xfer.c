// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * hmmv_xfer: RC transfers between two processes with every byte checked from the CPU side.
 *
 *   server: hmmv_xfer [options]
 *   client: hmmv_xfer [options] SERVER_ADDR
 *
 * The client drives; for each operation and iteration it tells the server over a TCP control
 * connection what to expect, and the side that received data compares it byte for byte with
 * the pattern it must hold, including guard bytes around the target that must stay unchanged.
 * Options:
 *   -d DEV      RDMA device (default rxe0)         -g IDX   GID index (default: the RoCE v2
 *   -p PORT     TCP port (default 18600)                     GID of the device's IPv4 address)
 *   -s SIZE     message size in bytes (default 65536)
 *   -o OFFSET   offset of the message in the buffers (default 0; unaligned is allowed)
 *   -n ITERS    iterations per operation (default 4)
 *   -t OPS      comma list of send,write,read,cas,faa (default send,write,read)
 *   -m MODE     memory registration: pinned (default), odp (explicit ODP MR over the buffer),
 *               implicit (one implicit ODP MR: addr 0, length SIZE_MAX)
 *   -u          leave the receiving buffers untouched (never written by the CPU) until the
 *               transfer lands; guards are then zero
 *   -T          print timing: the first iteration's throughput (with -u: into never-touched
 *               memory) and the median of the others, per operation, as JSON lines
 * Exit status: 0 when every transfer completed and every byte matched, 1 otherwise.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include "rc_connect.h"
#include "roce_gid.h"

#define GUARD 256
#define CQ_TIMEOUT_SEC 20

enum op { OP_SEND, OP_WRITE, OP_READ, OP_CAS, OP_FAA, OP_NR };
static const char *const op_names[OP_NR] = { "send", "write", "read", "cas", "faa" };

enum mode { MODE_PINNED, MODE_ODP, MODE_IMPLICIT };

struct opts {
	const char *dev;
	int gid_index;
	int port;
	size_t size;
	size_t offset;
	int iters;
	unsigned int ops;
	enum mode mode;
	bool untouched;
	bool timing;
	const char *server;
};

/* What each side tells the other once, to connect the QPs. */
struct wire_info {
	uint32_t qpn;
	uint32_t psn;
	uint8_t gid[16];
	uint64_t addr; /* start of the peer's buffer (the message sits at addr + GUARD + offset) */
	uint32_t rkey;
	uint32_t pad;
};

/* One control message per step. */
struct ctl {
	uint32_t op;
	uint32_t iter;
	uint32_t status; /* 0 = ok */
	uint32_t pad;
};

struct ctx {
	struct opts o;
	struct ibv_context *verbs;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	struct ibv_mr *mr;
	uint8_t *buf;
	size_t buf_len;
	uint64_t *atomic_res; /* local landing spot of atomic results, inside buf's MR */
	int sock;
	struct wire_info peer;
};

static void die(const char *what)
{
	fprintf(stderr, "hmmv_xfer: %s: %s\n", what, strerror(errno));
	exit(1);
}

static uint8_t pattern(size_t i, unsigned int iter, unsigned int op)
{
	return (uint8_t)((i * 131 + iter * 17 + op * 7 + 1) ^ (i >> 8));
}

static void fill(uint8_t *p, size_t len, unsigned int iter, unsigned int op)
{
	for (size_t i = 0; i < len; i++)
		p[i] = pattern(i, iter, op);
}

/* Compare the message and the guards around it; report the first difference. */
static int check(const struct ctx *c, const char *what, unsigned int iter, unsigned int op, uint8_t guard)
{
	const uint8_t *msg = c->buf + GUARD + c->o.offset;
	size_t bad = 0, first = SIZE_MAX;

	for (size_t i = 0; i < c->o.size; i++) {
		if (msg[i] != pattern(i, iter, op)) {
			if (first == SIZE_MAX)
				first = i;
			bad++;
		}
	}
	if (bad) {
		fprintf(stderr,
			"hmmv_xfer: %s iter %u: %zu of %zu bytes differ, first at byte %zu (got 0x%02x, want 0x%02x)\n",
			what, iter, bad, c->o.size, first, msg[first], pattern(first, iter, op));
		return 1;
	}
	for (size_t i = 0; i < c->buf_len; i++) {
		size_t lo = GUARD + c->o.offset, hi = lo + c->o.size;

		if (i >= lo && i < hi)
			continue;
		if (c->buf[i] != guard && !(c->atomic_res && (uint8_t *)c->atomic_res <= c->buf + i &&
					    c->buf + i < (uint8_t *)(c->atomic_res + 1))) {
			fprintf(stderr, "hmmv_xfer: %s iter %u: guard byte %zu changed to 0x%02x\n", what,
				iter, i, c->buf[i]);
			return 1;
		}
	}
	return 0;
}

static void xsend(int fd, const void *p, size_t n)
{
	if (send(fd, p, n, MSG_NOSIGNAL) != (ssize_t)n)
		die("control send");
}

static void xrecv(int fd, void *p, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = recv(fd, (char *)p + got, n - got, 0);

		if (r <= 0) {
			errno = r ? errno : ECONNRESET;
			die("control recv");
		}
		got += r;
	}
}

static int find_gid(struct ctx *c)
{
	union ibv_gid gid;
	int i;

	if (c->o.gid_index >= 0)
		return c->o.gid_index;
	i = hmmv_roce_v2_ipv4_gid(c->verbs, c->o.dev, 1, &gid);
	if (i >= 0)
		return i;
	fprintf(stderr, "hmmv_xfer: no RoCE v2 IPv4 GID on %s (use -g)\n", c->o.dev);
	exit(1);
}

static void setup_verbs(struct ctx *c)
{
	struct ibv_device **list = ibv_get_device_list(NULL);
	int access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ |
		     IBV_ACCESS_REMOTE_ATOMIC;

	if (!list)
		die("ibv_get_device_list");
	for (int i = 0; list[i]; i++)
		if (!strcmp(ibv_get_device_name(list[i]), c->o.dev))
			c->verbs = ibv_open_device(list[i]);
	ibv_free_device_list(list);
	if (!c->verbs) {
		fprintf(stderr, "hmmv_xfer: device %s not found\n", c->o.dev);
		exit(1);
	}
	c->pd = ibv_alloc_pd(c->verbs);
	c->cq = ibv_create_cq(c->verbs, 64, NULL, NULL, 0);
	if (!c->pd || !c->cq)
		die("pd/cq");

	/* Buffer: guard | offset | message | guard, plus 8 bytes for atomic results. */
	c->buf_len = GUARD + c->o.offset + c->o.size + GUARD + 16;
	c->buf = mmap(NULL, c->buf_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (c->buf == MAP_FAILED)
		die("mmap");
	c->atomic_res = (uint64_t *)(((uintptr_t)(c->buf + c->buf_len - 16) + 7) & ~(uintptr_t)7);

	switch (c->o.mode) {
	case MODE_PINNED:
		c->mr = ibv_reg_mr(c->pd, c->buf, c->buf_len, access);
		break;
	case MODE_ODP:
		c->mr = ibv_reg_mr(c->pd, c->buf, c->buf_len, access | IBV_ACCESS_ON_DEMAND);
		break;
	case MODE_IMPLICIT:
		c->mr = ibv_reg_mr(c->pd, NULL, SIZE_MAX, access | IBV_ACCESS_ON_DEMAND);
		break;
	}
	if (!c->mr)
		die("ibv_reg_mr");

	struct ibv_qp_init_attr qia = {
		.send_cq = c->cq,
		.recv_cq = c->cq,
		.qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = 16, .max_recv_wr = 16, .max_send_sge = 1, .max_recv_sge = 1 },
	};
	c->qp = ibv_create_qp(c->pd, &qia);
	if (!c->qp)
		die("ibv_create_qp");
}

static void connect_qp(struct ctx *c, int gid_index)
{
	struct hmmv_rc_attr a = {
		.port = 1,
		.sgid_index = gid_index,
		.dest_qpn = c->peer.qpn,
		.rq_psn = c->peer.psn,
		.mtu = IBV_MTU_1024,
		.rd_atomic = 4,
		.min_rnr_timer = 12,
		.access = IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_ATOMIC,
	};
	const char *step = "";

	memcpy(a.dgid.raw, c->peer.gid, 16);
	errno = hmmv_rc_connect(c->qp, &a, &step);
	if (errno) {
		char what[32];

		snprintf(what, sizeof(what), "modify %s", step);
		die(what);
	}
}

static void control_connect(struct ctx *c)
{
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
	struct addrinfo *res;
	char port[16];
	int one = 1;

	snprintf(port, sizeof(port), "%d", c->o.port);
	if (getaddrinfo(c->o.server, port, &hints, &res))
		die("getaddrinfo");
	int fd = socket(res->ai_family, res->ai_socktype, 0);

	if (fd < 0)
		die("socket");
	if (c->o.server) {
		/*
		 * The server may start well after us: on a second debug VM under
		 * TCG, beside other VMs, it took over 10 s to listen.
		 */
		int tries = 1200;

		while (connect(fd, res->ai_addr, res->ai_addrlen)) {
			if (--tries == 0)
				die("connect to server (for 120 s)");
			usleep(100000);
			close(fd);
			fd = socket(res->ai_family, res->ai_socktype, 0);
		}
		c->sock = fd;
	} else {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, res->ai_addr, res->ai_addrlen) || listen(fd, 1))
			die("bind/listen");
		c->sock = accept(fd, NULL, NULL);
		if (c->sock < 0)
			die("accept");
		close(fd);
	}
	freeaddrinfo(res);
}

static void exchange(struct ctx *c, int gid_index)
{
	struct wire_info me = {
		.qpn = c->qp->qp_num,
		.psn = 0,
		.addr = (uintptr_t)c->buf,
		.rkey = c->mr->rkey,
	};
	union ibv_gid gid;

	if (ibv_query_gid(c->verbs, 1, gid_index, &gid))
		die("ibv_query_gid");
	memcpy(me.gid, gid.raw, 16);
	xsend(c->sock, &me, sizeof(me));
	xrecv(c->sock, &c->peer, sizeof(c->peer));
	connect_qp(c, gid_index);
}

/* Wait for one completion; 0 on success. */
static int wait_wc(struct ctx *c, const char *what)
{
	struct ibv_wc wc;
	time_t end = time(NULL) + CQ_TIMEOUT_SEC;

	for (;;) {
		int n = ibv_poll_cq(c->cq, 1, &wc);

		if (n < 0)
			die("ibv_poll_cq");
		if (n == 1)
			break;
		if (time(NULL) > end) {
			fprintf(stderr, "hmmv_xfer: %s: no completion after %d s\n", what, CQ_TIMEOUT_SEC);
			return 1;
		}
	}
	if (wc.status != IBV_WC_SUCCESS) {
		fprintf(stderr, "hmmv_xfer: %s: completion error %s (%d)\n", what,
			ibv_wc_status_str(wc.status), wc.status);
		return 1;
	}
	return 0;
}

static int post_send(struct ctx *c, enum ibv_wr_opcode opcode, void *local, uint32_t len,
		     uint64_t raddr, uint64_t cmp_add, uint64_t swap)
{
	struct ibv_sge sge = { .addr = (uintptr_t)local, .length = len, .lkey = c->mr->lkey };
	struct ibv_send_wr wr = {
		.sg_list = &sge,
		.num_sge = 1,
		.opcode = opcode,
		.send_flags = IBV_SEND_SIGNALED,
	}, *bad;

	if (opcode == IBV_WR_ATOMIC_CMP_AND_SWP || opcode == IBV_WR_ATOMIC_FETCH_AND_ADD) {
		wr.wr.atomic.remote_addr = raddr;
		wr.wr.atomic.rkey = c->peer.rkey;
		wr.wr.atomic.compare_add = cmp_add;
		wr.wr.atomic.swap = swap;
	} else {
		wr.wr.rdma.remote_addr = raddr;
		wr.wr.rdma.rkey = c->peer.rkey;
	}
	errno = ibv_post_send(c->qp, &wr, &bad);
	if (errno)
		die("ibv_post_send");
	return 0;
}

static void post_recv(struct ctx *c)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)(c->buf + GUARD + c->o.offset),
		.length = c->o.size,
		.lkey = c->mr->lkey,
	};
	struct ibv_recv_wr wr = { .sg_list = &sge, .num_sge = 1 }, *bad;

	errno = ibv_post_recv(c->qp, &wr, &bad);
	if (errno)
		die("ibv_post_recv");
}

static uint8_t guard_byte(const struct ctx *c)
{
	return c->o.untouched ? 0 : 0xA5;
}

static void reset_buf(struct ctx *c)
{
	if (!c->o.untouched)
		memset(c->buf, guard_byte(c), c->buf_len);
}

/* The remote address of the peer's u64 used for atomics (8-byte aligned, after its message). */
static uint64_t peer_atomic_addr(const struct ctx *c)
{
	return (c->peer.addr + GUARD + c->o.offset + c->o.size + GUARD + 16 - 16 + 7) & ~7ULL;
}

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* One JSON line per operation: first-iteration and median steady-state throughput. */
static void report_timing(const struct ctx *c, unsigned int op, double *sec, int n)
{
	double mb = c->o.size / 1e6, steady = 0;

	if (n > 1) {
		qsort(sec + 1, n - 1, sizeof(*sec), cmp_double);
		steady = mb / sec[1 + (n - 1) / 2];
	}
	printf("{\"op\":\"%s\",\"size\":%zu,\"mode\":\"%s\",\"untouched\":%s,"
	       "\"first_MBps\":%.2f,\"steady_MBps\":%.2f,\"iters\":%d}\n",
	       op_names[op], c->o.size,
	       c->o.mode == MODE_PINNED ? "pinned" : c->o.mode == MODE_ODP ? "odp" : "implicit",
	       c->o.untouched ? "true" : "false", mb / sec[0], steady, n);
}

static int run_client(struct ctx *c)
{
	int failures = 0;
	double *sec = calloc(c->o.iters, sizeof(*sec));
	uint8_t *msg = c->buf + GUARD + c->o.offset;
	uint64_t rmsg = c->peer.addr + GUARD + c->o.offset;

	for (unsigned int op = 0; op < OP_NR; op++) {
		if (!(c->o.ops & (1u << op)))
			continue;
		for (int k = 0; k < c->o.iters; k++) {
			struct ctl m = { .op = op, .iter = k }, r;
			int err = 0;

			/* Server prepares (posts a receive, fills its buffer, seeds its atomic). */
			xsend(c->sock, &m, sizeof(m));
			xrecv(c->sock, &r, sizeof(r));
			if (op == OP_SEND || op == OP_WRITE)
				fill(msg, c->o.size, k, op);
			sec[k] = now_sec();
			switch (op) {
			case OP_SEND:
				post_send(c, IBV_WR_SEND, msg, c->o.size, 0, 0, 0);
				err = wait_wc(c, "send");
				break;
			case OP_WRITE:
				post_send(c, IBV_WR_RDMA_WRITE, msg, c->o.size, rmsg, 0, 0);
				err = wait_wc(c, "rdma write");
				break;
			case OP_READ:
				post_send(c, IBV_WR_RDMA_READ, msg, c->o.size, rmsg, 0, 0);
				err = wait_wc(c, "rdma read");
				sec[k] = now_sec() - sec[k];
				err = err || check(c, "rdma read", k, op, guard_byte(c));
				reset_buf(c);
				break;
			case OP_CAS:
			case OP_FAA: {
				uint64_t seed = 0x0123456789abcdefULL ^ ((uint64_t)k << 40), want;

				*c->atomic_res = 0;
				if (op == OP_CAS)
					post_send(c, IBV_WR_ATOMIC_CMP_AND_SWP, c->atomic_res, 8,
						  peer_atomic_addr(c), seed, ~seed);
				else
					post_send(c, IBV_WR_ATOMIC_FETCH_AND_ADD, c->atomic_res, 8,
						  peer_atomic_addr(c), 0x1111 + k, 0);
				err = wait_wc(c, op_names[op]);
				sec[k] = now_sec() - sec[k];
				want = seed;
				if (!err && *c->atomic_res != want) {
					fprintf(stderr, "hmmv_xfer: %s iter %d: original 0x%" PRIx64
						" != 0x%" PRIx64 "\n", op_names[op], k, *c->atomic_res, want);
					err = 1;
				}
				break;
			}
			}
			if (op == OP_SEND || op == OP_WRITE)
				sec[k] = now_sec() - sec[k];
			/* Server checks what landed on its side. */
			m.status = err;
			xsend(c->sock, &m, sizeof(m));
			xrecv(c->sock, &r, sizeof(r));
			if (err || r.status) {
				fprintf(stderr, "hmmv_xfer: %s size %zu offset %zu iter %d: FAILED (%s side)\n",
					op_names[op], c->o.size, c->o.offset, k, err ? "client" : "server");
				failures++;
			}
		}
		if (c->o.timing && !failures)
			report_timing(c, op, sec, c->o.iters);
		printf("hmmv_xfer: %-5s size %zu offset %zu mode %s x%d: %s\n", op_names[op], c->o.size,
		       c->o.offset, c->o.mode == MODE_PINNED ? "pinned" : c->o.mode == MODE_ODP ? "odp" : "implicit",
		       c->o.iters, failures ? "FAILED" : "ok");
	}
	struct ctl bye = { .op = UINT32_MAX };

	xsend(c->sock, &bye, sizeof(bye));
	free(sec);
	return failures ? 1 : 0;
}

static int run_server(struct ctx *c)
{
	int failures = 0;
	uint64_t *atomic = (uint64_t *)((((uintptr_t)(c->buf + GUARD + c->o.offset + c->o.size + GUARD))
					 + 7) & ~(uintptr_t)7);

	for (;;) {
		struct ctl m, r = { 0 };
		uint64_t seed;

		xrecv(c->sock, &m, sizeof(m));
		if (m.op == UINT32_MAX)
			break;
		if (m.op >= OP_NR)
			return 1;
		seed = 0x0123456789abcdefULL ^ ((uint64_t)m.iter << 40);
		/* Prepare. */
		reset_buf(c);
		switch (m.op) {
		case OP_SEND:
			post_recv(c);
			break;
		case OP_READ:
			fill(c->buf + GUARD + c->o.offset, c->o.size, m.iter, m.op);
			break;
		case OP_CAS:
		case OP_FAA:
			*atomic = seed;
			break;
		}
		xsend(c->sock, &r, sizeof(r));
		/* Check. */
		xrecv(c->sock, &m, sizeof(m));
		switch (m.op) {
		case OP_SEND:
			r.status = wait_wc(c, "recv") || check(c, "recv", m.iter, m.op, guard_byte(c));
			break;
		case OP_WRITE:
			r.status = check(c, "rdma write", m.iter, m.op, guard_byte(c));
			break;
		case OP_CAS:
		case OP_FAA: {
			uint64_t want = m.op == OP_CAS ? ~seed : seed + 0x1111 + m.iter;

			if (*atomic != want) {
				fprintf(stderr, "hmmv_xfer: %s iter %u: target 0x%" PRIx64 " != 0x%" PRIx64 "\n",
					op_names[m.op], m.iter, *atomic, want);
				r.status = 1;
			}
			break;
		}
		}
		failures += r.status != 0;
		xsend(c->sock, &r, sizeof(r));
		if (c->o.untouched && m.op != OP_READ) {
			/* Back to zero, as the first time. */
			memset(c->buf, 0, c->buf_len);
		}
	}
	return failures ? 1 : 0;
}

static unsigned int parse_ops(const char *s)
{
	unsigned int ops = 0;
	char *dup = strdup(s), *save, *t;

	for (t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		int i;

		for (i = 0; i < OP_NR; i++)
			if (!strcmp(t, op_names[i]))
				break;
		if (i == OP_NR) {
			fprintf(stderr, "hmmv_xfer: unknown operation %s\n", t);
			exit(2);
		}
		ops |= 1u << i;
	}
	free(dup);
	return ops;
}

int main(int argc, char **argv)
{
	struct ctx c = { .o = { .dev = "rxe0", .gid_index = -1, .port = 18600, .size = 65536, .iters = 4 } };
	int opt, gid_index, rc;

	c.o.ops = parse_ops("send,write,read");
	while ((opt = getopt(argc, argv, "d:g:p:s:o:n:t:m:uT")) != -1) {
		switch (opt) {
		case 'd': c.o.dev = optarg; break;
		case 'g': c.o.gid_index = atoi(optarg); break;
		case 'p': c.o.port = atoi(optarg); break;
		case 's': c.o.size = strtoull(optarg, NULL, 0); break;
		case 'o': c.o.offset = strtoull(optarg, NULL, 0); break;
		case 'n': c.o.iters = atoi(optarg); break;
		case 't': c.o.ops = parse_ops(optarg); break;
		case 'm':
			if (!strcmp(optarg, "pinned"))
				c.o.mode = MODE_PINNED;
			else if (!strcmp(optarg, "odp"))
				c.o.mode = MODE_ODP;
			else if (!strcmp(optarg, "implicit"))
				c.o.mode = MODE_IMPLICIT;
			else {
				fprintf(stderr, "hmmv_xfer: unknown mode %s\n", optarg);
				return 2;
			}
			break;
		case 'u': c.o.untouched = true; break;
		case 'T': c.o.timing = true; break;
		default:
			fprintf(stderr, "usage: see the comment at the top of hmmv_xfer.c\n");
			return 2;
		}
	}
	if (optind < argc)
		c.o.server = argv[optind];
	if (c.o.size == 0 || c.o.size > (1ULL << 31)) {
		fprintf(stderr, "hmmv_xfer: size must be 1 .. 2 GiB\n");
		return 2;
	}
	if (c.o.ops & ((1u << OP_CAS) | (1u << OP_FAA)) && c.o.size < 8) {
		fprintf(stderr, "hmmv_xfer: atomics need a size of at least 8\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	setup_verbs(&c);
	gid_index = find_gid(&c);
	reset_buf(&c);
	control_connect(&c);
	exchange(&c, gid_index);
	rc = c.o.server ? run_client(&c) : run_server(&c);

	ibv_destroy_qp(c.qp);
	ibv_dereg_mr(c.mr);
	ibv_destroy_cq(c.cq);
	ibv_dealloc_pd(c.pd);
	ibv_close_device(c.verbs);
	munmap(c.buf, c.buf_len);
	return rc;
}
