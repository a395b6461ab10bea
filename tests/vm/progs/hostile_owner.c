// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * hostile_owner: verbs processes for the shell-level cases of the suite hostile, which kill
 * them, delete their device or unload its module under them.
 *
 *   hostile_owner hold [-d DEV]
 *	Holds live resources and no traffic: a context, a PD, two CQs, a connected loopback RC
 *	QP pair, an explicit ODP MR of 16 MiB (1 MiB of it faulted in by a checked RDMA write),
 *	an implicit ODP MR (used once the same way) and a pinned MR. Prints "ready PID", then
 *	waits: SIGUSR1 moves and checks data once more through the ODP MRs and prints "xfer ok"
 *	(or "xfer failed: why"); SIGTERM ends the process without releasing anything.
 *
 *   hostile_owner stream [-d DEV] -k sender|receiver
 *	Two processes on DEV, each with its own context: the sender streams RDMA writes (16 of
 *	256 KiB in flight, from an ODP MR) into the receiver's explicit ODP MR of 8 MiB. The
 *	one named by -k is the child, the victim: "victim PID" is printed first, "streaming"
 *	once 32 writes have completed, then the caller kills the victim. The survivor must see
 *	the end and finish cleanly:
 *	 - receiver: notices the sender's death, and every byte of its buffer is 0 or the
 *	   sender's pattern (what a write, whole or in part, may have left);
 *	 - sender: its writes end in error completions within 60 s (the requester retries 3
 *	   times: rxe retries forever with 7), and a write posted after the death never succeeds.
 *	Exit status 0 when the survivor saw what it must, 1 otherwise (the reason on stderr).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "odp/odp.h"
#include "rc_connect.h"
#include "roce_gid.h"

/* odp_verbs.c reports through these. */
const char *const kind_names[K_NR] = { "pinned", "odp", "implicit" };
bool verbose;

int tfail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("hostile_owner: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return T_FAIL;
}

int tskip(const char *fmt, ...)
{
	(void)fmt;
	return T_SKIP;
}

void tnote(const char *fmt, ...)
{
	(void)fmt;
}

/* --- hold ------------------------------------------------------------------------------------- */

/* A checked loopback write and read of @len bytes at @t through @mr. */
static int move_and_check(struct env *e, struct ibv_mr *mr, uint8_t *t, size_t len, int seed)
{
	struct lbuf l;

	if (lbuf_get(e, &l, len, K_PINNED))
		return -1;
	fill(l.p, len, seed);
	if (expect_ok(wr(e, &l, 0, len, t, mr->rkey), "write") ||
	    check_pattern("the target after the write", t, len, seed))
		return -1;
	memset(l.p, 0, len);
	if (expect_ok(rd(e, &l, 0, len, t, mr->rkey), "read") ||
	    check_pattern("the read", l.p, len, seed))
		return -1;
	lbuf_put(e, &l);
	return 0;
}

static int hold(const char *dev)
{
	const size_t len = 16 * MIB;
	struct ibv_mr *odp, *implicit, *pinned;
	uint8_t *t = map_anon(len), *u = map_anon(MIB), *p = map_anon(MIB);
	struct env e;
	sigset_t set;
	int sig, round = 1;

	if (!t || !u || !p || env_open(&e, dev, K_ODP) != T_PASS)
		return 1;
	odp = mr_get(&e, K_ODP, t, len, ACC_ALL);
	implicit = mr_get(&e, K_IMPLICIT, NULL, 0, ACC_ALL);
	pinned = mr_get(&e, K_PINNED, p, MIB, ACC_ALL);
	if (!odp || !implicit || !pinned)
		return tfail("registration: %s", strerror(errno));
	if (move_and_check(&e, odp, t, MIB, round) || move_and_check(&e, implicit, u, MIB, round))
		return 1;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	printf("ready %d\n", getpid());
	fflush(stdout);
	for (;;) {
		if (sigwait(&set, &sig))
			return 1;
		if (sig == SIGTERM)
			_exit(0);	/* the kernel releases what is left */
		round++;
		if (pair_reset(&e, &e.rc) ||
		    move_and_check(&e, odp, t + 5 * MIB + 3, 300 * 1024, round) ||
		    move_and_check(&e, implicit, u + 7, 300 * 1024, round))
			printf("xfer failed\n");
		else
			printf("xfer ok\n");
		fflush(stdout);
	}
}

/* --- stream ----------------------------------------------------------------------------------- */

#define ST_LEN (8 * MIB)
#define ST_BLOCK (256 * 1024)
#define ST_DEPTH 16
#define ST_SEED 3

struct wire {
	uint32_t qpn;
	uint32_t rkey;
	uint64_t addr;
	union ibv_gid gid;
};

struct end {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	struct ibv_mr *mr;
	uint8_t *buf;
	int gid_index;
	union ibv_gid gid;
};

