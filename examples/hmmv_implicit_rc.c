// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * hmmv_implicit_rc: an RC client/server pair that registers exactly one memory region per
 * side, an implicit ODP MR (hmmv_reg_implicit_mr), and then moves data from and to memory
 * that was never registered on its own: freshly malloc'd, freshly mmap'd and stack buffers.
 *
 *   server: hmmv_implicit_rc [-d DEV] [-g GID_INDEX] [-p PORT]
 *   client: hmmv_implicit_rc [-d DEV] [-g GID_INDEX] [-p PORT] SERVER_ADDR
 *
 * The client RDMA-writes from a malloc'd buffer into the server's fresh mmap'd buffer,
 * RDMA-reads the server's malloc'd buffer into its own fresh mmap'd buffer, and sends from
 * its stack into a receive posted on the server's stack. Both sides check every byte.
 * Exit status: 0 when every byte arrived, 1 on a failure, 2 where the device has no
 * implicit ODP (for example the stock rxe).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <infiniband/hmmverbs.h>

#define WRITE_LEN (64 * 1024 + 13)
#define READ_LEN (32 * 1024 + 5)
#define SEND_LEN 3000

/* What each side tells the other over TCP. */
struct peer_info {
	uint32_t qpn;
	uint32_t rkey;
	uint64_t write_target;	/* server: where the client writes */
	uint64_t read_source;	/* server: what the client reads */
	uint8_t gid[16];
};

struct conn {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	struct ibv_mr *mr;	/* the only MR of this process */
	int gid_index;
};

static void fill(unsigned char *p, size_t len, unsigned int seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)(seed * 31 + i * 13 + (i >> 9));
}

static int verify(const char *what, const unsigned char *p, size_t len, unsigned int seed)
{
	for (size_t i = 0; i < len; i++) {
		if (p[i] != (unsigned char)(seed * 31 + i * 13 + (i >> 9))) {
			fprintf(stderr, "%s: byte %zu is %#x\n", what, i, p[i]);
			return -1;
		}
	}
	printf("%s: %zu bytes correct\n", what, len);
	return 0;
}

static int xfer(int fd, void *buf, size_t len, bool out)
{
	for (size_t done = 0; done < len;) {
		ssize_t n = out ? write(fd, (char *)buf + done, len - done) :
				  read(fd, (char *)buf + done, len - done);
		if (n <= 0)
			return -1;
		done += n;
	}
	return 0;
}

static int tcp_connect(const char *host, const char *port)
{
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *ai;
	int fd = -1, one = 1;

	if (host) {
		if (getaddrinfo(host, port, &hints, &ai))
			return -1;
		for (int i = 0; i < 50 && fd < 0; i++) {
			fd = socket(AF_INET, SOCK_STREAM, 0);
			if (connect(fd, ai->ai_addr, ai->ai_addrlen)) {
				close(fd);
				fd = -1;
				usleep(100000);
			}
		}
		freeaddrinfo(ai);
		return fd;
	}
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(atoi(port)) };
	int lfd = socket(AF_INET, SOCK_STREAM, 0);

	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) || listen(lfd, 1))
		return -1;
	fd = accept(lfd, NULL, NULL);
	close(lfd);
	return fd;
}

static int wait_wc(struct conn *c, const char *what)
{
	time_t end = time(NULL) + 30;
	struct ibv_wc wc;
	int n;

	while ((n = ibv_poll_cq(c->cq, 1, &wc)) == 0 && time(NULL) < end)
		;
	if (n <= 0 || wc.status != IBV_WC_SUCCESS) {
		fprintf(stderr, "%s: %s\n", what, n > 0 ? ibv_wc_status_str(wc.status) : "no completion");
		return -1;
	}
	return 0;
}