static int end_open(struct end *n, const char *dev)
{
	struct ibv_device **list = ibv_get_device_list(NULL);
	struct ibv_qp_init_attr qia = {
		.qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = ST_DEPTH, .max_recv_wr = 1, .max_send_sge = 1, .max_recv_sge = 1 },
	};

	for (int i = 0; list && list[i]; i++)
		if (!strcmp(ibv_get_device_name(list[i]), dev))
			n->ctx = ibv_open_device(list[i]);
	if (!n->ctx)
		return tfail("cannot open %s", dev);
	n->gid_index = hmmv_roce_v2_ipv4_gid(n->ctx, dev, 1, &n->gid);
	n->pd = ibv_alloc_pd(n->ctx);
	n->cq = ibv_create_cq(n->ctx, 4 * ST_DEPTH, NULL, NULL, 0);
	n->buf = map_anon(ST_LEN);
	if (n->gid_index < 0 || !n->pd || !n->cq || !n->buf)
		return tfail("gid/pd/cq/mmap: %s", strerror(errno));
	qia.send_cq = n->cq;
	qia.recv_cq = n->cq;
	n->qp = ibv_create_qp(n->pd, &qia);
	n->mr = ibv_reg_mr(n->pd, n->buf, ST_LEN, ACC_ALL | IBV_ACCESS_ON_DEMAND);
	if (!n->qp || !n->mr)
		return tfail("qp/ODP mr: %s", strerror(errno));
	return 0;
}

/*
 * RESET to RTS towards @w. Three retries, not rxe's "7 = forever", so that a sender whose
 * peer is gone gets its error completion.
 */
static int end_connect(struct end *n, const struct wire *w)
{
	const struct hmmv_rc_attr rc = {
		.port = 1,
		.sgid_index = n->gid_index,
		.dgid = w->gid,
		.dest_qpn = w->qpn,
		.mtu = IBV_MTU_1024,
		.rd_atomic = 1,
		.min_rnr_timer = 1,
		.access = IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ,
		.retries = 3,
	};
	const char *step = "";
	int err = hmmv_rc_connect(n->qp, &rc, &step);

	return err ? tfail("modify %s: %s", step, strerror(err)) : 0;
}

static int exchange(struct end *n, int sock, struct wire *peer)
{
	struct wire me = { .qpn = n->qp->qp_num, .rkey = n->mr->rkey, .addr = (uintptr_t)n->buf,
			   .gid = n->gid };

	if (write(sock, &me, sizeof(me)) != sizeof(me) || read(sock, peer, sizeof(*peer)) != sizeof(*peer))
		return tfail("exchange with the peer process: %s", strerror(errno));
	return end_connect(n, peer);
}

/* Whether the peer process has ended (its end of the socket is closed), waiting up to @ms. */
static bool peer_gone(int sock, int ms)
{
	struct pollfd p = { .fd = sock, .events = POLLIN };
	char c;

	return poll(&p, 1, ms) == 1 && read(sock, &c, 1) <= 0;
}

static int post_write(struct end *n, const struct wire *peer, uint64_t seq)
{
	struct ibv_sge sge = { (uintptr_t)n->buf, ST_BLOCK, n->mr->lkey };
	struct ibv_send_wr wr = { .wr_id = seq, .sg_list = &sge, .num_sge = 1, .opcode = IBV_WR_RDMA_WRITE,
				  .send_flags = IBV_SEND_SIGNALED }, *bad;

	wr.wr.rdma.remote_addr = peer->addr + (seq % (ST_LEN / ST_BLOCK)) * ST_BLOCK;
	wr.wr.rdma.rkey = peer->rkey;
	return ibv_post_send(n->qp, &wr, &bad);
}

static bool allowed_error(enum ibv_wc_status st)
{
	return st == IBV_WC_REM_ACCESS_ERR || st == IBV_WC_RETRY_EXC_ERR || st == IBV_WC_WR_FLUSH_ERR ||
	       st == IBV_WC_REM_OP_ERR || st == IBV_WC_REM_INV_REQ_ERR;
}

struct stream_state {
	uint64_t posted, done, ok;
	uint64_t last;		/* the write posted after the receiver's death; UINT64_MAX: none yet */
	bool gone;
	time_t gone_at;
};

/*
 * One completion of the surviving sender: 1 when the write posted after the receiver's death
 * has ended as it must, 0 to go on, -1 on failure.
 */
static int sender_wc(struct stream_state *s, const struct ibv_wc *wc, int sock)
{
	s->done++;
	if (wc->status == IBV_WC_SUCCESS) {
		s->ok++;
		if (wc->wr_id == s->last)
			return tfail("a write posted after the receiver died succeeded");
		return 0;
	}
	if (!allowed_error(wc->status))
		return tfail("write %llu: unexpected %s", (unsigned long long)wc->wr_id,
			     ibv_wc_status_str(wc->status));
	/* An error is only right once the receiver is dying (its mm goes before its files). */
	if (!s->gone && !peer_gone(sock, 10000))
		return tfail("write %llu failed (%s) while the receiver lived", (unsigned long long)wc->wr_id,
			     ibv_wc_status_str(wc->status));
	if (!s->gone) {
		s->gone = true;
		s->gone_at = time(NULL);
	}
	if (wc->wr_id != s->last)
		return 0;
	fprintf(stderr, "hostile_owner: %llu writes ok; the one posted after the receiver's death: %s\n",
		(unsigned long long)s->ok, ibv_wc_status_str(wc->status));
	return 1;
}

/* Stream until the peer is gone; then every outstanding write and one more must end. */
static int sender(struct end *n, const struct wire *peer, int sock, bool victim)
{
	struct stream_state s = { .last = UINT64_MAX };
	bool told = false;

	fill(n->buf, ST_BLOCK, ST_SEED);
	for (;;) {
		struct ibv_wc wc;
		int got, r;

		if (!s.gone && s.posted - s.done < ST_DEPTH) {
			if (post_write(n, peer, s.posted))
				return tfail("post: %s", strerror(errno));
			s.posted++;
		}
		got = ibv_poll_cq(n->cq, 1, &wc);
		if (got < 0)
			return tfail("poll_cq");
		if (got && victim) {
			s.done++;
			s.ok += wc.status == IBV_WC_SUCCESS;
		} else if (got) {
			r = sender_wc(&s, &wc, sock);
			if (r)
				return r < 0;
		}
		if (!told && s.ok >= 32) {
			if (victim ? write(sock, "S", 1) != 1 : printf("streaming\n") < 0)
				return 1;
			fflush(stdout);
			told = true;
		}
		if (victim)
			continue;
		if (!s.gone && peer_gone(sock, 0)) {
			s.gone = true;
			s.gone_at = time(NULL);
		}
		/* Once the writes in flight have ended, one more must fail. */
		if (s.gone && s.last == UINT64_MAX && s.done == s.posted) {
			if (post_write(n, peer, s.posted))
				return tfail("post after the receiver's death: %s", strerror(errno));
			s.last = s.posted++;
		}
		if (s.gone && time(NULL) - s.gone_at > 60)
			return tfail("60 s after the receiver's death: %llu of %llu writes completed (hang)",
				     (unsigned long long)s.done, (unsigned long long)s.posted);
	}
}

/* The sender's death ends the stream: the buffer holds only zeros and the pattern. */
static int receiver(struct end *n, int sock, bool victim)
{
	char c;

	if (victim) {
		while (read(sock, &c, 1) > 0)
			;
		_exit(0);
	}
	while (read(sock, &c, 1) == 1) {
		printf("streaming\n");
		fflush(stdout);
	}
	for (size_t i = 0; i < ST_LEN; i++) {
		uint8_t want = pattern(i % ST_BLOCK, ST_SEED);

		if (n->buf[i] && n->buf[i] != want)
			return tfail("receiver byte %zu is 0x%02x: neither 0 nor the sender's 0x%02x", i,
				     n->buf[i], want);
	}
	fprintf(stderr, "hostile_owner: the receiver's buffer holds only what the sender wrote\n");
	return 0;
}

static int stream(const char *dev, bool kill_sender)
{
	struct wire peer;
	struct end n = { 0 };
	int sv[2], rc, status;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return tfail("socketpair: %s", strerror(errno));
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return tfail("fork: %s", strerror(errno));
	if (pid == 0) {
		close(sv[0]);
		if (end_open(&n, dev) || exchange(&n, sv[1], &peer))
			_exit(1);
		_exit(kill_sender ? sender(&n, &peer, sv[1], true) : receiver(&n, sv[1], true));
	}
	close(sv[1]);
	printf("victim %d\n", pid);
	fflush(stdout);
	if (end_open(&n, dev) || exchange(&n, sv[0], &peer))
		return 1;
	rc = kill_sender ? receiver(&n, sv[0], false) : sender(&n, &peer, sv[0], false);
	waitpid(pid, &status, 0);
	return rc;
}

int main(int argc, char **argv)
{
	const char *dev = getenv("HMMV_DEV"), *victim = NULL;
	int opt;

	if (!dev || !*dev)
		dev = "rxe0";
	if (argc < 2)
		goto usage;
	optind = 2;
	while ((opt = getopt(argc, argv, "d:k:")) != -1) {
		switch (opt) {
		case 'd': dev = optarg; break;
		case 'k': victim = optarg; break;
		default: goto usage;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(argv[1], "hold"))
		return hold(dev);
	if (!strcmp(argv[1], "stream") && victim && (!strcmp(victim, "sender") || !strcmp(victim, "receiver")))
		return stream(dev, !strcmp(victim, "sender")) ? 1 : 0;
usage:
	fprintf(stderr, "usage: hostile_owner hold [-d DEV] | stream [-d DEV] -k sender|receiver\n");
	return 2;
}