static int open_conn(struct conn *c, const char *devname)
{
	struct ibv_qp_init_attr qia = { .qp_type = IBV_QPT_RC,
					.cap = { .max_send_wr = 4, .max_recv_wr = 4,
						 .max_send_sge = 1, .max_recv_sge = 1 } };
	struct ibv_device **list = ibv_get_device_list(NULL);

	for (int i = 0; list && list[i]; i++)
		if (!strcmp(ibv_get_device_name(list[i]), devname))
			c->ctx = ibv_open_device(list[i]);
	ibv_free_device_list(list);
	if (!c->ctx) {
		fprintf(stderr, "no device %s\n", devname);
		return 1;
	}
	c->pd = ibv_alloc_pd(c->ctx);
	if (!c->pd)
		return 1;
	/* One MR for every address of the process. */
	c->mr = hmmv_reg_implicit_mr(c->pd, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
						    IBV_ACCESS_REMOTE_READ);
	if (!c->mr) {
		fprintf(stderr, "implicit ODP MR on %s: %s\n", devname, strerror(errno));
		if (errno == EOPNOTSUPP) {
			fprintf(stderr, "%s has no implicit ODP\n", devname);
			return 2;
		}
		return 1;
	}
	c->cq = ibv_create_cq(c->ctx, 8, NULL, NULL, 0);
	if (!c->cq)
		return 1;
	qia.send_cq = qia.recv_cq = c->cq;
	c->qp = ibv_create_qp(c->pd, &qia);
	return c->qp ? 0 : 1;
}

static int connect_qp(struct conn *c, const struct peer_info *peer)
{
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_INIT, .port_num = 1,
				 .qp_access_flags = IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ };

	if (ibv_modify_qp(c->qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
					     IBV_QP_ACCESS_FLAGS))
		return -1;
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTR;
	a.path_mtu = IBV_MTU_1024;
	a.dest_qp_num = peer->qpn;
	a.max_dest_rd_atomic = 1;
	a.min_rnr_timer = 12;
	a.ah_attr.is_global = 1;
	memcpy(a.ah_attr.grh.dgid.raw, peer->gid, 16);
	a.ah_attr.grh.sgid_index = c->gid_index;
	a.ah_attr.grh.hop_limit = 64;
	a.ah_attr.port_num = 1;
	if (ibv_modify_qp(c->qp, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
					     IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
					     IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER))
		return -1;
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	a.timeout = 14;
	a.retry_cnt = 7;
	a.rnr_retry = 7;
	a.max_rd_atomic = 1;
	return ibv_modify_qp(c->qp, &a, IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
					       IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN |
					       IBV_QP_MAX_QP_RD_ATOMIC);
}

static int post(struct conn *c, enum ibv_wr_opcode op, void *local, size_t len,
		uint64_t remote, uint32_t rkey)
{
	struct ibv_sge sge = { (uintptr_t)local, (uint32_t)len, c->mr->lkey };
	struct ibv_send_wr wr = { .sg_list = &sge, .num_sge = 1, .opcode = op,
				  .send_flags = IBV_SEND_SIGNALED }, *bad;

	wr.wr.rdma.remote_addr = remote;
	wr.wr.rdma.rkey = rkey;
	return ibv_post_send(c->qp, &wr, &bad);
}

static void *fresh_mmap(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static int server(struct conn *c, int fd, struct peer_info *me)
{
	unsigned char stackbuf[SEND_LEN];	/* the client's send lands here */
	unsigned char *target = fresh_mmap(WRITE_LEN);	/* never touched by the CPU */
	unsigned char *source = malloc(READ_LEN);
	struct ibv_sge sge = { (uintptr_t)stackbuf, sizeof(stackbuf), c->mr->lkey };
	struct ibv_recv_wr rwr = { .sg_list = &sge, .num_sge = 1 }, *bad;
	struct peer_info peer;
	char verdict;

	if (!target || !source)
		return 1;
	fill(source, READ_LEN, 2);
	me->write_target = (uintptr_t)target;
	me->read_source = (uintptr_t)source;
	if (xfer(fd, me, sizeof(*me), true) || xfer(fd, &peer, sizeof(peer), false)) {
		fprintf(stderr, "server: exchange with the client failed\n");
		return 1;
	}
	/* A receive can be posted once the QP left the RESET state. */
	if (connect_qp(c, &peer) || ibv_post_recv(c->qp, &rwr, &bad)) {
		fprintf(stderr, "server: connecting the QP failed\n");
		return 1;
	}
	/* Ready; the client says when its write, read and send completed. */
	if (xfer(fd, &verdict, 1, true) || xfer(fd, &verdict, 1, false) ||
	    wait_wc(c, "receive"))
		return 1;
	verdict = verify("server: RDMA write into fresh mmap", target, WRITE_LEN, 1) ||
		  verify("server: send into stack buffer", stackbuf, SEND_LEN, 3);
	if (xfer(fd, &verdict, 1, true))
		return 1;
	free(source);
	munmap(target, WRITE_LEN);
	return verdict ? 1 : 0;
}

static int client(struct conn *c, int fd, struct peer_info *me)
{
	unsigned char stackbuf[SEND_LEN];
	unsigned char *source = malloc(WRITE_LEN);
	unsigned char *target = fresh_mmap(READ_LEN);
	struct peer_info peer;
	char verdict;

	if (!source || !target)
		return 1;
	if (xfer(fd, me, sizeof(*me), true) || xfer(fd, &peer, sizeof(peer), false) ||
	    connect_qp(c, &peer) || xfer(fd, &verdict, 1, false)) {
		fprintf(stderr, "client: connecting to the server failed\n");
		return 1;
	}
	fill(source, WRITE_LEN, 1);
	fill(stackbuf, SEND_LEN, 3);
	if (post(c, IBV_WR_RDMA_WRITE, source, WRITE_LEN, peer.write_target, peer.rkey) ||
	    wait_wc(c, "RDMA write") ||
	    post(c, IBV_WR_RDMA_READ, target, READ_LEN, peer.read_source, peer.rkey) ||
	    wait_wc(c, "RDMA read") ||
	    post(c, IBV_WR_SEND, stackbuf, SEND_LEN, 0, 0) || wait_wc(c, "send"))
		return 1;
	verdict = 0;
	if (xfer(fd, &verdict, 1, true) || xfer(fd, &verdict, 1, false))
		return 1;
	if (verify("client: RDMA read into fresh mmap", target, READ_LEN, 2) || verdict) {
		fprintf(stderr, "client: %s\n", verdict ? "the server saw wrong bytes" : "read failed");
		return 1;
	}
	free(source);
	munmap(target, READ_LEN);
	return 0;
}

/* What the implicit MR went through, from the kernel's counters (needs CAP_NET_ADMIN). */
static void print_counters(struct conn *c, const char *side)
{
	struct hmmv_mr_stats st = { .comp_mask = HMMV_MR_STATS_MASK_MIRROR };
	int err = hmmv_query_mr_stats(c->mr, &st);

	if (err) {
		printf("%s: implicit MR counters: %s\n", side, strerror(err));
		return;
	}
	printf("%s: implicit MR lkey %#x: %llu pages faulted in %llu faults, %llu invalidated, "
	       "%llu prefetched",
	       side, c->mr->lkey, (unsigned long long)st.page_faults,
	       (unsigned long long)st.page_faults_handled,
	       (unsigned long long)st.page_invalidations, (unsigned long long)st.page_prefetch);
	if (st.comp_mask & HMMV_MR_STATS_MASK_MIRROR)
		printf("; %llu pages mapped now, mirror %llu bytes",
		       (unsigned long long)st.mapped_pages, (unsigned long long)st.mirror_bytes);
	printf("\n");
}

int main(int argc, char **argv)
{
	const char *dev = "rxe0", *port = "18515";
	struct conn c = {};
	struct peer_info me = {};
	union ibv_gid gid;
	int opt, fd, rc;

	while ((opt = getopt(argc, argv, "d:g:p:")) != -1) {
		switch (opt) {
		case 'd': dev = optarg; break;
		case 'g': c.gid_index = atoi(optarg); break;
		case 'p': port = optarg; break;
		default:
			fprintf(stderr, "usage: %s [-d DEV] [-g GID_INDEX] [-p PORT] [SERVER]\n",
				argv[0]);
			return 1;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	rc = open_conn(&c, dev);
	if (rc)
		return rc;
	if (ibv_query_gid(c.ctx, 1, c.gid_index, &gid))
		return 1;
	me.qpn = c.qp->qp_num;
	me.rkey = c.mr->rkey;
	memcpy(me.gid, gid.raw, 16);
	fd = tcp_connect(optind < argc ? argv[optind] : NULL, port);
	if (fd < 0) {
		perror("tcp");
		return 1;
	}
	rc = optind < argc ? client(&c, fd, &me) : server(&c, fd, &me);
	close(fd);
	print_counters(&c, optind < argc ? "client" : "server");
	ibv_destroy_qp(c.qp);
	ibv_destroy_cq(c.cq);
	ibv_dereg_mr(c.mr);
	ibv_dealloc_pd(c.pd);
	ibv_close_device(c.ctx);
	printf("%s\n", rc ? "FAILED" : "OK: one implicit MR per side, every byte correct");
	return rc;
}
